/* recvmmsg and sendmmsg are Linux extensions. */
#define _GNU_SOURCE
#include "roughtime/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <unistd.h>

#include "common/addr.h"
#include "roughtime/codec.h"

#define RX_VEC 64
#define RX_BUF 2048
#define RX_BUDGET 4096 /* datagrams per wakeup, so one busy socket cannot starve the loop */
#define TX_BUF 1024
#define TCP_OUT (8 * TX_BUF) /* answers a TCP client may leave unread before it is closed */
#define COOKIE_TCP (UINT64_C(1) << 63) /* | generation << 16 | connection index */

typedef struct rt_conn {
    struct tb_rt_udp *u;
    int fd; /* -1: free */
    uint32_t gen;
    ev_io io;
    ev_timer idle;
    uint8_t in[RX_BUF];
    size_t in_len;
    uint8_t out[TCP_OUT];
    size_t out_len;
} rt_conn;

struct tb_rt_udp {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    tb_rt_srv *srv;
    tb_rt_udp_config cfg;
    int fd;
    uint16_t port;
    ev_io io;
    ev_timer flush;
    ev_timer rotate;
    ev_timer stats;
    /* Peer of each pending request, indexed by its place in the server's queue. */
    struct sockaddr_storage *peers;
    socklen_t *peer_lens;
    unsigned cap;
    /* Receive vectors. */
    struct mmsghdr rx[RX_VEC];
    struct iovec rx_iov[RX_VEC];
    struct sockaddr_storage rx_addr[RX_VEC];
    uint8_t (*rx_buf)[RX_BUF];
    /* Transmit vectors, filled by emit. */
    struct mmsghdr *tx;
    struct iovec *tx_iov;
    uint8_t (*tx_buf)[TX_BUF];
    unsigned ntx;
    uint64_t send_errors;
    /* TCP (cfg.tcp): the listening socket and the connections. */
    int tfd;
    ev_io tio;
    rt_conn *conns;
    uint64_t tcp_accepted, tcp_refused, tcp_closed_slow;
};

void tb_rt_udp_config_default(tb_rt_udp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:" TB_RT_PORT_STR);
    cfg->flush_interval_ns = TB_NS_PER_MS;
    cfg->radius_s = 3;
    cfg->radius_from_kernel = 1;
    cfg->stats_interval_ns = 60 * TB_NS_PER_SEC;
    cfg->cert_warn_ns = 86400 * TB_NS_PER_SEC;
}

/* An offline delegation cannot be renewed here: say so while there is time to run delegate. */
static void warn_expiry(const tb_rt_udp *u)
{
    int64_t maxt = tb_rt_srv_delegation_expiry(u->srv), now = tb_clock_real(u->clock);
    if (maxt == INT64_MAX || maxt - now > (int64_t)u->cfg.cert_warn_ns)
        return;
    char when[TB_CLOCK_RFC3339_LEN];
    tb_clock_format_rfc3339(maxt, when, sizeof(when));
    tb_log_warn(u->log,
                "roughtime: the delegation (CERT) expires at %s, in %.1f h: make a new one with "
                "`tbroughtime delegate` on the machine holding the long-term key",
                when, (double)(maxt - now) / 3.6e12);
}

static uint32_t current_radius(const tb_rt_udp *u)
{
    if (!u->cfg.radius_from_kernel)
        return tb_rt_radius_s(0, 0, u->cfg.radius_s);
    struct timex tx;
    memset(&tx, 0, sizeof(tx));
    int st = adjtimex(&tx);
    int synced = st >= 0 && st != TIME_ERROR && !(tx.status & STA_UNSYNC);
    return tb_rt_radius_s(synced, synced ? (uint64_t)tx.maxerror : 0, u->cfg.radius_s);
}

static void tcp_emit(tb_rt_udp *u, uint64_t cookie, const uint8_t *resp, size_t len);

static void emit(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    tb_rt_udp *u = arg;
    if (cookie & COOKIE_TCP) {
        tcp_emit(u, cookie, resp, len);
        return;
    }
    if (u->ntx == u->cap || cookie >= u->cap || len > TX_BUF)
        return;
    unsigned i = u->ntx++;
    memcpy(u->tx_buf[i], resp, len);
    u->tx_iov[i].iov_base = u->tx_buf[i];
    u->tx_iov[i].iov_len = len;
    memset(&u->tx[i].msg_hdr, 0, sizeof(u->tx[i].msg_hdr));
    u->tx[i].msg_hdr.msg_name = &u->peers[cookie];
    u->tx[i].msg_hdr.msg_namelen = u->peer_lens[cookie];
    u->tx[i].msg_hdr.msg_iov = &u->tx_iov[i];
    u->tx[i].msg_hdr.msg_iovlen = 1;
}

static void send_all(tb_rt_udp *u)
{
    unsigned off = 0;
    while (off < u->ntx) {
        int n = sendmmsg(u->fd, u->tx + off, u->ntx - off, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            /* A full send buffer loses these answers; the clients retry. */
            u->send_errors += u->ntx - off;
            break;
        }
        off += (unsigned)n;
    }
    u->ntx = 0;
}

static void flush_now(tb_rt_udp *u)
{
    ev_timer_stop(u->loop, &u->flush);
    if (tb_rt_srv_pending(u->srv) == 0)
        return;
    int rc = tb_rt_srv_flush(u->srv, tb_clock_real(u->clock), current_radius(u), emit, u);
    if (rc < 0)
        tb_log_error(u->log, "roughtime: signing a batch failed: %s", tb_strerror(rc));
    send_all(u);
}

static void on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    flush_now(w->data);
}

/* Requests wait at most flush_interval for their batch. */
static void arm_flush(tb_rt_udp *u)
{
    if (tb_rt_srv_pending(u->srv) > 0 && !ev_is_active(&u->flush)) {
        ev_timer_set(&u->flush, (double)u->cfg.flush_interval_ns / 1e9, 0.);
        ev_timer_start(u->loop, &u->flush);
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_rt_udp *u = w->data;
    unsigned handled = 0;
    while (handled < RX_BUDGET) {
        for (unsigned i = 0; i < RX_VEC; i++) {
            u->rx_iov[i].iov_base = u->rx_buf[i];
            u->rx_iov[i].iov_len = RX_BUF;
            memset(&u->rx[i].msg_hdr, 0, sizeof(u->rx[i].msg_hdr));
            u->rx[i].msg_hdr.msg_name = &u->rx_addr[i];
            u->rx[i].msg_hdr.msg_namelen = sizeof(u->rx_addr[i]);
            u->rx[i].msg_hdr.msg_iov = &u->rx_iov[i];
            u->rx[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(u->fd, u->rx, RX_VEC, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            unsigned slot = tb_rt_srv_pending(u->srv);
            if (u->rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
                /* Not the packet the client sent, and larger than any request we answer. */
                tb_rt_srv_count_drop(u->srv, TB_RT_DROP_FRAMING);
            } else if (tb_rt_srv_submit(u->srv, u->rx_buf[i], u->rx[i].msg_len, slot) == 0) {
                memcpy(&u->peers[slot], &u->rx_addr[i], sizeof(u->rx_addr[i]));
                u->peer_lens[slot] = u->rx[i].msg_hdr.msg_namelen;
            }
            if (tb_rt_srv_batch_full(u->srv))
                flush_now(u);
        }
        handled += (unsigned)n;
        if (n < RX_VEC)
            break;
    }
    arm_flush(u);
}

/* --- TCP: framed requests from connections, answered on the connection they came from --- */

static void conn_close(rt_conn *c)
{
    ev_io_stop(c->u->loop, &c->io);
    ev_timer_stop(c->u->loop, &c->idle);
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->in_len = c->out_len = 0;
}

/* Writes what it can; the rest waits for EV_WRITE. */
static void conn_write(rt_conn *c)
{
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    int want = EV_READ | (c->out_len ? EV_WRITE : 0);
    if ((c->io.events & (EV_READ | EV_WRITE)) != want) {
        ev_io_stop(c->u->loop, &c->io);
        ev_io_set(&c->io, c->fd, want);
        ev_io_start(c->u->loop, &c->io);
    }
}

static void tcp_emit(tb_rt_udp *u, uint64_t cookie, const uint8_t *resp, size_t len)
{
    unsigned idx = (unsigned)(cookie & 0xffff);
    uint32_t gen = (uint32_t)(cookie >> 16);
    if (!u->conns || idx >= TB_RT_TCP_MAX_CONN)
        return;
    rt_conn *c = &u->conns[idx];
    if (c->fd < 0 || c->gen != gen)
        return; /* closed since it asked */
    if (len > sizeof(c->out) - c->out_len) {
        u->tcp_closed_slow++; /* it does not read its answers */
        conn_close(c);
        return;
    }
    memcpy(c->out + c->out_len, resp, len);
    c->out_len += len;
    conn_write(c);
}

/* Takes every complete packet in c->in; false when the connection was closed. */
static bool conn_requests(rt_conn *c)
{
    tb_rt_udp *u = c->u;
    size_t used = 0, pl;
    for (;;) {
        int rc = tb_rt_frame_next(c->in + used, c->in_len - used, RX_BUF, &pl);
        if (rc < 0) {
            tb_rt_srv_count_drop(u->srv, TB_RT_DROP_FRAMING);
            conn_close(c);
            return false;
        }
        if (pl == 0)
            break;
        uint64_t cookie = COOKIE_TCP | (uint64_t)c->gen << 16 | (uint64_t)(c - u->conns);
        if (tb_rt_srv_submit(u->srv, c->in + used, pl, cookie) < 0) {
            /* counted by the server; as on UDP, an invalid request gets no answer */
        }
        used += pl;
        if (tb_rt_srv_batch_full(u->srv)) {
            uint32_t gen = c->gen;
            flush_now(u);
            if (c->fd < 0 || c->gen != gen)
                return false;
        }
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    return true;
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    rt_conn *c = w->data;
    if (revents & EV_WRITE) {
        conn_write(c);
        if (c->fd < 0)
            return;
    }
    if (!(revents & EV_READ))
        return;
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    ev_timer_again(loop, &c->idle);
    if (conn_requests(c))
        arm_flush(c->u);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn_close(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_rt_udp *u = w->data;
    for (unsigned k = 0; k < 64; k++) {
        int fd = accept4(u->tfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        rt_conn *c = NULL;
        for (unsigned i = 0; i < TB_RT_TCP_MAX_CONN && !c; i++)
            c = u->conns[i].fd < 0 ? &u->conns[i] : NULL;
        if (!c) {
            u->tcp_refused++;
            close(fd);
            continue;
        }
        u->tcp_accepted++;
        c->fd = fd;
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        c->io.data = c;
        ev_timer_init(&c->idle, on_idle, 0., TB_RT_TCP_IDLE_S);
        c->idle.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_again(loop, &c->idle);
    }
}

static int open_tcp(tb_rt_udp *u, const struct sockaddr_storage *bound, socklen_t len)
{
    u->conns = calloc(TB_RT_TCP_MAX_CONN, sizeof(*u->conns));
    if (!u->conns)
        return TB_ERR_NOMEM;
    for (unsigned i = 0; i < TB_RT_TCP_MAX_CONN; i++)
        u->conns[i] = (rt_conn){.u = u, .fd = -1};
    u->tfd = socket(bound->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (u->tfd < 0 || setsockopt(u->tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (u->cfg.reuseport && setsockopt(u->tfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0))
        return TB_ERR_IO;
    if (bind(u->tfd, (const struct sockaddr *)bound, len) < 0 || listen(u->tfd, 64) < 0) {
        tb_log_error(u->log, "roughtime: TCP on %s (port %u): %s", u->cfg.listen, u->port,
                     strerror(errno));
        return TB_ERR_IO;
    }
    ev_io_init(&u->tio, on_accept, u->tfd, EV_READ);
    u->tio.data = u;
    ev_io_start(u->loop, &u->tio);
    return 0;
}

static void arm_rotation(tb_rt_udp *u)
{
    int64_t due = tb_rt_srv_next_rotation(u->srv) - tb_clock_real(u->clock);
    ev_timer_set(&u->rotate, due > 0 ? (double)due / 1e9 : 0., 0.);
    ev_timer_start(u->loop, &u->rotate);
}

static void on_rotate(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_rt_udp *u = w->data;
    /* Pending requests are signed under the key they arrived with. */
    flush_now(u);
    int rc = tb_rt_srv_rotate(u->srv, tb_clock_real(u->clock));
    if (rc < 0)
        tb_log_error(u->log, "roughtime: online key rotation failed: %s", tb_strerror(rc));
    arm_rotation(u);
}

static void on_stats(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_rt_udp *u = w->data;
    tb_rt_srv_report(u->srv, tb_clock_real(u->clock));
    warn_expiry(u);
    if (u->send_errors)
        tb_log_warn(u->log, "roughtime: %llu answers lost to a full send buffer",
                    (unsigned long long)u->send_errors);
    u->send_errors = 0;
    if (u->tcp_accepted || u->tcp_refused || u->tcp_closed_slow)
        tb_log_info(u->log,
                    "roughtime: TCP: %llu connections accepted, %llu refused (all %d in use), "
                    "%llu closed for not reading their answers",
                    (unsigned long long)u->tcp_accepted, (unsigned long long)u->tcp_refused,
                    TB_RT_TCP_MAX_CONN, (unsigned long long)u->tcp_closed_slow);
    u->tcp_accepted = u->tcp_refused = u->tcp_closed_slow = 0;
}

static int open_socket(tb_rt_udp *u)
{
    tb_addr a;
    const char *why = "";
    if (tb_addr_parse_numeric(u->cfg.listen, strlen(u->cfg.listen), TB_ADDR_PORT_ZERO_OK, &a,
                              &why) != TB_OK) {
        tb_log_error(u->log, "roughtime: listen address \"%s\": %s", u->cfg.listen, why);
        return TB_ERR_INVAL;
    }
    struct sockaddr_storage ss = a.ss;
    socklen_t sl = a.len;
    u->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0)
        return TB_ERR_IO;
    int one = 1, rcvbuf = 4 << 20;
    /* Bursts arrive faster than one batch is signed; the kernel caps this at rmem_max. */
    (void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (u->cfg.reuseport && setsockopt(u->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        return TB_ERR_IO;
    if (bind(u->fd, (struct sockaddr *)&ss, sl) < 0) {
        tb_log_error(u->log, "roughtime: bind %s: %s", u->cfg.listen, strerror(errno));
        return TB_ERR_IO;
    }
    sl = sizeof(ss);
    if (getsockname(u->fd, (struct sockaddr *)&ss, &sl) < 0)
        return TB_ERR_IO;
    u->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return u->cfg.tcp ? open_tcp(u, &ss, sl) : 0;
}

int tb_rt_udp_new(struct ev_loop *loop, const tb_log *log, const tb_clock *clock, tb_rt_srv *srv,
                  const tb_rt_udp_config *cfg, tb_rt_udp **out)
{
    tb_rt_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return TB_ERR_NOMEM;
    u->loop = loop;
    u->log = log;
    u->clock = clock;
    u->srv = srv;
    u->cfg = *cfg;
    u->fd = -1;
    u->tfd = -1;
    u->cap = TB_RT_SRV_MAX_QUEUE;
    u->peers = calloc(u->cap, sizeof(*u->peers));
    u->peer_lens = calloc(u->cap, sizeof(*u->peer_lens));
    u->rx_buf = calloc(RX_VEC, sizeof(*u->rx_buf));
    u->tx = calloc(u->cap, sizeof(*u->tx));
    u->tx_iov = calloc(u->cap, sizeof(*u->tx_iov));
    u->tx_buf = calloc(u->cap, sizeof(*u->tx_buf));
    int rc = TB_ERR_NOMEM;
    if (!u->peers || !u->peer_lens || !u->rx_buf || !u->tx || !u->tx_iov || !u->tx_buf ||
        (rc = open_socket(u)) < 0) {
        if (rc == TB_ERR_IO)
            tb_log_error(log, "roughtime: socket for %s: %s", cfg->listen, strerror(errno));
        tb_rt_udp_free(u);
        return rc;
    }
    ev_io_init(&u->io, on_readable, u->fd, EV_READ);
    u->io.data = u;
    ev_init(&u->flush, on_flush);
    u->flush.data = u;
    ev_init(&u->rotate, on_rotate);
    u->rotate.data = u;
    if (cfg->stats_interval_ns) {
        double every = (double)cfg->stats_interval_ns / 1e9;
        ev_timer_init(&u->stats, on_stats, every, every);
    } else {
        ev_init(&u->stats, on_stats);
    }
    u->stats.data = u;
    if (cfg->stats_interval_ns)
        ev_timer_start(loop, &u->stats);
    ev_io_start(loop, &u->io);
    arm_rotation(u);
    warn_expiry(u);
    tb_log_info(log, "roughtime: serving on %s (port %u%s)", cfg->listen, u->port,
                cfg->tcp ? ", UDP and TCP" : "");
    *out = u;
    return 0;
}

uint16_t tb_rt_udp_port(const tb_rt_udp *u)
{
    return u->port;
}

void tb_rt_udp_drain(tb_rt_udp *u)
{
    if (u->fd < 0)
        return;
    flush_now(u);
    ev_io_stop(u->loop, &u->io);
    if (u->tfd >= 0)
        ev_io_stop(u->loop, &u->tio);
    ev_timer_stop(u->loop, &u->flush);
    ev_timer_stop(u->loop, &u->rotate);
    ev_timer_stop(u->loop, &u->stats);
}

void tb_rt_udp_free(tb_rt_udp *u)
{
    if (!u)
        return;
    if (u->fd >= 0) {
        tb_rt_udp_drain(u);
        close(u->fd);
    }
    for (unsigned i = 0; u->conns && i < TB_RT_TCP_MAX_CONN; i++)
        if (u->conns[i].fd >= 0)
            conn_close(&u->conns[i]);
    if (u->tfd >= 0)
        close(u->tfd);
    free(u->conns);
    free(u->peers);
    free(u->peer_lens);
    free(u->rx_buf);
    free(u->tx);
    free(u->tx_iov);
    free(u->tx_buf);
    free(u);
}
