/* PPS: the pure pulse logic (sources/pps.h) on synthetic pulses — honest, jittery, missing,
 * a lock source a second off or half a second off, a stale lock, the wrong edge, rates above
 * 1 Hz — and the kernel edge (sources/pps_dev.h) refusing what is not a PPS device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/pps.h"
#include "sources/pps_dev.h"
#include "tb_test.h"

#define NS INT64_C(1000000000)
#define US INT64_C(1000)
#define MS INT64_C(1000000)
#define T0 (INT64_C(1795000000) * NS)
/* The local clock is behind true time by 250 µs: source − local = +250 µs. */
#define TRUE_OFF (250 * US)

static tb_pps_params params(void)
{
    return (tb_pps_params){
        .rate = 1, .offset_ns = 0, .width_ns = 0, .precision_ns = 1 * US, .maxlockage = 2};
}

/* Local real time of the pulse at true second k: true = local + TRUE_OFF. */
static int64_t pulse_at(int64_t k)
{
    return T0 + k * NS - TRUE_OFF;
}

/* Feeds pulse k (sequence k) with a lock measured 100 ms before it; read 1 ms after. */
static tb_pps_verdict feed(tb_pps *p, int64_t k, int64_t noise, int64_t lock_off, int64_t lock_err,
                           tb_pps_sample *out)
{
    int64_t t = pulse_at(k) + noise;
    tb_pps_pulse pulse = {.seq = (uint32_t)k, .real_ns = t};
    tb_pps_lock lock = {.real_ns = t - 100 * MS, .offset_ns = lock_off, .error_ns = lock_err};
    return tb_pps_pulse_in(p, t + MS, &pulse, &lock, out);
}

static void test_params(void)
{
    tb_pps *p;
    tb_pps_params bad = params();
    bad.rate = 0;
    TB_CHECK_EQ(tb_pps_create(&bad, &p), TB_ERR_INVAL);
    bad = params();
    bad.width_ns = NS;
    TB_CHECK_EQ(tb_pps_create(&bad, &p), TB_ERR_INVAL);
    bad = params();
    bad.offset_ns = NS / 2;
    TB_CHECK_EQ(tb_pps_create(&bad, &p), TB_ERR_INVAL);
    bad = params();
    bad.maxlockage = 0;
    TB_CHECK_EQ(tb_pps_create(&bad, &p), TB_ERR_INVAL);
    bad = params();
    bad.rate = 10;
    bad.width_ns = 100 * MS; /* a whole interval */
    TB_CHECK_EQ(tb_pps_create(&bad, &p), TB_ERR_INVAL);
}

/* An NMEA-like lock 20 ms off with 5 ms error: the pulse gives 250 µs exactly; the first
 * pulses settle until the jitter is known. */
static void test_honest(void)
{
    tb_pps_params pp = params();
    tb_pps *p;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    tb_pps_sample s;
    int settling = 0;
    for (int64_t k = 1; k <= 20; k++) {
        tb_pps_verdict v = feed(p, k, 0, TRUE_OFF + 20 * MS, 5 * MS, &s);
        if (v == TB_PPS_SETTLING) {
            settling++;
            continue;
        }
        TB_CHECK_EQ(v, TB_PPS_ACCEPTED);
        TB_CHECK_EQ(s.offset_ns, TRUE_OFF);
        TB_CHECK_EQ(s.error_ns, 1 * US); /* no jitter: the precision */
        TB_CHECK_EQ(s.real_ns, pulse_at(k));
        TB_CHECK_EQ(s.lock_diff_ns, 20 * MS);
    }
    TB_CHECK_EQ(settling, TB_PPS_JITTER_MIN); /* pulse 1 has no pair, then 4 pairs */
    const tb_pps_stats *st = tb_pps_stats_of(p);
    TB_CHECK_EQ(st->pulses, 20);
    TB_CHECK_EQ(st->missed, 0);
    TB_CHECK_EQ(st->verdicts[TB_PPS_ACCEPTED], 20 - TB_PPS_JITTER_MIN);
    /* the same sequence number again is no new pulse */
    TB_CHECK_EQ(feed(p, 20, 0, TRUE_OFF, 0, &s), TB_PPS_SAME);
    TB_CHECK_EQ(st->pulses, 20);
    tb_pps_free(p);
}

/* A local clock 15 ppm fast drifts 15 µs a second: that is no jitter. */
static void test_drift_is_not_jitter(void)
{
    tb_pps_params pp = params();
    tb_pps *p;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    tb_pps_sample s;
    for (int64_t k = 1; k <= 12; k++)
        (void)feed(p, k, 15 * US * k, TRUE_OFF, 1 * MS, &s);
    TB_CHECK_EQ(tb_pps_stats_of(p)->jitter_ns, 0);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF - 15 * US * 12);
    tb_pps_free(p);
}

/* Uniform noise of ±20 µs (σ 11.5 µs): the estimate finds it and every bound holds the truth. */
static void test_jittery(void)
{
    tb_pps_params pp = params();
    tb_pps *p;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    srand(7);
    tb_pps_sample s;
    int accepted = 0, held = 0;
    for (int64_t k = 1; k <= 200; k++) {
        int64_t noise = (int64_t)(rand() % 40001) - 20000;
        if (feed(p, k, noise, TRUE_OFF + 3 * MS, 2 * MS, &s) != TB_PPS_ACCEPTED)
            continue;
        accepted++;
        held += llabs(s.offset_ns - TRUE_OFF) <= s.error_ns;
    }
    int64_t j = tb_pps_stats_of(p)->jitter_ns;
    fprintf(stderr, "jitter estimate %lld ns for uniform ±20 µs, bounds held %d of %d\n",
            (long long)j, held, accepted);
    TB_CHECK(j > 7 * US && j < 17 * US);
    TB_CHECK(accepted > 190);
    TB_CHECK(held >= accepted * 99 / 100);
    tb_pps_free(p);
}

/* Pulses 6, 7 and 9 never come: counted as missed, and the gap is no jitter. */
static void test_missing(void)
{
    tb_pps_params pp = params();
    tb_pps *p;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    tb_pps_sample s;
    for (int64_t k = 1; k <= 15; k++) {
        if (k == 6 || k == 7 || k == 9)
            continue;
        tb_pps_verdict v = feed(p, k, 10 * US * k, TRUE_OFF, 1 * MS, &s);
        TB_CHECK(v == TB_PPS_ACCEPTED || v == TB_PPS_SETTLING);
    }
    const tb_pps_stats *st = tb_pps_stats_of(p);
    TB_CHECK_EQ(st->missed, 3);
    TB_CHECK_EQ(st->pulses, 12);
    TB_CHECK_EQ(st->jitter_ns, 0);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF - 150 * US);
    tb_pps_free(p);

    /* the kernel's u32 sequence wraps: one step, nothing missed */
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    tb_pps_pulse a = {.seq = UINT32_MAX, .real_ns = pulse_at(1)};
    tb_pps_pulse b = {.seq = 0, .real_ns = pulse_at(2)};
    tb_pps_lock lock = {.real_ns = pulse_at(1), .offset_ns = TRUE_OFF, .error_ns = 0};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse_at(1) + MS, &a, &lock, &s), TB_PPS_SETTLING);
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse_at(2) + MS, &b, &lock, &s), TB_PPS_SETTLING);
    TB_CHECK_EQ(tb_pps_stats_of(p)->missed, 0);
    tb_pps_free(p);
}

static tb_pps *settled(tb_pps_params pp)
{
    tb_pps *p = NULL;
    if (tb_pps_create(&pp, &p) != 0)
        return NULL;
    tb_pps_sample s;
    for (int64_t k = 1; k <= TB_PPS_JITTER_MIN + 1; k++)
        (void)feed(p, k, 0, TRUE_OFF, 0, &s);
    return p;
}

/* The lock names the second; the pulse only the phase. */
static void test_lock_second(void)
{
    tb_pps *p = settled(params());
    TB_REQUIRE(p);
    tb_pps_sample s;
    int64_t k = 10;
    /* a lock one second ahead (a wrong second) is followed: nothing here can tell */
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF + NS + 30 * MS, 5 * MS, &s), TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF + NS);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF - 2 * NS - 30 * MS, 5 * MS, &s), TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF - 2 * NS);
    /* 0.39 s away names the nearest second; 0.41 s or 0.35 s ± 0.06 s names none */
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF + 390 * MS, 0, &s), TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF - 390 * MS, 0, &s), TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF + 410 * MS, 0, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF - 500 * MS, 0, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF + 350 * MS, 60 * MS, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(feed(p, k++, 0, TRUE_OFF, 2 * NS, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(feed(p, k++, 0, INT64_MAX, 0, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(feed(p, k++, 0, INT64_MIN, 0, &s), TB_PPS_LOCK_FAR);
    TB_CHECK_EQ(tb_pps_stats_of(p)->verdicts[TB_PPS_LOCK_FAR], 6);
    tb_pps_free(p);
}

static void test_lock_stale(void)
{
    tb_pps *p = settled(params());
    TB_REQUIRE(p);
    tb_pps_sample s;
    int64_t t = pulse_at(10);
    tb_pps_pulse pulse = {.seq = 10, .real_ns = t};
    /* maxlockage 2 at 1 Hz: a lock measured 1.9 s before the pulse is fine, 2 s is not */
    tb_pps_lock lock = {.real_ns = t - 1900 * MS, .offset_ns = TRUE_OFF, .error_ns = 0};
    TB_CHECK_EQ(tb_pps_pulse_in(p, t + MS, &pulse, &lock, &s), TB_PPS_ACCEPTED);
    pulse = (tb_pps_pulse){.seq = 11, .real_ns = pulse_at(11)};
    lock.real_ns = pulse.real_ns - 2 * NS;
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse.real_ns + MS, &pulse, &lock, &s), TB_PPS_LOCK_STALE);
    pulse = (tb_pps_pulse){.seq = 12, .real_ns = pulse_at(12)};
    lock.real_ns = pulse.real_ns + 5 * NS; /* a lock from the future is as far off */
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse.real_ns + MS, &pulse, &lock, &s), TB_PPS_LOCK_STALE);
    lock.real_ns = INT64_MIN;
    pulse = (tb_pps_pulse){.seq = 13, .real_ns = pulse_at(13)};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse.real_ns + MS, &pulse, &lock, &s), TB_PPS_LOCK_STALE);
    pulse = (tb_pps_pulse){.seq = 14, .real_ns = pulse_at(14)};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse.real_ns + MS, &pulse, NULL, &s), TB_PPS_NO_LOCK);
    tb_pps_free(p);
}

static void test_old_pulses(void)
{
    tb_pps *p = settled(params());
    TB_REQUIRE(p);
    tb_pps_sample s;
    tb_pps_lock lock = {.real_ns = pulse_at(10), .offset_ns = TRUE_OFF, .error_ns = 0};
    /* a new sequence number with a stamp before the last pulse's */
    tb_pps_pulse pulse = {.seq = 10, .real_ns = pulse_at(3)};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse_at(10), &pulse, &lock, &s), TB_PPS_OLD);
    /* read 3 s after it was stamped: not the newest pulse of a live signal */
    pulse = (tb_pps_pulse){.seq = 11, .real_ns = pulse_at(10)};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse_at(13), &pulse, &lock, &s), TB_PPS_OLD);
    /* stamped after now */
    pulse = (tb_pps_pulse){.seq = 12, .real_ns = pulse_at(11)};
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse_at(11) - 1, &pulse, &lock, &s), TB_PPS_OLD);
    tb_pps_free(p);
}

/* Width 200 ms: a stamp of the clear edge (200 ms after the second) taken for the assert edge
 * is refused; with no width it would have passed as a −200 ms offset. */
static void test_edge(void)
{
    tb_pps_params pp = params();
    pp.width_ns = 200 * MS;
    tb_pps *p = settled(pp);
    TB_REQUIRE(p);
    tb_pps_sample s;
    TB_CHECK_EQ(feed(p, 10, 200 * MS, TRUE_OFF + 10 * MS, 10 * MS, &s), TB_PPS_WRONG_EDGE);
    TB_CHECK_EQ(feed(p, 11, 0, TRUE_OFF + 10 * MS, 10 * MS, &s), TB_PPS_ACCEPTED);
    tb_pps_free(p);
    p = settled(params());
    TB_REQUIRE(p);
    TB_CHECK_EQ(feed(p, 10, 200 * MS, TRUE_OFF + 10 * MS, 10 * MS, &s), TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF - 200 * MS);
    tb_pps_free(p);
}

/* 5 pulses a second and a configured offset: the phase is taken modulo 200 ms, the lock must
 * be within 80 ms, and the offset moves every sample. */
static void test_rate_and_offset(void)
{
    tb_pps_params pp = params();
    pp.rate = 5;
    pp.offset_ns = 3 * US;
    pp.maxlockage = 3;
    tb_pps *p;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    tb_pps_sample s;
    tb_pps_verdict v = TB_PPS_SAME;
    for (int64_t k = 1; k <= 30; k++) {
        int64_t t = T0 + k * 200 * MS - TRUE_OFF;
        tb_pps_pulse pulse = {.seq = (uint32_t)k, .real_ns = t};
        tb_pps_lock lock = {.real_ns = t - 500 * MS, .offset_ns = TRUE_OFF + 70 * MS};
        v = tb_pps_pulse_in(p, t + MS, &pulse, &lock, &s);
    }
    TB_CHECK_EQ(v, TB_PPS_ACCEPTED);
    TB_CHECK_EQ(s.offset_ns, TRUE_OFF + 3 * US);
    int64_t t = T0 + 31 * 200 * MS - TRUE_OFF;
    tb_pps_pulse pulse = {.seq = 31, .real_ns = t};
    tb_pps_lock lock = {.real_ns = t - 100 * MS, .offset_ns = TRUE_OFF + 90 * MS};
    TB_CHECK_EQ(tb_pps_pulse_in(p, t + MS, &pulse, &lock, &s), TB_PPS_LOCK_FAR);
    lock.real_ns = t - 600 * MS; /* 3 intervals */
    lock.offset_ns = TRUE_OFF;
    pulse.seq = 32;
    pulse.real_ns = t + 200 * MS;
    lock.real_ns = pulse.real_ns - 600 * MS;
    TB_CHECK_EQ(tb_pps_pulse_in(p, pulse.real_ns + MS, &pulse, &lock, &s), TB_PPS_LOCK_STALE);
    tb_pps_free(p);

    /* 3 Hz does not divide a second in ns: the phase is still exact */
    pp = params();
    pp.rate = 3;
    TB_REQUIRE(tb_pps_create(&pp, &p) == 0);
    for (int64_t k = 1; k <= 8; k++) {
        /* true pulse k at T0 + k/3 s, rounded down to the ns */
        int64_t tt = T0 + k * NS / 3 - TRUE_OFF;
        tb_pps_pulse pl = {.seq = (uint32_t)k, .real_ns = tt};
        tb_pps_lock lk = {.real_ns = tt, .offset_ns = TRUE_OFF};
        v = tb_pps_pulse_in(p, tt + MS, &pl, &lk, &s);
    }
    TB_CHECK_EQ(v, TB_PPS_ACCEPTED);
    TB_CHECK(llabs(s.offset_ns - TRUE_OFF) <= 1);
    tb_pps_free(p);
}

static void test_kernel_edge(void)
{
    const tb_pps_dev_ops *k = tb_pps_dev_kernel();
    void *dev = NULL;
    char why[200];
    TB_CHECK(k->open(k->arg, "/dev/null", false, &dev, why, sizeof(why)) < 0);
    TB_CHECK_STR(why, "/dev/null: PPS_GETCAP: not a PPS device");
    TB_CHECK(k->open(k->arg, "/nonexistent/pps0", true, &dev, why, sizeof(why)) < 0);
    TB_CHECK(strstr(why, "/nonexistent/pps0: open: ") == why);
    TB_CHECK(dev == NULL);
}

int main(void)
{
    TB_RUN(test_params);
    TB_RUN(test_honest);
    TB_RUN(test_drift_is_not_jitter);
    TB_RUN(test_jittery);
    TB_RUN(test_missing);
    TB_RUN(test_lock_second);
    TB_RUN(test_lock_stale);
    TB_RUN(test_old_pulses);
    TB_RUN(test_edge);
    TB_RUN(test_rate_and_offset);
    TB_RUN(test_kernel_edge);
    return TB_DONE();
}
