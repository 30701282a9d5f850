/* The time simulator's Roughtime side (sim/time_internal.h, sim/time.h): servers that sign real
 * responses, clients that measure them as the source driver does, the framing attack, and the
 * observers' malfeasance reports as the time node writes them. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rand.h"
#include "roughtime/server.h"
#include "roughtime/verify.h"
#include "sim/time_internal.h"
#include "sources/rt_driver.h"

#define RT_MAXERROR_US 100000       /* an honest server's kernel maxerror: RADI ceil(0.6 s) = 1 s */
#define FRAME_EVERY (900 * SEC)     /* the framing member tries a pair this often */
#define FRAME_APART (12 * SEC)      /* its two genuine responses, this far apart */
#define FRAME_BACK (20 * SEC)       /* the second re-sent as taken this much earlier */
#define DELE_SLACK (2 * 86400LL)    /* s: the delegation covers the run and this on both sides */
#define KEPT_MAX (64 * 1024 * 1024) /* bytes of evidence kept for reports over the whole run */

typedef struct server {
    tb_rt_srv *srv;
    uint8_t pk[32];
    int64_t max_lo_ns; /* the highest MIDP − RADI it signed */
    bool violated;     /* it signed a time whose interval ends before max_lo_ns */
} server;

typedef struct kept {
    uint64_t seq;
    uint8_t *body;
    size_t len;
} kept;

typedef struct kept_list {
    kept *v;
    size_t n, cap;
} kept_list;

struct tb_simrt {
    server srv[MAX_SRC];
    kept_list *kept; /* per node, by sequence */
    size_t kept_bytes;
    unsigned frame_round;
};

struct tb_simrt_assoc {
    node *n;
    unsigned src;
    tb_source_id id;
    int poll;
    unsigned streak, failures;
    uint64_t round, round_end; /* the current poll and when it ends (true ns) */
    bool round_done;
    uint8_t prev[TB_RT_RESPONSE_BUF]; /* the last verified response: the next nonce's chain */
    size_t prev_len;
};

/* One exchange in flight: the client's query and what the server answered. */
typedef struct flight {
    tb_simrt_assoc *a; /* NULL: the framing member's own exchange */
    node *n;
    unsigned src;
    uint64_t round;
    tb_rt_query q;
    uint8_t rand[32];
    bool has_rand;
    int64_t sent_local;
    uint8_t resp[TB_RT_RESPONSE_BUF];
    size_t resp_len;
    struct frame *fr;
    int which; /* framing: 0 the first response, 1 the second */
} flight;

/* The framing member's pair: the first response kept until the second arrives. */
typedef struct frame {
    unsigned variant;
    bool have[2];
    tb_rt_query q[2];
    int64_t sent_local[2], t4[2];
    unsigned pending;
} frame;

static void rand_bytes(run *r, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = tb_sim_rand(r->sim);
        memcpy(out + i, &x, n - i < 8 ? n - i : 8);
    }
}

/* --- servers --- */

/* The server's clock minus true time at true time t. */
static int64_t server_off(run *r, unsigned k, int64_t t)
{
    const tb_simtime_source *src = &r->srcs[k];
    int64_t off = tb_simtime_uniform(r, SERVER_NOISE);
    if (src->behaviour == TB_SIMTIME_STEP && t >= src->at_ns)
        off += src->value;
    return off;
}

static void emit(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    flight *f = arg;
    (void)cookie;
    if (len <= sizeof(f->resp)) {
        memcpy(f->resp, resp, len);
        f->resp_len = len;
    }
}

/* Server k answers f's request arriving at true time t: one request, one batch. */
static void serve(run *r, unsigned k, flight *f, int64_t t)
{
    server *sv = &r->rt->srv[k];
    int64_t now = T0 + t + server_off(r, k, t);
    bool unsync = r->srcs[k].behaviour == TB_SIMTIME_UNSYNC;
    uint32_t radius = unsync ? TB_RT_RADI_UNSYNCED : tb_rt_radius_s(1, RT_MAXERROR_US, 0);
    if (tb_rt_srv_submit(sv->srv, f->q.request, f->q.request_len, 0) != TB_OK ||
        tb_rt_srv_flush(sv->srv, now, radius, emit, f) != 1) {
        r->failed = TB_ERR_INVAL;
        return;
    }
    if (unsync)
        return;
    /* MIDP is rounded to the second: ±1 s of slack beside the radius */
    int64_t lo = now - (int64_t)radius * SEC - SEC, hi = now + (int64_t)radius * SEC + SEC;
    if (hi < sv->max_lo_ns)
        sv->violated = true;
    if (lo > sv->max_lo_ns)
        sv->max_lo_ns = lo;
}

/* Keys from the seed: the long-term key and an online key delegated for the whole run. */
static int server_new(run *r, unsigned k, server *sv)
{
    uint8_t seed[32], lt_pk[32], lt_sk[64], on_pk[32], on_sk[64];
    uint64_t x = tb_rand_mix(r->s->seed ^ (0x5254000000000000ULL + k));
    memset(seed, 0, sizeof(seed));
    memcpy(seed, &x, sizeof(x));
    seed[31] = 1;
    crypto_sign_seed_keypair(lt_pk, lt_sk, seed);
    seed[31] = 2;
    crypto_sign_seed_keypair(on_pk, on_sk, seed);
    tb_rt_srv_config cfg;
    tb_rt_srv_config_default(&cfg);
    cfg.max_batch = 1;
    cfg.queue_cap = 1;
    cfg.has_delegation = 1;
    int64_t t0 = T0 / SEC;
    int rc = tb_rt_delegation_make(lt_sk, on_sk, t0 - DELE_SLACK,
                                   t0 + r->s->duration_ns / SEC + DELE_SLACK, &cfg.delegation);
    if (rc == TB_OK)
        rc = tb_rt_srv_new(&cfg, NULL, T0, &sv->srv);
    sodium_memzero(lt_sk, sizeof(lt_sk));
    sodium_memzero(on_sk, sizeof(on_sk));
    sodium_memzero(&cfg, sizeof(cfg));
    memcpy(sv->pk, lt_pk, sizeof(sv->pk));
    sv->max_lo_ns = INT64_MIN;
    return rc;
}

/* --- clients: the source driver's rules on virtual time --- */

static void on_reply(tb_sim *sim, void *ctx, void *arg);
static void on_poll(tb_sim *sim, void *ctx, void *arg);

/* Sends f's query from node f->n, the reply to on_reply (drop frees f if the run ends first);
 * false when a leg was lost (f is then the caller's). */
static bool exchange(run *r, flight *f, tb_sim_drop_fn drop)
{
    int64_t now = tb_simtime_now(r);
    int64_t base = tb_simtime_path_ns(r, f->n->region, r->srcs[f->src].region);
    int64_t out = base + tb_simtime_jitter(r), back = base + tb_simtime_jitter(r);
    if (tb_simtime_lost(r) || tb_simtime_lost(r))
        return false;
    serve(r, f->src, f, now + out);
    tb_simtime_sched(r, (uint64_t)(now + out + back), on_reply, f, drop);
    return true;
}

static flight *query(run *r, node *n, unsigned k, const uint8_t *prev, size_t prev_len)
{
    flight *f = calloc(1, sizeof(*f));
    if (!f) {
        r->failed = TB_ERR_NOMEM;
        return NULL;
    }
    uint8_t nonce[32];
    f->n = n;
    f->src = k;
    f->has_rand = prev_len > 0;
    if (f->has_rand) {
        rand_bytes(r, f->rand, sizeof(f->rand));
        tb_rt_chain_nonce(prev, prev_len, f->rand, nonce, sizeof(nonce));
    } else {
        rand_bytes(r, nonce, sizeof(nonce));
    }
    f->sent_local = tb_simtime_local(r, n);
    if (tb_rt_query_init(&f->q, r->rt->srv[k].pk, tb_rt_driver_versions, TB_RT_DRIVER_NVERSIONS,
                         nonce, f->sent_local) != TB_OK) {
        free(f);
        r->failed = TB_ERR_INVAL;
        return NULL;
    }
    return f;
}

static void on_retry(tb_sim *sim, void *ctx, void *arg);

/* One attempt of the association's current poll; a lost one is retried after the RFC's
 * backoff while the poll lasts. */
static void attempt(run *r, tb_simrt_assoc *a)
{
    flight *f = query(r, a->n, a->src, a->prev, a->prev_len);
    if (!f)
        return;
    f->a = a;
    f->round = a->round;
    r->res->polls++;
    if (exchange(r, f, free))
        return;
    free(f);
    uint64_t next = (uint64_t)tb_simtime_now(r) +
                    tb_rt_driver_backoff_ns(r->s->minpoll, r->s->maxpoll, a->failures++);
    if (next < a->round_end)
        tb_simtime_sched(r, next, on_retry, a, NULL);
}

static void on_retry(tb_sim *sim, void *ctx, void *arg)
{
    tb_simrt_assoc *a = arg;
    (void)sim;
    if (!a->round_done)
        attempt(ctx, a);
}

static void on_poll(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    tb_simrt_assoc *a = arg;
    a->round++;
    a->round_done = false;
    a->round_end = tb_sim_now(sim) + tb_ntp_log2_to_ns(a->poll);
    if (a->round_end < (uint64_t)r->s->duration_ns)
        tb_simtime_sched(r, a->round_end, on_poll, a, NULL);
    attempt(r, a);
}

/* Verifies f's response as the driver does: valid (*unsynced: RADI 0xffffffff, authentic) or
 * rejected (counted). */
static bool verified(run *r, flight *f, int64_t t4, bool *unsynced)
{
    tb_rt_reason why = TB_RT_OK;
    int rc = tb_rt_verify(&f->q, f->resp, f->resp_len, t4, &why);
    *unsynced = rc != TB_OK && why == TB_RT_UNSYNCED;
    if (rc != TB_OK && !*unsynced) {
        r->res->rt_rejected++;
        return false;
    }
    return true;
}

static void publish_rt(run *r, node *n, const tb_source_id *id, const tb_rt_query *q,
                       int64_t sent_local, int64_t t4, const uint8_t *rand, bool unsynced,
                       int64_t shift)
{
    tb_source_meas sm = {
        .source = id, .mono_ns = (uint64_t)tb_simtime_now(r), .real_ns = t4, .rand = rand};
    tb_rt_driver_result(q, sent_local, t4 - sent_local, unsynced, &sm);
    tb_measurement m;
    if (tb_tk_measurement_of(&sm, n->name, &m) != TB_OK) {
        r->failed = TB_ERR_INVAL;
        return;
    }
    /* framing: the claimed local time moved, the offset claim with it so the evidence holds */
    m.real_ns -= shift;
    if (!unsynced)
        m.offset_ns += shift;
    tb_simtime_publish(r, n, &m);
}

static void frame_reply(run *r, flight *f, int64_t t4);

static void on_reply(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    flight *f = arg;
    tb_simrt_assoc *a = f->a;
    int64_t t4 = tb_simtime_local(r, f->n);
    bool unsynced;
    (void)sim;
    if (!a) {
        frame_reply(r, f, t4);
    } else if (f->round == a->round && !a->round_done && verified(r, f, t4, &unsynced)) {
        a->round_done = true;
        a->failures = 0;
        a->poll = tb_rt_driver_poll_after(a->poll, r->s->maxpoll, unsynced, &a->streak);
        memcpy(a->prev, f->resp, f->resp_len);
        a->prev_len = f->resp_len;
        publish_rt(r, f->n, &a->id, &f->q, f->sent_local, t4, f->has_rand ? f->rand : NULL,
                   unsynced, 0);
    }
    free(f);
}

/* --- the framing member --- */

/* Both responses in: variant 0 publishes the first, then the second as taken 20 s earlier;
 * variant 1 the second (as taken 20 s earlier) first, then the first claiming a nonce chain to
 * it that does not exist. Either way the claimed times say the server went back in time. */
static void frame_publish(run *r, node *n, unsigned k, frame *fr)
{
    tb_source_id id = {.kind = TB_SOURCE_ROUGHTIME, .has_public_key = true};
    snprintf(id.name, sizeof(id.name), "%s", r->srcs[k].name);
    snprintf(id.address, sizeof(id.address), "192.0.2.%u", k + 1);
    memcpy(id.public_key, r->rt->srv[k].pk, sizeof(id.public_key));
    uint8_t fake[32];
    rand_bytes(r, fake, sizeof(fake));
    if (fr->variant == 0) {
        publish_rt(r, n, &id, &fr->q[0], fr->sent_local[0], fr->t4[0], NULL, false, 0);
        publish_rt(r, n, &id, &fr->q[1], fr->sent_local[1], fr->t4[1], NULL, false, FRAME_BACK);
    } else {
        publish_rt(r, n, &id, &fr->q[1], fr->sent_local[1], fr->t4[1], NULL, false, FRAME_BACK);
        publish_rt(r, n, &id, &fr->q[0], fr->sent_local[0], fr->t4[0], fake, false, 0);
    }
    r->res->frames++;
}

static void frame_reply(run *r, flight *f, int64_t t4)
{
    frame *fr = f->fr;
    bool unsynced = false;
    if (verified(r, f, t4, &unsynced) && !unsynced) {
        fr->q[f->which] = f->q;
        fr->sent_local[f->which] = f->sent_local;
        fr->t4[f->which] = t4;
        fr->have[f->which] = true;
    }
    if (f->which == 1 && fr->have[0] && fr->have[1])
        frame_publish(r, f->n, f->src, fr);
    if (--fr->pending == 0)
        free(fr);
}

typedef struct frame_step {
    frame *fr;
    int which;
} frame_step;

static void drop_frame_step(void *arg)
{
    frame_step *st = arg;
    if (--st->fr->pending == 0)
        free(st->fr);
    free(st);
}

static void frame_drop_flight(void *arg)
{
    flight *f = arg;
    if (f->fr && --f->fr->pending == 0)
        free(f->fr);
    free(f);
}

static void on_frame_query(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    frame_step *st = arg;
    node *n = &r->nodes[r->s->liar];
    int k = tb_simtime_src_index(r, r->s->attack_source);
    (void)sim;
    flight *f = k >= 0 ? query(r, n, (unsigned)k, NULL, 0) : NULL; /* fresh nonces */
    if (!f) {
        drop_frame_step(st);
        return;
    }
    f->fr = st->fr;
    f->which = st->which;
    free(st);
    if (!exchange(r, f, frame_drop_flight))
        frame_drop_flight(f); /* this pair is lost: no retry */
}

static void on_frame(tb_sim *sim, void *ctx, void *arg)
{
    run *r = ctx;
    (void)arg;
    frame *fr = calloc(1, sizeof(*fr));
    frame_step *st[2] = {malloc(sizeof(frame_step)), malloc(sizeof(frame_step))};
    if (!fr || !st[0] || !st[1]) {
        free(fr);
        free(st[0]);
        free(st[1]);
        r->failed = TB_ERR_NOMEM;
        return;
    }
    fr->variant = r->rt->frame_round++ % 2;
    fr->pending = 2;
    uint64_t now = tb_sim_now(sim);
    for (int i = 0; i < 2; i++) {
        *st[i] = (frame_step){fr, i};
        tb_simtime_sched(r, now + (uint64_t)(i * FRAME_APART), on_frame_query, st[i],
                         drop_frame_step);
    }
    uint64_t next = now + FRAME_EVERY;
    if ((int64_t)next < r->s->attack_until_ns && (int64_t)next < r->s->duration_ns)
        tb_simtime_sched(r, next, on_frame, NULL, NULL);
}

/* --- the observers' reports --- */

void tb_simrt_keep(run *r, node *n, uint64_t seq, const uint8_t *body, size_t len)
{
    kept_list *l = &r->rt->kept[n->idx];
    if (r->rt->kept_bytes + len > KEPT_MAX)
        return; /* a report then fails as it would on a pruned store */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        kept *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            r->failed = TB_ERR_NOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        r->failed = TB_ERR_NOMEM;
        return;
    }
    memcpy(copy, body, len);
    l->v[l->n++] = (kept){seq, copy, len};
    r->rt->kept_bytes += len;
}

/* The kept measurement ref names, parsed into *m (pointing into the kept body). */
static bool load(run *r, const tb_xc_ref *ref, tb_measurement *m)
{
    for (unsigned i = 0; i < r->n_nodes; i++) {
        if (strcmp(r->nodes[i].name, ref->origin) != 0)
            continue;
        const kept_list *l = &r->rt->kept[i];
        size_t lo = 0, hi = l->n; /* by sequence, ascending */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (l->v[mid].seq < ref->seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < l->n && l->v[lo].seq == ref->seq &&
               tb_measure_parse(l->v[lo].body, l->v[lo].len, m, NULL) == TB_OK;
    }
    return false;
}

static bool reported(const node *o, const uint8_t *pk)
{
    for (size_t i = 0; i < o->n_rt_reported; i++)
        if (memcmp(o->rt_reported[i], pk, TB_MEASURE_RT_PK_LEN) == 0)
            return true;
    return false;
}

/* The report node/tk_report.c writes: the RFC JSON of the two exchanges. */
static void report(run *r, node *o, const tb_xc_violation *v, const tb_measurement *e,
                   const tb_measurement *l)
{
    tb_xc_rt_exchange x[2];
    size_t len;
    char *json = malloc(65536);
    if (!json || tb_xc_exchange_from_measurement(e, &x[0]) != TB_OK ||
        tb_xc_exchange_from_measurement(l, &x[1]) != TB_OK ||
        tb_xc_malfeasance_json(x, 2, json, 65536, &len) != TB_OK) {
        free(json);
        r->failed = TB_ERR_INVAL;
        return;
    }
    free(json);
    memcpy(o->rt_reported[o->n_rt_reported++], v->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    int k = tb_simtime_src_index(r, v->source);
    bool proven = k >= 0 && r->rt->srv[k].violated;
    if (k >= 0)
        r->res->sources[k].malfeasance++;
    if (proven)
        r->res->malfeasance_true++;
    else
        r->res->false_malfeasance++;
    if (r->trace)
        fprintf(stderr, "%8.0f s %s: malfeasance report against %s (%s)\n",
                (double)tb_simtime_now(r) / 1e9, o->name, v->source,
                proven ? "it did sign contradicting times" : "FALSE: it never did");
}

void tb_simrt_violations(run *r, node *o, const tb_xc_result *x)
{
    for (size_t i = 0; i < x->n_violations; i++) {
        const tb_xc_violation *v = &x->violations[i];
        tb_measurement e, l;
        if (reported(o, v->rt_pubkey) || o->n_rt_reported == TB_XC_MAX_VIOLATIONS ||
            !load(r, &v->earlier, &e) || !load(r, &v->later, &l))
            continue;
        if (l.has_rand && tb_rt_nonce_chained(e.ev_response.data, e.ev_response.len,
                                              l.ev_request.data, l.ev_request.len, l.rand)) {
            report(r, o, v, &e, &l);
            continue;
        }
        if (o->rt_bad_seq == v->later.seq && strcmp(o->rt_bad_origin, v->later.origin) == 0)
            continue; /* counted once, as node/tk_report.c does */
        snprintf(o->rt_bad_origin, sizeof(o->rt_bad_origin), "%s", v->later.origin);
        o->rt_bad_seq = v->later.seq;
        r->res->member_false_chain++;
        tb_simtime_finding(r, o, v->later.origin, TB_XC_MEMBER_INCONSISTENT, v->source,
                           "claims a nonce chain that does not hold");
    }
}

/* --- setup --- */

int tb_simrt_add_assoc(run *r, node *n, unsigned k)
{
    if (!n->rts) {
        n->rts = calloc(r->n_srcs, sizeof(*n->rts));
        if (!n->rts)
            return TB_ERR_NOMEM;
    }
    tb_simrt_assoc *a = &n->rts[n->n_rts++];
    a->n = n;
    a->src = k;
    a->poll = r->s->minpoll;
    a->id = (tb_source_id){.kind = TB_SOURCE_ROUGHTIME, .has_public_key = true};
    snprintf(a->id.name, sizeof(a->id.name), "%s", r->srcs[k].name);
    snprintf(a->id.address, sizeof(a->id.address), "192.0.2.%u", k + 1);
    memcpy(a->id.public_key, r->rt->srv[k].pk, sizeof(a->id.public_key));
    uint64_t start = tb_sim_rand_below(r->sim, 10 * SEC) + k * 50 * MS;
    tb_simtime_sched(r, start, on_poll, a, NULL);
    return TB_OK;
}

int64_t tb_simrt_poll_ns(const node *n, unsigned k)
{
    for (size_t i = 0; i < n->n_rts; i++)
        if (n->rts[i].src == k)
            return (int64_t)tb_ntp_log2_to_ns(n->rts[i].poll);
    return 0;
}

void tb_simrt_free_node(node *n)
{
    free(n->rts);
    n->rts = NULL;
    n->n_rts = 0;
}

int tb_simrt_new(run *r)
{
    r->rt = calloc(1, sizeof(*r->rt));
    if (!r->rt || !(r->rt->kept = calloc(r->n_nodes, sizeof(*r->rt->kept))))
        return TB_ERR_NOMEM;
    for (unsigned k = 0; k < r->n_srcs; k++) {
        if (!r->srcs[k].roughtime)
            continue;
        int rc = server_new(r, k, &r->rt->srv[k]);
        if (rc != TB_OK)
            return rc;
    }
    if (r->s->attack == TB_SIMTIME_FRAME)
        tb_simtime_sched(r, (uint64_t)r->s->attack_at_ns, on_frame, NULL, NULL);
    return TB_OK;
}

void tb_simrt_free(run *r)
{
    if (!r->rt)
        return;
    for (unsigned k = 0; k < MAX_SRC; k++)
        tb_rt_srv_free(r->rt->srv[k].srv);
    for (unsigned i = 0; r->rt->kept && i < r->n_nodes; i++) {
        for (size_t j = 0; j < r->rt->kept[i].n; j++)
            free(r->rt->kept[i].v[j].body);
        free(r->rt->kept[i].v);
    }
    free(r->rt->kept);
    free(r->rt);
    r->rt = NULL;
}
