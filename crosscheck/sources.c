/* Grouping by source and the per-source consistency check across nodes and regions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"

static int cmp_key(tb_measure_kind ka, const char *na, tb_measure_kind kb, const char *nb)
{
    if (ka != kb)
        return ka < kb ? -1 : 1;
    return strcmp(na, nb);
}

static int cmp_src(const void *a, const void *b)
{
    const xc_src *x = a, *y = b;
    return cmp_key(x->kind, x->name, y->kind, y->name);
}

static bool same_source(const xc_tobs *a, const xc_tobs *b)
{
    return cmp_key(a->o->kind, a->o->source, b->o->kind, b->o->source) == 0;
}

static unsigned count_regions(xc_tobs *const *t, size_t n)
{
    unsigned k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(t[j]->peer->region, t[i]->peer->region) != 0)
            j++;
        k += j == i;
    }
    return k;
}

/* Gap between two intervals, > 0 when they are disjoint (closed intervals: touching overlaps). */
static int64_t gap(const xc_tobs *a, const xc_tobs *b)
{
    int64_t g1 = tb_sat_sub(b->lo, a->hi), g2 = tb_sat_sub(a->lo, b->hi);
    return g1 > g2 ? g1 : g2;
}

/* Any two disjoint intervals make the source inconsistent; the widest cross-region gap is the
 * evidence of choice, a within-region one only when no cross-region pair disagrees. In one
 * dimension, pairwise overlapping intervals share a common point (Helly), so a consistent
 * source has a non-empty intersection. */
static void check_consistency(xc_src *s)
{
    int64_t best = 0;
    for (size_t i = 0; i < s->n_latest; i++)
        for (size_t j = i + 1; j < s->n_latest; j++) {
            const xc_tobs *a = s->latest[i], *b = s->latest[j];
            int64_t g = gap(a, b);
            bool cross = strcmp(a->peer->region, b->peer->region) != 0;
            if (g <= 0 || (s->cross_region && !cross))
                continue;
            if ((cross && !s->cross_region) || g > best) {
                best = g;
                s->bad_a = a;
                s->bad_b = b;
                s->cross_region = cross;
            }
        }
    if (s->bad_a != NULL || s->n_latest == 0)
        return;
    s->has_interval = true;
    s->lo = s->latest[0]->lo;
    s->hi = s->latest[0]->hi;
    for (size_t i = 1; i < s->n_latest; i++) {
        if (s->latest[i]->lo > s->lo)
            s->lo = s->latest[i]->lo;
        if (s->latest[i]->hi < s->hi)
            s->hi = s->latest[i]->hi;
    }
}

/* Fills s from the sorted run tobs[from..to) of one source. */
static void fill_source(xc_ctx *ctx, xc_src *s, size_t from, size_t to, size_t *pool_used)
{
    s->kind = ctx->tobs[from].o->kind;
    s->name = ctx->tobs[from].o->source;
    s->latest = ctx->pool + *pool_used;
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        xc_tobs *t = &ctx->tobs[i];
        ctx->out->n_stale += t->stale;
        if (s->last_seen == NULL || t->t_local > s->last_seen->t_local)
            s->last_seen = t;
        bool first_of_origin = i == from || strcmp(ctx->tobs[i - 1].o->origin, t->o->origin) != 0;
        if (!first_of_origin)
            continue;
        if (t->stale || t->discredited)
            continue;
        if (t->unsync) {
            s->n_unsync++;
            if (s->unsync == NULL || t->t_local > s->unsync->t_local)
                s->unsync = t;
            continue;
        }
        s->latest[n++] = t;
        s->by_self |= ctx->in->self && strcmp(t->o->origin, ctx->in->self) == 0;
        int64_t stale_at = tb_sat_add(t->t_local, t->live_ns);
        if (stale_at < ctx->out->next_run_ns)
            ctx->out->next_run_ns = stale_at;
    }
    s->n_latest = n;
    *pool_used += n;
}

static bool overlaps(const xc_tobs *a, const xc_tobs *b)
{
    return gap(a, b) <= 0;
}

static bool is_self(const xc_ctx *ctx, const xc_tobs *t)
{
    return t->peer->self || (ctx->in->self && strcmp(t->o->origin, ctx->in->self) == 0);
}

/* corroborated[p] (p an index into in->peers): some fresh measurement of that node overlaps
 * another node's measurement of the same source. The local node vouches for itself. */
static void corroborate(const xc_ctx *ctx, bool *corroborated)
{
    for (size_t i = 0; i < ctx->n_srcs; i++) {
        const xc_src *s = &ctx->srcs[i];
        for (size_t a = 0; a < s->n_latest; a++) {
            corroborated[s->latest[a]->peer - ctx->in->peers] |= is_self(ctx, s->latest[a]);
            for (size_t b = a + 1; b < s->n_latest; b++)
                if (overlaps(s->latest[a], s->latest[b])) {
                    corroborated[s->latest[a]->peer - ctx->in->peers] = true;
                    corroborated[s->latest[b]->peer - ctx->in->peers] = true;
                }
        }
    }
}

/* A node none of whose measurements agrees with another node's cannot, by disagreeing, make a
 * source inconsistent (one member must not decide a verdict): its dissenting interval is set
 * aside and named as a finding against it. A node that agrees elsewhere and dissents here is
 * what a source answering one region differently looks like, and keeps its say. */
static void set_aside_uncorroborated(xc_ctx *ctx, xc_src *s, const bool *corroborated)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_latest; i++) {
        xc_tobs *t = s->latest[i];
        const xc_tobs *other = NULL;
        for (size_t j = 0; j < s->n_latest && !other && !corroborated[t->peer - ctx->in->peers];
             j++)
            if (j != i && !overlaps(t, s->latest[j]))
                other = s->latest[j];
        if (other == NULL) {
            s->latest[k++] = t;
            continue;
        }
        tb_xc_finding *f = tb_xc_add_finding(ctx, TB_XC_MEMBER_UNCORROBORATED, t, other);
        if (f)
            snprintf(f->reason, sizeof(f->reason),
                     "sees %s at [%.3f, %.3f] ms, disjoint from %s's [%.3f, %.3f] ms, and agrees "
                     "with no other node on any source: not counted",
                     s->name, (double)t->lo / 1e6, (double)t->hi / 1e6, other->o->origin,
                     (double)other->lo / 1e6, (double)other->hi / 1e6);
    }
    s->n_latest = k;
}

static int add_known(xc_ctx *ctx, size_t n_from_obs)
{
    for (size_t i = 0; i < ctx->in->n_known; i++) {
        xc_src key = {
            .kind = ctx->in->known[i].kind, .name = ctx->in->known[i].name, .known = true};
        xc_src *hit = bsearch(&key, ctx->srcs, n_from_obs, sizeof(key), cmp_src);
        if (hit != NULL) {
            hit->known = true;
            continue;
        }
        size_t j = n_from_obs;
        while (j < ctx->n_srcs && cmp_src(&key, &ctx->srcs[j]) != 0)
            j++;
        if (j < ctx->n_srcs)
            continue; /* listed twice */
        if (ctx->n_srcs >= TB_XC_MAX_SOURCES)
            return TB_ERR_TOO_BIG;
        ctx->srcs[ctx->n_srcs++] = key;
    }
    qsort(ctx->srcs, ctx->n_srcs, sizeof(*ctx->srcs), cmp_src);
    return 0;
}

static int judge_consistency(xc_ctx *ctx)
{
    ctx->corroborated = calloc(ctx->in->n_peers + 1, sizeof(*ctx->corroborated));
    if (ctx->corroborated == NULL)
        return TB_ERR_NOMEM;
    int rc = tb_xc_judge_members(ctx);
    if (rc != 0)
        return rc;
    corroborate(ctx, ctx->corroborated);
    for (size_t i = 0; i < ctx->n_srcs; i++) {
        xc_src *s = &ctx->srcs[i];
        set_aside_uncorroborated(ctx, s, ctx->corroborated);
        s->n_regions = count_regions(s->latest, s->n_latest);
        check_consistency(s);
    }
    return 0;
}

int tb_xc_build_sources(xc_ctx *ctx)
{
    ctx->n_srcs = 0;
    ctx->pool = calloc(ctx->n_tobs ? ctx->n_tobs : 1, sizeof(*ctx->pool));
    ctx->srcs = calloc(TB_XC_MAX_SOURCES, sizeof(*ctx->srcs));
    if (ctx->pool == NULL || ctx->srcs == NULL)
        return TB_ERR_NOMEM;
    size_t pool_used = 0;
    for (size_t from = 0, to; from < ctx->n_tobs; from = to) {
        to = from + 1;
        while (to < ctx->n_tobs && same_source(&ctx->tobs[from], &ctx->tobs[to]))
            to++;
        if (ctx->n_srcs >= TB_XC_MAX_SOURCES)
            return TB_ERR_TOO_BIG;
        fill_source(ctx, &ctx->srcs[ctx->n_srcs++], from, to, &pool_used);
    }
    int rc = judge_consistency(ctx);
    return rc == 0 ? add_known(ctx, ctx->n_srcs) : rc;
}

void tb_xc_ctx_free(xc_ctx *ctx)
{
    free(ctx->tobs);
    free(ctx->pool);
    free(ctx->srcs);
    free(ctx->corroborated);
    free(ctx->clock_off);
    free(ctx->expected);
}
