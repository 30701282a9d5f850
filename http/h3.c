/* HTTP/3 with nghttp3 over the endpoint's h3 connections (http/h3.h): the connection glue
 * shared by server and client, and the server's answers. The client is h3_client.c. */
#include "http/h3.h"
#include "http/h3_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tb_h3 {
    const tb_log *log;
    const tb_clock *clock;
    tb_http_route_fn route;
    void *arg;
    tb_quic_app_ops ops;
    size_t nconns;
    tb_h3_stats st;
};

/* One request on the server. */
typedef struct h3req {
    struct h3req *next;
    int64_t id;
    tb_http_head head;
    tb_http_reply reply;
    int answered, body_given;
    char status[12], length[24];
} h3req;

/* ---------------------------------------------------------------- glue (server and client) */

static tb_h3_conn *conn_of(void *ud)
{
    return ud;
}

static int64_t glue_recv(void *st, int64_t id, const uint8_t *data, size_t len, int fin)
{
    tb_h3_conn *hc = st;
    nghttp3_ssize n = nghttp3_conn_read_stream(hc->h3, id, data, len, fin);
    if (n < 0) {
        tb_log_info(hc->log, "h3: %s: stream %lld: %s", hc->peer, (long long)id,
                    nghttp3_strerror((int)n));
        tb_quic_close(hc->qc, nghttp3_err_infer_quic_app_error_code((int)n));
        return -1;
    }
    return n;
}

static int glue_acked(void *st, int64_t id, uint64_t n)
{
    tb_h3_conn *hc = st;
    return nghttp3_conn_add_ack_offset(hc->h3, id, n) == 0 ? 0 : -1;
}

static int glue_stream_close(void *st, int64_t id, uint64_t code, int has_code)
{
    tb_h3_conn *hc = st;
    int rv = nghttp3_conn_close_stream(hc->h3, id, has_code ? code : NGHTTP3_H3_NO_ERROR);
    return rv == 0 || rv == NGHTTP3_ERR_STREAM_NOT_FOUND ? 0 : -1;
}

static int glue_stream_reset(void *st, int64_t id)
{
    tb_h3_conn *hc = st;
    return nghttp3_conn_shutdown_stream_read(hc->h3, id) == 0 ? 0 : -1;
}

static int glue_unblock(void *st, int64_t id)
{
    tb_h3_conn *hc = st;
    return nghttp3_conn_unblock_stream(hc->h3, id) == 0 ? 0 : -1;
}

static int glue_pull(void *st, int64_t *id, int *fin, tb_quic_app_vec *v, size_t nv)
{
    tb_h3_conn *hc = st;
    nghttp3_vec vec[16];
    if (nv > 16)
        nv = 16;
    nghttp3_ssize n = nghttp3_conn_writev_stream(hc->h3, id, fin, vec, nv);
    if (n < 0)
        return -1;
    for (nghttp3_ssize i = 0; i < n; i++)
        v[i] = (tb_quic_app_vec){vec[i].base, vec[i].len};
    return (int)n;
}

static int glue_pushed(void *st, int64_t id, size_t n)
{
    tb_h3_conn *hc = st;
    return nghttp3_conn_add_write_offset(hc->h3, id, n) == 0 ? 0 : -1;
}

static void glue_blocked(void *st, int64_t id, int shut)
{
    tb_h3_conn *hc = st;
    if (shut)
        nghttp3_conn_shutdown_stream_write(hc->h3, id);
    else
        nghttp3_conn_block_stream(hc->h3, id);
}

void tb_h3_glue_ops(tb_quic_app_ops *ops)
{
    ops->recv = glue_recv;
    ops->acked = glue_acked;
    ops->stream_close = glue_stream_close;
    ops->stream_reset = glue_stream_reset;
    ops->unblock = glue_unblock;
    ops->pull = glue_pull;
    ops->pushed = glue_pushed;
    ops->blocked = glue_blocked;
}

static int cb_deferred_consume(nghttp3_conn *conn, int64_t id, size_t n, void *ud, void *sud)
{
    tb_quic_app_extend(conn_of(ud)->qc, id, n);
    return 0;
}

static int cb_stop_sending(nghttp3_conn *conn, int64_t id, uint64_t code, void *ud, void *sud)
{
    tb_quic_app_shutdown_stream(conn_of(ud)->qc, id, code);
    return 0;
}

void tb_h3_glue_callbacks(nghttp3_callbacks *cb)
{
    cb->deferred_consume = cb_deferred_consume;
    cb->stop_sending = cb_stop_sending;
    cb->reset_stream = cb_stop_sending;
}

void tb_h3_glue_settings(nghttp3_settings *s)
{
    nghttp3_settings_default(s);
    s->max_field_section_size = TB_H3_FIELD_SECTION;
    s->qpack_max_dtable_capacity = 0;
    s->qpack_encoder_max_dtable_capacity = 0;
    s->qpack_blocked_streams = 0;
}

/* The control stream and the two QPACK streams every h3 endpoint opens. */
int tb_h3_glue_bind(tb_h3_conn *hc)
{
    int64_t ctrl, enc, dec;
    if (tb_quic_app_open_uni(hc->qc, &ctrl) != TB_OK ||
        tb_quic_app_open_uni(hc->qc, &enc) != TB_OK || tb_quic_app_open_uni(hc->qc, &dec) != TB_OK)
        return TB_ERR_FULL;
    if (nghttp3_conn_bind_control_stream(hc->h3, ctrl) != 0 ||
        nghttp3_conn_bind_qpack_streams(hc->h3, enc, dec) != 0)
        return TB_ERR_STATE;
    return TB_OK;
}

/* ---------------------------------------------------------------- server */

typedef struct srv_conn {
    tb_h3_conn hc; /* first: the glue's view */
    tb_h3 *h;
    h3req *reqs;
    double tokens;
    uint64_t refill_ns;
} srv_conn;

static h3req *req_find(srv_conn *sc, int64_t id)
{
    for (h3req *r = sc->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void req_drop(srv_conn *sc, int64_t id)
{
    for (h3req **p = &sc->reqs; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            h3req *r = *p;
            *p = r->next;
            free(r->reply.body);
            free(r);
            return;
        }
    }
}

static int cb_begin_headers(nghttp3_conn *conn, int64_t id, void *ud, void *sud)
{
    srv_conn *sc = ud;
    if (req_find(sc, id))
        return 0; /* trailers or a second section: the first one decides */
    h3req *r = calloc(1, sizeof(*r));
    if (!r)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    r->id = id;
    tb_http_head_init(&r->head);
    r->next = sc->reqs;
    sc->reqs = r;
    return 0;
}

static int cb_recv_header(nghttp3_conn *conn, int64_t id, int32_t token, nghttp3_rcbuf *name,
                          nghttp3_rcbuf *value, uint8_t flags, void *ud, void *sud)
{
    h3req *r = req_find(ud, id);
    if (r && !r->answered) {
        nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);
        tb_http_head_field(&r->head, n.base, n.len, v.base, v.len);
    }
    return 0;
}

static int cb_recv_data(nghttp3_conn *conn, int64_t id, const uint8_t *data, size_t len, void *ud,
                        void *sud)
{
    srv_conn *sc = ud;
    h3req *r = req_find(sc, id);
    if (r)
        r->head.bad |= TB_HTTP_HEAD_BODY;
    tb_quic_app_extend(sc->hc.qc, id, len);
    return 0;
}

static nghttp3_ssize read_body(nghttp3_conn *conn, int64_t id, nghttp3_vec *vec, size_t veccnt,
                               uint32_t *pflags, void *ud, void *sud)
{
    h3req *r = req_find(ud, id);
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    if (!r || r->body_given || r->reply.len == 0 || veccnt == 0)
        return 0;
    r->body_given = 1;
    vec[0] = (nghttp3_vec){(uint8_t *)r->reply.body, r->reply.len};
    return 1;
}

/* One token per request, TB_H3_RATE a second, at most TB_H3_BURST saved. */
static int take_token(srv_conn *sc)
{
    uint64_t now = tb_clock_mono(sc->h->clock);
    sc->tokens += (double)(now - sc->refill_ns) * TB_H3_RATE / 1e9;
    if (sc->tokens > TB_H3_BURST)
        sc->tokens = TB_H3_BURST;
    sc->refill_ns = now;
    if (sc->tokens < 1)
        return 0;
    sc->tokens -= 1;
    return 1;
}

static nghttp3_nv nv(const char *name, const char *value)
{
    return (nghttp3_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                        strlen(value), NGHTTP3_NV_FLAG_NONE};
}

static int answer(srv_conn *sc, h3req *r)
{
    tb_h3 *h = sc->h;
    r->answered = 1;
    h->st.requests++;
    int rc;
    if (!take_token(sc)) {
        h->st.rate_limited++;
        char *body = strdup("too many requests\n");
        r->reply = (tb_http_reply){429, "text/plain; charset=utf-8", body, body ? strlen(body) : 0};
        rc = body ? TB_OK : TB_ERR_NOMEM;
    } else {
        rc = tb_http_answer(&r->head, h->route, h->arg, &r->reply);
    }
    if (rc != TB_OK)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    snprintf(r->status, sizeof(r->status), "%u", r->reply.status ? r->reply.status : 200);
    snprintf(r->length, sizeof(r->length), "%zu", r->reply.len);
    const nghttp3_nv hdrs[] = {
        nv(":status", r->status),
        nv("content-type", r->reply.content_type ? r->reply.content_type : "text/plain"),
        nv("content-length", r->length),
        nv("cache-control", "no-store"),
        nv("x-content-type-options", "nosniff"),
    };
    nghttp3_data_reader dr = {read_body};
    tb_log_debug(h->log, "h3: %s: %s %s -> %s", sc->hc.peer, r->head.method, r->head.target,
                 r->status);
    return nghttp3_conn_submit_response(sc->hc.h3, r->id, hdrs, sizeof(hdrs) / sizeof(hdrs[0]),
                                        r->reply.len ? &dr : NULL) == 0
               ? 0
               : NGHTTP3_ERR_CALLBACK_FAILURE;
}

static int cb_end_stream(nghttp3_conn *conn, int64_t id, void *ud, void *sud)
{
    srv_conn *sc = ud;
    h3req *r = req_find(sc, id);
    return r && !r->answered ? answer(sc, r) : 0;
}

static int cb_stream_close(nghttp3_conn *conn, int64_t id, uint64_t code, void *ud, void *sud)
{
    req_drop(ud, id);
    return 0;
}

static void *srv_open(void *arg, tb_quic_conn *qc, const char *peer)
{
    tb_h3 *h = arg;
    if (h->nconns >= TB_H3_MAX_CONNS) {
        h->st.conns_refused++;
        tb_log_info(h->log, "h3: %s: refused, %d h3 connections already", peer, TB_H3_MAX_CONNS);
        tb_quic_close(qc, NGHTTP3_H3_EXCESSIVE_LOAD);
        return NULL;
    }
    srv_conn *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->h = h;
    sc->hc.qc = qc;
    sc->hc.log = h->log;
    snprintf(sc->hc.peer, sizeof(sc->hc.peer), "operator %s", peer);
    sc->tokens = TB_H3_BURST;
    sc->refill_ns = tb_clock_mono(h->clock);
    nghttp3_callbacks cb = {0};
    tb_h3_glue_callbacks(&cb);
    cb.begin_headers = cb_begin_headers;
    cb.recv_header = cb_recv_header;
    cb.recv_data = cb_recv_data;
    cb.end_stream = cb_end_stream;
    cb.stream_close = cb_stream_close;
    nghttp3_settings s;
    tb_h3_glue_settings(&s);
    if (nghttp3_conn_server_new(&sc->hc.h3, &cb, &s, NULL, sc) != 0) {
        free(sc);
        return NULL;
    }
    if (tb_h3_glue_bind(&sc->hc) != TB_OK) {
        nghttp3_conn_del(sc->hc.h3);
        free(sc);
        return NULL;
    }
    h->nconns++;
    h->st.conns++;
    return sc;
}

static void srv_close(void *st)
{
    srv_conn *sc = st;
    while (sc->reqs)
        req_drop(sc, sc->reqs->id);
    nghttp3_conn_del(sc->hc.h3);
    sc->h->nconns--;
    free(sc);
}

int tb_h3_new(tb_h3 **out, const tb_log *log, const tb_clock *clock, tb_http_route_fn route,
              void *arg)
{
    tb_h3 *h = calloc(1, sizeof(*h));
    if (!h)
        return TB_ERR_NOMEM;
    h->log = log;
    h->clock = clock;
    h->route = route;
    h->arg = arg;
    tb_h3_glue_ops(&h->ops);
    h->ops.open = srv_open;
    h->ops.close = srv_close;
    h->ops.arg = h;
    *out = h;
    return TB_OK;
}

const tb_quic_app_ops *tb_h3_ops(tb_h3 *h)
{
    return &h->ops;
}

void tb_h3_free(tb_h3 *h)
{
    free(h);
}

void tb_h3_get_stats(const tb_h3 *h, tb_h3_stats *out)
{
    *out = h->st;
}
