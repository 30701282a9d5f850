/* Per source and region: the newest fresh measurement in this node's frame (node/tk_internal.h,
 * tk_view). The cross-check decides per source; this shows which region sees what, which is
 * what makes an inconsistent source visible on the dashboard and in metrics. */
#include <stdlib.h>
#include <string.h>

#include "node/tk_internal.h"

int tk_view_open(const tb_timekeeper *tk, tk_view *v)
{
    memset(v, 0, sizeof(*v));
    v->now_ns = tk_real_now(tk);
    v->ps = calloc(TK_MAX_PEERS, sizeof(*v->ps));
    v->xp = calloc(TK_MAX_PEERS + 1, sizeof(*v->xp));
    if (!v->ps || !v->xp || tb_xc_window_inputs(tk->win, &v->obs, &v->n_obs) != TB_OK) {
        tk_view_close(v);
        return TB_ERR_NOMEM;
    }
    v->n_xp = tk_peers_xc(tk, v->ps, v->xp, v->now_ns);
    return TB_OK;
}

void tk_view_close(tk_view *v)
{
    free(v->ps);
    free(v->xp);
    free(v->obs);
    memset(v, 0, sizeof(*v));
}

static const tb_xc_peer *origin_of(const tk_view *v, const char *origin)
{
    for (size_t i = 0; i < v->n_xp; i++)
        if (strcmp(v->xp[i].name, origin) == 0)
            return &v->xp[i];
    return NULL;
}

static int agrees(const tb_xc_estimate *e, int64_t off, int64_t bound)
{
    if (!e->valid)
        return -1;
    /* saturating: offsets and bounds come from peers */
    int64_t lo, hi;
    if (__builtin_sub_overflow(off, bound, &lo))
        lo = INT64_MIN;
    if (__builtin_add_overflow(off, bound, &hi))
        hi = INT64_MAX;
    return lo <= e->hi_ns && hi >= e->lo_ns;
}

/* Translates o into the local frame; 0 when it is not fresh or the numbers overflow. */
static int translate(const tb_timekeeper *tk, const tk_view *v, const tb_xc_obs *o,
                     const tb_xc_peer *p, tk_region_obs *r)
{
    int64_t real_local, age;
    if (__builtin_add_overflow(o->offset_ns, p->offset_ns, &r->offset_ns) ||
        __builtin_add_overflow(o->bound_ns, p->uncert_ns, &r->bound_ns) ||
        __builtin_sub_overflow(o->real_ns, p->offset_ns, &real_local) ||
        __builtin_sub_overflow(v->now_ns, real_local, &age))
        return 0;
    if (age > tk->tc.xc.window_ns)
        return 0;
    r->age_ns = age < 0 ? 0 : age;
    r->region = p->region;
    r->origin = p->name;
    r->agrees = agrees(&tk->result.estimate, r->offset_ns, r->bound_ns);
    return 1;
}

static int by_region(const void *a, const void *b)
{
    return strcmp(((const tk_region_obs *)a)->region, ((const tk_region_obs *)b)->region);
}

size_t tk_view_regions(const tb_timekeeper *tk, const tk_view *v, tb_measure_kind kind,
                       const char *source, tk_region_obs *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n_obs; i++) {
        const tb_xc_obs *o = &v->obs[i];
        const tb_xc_peer *p =
            o->kind == kind && strcmp(o->source, source) == 0 ? origin_of(v, o->origin) : NULL;
        tk_region_obs r;
        if (!p || !translate(tk, v, o, p, &r))
            continue;
        size_t j = 0;
        while (j < n && strcmp(out[j].region, r.region) != 0)
            j++;
        if (j < n && out[j].age_ns > r.age_ns)
            out[j] = r; /* a newer one from this region */
        else if (j == n && n < max)
            out[n++] = r;
    }
    qsort(out, n, sizeof(*out), by_region);
    return n;
}
