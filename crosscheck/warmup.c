/* Warming up (crosscheck.h): a source is not judged until every region whose nodes have sent
 * any measurement (of anything: mesh peers measure each other within seconds, NTP sources take
 * polls) has measured it, or the grace time since the node started has passed. A node that
 * sends nothing holds up nothing. Without this, every
 * source was "unreachable" for the first seconds and could be called a falseticker on the data
 * of the first region to report. */
#include <stdio.h>
#include <string.h>

#include "crosscheck/internal.h"

static bool region_listed(const char *const *regions, size_t n, const char *r)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(regions[i], r) == 0)
            return true;
    return false;
}

void tb_xc_expected_regions(xc_ctx *ctx)
{
    const char *seen[64];
    size_t n = 0;
    for (size_t i = 0; i < ctx->n_tobs && n < sizeof(seen) / sizeof(seen[0]); i++) {
        const xc_tobs *t = &ctx->tobs[i];
        if (!region_listed(seen, n, t->peer->region))
            seen[n++] = t->peer->region;
    }
    ctx->n_expected_regions = (unsigned)n;
}

bool tb_xc_warming(xc_ctx *ctx, const xc_src *s, tb_xc_verdict *v)
{
    const tb_xc_input *in = ctx->in;
    if (in->started_ns == 0 || tb_xc_sat_sub(in->now_ns, in->started_ns) >= ctx->cfg.grace_ns ||
        (s->n_latest > 0 && s->n_regions >= ctx->n_expected_regions))
        return false;
    int64_t ends = tb_xc_sat_add(in->started_ns, ctx->cfg.grace_ns);
    if (ends < ctx->out->next_run_ns)
        ctx->out->next_run_ns = ends; /* the verdict changes then by time alone */
    v->verdict = TB_XC_WARMING_UP;
    snprintf(v->reason, sizeof(v->reason),
             "data from %u of %u region(s) so far; judged when all have reported or %.0f s after "
             "start",
             s->n_regions, ctx->n_expected_regions, (double)ctx->cfg.grace_ns / 1e9);
    return true;
}
