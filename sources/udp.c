#include "sources/udp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int tb_source_udp_open(const tb_addr *a, bool *kernel_ts, int *fd)
{
    *fd = -1;
    int s = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return TB_ERR_IO;
    int one = 1;
    *kernel_ts = setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) == 0;
    if (connect(s, (const struct sockaddr *)&a->ss, a->len) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return TB_ERR_IO;
    }
    *fd = s;
    return 0;
}

bool tb_source_udp_rx_time(const tb_clock *clk, struct msghdr *msg, int64_t *real, uint64_t *mono)
{
    *real = tb_clock_real(clk);
    *mono = tb_clock_mono(clk);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS ||
            c->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
            continue;
        struct timespec k, now;
        memcpy(&k, CMSG_DATA(c), sizeof(k));
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t age = ((int64_t)now.tv_sec - k.tv_sec) * 1000000000 + (now.tv_nsec - k.tv_nsec);
        if (age >= 0 && age < 1000000000) {
            *real -= age;
            *mono -= (uint64_t)age;
            return true;
        }
    }
    return false;
}

static void udp_log(const tb_source_udp *u, tb_log_level lvl, const char *what, const char *detail)
{
    const tb_source_id *id = tb_source_identity(u->src);
    tb_log_write(tb_source_env_of(u->src)->log, lvl, "%s %s%s%s: %s: %s",
                 tb_source_kind_name(id->kind), id->name, id->address[0] ? " " : "", id->address,
                 what, detail);
}

int tb_source_udp_init(tb_source_udp *u, tb_source *src, const char *where, uint16_t default_port,
                       uint64_t retry_ns, tb_source_udp_ready_cb on_ready,
                       tb_source_udp_recv_cb on_recv, void *arg)
{
    memset(u, 0, sizeof(*u));
    u->src = src;
    u->fd = -1;
    u->retry_ns = retry_ns;
    u->on_ready = on_ready;
    u->on_recv = on_recv;
    u->arg = arg;
    tb_addr_hostport hp;
    if (tb_addr_parse_default(where, strlen(where), default_port, 0, &hp, NULL) != TB_OK)
        return TB_ERR_INVAL;
    snprintf(u->host, sizeof(u->host), "%s", hp.host);
    snprintf(u->port, sizeof(u->port), "%u", (unsigned)hp.port);
    u->numeric = tb_addr_from_hostport(&hp, &u->addr) == TB_OK;
    return 0;
}

static void close_socket(tb_source_udp *u)
{
    u->have_addr = false;
    if (u->fd < 0)
        return;
    ev_io_stop(tb_source_env_of(u->src)->loop, &u->io);
    close(u->fd);
    u->fd = -1;
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_source_udp *u = w->data;
    (void)loop;
    (void)revents;
    /* A bounded number per wake-up, so a flood cannot hold the loop. */
    for (int i = 0; i < 16 && u->fd >= 0; i++) {
        union {
            char b[CMSG_SPACE(sizeof(struct timespec)) + 64];
            struct cmsghdr align;
        } ctl;
        tb_addr from = {.len = sizeof(from.ss)};
        struct iovec iov = {.iov_base = u->buf, .iov_len = sizeof(u->buf)};
        struct msghdr msg = {.msg_name = &from.ss,
                             .msg_namelen = from.len,
                             .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b)};
        ssize_t n = recvmsg(u->fd, &msg, MSG_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error (ECONNREFUSED) that a missed poll will show */
        from.len = msg.msg_namelen;
        if (!tb_addr_equal(&from, &u->addr)) {
            u->n_foreign++;
            continue;
        }
        int64_t real;
        uint64_t mono;
        if (tb_source_udp_rx_time(tb_source_env_of(u->src)->clock, &msg, &real, &mono))
            u->n_kernel_ts++;
        else
            u->n_clock_ts++;
        u->on_recv(u->arg, u->buf, (size_t)n, (msg.msg_flags & MSG_TRUNC) != 0, real, mono);
    }
}

/* The address is known: open the socket, then the driver starts. */
static int begin(tb_source_udp *u)
{
    char a[TB_SOURCE_ADDR_MAX];
    bool kernel_ts;
    tb_addr_format(&u->addr, a, sizeof(a));
    tb_source_set_address(u->src, a);
    if (u->addr_only) {
        u->have_addr = true;
        u->on_ready(u->arg);
        return 0;
    }
    if (tb_source_udp_open(&u->addr, &kernel_ts, &u->fd) < 0) {
        udp_log(u, TB_LOG_WARN, "connect failed", strerror(errno));
        return TB_ERR_IO;
    }
    if (!kernel_ts)
        udp_log(u, TB_LOG_DEBUG, "no kernel timestamps", "SO_TIMESTAMPNS refused");
    ev_io_init(&u->io, read_cb, u->fd, EV_READ);
    u->io.data = u;
    ev_io_start(tb_source_env_of(u->src)->loop, &u->io);
    u->have_addr = true;
    u->on_ready(u->arg);
    return 0;
}

static void resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    tb_source_udp *u = arg;
    uint64_t retry = tb_clock_mono(tb_source_env_of(u->src)->clock) + u->retry_ns;
    u->resolving = false;
    if (err < 0 || n == 0) {
        tb_source_set_state(u->src, TB_SOURCE_UNREACHABLE, "cannot resolve %s: %s", u->host,
                            why ? why : tb_strerror(err));
        tb_source_schedule(u->src, retry);
        return;
    }
    u->addr = addrs[0];
    if (begin(u) < 0) {
        tb_source_set_state(u->src, TB_SOURCE_UNREACHABLE, "cannot open a socket to %s", u->host);
        tb_source_schedule(u->src, retry);
    }
}

void tb_source_udp_resolve(tb_source_udp *u)
{
    const tb_source_env *env = tb_source_env_of(u->src);
    close_socket(u);
    if (!env->resolver) {
        tb_source_set_state(u->src, TB_SOURCE_UNREACHABLE, "%s is a name and no resolver is set",
                            u->host);
        return;
    }
    if (env->resolver->resolve(env->resolver, u->host, u->port, resolved, u, &u->ticket) == 0)
        u->resolving = true;
    else
        tb_source_set_state(u->src, TB_SOURCE_UNREACHABLE, "cannot start resolving %s", u->host);
}

int tb_source_udp_start(tb_source_udp *u)
{
    if (u->numeric)
        return begin(u);
    tb_source_udp_resolve(u);
    return 0;
}

void tb_source_udp_stop(tb_source_udp *u)
{
    const tb_source_env *env = tb_source_env_of(u->src);
    if (u->resolving && env->resolver)
        env->resolver->cancel(env->resolver, u->ticket);
    u->resolving = false;
    close_socket(u);
}

int tb_source_udp_send(tb_source_udp *u, const uint8_t *p, size_t n)
{
    if (u->fd < 0)
        return TB_ERR_STATE;
    return send(u->fd, p, n, 0) == (ssize_t)n ? 0 : TB_ERR_IO;
}

const char *tb_source_udp_status(const tb_source_udp *u)
{
    return u->resolving ? "resolving" : "no address";
}
