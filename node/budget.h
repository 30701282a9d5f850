/* Per-peer budgets of the mesh node (ADR 0010, "Budgets and admission"): how many messages and
 * bytes a connected peer may make this node handle, how many broadcasts it may originate, how
 * often it may ask for the peer list, and how many PEERS entries one message may carry. Token
 * buckets; pure logic (no I/O, no clock: `now` is monotonic ns). What happens to a peer over
 * budget (a penalty on its connection, then a ban: quic/endpoint.h) is the node's business. */
#ifndef TB_NODE_BUDGET_H
#define TB_NODE_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* A token bucket: `rate` tokens per second, holding at most `burst`; starts full. */
typedef struct tb_bucket {
    uint64_t rate, burst;
    uint64_t level; /* in 1e-9 tokens, so refills need no division */
    uint64_t last;
} tb_bucket;

#define TB_BUCKET_MAX (1ULL << 32) /* cap on rate and burst: level stays below 2^63 */

void tb_bucket_init(tb_bucket *b, uint64_t rate, uint64_t burst, uint64_t now);
/* Takes n tokens when there are n: 1, else 0 and nothing is taken. A clock going backwards
 * refills nothing. */
int tb_bucket_take(tb_bucket *b, uint64_t n, uint64_t now);

typedef struct tb_budget_config {
    uint32_t msgs_per_s, msgs_burst;             /* every stream message of the peer */
    uint32_t bytes_per_s, bytes_burst;           /* their bytes */
    uint32_t own_bcasts_per_s, own_bcasts_burst; /* broadcasts it originates itself */
} tb_budget_config;

/* Defaults: 100 messages/s (burst 300), 1 MiB/s (burst 4 MiB), 20 own broadcasts/s (burst
 * 60). An honest node of a 40-node full mesh
 * polling its sources every 16 s stays far below them. */
void tb_budget_config_default(tb_budget_config *cfg);
/* The defaults raised for a full mesh of up to max_peers peers, where every link carries every
 * broadcast (wave 1 floods) and each node sends one PEER measurement per peer at once every
 * crosscheck.peer_interval: 16 messages/s per peer (burst 3 s of it), own broadcasts in a
 * burst of max_peers + 64. */
void tb_budget_config_for_mesh(tb_budget_config *cfg, size_t max_peers);

/* The rates `set` gives (its non-zero ones: mesh.budget_* in the config) replace those of
 * cfg, each with a burst of 3 s of it (4 s of bytes) but never below the burst it
 * replaces. */
void tb_budget_config_apply(tb_budget_config *cfg, const tb_budget_config *set);

typedef enum tb_budget_kind {
    TB_BUDGET_MESSAGE = 0, /* any stream message, of `bytes` bytes */
    TB_BUDGET_OWN_BCAST,   /* a broadcast whose origin is the peer itself */
} tb_budget_kind;

typedef enum tb_budget_verdict {
    TB_BUDGET_OK = 0,
    TB_BUDGET_OVER_MSGS,
    TB_BUDGET_OVER_BYTES,
    TB_BUDGET_OVER_BCASTS,
    TB_BUDGET_VERDICT_COUNT
} tb_budget_verdict;

/* "over the message rate", ...: for the one log line that says why a peer was dropped. */
const char *tb_budget_verdict_name(tb_budget_verdict v);

typedef struct tb_budget {
    tb_bucket msgs, bytes, bcasts;
} tb_budget;

void tb_budget_init(tb_budget *b, const tb_budget_config *cfg, uint64_t now);
/* Charges one event of a kind (bytes: its size, for TB_BUDGET_MESSAGE); a message over any
 * budget is charged nothing. */
tb_budget_verdict tb_budget_charge(tb_budget *b, tb_budget_kind kind, size_t bytes, uint64_t now);

#endif
