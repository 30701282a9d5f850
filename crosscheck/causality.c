/* Roughtime causality (RFC 10049): a response i taken before a response j of the same key must
 * satisfy MIDP_i − RADI_i <= MIDP_j + RADI_j. Only the server's own signatures may prove that i
 * came first: j's request nonce chained to i's response (the RFC's measurement sequence), which
 * one node builds from its own consecutive responses. Times the members claim prove nothing
 * against the server (a member can re-send a genuine response with any local time and frame
 * it); when one member's own claimed times contradict the server-signed MIDPs without a chain,
 * that is a finding against the member, and its measurements of that server stop counting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"

/* Key, then origin, then the origin's sequence. */
static int cmp_rt(const void *a, const void *b)
{
    const xc_tobs *x = *(const xc_tobs *const *)a, *y = *(const xc_tobs *const *)b;
    int c = memcmp(x->o->rt_pubkey, y->o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    if (c == 0)
        c = strcmp(x->o->origin, y->o->origin);
    if (c != 0)
        return c;
    if (x->o->seq != y->o->seq)
        return x->o->seq < y->o->seq ? -1 : 1;
    return 0;
}

/* By the times the member claims (in its own frame: one clock, no translation error). */
static bool claimed_before(const xc_tobs *i, const xc_tobs *j)
{
    return i->o->real_ns < tb_sat_sub(j->o->real_ns, j->o->delay_ns);
}

static bool violates(const tb_xc_obs *i, const tb_xc_obs *j)
{
    return tb_sat_sub(i->rt_midp_ns, i->rt_radi_ns) > tb_sat_add(j->rt_midp_ns, j->rt_radi_ns);
}

static void fill_ref(tb_xc_ref *r, const xc_tobs *t)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->origin, sizeof(r->origin), "%s", t->o->origin);
    r->seq = t->o->seq;
    r->obs = t->idx;
}

static void add_violation(xc_ctx *ctx, const xc_tobs *e, const xc_tobs *l)
{
    tb_xc_result *out = ctx->out;
    if (out->n_violations >= TB_XC_MAX_VIOLATIONS)
        return;
    tb_xc_violation *v = &out->violations[out->n_violations++];
    memcpy(v->rt_pubkey, e->o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    snprintf(v->source, sizeof(v->source), "%s", e->o->source);
    fill_ref(&v->earlier, e);
    fill_ref(&v->later, l);
}

static void member_inconsistent(xc_ctx *ctx, const xc_tobs *i, const xc_tobs *j)
{
    tb_xc_finding *f = tb_xc_add_finding(ctx, TB_XC_MEMBER_INCONSISTENT, i, j);
    if (f)
        snprintf(f->reason, sizeof(f->reason),
                 "claims seq %llu was taken before seq %llu, yet the server signed MIDP %.3f s "
                 "(±%.3f) and then %.3f s (±%.3f), and no nonce chain shows the order",
                 (unsigned long long)i->o->seq, (unsigned long long)j->o->seq,
                 (double)i->o->rt_midp_ns / 1e9, (double)i->o->rt_radi_ns / 1e9,
                 (double)j->o->rt_midp_ns / 1e9, (double)j->o->rt_radi_ns / 1e9);
}

/* Whether rt[0..n) (one origin, one key, by sequence, no proven step between) holds two
 * responses whose claimed order the server's signed times contradict: then the member's claims
 * are false, and none of its views of the server counts. */
static bool contradicts(xc_ctx *ctx, xc_tobs **rt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j && claimed_before(rt[i], rt[j]) && violates(rt[i]->o, rt[j]->o)) {
                member_inconsistent(ctx, rt[i], rt[j]);
                return true;
            }
    return false;
}

/* One origin's responses of one key, rt[0..n) by sequence. A chained response is checked
 * against the one before it (what its nonce claims to be chained to): the first such violation
 * is reported, and each one splits the sequence, since the server's own step explains pairs
 * across it. Within the pieces, contradictions by claimed times are held against the member
 * (once per member and key; its measurements of the key are then discredited). */
static void check_origin(xc_ctx *ctx, xc_tobs **rt, size_t n)
{
    if (n > TB_XC_MAX_RT_PER_SERVER) { /* the newest ones */
        rt += n - TB_XC_MAX_RT_PER_SERVER;
        n = TB_XC_MAX_RT_PER_SERVER;
    }
    bool reported = false, found = false;
    size_t from = 0;
    for (size_t j = 1; j <= n && !found; j++) {
        bool step = j < n && rt[j]->o->rt_chained && violates(rt[j - 1]->o, rt[j]->o);
        if (step && !reported) {
            add_violation(ctx, rt[j - 1], rt[j]);
            reported = true;
        }
        if (step || j == n) {
            found = contradicts(ctx, rt + from, j - from);
            from = j;
        }
    }
    for (size_t k = 0; k < n && found; k++)
        rt[k]->discredited = true; /* which of its claims is false is unknown */
}

/* One key's responses rt[0..n), sorted by origin and sequence: at most one violation per node
 * (one member's false chain claim must not hide another's true one). */
static void check_key(xc_ctx *ctx, xc_tobs **rt, size_t n)
{
    for (size_t from = 0, to; from < n; from = to) {
        to = from + 1;
        while (to < n && strcmp(rt[from]->o->origin, rt[to]->o->origin) == 0)
            to++;
        check_origin(ctx, rt + from, to - from);
    }
}

int tb_xc_causality(xc_ctx *ctx)
{
    xc_tobs **rt = calloc(ctx->n_tobs ? ctx->n_tobs : 1, sizeof(*rt));
    ctx->out->violations = calloc(TB_XC_MAX_VIOLATIONS, sizeof(*ctx->out->violations));
    if (rt == NULL || ctx->out->violations == NULL) {
        free(rt);
        return TB_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < ctx->n_tobs; i++) /* stale ones too: a proof does not expire */
        if (ctx->tobs[i].o->kind == TB_MEASURE_ROUGHTIME && ctx->tobs[i].o->has_rt)
            rt[n++] = &ctx->tobs[i];
    qsort(rt, n, sizeof(*rt), cmp_rt);
    for (size_t from = 0, to; from < n; from = to) {
        to = from + 1;
        while (to < n &&
               memcmp(rt[from]->o->rt_pubkey, rt[to]->o->rt_pubkey, TB_MEASURE_RT_PK_LEN) == 0)
            to++;
        check_key(ctx, rt + from, to - from);
    }
    free(rt);
    return 0;
}
