/* Packets answered without a connection: Retry (and checking its token), stateless reset,
 * version negotiation, INVALID_TOKEN; and accepting a new connection. */
#include "quic/internal.h"

#include <string.h>

#include <netinet/in.h>

#include <sodium.h>

#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)

/* ---------------------------------------------------------------- accepting */

int tb_quic_reset_token(const tb_quic_endpoint *ep, const ngtcp2_cid *cid, uint8_t *token)
{
    return ngtcp2_crypto_generate_stateless_reset_token(token, ep->secret, SECRET_LEN, cid) == 0
               ? TB_OK
               : TB_ERR_CRYPTO;
}

static void send_retry(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const struct sockaddr *src,
                       socklen_t srclen)
{
    ngtcp2_cid scid;
    scid.datalen = SCID_LEN;
    if (tb_quic_tls_random(scid.data, SCID_LEN) != TB_OK)
        return;
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    ngtcp2_ssize tlen = ngtcp2_crypto_generate_retry_token(
        token, ep->secret, SECRET_LEN, hd->version, (const ngtcp2_sockaddr *)src, srclen, &scid,
        &hd->dcid, tb_quic_now(ep));
    if (tlen < 0)
        return;
    uint8_t buf[PKT_MAX];
    ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid, &scid,
                                               &hd->dcid, token, (size_t)tlen);
    if (n < 0)
        return;
    ep->stats.retries_sent++;
    tb_quic_send_to(ep, src, srclen, buf, (size_t)n);
}

static void send_stateless_reset(tb_quic_endpoint *ep, const uint8_t *dcid, size_t dcidlen,
                                 size_t pktlen, const struct sockaddr *src, socklen_t srclen)
{
    /* Smaller than the packet that triggered it, so two endpoints cannot loop on resets. */
    if (dcidlen != SCID_LEN ||
        pktlen < 1 + NGTCP2_STATELESS_RESET_TOKENLEN + NGTCP2_MIN_STATELESS_RESET_RANDLEN + 2)
        return;
    size_t randlen = pktlen - 2 - NGTCP2_STATELESS_RESET_TOKENLEN;
    if (randlen > 40)
        randlen = 40;
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[40], buf[64];
    if (tb_quic_reset_token(ep, &cid, token) != 0 || tb_quic_tls_random(rnd, randlen) != TB_OK)
        return;
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, randlen);
    if (n <= 0)
        return;
    ep->stats.stateless_resets_sent++;
    tb_quic_send_to(ep, src, srclen, buf, (size_t)n);
}

/* Tells a client of another QUIC version that we speak v1 only. Only for a datagram of at least
 * 1200 bytes (RFC 9000 6.1), so the answer is never an amplification. */
void tb_quic_send_version_negotiation(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
                                      size_t pktlen, const struct sockaddr *src, socklen_t srclen)
{
    if (!(ep->mode & TB_QUIC_MODE_SERVER) || pktlen < NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
        ep->stats.packets_dropped++;
        return;
    }
    static const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t buf[PKT_MAX], rnd;
    if (tb_quic_tls_random(&rnd, 1) != TB_OK)
        return;
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
        buf, sizeof(buf), rnd, vc->scid, vc->scidlen, vc->dcid, vc->dcidlen, versions, 1);
    if (n > 0)
        tb_quic_send_to(ep, src, srclen, buf, (size_t)n);
}

static void send_close(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, uint64_t code,
                       const struct sockaddr *src, socklen_t srclen)
{
    uint8_t buf[PKT_MAX];
    ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version, &hd->scid,
                                                          &hd->dcid, code, NULL, 0);
    if (n > 0)
        tb_quic_send_to(ep, src, srclen, buf, (size_t)n);
}

/* A client whose Retry token does not verify (forged, expired, another address) is told so. */
static void send_invalid_token(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd,
                               const struct sockaddr *src, socklen_t srclen)
{
    send_close(ep, hd, NGTCP2_INVALID_TOKEN, src, srclen);
}

/* Not admitted now: told at once (a real peer retries later), and nothing is kept. */
static void send_refused(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const struct sockaddr *src,
                         socklen_t srclen)
{
    send_close(ep, hd, NGTCP2_CONNECTION_REFUSED, src, srclen);
}

static int server_conn_new(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid,
                           const struct sockaddr *src, socklen_t srclen, tb_quic_conn **out)
{
    tb_quic_conn *c = tb_quic_conn_alloc(ep, src, srclen, 1);
    if (!c)
        return TB_ERR_NOMEM;
    ngtcp2_cid scid;
    if (tb_quic_conn_new_cid(c, &scid, SCID_LEN, NULL) != 0) {
        tb_quic_conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    tb_quic_conn_setup st;
    tb_quic_conn_setup_init(&st, c);
    if (odcid) {
        st.p.original_dcid = *odcid;
        st.p.retry_scid = hd->dcid;
        st.p.retry_scid_present = 1;
        st.s.token = hd->token;
    } else {
        st.p.original_dcid = hd->dcid;
    }
    st.p.stateless_reset_token_present = 1;
    int rv = tb_quic_reset_token(ep, &scid, st.p.stateless_reset_token);
    if (rv == 0)
        rv = ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &st.path, hd->version, &st.cb,
                                    &st.s, &st.p, tb_quic_mem(), c);
    /* ngtcp2 keeps its own copy; this one would linger on the stack. */
    sodium_memzero(st.p.stateless_reset_token, sizeof(st.p.stateless_reset_token));
    if (rv != 0 || tb_quic_conn_attach_tls(c, NULL) < 0) {
        tb_quic_conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    c->odcid = hd->dcid;
    c->flags |= TB_QUIC_CF_HAS_ODCID;
    tb_quic_conn_link(ep, c);
    ep->stats.accepted++;
    *out = c;
    return TB_OK;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b, socklen_t blen)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return blen >= sizeof(*y) && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return blen >= sizeof(*y) && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

void tb_quic_on_unknown_packet(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
                               const uint8_t *pkt, size_t len, const struct sockaddr *src,
                               socklen_t srclen)
{
    if (!(pkt[0] & 0x80)) {
        /* A stateless reset carries no CID of ours: let each connection with that peer check
         * its token before answering with a reset of our own. */
        for (tb_quic_conn *c = ep->conns; c; c = c->next) {
            if (!tb_quic_conn_gone(c) && same_addr(&c->peer.addr, src, srclen)) {
                tb_quic_conn_on_packet(c, pkt, len, src, srclen);
                if (c->flags & TB_QUIC_CF_RESET_RECEIVED)
                    return;
            }
        }
        send_stateless_reset(ep, vc->dcid, vc->dcidlen, len, src, srclen);
        return;
    }
    if (!(ep->mode & TB_QUIC_MODE_SERVER) || ep->shutting_down)
        return;
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, pkt, len) != 0)
        return;
    ngtcp2_cid odcid;
    const ngtcp2_cid *podcid = NULL;
    int has_retry_token = hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
    if (ep->retry && !has_retry_token) {
        send_retry(ep, &hd, src, srclen);
        return;
    }
    if (has_retry_token) {
        if (ngtcp2_crypto_verify_retry_token(&odcid, hd.token.base, hd.token.len, ep->secret,
                                             SECRET_LEN, hd.version, (const ngtcp2_sockaddr *)src,
                                             srclen, &hd.dcid, RETRY_TOKEN_TIMEOUT,
                                             tb_quic_now(ep)) != 0) {
            ep->stats.retry_tokens_bad++;
            send_invalid_token(ep, &hd, src, srclen);
            return;
        }
        podcid = &odcid;
    } else {
        hd.token.base = NULL;
        hd.token.len = 0;
    }
    /* Judged after the Retry, when the address is known to be the sender's: a spoofed
     * flood costs one stateless Retry each and never fills another address's share. */
    if (tb_quic_admit_check(ep, src, srclen) != TB_QUIC_ADMIT_OK) {
        /* Smaller than the Initial it answers: no amplification even unvalidated. */
        send_refused(ep, &hd, src, srclen);
        return;
    }
    tb_quic_conn *c;
    if (server_conn_new(ep, &hd, podcid, src, srclen, &c) != TB_OK)
        return;
    tb_quic_admit_count(ep);
    tb_quic_conn_on_packet(c, pkt, len, src, srclen);
}
