/* Tests of crosscheck/ (adr/0008): three nodes in three regions with their own clock offsets;
 * honest, shifted and split sources; borderline intervals; stale and missing data; Roughtime
 * causality across the mesh; the malfeasance report's exact JSON. Peers' reports are made in
 * their own clock frame, so a wrong sign anywhere in the translation fails these tests. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/crosscheck.h"
#include "crosscheck/hold.h"
#include "crosscheck/sourcestats.h"
#include "roughtime/verify.h"
#include "tests/tb_test.h"

#define MS 1000000LL
#define SEC 1000000000LL
static const int64_t NOW = 1763700000LL * SEC;

/* The true offset of each node's clock: truth − node clock. Node a is the local node. */
typedef struct world {
    tb_xc_peer peers[4];
    int64_t behind[4]; /* truth − node clock */
    size_t n_peers;
    tb_xc_obs obs[256];
    size_t n_obs;
    uint64_t seq;
    tb_xc_source known[16];
    size_t n_known;
} world;

static void world_init(world *w)
{
    memset(w, 0, sizeof(*w));
    static const char *names[] = {"a", "b", "c"}, *regions[] = {"eu", "us", "ap"};
    static const int64_t behind[] = {5 * MS, -295 * MS, 155 * MS};
    for (int i = 0; i < 3; i++) {
        w->behind[i] = behind[i];
        /* peer − local = (truth − local) − (truth − peer) */
        w->peers[i] = (tb_xc_peer){names[i],       regions[i],    behind[0] - behind[i],
                                   i ? 1 * MS : 0, NOW - 2 * SEC, false};
    }
    w->n_peers = 3;
    w->seq = 1;
}

/* Node `node` measures `src` at true time NOW + at; the source is `lie` off the truth. */
static tb_xc_obs *measure(world *w, int node, tb_measure_kind kind, const char *src, int64_t lie,
                          int64_t at)
{
    tb_xc_obs *o = &w->obs[w->n_obs++];
    memset(o, 0, sizeof(*o));
    o->origin = w->peers[node].name;
    o->seq = w->seq++;
    o->kind = kind;
    o->source = src;
    int64_t truth = NOW + w->behind[0] + at; /* local clock NOW + at */
    o->real_ns = truth - w->behind[node];    /* what that node's clock read */
    o->offset_ns = w->behind[node] + lie;    /* source − node clock */
    o->delay_ns = 2 * MS;
    o->bound_ns = 10 * MS;
    o->stratum = kind == TB_MEASURE_NTP ? 2 : 0; /* synchronised (stratum 0 would say it is not) */
    return o;
}

static void everyone_measures(world *w, tb_measure_kind kind, const char *src, int64_t lie)
{
    for (int n = 0; n < (int)w->n_peers; n++)
        measure(w, n, kind, src, lie, -1 * SEC);
}

/* The acceptance scenario's sources: three honest, one 2 s ahead for everyone. */
static void three_honest_and_a_liar(world *w)
{
    everyone_measures(w, TB_MEASURE_NTP, "ntp-1", 0);
    everyone_measures(w, TB_MEASURE_NTP, "ntp-2", 0);
    everyone_measures(w, TB_MEASURE_ROUGHTIME, "rt-1", 0);
    everyone_measures(w, TB_MEASURE_NTP, "liar", 2 * SEC);
}

/* Every clock exact and every peer offset known exactly. */
static void world_exact(world *w)
{
    world_init(w);
    for (int i = 0; i < 3; i++) {
        w->behind[i] = 0;
        w->peers[i].offset_ns = 0;
        w->peers[i].uncert_ns = 0;
    }
}

static int run(const world *w, const tb_xc_config *cfg, tb_xc_result *r)
{
    tb_xc_input in = {w->peers,   w->n_peers, w->obs, w->n_obs, w->known,
                      w->n_known, NOW,        0,      "a",      NULL};
    return tb_xc_run(cfg, &in, r);
}

static const tb_xc_verdict *verdict(const tb_xc_result *r, const char *src)
{
    for (size_t i = 0; i < r->n_verdicts; i++)
        if (strcmp(r->verdicts[i].source, src) == 0)
            return &r->verdicts[i];
    return NULL;
}

static int verdict_of(const tb_xc_result *r, const char *src)
{
    const tb_xc_verdict *v = verdict(r, src);
    return v ? (int)v->verdict : -1;
}

static bool cites(const tb_xc_verdict *v, const char *origin)
{
    for (size_t i = 0; i < v->n_refs; i++)
        if (strcmp(v->refs[i].origin, origin) == 0)
            return true;
    return false;
}

static void test_shifted_source_is_falseticker(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_verdicts, 4);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "rt-1"), TB_XC_OK);
    const tb_xc_verdict *v = verdict(&r, "liar");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_FALSETICKER);
    TB_CHECK_EQ(v->n_regions, 3);
    TB_CHECK_EQ(v->n_refs, 3);
    TB_CHECK(cites(v, "a") && cites(v, "b") && cites(v, "c"));
    TB_CHECK(strstr(v->reason, "lies outside the agreement") != NULL);
    TB_CHECK(strstr(v->reason, "3 of 4 sources") != NULL);
    /* the liar's interval sits 2 s above the truth (+5 ms for the local clock) */
    TB_CHECK(v->lo_ns <= 2005 * MS && v->hi_ns >= 2005 * MS);
    /* the estimate: the local clock is 5 ms behind */
    TB_CHECK(r.estimate.valid);
    TB_CHECK_EQ(r.estimate.n_agree, 3);
    TB_CHECK_EQ(r.estimate.n_voting, 4);
    TB_CHECK(llabs(r.estimate.offset_ns - 5 * MS) <= r.estimate.uncert_ns);
    TB_CHECK(r.estimate.uncert_ns <= 11 * MS); /* 10 ms bounds, 1 ms peer uncertainty */
    TB_CHECK(r.estimate.lo_ns <= 5 * MS && r.estimate.hi_ns >= 5 * MS);
    /* sorted by (kind, name): ntp first */
    TB_CHECK_STR(r.verdicts[0].source, "liar");
    TB_CHECK_STR(r.verdicts[3].source, "rt-1");
    TB_CHECK_EQ(r.next_run_ns, NOW - 1 * SEC + 600 * SEC);
    tb_xc_result_clear(&r);
}

/* The brief's smallest case: two honest sources and one shifted. Three agreeing sources are
 * required by default, so nothing can be judged; with min_agree 2, 2 of 3 is a majority. */
static void test_two_honest_one_shifted(void)
{
    world w;
    world_init(&w);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-1", 0);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-2", 0);
    everyone_measures(&w, TB_MEASURE_NTP, "liar", -2 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_INSUFFICIENT);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_INSUFFICIENT);
    TB_CHECK(!r.estimate.valid);
    TB_CHECK(strstr(verdict(&r, "liar")->reason, "need 3 agreeing") != NULL);
    tb_xc_result_clear(&r);
    tb_xc_config cfg = tb_xc_config_default();
    cfg.min_agree = 2;
    TB_REQUIRE(run(&w, &cfg, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    tb_xc_result_clear(&r);
}

static void test_split_source_is_inconsistent(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    measure(&w, 0, TB_MEASURE_NTP, "split", 0, -3 * SEC);
    measure(&w, 1, TB_MEASURE_NTP, "split", 2 * SEC, -3 * SEC); /* lies to region us only */
    measure(&w, 2, TB_MEASURE_NTP, "split", 0, -3 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    const tb_xc_verdict *v = verdict(&r, "split");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_INCONSISTENT);
    TB_CHECK_EQ(v->n_refs, 2);
    TB_CHECK(cites(v, "b"));
    TB_CHECK(strstr(v->reason, "(region us)") != NULL);
    TB_CHECK(strstr(v->reason, "disjoint") != NULL);
    TB_CHECK(!v->has_interval);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "rt-1"), TB_XC_OK);
    TB_CHECK_EQ(r.estimate.n_voting, 4); /* the split source does not vote */
    tb_xc_result_clear(&r);
}

/* A source every node sees off the agreement on the same side, by different amounts (a drifter
 * each node predicts with its own regression): falseticker, not inconsistent across regions,
 * which made the verdict flip between the two (sim/time.c). */
static void test_off_one_side_is_falseticker(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    measure(&w, 0, TB_MEASURE_NTP, "drift", 2 * SEC, -1 * SEC);
    measure(&w, 1, TB_MEASURE_NTP, "drift", 3 * SEC, -1 * SEC);
    measure(&w, 2, TB_MEASURE_NTP, "drift", 2500 * MS, -1 * SEC);
    measure(&w, 0, TB_MEASURE_NTP, "split", 0, -1 * SEC);
    measure(&w, 1, TB_MEASURE_NTP, "split", 3 * SEC, -1 * SEC);
    measure(&w, 2, TB_MEASURE_NTP, "split", 2500 * MS, -1 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    const tb_xc_verdict *v = verdict(&r, "drift");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_FALSETICKER);
    TB_CHECK(strstr(v->reason, "every one of 3 node(s) in 3 region(s) sees it above") != NULL);
    TB_CHECK_EQ(v->n_refs, 3);
    TB_CHECK_EQ(verdict_of(&r, "split"), TB_XC_INCONSISTENT); /* a sees it in the agreement */
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    tb_xc_result_clear(&r);
}

/* At start, before the sources agree (the node's own first measurements), a source is warming
 * up, not "insufficient data": that was a false alarm and a verdict change on every start. */
static void test_warming_up_until_agreement(void)
{
    world w;
    world_init(&w);
    measure(&w, 0, TB_MEASURE_NTP, "ntp-1", 0, -1 * SEC);
    tb_xc_input in = {w.peers, 1, w.obs, w.n_obs, NULL, 0, NOW, NOW - 2 * SEC, "a", NULL};
    tb_xc_result r;
    TB_REQUIRE(tb_xc_run(NULL, &in, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_WARMING_UP);
    TB_CHECK(strstr(verdict(&r, "ntp-1")->reason, "no agreement") != NULL);
    tb_xc_result_clear(&r);
    in.started_ns = NOW - 60 * SEC; /* past the grace time: judged as it is */
    TB_REQUIRE(tb_xc_run(NULL, &in, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_INSUFFICIENT);
    tb_xc_result_clear(&r);
}

/* A wrong translation (sign) would make honest sources inconsistent: peer offsets here are
 * hundreds of ms, far beyond the 10 ms bounds. */
static void test_translation_sign(void)
{
    world w;
    world_init(&w);
    measure(&w, 1, TB_MEASURE_NTP, "ntp-1", 0, -1 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    const tb_xc_verdict *v = verdict(&r, "ntp-1");
    TB_REQUIRE(v != NULL && v->has_interval);
    /* node b's clock is 300 ms ahead of a's; what b saw, seen from a: +5 ms */
    TB_CHECK(v->lo_ns <= 5 * MS && v->hi_ns >= 5 * MS);
    TB_CHECK(v->hi_ns - v->lo_ns < 30 * MS);
    tb_xc_result_clear(&r);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static int64_t jitter(int64_t range) /* uniform in [-range, range] */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int64_t)((rng >> 11) % (uint64_t)(2 * range + 1)) - range;
}

/* Honest sources with noise inside their bounds, and peer offsets off by less than their
 * uncertainty, are never flagged. */
static void test_honest_never_flagged(void)
{
    static const char *names[] = {"s0", "s1", "s2", "s3", "s4"};
    for (int round = 0; round < 300; round++) {
        world w;
        world_init(&w);
        for (int i = 1; i < 3; i++) {
            w.peers[i].uncert_ns = 1 * MS + jitter(1 * MS) + 1 * MS;
            w.peers[i].offset_ns += jitter(w.peers[i].uncert_ns);
        }
        for (int s = 0; s < 5; s++)
            for (int n = 0; n < 3; n++) {
                tb_xc_obs *o = measure(&w, n, s % 2 ? TB_MEASURE_NTP : TB_MEASURE_ROUGHTIME,
                                       names[s], 0, -jitter(300 * SEC) - 300 * SEC);
                o->bound_ns = 1 * MS + jitter(1 * MS) + 1 * MS;
                o->offset_ns += jitter(o->bound_ns);
            }
        tb_xc_result r;
        TB_REQUIRE(run(&w, NULL, &r) == 0);
        for (size_t i = 0; i < r.n_verdicts; i++)
            if (r.verdicts[i].verdict != TB_XC_OK) {
                fprintf(stderr, "round %d: %s: %s\n", round, r.verdicts[i].source,
                        r.verdicts[i].reason);
                TB_CHECK_EQ(r.verdicts[i].verdict, TB_XC_OK);
            }
        TB_CHECK(r.estimate.valid && r.estimate.n_agree == 5);
        TB_CHECK(llabs(r.estimate.offset_ns - 5 * MS) <= r.estimate.uncert_ns);
        tb_xc_result_clear(&r);
    }
}

/* Exact edges: no drift, peers with exact offsets, measurements taken now. */
static void test_borderline(void)
{
    tb_xc_config cfg = tb_xc_config_default();
    cfg.drift_ppb = 0;
    for (int64_t extra = 0; extra <= 1; extra++) {
        world w;
        world_exact(&w);
        /* [-10, 10] ms from a, [10, 30] ms (+extra ns) from b: touching overlaps; b agrees with
         * a elsewhere, so its dissent counts */
        everyone_measures(&w, TB_MEASURE_NTP, "common", 0);
        measure(&w, 0, TB_MEASURE_NTP, "edge", 0, 0);
        measure(&w, 1, TB_MEASURE_NTP, "edge", 20 * MS + extra, 0);
        tb_xc_result r;
        TB_REQUIRE(run(&w, &cfg, &r) == 0);
        TB_CHECK_EQ(verdict_of(&r, "edge"), extra ? TB_XC_INCONSISTENT : TB_XC_INSUFFICIENT);
        if (!extra) {
            TB_CHECK_EQ(verdict(&r, "edge")->lo_ns, 10 * MS);
            TB_CHECK_EQ(verdict(&r, "edge")->hi_ns, 10 * MS);
        }
        tb_xc_result_clear(&r);

        /* agreement of three at [-10, 10] ms; a fourth touching it at 10 ms is ok */
        world_exact(&w);
        measure(&w, 0, TB_MEASURE_NTP, "h1", 0, 0);
        measure(&w, 0, TB_MEASURE_NTP, "h2", 0, 0);
        measure(&w, 0, TB_MEASURE_NTP, "h3", 0, 0);
        measure(&w, 0, TB_MEASURE_NTP, "near", 20 * MS + extra, 0);
        TB_REQUIRE(run(&w, &cfg, &r) == 0);
        TB_CHECK_EQ(verdict_of(&r, "near"), extra ? TB_XC_FALSETICKER : TB_XC_OK);
        TB_CHECK_EQ(r.estimate.offset_ns, extra ? 0 : 10 * MS);
        TB_CHECK_EQ(r.estimate.lo_ns, extra ? -10 * MS : 10 * MS);
        TB_CHECK_EQ(r.estimate.hi_ns, 10 * MS);
        TB_CHECK_EQ(r.estimate.n_agree, extra ? 3 : 4);
        tb_xc_result_clear(&r);
    }
}

static void test_insufficient_data(void)
{
    world w;
    world_init(&w);
    everyone_measures(&w, TB_MEASURE_NTP, "x1", 0);
    everyone_measures(&w, TB_MEASURE_NTP, "x2", 0);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "x1"), TB_XC_INSUFFICIENT);
    TB_CHECK_EQ(verdict(&r, "x1")->n_refs, 3);
    tb_xc_result_clear(&r);
    /* four sources split two against two: no majority */
    everyone_measures(&w, TB_MEASURE_NTP, "y1", 3 * SEC);
    everyone_measures(&w, TB_MEASURE_NTP, "y2", 3 * SEC);
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    for (size_t i = 0; i < r.n_verdicts; i++)
        TB_CHECK_EQ(r.verdicts[i].verdict, TB_XC_INSUFFICIENT);
    TB_CHECK(!r.estimate.valid);
    TB_CHECK_EQ(r.estimate.n_voting, 4);
    tb_xc_result_clear(&r);
    /* peers do not vote by default, but are judged */
    everyone_measures(&w, TB_MEASURE_NTP, "x3", 0);
    measure(&w, 0, TB_MEASURE_PEER, "b", w.behind[0] - w.behind[1] + 900 * MS, -1 * SEC);
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "x3"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "y1"), TB_XC_FALSETICKER);
    TB_CHECK_EQ(verdict_of(&r, "b"), TB_XC_FALSETICKER);
    TB_CHECK_EQ(r.estimate.n_voting, 5);
    tb_xc_result_clear(&r);
}

/* One member with a valid certificate ("mallory", a region of its own, its clock offset known
 * exactly) reports 8 invented sources and one real source, all 5 s ahead. Nothing it says may
 * move the consensus or change a verdict on a real source; its dissent is named. Bounded
 * influence alone (the clock-off rule out of the way), then with it: all its views shifted the
 * same way, it is "member clock off" and nothing of it counts. */
static void test_lying_member(void)
{
    static const char *const invented[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
    tb_xc_result before, after;
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_NTP, "ntp-1"};
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_NTP, "ntp-2"};
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_ROUGHTIME, "rt-1"};
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_NTP, "liar"};
    TB_REQUIRE(run(&w, NULL, &before) == 0);
    TB_REQUIRE(before.estimate.valid);
    w.peers[3] = (tb_xc_peer){"mallory", "nowhere", 0, 0, NOW - 2 * SEC, false};
    w.behind[3] = w.behind[0];
    w.n_peers = 4;
    for (int i = 0; i < 8; i++)
        measure(&w, 3, TB_MEASURE_NTP, invented[i], 5 * SEC, -1 * SEC);
    measure(&w, 3, TB_MEASURE_NTP, "ntp-1", 5 * SEC, -1 * SEC);
    tb_xc_config no_clock_rule = tb_xc_config_default();
    no_clock_rule.max_clock_off_ns = 3600 * SEC;
    TB_REQUIRE(run(&w, &no_clock_rule, &after) == 0);
    TB_REQUIRE(after.estimate.valid);
    TB_CHECK_EQ(after.estimate.offset_ns, before.estimate.offset_ns);
    TB_CHECK_EQ(after.estimate.lo_ns, before.estimate.lo_ns);
    TB_CHECK_EQ(after.estimate.hi_ns, before.estimate.hi_ns);
    TB_CHECK_EQ(after.estimate.n_voting, before.estimate.n_voting);
    TB_CHECK_EQ(after.estimate.n_agree, before.estimate.n_agree);
    TB_CHECK_EQ(after.estimate.n_origins, 3);
    TB_CHECK_EQ(verdict_of(&after, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&after, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&after, "rt-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&after, "liar"), TB_XC_FALSETICKER);
    /* what only it reports is judged but does not vote, and says why */
    const tb_xc_verdict *v = verdict(&after, "x3");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_FALSETICKER);
    TB_CHECK(strstr(v->reason, "not voting: not configured here and measured in one region") !=
             NULL);
    TB_REQUIRE(after.n_findings == 1);
    TB_CHECK_EQ(after.findings[0].kind, TB_XC_MEMBER_UNCORROBORATED);
    TB_CHECK_STR(after.findings[0].origin, "mallory");
    TB_CHECK_STR(after.findings[0].source, "ntp-1");
    TB_CHECK_EQ(after.findings[0].n_refs, 2);
    TB_CHECK_STR(tb_xc_finding_name(TB_XC_MEMBER_UNCORROBORATED), "member uncorroborated");
    tb_xc_result_clear(&after);
    /* even configured here, sources only it measures do not vote: with min_agree 1 they would
     * otherwise be 8 against the 4 real ones */
    for (int i = 0; i < 8; i++)
        w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_NTP, invented[i]};
    tb_xc_config cfg = no_clock_rule;
    cfg.min_agree = 1;
    TB_REQUIRE(run(&w, &cfg, &after) == 0);
    TB_REQUIRE(after.estimate.valid);
    TB_CHECK(after.estimate.hi_ns < 1 * SEC);
    TB_CHECK_EQ(verdict_of(&after, "ntp-2"), TB_XC_OK);
    TB_CHECK(strstr(verdict(&after, "x0")->reason, "measured by one other node only") != NULL);
    tb_xc_result_clear(&after);
    /* with the clock rule: it shares one source with this node only, so it is not "clock off"
     * (members are judged by the shift against this node), and bounded influence holds */
    TB_REQUIRE(run(&w, NULL, &after) == 0);
    TB_REQUIRE(after.estimate.valid);
    TB_CHECK_EQ(after.estimate.offset_ns, before.estimate.offset_ns);
    TB_CHECK_EQ(after.estimate.n_origins, 3);
    TB_REQUIRE(after.n_findings == 1);
    TB_CHECK_EQ(after.findings[0].kind, TB_XC_MEMBER_UNCORROBORATED);
    TB_CHECK_STR(tb_xc_finding_name(TB_XC_MEMBER_CLOCK_OFF), "member clock off");
    tb_xc_result_clear(&after);
    tb_xc_result_clear(&before);
}

static const tb_xc_finding *finding_on(const tb_xc_result *r, const char *origin)
{
    for (size_t i = 0; i < r->n_findings; i++)
        if (strcmp(r->findings[i].origin, origin) == 0)
            return &r->findings[i];
    return NULL;
}

/* o's series has shown its value (settled against its own history) for `held` before it. */
static void settled(tb_xc_obs *o, int64_t held)
{
    o->move_state = TB_XC_SS_SETTLED;
    o->move_base_ns = o->real_ns - held;
}

/* The consensus takeover's smarter half: a member ("mallory", region us with b) measures three
 * sources honestly and one at +5 s. Every other node, b of its own region included, measured
 * that source while mallory's series showed +5 s and sees it at 0: mallory is named
 * "member contradicted" and that view does not count. Not named: when its view and the
 * others' were not held over a common time (a source that stepped is first seen by one node,
 * last by another), when no other node shares
 * its region (a source answering one region differently), when its interval holds the truth
 * (an asymmetric path), or when its region's node sees the same. */
static void test_member_contradicted(void)
{
    world w;
    world_init(&w);
    w.peers[3] = (tb_xc_peer){"mallory", "us", 0, 1 * MS, NOW - 2 * SEC, false};
    w.behind[3] = w.behind[0];
    w.n_peers = 4;
    world base = w;
    for (int n = 0; n < 4; n++) {
        measure(&w, n, TB_MEASURE_NTP, "ntp-1", 0, -1 * SEC);
        measure(&w, n, TB_MEASURE_NTP, "ntp-2", 0, -1 * SEC);
        measure(&w, n, TB_MEASURE_ROUGHTIME, "rt-1", 0, -1 * SEC);
        if (n != 3)
            measure(&w, n, TB_MEASURE_NTP, "ntp-3", 0, -1 * SEC);
    }
    world lie = w; /* mallory has shown +5 s for 10 min, the others measured within that */
    settled(measure(&lie, 3, TB_MEASURE_NTP, "ntp-3", 5 * SEC, -SEC / 2), 600 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&lie, NULL, &r) == 0);
    TB_REQUIRE(r.n_findings == 1);
    const tb_xc_finding *f = &r.findings[0];
    TB_CHECK_EQ(f->kind, TB_XC_MEMBER_CONTRADICTED);
    TB_CHECK_STR(f->origin, "mallory");
    TB_CHECK_STR(f->source, "ntp-3");
    TB_CHECK_EQ(f->n_refs, 2);
    TB_CHECK_STR(f->refs[1].origin, "b");
    TB_CHECK(strstr(f->reason, "every other of 3 node(s) disagrees") != NULL);
    TB_CHECK_STR(tb_xc_finding_name(TB_XC_MEMBER_CONTRADICTED), "member contradicted");
    TB_CHECK_EQ(verdict_of(&r, "ntp-3"), TB_XC_OK);
    TB_CHECK(!cites(verdict(&r, "ntp-3"), "mallory"));
    TB_CHECK_EQ(verdict(&r, "ntp-3")->n_nodes, 3);
    tb_xc_result_clear(&r);

    world first = w; /* its first view, newer than every other: the source may just have
                        stepped */
    measure(&first, 3, TB_MEASURE_NTP, "ntp-3", 5 * SEC, -SEC / 2);
    TB_REQUIRE(run(&first, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-3"), TB_XC_INCONSISTENT);
    tb_xc_result_clear(&r);
    world last = w; /* settled for long, but older than every other view: the same */
    settled(measure(&last, 3, TB_MEASURE_NTP, "ntp-3", 5 * SEC, -2 * SEC), 600 * SEC);
    TB_REQUIRE(run(&last, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    tb_xc_result_clear(&r);

    world alone = lie; /* a region of its own */
    alone.peers[3].region = "nowhere";
    TB_REQUIRE(run(&alone, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    tb_xc_result_clear(&r);

    world asym = w; /* 8 ms off, within its ±10 ms: what an asymmetric path does */
    settled(measure(&asym, 3, TB_MEASURE_NTP, "ntp-3", 8 * MS, -SEC / 2), 600 * SEC);
    TB_REQUIRE(run(&asym, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-3"), TB_XC_OK);
    tb_xc_result_clear(&r);

    world split = base; /* the source answers region us 5 s ahead */
    for (int n = 0; n < 4; n++) {
        measure(&split, n, TB_MEASURE_NTP, "ntp-1", 0, -1 * SEC);
        measure(&split, n, TB_MEASURE_NTP, "ntp-2", 0, -1 * SEC);
        measure(&split, n, TB_MEASURE_ROUGHTIME, "rt-1", 0, -1 * SEC);
        settled(
            measure(&split, n, TB_MEASURE_NTP, "ntp-3", n == 1 || n == 3 ? 5 * SEC : 0, -1 * SEC),
            600 * SEC);
    }
    TB_REQUIRE(run(&split, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-3"), TB_XC_INCONSISTENT);
    tb_xc_result_clear(&r);
}

/* Members and the local node judged by their clocks: honest clocks hundreds of ms apart are
 * fine; a member whose PING/PONG offset no longer holds (its clock stepped 2 s since) sees every
 * shared source shifted the same way: named, not counted; the local node 3 s off by its own
 * sources is named but keeps counting (the consensus says by how much). */
static void test_member_clock_off(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-3", 0);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_findings, 0);
    tb_xc_result_clear(&r);

    world stepped = w;
    stepped.peers[1].offset_ns += 2 * SEC;
    TB_REQUIRE(run(&stepped, NULL, &r) == 0);
    const tb_xc_finding *f = finding_on(&r, "b");
    TB_REQUIRE(f != NULL);
    TB_CHECK_EQ(f->kind, TB_XC_MEMBER_CLOCK_OFF);
    TB_CHECK(strstr(f->reason,
                    "2000.000 ms off this node's after the PING/PONG offset (5 shared") != NULL);
    TB_CHECK(!cites(verdict(&r, "ntp-2"), "b"));
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(r.estimate.n_origins, 2);
    tb_xc_result_clear(&r);
    /* one source in common only: not "every source" */
    world few;
    world_init(&few);
    everyone_measures(&few, TB_MEASURE_NTP, "ntp-1", 0);
    few.peers[1].offset_ns += 2 * SEC;
    TB_REQUIRE(run(&few, NULL, &r) == 0);
    f = finding_on(&r, "b"); /* its dissent on ntp-1 is "uncorroborated" (bounded influence) */
    TB_CHECK(f == NULL || f->kind != TB_XC_MEMBER_CLOCK_OFF);
    tb_xc_result_clear(&r);

    /* the local node 3 s behind: its own sources agree */
    world late;
    world_init(&late);
    late.behind[0] = 3 * SEC;
    for (int i = 0; i < 3; i++)
        late.peers[i].offset_ns = late.behind[0] - late.behind[i];
    three_honest_and_a_liar(&late);
    everyone_measures(&late, TB_MEASURE_NTP, "ntp-3", 0);
    TB_REQUIRE(run(&late, NULL, &r) == 0);
    f = finding_on(&r, "a");
    TB_REQUIRE(f != NULL);
    TB_CHECK(strstr(f->reason, "sources − clock = 3000.000 ms") &&
             !strstr(f->reason, "not counted"));
    TB_CHECK(cites(verdict(&r, "ntp-2"), "a"));
    TB_CHECK(r.estimate.valid && llabs(r.estimate.offset_ns - 3 * SEC) < 20 * MS);
    tb_xc_result_clear(&r);
}

/* Run as a node that started 5 s ago (warming up applies), through `hold` when given. */
static int run_started(const world *w, tb_xc_hold *hold, tb_xc_result *r)
{
    tb_xc_input in = {w->peers,   w->n_peers, w->obs,        w->n_obs, w->known,
                      w->n_known, NOW,        NOW - 5 * SEC, "a",      hold};
    int rc = tb_xc_run(NULL, &in, r);
    if (rc == 0 && hold && (rc = tb_xc_hold_apply(hold, 1, NOW, r)) != 0)
        tb_xc_result_clear(r);
    return rc;
}

/* A member alone in its region whose word nobody shares (it lies about everything) is not
 * expected to measure anything: its first measurement must not put judged sources back into
 * warming up, nor hold up sources nobody has judged yet. A corroborated member in a new region
 * is expected, so a source it has not measured is warming up while not yet judged, but a source
 * once judged stays judged. */
static void test_warming_up_members(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    tb_xc_result r;
    TB_REQUIRE(run_started(&w, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    tb_xc_result_clear(&r);
    /* with no region expected yet, nothing is judged (the local node has measured nothing) */
    world none;
    world_init(&none);
    none.known[none.n_known++] = (tb_xc_source){TB_MEASURE_NTP, "ntp-1"};
    TB_REQUIRE(run_started(&none, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_WARMING_UP);
    tb_xc_result_clear(&r);

    world m = w;
    m.peers[3] = (tb_xc_peer){"mallory", "nowhere", 0, 0, NOW - 2 * SEC, false};
    m.behind[3] = m.behind[0];
    m.n_peers = 4;
    measure(&m, 3, TB_MEASURE_NTP, "ntp-1", 5 * SEC, -1 * SEC);
    measure(&m, 3, TB_MEASURE_NTP, "invented", 5 * SEC, -1 * SEC);
    TB_REQUIRE(run_started(&m, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    TB_CHECK(r.n_findings >= 1 && strcmp(r.findings[0].origin, "mallory") == 0);
    tb_xc_result_clear(&r);

    /* d in region sa agrees with everyone on ntp-1 and has not measured ntp-2 yet */
    world d = w;
    d.peers[3] = (tb_xc_peer){"d", "sa", 0, 0, NOW - 2 * SEC, false};
    d.behind[3] = d.behind[0];
    d.n_peers = 4;
    measure(&d, 3, TB_MEASURE_NTP, "ntp-1", 0, -1 * SEC);
    TB_REQUIRE(run_started(&d, NULL, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_WARMING_UP);
    TB_CHECK(strstr(verdict(&r, "ntp-2")->reason, "data from 3 of 4 expected region(s) so far (sa "
                                                  "missing)") != NULL);
    tb_xc_result_clear(&r);
    /* ... but what the node has judged before d appeared stays judged */
    tb_xc_hold *h = tb_xc_hold_new();
    TB_REQUIRE(h != NULL);
    TB_REQUIRE(run_started(&w, h, &r) == 0);
    TB_CHECK(tb_xc_hold_judged(h, TB_MEASURE_NTP, "ntp-2"));
    TB_CHECK(!tb_xc_hold_judged(h, TB_MEASURE_ROUGHTIME, "ntp-2"));
    tb_xc_result_clear(&r);
    TB_REQUIRE(run_started(&d, h, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "ntp-2"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    TB_CHECK(tb_xc_hold_judged(h, TB_MEASURE_NTP, "liar"));
    tb_xc_result_clear(&r);
    tb_xc_hold_free(h);
    TB_CHECK(!tb_xc_hold_judged(NULL, TB_MEASURE_NTP, "ntp-2"));
}

/* Sources that say they are unsynchronised (NTP leap 3 or stratum 16 or 0, a Roughtime radius
 * above the limit) are called so, never count towards the agreement (even at 2 s off, they do
 * not make the agreement fail) and cite the measurement; a source unsynchronised for one node
 * only is judged on the others' measurements. */
static void test_unsynchronised(void)
{
    world w;
    world_init(&w);
    three_honest_and_a_liar(&w);
    for (int n = 0; n < 3; n++) {
        measure(&w, n, TB_MEASURE_NTP, "leap3", 2 * SEC, -1 * SEC)->leap = 3;
        measure(&w, n, TB_MEASURE_NTP, "s16", 2 * SEC, -1 * SEC)->stratum = 16;
        tb_xc_obs *o = measure(&w, n, TB_MEASURE_ROUGHTIME, "rt-wide", 0, -1 * SEC);
        o->has_rt = true;
        o->rt_radi_ns = 11 * SEC;
        o->bound_ns = 11 * SEC;
        /* RADI 0xffffffff: sent as offset 0, bound 0 (a point that would agree with nothing) */
        o = measure(&w, n, TB_MEASURE_ROUGHTIME, "rt-unsync", 0, -1 * SEC);
        o->has_rt = true;
        o->rt_radi_ns = TB_RT_UNSYNCED_RADI_NS;
        o->offset_ns = o->bound_ns = 0;
        o = measure(&w, n, TB_MEASURE_NTP, "half", 0, -1 * SEC);
        o->stratum = n == 2 ? 0 : 2;
    }
    tb_xc_config cfg = tb_xc_config_default();
    cfg.min_agree = 4; /* the three honest ones and "half": the others must not count */
    tb_xc_result r;
    TB_REQUIRE(run(&w, &cfg, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "leap3"), TB_XC_UNSYNCHRONISED);
    TB_CHECK_EQ(verdict_of(&r, "s16"), TB_XC_UNSYNCHRONISED);
    TB_CHECK_EQ(verdict_of(&r, "rt-wide"), TB_XC_UNSYNCHRONISED);
    TB_CHECK_EQ(verdict_of(&r, "rt-unsync"), TB_XC_UNSYNCHRONISED);
    TB_CHECK(strstr(verdict(&r, "rt-unsync")->reason, "to 3 node(s)") &&
             strstr(verdict(&r, "rt-unsync")->reason, "RADI 0xffffffff"));
    TB_CHECK_EQ(verdict_of(&r, "half"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "liar"), TB_XC_FALSETICKER);
    TB_CHECK_EQ(r.estimate.n_voting, 5);
    TB_CHECK_EQ(r.estimate.n_agree, 4);
    const tb_xc_verdict *v = verdict(&r, "s16");
    TB_CHECK(strstr(v->reason, "unsynchronised to 3 node(s)") && strstr(v->reason, "stratum 16"));
    TB_CHECK_EQ(v->n_refs, 1);
    TB_CHECK(!v->has_interval);
    TB_CHECK(strstr(verdict(&r, "rt-wide")->reason, "radius 11.000 s above 10.000 s") != NULL);
    TB_CHECK_STR(tb_xc_verdict_name(TB_XC_UNSYNCHRONISED), "unsynchronised");
    tb_xc_result_clear(&r);
    /* a wider limit takes the Roughtime server back */
    cfg.max_radius_ns = 12 * SEC;
    TB_REQUIRE(run(&w, &cfg, &r) == 0);
    TB_CHECK_EQ(verdict_of(&r, "rt-wide"), TB_XC_OK);
    tb_xc_result_clear(&r);
    cfg.max_radius_ns = 0;
    TB_CHECK_EQ(run(&w, &cfg, &r), TB_ERR_INVAL);
}

static void test_stale_and_unreachable(void)
{
    world w;
    world_init(&w);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-1", 0);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-2", 0);
    everyone_measures(&w, TB_MEASURE_NTP, "ntp-3", 0);
    /* it lied long ago (older than the 600 s window) and is honest now */
    for (int n = 0; n < 3; n++)
        measure(&w, n, TB_MEASURE_NTP, "reformed", 2 * SEC, -700 * SEC);
    everyone_measures(&w, TB_MEASURE_NTP, "reformed", 0);
    /* gone silent: only old measurements */
    measure(&w, 2, TB_MEASURE_NTP, "silent", 0, -900 * SEC);
    measure(&w, 2, TB_MEASURE_NTP, "silent", 0, -800 * SEC);
    /* from the far future: as good as stale */
    measure(&w, 1, TB_MEASURE_NTP, "future", 0, 900 * SEC);
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_ROUGHTIME, "never"};
    w.known[w.n_known++] = (tb_xc_source){TB_MEASURE_NTP, "ntp-1"};
    /* from a node nobody knows */
    tb_xc_obs *o = measure(&w, 0, TB_MEASURE_NTP, "ntp-1", 5 * SEC, 0);
    o->origin = "mallory";
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_verdicts, 7);
    TB_CHECK_EQ(verdict_of(&r, "reformed"), TB_XC_OK);
    TB_CHECK_EQ(verdict_of(&r, "ntp-1"), TB_XC_OK);
    const tb_xc_verdict *v = verdict(&r, "silent");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_UNREACHABLE);
    TB_CHECK_EQ(v->n_refs, 1);
    TB_CHECK_EQ(v->refs[0].seq, w.obs[v->refs[0].obs].seq);
    TB_CHECK_EQ(w.obs[v->refs[0].obs].real_ns, NOW + w.behind[0] - 800 * SEC - w.behind[2]);
    v = verdict(&r, "never");
    TB_REQUIRE(v != NULL);
    TB_CHECK_EQ(v->verdict, TB_XC_UNREACHABLE);
    TB_CHECK_EQ(v->n_refs, 0);
    TB_CHECK_EQ(verdict_of(&r, "future"), TB_XC_UNREACHABLE);
    TB_CHECK_EQ(r.n_stale, 3 + 2 + 1);
    TB_CHECK_EQ(r.n_unknown_origin, 1);
    tb_xc_result_clear(&r);
}

static void test_bad_input(void)
{
    world w;
    world_init(&w);
    measure(&w, 0, TB_MEASURE_NTP, "x", 0, 0)->bound_ns = -1;
    tb_xc_result r;
    TB_CHECK_EQ(run(&w, NULL, &r), TB_ERR_INVAL);
    TB_CHECK(r.verdicts == NULL);
    world_init(&w);
    tb_xc_config cfg = tb_xc_config_default();
    cfg.window_ns = 0;
    TB_CHECK_EQ(run(&w, &cfg, &r), TB_ERR_INVAL);
    /* extreme values saturate instead of overflowing (UBSan checks): b's interval ends near
     * +0.3 s, c's begins near INT64_MAX */
    everyone_measures(&w, TB_MEASURE_NTP, "common", 0);
    tb_xc_obs *o = measure(&w, 1, TB_MEASURE_NTP, "wild", 0, 0);
    o->offset_ns = INT64_MIN;
    o->bound_ns = INT64_MAX;
    o = measure(&w, 2, TB_MEASURE_NTP, "wild", 0, 0);
    o->offset_ns = INT64_MAX;
    TB_CHECK_EQ(run(&w, NULL, &r), 0);
    TB_CHECK_EQ(verdict_of(&r, "wild"), TB_XC_INCONSISTENT);
    tb_xc_result_clear(&r);
}

/* Roughtime: response i taken before j with MIDP_i − RADI_i > MIDP_j + RADI_j. */
static tb_xc_obs *rt(world *w, int node, int64_t at, int64_t midp_minus_truth, int64_t radi)
{
    tb_xc_obs *o = measure(w, node, TB_MEASURE_ROUGHTIME, "rt-1", 0, at);
    o->has_rt = true;
    memset(o->rt_pubkey, 0x42, sizeof(o->rt_pubkey));
    o->rt_midp_ns = NOW + w->behind[0] + at + midp_minus_truth;
    o->rt_radi_ns = radi;
    return o;
}

static void test_causality(void)
{
    world w;
    world_init(&w);
    /* honest answers, one per node, 10 s apart: nothing to report */
    rt(&w, 1, -30 * SEC, 0, 1 * SEC);
    rt(&w, 2, -20 * SEC, 0, 1 * SEC);
    rt(&w, 0, -10 * SEC, 0, 1 * SEC);
    tb_xc_result r;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_violations, 0);
    tb_xc_result_clear(&r);
    /* node c asks 200 ms after node b and gets a MIDP 20 s earlier: by the times the members
     * claim the server lied, but nothing the server signed shows the order: no report */
    world_init(&w);
    rt(&w, 1, -200 * MS, 0, 1 * SEC);
    rt(&w, 2, 0, -20 * SEC, 1 * SEC);
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_violations, 0);
    TB_CHECK_EQ(r.n_findings, 0);
    tb_xc_result_clear(&r);
    /* node b's second request chained to its first response: the chain proves the order */
    world_init(&w);
    tb_xc_obs *e = rt(&w, 1, -10 * SEC, 0, 1 * SEC);
    tb_xc_obs *l = rt(&w, 1, 0, -20 * SEC, 1 * SEC);
    l->rt_chained = true;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_REQUIRE(r.n_violations == 1);
    TB_CHECK_STR(r.violations[0].earlier.origin, "b");
    TB_CHECK_STR(r.violations[0].later.origin, "b");
    TB_CHECK_EQ(r.violations[0].earlier.seq, e->seq);
    TB_CHECK_EQ(r.violations[0].later.obs, 1);
    TB_CHECK_STR(r.violations[0].source, "rt-1");
    TB_CHECK_EQ(r.violations[0].rt_pubkey[0], 0x42);
    TB_CHECK_EQ(r.n_findings, 0);
    tb_xc_result_clear(&r);
    /* framing: two genuine responses 12 s apart, the second re-sent by b with a local time
     * 20 s earlier (its offset claim adjusted to match): no report against the server, a
     * finding against b */
    world_init(&w);
    rt(&w, 1, -12 * SEC, 0, 1 * SEC);
    l = rt(&w, 1, 0, 0, 1 * SEC);
    l->real_ns -= 20 * SEC;
    l->offset_ns += 20 * SEC;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_violations, 0);
    TB_REQUIRE(r.n_findings == 1);
    TB_CHECK_EQ(r.findings[0].kind, TB_XC_MEMBER_INCONSISTENT);
    TB_CHECK_STR(r.findings[0].origin, "b");
    TB_CHECK_STR(r.findings[0].source, "rt-1");
    TB_CHECK(strstr(r.findings[0].reason, "no nonce chain") != NULL);
    TB_CHECK_STR(tb_xc_finding_name(TB_XC_MEMBER_INCONSISTENT), "member inconsistent");
    tb_xc_result_clear(&r);
    /* a chain does not help a contradiction the radii cover */
    world_init(&w);
    rt(&w, 1, -10 * SEC, 0, 10 * SEC);
    rt(&w, 1, 0, -20 * SEC, 10 * SEC)->rt_chained = true;
    TB_REQUIRE(run(&w, NULL, &r) == 0);
    TB_CHECK_EQ(r.n_violations, 0);
    tb_xc_result_clear(&r);
}

/* The framing member's re-timed response is its newest view of the server: that view must not
 * make the honest server inconsistent (its measurements of the key are discredited), and a false
 * chain claim earlier in its sequence must not hide the contradiction. */
static void test_framing_discredits(void)
{
    for (int false_chain_first = 0; false_chain_first < 2; false_chain_first++) {
        world w;
        world_init(&w);
        everyone_measures(&w, TB_MEASURE_NTP, "ntp-1", 0);
        everyone_measures(&w, TB_MEASURE_NTP, "ntp-2", 0);
        everyone_measures(&w, TB_MEASURE_NTP, "ntp-3", 0);
        rt(&w, 0, -30 * SEC, 0, 1 * SEC)->bound_ns = 1 * SEC + 2 * MS;
        rt(&w, 2, -30 * SEC, 0, 1 * SEC)->bound_ns = 1 * SEC + 2 * MS;
        if (false_chain_first) {
            /* b's earlier pair: re-timed first, then one claiming a chain it does not have */
            rt(&w, 1, -290 * SEC, 0, 1 * SEC)->real_ns -= 20 * SEC;
            rt(&w, 1, -302 * SEC, 0, 1 * SEC)->rt_chained = true;
        }
        rt(&w, 1, -12 * SEC, 0, 1 * SEC)->bound_ns = 1 * SEC + 2 * MS;
        tb_xc_obs *l = rt(&w, 1, 0, 0, 1 * SEC);
        l->bound_ns = 1 * SEC + 2 * MS;
        l->real_ns -= 20 * SEC;
        l->offset_ns += 20 * SEC;
        tb_xc_result r;
        TB_REQUIRE(run(&w, NULL, &r) == 0);
        TB_CHECK_EQ(r.n_violations, (size_t)false_chain_first); /* the claim, for the caller */
        TB_REQUIRE(r.n_findings == 1);
        TB_CHECK_EQ(r.findings[0].kind, TB_XC_MEMBER_INCONSISTENT);
        TB_CHECK_STR(r.findings[0].origin, "b");
        const tb_xc_verdict *v = verdict(&r, "rt-1");
        TB_REQUIRE(v != NULL);
        TB_CHECK_EQ(v->verdict, TB_XC_OK);
        TB_CHECK(!cites(v, "b"));
        tb_xc_result_clear(&r);
    }
}

static void test_malfeasance_json(void)
{
    uint8_t pk[32] = {0}, rand[32];
    memset(rand, 0xff, sizeof(rand));
    tb_xc_rt_exchange x[2] = {
        {NULL, pk, {(const uint8_t *)"abc", 3}, {(const uint8_t *)"hello", 5}},
        {rand, pk, {(const uint8_t *)"ab", 2}, {(const uint8_t *)"a", 1}},
    };
    const char *want =
        "{\"responses\":[{\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"request\":\"YWJj\",\"response\":\"aGVsbG8=\"},"
        "{\"rand\":\"//////////////////////////////////////////8=\","
        "\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"request\":\"YWI=\",\"response\":\"YQ==\"}]}";
    char buf[600];
    size_t n = 0;
    TB_REQUIRE(tb_xc_malfeasance_json(x, 2, buf, sizeof(buf), &n) == 0);
    TB_CHECK_STR(buf, want);
    TB_CHECK_EQ(n, strlen(want));
    for (size_t cap = 1; cap <= strlen(want); cap++)
        TB_CHECK_EQ(tb_xc_malfeasance_json(x, 2, buf, cap, &n), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_xc_malfeasance_json(x, 2, buf, strlen(want) + 1, &n), 0);
    x[1].response.len = 0;
    TB_CHECK_EQ(tb_xc_malfeasance_json(x, 2, buf, sizeof(buf), &n), TB_ERR_INVAL);
}

/* From measure/ to the cross-check and the report: a parsed measurement's fields carry over. */
static void test_from_measurement(void)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    strcpy(m.origin, "b");
    m.kind = TB_MEASURE_ROUGHTIME;
    strcpy(m.source_name, "rt-1");
    m.has_rt_pubkey = true;
    memset(m.rt_pubkey, 7, 32);
    m.seq = 9;
    m.real_ns = 11;
    m.offset_ns = -12;
    m.delay_ns = 13;
    m.bound_ns = 14;
    tb_xc_obs o;
    tb_xc_obs_from_measurement(&m, &o);
    TB_CHECK_STR(o.origin, "b");
    TB_CHECK_STR(o.source, "rt-1");
    TB_CHECK_EQ(o.kind, TB_MEASURE_ROUGHTIME);
    TB_CHECK(o.seq == 9 && o.real_ns == 11 && o.offset_ns == -12 && o.delay_ns == 13 &&
             o.bound_ns == 14);
    TB_CHECK(!o.has_rt && o.rt_pubkey[31] == 7);
    tb_xc_rt_exchange x;
    TB_CHECK_EQ(tb_xc_exchange_from_measurement(&m, &x), TB_ERR_INVAL); /* no evidence */
    m.ev_request = (tb_measure_bytes){(const uint8_t *)"abc", 3};
    m.ev_response = (tb_measure_bytes){(const uint8_t *)"hello", 5};
    TB_REQUIRE(tb_xc_exchange_from_measurement(&m, &x) == 0);
    TB_CHECK(x.rand == NULL && x.pubkey == m.rt_pubkey && x.request.len == 3);
    m.has_rand = true;
    TB_REQUIRE(tb_xc_exchange_from_measurement(&m, &x) == 0);
    TB_CHECK(x.rand == m.rand);
    m.kind = TB_MEASURE_NTP;
    TB_CHECK_EQ(tb_xc_exchange_from_measurement(&m, &x), TB_ERR_INVAL);
}

/* The identifiers are a published contract (node/status.schema.json, metrics labels). */
static void test_verdict_ids(void)
{
    static const char *const ids[TB_XC_VERDICT_COUNT] = {
        "ok",           "falseticker", "inconsistent",  "unreachable",
        "insufficient", "warming_up",  "unsynchronised"};
    for (int v = 0; v < TB_XC_VERDICT_COUNT; v++) {
        TB_CHECK_STR(tb_xc_verdict_id(v), ids[v]);
        TB_CHECK(strcmp(tb_xc_verdict_name(v), "unknown") != 0);
    }
    TB_CHECK_STR(tb_xc_verdict_id(TB_XC_VERDICT_COUNT), "unknown");
    TB_CHECK_STR(tb_xc_verdict_id(-1), "unknown");
}

int main(void)
{
    TB_RUN(test_verdict_ids);
    TB_RUN(test_shifted_source_is_falseticker);
    TB_RUN(test_two_honest_one_shifted);
    TB_RUN(test_split_source_is_inconsistent);
    TB_RUN(test_lying_member);
    TB_RUN(test_warming_up_until_agreement);
    TB_RUN(test_off_one_side_is_falseticker);
    TB_RUN(test_warming_up_members);
    TB_RUN(test_unsynchronised);
    TB_RUN(test_member_clock_off);
    TB_RUN(test_member_contradicted);
    TB_RUN(test_translation_sign);
    TB_RUN(test_honest_never_flagged);
    TB_RUN(test_borderline);
    TB_RUN(test_insufficient_data);
    TB_RUN(test_stale_and_unreachable);
    TB_RUN(test_bad_input);
    TB_RUN(test_causality);
    TB_RUN(test_framing_discredits);
    TB_RUN(test_malfeasance_json);
    TB_RUN(test_from_measurement);
    return TB_DONE();
}
