/* crosscheck/window: it holds the newest measurement per
 * series and the newest TB_XC_MAX_RT_PER_SERVER Roughtime responses per source, feeds each
 * measurement to the cross-check once, and stays bounded however many measurements arrive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/window.h"
#include "tests/tb_test.h"

static tb_measurement meas(const char *origin, tb_measure_kind kind, const char *src,
                           const char *addr, uint64_t seq)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    m.kind = kind;
    snprintf(m.source_name, sizeof(m.source_name), "%s", src);
    snprintf(m.source_addr, sizeof(m.source_addr), "%s", addr);
    m.seq = seq;
    m.real_ns = (int64_t)seq * 1000;
    m.offset_ns = (int64_t)seq;
    m.bound_ns = 7;
    m.stratum = kind == TB_MEASURE_NTP ? 2 : 0;
    if (kind == TB_MEASURE_ROUGHTIME) {
        m.has_rt_pubkey = true;
        memset(m.rt_pubkey, origin[0], sizeof(m.rt_pubkey));
    }
    return m;
}

/* How many inputs are (origin, seq), and how many inputs there are. */
static size_t count_input(const tb_xc_window *w, const char *origin, uint64_t seq, size_t *total)
{
    tb_xc_obs *x = NULL;
    size_t n = 0, hits = 0;
    if (tb_xc_window_inputs(w, &x, &n) != TB_OK)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        hits += strcmp(x[i].origin, origin) == 0 && x[i].seq == seq;
    free(x);
    *total = n;
    return hits;
}

static void test_newest_per_series(void)
{
    tb_xc_window *w = tb_xc_window_new();
    TB_REQUIRE(w != NULL);
    for (uint64_t s = 1; s <= 1000; s++) {
        tb_measurement m = meas("a", TB_MEASURE_NTP, "ntp-1", s % 2 ? "10.0.0.1" : "10.0.0.2", s);
        tb_xc_window_add(w, &m, true, false, 0, 0);
        tb_measurement p = meas("b", TB_MEASURE_NTP, "ntp-1", "10.0.0.3", 5000 + s);
        tb_xc_window_add(w, &p, false, false, 0, 0);
    }
    TB_CHECK_EQ(tb_xc_window_series(w), 3);
    size_t n = 0;
    /* per origin and source the newest only, whatever address it came from */
    TB_CHECK_EQ(count_input(w, "a", 1000, &n), 1);
    TB_CHECK_EQ(n, 2);
    TB_CHECK_EQ(count_input(w, "a", 999, &n), 0);
    TB_CHECK_EQ(count_input(w, "b", 6000, &n), 1);
    /* status: the newest own one, or the newest of one address */
    tb_xc_obs o;
    TB_REQUIRE(tb_xc_window_last_own(w, TB_MEASURE_NTP, "ntp-1", NULL, &o) == TB_OK);
    TB_CHECK_EQ(o.seq, 1000);
    TB_CHECK_STR(o.origin, "a");
    TB_REQUIRE(tb_xc_window_last_own(w, TB_MEASURE_NTP, "ntp-1", "10.0.0.1", &o) == TB_OK);
    TB_CHECK_EQ(o.seq, 999);
    TB_CHECK_EQ(tb_xc_window_last_own(w, TB_MEASURE_NTP, "ntp-1", "10.0.0.3", &o), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_xc_window_last_own(w, TB_MEASURE_NTP, "ntp-2", NULL, &o), TB_ERR_NOTFOUND);
    tb_xc_window_free(w);
}

static void test_roughtime_ring(void)
{
    tb_xc_window *w = tb_xc_window_new();
    TB_REQUIRE(w != NULL);
    /* origin "q" answers once, then "p" sends more than a ring holds */
    tb_measurement q = meas("q", TB_MEASURE_ROUGHTIME, "rt-1", "", 1);
    tb_xc_window_add(w, &q, false, true, 11, 22);
    size_t n = 0;
    TB_CHECK_EQ(count_input(w, "q", 1, &n), 1); /* in the ring and its series: fed once */
    TB_CHECK_EQ(n, 1);
    for (uint64_t s = 1; s <= 2000; s++) {
        tb_measurement m = meas("p", TB_MEASURE_ROUGHTIME, "rt-1", "", s);
        tb_xc_window_add(w, &m, true, true, (int64_t)s, 1);
    }
    TB_CHECK_EQ(tb_xc_window_rt_sources(w), 1);
    TB_CHECK_EQ(tb_xc_window_rt_held(w, "rt-1"), TB_XC_MAX_RT_PER_SERVER);
    /* the newest 512 of p from the ring, plus q's newest from its series */
    TB_CHECK_EQ(count_input(w, "q", 1, &n), 1);
    TB_CHECK_EQ(n, TB_XC_MAX_RT_PER_SERVER + 1);
    TB_CHECK_EQ(count_input(w, "p", 2000, &n), 1);
    TB_CHECK_EQ(count_input(w, "p", 2000 - TB_XC_MAX_RT_PER_SERVER + 1, &n), 1);
    TB_CHECK_EQ(count_input(w, "p", 2000 - TB_XC_MAX_RT_PER_SERVER, &n), 0);
    tb_xc_obs *x = NULL;
    TB_REQUIRE(tb_xc_window_inputs(w, &x, &n) == TB_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(x[i].origin, "q") == 0)
            TB_CHECK(x[i].has_rt && x[i].rt_midp_ns == 11 && x[i].rt_radi_ns == 22 &&
                     x[i].rt_pubkey[0] == 'q');
    free(x);
    tb_xc_window_free(w);
}

/* A Roughtime series whose poll doubles (64 s four times, 128 s four times, ... then 1,024 s):
 * its newest measurement stays fresh for 3 of the last spacing, so the next one (up to twice
 * as far) arrives while it is; the mean spacing alone (about 240 s) would leave it stale. */
static void test_roughtime_spacing(void)
{
    tb_xc_window *w = tb_xc_window_new();
    TB_REQUIRE(w != NULL);
    int64_t t = 1000000000000LL, last_gap = 0;
    uint64_t seq = 0;
    for (int poll = 6; poll <= 10; poll++)
        for (int k = 0; k < (poll < 10 ? 4 : 1); k++) {
            tb_measurement m = meas("p", TB_MEASURE_ROUGHTIME, "rt-1", "", ++seq);
            last_gap = (INT64_C(1000000000) << poll);
            t += last_gap;
            m.real_ns = t;
            tb_xc_window_add(w, &m, false, true, t, 1000000000);
        }
    tb_xc_obs *x = NULL;
    size_t n = 0;
    TB_REQUIRE(tb_xc_window_inputs(w, &x, &n) == TB_OK);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (x[i].seq == seq) {
            seen = true;
            TB_CHECK(x[i].interval_ns >= last_gap);
        }
    TB_CHECK(seen);
    free(x);
    tb_xc_window_free(w);
}

static void test_bounded(void)
{
    tb_xc_window *w = tb_xc_window_new();
    TB_REQUIRE(w != NULL);
    char name[32];
    for (uint64_t s = 1; s <= TB_XC_WINDOW_MAX_SERIES + 100; s++) {
        snprintf(name, sizeof(name), "ntp-%llu", (unsigned long long)s);
        tb_measurement m = meas("a", TB_MEASURE_NTP, name, "", s);
        tb_xc_window_add(w, &m, false, false, 0, 0);
    }
    for (uint64_t s = 1; s <= TB_XC_WINDOW_MAX_RT_SOURCES + 10; s++) {
        snprintf(name, sizeof(name), "rt-%llu", (unsigned long long)s);
        tb_measurement m = meas("a", TB_MEASURE_ROUGHTIME, name, "", 100000 + s);
        tb_xc_window_add(w, &m, false, true, 0, 0);
    }
    TB_CHECK_EQ(tb_xc_window_series(w), TB_XC_WINDOW_MAX_SERIES);
    TB_CHECK_EQ(tb_xc_window_rt_sources(w), TB_XC_WINDOW_MAX_RT_SOURCES);
    size_t n = 0;
    /* the ones updated longest ago gave way, the newest are there */
    TB_CHECK_EQ(count_input(w, "a", 1, &n), 0);
    TB_CHECK_EQ(count_input(w, "a", 100000 + TB_XC_WINDOW_MAX_RT_SOURCES + 10, &n), 1);
    TB_CHECK_EQ(count_input(w, "a", TB_XC_WINDOW_MAX_SERIES + 100, &n), 1);
    TB_CHECK_EQ(n, TB_XC_WINDOW_MAX_SERIES);
    tb_xc_window_free(w);
}

int main(void)
{
    TB_RUN(test_newest_per_series);
    TB_RUN(test_roughtime_ring);
    TB_RUN(test_roughtime_spacing);
    TB_RUN(test_bounded);
    return TB_DONE();
}
