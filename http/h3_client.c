/* tb_h3_get (http/h3.h): one blocking GET over HTTP/3 for the command line. It runs its own
 * libev loop and a client endpoint (quic/), so the node's loop is never involved. */
#include "http/h3.h"
#include "http/h3_internal.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_NS (10ULL * 1000000000ULL)

typedef struct client {
    tb_h3_conn hc;
    const tb_h3_get_config *cfg;
    tb_h3_result *res;
    struct ev_loop *loop;
    tb_quic_conn *qc;
    int64_t id;
    int done;
    size_t cap;
} client;

static int cb_recv_header(nghttp3_conn *conn, int64_t id, int32_t token, nghttp3_rcbuf *name,
                          nghttp3_rcbuf *value, uint8_t flags, void *ud, void *sud)
{
    client *cl = ud;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);
    if (id == cl->id && n.len == 7 && memcmp(n.base, ":status", 7) == 0 && v.len == 3) {
        unsigned s = 0;
        for (size_t i = 0; i < 3; i++)
            s = s * 10 + (unsigned)(v.base[i] >= '0' && v.base[i] <= '9' ? v.base[i] - '0' : 0);
        cl->res->status = s;
    }
    return 0;
}

static int cb_recv_data(nghttp3_conn *conn, int64_t id, const uint8_t *data, size_t len, void *ud,
                        void *sud)
{
    client *cl = ud;
    tb_h3_result *res = cl->res;
    tb_quic_app_extend(cl->qc, id, len);
    if (len > TB_H3_BODY_MAX - res->len) {
        snprintf(res->err, sizeof(res->err), "answer over %u bytes", TB_H3_BODY_MAX);
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    }
    if (res->len + len + 1 > cl->cap) {
        size_t cap = cl->cap ? cl->cap : 65536;
        while (cap < res->len + len + 1)
            cap *= 2;
        char *b = realloc(res->body, cap);
        if (!b)
            return NGHTTP3_ERR_CALLBACK_FAILURE;
        res->body = b;
        cl->cap = cap;
    }
    memcpy(res->body + res->len, data, len);
    res->len += len;
    res->body[res->len] = '\0';
    return 0;
}

static int cb_end_stream(nghttp3_conn *conn, int64_t id, void *ud, void *sud)
{
    client *cl = ud;
    if (id == cl->id) {
        cl->done = 1;
        tb_quic_close(cl->qc, NGHTTP3_H3_NO_ERROR);
    }
    return 0;
}

static nghttp3_nv nv(const char *name, const char *value)
{
    return (nghttp3_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                        strlen(value), NGHTTP3_NV_FLAG_NONE};
}

static void *cl_open(void *arg, tb_quic_conn *qc, const char *peer)
{
    client *cl = arg;
    cl->hc.qc = qc;
    snprintf(cl->hc.peer, sizeof(cl->hc.peer), "node %s", peer);
    nghttp3_callbacks cb = {0};
    tb_h3_glue_callbacks(&cb);
    cb.recv_header = cb_recv_header;
    cb.recv_data = cb_recv_data;
    cb.end_stream = cb_end_stream;
    nghttp3_settings s;
    tb_h3_glue_settings(&s);
    if (nghttp3_conn_client_new(&cl->hc.h3, &cb, &s, NULL, cl) != 0)
        return NULL;
    const nghttp3_nv hdrs[] = {nv(":method", "GET"), nv(":scheme", "https"), nv(":authority", peer),
                               nv(":path", cl->cfg->path), nv("user-agent", "tbnode")};
    if (tb_h3_glue_bind(&cl->hc) != TB_OK || tb_quic_app_open_bidi(qc, &cl->id) != TB_OK ||
        nghttp3_conn_submit_request(cl->hc.h3, cl->id, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), NULL,
                                    NULL) != 0) {
        nghttp3_conn_del(cl->hc.h3);
        cl->hc.h3 = NULL;
        return NULL;
    }
    return cl;
}

static void cl_close(void *st)
{
    client *cl = st;
    nghttp3_conn_del(cl->hc.h3);
    cl->hc.h3 = NULL;
}

static void on_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info)
{
    client *cl = arg;
    if (c != cl->qc)
        return;
    cl->qc = NULL;
    if (!cl->done && !cl->res->err[0]) {
        int refused =
            info->reason == TB_QUIC_CLOSED_REFUSED && info->refusal == TB_QUIC_REFUSE_BY_PEER;
        if (refused && (info->code & 0xff) == 120) /* no_application_protocol */
            snprintf(cl->res->err, sizeof(cl->res->err),
                     "the node does not answer HTTP/3 (TLS alert 120: no ALPN h3)");
        else if (refused)
            snprintf(cl->res->err, sizeof(cl->res->err),
                     "the node refused the handshake (TLS alert %llu): an operator certificate "
                     "of this mesh is needed",
                     (unsigned long long)(info->code & 0xff));
        else
            snprintf(cl->res->err, sizeof(cl->res->err), "connection closed: %s%s%s (code 0x%llx)",
                     tb_quic_close_reason_name(info->reason), info->refusal ? ": " : "",
                     info->refusal ? tb_quic_refusal_name(info->refusal) : "",
                     (unsigned long long)info->code);
    }
    ev_break(cl->loop, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    client *cl = w->data;
    snprintf(cl->res->err, sizeof(cl->res->err), "no answer in time");
    ev_break(loop, EVBREAK_ALL);
}

static int run(client *cl, tb_quic_endpoint *ep)
{
    tb_quic_app_ops ops;
    tb_h3_glue_ops(&ops);
    ops.open = cl_open;
    ops.close = cl_close;
    ops.arg = cl;
    tb_quic_endpoint_set_app(ep, &ops);
    int rc = tb_quic_dial_h3(ep, cl->cfg->addr, NULL, &cl->qc);
    if (rc != TB_OK) {
        snprintf(cl->res->err, sizeof(cl->res->err), "cannot dial %s: %s", cl->cfg->addr,
                 tb_strerror(rc));
        return rc;
    }
    ev_timer t;
    ev_timer_init(&t, on_timeout, 0., 0.);
    t.data = cl;
    uint64_t timeout = cl->cfg->timeout_ns ? cl->cfg->timeout_ns : DEFAULT_TIMEOUT_NS;
    ev_timer_set(&t, (double)timeout / 1e9, 0.);
    ev_timer_start(cl->loop, &t);
    ev_run(cl->loop, 0);
    ev_timer_stop(cl->loop, &t);
    /* Nothing may call into ops once run returns: the endpoint is destroyed right after. */
    return cl->done ? TB_OK : TB_ERR_STATE;
}

int tb_h3_get(const tb_h3_get_config *cfg, tb_h3_result *res)
{
    memset(res, 0, sizeof(*res));
    client cl = {.cfg = cfg, .res = res, .id = -1};
    cl.hc.log = cfg->log;
    cl.loop = ev_loop_new(EVFLAG_AUTO);
    if (!cl.loop)
        return TB_ERR_NOMEM;
    tb_quic_config qc = {.mode = TB_QUIC_MODE_CLIENT,
                         .cert_file = cfg->cert,
                         .key_file = cfg->key,
                         .ca_file = cfg->ca,
                         .node_name = "operator",
                         .keep_alive_ns = UINT64_MAX};
    tb_quic_callbacks cb = {.on_closed = on_closed, .arg = &cl};
    tb_quic_endpoint *ep = NULL;
    int rc = tb_quic_endpoint_create(&ep, cl.loop, cfg->log, tb_clock_system(), &qc, &cb);
    if (rc != TB_OK)
        snprintf(res->err, sizeof(res->err), "cannot set up QUIC (see the lines above)");
    else
        rc = run(&cl, ep);
    tb_quic_endpoint_destroy(ep);
    ev_loop_destroy(cl.loop);
    if (rc == TB_OK && !res->status) {
        snprintf(res->err, sizeof(res->err), "answer without a status");
        rc = TB_ERR_MALFORMED;
    }
    if (rc != TB_OK) {
        free(res->body);
        res->body = NULL;
        res->len = 0;
    }
    return rc;
}
