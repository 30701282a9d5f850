/* Roughtime causality across the mesh: a response i surely taken before a response j of the
 * same key must satisfy MIDP_i − RADI_i <= MIDP_j + RADI_j (RFC 10049); two that do not prove
 * the server lied, wherever in the mesh they were taken. "Surely before" counts every
 * uncertainty: i was received (t_i, local frame) before j was requested (t_j − delay_j), with
 * both translations' errors added. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"

static int cmp_rt(const void *a, const void *b)
{
    const xc_tobs *x = *(const xc_tobs *const *)a, *y = *(const xc_tobs *const *)b;
    int c = memcmp(x->o->rt_pubkey, y->o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    if (c != 0)
        return c;
    if (x->t_local != y->t_local)
        return x->t_local < y->t_local ? -1 : 1;
    return 0;
}

static bool surely_before(const xc_tobs *i, const xc_tobs *j)
{
    int64_t i_latest = tb_sat_add(i->t_local, i->uncert);
    int64_t j_sent = tb_sat_sub(tb_sat_sub(j->t_local, j->o->delay_ns), j->uncert);
    return i_latest < j_sent;
}

static bool violates(const tb_xc_obs *i, const tb_xc_obs *j)
{
    return tb_sat_sub(i->rt_midp_ns, i->rt_radi_ns) > tb_sat_add(j->rt_midp_ns, j->rt_radi_ns);
}

static void fill_ref(tb_xc_ref *r, const xc_tobs *t)
{
    memset(r, 0, sizeof(*r));
    size_t n = strlen(t->o->origin);
    memcpy(r->origin, t->o->origin, n < TB_MEASURE_MAX_ORIGIN ? n : TB_MEASURE_MAX_ORIGIN);
    r->seq = t->o->seq;
    r->obs = t->idx;
}

/* Checks one key's responses rt[0..n) (sorted by time); records the first violation. */
static void check_key(xc_ctx *ctx, xc_tobs **rt, size_t n)
{
    tb_xc_result *out = ctx->out;
    if (n > TB_XC_MAX_RT_PER_SERVER) { /* the newest ones */
        rt += n - TB_XC_MAX_RT_PER_SERVER;
        n = TB_XC_MAX_RT_PER_SERVER;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (!surely_before(rt[i], rt[j]) || !violates(rt[i]->o, rt[j]->o))
                continue;
            if (out->n_violations >= TB_XC_MAX_VIOLATIONS)
                return;
            tb_xc_violation *v = &out->violations[out->n_violations++];
            memcpy(v->rt_pubkey, rt[i]->o->rt_pubkey, TB_MEASURE_RT_PK_LEN);
            size_t len = strlen(rt[i]->o->source);
            len = len < TB_MEASURE_MAX_TEXT ? len : TB_MEASURE_MAX_TEXT;
            memcpy(v->source, rt[i]->o->source, len);
            v->source[len] = 0;
            fill_ref(&v->earlier, rt[i]);
            fill_ref(&v->later, rt[j]);
            return;
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
