#include "sources/pps.h"

#include <math.h>
#include <stdlib.h>

#define NS INT64_C(1000000000)

/* Offsets are worked in units of 1/rate ns ("scaled"), where one pulse interval is exactly NS
 * whatever the rate, so rates that do not divide a second (3 Hz) stay exact. */
#define INTERVAL NS

typedef struct jit_entry {
    uint32_t seq;
    int64_t offset_ns;
} jit_entry;

struct tb_pps {
    tb_pps_params p;
    bool have_seq, have_pulse;
    uint32_t last_seq;
    int64_t last_real_ns;
    jit_entry ring[TB_PPS_JITTER_WINDOW + 1];
    unsigned ring_n, ring_next;
    tb_pps_stats stats;
};

const char *tb_pps_verdict_name(tb_pps_verdict v)
{
    static const char *const names[TB_PPS_VERDICT_COUNT] = {"accepted",
                                                            "same pulse",
                                                            "old pulse",
                                                            "no lock sample",
                                                            "lock sample too old",
                                                            "lock offset too far from the pulse",
                                                            "wrong edge",
                                                            "settling"};
    return (unsigned)v < TB_PPS_VERDICT_COUNT ? names[v] : "unknown";
}

int tb_pps_create(const tb_pps_params *params, tb_pps **out)
{
    *out = NULL;
    const tb_pps_params *p = params;
    if (p->rate < 1 || p->rate > TB_PPS_MAX_RATE || p->maxlockage < 1 || p->maxlockage > 64 ||
        p->precision_ns < 0 || p->precision_ns > NS || p->width_ns < 0 || p->width_ns >= NS ||
        p->width_ns * p->rate >= NS || p->offset_ns <= -NS || p->offset_ns >= NS ||
        llabs(p->offset_ns) * 2 * p->rate >= NS)
        return TB_ERR_INVAL;
    tb_pps *pps = calloc(1, sizeof(*pps));
    if (!pps)
        return TB_ERR_NOMEM;
    pps->p = *p;
    *out = pps;
    return 0;
}

void tb_pps_free(tb_pps *pps)
{
    free(pps);
}

const tb_pps_stats *tb_pps_stats_of(const tb_pps *pps)
{
    return &pps->stats;
}

/* Nearest integer to a / b (b > 0), halves away from zero. */
static int64_t div_round(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

/* The sequence moved on: counts the pulses it skipped. A jump of half the range or more is a
 * restarted device, not 2^31 missed pulses. */
static bool new_pulse(tb_pps *pps, uint32_t seq)
{
    uint32_t gap = seq - pps->last_seq;
    if (pps->have_seq && gap == 0)
        return false;
    if (pps->have_seq && gap > 1 && gap < UINT32_C(0x80000000))
        pps->stats.missed += gap - 1;
    pps->have_seq = true;
    pps->last_seq = seq;
    pps->stats.pulses++;
    return true;
}

/* −phase + offset in scaled units, in [−INTERVAL/2, INTERVAL/2). */
static int64_t pulse_offset_scaled(const tb_pps *pps, int64_t real_ns)
{
    int64_t in_second = ((real_ns % NS) + NS) % NS;
    int64_t phase = in_second * pps->p.rate % INTERVAL;
    int64_t o = pps->p.offset_ns * pps->p.rate - phase;
    o = ((o % INTERVAL) + INTERVAL) % INTERVAL;
    return o >= INTERVAL / 2 ? o - INTERVAL : o;
}

static tb_pps_verdict pair_with_lock(const tb_pps *pps, const tb_pps_pulse *pulse,
                                     const tb_pps_lock *lock, int64_t *o)
{
    int64_t rate = pps->p.rate;
    if (!lock)
        return TB_PPS_NO_LOCK;
    int64_t age;
    if (__builtin_sub_overflow(pulse->real_ns, lock->real_ns, &age) || age > 1000 * NS ||
        age < -1000 * NS || llabs(age) * rate >= (int64_t)pps->p.maxlockage * NS)
        return TB_PPS_LOCK_STALE;
    if (lock->offset_ns > TB_PPS_MAX_LOCK_OFFSET_NS ||
        lock->offset_ns < -TB_PPS_MAX_LOCK_OFFSET_NS || lock->error_ns < 0 || lock->error_ns >= NS)
        return TB_PPS_LOCK_FAR;
    int64_t lock_s = lock->offset_ns * rate;
    *o += div_round(lock_s - *o, INTERVAL) * INTERVAL;
    int64_t diff = llabs(lock_s - *o);
    /* 0.4 of an interval, as chrony: nearer the half, noise could pick the next second */
    if (diff + (lock->error_ns + pps->p.precision_ns) * rate > INTERVAL / 10 * 4)
        return TB_PPS_LOCK_FAR;
    if (pps->p.width_ns > 0) {
        int64_t w = pps->p.width_ns * rate;
        int64_t max_err = (w < INTERVAL - w ? w : INTERVAL - w) / 2;
        if (diff > max_err)
            return TB_PPS_WRONG_EDGE;
    }
    return TB_PPS_ACCEPTED;
}

/* sqrt(var(d) / 2) over the differences of consecutive pulses' offsets: white noise of σ on
 * each pulse gives differences of σ√2, a steady drift gives none. */
static int64_t jitter(tb_pps *pps)
{
    double d[TB_PPS_JITTER_WINDOW], sum = 0;
    unsigned n = 0, cap = TB_PPS_JITTER_WINDOW + 1;
    for (unsigned k = 1; k < pps->ring_n; k++) {
        const jit_entry *a = &pps->ring[(pps->ring_next + cap - pps->ring_n + k - 1) % cap];
        const jit_entry *b = &pps->ring[(pps->ring_next + cap - pps->ring_n + k) % cap];
        if (b->seq - a->seq != 1)
            continue;
        d[n] = (double)(b->offset_ns - a->offset_ns);
        sum += d[n++];
    }
    if (n < TB_PPS_JITTER_MIN) /* after a gap: the last estimate stands */
        return pps->stats.jitter_ns;
    pps->stats.settled = true;
    double mean = sum / n, var = 0;
    for (unsigned k = 0; k < n; k++)
        var += (d[k] - mean) * (d[k] - mean);
    return (int64_t)ceil(sqrt(var / (n - 1) / 2));
}

static void remember(tb_pps *pps, uint32_t seq, int64_t offset_ns)
{
    unsigned cap = TB_PPS_JITTER_WINDOW + 1;
    pps->ring[pps->ring_next] = (jit_entry){seq, offset_ns};
    pps->ring_next = (pps->ring_next + 1) % cap;
    if (pps->ring_n < cap)
        pps->ring_n++;
    pps->stats.jitter_ns = jitter(pps);
}

tb_pps_verdict tb_pps_pulse_in(tb_pps *pps, int64_t now_ns, const tb_pps_pulse *pulse,
                               const tb_pps_lock *lock, tb_pps_sample *out)
{
    tb_pps_verdict v = TB_PPS_SAME;
    if (!new_pulse(pps, pulse->seq))
        goto done;
    v = TB_PPS_OLD;
    int64_t age;
    if ((pps->have_pulse && pulse->real_ns <= pps->last_real_ns) ||
        __builtin_sub_overflow(now_ns, pulse->real_ns, &age) || age < 0 || age > TB_PPS_MAX_AGE_NS)
        goto done;
    pps->have_pulse = true;
    pps->last_real_ns = pulse->real_ns;
    int64_t o = pulse_offset_scaled(pps, pulse->real_ns);
    v = pair_with_lock(pps, pulse, lock, &o);
    if (v != TB_PPS_ACCEPTED)
        goto done;
    int64_t offset_ns = div_round(o, pps->p.rate);
    remember(pps, pulse->seq, offset_ns);
    if (!pps->stats.settled) {
        v = TB_PPS_SETTLING;
        goto done;
    }
    *out = (tb_pps_sample){
        .real_ns = pulse->real_ns,
        .offset_ns = offset_ns,
        .error_ns = pps->p.precision_ns + 3 * pps->stats.jitter_ns,
        .lock_diff_ns = lock->offset_ns - offset_ns,
    };
done:
    pps->stats.verdicts[v]++;
    return v;
}
