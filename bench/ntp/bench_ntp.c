/* bench_ntp [SOURCES [SECONDS [MINPOLL]]]: resident memory and CPU time of a node-side
 * tb_sources polling SOURCES NTP servers (default 50) for SECONDS (default 20) at a fixed poll
 * of 2^MINPOLL s (default 0, i.e. 64 times the default rate, to compress ten minutes of
 * polling into seconds). The servers are honest responders in a child process on
 * 127.0.0.79 (one port each). The baseline is the same process just before the sources
 * start (libraries loaded, loop created); the report gives the increase over it and the CPU
 * cost per poll, extrapolated to the default 64 s poll over ten minutes. */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/bytes.h"
#include "ntp/packet.h"
#include "sources/ntp_driver.h"
#include "sources/sources.h"
#include "tests/support/fake_ntp.h"

#define MAX_SOURCES 200

/* Child: binds n sockets, writes their ports to `out`, answers until killed. */
static void responder(int n, int out)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    static tb_fake_ntp srv[MAX_SOURCES];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        if (tb_fake_ntp_start(loop, &srv[i], "127.0.0.79", TB_FAKE_NTP_HONEST, 0) != 0 ||
            getsockname(srv[i].fd, (struct sockaddr *)&sa, &len) != 0)
            _exit(1);
        uint16_t port = ntohs(sa.sin_port);
        if (write(out, &port, sizeof(port)) != (ssize_t)sizeof(port))
            _exit(1);
    }
    close(out);
    ev_run(loop, 0);
    _exit(0);
}

static long vm_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0)
            v = atol(line + kl);
    if (f)
        fclose(f);
    return v;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static unsigned long n_meas;
static void on_measurement(void *arg, const tb_source_meas *m)
{
    (void)arg;
    (void)m;
    n_meas++;
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    double seconds = argc > 2 ? atof(argv[2]) : 20.0;
    int minpoll = argc > 3 ? atoi(argv[3]) : 0;
    if (n < 1 || n > MAX_SOURCES || seconds <= 0 || minpoll < -6 || minpoll > 10) {
        fprintf(stderr, "usage: bench_ntp [SOURCES 1..200 [SECONDS [MINPOLL -6..10]]]\n");
        return 1;
    }
    int pfd[2];
    if (pipe(pfd) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        responder(n, pfd[1]);
    }
    close(pfd[1]);
    tb_source_config_list list = {calloc((size_t)n, sizeof(tb_source_config)), (size_t)n};
    for (int i = 0; i < n; i++) {
        uint16_t port;
        if (read(pfd[0], &port, sizeof(port)) != (ssize_t)sizeof(port)) {
            fprintf(stderr, "bench_ntp: responder failed\n");
            kill(child, SIGKILL);
            return 1;
        }
        tb_source_config_default(&list.items[i], TB_SOURCE_NTP);
        snprintf(list.items[i].address, sizeof(list.items[i].address), "127.0.0.79:%u", port);
        list.items[i].minpoll = minpoll;
        list.items[i].maxpoll = minpoll;
    }
    close(pfd[0]);

    struct ev_loop *loop = ev_default_loop(0);
    tb_log log;
    tb_log_init(&log, "bench", TB_LOG_ERROR);
    tb_source_env env = {
        .loop = loop, .log = &log, .clock = tb_clock_system(), .on_measurement = on_measurement};
    long rss_base = vm_kb("VmRSS:");
    double cpu0 = cpu_s();
    tb_sources *set;
    if (tb_sources_create(&env, &set) != 0 || tb_sources_apply(set, &list) != 0)
        return 1;
    ev_timer stop;
    ev_timer_init(&stop, stop_cb, seconds, 0.0);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    double cpu = cpu_s() - cpu0;
    long hwm = vm_kb("VmHWM:"), rss = vm_kb("VmRSS:");

    unsigned long polls = 0, accepted = 0, reachable = 0;
    for (size_t i = 0; i < tb_sources_count(set); i++) {
        const tb_source *s = tb_sources_get(set, i);
        const tb_ntp_client *c = tb_ntp_driver_client(s);
        if (c) {
            polls += c->n_sent;
            accepted += c->n_accepted;
        }
        reachable += tb_source_state_of(s) == TB_SOURCE_REACHABLE;
    }
    /* Ten minutes at the default 64 s poll: a burst of 4, then 600/64 polls, per source. */
    double polls_10min = (double)n * (4.0 + 600.0 / 64.0);
    double per_poll = polls ? cpu / (double)polls : 0;
    printf("sources %d, run %.1f s at poll 2^%d s: %lu polls, %lu accepted, %lu measurements, "
           "%lu reachable\n",
           n, seconds, minpoll, polls, accepted, n_meas, reachable);
    printf("cpu %.3f s (%.3f%% of one core during the run), %.2f us per poll\n", cpu,
           100.0 * cpu / seconds, per_poll * 1e6);
    printf("extrapolated: ten minutes of %d sources at 64 s poll = %.0f polls = %.4f s cpu = "
           "%.5f%% of one core\n",
           n, polls_10min, per_poll * polls_10min, 100.0 * per_poll * polls_10min / 600.0);
    printf("rss baseline %ld kB, now %ld kB (+%ld kB), peak %ld kB; target < 8192 kB total\n",
           rss_base, rss, rss - rss_base, hwm);
    tb_sources_destroy(set);
    free(list.items);
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    return reachable == (unsigned long)n ? 0 : 2;
}
