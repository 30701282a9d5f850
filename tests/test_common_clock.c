#include "common/clock.h"
#include "tb_test.h"

static void test_system_clock_moves_forward(void)
{
    const tb_clock *c = tb_clock_system();
    uint64_t a = tb_clock_mono(c);
    uint64_t b = tb_clock_mono(c);
    TB_CHECK(b >= a);
    /* Real time is after 2020-01-01 on any machine that runs these tests. */
    TB_CHECK(tb_clock_real(c) > 1577836800LL * (int64_t)TB_NS_PER_SEC);
}

static void test_manual_clock(void)
{
    tb_clock_manual m;
    tb_clock_manual_init(&m, 5, 100);
    TB_CHECK_EQ(tb_clock_mono(&m.clock), 5);
    TB_CHECK_EQ(tb_clock_real(&m.clock), 100);
    tb_clock_manual_advance(&m, 10);
    TB_CHECK_EQ(tb_clock_mono(&m.clock), 15);
    TB_CHECK_EQ(tb_clock_real(&m.clock), 110);
}

static void test_rfc3339(void)
{
    char buf[TB_CLOCK_RFC3339_LEN];
    tb_clock_format_rfc3339(0, buf, sizeof(buf));
    TB_CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
    tb_clock_format_rfc3339(-1, buf, sizeof(buf));
    TB_CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
}

int main(void)
{
    TB_RUN(test_system_clock_moves_forward);
    TB_RUN(test_manual_clock);
    TB_RUN(test_rfc3339);
    return TB_DONE();
}
