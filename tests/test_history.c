/* `tbnode history`: a store filled through store/, then the command's text and JSON output,
 * its filters, and its option errors (exit 2, the option named). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "store/store.h"
#include "tests/tb_test.h"

static char dir[64];
static char out[8192], err[2048];

static void put(tb_store *s, const char *origin, uint64_t seq, tb_measure_kind kind,
                const char *src, int64_t real_ns)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    m.kind = kind;
    snprintf(m.source_name, sizeof(m.source_name), "%s", src);
    strcpy(m.source_addr, "127.0.0.70:123");
    m.seq = seq;
    m.real_ns = real_ns;
    m.offset_ns = -1500000; /* -1.5 ms */
    m.delay_ns = 2000000;
    m.bound_ns = 250000;
    uint8_t body[TB_MEASURE_BODY_MAX], sig[TB_MEASURE_SIG_LEN] = {0};
    size_t n;
    TB_REQUIRE(tb_measure_encode(&m, body, sizeof(body), &n) == 0);
    TB_REQUIRE(tb_store_put_measurement(s, &m, false, body, n, sig, real_ns) == 0);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}

/* Runs tbnode history ARGS, with --state-dir dir; out and err get its output. */
static int run(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' history --state-dir '%s' %s >'%s/out' 2>'%s/err'", TB_TBNODE,
             dir, args, dir, dir);
    int rc = system(cmd);
    char path[128];
    snprintf(path, sizeof(path), "%s/out", dir);
    slurp(path, out, sizeof(out));
    snprintf(path, sizeof(path), "%s/err", dir);
    slurp(path, err, sizeof(err));
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static unsigned lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int64_t now_ns;

static void fill(void)
{
    tb_store_config cfg = {dir, 0};
    tb_store *s;
    char e[256];
    TB_REQUIRE(tb_store_open(&cfg, &s, e, sizeof(e)) == 0);
    /* 2026-12-06T10:00:00Z, then an hour ago and a minute ago */
    put(s, "node-a", 1, TB_MEASURE_NTP, "ntp-1", 1796551200LL * 1000000000LL);
    put(s, "node-b", 1, TB_MEASURE_PEER, "node-c", now_ns - 3600LL * 1000000000LL);
    put(s, "node-a", 2, TB_MEASURE_NTP, "ntp-1", now_ns - 60LL * 1000000000LL);
    tb_xc_verdict v = {.kind = TB_MEASURE_NTP, .verdict = TB_XC_FALSETICKER, .n_refs = 1};
    strcpy(v.source, "ntp-1");
    strcpy(v.reason, "outside the majority");
    v.refs[0] = (tb_xc_ref){"node-a", 2, 0};
    TB_REQUIRE(tb_store_put_verdict(s, &v, now_ns) == 0);
    tb_store_close(s);
}

static void test_text(void)
{
    TB_CHECK_EQ(run(""), 0);
    TB_CHECK_EQ(lines(out), 3);
    TB_CHECK(strncmp(out,
                     "2026-12-06T10:00:00.000Z node-a ntp ntp-1 offset -1.500000 ms bound "
                     "0.250000 ms\n",
                     80) == 0);
    TB_CHECK(strstr(out, " node-b peer node-c offset -1.500000 ms bound 0.250000 ms\n"));
    TB_CHECK(strstr(out, " node-a ntp ntp-1 offset -1.500000 ms bound 0.250000 ms verdict "
                         "falseticker\n"));
    TB_CHECK_STR(err, "");

    TB_CHECK_EQ(run("--source node-c"), 0);
    TB_CHECK(lines(out) == 1 && strstr(out, " node-b peer node-c "));
    TB_CHECK_EQ(run("--since 90m --until 30m"), 0); /* only the hour-old one */
    TB_CHECK(lines(out) == 1 && strstr(out, " node-c "));
    TB_CHECK_EQ(run("--since 2026-12-06T09:59:59Z --until 2026-12-06T10:00:00.5Z"), 0);
    TB_CHECK(lines(out) == 1 && strncmp(out, "2026-12-06T10:00:00.000Z node-a", 31) == 0);
    TB_CHECK_EQ(run("--limit 1"), 0); /* the newest */
    TB_CHECK(lines(out) == 1 && strstr(out, "verdict falseticker"));
    TB_CHECK_EQ(run("--source nothing"), 0);
    TB_CHECK_STR(out, "");
}

static void test_json(void)
{
    TB_CHECK_EQ(run("--json --source ntp-1"), 0);
    TB_REQUIRE(lines(out) == 2);
    json_error_t je;
    const char *second = strchr(out, '\n') + 1;
    json_t *a = json_loadb(out, (size_t)(second - out), 0, &je);
    json_t *b = json_loads(second, 0, &je);
    TB_REQUIRE(a != NULL && b != NULL);
    TB_CHECK_STR(json_string_value(json_object_get(a, "time")), "2026-12-06T10:00:00.000Z");
    TB_CHECK_STR(json_string_value(json_object_get(a, "kind")), "ntp");
    TB_CHECK_STR(json_string_value(json_object_get(a, "origin")), "node-a");
    TB_CHECK_EQ(json_integer_value(json_object_get(a, "offset_ns")), -1500000);
    TB_CHECK_EQ(json_integer_value(json_object_get(a, "bound_ns")), 250000);
    TB_CHECK(json_is_null(json_object_get(a, "verdict")));
    TB_CHECK_EQ(json_integer_value(json_object_get(b, "seq")), 2);
    TB_CHECK_STR(json_string_value(json_object_get(b, "verdict")), "falseticker");
    json_decref(a);
    json_decref(b);
}

static void expect_usage(const char *args, const char *needle)
{
    TB_CHECK_EQ(run(args), 2);
    TB_CHECK_STR(out, "");
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "history %s: stderr lacks '%s': %s\n", args, needle, err);
    TB_CHECK(strstr(err, needle) != NULL);
}

static void test_errors(void)
{
    expect_usage("--since yesterday", "tbnode: --since: 'yesterday' is neither ISO 8601 UTC");
    expect_usage("--until 2026-12-06T10:00:00", "tbnode: --until: '2026-12-06T10:00:00'");
    expect_usage("--since 5x", "--since: '5x'");
    expect_usage("--limit 0", "--limit");
    expect_usage("--limit 20001", "--limit");
    expect_usage("--limit", "option '--limit' needs a value");
    expect_usage("--frobnicate", "unknown option '--frobnicate'");
    expect_usage("--since 1m --until 1h", "--since: later than --until");
    expect_usage("extra", "history takes no arguments");
    TB_CHECK_EQ(run("--help"), 0);
    TB_CHECK(strstr(out, "usage: tbnode history") != NULL);
}

/* Beside a writer that keeps the database open (a running node): its rows are read. */
static void test_beside_writer(void)
{
    tb_store_config cfg = {dir, 0};
    tb_store *s;
    char e[256];
    TB_REQUIRE(tb_store_open(&cfg, &s, e, sizeof(e)) == 0);
    put(s, "node-d", 1, TB_MEASURE_NTP, "ntp-9", now_ns);
    TB_CHECK_EQ(run("--source ntp-9"), 0);
    TB_CHECK(lines(out) == 1 && strstr(out, " node-d ntp ntp-9 ") != NULL);
    put(s, "node-d", 2, TB_MEASURE_NTP, "ntp-9", now_ns + 1);
    tb_store_close(s);
}

static void test_no_database(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    char moved[160];
    snprintf(moved, sizeof(moved), "%s.away", path);
    TB_REQUIRE(rename(path, moved) == 0);
    TB_CHECK_EQ(run(""), 1);
    TB_CHECK(strstr(err, path) != NULL);
    TB_CHECK(access(path, F_OK) != 0); /* a reader creates nothing */
    TB_REQUIRE(rename(moved, path) == 0);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tb_history_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    now_ns = tb_clock_real(tb_clock_system());
    fill();
    TB_RUN(test_text);
    TB_RUN(test_json);
    TB_RUN(test_errors);
    TB_RUN(test_beside_writer);
    TB_RUN(test_no_database);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return TB_DONE();
}
