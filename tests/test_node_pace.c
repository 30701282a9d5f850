/* node/pace.h: the interval of an origin's periodic broadcasts against the mesh's size. */
#include "node/pace.h"

#include <stdint.h>

#include "common/clock.h"
#include "tests/tb_test.h"

#define S TB_NS_PER_SEC

/* The gap grows as n / log2 n: a node receives about 3 log2 n broadcasts per base interval. */
static void test_gap(void)
{
    uint64_t base = 16 * S;
    TB_CHECK_EQ(tb_pace_gap_ns(base, 0), base);
    TB_CHECK_EQ(tb_pace_gap_ns(base, 1), base);
    TB_CHECK(tb_pace_gap_ns(base, 3) < base);
    TB_CHECK_EQ(tb_pace_every_ns(base, 3), base); /* small meshes keep their interval */
    TB_CHECK_EQ(tb_pace_every_ns(base, 9), base);
    uint64_t g10 = tb_pace_gap_ns(base, 10), g60 = tb_pace_gap_ns(base, 60);
    uint64_t g1000 = tb_pace_gap_ns(base, 1000);
    TB_CHECK(g10 > base && g10 < base + S / 10);  /* 16.05 s */
    TB_CHECK(g60 > 54 * S && g60 < 55 * S);       /* 54.2 s */
    TB_CHECK(g1000 > 535 * S && g1000 < 536 * S); /* 535.2 s */
    TB_CHECK_EQ(tb_pace_every_ns(base, 60), g60);
    /* n / gap, what one node receives per second, grows as log2 n: x1.21 from 30 to 60, x3 from
     * 10 to 1,000 */
    double r10 = 10. / (double)g10, r30 = 30. / (double)tb_pace_gap_ns(base, 30);
    double r60 = 60. / (double)g60, r1000 = 1000. / (double)g1000;
    TB_CHECK(r60 / r30 > 1.19 && r60 / r30 < 1.22);
    TB_CHECK(r1000 / r10 > 2.99 && r1000 / r10 < 3.01);
}

static void test_extremes(void)
{
    TB_CHECK_EQ(tb_pace_gap_ns(UINT64_MAX, SIZE_MAX), UINT64_MAX / 2); /* saturates */
    TB_CHECK_EQ(tb_pace_gap_ns(0, 5), 1);
    TB_CHECK_EQ(tb_pace_gap_ns(0, 1), 1);
    TB_CHECK_EQ(tb_pace_every_ns(1, 2), 1);
}

int main(void)
{
    TB_RUN(test_gap);
    TB_RUN(test_extremes);
    return TB_DONE();
}
