/* The agreement of the sources (Marzullo's interval intersection as NTP's clock select uses
 * it) and the verdict on every source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"
#include "roughtime/verify.h"

typedef struct edge {
    int64_t x;
    int d; /* +1 start, -1 end */
} edge;

/* Starts before ends at the same point: closed intervals, touching ones overlap. */
static int cmp_edge(const void *a, const void *b)
{
    const edge *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return q->d - p->d;
}

/* Why a consistent source with data does not vote, or NULL when it does. One member must not
 * be able to invent sources (it could outvote the real ones): a source votes only when this
 * node configured or measured it or members in two regions measured it, and only when this
 * node measured it itself or two members did (no source rests on one other member's word). */
static const char *no_vote(const xc_ctx *ctx, const xc_src *s)
{
    if (s->kind == TB_MEASURE_PEER && !ctx->cfg.peers_vote)
        return "mesh peers do not vote";
    /* a reference clock of another node: nobody here can read it or check its numbers */
    if (s->kind == TB_MEASURE_REFCLOCK && !s->by_self)
        return "another node's local reference clock";
    if (!s->known && !s->by_self && s->n_regions < 2)
        return "not configured here and measured in one region only";
    if (!s->by_self && s->n_latest < 2)
        return "measured by one other node only";
    return NULL;
}

static bool votes(const xc_ctx *ctx, const xc_src *s)
{
    return s->has_interval && !s->moved && no_vote(ctx, s) == NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct origins of the voting sources (meeting [lo, hi] when `meeting`); names is scratch
 * with room for every tobs. */
static unsigned origins_of(const xc_ctx *ctx, bool meeting, int64_t lo, int64_t hi,
                           const char **names)
{
    size_t n = 0;
    for (size_t i = 0; i < ctx->n_srcs; i++) {
        const xc_src *s = &ctx->srcs[i];
        if (!votes(ctx, s) || (meeting && !(s->lo <= hi && lo <= s->hi)))
            continue;
        for (size_t j = 0; j < s->n_latest; j++)
            names[n++] = s->latest[j]->o->origin;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    unsigned k = 0;
    for (size_t i = 0; i < n; i++)
        k += i == 0 || strcmp(names[i - 1], names[i]) != 0;
    return k;
}

static bool meets(const xc_src *s, int64_t lo, int64_t hi)
{
    return s->has_interval && s->lo <= hi && lo <= s->hi;
}

/* Lowest and highest points covered by at least m intervals; false when there are none. */
static bool sweep(const edge *e, size_t n, unsigned m, int64_t *lo, int64_t *hi)
{
    unsigned c = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (e[i].d > 0) {
            c++;
            if (c >= m && !found) {
                *lo = e[i].x;
                found = true;
            }
        } else {
            if (c >= m)
                *hi = e[i].x;
            c--;
        }
    }
    return found;
}

/* For f = 0, 1, ... falsetickers, the first m = n − f that leaves a non-empty interval covered
 * by m sources, while m is a majority and at least min_agree. */
void tb_xc_agree(xc_ctx *ctx)
{
    tb_xc_estimate *e = &ctx->out->estimate;
    edge *edges = calloc(2 * ctx->n_srcs + 1, sizeof(*edges));
    size_t n = 0;
    for (size_t i = 0; edges && i < ctx->n_srcs; i++)
        if (votes(ctx, &ctx->srcs[i])) {
            edges[2 * n] = (edge){ctx->srcs[i].lo, +1};
            edges[2 * n + 1] = (edge){ctx->srcs[i].hi, -1};
            n++;
        }
    e->n_voting = (unsigned)n;
    const char **names = calloc(ctx->n_tobs + 1, sizeof(*names));
    if (edges == NULL || names == NULL) {
        free(edges);
        free(names);
        return;
    }
    qsort(edges, 2 * n, sizeof(*edges), cmp_edge);
    /* No agreement may rest on one node's measurements alone, however many sources it reports */
    unsigned all = origins_of(ctx, false, 0, 0, names), need = all < 2 ? all : 2;
    for (unsigned m = (unsigned)n; m >= ctx->cfg.min_agree && 2 * m > n; m--) {
        if (sweep(edges, 2 * n, m, &e->lo_ns, &e->hi_ns)) {
            e->n_origins = origins_of(ctx, true, e->lo_ns, e->hi_ns, names);
            if (e->n_origins >= need) {
                e->valid = true;
                break;
            }
        }
    }
    free(edges);
    free(names);
    if (!e->valid)
        return;
    for (size_t i = 0; i < ctx->n_srcs; i++)
        e->n_agree += votes(ctx, &ctx->srcs[i]) && meets(&ctx->srcs[i], e->lo_ns, e->hi_ns);
    e->uncert_ns = tb_sat_sub(e->hi_ns, e->lo_ns) / 2;
    e->offset_ns = tb_sat_add(e->lo_ns, e->uncert_ns);
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static void add_ref(tb_xc_verdict *v, const xc_tobs *t)
{
    if (t == NULL || v->n_refs >= TB_XC_MAX_REFS)
        return;
    tb_xc_ref *r = &v->refs[v->n_refs++];
    snprintf(r->origin, sizeof(r->origin), "%s", t->o->origin);
    r->seq = t->o->seq;
    r->obs = t->idx;
}

static void judge_inconsistent(const xc_src *s, tb_xc_verdict *v)
{
    const xc_tobs *a = s->bad_a, *b = s->bad_b;
    v->verdict = TB_XC_INCONSISTENT;
    if (s->cross_region)
        snprintf(v->reason, sizeof(v->reason),
                 "%s (region %s) sees [%.3f, %.3f] ms, %s (region %s) sees [%.3f, %.3f] ms: "
                 "disjoint",
                 a->o->origin, a->peer->region, ms(a->lo), ms(a->hi), b->o->origin, b->peer->region,
                 ms(b->lo), ms(b->hi));
    else
        snprintf(v->reason, sizeof(v->reason),
                 "%s and %s, both in region %s, see disjoint [%.3f, %.3f] and [%.3f, %.3f] ms",
                 a->o->origin, b->o->origin, a->peer->region, ms(a->lo), ms(a->hi), ms(b->lo),
                 ms(b->hi));
    add_ref(v, a);
    add_ref(v, b);
}

static void judge_against_agreement(const xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v)
{
    const tb_xc_estimate *e = &ctx->out->estimate;
    for (size_t i = 0; i < s->n_latest; i++)
        add_ref(v, s->latest[i]);
    if (!e->valid) {
        v->verdict = TB_XC_INSUFFICIENT;
        snprintf(v->reason, sizeof(v->reason),
                 "no agreement among %u consistent sources with fresh data "
                 "(need %u agreeing and a majority)",
                 e->n_voting, ctx->cfg.min_agree);
        return;
    }
    bool ok = meets(s, e->lo_ns, e->hi_ns);
    const char *nv = no_vote(ctx, s);
    v->verdict = ok ? TB_XC_OK : TB_XC_FALSETICKER;
    snprintf(v->reason, sizeof(v->reason),
             "[%.3f, %.3f] ms from %u node(s) in %u region(s) %s the agreement [%.3f, %.3f] ms of "
             "%u of %u sources%s%s%s",
             ms(s->lo), ms(s->hi), s->n_latest > 0 ? (unsigned)s->n_latest : 0, s->n_regions,
             ok ? "meets" : "lies outside", ms(e->lo_ns), ms(e->hi_ns), e->n_agree, e->n_voting,
             nv ? " (not voting: " : "", nv ? nv : "", nv ? ")" : "");
}

/* The source says so itself, to every node with fresh data: it is not judged against the
 * agreement (its numbers mean nothing) and never votes. */
static void judge_unsync(const xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v)
{
    const tb_xc_obs *o = s->unsync->o;
    v->verdict = TB_XC_UNSYNCHRONISED;
    v->has_interval = false;
    if (o->kind == TB_MEASURE_NTP)
        snprintf(v->reason, sizeof(v->reason),
                 "says it is unsynchronised to %u node(s) (newest from %s: leap %u, stratum %u)",
                 s->n_unsync, o->origin, o->leap, o->stratum);
    else if (o->rt_radi_ns >= TB_RT_UNSYNCED_RADI_NS)
        snprintf(v->reason, sizeof(v->reason),
                 "says it is unsynchronised to %u node(s) (newest from %s: RADI 0xffffffff)",
                 s->n_unsync, o->origin);
    else
        snprintf(v->reason, sizeof(v->reason),
                 "says it is unsynchronised to %u node(s) (newest from %s: radius %.3f s above "
                 "%.3f s)",
                 s->n_unsync, o->origin, (double)o->rt_radi_ns / 1e9,
                 (double)ctx->cfg.max_radius_ns / 1e9);
    add_ref(v, s->unsync);
}

/* An inconsistent source whose every fresh interval misses the agreement on the same side is a
 * falseticker wherever it is seen from: the nodes differ on how far off it is, not on whether
 * (a drifter predicted by each node's own regression, a step not yet seen by every node).
 * Calling it inconsistent one run and falseticker the next flipped verdicts (sim/time.c). */
static bool off_one_side(const xc_ctx *ctx, const xc_src *s, bool *above)
{
    const tb_xc_estimate *e = &ctx->out->estimate;
    if (!e->valid || s->n_latest < 2)
        return false;
    size_t n_above = 0, n_below = 0;
    for (size_t i = 0; i < s->n_latest; i++) {
        n_above += s->latest[i]->lo > e->hi_ns;
        n_below += s->latest[i]->hi < e->lo_ns;
    }
    *above = n_above == s->n_latest;
    return *above || n_below == s->n_latest;
}

static void judge_off_one_side(const xc_ctx *ctx, const xc_src *s, bool above, tb_xc_verdict *v)
{
    const tb_xc_estimate *e = &ctx->out->estimate;
    v->verdict = TB_XC_FALSETICKER;
    snprintf(v->reason, sizeof(v->reason),
             "every one of %u node(s) in %u region(s) sees it %s the agreement [%.3f, %.3f] ms of "
             "%u of %u sources (they differ on how far: %s sees [%.3f, %.3f] ms, %s [%.3f, %.3f] "
             "ms)",
             (unsigned)s->n_latest, s->n_regions, above ? "above" : "below", ms(e->lo_ns),
             ms(e->hi_ns), e->n_agree, e->n_voting, s->bad_a->o->origin, ms(s->bad_a->lo),
             ms(s->bad_a->hi), s->bad_b->o->origin, ms(s->bad_b->lo), ms(s->bad_b->hi));
    for (size_t i = 0; i < s->n_latest; i++)
        add_ref(v, s->latest[i]);
}

/* Moved against its own history on several nodes (moved.c): a falseticker whatever its
 * intervals say, so that a source moving away is one verdict change, not a flip between
 * falseticker and inconsistent while the nodes' intervals catch up. */
static void judge_moved(const xc_src *s, tb_xc_verdict *v)
{
    const xc_tobs *a = s->moved_least, *b = s->moved_most;
    v->verdict = TB_XC_FALSETICKER;
    snprintf(v->reason, sizeof(v->reason),
             "moved %s against its own history, relative to the other sources of %u node(s) in "
             "%u region(s) (%u contradict): %s sees %+.3f ms (tolerance %.3f), %s %+.3f ms "
             "(tolerance %.3f)",
             s->moved > 0 ? "up" : "down", s->moved_nodes, s->moved_regions, s->moved_against,
             a->o->origin, ms(a->o->move_dev_ns), ms(a->o->move_tol_ns), b->o->origin,
             ms(b->o->move_dev_ns), ms(b->o->move_tol_ns));
    add_ref(v, a);
    add_ref(v, b);
    for (size_t i = 0; i < s->n_latest; i++)
        if (s->latest[i] != a && s->latest[i] != b)
            add_ref(v, s->latest[i]);
}

static void judge_one(xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v)
{
    bool above = false;
    v->kind = s->kind;
    snprintf(v->source, sizeof(v->source), "%s", s->name);
    v->n_nodes = (unsigned)s->n_latest;
    v->n_regions = s->n_regions;
    v->has_interval = s->has_interval;
    v->lo_ns = s->lo;
    v->hi_ns = s->hi;
    if (s->n_latest == 0 && s->unsync != NULL) {
        judge_unsync(ctx, s, v);
    } else if (tb_xc_warming(ctx, s, v)) {
        for (size_t i = 0; i < s->n_latest; i++)
            add_ref(v, s->latest[i]);
    } else if (s->n_latest == 0) {
        v->verdict = TB_XC_UNREACHABLE;
        snprintf(v->reason, sizeof(v->reason),
                 "no measurement from any node in the last %.0f s (or %d of its intervals)%s",
                 (double)ctx->cfg.window_ns / 1e9, TB_XC_LIVE_INTERVALS,
                 s->last_seen ? " (newest cited)" : "");
        add_ref(v, s->last_seen);
    } else if (s->moved) {
        judge_moved(s, v);
    } else if (s->bad_a != NULL && off_one_side(ctx, s, &above)) {
        judge_off_one_side(ctx, s, above, v);
    } else if (s->bad_a != NULL) {
        judge_inconsistent(s, v);
    } else {
        judge_against_agreement(ctx, s, v);
    }
}

int tb_xc_judge(xc_ctx *ctx)
{
    tb_xc_result *out = ctx->out;
    out->verdicts = calloc(ctx->n_srcs ? ctx->n_srcs : 1, sizeof(*out->verdicts));
    if (out->verdicts == NULL)
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < ctx->n_srcs; i++)
        judge_one(ctx, &ctx->srcs[i], &out->verdicts[i]);
    out->n_verdicts = ctx->n_srcs;
    return 0;
}
