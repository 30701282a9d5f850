/* A PPS source in a running time node (issue 14), without PPS hardware: the node's PPS driver
 * reads a device through the pps_dev seam (tb_tk_options.pps_dev), here a simulated device
 * whose assert edges fall on the true seconds of a clock 250 µs ahead of this host's, with a
 * few µs of stamp noise. The lock is a SOCK refclock fed by a writer in this test that names the
 * second 30 ms off (as an NMEA sentence would). The node's status must show the pps source
 * reachable with the pulse's offset (250 µs, not the lock's 30.25 ms) as its own refclock; when
 * the writer stops, the pulses are refused as the lock goes stale and the source becomes
 * unreachable saying why. Needs tbcert (TB_TBCERT). TB_TKP_VERBOSE=1 prints the status. */
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "node/timekeeper.h"
#include "sources/pps_dev.h"
#include "tests/support/loop.h"
#include "tests/support/sock_put.h"
#include "tests/tb_fixture.h"
#include "tests/tb_test.h"

#define SEC INT64_C(1000000000)
#define TRUE_OFF_NS INT64_C(250000)          /* the true clock − this host's */
#define LOCK_OFF_NS (TRUE_OFF_NS + 30000000) /* what the writer says */
#define FAKE_DEV "/dev/pps-simulated"

static char dir[64], sock_path[128];
static struct ev_loop *loop;
static tb_log log0;
static tb_node_config cfg;
static tb_timekeeper *tk;
static int stopped;

/* --- the simulated PPS device: the newest assert edge before now --- */

typedef struct sim_dev {
    unsigned opened;
} sim_dev;

static int64_t sys_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static int sim_open(void *arg, const char *path, bool clear, void **dev, char *why, size_t whylen)
{
    sim_dev *s = arg;
    if (strcmp(path, FAKE_DEV) != 0 || clear) {
        snprintf(why, whylen, "%s: no such simulated device", path);
        return TB_ERR_NOTFOUND;
    }
    s->opened++;
    *dev = s;
    return 0;
}

/* Edge k is at true second k, i.e. host time k s − TRUE_OFF_NS, stamped within ±3 µs. */
static int sim_fetch(void *arg, void *dev, uint32_t *seq, int64_t *real_ns, char *why,
                     size_t whylen)
{
    (void)arg;
    (void)dev;
    (void)why;
    (void)whylen;
    int64_t k = (sys_now() + TRUE_OFF_NS) / SEC;
    int64_t noise = (k * 7919 % 7) * 1000 - 3000;
    int64_t t = k * SEC - TRUE_OFF_NS + noise;
    if (t > sys_now()) { /* the noise put this edge a little ahead: the previous one */
        k--;
        t = k * SEC - TRUE_OFF_NS + (k * 7919 % 7) * 1000 - 3000;
    }
    *seq = (uint32_t)k;
    *real_ns = t;
    return 0;
}

static void sim_close(void *arg, void *dev)
{
    (void)arg;
    (void)dev;
}

static sim_dev sim;
static const tb_pps_dev_ops sim_ops = {sim_open, sim_fetch, sim_close, &sim};

/* --- the lock's writer: a sample every 200 ms --- */

static int writer_fd = -1;
static ev_timer writer_timer;

static void write_sample(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
    int64_t now = sys_now();
    uint8_t b[40];
    tb_test_sock_put(b, now / SEC, now % SEC / 1000, (double)LOCK_OFF_NS / 1e9, 0, 0, 0x534f434bu);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
    (void)sendto(writer_fd, b, sizeof(b), 0, (struct sockaddr *)&sun, sizeof(sun));
}

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name tkpps", dir) != 0 ||
        tb_fx_tbcert("issue --ca %s/ca --name pps-0 --region r0 --ip 127.0.0.176 --out %s/n0", dir,
                     dir) != 0)
        return -1;
    return 0;
}

static int configure(void)
{
    tb_node_config_defaults(&cfg);
    char text[4096];
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.176:4591\";\n"
             "cert = \"%s/n0/node.crt\"; key = \"%s/n0/node.key\"; ca = \"%s/n0/ca.crt\";\n"
             "state_dir = \"%s/s0\";\n"
             "sources = (\n"
             "  { kind = \"sock\"; path = \"%s\"; precision = 1000000; },\n"
             "  { kind = \"pps\"; device = \"" FAKE_DEV "\"; lock = \"%s\"; precision = 500; },\n"
             "  { kind = \"pps\"; device = \"/dev/pps-absent\"; lock = \"%s\"; }\n"
             ");\n"
             "crosscheck = { min_interval_ms = 200; };\n",
             dir, dir, dir, dir, sock_path, sock_path, sock_path);
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_load_string(&cfg, text, "tkpps-test", err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    mkdir(cfg.state_dir, 0700);
    tb_log_init(&log0, "pps-0", TB_LOG_WARN);
    return 0;
}

/* The status line of the source named name, copied into line (NULL when absent). */
static char *source_line(const char *name, char *line, size_t cap)
{
    tb_control_buf b = {0};
    tb_node_control(tb_timekeeper_node(tk), "status", &b);
    if (!b.p)
        return NULL;
    if (getenv("TB_TKP_VERBOSE"))
        fprintf(stderr, "%s\n", b.p);
    char want[256];
    snprintf(want, sizeof(want), "\nsource refclock %s ", name);
    const char *at = strstr(b.p, want);
    char *out = NULL;
    if (at) {
        at++;
        size_t n = strcspn(at, "\n");
        snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
        out = line;
    }
    free(b.p);
    return out;
}

static int pps_measuring(void *arg)
{
    (void)arg;
    char line[512];
    return source_line(FAKE_DEV, line, sizeof(line)) && strstr(line, " reachable offset_us=");
}

static int pps_unreachable(void *arg)
{
    (void)arg;
    char line[512];
    return source_line(FAKE_DEV, line, sizeof(line)) && strstr(line, " unreachable offset_us=");
}

static int all_stopped(void *arg)
{
    (void)arg;
    return stopped >= 1;
}

static void on_stopped(void *arg)
{
    (void)arg;
    stopped++;
}

static void test_pps_in_node(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(sock_path, sizeof(sock_path), "%s/gps.sock", dir);
    TB_REQUIRE(configure() == 0);
    tb_tk_options opt = {.on_stopped = on_stopped, .pps_dev = &sim_ops};
    TB_REQUIRE(tb_timekeeper_new(&tk, loop, &log0, tb_clock_system(), &cfg, &opt) == TB_OK);
    writer_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    TB_REQUIRE(writer_fd >= 0);
    ev_timer_init(&writer_timer, write_sample, 0.05, 0.2);
    ev_timer_start(loop, &writer_timer);

    /* settling takes 5 pulses (a pair for each of 4 jitter samples) */
    int ok = tb_test_run_until(loop, pps_measuring, NULL, 20);
    TB_CHECK(ok);
    TB_CHECK_EQ(sim.opened, 1);
    char line[512];
    TB_REQUIRE(source_line(FAKE_DEV, line, sizeof(line)));
    fprintf(stderr, "%s\n", line);
    double off_us = 0, err_us = 0;
    const char *o = strstr(line, "offset_us="), *e = strstr(line, "error_us=");
    TB_REQUIRE(o && e);
    off_us = atof(o + strlen("offset_us="));
    err_us = atof(e + strlen("error_us="));
    /* the pulse's phase, not the lock's 30.25 ms; within its bound of precision + 3 × jitter
     * (noise of ±3 µs), and the bound is no wider than that allows */
    TB_CHECK(err_us >= 0.5 && err_us <= 0.5 + 3 * 6.0);
    TB_CHECK(off_us - err_us <= TRUE_OFF_NS / 1e3 && TRUE_OFF_NS / 1e3 <= off_us + err_us);
    TB_CHECK(strstr(line, "reason=measuring") != NULL);
    /* the lock measured on its own, 30 ms off */
    char lk[512];
    TB_REQUIRE(source_line(sock_path, lk, sizeof(lk)));
    TB_CHECK(strstr(lk, " reachable offset_us=30250.0 ") != NULL);
    /* a device that cannot be opened says so */
    char absent[512];
    TB_REQUIRE(source_line("/dev/pps-absent", absent, sizeof(absent)));
    TB_CHECK(strstr(absent, " stopped reason=/dev/pps-absent: no such simulated device") != NULL);

    /* the lock goes quiet: after maxlockage (2 s) its sample is too old for any pulse */
    ev_timer_stop(loop, &writer_timer);
    TB_CHECK(tb_test_run_until(loop, pps_unreachable, NULL, 15));
    TB_REQUIRE(source_line(FAKE_DEV, line, sizeof(line)));
    fprintf(stderr, "%s\n", line);
    TB_CHECK(strstr(line, "pulses in a row refused: lock sample too old (lock ") != NULL);

    close(writer_fd);
    tb_timekeeper_stop(tk);
    TB_CHECK(tb_test_run_until(loop, all_stopped, NULL, 5));
    tb_timekeeper_free(tk);
    tb_node_config_free(&cfg);
    ev_loop_destroy(loop);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-tkpps.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    TB_RUN(test_pps_in_node);
    return tb_fx_finish(dir, TB_DONE());
}
