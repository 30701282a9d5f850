/* Issue 6's numbers for the closing note, from three time nodes in one process (loopback
 * 127.0.0.40-48, mesh port 4591): how long from an NTP source starting to lie until every node
 * calls it a falseticker; bytes per signed measurement on the wire, by kind; and the process's
 * memory once node 0 has stored 10,000 measurements (own and peers'): the process's RSS, and per
 * node the heap in use above what the process held before the nodes started, divided by the 3
 * nodes (they do the same work). Reported, never gated.
 * Needs tbcert (TB_TBCERT). Polls every 1/16 s so the run takes about a minute. */
#include <ev.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "node/timekeeper.h"
#include "roughtime/keyfile.h"
#include "tests/support/loop.h"
#include "tests/tk_harness.h"

#define N 3
#define NRESP 4 /* three honest, the last one turns liar */
#define TURNCOAT (NRESP - 1)
#define MESH_PORT 4591
#define RT_PORT 4592
#define TARGET_STORED 10000

static char dir[64], rt_b64[45], turncoat_name[64];
static struct ev_loop *loop;
static tb_fake_ntp resp[NRESP];
static geo_resolver geo[N];
static tb_log logs[N];
static tb_node_config cfg[N];
static tb_timekeeper *tk[N];

static int make_keys(void)
{
    const char *tbcert = getenv("TB_TBCERT");
    char cmd[512];
    if (!tbcert)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s init-ca --dir %s/ca --name bench >/dev/null", tbcert, dir);
    if (system(cmd) != 0)
        return -1;
    for (int i = 0; i < N; i++) {
        snprintf(cmd, sizeof(cmd),
                 "%s issue --ca %s/ca --name b%d --region r%d --ip 127.0.0.%d --out %s/n%d "
                 ">/dev/null",
                 tbcert, dir, i, i, 40 + i, dir, i);
        if (system(cmd) != 0)
            return -1;
    }
    uint8_t pk[32];
    snprintf(cmd, sizeof(cmd), "%s/rt.key", dir);
    char err[256];
    if (tb_rt_key_generate(cmd, pk, err, sizeof(err)) != 0)
        return -1;
    tb_rt_key_b64(pk, rt_b64);
    return 0;
}

static int start(int i)
{
    char text[4096], rt[256] = "", src[1024] = "";
    if (i == 0)
        snprintf(rt, sizeof(rt),
                 "roughtime = { listen = \"127.0.0.45:%d\"; key = \"%s/rt.key\"; };", RT_PORT, dir);
    for (int r = 0; r < NRESP; r++)
        snprintf(src + strlen(src), sizeof(src) - strlen(src),
                 "{ kind = \"ntp\"; address = \"%s\"; minpoll = -4; maxpoll = -4; },\n",
                 resp[r].addr);
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\";\n"
             "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
             "state_dir = \"%s/s%d\";\nping_interval_ms = 100;\n%s\n%s\n"
             "sources = (\n%s{ kind = \"roughtime\"; address = \"127.0.0.45:%d\"; "
             "public_key = \"%s\"; minpoll = -4; maxpoll = -4; }\n);\n"
             "crosscheck = { min_interval_ms = 100; peer_interval = 1; };\n",
             40 + i, MESH_PORT, dir, i, dir, i, dir, i, dir, i,
             i ? "peers = ( \"127.0.0.40:4591\" );" : "", rt, src, RT_PORT, rt_b64);
    char err[TB_NODE_ERR_MAX];
    tb_node_config_defaults(&cfg[i]);
    if (tb_node_config_load_string(&cfg[i], text, "bench", err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    mkdir(cfg[i].state_dir, 0700);
    tb_log_init(&logs[i], "bench", TB_LOG_ERROR);
    tb_tk_options opt = {.resolver = &geo[i].pub};
    return tb_timekeeper_new(&tk[i], loop, &logs[i], tb_clock_system(), &cfg[i], &opt);
}

static double mono_s(void)
{
    return (double)tb_clock_mono(tb_clock_system()) / 1e9;
}

static tb_xc_verdict_kind want;

static int turncoat_is(void *arg)
{
    for (int i = 0; i < N; i++) {
        const tb_xc_result *r = tb_timekeeper_result(tk[i]);
        size_t k = 0;
        while (k < r->n_verdicts && strcmp(r->verdicts[k].source, turncoat_name) != 0)
            k++;
        if (k == r->n_verdicts || r->verdicts[k].verdict != want)
            return 0;
    }
    return 1;
}

static int stored_enough(void *arg)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[0], &st);
    const char *env = getenv("TB_BENCH_STORED"); /* another target, to see the curve */
    uint64_t target = env && atoll(env) > 0 ? (uint64_t)atoll(env) : TARGET_STORED;
    return st.sent + st.accepted >= target;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* Bytes malloc has handed out and not taken back (glibc). */
static long heap_kib(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int bench(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    const char *ips[NRESP] = {"127.0.0.44", "127.0.0.46", "127.0.0.47", "127.0.0.48"};
    for (int r = 0; r < NRESP; r++)
        if (tb_fake_ntp_start(loop, &resp[r], ips[r], TB_FAKE_NTP_HONEST, 0) != 0)
            return 1;
    snprintf(turncoat_name, sizeof(turncoat_name), "%s", resp[TURNCOAT].addr);
    long heap_base = heap_kib();
    for (int i = 0; i < N; i++) {
        geo_init(&geo[i], loop, &resp[0]);
        if (start(i) != TB_OK)
            return 1;
    }
    want = TB_XC_OK;
    if (!tb_test_run_until(loop, turncoat_is, NULL, 60)) {
        fprintf(stderr, "bench_timekeeper: no agreement within 60 s\n");
        return 1;
    }
    for (int round = 0; round < 3; round++) {
        resp[TURNCOAT].offset_ns = 2000000000LL;
        double t0 = mono_s();
        want = TB_XC_FALSETICKER;
        int ok = tb_test_run_until(loop, turncoat_is, NULL, 60);
        printf("lie of 2 s to every node reported as falseticker by all %d nodes after %.0f ms%s "
               "(polls every 62.5 ms; NTP clock filter of 8 samples)\n",
               N, (mono_s() - t0) * 1e3, ok ? "" : " (NOT within 60 s)");
        resp[TURNCOAT].offset_ns = 0;
        want = TB_XC_OK;
        if (!tb_test_run_until(loop, turncoat_is, NULL, 60))
            return 1;
    }
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[0], &st);
    for (int k = TB_MEASURE_NTP; k <= TB_MEASURE_KIND_MAX; k++)
        if (st.sent_kind[k])
            printf("bytes per signed %s measurement on the wire (MEASUREMENT message): %.0f\n",
                   tb_measure_kind_name(k),
                   (double)st.wire_bytes_kind[k] / (double)st.sent_kind[k]);
    long rss0 = rss_kib(), heap0 = heap_kib(), sql0 = (long)(sqlite3_memory_used() / 1024);
    double cpu0 = cpu_s(), t0 = mono_s();
    uint64_t n0 = st.sent + st.accepted;
    if (!tb_test_run_until(loop, stored_enough, NULL, 900))
        return 1;
    tb_timekeeper_get_stats(tk[0], &st);
    uint64_t n1 = st.sent + st.accepted;
    struct stat db;
    char path[128];
    snprintf(path, sizeof(path), "%s/s0/tbnode.db", dir);
    stat(path, &db);
    printf("node 0 stored %llu measurements: process RSS %ld KiB (3 nodes, 3 stores, 1 Roughtime "
           "server, 4 responders) vs %ld KiB at %llu stored; %s %lld KiB\n",
           (unsigned long long)n1, rss_kib(), rss0, (unsigned long long)n0, path,
           (long long)db.st_size / 1024);
    printf("heap in use per node: %ld KiB at %llu stored, %ld KiB at %llu stored\n",
           (heap0 - heap_base) / N, (unsigned long long)n0, (heap_kib() - heap_base) / N,
           (unsigned long long)n1);
    printf("of which SQLite (page cache, bounded by its cache_size): %ld KiB, %ld KiB\n", sql0 / N,
           (long)(sqlite3_memory_used() / 1024) / N);
    printf("CPU per measurement handled by node 0 (all 3 nodes' work counted): %.1f us over "
           "%.1f s\n",
           (cpu_s() - cpu0) * 1e6 / (double)(n1 - n0), mono_s() - t0);
    for (int i = 0; i < N; i++)
        tb_timekeeper_stop(tk[i]);
    for (int k = 0; k < 20; k++)
        ev_run(loop, EVRUN_NOWAIT);
    for (int i = 0; i < N; i++) {
        tb_timekeeper_free(tk[i]);
        tb_node_config_free(&cfg[i]);
    }
    for (int r = 0; r < NRESP; r++)
        tb_fake_ntp_stop(loop, &resp[r]);
    ev_loop_destroy(loop);
    return 0;
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-tkbench.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    int rc = make_keys() == 0 ? bench() : 1;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}
