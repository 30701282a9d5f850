/* crosscheck/stats: the regression recovers offset and frequency from synthetic series,
 * reports honest uncertainties, and starts over after a step. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "crosscheck/stats.h"
#include "tests/tb_test.h"

#define S 1000000000LL

/* A deterministic pseudo-random value in [-1, 1]. */
static double noise(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 8) / (double)(1u << 23) - 1.0;
}

static void test_constant(void)
{
    tb_xc_stats *s = tb_xc_stats_new();
    TB_REQUIRE(s != NULL);
    tb_xc_stats_fit f;
    TB_CHECK_EQ(tb_xc_stats_get_fit(s, &f), TB_ERR_NOTFOUND);
    for (int i = 0; i < 3; i++)
        TB_CHECK_EQ(tb_xc_stats_add(s, 1000 * S + i * 64 * S, 250000, 4000), TB_OK);
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    /* three samples are too few for statistics: the worst case of the bounds, 8 µs / 128 s */
    TB_CHECK(f.has_freq && !f.trusted);
    TB_CHECK(fabs(f.freq_ppb) < 1.0);
    TB_CHECK(fabs(3 * f.freq_sd_ppb - 62.5) < 0.1);
    TB_CHECK_EQ(tb_xc_stats_predict(&f, 5000 * S, NULL), 250000);
    for (int i = 3; i < 8; i++)
        TB_CHECK_EQ(tb_xc_stats_add(s, 1000 * S + i * 64 * S, 250000, 4000), TB_OK);
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    TB_CHECK(f.has_freq && f.trusted);
    TB_CHECK(fabs(f.freq_ppb) < 1.0);
    TB_CHECK(f.freq_sd_ppb > 0 && f.freq_sd_ppb < 20);
    int64_t sd;
    TB_CHECK(llabs(tb_xc_stats_predict(&f, 1000 * S + 7 * 64 * S, &sd) - 250000) < 10);
    TB_CHECK(sd > 0 && sd < 4000);
    /* not newer than the newest: refused */
    TB_CHECK_EQ(tb_xc_stats_add(s, 1000 * S, 0, 4000), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_xc_stats_count(s), 8);
    tb_xc_stats_free(s);
}

/* 10 ppm: 8 samples 64 s apart give the frequency within 1 ppm, and the prediction follows. */
static void test_drift(void)
{
    tb_xc_stats *s = tb_xc_stats_new();
    TB_REQUIRE(s != NULL);
    for (int i = 0; i < 8; i++) {
        int64_t t = i * 64 * S;
        TB_CHECK_EQ(tb_xc_stats_add(s, t, -3000000 + t / 100000, 4000), TB_OK);
    }
    tb_xc_stats_fit f;
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    TB_CHECK(fabs(f.freq_ppb - 10000.0) < 1000.0);
    TB_CHECK(f.freq_sd_ppb < 1000.0);
    int64_t later = 7 * 64 * S + 600 * S, sd;
    int64_t p = tb_xc_stats_predict(&f, later, &sd);
    TB_CHECK(llabs(p - (-3000000 + later / 100000)) < 10000);
    TB_CHECK(sd > 0 && sd < 50000);
    tb_xc_stats_free(s);
}

/* Noise of ±3 µs within bounds of 4 µs: the frequency is still within 1 ppm, its uncertainty
 * says so, and the ring holds at most TB_XC_STATS_MAX_SAMPLES. */
static void test_noise(void)
{
    tb_xc_stats *s = tb_xc_stats_new();
    TB_REQUIRE(s != NULL);
    uint32_t st = 42;
    for (int i = 0; i < 40; i++) {
        int64_t t = i * 64 * S;
        int64_t off = 1000000 + t / 200000 + (int64_t)(3000.0 * noise(&st));
        TB_CHECK_EQ(tb_xc_stats_add(s, t, off, 4000), TB_OK);
    }
    TB_CHECK_EQ(tb_xc_stats_count(s), TB_XC_STATS_MAX_SAMPLES);
    tb_xc_stats_fit f;
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    TB_CHECK_EQ(f.n, TB_XC_STATS_MAX_SAMPLES);
    TB_CHECK(fabs(f.freq_ppb - 5000.0) < 1000.0);
    TB_CHECK(f.freq_sd_ppb > 1.0 && f.freq_sd_ppb < 1000.0);
    tb_xc_stats_free(s);
}

/* A step of 5 ms: the series starts over from it instead of bending its frequency. */
static void test_step(void)
{
    tb_xc_stats *s = tb_xc_stats_new();
    TB_REQUIRE(s != NULL);
    for (int i = 0; i < 10; i++)
        TB_CHECK_EQ(tb_xc_stats_add(s, i * 64 * S, 0, 4000), TB_OK);
    /* one spike alone is kept (noise, not a step) */
    TB_CHECK_EQ(tb_xc_stats_add(s, 10 * 64 * S, 5000000, 4000), TB_OK);
    TB_CHECK_EQ(tb_xc_stats_count(s), 11);
    TB_CHECK_EQ(tb_xc_stats_add(s, 11 * 64 * S, 0, 4000), TB_OK);
    TB_CHECK_EQ(tb_xc_stats_count(s), 12);
    /* the step: two in a row on the same side */
    TB_CHECK_EQ(tb_xc_stats_add(s, 12 * 64 * S, 5000000, 4000), TB_OK);
    TB_CHECK_EQ(tb_xc_stats_add(s, 13 * 64 * S, 5000000, 4000), TB_OK);
    TB_CHECK_EQ(tb_xc_stats_count(s), 2);
    tb_xc_stats_fit f;
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    TB_CHECK(f.has_freq && !f.trusted && fabs(f.freq_ppb) < 1.0);
    TB_CHECK_EQ(tb_xc_stats_predict(&f, 20 * 64 * S, NULL), 5000000);
    for (int i = 14; i < 18; i++)
        TB_CHECK_EQ(tb_xc_stats_add(s, i * 64 * S, 5000000, 4000), TB_OK);
    TB_REQUIRE(tb_xc_stats_get_fit(s, &f) == TB_OK);
    TB_CHECK(f.trusted);
    TB_CHECK(fabs(f.freq_ppb) < 1.0);
    tb_xc_stats_free(s);
}

int main(void)
{
    TB_RUN(test_constant);
    TB_RUN(test_drift);
    TB_RUN(test_noise);
    TB_RUN(test_step);
    return TB_DONE();
}
