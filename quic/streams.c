/* Message streams (adr/0003): one message per stream, the send queue, and the reassembly of
 * a received frame. */
#include "quic/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TX_QUEUE 1024

/* The next queued message that can take bytes now, opening its stream when needed. */
txmsg *tb_quic_stream_next(tb_quic_conn *c)
{
    for (txmsg *m = c->tx_head; m; m = m->next) {
        if (m->blocked || m->sent == m->len)
            continue;
        if (m->id < 0) {
            int64_t id;
            if (ngtcp2_conn_open_bidi_stream(c->conn, &id, NULL) != 0)
                return NULL; /* out of streams until the peer extends the limit */
            m->id = id;
        }
        return m;
    }
    return NULL;
}

static rxmsg *rx_get(tb_quic_conn *c, int64_t id)
{
    for (rxmsg *r = c->rx; r; r = r->next) {
        if (r->id == id)
            return r;
    }
    rxmsg *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->id = id;
    r->started = tb_quic_now(c->ep);
    tb_quic_frame_rx_init(&r->frame, c->ep->max_msg);
    r->next = c->rx;
    c->rx = r;
    return r;
}

/* Keeps c->rx_buffered equal to what the unfinished messages hold. */
static void rx_account(tb_quic_conn *c, rxmsg *r)
{
    size_t now = tb_quic_frame_rx_buffered(&r->frame);
    c->rx_buffered = c->rx_buffered - r->counted + now;
    r->counted = now;
    if (c->rx_buffered > c->ep->stats.buffered_peak)
        c->ep->stats.buffered_peak = c->rx_buffered;
}

static void rx_release(tb_quic_conn *c, rxmsg *r)
{
    tb_quic_frame_rx_clear(&r->frame);
    rx_account(c, r);
    free(r);
}

static void rx_free(tb_quic_conn *c, int64_t id)
{
    for (rxmsg **p = &c->rx; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            rxmsg *r = *p;
            *p = r->next;
            rx_release(c, r);
            return;
        }
    }
}

/* The return half of a message stream carries nothing: resetting it lets ngtcp2 close the
 * stream once the message half is over, which gives the peer its stream credit back. */
static void rx_done(tb_quic_conn *c, rxmsg *r)
{
    (void)ngtcp2_conn_shutdown_stream_write(c->conn, r->id, 0);
}

/* The frame was refused (err from tb_quic_frame_rx_feed): count, log, stop the stream. */
static void rx_reject(tb_quic_conn *c, rxmsg *r, int err)
{
    tb_quic_stats *st = &c->ep->stats;
    uint64_t code = TB_QUIC_STREAM_MALFORMED;
    if (err == TB_ERR_TOO_BIG) {
        st->msgs_dropped_oversized++;
        code = TB_QUIC_STREAM_TOO_BIG;
    } else {
        st->msgs_dropped_malformed++;
        if (err == TB_ERR_NOMEM)
            code = TB_QUIC_STREAM_TOO_BIG;
    }
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_limited(c->ep->log, &c->ep->rl, TB_LOG_WARN, TB_QUIC_RL_JUNK, tb_quic_now(c->ep),
                   "quic: dropped message from %s %s: %s", c->peer.name, tb_quic_conn_addr(c, a),
                   tb_quic_frame_rx_why(&r->frame));
    /* STOP_SENDING: the sender stops, the connection stays unless this keeps happening. A
     * stream already gone is fine. */
    (void)ngtcp2_conn_shutdown_stream_read(c->conn, r->id, code);
    rx_done(c, r);
    if (err != TB_ERR_NOMEM) /* our shortage is no fault of the peer */
        tb_quic_conn_penalize(c, tb_quic_frame_rx_why(&r->frame));
}

int tb_quic_cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                                const uint8_t *data, size_t len, void *user_data, void *sud)
{
    tb_quic_conn *c = user_data;
    tb_quic_conn_confirm_early(c);
    if (c->flags & TB_QUIC_CF_APP)
        return tb_quic_app_recv(c, flags, id, data, len);
    ngtcp2_conn_extend_max_stream_offset(conn, id, len);
    ngtcp2_conn_extend_max_offset(conn, len);
    rxmsg *r = rx_get(c, id);
    if (!r)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    uint8_t *msg;
    size_t msglen;
    int rv = tb_quic_frame_rx_feed(&r->frame, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0,
                                   &msg, &msglen);
    if (msg) {
        c->ep->stats.msgs_received++;
        if (c->state == TB_QUIC_CS_CONNECTED && c->ep->cb.on_stream_message)
            c->ep->cb.on_stream_message(c->ep->cb.arg, c, msg, msglen);
        free(msg);
        rx_done(c, r);
    }
    rx_account(c, r);
    if (rv < 0)
        rx_reject(c, r, rv);
    else if (c->rx_buffered > c->ep->max_buffered)
        tb_quic_conn_penalize_by(c, "unfinished messages over the connection's budget",
                                 c->ep->max_penalties);
    return 0;
}

void tb_quic_streams_sweep(tb_quic_conn *c, uint64_t now)
{
    int reset = 0;
    for (rxmsg *r = c->rx; r && !tb_quic_conn_gone(c); r = r->next) {
        if (!tb_quic_frame_rx_pending(&r->frame) || now - r->started < c->ep->stream_timeout_ns)
            continue;
        /* A peer that starts messages and never ends them holds our memory and its streams. */
        tb_quic_frame_rx_abort(&r->frame, "message unfinished at its deadline");
        rx_account(c, r);
        c->ep->stats.streams_stalled++;
        (void)ngtcp2_conn_shutdown_stream_read(c->conn, r->id, TB_QUIC_STREAM_TIMEOUT);
        rx_done(c, r);
        reset = 1;
        tb_quic_conn_penalize(c, "message unfinished at its deadline");
    }
    if (reset && !tb_quic_conn_gone(c))
        tb_quic_conn_write(c);
}

int tb_quic_cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error,
                            void *user_data, void *sud)
{
    tb_quic_conn *c = user_data;
    if (c->flags & TB_QUIC_CF_APP)
        return tb_quic_app_stream_close(c, flags, id, app_error);
    if (!ngtcp2_conn_is_local_stream(conn, id)) {
        rx_free(c, id);
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        return 0;
    }
    txmsg *prev = NULL;
    for (txmsg *m = c->tx_head; m; prev = m, m = m->next) {
        if (m->id != id)
            continue;
        if (prev)
            prev->next = m->next;
        else
            c->tx_head = m->next;
        if (c->tx_tail == m)
            c->tx_tail = prev;
        c->ntx--;
        free(m);
        break;
    }
    return 0;
}

/* Queues bytes for a new stream: hdr (may be empty) then data. */
int tb_quic_stream_queue(tb_quic_conn *c, const uint8_t *hdr, size_t hdrlen, const uint8_t *data,
                         size_t len, int fin)
{
    if (!tb_quic_conn_usable(c))
        return TB_ERR_STATE;
    if (c->ntx >= MAX_TX_QUEUE)
        return TB_ERR_FULL;
    txmsg *m = malloc(sizeof(*m) + hdrlen + len);
    if (!m)
        return TB_ERR_NOMEM;
    m->next = NULL;
    m->id = -1;
    m->blocked = 0;
    m->no_fin = !fin;
    m->len = hdrlen + len;
    m->sent = 0;
    if (hdrlen)
        memcpy(m->data, hdr, hdrlen);
    memcpy(m->data + hdrlen, data, len);
    if (c->tx_tail)
        c->tx_tail->next = m;
    else
        c->tx_head = m;
    c->tx_tail = m;
    c->ntx++;
    c->ep->stats.msgs_sent++;
    if (!(c->flags & TB_QUIC_CF_IN_NGTCP2))
        tb_quic_conn_write(c);
    return TB_OK;
}

int tb_quic_send_stream(tb_quic_conn *c, const uint8_t *msg, size_t len)
{
    uint8_t hdr[TB_QUIC_FRAME_HDR];
    int rv = tb_quic_frame_header(hdr, len, c ? c->ep->max_msg : SIZE_MAX);
    if (rv < 0)
        return rv;
    return tb_quic_stream_queue(c, hdr, sizeof(hdr), msg, len, 1);
}

int tb_quic_send_stream_to(tb_quic_endpoint *ep, const char *peer_name, const uint8_t *msg,
                           size_t len)
{
    tb_quic_conn *c = tb_quic_find_peer(ep, peer_name);
    return c ? tb_quic_send_stream(c, msg, len) : TB_ERR_NOTFOUND;
}

void tb_quic_streams_free(tb_quic_conn *c)
{
    while (c->tx_head) {
        txmsg *m = c->tx_head;
        c->tx_head = m->next;
        free(m);
    }
    while (c->rx) {
        rxmsg *r = c->rx;
        c->rx = r->next;
        rx_release(c, r);
    }
}
