/* The time node's in-memory view of the verified measurements (see tk_internal.h): sized by the
 * number of origins and sources, not by the stored history. */
#include <stdlib.h>
#include <string.h>

#include "node/tk_internal.h"

static void obs_fill(tk_obs *o, uint64_t id, const tb_measurement *m, bool has_rt, int64_t midp,
                     int64_t radi)
{
    *o = (tk_obs){.id = id,
                  .seq = m->seq,
                  .real_ns = m->real_ns,
                  .offset_ns = m->offset_ns,
                  .delay_ns = m->delay_ns,
                  .bound_ns = m->bound_ns,
                  .has_rt = has_rt,
                  .midp_ns = midp,
                  .radi_ns = radi};
    if (has_rt)
        memcpy(o->rt_pubkey, m->rt_pubkey, TB_MEASURE_RT_PK_LEN);
}

static bool series_is(const tk_series *s, const tb_measurement *m)
{
    return s->kind == m->kind && strcmp(s->source, m->source_name) == 0 &&
           strcmp(s->origin, m->origin) == 0 && strcmp(s->addr, m->source_addr) == 0;
}

/* The series of m, a new one, or (table full) the one updated longest ago; NULL without memory. */
static tk_series *series_slot(tk_window *w, const tb_measurement *m)
{
    size_t oldest = 0;
    for (size_t i = 0; i < w->n_series; i++) {
        if (series_is(&w->series[i], m))
            return &w->series[i];
        if (w->series[i].last.id < w->series[oldest].last.id)
            oldest = i;
    }
    if (w->n_series == w->cap_series && w->cap_series < TK_MAX_SERIES) {
        size_t cap = w->cap_series ? w->cap_series * 2 : 16;
        tk_series *grown = realloc(w->series, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        w->series = grown;
        w->cap_series = cap;
    }
    tk_series *s = w->n_series < w->cap_series ? &w->series[w->n_series++] : &w->series[oldest];
    memset(s, 0, sizeof(*s));
    s->kind = m->kind;
    snprintf(s->origin, sizeof(s->origin), "%s", m->origin);
    snprintf(s->source, sizeof(s->source), "%s", m->source_name);
    snprintf(s->addr, sizeof(s->addr), "%s", m->source_addr);
    return s;
}

static tk_rt_ring *ring_find(const tk_window *w, const char *source)
{
    for (size_t i = 0; i < w->n_rings; i++)
        if (strcmp(w->rings[i].source, source) == 0)
            return &w->rings[i];
    return NULL;
}

static tk_rt_ring *ring_slot(tk_window *w, const char *source)
{
    tk_rt_ring *r = ring_find(w, source);
    if (r)
        return r;
    if (!w->rings && !(w->rings = calloc(TK_MAX_RT_SOURCES, sizeof(*w->rings))))
        return NULL;
    if (w->n_rings < TK_MAX_RT_SOURCES) {
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
static void ring_add(tk_rt_ring *r, const char *origin, const tk_obs *o)
{
    if (r->count == r->cap && r->cap < TB_XC_MAX_RT_PER_SERVER) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        cap = cap < TB_XC_MAX_RT_PER_SERVER ? cap : TB_XC_MAX_RT_PER_SERVER;
        tk_rt_entry *grown = realloc(r->e, cap * sizeof(*grown));
        if (!grown)
            return;
        r->e = grown;
        r->cap = cap;
        r->next = r->count; /* not yet wrapped: entries are 0..count-1 */
    }
    tk_rt_entry *e = &r->e[r->next];
    snprintf(e->origin, sizeof(e->origin), "%s", origin);
    e->o = *o;
    r->next = (r->next + 1) % r->cap;
    if (r->count < r->cap)
        r->count++;
    r->touched = o->id;
}

void tk_window_add(tk_window *w, const tb_measurement *m, bool own, bool has_rt, int64_t midp_ns,
                   int64_t radi_ns)
{
    tk_obs o;
    obs_fill(&o, ++w->next_id, m, has_rt, midp_ns, radi_ns);
    tk_series *s = series_slot(w, m);
    if (s) {
        s->own = own;
        s->last = o;
    }
    if (m->kind != TB_MEASURE_ROUGHTIME || !has_rt)
        return;
    tk_rt_ring *r = ring_slot(w, m->source_name);
    if (r)
        ring_add(r, m->origin, &o);
}

static int cmp_series(const void *a, const void *b)
{
    const tk_series *x = *(const tk_series *const *)a, *y = *(const tk_series *const *)b;
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
                   const tk_obs *o)
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
                     .rt_midp_ns = o->midp_ns,
                     .rt_radi_ns = o->radi_ns};
    memcpy(x->rt_pubkey, o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
}

/* A series' newest that a Roughtime ring holds already (the ring has every re-verified response
 * of its source since its oldest entry). */
static bool in_ring(const tk_window *w, const tk_series *s)
{
    if (s->kind != TB_MEASURE_ROUGHTIME || !s->last.has_rt)
        return false;
    const tk_rt_ring *r = ring_find(w, s->source);
    return r && r->count && s->last.id >= r->e[(r->next + r->cap - r->count) % r->cap].o.id;
}

int tk_window_inputs(const tk_window *w, tb_xc_obs **out, size_t *n)
{
    size_t max = w->n_series;
    for (size_t i = 0; i < w->n_rings; i++)
        max += w->rings[i].count;
    const tk_series **sorted = calloc(w->n_series + 1, sizeof(*sorted));
    tb_xc_obs *x = calloc(max + 1, sizeof(*x));
    if (!sorted || !x) {
        free(sorted);
        free(x);
        return TB_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < w->n_rings; i++) {
        const tk_rt_ring *r = &w->rings[i];
        for (size_t j = 0; j < r->count; j++)
            xc_obs(&x[k++], r->e[j].origin, TB_MEASURE_ROUGHTIME, r->source, &r->e[j].o);
    }
    for (size_t i = 0; i < w->n_series; i++)
        sorted[i] = &w->series[i];
    qsort(sorted, w->n_series, sizeof(*sorted), cmp_series);
    for (size_t i = 0; i < w->n_series; i++) {
        const tk_series *s = sorted[i];
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

const tk_obs *tk_window_last_own(const tk_window *w, tb_measure_kind kind, const char *name,
                                 const char *addr)
{
    const tk_obs *best = NULL;
    for (size_t i = 0; i < w->n_series; i++) {
        const tk_series *s = &w->series[i];
        if (s->own && s->kind == kind && strcmp(s->source, name) == 0 &&
            (!addr || strcmp(s->addr, addr) == 0) && (!best || s->last.id > best->id))
            best = &s->last;
    }
    return best;
}

void tk_window_free(tk_window *w)
{
    for (size_t i = 0; i < w->n_rings; i++)
        free(w->rings[i].e);
    free(w->rings);
    free(w->series);
    memset(w, 0, sizeof(*w));
}
