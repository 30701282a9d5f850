#include "sources/sock_driver.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/bytes.h"
#include "sources/sock_sample.h"

/* Datagrams read per wake-up: a writer flooding the socket cannot hold the loop. */
#define SOCK_BURST 32

typedef struct sock_drv {
    tb_source *src;
    struct sockaddr_un sun;
    int64_t precision_ns, delay_ns;
    int fd;
    ev_io io;
    dev_t dev; /* the socket file we bound, so stop removes only that one */
    ino_t ino;
    tb_sock_stats stats;
} sock_drv;

static int sock_create(tb_source *src, const tb_source_config *cfg, void **state)
{
    sock_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return TB_ERR_NOMEM;
    if (strlen(cfg->address) >= sizeof(d->sun.sun_path)) {
        free(d);
        return TB_ERR_TOO_BIG;
    }
    d->src = src;
    d->sun.sun_family = AF_UNIX;
    memcpy(d->sun.sun_path, cfg->address, strlen(cfg->address) + 1);
    d->precision_ns = cfg->precision_ns;
    d->delay_ns = cfg->delay_ns;
    d->fd = -1;
    *state = d;
    return 0;
}

static void deliver(sock_drv *d, const tb_sock_sample *smp)
{
    const tb_source_env *env = tb_source_env_of(d->src);
    int64_t now_real = tb_clock_real(env->clock);
    uint64_t now_mono = tb_clock_mono(env->clock);
    int64_t age = now_real - smp->real_ns;
    if (age > TB_SOCK_MAX_AGE_S * INT64_C(1000000000) ||
        age < -TB_SOCK_MAX_AGE_S * INT64_C(1000000000)) {
        d->stats.stale++;
        return;
    }
    if (smp->pulse) {
        d->stats.pulse++;
        return;
    }
    uint64_t back = age > 0 ? (uint64_t)age : 0;
    tb_source_meas m = {
        .mono_ns = now_mono > back ? now_mono - back : 0,
        .real_ns = smp->real_ns,
        .offset_ns = smp->offset_ns,
        .delay_ns = d->delay_ns,
        .error_ns = d->precision_ns + d->delay_ns / 2,
        .stratum = 0, /* a reference clock */
        .refid = tb_get_be32((const uint8_t *)"SOCK"),
    };
    d->stats.accepted++;
    tb_source_deliver(d->src, &m);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    sock_drv *d = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < SOCK_BURST; i++) {
        uint8_t buf[TB_SOCK_SAMPLE_LEN + 1];
        /* MSG_TRUNC: the real length, so an oversized datagram is not read as a good prefix. */
        ssize_t n = recv(d->fd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0)
            return; /* EAGAIN, or an error the next readiness will show again */
        d->stats.received++;
        tb_sock_sample smp;
        if (tb_sock_sample_parse(buf, (size_t)n, &smp) != 0) {
            d->stats.malformed++;
            continue;
        }
        deliver(d, &smp);
    }
}

/* A socket file nobody is bound to refuses a connection: that one is stale and may go. */
static int clear_path(sock_drv *d)
{
    const char *path = d->sun.sun_path;
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        tb_source_set_state(d->src, TB_SOURCE_STOPPED, "%s: %s", path, strerror(errno));
        return TB_ERR_IO;
    }
    if (!S_ISSOCK(st.st_mode)) {
        tb_source_set_state(d->src, TB_SOURCE_STOPPED, "%s exists and is not a socket", path);
        return TB_ERR_EXISTS;
    }
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return TB_ERR_IO;
    int rc = connect(probe, (const struct sockaddr *)&d->sun, sizeof(d->sun));
    int why = errno;
    close(probe);
    if (rc == 0) {
        tb_source_set_state(d->src, TB_SOURCE_STOPPED, "%s is in use by another process", path);
        return TB_ERR_EXISTS;
    }
    if (why != ECONNREFUSED || unlink(path) != 0) {
        tb_source_set_state(d->src, TB_SOURCE_STOPPED, "%s: cannot replace: %s", path,
                            strerror(why != ECONNREFUSED ? why : errno));
        return TB_ERR_IO;
    }
    return 0;
}

static int sock_start(tb_source *src, void *state)
{
    sock_drv *d = state;
    int err = clear_path(d);
    if (err < 0)
        return err;
    d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat st;
    if (d->fd < 0 || bind(d->fd, (const struct sockaddr *)&d->sun, sizeof(d->sun)) != 0 ||
        stat(d->sun.sun_path, &st) != 0) {
        tb_source_set_state(src, TB_SOURCE_STOPPED, "%s: bind: %s", d->sun.sun_path,
                            strerror(errno));
        if (d->fd >= 0)
            close(d->fd);
        d->fd = -1;
        return TB_ERR_IO;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    ev_io_init(&d->io, on_readable, d->fd, EV_READ);
    d->io.data = d;
    ev_io_start(tb_source_env_of(src)->loop, &d->io);
    tb_source_set_state(src, TB_SOURCE_STARTING, "listening on %s", d->sun.sun_path);
    return 0;
}

static void sock_stop(tb_source *src, void *state)
{
    sock_drv *d = state;
    if (d->fd < 0)
        return;
    ev_io_stop(tb_source_env_of(src)->loop, &d->io);
    close(d->fd);
    d->fd = -1;
    struct stat st;
    if (lstat(d->sun.sun_path, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino)
        (void)unlink(d->sun.sun_path);
}

static void sock_poll(tb_source *src, void *state)
{
    (void)src;
    (void)state; /* one-way: samples arrive when the writer has them */
}

static void sock_destroy(void *state)
{
    free(state);
}

static void sock_describe(const void *state, char *buf, size_t len)
{
    const sock_drv *d = state;
    snprintf(buf, len, "samples %llu, used %llu, malformed %llu, stale %llu, pulse-only %llu",
             (unsigned long long)d->stats.received, (unsigned long long)d->stats.accepted,
             (unsigned long long)d->stats.malformed, (unsigned long long)d->stats.stale,
             (unsigned long long)d->stats.pulse);
}

static const tb_source_driver sock_driver = {
    .kind = TB_SOURCE_SOCK,
    .create = sock_create,
    .start = sock_start,
    .stop = sock_stop,
    .poll = sock_poll,
    .destroy = sock_destroy,
    .describe = sock_describe,
};

const tb_source_driver *tb_sock_driver(void)
{
    return &sock_driver;
}

const tb_sock_stats *tb_sock_driver_stats(const tb_source *s)
{
    const sock_drv *d = tb_source_driver_state(s);
    return d && tb_source_identity(s)->kind == TB_SOURCE_SOCK ? &d->stats : NULL;
}
