/* h3 connections (quic/app.h): their transport parameters, the ngtcp2 callbacks that only they
 * use, and their write loop, which takes what to send from the application layer. */
#include "quic/app.h"
#include "quic/internal.h"

#include <string.h>

#define APP_UNI_WINDOW 65536
#define APP_BIDI_WINDOW (1u << 20)
#define APP_MAX_DATA (4u << 20)
#define APP_VECS 16

void tb_quic_endpoint_set_app(tb_quic_endpoint *ep, const tb_quic_app_ops *ops)
{
    ep->app_ops = ops;
}

/* h3 needs the peer's control and QPACK streams (unidirectional, which the mesh never opens)
 * and answers on the client's own bidirectional streams; it has no use for datagrams. */
void tb_quic_app_params(ngtcp2_transport_params *p)
{
    p->initial_max_streams_uni = TB_QUIC_APP_UNI_STREAMS;
    p->initial_max_stream_data_uni = APP_UNI_WINDOW;
    p->initial_max_stream_data_bidi_local = APP_BIDI_WINDOW;
    p->initial_max_data = APP_MAX_DATA;
    p->max_datagram_frame_size = 0;
}

int tb_quic_tls_chose_h3(ngtcp2_crypto_conn_ref *ref)
{
    tb_quic_conn *c = ref->user_data;
    if (!c->ep->app_ops)
        return -1;
    ngtcp2_transport_params p = *ngtcp2_conn_get_local_transport_params(c->conn);
    tb_quic_app_params(&p);
    if (ngtcp2_conn_set_local_transport_params(c->conn, &p) != 0)
        return -1;
    c->flags |= TB_QUIC_CF_APP;
    return 0;
}

void tb_quic_app_start(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    char a[TB_QUIC_ADDRSTR_MAX];
    c->state = TB_QUIC_CS_CONNECTED;
    /* An operator's connection lives while the operator uses it: the node does not keep it. */
    if (c->flags & TB_QUIC_CF_SERVER)
        ngtcp2_conn_set_keep_alive_timeout(c->conn, 0);
    tb_log_info(ep->log, "quic: h3 connection %s %s %s",
                c->flags & TB_QUIC_CF_SERVER ? "from" : "to", c->peer.name,
                tb_quic_conn_addr(c, a));
    c->app = ep->app_ops ? ep->app_ops->open(ep->app_ops->arg, c, c->peer.name) : NULL;
    /* open may have closed it already, with a code of its protocol. */
    if (!c->app && !(c->flags & TB_QUIC_CF_CLOSE_REQUESTED) && !tb_quic_conn_gone(c)) {
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE, TB_QUIC_APP_SHUTDOWN,
                              1);
        tb_quic_conn_close_app(c, TB_QUIC_APP_SHUTDOWN);
    }
}

void tb_quic_app_free(tb_quic_conn *c)
{
    if (c->app && c->ep->app_ops)
        c->ep->app_ops->close(c->app);
    c->app = NULL;
}

int tb_quic_app_recv(tb_quic_conn *c, uint32_t flags, int64_t id, const uint8_t *data, size_t len)
{
    if (!c->app)
        return 0; /* refused by the application: closing */
    int64_t n =
        c->ep->app_ops->recv(c->app, id, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
    if (n < 0)
        return 0; /* the hook asked for the close, which happens once out of ngtcp2 */
    tb_quic_app_extend(c, id, (size_t)n);
    return 0;
}

int tb_quic_app_stream_close(tb_quic_conn *c, uint32_t flags, int64_t id, uint64_t code)
{
    int has_code = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0;
    if (c->app && c->ep->app_ops->stream_close(c->app, id, code, has_code) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (!ngtcp2_conn_is_local_stream(c->conn, id) && ngtcp2_is_bidi_stream(id))
        ngtcp2_conn_extend_max_streams_bidi(c->conn, 1);
    return 0;
}

static tb_quic_conn *app_conn(void *user_data)
{
    tb_quic_conn *c = user_data;
    return (c->flags & TB_QUIC_CF_APP) && c->app ? c : NULL;
}

static int cb_acked(ngtcp2_conn *conn, int64_t id, uint64_t offset, uint64_t datalen,
                    void *user_data, void *sud)
{
    tb_quic_conn *c = app_conn(user_data);
    if (c && c->ep->app_ops->acked(c->app, id, datalen) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t id, uint64_t max_data,
                                     void *user_data, void *sud)
{
    tb_quic_conn *c = app_conn(user_data);
    if (c && c->ep->app_ops->unblock(c->app, id) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int reset(void *user_data, int64_t id)
{
    tb_quic_conn *c = app_conn(user_data);
    if (c && c->ep->app_ops->stream_reset(c->app, id) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t code,
                           void *user_data, void *sud)
{
    return reset(user_data, id);
}

static int cb_stop_sending(ngtcp2_conn *conn, int64_t id, uint64_t code, void *user_data, void *sud)
{
    return reset(user_data, id);
}

void tb_quic_app_callbacks(ngtcp2_callbacks *cb)
{
    cb->acked_stream_data_offset = cb_acked;
    cb->extend_max_stream_data = cb_extend_max_stream_data;
    cb->stream_reset = cb_stream_reset;
    cb->stream_stop_sending = cb_stop_sending;
}

/* One packet's worth: stream data from the application if it has any, else whatever QUIC has
 * due (ACKs, handshake, flow control). 1 when a packet went out, 0 when nothing is left, <0 on
 * a fatal error (the connection is closed). */
static int app_write_one(tb_quic_conn *c, uint64_t now)
{
    const tb_quic_app_ops *ops = c->ep->app_ops;
    uint8_t buf[PKT_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    for (int i = 0; i < 64; i++) {
        int64_t id = -1;
        int fin = 0;
        tb_quic_app_vec v[APP_VECS];
        int nv = c->app ? ops->pull(c->app, &id, &fin, v, APP_VECS) : 0;
        if (nv < 0) {
            tb_quic_conn_close_liberr(c, NGTCP2_ERR_CALLBACK_FAILURE);
            return -1;
        }
        ngtcp2_vec nvec[APP_VECS];
        for (int k = 0; k < nv; k++)
            nvec[k] = (ngtcp2_vec){(uint8_t *)(uintptr_t)v[k].base, v[k].len};
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize datalen = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, sizeof(buf),
                                                   &datalen, flags, id, nvec, (size_t)nv, now);
        if (n < 0) {
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR) {
                ops->blocked(c->app, id, n == NGTCP2_ERR_STREAM_SHUT_WR);
                continue;
            }
            if (n == NGTCP2_ERR_WRITE_MORE) {
                if (ops->pushed(c->app, id, (size_t)datalen) < 0) {
                    tb_quic_conn_close_liberr(c, NGTCP2_ERR_CALLBACK_FAILURE);
                    return -1;
                }
                continue;
            }
            tb_quic_conn_close_liberr(c, (int)n);
            return -1;
        }
        if (datalen >= 0 && id >= 0 && ops->pushed(c->app, id, (size_t)datalen) < 0) {
            tb_quic_conn_close_liberr(c, NGTCP2_ERR_CALLBACK_FAILURE);
            return -1;
        }
        if (n == 0)
            return 0;
        tb_quic_path_send(c, &ps.path, buf, (size_t)n);
        return 1;
    }
    return 0;
}

int tb_quic_app_write(tb_quic_conn *c)
{
    uint64_t now = tb_quic_now(c->ep);
    for (int i = 0; i < 1024; i++) {
        int rv = app_write_one(c, now);
        if (rv < 0)
            return TB_ERR_STATE;
        if (rv == 0)
            break;
    }
    return TB_OK;
}

int tb_quic_app_open_uni(tb_quic_conn *c, int64_t *id)
{
    return ngtcp2_conn_open_uni_stream(c->conn, id, NULL) == 0 ? TB_OK : TB_ERR_FULL;
}

int tb_quic_app_open_bidi(tb_quic_conn *c, int64_t *id)
{
    return ngtcp2_conn_open_bidi_stream(c->conn, id, NULL) == 0 ? TB_OK : TB_ERR_FULL;
}

void tb_quic_app_extend(tb_quic_conn *c, int64_t id, size_t n)
{
    if (n == 0 || tb_quic_conn_gone(c))
        return;
    ngtcp2_conn_extend_max_stream_offset(c->conn, id, n);
    ngtcp2_conn_extend_max_offset(c->conn, n);
}

void tb_quic_app_shutdown_stream(tb_quic_conn *c, int64_t id, uint64_t code)
{
    if (!tb_quic_conn_gone(c))
        (void)ngtcp2_conn_shutdown_stream(c->conn, id, code);
}

void tb_quic_app_want_write(tb_quic_conn *c)
{
    tb_quic_conn_defer_write(c);
}
