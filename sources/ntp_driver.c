#include "sources/ntp_driver.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sources/resolver.h"
#include "sources/udp.h"

typedef struct ntp_drv {
    tb_source *src;
    tb_ntp_client_config ccfg;
    tb_ntp_client client;
    bool have_client;
    char host[TB_SOURCE_NAME_MAX];
    char port[8];
    bool numeric;
    tb_addr addr;
    int fd;
    ev_io io;
    uint64_t ticket;
    bool resolving;
    uint64_t n_foreign; /* datagrams from another address, ignored */
    uint64_t n_kernel_ts, n_clock_ts;
} ntp_drv;

static void drv_log(const ntp_drv *d, tb_log_level lvl, const char *what, const char *detail)
{
    const tb_source_id *id = tb_source_identity(d->src);
    tb_log_write(tb_source_env_of(d->src)->log, lvl, "ntp %s%s%s: %s%s%s", id->name,
                 id->address[0] ? " " : "", id->address, what, detail ? ": " : "",
                 detail ? detail : "");
}

static int ntp_create(tb_source *src, const tb_source_config *cfg, void **state)
{
    ntp_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return TB_ERR_NOMEM;
    d->src = src;
    d->fd = -1;
    tb_ntp_client_config_default(&d->ccfg);
    d->ccfg.minpoll = cfg->minpoll;
    d->ccfg.maxpoll = cfg->maxpoll;
    d->ccfg.unreach_after = cfg->unreach_after;
    /* The start-up burst is never slower than the configured minimum poll. */
    uint64_t minpoll_ns = (uint64_t)tb_ntp_log2_to_ns(cfg->minpoll);
    if (minpoll_ns < d->ccfg.burst_interval_ns)
        d->ccfg.burst_interval_ns = minpoll_ns;
    const char *where =
        tb_source_identity(src)->address[0] ? tb_source_identity(src)->address : cfg->address;
    int err = tb_ntp_client_config_check(&d->ccfg);
    if (err == 0)
        err = tb_hostport_split(where, "123", d->host, sizeof(d->host), d->port, sizeof(d->port));
    if (err < 0) {
        free(d);
        return err;
    }
    d->numeric = tb_addr_numeric(d->host, d->port, &d->addr) == 0;
    *state = d;
    return 0;
}

static void close_socket(ntp_drv *d)
{
    if (d->fd < 0)
        return;
    ev_io_stop(tb_source_env_of(d->src)->loop, &d->io);
    close(d->fd);
    d->fd = -1;
}

static void receive_time(ntp_drv *d, struct msghdr *msg, int64_t *real, uint64_t *mono)
{
    if (tb_source_udp_rx_time(tb_source_env_of(d->src)->clock, msg, real, mono))
        d->n_kernel_ts++;
    else
        d->n_clock_ts++;
}

static void deliver(ntp_drv *d, const tb_ntp_result *res)
{
    const tb_ntp_sample *s = res->sample;
    tb_source_meas m = {
        .mono_ns = s->mono_ns,
        .real_ns = s->t4,
        .sent_real_ns = s->t1,
        .offset_ns = s->offset_ns,
        .delay_ns = s->delay_ns,
        .error_ns = res->error_ns,
        .stratum = s->stratum,
        .refid = s->refid,
        .request = s->request,
        .request_len = sizeof(s->request),
        .response = s->response,
        .response_len = sizeof(s->response),
    };
    tb_source_deliver(d->src, &m);
}

static void handle_reply(ntp_drv *d, const uint8_t *buf, size_t n, int64_t t4, uint64_t mono)
{
    tb_ntp_result res;
    tb_ntp_reject r = tb_ntp_client_receive(&d->client, buf, n, t4, mono, &res);
    if (r == TB_NTP_ACCEPTED) {
        if (res.sample)
            deliver(d, &res);
        else if (tb_source_state_of(d->src) != TB_SOURCE_REACHABLE)
            tb_source_set_state(d->src, TB_SOURCE_REACHABLE, "measuring");
        return;
    }
    drv_log(d, r == TB_NTP_REJ_KOD_RATE ? TB_LOG_INFO : TB_LOG_DEBUG, "reply rejected",
            tb_ntp_reject_name(r));
    if (d->client.state == TB_NTP_CLIENT_DEMOBILISED) {
        close_socket(d);
        tb_source_schedule(d->src, UINT64_MAX);
        tb_source_set_state(d->src, TB_SOURCE_DEMOBILISED, "kiss-o'-death %s from the server",
                            d->client.kiss);
    } else if (r == TB_NTP_REJ_KOD_RATE) {
        tb_source_schedule(d->src, tb_ntp_client_next_poll(&d->client));
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ntp_drv *d = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 16 && d->fd >= 0; i++) {
        uint8_t buf[1024];
        union {
            char b[TB_SOURCE_UDP_CMSG_SPACE];
            struct cmsghdr align;
        } ctl;
        tb_addr from = {.len = sizeof(from.ss)};
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr msg = {.msg_name = &from.ss,
                             .msg_namelen = from.len,
                             .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b)};
        ssize_t n = recvmsg(d->fd, &msg, MSG_DONTWAIT);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error (ECONNREFUSED) that a missed poll will show */
        from.len = msg.msg_namelen;
        if (!tb_addr_equal(&from, &d->addr)) {
            d->n_foreign++;
            continue;
        }
        int64_t t4;
        uint64_t mono;
        receive_time(d, &msg, &t4, &mono);
        handle_reply(d, buf, (size_t)n, t4, mono);
    }
}

static int open_socket(ntp_drv *d)
{
    bool kernel_ts;
    int fd;
    if (tb_source_udp_open(&d->addr, &kernel_ts, &fd) < 0) {
        drv_log(d, TB_LOG_WARN, "connect failed", strerror(errno));
        return TB_ERR_IO;
    }
    if (!kernel_ts)
        drv_log(d, TB_LOG_DEBUG, "no kernel timestamps", "SO_TIMESTAMPNS refused");
    d->fd = fd;
    ev_io_init(&d->io, read_cb, fd, EV_READ);
    d->io.data = d;
    ev_io_start(tb_source_env_of(d->src)->loop, &d->io);
    return 0;
}

/* The address is known: open the socket and start polling now. */
static int begin(ntp_drv *d)
{
    char a[TB_SOURCE_ADDR_MAX];
    tb_addr_format(&d->addr, a, sizeof(a));
    tb_source_set_address(d->src, a);
    int err = open_socket(d);
    if (err < 0)
        return err;
    uint64_t now = tb_clock_mono(tb_source_env_of(d->src)->clock);
    tb_ntp_client_init(&d->client, &d->ccfg, now);
    d->have_client = true;
    tb_source_schedule(d->src, tb_ntp_client_next_poll(&d->client));
    return 0;
}

static void resolve(ntp_drv *d);

static void resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    ntp_drv *d = arg;
    d->resolving = false;
    uint64_t retry = (uint64_t)tb_ntp_log2_to_ns(d->ccfg.minpoll);
    if (err < 0 || n == 0) {
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "cannot resolve %s: %s", d->host,
                            why ? why : tb_strerror(err));
        tb_source_schedule(d->src, tb_clock_mono(tb_source_env_of(d->src)->clock) + retry);
        return;
    }
    d->addr = addrs[0];
    if (begin(d) < 0) {
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "cannot open a socket to %s", d->host);
        tb_source_schedule(d->src, tb_clock_mono(tb_source_env_of(d->src)->clock) + retry);
    }
}

static void resolve(ntp_drv *d)
{
    const tb_source_env *env = tb_source_env_of(d->src);
    close_socket(d);
    d->have_client = false;
    if (!env->resolver) {
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "%s is a name and no resolver is set",
                            d->host);
        return;
    }
    if (env->resolver->resolve(env->resolver, d->host, d->port, resolved, d, &d->ticket) == 0)
        d->resolving = true;
    else
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "cannot start resolving %s", d->host);
}

static int ntp_start(tb_source *src, void *state)
{
    ntp_drv *d = state;
    if (d->numeric)
        return begin(d);
    resolve(d);
    return 0;
}

static void ntp_stop(tb_source *src, void *state)
{
    ntp_drv *d = state;
    const tb_source_env *env = tb_source_env_of(src);
    if (d->resolving && env->resolver)
        env->resolver->cancel(env->resolver, d->ticket);
    d->resolving = false;
    close_socket(d);
}

static void note_unreachable(ntp_drv *d)
{
    const tb_ntp_client *c = &d->client;
    if (c->last_reject != TB_NTP_ACCEPTED && c->n_received > 0)
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE,
                            "no valid reply to %u polls (last reply: %s)", c->missed,
                            tb_ntp_reject_name(c->last_reject));
    else
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "no reply to %u polls", c->missed);
}

static void ntp_poll(tb_source *src, void *state)
{
    ntp_drv *d = state;
    const tb_source_env *env = tb_source_env_of(src);
    if (!d->have_client) {
        if (!d->resolving)
            resolve(d);
        return;
    }
    uint8_t rnd[8], req[TB_NTP_HEADER_LEN];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        drv_log(d, TB_LOG_ERROR, "getrandom failed", strerror(errno));
        tb_source_schedule(src, tb_clock_mono(env->clock) + TB_NS_PER_SEC);
        return;
    }
    uint64_t now = tb_clock_mono(env->clock);
    int64_t t1 = tb_clock_real(env->clock);
    if (tb_ntp_client_poll(&d->client, now, t1, rnd, req) < 0)
        return; /* demobilised */
    if (send(d->fd, req, sizeof(req), 0) != (ssize_t)sizeof(req))
        drv_log(d, TB_LOG_DEBUG, "send failed", strerror(errno));
    if (d->client.state == TB_NTP_CLIENT_UNREACHABLE &&
        tb_source_state_of(src) != TB_SOURCE_UNREACHABLE) {
        note_unreachable(d);
        if (!d->numeric) { /* perhaps the name points elsewhere now */
            resolve(d);
            return;
        }
    }
    tb_source_schedule(src, tb_ntp_client_next_poll(&d->client));
}

static void ntp_destroy(void *state)
{
    free(state);
}

static void ntp_describe(const void *state, char *buf, size_t len)
{
    const ntp_drv *d = state;
    if (!d->have_client) {
        snprintf(buf, len, "%s", d->resolving ? "resolving" : "no address");
        return;
    }
    const tb_ntp_client *c = &d->client;
    uint64_t rejected = 0;
    for (int i = 1; i < TB_NTP_REJ_COUNT; i++)
        rejected += c->rejects[i];
    snprintf(buf, len, "poll 2^%d s, reach %03o, sent %llu, accepted %llu, rejected %llu%s%s",
             c->poll, c->reach, (unsigned long long)c->n_sent, (unsigned long long)c->n_accepted,
             (unsigned long long)rejected, c->last_reject ? ", last: " : "",
             c->last_reject ? tb_ntp_reject_name(c->last_reject) : "");
}

static const tb_source_driver ntp_driver = {
    .kind = TB_SOURCE_NTP,
    .create = ntp_create,
    .start = ntp_start,
    .stop = ntp_stop,
    .poll = ntp_poll,
    .destroy = ntp_destroy,
    .describe = ntp_describe,
};

const tb_source_driver *tb_ntp_driver(void)
{
    return &ntp_driver;
}

const tb_ntp_client *tb_ntp_driver_client(const tb_source *s)
{
    const ntp_drv *d = tb_source_driver_state(s);
    return d && d->have_client ? &d->client : NULL;
}
