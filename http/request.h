/* http/request: one request as the route function sees it, whichever edge received it (the
 * HTTP/1.1 edge of http/http.h, or HTTP/3 on the mesh port, http/h3.h), and the checks and
 * answers both edges give: GET only (405), no body (413), a target of at most TB_HTTP_URL_MAX
 * bytes starting with '/' (414), the route's reply, 404 for a path it does not own, 500 when
 * it fails. Pure: no I/O, no clock. */
#ifndef TB_HTTP_REQUEST_H
#define TB_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "http/http.h"

#define TB_HTTP_ARGS_MAX 16 /* query arguments kept; later ones are ignored */

struct tb_http_request {
    const char *path; /* without the query string */
    /* The HTTP/1.1 edge looks arguments up in libmicrohttpd (impl); HTTP/3 parses them here. */
    const char *(*lookup)(const tb_http_request *r, const char *key);
    void *impl;
    size_t nargs;
    const char *keys[TB_HTTP_ARGS_MAX], *vals[TB_HTTP_ARGS_MAX];
    char buf[2 * (TB_HTTP_URL_MAX + 1)]; /* the path, then the decoded arguments */
};

/* Splits target (len bytes, "/path?k=v&k2=v2", percent-encoded) into r: TB_ERR_INVAL when it
 * does not start with '/', holds a NUL or is longer than TB_HTTP_URL_MAX. */
TB_WUR int tb_http_request_parse(tb_http_request *r, const char *target, size_t len);

/* The header fields of an HTTP/3 request as they arrive (pseudo-headers and the rest). */
typedef struct tb_http_head {
    char method[8];
    char target[TB_HTTP_URL_MAX + 1];
    size_t target_len;
    unsigned bad;     /* TB_HTTP_HEAD_*: what the answer will refuse */
    unsigned nfields; /* counted, for the cap */
} tb_http_head;

enum {
    TB_HTTP_HEAD_METHOD = 1u << 0, /* not GET (or too long to be) */
    TB_HTTP_HEAD_LONG = 1u << 1,   /* :path over TB_HTTP_URL_MAX */
    TB_HTTP_HEAD_BODY = 1u << 2,   /* announces or carries a body */
    TB_HTTP_HEAD_MANY = 1u << 3,   /* more than TB_HTTP_HEAD_FIELDS fields */
};
#define TB_HTTP_HEAD_FIELDS 64

void tb_http_head_init(tb_http_head *h);
/* One field (bytes as received; names are lower case in HTTP/3). */
void tb_http_head_field(tb_http_head *h, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen);

/* The answer to a request: the refusal its head earned, else route's reply (out->body is
 * malloc'ed and handed over; TB_ERR_NOMEM only when not even a refusal could be built). */
TB_WUR int tb_http_answer(const tb_http_head *h, tb_http_route_fn route, void *arg,
                          tb_http_reply *out);

#endif
