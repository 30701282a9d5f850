#include "sources/rt_tcp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "roughtime/codec.h"

void tb_rt_tcp_init(tb_rt_tcp *t, tb_source *src, tb_rt_tcp_sent_cb on_sent,
                    tb_rt_tcp_recv_cb on_recv, void *arg)
{
    memset(t, 0, sizeof(*t));
    t->src = src;
    t->fd = -1;
    t->on_sent = on_sent;
    t->on_recv = on_recv;
    t->arg = arg;
}

static struct ev_loop *loop_of(const tb_rt_tcp *t)
{
    return tb_source_env_of(t->src)->loop;
}

void tb_rt_tcp_close(tb_rt_tcp *t)
{
    if (t->fd < 0)
        return;
    ev_io_stop(loop_of(t), &t->io);
    ev_timer_stop(loop_of(t), &t->timer);
    close(t->fd);
    t->fd = -1;
}

static void fail(tb_rt_tcp *t, const char *what, int err)
{
    t->n_failed++;
    if (err)
        snprintf(t->last_error, sizeof(t->last_error), "TCP: %s: %s", what, strerror(err));
    else
        snprintf(t->last_error, sizeof(t->last_error), "TCP: %s", what);
    const tb_source_id *id = tb_source_identity(t->src);
    tb_log_write(tb_source_env_of(t->src)->log, TB_LOG_DEBUG, "roughtime %s%s%s: %s", id->name,
                 id->address[0] ? " " : "", id->address, t->last_error);
    tb_rt_tcp_close(t);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    fail(w->data, "no answer in time", 0);
}

/* Connected (or still connecting): write what the kernel takes, then read. */
static void do_write(tb_rt_tcp *t)
{
    if (!t->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err)
            return fail(t, "connect", err);
        t->connected = true;
    }
    const tb_clock *clk = tb_source_env_of(t->src)->clock;
    int64_t real = tb_clock_real(clk);
    uint64_t mono = tb_clock_mono(clk);
    ssize_t n = send(t->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? (void)0 : fail(t, "send", errno);
    if (t->out_off == 0)
        t->on_sent(t->arg, real, mono);
    t->out_off += (size_t)n;
    if (t->out_off < t->out_len)
        return;
    ev_io_stop(loop_of(t), &t->io);
    ev_io_set(&t->io, t->fd, EV_READ);
    ev_io_start(loop_of(t), &t->io);
}

static void do_read(tb_rt_tcp *t)
{
    ssize_t n = recv(t->fd, t->in + t->in_len, sizeof(t->in) - t->in_len, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? (void)0 : fail(t, "recv", errno);
    if (n == 0)
        return fail(t, "the server closed the connection", 0);
    t->in_len += (size_t)n;
    size_t pkt = 0;
    int rc = tb_rt_frame_next(t->in, t->in_len, sizeof(t->in), &pkt);
    if (rc == TB_ERR_TOO_BIG)
        return fail(t, "the server announced a packet longer than we read", 0);
    if (rc < 0)
        return fail(t, "the stream is not Roughtime packets", 0);
    if (pkt == 0)
        return;
    const tb_clock *clk = tb_source_env_of(t->src)->clock;
    int64_t real = tb_clock_real(clk);
    uint64_t mono = tb_clock_mono(clk);
    /* One packet per request: the connection has done its work (and cannot call back again). */
    ev_io_stop(loop_of(t), &t->io);
    ev_timer_stop(loop_of(t), &t->timer);
    close(t->fd);
    t->fd = -1;
    t->on_recv(t->arg, t->in, pkt, real, mono);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    tb_rt_tcp *t = w->data;
    if (revents & EV_WRITE)
        do_write(t);
    else if (revents & EV_READ)
        do_read(t);
}

int tb_rt_tcp_request(tb_rt_tcp *t, const tb_addr *a, const uint8_t *req, size_t n,
                      uint64_t timeout_ns)
{
    if (t->fd >= 0) /* the attempt before is given up: its time ran out */
        fail(t, "no answer in time", 0);
    if (n > sizeof(t->out))
        return TB_ERR_TOO_BIG;
    memcpy(t->out, req, n);
    t->out_len = n;
    t->out_off = 0;
    t->in_len = 0;
    t->connected = false;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(t, "socket", errno);
        return TB_ERR_IO;
    }
    t->n_connects++;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        fail(t, "connect", e);
        errno = e;
        return TB_ERR_IO;
    }
    t->fd = fd;
    ev_io_init(&t->io, on_io, fd, EV_WRITE);
    t->io.data = t;
    ev_io_start(loop_of(t), &t->io);
    ev_timer_init(&t->timer, on_timeout, (double)timeout_ns / 1e9, 0.);
    t->timer.data = t;
    ev_timer_start(loop_of(t), &t->timer);
    return 0;
}
