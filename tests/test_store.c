/* Tests of store/ (adr/0008) on a real SQLite file in a fresh temporary directory: data kept
 * across reopen, sequence numbers never reused after a child writing in a loop is killed with
 * SIGKILL, retention, schema version checks, and errors that name the file. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/support/store_queries.h"
#include "tests/tb_test.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/tb-store-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static void remove_dir(void)
{
    static const char *const files[] = {"tbnode.db", "tbnode.db-wal", "tbnode.db-shm"};
    char p[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static tb_store *open_store(uint32_t block)
{
    tb_store_config cfg = {dir, block};
    tb_store *s = NULL;
    char err[256];
    if (tb_store_open(&cfg, &s, err, sizeof(err)) != 0)
        fprintf(stderr, "open: %s\n", err);
    return s;
}

static tb_measurement meas(const char *origin, uint64_t seq, const char *src, int64_t real_ns)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    m.kind = TB_MEASURE_NTP;
    snprintf(m.source_name, sizeof(m.source_name), "%s", src);
    strcpy(m.source_addr, "127.0.0.70:123");
    m.seq = seq;
    m.real_ns = real_ns;
    m.offset_ns = (int64_t)seq * 1000;
    m.delay_ns = 2;
    m.bound_ns = 3;
    return m;
}

static int put(tb_store *s, const tb_measurement *m, bool own, int64_t received)
{
    uint8_t body[TB_MEASURE_BODY_MAX], sig[64];
    size_t n;
    memset(sig, 0x5a, sizeof(sig));
    int rc = tb_measure_encode(m, body, sizeof(body), &n);
    return rc ? rc : tb_store_put_measurement(s, m, own, body, n, sig, received);
}

typedef struct collected {
    char what[8][128];
    int n;
} collected;

static int collect_row(void *arg, const tb_store_row *r)
{
    collected *c = arg;
    tb_measurement m;
    /* the stored body is the measurement itself */
    if (tb_measure_parse(r->body, r->body_len, &m, NULL) != 0 || m.seq != r->seq ||
        strcmp(m.origin, r->origin) != 0 || r->sig[0] != 0x5a)
        return -1;
    if (c->n < 8)
        snprintf(c->what[c->n++], 128, "%s/%s/%llu/%lld", r->origin, r->source,
                 (unsigned long long)r->seq, (long long)r->offset_ns);
    return 0;
}

static int collect_verdict(void *arg, const tb_store_verdict_row *r)
{
    collected *c = arg;
    if (c->n < 8)
        snprintf(c->what[c->n++], 128, "%s %s [%s] %s", r->source, r->verdict, r->refs, r->reason);
    return 0;
}

static int collect_seq(void *arg, const char *origin, uint64_t seq)
{
    collected *c = arg;
    if (c->n < 8)
        snprintf(c->what[c->n++], 128, "%s=%llu", origin, (unsigned long long)seq);
    return 0;
}

static void write_some(tb_store *s)
{
    uint64_t seq;
    for (uint64_t want = 1; want <= 3; want++) {
        TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0);
        TB_CHECK_EQ(seq, want);
        tb_measurement m = meas("a", seq, want == 3 ? "ntp-2" : "ntp-1", 100 + (int64_t)seq);
        TB_CHECK_EQ(put(s, &m, true, 1000), 0);
    }
    tb_measurement p = meas("b", 7, "ntp-1", 50);
    TB_CHECK_EQ(put(s, &p, false, 1000), 0);
    TB_CHECK_EQ(put(s, &p, false, 1001), TB_ERR_EXISTS);
    tb_xc_verdict v = {.kind = TB_MEASURE_NTP, .verdict = TB_XC_FALSETICKER, .n_refs = 2};
    strcpy(v.source, "ntp-2");
    strcpy(v.reason, "lies outside");
    v.refs[0] = (tb_xc_ref){"a", 3, 0};
    v.refs[1] = (tb_xc_ref){"b", 9, 0};
    TB_CHECK_EQ(tb_store_put_verdict(s, &v, 2000), 0);
    v.verdict = TB_XC_OK;
    TB_CHECK_EQ(tb_store_put_verdict(s, &v, 1500), 0); /* older: not the latest */
    uint8_t pk[32] = {1};
    TB_CHECK_EQ(tb_store_put_malfeasance(s, "rt-1", pk, "{\"responses\":[]}", 2000), 0);
}

static void test_reopen_keeps_everything(void)
{
    make_dir();
    tb_store *s = open_store(16);
    TB_REQUIRE(s != NULL);
    write_some(s);
    tb_store_close(s);
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    TB_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    s = open_store(16);
    TB_REQUIRE(s != NULL);
    uint64_t nm, nv, nr, seq;
    TB_CHECK_EQ(tb_store_counts(s, &nm, &nv, &nr), 0);
    TB_CHECK_EQ(nm, 4);
    TB_CHECK_EQ(nv, 2);
    TB_CHECK_EQ(nr, 1);
    collected c = {0};
    TB_CHECK_EQ(tb_store_latest_per_source(s, "a", collect_row, &c), 0);
    TB_REQUIRE(c.n == 2);
    TB_CHECK_STR(c.what[0], "a/ntp-1/2/2000");
    TB_CHECK_STR(c.what[1], "a/ntp-2/3/3000");
    memset(&c, 0, sizeof(c));
    TB_CHECK_EQ(tb_store_latest_per_source(s, NULL, collect_row, &c), 0);
    TB_CHECK_EQ(c.n, 2); /* b's older one is not the latest for ntp-1 */
    TB_CHECK_STR(c.what[0], "a/ntp-1/2/2000");
    memset(&c, 0, sizeof(c));
    TB_CHECK_EQ(tb_store_latest_verdicts(s, collect_verdict, &c), 0);
    TB_REQUIRE(c.n == 1);
    TB_CHECK_STR(c.what[0], "ntp-2 falseticker [a:3,b:9] lies outside");
    memset(&c, 0, sizeof(c));
    TB_CHECK_EQ(tb_store_max_seqs(s, collect_seq, &c), 0);
    TB_REQUIRE(c.n == 2);
    TB_CHECK_STR(c.what[0], "a=3");
    TB_CHECK_STR(c.what[1], "b=7");
    /* numbering resumes after the reserved block, never inside it */
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0);
    TB_CHECK_EQ(seq, 17);
    TB_CHECK_EQ(tb_store_check(s), 0);
    tb_store_close(s);
    remove_dir();
}

/* The child writes own measurements forever, telling the parent each committed sequence. */
static void child_writer(int fd)
{
    tb_store *s = open_store(8);
    if (s == NULL)
        _exit(2);
    for (;;) {
        uint64_t seq;
        if (tb_store_next_seq(s, &seq) != 0)
            _exit(3);
        tb_measurement m = meas("self", seq, seq % 2 ? "ntp-1" : "ntp-2", (int64_t)seq);
        if (put(s, &m, true, (int64_t)seq) != 0)
            _exit(4);
        if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
            _exit(5);
    }
}

/* Reads committed sequences until `want` arrived; returns the last, 0 on timeout/EOF. */
static uint64_t read_progress(int fd, unsigned want)
{
    uint64_t last = 0;
    for (unsigned got = 0; got < want;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            return 0;
        uint64_t seq;
        if (read(fd, &seq, sizeof(seq)) != sizeof(seq))
            return 0;
        last = seq;
        got++;
    }
    return last;
}

static int count_own_upto(void *arg, const tb_store_row *r)
{
    uint64_t *c = arg;
    c[r->seq <= c[1] ? 0 : 2]++;
    if (r->seq > c[3])
        c[3] = r->seq;
    return 0;
}

static void kill_round(unsigned want, uint64_t *prev_max)
{
    int fds[2];
    TB_REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    TB_REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_writer(fds[1]);
    }
    close(fds[1]);
    uint64_t last = read_progress(fds[0], want);
    kill(pid, SIGKILL); /* mid-stream: it is writing the next one */
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    TB_REQUIRE(last > 0);
    TB_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    TB_CHECK(last > *prev_max); /* the killed run never reused an earlier number */

    tb_store *s = open_store(8);
    TB_REQUIRE(s != NULL);
    TB_CHECK_EQ(tb_store_check(s), 0);
    uint64_t c[4] = {0, last, 0, 0}; /* rows <= last, last, rows > last, max seq */
    TB_CHECK_EQ(tb_store_each_since(s, INT64_MIN, count_own_upto, c), 0);
    TB_CHECK(c[3] >= last); /* every reported commit is there */
    uint64_t seq;
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0);
    TB_CHECK(seq > c[3]); /* never reused */
    *prev_max = seq;
    tb_store_close(s);
}

static void test_kill9_never_reuses_sequence(void)
{
    make_dir();
    uint64_t prev = 0;
    static const unsigned wants[] = {1, 37, 200, 513, 64};
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        kill_round(wants[i], &prev);
    tb_store *s = open_store(8);
    TB_REQUIRE(s != NULL);
    uint64_t nm, nv, nr;
    TB_CHECK_EQ(tb_store_counts(s, &nm, &nv, &nr), 0);
    TB_CHECK(nm >= 1 + 37 + 200 + 513 + 64);
    printf("kill -9 rounds: %llu rows, next sequence %llu\n", (unsigned long long)nm,
           (unsigned long long)prev);
    tb_store_close(s);
    remove_dir();
}

static void test_retention(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    for (uint64_t i = 0; i < 10; i++) {
        tb_measurement m = meas("b", i + 1, "ntp-1", 0);
        TB_CHECK_EQ(put(s, &m, false, (int64_t)i * 1000000000LL), 0);
    }
    tb_xc_verdict v = {.kind = TB_MEASURE_NTP, .verdict = TB_XC_OK};
    strcpy(v.source, "ntp-1");
    uint8_t pk[32] = {0};
    for (int64_t t = 0; t < 10; t += 3) { /* 0, 3, 6, 9 s */
        TB_CHECK_EQ(tb_store_put_verdict(s, &v, t * 1000000000LL), 0);
        TB_CHECK_EQ(tb_store_put_malfeasance(s, "rt", pk, "{}", t * 1000000000LL), 0);
    }
    uint64_t deleted = 0, nm, nv, nr;
    /* keep 5 s at 10 s: everything before 5 s goes */
    TB_CHECK_EQ(tb_store_prune(s, 10000000000LL, 5000000000LL, &deleted), 0);
    TB_CHECK_EQ(deleted, 5 + 2 + 2);
    TB_CHECK_EQ(tb_store_counts(s, &nm, &nv, &nr), 0);
    TB_CHECK_EQ(nm, 5);
    TB_CHECK_EQ(nv, 2);
    TB_CHECK_EQ(nr, 2);
    collected c = {0};
    TB_CHECK_EQ(tb_store_each_since(s, 0, collect_row, &c), 0);
    TB_REQUIRE(c.n == 5);
    TB_CHECK_STR(c.what[0], "b/ntp-1/6/6000"); /* oldest kept first */
    TB_CHECK_STR(c.what[4], "b/ntp-1/10/10000");
    /* one row by its key: what a malfeasance report reads back; pruned rows are gone */
    collected one = {0};
    TB_CHECK_EQ(tb_store_get_measurement(s, "b", 7, collect_row, &one), 0);
    TB_REQUIRE(one.n == 1);
    TB_CHECK_STR(one.what[0], "b/ntp-1/7/7000");
    TB_CHECK_EQ(tb_store_get_measurement(s, "b", 2, collect_row, &one), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_store_get_measurement(s, "c", 7, collect_row, &one), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(one.n, 1);
    TB_CHECK_EQ(tb_store_prune(s, 10000000000LL, 5000000000LL, &deleted), 0);
    TB_CHECK_EQ(deleted, 0);
    TB_CHECK_EQ(tb_store_prune(s, 10000000000LL, -1, &deleted), TB_ERR_INVAL);
    tb_store_close(s);
    remove_dir();
}

/* A received batch in one transaction: a reader beside the node sees none of it until the end,
 * then all of it; a duplicate inside does not undo the rest; misuse is refused. */
static void test_batch(void)
{
    make_dir();
    tb_store *s = open_store(2);
    TB_REQUIRE(s != NULL);
    tb_store *r = NULL;
    char err[256];
    TB_REQUIRE(tb_store_open_readonly(dir, &r, err, sizeof(err)) == 0);
    uint64_t seq, nm, nv, nr;
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0); /* reserves 1..2 */
    TB_CHECK_EQ(tb_store_batch_end(s), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_store_batch_begin(s), 0);
    TB_CHECK_EQ(tb_store_batch_begin(s), TB_ERR_INVAL);
    for (uint64_t i = 1; i <= 3; i++) {
        tb_measurement m = meas("b", i, "ntp-1", 0);
        TB_CHECK_EQ(put(s, &m, false, 1000), 0);
    }
    tb_measurement dup = meas("b", 2, "ntp-1", 0);
    TB_CHECK_EQ(put(s, &dup, false, 1000), TB_ERR_EXISTS);
    tb_measurement last = meas("b", 4, "ntp-1", 0);
    TB_CHECK_EQ(put(s, &last, false, 1000), 0);
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0); /* 2: still in the reserved block */
    TB_CHECK_EQ(seq, 2);
    /* a new block would be durable only at the commit */
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_store_counts(r, &nm, &nv, &nr), 0);
    TB_CHECK_EQ(nm, 0);
    TB_CHECK_EQ(tb_store_batch_end(s), 0);
    TB_CHECK_EQ(tb_store_counts(r, &nm, &nv, &nr), 0);
    TB_CHECK_EQ(nm, 4);
    TB_CHECK_EQ(tb_store_next_seq(s, &seq), 0);
    TB_CHECK_EQ(seq, 3);
    tb_store_close(r);
    tb_store_close(s);
    remove_dir();
}

/* The dashboard's history: one source, every origin, newest `limit` since a time, oldest first. */
static void test_history(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    for (uint64_t i = 1; i <= 6; i++) {
        tb_measurement m = meas(i % 2 ? "a" : "b", i, i == 4 ? "ntp-2" : "ntp-1", (int64_t)i * 10);
        TB_CHECK_EQ(put(s, &m, false, 1000), 0);
    }
    collected c = {0};
    TB_CHECK_EQ(tb_store_history(s, TB_MEASURE_NTP, "ntp-1", 20, 3, collect_row, &c), 0);
    TB_REQUIRE(c.n == 3); /* 2, 3, 5, 6 qualify; the newest 3, oldest first */
    TB_CHECK_STR(c.what[0], "a/ntp-1/3/3000");
    TB_CHECK_STR(c.what[1], "a/ntp-1/5/5000");
    TB_CHECK_STR(c.what[2], "b/ntp-1/6/6000");
    collected d = {0};
    TB_CHECK_EQ(tb_store_history(s, TB_MEASURE_ROUGHTIME, "ntp-1", 0, 10, collect_row, &d), 0);
    TB_CHECK_EQ(d.n, 0);
    TB_CHECK_EQ(tb_store_history(s, TB_MEASURE_NTP, "ntp-1", 0, 0, collect_row, &d), TB_ERR_INVAL);
    TB_CHECK_EQ(
        tb_store_history(s, TB_MEASURE_NTP, "ntp-1", 0, TB_STORE_HISTORY_MAX + 1, collect_row, &d),
        TB_ERR_INVAL);
    tb_store_close(s);
    remove_dir();
}

static int collect_verdicts(void *arg, const tb_store_row *r)
{
    collected *c = arg;
    if (c->n < 8)
        snprintf(c->what[c->n++], 128, "%s/%s/%llu/%s", r->origin, r->source,
                 (unsigned long long)r->seq, r->verdict ? r->verdict : "-");
    return 0;
}

/* Every source, a time window, and the verdict that followed each measurement. */
static void test_query(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    write_some(s); /* a/1..3 at 101..103 received 1000 (a/3 ntp-2), b/7 at 50; verdicts on
                      ntp-2 at 1500 (ok) and 2000 (falseticker) */
    collected c = {0};
    tb_store_filter all = {0, NULL, INT64_MIN, INT64_MAX, 10};
    TB_CHECK_EQ(tb_store_query(s, &all, collect_verdicts, &c), 0);
    TB_REQUIRE(c.n == 4);
    TB_CHECK_STR(c.what[0], "b/ntp-1/7/-");
    TB_CHECK_STR(c.what[1], "a/ntp-1/1/-");
    TB_CHECK_STR(c.what[3], "a/ntp-2/3/ok"); /* the first verdict citing it */
    collected d = {0};
    tb_store_filter window = {TB_MEASURE_NTP, "ntp-1", 60, 102, 10};
    TB_CHECK_EQ(tb_store_query(s, &window, collect_verdicts, &d), 0);
    TB_REQUIRE(d.n == 2);
    TB_CHECK_STR(d.what[0], "a/ntp-1/1/-");
    TB_CHECK_STR(d.what[1], "a/ntp-1/2/-");
    window.limit = 0;
    TB_CHECK_EQ(tb_store_query(s, &window, collect_verdicts, &d), TB_ERR_INVAL);
    tb_store_close(s);

    /* read-only: the same rows, and nothing written */
    char err[256];
    TB_CHECK_EQ(tb_store_open_readonly(dir, &s, err, sizeof(err)), 0);
    TB_REQUIRE(s != NULL);
    collected e = {0};
    TB_CHECK_EQ(tb_store_query(s, &all, collect_verdicts, &e), 0);
    TB_CHECK_EQ(e.n, 4);
    uint64_t seq;
    TB_CHECK(tb_store_next_seq(s, &seq) != 0);
    tb_store_close(s);
    remove_dir();
    make_dir();
    TB_CHECK_EQ(tb_store_open_readonly(dir, &s, err, sizeof(err)), TB_ERR_IO);
    char path[128];
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    TB_CHECK(access(path, F_OK) != 0); /* a reader creates nothing */
    TB_CHECK(strstr(err, path) != NULL);
    remove_dir();
}

static int64_t query_one(sqlite3 *db, const char *sql, char *text, size_t len)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        if (text)
            snprintf(text, len, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
}

/* A version-1 database (kind only as a number) is migrated with its rows kept, and
 * `sqlite3 tbnode.db` then shows kinds by name. */
static void test_migrate_v1_keeps_rows(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    write_some(s);
    tb_store_close(s);
    char path[128], text[64];
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    sqlite3 *db;
    TB_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    TB_REQUIRE(sqlite3_exec(db,
                            "DROP VIEW measurements_named; DROP VIEW verdicts_named; "
                            "DROP TABLE kinds; DROP INDEX measurements_by_real; "
                            "UPDATE schema_version SET version = 1",
                            0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
    s = open_store(0);
    TB_REQUIRE(s != NULL);
    uint64_t m, v, r;
    TB_CHECK_EQ(tb_store_counts(s, &m, &v, &r), 0);
    TB_CHECK(m == 4 && v == 2 && r == 1);
    tb_store_close(s);
    TB_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    TB_CHECK_EQ(query_one(db, "SELECT version FROM schema_version", NULL, 0), 2);
    query_one(db, "SELECT kind FROM measurements_named WHERE origin = 'b'", text, sizeof(text));
    TB_CHECK_STR(text, "ntp");
    query_one(db, "SELECT real_utc FROM measurements_named WHERE origin = 'b'", text, sizeof(text));
    TB_CHECK_STR(text, "1970-01-01T00:00:00.000Z");
    query_one(db, "SELECT kind || ' ' || verdict FROM verdicts_named ORDER BY id", text,
              sizeof(text));
    TB_CHECK_STR(text, "ntp falseticker");
    TB_CHECK_EQ(query_one(db, "SELECT count(*) FROM kinds", NULL, 0), 3);
    sqlite3_close(db);
    remove_dir();
}

static void test_schema_and_errors(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    tb_store_close(s);
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    sqlite3 *db;
    TB_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    int64_t v = -1;
    sqlite3_stmt *st;
    TB_REQUIRE(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) == 0);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    TB_CHECK_EQ(v, TB_STORE_SCHEMA_VERSION);
    TB_CHECK(sqlite3_exec(db, "UPDATE schema_version SET version = 99", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
    tb_store_config cfg = {dir, 0};
    TB_CHECK_EQ(tb_store_open(&cfg, &s, err, sizeof(err)), TB_ERR_UNSUPPORTED);
    TB_CHECK(s == NULL);
    TB_CHECK(strstr(err, path) != NULL && strstr(err, "version 99") != NULL);
    remove_dir();

    make_dir();
    snprintf(path, sizeof(path), "%s/tbnode.db", dir);
    FILE *f = fopen(path, "w");
    TB_REQUIRE(f != NULL);
    fputs("this is not an SQLite database, not even close; it is long enough to look.....\n", f);
    fclose(f);
    TB_CHECK_EQ(tb_store_open(&cfg, &s, err, sizeof(err)), TB_ERR_MALFORMED);
    TB_CHECK(strstr(err, path) != NULL);
    remove_dir();

    cfg.dir = "/nonexistent-tb-dir";
    TB_CHECK_EQ(tb_store_open(&cfg, &s, err, sizeof(err)), TB_ERR_IO);
    TB_CHECK(strstr(err, "/nonexistent-tb-dir/tbnode.db") != NULL);
}

/* Bytes a row counts against the budget: what put() stores, plus the overhead. */
static uint64_t row_bytes(const tb_measurement *m)
{
    uint8_t body[TB_MEASURE_BODY_MAX];
    size_t n = 0;
    return tb_measure_encode(m, body, sizeof(body), &n) == 0
               ? n + TB_MEASURE_SIG_LEN + TB_STORE_ROW_OVERHEAD
               : 0;
}

/* The byte budget: "a" over its share loses its oldest rows, "b" under it keeps all; then the
 * total budget takes the oldest of anyone. Counted; a second trim finds nothing to do. */
static void test_byte_budget(void)
{
    make_dir();
    tb_store *s = open_store(0);
    TB_REQUIRE(s != NULL);
    for (uint64_t i = 1; i <= 10; i++) {
        tb_measurement a = meas("a", i, "ntp-1", 0), b = meas("b", i, "ntp-1", 0);
        TB_CHECK_EQ(put(s, &a, false, (int64_t)i), 0);
        if (i <= 4)
            TB_CHECK_EQ(put(s, &b, false, (int64_t)i), 0);
    }
    tb_measurement one = meas("a", 5, "ntp-1", 0);
    uint64_t row = row_bytes(&one), deleted = 0, nm, nv, nr;
    TB_REQUIRE(row > 0);
    /* room for 6 rows of "a" (rows of one origin differ by a byte or so: allow half a row) */
    TB_CHECK_EQ(tb_store_trim(s, 6 * row + row / 2, 0, &deleted), 0);
    TB_CHECK_EQ(deleted, 4);
    collected c = {0};
    TB_CHECK_EQ(tb_store_get_measurement(s, "a", 4, collect_row, &c), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_store_get_measurement(s, "a", 5, collect_row, &c), 0);
    TB_CHECK_EQ(tb_store_get_measurement(s, "b", 1, collect_row, &c), 0);
    /* 6 of a + 4 of b; a total of 7 rows drops the 3 stored first: b/1..b/3 (a/1..a/4 are gone) */
    TB_CHECK_EQ(tb_store_trim(s, 0, 7 * row + row / 2, &deleted), 0);
    TB_CHECK_EQ(deleted, 3);
    TB_CHECK_EQ(tb_store_get_measurement(s, "b", 3, collect_row, &c), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_store_get_measurement(s, "b", 4, collect_row, &c), 0);
    TB_CHECK_EQ(tb_store_get_measurement(s, "a", 5, collect_row, &c), 0);
    TB_CHECK_EQ(tb_store_counts(s, &nm, &nv, &nr), 0);
    TB_CHECK_EQ(nm, 7);
    TB_CHECK_EQ(tb_store_trim(s, 6 * row + row / 2, 7 * row + row / 2, &deleted), 0);
    TB_CHECK_EQ(deleted, 0);
    tb_store_close(s);
    remove_dir();
}

int main(void)
{
    /* remove_dir() again after each: a test stopped by TB_REQUIRE leaves nothing behind */
    TB_RUN(test_reopen_keeps_everything);
    remove_dir();
    TB_RUN(test_kill9_never_reuses_sequence);
    remove_dir();
    TB_RUN(test_retention);
    remove_dir();
    TB_RUN(test_batch);
    remove_dir();
    TB_RUN(test_history);
    TB_RUN(test_query);
    remove_dir();
    TB_RUN(test_migrate_v1_keeps_rows);
    remove_dir();
    TB_RUN(test_byte_budget);
    remove_dir();
    TB_RUN(test_schema_and_errors);
    remove_dir();
    return TB_DONE();
}
