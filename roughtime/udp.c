/* recvmmsg and sendmmsg are Linux extensions. */
#define _GNU_SOURCE
#include "roughtime/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <unistd.h>

#include "common/addr.h"

#define RX_VEC 64
#define RX_BUF 2048
#define RX_BUDGET 4096 /* datagrams per wakeup, so one busy socket cannot starve the loop */
#define TX_BUF 1024

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
};

void tb_rt_udp_config_default(tb_rt_udp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:" TB_RT_PORT_STR);
    cfg->flush_interval_ns = TB_NS_PER_MS;
    cfg->radius_s = 3;
    cfg->radius_from_kernel = 1;
    cfg->stats_interval_ns = 60 * TB_NS_PER_SEC;
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

static void emit(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    tb_rt_udp *u = arg;
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
    if (tb_rt_srv_pending(u->srv) > 0 && !ev_is_active(&u->flush)) {
        ev_timer_set(&u->flush, (double)u->cfg.flush_interval_ns / 1e9, 0.);
        ev_timer_start(u->loop, &u->flush);
    }
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
    if (u->send_errors)
        tb_log_warn(u->log, "roughtime: %llu answers lost to a full send buffer",
                    (unsigned long long)u->send_errors);
    u->send_errors = 0;
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
    return 0;
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
    tb_log_info(log, "roughtime: serving on %s (port %u)", cfg->listen, u->port);
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
    free(u->peers);
    free(u->peer_lens);
    free(u->rx_buf);
    free(u->tx);
    free(u->tx_iov);
    free(u->tx_buf);
    free(u);
}
