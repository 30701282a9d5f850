/* crosscheck/sourcestats: a series learns its baseline, forgets a spike, calls a step of 1 ms
 * on top of a 10 ms path bias "moved" at its second value, stays moved while a drift grows,
 * and settles only after TB_XC_SS_CLEAR values back within the tolerance. */
#include <stdint.h>
#include <stdlib.h>

#include "crosscheck/sourcestats.h"
#include "tests/tb_test.h"

#define MS 1000000LL
#define S 1000000000LL
#define POLL (1024 * S)
#define BIAS (10 * MS) /* the path's asymmetry: fixed, far larger than any lie here */

/* A deterministic pseudo-random value in [-50, 50] µs. */
static int64_t noise(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (int64_t)(*state >> 16) % 100001 - 50000;
}

static tb_xc_ss_view add(tb_xc_ss *s, int64_t i, int64_t value, int64_t delay)
{
    tb_xc_ss_view v;
    TB_CHECK_EQ(tb_xc_ss_add(s, 3600 * S + i * POLL, value, delay), TB_OK);
    tb_xc_ss_get(s, &v);
    return v;
}

/* Learns, then judges: honest noise stays settled with a tolerance of 0.3 ms (the floor). */
static tb_xc_ss *settled(uint32_t *rng)
{
    tb_xc_ss *s = tb_xc_ss_new();
    if (!s)
        return NULL;
    for (int64_t i = 0; i < 12; i++) {
        tb_xc_ss_view v = add(s, i, BIAS + noise(rng), 40 * MS);
        TB_CHECK_EQ(v.state, i < TB_XC_SS_MIN_SAMPLES ? TB_XC_SS_LEARNING : TB_XC_SS_SETTLED);
        if (i >= TB_XC_SS_MIN_SAMPLES)
            TB_CHECK(v.tol_ns >= TB_XC_SS_TOL_MIN_NS && v.tol_ns < 1 * MS);
    }
    return s;
}

static void test_spike_forgotten(void)
{
    uint32_t rng = 1;
    tb_xc_ss *s = settled(&rng);
    TB_REQUIRE(s != NULL);
    tb_xc_ss_view v = add(s, 12, BIAS + 2 * MS, 40 * MS);
    TB_CHECK_EQ(v.state, TB_XC_SS_SUSPECT);
    TB_CHECK(v.dev_ns > 1900000 && v.dev_ns < 2100000);
    TB_CHECK_EQ(v.since_ns, 3600 * S + 12 * POLL);
    v = add(s, 13, BIAS + noise(&rng), 40 * MS);
    TB_CHECK_EQ(v.state, TB_XC_SS_SETTLED);
    /* one on each side is no movement either */
    TB_CHECK_EQ(add(s, 14, BIAS + 2 * MS, 40 * MS).state, TB_XC_SS_SUSPECT);
    TB_CHECK_EQ(add(s, 15, BIAS - 2 * MS, 40 * MS).state, TB_XC_SS_SUSPECT);
    TB_CHECK_EQ(add(s, 16, BIAS, 40 * MS).state, TB_XC_SS_SETTLED);
    /* a longer path than the series' best widens the tolerance by half the excess */
    v = add(s, 17, BIAS + 1 * MS, 43 * MS);
    TB_CHECK_EQ(v.state, TB_XC_SS_SETTLED);
    TB_CHECK(v.tol_ns >= 1500000);
    tb_xc_ss_free(s);
}

static void test_step(void)
{
    uint32_t rng = 2;
    tb_xc_ss *s = settled(&rng);
    TB_REQUIRE(s != NULL);
    TB_CHECK_EQ(add(s, 12, BIAS - 1 * MS + noise(&rng), 40 * MS).state, TB_XC_SS_SUSPECT);
    tb_xc_ss_view v = add(s, 13, BIAS - 1 * MS + noise(&rng), 40 * MS);
    TB_CHECK_EQ(v.state, TB_XC_SS_MOVED);
    TB_CHECK_EQ(v.since_ns, 3600 * S + 12 * POLL);
    TB_CHECK(v.base_from_ns == 3600 * S);
    /* frozen: hours of the lie are not learnt as normal */
    for (int64_t i = 14; i < 60; i++)
        TB_CHECK_EQ(add(s, i, BIAS - 1 * MS + noise(&rng), 40 * MS).state, TB_XC_SS_MOVED);
    int64_t pred;
    TB_REQUIRE(tb_xc_ss_predict(s, 3600 * S + 60 * POLL, &pred) == TB_OK);
    TB_CHECK(llabs(pred - BIAS) < 200000);
    /* back: settled only at the TB_XC_SS_CLEAR-th good value */
    for (int64_t i = 0; i < TB_XC_SS_CLEAR; i++)
        TB_CHECK_EQ(add(s, 60 + i, BIAS + noise(&rng), 40 * MS).state,
                    i + 1 < TB_XC_SS_CLEAR ? TB_XC_SS_MOVED : TB_XC_SS_SETTLED);
    tb_xc_ss_free(s);
}

/* 5 ppm from value 12: 5.1 ms a poll, moved at the second value and never settled again. */
static void test_drift(void)
{
    uint32_t rng = 3;
    tb_xc_ss *s = settled(&rng);
    TB_REQUIRE(s != NULL);
    for (int64_t i = 12; i < 40; i++) {
        int64_t drift = (i - 11) * POLL / 200000;
        tb_xc_ss_view v = add(s, i, BIAS + drift + noise(&rng), 40 * MS);
        TB_CHECK_EQ(v.state, i == 12 ? TB_XC_SS_SUSPECT : TB_XC_SS_MOVED);
        TB_CHECK(v.dev_ns > drift - 300000);
    }
    tb_xc_ss_free(s);
}

static void test_refused(void)
{
    tb_xc_ss *s = tb_xc_ss_new();
    TB_REQUIRE(s != NULL);
    int64_t pred;
    TB_CHECK_EQ(tb_xc_ss_predict(s, 0, &pred), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_xc_ss_add(s, 10 * S, 0, -1), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_xc_ss_add(s, 10 * S, INT64_MAX, 0), TB_OK);
    TB_CHECK_EQ(tb_xc_ss_add(s, 10 * S, 0, 0), TB_ERR_INVAL);
    /* extremes saturate instead of overflowing */
    for (int64_t i = 1; i < 8; i++)
        TB_CHECK_EQ(tb_xc_ss_add(s, 10 * S + i * S, i % 2 ? INT64_MIN : INT64_MAX, INT64_MAX),
                    TB_OK);
    tb_xc_ss_reset(s);
    TB_CHECK_EQ(tb_xc_ss_add(s, 1, 0, 0), TB_OK);
    tb_xc_ss_free(s);
}

int main(void)
{
    TB_RUN(test_spike_forgotten);
    TB_RUN(test_step);
    TB_RUN(test_drift);
    TB_RUN(test_refused);
    return TB_DONE();
}
