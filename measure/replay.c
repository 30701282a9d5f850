/* Receiver checks and per-origin sequence tracking. Origins live in a sorted array (bsearch):
 * the table is bounded and small (one entry per mesh node). Each entry keeps the newest accepted
 * sequence and a bitmap of which of the TB_MEASURE_REPLAY_WINDOW sequences up to it were
 * accepted: any unseen sequence inside the window is taken (batches travel different tree paths
 * and arrive out of order), a seen one is a replay, an older one is dropped as out of order. */
#include "measure/replay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW TB_MEASURE_REPLAY_WINDOW
#define WORDS (WINDOW / 64)

typedef struct origin_state {
    char name[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t last;          /* newest accepted sequence */
    uint64_t window[WORDS]; /* bit i (word i / 64, bit i % 64): last - i was accepted */
    /* the allowance (tb_measure_limits), in fixed windows of the receiver's real time */
    int64_t minute_start, hour_start;
    uint32_t minute_count;
    uint64_t hour_bytes;
} origin_state;

struct tb_measure_replay {
    tb_measure_replay_config cfg;
    origin_state *origins;
    size_t n;
    uint64_t dropped[TB_MEASURE_DROP_COUNT];
    uint64_t accepted;
};

const char *tb_measure_drop_name(int reason)
{
    static const char *const names[TB_MEASURE_DROP_COUNT] = {
        "malformed",          "unknown origin",    "expired certificate",
        "bad signature",      "bad evidence",      "replay",
        "out of order",       "origin table full", "out of range",
        "evidence too large", "rate limited",      "over byte quota",
    };
    if (reason < 0 || reason >= TB_MEASURE_DROP_COUNT)
        return "unknown";
    return names[reason];
}

tb_measure_replay *tb_measure_replay_new(const tb_measure_replay_config *config)
{
    if (config == NULL || config->lookup == NULL)
        return NULL;
    tb_measure_replay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *config;
    if (r->cfg.max_origins == 0)
        r->cfg.max_origins = 1024;
    r->origins = calloc(r->cfg.max_origins, sizeof(*r->origins));
    if (r->origins == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void tb_measure_replay_set_limits(tb_measure_replay *r, const tb_measure_limits *limits)
{
    r->cfg.limits = *limits;
}

void tb_measure_replay_free(tb_measure_replay *r)
{
    if (r == NULL)
        return;
    free(r->origins);
    free(r);
}

/* Index of origin, or where it would be inserted (with *found false). */
static size_t find(const tb_measure_replay *r, const char *origin, bool *found)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->origins[mid].name, origin);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int drop(tb_measure_replay *r, tb_measure_drop reason, tb_measure_drop *why, int err)
{
    r->dropped[reason]++;
    if (why)
        *why = reason;
    return err;
}

static bool seen_back(const origin_state *o, uint64_t back)
{
    return (o->window[back / 64] >> (back % 64)) & 1;
}

static void mark_back(origin_state *o, uint64_t back)
{
    o->window[back / 64] |= 1ULL << (back % 64);
}

/* seq > last becomes the newest: the bitmap moves up by seq - last. */
static void advance(origin_state *o, uint64_t seq)
{
    uint64_t shift = seq - o->last;
    if (shift >= WINDOW) {
        memset(o->window, 0, sizeof(o->window));
    } else {
        size_t words = (size_t)(shift / 64), bits = (size_t)(shift % 64);
        for (size_t i = WORDS; i-- > 0;) {
            uint64_t hi = i >= words ? o->window[i - words] : 0;
            uint64_t lo = i >= words + 1 ? o->window[i - words - 1] : 0;
            o->window[i] = bits ? (hi << bits) | (lo >> (64 - bits)) : hi;
        }
    }
    o->last = seq;
    mark_back(o, 0);
}

/* Verdict on seq for an existing origin, without updating. */
static int classify(const origin_state *o, uint64_t seq, tb_measure_drop *reason)
{
    if (seq > o->last)
        return 0;
    uint64_t back = o->last - seq;
    if (back >= WINDOW) {
        *reason = TB_MEASURE_DROP_OUT_OF_ORDER;
        return TB_ERR_EXISTS;
    }
    if (!seen_back(o, back))
        return 0;
    *reason = TB_MEASURE_DROP_REPLAY;
    return TB_ERR_EXISTS;
}

/* Takes seq (classify said yes). */
static void take(origin_state *o, uint64_t seq)
{
    if (seq > o->last)
        advance(o, seq);
    else
        mark_back(o, o->last - seq);
}

static int insert(tb_measure_replay *r, size_t at, const char *origin, uint64_t seq)
{
    if (r->n >= r->cfg.max_origins)
        return TB_ERR_FULL;
    if (strlen(origin) > TB_MEASURE_MAX_ORIGIN)
        return TB_ERR_INVAL;
    memmove(r->origins + at + 1, r->origins + at, (r->n - at) * sizeof(*r->origins));
    origin_state *o = &r->origins[at];
    memset(o, 0, sizeof(*o));
    strcpy(o->name, origin);
    o->last = seq;
    mark_back(o, 0);
    r->n++;
    return 0;
}

int tb_measure_replay_check_seq(tb_measure_replay *r, const char *origin, uint64_t seq,
                                tb_measure_drop *why)
{
    bool found;
    size_t i = find(r, origin, &found);
    if (!found) {
        int rc = insert(r, i, origin, seq);
        if (rc == TB_ERR_FULL)
            return drop(r, TB_MEASURE_DROP_TABLE_FULL, why, rc);
        if (rc != 0)
            return drop(r, TB_MEASURE_DROP_MALFORMED, why, rc);
        return 0;
    }
    tb_measure_drop reason;
    int rc = classify(&r->origins[i], seq, &reason);
    if (rc != 0)
        return drop(r, reason, why, rc);
    take(&r->origins[i], seq);
    return 0;
}

int tb_measure_replay_seed(tb_measure_replay *r, const char *origin, uint64_t seq)
{
    bool found;
    size_t i = find(r, origin, &found);
    if (!found) {
        int rc = insert(r, i, origin, seq);
        if (rc != 0)
            return rc;
        found = true;
    }
    origin_state *o = &r->origins[i];
    if (seq > o->last)
        advance(o, seq);
    /* The store does not say which sequences below the newest arrived: take all of them as seen,
     * so nothing stored before the restart is accepted twice. */
    memset(o->window, 0xff, sizeof(o->window));
    return 0;
}

static bool cert_valid_at(const tb_measure_origin_key *k, int64_t now_real_ns)
{
    int64_t now_s = now_real_ns / 1000000000LL;
    return now_s >= k->not_before && now_s <= k->not_after;
}

/* Key, validity, signature, body, envelope, ranges. */
static int authenticate(tb_measure_replay *r, const char *origin, uint64_t seq, const uint8_t *body,
                        size_t len, const uint8_t *sig, int64_t now_real_ns, tb_measurement *out,
                        tb_measure_drop *why)
{
    tb_measure_origin_key key;
    if (len > TB_MEASURE_BODY_MAX) /* checked first: no signature work for an oversized body */
        return drop(r, TB_MEASURE_DROP_MALFORMED, why, TB_ERR_TOO_BIG);
    if (origin == NULL || r->cfg.lookup(r->cfg.arg, origin, &key) != 0)
        return drop(r, TB_MEASURE_DROP_UNKNOWN_ORIGIN, why, TB_ERR_NOTFOUND);
    if (!cert_valid_at(&key, now_real_ns))
        return drop(r, TB_MEASURE_DROP_EXPIRED, why, TB_ERR_STATE);
    if (tb_measure_verify(body, len, sig, key.ed25519_pub) != 0)
        return drop(r, TB_MEASURE_DROP_BAD_SIGNATURE, why, TB_ERR_VERIFY);
    int rc = tb_measure_parse(body, len, out, NULL);
    if (rc != 0)
        return drop(r, TB_MEASURE_DROP_MALFORMED, why, rc);
    /* the signature binds the body; the envelope must say the same */
    if (strcmp(out->origin, origin) != 0 || out->seq != seq)
        return drop(r, TB_MEASURE_DROP_MALFORMED, why, TB_ERR_MALFORMED);
    if (tb_measure_range_error(out) != NULL)
        return drop(r, TB_MEASURE_DROP_RANGE, why, TB_ERR_MALFORMED);
    return 0;
}

/* Restarts a fixed window that ended (or that a clock step put in the future). */
static void roll(int64_t *start, int64_t len, int64_t now, uint64_t *count)
{
    if (now < *start || now - *start >= len || *start == 0) {
        *start = now;
        *count = 0;
    }
}

/* Whether one more measurement of `bytes` fits the origin's allowance; charges it when so. */
static int allowance(tb_measure_replay *r, origin_state *o, size_t bytes, int64_t now, bool charge,
                     tb_measure_drop *why)
{
    const tb_measure_limits *l = &r->cfg.limits;
    uint64_t minute = o ? o->minute_count : 0, hour = o ? o->hour_bytes : 0;
    int64_t ms = o ? o->minute_start : 0, hs = o ? o->hour_start : 0;
    roll(&ms, 60 * 1000000000LL, now, &minute);
    roll(&hs, 3600 * 1000000000LL, now, &hour);
    if (l->rate_per_min && minute >= l->rate_per_min)
        return drop(r, TB_MEASURE_DROP_RATE, why, TB_ERR_FULL);
    if (l->bytes_per_hour && hour + bytes > l->bytes_per_hour)
        return drop(r, TB_MEASURE_DROP_QUOTA, why, TB_ERR_FULL);
    if (charge && o) {
        o->minute_start = ms;
        o->hour_start = hs;
        o->minute_count = (uint32_t)minute + 1;
        o->hour_bytes = hour + bytes;
    }
    return 0;
}

/* The origin's allowance and the sequence, checked without changing anything. */
static int admissible(tb_measure_replay *r, const tb_measurement *m, size_t bytes, int64_t now,
                      tb_measure_drop *why)
{
    size_t ev = m->ev_request.len + m->ev_response.len;
    if (r->cfg.limits.max_evidence && ev > r->cfg.limits.max_evidence)
        return drop(r, TB_MEASURE_DROP_EVIDENCE_SIZE, why, TB_ERR_TOO_BIG);
    bool found;
    size_t i = find(r, m->origin, &found);
    tb_measure_drop reason;
    if (found && classify(&r->origins[i], m->seq, &reason) != 0)
        return drop(r, reason, why, TB_ERR_EXISTS);
    return allowance(r, found ? &r->origins[i] : NULL, bytes, now, false, why);
}

int tb_measure_replay_accept(tb_measure_replay *r, const char *origin, uint64_t seq,
                             const uint8_t *body, size_t len, const uint8_t sig[TB_MEASURE_SIG_LEN],
                             int64_t now_real_ns, tb_measurement *out, tb_measure_drop *why)
{
    size_t bytes = len + TB_MEASURE_SIG_LEN;
    int rc = authenticate(r, origin, seq, body, len, sig, now_real_ns, out, why);
    if (rc == 0)
        rc = admissible(r, out, bytes, now_real_ns, why);
    if (rc == 0 && r->cfg.evidence && r->cfg.evidence(r->cfg.arg, out) != 0)
        rc = drop(r, TB_MEASURE_DROP_BAD_EVIDENCE, why, TB_ERR_VERIFY);
    if (rc == 0)
        rc = tb_measure_replay_check_seq(r, origin, seq, why);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    bool found;
    size_t i = find(r, origin, &found);
    if (found)
        (void)allowance(r, &r->origins[i], bytes, now_real_ns, true, NULL);
    r->accepted++;
    return 0;
}

uint64_t tb_measure_replay_dropped(const tb_measure_replay *r, tb_measure_drop reason)
{
    if ((int)reason < 0 || reason >= TB_MEASURE_DROP_COUNT)
        return 0;
    return r->dropped[reason];
}

uint64_t tb_measure_replay_accepted(const tb_measure_replay *r)
{
    return r->accepted;
}

size_t tb_measure_replay_origins(const tb_measure_replay *r)
{
    return r->n;
}
