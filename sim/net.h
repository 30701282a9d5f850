/* The simulator's virtual network (ADR 0012), on the event core of sim/sim.h: nodes 0..n-1,
 * each link with its own fixed delay (drawn from [min_delay, max_delay] by a hash of the pair,
 * the same both ways) plus per-message jitter, message loss, nodes that are down, and partitions
 * (a group number per node: only nodes of the same group reach each other).
 *
 * Two kinds of message, as QUIC carries them: a datagram is lost with probability `loss`; a
 * reliable (stream) message is never lost while the path holds, each lost transmission costs a
 * retransmission timeout instead. Either is dropped when the sender or the receiver is down or
 * the two are in different groups, at sending or at arrival. The network owns a message from
 * tb_simnet_send on: it hands it to `recv` or to `drop` (which frees it). */
#ifndef TB_SIM_NET_H
#define TB_SIM_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "sim/sim.h"

typedef struct tb_simnet_config {
    uint64_t min_delay_ns; /* one-way delay of the fastest link (default 5 ms) */
    uint64_t max_delay_ns; /* ... and of the slowest (default 60 ms) */
    uint64_t jitter_ns;    /* uniform extra delay per message (default 5 ms) */
    double loss;           /* per transmission (default 0.01) */
    uint64_t rto_ns;       /* retransmission timeout of a reliable message (default 200 ms) */
} tb_simnet_config;

void tb_simnet_config_default(tb_simnet_config *cfg);

typedef void (*tb_simnet_recv_fn)(void *ctx, unsigned from, unsigned to, void *msg);

typedef struct tb_simnet_stats {
    uint64_t sent, delivered, lost, unreachable;
} tb_simnet_stats;

typedef struct tb_simnet tb_simnet;

TB_WUR int tb_simnet_new(tb_sim *sim, unsigned n, const tb_simnet_config *cfg,
                         tb_simnet_recv_fn recv, tb_sim_drop_fn drop, void *ctx, tb_simnet **out);
void tb_simnet_free(tb_simnet *net);

/* Sends msg from one node to another; false (msg dropped) when it cannot arrive. */
bool tb_simnet_send(tb_simnet *net, unsigned from, unsigned to, bool reliable, void *msg);

void tb_simnet_set_up(tb_simnet *net, unsigned node, bool up);
bool tb_simnet_is_up(const tb_simnet *net, unsigned node);
void tb_simnet_set_group(tb_simnet *net, unsigned node, unsigned group);
/* Both up and in the same group. */
bool tb_simnet_reachable(const tb_simnet *net, unsigned a, unsigned b);
uint64_t tb_simnet_link_delay(const tb_simnet *net, unsigned a, unsigned b);
void tb_simnet_get_stats(const tb_simnet *net, tb_simnet_stats *out);

#endif
