/* The SOCK refclock: the sample parser on crafted bytes, and the driver on a socket in a fresh
 * temporary folder, fed by a writer in this test as gpsd would (good, malformed, stale and
 * pulse-only samples); a stale socket file is replaced, a live one and a regular file are
 * refused, and stop removes the socket. */
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sources/sock_driver.h"
#include "sources/sock_sample.h"
#include "tests/support/sock_put.h"
#include "tests/support/loop.h"
#include "tb_test.h"

#define NS INT64_C(1000000000)

static void test_parse(void)
{
    uint8_t b[48];
    tb_sock_sample s;
    tb_test_sock_put(b, 1795000000, 250000, -0.0015, 0, 1, TB_SOCK_MAGIC);
    TB_REQUIRE(tb_sock_sample_parse(b, 40, &s) == 0);
    TB_CHECK_EQ(s.real_ns, 1795000000 * NS + 250000000);
    /* chrony's offset is true − system time, which is already source − local */
    TB_CHECK_EQ(s.offset_ns, -1500000);
    TB_CHECK_EQ(s.leap, 1);
    TB_CHECK_EQ(s.pulse, 0);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 39, &s), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 41, &s), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 24, &s), TB_ERR_MALFORMED); /* 32-bit time_t layout */
    tb_test_sock_put(b, 1795000000, 0, 0.0, 0, 0, TB_SOCK_MAGIC ^ 1);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 0, NAN, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 0, INFINITY, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 0, 2e6, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 1000000, 0.0, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, -1, 0, 0.0, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, INT64_MAX, 0, 0.0, 0, 0, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 0, 0.0, 0, 3, TB_SOCK_MAGIC);
    TB_CHECK_EQ(tb_sock_sample_parse(b, 40, &s), TB_ERR_MALFORMED);
    tb_test_sock_put(b, 1795000000, 999999, 0.5, 7, 2, TB_SOCK_MAGIC);
    TB_REQUIRE(tb_sock_sample_parse(b, 40, &s) == 0);
    TB_CHECK_EQ(s.pulse, 1);
    TB_CHECK_EQ(s.offset_ns, NS / 2);
}

typedef struct harness {
    struct ev_loop *loop;
    tb_log log;
    tb_source_env env;
    char dir[64], path[96];
    int n_meas;
    tb_source_meas last;
} harness;

static void on_measurement(void *arg, const tb_source_meas *m)
{
    harness *h = arg;
    h->n_meas++;
    h->last = *m;
}

static void harness_init(harness *h)
{
    memset(h, 0, sizeof(*h));
    h->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&h->log, "test", TB_LOG_ERROR);
    h->env = (tb_source_env){.loop = h->loop,
                             .log = &h->log,
                             .clock = tb_clock_system(),
                             .on_measurement = on_measurement,
                             .measurement_arg = h};
    snprintf(h->dir, sizeof(h->dir), "/tmp/tb_sock_XXXXXX");
    TB_REQUIRE(mkdtemp(h->dir) != NULL);
    snprintf(h->path, sizeof(h->path), "%s/gps.sock", h->dir);
}

static void harness_free(harness *h)
{
    unlink(h->path);
    rmdir(h->dir);
    ev_loop_destroy(h->loop);
}

static tb_source *make(harness *h, int64_t precision, int64_t delay)
{
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_SOCK);
    snprintf(cfg.address, sizeof(cfg.address), "%s", h->path);
    cfg.precision_ns = precision;
    cfg.delay_ns = delay;
    tb_source *s = NULL;
    TB_CHECK(tb_source_create(&h->env, tb_sock_driver(), &cfg, NULL, &s) == 0);
    return s;
}

static int bound_socket(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    TB_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    return fd;
}

static void send_to(const char *path, const uint8_t *b, size_t n)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    TB_REQUIRE(fd >= 0);
    TB_CHECK_EQ(sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)n);
    close(fd);
}

static void send_sample(const char *path, int64_t real_ns, double offset, int pulse, uint32_t magic,
                        size_t len)
{
    uint8_t b[64] = {0};
    tb_test_sock_put(b, real_ns / NS, (real_ns % NS) / 1000, offset, pulse, 0, magic);
    send_to(path, b, len);
}

typedef struct wait_for {
    const tb_source *src;
    uint64_t received;
} wait_for;

static int received(void *arg)
{
    const wait_for *w = arg;
    return tb_sock_driver_stats(w->src)->received >= w->received;
}

static void test_driver_samples(void)
{
    harness h;
    harness_init(&h);
    /* A stale socket file from an earlier run (bound, then its owner gone) is replaced. */
    close(bound_socket(h.path));
    tb_source *s = make(&h, 2000, 600);
    TB_REQUIRE(s != NULL);
    TB_REQUIRE(tb_source_start(s) == 0);
    TB_CHECK_EQ(tb_source_state_of(s), TB_SOURCE_STARTING);
    struct stat st;
    TB_REQUIRE(lstat(h.path, &st) == 0 && S_ISSOCK(st.st_mode));

    int64_t now = tb_clock_real(tb_clock_system());
    int64_t t = now - now % 1000; /* tv carries µs */
    send_sample(h.path, t, 0.25, 0, TB_SOCK_MAGIC, 40);
    wait_for w = {s, 1};
    TB_REQUIRE(tb_test_run_until(h.loop, received, &w, 5.0));
    TB_CHECK_EQ(h.n_meas, 1);
    TB_CHECK_EQ(h.last.real_ns, t);
    TB_CHECK_EQ(h.last.offset_ns, NS / 4);
    TB_CHECK_EQ(h.last.delay_ns, 600);
    TB_CHECK_EQ(h.last.error_ns, 2000 + 300);
    TB_CHECK_EQ(h.last.source->kind, TB_SOURCE_SOCK);
    TB_CHECK_STR(h.last.source->name, h.path);
    TB_CHECK(h.last.mono_ns <= tb_clock_mono(tb_clock_system()));
    TB_CHECK_EQ(tb_source_state_of(s), TB_SOURCE_REACHABLE);

    /* Bad ones: wrong magic, short, long, NaN offset, an hour old, pulse-only. */
    send_sample(h.path, t, 0.0, 0, TB_SOCK_MAGIC + 1, 40);
    send_sample(h.path, t, 0.0, 0, TB_SOCK_MAGIC, 36);
    send_sample(h.path, t, 0.0, 0, TB_SOCK_MAGIC, 44);
    send_sample(h.path, t, NAN, 0, TB_SOCK_MAGIC, 40);
    send_sample(h.path, t - 3600 * NS, 0.0, 0, TB_SOCK_MAGIC, 40);
    send_sample(h.path, t, 0.0, 1, TB_SOCK_MAGIC, 40);
    /* and a good one with a negative offset, after them */
    send_sample(h.path, t + 1000, -0.000123456, 0, TB_SOCK_MAGIC, 40);
    w.received = 8;
    TB_REQUIRE(tb_test_run_until(h.loop, received, &w, 5.0));
    const tb_sock_stats *st2 = tb_sock_driver_stats(s);
    TB_CHECK_EQ(st2->received, 8);
    TB_CHECK_EQ(st2->malformed, 4);
    TB_CHECK_EQ(st2->stale, 1);
    TB_CHECK_EQ(st2->pulse, 1);
    TB_CHECK_EQ(st2->accepted, 2);
    TB_CHECK_EQ(h.n_meas, 2);
    TB_CHECK_EQ(h.last.offset_ns, -123456);
    TB_CHECK_EQ(tb_source_measurements(s), 2);
    char line[512];
    tb_source_describe(s, line, sizeof(line));
    TB_CHECK(strstr(line, "malformed 4") != NULL);

    tb_source_destroy(s);
    TB_CHECK(lstat(h.path, &st) != 0); /* stop removed our socket */
    harness_free(&h);
}

static void test_driver_refuses(void)
{
    harness h;
    harness_init(&h);
    /* A regular file at the path is never replaced. */
    FILE *f = fopen(h.path, "w");
    TB_REQUIRE(f != NULL);
    fputs("keep me\n", f);
    fclose(f);
    tb_source *s = make(&h, 1000, 0);
    TB_REQUIRE(s != NULL);
    TB_CHECK(tb_source_start(s) < 0);
    TB_CHECK_EQ(tb_source_state_of(s), TB_SOURCE_STOPPED);
    TB_CHECK(strstr(tb_source_reason(s), "not a socket") != NULL);
    struct stat st;
    TB_REQUIRE(lstat(h.path, &st) == 0);
    TB_CHECK(S_ISREG(st.st_mode));
    tb_source_destroy(s);
    TB_REQUIRE(lstat(h.path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(h.path);

    /* A socket another process is bound to is live: refused, and left alone. */
    int live = bound_socket(h.path);
    s = make(&h, 1000, 0);
    TB_REQUIRE(s != NULL);
    TB_CHECK(tb_source_start(s) < 0);
    TB_CHECK(strstr(tb_source_reason(s), "in use") != NULL);
    tb_source_destroy(s);
    uint8_t b[40];
    tb_test_sock_put(b, 1, 0, 0.0, 0, 0, TB_SOCK_MAGIC);
    send_to(h.path, b, sizeof(b));
    TB_CHECK_EQ(recv(live, b, sizeof(b), MSG_DONTWAIT), 40);
    close(live);
    harness_free(&h);
}

int main(void)
{
    TB_RUN(test_parse);
    TB_RUN(test_driver_samples);
    TB_RUN(test_driver_refuses);
    return TB_DONE();
}
