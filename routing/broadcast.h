/* BROADCAST flooding and the signed-broadcast envelope (ADR 0010): decides, for each broadcast a
 * neighbour hands us, whether to deliver it locally (first time seen) and which neighbours to
 * forward it to (every connected neighbour except the one it came from and its origin) with the
 * hop limit decreased.
 *
 * Every broadcast is signed by its origin over tb_bc_signed_header() ‖ payload (everything but
 * the hop limit, which changes per hop). Duplicates are recognised by the digest of those
 * signed bytes (the caller's: measure/sign.h), in a cache of fixed capacity: the oldest entry is
 * evicted when it is full, entries expire after a TTL, so memory stays bounded under any load.
 * The caller verifies a new copy's signature between tb_bc_check and tb_bc_commit, so only
 * verified content enters the cache: a forged copy has other bytes, hence another digest, and
 * cannot make the real message look like a duplicate. A copy that arrives after its entry was
 * evicted is delivered again; the hop limit still ends its travel.
 * Pure logic: no I/O, no clock (`now` is monotonic ns).
 *
 * Neighbours are passed as an array of node names; decisions name them by index into it. */
#ifndef TB_ROUTING_BROADCAST_H
#define TB_ROUTING_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_BC_CACHE_MAX (1u << 20) /* hard cap on the configurable cache capacity */
#define TB_BC_DIGEST_LEN 16        /* what names a signed broadcast in the cache */
/* Signature context; its NUL is signed too. */
#define TB_BC_SIGN_CONTEXT "tbnode broadcast v1"
/* Largest tb_bc_signed_header: context, length byte, a 255-byte origin, id, app type. */
#define TB_BC_SIGNED_HEADER_MAX (sizeof(TB_BC_SIGN_CONTEXT) + 1 + 255 + 8 + 4)

typedef struct tb_bc_config {
    size_t cache_capacity; /* digests remembered, 1..TB_BC_CACHE_MAX */
    uint64_t cache_ttl_ns; /* a digest is forgotten this long after it was first seen */
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
    uint64_t refused;    /* first copies the caller refused (bad signature, ...): tb_bc_refused */
} tb_bc_stats;

typedef struct tb_bc tb_bc;

/* self: this node's name. first_id: the first message id this node uses; pass something a
 * restarted node will not repeat while peers still remember its old ids (for example the real
 * time in ns at start). */
TB_WUR int tb_bc_new(const tb_bc_config *cfg, const char *self, uint64_t first_id, tb_bc **out);
void tb_bc_free(tb_bc *bc);

/* The bytes an origin signs before the payload: "tbnode broadcast v1\0" ‖ u8 len ‖ origin ‖
 * u64 msg_id ‖ u32 app_type (big-endian). TB_ERR_MALFORMED for an invalid origin name,
 * TB_ERR_TOO_BIG when cap is short (TB_BC_SIGNED_HEADER_MAX always does). */
TB_WUR int tb_bc_signed_header(const char *origin, size_t origin_len, uint64_t msg_id,
                               uint32_t app_type, uint8_t *buf, size_t cap, size_t *len);

/* The next message id of this node's own broadcasts (monotonic). */
uint64_t tb_bc_next_id(tb_bc *bc);

/* A new broadcast from this node, signed, its signed bytes' digest given: remembers it so echoes
 * are dropped, and chooses every neighbour to send it to with the configured hop limit.
 * forward[] must hold nneighbours entries. */
TB_WUR int tb_bc_originate(tb_bc *bc, uint64_t now, const uint8_t digest[TB_BC_DIGEST_LEN],
                           const char *const *neighbours, size_t nneighbours, size_t *forward,
                           tb_bc_decision *out);

/* A BROADCAST from `origin` (untrusted: it has an explicit length) whose signed bytes have
 * `digest` arrived from neighbour `from`: decides, remembering nothing. forward[] must hold
 * nneighbours entries. TB_ERR_MALFORMED for an invalid origin name or a hop limit of 0 (the
 * decision then says do nothing). A duplicate (digest known, or this node's own origin) is not
 * an error: deliver = 0, nforward = 0. With deliver = 1 the caller verifies the signature, then
 * calls tb_bc_commit (verified) or tb_bc_refused (not). */
TB_WUR int tb_bc_check(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len,
                       const uint8_t digest[TB_BC_DIGEST_LEN], uint8_t hop_limit, const char *from,
                       const char *const *neighbours, size_t nneighbours, size_t *forward,
                       tb_bc_decision *out);
/* Remembers a verified first copy and counts it delivered and forwarded. Does nothing unless
 * d->deliver, or when the digest is remembered already. */
void tb_bc_commit(tb_bc *bc, uint64_t now, const uint8_t digest[TB_BC_DIGEST_LEN],
                  const tb_bc_decision *d);
/* Counts a first copy the caller refused; nothing is remembered of it. */
void tb_bc_refused(tb_bc *bc);

/* tb_bc_check and tb_bc_commit in one, for a caller that verified the copy before. */
TB_WUR int tb_bc_receive(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len,
                         const uint8_t digest[TB_BC_DIGEST_LEN], uint8_t hop_limit,
                         const char *from, const char *const *neighbours, size_t nneighbours,
                         size_t *forward, tb_bc_decision *out);

/* Drops expired cache entries; returns when the oldest remaining one expires (UINT64_MAX when
 * the cache is empty). Receiving does this too: calling it only trims memory sooner. */
uint64_t tb_bc_expire(tb_bc *bc, uint64_t now);

/* Entries now in the cache (≤ cache_capacity). */
size_t tb_bc_cache_size(const tb_bc *bc);
void tb_bc_get_stats(const tb_bc *bc, tb_bc_stats *out);

#endif
