/* discovery/members: the member list and SWIM-with-suspicion steps, through the public API. */
#include <string.h>

#include "common/clock.h"
#include "discovery/members.h"
#include "tb_test.h"

#define S TB_NS_PER_SEC
#define MS TB_NS_PER_MS

typedef struct seen {
    int n[TB_MB_ACT_REACHED + 1];
    tb_mb_action last[TB_MB_ACT_REACHED + 1];
} seen;

static seen drain(tb_mb *mb)
{
    seen s;
    memset(&s, 0, sizeof(s));
    tb_mb_action a;
    while (tb_mb_next_action(mb, &a) == 0) {
        s.n[a.type]++;
        s.last[a.type] = a;
    }
    return s;
}

static tb_mb *make(void)
{
    tb_mb_config cfg;
    tb_mb_config_default(&cfg);
    cfg.max_members = 4;
    tb_mb *mb = NULL;
    return tb_mb_new(&cfg, "me", 5, 1, &mb) ? NULL : mb;
}

static void test_suspect_then_dead(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_CHECK_EQ(tb_mb_alive(mb, 0, "a", 1), 0);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_UP], 1);
    TB_CHECK_EQ(tb_mb_suspect(mb, S, "a", 0), 0); /* stale incarnation: ignored */
    tb_mb_state st;
    TB_REQUIRE(tb_mb_get(mb, "a", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_ALIVE);
    TB_CHECK_EQ(tb_mb_suspect(mb, S, "a", 1), 0);
    TB_REQUIRE(tb_mb_get(mb, "a", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_SUSPECT);
    TB_CHECK_EQ(tb_mb_next_wake(mb), 4 * S);
    tb_mb_tick(mb, 4 * S - 1);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_DEAD], 0);
    tb_mb_tick(mb, 4 * S);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_DEAD], 1);
    TB_CHECK_STR(s.last[TB_MB_ACT_DEAD].target, "a");
    /* An ALIVE with the same incarnation does not revive; a newer one does. */
    TB_CHECK_EQ(tb_mb_alive(mb, 5 * S, "a", 1), 0);
    TB_REQUIRE(tb_mb_get(mb, "a", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_DEAD);
    TB_CHECK_EQ(tb_mb_alive(mb, 5 * S, "a", 2), 0);
    TB_REQUIRE(tb_mb_get(mb, "a", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_ALIVE);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_UP], 1);
    /* Bounded: a fifth member does not fit. */
    for (int i = 0; i < 3; i++)
        TB_CHECK_EQ(tb_mb_alive(mb, 0, (const char *[]){"b", "c", "d"}[i], 0), 0);
    TB_CHECK_EQ(tb_mb_alive(mb, 0, "e", 0), TB_ERR_FULL);
    TB_CHECK_EQ(tb_mb_alive(mb, 0, "Bad Name", 0), TB_ERR_INVAL);
    tb_mb_free(mb);
}

static void test_refute(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_CHECK_EQ(tb_mb_suspect(mb, 0, "me", 9), 0); /* never announced: refused */
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_ALIVE], 0);
    TB_CHECK_EQ(tb_mb_suspect(mb, 0, "me", 5), 0);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_ALIVE], 1);
    TB_CHECK(s.last[TB_MB_ACT_ALIVE].fresh);
    TB_CHECK_EQ(s.last[TB_MB_ACT_ALIVE].incarnation, 6);
    TB_CHECK_EQ(tb_mb_incarnation(mb), 6);
    /* A direct probe from one who holds us dead at an old incarnation: ack and resend. */
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 0, "x", 77, "me", 5, true), 0);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_ACK], 1);
    TB_CHECK(s.last[TB_MB_ACT_PROBE_ACK].heard);
    TB_CHECK_EQ(s.last[TB_MB_ACT_PROBE_ACK].probe_id, 77);
    TB_CHECK_EQ(s.n[TB_MB_ACT_ALIVE], 1);
    TB_CHECK(!s.last[TB_MB_ACT_ALIVE].fresh);
    TB_CHECK_STR(s.last[TB_MB_ACT_ALIVE].peer, "x");
    tb_mb_free(mb);
}

/* A renewed certificate is a new incarnation: announced at once, and SWIM goes on from it (a
 * SUSPECT of the new one refuted, one of the old one stale). */
static void test_renew(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    tb_mb_renew(mb);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_ALIVE], 1);
    TB_CHECK(s.last[TB_MB_ACT_ALIVE].fresh);
    TB_CHECK_STR(s.last[TB_MB_ACT_ALIVE].peer, "");
    TB_CHECK_EQ(s.last[TB_MB_ACT_ALIVE].incarnation, 6);
    TB_CHECK_EQ(tb_mb_incarnation(mb), 6);
    /* Before the renewal this SUSPECT named an incarnation never announced and was refused. */
    TB_CHECK_EQ(tb_mb_suspect(mb, 0, "me", 6), 0);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_ALIVE], 1);
    TB_CHECK_EQ(s.last[TB_MB_ACT_ALIVE].incarnation, 7);
    TB_CHECK_EQ(tb_mb_suspect(mb, 0, "me", 5), 0);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_ALIVE], 0);
    tb_mb_stats st;
    tb_mb_get_stats(mb, &st);
    TB_CHECK_EQ(st.renewed, 1);
    TB_CHECK_EQ(st.refuted, 1);
    tb_mb_free(mb);
}

static void test_indirect_probe(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_REQUIRE(tb_mb_alive(mb, 0, "t", 3) == 0);
    const char *helpers[] = {"h1", "t", "h2", "me", "h3", "h4"};
    TB_CHECK_EQ(tb_mb_link_lost(mb, S, "t", helpers, 6), 0);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 3);
    TB_CHECK(strcmp(s.last[TB_MB_ACT_PROBE_REQ].peer, "t") != 0);
    TB_CHECK(strcmp(s.last[TB_MB_ACT_PROBE_REQ].peer, "me") != 0);
    uint64_t id = s.last[TB_MB_ACT_PROBE_REQ].probe_id;
    const char *asked = s.last[TB_MB_ACT_PROBE_REQ].peer;
    /* One helper heard the target: only our link broke. */
    TB_CHECK_EQ(tb_mb_recv_probe_ack(mb, S, "stranger", id, "t", true), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_mb_recv_probe_ack(mb, S, asked, id, "t", true), 0);
    tb_mb_tick(mb, 3 * S);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_SUSPECT], 0);
    /* Nobody answers: suspect after the probe timeout, SUSPECT broadcast. */
    TB_CHECK_EQ(tb_mb_link_lost(mb, 4 * S, "t", helpers, 6), 0);
    drain(mb);
    tb_mb_tick(mb, 5 * S);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_SUSPECT], 1);
    TB_CHECK_EQ(s.last[TB_MB_ACT_SUSPECT].incarnation, 3);
    tb_mb_state st;
    TB_REQUIRE(tb_mb_get(mb, "t", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_SUSPECT);
    /* No helper at all: suspect at once. */
    TB_REQUIRE(tb_mb_alive(mb, 0, "u", 1) == 0);
    TB_CHECK_EQ(tb_mb_link_lost(mb, 5 * S, "u", NULL, 0), 0);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_SUSPECT], 1);
    tb_mb_free(mb);
}

static void test_helper_side(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_REQUIRE(tb_mb_alive(mb, 0, "t", 1) == 0);
    tb_mb_heard(mb, S, "t");
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 2 * S, "asker", 10, "t", 1, false), 0);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_ACK], 1);
    TB_CHECK(s.last[TB_MB_ACT_PROBE_ACK].heard);
    /* Not heard lately: we ask the target ourselves and answer when it does. */
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 10 * S, "asker", 11, "t", 1, false), 0);
    s = drain(mb);
    TB_REQUIRE(s.n[TB_MB_ACT_PROBE_REQ] == 1);
    TB_CHECK_STR(s.last[TB_MB_ACT_PROBE_REQ].peer, "t");
    TB_CHECK(!s.last[TB_MB_ACT_PROBE_REQ].suspect);
    uint64_t mine = s.last[TB_MB_ACT_PROBE_REQ].probe_id;
    TB_CHECK_EQ(tb_mb_recv_probe_ack(mb, 10 * S, "t", mine, "t", true), 0);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_ACK], 1);
    TB_CHECK_STR(s.last[TB_MB_ACT_PROBE_ACK].peer, "asker");
    TB_CHECK_EQ(s.last[TB_MB_ACT_PROBE_ACK].probe_id, 11);
    TB_CHECK(s.last[TB_MB_ACT_PROBE_ACK].heard);
    /* ... or says no after half the probe timeout. */
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 20 * S, "asker", 12, "t", 1, false), 0);
    drain(mb);
    tb_mb_tick(mb, 20 * S + 500 * MS);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_ACK], 1);
    TB_CHECK(!s.last[TB_MB_ACT_PROBE_ACK].heard);
    tb_mb_free(mb);
}

static void test_dead_member_reached(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_REQUIRE(tb_mb_suspect(mb, 0, "d", 2) == 0);
    tb_mb_tick(mb, 3 * S);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_DEAD], 1);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 1); /* probed directly at once */
    TB_CHECK_STR(s.last[TB_MB_ACT_PROBE_REQ].peer, "d");
    TB_CHECK(s.last[TB_MB_ACT_PROBE_REQ].suspect);
    TB_CHECK_EQ(s.last[TB_MB_ACT_PROBE_REQ].incarnation, 2);
    uint64_t id = s.last[TB_MB_ACT_PROBE_REQ].probe_id;
    TB_CHECK_EQ(tb_mb_recv_probe_ack(mb, 3 * S, "other", id, "d", true), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_mb_recv_probe_ack(mb, 3 * S, "d", id, "d", true), 0);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_REACHED], 1);
    TB_CHECK_STR(s.last[TB_MB_ACT_REACHED].target, "d");
    tb_mb_stats st;
    tb_mb_get_stats(mb, &st);
    TB_CHECK_EQ(st.declared_dead, 1);
    TB_CHECK_EQ(tb_mb_count(mb, TB_MB_DEAD), 1);
    tb_mb_free(mb);
}

/* After a partition: one dead member back (its ALIVE) brings the probe of the next forward. */
static void test_revival_speeds_probes(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_REQUIRE(tb_mb_suspect(mb, 0, "d", 2) == 0);
    TB_REQUIRE(tb_mb_suspect(mb, 0, "e", 2) == 0);
    tb_mb_tick(mb, 3 * S);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_DEAD], 2);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 1);
    const char *first = s.last[TB_MB_ACT_PROBE_REQ].peer[0] == 'd' ? "d" : "e";
    const char *other = first[0] == 'd' ? "e" : "d";
    TB_CHECK_EQ(tb_mb_next_wake(mb), 4 * S); /* the next direct probe, an interval on */
    TB_CHECK_EQ(tb_mb_alive(mb, 3 * S + 100 * MS, first, 3), 0);
    TB_CHECK_EQ(tb_mb_next_wake(mb), 3 * S + 225 * MS);
    tb_mb_tick(mb, 3 * S + 225 * MS);
    s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 1);
    TB_CHECK_STR(s.last[TB_MB_ACT_PROBE_REQ].peer, other);
    /* A member that was only suspect coming back does not hurry anything. */
    TB_REQUIRE(tb_mb_suspect(mb, 4 * S, "f", 1) == 0);
    uint64_t w = tb_mb_next_wake(mb);
    TB_CHECK_EQ(tb_mb_alive(mb, 4 * S, "f", 2), 0);
    TB_CHECK_EQ(tb_mb_next_wake(mb), w);
    tb_mb_free(mb);
}

/* A member we hold dead that probes us (the other half of a healed partition) is probed back
 * at once, once: its refutation need not wait for our own random probe of it. */
static void test_dead_member_probed_back(void)
{
    tb_mb *mb = make();
    TB_REQUIRE(mb);
    TB_REQUIRE(tb_mb_suspect(mb, 0, "d", 2) == 0);
    TB_REQUIRE(tb_mb_suspect(mb, 0, "e", 1) == 0);
    tb_mb_tick(mb, 3 * S);
    drain(mb); /* both dead; the reconnect probes one of them */
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 4 * S, "e", 77, "me", 5, true), 0);
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 4 * S, "d", 78, "me", 5, true), 0);
    seen s = drain(mb);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_ACK], 2);
    tb_mb_stats st;
    tb_mb_get_stats(mb, &st);
    TB_CHECK_EQ(st.probed_back, 1); /* the other one had a direct probe open already */
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 1);
    TB_CHECK(s.last[TB_MB_ACT_PROBE_REQ].suspect);
    /* A live member asking is not probed. */
    TB_REQUIRE(tb_mb_alive(mb, 4 * S, "f", 1) == 0);
    TB_CHECK_EQ(tb_mb_recv_probe_req(mb, 4 * S, "f", 79, "me", 0, false), 0);
    TB_CHECK_EQ(drain(mb).n[TB_MB_ACT_PROBE_REQ], 0);
    tb_mb_free(mb);
}

/* A partition of two halves: each holds the other dead, at incarnations the other never heard
 * suspected (the SUSPECTs went round one side). A link to one of them that comes back (a pong)
 * gets it probed as "I hold you dead"; it refutes with a newer incarnation, which revives it
 * here and, broadcast, everywhere. Without that it stayed dead as long as the random direct
 * probes, which need a dial each, missed it. */
static void test_heard_dead_member_refutes(void)
{
    tb_mb_config cfg;
    tb_mb_config_default(&cfg);
    cfg.reconnect_interval_ns = 60 * S; /* the random direct probes, out of the way */
    tb_mb *a = NULL, *b = NULL;
    TB_REQUIRE(tb_mb_new(&cfg, "me", 5, 1, &a) == 0 && tb_mb_new(&cfg, "d", 2, 9, &b) == 0);
    TB_REQUIRE(tb_mb_alive(a, 0, "d", 2) == 0);
    TB_REQUIRE(tb_mb_alive(b, 0, "me", 5) == 0);
    /* The link broke; no helper heard d: suspect, then dead, on a's side only. */
    const char *helpers[] = {"h"};
    TB_REQUIRE(tb_mb_alive(a, 0, "h", 1) == 0);
    TB_REQUIRE(tb_mb_link_lost(a, 0, "d", helpers, 1) == 0);
    tb_mb_tick(a, S);
    tb_mb_tick(a, 4 * S);
    seen s = drain(a);
    TB_CHECK_EQ(s.n[TB_MB_ACT_SUSPECT], 1);
    TB_CHECK_EQ(s.n[TB_MB_ACT_DEAD], 1);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 2); /* h asked, then d itself at once, unanswered */
    tb_mb_tick(a, 5 * S);
    TB_CHECK_EQ(tb_mb_next_wake(a), 64 * S);
    tb_mb_state st;
    TB_REQUIRE(tb_mb_get(a, "d", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_DEAD);
    /* The healed link: d's pong. One probe however often it is heard while the probe is open. */
    tb_mb_heard(a, 5 * S + 100 * MS, "d");
    tb_mb_heard(a, 5 * S + 200 * MS, "d");
    s = drain(a);
    TB_CHECK_EQ(s.n[TB_MB_ACT_PROBE_REQ], 1);
    const tb_mb_action req = s.last[TB_MB_ACT_PROBE_REQ];
    TB_CHECK_STR(req.peer, "d");
    TB_CHECK_STR(req.target, "d");
    TB_CHECK(req.suspect);
    TB_CHECK_EQ(req.incarnation, 2);
    /* d refutes: a fresh incarnation, broadcast, and sent to a as well. */
    TB_CHECK_EQ(tb_mb_recv_probe_req(b, 5 * S + 110 * MS, "me", req.probe_id, "d", 2, true), 0);
    seen r = drain(b);
    TB_CHECK_EQ(r.n[TB_MB_ACT_ALIVE], 1);
    TB_CHECK(r.last[TB_MB_ACT_ALIVE].fresh);
    TB_CHECK_STR(r.last[TB_MB_ACT_ALIVE].peer, "me");
    TB_CHECK_EQ(r.last[TB_MB_ACT_ALIVE].incarnation, 3);
    TB_CHECK_EQ(r.n[TB_MB_ACT_PROBE_ACK], 1);
    TB_CHECK_EQ(tb_mb_alive(a, 5 * S + 120 * MS, "d", tb_mb_incarnation(b)), 0);
    TB_REQUIRE(tb_mb_get(a, "d", &st, NULL) == 0);
    TB_CHECK_EQ(st, TB_MB_ALIVE);
    TB_CHECK_EQ(drain(a).n[TB_MB_ACT_UP], 1);
    /* Alive now: hearing from it probes nothing. */
    TB_CHECK_EQ(tb_mb_recv_probe_ack(a, 5 * S + 130 * MS, "d", req.probe_id, "d", true), 0);
    drain(a);
    tb_mb_heard(a, 6 * S, "d");
    TB_CHECK_EQ(drain(a).n[TB_MB_ACT_PROBE_REQ], 0);
    tb_mb_stats stats;
    tb_mb_get_stats(a, &stats);
    TB_CHECK_EQ(stats.probed_back, 1);
    tb_mb_free(a);
    tb_mb_free(b);
}

int main(void)
{
    TB_RUN(test_suspect_then_dead);
    TB_RUN(test_refute);
    TB_RUN(test_renew);
    TB_RUN(test_indirect_probe);
    TB_RUN(test_helper_side);
    TB_RUN(test_dead_member_reached);
    TB_RUN(test_dead_member_probed_back);
    TB_RUN(test_revival_speeds_probes);
    TB_RUN(test_heard_dead_member_refutes);
    return TB_DONE();
}
