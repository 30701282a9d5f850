/* The cross-check (adr/0008): translate, keep the newest fresh measurement per (source, node),
 * check each source's intervals against each other, intersect the consistent sources in the
 * manner of Marzullo / NTP's clock select, judge every source against the agreement, and look
 * for Roughtime causality violations. */
#include "crosscheck/crosscheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crosscheck/internal.h"
#include "ntp/client.h"

const char *tb_xc_verdict_name(int v)
{
    switch (v) {
    case TB_XC_OK:
        return "ok";
    case TB_XC_FALSETICKER:
        return "falseticker";
    case TB_XC_INCONSISTENT:
        return "inconsistent across regions";
    case TB_XC_UNREACHABLE:
        return "unreachable";
    case TB_XC_INSUFFICIENT:
        return "insufficient data";
    case TB_XC_WARMING_UP:
        return "warming_up";
    case TB_XC_UNSYNCHRONISED:
        return "unsynchronised";
    }
    return "unknown";
}

const char *tb_xc_verdict_id(int v)
{
    switch (v) {
    case TB_XC_OK:
        return "ok";
    case TB_XC_FALSETICKER:
        return "falseticker";
    case TB_XC_INCONSISTENT:
        return "inconsistent";
    case TB_XC_UNREACHABLE:
        return "unreachable";
    case TB_XC_INSUFFICIENT:
        return "insufficient";
    case TB_XC_WARMING_UP:
        return "warming_up";
    case TB_XC_UNSYNCHRONISED:
        return "unsynchronised";
    }
    return "unknown";
}

const char *tb_xc_finding_name(int k)
{
    return k == TB_XC_MEMBER_UNCORROBORATED ? "member uncorroborated"
           : k == TB_XC_MEMBER_INCONSISTENT ? "member inconsistent"
           : k == TB_XC_MEMBER_CLOCK_OFF    ? "member clock off"
           : k == TB_XC_MEMBER_CONTRADICTED ? "member contradicted"
                                            : "unknown";
}

static void ref_of(tb_xc_ref *r, const xc_tobs *t)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->origin, sizeof(r->origin), "%s", t->o->origin);
    r->seq = t->o->seq;
    r->obs = t->idx;
}

tb_xc_finding *tb_xc_add_finding(xc_ctx *ctx, tb_xc_finding_kind kind, const xc_tobs *t,
                                 const xc_tobs *u)
{
    tb_xc_result *out = ctx->out;
    if (out->findings == NULL || out->n_findings >= TB_XC_MAX_FINDINGS)
        return NULL;
    tb_xc_finding *f = &out->findings[out->n_findings++];
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    snprintf(f->origin, sizeof(f->origin), "%s", t->o->origin);
    f->source_kind = t->o->kind;
    snprintf(f->source, sizeof(f->source), "%s", t->o->source);
    ref_of(&f->refs[f->n_refs++], t);
    if (u)
        ref_of(&f->refs[f->n_refs++], u);
    return f;
}

tb_xc_config tb_xc_config_default(void)
{
    return (tb_xc_config){
        .window_ns = 600 * 1000000000LL,
        .drift_ppb = 50000,
        .drift_floor_ppb = 1000,
        .min_agree = 3,
        .max_radius_ns = 10 * 1000000000LL,
        .max_clock_off_ns = 1000000000LL,
        .hold_runs = 2,
        .grace_ns = 30 * 1000000000LL,
        .peers_vote = false,
    };
}

/* drift · |d|, without overflow: |d| is capped at 10^15 ns (11 days), ppb at 10^6. */
static int64_t drift_term(uint32_t ppb, int64_t d)
{
    int64_t a = tb_sat_abs(d);
    if (a > 1000000000000000LL)
        a = 1000000000000000LL;
    return (a / 1000) * (int64_t)ppb / 1000000;
}

static int cmp_peer(const void *a, const void *b)
{
    return strcmp((*(const tb_xc_peer *const *)a)->name, (*(const tb_xc_peer *const *)b)->name);
}

static const tb_xc_peer *find_peer(const tb_xc_peer *const *sorted, size_t n, const char *name)
{
    tb_xc_peer key = {.name = name};
    const tb_xc_peer *k = &key;
    const tb_xc_peer *const *hit = bsearch(&k, sorted, n, sizeof(*sorted), cmp_peer);
    return hit ? *hit : NULL;
}

/* Whether the series' frequency is known better than the ceiling: only then is the offset
 * predicted by it (a frequency from two samples a second apart is noise). */
static bool predicts(const tb_xc_config *cfg, const tb_xc_obs *o)
{
    return o->has_freq && o->freq_unc_ppb < (int64_t)cfg->drift_ppb;
}

/* How fast the observation's interval widens with age: its series' frequency uncertainty
 * within [floor, ceiling], the ceiling when the series has no trusted frequency. */
static uint32_t age_rate(const tb_xc_config *cfg, const tb_xc_obs *o)
{
    if (!predicts(cfg, o))
        return cfg->drift_ppb;
    uint32_t r = o->freq_unc_ppb > (int64_t)cfg->drift_floor_ppb ? (uint32_t)o->freq_unc_ppb
                                                                 : cfg->drift_floor_ppb;
    return r < cfg->drift_ppb ? r : cfg->drift_ppb; /* a floor above the ceiling yields */
}

/* freq · age in ns, saturating: the offset a series' regression predicts it has gained. */
static int64_t freq_term(int64_t freq_ppb, int64_t age)
{
    double v = (double)freq_ppb * ((double)age / 1e9);
    return v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
}

/* Translates one observation; false when its origin is unknown. */
static bool translate(const tb_xc_config *cfg, const tb_xc_input *in,
                      const tb_xc_peer *const *peers, size_t i, xc_tobs *t)
{
    const tb_xc_obs *o = &in->obs[i];
    const tb_xc_peer *p = find_peer(peers, in->n_peers, o->origin);
    if (p == NULL)
        return false;
    t->o = o;
    t->idx = i;
    t->peer = p;
    t->t_local = tb_sat_sub(o->real_ns, p->offset_ns);
    int64_t age = tb_sat_sub(in->now_ns, t->t_local);
    /* from the future by more than the window counts as stale too: nonsense either way */
    t->live_ns = cfg->window_ns;
    if (o->interval_ns > 0 && o->interval_ns < INT64_MAX / TB_XC_LIVE_INTERVALS &&
        o->interval_ns * TB_XC_LIVE_INTERVALS > t->live_ns)
        t->live_ns = o->interval_ns * TB_XC_LIVE_INTERVALS;
    t->stale = tb_sat_abs(age) > t->live_ns;
    t->off = tb_sat_add(o->offset_ns, p->offset_ns);
    bool predicted = predicts(cfg, o) && age > 0;
    if (predicted)
        t->off = tb_sat_add(t->off, freq_term(o->freq_ppb, age));
    /* the peer offset translates the offset at the time it stands for: when taken, or now
     * when the series' regression predicted it to now */
    int64_t at = predicted ? in->now_ns : t->t_local;
    t->uncert = p->self ? 0
                        : tb_sat_add(p->uncert_ns,
                                     drift_term(cfg->drift_ppb, tb_sat_sub(at, p->sampled_ns)));
    int64_t bound = tb_sat_add(o->bound_ns, t->uncert);
    bound = tb_sat_add(bound, drift_term(age_rate(cfg, o), age));
    t->lo = tb_sat_sub(t->off, bound);
    t->hi = tb_sat_add(t->off, bound);
    t->unsync =
        (o->kind == TB_MEASURE_NTP && tb_ntp_reply_unsynchronised(o->leap, o->stratum)) ||
        (o->kind == TB_MEASURE_ROUGHTIME && o->has_rt && o->rt_radi_ns > cfg->max_radius_ns);
    return true;
}

/* Order: source (kind, name), then origin, then newest first. */
static int cmp_tobs(const void *a, const void *b)
{
    const xc_tobs *x = a, *y = b;
    if (x->o->kind != y->o->kind)
        return x->o->kind < y->o->kind ? -1 : 1;
    int c = strcmp(x->o->source, y->o->source);
    if (c == 0)
        c = strcmp(x->o->origin, y->o->origin);
    if (c != 0)
        return c;
    if (x->o->seq != y->o->seq)
        return x->o->seq > y->o->seq ? -1 : 1;
    return 0;
}

static bool valid_input(const tb_xc_config *cfg, const tb_xc_input *in)
{
    if (cfg->window_ns <= 0 || cfg->grace_ns < 0 || cfg->max_radius_ns < 1000000 ||
        cfg->max_clock_off_ns < 1000000 || cfg->drift_ppb > 1000000 ||
        cfg->drift_floor_ppb > 1000000 || cfg->min_agree < 1)
        return false;
    if ((in->n_peers && !in->peers) || (in->n_obs && !in->obs) || (in->n_known && !in->known))
        return false;
    for (size_t i = 0; i < in->n_peers; i++)
        if (!in->peers[i].name || !in->peers[i].region || in->peers[i].uncert_ns < 0)
            return false;
    for (size_t i = 0; i < in->n_obs; i++)
        if (!in->obs[i].origin || !in->obs[i].source || in->obs[i].bound_ns < 0 ||
            in->obs[i].freq_unc_ppb < 0 || in->obs[i].interval_ns < 0)
            return false;
    for (size_t i = 0; i < in->n_known; i++)
        if (!in->known[i].name)
            return false;
    return true;
}

/* Translates every observation of known origin into ctx->tobs, sorted. */
static int translate_all(xc_ctx *ctx)
{
    const tb_xc_input *in = ctx->in;
    const tb_xc_peer **peers = calloc(in->n_peers ? in->n_peers : 1, sizeof(*peers));
    ctx->tobs = calloc(in->n_obs ? in->n_obs : 1, sizeof(*ctx->tobs));
    if (peers == NULL || ctx->tobs == NULL) {
        free(peers);
        return TB_ERR_NOMEM;
    }
    for (size_t i = 0; i < in->n_peers; i++)
        peers[i] = &in->peers[i];
    qsort(peers, in->n_peers, sizeof(*peers), cmp_peer);
    for (size_t i = 0; i < in->n_obs; i++) {
        if (translate(&ctx->cfg, in, peers, i, &ctx->tobs[ctx->n_tobs]))
            ctx->n_tobs++;
        else
            ctx->out->n_unknown_origin++;
    }
    free(peers);
    qsort(ctx->tobs, ctx->n_tobs, sizeof(*ctx->tobs), cmp_tobs);
    return 0;
}

static void init_result(tb_xc_result *out)
{
    memset(out, 0, sizeof(*out));
    out->next_run_ns = INT64_MAX;
}

int tb_xc_run(const tb_xc_config *cfg, const tb_xc_input *in, tb_xc_result *out)
{
    init_result(out);
    xc_ctx ctx = {.cfg = cfg ? *cfg : tb_xc_config_default(), .in = in, .out = out};
    if (in == NULL || !valid_input(&ctx.cfg, in))
        return TB_ERR_INVAL;
    if (in->n_obs > TB_XC_MAX_OBS || in->n_peers > TB_XC_MAX_PEERS ||
        in->n_known > TB_XC_MAX_SOURCES)
        return TB_ERR_TOO_BIG;
    out->findings = calloc(TB_XC_MAX_FINDINGS, sizeof(*out->findings));
    int rc = out->findings ? translate_all(&ctx) : TB_ERR_NOMEM;
    if (rc == 0)
        rc = tb_xc_causality(&ctx);
    if (rc == 0)
        rc = tb_xc_build_sources(&ctx);
    if (rc == 0)
        rc = tb_xc_expected_regions(&ctx);
    if (rc == 0)
        rc = tb_xc_find_moved(&ctx);
    if (rc == 0) {
        tb_xc_agree(&ctx);
        rc = tb_xc_judge(&ctx);
    }
    tb_xc_ctx_free(&ctx);
    if (rc != 0)
        tb_xc_result_clear(out);
    return rc;
}

void tb_xc_result_clear(tb_xc_result *r)
{
    free(r->verdicts);
    free(r->violations);
    free(r->findings);
    init_result(r);
}

void tb_xc_obs_from_measurement(const tb_measurement *m, tb_xc_obs *o)
{
    memset(o, 0, sizeof(*o));
    o->origin = m->origin;
    o->seq = m->seq;
    o->kind = m->kind;
    o->source = m->source_name;
    o->real_ns = m->real_ns;
    o->offset_ns = m->offset_ns;
    o->delay_ns = m->delay_ns;
    o->bound_ns = m->bound_ns;
    o->leap = m->leap;
    o->stratum = m->stratum;
    if (m->has_rt_pubkey)
        memcpy(o->rt_pubkey, m->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    o->rt_chained = m->has_rand;
}

int tb_xc_exchange_from_measurement(const tb_measurement *m, tb_xc_rt_exchange *x)
{
    if (m->kind != TB_MEASURE_ROUGHTIME || !m->has_rt_pubkey || m->ev_request.len == 0 ||
        m->ev_response.len == 0)
        return TB_ERR_INVAL;
    x->rand = m->has_rand ? m->rand : NULL;
    x->pubkey = m->rt_pubkey;
    x->request = m->ev_request;
    x->response = m->ev_response;
    return 0;
}
