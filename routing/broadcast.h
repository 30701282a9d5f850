/* BROADCAST flooding: decides, for each broadcast a neighbour hands us, whether to deliver it
 * locally (first time seen) and which neighbours to forward it to (every connected neighbour
 * except the one it came from and its origin) with the hop limit decreased. Duplicates are
 * recognised by (origin, message id) in a cache of fixed capacity: the oldest entry is evicted
 * when it is full, entries expire after a TTL, so memory stays bounded under any load. A copy
 * that arrives after its entry was evicted is delivered again; the hop limit still ends its
 * travel. Pure logic: no I/O, no clock (`now` is monotonic ns).
 *
 * Neighbours are passed as an array of node names; decisions name them by index into it. */
#ifndef TB_ROUTING_BROADCAST_H
#define TB_ROUTING_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_BC_CACHE_MAX (1u << 20) /* hard cap on the configurable cache capacity */

typedef struct tb_bc_config {
    size_t cache_capacity; /* (origin, id) pairs remembered, 1..TB_BC_CACHE_MAX */
    uint64_t cache_ttl_ns; /* a pair is forgotten this long after it was first seen */
    uint8_t hop_limit;     /* hop limit of the broadcasts this node originates, ≥ 1 */
    uint8_t max_hop_limit; /* larger hop limits received are lowered to this */
    uint64_t hash_key;     /* random per node, so peers cannot aim at one hash chain */
} tb_bc_config;

/* Defaults: 4096 entries, 10 min TTL, hop limit 16, received limits capped at 32. */
void tb_bc_config_default(tb_bc_config *cfg, uint64_t hash_key);

typedef struct tb_bc_decision {
    int deliver;       /* 1: first copy: hand it to the local application */
    uint8_t hop_limit; /* hop limit to forward with */
    size_t nforward;   /* the first nforward entries of the caller's forward[] array are
                        * indices into neighbours[] to send it to */
} tb_bc_decision;

typedef struct tb_bc_stats {
    uint64_t originated;
    uint64_t received;   /* accepted from neighbours (duplicates included) */
    uint64_t delivered;  /* first copies */
    uint64_t duplicates; /* copies already seen (own broadcasts echoed back included) */
    uint64_t forwarded;  /* copies sent on (one per neighbour) */
    uint64_t hop_ended;  /* first copies not forwarded because their hop limit ran out */
    uint64_t malformed;  /* refused: bad origin name or hop limit 0 */
    uint64_t evicted;    /* cache entries pushed out by new ones before their TTL */
} tb_bc_stats;

typedef struct tb_bc tb_bc;

/* self: this node's name. first_id: the first message id this node uses; pass something a
 * restarted node will not repeat while peers still remember its old ids (for example the real
 * time in ns at start). */
TB_WUR int tb_bc_new(const tb_bc_config *cfg, const char *self, uint64_t first_id, tb_bc **out);
void tb_bc_free(tb_bc *bc);

/* A new broadcast from this node: allocates its id (*id, monotonic), remembers it so echoes are
 * dropped, and chooses every neighbour to send it to with the configured hop limit.
 * forward[] must hold nneighbours entries. */
TB_WUR int tb_bc_originate(tb_bc *bc, uint64_t now, const char *const *neighbours,
                           size_t nneighbours, size_t *forward, uint64_t *id, tb_bc_decision *out);

/* A BROADCAST (origin, id, hop_limit) arrived from neighbour `from` (untrusted fields: origin
 * has an explicit length). forward[] must hold nneighbours entries. TB_ERR_MALFORMED for an
 * invalid origin name or a hop limit of 0 (the decision then says do nothing). A duplicate is
 * not an error: deliver = 0, nforward = 0. */
TB_WUR int tb_bc_receive(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len,
                         uint64_t id, uint8_t hop_limit, const char *from,
                         const char *const *neighbours, size_t nneighbours, size_t *forward,
                         tb_bc_decision *out);

/* tb_bc_receive in two steps, for a receiver that verifies a copy before it delivers or forwards
 * it: tb_bc_check decides exactly as tb_bc_receive but remembers nothing; once the application
 * accepted the copy, tb_bc_commit remembers (origin, id) and counts it delivered and forwarded.
 * A copy the application refused is never committed, so a forged copy cannot make the real
 * message with the same (origin, id) look like a duplicate. Commit does nothing unless
 * d->deliver, or when (origin, id) is remembered already. */
TB_WUR int tb_bc_check(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len, uint64_t id,
                       uint8_t hop_limit, const char *from, const char *const *neighbours,
                       size_t nneighbours, size_t *forward, tb_bc_decision *out);
void tb_bc_commit(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len, uint64_t id,
                  const tb_bc_decision *d);

/* Drops expired cache entries; returns when the oldest remaining one expires (UINT64_MAX when
 * the cache is empty). Receiving does this too: calling it only trims memory sooner. */
uint64_t tb_bc_expire(tb_bc *bc, uint64_t now);

/* Entries now in the cache (≤ cache_capacity). */
size_t tb_bc_cache_size(const tb_bc *bc);
void tb_bc_get_stats(const tb_bc *bc, tb_bc_stats *out);

#endif
