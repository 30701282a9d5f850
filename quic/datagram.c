/* DATAGRAM frames (RFC 9221): sent at once, or queued while inside a callback of their
 * connection; received and handed up with the time their packet was read. */
#include "quic/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DGRAM_QUEUE 64
/* Short header (1 + 20-byte CID + 4-byte packet number), DATAGRAM frame type and length, AEAD
 * tag: an upper bound of what surrounds a datagram in its packet. */
#define DGRAM_OVERHEAD 48
#define DGRAM_ATTEMPTS 8

/* 0, or TB_ERR_AGAIN (congestion), TB_ERR_TOO_BIG (does not fit), TB_ERR_STATE. */
static int dgram_send_now(tb_quic_conn *c, const uint8_t *data, size_t len)
{
    uint8_t buf[PKT_MAX];
    /* Packets that were due first (a path challenge after migration, its padded response) may
     * go out before the one that takes the datagram. */
    for (int attempt = 0; attempt < DGRAM_ATTEMPTS; attempt++) {
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_pkt_info pi;
        int accepted = 0;
        ngtcp2_vec v = {.base = (uint8_t *)(uintptr_t)data, .len = len};
        ngtcp2_ssize n = ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, buf, sizeof(buf),
                                                     &accepted, NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0,
                                                     &v, 1, tb_quic_now(c->ep));
        if (n < 0)
            return n == NGTCP2_ERR_INVALID_ARGUMENT ? TB_ERR_TOO_BIG : TB_ERR_STATE;
        if (n > 0)
            tb_quic_path_send(c, &ps.path, buf, (size_t)n);
        if (accepted) {
            c->ep->stats.dgrams_sent++;
            return TB_OK;
        }
        if (n == 0)
            return TB_ERR_AGAIN;
    }
    return TB_ERR_TOO_BIG;
}

void tb_quic_dgram_flush(tb_quic_conn *c)
{
    while (c->dg_head) {
        dgmsg *d = c->dg_head;
        c->dg_head = d->next;
        if (!c->dg_head)
            c->dg_tail = NULL;
        c->ndg--;
        if (dgram_send_now(c, d->data, d->len) < 0)
            c->ep->stats.dgrams_dropped++;
        free(d);
    }
}

int tb_quic_cb_recv_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                             void *user_data)
{
    tb_quic_conn *c = user_data;
    tb_quic_endpoint *ep = c->ep;
    tb_quic_conn_confirm_early(c);
    ep->stats.dgrams_received++;
    if (c->state == TB_QUIC_CS_CONNECTED && ep->cb.on_datagram)
        ep->cb.on_datagram(ep->cb.arg, c, data, len, ep->rx_mono, ep->rx_real);
    else
        ep->stats.dgrams_dropped++;
    return 0;
}

int tb_quic_send_datagram(tb_quic_conn *c, const uint8_t *data, size_t len)
{
    if (!tb_quic_conn_usable(c))
        return TB_ERR_STATE;
    /* A datagram is never split: it must fit one packet with its headers and AEAD tag. */
    if (len + DGRAM_OVERHEAD > ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn))
        return TB_ERR_TOO_BIG;
    if (!(c->flags & TB_QUIC_CF_IN_NGTCP2)) {
        int rv = dgram_send_now(c, data, len);
        tb_quic_conn_write(c);
        return rv;
    }
    /* Inside a callback of this connection ngtcp2 cannot be re-entered: queue until it returns. */
    if (c->ndg >= MAX_DGRAM_QUEUE)
        return TB_ERR_FULL;
    dgmsg *d = malloc(sizeof(*d) + len);
    if (!d)
        return TB_ERR_NOMEM;
    d->next = NULL;
    d->len = len;
    memcpy(d->data, data, len);
    if (c->dg_tail)
        c->dg_tail->next = d;
    else
        c->dg_head = d;
    c->dg_tail = d;
    c->ndg++;
    return TB_OK;
}

int tb_quic_send_datagram_to(tb_quic_endpoint *ep, const char *peer_name, const uint8_t *data,
                             size_t len)
{
    tb_quic_conn *c = tb_quic_find_peer(ep, peer_name);
    return c ? tb_quic_send_datagram(c, data, len) : TB_ERR_NOTFOUND;
}

void tb_quic_dgram_free(tb_quic_conn *c)
{
    while (c->dg_head) {
        dgmsg *d = c->dg_head;
        c->dg_head = d->next;
        free(d);
    }
}
