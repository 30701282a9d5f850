/* measure/replay: what a receiver does with a MEASUREMENT before it uses or forwards it
 * (issue 6, adr/0008): look up the origin's certificate key, check the certificate's validity
 * at `now`, verify the signature, parse the body and check it against the envelope, optionally
 * re-verify the evidence, and finally the sequence: per origin, each sequence number is taken
 * once, in any order within a window of TB_MEASURE_REPLAY_WINDOW below the newest (gaps are
 * fine: messages get lost and a restarted origin skips its reserved block; batches that took
 * different paths arrive out of order and lose nothing).
 * Every drop is counted by reason. The sequence state changes only for a measurement that
 * passed every other check, so a forgery can never block the real origin's next message.
 *
 * Before the evidence is verified (the expensive part), the numbers are range-checked and the
 * origin's allowance (tb_measure_limits) is checked; what exceeds it is dropped and counted.
 *
 * The number of origins tracked is bounded; a new origin beyond the bound is dropped and counted
 * (TB_MEASURE_DROP_TABLE_FULL), never evicts another (eviction would reopen replays).
 * Pure: no I/O, no clock (now is an argument), no global state. */
#ifndef TB_MEASURE_REPLAY_H
#define TB_MEASURE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "measure/measurement.h"

/* Sequences below an origin's newest accepted one that may still arrive (ADR 0010). */
#define TB_MEASURE_REPLAY_WINDOW 1024

typedef enum tb_measure_drop {
    TB_MEASURE_DROP_MALFORMED = 0,  /* body does not parse or contradicts the envelope */
    TB_MEASURE_DROP_UNKNOWN_ORIGIN, /* no certificate known for the origin */
    TB_MEASURE_DROP_EXPIRED,        /* origin certificate not valid at now (expired or not yet) */
    TB_MEASURE_DROP_BAD_SIGNATURE,
    TB_MEASURE_DROP_BAD_EVIDENCE,  /* the evidence check (Roughtime re-verification) refused it */
    TB_MEASURE_DROP_REPLAY,        /* this sequence number was accepted before */
    TB_MEASURE_DROP_OUT_OF_ORDER,  /* older than the window below the newest accepted one */
    TB_MEASURE_DROP_TABLE_FULL,    /* too many origins tracked */
    TB_MEASURE_DROP_RANGE,         /* a number outside the ranges of measure/measurement.h */
    TB_MEASURE_DROP_EVIDENCE_SIZE, /* request + response over limits.max_evidence */
    TB_MEASURE_DROP_RATE,          /* over the origin's limits.rate_per_min */
    TB_MEASURE_DROP_QUOTA,         /* over the origin's limits.bytes_per_hour */
    TB_MEASURE_DROP_COUNT
} tb_measure_drop;

/* "malformed", "unknown origin", "expired certificate", "bad signature", "bad evidence",
 * "replay", "out of order", "origin table full", "out of range", "evidence too large",
 * "rate limited", "over byte quota". */
const char *tb_measure_drop_name(int reason);

/* What the receiver knows of an origin, from its certificate (certs/identity.h). */
typedef struct tb_measure_origin_key {
    uint8_t ed25519_pub[TB_MEASURE_PK_LEN];
    int64_t not_before, not_after; /* Unix seconds, inclusive */
} tb_measure_origin_key;

/* Returns 0 and fills *out, or TB_ERR_NOTFOUND when no certificate is known for origin. */
typedef int (*tb_measure_lookup_fn)(void *arg, const char *origin, tb_measure_origin_key *out);

/* Returns 0 when the measurement's evidence holds (for Roughtime: signatures, Merkle path, and
 * that MIDP/RADI are consistent with the claimed offset), a negative code otherwise. */
typedef int (*tb_measure_evidence_fn)(void *arg, const tb_measurement *m);

/* What one origin (one member with a valid certificate, however hostile) may make every
 * receiver verify and store. The rate and the bytes are counted per origin in fixed windows
 * (a minute, an hour) of the receiver's real time, only for measurements that passed every
 * other check (a forgery or a replay cannot use up the real origin's allowance). So the bytes
 * one origin has in a store that keeps H hours are at most H * bytes_per_hour (+ one hour). */
typedef struct tb_measure_limits {
    size_t max_evidence;     /* request + response bytes of one measurement; 0: the format's cap */
    uint32_t rate_per_min;   /* measurements per origin and minute; 0: unlimited */
    uint64_t bytes_per_hour; /* body + signature bytes per origin and hour; 0: unlimited */
} tb_measure_limits;

typedef struct tb_measure_replay_config {
    size_t max_origins;              /* default 1024 */
    tb_measure_lookup_fn lookup;     /* required */
    tb_measure_evidence_fn evidence; /* optional: NULL accepts any evidence */
    void *arg;
    tb_measure_limits limits; /* all 0: no limits */
} tb_measure_replay_config;

typedef struct tb_measure_replay tb_measure_replay;

/* NULL when out of memory or config->lookup is NULL. */
tb_measure_replay *tb_measure_replay_new(const tb_measure_replay_config *config);
void tb_measure_replay_free(tb_measure_replay *r);

/* Checks one received MEASUREMENT (the wire envelope fields origin, seq, body, sig) at real
 * time now_real_ns. On 0 *out holds the parsed measurement (evidence pointing into body) and the
 * origin's sequence is advanced. On failure returns TB_ERR_MALFORMED/TB_ERR_TRUNCATED/...,
 * TB_ERR_NOTFOUND, TB_ERR_VERIFY, TB_ERR_STATE (expired), TB_ERR_EXISTS (replay, out of order),
 * TB_ERR_FULL, sets *why (may be NULL) and counts it. */
TB_WUR int tb_measure_replay_accept(tb_measure_replay *r, const char *origin, uint64_t seq,
                                    const uint8_t *body, size_t len,
                                    const uint8_t sig[TB_MEASURE_SIG_LEN], int64_t now_real_ns,
                                    tb_measurement *out, tb_measure_drop *why);

/* Replaces the limits (a configuration reload); counts so far stay. */
void tb_measure_replay_set_limits(tb_measure_replay *r, const tb_measure_limits *limits);

/* Pure sequence check and update for origin, for callers that verified by other means and for
 * restoring state after a restart (tb_measure_replay_seed). */
TB_WUR int tb_measure_replay_check_seq(tb_measure_replay *r, const char *origin, uint64_t seq,
                                       tb_measure_drop *why);

/* Records that origin's newest accepted sequence is seq (from the store at start-up), so old
 * messages still circulating are refused after a restart: the whole window below it counts as
 * seen. TB_ERR_FULL when the table is. */
TB_WUR int tb_measure_replay_seed(tb_measure_replay *r, const char *origin, uint64_t seq);

uint64_t tb_measure_replay_dropped(const tb_measure_replay *r, tb_measure_drop reason);
uint64_t tb_measure_replay_accepted(const tb_measure_replay *r);
size_t tb_measure_replay_origins(const tb_measure_replay *r);

#endif
