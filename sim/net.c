#include "sim/net.h"

#include <stdlib.h>

#include "common/clock.h"

struct tb_simnet {
    tb_sim *sim;
    unsigned n;
    tb_simnet_config cfg;
    tb_simnet_recv_fn recv;
    tb_sim_drop_fn drop;
    void *ctx;
    bool *up;
    unsigned *group;
    tb_simnet_stats stats;
};

void tb_simnet_config_default(tb_simnet_config *cfg)
{
    *cfg = (tb_simnet_config){
        .min_delay_ns = 5 * TB_NS_PER_MS,
        .max_delay_ns = 60 * TB_NS_PER_MS,
        .jitter_ns = 5 * TB_NS_PER_MS,
        .loss = 0.01,
        .rto_ns = 200 * TB_NS_PER_MS,
    };
}

int tb_simnet_new(tb_sim *sim, unsigned n, const tb_simnet_config *cfg, tb_simnet_recv_fn recv,
                  tb_sim_drop_fn drop, void *ctx, tb_simnet **out)
{
    *out = NULL;
    if (n == 0 || cfg->max_delay_ns < cfg->min_delay_ns || cfg->loss < 0 || cfg->loss >= 1)
        return TB_ERR_INVAL;
    tb_simnet *net = calloc(1, sizeof(*net));
    if (!net)
        return TB_ERR_NOMEM;
    *net = (tb_simnet){
        sim, n, *cfg, recv, drop, ctx, calloc(n, sizeof(bool)), calloc(n, sizeof(unsigned)), {0}};
    if (!net->up || !net->group) {
        tb_simnet_free(net);
        return TB_ERR_NOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        net->up[i] = true;
    *out = net;
    return 0;
}

void tb_simnet_free(tb_simnet *net)
{
    if (!net)
        return;
    free(net->up);
    free(net->group);
    free(net);
}

bool tb_simnet_reachable(const tb_simnet *net, unsigned a, unsigned b)
{
    return a < net->n && b < net->n && net->up[a] && net->up[b] && net->group[a] == net->group[b];
}

uint64_t tb_simnet_link_delay(const tb_simnet *net, unsigned a, unsigned b)
{
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    uint64_t z = lo * 0x9e3779b97f4a7c15ULL ^ (hi + 0x632be59bd9b4e019ULL);
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 29;
    uint64_t span = net->cfg.max_delay_ns - net->cfg.min_delay_ns + 1;
    return net->cfg.min_delay_ns + z % span;
}

/* A message in flight is an event whose number holds sender and receiver. */
static void arrive(tb_sim *sim, void *ctx, void *msg)
{
    tb_simnet *net = ctx;
    uint64_t d = tb_sim_data(sim);
    unsigned from = (unsigned)(d >> 32), to = (unsigned)d;
    if (!tb_simnet_reachable(net, from, to)) {
        net->stats.unreachable++;
        net->drop(msg);
        return;
    }
    net->stats.delivered++;
    net->recv(net->ctx, from, to, msg);
}

bool tb_simnet_send(tb_simnet *net, unsigned from, unsigned to, bool reliable, void *msg)
{
    net->stats.sent++;
    if (!tb_simnet_reachable(net, from, to)) {
        net->stats.unreachable++;
        net->drop(msg);
        return false;
    }
    uint64_t delay = tb_simnet_link_delay(net, from, to);
    if (net->cfg.jitter_ns)
        delay += tb_sim_rand_below(net->sim, net->cfg.jitter_ns + 1);
    /* A stream message is retransmitted until it gets through (bounded: QUIC would give up
     * and close the connection long before 16 losses in a row). */
    for (int tries = 0; net->cfg.loss > 0 && tb_sim_rand_unit(net->sim) < net->cfg.loss; tries++) {
        net->stats.lost++;
        if (!reliable || tries == 16) {
            net->drop(msg);
            return false;
        }
        delay += net->cfg.rto_ns;
    }
    if (tb_sim_at_data(net->sim, tb_sim_now(net->sim) + delay, arrive, net, msg, net->drop,
                       (uint64_t)from << 32 | to)) {
        net->drop(msg);
        return false;
    }
    return true;
}

void tb_simnet_set_up(tb_simnet *net, unsigned node, bool up)
{
    if (node < net->n)
        net->up[node] = up;
}

bool tb_simnet_is_up(const tb_simnet *net, unsigned node)
{
    return node < net->n && net->up[node];
}

void tb_simnet_set_group(tb_simnet *net, unsigned node, unsigned group)
{
    if (node < net->n)
        net->group[node] = group;
}

void tb_simnet_get_stats(const tb_simnet *net, tb_simnet_stats *out)
{
    *out = net->stats;
}
