/* Sources that moved against their own history (crosscheck/sourcestats.h): every interval may
 * still overlap the agreement (an NTP bound is half the round trip, tens of ms across regions),
 * yet the nodes that measured the source since it moved see it moved on one side, relative to
 * everything else each of them measures. A source is "moved" when nodes in at least two regions
 * (or, with one region, two nodes) see it outside their series' tolerance on the same side, and
 * they outnumber the nodes that contradict them: those whose series, learnt before the latest
 * of those movements, measured it since and saw it where it was, and those that see it moved the
 * other way. One member cannot move a source; a spike of one node is outvoted by the next node
 * that measures. A source already inconsistent across regions (disjoint intervals, which one node
 * can cause) is "moved" on one node's word: that only picks falseticker over inconsistent. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"
#include "crosscheck/sourcestats.h"

static bool raw_deviates(const xc_tobs *t, int sign)
{
    const tb_xc_obs *o = t->o;
    if (o->move_state != TB_XC_SS_SUSPECT && o->move_state != TB_XC_SS_MOVED)
        return false;
    return sign > 0 ? o->move_dev_ns > 0 : o->move_dev_ns < 0;
}

/* Whether t's movement is its source's and not its origin's clock: when a node's clock moves,
 * a released sample shows it before the node's other series have a sample that says so, and the
 * correction (their median prediction) lags, so one series after another looks moved. t counts
 * only while fewer than half of its origin's other sources are seen moved the same way. */
static bool confirmed(const xc_ctx *ctx, const xc_tobs *t, int sign)
{
    unsigned others = 0, same = 0;
    for (size_t i = 0; i < ctx->n_srcs; i++) {
        const xc_src *s = &ctx->srcs[i];
        if (s->kind == TB_MEASURE_PEER)
            continue;
        for (size_t j = 0; j < s->n_latest; j++) {
            const xc_tobs *u = s->latest[j];
            if (u == t || strcmp(u->o->origin, t->o->origin) != 0)
                continue;
            others++;
            same += raw_deviates(u, sign);
        }
    }
    return 2 * same < others;
}

static bool deviates(const xc_ctx *ctx, const xc_tobs *t, int sign)
{
    return raw_deviates(t, sign) && confirmed(ctx, t, sign);
}

/* A time of the origin's clock (the series' own) in the local frame, as t's own time is. */
static int64_t local_time(const xc_tobs *t, int64_t origin_ns)
{
    return tb_sat_sub(t->t_local, tb_sat_sub(t->o->real_ns, origin_ns));
}

static unsigned regions_of(const xc_ctx *ctx, const xc_src *s, int sign, const xc_tobs **scratch)
{
    size_t n = 0;
    unsigned k = 0;
    for (size_t i = 0; i < s->n_latest; i++) {
        const xc_tobs *t = s->latest[i];
        if (!deviates(ctx, t, sign))
            continue;
        size_t j = 0;
        while (j < n && strcmp(scratch[j]->peer->region, t->peer->region) != 0)
            j++;
        k += j == n;
        scratch[n++] = t;
    }
    return k;
}

/* Whether settled t saw the source short of the least movement the others report by more than
 * its own tolerance: a drifter's deviation grows, and a node that measured it +0.4 ms off with a
 * tolerance of 1 ms just after another saw +0.95 ms has not seen it stay where it was. */
static bool short_of(const xc_tobs *t, const xc_tobs *least, int sign)
{
    int64_t gap = tb_sat_sub(least->o->move_dev_ns, t->o->move_dev_ns);
    return (sign > 0 ? gap : tb_sat_sub(0, gap)) > t->o->move_tol_ns;
}

/* Whether s moved to the side `sign`; fills its evidence. scratch has room for n_latest. */
static bool moved_to(const xc_ctx *ctx, xc_src *s, int sign, const xc_tobs **scratch)
{
    int64_t onset = INT64_MAX;
    unsigned nodes = 0;
    const xc_tobs *least = NULL, *most = NULL;
    for (size_t i = 0; i < s->n_latest; i++) {
        const xc_tobs *t = s->latest[i];
        if (!deviates(ctx, t, sign))
            continue;
        nodes++;
        int64_t at = local_time(t, t->o->move_since_ns);
        onset = onset == INT64_MAX || at > onset ? at : onset;
        if (!least || tb_sat_abs(t->o->move_dev_ns) < tb_sat_abs(least->o->move_dev_ns))
            least = t;
        if (!most || tb_sat_abs(t->o->move_dev_ns) > tb_sat_abs(most->o->move_dev_ns))
            most = t;
    }
    unsigned regions = regions_of(ctx, s, sign, scratch), against = 0;
    /* a source whose intervals are disjoint already is flagged on one node's word anyway: its
     * movement only says which verdict, so that it does not flip while the others catch up */
    bool lone = s->bad_a != NULL;
    if (!lone && (nodes < 2 || regions < (s->n_regions < 2 ? 1u : 2u)))
        return false;
    for (size_t i = 0; i < s->n_latest; i++) {
        const xc_tobs *t = s->latest[i];
        bool since = t->t_local > onset;
        bool saw_it = t->o->move_state == TB_XC_SS_SETTLED && since &&
                      local_time(t, t->o->move_base_ns) < onset && short_of(t, least, sign);
        against += saw_it || (since && deviates(ctx, t, -sign));
    }
    if (nodes <= against)
        return false;
    s->moved = sign;
    s->moved_nodes = nodes;
    s->moved_regions = regions;
    s->moved_against = against;
    s->moved_least = least;
    s->moved_most = most;
    return true;
}

int tb_xc_find_moved(xc_ctx *ctx)
{
    size_t most = 1;
    for (size_t i = 0; i < ctx->n_srcs; i++)
        most = ctx->srcs[i].n_latest > most ? ctx->srcs[i].n_latest : most;
    const xc_tobs **scratch = calloc(most, sizeof(*scratch));
    if (!scratch)
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < ctx->n_srcs; i++) {
        xc_src *s = &ctx->srcs[i];
        if (s->kind == TB_MEASURE_PEER || s->n_latest < 2)
            continue;
        if (!moved_to(ctx, s, 1, scratch))
            (void)moved_to(ctx, s, -1, scratch);
    }
    free(scratch);
    return 0;
}
