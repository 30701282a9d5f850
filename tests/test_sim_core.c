/* sim/sim and sim/net: event order on virtual time, the seeded generator, and what the virtual
 * network does with delay, loss, nodes that are down and partitions. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "sim/net.h"
#include "sim/sim.h"
#include "tb_test.h"

#define MS TB_NS_PER_MS

typedef struct log {
    int order[16];
    uint64_t at[16];
    int n;
} log_t;

static void note(tb_sim *s, void *ctx, void *arg)
{
    log_t *l = ctx;
    l->order[l->n] = (int)(intptr_t)arg;
    l->at[l->n++] = tb_sim_now(s);
}

static void test_event_order(void)
{
    tb_sim *s;
    TB_REQUIRE(tb_sim_new(7, &s) == 0);
    log_t l = {0};
    TB_CHECK_EQ(tb_sim_at(s, 30, note, &l, (void *)(intptr_t)1, NULL), 0);
    TB_CHECK_EQ(tb_sim_at(s, 10, note, &l, (void *)(intptr_t)2, NULL), 0);
    TB_CHECK_EQ(tb_sim_at(s, 10, note, &l, (void *)(intptr_t)3, NULL), 0);
    TB_CHECK_EQ(tb_sim_at(s, 50, note, &l, (void *)(intptr_t)4, NULL), 0);
    tb_sim_run_until(s, 40);
    TB_REQUIRE(l.n == 3);
    TB_CHECK_EQ(l.order[0], 2); /* same time: in the order scheduled */
    TB_CHECK_EQ(l.order[1], 3);
    TB_CHECK_EQ(l.order[2], 1);
    TB_CHECK_EQ(l.at[2], 30);
    TB_CHECK_EQ(tb_sim_now(s), 40);
    TB_CHECK_EQ(tb_sim_pending(s), 1);
    /* The past means now. */
    TB_CHECK_EQ(tb_sim_at(s, 5, note, &l, (void *)(intptr_t)5, NULL), 0);
    tb_sim_run_until(s, 40);
    TB_CHECK_EQ(l.at[3], 40);
    tb_sim_free(s); /* one event left, without drop function */
}

static void note_data(tb_sim *s, void *ctx, void *arg)
{
    uint64_t *got = ctx;
    got[(intptr_t)arg] = tb_sim_data(s);
}

static void test_event_data(void)
{
    tb_sim *s;
    TB_REQUIRE(tb_sim_new(7, &s) == 0);
    uint64_t got[3] = {0};
    TB_CHECK_EQ(tb_sim_at_data(s, 20, note_data, got, (void *)(intptr_t)0, NULL, 42), 0);
    TB_CHECK_EQ(tb_sim_at(s, 10, note_data, got, (void *)(intptr_t)1, NULL), 0);
    TB_CHECK_EQ(tb_sim_at_data(s, 10, note_data, got, (void *)(intptr_t)2, NULL, UINT64_MAX), 0);
    tb_sim_run_until(s, 30);
    TB_CHECK_EQ(got[0], 42);
    TB_CHECK_EQ(got[1], 0);
    TB_CHECK_EQ(got[2], UINT64_MAX);
    tb_sim_free(s);
}

static void test_rng_replays(void)
{
    tb_sim *a, *b, *c;
    TB_REQUIRE(tb_sim_new(42, &a) == 0 && tb_sim_new(42, &b) == 0 && tb_sim_new(43, &c) == 0);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = tb_sim_rand(a), y = tb_sim_rand(b), z = tb_sim_rand(c);
        same &= x == y;
        differ |= x != z;
        TB_CHECK(tb_sim_rand_below(a, 7) < 7);
        (void)tb_sim_rand_below(b, 7);
        double u = tb_sim_rand_unit(c);
        TB_CHECK(u >= 0 && u < 1);
    }
    TB_CHECK(same && differ);
    tb_sim_free(a);
    tb_sim_free(b);
    tb_sim_free(c);
}

typedef struct inbox {
    int got, dropped;
    uint64_t last_at;
    tb_sim *sim;
} inbox;

static inbox box;

static void recv_fn(void *ctx, unsigned from, unsigned to, void *msg)
{
    inbox *b = ctx;
    b->got++;
    b->last_at = tb_sim_now(b->sim);
    free(msg);
}

static void drop_fn(void *msg)
{
    box.dropped++;
    free(msg);
}

static void test_network(void)
{
    tb_sim *s;
    tb_simnet *net;
    TB_REQUIRE(tb_sim_new(1, &s) == 0);
    tb_simnet_config cfg;
    tb_simnet_config_default(&cfg);
    cfg.loss = 0.5;
    memset(&box, 0, sizeof(box));
    box.sim = s;
    TB_REQUIRE(tb_simnet_new(s, 4, &cfg, recv_fn, drop_fn, &box, &net) == 0);
    uint64_t d = tb_simnet_link_delay(net, 0, 1);
    TB_CHECK(d >= cfg.min_delay_ns && d <= cfg.max_delay_ns);
    TB_CHECK_EQ(d, tb_simnet_link_delay(net, 1, 0));
    /* Reliable messages all arrive, later for each loss; datagrams are lost about half. */
    for (int i = 0; i < 200; i++)
        TB_CHECK(tb_simnet_send(net, 0, 1, true, malloc(1)));
    int dgrams = 0;
    for (int i = 0; i < 200; i++)
        dgrams += tb_simnet_send(net, 0, 1, false, malloc(1));
    tb_sim_run_until(s, 10 * TB_NS_PER_SEC);
    TB_CHECK_EQ(box.got, 200 + dgrams);
    TB_CHECK(dgrams > 60 && dgrams < 140);
    TB_CHECK_EQ(box.dropped, 200 - dgrams);
    /* Down or partitioned: nothing arrives, also when it changes in flight. */
    box.got = box.dropped = 0;
    tb_simnet_set_up(net, 2, false);
    TB_CHECK(!tb_simnet_send(net, 0, 2, true, malloc(1)));
    tb_simnet_set_group(net, 3, 1);
    TB_CHECK(!tb_simnet_reachable(net, 0, 3));
    TB_CHECK(!tb_simnet_send(net, 3, 0, true, malloc(1)));
    tb_simnet_set_group(net, 3, 0);
    cfg.loss = 0;
    TB_CHECK(tb_simnet_send(net, 3, 0, true, malloc(1)));
    tb_simnet_set_group(net, 3, 1);
    tb_sim_run_until(s, 20 * TB_NS_PER_SEC);
    TB_CHECK_EQ(box.got, 0);
    TB_CHECK(box.dropped >= 3);
    /* Pending messages are freed with the simulator. */
    tb_simnet_set_group(net, 3, 0);
    TB_CHECK(tb_simnet_send(net, 3, 0, true, malloc(1)) || box.dropped >= 4);
    tb_sim_free(s);
    tb_simnet_free(net);
}

int main(void)
{
    TB_RUN(test_event_order);
    TB_RUN(test_event_data);
    TB_RUN(test_rng_replays);
    TB_RUN(test_network);
    return TB_DONE();
}
