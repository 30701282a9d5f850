#include "common/log.h"
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

int main(void)
{
    TB_RUN(test_level_filter);
    TB_RUN(test_one_line_per_event);
    TB_RUN(test_level_parse);
    return TB_DONE();
}
