/* A mesh of pure membership and broadcast modules on the simulator (ADR 0012): every node runs
 * discovery/hyparview, routing/plumtree, discovery/members and a discovery/liveness per active
 * link, driven only through their public APIs, on sim/net.h's virtual network. It stands in for
 * node/node.c's glue: actions become messages (structs, not encoded: the wire has its own tests),
 * deliveries feed the modules, timers follow each module's next wake. What node.c would sign and
 * verify (ALIVE, SUSPECT, broadcasts) travels unsigned here.
 *
 * Nodes are n0..n{n-1}. They join one after another through a random earlier node, each announces
 * itself with ALIVE at join, once more within 5 s after the last join (so every node learns every
 * member, as node.c's periodic signed traffic would teach it) and every alive_interval. Tests and
 * the benchmark inject broadcasts, kill nodes, partition and heal the network, and read what each
 * node believes. */
#ifndef TB_SIM_MESH_H
#define TB_SIM_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "discovery/hyparview.h"
#include "discovery/members.h"
#include "routing/plumtree.h"
#include "sim/net.h"

typedef struct tb_simmesh_config {
    unsigned n;
    uint64_t seed;
    tb_simnet_config net;
    tb_hv_config hv;
    tb_pt_config pt;
    tb_mb_config mb;
    uint64_t ping_interval_ns;  /* liveness PING per active link (1 s) */
    unsigned max_missed;        /* link lost after this many missed pongs (3) */
    uint64_t dial_timeout_ns;   /* a message to an unreachable peer fails its link after (1 s) */
    uint64_t join_spread_ns;    /* node i joins at i * join_spread / n (10 s) */
    uint64_t alive_interval_ns; /* each node's periodic ALIVE (10 min, as ADR 0010) */
} tb_simmesh_config;

void tb_simmesh_config_default(tb_simmesh_config *cfg, unsigned n, uint64_t seed);

typedef struct tb_simmesh tb_simmesh;

TB_WUR int tb_simmesh_new(const tb_simmesh_config *cfg, tb_simmesh **out);
void tb_simmesh_free(tb_simmesh *m);

void tb_simmesh_run_until(tb_simmesh *m, uint64_t t);
uint64_t tb_simmesh_now(const tb_simmesh *m);

/* A broadcast from node `origin`, tracked: *idx names it for tb_simmesh_bcast. */
TB_WUR int tb_simmesh_broadcast(tb_simmesh *m, unsigned origin, unsigned *idx);

typedef struct tb_simmesh_bcast {
    unsigned origin;
    uint64_t sent_at;
    unsigned reached;  /* live nodes other than the origin that delivered it */
    uint64_t copies;   /* full copies received by all nodes, duplicates included */
    uint32_t max_hops; /* hops of the last-hop delivery */
    uint64_t last_at;  /* time of the last delivery */
} tb_simmesh_bcast;

TB_WUR int tb_simmesh_bcast_result(const tb_simmesh *m, unsigned idx, tb_simmesh_bcast *out);

/* Stops a node for good (its state stays, it sends and receives nothing), and watches for it
 * being declared dead (tb_simmesh_dead_seen). */
void tb_simmesh_kill(tb_simmesh *m, unsigned node);
/* Live nodes (victim excluded) that hold the watched victim dead, and when the last did. */
unsigned tb_simmesh_dead_seen(const tb_simmesh *m, uint64_t *last_at);

/* Splits the nodes into `groups` contiguous groups that cannot reach each other; heal joins
 * them again. */
void tb_simmesh_partition(tb_simmesh *m, unsigned groups);
void tb_simmesh_heal(tb_simmesh *m);

unsigned tb_simmesh_live(const tb_simmesh *m);
bool tb_simmesh_is_live(const tb_simmesh *m, unsigned node);
/* The union of active views over live nodes is connected. */
bool tb_simmesh_overlay_connected(const tb_simmesh *m);
/* Pairs (i, j) of live nodes where i does not hold j alive. */
uint64_t tb_simmesh_membership_errors(const tb_simmesh *m);
/* Active view sizes over live nodes. */
void tb_simmesh_active_range(const tb_simmesh *m, unsigned *min, unsigned *max, double *mean);
/* Messages the network was asked to carry so far. */
uint64_t tb_simmesh_messages(const tb_simmesh *m);
/* Total graft/prune counters over all nodes, for diagnosis. */
void tb_simmesh_pt_totals(const tb_simmesh *m, tb_pt_stats *out);
tb_hv *tb_simmesh_hv(tb_simmesh *m, unsigned node);

typedef struct tb_simmesh_counters {
    uint64_t links_up, links_lost; /* active links made, and lost by missed pongs */
    uint64_t alive, suspect;       /* ALIVE and SUSPECT broadcasts originated */
    uint64_t refused;              /* calls a module refused */
} tb_simmesh_counters;

void tb_simmesh_get_counters(const tb_simmesh *m, tb_simmesh_counters *out);

/* The issue-10 scenario, shared by tests/test_sim_mesh.c (which checks it) and bench/mesh (which
 * prints it): n nodes join over 10 s and announce themselves; one warm-up broadcast from every
 * node over 5 s (every origin's PlumTree tree pruned once, as the real mesh's measurement
 * batches do each interval), then 20 measured ones, 1 s apart, from random live nodes; 10 s idle
 * for the message rate; a random node killed; a 50/50 partition for 12 s, then healed, checked
 * every 0.5 s for 20 s. */
typedef struct tb_simmesh_report {
    unsigned n;
    unsigned active_min, active_max;
    bool formed_connected;
    uint64_t formed_member_errors;
    unsigned steady_unreached; /* (broadcast, live node) pairs not delivered */
    double redundancy;         /* copies / (broadcasts × (live − 1)) − 1, steady state */
    uint32_t max_hops;         /* steady state */
    uint64_t slowest_ns;       /* steady state: broadcast to last delivery */
    double msgs_per_node_s;    /* every message the network carried, idle mesh */
    unsigned dead_seen, live;  /* after the kill */
    uint64_t detect_ns;        /* kill to the last live node holding it dead */
    unsigned after_kill_unreached;
    uint64_t partition_errors; /* (member, member) pairs not alive while partitioned */
    uint64_t heal_ns;          /* 0: not healed within 20 s */
    uint64_t heal_errors_left;
    unsigned after_heal_unreached;
} tb_simmesh_report;

TB_WUR int tb_simmesh_scenario(unsigned n, uint64_t seed, tb_simmesh_report *out);

/* Steady periodic traffic: from now on every live node originates one broadcast (the stand-in
 * for its signed measurement batch) every base_ns, or, paced, every tb_pace_every_ns(base_ns, m)
 * (node/pace.h) with m the members it holds alive or suspected plus itself, re-read at each one;
 * each node's first at a random phase within its first interval. */
void tb_simmesh_periodic(tb_simmesh *m, uint64_t base_ns, bool paced);
/* Stops it (nodes originate nothing more of it). */
void tb_simmesh_periodic_stop(tb_simmesh *m);
/* Periodic broadcasts not delivered, summed over live nodes: each should hold every one the
 * others originated (all of them, dead nodes' included, once the traffic has settled). */
uint64_t tb_simmesh_periodic_unreached(const tb_simmesh *m);

/* What a node received, by kind. Broadcast copies and ALIVE/SUSPECT are PlumTree's full
 * messages (eager pushes and GRAFT answers); HV is every HyParView message (join, forward join,
 * neighbour, shuffle and their replies, disconnect); PROBE is SWIM's probe requests and acks. */
typedef enum tb_simmesh_rx_kind {
    TB_SIMMESH_RX_BCAST,
    TB_SIMMESH_RX_ALIVE,
    TB_SIMMESH_RX_IHAVE,
    TB_SIMMESH_RX_GRAFT,
    TB_SIMMESH_RX_PRUNE,
    TB_SIMMESH_RX_PING,
    TB_SIMMESH_RX_PONG,
    TB_SIMMESH_RX_PROBE,
    TB_SIMMESH_RX_HV,
    TB_SIMMESH_RX_CLOSE,
    TB_SIMMESH_RX_KINDS
} tb_simmesh_rx_kind;

const char *tb_simmesh_rx_name(tb_simmesh_rx_kind k);

/* Received by one node since the last tb_simmesh_rx_reset. Bytes are estimated, not carried
 * (the simulated messages are structs): each kind's fields as the wire would hold them, a
 * periodic broadcast's payload as bcast_bytes (TB_SIMMESH_BCAST_BYTES), no transport framing. */
typedef struct tb_simmesh_rx {
    uint64_t msgs[TB_SIMMESH_RX_KINDS];
    uint64_t bytes;
    uint64_t delivered; /* distinct periodic broadcasts delivered */
} tb_simmesh_rx;

#define TB_SIMMESH_BCAST_BYTES 1200 /* a measurement batch, signed, as node.c broadcasts it */

void tb_simmesh_rx_reset(tb_simmesh *m);
void tb_simmesh_rx_get(const tb_simmesh *m, unsigned node, tb_simmesh_rx *out);

/* The per-node cost run (issue 10: what one node handles per second must grow no faster than
 * log N): n nodes join over 10 s and announce themselves (25 s); then every node broadcasts
 * every 16 s, paced or not (tb_simmesh_periodic); after one interval of warm-up (every origin's
 * tree pruned) the counters are read over a window of whole intervals, at least 4 and at least
 * min_window_ns, so every origin sends the same number of broadcasts in it whatever its phase.
 * Rates are per live node per second of the window: mean and largest over the nodes. */
typedef struct tb_simmesh_cost_report {
    unsigned n;
    bool paced;
    uint64_t every_ns, window_ns;
    double mean[TB_SIMMESH_RX_KINDS], max[TB_SIMMESH_RX_KINDS];
    double bcast_ihave_mean, bcast_ihave_max; /* broadcast copies + IHAVE, per node */
    double total_mean, total_max;             /* every kind */
    double bytes_mean, bytes_max;
    double delivered_mean; /* periodic broadcasts delivered per node per second */
    /* Periodic broadcasts some live node had not delivered 5 s after the traffic stopped
     * (summed over nodes): 0 when every one reached every node. */
    uint64_t unreached;
} tb_simmesh_cost_report;

TB_WUR int tb_simmesh_cost(unsigned n, uint64_t seed, bool paced, uint64_t min_window_ns,
                           tb_simmesh_cost_report *out);

#endif
