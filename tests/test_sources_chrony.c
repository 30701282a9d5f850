/* The NTP driver against real chronyd instances on loopback: an honest one (127.0.0.71) must
 * measure within 1 ms of 0, one whose clock libfaketime shifts by +5 s (127.0.0.72) within
 * 10 ms of 5 s. chronyd runs in the foreground (-d) with -x (never touches the clock) and
 * -u root (so it does not try to switch to the _chrony user); each instance is this process's
 * child with PR_SET_PDEATHSIG, so it dies with the test even if the test crashes. libfaketime
 * is preloaded directly: the `faketime` wrapper forks and would not pass our SIGTERM on. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/bytes.h"
#include "ntp/packet.h"
#include "sources/ntp_driver.h"
#include "resolve/resolver.h"
#include "sources/sources.h"
#include "tests/support/chrony.h"
#include "tests/support/run.h"
#include "tb_test.h"

#define MS INT64_C(1000000)

typedef struct run {
    struct ev_loop *loop;
    int n;
    int64_t offsets[16];
    int64_t errors[16];
    int stratum;
} run;

static void on_measurement(void *arg, const tb_source_meas *m)
{
    run *r = arg;
    if (r->n < 16) {
        r->offsets[r->n] = m->offset_ns;
        r->errors[r->n] = m->error_ns;
        r->n++;
    }
    r->stratum = m->stratum;
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Measures `addr` until `want` measurements or 10 s. */
static void measure(const char *addr, int want, run *r)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log log;
    tb_log_init(&log, "test", TB_LOG_WARN);
    tb_source_env env = {.loop = r->loop,
                         .log = &log,
                         .clock = tb_clock_system(),
                         .on_measurement = on_measurement,
                         .measurement_arg = r};
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    snprintf(cfg.address, sizeof(cfg.address), "%s", addr);
    cfg.minpoll = -3;
    cfg.maxpoll = -3;
    tb_source *s;
    if (tb_source_create(&env, tb_ntp_driver(), &cfg, NULL, &s) == 0) {
        if (tb_source_start(s) == 0) {
            ev_timer t;
            ev_timer_init(&t, tick, 0.02, 0.02);
            ev_timer_start(r->loop, &t);
            uint64_t end = tb_clock_mono(tb_clock_system()) + 10 * TB_NS_PER_SEC;
            while (r->n < want && tb_clock_mono(tb_clock_system()) < end)
                ev_run(r->loop, EVRUN_ONCE);
            ev_timer_stop(r->loop, &t);
        }
        tb_source_destroy(s);
    }
    ev_loop_destroy(r->loop);
}

static void test_chrony_offset_near_zero(void)
{
    tb_chrony c;
    TB_REQUIRE(tb_chrony_start(&c, "127.0.0.71", 0, NULL, NULL) == 0);
    run r;
    measure(c.addr, 3, &r);
    TB_CHECK(r.n >= 1);
    for (int i = 0; i < r.n; i++) {
        if (llabs(r.offsets[i]) >= 1 * MS)
            fprintf(stderr, "offset %lld ns\n", (long long)r.offsets[i]);
        TB_CHECK(llabs(r.offsets[i]) < 1 * MS);
        TB_CHECK(r.errors[i] > 0 && r.errors[i] < 5 * MS);
    }
    TB_CHECK_EQ(r.stratum, 1);
    for (int i = 0; i < r.n; i++)
        printf("chrony: offset %lld ns, error bound %lld ns\n", (long long)r.offsets[i],
               (long long)r.errors[i]);
    tb_chrony_stop(&c);
}

static void test_chrony_under_faketime(void)
{
    tb_chrony c;
    TB_REQUIRE(tb_chrony_start(&c, "127.0.0.72", 0, "+5s", NULL) == 0);
    run r;
    measure(c.addr, 2, &r);
    TB_CHECK(r.n >= 1);
    for (int i = 0; i < r.n; i++) {
        if (llabs(r.offsets[i] - 5000 * MS) >= 10 * MS)
            fprintf(stderr, "offset %lld ns\n", (long long)r.offsets[i]);
        TB_CHECK(llabs(r.offsets[i] - 5000 * MS) < 10 * MS);
        printf("chrony +5s: offset %lld ns\n", (long long)r.offsets[i]);
    }
    tb_chrony_stop(&c);
}

static void test_tbntp_query(void)
{
    tb_chrony c;
    TB_REQUIRE(tb_chrony_start(&c, "127.0.0.73", 0, NULL, NULL) == 0);
    usleep(300000); /* chronyd binds its port after start-up */
    char cmd[256], out[1024] = "";
    snprintf(cmd, sizeof(cmd), "%s query %s 2>&1", TBNTP_PATH, c.addr);
    int rc = tb_test_capture(cmd, out, sizeof(out));
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    TB_CHECK(strstr(out, "offset   ") != NULL);
    TB_CHECK(strstr(out, "stratum  1") != NULL);
    TB_CHECK(strstr(out, "refid    127.127.1.1") != NULL);
    printf("%s", out);
    /* Nothing listening: exit 3 and says so. */
    snprintf(cmd, sizeof(cmd), "%s query 127.0.0.74:%d --timeout 1 2>&1", TBNTP_PATH,
             tb_test_free_port("127.0.0.74", SOCK_DGRAM));
    rc = tb_test_capture(cmd, out, sizeof(out));
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3);
    TB_CHECK(strstr(out, "no valid reply") != NULL);
    tb_chrony_stop(&c);
}

/* A child that answers every request on 127.0.0.75 with a Kiss-o'-Death DENY, for at most
 * 10 s; returns its pid and port. */
static pid_t kod_server(int *port)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) {
        close(pfd[1]);
        if (pid < 0 || read(pfd[0], port, sizeof(*port)) != (ssize_t)sizeof(*port))
            *port = -1;
        close(pfd[0]);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(10);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.75", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t len = sizeof(sa);
    int p = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        p = ntohs(sa.sin_port);
    if (write(pfd[1], &p, sizeof(p)) != (ssize_t)sizeof(p) || p < 0)
        _exit(1);
    for (;;) {
        uint8_t req[128], rep[TB_NTP_HEADER_LEN];
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, req, sizeof(req), 0, (struct sockaddr *)&from, &flen);
        if (n < TB_NTP_HEADER_LEN)
            continue;
        tb_ntp_packet k = {.version = 4, .mode = 4, .stratum = 0, .refid = 0x44454e59};
        k.origin_ts = tb_get_be64(req + 40);
        tb_ntp_packet_write(&k, rep);
        (void)sendto(fd, rep, sizeof(rep), 0, (struct sockaddr *)&from, flen);
    }
}

static void test_tbntp_prints_rejection(void)
{
    int port;
    pid_t pid = kod_server(&port);
    TB_REQUIRE(pid > 0);
    char cmd[256], out[1024];
    snprintf(cmd, sizeof(cmd), "%s query 127.0.0.75:%d --timeout 3 2>&1", TBNTP_PATH, port);
    int rc = port > 0 ? tb_test_capture(cmd, out, sizeof(out)) : -1;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    TB_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 4); /* 2 is a bad command line */
    TB_CHECK(strstr(out, "rejected kiss-o'-death DENY (demobilised)") != NULL);
    TB_CHECK(strstr(out, "kiss     DENY") != NULL);
    printf("%s", out);
}

/* What one source measured, for the side-by-side run. */
typedef struct series {
    int n;
    int64_t offset[256], delay[256];
    int il; /* measurements whose reply echoed our receive field: interleaved */
} series;

static void on_series(void *arg, const tb_source_meas *m)
{
    series *s = arg;
    if (s->n >= 256)
        return;
    s->offset[s->n] = m->offset_ns;
    s->delay[s->n] = m->delay_ns;
    s->n++;
    /* The reply's origin (bytes 24..31) is our request's receive field (bytes 32..39), which a
     * basic request leaves zero. */
    if (m->request_len >= 48 && m->response_len >= 48 && tb_get_be64(m->request + 32) != 0 &&
        memcmp(m->response + 24, m->request + 32, 8) == 0)
        s->il++;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t median(const int64_t *v, int n)
{
    int64_t tmp[256];
    memcpy(tmp, v, (size_t)n * sizeof(*v));
    qsort(tmp, (size_t)n, sizeof(*tmp), cmp_i64);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void report(const char *mode, const series *s)
{
    int64_t dmin = s->delay[0];
    for (int i = 1; i < s->n; i++)
        dmin = s->delay[i] < dmin ? s->delay[i] : dmin;
    printf("%-11s %3d measurements (%d interleaved): delay median %lld ns, min %lld ns; "
           "offset median %+lld ns\n",
           mode, s->n, s->il, (long long)median(s->delay, s->n), (long long)dmin,
           (long long)median(s->offset, s->n));
}

/* The same chronyd measured by two sources at once, one basic and one asking for interleaved
 * mode (xleave): chronyd answers the second in interleaved mode (its reply echoes the cookie in
 * our receive field), and both agree on the offset. Delay and offset of both are printed side
 * by side (on loopback with software timestamps the gain is small). */
static void test_chrony_xleave_side_by_side(void)
{
    tb_chrony c;
    TB_REQUIRE(tb_chrony_start(&c, "127.0.0.76", 0, NULL, NULL) == 0);
    usleep(300000); /* chronyd binds its port after start-up */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tb_log log;
    tb_log_init(&log, "test", TB_LOG_WARN);
    static series basic, xl;
    memset(&basic, 0, sizeof(basic));
    memset(&xl, 0, sizeof(xl));
    tb_source_env env_b = {.loop = loop,
                           .log = &log,
                           .clock = tb_clock_system(),
                           .on_measurement = on_series,
                           .measurement_arg = &basic};
    tb_source_env env_x = env_b;
    env_x.measurement_arg = &xl;
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    snprintf(cfg.address, sizeof(cfg.address), "%s", c.addr);
    cfg.minpoll = cfg.maxpoll = -4;
    tb_source *sb = NULL, *sx = NULL;
    TB_REQUIRE(tb_source_create(&env_b, tb_ntp_driver(), &cfg, NULL, &sb) == 0);
    cfg.xleave = true;
    TB_REQUIRE(tb_source_create(&env_x, tb_ntp_driver(), &cfg, NULL, &sx) == 0);
    TB_REQUIRE(tb_source_start(sb) == 0 && tb_source_start(sx) == 0);
    ev_timer t;
    ev_timer_init(&t, tick, 0.02, 0.02);
    ev_timer_start(loop, &t);
    uint64_t end = tb_clock_mono(tb_clock_system()) + 8 * TB_NS_PER_SEC;
    while (tb_clock_mono(tb_clock_system()) < end)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    const tb_ntp_client *cb = tb_ntp_driver_client(sb), *cx = tb_ntp_driver_client(sx);
    TB_REQUIRE(cb && cx);
    printf("basic:       sent %llu, accepted %llu, interleaved %llu\n",
           (unsigned long long)cb->n_sent, (unsigned long long)cb->n_accepted,
           (unsigned long long)cb->n_interleaved);
    printf("xleave:      sent %llu, accepted %llu, interleaved %llu\n",
           (unsigned long long)cx->n_sent, (unsigned long long)cx->n_accepted,
           (unsigned long long)cx->n_interleaved);
    TB_CHECK(basic.n >= 5 && xl.n >= 5);
    if (basic.n > 0 && xl.n > 0) {
        report("basic", &basic);
        report("interleaved", &xl);
        int64_t d = median(basic.offset, basic.n) - median(xl.offset, xl.n);
        TB_CHECK(llabs(d) < 1 * MS);
    }
    TB_CHECK_EQ(cb->n_interleaved, 0);
    TB_CHECK_EQ(basic.il, 0);
    /* Most exchanges after the first are interleaved (a few may be basic while chronyd learns
     * the client). */
    TB_CHECK(cx->n_interleaved * 2 >= cx->n_accepted);
    TB_CHECK(xl.il >= 1);
    for (int i = 0; i < xl.n; i++)
        TB_CHECK(llabs(xl.offset[i]) < 1 * MS);
    tb_source_destroy(sb);
    tb_source_destroy(sx);
    ev_loop_destroy(loop);
    tb_chrony_stop(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TB_RUN(test_chrony_offset_near_zero);
    TB_RUN(test_chrony_under_faketime);
    TB_RUN(test_tbntp_query);
    TB_RUN(test_tbntp_prints_rejection);
    TB_RUN(test_chrony_xleave_side_by_side);
    return TB_DONE();
}
