/* The cross-check under real conditions, in virtual time: three nodes in three regions poll
 * four NTP sources every 64 s (staggered), their measurements go through crosscheck/window
 * (which keeps each series' regression) into tb_xc_run every few seconds. Honest sources are
 * off by a few µs of noise with bounds of 4 µs; the drifter runs 10 ppm fast. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/crosscheck.h"
#include "crosscheck/window.h"
#include "tests/tb_test.h"

#define US 1000LL
#define SEC 1000000000LL
static const int64_t T0 = 1763700000LL * SEC;

#define N_NODES 3
#define N_SRC 4
static const char *nodes[N_NODES] = {"a", "b", "c"}, *regions[N_NODES] = {"eu", "us", "ap"};
static const char *srcs[N_SRC] = {"ntp-1", "ntp-2", "ntp-3", "drift"};

typedef struct sim {
    tb_xc_window *w;
    uint64_t seq[N_NODES];
    uint32_t rng;
    int64_t drift_ppb; /* of srcs[3] */
    bool no_stats;     /* strip the regression: the old blanket ageing */
} sim;

static int64_t noise_us(sim *s, int64_t us)
{
    s->rng = s->rng * 1664525u + 1013904223u;
    return (int64_t)(s->rng >> 8) % (2 * us * US + 1) - us * US;
}

/* Node n measures source k at virtual time t (all clocks exact: the test is about sources). */
static void measure(sim *s, int n, int k, int64_t t)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    snprintf(m.origin, sizeof(m.origin), "%s", nodes[n]);
    snprintf(m.source_name, sizeof(m.source_name), "%s", srcs[k]);
    m.kind = TB_MEASURE_NTP;
    m.stratum = 2;
    m.seq = ++s->seq[n];
    m.real_ns = T0 + t;
    m.offset_ns = noise_us(s, 2) + (k == 3 ? t / SEC * s->drift_ppb : 0);
    m.delay_ns = 20 * US;
    m.bound_ns = 4 * US;
    tb_xc_window_add(s->w, &m, n == 0, false, 0, 0);
}

static int run_cfg(const sim *s, const tb_xc_config *cfg, int64_t t, tb_xc_result *r);

static int run(const sim *s, int64_t t, tb_xc_result *r)
{
    return run_cfg(s, NULL, t, r);
}

static int run_cfg(const sim *s, const tb_xc_config *cfg, int64_t t, tb_xc_result *r)
{
    tb_xc_peer peers[N_NODES];
    for (int n = 0; n < N_NODES; n++)
        peers[n] = (tb_xc_peer){nodes[n], regions[n], 0, n ? 20 * US : 0, T0 + t - SEC, n == 0};
    tb_xc_obs *obs = NULL;
    size_t n_obs = 0;
    if (tb_xc_window_inputs(s->w, &obs, &n_obs) != TB_OK)
        return TB_ERR_NOMEM;
    for (size_t i = 0; s->no_stats && i < n_obs; i++)
        obs[i].has_freq = false;
    tb_xc_input in = {
        .peers = peers, .n_peers = N_NODES, .obs = obs, .n_obs = n_obs, .now_ns = T0 + t};
    int rc = tb_xc_run(cfg, &in, r);
    free(obs);
    return rc;
}

static int verdict_of(const tb_xc_result *r, const char *src)
{
    for (size_t i = 0; i < r->n_verdicts; i++)
        if (strcmp(r->verdicts[i].source, src) == 0)
            return (int)r->verdicts[i].verdict;
    return -1;
}

static const char *verdict_reason(const tb_xc_result *r, const char *src)
{
    for (size_t i = 0; i < r->n_verdicts; i++)
        if (strcmp(r->verdicts[i].source, src) == 0)
            return r->verdicts[i].reason;
    return "";
}

typedef struct tally {
    int flips;            /* drift: changes between ok and falseticker */
    int64_t first_flag_s; /* when drift was first a falseticker */
    int honest_flagged;   /* runs where an honest source was not ok */
    int unflagged_after;  /* runs where drift was ok after its first flag */
} tally;

/* An hour of 64 s polls, the cross-check every 8 s. */
static tally simulate(int64_t drift_ppb, bool no_stats)
{
    sim s = {.w = tb_xc_window_new(), .rng = 7, .drift_ppb = drift_ppb, .no_stats = no_stats};
    tally y = {.first_flag_s = -1};
    int last = -1;
    for (int64_t t = 0; s.w && t <= 3600 * SEC; t += SEC) {
        for (int n = 0; n < N_NODES; n++)
            for (int k = 0; k < N_SRC; k++)
                if ((t / SEC) % 64 == (5 * k + 17 * n) % 64)
                    measure(&s, n, k, t);
        if ((t / SEC) % 8 != 0 || t < 120 * SEC)
            continue;
        tb_xc_result r;
        if (run(&s, t, &r) != TB_OK)
            break;
        for (int k = 0; k < 3; k++)
            y.honest_flagged += verdict_of(&r, srcs[k]) != TB_XC_OK;
        int v = verdict_of(&r, "drift");
        if (v == TB_XC_FALSETICKER && y.first_flag_s < 0)
            y.first_flag_s = t / SEC;
        if (y.first_flag_s >= 0 && v != TB_XC_FALSETICKER)
            y.unflagged_after++;
        if (getenv("XC_SIM_TRACE") && v != last)
            fprintf(stderr, "t=%lld drift %s: %s\n", (long long)(t / SEC), tb_xc_verdict_name(v),
                    verdict_reason(&r, "drift"));
        if (last >= 0 && v != last)
            y.flips++;
        last = v;
        tb_xc_result_clear(&r);
    }
    tb_xc_window_free(s.w);
    return y;
}

/* The 10 ppm drifter is flagged within the first polls and never unflagged; the honest
 * sources stay ok throughout. */
static void test_drifter_stays_flagged(void)
{
    tally y = simulate(10000, false);
    printf("10 ppm drifter: first flagged at %lld s, %d flips, %d honest verdicts not ok\n",
           (long long)y.first_flag_s, y.flips, y.honest_flagged);
    TB_CHECK(y.first_flag_s >= 0 && y.first_flag_s <= 400);
    TB_CHECK_EQ(y.unflagged_after, 0);
    TB_CHECK(y.flips <= 1);
    TB_CHECK_EQ(y.honest_flagged, 0);
    /* what the blanket 50 ppm ageing made of it, for the record */
    tally old = simulate(10000, true);
    printf("without the regression: first flagged at %lld s, %d flips, %d runs unflagged after\n",
           (long long)old.first_flag_s, old.flips, old.unflagged_after);
    TB_CHECK(old.unflagged_after > 0);
}

/* A source that does not drift is never flagged. */
static void test_no_drift_no_flag(void)
{
    tally y = simulate(0, false);
    TB_CHECK_EQ(y.first_flag_s, -1);
    TB_CHECK_EQ(y.honest_flagged, 0);
}

/* minpoll = maxpoll = 10 with the clock filter releasing every second poll (a sample every
 * 2,048 s) and a window of 60 s: the series stay live between their samples, and a source that
 * falls silent is unreachable after TB_XC_LIVE_INTERVALS of its intervals. */
static void test_slow_polling_stays_live(void)
{
    const int64_t every = 2048;
    sim s = {.w = tb_xc_window_new(), .rng = 3};
    TB_REQUIRE(s.w != NULL);
    tb_xc_config cfg = tb_xc_config_default();
    cfg.window_ns = 60 * SEC;
    int unreachable = 0, runs = 0;
    int64_t silent_from = 8 * 3600, gone_at = -1;
    for (int64_t t = 0; t <= 14 * 3600 * SEC; t += 16 * SEC) {
        for (int n = 0; n < N_NODES; n++)
            for (int k = 0; k < 3; k++)
                if ((t / SEC) % every == ((5 * k + 17 * n) * 32) % every &&
                    (k != 0 || t / SEC < silent_from))
                    measure(&s, n, k, t);
        if (t < 2 * every * SEC || (t / SEC) % 64 != 0)
            continue;
        tb_xc_result r;
        TB_REQUIRE(run_cfg(&s, &cfg, t, &r) == TB_OK);
        int v = verdict_of(&r, "ntp-1");
        if (t / SEC < silent_from) {
            runs++;
            for (int k = 0; k < 3; k++)
                unreachable += verdict_of(&r, srcs[k]) == TB_XC_UNREACHABLE;
        } else if (v == TB_XC_UNREACHABLE && gone_at < 0) {
            gone_at = t / SEC - silent_from;
        }
        tb_xc_result_clear(&r);
    }
    printf("polls of %lld s, window 60 s: %d unreachable verdicts in %d runs; silent source "
           "unreachable %lld s after its last poll slot\n",
           (long long)every, unreachable, runs, (long long)gone_at);
    TB_CHECK(runs > 300);
    TB_CHECK_EQ(unreachable, 0);
    TB_CHECK(gone_at > 0 && gone_at <= (TB_XC_LIVE_INTERVALS + 1) * every);
    tb_xc_window_free(s.w);
}

/* At start, sources nobody has measured yet are warming up, not unreachable; the one that lies
 * is not called a falseticker on the first region's data alone, but as soon as every region
 * that measures has reported it; after the grace time, silence is unreachable again. */
static void test_warming_up(void)
{
    sim s = {.w = tb_xc_window_new(), .rng = 5, .drift_ppb = 0};
    TB_REQUIRE(s.w != NULL);
    tb_xc_peer peers[N_NODES];
    for (int n = 0; n < N_NODES; n++)
        peers[n] = (tb_xc_peer){nodes[n], regions[n], 0, 0, T0, n == 0};
    const tb_xc_source known[] = {{TB_MEASURE_NTP, "ntp-1"},
                                  {TB_MEASURE_NTP, "ntp-2"},
                                  {TB_MEASURE_NTP, "ntp-3"},
                                  {TB_MEASURE_NTP, "liar"},
                                  {TB_MEASURE_NTP, "silent"}};
    tb_xc_input in = {
        .peers = peers, .n_peers = N_NODES, .known = known, .n_known = 5, .started_ns = T0};
    static const struct {
        int64_t t;    /* s after start */
        int measured; /* nodes that have measured everything just now (0..3) */
        tb_xc_verdict_kind liar, honest, silent;
    } steps[] = {
        {1, 0, TB_XC_WARMING_UP, TB_XC_WARMING_UP, TB_XC_WARMING_UP},
        {5, 1, TB_XC_WARMING_UP, TB_XC_WARMING_UP, TB_XC_WARMING_UP},
        {9, 3, TB_XC_FALSETICKER, TB_XC_OK, TB_XC_WARMING_UP},
        {31, 3, TB_XC_FALSETICKER, TB_XC_OK, TB_XC_UNREACHABLE},
    };
    /* the nodes have measured each other (mesh peers) before any NTP source, and agree on
     * each other: every node is corroborated, so every region is expected */
    for (int n = 0; n < N_NODES; n++)
        for (int p = 1; p < N_NODES; p++) {
            tb_measurement m;
            memset(&m, 0, sizeof(m));
            snprintf(m.origin, sizeof(m.origin), "%s", nodes[n]);
            snprintf(m.source_name, sizeof(m.source_name), "%s", nodes[(n + p) % N_NODES]);
            m.kind = TB_MEASURE_PEER;
            m.seq = ++s.seq[n];
            m.real_ns = T0;
            m.bound_ns = 50 * US;
            tb_xc_window_add(s.w, &m, n == 0, false, 0, 0);
        }
    int done = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int64_t t = steps[i].t * SEC;
        for (done = 0; done < steps[i].measured; done++)
            for (int k = 0; k < 4; k++) {
                tb_measurement m;
                memset(&m, 0, sizeof(m));
                snprintf(m.origin, sizeof(m.origin), "%s", nodes[done]);
                snprintf(m.source_name, sizeof(m.source_name), "%s", k < 3 ? srcs[k] : "liar");
                m.kind = TB_MEASURE_NTP;
                m.stratum = 2;
                m.seq = ++s.seq[done];
                m.real_ns = T0 + t - SEC;
                m.offset_ns = k == 3 ? 5000 * US : 0;
                m.bound_ns = 50 * US;
                tb_xc_window_add(s.w, &m, done == 0, false, 0, 0);
            }
        tb_xc_obs *obs = NULL;
        TB_REQUIRE(tb_xc_window_inputs(s.w, &obs, &in.n_obs) == TB_OK);
        in.obs = obs;
        in.now_ns = T0 + t;
        for (int n = 0; n < N_NODES; n++)
            peers[n].sampled_ns = T0 + t;
        tb_xc_result r;
        TB_REQUIRE(tb_xc_run(NULL, &in, &r) == TB_OK);
        TB_CHECK_EQ(verdict_of(&r, "liar"), steps[i].liar);
        if (getenv("XC_SIM_TRACE"))
            fprintf(stderr, "%s\n", verdict_reason(&r, "liar"));
        TB_CHECK_EQ(verdict_of(&r, "ntp-2"), steps[i].honest);
        TB_CHECK_EQ(verdict_of(&r, "silent"), steps[i].silent);
        if (steps[i].liar == TB_XC_WARMING_UP)
            TB_CHECK(strstr(verdict_reason(&r, "liar"), "region(s) so far") != NULL);
        /* the warming up ends by time alone: the node is told when */
        if (steps[i].silent == TB_XC_WARMING_UP)
            TB_CHECK(r.next_run_ns <= T0 + 30 * SEC);
        tb_xc_result_clear(&r);
        free(obs);
    }
    TB_CHECK_STR(tb_xc_verdict_name(TB_XC_WARMING_UP), "warming_up");
    tb_xc_window_free(s.w);
}

int main(void)
{
    TB_RUN(test_warming_up);
    TB_RUN(test_slow_polling_stays_live);
    TB_RUN(test_drifter_stays_flagged);
    TB_RUN(test_no_drift_no_flag);
    return TB_DONE();
}
