/* A connection's lifetime (handshake judgement, close, drain, reap), the ngtcp2 callbacks that
 * are not about streams or datagrams, and the write loop. */
#include "quic/internal.h"
#include "common/addr.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DATAGRAM_FRAME 65535

uint64_t tb_quic_now(const tb_quic_endpoint *ep)
{
    return tb_clock_mono(ep->clock);
}

ngtcp2_path tb_quic_path(tb_quic_endpoint *ep, const struct sockaddr *remote, socklen_t len)
{
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)&ep->local, .addrlen = ep->locallen},
        .remote = {.addr = (ngtcp2_sockaddr *)(uintptr_t)remote, .addrlen = len},
    };
    return path;
}

const char *tb_quic_conn_addr(const tb_quic_conn *c, char *buf)
{
    tb_addr_format_sockaddr((const struct sockaddr *)&c->peer.addr, buf, TB_QUIC_ADDRSTR_MAX);
    return buf;
}

void tb_quic_path_send(tb_quic_conn *c, const ngtcp2_path *path, const uint8_t *pkt, size_t len)
{
    if (path->remote.addrlen)
        tb_quic_send_to(c->ep, path->remote.addr, path->remote.addrlen, pkt, len);
    else
        tb_quic_send_to(c->ep, (const struct sockaddr *)&c->peer.addr, c->peer.addrlen, pkt, len);
}

/* ---------------------------------------------------------------- lifetime */

void tb_quic_schedule_reap(tb_quic_endpoint *ep)
{
    if (!ev_is_active(&ep->reap)) {
        ev_timer_set(&ep->reap, 0., 0.);
        ev_timer_start(ep->loop, &ep->reap);
    }
}

void tb_quic_conn_set_info(tb_quic_conn *c, tb_quic_close_reason reason, tb_quic_refusal refusal,
                           uint64_t code, int app)
{
    if (c->flags & TB_QUIC_CF_INFO_SET)
        return;
    c->flags |= TB_QUIC_CF_INFO_SET;
    c->info.reason = reason;
    c->info.refusal = refusal;
    c->info.code = code;
    c->info.app = app;
}

static void report_closed(tb_quic_conn *c)
{
    if (c->flags & TB_QUIC_CF_CLOSED_REPORTED)
        return;
    c->flags |= TB_QUIC_CF_CLOSED_REPORTED;
    tb_quic_endpoint *ep = c->ep;
    ep->stats.closed++;
    if (c->info.was_connected)
        tb_quic_admit_known(c);
    char a[TB_QUIC_ADDRSTR_MAX];
    /* Anyone can make accepted handshakes end: those lines are rate limited. */
    unsigned key =
        (c->flags & TB_QUIC_CF_SERVER) && !c->info.was_connected ? TB_QUIC_RL_HALF_OPEN : 0;
    if (key == 0 || tb_log_ratelimit_allow(&ep->rl, ep->log, TB_LOG_INFO, key, tb_quic_now(ep)))
        tb_log_info(ep->log, "quic: connection %s %s closed: %s%s%s (%s code 0x%llx)",
                    c->peer.name[0] ? c->peer.name : "(unidentified)", tb_quic_conn_addr(c, a),
                    tb_quic_close_reason_name(c->info.reason), c->info.refusal ? ": " : "",
                    c->info.refusal ? tb_quic_refusal_name(c->info.refusal) : "",
                    c->info.app ? "application" : "transport", (unsigned long long)c->info.code);
    /* Told from the loop, never from inside a call the caller made into this API. */
    c->flags |= TB_QUIC_CF_REPORT_PENDING;
    tb_quic_schedule_reap(ep);
}

/* Forgets the connection without sending anything (idle, timeout, fatal). */
static void conn_drop(tb_quic_conn *c)
{
    if (c->state == TB_QUIC_CS_DEAD)
        return;
    c->state = TB_QUIC_CS_DEAD;
    ev_timer_stop(c->ep->loop, &c->timer);
    tb_quic_schedule_reap(c->ep);
    report_closed(c);
}

void tb_quic_conn_evict(tb_quic_conn *c)
{
    c->ep->stats.half_open_evicted++;
    tb_quic_conn_set_info(c, TB_QUIC_CLOSED_CONNECT_TIMEOUT, TB_QUIC_REFUSE_NONE, 0, 0);
    conn_drop(c);
}

/* Keeps the connection for three PTOs so late packets meet our CONNECTION_CLOSE (closing) or
 * are absorbed (draining), then frees it. */
static void conn_linger(tb_quic_conn *c)
{
    c->state = TB_QUIC_CS_CLOSING;
    double pto = (double)ngtcp2_conn_get_pto(c->conn) / NGTCP2_SECONDS;
    ev_timer_stop(c->ep->loop, &c->timer);
    ev_timer_set(&c->timer, 3 * pto, 0.);
    ev_timer_start(c->ep->loop, &c->timer);
    report_closed(c);
}

static void conn_send_close(tb_quic_conn *c, const ngtcp2_connection_close_error *ccerr)
{
    if (tb_quic_conn_gone(c))
        return;
    if (c->flags & TB_QUIC_CF_WRITE_PENDING)
        tb_quic_conn_write(c); /* what was due before the close goes out before it */
    if (ngtcp2_conn_is_in_draining_period(c->conn)) {
        conn_linger(c);
        return;
    }
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
        c->conn, &ps.path, &pi, c->close_pkt, sizeof(c->close_pkt), ccerr, tb_quic_now(c->ep));
    if (n <= 0) {
        conn_drop(c);
        return;
    }
    c->close_len = (size_t)n;
    tb_quic_path_send(c, &ps.path, c->close_pkt, c->close_len);
    conn_linger(c);
}

void tb_quic_conn_close_app(tb_quic_conn *c, uint64_t code)
{
    if (c->flags & TB_QUIC_CF_IN_NGTCP2) {
        c->flags |= TB_QUIC_CF_CLOSE_REQUESTED;
        c->close_code = code;
        return;
    }
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
    conn_send_close(c, &ccerr);
}

void tb_quic_conn_close_liberr(tb_quic_conn *c, int liberr)
{
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_warn(c->ep->log, "quic: connection %s failed: %s", tb_quic_conn_addr(c, a),
                ngtcp2_strerror(liberr));
    tb_quic_conn_set_info(c, TB_QUIC_CLOSED_ERROR, TB_QUIC_REFUSE_NONE, 0, 0);
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
    conn_send_close(c, &ccerr);
}

void tb_quic_conn_free(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    ev_timer_stop(ep->loop, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        ep->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ep->nconns--;
    if (c->conn)
        ngtcp2_conn_del(c->conn);
    tb_quic_tls_free(c->tls);
    tb_quic_streams_free(c);
    tb_quic_dgram_free(c);
    tb_quic_app_free(c);
    free(c);
}

void tb_quic_on_reap(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    /* A callback may close more connections: those are reported on the next round. */
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->flags & TB_QUIC_CF_REPORT_PENDING) {
            c->flags &= ~TB_QUIC_CF_REPORT_PENDING;
            if (ep->cb.on_closed)
                ep->cb.on_closed(ep->cb.arg, c, &c->peer, &c->info);
        }
    }
    for (tb_quic_conn *c = ep->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == TB_QUIC_CS_DEAD && !(c->flags & TB_QUIC_CF_REPORT_PENDING))
            tb_quic_conn_free(c);
    }
    if (ep->shutdown_pending) {
        ep->shutdown_pending = 0;
        if (ep->cb.on_shutdown)
            ep->cb.on_shutdown(ep->cb.arg);
    }
}

/* ---------------------------------------------------------------- writing */

static void conn_update_timer(tb_quic_conn *c)
{
    if (tb_quic_conn_gone(c))
        return;
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn);
    ev_timer_stop(c->ep->loop, &c->timer);
    if (expiry == UINT64_MAX)
        return;
    uint64_t now = tb_quic_now(c->ep);
    double delay = expiry > now ? (double)(expiry - now) / NGTCP2_SECONDS : 0.;
    ev_timer_set(&c->timer, delay, 0.);
    ev_timer_start(c->ep->loop, &c->timer);
}

void tb_quic_conn_write(tb_quic_conn *c)
{
    c->flags &= ~TB_QUIC_CF_WRITE_PENDING;
    if (tb_quic_conn_gone(c))
        return;
    if (c->flags & TB_QUIC_CF_APP) {
        if (tb_quic_app_write(c) == TB_OK)
            conn_update_timer(c);
        return;
    }
    tb_quic_dgram_flush(c);
    uint8_t buf[PKT_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    uint64_t now = tb_quic_now(c->ep);
    /* No pacing (ngtcp2_conn_update_pkt_tx_time is never called, so ngtcp2 never holds a
     * packet back): mesh traffic is small, and a time probe held back by a pacer would carry
     * that wait into its RTT and offset. Congestion control still bounds what goes out. */
    for (int i = 0; i < 1024; i++) {
        txmsg *m = tb_quic_stream_next(c);
        ngtcp2_vec v = {0};
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
        if (m) {
            v.base = m->data + m->sent;
            v.len = m->len - m->sent;
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (m->no_fin ? 0 : NGTCP2_WRITE_STREAM_FLAG_FIN);
        }
        ngtcp2_pkt_info pi;
        ngtcp2_ssize datalen = -1;
        ngtcp2_ssize n =
            ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, sizeof(buf), &datalen, flags,
                                      m ? m->id : -1, m ? &v : NULL, m ? 1 : 0, now);
        /* Both stream errors and WRITE_MORE come only with stream data (m set). */
        if (m && n == NGTCP2_ERR_WRITE_MORE) {
            m->sent += (size_t)datalen;
            continue;
        }
        if (m && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
                  n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
            m->blocked = 1;
            continue;
        }
        if (n < 0) {
            tb_quic_conn_close_liberr(c, (int)n);
            return;
        }
        if (m && datalen > 0)
            m->sent += (size_t)datalen;
        if (n == 0)
            break;
        tb_quic_path_send(c, &ps.path, buf, (size_t)n);
    }
    for (txmsg *m = c->tx_head; m; m = m->next)
        m->blocked = 0;
    conn_update_timer(c);
}

void tb_quic_conn_defer_write(tb_quic_conn *c)
{
    c->flags |= TB_QUIC_CF_WRITE_PENDING;
    if (!ev_is_active(&c->ep->flush))
        ev_prepare_start(c->ep->loop, &c->ep->flush);
}

void tb_quic_on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    ev_prepare_stop(loop, w);
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->flags & TB_QUIC_CF_WRITE_PENDING)
            tb_quic_conn_write(c);
    }
}

/* ---------------------------------------------------------------- connection events */

/* 0: keep a (close b), 1: keep b. */
static int keep_of(const tb_quic_endpoint *ep, const tb_quic_conn *a, const tb_quic_conn *b)
{
    /* A connection not heard from for a while is a leftover (the peer was stopped, or lost its
     * state): keep the live one, whoever dialled it (issue 10, SIGSTOP/SIGCONT). */
    if (a->heard > b->heard + TB_QUIC_STALE_NS)
        return 0;
    if (b->heard > a->heard + TB_QUIC_STALE_NS)
        return 1;
    /* Both alive (dials crossed): both nodes must close the same one, so a rule both sides
     * compute alike decides: keep the one dialled by the node whose name sorts lower. */
    int want_dialled = strcmp(ep->name, a->peer.name) < 0;
    if (a->peer.dialled == b->peer.dialled)
        return 1; /* same direction twice: keep the older, b */
    return a->peer.dialled == want_dialled ? 0 : 1;
}

/* Counts, logs and reports a handshake this endpoint refused. */
static void note_refusal(tb_quic_conn *c, tb_quic_refusal r, const char *detail)
{
    tb_quic_endpoint *ep = c->ep;
    char a[TB_QUIC_ADDRSTR_MAX];
    ep->stats.refused[r]++;
    tb_log_limited(ep->log, &ep->rl, TB_LOG_WARN, TB_QUIC_RL_REFUSED, tb_quic_now(ep),
                   "quic: refused peer %s: %s (%s)", tb_quic_conn_addr(c, a),
                   tb_quic_refusal_name(r), detail);
    if (ep->cb.on_refused)
        ep->cb.on_refused(ep->cb.arg, (const struct sockaddr *)&c->peer.addr, c->peer.addrlen, r,
                          detail);
}

static void conn_on_confirmed(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    char a[TB_QUIC_ADDRSTR_MAX];
    if (tb_quic_tls_peer_identity(c->tls, &c->peer) != TB_OK) {
        note_refusal(c, TB_QUIC_REFUSE_IDENTITY, "handshake ended without a peer identity");
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_REFUSED, TB_QUIC_REFUSE_IDENTITY,
                              TB_QUIC_APP_IDENTITY, 1);
        tb_quic_conn_close_app(c, TB_QUIC_APP_IDENTITY);
        return;
    }
    if (tb_quic_banned_fingerprint(ep, c->peer.fingerprint)) {
        note_refusal(c, TB_QUIC_REFUSE_BANNED, "certificate banned for misbehaving");
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_REFUSED, TB_QUIC_REFUSE_BANNED,
                              TB_QUIC_APP_MISBEHAVING, 1);
        tb_quic_conn_close_app(c, TB_QUIC_APP_MISBEHAVING);
        return;
    }
    if (c->flags & TB_QUIC_CF_APP) {
        tb_quic_app_start(c);
        return;
    }
    tb_quic_conn *other = tb_quic_find_connected(ep, c->peer.name, c);
    if (other) {
        tb_quic_conn *loser = keep_of(ep, c, other) == 0 ? other : c;
        ep->stats.duplicates_closed++;
        tb_log_info(ep->log, "quic: two connections with %s; closing the one %s", c->peer.name,
                    loser->peer.dialled ? "we dialled" : "it dialled");
        tb_quic_conn_set_info(loser, TB_QUIC_CLOSED_DUPLICATE, TB_QUIC_REFUSE_NONE,
                              TB_QUIC_APP_DUPLICATE, 1);
        tb_quic_conn_close_app(loser, TB_QUIC_APP_DUPLICATE);
        if (loser == c)
            return;
    }
    c->state = TB_QUIC_CS_CONNECTED;
    c->info.was_connected = 1;
    ep->stats.connected++;
    tb_quic_admit_known(c);
    tb_log_info(ep->log, "quic: connected to %s (region %s) at %s", c->peer.name, c->peer.region,
                tb_quic_conn_addr(c, a));
    if (ep->cb.on_connected)
        ep->cb.on_connected(ep->cb.arg, c, &c->peer);
    c->peer.cert = NULL;
    c->peer.cert_len = 0;
}

/* Once the peer is connected its identity is in c->peer and the 1-RTT keys are in ngtcp2:
 * the GnuTLS session has nothing left to do (no tickets, no post-handshake messages in QUIC)
 * and holds about 12 kB per connection. Freed outside any ngtcp2 call. */
static void conn_drop_tls(tb_quic_conn *c)
{
    ngtcp2_conn_set_tls_native_handle(c->conn, NULL);
    tb_quic_tls_free(c->tls);
    c->tls = NULL;
}

/* Work that must not run inside ngtcp2 calls: confirmation, deferred close, writing. */
static void conn_after_io(tb_quic_conn *c)
{
    if (tb_quic_conn_gone(c))
        return;
    if (c->state == TB_QUIC_CS_CONFIRMED && !(c->flags & TB_QUIC_CF_INFO_SET))
        conn_on_confirmed(c);
    if (c->state == TB_QUIC_CS_CONNECTED && c->tls)
        conn_drop_tls(c);
    if ((c->flags & TB_QUIC_CF_CLOSE_REQUESTED) && !tb_quic_conn_gone(c)) {
        c->flags &= ~TB_QUIC_CF_CLOSE_REQUESTED;
        tb_quic_conn_close_app(c, c->close_code);
    }
    /* A datagram queued by a callback (a PONG) goes now, with any ACK due in the same packet:
     * its timestamps were taken for this moment. Anything else (ACKs, flow control, stream
     * data) waits until every packet of this wakeup is read, so one packet carries the ACKs of
     * many, and an ACK due now rides on whatever the application sends before the loop blocks
     * (the next PING) instead of costing a packet of its own on the round trip. */
    if (c->dg_head)
        tb_quic_conn_write(c);
    else
        tb_quic_conn_defer_write(c);
}

static void conn_refused(tb_quic_conn *c)
{
    char detail[200];
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->conn);
    tb_quic_refusal r = tb_quic_tls_refusal(c->tls, alert, detail, sizeof(detail));
    note_refusal(c, r, detail);
    tb_quic_conn_set_info(c, TB_QUIC_CLOSED_REFUSED, r, NGTCP2_CRYPTO_ERROR | alert, 0);
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, NULL, 0);
    conn_send_close(c, &ccerr);
}

/* The peer closed (or reset) the connection: classify, then drain. */
static void conn_peer_closed(tb_quic_conn *c)
{
    if (c->flags & TB_QUIC_CF_RESET_RECEIVED) {
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_RESET, TB_QUIC_REFUSE_NONE, 0, 0);
    } else {
        ngtcp2_connection_close_error ccerr;
        ngtcp2_conn_get_connection_close_error(c->conn, &ccerr);
        int app = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
        if (app && ccerr.error_code == TB_QUIC_APP_DUPLICATE)
            tb_quic_conn_set_info(c, TB_QUIC_CLOSED_DUPLICATE, TB_QUIC_REFUSE_NONE,
                                  ccerr.error_code, 1);
        else if (!app && c->state != TB_QUIC_CS_CONNECTED &&
                 (ccerr.error_code & ~0xffULL) == NGTCP2_CRYPTO_ERROR)
            tb_quic_conn_set_info(c, TB_QUIC_CLOSED_REFUSED, TB_QUIC_REFUSE_BY_PEER,
                                  ccerr.error_code, 0);
        else
            tb_quic_conn_set_info(c, TB_QUIC_CLOSED_PEER, TB_QUIC_REFUSE_NONE, ccerr.error_code,
                                  app);
    }
    conn_linger(c);
}

static void conn_read_error(tb_quic_conn *c, int rv)
{
    switch (rv) {
    case NGTCP2_ERR_DRAINING:
        conn_peer_closed(c);
        break;
    case NGTCP2_ERR_CLOSING:
        break;
    case NGTCP2_ERR_CRYPTO:
        conn_refused(c);
        break;
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_RETRY:
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_ERROR, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
        break;
    default:
        tb_quic_conn_close_liberr(c, rv);
    }
}

void tb_quic_conn_on_packet(tb_quic_conn *c, const uint8_t *pkt, size_t len,
                            const struct sockaddr *src, socklen_t srclen)
{
    tb_quic_endpoint *ep = c->ep;
    if (c->state == TB_QUIC_CS_DEAD)
        return;
    if (c->state == TB_QUIC_CS_CLOSING) {
        if (c->close_len)
            tb_quic_send_to(ep, src, srclen, c->close_pkt, c->close_len);
        return;
    }
    ngtcp2_path path = tb_quic_path(ep, src, srclen);
    ngtcp2_pkt_info pi = {0};
    c->flags |= TB_QUIC_CF_IN_NGTCP2;
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, len, tb_quic_now(ep));
    c->flags &= ~TB_QUIC_CF_IN_NGTCP2;
    if (rv != 0) {
        conn_read_error(c, rv);
        return;
    }
    c->heard = tb_quic_now(ep);
    conn_after_io(c);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_quic_conn *c = w->data;
    if (c->state == TB_QUIC_CS_DEAD)
        return;
    if (c->state == TB_QUIC_CS_CLOSING) {
        c->state = TB_QUIC_CS_DEAD;
        tb_quic_schedule_reap(c->ep);
        return;
    }
    c->flags |= TB_QUIC_CF_IN_NGTCP2;
    int rv = ngtcp2_conn_handle_expiry(c->conn, tb_quic_now(c->ep));
    c->flags &= ~TB_QUIC_CF_IN_NGTCP2;
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_IDLE, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
    } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        if (c->flags & TB_QUIC_CF_SERVER)
            c->ep->stats.half_open_timeouts++;
        tb_quic_conn_set_info(c, TB_QUIC_CLOSED_CONNECT_TIMEOUT, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
    } else if (rv != 0) {
        tb_quic_conn_close_liberr(c, rv);
    } else {
        conn_after_io(c);
    }
}

/* ---------------------------------------------------------------- ngtcp2 callbacks */

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    if (tb_quic_tls_random(dest, len) != TB_OK)
        abort(); /* no randomness means no safe CIDs or tokens: nothing sane to continue with */
}

int tb_quic_conn_new_cid(tb_quic_conn *c, ngtcp2_cid *cid, size_t len, uint8_t *token)
{
    if (c->nscids >= MAX_CIDS || len > NGTCP2_MAX_CIDLEN)
        return -1;
    cid->datalen = len;
    if (tb_quic_tls_random(cid->data, len) != TB_OK)
        return -1;
    if (token && tb_quic_reset_token(c->ep, cid, token) != TB_OK)
        return -1;
    c->scids[c->nscids++] = *cid;
    return 0;
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                          void *user_data)
{
    return tb_quic_conn_new_cid(user_data, cid, cidlen, token) == 0 ? 0
                                                                    : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
    tb_quic_conn *c = user_data;
    for (size_t i = 0; i < c->nscids; i++) {
        if (ngtcp2_cid_eq(&c->scids[i], cid)) {
            c->scids[i] = c->scids[--c->nscids];
            break;
        }
    }
    return 0;
}

static int cb_handshake_confirmed(ngtcp2_conn *conn, void *user_data)
{
    tb_quic_conn *c = user_data;
    if (c->state == TB_QUIC_CS_HANDSHAKE)
        c->state = TB_QUIC_CS_CONFIRMED;
    return 0;
}

/* A server's handshake is confirmed when it completes (RFC 9001 4.1.2); 0.12.1 does not call
 * handshake_confirmed on the server side. */
static int cb_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    tb_quic_conn *c = user_data;
    if ((c->flags & TB_QUIC_CF_SERVER) && c->state == TB_QUIC_CS_HANDSHAKE)
        c->state = TB_QUIC_CS_CONFIRMED;
    return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data)
{
    tb_quic_conn *c = user_data;
    c->flags |= TB_QUIC_CF_RESET_RECEIVED;
    c->ep->stats.stateless_resets_received++;
    return 0;
}

static int cb_path_validation(ngtcp2_conn *conn, uint32_t flags, const ngtcp2_path *path,
                              ngtcp2_path_validation_result res, void *user_data)
{
    tb_quic_conn *c = user_data;
    if (res != NGTCP2_PATH_VALIDATION_RESULT_SUCCESS || !(c->flags & TB_QUIC_CF_SERVER))
        return 0;
    if (path->remote.addrlen > sizeof(c->peer.addr))
        return 0;
    if (path->remote.addrlen != c->peer.addrlen ||
        memcmp(path->remote.addr, &c->peer.addr, c->peer.addrlen) != 0) {
        char from[TB_QUIC_ADDRSTR_MAX], to[TB_QUIC_ADDRSTR_MAX];
        tb_addr_format_sockaddr((const struct sockaddr *)&c->peer.addr, from, sizeof(from));
        tb_addr_format_sockaddr(path->remote.addr, to, sizeof(to));
        tb_log_info(c->ep->log, "quic: peer %s moved from %s to %s", c->peer.name, from, to);
        memcpy(&c->peer.addr, path->remote.addr, path->remote.addrlen);
        c->peer.addrlen = path->remote.addrlen;
        c->ep->stats.migrations++;
    }
    return 0;
}

/* Data can arrive in the very packet that completes the handshake (a peer may coalesce its
 * first 1-RTT packet with its Finished): judge and announce the peer first, so the data is not
 * lost. conn_on_confirmed only defers what touches this connection's ngtcp2 state. */
void tb_quic_conn_confirm_early(tb_quic_conn *c)
{
    if (c->state == TB_QUIC_CS_CONFIRMED && !(c->flags & TB_QUIC_CF_INFO_SET))
        conn_on_confirmed(c);
}

/* Without a TLS session (conn_drop_tls) the only CRYPTO data a peer may still send is a
 * NewSessionTicket, useless here (no resumption): acknowledged and dropped. */
static int cb_recv_crypto_data(ngtcp2_conn *conn, ngtcp2_crypto_level level, uint64_t offset,
                               const uint8_t *data, size_t len, void *user_data)
{
    tb_quic_conn *c = user_data;
    if (!c->tls)
        return 0;
    return ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data, len, user_data);
}

static void fill_callbacks(ngtcp2_callbacks *cb, int server)
{
    memset(cb, 0, sizeof(*cb));
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = cb_recv_crypto_data;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = cb_rand;
    cb->get_new_connection_id = cb_get_new_cid;
    cb->remove_connection_id = cb_remove_cid;
    cb->handshake_confirmed = cb_handshake_confirmed;
    cb->handshake_completed = cb_handshake_completed;
    cb->recv_stateless_reset = cb_recv_stateless_reset;
    cb->path_validation = cb_path_validation;
    cb->recv_stream_data = tb_quic_cb_recv_stream_data;
    cb->stream_close = tb_quic_cb_stream_close;
    cb->recv_datagram = tb_quic_cb_recv_datagram;
    tb_quic_app_callbacks(cb);
}

static void fill_settings(const tb_quic_endpoint *ep, ngtcp2_settings *s, int server)
{
    ngtcp2_settings_default(s);
    s->initial_ts = tb_quic_now(ep);
    /* An accepted handshake holds a half-open slot: it gets less time than one we dial. */
    s->handshake_timeout = server ? ep->half_open_ns : ep->connect_timeout_ns;
    s->log_printf = NULL;
}

/* 0.12.1 defaults leave every limit at 0: all of them are set here. */
static void fill_params(const tb_quic_endpoint *ep, ngtcp2_transport_params *p)
{
    ngtcp2_transport_params_default(p);
    uint64_t stream_window = ep->max_msg + 4 < 65536 ? 65536 : ep->max_msg + 4;
    if (stream_window > 4 * 1024 * 1024)
        stream_window = 4 * 1024 * 1024;
    /* Data flows only from the opener of a stream to its receiver: each message travels on its
     * own bidirectional stream whose receiver resets the unused return half (ngtcp2 0.12.1
     * never closes a remote unidirectional stream, fixed upstream in 0.14, so their credit would
     * never come back). At most max_streams_in are open at once; closing one gives it back. */
    p->initial_max_stream_data_bidi_local = 0;
    p->initial_max_stream_data_bidi_remote = stream_window;
    p->initial_max_stream_data_uni = 0;
    p->initial_max_data = stream_window * 16;
    p->initial_max_streams_bidi = ep->max_streams_in;
    p->initial_max_streams_uni = 0;
    p->max_idle_timeout = ep->idle_ns;
    p->active_connection_id_limit = 4;
    p->max_datagram_frame_size = MAX_DATAGRAM_FRAME;
    /* ACKs are due at once, so every packet written carries the ACK of what came in: a PONG
     * acknowledges its PING. What comes in without an answer is acknowledged when this loop
     * iteration's writes go out (see conn_after_io), microseconds later, not 25 ms; the peer's
     * PTO, which adds this value, stays tight. */
    p->max_ack_delay = 0;
}

void tb_quic_conn_setup_init(tb_quic_conn_setup *st, tb_quic_conn *c)
{
    fill_callbacks(&st->cb, (c->flags & TB_QUIC_CF_SERVER) != 0);
    fill_settings(c->ep, &st->s, (c->flags & TB_QUIC_CF_SERVER) != 0);
    fill_params(c->ep, &st->p);
    st->path = tb_quic_path(c->ep, (const struct sockaddr *)&c->peer.addr, c->peer.addrlen);
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    tb_quic_conn *c = ref->user_data;
    return c->conn;
}

tb_quic_conn *tb_quic_conn_alloc(tb_quic_endpoint *ep, const struct sockaddr *remote,
                                 socklen_t remotelen, int server)
{
    if (remotelen > sizeof(struct sockaddr_storage))
        return NULL;
    tb_quic_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ep = ep;
    if (server)
        c->flags |= TB_QUIC_CF_SERVER;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    memcpy(&c->peer.addr, remote, remotelen);
    c->peer.addrlen = remotelen;
    c->peer.dialled = !server;
    ev_timer_init(&c->timer, on_conn_timer, 0., 0.);
    c->timer.data = c;
    return c;
}

void tb_quic_conn_link(tb_quic_endpoint *ep, tb_quic_conn *c)
{
    c->next = ep->conns;
    if (ep->conns)
        ep->conns->prev = c;
    ep->conns = c;
    ep->nconns++;
}

void tb_quic_conn_unbuilt_free(tb_quic_conn *c)
{
    if (c->conn)
        ngtcp2_conn_del(c->conn);
    tb_quic_tls_free(c->tls);
    free(c);
}

int tb_quic_conn_attach_tls(tb_quic_conn *c, const char *expected)
{
    int server = (c->flags & TB_QUIC_CF_SERVER) != 0;
    int h3 = server ? c->ep->app_ops != NULL : (c->flags & TB_QUIC_CF_APP) != 0;
    int rv = tb_quic_tls_new(&c->tls, c->ep->tls, server, &c->ref, expected, h3);
    if (rv < 0)
        return rv;
    ngtcp2_conn_set_tls_native_handle(c->conn, tb_quic_tls_native(c->tls));
    if (c->ep->keep_alive_ns != UINT64_MAX)
        ngtcp2_conn_set_keep_alive_timeout(c->conn, c->ep->keep_alive_ns);
    return TB_OK;
}

uint64_t tb_quic_conn_srtt(const tb_quic_conn *c)
{
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->conn, &st);
    return st.smoothed_rtt;
}

int tb_quic_conn_usable(const tb_quic_conn *c)
{
    return c && c->state == TB_QUIC_CS_CONNECTED && !(c->flags & TB_QUIC_CF_CLOSE_REQUESTED);
}

void tb_quic_close(tb_quic_conn *c, uint64_t app_code)
{
    if (!c || tb_quic_conn_gone(c))
        return;
    tb_quic_conn_set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE, app_code, 1);
    tb_quic_conn_close_app(c, app_code);
}
