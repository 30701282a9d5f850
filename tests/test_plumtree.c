/* routing/plumtree: eager and lazy push, IHAVE batching, GRAFT and PRUNE, timers and bounds,
 * driven through the public API as one node sees them. */
#include <string.h>

#include "common/clock.h"
#include "routing/plumtree.h"
#include "tb_test.h"

#define S TB_NS_PER_SEC
#define MS TB_NS_PER_MS

typedef struct seen {
    int n[TB_PT_ACT_DELIVER + 1];
    char to[TB_PT_ACT_DELIVER + 1][16][TB_NAME_MAX + 1];
    tb_pt_action last[TB_PT_ACT_DELIVER + 1];
    size_t ids; /* ids over all IHAVEs */
} seen;

static seen drain(tb_pt *pt)
{
    seen s;
    memset(&s, 0, sizeof(s));
    tb_pt_action a;
    while (tb_pt_next_action(pt, &a) == 0) {
        if (s.n[a.type] < 16)
            memcpy(s.to[a.type][s.n[a.type]], a.peer, sizeof(a.peer));
        s.n[a.type]++;
        s.last[a.type] = a;
        if (a.type == TB_PT_ACT_IHAVE)
            s.ids += a.n_ids;
    }
    return s;
}

static bool sent_to(const seen *s, tb_pt_act_type t, const char *peer)
{
    for (int i = 0; i < s->n[t] && i < 16; i++)
        if (strcmp(s->to[t][i], peer) == 0)
            return true;
    return false;
}

static void id_of(uint8_t id[TB_PT_ID_LEN], unsigned k)
{
    memset(id, 0, TB_PT_ID_LEN);
    id[0] = (uint8_t)k;
    id[1] = (uint8_t)(k >> 8);
    id[15] = 0x5a;
}

static tb_pt *make(size_t store_max)
{
    tb_pt_config cfg;
    tb_pt_config_default(&cfg, 99);
    cfg.store_max = store_max;
    cfg.seen_max = store_max * 2;
    cfg.ids_max = 4;
    cfg.missing_max = 2;
    tb_pt *pt = NULL;
    if (tb_pt_new(&cfg, &pt))
        return NULL;
    const char *nb[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        if (tb_pt_neighbor_up(pt, nb[i])) {
            tb_pt_free(pt);
            return NULL;
        }
    return pt;
}

static const uint8_t msg[] = "payload";

static void test_eager_push_and_prune(void)
{
    tb_pt *pt = make(16);
    TB_REQUIRE(pt);
    uint8_t id[TB_PT_ID_LEN];
    id_of(id, 1);
    TB_CHECK_EQ(tb_pt_broadcast(pt, 0, "me", id, msg, sizeof(msg)), 0);
    seen s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 3);
    TB_CHECK_EQ(s.last[TB_PT_ACT_GOSSIP].hops, 1);
    TB_CHECK_EQ(s.n[TB_PT_ACT_DELIVER], 0);
    TB_CHECK_EQ(tb_pt_broadcast(pt, 0, "me", id, msg, sizeof(msg)), TB_ERR_EXISTS);

    /* A new message from a: delivered, pushed to b and c, not back to a. */
    id_of(id, 2);
    bool is_new;
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "a", "x", id, 4, msg, sizeof(msg), &is_new), 0);
    TB_CHECK(is_new);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_DELIVER], 1);
    TB_CHECK_EQ(s.last[TB_PT_ACT_DELIVER].hops, 4);
    TB_CHECK_MEM(s.last[TB_PT_ACT_DELIVER].payload, msg, sizeof(msg));
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 2);
    TB_CHECK(!sent_to(&s, TB_PT_ACT_GOSSIP, "a"));
    TB_CHECK_EQ(s.last[TB_PT_ACT_GOSSIP].hops, 5);
    /* The same from b: a duplicate whose copy crossed ours (we pushed to b), so b finds ours a
     * duplicate and cuts its side itself: b leaves x's tree here, without a PRUNE. */
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "b", "x", id, 3, msg, sizeof(msg), &is_new), 0);
    TB_CHECK(!is_new);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_PRUNE], 0);
    TB_CHECK(!tb_pt_is_eager(pt, "x", "b"));
    /* x's next message goes to b as IHAVE only; b pushing it all the same holds us eager: it
     * gets PRUNE(x). */
    id_of(id, 20);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "a", "x", id, 3, msg, sizeof(msg), &is_new), 0);
    s = drain(pt);
    TB_CHECK(!sent_to(&s, TB_PT_ACT_GOSSIP, "b"));
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "b", "x", id, 3, msg, sizeof(msg), &is_new), 0);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_PRUNE], 1);
    TB_CHECK_STR(s.last[TB_PT_ACT_PRUNE].peer, "b");
    TB_CHECK_STR(s.last[TB_PT_ACT_PRUNE].origin, "x");
    tb_pt_tick(pt, S + 100 * MS);
    TB_CHECK_EQ(drain(pt).n[TB_PT_ACT_IHAVE], 1);
    /* From now on b gets IHAVEs of x's messages, batched until the interval ends. */
    TB_CHECK_EQ(tb_pt_recv_prune(pt, 2 * S, "b", "me"), 0);
    id_of(id, 3);
    TB_CHECK_EQ(tb_pt_broadcast(pt, 2 * S, "me", id, msg, sizeof(msg)), 0);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 2);
    TB_CHECK(!sent_to(&s, TB_PT_ACT_GOSSIP, "b"));
    id_of(id, 4);
    TB_CHECK_EQ(tb_pt_broadcast(pt, 2 * S, "me", id, msg, sizeof(msg)), 0);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 2);
    TB_CHECK_EQ(s.n[TB_PT_ACT_IHAVE], 0);
    TB_CHECK_EQ(tb_pt_next_wake(pt), 2 * S + 100 * MS);
    tb_pt_tick(pt, 2 * S + 100 * MS);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_IHAVE], 1);
    TB_CHECK_STR(s.last[TB_PT_ACT_IHAVE].peer, "b");
    TB_CHECK_EQ(s.ids, 2);
    /* A PRUNE from c makes it lazy too; a GRAFT from c makes it eager again and answers. */
    TB_CHECK_EQ(tb_pt_recv_prune(pt, 3 * S, "c", "me"), 0);
    TB_CHECK(!tb_pt_is_eager(pt, "me", "c"));
    uint8_t want[2][TB_PT_ID_LEN];
    id_of(want[0], 3);
    id_of(want[1], 77);
    TB_CHECK_EQ(tb_pt_recv_graft(pt, 3 * S, "c", (const uint8_t(*)[TB_PT_ID_LEN])want, 2), 0);
    s = drain(pt);
    TB_CHECK(tb_pt_is_eager(pt, "me", "c"));
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 1);
    TB_CHECK_EQ(s.last[TB_PT_ACT_GOSSIP].hops, 1);
    tb_pt_stats st;
    tb_pt_get_stats(pt, &st);
    TB_CHECK_EQ(st.graft_misses, 1);
    TB_CHECK_EQ(st.duplicates, 2);
    TB_CHECK_EQ(st.prunes_saved, 1);
    TB_CHECK_EQ(st.prunes_sent, 1);
    tb_pt_free(pt);
}

static void test_missing_message_grafted(void)
{
    tb_pt *pt = make(16);
    TB_REQUIRE(pt);
    uint8_t ids[6][TB_PT_ID_LEN];
    for (unsigned i = 0; i < 6; i++)
        id_of(ids[i], 100 + i);
    /* Two announcers of id 100; more ids than ids_max are cut; missing_max is 2. */
    TB_CHECK_EQ(tb_pt_recv_ihave(pt, 0, "a", (const uint8_t(*)[TB_PT_ID_LEN])ids, 6), 0);
    TB_CHECK_EQ(tb_pt_recv_ihave(pt, 10 * MS, "b", (const uint8_t(*)[TB_PT_ID_LEN])ids, 1), 0);
    TB_CHECK_EQ(tb_pt_recv_ihave(pt, 0, "stranger", (const uint8_t(*)[TB_PT_ID_LEN])ids, 1),
                TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_pt_missing_count(pt), 2);
    tb_pt_stats st;
    tb_pt_get_stats(pt, &st);
    TB_CHECK_EQ(st.ids_dropped, 4); /* 2 over ids_max, 2 over missing_max */
    TB_CHECK_EQ(tb_pt_next_wake(pt), S);
    tb_pt_tick(pt, S);
    seen s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GRAFT], 2);
    TB_CHECK_STR(s.last[TB_PT_ACT_GRAFT].peer, "a");
    /* Still missing after the retry interval: the next announcer is asked. */
    tb_pt_tick(pt, S + 500 * MS);
    s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GRAFT], 1);
    TB_CHECK_STR(s.last[TB_PT_ACT_GRAFT].peer, "b");
    TB_CHECK_MEM(s.last[TB_PT_ACT_GRAFT].id, ids[0], TB_PT_ID_LEN);
    TB_CHECK_EQ(tb_pt_missing_count(pt), 1); /* 101 had no other announcer: given up */
    /* It arrives: no longer missing, and b, lazy for its origin before, is eager again. */
    bool is_new;
    uint8_t other[TB_PT_ID_LEN];
    id_of(other, 300);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 2 * S, "a", "x", other, 2, msg, sizeof(msg), &is_new), 0);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 2 * S, "b", "x", other, 2, msg, sizeof(msg), &is_new), 0);
    TB_CHECK(!tb_pt_is_eager(pt, "x", "b"));
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 2 * S, "b", "x", ids[0], 2, msg, sizeof(msg), &is_new), 0);
    TB_CHECK(is_new);
    TB_CHECK(tb_pt_is_eager(pt, "x", "b"));
    drain(pt);
    TB_CHECK_EQ(tb_pt_missing_count(pt), 0);
    /* An announcer that left is not asked; with none left the entry goes. */
    TB_CHECK_EQ(tb_pt_recv_ihave(pt, 2 * S, "a", (const uint8_t(*)[TB_PT_ID_LEN])ids + 2, 1), 0);
    TB_CHECK_EQ(tb_pt_missing_count(pt), 1);
    tb_pt_neighbor_down(pt, "a");
    tb_pt_tick(pt, 3 * S);
    TB_CHECK_EQ(drain(pt).n[TB_PT_ACT_GRAFT], 0);
    TB_CHECK_EQ(tb_pt_missing_count(pt), 0);
    tb_pt_free(pt);
}

/* Every origin has its own tree: a duplicate prunes its sender for that origin only. */
static void test_tree_per_origin(void)
{
    tb_pt_config cfg;
    tb_pt_config_default(&cfg, 5);
    cfg.origins_max = 2;
    tb_pt *pt = NULL;
    TB_REQUIRE(tb_pt_new(&cfg, &pt) == 0);
    TB_REQUIRE(tb_pt_neighbor_up(pt, "a") == 0 && tb_pt_neighbor_up(pt, "b") == 0 &&
               tb_pt_neighbor_up(pt, "c") == 0);
    uint8_t id[TB_PT_ID_LEN];
    bool is_new;
    /* x's message from a, then again from b (the copies crossed): b leaves x's tree. */
    id_of(id, 1);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 0, "a", "x", id, 1, msg, sizeof(msg), &is_new), 0);
    TB_CHECK_EQ(drain(pt).n[TB_PT_ACT_GOSSIP], 2);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 0, "b", "x", id, 1, msg, sizeof(msg), &is_new), 0);
    seen s = drain(pt);
    /* y's first message still goes to b in full; x's next does not. */
    TB_CHECK(!tb_pt_is_eager(pt, "x", "b"));
    TB_CHECK(tb_pt_is_eager(pt, "y", "b"));
    id_of(id, 2);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "a", "y", id, 1, msg, sizeof(msg), &is_new), 0);
    s = drain(pt);
    TB_CHECK(sent_to(&s, TB_PT_ACT_GOSSIP, "b") && sent_to(&s, TB_PT_ACT_GOSSIP, "c"));
    id_of(id, 3);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "a", "x", id, 1, msg, sizeof(msg), &is_new), 0);
    s = drain(pt);
    TB_CHECK(!sent_to(&s, TB_PT_ACT_GOSSIP, "b") && sent_to(&s, TB_PT_ACT_GOSSIP, "c"));
    /* PRUNE for y from c: c leaves y's tree only. An origin we never forwarded changes
     * nothing (a peer cannot fill the table with names), nor does an invalid one. */
    TB_CHECK_EQ(tb_pt_recv_prune(pt, S, "c", "y"), 0);
    TB_CHECK(!tb_pt_is_eager(pt, "y", "c"));
    TB_CHECK(tb_pt_is_eager(pt, "x", "c"));
    TB_CHECK_EQ(tb_pt_recv_prune(pt, S, "c", "zz"), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_pt_recv_prune(pt, S, "c", "Not A Name"), TB_ERR_INVAL);
    tb_pt_stats st;
    tb_pt_get_stats(pt, &st);
    TB_CHECK_EQ(st.unknown_origin, 1);
    /* A GRAFT for x's stored message puts c back in x's tree (not in y's). */
    TB_CHECK_EQ(tb_pt_recv_prune(pt, S, "c", "x"), 0);
    TB_CHECK_EQ(tb_pt_recv_graft(pt, S, "c", (const uint8_t(*)[TB_PT_ID_LEN])id, 1), 0);
    TB_CHECK_EQ(drain(pt).n[TB_PT_ACT_GOSSIP], 1);
    TB_CHECK(tb_pt_is_eager(pt, "x", "c"));
    TB_CHECK(!tb_pt_is_eager(pt, "y", "c"));
    /* A neighbour that comes (back) is lazy for the origins known, whose trees reach us
     * already (it repairs them with IHAVE, GRAFT puts it in), and eager for new ones. */
    tb_pt_neighbor_down(pt, "b");
    TB_CHECK_EQ(tb_pt_neighbor_up(pt, "b"), 0);
    TB_CHECK(!tb_pt_is_eager(pt, "x", "b") && !tb_pt_is_eager(pt, "y", "b"));
    TB_CHECK(tb_pt_is_eager(pt, "new", "b"));
    /* A third origin over origins_max (2): every tree starts over, eager. */
    id_of(id, 4);
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, S, "a", "z", id, 1, msg, sizeof(msg), &is_new), 0);
    drain(pt);
    tb_pt_get_stats(pt, &st);
    TB_CHECK_EQ(st.origins_reset, 1);
    TB_CHECK(tb_pt_is_eager(pt, "y", "c"));
    TB_CHECK_EQ(tb_pt_broadcast(pt, S, "Bad Name", id, msg, sizeof(msg)), TB_ERR_INVAL);
    tb_pt_free(pt);
}

static void test_bounds(void)
{
    tb_pt *pt = make(4);
    TB_REQUIRE(pt);
    uint8_t id[TB_PT_ID_LEN];
    for (unsigned i = 0; i < 20; i++) {
        id_of(id, i);
        TB_REQUIRE(tb_pt_broadcast(pt, i * MS, "me", id, msg, sizeof(msg)) == 0);
    }
    TB_CHECK_EQ(tb_pt_store_count(pt), 4);
    id_of(id, 0);
    TB_CHECK(!tb_pt_seen(pt, id)); /* out of the cache of 8 */
    id_of(id, 19);
    TB_CHECK(tb_pt_seen(pt, id));
    id_of(id, 12);
    TB_CHECK(tb_pt_seen(pt, id));
    /* Actions left undrained are discarded by the next call, not piled up. */
    tb_pt_tick(pt, 61 * S);
    tb_pt_stats st;
    tb_pt_get_stats(pt, &st);
    TB_CHECK(st.discarded > 0);
    TB_CHECK_EQ(tb_pt_store_count(pt), 0); /* older than store_ttl */
    id_of(id, 19);
    TB_CHECK(tb_pt_seen(pt, id));
    tb_pt_tick(pt, 700 * S);
    TB_CHECK(!tb_pt_seen(pt, id)); /* older than seen_ttl */
    /* A copy past max_hops is delivered but goes no further. */
    id_of(id, 500);
    bool is_new;
    TB_CHECK_EQ(tb_pt_recv_gossip(pt, 701 * S, "a", "x", id, 64, msg, sizeof(msg), &is_new), 0);
    seen s = drain(pt);
    TB_CHECK_EQ(s.n[TB_PT_ACT_DELIVER], 1);
    TB_CHECK_EQ(s.n[TB_PT_ACT_GOSSIP], 0);
    /* Stored into an empty ring: its store time is the next wake, and that tick expires it. */
    TB_CHECK_EQ(tb_pt_next_wake(pt), 761 * S);
    tb_pt_tick(pt, 761 * S);
    TB_CHECK_EQ(tb_pt_store_count(pt), 0);
    TB_CHECK_EQ(tb_pt_next_wake(pt), 1301 * S);
    TB_CHECK_EQ(tb_pt_neighbor_up(pt, "Not A Name"), TB_ERR_INVAL);
    tb_pt_free(pt);
}

int main(void)
{
    TB_RUN(test_eager_push_and_prune);
    TB_RUN(test_missing_message_grafted);
    TB_RUN(test_tree_per_origin);
    TB_RUN(test_bounds);
    return TB_DONE();
}
