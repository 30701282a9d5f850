/* Per-peer PING/PONG bookkeeping: when to ping, which pongs answer which pings, the NTP-style
 * four-timestamp computation, and when a peer counts as lost. Pure logic: no I/O, no clock.
 *
 * Scheduling uses monotonic `now` (ns). The four timestamps are real (UTC) clock readings in ns:
 *   t1 we sent the PING, t2 the peer received it, t3 the peer sent the PONG, t4 we received it;
 *   offset = ((t2 − t1) + (t3 − t4)) / 2   (peer clock minus ours)
 *   delay  = (t4 − t1) − (t3 − t2)          (round trip less the peer's holding time)
 * The estimate is the minimum-delay sample of the last TB_LIVE_WINDOW, whose offset error is at
 * most delay / 2 (the uncertainty). The struct is public so it can be embedded per peer; its
 * fields are private to liveness.c. */
#ifndef TB_DISCOVERY_LIVENESS_H
#define TB_DISCOVERY_LIVENESS_H

#include <stdint.h>

#include "common/error.h"

#define TB_LIVE_WINDOW 8  /* samples kept for the minimum-delay choice */
#define TB_LIVE_PENDING 4 /* pings awaiting their pong (late pongs still count) */
/* Timestamps outside (0, 2^62) ns are absurd (2^62 ns is about year 2116). */
#define TB_LIVE_TS_MAX ((int64_t)1 << 62)

typedef struct tb_live_config {
    uint64_t interval_ns;  /* one PING per interval */
    unsigned max_missed;   /* lost after this many pings in a row got no pong in an interval */
    uint64_t max_delay_ns; /* samples with a longer delay are rejected */
    int64_t max_offset_ns; /* samples with a larger |offset| are rejected as absurd */
} tb_live_config;

/* Defaults: ping every 1 s, lost after 5 misses, delay ≤ 5 s, |offset| ≤ 1 day. */
void tb_live_config_default(tb_live_config *cfg);

typedef struct tb_live_sample {
    int64_t offset_ns;
    int64_t delay_ns;
    uint64_t at; /* monotonic time the pong arrived */
} tb_live_sample;

typedef struct tb_live_estimate {
    int64_t offset_ns;      /* peer clock minus ours, from the minimum-delay sample */
    int64_t rtt_ns;         /* that sample's delay */
    int64_t uncertainty_ns; /* delay / 2: the offset is right within ± this */
    unsigned samples;       /* samples in the window */
    uint64_t at;            /* when that sample was taken */
} tb_live_estimate;

typedef struct tb_live {
    tb_live_config cfg;
    uint64_t next_ping;
    uint64_t next_seq;
    unsigned missed;
    int last_answered;
    struct {
        uint64_t seq;
        int64_t t1;
        int used;
    } pending[TB_LIVE_PENDING];
    unsigned pending_next;
    tb_live_sample window[TB_LIVE_WINDOW];
    unsigned nsamples;
    unsigned window_next;
} tb_live;

/* Starts (or restarts, after a reconnect) the bookkeeping: first PING due at `now`. seq_seed
 * makes sequence numbers differ between connections. TB_ERR_INVAL for a bad config. */
TB_WUR int tb_live_init(tb_live *l, const tb_live_config *cfg, uint64_t now, uint64_t seq_seed);

/* 1 when a PING is due at `now`. */
int tb_live_due(const tb_live *l, uint64_t now);

/* Records a PING sent at `now` carrying real time t1; *seq gets its sequence number. A previous
 * PING still unanswered counts as missed. TB_ERR_AGAIN when no ping is due yet. */
TB_WUR int tb_live_ping_sent(tb_live *l, uint64_t now, int64_t t1, uint64_t *seq);

/* A PONG for `seq` echoing t1, with the peer's t2, t3, received at real time t4 (monotonic
 * `now`). A pong that matches a pending ping proves the peer alive (misses reset) even when
 * its sample is then rejected. Errors: TB_ERR_NOTFOUND (no such ping pending: duplicate, very
 * late or unsolicited), TB_ERR_VERIFY (t1 is not what we sent), TB_ERR_MALFORMED (a timestamp
 * out of range, t4 < t1, t3 < t2, or negative delay), TB_ERR_TOO_BIG (delay or |offset| over
 * the configured caps). On success the sample joins the window and is copied to *out
 * (optional). */
TB_WUR int tb_live_pong(tb_live *l, uint64_t now, uint64_t seq, int64_t t1, int64_t t2, int64_t t3,
                        int64_t t4, tb_live_sample *out);

/* The four-timestamp arithmetic alone, with the same range checks (no caps). */
TB_WUR int tb_live_compute(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *offset_ns,
                           int64_t *delay_ns);

/* The current estimate; TB_ERR_AGAIN while there is no sample. */
TB_WUR int tb_live_get_estimate(const tb_live *l, tb_live_estimate *out);

/* Consecutive missed pings, and whether that reached max_missed. */
unsigned tb_live_missed(const tb_live *l);
int tb_live_lost(const tb_live *l);

/* When this peer's bookkeeping next needs to run (the next PING). */
uint64_t tb_live_next_wake(const tb_live *l);

#endif
