/* http/h3: HTTP/3 on the mesh port (adr/0013), with nghttp3 0.8 over the QUIC endpoint's h3
 * connections (quic/app.h), for operators who query a node remotely without ssh.
 *
 * Server: every h3 connection the endpoint hands over (its client holds an operator
 * certificate of the mesh CA; anyone else was refused in the handshake) gets the node's routes,
 * the very function the HTTP/1.1 edge calls (http/http.h tb_http_route_fn), with the same
 * checks and refusals (http/request.h). Budgets: at most TB_H3_MAX_CONNS h3 connections at
 * once (more are closed with H3_EXCESSIVE_LOAD), and per connection TB_H3_RATE requests a
 * second with bursts of TB_H3_BURST (more are answered 429). Header sections are capped at
 * TB_H3_FIELD_SECTION bytes, the QPACK dynamic table is not used.
 *
 * Client: tb_h3_get, a blocking GET for the command line (`tbnode status --remote`): its own
 * loop and client endpoint, one request, one answer. */
#ifndef TB_HTTP_H3_H
#define TB_HTTP_H3_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "http/http.h"
#include "quic/app.h"

#define TB_H3_MAX_CONNS 8
#define TB_H3_RATE 10
#define TB_H3_BURST 20
#define TB_H3_FIELD_SECTION 16384
#define TB_H3_BODY_MAX (16u << 20) /* the client's cap on an answer */

typedef struct tb_h3 tb_h3;

TB_WUR int tb_h3_new(tb_h3 **out, const tb_log *log, const tb_clock *clock, tb_http_route_fn route,
                     void *arg);
/* What tb_quic_endpoint_set_app takes; valid while h lives. */
const tb_quic_app_ops *tb_h3_ops(tb_h3 *h);
/* After the endpoint that used it is destroyed. NULL is fine. */
void tb_h3_free(tb_h3 *h);

typedef struct tb_h3_stats {
    uint64_t conns, conns_refused, requests, rate_limited;
} tb_h3_stats;
void tb_h3_get_stats(const tb_h3 *h, tb_h3_stats *out);

typedef struct tb_h3_get_config {
    const char *addr;       /* "host:port", numeric */
    const char *cert, *key; /* the operator's certificate and key (may be NULL) */
    const char *ca;         /* the mesh CA */
    const char *path;       /* "/status.json" */
    uint64_t timeout_ns;    /* 0: 10 s */
    const tb_log *log;
} tb_h3_get_config;

typedef struct tb_h3_result {
    unsigned status; /* HTTP status, 0 when no answer came */
    char *body;      /* malloc'ed, NUL-terminated; free it */
    size_t len;
    char err[256]; /* why there is no answer */
} tb_h3_result;

/* One GET. TB_OK with res->status set when an answer came (whatever its status); otherwise
 * an error and res->err saying why (refused by the node, timed out, ...). */
TB_WUR int tb_h3_get(const tb_h3_get_config *cfg, tb_h3_result *res);

#endif
