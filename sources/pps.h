/* PPS pulse logic (RFC 2783 pulses, as chrony's `refclock PPS ... lock`): pure, no I/O, no
 * clock. A pulse marks the start of a second (or of each 1/rate s) but not which second; a
 * second source, the lock, names it. Each pulse is paired with the lock's newest measurement:
 *
 *   phase  = the pulse's local real time modulo 1/rate
 *   offset = −phase + params.offset, moved by whole pulse intervals to lie nearest the lock's
 *            offset (source − local, adr/0008)
 *
 * so the pulse gives the fraction and the lock the whole intervals. A pulse is refused when
 * the lock has no measurement, when that measurement is maxlockage intervals or more away from
 * the pulse, or when the lock's offset lies so far from the pulse's (the distance plus both
 * error terms over 0.4 of an interval) that the nearest interval is a guess. A lock wrong by
 * whole seconds cannot be seen here: the pulse then carries the lock's wrong second, as in
 * chrony. With a width set, a pulse whose offset is further from the lock's than half the
 * width (or half the gap) came from the other edge and is refused.
 *
 * Sequence numbers come from the kernel (u32, wrapping): an unchanged one is no new pulse, a
 * jump counts the pulses missed in between. The jitter is estimated from the differences of
 * consecutive pulses' offsets (so a local clock's steady drift is not jitter), and widens the
 * error bound: precision + 3 × jitter. Until TB_PPS_JITTER_MIN consecutive pairs were paired
 * there is no jitter to bound by, and the pulses settle (TB_PPS_SETTLING) without a sample. */
#ifndef TB_SOURCES_PPS_H
#define TB_SOURCES_PPS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define TB_PPS_MAX_RATE 1000
/* A pulse stamp further back than this when read is not the newest pulse of a live signal. */
#define TB_PPS_MAX_AGE_NS INT64_C(2000000000)
/* A lock offset beyond this (≈ 11.6 days) is no clock to name a second by. */
#define TB_PPS_MAX_LOCK_OFFSET_NS INT64_C(1000000000000000)
/* Pairs of consecutive pulses the jitter is estimated over. */
#define TB_PPS_JITTER_WINDOW 16

typedef struct tb_pps_params {
    unsigned rate;        /* pulses per second, 1..TB_PPS_MAX_RATE */
    int64_t offset_ns;    /* added to each pulse's offset: the pulse's delay, or that it
                             marks a point other than the second; |offset| < half an interval */
    int64_t width_ns;     /* pulse width; 0: not checked; else < 1 s / rate */
    int64_t precision_ns; /* of the pulse stamps */
    unsigned maxlockage;  /* pulse intervals the lock's measurement may be away, 1..64 */
} tb_pps_params;

/* One pulse as the device gave it: the kernel's sequence number and the local real time of
 * the edge (ns since the epoch). */
typedef struct tb_pps_pulse {
    uint32_t seq;
    int64_t real_ns;
} tb_pps_pulse;

/* The lock source's newest measurement. */
typedef struct tb_pps_lock {
    int64_t real_ns; /* local real time it refers to */
    int64_t offset_ns;
    int64_t error_ns;
} tb_pps_lock;

typedef enum tb_pps_verdict {
    TB_PPS_ACCEPTED = 0,
    TB_PPS_SAME,       /* the sequence number did not move: no new pulse */
    TB_PPS_OLD,        /* stamped before the previous pulse, in the future, or too old */
    TB_PPS_NO_LOCK,    /* the lock source has no measurement */
    TB_PPS_LOCK_STALE, /* its measurement is maxlockage intervals or more from the pulse */
    TB_PPS_LOCK_FAR,   /* its offset does not name one interval (over 0.4 of one away) */
    TB_PPS_WRONG_EDGE, /* further from the lock than the width allows */
    TB_PPS_SETTLING,   /* paired, but the jitter is not known yet: no bound to give */
    TB_PPS_VERDICT_COUNT,
} tb_pps_verdict;

/* "accepted", "same pulse", "old pulse", "no lock sample", "lock sample too old", "lock
 * offset too far from the pulse", "wrong edge", "settling". */
const char *tb_pps_verdict_name(tb_pps_verdict v);

typedef struct tb_pps_sample {
    int64_t real_ns;      /* the pulse's local real time */
    int64_t offset_ns;    /* source − local */
    int64_t error_ns;     /* precision + 3 × jitter */
    int64_t lock_diff_ns; /* lock offset − this offset */
} tb_pps_sample;

typedef struct tb_pps_stats {
    uint64_t pulses; /* new pulses seen (sequence moved) */
    uint64_t missed; /* pulses the sequence skipped */
    uint64_t verdicts[TB_PPS_VERDICT_COUNT];
    int64_t jitter_ns; /* current estimate, 0 until TB_PPS_JITTER_MIN pairs */
    bool settled;      /* the estimate exists */
} tb_pps_stats;

/* Consecutive pairs needed before the jitter estimate counts. */
#define TB_PPS_JITTER_MIN 4

typedef struct tb_pps tb_pps;

/* TB_ERR_INVAL for parameters outside the ranges above. */
TB_WUR int tb_pps_create(const tb_pps_params *params, tb_pps **out);
void tb_pps_free(tb_pps *pps);

/* Judges one fetched pulse at local real time now_ns; lock NULL when the lock source has no
 * measurement. On TB_PPS_ACCEPTED *out holds the sample. */
tb_pps_verdict tb_pps_pulse_in(tb_pps *pps, int64_t now_ns, const tb_pps_pulse *pulse,
                               const tb_pps_lock *lock, tb_pps_sample *out);

const tb_pps_stats *tb_pps_stats_of(const tb_pps *pps);

#endif
