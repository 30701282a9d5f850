/* The QUIC endpoint: socket, connection table, ngtcp2 driving, message framing. */
#include "quic/endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "common/bytes.h"
#include "quic/tls.h"

/* One source-CID length for client and server connections, so short headers demultiplex. */
#define SCID_LEN 16
#define CLIENT_DCID_LEN 18
#define MAX_CIDS 16
#define PKT_MAX 1500
#define RX_BUF 65536
#define SECRET_LEN TB_QUIC_SECRET_LEN
#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)
#define MAX_TX_QUEUE 1024
#define MAX_DGRAM_QUEUE 64
/* Each message travels on its own bidirectional stream whose receiver resets the unused return
 * half: ngtcp2 0.12.1 never closes a remote unidirectional stream (fixed upstream in 0.14), so
 * their credit would never come back and a connection would stall after this many messages. */
#define MAX_STREAMS 128
#define MAX_DATAGRAM_FRAME 65535
#define READS_PER_WAKEUP 64
/* Short header (1 + 20-byte CID + 4-byte packet number), DATAGRAM frame type and length, AEAD
 * tag: an upper bound of what surrounds a datagram in its packet. */
#define DGRAM_OVERHEAD 48
#define DGRAM_ATTEMPTS 8

typedef struct txmsg {
    struct txmsg *next;
    int64_t id; /* -1 until its stream is opened */
    int blocked;
    size_t len, sent;
    uint8_t data[]; /* 4-byte length prefix + message */
} txmsg;

typedef struct rxmsg {
    struct rxmsg *next;
    int64_t id;
    uint8_t hdr[4];
    size_t hdrlen;
    uint8_t *buf;
    size_t want, got, cap;
    int dropped, delivered;
} rxmsg;

typedef struct dgmsg {
    struct dgmsg *next;
    size_t len;
    uint8_t data[];
} dgmsg;

struct tb_quic_conn {
    tb_quic_conn *next, *prev;
    tb_quic_endpoint *ep;
    ngtcp2_conn *conn;
    tb_quic_tls *tls;
    ngtcp2_crypto_conn_ref ref;
    ev_timer timer;
    ngtcp2_cid scids[MAX_CIDS];
    size_t nscids;
    ngtcp2_cid odcid; /* the DCID the client chose: Initials may still carry it */
    int has_odcid;
    tb_quic_peer peer;
    int server, confirmed, connected, closing, dead, in_ngtcp2, reset_received;
    int close_requested, closed_reported, report_pending, info_set;
    int write_pending; /* conn_write deferred to the end of this loop iteration */
    uint64_t close_code;
    tb_quic_close_info info;
    uint8_t close_pkt[PKT_MAX];
    size_t close_len;
    txmsg *tx_head, *tx_tail;
    size_t ntx;
    rxmsg *rx;
    dgmsg *dg_head, *dg_tail;
    size_t ndg;
};

struct tb_quic_endpoint {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    tb_quic_callbacks cb;
    tb_quic_mode mode;
    int retry;
    uint64_t idle_ns, keep_alive_ns, connect_timeout_ns;
    size_t max_msg, max_conns;
    char name[TB_QUIC_NAME_MAX];
    int fd;
    ev_io rio;
    struct sockaddr_storage local;
    socklen_t locallen;
    tb_quic_tls_ctx *tls;
    uint8_t secret[SECRET_LEN];
    tb_quic_conn *conns;
    size_t nconns;
    ev_timer reap;
    ev_prepare flush; /* runs deferred writes before the loop next blocks */
    int shutting_down, shutdown_pending;
    uint64_t rx_mono;
    int64_t rx_real;
    uint8_t rxbuf[RX_BUF];
    tb_quic_stats stats;
};

static void conn_write(tb_quic_conn *c);

static const char *const refusal_names[TB_QUIC_REFUSE_COUNT] = {"none",
                                                                "no certificate",
                                                                "untrusted certificate",
                                                                "expired certificate",
                                                                "wrong key purpose",
                                                                "name mismatch",
                                                                "no node identity",
                                                                "wrong ALPN",
                                                                "TLS failure",
                                                                "refused by peer"};

const char *tb_quic_refusal_name(tb_quic_refusal r)
{
    return (unsigned)r < TB_QUIC_REFUSE_COUNT ? refusal_names[r] : "?";
}

const char *tb_quic_close_reason_name(tb_quic_close_reason r)
{
    static const char *const names[] = {"local close",     "closed by peer", "idle timeout",
                                        "connect timeout", "refused",        "stateless reset",
                                        "duplicate",       "error"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static uint64_t now_ns(const tb_quic_endpoint *ep)
{
    return tb_clock_mono(ep->clock);
}

static ngtcp2_path ep_path(tb_quic_endpoint *ep, const struct sockaddr *remote, socklen_t len)
{
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)&ep->local, .addrlen = ep->locallen},
        .remote = {.addr = (ngtcp2_sockaddr *)(uintptr_t)remote, .addrlen = len},
    };
    return path;
}

/* ---------------------------------------------------------------- addresses */

int tb_quic_addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    if (!s)
        return TB_ERR_INVAL;
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return TB_ERR_INVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host) || strchr(s, ':') != colon)
            return TB_ERR_INVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0')
        return TB_ERR_INVAL;
    unsigned long p = strtoul(port, NULL, 10);
    if (p > 65535)
        return TB_ERR_INVAL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof(*v4);
        return TB_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*v6);
        return TB_OK;
    }
    return TB_ERR_INVAL;
}

void tb_quic_addr_format(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        snprintf(buf, buflen, "%s:%u", host, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        snprintf(buf, buflen, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, buflen, "(unknown address family %d)", sa->sa_family);
    }
}

static const char *conn_addr(const tb_quic_conn *c, char *buf)
{
    tb_quic_addr_format((const struct sockaddr *)&c->peer.addr, buf, TB_QUIC_ADDRSTR_MAX);
    return buf;
}

/* ---------------------------------------------------------------- sending */

static void send_to(tb_quic_endpoint *ep, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *pkt, size_t len)
{
    ssize_t n;
    do {
        n = sendto(ep->fd, pkt, len, 0, to, tolen);
    } while (n < 0 && errno == EINTR);
    /* A full socket buffer loses the packet: QUIC's loss recovery resends what matters. */
    if (n < 0)
        ep->stats.packets_dropped++;
    else
        ep->stats.packets_out++;
}

static void path_send(tb_quic_conn *c, const ngtcp2_path *path, const uint8_t *pkt, size_t len)
{
    if (path->remote.addrlen)
        send_to(c->ep, path->remote.addr, path->remote.addrlen, pkt, len);
    else
        send_to(c->ep, (const struct sockaddr *)&c->peer.addr, c->peer.addrlen, pkt, len);
}

/* ---------------------------------------------------------------- lifetime */

static void schedule_reap(tb_quic_endpoint *ep)
{
    if (!ev_is_active(&ep->reap)) {
        ev_timer_set(&ep->reap, 0., 0.);
        ev_timer_start(ep->loop, &ep->reap);
    }
}

static void set_info(tb_quic_conn *c, tb_quic_close_reason reason, tb_quic_refusal refusal,
                     uint64_t code, int app)
{
    if (c->info_set)
        return;
    c->info_set = 1;
    c->info.reason = reason;
    c->info.refusal = refusal;
    c->info.code = code;
    c->info.app = app;
}

static void report_closed(tb_quic_conn *c)
{
    if (c->closed_reported)
        return;
    c->closed_reported = 1;
    c->info.was_connected = c->connected;
    tb_quic_endpoint *ep = c->ep;
    ep->stats.closed++;
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_info(ep->log, "quic: connection %s %s closed: %s%s%s (%s code 0x%llx)",
                c->peer.name[0] ? c->peer.name : "(unidentified)", conn_addr(c, a),
                tb_quic_close_reason_name(c->info.reason), c->info.refusal ? ": " : "",
                c->info.refusal ? tb_quic_refusal_name(c->info.refusal) : "",
                c->info.app ? "application" : "transport", (unsigned long long)c->info.code);
    c->connected = 0;
    /* Told from the loop, never from inside a call the caller made into this API. */
    c->report_pending = 1;
    schedule_reap(ep);
}

/* Forgets the connection without sending anything (idle, timeout, fatal). */
static void conn_drop(tb_quic_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    ev_timer_stop(c->ep->loop, &c->timer);
    schedule_reap(c->ep);
    report_closed(c);
}

/* Keeps the connection for three PTOs so late packets meet our CONNECTION_CLOSE (closing) or
 * are absorbed (draining), then frees it. */
static void conn_linger(tb_quic_conn *c)
{
    c->closing = 1;
    double pto = (double)ngtcp2_conn_get_pto(c->conn) / NGTCP2_SECONDS;
    ev_timer_stop(c->ep->loop, &c->timer);
    ev_timer_set(&c->timer, 3 * pto, 0.);
    ev_timer_start(c->ep->loop, &c->timer);
    report_closed(c);
}

static void conn_send_close(tb_quic_conn *c, const ngtcp2_connection_close_error *ccerr)
{
    if (c->closing || c->dead)
        return;
    if (c->write_pending)
        conn_write(c); /* what was due before the close goes out before it */
    if (ngtcp2_conn_is_in_draining_period(c->conn)) {
        conn_linger(c);
        return;
    }
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, c->close_pkt,
                                                        sizeof(c->close_pkt), ccerr, now_ns(c->ep));
    if (n <= 0) {
        conn_drop(c);
        return;
    }
    c->close_len = (size_t)n;
    path_send(c, &ps.path, c->close_pkt, c->close_len);
    conn_linger(c);
}

static void conn_close_app(tb_quic_conn *c, uint64_t code)
{
    if (c->in_ngtcp2) {
        c->close_requested = 1;
        c->close_code = code;
        return;
    }
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_application_error(&ccerr, code, NULL, 0);
    conn_send_close(c, &ccerr);
}

static void conn_close_liberr(tb_quic_conn *c, int liberr)
{
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_warn(c->ep->log, "quic: connection %s failed: %s", conn_addr(c, a),
                ngtcp2_strerror(liberr));
    set_info(c, TB_QUIC_CLOSED_ERROR, TB_QUIC_REFUSE_NONE, 0, 0);
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
    conn_send_close(c, &ccerr);
}

static void free_lists(tb_quic_conn *c)
{
    while (c->tx_head) {
        txmsg *m = c->tx_head;
        c->tx_head = m->next;
        free(m);
    }
    while (c->rx) {
        rxmsg *r = c->rx;
        c->rx = r->next;
        free(r->buf);
        free(r);
    }
    while (c->dg_head) {
        dgmsg *d = c->dg_head;
        c->dg_head = d->next;
        free(d);
    }
}

static void conn_free(tb_quic_conn *c)
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
    free_lists(c);
    free(c);
}

static void on_reap(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    /* A callback may close more connections: those are reported on the next round. */
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->report_pending) {
            c->report_pending = 0;
            if (ep->cb.on_closed)
                ep->cb.on_closed(ep->cb.arg, c, &c->peer, &c->info);
        }
    }
    for (tb_quic_conn *c = ep->conns, *next; c; c = next) {
        next = c->next;
        if (c->dead && !c->report_pending)
            conn_free(c);
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
    if (c->dead || c->closing)
        return;
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn);
    ev_timer_stop(c->ep->loop, &c->timer);
    if (expiry == UINT64_MAX)
        return;
    uint64_t now = now_ns(c->ep);
    double delay = expiry > now ? (double)(expiry - now) / NGTCP2_SECONDS : 0.;
    ev_timer_set(&c->timer, delay, 0.);
    ev_timer_start(c->ep->loop, &c->timer);
}

/* The next queued message that can take bytes now, opening its stream when needed. */
static txmsg *next_sendable(tb_quic_conn *c)
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
        ngtcp2_ssize n =
            ngtcp2_conn_writev_datagram(c->conn, &ps.path, &pi, buf, sizeof(buf), &accepted,
                                        NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, &v, 1, now_ns(c->ep));
        if (n < 0)
            return n == NGTCP2_ERR_INVALID_ARGUMENT ? TB_ERR_TOO_BIG : TB_ERR_STATE;
        if (n > 0)
            path_send(c, &ps.path, buf, (size_t)n);
        if (accepted) {
            c->ep->stats.dgrams_sent++;
            return TB_OK;
        }
        if (n == 0)
            return TB_ERR_AGAIN;
    }
    return TB_ERR_TOO_BIG;
}

static void flush_dgrams(tb_quic_conn *c)
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

static void conn_write(tb_quic_conn *c)
{
    c->write_pending = 0;
    if (c->closing || c->dead)
        return;
    flush_dgrams(c);
    uint8_t buf[PKT_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    uint64_t now = now_ns(c->ep);
    /* No pacing (ngtcp2_conn_update_pkt_tx_time is never called, so ngtcp2 never holds a
     * packet back): mesh traffic is small, and a time probe held back by a pacer would carry
     * that wait into its RTT and offset. Congestion control still bounds what goes out. */
    for (int i = 0; i < 1024; i++) {
        txmsg *m = next_sendable(c);
        ngtcp2_vec v = {0};
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
        if (m) {
            v.base = m->data + m->sent;
            v.len = m->len - m->sent;
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE | NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_pkt_info pi;
        ngtcp2_ssize datalen = -1;
        ngtcp2_ssize n =
            ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, sizeof(buf), &datalen, flags,
                                      m ? m->id : -1, m ? &v : NULL, m ? 1 : 0, now);
        if (n == NGTCP2_ERR_WRITE_MORE) {
            m->sent += (size_t)datalen;
            continue;
        }
        if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
            n == NGTCP2_ERR_STREAM_NOT_FOUND) {
            m->blocked = 1;
            continue;
        }
        if (n < 0) {
            conn_close_liberr(c, (int)n);
            return;
        }
        if (m && datalen > 0)
            m->sent += (size_t)datalen;
        if (n == 0)
            break;
        path_send(c, &ps.path, buf, (size_t)n);
    }
    for (txmsg *m = c->tx_head; m; m = m->next)
        m->blocked = 0;
    conn_update_timer(c);
}

static void conn_defer_write(tb_quic_conn *c)
{
    c->write_pending = 1;
    if (!ev_is_active(&c->ep->flush))
        ev_prepare_start(c->ep->loop, &c->ep->flush);
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    ev_prepare_stop(loop, w);
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->write_pending)
            conn_write(c);
    }
}

/* ---------------------------------------------------------------- connection events */

static int keep_of(const tb_quic_endpoint *ep, const tb_quic_conn *a, const tb_quic_conn *b)
{
    /* Both nodes keep the connection dialled by the node whose name sorts lower. */
    int want_dialled = strcmp(ep->name, a->peer.name) < 0;
    if (a->peer.dialled == b->peer.dialled)
        return 1; /* same direction twice: keep the older, b */
    return a->peer.dialled == want_dialled ? 0 : 1;
}

static tb_quic_conn *find_connected(tb_quic_endpoint *ep, const char *name, tb_quic_conn *skip)
{
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c != skip && c->connected && !c->closing && !c->dead && strcmp(c->peer.name, name) == 0)
            return c;
    }
    return NULL;
}

/* Counts, logs and reports a handshake this endpoint refused. */
static void note_refusal(tb_quic_conn *c, tb_quic_refusal r, const char *detail)
{
    tb_quic_endpoint *ep = c->ep;
    char a[TB_QUIC_ADDRSTR_MAX];
    ep->stats.refused[r]++;
    tb_log_warn(ep->log, "quic: refused peer %s: %s (%s)", conn_addr(c, a), tb_quic_refusal_name(r),
                detail);
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
        set_info(c, TB_QUIC_CLOSED_REFUSED, TB_QUIC_REFUSE_IDENTITY, TB_QUIC_APP_IDENTITY, 1);
        conn_close_app(c, TB_QUIC_APP_IDENTITY);
        return;
    }
    tb_quic_conn *other = find_connected(ep, c->peer.name, c);
    if (other) {
        tb_quic_conn *loser = keep_of(ep, c, other) == 0 ? other : c;
        ep->stats.duplicates_closed++;
        tb_log_info(ep->log, "quic: two connections with %s; closing the one %s", c->peer.name,
                    loser->peer.dialled ? "we dialled" : "it dialled");
        set_info(loser, TB_QUIC_CLOSED_DUPLICATE, TB_QUIC_REFUSE_NONE, TB_QUIC_APP_DUPLICATE, 1);
        conn_close_app(loser, TB_QUIC_APP_DUPLICATE);
        if (loser == c)
            return;
    }
    c->connected = 1;
    ep->stats.connected++;
    tb_log_info(ep->log, "quic: connected to %s (region %s) at %s", c->peer.name, c->peer.region,
                conn_addr(c, a));
    if (ep->cb.on_connected)
        ep->cb.on_connected(ep->cb.arg, c, &c->peer);
    c->peer.cert = NULL;
    c->peer.cert_len = 0;
}

/* Work that must not run inside ngtcp2 calls: confirmation, deferred close, writing. */
/* Once the peer is connected its identity is in c->peer and the 1-RTT keys are in ngtcp2:
 * the GnuTLS session has nothing left to do (no tickets, no post-handshake messages in QUIC)
 * and holds about 12 kB per connection. Freed outside any ngtcp2 call. */
static void conn_drop_tls(tb_quic_conn *c)
{
    ngtcp2_conn_set_tls_native_handle(c->conn, NULL);
    tb_quic_tls_free(c->tls);
    c->tls = NULL;
}

static void conn_after_io(tb_quic_conn *c)
{
    if (c->dead || c->closing)
        return;
    if (c->confirmed && !c->connected && !c->info_set)
        conn_on_confirmed(c);
    if (c->connected && c->tls)
        conn_drop_tls(c);
    if (c->close_requested && !c->closing && !c->dead) {
        c->close_requested = 0;
        conn_close_app(c, c->close_code);
    }
    /* A datagram queued by a callback (a PONG) goes now, with any ACK due in the same packet:
     * its timestamps were taken for this moment. Anything else (ACKs, flow control, stream
     * data) waits until every packet of this wakeup is read, so one packet carries the ACKs of
     * many, and an ACK due now rides on whatever the application sends before the loop blocks
     * (the next PING) instead of costing a packet of its own on the round trip. */
    if (c->dg_head)
        conn_write(c);
    else
        conn_defer_write(c);
}

static void conn_refused(tb_quic_conn *c)
{
    char detail[200];
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->conn);
    tb_quic_refusal r = tb_quic_tls_refusal(c->tls, alert, detail, sizeof(detail));
    note_refusal(c, r, detail);
    set_info(c, TB_QUIC_CLOSED_REFUSED, r, NGTCP2_CRYPTO_ERROR | alert, 0);
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, NULL, 0);
    conn_send_close(c, &ccerr);
}

/* The peer closed (or reset) the connection: classify, then drain. */
static void conn_peer_closed(tb_quic_conn *c)
{
    if (c->reset_received) {
        set_info(c, TB_QUIC_CLOSED_RESET, TB_QUIC_REFUSE_NONE, 0, 0);
    } else {
        ngtcp2_connection_close_error ccerr;
        ngtcp2_conn_get_connection_close_error(c->conn, &ccerr);
        int app = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
        if (app && ccerr.error_code == TB_QUIC_APP_DUPLICATE)
            set_info(c, TB_QUIC_CLOSED_DUPLICATE, TB_QUIC_REFUSE_NONE, ccerr.error_code, 1);
        else if (!app && !c->connected && (ccerr.error_code & ~0xffULL) == NGTCP2_CRYPTO_ERROR)
            set_info(c, TB_QUIC_CLOSED_REFUSED, TB_QUIC_REFUSE_BY_PEER, ccerr.error_code, 0);
        else
            set_info(c, TB_QUIC_CLOSED_PEER, TB_QUIC_REFUSE_NONE, ccerr.error_code, app);
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
        set_info(c, TB_QUIC_CLOSED_ERROR, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
        break;
    default:
        conn_close_liberr(c, rv);
    }
}

static void conn_on_packet(tb_quic_conn *c, const uint8_t *pkt, size_t len,
                           const struct sockaddr *src, socklen_t srclen)
{
    tb_quic_endpoint *ep = c->ep;
    if (c->dead)
        return;
    if (c->closing) {
        if (c->close_len)
            send_to(ep, src, srclen, c->close_pkt, c->close_len);
        return;
    }
    ngtcp2_path path = ep_path(ep, src, srclen);
    ngtcp2_pkt_info pi = {0};
    c->in_ngtcp2 = 1;
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, pkt, len, now_ns(ep));
    c->in_ngtcp2 = 0;
    if (rv != 0) {
        conn_read_error(c, rv);
        return;
    }
    conn_after_io(c);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_quic_conn *c = w->data;
    if (c->dead)
        return;
    if (c->closing) {
        c->dead = 1;
        schedule_reap(c->ep);
        return;
    }
    c->in_ngtcp2 = 1;
    int rv = ngtcp2_conn_handle_expiry(c->conn, now_ns(c->ep));
    c->in_ngtcp2 = 0;
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        set_info(c, TB_QUIC_CLOSED_IDLE, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
    } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        set_info(c, TB_QUIC_CLOSED_CONNECT_TIMEOUT, TB_QUIC_REFUSE_NONE, 0, 0);
        conn_drop(c);
    } else if (rv != 0) {
        conn_close_liberr(c, rv);
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

static int new_cid(tb_quic_conn *c, ngtcp2_cid *cid, size_t len, uint8_t *token)
{
    if (c->nscids >= MAX_CIDS || len > NGTCP2_MAX_CIDLEN)
        return -1;
    cid->datalen = len;
    if (tb_quic_tls_random(cid->data, len) != TB_OK)
        return -1;
    if (token &&
        ngtcp2_crypto_generate_stateless_reset_token(token, c->ep->secret, SECRET_LEN, cid) != 0)
        return -1;
    c->scids[c->nscids++] = *cid;
    return 0;
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                          void *user_data)
{
    return new_cid(user_data, cid, cidlen, token) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
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
    c->confirmed = 1;
    return 0;
}

/* A server's handshake is confirmed when it completes (RFC 9001 4.1.2); 0.12.1 does not call
 * handshake_confirmed on the server side. */
static int cb_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    tb_quic_conn *c = user_data;
    if (c->server)
        c->confirmed = 1;
    return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data)
{
    tb_quic_conn *c = user_data;
    c->reset_received = 1;
    c->ep->stats.stateless_resets_received++;
    return 0;
}

static int cb_path_validation(ngtcp2_conn *conn, uint32_t flags, const ngtcp2_path *path,
                              ngtcp2_path_validation_result res, void *user_data)
{
    tb_quic_conn *c = user_data;
    if (res != NGTCP2_PATH_VALIDATION_RESULT_SUCCESS || !c->server)
        return 0;
    if (path->remote.addrlen > sizeof(c->peer.addr))
        return 0;
    if (path->remote.addrlen != c->peer.addrlen ||
        memcmp(path->remote.addr, &c->peer.addr, c->peer.addrlen) != 0) {
        char from[TB_QUIC_ADDRSTR_MAX], to[TB_QUIC_ADDRSTR_MAX];
        tb_quic_addr_format((const struct sockaddr *)&c->peer.addr, from, sizeof(from));
        tb_quic_addr_format(path->remote.addr, to, sizeof(to));
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
static void conn_confirm_early(tb_quic_conn *c)
{
    if (c->confirmed && !c->connected && !c->info_set && !c->closing && !c->dead)
        conn_on_confirmed(c);
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
    r->next = c->rx;
    c->rx = r;
    return r;
}

static void rx_free(tb_quic_conn *c, int64_t id)
{
    for (rxmsg **p = &c->rx; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            rxmsg *r = *p;
            *p = r->next;
            free(r->buf);
            free(r);
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

static void rx_reject(tb_quic_conn *c, rxmsg *r, uint64_t *counter, uint64_t code, const char *why)
{
    char a[TB_QUIC_ADDRSTR_MAX];
    (*counter)++;
    r->dropped = 1;
    free(r->buf);
    r->buf = NULL;
    tb_log_warn(c->ep->log, "quic: dropped message from %s %s: %s", c->peer.name, conn_addr(c, a),
                why);
    /* STOP_SENDING: the sender stops, the connection stays. A stream already gone is fine. */
    (void)ngtcp2_conn_shutdown_stream_read(c->conn, r->id, code);
    rx_done(c, r);
}

/* Appends stream bytes to the message: a 4-byte big-endian length, then that many bytes. */
static void rx_take(tb_quic_conn *c, rxmsg *r, const uint8_t *data, size_t len)
{
    tb_quic_stats *st = &c->ep->stats;
    while (len && !r->dropped) {
        if (r->hdrlen < 4) {
            size_t n = 4 - r->hdrlen < len ? 4 - r->hdrlen : len;
            memcpy(r->hdr + r->hdrlen, data, n);
            r->hdrlen += n, data += n, len -= n;
            if (r->hdrlen < 4)
                return;
            r->want = tb_get_be32(r->hdr);
            if (r->want > c->ep->max_msg) {
                rx_reject(c, r, &st->msgs_dropped_oversized, TB_QUIC_STREAM_TOO_BIG,
                          "message over max_message_size");
                return;
            }
            if (r->want == 0) {
                rx_reject(c, r, &st->msgs_dropped_malformed, TB_QUIC_STREAM_MALFORMED,
                          "empty message");
                return;
            }
        } else if (r->delivered || r->got == r->want) {
            rx_reject(c, r, &st->msgs_dropped_malformed, TB_QUIC_STREAM_MALFORMED,
                      "bytes after the announced length");
            return;
        } else {
            size_t n = r->want - r->got < len ? r->want - r->got : len;
            if (r->got + n > r->cap) {
                /* Grow with the bytes that really arrived, not with the announced length. */
                size_t cap = r->cap ? r->cap * 2 : 4096;
                while (cap < r->got + n)
                    cap *= 2;
                if (cap > r->want)
                    cap = r->want;
                uint8_t *nb = realloc(r->buf, cap);
                if (!nb) {
                    rx_reject(c, r, &st->msgs_dropped_malformed, TB_QUIC_STREAM_TOO_BIG,
                              "out of memory");
                    return;
                }
                r->buf = nb;
                r->cap = cap;
            }
            memcpy(r->buf + r->got, data, n);
            r->got += n, data += n, len -= n;
        }
    }
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user_data, void *sud)
{
    tb_quic_conn *c = user_data;
    conn_confirm_early(c);
    ngtcp2_conn_extend_max_stream_offset(conn, id, len);
    ngtcp2_conn_extend_max_offset(conn, len);
    rxmsg *r = rx_get(c, id);
    if (!r)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    rx_take(c, r, data, len);
    if (r->dropped)
        return 0;
    if (r->hdrlen == 4 && r->got == r->want && !r->delivered) {
        r->delivered = 1;
        c->ep->stats.msgs_received++;
        if (c->connected && c->ep->cb.on_stream_message)
            c->ep->cb.on_stream_message(c->ep->cb.arg, c, r->buf, r->want);
        free(r->buf);
        r->buf = NULL;
        rx_done(c, r);
    }
    if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && !r->delivered)
        rx_reject(c, r, &c->ep->stats.msgs_dropped_malformed, TB_QUIC_STREAM_MALFORMED,
                  "stream ended inside a message");
    return 0;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error,
                           void *user_data, void *sud)
{
    tb_quic_conn *c = user_data;
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

static int cb_recv_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                            void *user_data)
{
    tb_quic_conn *c = user_data;
    tb_quic_endpoint *ep = c->ep;
    conn_confirm_early(c);
    ep->stats.dgrams_received++;
    if (c->connected && ep->cb.on_datagram)
        ep->cb.on_datagram(ep->cb.arg, c, data, len, ep->rx_mono, ep->rx_real);
    else
        ep->stats.dgrams_dropped++;
    return 0;
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
    cb->recv_stream_data = cb_recv_stream_data;
    cb->stream_close = cb_stream_close;
    cb->recv_datagram = cb_recv_datagram;
}

static void fill_settings(const tb_quic_endpoint *ep, ngtcp2_settings *s)
{
    ngtcp2_settings_default(s);
    s->initial_ts = now_ns(ep);
    s->handshake_timeout = ep->connect_timeout_ns;
    s->log_printf = NULL;
}

/* 0.12.1 defaults leave every limit at 0: all of them are set here. */
static void fill_params(const tb_quic_endpoint *ep, ngtcp2_transport_params *p)
{
    ngtcp2_transport_params_default(p);
    uint64_t stream_window = ep->max_msg + 4 < 65536 ? 65536 : ep->max_msg + 4;
    if (stream_window > (uint64_t)4 * 1024 * 1024)
        stream_window = (uint64_t)4 * 1024 * 1024;
    /* Data flows only from the opener of a stream to its receiver (see MAX_STREAMS). */
    p->initial_max_stream_data_bidi_local = 0;
    p->initial_max_stream_data_bidi_remote = stream_window;
    p->initial_max_stream_data_uni = 0;
    p->initial_max_data = stream_window * 16;
    p->initial_max_streams_bidi = MAX_STREAMS;
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

/* Everything ngtcp2_conn_{client,server}_new takes besides the CIDs. */
typedef struct conn_setup {
    ngtcp2_callbacks cb;
    ngtcp2_settings s;
    ngtcp2_transport_params p;
    ngtcp2_path path;
} conn_setup;

static void setup_init(conn_setup *st, tb_quic_conn *c)
{
    fill_callbacks(&st->cb, c->server);
    fill_settings(c->ep, &st->s);
    fill_params(c->ep, &st->p);
    st->path = ep_path(c->ep, (const struct sockaddr *)&c->peer.addr, c->peer.addrlen);
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    tb_quic_conn *c = ref->user_data;
    return c->conn;
}

static tb_quic_conn *conn_alloc(tb_quic_endpoint *ep, const struct sockaddr *remote,
                                socklen_t remotelen, int server)
{
    if (remotelen > sizeof(struct sockaddr_storage))
        return NULL;
    tb_quic_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ep = ep;
    c->server = server;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    memcpy(&c->peer.addr, remote, remotelen);
    c->peer.addrlen = remotelen;
    c->peer.dialled = !server;
    ev_timer_init(&c->timer, on_conn_timer, 0., 0.);
    c->timer.data = c;
    return c;
}

static void conn_link(tb_quic_endpoint *ep, tb_quic_conn *c)
{
    c->next = ep->conns;
    if (ep->conns)
        ep->conns->prev = c;
    ep->conns = c;
    ep->nconns++;
}

static void conn_unbuilt_free(tb_quic_conn *c)
{
    if (c->conn)
        ngtcp2_conn_del(c->conn);
    tb_quic_tls_free(c->tls);
    free(c);
}

static int conn_attach_tls(tb_quic_conn *c, const char *expected)
{
    int rv = tb_quic_tls_new(&c->tls, c->ep->tls, c->server, &c->ref, expected);
    if (rv < 0)
        return rv;
    ngtcp2_conn_set_tls_native_handle(c->conn, tb_quic_tls_native(c->tls));
    if (c->ep->keep_alive_ns != UINT64_MAX)
        ngtcp2_conn_set_keep_alive_timeout(c->conn, c->ep->keep_alive_ns);
    return TB_OK;
}

/* ---------------------------------------------------------------- accepting */

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
        &hd->dcid, now_ns(ep));
    if (tlen < 0)
        return;
    uint8_t buf[PKT_MAX];
    ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid, &scid,
                                               &hd->dcid, token, (size_t)tlen);
    if (n < 0)
        return;
    ep->stats.retries_sent++;
    send_to(ep, src, srclen, buf, (size_t)n);
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
    if (ngtcp2_crypto_generate_stateless_reset_token(token, ep->secret, SECRET_LEN, &cid) != 0 ||
        tb_quic_tls_random(rnd, randlen) != TB_OK)
        return;
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, randlen);
    if (n <= 0)
        return;
    ep->stats.stateless_resets_sent++;
    send_to(ep, src, srclen, buf, (size_t)n);
}

/* Tells a client of another QUIC version that we speak v1 only. Only for a datagram of at least
 * 1200 bytes (RFC 9000 6.1), so the answer is never an amplification. */
static void send_version_negotiation(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
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
        send_to(ep, src, srclen, buf, (size_t)n);
}

/* A client whose Retry token does not verify (forged, expired, another address) is told so. */
static void send_invalid_token(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd,
                               const struct sockaddr *src, socklen_t srclen)
{
    uint8_t buf[PKT_MAX];
    ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version, &hd->scid,
                                                          &hd->dcid, NGTCP2_INVALID_TOKEN, NULL, 0);
    if (n > 0)
        send_to(ep, src, srclen, buf, (size_t)n);
}

static int server_conn_new(tb_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid,
                           const struct sockaddr *src, socklen_t srclen, tb_quic_conn **out)
{
    tb_quic_conn *c = conn_alloc(ep, src, srclen, 1);
    if (!c)
        return TB_ERR_NOMEM;
    ngtcp2_cid scid;
    if (new_cid(c, &scid, SCID_LEN, NULL) != 0) {
        conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    conn_setup st;
    setup_init(&st, c);
    if (odcid) {
        st.p.original_dcid = *odcid;
        st.p.retry_scid = hd->dcid;
        st.p.retry_scid_present = 1;
        st.s.token = hd->token;
    } else {
        st.p.original_dcid = hd->dcid;
    }
    st.p.stateless_reset_token_present = 1;
    if (ngtcp2_crypto_generate_stateless_reset_token(st.p.stateless_reset_token, ep->secret,
                                                     SECRET_LEN, &scid) != 0) {
        conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    int rv = ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &st.path, hd->version, &st.cb,
                                    &st.s, &st.p, NULL, c);
    if (rv != 0 || conn_attach_tls(c, NULL) < 0) {
        conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    c->odcid = hd->dcid;
    c->has_odcid = 1;
    conn_link(ep, c);
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

static void on_unknown_packet(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
                              const uint8_t *pkt, size_t len, const struct sockaddr *src,
                              socklen_t srclen)
{
    if (!(pkt[0] & 0x80)) {
        /* A stateless reset carries no CID of ours: let each connection with that peer check
         * its token before answering with a reset of our own. */
        for (tb_quic_conn *c = ep->conns; c; c = c->next) {
            if (!c->dead && !c->closing && same_addr(&c->peer.addr, src, srclen)) {
                conn_on_packet(c, pkt, len, src, srclen);
                if (c->reset_received)
                    return;
            }
        }
        send_stateless_reset(ep, vc->dcid, vc->dcidlen, len, src, srclen);
        return;
    }
    if (!(ep->mode & TB_QUIC_MODE_SERVER) || ep->shutting_down || ep->nconns >= ep->max_conns)
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
                                             now_ns(ep)) != 0) {
            ep->stats.retry_tokens_bad++;
            send_invalid_token(ep, &hd, src, srclen);
            return;
        }
        podcid = &odcid;
    } else {
        hd.token.base = NULL;
        hd.token.len = 0;
    }
    tb_quic_conn *c;
    if (server_conn_new(ep, &hd, podcid, src, srclen, &c) != TB_OK)
        return;
    conn_on_packet(c, pkt, len, src, srclen);
}

/* ---------------------------------------------------------------- reading */

static tb_quic_conn *conn_find(tb_quic_endpoint *ep, const uint8_t *dcid, size_t dcidlen)
{
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->dead)
            continue;
        for (size_t i = 0; i < c->nscids; i++) {
            if (c->scids[i].datalen == dcidlen && memcmp(c->scids[i].data, dcid, dcidlen) == 0)
                return c;
        }
        if (c->has_odcid && c->odcid.datalen == dcidlen &&
            memcmp(c->odcid.data, dcid, dcidlen) == 0)
            return c;
    }
    return NULL;
}

static void on_packet(tb_quic_endpoint *ep, const uint8_t *pkt, size_t len,
                      const struct sockaddr *src, socklen_t srclen)
{
    ngtcp2_version_cid vc;
    int rv = len ? ngtcp2_pkt_decode_version_cid(&vc, pkt, len, SCID_LEN) : -1;
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(ep, &vc, len, src, srclen);
        return;
    }
    if (rv != 0) {
        ep->stats.packets_dropped++;
        return;
    }
    tb_quic_conn *c = conn_find(ep, vc.dcid, vc.dcidlen);
    if (c)
        conn_on_packet(c, pkt, len, src, srclen);
    else
        on_unknown_packet(ep, &vc, pkt, len, src, srclen);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    uint8_t *buf = ep->rxbuf;
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        struct sockaddr_storage src;
        socklen_t srclen = sizeof(src);
        ssize_t n = recvfrom(ep->fd, buf, RX_BUF, 0, (struct sockaddr *)&src, &srclen);
        if (n < 0)
            break;
        ep->rx_mono = tb_clock_mono(ep->clock);
        ep->rx_real = tb_clock_real(ep->clock);
        ep->stats.packets_in++;
        on_packet(ep, buf, (size_t)n, (struct sockaddr *)&src, srclen);
        if (ep->fd != w->fd)
            break; /* rebound from a callback */
    }
}

/* ---------------------------------------------------------------- endpoint */

static int open_socket(tb_quic_endpoint *ep, const struct sockaddr_storage *addr, socklen_t len)
{
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_quic_addr_format((const struct sockaddr *)addr, a, sizeof(a));
    int fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tb_log_error(ep->log, "quic: socket for %s: %s", a, strerror(errno));
        return TB_ERR_IO;
    }
    int one = 1;
    if (addr->ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
        tb_log_error(ep->log, "quic: cannot bind %s: %s", a, strerror(errno));
        close(fd);
        return TB_ERR_IO;
    }
    ep->locallen = sizeof(ep->local);
    if (getsockname(fd, (struct sockaddr *)&ep->local, &ep->locallen) != 0) {
        close(fd);
        return TB_ERR_IO;
    }
    ep->fd = fd;
    return TB_OK;
}

static int apply_config(tb_quic_endpoint *ep, const tb_quic_config *cfg)
{
    if (cfg->mode < TB_QUIC_MODE_SERVER || cfg->mode > TB_QUIC_MODE_HYBRID) {
        tb_log_error(ep->log, "quic: mode must be server, client or hybrid");
        return TB_ERR_INVAL;
    }
    if (!cfg->node_name || !cfg->node_name[0] || strlen(cfg->node_name) >= TB_QUIC_NAME_MAX) {
        tb_log_error(ep->log, "quic: node_name missing or longer than %d", TB_QUIC_NAME_MAX - 1);
        return TB_ERR_INVAL;
    }
    if (cfg->max_message_size > UINT32_MAX) {
        tb_log_error(ep->log, "quic: max_message_size over 4 GiB");
        return TB_ERR_INVAL;
    }
    ep->mode = cfg->mode;
    snprintf(ep->name, sizeof(ep->name), "%s", cfg->node_name);
    ep->retry = cfg->retry < 0 ? (cfg->mode & TB_QUIC_MODE_SERVER) != 0 : cfg->retry != 0;
    ep->idle_ns = cfg->idle_timeout_ns ? cfg->idle_timeout_ns : 30 * NGTCP2_SECONDS;
    ep->keep_alive_ns = cfg->keep_alive_ns ? cfg->keep_alive_ns : ep->idle_ns / 3;
    ep->connect_timeout_ns =
        cfg->connect_timeout_ns ? cfg->connect_timeout_ns : 10 * NGTCP2_SECONDS;
    ep->max_msg = cfg->max_message_size ? cfg->max_message_size : (size_t)64 * 1024;
    ep->max_conns = cfg->max_connections ? cfg->max_connections : 256;
    return TB_OK;
}

int tb_quic_endpoint_create(tb_quic_endpoint **out, struct ev_loop *loop, const tb_log *log,
                            const tb_clock *clock, const tb_quic_config *cfg,
                            const tb_quic_callbacks *cb)
{
    tb_quic_endpoint *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return TB_ERR_NOMEM;
    ep->loop = loop;
    ep->log = log;
    ep->clock = clock;
    ep->fd = -1;
    if (cb)
        ep->cb = *cb;
    int rv = apply_config(ep, cfg);
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    const char *listen = cfg->listen ? cfg->listen : "0.0.0.0:0";
    if (rv == TB_OK && tb_quic_addr_parse(listen, &addr, &addrlen) != TB_OK) {
        tb_log_error(log, "quic: listen address \"%s\" is not ADDR:PORT or [ADDR]:PORT", listen);
        rv = TB_ERR_INVAL;
    }
    if (rv == TB_OK && cfg->static_secret)
        memcpy(ep->secret, cfg->static_secret, sizeof(ep->secret));
    else if (rv == TB_OK)
        rv = tb_quic_tls_random(ep->secret, sizeof(ep->secret));
    if (rv == TB_OK && (!cfg->cert_file || !cfg->key_file) && cfg->mode != TB_QUIC_MODE_CLIENT) {
        tb_log_error(log, "quic: a server or hybrid endpoint needs cert_file and key_file");
        rv = TB_ERR_INVAL;
    }
    if (rv == TB_OK)
        rv = tb_quic_tls_ctx_create(&ep->tls, cfg->cert_file, cfg->key_file, cfg->ca_file, log);
    if (rv == TB_OK)
        rv = open_socket(ep, &addr, addrlen);
    if (rv != TB_OK) {
        tb_quic_endpoint_destroy(ep);
        return rv;
    }
    ev_io_init(&ep->rio, on_readable, ep->fd, EV_READ);
    ep->rio.data = ep;
    ev_io_start(loop, &ep->rio);
    ev_timer_init(&ep->reap, on_reap, 0., 0.);
    ep->reap.data = ep;
    ev_prepare_init(&ep->flush, on_flush);
    ep->flush.data = ep;
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_quic_addr_format((const struct sockaddr *)&ep->local, a, sizeof(a));
    tb_log_info(log, "quic: %s endpoint %s on %s (retry %s)",
                ep->mode == TB_QUIC_MODE_HYBRID   ? "hybrid"
                : ep->mode == TB_QUIC_MODE_SERVER ? "server"
                                                  : "client",
                ep->name, a, ep->retry ? "on" : "off");
    *out = ep;
    return TB_OK;
}

void tb_quic_endpoint_destroy(tb_quic_endpoint *ep)
{
    if (!ep)
        return;
    for (tb_quic_conn *c = ep->conns, *next; c; c = next) {
        next = c->next;
        conn_free(c);
    }
    if (ep->fd >= 0) {
        ev_io_stop(ep->loop, &ep->rio);
        close(ep->fd);
    }
    if (ep->loop) {
        ev_timer_stop(ep->loop, &ep->reap);
        ev_prepare_stop(ep->loop, &ep->flush);
    }
    tb_quic_tls_ctx_free(ep->tls);
    free(ep);
}

int tb_quic_endpoint_local_addr(const tb_quic_endpoint *ep, struct sockaddr_storage *out,
                                socklen_t *len)
{
    memcpy(out, &ep->local, sizeof(*out));
    *len = ep->locallen;
    return TB_OK;
}

const tb_quic_stats *tb_quic_endpoint_stats(const tb_quic_endpoint *ep)
{
    return &ep->stats;
}

int tb_quic_endpoint_rebind(tb_quic_endpoint *ep)
{
    struct sockaddr_storage addr = ep->local;
    socklen_t len = ep->locallen;
    if (addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&addr)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&addr)->sin6_port = 0;
    int oldfd = ep->fd;
    ev_io_stop(ep->loop, &ep->rio);
    if (open_socket(ep, &addr, len) != TB_OK) {
        ep->fd = oldfd;
        ev_io_start(ep->loop, &ep->rio);
        return TB_ERR_IO;
    }
    close(oldfd);
    ev_io_set(&ep->rio, ep->fd, EV_READ);
    ev_io_start(ep->loop, &ep->rio);
    ngtcp2_addr local = {.addr = (ngtcp2_sockaddr *)&ep->local, .addrlen = ep->locallen};
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!c->dead && !c->closing)
            ngtcp2_conn_set_local_addr(c->conn, &local);
    }
    return TB_OK;
}

/* ---------------------------------------------------------------- dialling */

int tb_quic_dial_sa(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen,
                    const char *expected_name, tb_quic_conn **out)
{
    if (!(ep->mode & TB_QUIC_MODE_CLIENT) || ep->shutting_down)
        return TB_ERR_STATE;
    if (sa->sa_family != ep->local.ss_family)
        return TB_ERR_INVAL;
    if (ep->nconns >= ep->max_conns)
        return TB_ERR_FULL;
    tb_quic_conn *c = conn_alloc(ep, sa, salen, 0);
    if (!c)
        return TB_ERR_NOMEM;
    ngtcp2_cid scid, dcid;
    dcid.datalen = CLIENT_DCID_LEN;
    if (new_cid(c, &scid, SCID_LEN, NULL) != 0 ||
        tb_quic_tls_random(dcid.data, CLIENT_DCID_LEN) != TB_OK) {
        conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    conn_setup st;
    setup_init(&st, c);
    int rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &st.path, NGTCP2_PROTO_VER_V1, &st.cb,
                                    &st.s, &st.p, NULL, c);
    if (rv != 0) {
        conn_unbuilt_free(c);
        return TB_ERR_CRYPTO;
    }
    rv = conn_attach_tls(c, expected_name);
    if (rv < 0) {
        conn_unbuilt_free(c);
        return rv;
    }
    conn_link(ep, c);
    ep->stats.dialled++;
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_debug(ep->log, "quic: dialling %s%s%s", conn_addr(c, a),
                 expected_name ? " expecting " : "", expected_name ? expected_name : "");
    if (out)
        *out = c;
    conn_write(c);
    return TB_OK;
}

int tb_quic_dial(tb_quic_endpoint *ep, const char *addr, const char *expected_name,
                 tb_quic_conn **out)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (tb_quic_addr_parse(addr, &sa, &len) != TB_OK) {
        tb_log_error(ep->log, "quic: peer address \"%s\" is not ADDR:PORT or [ADDR]:PORT",
                     addr ? addr : "(null)");
        return TB_ERR_INVAL;
    }
    return tb_quic_dial_sa(ep, (struct sockaddr *)&sa, len, expected_name, out);
}

/* ---------------------------------------------------------------- messages */

tb_quic_conn *tb_quic_find_peer(tb_quic_endpoint *ep, const char *name)
{
    return name ? find_connected(ep, name, NULL) : NULL;
}

const tb_quic_peer *tb_quic_conn_peer(const tb_quic_conn *c)
{
    return &c->peer;
}

uint64_t tb_quic_conn_srtt(const tb_quic_conn *c)
{
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->conn, &st);
    return st.smoothed_rtt;
}

static int usable(const tb_quic_conn *c)
{
    return c && c->connected && !c->closing && !c->dead && !c->close_requested;
}

/* Queues bytes for a new stream: the frame header (when framed) then data. */
static int queue_stream(tb_quic_conn *c, int framed, const uint8_t *data, size_t len)
{
    if (!usable(c))
        return TB_ERR_STATE;
    if (c->ntx >= MAX_TX_QUEUE)
        return TB_ERR_FULL;
    size_t hdr = framed ? 4 : 0;
    txmsg *m = malloc(sizeof(*m) + hdr + len);
    if (!m)
        return TB_ERR_NOMEM;
    m->next = NULL;
    m->id = -1;
    m->blocked = 0;
    m->len = hdr + len;
    m->sent = 0;
    if (framed)
        tb_put_be32(m->data, (uint32_t)len);
    memcpy(m->data + hdr, data, len);
    if (c->tx_tail)
        c->tx_tail->next = m;
    else
        c->tx_head = m;
    c->tx_tail = m;
    c->ntx++;
    c->ep->stats.msgs_sent++;
    if (!c->in_ngtcp2)
        conn_write(c);
    return TB_OK;
}

int tb_quic_send_stream(tb_quic_conn *c, const uint8_t *msg, size_t len)
{
    if (c && len > c->ep->max_msg)
        return TB_ERR_TOO_BIG;
    if (len == 0)
        return TB_ERR_INVAL;
    return queue_stream(c, 1, msg, len);
}

int tb_quic_send_stream_raw(tb_quic_conn *c, const uint8_t *bytes, size_t len)
{
    if (len == 0 || len > UINT32_MAX)
        return TB_ERR_INVAL;
    return queue_stream(c, 0, bytes, len);
}

int tb_quic_send_stream_to(tb_quic_endpoint *ep, const char *peer_name, const uint8_t *msg,
                           size_t len)
{
    tb_quic_conn *c = tb_quic_find_peer(ep, peer_name);
    return c ? tb_quic_send_stream(c, msg, len) : TB_ERR_NOTFOUND;
}

int tb_quic_send_datagram(tb_quic_conn *c, const uint8_t *data, size_t len)
{
    if (!usable(c))
        return TB_ERR_STATE;
    /* A datagram is never split: it must fit one packet with its headers and AEAD tag. */
    if (len + DGRAM_OVERHEAD > ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn))
        return TB_ERR_TOO_BIG;
    if (!c->in_ngtcp2) {
        int rv = dgram_send_now(c, data, len);
        conn_write(c);
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

void tb_quic_close(tb_quic_conn *c, uint64_t app_code)
{
    if (!c || c->closing || c->dead)
        return;
    set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE, app_code, 1);
    conn_close_app(c, app_code);
}

void tb_quic_endpoint_shutdown(tb_quic_endpoint *ep)
{
    ep->shutting_down = 1;
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!c->closing && !c->dead) {
            set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE, TB_QUIC_APP_SHUTDOWN, 1);
            conn_close_app(c, TB_QUIC_APP_SHUTDOWN);
        }
    }
    /* Every CONNECTION_CLOSE went out synchronously above; report from the loop. */
    ep->shutdown_pending = 1;
    schedule_reap(ep);
}
