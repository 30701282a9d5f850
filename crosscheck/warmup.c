/* Warming up (crosscheck.h): soon after start, a source is not judged until every region
 * expected to measure it has done so, or the grace time since the node started has passed.
 * A region is expected when one of its nodes is corroborated (some fresh measurement of it
 * overlaps another node's, sources.c; the local node vouches for itself): a member alone in its
 * region whose word nobody shares holds up nothing, else one member could keep every verdict
 * open. A source once judged (the hold remembers, tb_xc_input.hold) never warms up again: a
 * region that appears later must not take verdicts back. Without warming up, every source was
 * "unreachable" for the first seconds and could be called a falseticker on the data of the
 * first region to report. Nor is a source judged before the sources agree (the first few
 * measurements of a fresh node): it would be "insufficient data" for a second, a false alarm and a
 * verdict change (sim/time.c showed it on every start). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/hold.h"
#include "crosscheck/internal.h"

static bool region_listed(const char *const *regions, size_t n, const char *r)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(regions[i], r) == 0)
            return true;
    return false;
}

int tb_xc_expected_regions(xc_ctx *ctx)
{
    const tb_xc_input *in = ctx->in;
    ctx->expected = calloc(in->n_peers + 1, sizeof(*ctx->expected));
    if (ctx->expected == NULL)
        return TB_ERR_NOMEM;
    ctx->n_expected = 0;
    for (size_t i = 0; i < in->n_peers; i++)
        if (ctx->corroborated[i] &&
            !region_listed(ctx->expected, ctx->n_expected, in->peers[i].region))
            ctx->expected[ctx->n_expected++] = in->peers[i].region;
    return 0;
}

/* The first expected region without a fresh measurement of s, or NULL. */
static const char *missing_region(const xc_ctx *ctx, const xc_src *s, unsigned *n_missing)
{
    const char *first = NULL;
    *n_missing = 0;
    for (size_t r = 0; r < ctx->n_expected; r++) {
        size_t i = 0;
        while (i < s->n_latest && strcmp(s->latest[i]->peer->region, ctx->expected[r]) != 0)
            i++;
        if (i < s->n_latest)
            continue;
        ++*n_missing;
        if (first == NULL)
            first = ctx->expected[r];
    }
    return first;
}

bool tb_xc_warming(xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v)
{
    const tb_xc_input *in = ctx->in;
    if (in->started_ns == 0 || tb_sat_sub(in->now_ns, in->started_ns) >= ctx->cfg.grace_ns ||
        tb_xc_hold_judged(in->hold, s->kind, s->name))
        return false;
    unsigned n_missing;
    const char *missing = missing_region(ctx, s, &n_missing);
    bool agreement = ctx->out->estimate.valid || s->bad_a != NULL;
    if (s->n_latest > 0 && missing == NULL && agreement)
        return false;
    int64_t ends = tb_sat_add(in->started_ns, ctx->cfg.grace_ns);
    if (ends < ctx->out->next_run_ns)
        ctx->out->next_run_ns = ends; /* the verdict changes then by time alone */
    v->verdict = TB_XC_WARMING_UP;
    if (s->n_latest > 0 && missing == NULL)
        snprintf(v->reason, sizeof(v->reason),
                 "no agreement among the sources yet; judged when there is one or %.0f s after "
                 "start",
                 (double)ctx->cfg.grace_ns / 1e9);
    else
        snprintf(
            v->reason, sizeof(v->reason),
            "data from %u of %zu expected region(s) so far (%s%s missing); judged when all have "
            "reported or %.0f s after start",
            (unsigned)(ctx->n_expected - n_missing), ctx->n_expected, missing ? missing : "none",
            n_missing > 1 ? " and more" : "", (double)ctx->cfg.grace_ns / 1e9);
    return true;
}
