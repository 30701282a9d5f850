/* PlumTree broadcast (ADR 0010; Leitão, Pereira, Rodrigues 2007): every message crosses each
 * node about once. Owns, per origin and per neighbour (the HyParView active view), whether the
 * neighbour is eager for that origin (gets its full messages: the origin's spanning tree) or lazy
 * (gets batched IHAVE ids: the repair links); the duplicate cache; the store of recent messages
 * that answers GRAFTs; and the timers of messages announced but not received. One tree per
 * origin, as in per-source PlumTree / Thicket, not one shared by all: a shared tree is shaped by
 * whichever duplicates pruned it and its paths from most origins are long (ADR 0012: 37 hops at
 * 1,000 nodes); each origin's own tree is the first-arrival (fastest) paths from it. A
 * neighbour starts eager for every origin; a duplicate copy prunes its sender for that origin
 * (PRUNE names the origin); a message announced but missing after graft_timeout is requested with
 * GRAFT from an announcer, which makes that link eager again for the message's origin, so each
 * tree repairs itself.
 *
 * Messages are identified by a 16-byte id that the caller computes (ADR 0010: the first 16 bytes
 * of SHA-256 over the signed bytes, after the signature verified); to this module it is opaque.
 * `hops` counts links travelled: the origin sends 1, each forward adds 1; at max_hops a message
 * is delivered but not forwarded, so an entry evicted early from the cache cannot make a copy
 * circulate for ever.
 *
 * Pure logic: no I/O, no clock. Feed what neighbours send (tb_pt_recv_*), neighbour changes
 * (tb_pt_neighbor_up/down), call tb_pt_tick at tb_pt_next_wake, and drain actions with
 * tb_pt_next_action after EVERY other call: pointers in an action (payload, ids) point into this
 * module's storage and stay valid only until the next call of any other tb_pt function, which
 * first discards actions left undrained (counted in stats.discarded). Everything a neighbour
 * sends is bounded: ids per IHAVE/GRAFT, missing entries, announcers per message, the store (by
 * count, bytes and age) and the duplicate cache (by count and age). */
#ifndef TB_ROUTING_PLUMTREE_H
#define TB_ROUTING_PLUMTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/name.h"

#define TB_PT_ID_LEN 16
#define TB_PT_IDS_MAX 256       /* cap on the configurable ids per IHAVE/GRAFT */
#define TB_PT_NEIGHBORS_MAX 256 /* cap on the configurable neighbour count */
#define TB_PT_ANNOUNCERS 4      /* announcers remembered per missing message */

typedef struct tb_pt_config {
    uint64_t ihave_interval_ns; /* IHAVE batches go out this often (100 ms) */
    uint64_t graft_timeout_ns;  /* a message announced but not received is GRAFTed after (1 s) */
    uint64_t graft_retry_ns;    /* then the next announcer is asked this often (0.5 s) */
    uint64_t store_ttl_ns;      /* messages are kept this long to answer GRAFTs (60 s) */
    size_t store_max;           /* ... and at most this many (4096) */
    size_t store_max_bytes;     /* ... of at most this many payload bytes (16 MiB) */
    size_t seen_max;            /* ids in the duplicate cache (65536; ≥ store_max) */
    uint64_t seen_ttl_ns;       /* an id is forgotten this long after it was seen (10 min) */
    size_t ids_max;             /* ids per IHAVE sent, and read from one received (64) */
    size_t missing_max;         /* announced-but-missing messages tracked (1024) */
    size_t neighbors_max;       /* neighbours (64) */
    size_t origins_max;         /* origins with a tree of their own (4096); one more empties
                                   the table: every tree floods once and is pruned again */
    uint32_t max_hops;          /* not forwarded from here on (64) */
    uint64_t hash_key;          /* random per node, so peers cannot aim at one hash chain */
} tb_pt_config;

void tb_pt_config_default(tb_pt_config *cfg, uint64_t hash_key);

typedef enum tb_pt_act_type {
    TB_PT_ACT_GOSSIP = 1, /* send the full message (id, hops, payload) to peer */
    TB_PT_ACT_IHAVE,      /* send IHAVE(ids[0..n_ids)) to peer */
    TB_PT_ACT_GRAFT,      /* send GRAFT(id) to peer */
    TB_PT_ACT_PRUNE,      /* send PRUNE(origin) to peer */
    TB_PT_ACT_DELIVER,    /* a new message for the application (peer: who sent it; hops) */
} tb_pt_act_type;

typedef struct tb_pt_action {
    tb_pt_act_type type;
    char peer[TB_NAME_MAX + 1];
    char origin[TB_NAME_MAX + 1]; /* PRUNE only: whose tree the link leaves */
    uint8_t id[TB_PT_ID_LEN];
    uint32_t hops;
    const uint8_t *payload;
    size_t len;
    const uint8_t (*ids)[TB_PT_ID_LEN];
    size_t n_ids;
} tb_pt_action;

typedef struct tb_pt_stats {
    uint64_t originated;
    uint64_t delivered;   /* new messages received */
    uint64_t duplicates;  /* copies of messages already seen */
    uint64_t gossip_sent; /* full messages sent (eager pushes and GRAFT answers) */
    uint64_t ihave_sent;  /* IHAVE messages */
    uint64_t grafts_sent;
    uint64_t prunes_sent;
    uint64_t graft_misses;   /* GRAFTed ids no longer in the store */
    uint64_t ids_dropped;    /* ids over ids_max in one IHAVE/GRAFT, or no missing slot left */
    uint64_t hop_ended;      /* new messages at max_hops, not forwarded */
    uint64_t unknown_peer;   /* IHAVE/GRAFT/PRUNE from a peer that is not a neighbour */
    uint64_t unknown_origin; /* PRUNEs naming an origin we never forwarded */
    uint64_t origins_reset;  /* origin table emptied: more than origins_max origins */
    uint64_t discarded;      /* actions the caller left undrained */
    uint64_t queue_full;     /* actions lost: the queue is bounded */
} tb_pt_stats;

typedef struct tb_pt tb_pt;

TB_WUR int tb_pt_new(const tb_pt_config *cfg, tb_pt **out);
void tb_pt_free(tb_pt *pt);

/* A neighbour joined the active view (it starts eager) or left it. TB_ERR_FULL over
 * neighbors_max, TB_ERR_INVAL for an invalid name. */
TB_WUR int tb_pt_neighbor_up(tb_pt *pt, const char *peer);
void tb_pt_neighbor_down(tb_pt *pt, const char *peer);

/* A new message from this node (`origin`: its own name): eager push to the neighbours eager
 * for origin, IHAVE to the others. The id is remembered so echoes are duplicates. TB_ERR_EXISTS
 * when the id was seen already, TB_ERR_TOO_BIG when the payload alone is over store_max_bytes,
 * TB_ERR_INVAL for an invalid origin name. */
TB_WUR int tb_pt_broadcast(tb_pt *pt, uint64_t now, const char *origin,
                           const uint8_t id[TB_PT_ID_LEN], const uint8_t *payload, size_t len);

/* A full message from `from` (eager push or GRAFT answer) that the caller verified; `origin` is
 * the name that signed it (the id covers it). *is_new (optional) says whether it was delivered
 * (first copy). */
TB_WUR int tb_pt_recv_gossip(tb_pt *pt, uint64_t now, const char *from, const char *origin,
                             const uint8_t id[TB_PT_ID_LEN], uint32_t hops, const uint8_t *payload,
                             size_t len, bool *is_new);
/* IHAVE / GRAFT from a neighbour: n ids of TB_PT_ID_LEN bytes (only ids_max are read).
 * TB_ERR_NOTFOUND when `from` is not a neighbour (nothing changes). */
TB_WUR int tb_pt_recv_ihave(tb_pt *pt, uint64_t now, const char *from,
                            const uint8_t (*ids)[TB_PT_ID_LEN], size_t n);
TB_WUR int tb_pt_recv_graft(tb_pt *pt, uint64_t now, const char *from,
                            const uint8_t (*ids)[TB_PT_ID_LEN], size_t n);
/* PRUNE(origin): `from` leaves origin's tree here. TB_ERR_NOTFOUND also for an origin this node
 * never forwarded (nothing is stored for it), TB_ERR_INVAL for an invalid name. */
TB_WUR int tb_pt_recv_prune(tb_pt *pt, uint64_t now, const char *from, const char *origin);

/* IHAVE flushes, GRAFT timers, store and cache expiry. */
void tb_pt_tick(tb_pt *pt, uint64_t now);
uint64_t tb_pt_next_wake(const tb_pt *pt);

/* 0 and the oldest pending action, or TB_ERR_AGAIN. */
TB_WUR int tb_pt_next_action(tb_pt *pt, tb_pt_action *out);

/* Introspection for tests, the simulator and status. */
/* Whether peer is eager for origin (an origin not known yet: every neighbour is). */
bool tb_pt_is_eager(const tb_pt *pt, const char *origin, const char *peer);
size_t tb_pt_neighbor_count(const tb_pt *pt);
bool tb_pt_seen(const tb_pt *pt, const uint8_t id[TB_PT_ID_LEN]);
size_t tb_pt_store_count(const tb_pt *pt);
size_t tb_pt_missing_count(const tb_pt *pt);
void tb_pt_get_stats(const tb_pt *pt, tb_pt_stats *out);

#endif
