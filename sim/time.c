/* The time simulator: see sim/time.h. Virtual time is the true time in ns from the start;
 * every node's clock reads T0 + true time + its own error. */
#include "sim/time.h"
#include "sim/time_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bytes.h"
#include "common/rand.h"
#include "crosscheck/hold.h"
#include "crosscheck/window.h"
#include "measure/replay.h"
#include "node/tk_logic.h"
#include "ntp/client.h"
#include "ntp/packet.h"
#include "sim/sim.h"
#include "sources/ntp_driver.h"

/* --- randomness, clocks, network --- */

int64_t tb_simtime_uniform(run *r, int64_t half)
{
    if (half <= 0)
        return 0;
    return (int64_t)tb_sim_rand_below(r->sim, (uint64_t)(2 * half + 1)) - half;
}

int64_t tb_simtime_now(const run *r)
{
    return (int64_t)tb_sim_now(r->sim);
}

/* The node's clock at true time t (reads are in event order, so t never goes back). */
static int64_t clk_read(run *r, clk *c, int64_t t)
{
    while (t - c->t_last >= WANDER_STEP) {
        c->off_last += (int64_t)(c->freq_ppb * (double)WANDER_STEP / 1e9);
        c->freq_ppb += (double)tb_simtime_uniform(r, r->s->clock_wander_ppb);
        c->t_last += WANDER_STEP;
    }
    return T0 + t + c->off_last + (int64_t)(c->freq_ppb * (double)(t - c->t_last) / 1e9);
}

int64_t tb_simtime_local(run *r, node *n)
{
    return clk_read(r, &n->clock, tb_simtime_now(r));
}

/* One-way delay between two regions without jitter: fixed per pair, from a hash. */
int64_t tb_simtime_path_ns(const run *r, unsigned a, unsigned b)
{
    if (a == b)
        return r->s->delay_local_ns;
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    uint64_t z = tb_rand_mix((lo << 32 | hi) ^ r->s->seed);
    uint64_t span = (uint64_t)(r->s->delay_max_ns - r->s->delay_min_ns);
    return r->s->delay_min_ns + (int64_t)(span ? z % (span + 1) : 0);
}

int64_t tb_simtime_jitter(run *r)
{
    return r->s->jitter_ns > 0 ? (int64_t)tb_sim_rand_below(r->sim, (uint64_t)r->s->jitter_ns + 1)
                               : 0;
}

bool tb_simtime_lost(run *r)
{
    return r->s->loss > 0 && tb_sim_rand_unit(r->sim) < r->s->loss;
}

/* A reliable message: never lost, each lost transmission costs a retransmission timeout. */
static int64_t reliable_ns(run *r, unsigned a, unsigned b)
{
    int64_t d = tb_simtime_path_ns(r, a, b) + tb_simtime_jitter(r);
    for (int k = 0; k < 8 && tb_simtime_lost(r); k++)
        d += RTO_NS;
    return d;
}

/* --- virtual NTP servers --- */

/* The source's clock minus true time at true time t, as the server answers `a`. */
static int64_t server_off(run *r, const assoc *a, int64_t t)
{
    const tb_simtime_source *src = &r->srcs[a->src];
    int64_t off = tb_simtime_uniform(r, SERVER_NOISE);
    if (t >= src->at_ns) {
        if (src->behaviour == TB_SIMTIME_STEP)
            off += src->value;
        else if (src->behaviour == TB_SIMTIME_RAMP || src->behaviour == TB_SIMTIME_DRIFT)
            off += (int64_t)((double)(t - src->at_ns) * (double)src->value / 1e9);
    }
    if (a->lies && t >= r->s->attack_at_ns)
        off += r->s->attack_offset_ns;
    return off;
}

static uint32_t ns_to_short(int64_t ns)
{
    return (uint32_t)((ns << 16) / SEC);
}

typedef struct reply {
    assoc *a;
    uint8_t pkt[TB_NTP_HEADER_LEN];
} reply;

static void on_reply(tb_sim *sim, void *ctx, void *arg);
static void on_poll(tb_sim *sim, void *ctx, void *arg);

/* The server's answer to req, received at true time t2. */
static void answer(run *r, const assoc *a, const uint8_t *req, int64_t t2, uint8_t *out)
{
    const tb_simtime_source *src = &r->srcs[a->src];
    int64_t s2 = T0 + t2 + server_off(r, a, t2);
    int64_t s3 = s2 + SERVER_PROC;
    tb_ntp_packet p = {.leap = 0,
                       .version = 4,
                       .mode = TB_NTP_MODE_SERVER,
                       .stratum = 2,
                       .poll = 6,
                       .precision = -20,
                       .root_delay = ns_to_short(r->s->server_root_ns / 2),
                       .root_dispersion = ns_to_short(r->s->server_root_ns / 2),
                       .refid = 0xc0000201u,
                       .reference_ts = tb_ntp_ts_from_unix_ns(s3 - 16 * SEC),
                       .origin_ts = tb_get_be64(req + 40),
                       .receive_ts = tb_ntp_ts_from_unix_ns(s2),
                       .transmit_ts = tb_ntp_ts_from_unix_ns(s3)};
    if (src->behaviour == TB_SIMTIME_UNSYNC) {
        p.leap = TB_NTP_LEAP_UNSYNC;
        p.stratum = 16;
    } else if (src->behaviour == TB_SIMTIME_KOD) {
        p.leap = TB_NTP_LEAP_UNSYNC;
        p.stratum = 0;
        p.refid = 0x44454e59u; /* "DENY" */
    }
    tb_ntp_packet_write(&p, out);
}

void tb_simtime_sched(run *r, uint64_t when, tb_sim_fn fn, void *arg, tb_sim_drop_fn drop)
{
    if (tb_sim_at(r->sim, when, fn, r, arg, drop) != TB_OK) {
        r->failed = TB_ERR_NOMEM;
        if (drop)
            drop(arg);
    }
}

static void poll_at(run *r, assoc *a)
{
    uint64_t next = tb_ntp_client_next_poll(&a->c);
    if (next == UINT64_MAX || next >= (uint64_t)r->s->duration_ns)
        return;
    a->polled = next;
    tb_simtime_sched(r, next, on_poll, a, NULL);
}

static void on_poll(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    assoc *a = arg;
    uint64_t now = tb_sim_now(sim);
    if (a->polled != now)
        return;                                 /* superseded */
    if (tb_ntp_client_next_poll(&a->c) > now) { /* the client backed off (KoD RATE) */
        poll_at(r, a);
        return;
    }
    uint8_t rnd[TB_NTP_POLL_RND_LEN], req[TB_NTP_HEADER_LEN];
    /* One draw per poll, as before the request took 16 random bytes: a second draw would shift
     * every later event of a seed's run. The second half only has to differ from the first. */
    uint64_t x[2] = {tb_sim_rand(sim), 0};
    x[1] = x[0] * 0x9e3779b97f4a7c15ull + 1;
    memcpy(rnd, x, sizeof(rnd));
    int64_t t1 = tb_simtime_local(r, a->n);
    if (tb_ntp_client_poll(&a->c, now, t1, rnd, req) != TB_OK)
        return; /* demobilised */
    r->res->polls++;
    poll_at(r, a);
    const tb_simtime_source *src = &r->srcs[a->src];
    int64_t base = tb_simtime_path_ns(r, a->n->region, src->region);
    int64_t out = base + base * a->asym / 1000000 + tb_simtime_jitter(r);
    int64_t back = base - base * a->asym / 1000000 + tb_simtime_jitter(r);
    if (tb_simtime_lost(r) || tb_simtime_lost(r))
        return;
    reply *rp = malloc(sizeof(*rp));
    if (!rp) {
        r->failed = TB_ERR_NOMEM;
        return;
    }
    rp->a = a;
    answer(r, a, req, (int64_t)now + out, rp->pkt);
    tb_simtime_sched(r, now + (uint64_t)(out + SERVER_PROC + back), on_reply, rp, free);
}

/* --- own measurements: seal and batch --- */

static void on_flush(tb_sim *sim, void *ctx, void *arg);
static void kick(run *r, node *o);

void tb_simtime_publish(run *r, node *n, tb_measurement *m)
{
    if (tb_measure_range_error(m) != NULL)
        return;
    if (n->n_pending == n->cap_pending) {
        size_t cap = n->cap_pending ? 2 * n->cap_pending : 16;
        item *p = realloc(n->pending, cap * sizeof(*p));
        if (!p) {
            r->failed = TB_ERR_NOMEM;
            return;
        }
        n->pending = p;
        n->cap_pending = cap;
    }
    item *it = &n->pending[n->n_pending];
    m->seq = ++n->seq;
    it->seq = m->seq;
    it->body = malloc(TB_MEASURE_BODY_MAX);
    if (!it->body ||
        tb_measure_seal(m, n->sk, it->body, TB_MEASURE_BODY_MAX, &it->len, it->sig) != TB_OK) {
        free(it->body);
        r->failed = TB_ERR_INVAL;
        return;
    }
    n->n_pending++;
    r->res->measurements++;
    if (m->kind == TB_MEASURE_ROUGHTIME)
        tb_simrt_keep(r, n, m->seq, it->body, it->len);
    if (n->observer) { /* as tk_publish: own measurements go into the window at once */
        tb_measure_drop why;
        tb_tk_evidence ev = {0}; /* as obs_verify_add: a Roughtime response verified here */
        if (m->kind == TB_MEASURE_ROUGHTIME && tb_tk_evidence_check(m, &ev) != TB_OK)
            ev = (tb_tk_evidence){0};
        if (tb_measure_replay_check_seq(n->replay, n->name, m->seq, &why) == TB_OK)
            tb_xc_window_add(n->win, m, true, ev.has_rt, ev.midp_ns, ev.radi_ns);
        kick(r, n);
    }
    if (!n->flush_armed) {
        n->flush_armed = true;
        tb_simtime_sched(r, tb_sim_now(r->sim) + BATCH_NS, on_flush, n, NULL);
    }
}

static void on_reply(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    reply *rp = arg;
    assoc *a = rp->a;
    tb_source_meas sm;
    tb_ntp_reject why;
    if (tb_ntp_driver_reply(&a->c, rp->pkt, sizeof(rp->pkt), tb_simtime_local(r, a->n),
                            tb_sim_now(sim), &sm, &why)) {
        tb_measurement m;
        sm.source = &a->id;
        if (tb_tk_measurement_of(&sm, a->n->name, &m) == TB_OK)
            tb_simtime_publish(r, a->n, &m);
    }
    free(rp);
}

/* The evidence flood: a measurement of a real source with 4 KB of made-up evidence. */
static void flood_one(run *r, node *n)
{
    uint8_t junk[FLOOD_EVIDENCE];
    memset(junk, 0x5a, sizeof(junk)); /* not an NTP exchange: bad evidence where it is checked */
    tb_measurement m = {.kind = TB_MEASURE_NTP,
                        .real_ns = tb_simtime_local(r, n),
                        .delay_ns = 10 * MS,
                        .bound_ns = 5 * MS,
                        .stratum = 2,
                        .ev_request = {junk, sizeof(junk)},
                        .ev_response = {junk, sizeof(junk)}};
    snprintf(m.origin, sizeof(m.origin), "%s", n->name);
    snprintf(m.source_name, sizeof(m.source_name), "%s",
             r->srcs[tb_sim_rand_below(r->sim, r->n_known)].name);
    tb_simtime_publish(r, n, &m);
}

static void on_flood(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    node *n = arg;
    for (unsigned k = 0; k < r->s->flood_per_s; k++)
        flood_one(r, n);
    uint64_t next = tb_sim_now(sim) + SEC;
    if ((int64_t)next < r->s->attack_until_ns && (int64_t)next < r->s->duration_ns)
        tb_simtime_sched(r, next, on_flood, n, NULL);
}

/* --- observers: admit, window, cross-check --- */

typedef struct delivery {
    batch *b;
    unsigned to;
    run *r;
} delivery;

static void batch_unref(batch *b)
{
    if (--b->refs > 0)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].body);
    free(b->items);
    free(b);
}

static void drop_delivery(void *arg)
{
    delivery *d = arg;
    batch_unref(d->b);
    free(d);
}

static void on_delivery(tb_sim *sim, void *ctx, void *arg);

static void on_flush(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    node *n = arg;
    (void)sim;
    n->flush_armed = false;
    batch *b = calloc(1, sizeof(*b));
    if (!b) {
        r->failed = TB_ERR_NOMEM;
        return;
    }
    *b = (batch){.from = n->idx, .items = n->pending, .n = n->n_pending, .refs = 1};
    n->pending = NULL;
    n->n_pending = n->cap_pending = 0;
    for (unsigned k = 0; k < r->n_nodes; k++) {
        node *o = &r->nodes[k];
        if (!o->observer || o == n)
            continue;
        delivery *d = malloc(sizeof(*d));
        if (!d) {
            r->failed = TB_ERR_NOMEM;
            break;
        }
        *d = (delivery){b, k, r};
        b->refs++;
        tb_simtime_sched(r, tb_sim_now(r->sim) + (uint64_t)reliable_ns(r, n->region, o->region),
                         on_delivery, d, drop_delivery);
    }
    batch_unref(b);
}

static void on_delivery(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    delivery *d = arg;
    node *o = &r->nodes[d->to];
    const node *from = &r->nodes[d->b->from];
    (void)sim;
    for (size_t i = 0; i < d->b->n; i++) {
        const item *it = &d->b->items[i];
        tb_measurement m;
        tb_measure_drop why = TB_MEASURE_DROP_MALFORMED;
        if (tb_measure_replay_accept(o->replay, from->name, it->seq, it->body, it->len, it->sig,
                                     tb_simtime_local(r, o), &m, &why) != TB_OK) {
            r->res->dropped++;
            r->res->dropped_by[(unsigned)why & 15]++;
            if (tb_tk_drop_discredits(why))
                break; /* as tk_gossip_accept: the rest of a discredited batch is not taken */
            continue;
        }
        r->res->accepted++;
        tb_xc_window_add(o->win, &m, false, o->ev.has_rt, o->ev.midp_ns, o->ev.radi_ns);
    }
    kick(r, o);
    drop_delivery(d);
}

static int lookup(void *arg, const char *origin, tb_measure_origin_key *out)
{
    const node *o = arg;
    const run *r = o->r;
    for (unsigned k = 0; k < r->n_nodes; k++)
        if (strcmp(r->nodes[k].name, origin) == 0) {
            memcpy(out->ed25519_pub, r->nodes[k].pk, TB_MEASURE_PK_LEN);
            out->not_before = 0;
            out->not_after = INT64_C(4000000000);
            return TB_OK;
        }
    return TB_ERR_NOTFOUND;
}

static int evidence(void *arg, const tb_measurement *m)
{
    node *o = arg;
    return tb_tk_evidence_check(m, &o->ev);
}

typedef struct timer_ev {
    node *o;
    uint64_t gen;
} timer_ev;

static void on_xc(tb_sim *sim, void *ctx, void *arg);

static void arm(run *r, node *o, int64_t at)
{
    timer_ev *t = malloc(sizeof(*t));
    if (!t) {
        r->failed = TB_ERR_NOMEM;
        return;
    }
    *t = (timer_ev){o, ++o->timer_gen};
    o->timer_at = at;
    tb_simtime_sched(r, (uint64_t)at, on_xc, t, free);
}

/* New data: as xc_kick, run soon but not more often than min_interval. */
static void kick(run *r, node *o)
{
    double since = (double)(tb_simtime_now(r) - o->last_run) / 1e9;
    int64_t at = tb_simtime_now(r) + (int64_t)(tb_tk_xc_kick_s(r->s->min_interval_ms, since) * 1e9);
    if (o->timer_at != INT64_MAX && o->timer_at <= at)
        return;
    arm(r, o, at);
}

/* The true offset of the observer's clock in the estimate's sign (true − local). */
static int64_t true_offset(run *r, node *o)
{
    return T0 + tb_simtime_now(r) - tb_simtime_local(r, o);
}

static bool is_flag(int v)
{
    return v == TB_XC_FALSETICKER || v == TB_XC_INCONSISTENT;
}

static bool lying_now(const run *r, unsigned k, int64_t t)
{
    const tb_simtime_source *s = &r->srcs[k];
    bool liar = s->behaviour == TB_SIMTIME_STEP || s->behaviour == TB_SIMTIME_RAMP ||
                s->behaviour == TB_SIMTIME_DRIFT;
    return liar && t >= s->at_ns;
}

static bool honest_src(const run *r, unsigned k)
{
    return r->srcs[k].behaviour == TB_SIMTIME_HONEST;
}

int tb_simtime_src_index(const run *r, const char *name)
{
    for (unsigned k = 0; k < r->n_srcs; k++)
        if (strcmp(r->srcs[k].name, name) == 0)
            return (int)k;
    return -1;
}

static void tally_verdict(run *r, node *o, unsigned k, const tb_xc_verdict *v)
{
    tally *t = &o->t[k];
    int64_t now = tb_simtime_now(r);
    int shown = (int)v->verdict;
    if (t->judged && shown != t->shown)
        t->changes++;
    if (r->trace && shown != t->shown)
        fprintf(stderr, "%8.0f s %s %s: %s -> %s (%s)\n", (double)now / 1e9, o->name, v->source,
                t->shown < 0 ? "-" : tb_xc_verdict_name(t->shown), tb_xc_verdict_name(shown),
                v->reason);
    if (shown != TB_XC_WARMING_UP)
        t->judged = true;
    if (lying_now(r, k, now)) {
        if (t->poll_at_lie == 0) {
            for (size_t i = 0; i < o->n_as; i++)
                if (o->as[i].src == k)
                    t->poll_at_lie = tb_ntp_log2_to_ns(o->as[i].c.poll);
            if (r->srcs[k].roughtime)
                t->poll_at_lie = tb_simrt_poll_ns(o, k);
        }
        if (is_flag(shown) && t->first_flag < 0)
            t->first_flag = now;
        if (!is_flag(shown) && t->first_flag >= 0 && is_flag(t->shown))
            t->unflagged++;
    }
    if (honest_src(r, k) && t->judged && shown != TB_XC_OK) {
        t->wrong_runs++;
        t->accused |= is_flag(shown);
    }
    /* an unsynchronised source shown as anything else once judged could count or be judged */
    if (r->srcs[k].behaviour == TB_SIMTIME_UNSYNC && t->judged && shown != TB_XC_UNSYNCHRONISED)
        t->wrong_runs++;
    t->shown = shown;
}

void tb_simtime_finding(run *r, node *o, const char *origin, int kind, const char *source,
                        const char *why)
{
    bool liar =
        r->s->attack != TB_SIMTIME_NO_ATTACK && strcmp(origin, r->nodes[r->s->liar].name) == 0;
    if (liar && !o->named_liar) {
        o->named_liar = true;
        r->res->liar_named++;
        if (r->res->liar_finding < 0)
            r->res->liar_finding = kind;
    } else if (!liar) {
        r->res->honest_member_findings++;
    }
    if (r->trace)
        fprintf(stderr, "%8.0f s %s: finding against %s on %s: %s (%s)\n",
                (double)tb_simtime_now(r) / 1e9, o->name, origin, source, tb_xc_finding_name(kind),
                why);
}

static void tally_run(run *r, node *o, const tb_xc_result *x)
{
    for (size_t i = 0; i < x->n_verdicts; i++) {
        int k = tb_simtime_src_index(r, x->verdicts[i].source);
        if (k >= 0)
            tally_verdict(r, o, (unsigned)k, &x->verdicts[i]);
    }
    for (size_t i = 0; i < x->n_findings; i++) {
        const tb_xc_finding *f = &x->findings[i];
        tb_simtime_finding(r, o, f->origin, (int)f->kind, f->source, f->reason);
    }
    if (tb_simtime_now(r) < 900 * SEC)
        return; /* the consensus error counts once warmed up */
    if (!x->estimate.valid) {
        r->res->no_consensus_runs++;
        return;
    }
    int64_t err = llabs(x->estimate.offset_ns - true_offset(r, o));
    if (err > r->res->consensus_max_err_ns)
        r->res->consensus_max_err_ns = err;
    r->err_sum += (double)err;
    r->res->consensus_runs++;
}

/* The peers as the observer sees them: the PING/PONG offset is the true clock difference off
 * by half the link's asymmetry, known to ± half the round trip. */
static void peers_of(run *r, node *o, tb_xc_peer *xp)
{
    int64_t lo = tb_simtime_local(r, o);
    for (unsigned k = 0; k < r->n_nodes; k++) {
        node *p = &r->nodes[k];
        int64_t one_way = tb_simtime_path_ns(r, o->region, p->region);
        int64_t asym = (int64_t)(r->s->asym * (double)one_way) * ((k + o->idx) % 2 ? 1 : -1);
        xp[k] = (tb_xc_peer){.name = p->name,
                             .region = p->region_name,
                             .offset_ns = p == o ? 0 : tb_simtime_local(r, p) - lo + asym / 2,
                             .uncert_ns = p == o ? 0 : one_way + r->s->jitter_ns,
                             .sampled_ns = lo - 5 * SEC,
                             .self = p == o};
    }
}

static void on_xc(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    timer_ev *te = arg;
    node *o = te->o;
    bool current = te->gen == o->timer_gen;
    free(te);
    if (!current)
        return;
    (void)sim;
    o->timer_at = INT64_MAX;
    o->last_run = tb_simtime_now(r);
    tb_xc_peer xp[TB_SIMTIME_MAX_NODES];
    peers_of(r, o, xp);
    tb_xc_obs *obs = NULL;
    size_t n_obs = 0;
    if (tb_xc_window_inputs(o->win, &obs, &n_obs) != TB_OK) {
        r->failed = TB_ERR_NOMEM;
        return;
    }
    tb_xc_input in = {.peers = xp,
                      .n_peers = r->n_nodes,
                      .obs = obs,
                      .n_obs = n_obs,
                      .known = r->known,
                      .n_known = r->n_known,
                      .now_ns = tb_simtime_local(r, o),
                      .started_ns = o->started_local,
                      .self = o->name,
                      .hold = o->hold};
    tb_xc_result x;
    int rc = tb_tk_xc_step(&r->s->xc, o->hold, &in, &x);
    free(obs);
    if (rc != TB_OK) {
        r->failed = rc;
        return;
    }
    r->res->runs++;
    tb_simrt_violations(r, o, &x);
    tally_run(r, o, &x);
    double next = tb_tk_xc_next_s(&r->s->xc, r->s->min_interval_ms, &x, in.now_ns);
    tb_xc_result_clear(&x);
    arm(r, o, tb_simtime_now(r) + (int64_t)(next * 1e9));
}

/* --- setup --- */

static void add_sources(run *r)
{
    const tb_simtime_scenario *s = r->s;
    for (unsigned k = 0; k < s->n_sources; k++) {
        r->srcs[k] = s->sources[k];
        r->srcs[k].region = k % s->regions;
        r->known[k] = (tb_xc_source){r->srcs[k].roughtime ? TB_MEASURE_ROUGHTIME : TB_MEASURE_NTP,
                                     r->srcs[k].name};
    }
    r->n_srcs = r->n_known = s->n_sources;
    if (s->attack != TB_SIMTIME_TAKEOVER)
        return;
    for (unsigned k = 0; k < TB_SIMTIME_INVENTED; k++) {
        tb_simtime_source *v = &r->srcs[r->n_srcs++];
        memset(v, 0, sizeof(*v));
        snprintf(v->name, sizeof(v->name), "invented-%u.example:123", k + 1);
        v->behaviour = TB_SIMTIME_INVENTED_SRC;
        v->region = r->s->liar / s->per_region;
    }
}

static int add_assoc(run *r, node *n, unsigned k, bool lies)
{
    assoc *a = &n->as[n->n_as++];
    tb_source_config sc;
    tb_ntp_client_config cc;
    tb_source_config_default(&sc, TB_SOURCE_NTP);
    sc.minpoll = r->s->minpoll;
    sc.maxpoll = r->s->maxpoll;
    tb_ntp_driver_client_config(&sc, &cc);
    if (tb_ntp_client_config_check(&cc) != TB_OK)
        return TB_ERR_INVAL;
    a->n = n;
    a->src = k;
    a->lies = lies;
    a->asym =
        (int64_t)(r->s->asym * 1e6) > 0 ? tb_simtime_uniform(r, (int64_t)(r->s->asym * 1e6)) : 0;
    a->id.kind = TB_SOURCE_NTP;
    snprintf(a->id.name, sizeof(a->id.name), "%s", r->srcs[k].name);
    snprintf(a->id.address, sizeof(a->id.address), "192.0.2.%u", k + 1);
    /* nodes start within 10 s of each other, each source a little later than the last */
    uint64_t start = tb_sim_rand_below(r->sim, 10 * SEC) + k * 50 * MS;
    tb_ntp_client_init(&a->c, &cc, start);
    poll_at(r, a);
    return TB_OK;
}

static int add_node(run *r, unsigned i)
{
    const tb_simtime_scenario *s = r->s;
    node *n = &r->nodes[i];
    n->r = r;
    n->idx = i;
    n->region = i / s->per_region;
    snprintf(n->region_name, sizeof(n->region_name), "r%02u", n->region);
    snprintf(n->name, sizeof(n->name), "r%02u-n%u", n->region, i % s->per_region);
    n->clock = (clk){.off_last = tb_simtime_uniform(r, s->clock_offset_ns),
                     .freq_ppb = (double)tb_simtime_uniform(r, s->clock_freq_ppb)};
    uint8_t seed[32] = {0};
    uint64_t x = tb_sim_rand(r->sim);
    memcpy(seed, &x, sizeof(x));
    seed[8] = (uint8_t)i;
    if (tb_measure_key_from_seed(seed, n->sk, n->pk) != TB_OK)
        return TB_ERR_CRYPTO;
    n->timer_at = INT64_MAX;
    n->as = calloc(r->n_srcs, sizeof(*n->as));
    if (!n->as)
        return TB_ERR_NOMEM;
    bool liar = s->attack == TB_SIMTIME_TAKEOVER && i == s->liar;
    for (unsigned k = 0; k < r->n_srcs; k++) {
        bool invented = r->srcs[k].behaviour == TB_SIMTIME_INVENTED_SRC;
        if (invented && !liar)
            continue;
        if (r->srcs[k].roughtime) {
            int rc = tb_simrt_add_assoc(r, n, k);
            if (rc != TB_OK)
                return rc;
            continue;
        }
        bool lies = liar && (invented || strcmp(r->srcs[k].name, s->attack_source) == 0);
        int rc = add_assoc(r, n, k, lies);
        if (rc != TB_OK)
            return rc;
    }
    for (unsigned k = 0; k < MAX_SRC; k++)
        n->t[k] = (tally){.shown = -1, .first_flag = -1};
    return TB_OK;
}

/* Observers: the first node of each region, then the second..., the lying member never. */
static void pick_observers(run *r)
{
    unsigned want = r->s->observers ? r->s->observers : r->n_nodes, got = 0;
    for (unsigned slot = 0; slot < r->s->per_region && got < want; slot++)
        for (unsigned g = 0; g < r->s->regions && got < want; g++) {
            unsigned i = g * r->s->per_region + slot;
            if (r->s->attack != TB_SIMTIME_NO_ATTACK && i == r->s->liar)
                continue;
            r->nodes[i].observer = true;
            got++;
        }
}

static int open_observer(run *r, node *o)
{
    tb_measure_replay_config rc = {.max_origins = 1024,
                                   .lookup = lookup,
                                   .evidence = evidence,
                                   .arg = o,
                                   .limits = tb_tk_limits_default()};
    o->replay = tb_measure_replay_new(&rc);
    o->win = tb_xc_window_new();
    o->hold = tb_xc_hold_new();
    if (!o->replay || !o->win || !o->hold)
        return TB_ERR_NOMEM;
    o->started_local = tb_simtime_local(r, o);
    arm(r, o, 1 * SEC);
    return TB_OK;
}

static void free_nodes(run *r)
{
    for (unsigned i = 0; r->nodes && i < r->n_nodes; i++) {
        node *n = &r->nodes[i];
        for (size_t k = 0; k < n->n_pending; k++)
            free(n->pending[k].body);
        free(n->pending);
        free(n->as);
        tb_simrt_free_node(n);
        tb_measure_replay_free(n->replay);
        tb_xc_window_free(n->win);
        tb_xc_hold_free(n->hold);
    }
    free(r->nodes);
}

/* When a liar is to be flagged by: a step liar within 3 polls of its step; a ramp liar within 3
 * polls of being 1 ms off; a drifter before it is 2 ms off. */
static void judge_liar(const run *r, const tb_simtime_source *src, const tally *t,
                       tb_simtime_source_result *sr)
{
    (void)r;
    double rate = fabs((double)src->value) / 1e9; /* ramp, drift: ns per ns */
    int64_t from = src->at_ns;
    if (src->behaviour == TB_SIMTIME_RAMP && rate > 0)
        from += (int64_t)((double)MS / rate);
    bool flagged = t->first_flag >= 0;
    int64_t took = flagged ? t->first_flag - from : INT64_MAX;
    if (took < 0)
        took = 0;
    double polls = flagged && t->poll_at_lie > 0 ? (double)took / (double)t->poll_at_lie : INFINITY;
    int64_t off = flagged && src->behaviour != TB_SIMTIME_STEP
                      ? (int64_t)((double)(t->first_flag - src->at_ns) * rate)
                      : 0;
    sr->flagged += flagged;
    if (src->behaviour == TB_SIMTIME_DRIFT)
        sr->late += !flagged || off > 2 * MS;
    else
        sr->late += !(polls <= 3.0);
    if (took > sr->max_flag_ns)
        sr->max_flag_ns = took;
    if (polls > sr->max_flag_polls)
        sr->max_flag_polls = polls;
    if (off > sr->max_offset_at_flag_ns)
        sr->max_offset_at_flag_ns = off;
}

static void summarise(run *r)
{
    tb_simtime_result *res = r->res;
    res->n_sources = r->n_srcs;
    for (unsigned k = 0; k < r->n_srcs; k++) {
        tb_simtime_source_result *sr = &res->sources[k];
        const tb_simtime_source *src = &r->srcs[k];
        snprintf(sr->name, sizeof(sr->name), "%s", src->name);
        sr->behaviour = src->behaviour;
        sr->roughtime = src->roughtime;
        sr->final_verdict = -1;
        bool liar = lying_now(r, k, r->s->duration_ns);
        for (unsigned i = 0; i < r->n_nodes; i++) {
            const node *o = &r->nodes[i];
            const tally *t = &o->t[k];
            if (!o->observer)
                continue;
            if (sr->final_verdict < 0)
                sr->final_verdict = t->shown;
            sr->observers += t->judged;
            sr->accused += t->accused;
            sr->wrong_runs += t->wrong_runs;
            sr->unflagged += t->unflagged;
            if (t->changes > sr->max_changes)
                sr->max_changes = t->changes;
            if (liar)
                judge_liar(r, src, t, sr);
        }
        if (src->behaviour == TB_SIMTIME_HONEST)
            res->false_accusations += sr->accused;
        if (liar && (src->behaviour != TB_SIMTIME_STEP || llabs(src->value) >= MS))
            res->missed_liars += sr->late;
    }
    res->consensus_mean_err_ns = res->consensus_runs ? r->err_sum / (double)res->consensus_runs : 0;
}

int tb_simtime_run(const tb_simtime_scenario *s, tb_simtime_result *out)
{
    clock_t c0 = clock();
    memset(out, 0, sizeof(*out));
    out->liar_finding = -1;
    run r = {.s = s, .res = out, .trace = getenv("TB_SIM_TIME_TRACE") != NULL};
    unsigned n = s->regions * s->per_region;
    if (n == 0 || n > TB_SIMTIME_MAX_NODES || s->n_sources == 0 ||
        s->n_sources > TB_SIMTIME_MAX_SOURCES || s->regions == 0)
        return TB_ERR_INVAL;
    int rc = tb_sim_new(s->seed, &r.sim);
    if (rc != TB_OK)
        return rc;
    r.nodes = calloc(n, sizeof(*r.nodes));
    r.n_nodes = n;
    rc = r.nodes ? TB_OK : TB_ERR_NOMEM;
    if (rc == TB_OK)
        add_sources(&r);
    if (rc == TB_OK)
        rc = tb_simrt_new(&r);
    for (unsigned i = 0; rc == TB_OK && i < n; i++)
        rc = add_node(&r, i);
    if (rc == TB_OK)
        pick_observers(&r);
    for (unsigned i = 0; rc == TB_OK && i < n; i++)
        if (r.nodes[i].observer) {
            rc = open_observer(&r, &r.nodes[i]);
            out->observers++;
        }
    if (rc == TB_OK && s->attack == TB_SIMTIME_FLOOD)
        tb_simtime_sched(&r, (uint64_t)s->attack_at_ns, on_flood, &r.nodes[s->liar], NULL);
    if (rc == TB_OK) {
        tb_sim_run_until(r.sim, (uint64_t)s->duration_ns);
        rc = r.failed;
    }
    if (rc == TB_OK)
        summarise(&r);
    out->nodes = n;
    out->node_days = (double)n * (double)s->duration_ns / (86400.0 * SEC);
    tb_sim_free(r.sim); /* drops pending events before the nodes they point to */
    free_nodes(&r);
    tb_simrt_free(&r);
    out->cpu_s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    return rc;
}
