/* node/budget.h: token buckets (refill, burst, clock going back, no overflow at the caps) and
 * the per-peer budget verdicts. */
#include "node/budget.h"

#include <stdint.h>

#include "common/clock.h"
#include "tests/tb_test.h"

#define S TB_NS_PER_SEC

static void test_bucket(void)
{
    tb_bucket b;
    tb_bucket_init(&b, 10, 30, 5 * S);
    for (int i = 0; i < 30; i++)
        TB_CHECK(tb_bucket_take(&b, 1, 5 * S));
    TB_CHECK(!tb_bucket_take(&b, 1, 5 * S));
    /* 10 per second: one token every 100 ms, not a moment early. */
    TB_CHECK(!tb_bucket_take(&b, 1, 5 * S + 99 * TB_NS_PER_MS));
    TB_CHECK(tb_bucket_take(&b, 1, 5 * S + 100 * TB_NS_PER_MS));
    TB_CHECK(!tb_bucket_take(&b, 1, 5 * S + 100 * TB_NS_PER_MS));
    /* A long pause fills it to the burst only. */
    int k = 0;
    while (tb_bucket_take(&b, 1, 100 * S))
        k++;
    TB_CHECK_EQ(k, 30);
    /* The clock going back refills nothing, and the bucket carries on from there. */
    TB_CHECK(!tb_bucket_take(&b, 1, 50 * S));
    TB_CHECK(tb_bucket_take(&b, 1, 50 * S + 100 * TB_NS_PER_MS));
    /* More than the burst at once is never possible. */
    TB_CHECK(!tb_bucket_take(&b, 31, 1000 * S));
    TB_CHECK(tb_bucket_take(&b, 30, 1000 * S));
}

static void test_bucket_extremes(void)
{
    tb_bucket b;
    tb_bucket_init(&b, UINT64_MAX, UINT64_MAX, 0);
    TB_CHECK_EQ(b.rate, TB_BUCKET_MAX);
    TB_CHECK(tb_bucket_take(&b, TB_BUCKET_MAX, 0));
    TB_CHECK(!tb_bucket_take(&b, 1, 0));
    TB_CHECK(tb_bucket_take(&b, TB_BUCKET_MAX, UINT64_MAX)); /* no overflow in the refill */
    TB_CHECK(!tb_bucket_take(&b, UINT64_MAX, UINT64_MAX));
    tb_bucket_init(&b, 0, 2, 0); /* rate 0: the burst, then never again */
    TB_CHECK(tb_bucket_take(&b, 2, 0));
    TB_CHECK(!tb_bucket_take(&b, 1, UINT64_MAX));
}

static void test_budget(void)
{
    tb_budget_config cfg;
    tb_budget_config_default(&cfg);
    cfg.msgs_per_s = 2;
    cfg.msgs_burst = 3;
    cfg.bytes_per_s = 1000;
    cfg.bytes_burst = 1500;
    tb_budget b;
    tb_budget_init(&b, &cfg, 0);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 1000, 0), TB_BUDGET_OK);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 1000, 0), TB_BUDGET_OVER_BYTES);
    /* The refused message did not use up a message token. */
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 100, 0), TB_BUDGET_OK);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 100, 0), TB_BUDGET_OK);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 1, 0), TB_BUDGET_OVER_MSGS);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_MESSAGE, 1, S / 2), TB_BUDGET_OK);
    /* Broadcasts of its own: 20/s, burst 60. */
    int k = 0;
    while (tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, S) == TB_BUDGET_OK)
        k++;
    TB_CHECK_EQ(k, 60);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, S), TB_BUDGET_OVER_BCASTS);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, S + S / 20), TB_BUDGET_OK);
    TB_CHECK_STR(tb_budget_verdict_name(TB_BUDGET_OVER_MSGS), "over the message rate");
    TB_CHECK_STR(tb_budget_verdict_name(TB_BUDGET_VERDICT_COUNT), "?");
}

/* A bigger mesh gets room for what its honest members send; a small one keeps the message
 * defaults. */
static void test_for_mesh(void)
{
    tb_budget_config d, c;
    tb_budget_config_default(&d);
    tb_budget_config_for_mesh(&c, 4);
    TB_CHECK_EQ(c.msgs_per_s, d.msgs_per_s);
    TB_CHECK_EQ(c.msgs_burst, d.msgs_burst);
    TB_CHECK_EQ(c.own_bcasts_burst, 4 + 64);
    tb_budget_config_for_mesh(&c, 64);
    TB_CHECK_EQ(c.msgs_per_s, 1024);
    TB_CHECK_EQ(c.msgs_burst, 3072);
    TB_CHECK_EQ(c.own_bcasts_burst, 128);
    TB_CHECK_EQ(c.own_bcasts_per_s, d.own_bcasts_per_s);
    /* 63 peers measured at once, plus sources, from a node of a 64-node mesh: one tick passes. */
    tb_budget b;
    tb_budget_init(&b, &c, 0);
    for (int i = 0; i < 63 + 8; i++)
        TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, 0), TB_BUDGET_OK);
    tb_budget_config_for_mesh(&c, SIZE_MAX); /* no overflow */
    TB_CHECK(c.msgs_per_s >= 1024);
}

/* mesh.budget_* replace the rates they set, with bursts of 3 s (bytes 4 s) never below the
 * defaults for the mesh's size; what they leave at 0 stays. */
static void test_config_apply(void)
{
    tb_budget_config c, set = {0};
    tb_budget_config_for_mesh(&c, 64);
    tb_budget_config before = c;
    tb_budget_config_apply(&c, &set);
    TB_CHECK_MEM(&c, &before, sizeof(c));
    set.msgs_per_s = 2000;
    set.bytes_per_s = 1u << 21;
    set.own_bcasts_per_s = 5;
    tb_budget_config_apply(&c, &set);
    TB_CHECK_EQ(c.msgs_per_s, 2000);
    TB_CHECK_EQ(c.msgs_burst, 6000);
    TB_CHECK_EQ(c.bytes_per_s, 1u << 21);
    TB_CHECK_EQ(c.bytes_burst, 8u << 20);
    TB_CHECK_EQ(c.own_bcasts_per_s, 5);
    TB_CHECK_EQ(c.own_bcasts_burst, 128); /* 64 peers + 64, not 15 */
    set.msgs_per_s = UINT32_MAX;
    tb_budget_config_apply(&c, &set);
    TB_CHECK_EQ(c.msgs_burst, UINT32_MAX);
    /* The budget follows: 5 own broadcasts a second after the burst. */
    tb_budget b;
    tb_budget_init(&b, &c, 0);
    int k = 0;
    while (tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, 0) == TB_BUDGET_OK)
        k++;
    TB_CHECK_EQ(k, 128);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, S / 5), TB_BUDGET_OK);
    TB_CHECK_EQ(tb_budget_charge(&b, TB_BUDGET_OWN_BCAST, 0, S / 5), TB_BUDGET_OVER_BCASTS);
}

int main(void)
{
    TB_RUN(test_bucket);
    TB_RUN(test_config_apply);
    TB_RUN(test_bucket_extremes);
    TB_RUN(test_budget);
    TB_RUN(test_for_mesh);
    return TB_DONE();
}
