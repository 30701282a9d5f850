#include "common/log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb_test.h"

struct captured {
    int count;
    tb_log_level level;
    char line[1024];
};

static void capture(void *arg, tb_log_level level, const char *line)
{
    struct captured *c = arg;
    c->count++;
    c->level = level;
    snprintf(c->line, sizeof(c->line), "%s", line);
}

static void test_level_filter(void)
{
    tb_log log;
    struct captured c = {0};
    tb_clock_manual clock;
    tb_clock_manual_init(&clock, 0, 1763707819123000000LL);
    tb_log_init(&log, "node-a", TB_LOG_INFO);
    log.sink = capture;
    log.sink_arg = &c;
    log.clock = &clock.clock;

    tb_log_debug(&log, "hidden %d", 1);
    TB_CHECK_EQ(c.count, 0);
    tb_log_warn(&log, "peer %s refused: %s", "127.0.0.2:4433", "foreign CA");
    TB_CHECK_EQ(c.count, 1);
    TB_CHECK_EQ(c.level, TB_LOG_WARN);
    TB_CHECK_STR(c.line, "2025-11-21T06:50:19.123Z node-a warn: peer 127.0.0.2:4433 refused: "
                         "foreign CA");
}

static void test_one_line_per_event(void)
{
    tb_log log;
    struct captured c = {0};
    tb_log_init(&log, "x", TB_LOG_DEBUG);
    log.sink = capture;
    log.sink_arg = &c;
    tb_log_info(&log, "name=%s", "evil\nforged line");
    TB_CHECK(strchr(c.line, '\n') == NULL);
    TB_CHECK(strstr(c.line, "evil forged line") != NULL);
}

static void test_level_parse(void)
{
    tb_log_level l;
    TB_CHECK_EQ(tb_log_level_parse("debug", &l), TB_OK);
    TB_CHECK_EQ(l, TB_LOG_DEBUG);
    TB_CHECK_EQ(tb_log_level_parse("WARN", &l), TB_OK);
    TB_CHECK_EQ(l, TB_LOG_WARN);
    TB_CHECK_EQ(tb_log_level_parse("loud", &l), TB_ERR_INVAL);
}

static void test_ratelimit(void)
{
    tb_log log;
    struct captured c = {0};
    tb_log_init(&log, "x", TB_LOG_INFO);
    log.sink = capture;
    log.sink_arg = &c;
    tb_log_ratelimit rl;
    tb_log_ratelimit_init(&rl, 3, 1000);
    for (int i = 0; i < 100; i++)
        tb_log_limited(&log, &rl, TB_LOG_WARN, 7, 10 + (uint64_t)i, "junk %d", i);
    TB_CHECK_EQ(c.count, 3);
    TB_CHECK(strstr(c.line, "junk 2") != NULL);
    /* Another key has its own budget. */
    tb_log_limited(&log, &rl, TB_LOG_WARN, 8, 200, "other");
    TB_CHECK_EQ(c.count, 4);
    /* The next interval first says how many were dropped, then lets the line through. */
    tb_log_limited(&log, &rl, TB_LOG_WARN, 7, 1010, "junk again");
    TB_CHECK_EQ(c.count, 6);
    TB_CHECK(strstr(c.line, "junk again") != NULL);
    /* A burst that stops: the timer's flush reports it once its window ends, once. */
    for (int i = 0; i < 10; i++)
        tb_log_limited(&log, &rl, TB_LOG_WARN, 8, 1500, "burst");
    c.count = 0;
    tb_log_ratelimit_flush(&rl, &log, 2000);
    TB_CHECK_EQ(c.count, 0); /* its window is still open */
    tb_log_ratelimit_flush(&rl, &log, 2600);
    TB_CHECK_EQ(c.count, 1);
    TB_CHECK(strstr(c.line, "(7 similar lines suppressed)") != NULL);
    tb_log_ratelimit_flush(&rl, &log, 2700);
    TB_CHECK_EQ(c.count, 1);
    c.count = 0;
    tb_log_limited(&log, &rl, TB_LOG_WARN, 7, 2010, "quiet");
    TB_CHECK_EQ(c.count, 1); /* nothing was suppressed, so no count line */
    /* Below the log level nothing is written or counted. */
    tb_log_limited(&log, &rl, TB_LOG_DEBUG, 9, 2010, "hidden");
    TB_CHECK_EQ(c.count, 1);
    /* More keys than slots: a key pushed out writes its pending count, nothing is lost. */
    c.count = 0;
    for (uint64_t k = 100; k < 100 + 2 * TB_LOG_RATELIMIT_KEYS; k++) {
        for (int i = 0; i < 5; i++)
            tb_log_limited(&log, &rl, TB_LOG_WARN, k, 3000 + k, "key %llu", (unsigned long long)k);
    }
    TB_CHECK(c.count <= 2 * TB_LOG_RATELIMIT_KEYS * 4);
    TB_CHECK(c.count >= 2 * TB_LOG_RATELIMIT_KEYS * 3);
}

/* What tbnode writes to stderr, with stderr a file that JOURNAL_STREAM names or not. */
static void write_stderr(const char *journal_stream, char *out, size_t len)
{
    char path[] = "/tmp/tb_log_XXXXXX";
    int fd = mkstemp(path);
    TB_REQUIRE(fd >= 0);
    int saved = dup(STDERR_FILENO);
    TB_REQUIRE(saved >= 0 && dup2(fd, STDERR_FILENO) == STDERR_FILENO);
    struct stat st;
    TB_REQUIRE(fstat(fd, &st) == 0);
    char env[64];
    if (journal_stream && strcmp(journal_stream, "match") == 0) {
        snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        journal_stream = env;
    }
    if (journal_stream)
        setenv("JOURNAL_STREAM", journal_stream, 1);
    else
        unsetenv("JOURNAL_STREAM");
    tb_log log;
    tb_clock_manual clock;
    tb_clock_manual_init(&clock, 0, 1763707819123000000LL);
    tb_log_init(&log, "node-a", TB_LOG_INFO);
    log.clock = &clock.clock;
    tb_log_error(&log, "bad %d", 1);
    tb_log_warn(&log, "odd");
    tb_log_info(&log, "fine");
    tb_log_debug(&log, "hidden");
    fflush(stderr);
    TB_REQUIRE(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
    close(saved);
    unsetenv("JOURNAL_STREAM");
    ssize_t n = pread(fd, out, len - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

/* Under journald: the syslog priority first (journalctl -p filters on it), no timestamp (the
 * journal has its own). Otherwise, or when JOURNAL_STREAM names another stream (systemd keeps
 * it for children whose stderr went elsewhere): ISO 8601 UTC to the millisecond. */
static void test_journal_stream(void)
{
    char out[512];
    write_stderr("match", out, sizeof(out));
    TB_CHECK_STR(out, "<3>node-a error: bad 1\n<4>node-a warn: odd\n<6>node-a info: fine\n");
    const char *stamped = "2025-11-21T06:50:19.123Z node-a error: bad 1\n"
                          "2025-11-21T06:50:19.123Z node-a warn: odd\n"
                          "2025-11-21T06:50:19.123Z node-a info: fine\n";
    write_stderr(NULL, out, sizeof(out));
    TB_CHECK_STR(out, stamped);
    write_stderr("1:1", out, sizeof(out));
    TB_CHECK_STR(out, stamped);
    write_stderr("garbage", out, sizeof(out));
    TB_CHECK_STR(out, stamped);
    TB_CHECK_EQ(tb_log_priority(TB_LOG_DEBUG), 7);
}

int main(void)
{
    TB_RUN(test_level_filter);
    TB_RUN(test_one_line_per_event);
    TB_RUN(test_level_parse);
    TB_RUN(test_ratelimit);
    TB_RUN(test_journal_stream);
    return TB_DONE();
}
