#include "discovery/liveness.h"

#include "common/clock.h"
#include "tb_test.h"

#define S TB_NS_PER_SEC
#define MS TB_NS_PER_MS
/* Real time around 2026 in ns. */
#define T0 ((int64_t)1795000000 * (int64_t)S)

static void live_init(tb_live *l, uint64_t now)
{
    tb_live_config cfg;
    tb_live_config_default(&cfg);
    TB_CHECK_EQ(tb_live_init(l, &cfg, now, 100), 0);
}

static void test_compute_textbook(void)
{
    int64_t off, delay;
    /* Peer 5 ms ahead, 10 ms each way, 1 ms holding time. */
    int64_t t1 = T0, t2 = T0 + 15 * (int64_t)MS, t3 = t2 + (int64_t)MS, t4 = T0 + 21 * (int64_t)MS;
    TB_CHECK_EQ(tb_live_compute(t1, t2, t3, t4, &off, &delay), 0);
    TB_CHECK_EQ(off, 5 * (int64_t)MS);
    TB_CHECK_EQ(delay, 20 * (int64_t)MS);
    /* Peer 30 ms behind, asymmetric path: the error stays within delay / 2. */
    t2 = T0 + 2 * (int64_t)MS - 30 * (int64_t)MS;
    t3 = t2;
    t4 = T0 + 20 * (int64_t)MS;
    TB_CHECK_EQ(tb_live_compute(t1, t2, t3, t4, &off, &delay), 0);
    TB_CHECK_EQ(delay, 20 * (int64_t)MS);
    TB_CHECK(off >= -30 * (int64_t)MS - delay / 2 && off <= -30 * (int64_t)MS + delay / 2);
    TB_CHECK_EQ(off, -38 * (int64_t)MS);
}

static void test_compute_rejects_nonsense(void)
{
    int64_t off, delay;
    TB_CHECK_EQ(tb_live_compute(T0, T0 + 1, T0 + 2, T0 - 1, &off, &delay), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_live_compute(T0, T0 + 5, T0 + 4, T0 + 10, &off, &delay), TB_ERR_MALFORMED);
    /* Peer held the ping longer than the whole round trip: negative delay. */
    TB_CHECK_EQ(tb_live_compute(T0, T0, T0 + 100, T0 + 50, &off, &delay), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_live_compute(T0, 0, 1, T0 + 1, &off, &delay), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_live_compute(T0, -5, -4, T0 + 1, &off, &delay), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_live_compute(T0, INT64_MAX - 1, INT64_MAX, T0 + 1, &off, &delay),
                TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_live_compute(T0, TB_LIVE_TS_MAX, TB_LIVE_TS_MAX, T0 + 1, &off, &delay),
                TB_ERR_MALFORMED);
}

static void test_schedule_and_seq(void)
{
    tb_live l;
    uint64_t seq, seq2;
    live_init(&l, 1000);
    TB_CHECK(tb_live_due(&l, 1000));
    TB_CHECK_EQ(tb_live_next_wake(&l), 1000);
    TB_CHECK_EQ(tb_live_ping_sent(&l, 1000, T0, &seq), 0);
    TB_CHECK_EQ(seq, 100);
    TB_CHECK(!tb_live_due(&l, 1000 + S - 1));
    TB_CHECK_EQ(tb_live_ping_sent(&l, 1000 + S - 1, T0, &seq2), TB_ERR_AGAIN);
    TB_CHECK_EQ(tb_live_next_wake(&l), 1000 + S);
    TB_CHECK_EQ(tb_live_ping_sent(&l, 1000 + S, T0 + (int64_t)S, &seq2), 0);
    TB_CHECK_EQ(seq2, 101);
}

static void test_pong_matching(void)
{
    tb_live l;
    uint64_t seq;
    tb_live_sample s;
    live_init(&l, 0);
    TB_CHECK_EQ(tb_live_ping_sent(&l, 0, T0, &seq), 0);
    /* Unknown sequence number and a forged t1 echo are refused. */
    TB_CHECK_EQ(tb_live_pong(&l, MS, seq + 7, T0, T0, T0, T0 + 1, &s), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_live_pong(&l, MS, seq, T0 + 1, T0, T0, T0 + 1, &s), TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_live_pong(&l, MS, seq, T0, T0 + 1000, T0 + 1100, T0 + 2000, &s), 0);
    TB_CHECK_EQ(s.delay_ns, 1900);
    TB_CHECK_EQ(s.offset_ns, 50);
    TB_CHECK_EQ(s.at, MS);
    /* The same pong again is a duplicate. */
    TB_CHECK_EQ(tb_live_pong(&l, MS, seq, T0, T0 + 1000, T0 + 1100, T0 + 2000, &s),
                TB_ERR_NOTFOUND);
}

static void test_min_delay_window(void)
{
    tb_live l;
    tb_live_estimate est;
    uint64_t now = 0, seq;
    /* delays in ms; the 3 ms sample (offset +7 ms) must win while it is in the window. */
    const int64_t delays[] = {12, 9, 3, 15, 8, 11, 20, 9, 10};
    live_init(&l, 0);
    TB_CHECK_EQ(tb_live_get_estimate(&l, &est), TB_ERR_AGAIN);
    for (unsigned i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        int64_t t1 = T0 + (int64_t)now, d = delays[i] * (int64_t)MS;
        int64_t off = (delays[i] == 3 ? 7 : 40) * (int64_t)MS;
        int64_t t2 = t1 + d / 2 + off;
        TB_REQUIRE(tb_live_ping_sent(&l, now, t1, &seq) == 0);
        TB_REQUIRE(tb_live_pong(&l, now + (uint64_t)d, seq, t1, t2, t2, t1 + d, NULL) == 0);
        now += S;
    }
    TB_CHECK_EQ(tb_live_get_estimate(&l, &est), 0);
    TB_CHECK_EQ(est.samples, TB_LIVE_WINDOW);
    TB_CHECK_EQ(est.rtt_ns, 3 * (int64_t)MS);
    TB_CHECK_EQ(est.offset_ns, 7 * (int64_t)MS);
    TB_CHECK_EQ(est.uncertainty_ns, 1500 * (int64_t)TB_NS_PER_US);
    TB_CHECK_EQ(est.at, 2 * S + 3 * MS);
    /* Eight more 10 ms samples push the 3 ms one out of the window. */
    for (unsigned i = 0; i < TB_LIVE_WINDOW; i++) {
        int64_t t1 = T0 + (int64_t)now, d = 10 * (int64_t)MS;
        TB_REQUIRE(tb_live_ping_sent(&l, now, t1, &seq) == 0);
        TB_REQUIRE(tb_live_pong(&l, now + (uint64_t)d, seq, t1, t1 + d / 2, t1 + d / 2, t1 + d,
                                NULL) == 0);
        now += S;
    }
    TB_CHECK_EQ(tb_live_get_estimate(&l, &est), 0);
    TB_CHECK_EQ(est.rtt_ns, 10 * (int64_t)MS);
    TB_CHECK_EQ(est.offset_ns, 0);
}

static void test_caps_reject_but_prove_alive(void)
{
    tb_live l;
    tb_live_estimate est;
    uint64_t seq, now = 0;
    live_init(&l, 0);
    for (int i = 0; i < 3; i++) {
        TB_REQUIRE(tb_live_ping_sent(&l, now, T0, &seq) == 0);
        now += S;
    }
    TB_CHECK_EQ(tb_live_missed(&l), 2);
    /* A pong with an offset of two days: rejected as a sample, yet the peer is alive. */
    TB_CHECK_EQ(tb_live_pong(&l, now, seq, T0, T0 + 2 * 86400 * (int64_t)S,
                             T0 + 2 * 86400 * (int64_t)S, T0 + 10, NULL),
                TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_live_missed(&l), 0);
    TB_CHECK_EQ(tb_live_get_estimate(&l, &est), TB_ERR_AGAIN);
    TB_REQUIRE(tb_live_ping_sent(&l, now, T0, &seq) == 0);
    /* A 6 s round trip is over the 5 s cap. */
    TB_CHECK_EQ(tb_live_pong(&l, now, seq, T0, T0 + 3 * (int64_t)S, T0 + 3 * (int64_t)S,
                             T0 + 6 * (int64_t)S, NULL),
                TB_ERR_TOO_BIG);
}

static void test_lost_after_misses(void)
{
    tb_live l;
    uint64_t seq, first = 0, now = 0;
    live_init(&l, 0);
    /* The first ping is answered, then the peer goes silent. */
    TB_REQUIRE(tb_live_ping_sent(&l, now, T0, &first) == 0);
    TB_REQUIRE(tb_live_pong(&l, now + MS, first, T0, T0 + 1, T0 + 1, T0 + 2, NULL) == 0);
    for (unsigned i = 1; i <= 5; i++) {
        now += S;
        TB_REQUIRE(tb_live_ping_sent(&l, now, T0 + (int64_t)now, &seq) == 0);
        TB_CHECK_EQ(tb_live_missed(&l), i - 1);
        TB_CHECK(!tb_live_lost(&l));
    }
    now += S;
    TB_REQUIRE(tb_live_ping_sent(&l, now, T0 + (int64_t)now, &seq) == 0);
    TB_CHECK_EQ(tb_live_missed(&l), 5);
    TB_CHECK(tb_live_lost(&l));
    /* A late pong to a ping still pending brings it back. */
    TB_CHECK_EQ(tb_live_pong(&l, now + MS, seq - 1, T0 + (int64_t)(now - S),
                             T0 + (int64_t)(now - S) + 10, T0 + (int64_t)(now - S) + 10,
                             T0 + (int64_t)now + (int64_t)MS, NULL),
                0);
    TB_CHECK(!tb_live_lost(&l));
    /* Pings older than the pending window are forgotten. */
    TB_CHECK_EQ(tb_live_pong(&l, now + MS, first + 1, T0 + (int64_t)S, T0, T0, T0 + 1, NULL),
                TB_ERR_NOTFOUND);
}

static void test_bad_config(void)
{
    tb_live l;
    tb_live_config cfg;
    tb_live_config_default(&cfg);
    cfg.interval_ns = 0;
    TB_CHECK_EQ(tb_live_init(&l, &cfg, 0, 0), TB_ERR_INVAL);
    tb_live_config_default(&cfg);
    cfg.max_missed = 0;
    TB_CHECK_EQ(tb_live_init(&l, &cfg, 0, 0), TB_ERR_INVAL);
}

int main(void)
{
    TB_RUN(test_compute_textbook);
    TB_RUN(test_compute_rejects_nonsense);
    TB_RUN(test_schedule_and_seq);
    TB_RUN(test_pong_matching);
    TB_RUN(test_min_delay_window);
    TB_RUN(test_caps_reject_but_prove_alive);
    TB_RUN(test_lost_after_misses);
    TB_RUN(test_bad_config);
    return TB_DONE();
}
