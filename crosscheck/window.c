/* The newest measurement per series and the Roughtime rings (crosscheck/window.h). Linear
 * scans: a few thousand series at most, searched once per measurement taken. */
#include "crosscheck/window.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arith.h"
#include "ntp/client.h"
#include "roughtime/verify.h"

/* One verified measurement, its evidence left with the caller. */
typedef struct win_obs {
    uint64_t id; /* arrival order (1, 2, ...): newest is highest */
    uint64_t seq;
    int64_t real_ns, offset_ns, delay_ns, bound_ns;
    bool has_rt;  /* Roughtime response re-verified: key, midp, radi below */
    bool chained; /* its request's nonce is chained to a previous response (has rand) */
    uint8_t rt_pubkey[TB_MEASURE_RT_PK_LEN];
    int64_t midp_ns, radi_ns;
    bool has_freq; /* the series' regression when this one was added */
    int64_t freq_ppb, freq_unc_ppb;
    int64_t interval_ns; /* the series' mean sample spacing then */
    uint8_t leap, stratum;
    tb_xc_ss_view move; /* the series against its own history when this one was added */
} win_obs;

typedef struct win_series {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1], addr[TB_MEASURE_MAX_TEXT + 1];
    bool own;
    win_obs last;
    tb_xc_stats *stats; /* NULL when out of memory: the series then has no regression */
    tb_xc_ss *ss;       /* relative to the origin's agreement; NULL when out of memory */
    int64_t common;     /* the origin's common mode removed from its newest value */
} win_series;

typedef struct win_rt_entry {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    win_obs o;
} win_rt_entry;

/* A ring, oldest replaced first, grown up to TB_XC_MAX_RT_PER_SERVER entries. */
typedef struct win_rt_ring {
    char source[TB_MEASURE_MAX_TEXT + 1];
    win_rt_entry *e;
    size_t cap, next, count;
    uint64_t touched; /* id of the newest entry */
} win_rt_ring;

struct tb_xc_window {
    win_series *series;
    size_t n_series, cap_series;
    win_rt_ring *rings;
    size_t n_rings;
    uint64_t next_id;
};

tb_xc_window *tb_xc_window_new(void)
{
    return calloc(1, sizeof(tb_xc_window));
}

static void obs_fill(win_obs *o, uint64_t id, const tb_measurement *m, bool has_rt, int64_t midp,
                     int64_t radi)
{
    *o = (win_obs){.id = id,
                   .seq = m->seq,
                   .real_ns = m->real_ns,
                   .offset_ns = m->offset_ns,
                   .delay_ns = m->delay_ns,
                   .bound_ns = m->bound_ns,
                   .has_rt = has_rt,
                   .chained = m->has_rand,
                   .midp_ns = midp,
                   .radi_ns = radi,
                   .leap = m->leap,
                   .stratum = m->stratum};
    if (has_rt)
        memcpy(o->rt_pubkey, m->rt_pubkey, TB_MEASURE_RT_PK_LEN);
}

static bool series_is(const win_series *s, const tb_measurement *m)
{
    return s->kind == m->kind && strcmp(s->source, m->source_name) == 0 &&
           strcmp(s->origin, m->origin) == 0 && strcmp(s->addr, m->source_addr) == 0;
}

/* The series of m, a new one, or (table full) the one updated longest ago; NULL without memory. */
static win_series *series_slot(tb_xc_window *w, const tb_measurement *m)
{
    size_t oldest = 0;
    for (size_t i = 0; i < w->n_series; i++) {
        if (series_is(&w->series[i], m))
            return &w->series[i];
        if (w->series[i].last.id < w->series[oldest].last.id)
            oldest = i;
    }
    if (w->n_series == w->cap_series && w->cap_series < TB_XC_WINDOW_MAX_SERIES) {
        size_t cap = w->cap_series ? w->cap_series * 2 : 16;
        win_series *grown = realloc(w->series, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        w->series = grown;
        w->cap_series = cap;
    }
    bool fresh = w->n_series < w->cap_series;
    win_series *s = fresh ? &w->series[w->n_series++] : &w->series[oldest];
    tb_xc_stats *stats = fresh ? NULL : s->stats; /* a fresh slot holds garbage */
    tb_xc_ss *ss = fresh ? NULL : s->ss;
    memset(s, 0, sizeof(*s));
    s->stats = stats ? stats : tb_xc_stats_new();
    if (s->stats)
        tb_xc_stats_reset(s->stats);
    s->ss = ss ? ss : tb_xc_ss_new();
    if (s->ss)
        tb_xc_ss_reset(s->ss);
    s->kind = m->kind;
    snprintf(s->origin, sizeof(s->origin), "%s", m->origin);
    snprintf(s->source, sizeof(s->source), "%s", m->source_name);
    snprintf(s->addr, sizeof(s->addr), "%s", m->source_addr);
    return s;
}

static win_rt_ring *ring_find(const tb_xc_window *w, const char *source)
{
    for (size_t i = 0; i < w->n_rings; i++)
        if (strcmp(w->rings[i].source, source) == 0)
            return &w->rings[i];
    return NULL;
}

static win_rt_ring *ring_slot(tb_xc_window *w, const char *source)
{
    win_rt_ring *r = ring_find(w, source);
    if (r)
        return r;
    if (!w->rings && !(w->rings = calloc(TB_XC_WINDOW_MAX_RT_SOURCES, sizeof(*w->rings))))
        return NULL;
    if (w->n_rings < TB_XC_WINDOW_MAX_RT_SOURCES) {
        r = &w->rings[w->n_rings++];
    } else {
        r = &w->rings[0];
        for (size_t i = 1; i < w->n_rings; i++)
            if (w->rings[i].touched < r->touched)
                r = &w->rings[i];
        free(r->e);
    }
    memset(r, 0, sizeof(*r));
    snprintf(r->source, sizeof(r->source), "%s", source);
    return r;
}

/* Appends in arrival order; a full ring (grown to TB_XC_MAX_RT_PER_SERVER) drops its oldest. */
static void ring_add(win_rt_ring *r, const char *origin, const win_obs *o)
{
    if (r->count == r->cap && r->cap < TB_XC_MAX_RT_PER_SERVER) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        cap = cap < TB_XC_MAX_RT_PER_SERVER ? cap : TB_XC_MAX_RT_PER_SERVER;
        win_rt_entry *grown = realloc(r->e, cap * sizeof(*grown));
        if (!grown)
            return;
        r->e = grown;
        r->cap = cap;
        r->next = r->count; /* not yet wrapped: entries are 0..count-1 */
    }
    win_rt_entry *e = &r->e[r->next];
    snprintf(e->origin, sizeof(e->origin), "%s", origin);
    e->o = *o;
    r->next = (r->next + 1) % r->cap;
    if (r->count < r->cap)
        r->count++;
    r->touched = o->id;
}

/* The spacing an NTP series may reach: its clock filter releases a sample at least once in
 * TB_NTP_FILTER_LEN polls (after that many, every sample it held before is gone), and the request
 * says the poll (byte 2, log2 s). The mean spacing of the series lags behind a poll that has just
 * risen (the start-up burst is 2 s apart): sim/time.c saw every node's series of one source go
 * stale together, the source "unreachable" while all of them were polling it. The poll is the
 * member's claim: capped at 2^12 s, so a stale measurement lives at most ~9 h. 0 if unknown. */
#define WIN_POLL_CAP 12
static int64_t ntp_release_spacing(const tb_measurement *m)
{
    if (m->kind != TB_MEASURE_NTP || m->ev_request.len < TB_NTP_HEADER_LEN)
        return 0;
    int poll = (int8_t)m->ev_request.data[2];
    if (poll < 0)
        return 0;
    /* over those polls the poll may rise (by one per 4 good samples): count them at poll + 1 */
    poll = poll < WIN_POLL_CAP ? poll + 1 : WIN_POLL_CAP;
    return (INT64_C(1000000000) << poll) * TB_NTP_FILTER_LEN / TB_XC_LIVE_INTERVALS;
}

/* The spacing a Roughtime series may reach: the source driver doubles its poll after 4 valid
 * responses (sources/rt_driver.h) and a request does not say the poll, so the next response may
 * come twice the last spacing later; LIVE_INTERVALS of the last spacing cover that. sim/time_rt.c
 * saw every node's series of a Roughtime source go stale together once the poll had risen to
 * 1,024 s (the mean spacing lags behind), every Roughtime source "unreachable" for minutes.
 * The times are the member's claim: capped at 2^12 s. 0 if unknown. */
static int64_t rt_release_spacing(const win_series *s, const win_obs *o, const tb_measurement *m)
{
    const int64_t cap = INT64_C(1000000000) << WIN_POLL_CAP;
    if (m->kind != TB_MEASURE_ROUGHTIME || s->last.id == 0 || o->real_ns <= s->last.real_ns)
        return 0;
    int64_t gap = o->real_ns - s->last.real_ns; /* both >= 0 (range-checked): no overflow */
    return gap < cap ? gap : cap;
}

/* Feeds the series' regression and copies its frequency into o. A measurement older than the
 * series' newest (arriving out of order) is left out of the regression. */
static void series_fit(win_series *s, win_obs *o, const tb_measurement *m)
{
    tb_xc_stats_fit f;
    if (!s->stats || tb_xc_stats_add(s->stats, o->real_ns, o->offset_ns, o->bound_ns) != TB_OK)
        return;
    o->interval_ns = tb_xc_stats_interval(s->stats);
    int64_t release = ntp_release_spacing(m), rt = rt_release_spacing(s, o, m);
    release = rt > release ? rt : release;
    if (release > o->interval_ns)
        o->interval_ns = release;
    if (tb_xc_stats_get_fit(s->stats, &f) != TB_OK || !f.has_freq)
        return;
    double unc = ceil(3.0 * f.freq_sd_ppb), freq = round(f.freq_ppb);
    if (!(unc < 1e12) || !(fabs(freq) < 1e12))
        return; /* nonsense; the ceiling applies */
    o->has_freq = true;
    o->freq_ppb = (int64_t)freq;
    o->freq_unc_ppb = (int64_t)unc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* What the origin's other settled series share at t_ns: each one's offset as its own
 * regression predicts it to t, less what its baseline expects; their median is how far the
 * origin's clock has moved since the baselines were learnt (its own agreement, relative). Fewer
 * than TB_XC_SS_MIN_COMMON such series: the origin's newest common mode stands. */
#define TB_XC_SS_MIN_COMMON 3
static int64_t common_mode(const tb_xc_window *w, const win_series *self, int64_t t_ns)
{
    int64_t v[64], fallback = 0;
    size_t n = 0;
    uint64_t newest = 0;
    for (size_t i = 0; i < w->n_series; i++) {
        const win_series *o = &w->series[i];
        if (o == self || o->kind == TB_MEASURE_PEER || strcmp(o->origin, self->origin) != 0)
            continue;
        if (o->last.id > newest) {
            newest = o->last.id;
            fallback = o->common;
        }
        tb_xc_ss_view sv;
        tb_xc_stats_fit f;
        int64_t base;
        if (!o->ss || !o->stats || n == sizeof(v) / sizeof(v[0]))
            continue;
        tb_xc_ss_get(o->ss, &sv);
        if (sv.state != TB_XC_SS_SETTLED || tb_xc_ss_predict(o->ss, t_ns, &base) != TB_OK ||
            tb_xc_stats_get_fit(o->stats, &f) != TB_OK)
            continue;
        v[n++] = tb_sat_sub(tb_xc_stats_predict(&f, t_ns, NULL), base);
    }
    if (n < TB_XC_SS_MIN_COMMON)
        return fallback;
    qsort(v, n, sizeof(v[0]), cmp_i64);
    return n % 2 ? v[n / 2] : v[n / 2 - 1] / 2 + v[n / 2] / 2;
}

/* Feeds the series' own-history statistics with its offset relative to the origin's agreement
 * and copies what they say into o. */
static void series_move(const tb_xc_window *w, win_series *s, win_obs *o)
{
    if (!s->ss || s->kind == TB_MEASURE_PEER)
        return;
    int64_t c = common_mode(w, s, o->real_ns);
    if (tb_xc_ss_add(s->ss, o->real_ns, tb_sat_sub(o->offset_ns, c), o->delay_ns) != TB_OK)
        return;
    s->common = c;
    tb_xc_ss_get(s->ss, &o->move);
}

void tb_xc_window_add(tb_xc_window *w, const tb_measurement *m, bool own, bool has_rt,
                      int64_t midp_ns, int64_t radi_ns)
{
    win_obs o;
    obs_fill(&o, ++w->next_id, m, has_rt, midp_ns, radi_ns);
    win_series *s = series_slot(w, m);
    if (s) {
        /* an unsynchronised reply's numbers mean nothing: kept as the newest, never fitted */
        if (!(m->kind == TB_MEASURE_NTP && tb_ntp_reply_unsynchronised(m->leap, m->stratum)) &&
            !(m->kind == TB_MEASURE_ROUGHTIME && has_rt && radi_ns >= TB_RT_UNSYNCED_RADI_NS)) {
            series_move(w, s, &o);
            series_fit(s, &o, m);
        }
        s->own = own;
        s->last = o;
    }
    if (m->kind != TB_MEASURE_ROUGHTIME || !has_rt)
        return;
    win_rt_ring *r = ring_slot(w, m->source_name);
    if (r)
        ring_add(r, m->origin, &o);
}

static int cmp_series(const void *a, const void *b)
{
    const win_series *x = *(const win_series *const *)a, *y = *(const win_series *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->source, y->source);
    if (c == 0)
        c = strcmp(x->origin, y->origin);
    if (c != 0)
        return c;
    return x->last.id > y->last.id ? -1 : x->last.id < y->last.id;
}

static void xc_obs(tb_xc_obs *x, const char *origin, tb_measure_kind kind, const char *source,
                   const win_obs *o)
{
    *x = (tb_xc_obs){.origin = origin,
                     .seq = o->seq,
                     .kind = kind,
                     .source = source,
                     .real_ns = o->real_ns,
                     .offset_ns = o->offset_ns,
                     .delay_ns = o->delay_ns,
                     .bound_ns = o->bound_ns,
                     .has_rt = o->has_rt,
                     .rt_chained = o->chained,
                     .rt_midp_ns = o->midp_ns,
                     .rt_radi_ns = o->radi_ns,
                     .has_freq = o->has_freq,
                     .freq_ppb = o->freq_ppb,
                     .freq_unc_ppb = o->freq_unc_ppb,
                     .interval_ns = o->interval_ns,
                     .leap = o->leap,
                     .stratum = o->stratum,
                     .move_state = (uint8_t)o->move.state,
                     .move_dev_ns = o->move.dev_ns,
                     .move_tol_ns = o->move.tol_ns,
                     .move_since_ns = o->move.since_ns,
                     .move_base_ns = o->move.base_from_ns};
    memcpy(x->rt_pubkey, o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
}

/* A series' newest that a Roughtime ring holds already (the ring has every re-verified response
 * of its source since its oldest entry). */
static bool in_ring(const tb_xc_window *w, const win_series *s)
{
    if (s->kind != TB_MEASURE_ROUGHTIME || !s->last.has_rt)
        return false;
    const win_rt_ring *r = ring_find(w, s->source);
    return r && r->count && s->last.id >= r->e[(r->next + r->cap - r->count) % r->cap].o.id;
}

int tb_xc_window_inputs(const tb_xc_window *w, tb_xc_obs **out, size_t *n)
{
    size_t max = w->n_series;
    for (size_t i = 0; i < w->n_rings; i++)
        max += w->rings[i].count;
    const win_series **sorted = calloc(w->n_series + 1, sizeof(*sorted));
    tb_xc_obs *x = calloc(max + 1, sizeof(*x));
    if (!sorted || !x) {
        free(sorted);
        free(x);
        return TB_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < w->n_rings; i++) {
        const win_rt_ring *r = &w->rings[i];
        for (size_t j = 0; j < r->count; j++)
            xc_obs(&x[k++], r->e[j].origin, TB_MEASURE_ROUGHTIME, r->source, &r->e[j].o);
    }
    for (size_t i = 0; i < w->n_series; i++)
        sorted[i] = &w->series[i];
    qsort(sorted, w->n_series, sizeof(*sorted), cmp_series);
    for (size_t i = 0; i < w->n_series; i++) {
        const win_series *s = sorted[i];
        bool newest = i == 0 || sorted[i - 1]->kind != s->kind ||
                      strcmp(sorted[i - 1]->source, s->source) != 0 ||
                      strcmp(sorted[i - 1]->origin, s->origin) != 0;
        if (newest && !in_ring(w, s))
            xc_obs(&x[k++], s->origin, s->kind, s->source, &s->last);
    }
    free(sorted);
    *out = x;
    *n = k;
    return TB_OK;
}

int tb_xc_window_last_own(const tb_xc_window *w, tb_measure_kind kind, const char *name,
                          const char *addr, tb_xc_obs *out)
{
    const win_series *best = NULL;
    for (size_t i = 0; i < w->n_series; i++) {
        const win_series *s = &w->series[i];
        if (s->own && s->kind == kind && strcmp(s->source, name) == 0 &&
            (!addr || strcmp(s->addr, addr) == 0) && (!best || s->last.id > best->last.id))
            best = s;
    }
    if (!best)
        return TB_ERR_NOTFOUND;
    xc_obs(out, best->origin, best->kind, best->source, &best->last);
    return TB_OK;
}

size_t tb_xc_window_series(const tb_xc_window *w)
{
    return w->n_series;
}

size_t tb_xc_window_rt_sources(const tb_xc_window *w)
{
    return w->n_rings;
}

size_t tb_xc_window_rt_held(const tb_xc_window *w, const char *source)
{
    const win_rt_ring *r = ring_find(w, source);
    return r ? r->count : 0;
}

void tb_xc_window_free(tb_xc_window *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_rings; i++)
        free(w->rings[i].e);
    free(w->rings);
    for (size_t i = 0; i < w->n_series; i++) {
        tb_xc_stats_free(w->series[i].stats);
        tb_xc_ss_free(w->series[i].ss);
    }
    free(w->series);
    free(w);
}
