#include "sim/mesh.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "discovery/liveness.h"
#include "node/pace.h"

/* What travels: the modules' messages as structs. */
enum { M_HV = 1, M_GOSSIP, M_IHAVE, M_GRAFT, M_PRUNE, M_PREQ, M_PACK, M_PING, M_PONG, M_CLOSE };

/* Payload of a broadcast: kind, then fields. */
enum { P_TEST = 1, P_ALIVE, P_SUSPECT, P_PERIODIC };
#define PAYLOAD_LEN 21 /* u8 kind, u32 a, u64 b, u64 c */
#define NAME_LEN 12    /* "n" and a 32-bit index */

typedef struct smsg {
    int kind;
    bool small;             /* no tail: goes back to the owner's spares */
    struct tb_simmesh *own; /* whose spares */
    struct smsg *next;      /* in the spares */
    union {
        struct {
            uint8_t id[TB_PT_ID_LEN];
            uint32_t hops;
            uint8_t payload[PAYLOAD_LEN];
        } g;
        struct {
            uint64_t id, inc;
            unsigned target;
            bool heard, suspect;
        } probe;
        struct {
            uint64_t seq;
            int64_t t1, t2, t3;
        } ping;
        size_t n_ids;
        unsigned origin; /* M_PRUNE */
    } u;
    max_align_t tail[]; /* M_HV: a tb_hv_msg; M_IHAVE: the ids */
} smsg;

typedef struct link {
    unsigned peer;
    tb_live live;
} link;

typedef struct snode {
    unsigned idx;
    bool alive;
    tb_hv_desc desc;
    tb_hv *hv;
    tb_pt *pt;
    tb_mb *mb;
    link links[TB_HV_ACTIVE_MAX];
    size_t n_links;
    uint64_t tick_at;
    uint64_t next_alive;
    uint64_t seq; /* broadcasts originated */
    uint8_t alive_id[TB_PT_ID_LEN];
    uint8_t alive_payload[PAYLOAD_LEN];
    bool has_alive;
    uint64_t next_periodic;               /* tb_simmesh_periodic; UINT64_MAX: off */
    uint64_t periodic_sent, periodic_got; /* its own, and others' delivered */
} snode;

typedef struct bcast {
    tb_simmesh_bcast r;
    uint8_t *got; /* per node */
} bcast;

struct tb_simmesh {
    tb_simmesh_config cfg;
    tb_sim *sim;
    tb_simnet *net;
    snode *nodes;
    bcast *bc;
    size_t n_bc, cap_bc;
    tb_simmesh_counters ctr; /* refused: calls a module refused, counted (as node.c would) */
    smsg *spare;             /* tail-less messages to reuse: most of the millions sent */
    int watch;               /* killed node watched for its death notices, -1 none */
    uint64_t *dead_at;
    /* The nodes' names side by side: looked up for every message, they stay in cache (a
     * node's own struct is large and seldom is). */
    char (*names)[NAME_LEN];
    tb_simmesh_rx *rx; /* per node */
    uint64_t periodic_base;
    bool paced;
};

void tb_simmesh_config_default(tb_simmesh_config *cfg, unsigned n, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->n = n;
    cfg->seed = seed;
    tb_simnet_config_default(&cfg->net);
    tb_hv_config_default(&cfg->hv);
    tb_pt_config_default(&cfg->pt, seed ^ 0x5bd1e995);
    /* The simulated nodes broadcast little; small stores keep 1,000 nodes in memory. */
    cfg->pt.store_max = 2048;
    cfg->pt.seen_max = 4096;
    cfg->pt.neighbors_max = 16;
    cfg->pt.origins_max = n + 64;
    tb_mb_config_default(&cfg->mb);
    cfg->ping_interval_ns = TB_NS_PER_SEC;
    cfg->max_missed = 3;
    cfg->dial_timeout_ns = TB_NS_PER_SEC;
    cfg->join_spread_ns = 10 * TB_NS_PER_SEC;
    cfg->alive_interval_ns = 600 * TB_NS_PER_SEC;
}

/* ------------------------------------------------------------------ helpers */

static const char *name_of(const tb_simmesh *m, unsigned i)
{
    return m->names[i];
}

/* n123 -> 123; UINT32_MAX for anything else (names come from our own nodes only). */
static unsigned idx_of(const tb_simmesh *m, const char *name)
{
    if (name[0] != 'n' || !name[1])
        return UINT32_MAX;
    unsigned v = 0;
    for (const char *p = name + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return UINT32_MAX;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v < m->cfg.n ? v : UINT32_MAX;
}

static void note(tb_simmesh *m, int rc)
{
    if (rc)
        m->ctr.refused++;
}

void tb_simmesh_get_counters(const tb_simmesh *m, tb_simmesh_counters *out)
{
    *out = m->ctr;
}

static smsg *new_msg(tb_simmesh *m, int kind, size_t tail)
{
    smsg *s = tail == 0 ? m->spare : NULL;
    if (s) {
        m->spare = s->next;
        memset(s, 0, sizeof(*s));
    } else if (!(s = calloc(1, sizeof(*s) + tail))) {
        return NULL;
    }
    s->kind = kind;
    s->small = tail == 0;
    s->own = m;
    return s;
}

static void free_msg(void *p)
{
    smsg *s = p;
    if (!s->small) {
        free(s);
        return;
    }
    s->next = s->own->spare;
    s->own->spare = s;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void send_to(tb_simmesh *m, unsigned from, unsigned to, smsg *s, bool reliable)
{
    if (!s)
        return;
    (void)tb_simnet_send(m->net, from, to, reliable, s);
}

static void schedule(tb_simmesh *m, snode *n);
static void process(tb_simmesh *m, snode *n);

/* ------------------------------------------------------------------ broadcasts */

static int originate(tb_simmesh *m, snode *n, uint8_t kind, uint32_t a, uint64_t b, uint64_t c,
                     uint8_t id[TB_PT_ID_LEN], uint8_t payload[PAYLOAD_LEN])
{
    memset(id, 0, TB_PT_ID_LEN);
    put_u32(id, n->idx);
    put_u64(id + 4, ++n->seq);
    put_u32(id + 12, (uint32_t)(m->cfg.seed * 2654435761u));
    payload[0] = kind;
    m->ctr.alive += kind == P_ALIVE;
    m->ctr.suspect += kind == P_SUSPECT;
    put_u32(payload + 1, a);
    put_u64(payload + 5, b);
    put_u64(payload + 13, c);
    return tb_pt_broadcast(n->pt, tb_sim_now(m->sim), n->desc.name, id, payload, PAYLOAD_LEN);
}

static void announce_alive(tb_simmesh *m, snode *n)
{
    if (originate(m, n, P_ALIVE, n->idx, tb_mb_incarnation(n->mb), 0, n->alive_id,
                  n->alive_payload) == 0)
        n->has_alive = true;
}

static void delivered(tb_simmesh *m, snode *n, const tb_pt_action *a)
{
    uint64_t now = tb_sim_now(m->sim);
    if (a->len != PAYLOAD_LEN)
        return;
    uint32_t x = get_u32(a->payload + 1);
    uint64_t y = get_u64(a->payload + 5);
    switch (a->payload[0]) {
    case P_TEST:
        if (x < m->n_bc && !m->bc[x].got[n->idx]) {
            tb_simmesh_bcast *r = &m->bc[x].r;
            m->bc[x].got[n->idx] = 1;
            r->reached++;
            r->last_at = now;
            if (a->hops > r->max_hops)
                r->max_hops = a->hops;
        }
        break;
    case P_ALIVE:
        if (x < m->cfg.n)
            note(m, tb_mb_alive(n->mb, now, name_of(m, x), y));
        break;
    case P_SUSPECT:
        if (x < m->cfg.n)
            note(m, tb_mb_suspect(n->mb, now, name_of(m, x), y));
        break;
    case P_PERIODIC:
        n->periodic_got++;
        m->rx[n->idx].delivered++;
        break;
    }
}

/* ------------------------------------------------------------------ actions */

static link *find_link(snode *n, unsigned peer)
{
    for (size_t i = 0; i < n->n_links; i++)
        if (n->links[i].peer == peer)
            return &n->links[i];
    return NULL;
}

typedef struct fail_ev {
    unsigned node, peer;
} fail_ev;

static void dial_failed(tb_sim *sim, void *ctx, void *arg)
{
    tb_simmesh *m = ctx;
    fail_ev *f = arg;
    snode *n = &m->nodes[f->node];
    if (n->alive && !tb_simnet_reachable(m->net, f->node, f->peer)) {
        tb_hv_link_down(n->hv, tb_sim_now(sim), name_of(m, f->peer));
        process(m, n);
    }
    free(f);
}

static void hv_send(tb_simmesh *m, snode *n, const tb_hv_action *a)
{
    unsigned to = idx_of(m, a->peer.name);
    if (to == UINT32_MAX)
        return;
    if (!tb_simnet_reachable(m->net, n->idx, to)) {
        /* The transport's dial (or connection) fails: HyParView hears of it. */
        fail_ev *f = malloc(sizeof(*f));
        if (f) {
            *f = (fail_ev){n->idx, to};
            if (tb_sim_at(m->sim, tb_sim_now(m->sim) + m->cfg.dial_timeout_ns, dial_failed, m, f,
                          free))
                free(f);
        }
    }
    smsg *s = new_msg(m, M_HV, sizeof(tb_hv_msg));
    if (s)
        memcpy(s->tail, &a->msg, sizeof(a->msg));
    send_to(m, n->idx, to, s, true);
}

static void link_up(tb_simmesh *m, snode *n, unsigned peer)
{
    if (find_link(n, peer) || n->n_links == TB_HV_ACTIVE_MAX)
        return;
    link *l = &n->links[n->n_links++];
    l->peer = peer;
    m->ctr.links_up++;
    tb_live_config lc;
    tb_live_config_default(&lc);
    lc.interval_ns = m->cfg.ping_interval_ns;
    lc.max_missed = m->cfg.max_missed;
    if (tb_live_init(&l->live, &lc, tb_sim_now(m->sim), tb_sim_rand(m->sim)))
        n->n_links--;
    note(m, tb_pt_neighbor_up(n->pt, name_of(m, peer)));
    note(m, tb_mb_alive(n->mb, tb_sim_now(m->sim), name_of(m, peer), 0));
}

static void link_down(tb_simmesh *m, snode *n, unsigned peer)
{
    link *l = find_link(n, peer);
    if (l)
        *l = n->links[--n->n_links];
    tb_pt_neighbor_down(n->pt, name_of(m, peer));
}

static bool drain_hv(tb_simmesh *m, snode *n)
{
    tb_hv_action a;
    bool any = false;
    while (tb_hv_next_action(n->hv, &a) == 0) {
        any = true;
        unsigned peer = idx_of(m, a.peer.name);
        if (peer == UINT32_MAX)
            continue;
        switch (a.type) {
        case TB_HV_ACT_SEND:
            hv_send(m, n, &a);
            break;
        case TB_HV_ACT_CLOSE:
            /* The peer sees the connection close (if it still counted it as a link). */
            send_to(m, n->idx, peer, new_msg(m, M_CLOSE, 0), true);
            break;
        case TB_HV_ACT_UP:
            link_up(m, n, peer);
            break;
        case TB_HV_ACT_DOWN:
            link_down(m, n, peer);
            break;
        }
        /* pt actions queued by neighbor_up/down are none; nothing to drain in between. */
    }
    return any;
}

static void pt_out(tb_simmesh *m, snode *n, const tb_pt_action *a)
{
    unsigned to = idx_of(m, a->peer);
    smsg *s = NULL;
    switch (a->type) {
    case TB_PT_ACT_GOSSIP:
        if (a->len != PAYLOAD_LEN || !(s = new_msg(m, M_GOSSIP, 0)))
            return;
        memcpy(s->u.g.id, a->id, TB_PT_ID_LEN);
        s->u.g.hops = a->hops;
        memcpy(s->u.g.payload, a->payload, PAYLOAD_LEN);
        break;
    case TB_PT_ACT_IHAVE:
        if (!(s = new_msg(m, M_IHAVE, a->n_ids * TB_PT_ID_LEN)))
            return;
        s->u.n_ids = a->n_ids;
        memcpy(s->tail, a->ids, a->n_ids * TB_PT_ID_LEN);
        break;
    case TB_PT_ACT_GRAFT:
        if (!(s = new_msg(m, M_GRAFT, TB_PT_ID_LEN)))
            return;
        s->u.n_ids = 1;
        memcpy(s->tail, a->id, TB_PT_ID_LEN);
        break;
    case TB_PT_ACT_PRUNE:
        if ((s = new_msg(m, M_PRUNE, 0)))
            s->u.origin = idx_of(m, a->origin);
        break;
    case TB_PT_ACT_DELIVER:
        delivered(m, n, a);
        return;
    }
    if (to != UINT32_MAX)
        send_to(m, n->idx, to, s, true);
    else if (s)
        free_msg(s);
}

static bool drain_pt(tb_simmesh *m, snode *n)
{
    /* Copy the actions out first: delivering may feed members, never plumtree, but keep the
     * rule that nothing else is called while pt's pointers are live. */
    tb_pt_action a;
    bool any = false;
    while (tb_pt_next_action(n->pt, &a) == 0) {
        any = true;
        pt_out(m, n, &a);
    }
    return any;
}

static void mb_probe(tb_simmesh *m, snode *n, const tb_mb_action *a, int kind)
{
    unsigned to = idx_of(m, a->peer), target = idx_of(m, a->target);
    if (to == UINT32_MAX || target == UINT32_MAX)
        return;
    smsg *s = new_msg(m, kind, 0);
    if (!s)
        return;
    s->u.probe.id = a->probe_id;
    s->u.probe.inc = a->incarnation;
    s->u.probe.target = target;
    s->u.probe.heard = a->heard;
    s->u.probe.suspect = a->suspect;
    send_to(m, n->idx, to, s, true);
}

static void send_alive_to(tb_simmesh *m, snode *n, unsigned to)
{
    smsg *s = n->has_alive ? new_msg(m, M_GOSSIP, 0) : NULL;
    if (!s)
        return;
    memcpy(s->u.g.id, n->alive_id, TB_PT_ID_LEN);
    s->u.g.hops = 1;
    memcpy(s->u.g.payload, n->alive_payload, PAYLOAD_LEN);
    send_to(m, n->idx, to, s, true);
}

static bool drain_mb(tb_simmesh *m, snode *n)
{
    tb_mb_action a;
    bool any = false;
    uint64_t now = tb_sim_now(m->sim);
    while (tb_mb_next_action(n->mb, &a) == 0) {
        any = true;
        unsigned target = idx_of(m, a.target);
        uint8_t id[TB_PT_ID_LEN], payload[PAYLOAD_LEN];
        switch (a.type) {
        case TB_MB_ACT_PROBE_REQ:
            mb_probe(m, n, &a, M_PREQ);
            break;
        case TB_MB_ACT_PROBE_ACK:
            mb_probe(m, n, &a, M_PACK);
            break;
        case TB_MB_ACT_SUSPECT:
            if (target != UINT32_MAX)
                (void)originate(m, n, P_SUSPECT, target, a.incarnation, n->idx, id, payload);
            drain_pt(m, n);
            break;
        case TB_MB_ACT_ALIVE:
            if (a.fresh) {
                announce_alive(m, n);
                drain_pt(m, n);
            }
            if (a.peer[0] && idx_of(m, a.peer) != UINT32_MAX)
                send_alive_to(m, n, idx_of(m, a.peer));
            break;
        case TB_MB_ACT_UP:
        case TB_MB_ACT_REACHED:
            if (target != UINT32_MAX)
                note(m, tb_hv_add_passive(n->hv, now, &m->nodes[target].desc,
                                          a.type == TB_MB_ACT_REACHED));
            break;
        case TB_MB_ACT_DEAD:
            if ((int)target == m->watch && m->dead_at[n->idx] == 0)
                m->dead_at[n->idx] = now;
            break;
        }
    }
    return any;
}

/* Runs every module's actions until none is left (they feed each other), then sets the timer. */
static void process(tb_simmesh *m, snode *n)
{
    bool more = true;
    while (more) {
        more = drain_hv(m, n);
        more |= drain_pt(m, n);
        more |= drain_mb(m, n);
    }
    schedule(m, n);
}

/* ------------------------------------------------------------------ timers */

static void tick_ev(tb_sim *sim, void *ctx, void *arg);

static uint64_t next_wake(const tb_simmesh *m, const snode *n)
{
    uint64_t w = n->next_alive, t;
    if (n->next_periodic < w)
        w = n->next_periodic;
    if ((t = tb_hv_next_wake(n->hv)) < w)
        w = t;
    if ((t = tb_pt_next_wake(n->pt)) < w)
        w = t;
    if ((t = tb_mb_next_wake(n->mb)) < w)
        w = t;
    for (size_t i = 0; i < n->n_links; i++)
        if ((t = tb_live_next_wake(&n->links[i].live)) < w)
            w = t;
    (void)m;
    return w;
}

static void schedule(tb_simmesh *m, snode *n)
{
    uint64_t w = next_wake(m, n), now = tb_sim_now(m->sim);
    if (w < now)
        w = now;
    if (w >= n->tick_at || w == UINT64_MAX)
        return;
    n->tick_at = w;
    if (tb_sim_at(m->sim, w, tick_ev, m, n, NULL))
        n->tick_at = UINT64_MAX;
}

static void ping_links(tb_simmesh *m, snode *n, uint64_t now)
{
    unsigned lost[TB_HV_ACTIVE_MAX];
    size_t n_lost = 0;
    for (size_t i = 0; i < n->n_links; i++) {
        link *l = &n->links[i];
        if (tb_live_lost(&l->live)) {
            lost[n_lost++] = l->peer;
            continue;
        }
        uint64_t seq;
        if (!tb_live_due(&l->live, now) || tb_live_ping_sent(&l->live, now, (int64_t)now + 1, &seq))
            continue;
        if (tb_live_lost(&l->live)) {
            lost[n_lost++] = l->peer;
            continue;
        }
        smsg *s = new_msg(m, M_PING, 0);
        if (s) {
            s->u.ping.seq = seq;
            s->u.ping.t1 = (int64_t)now + 1;
        }
        send_to(m, n->idx, l->peer, s, false);
    }
    for (size_t k = 0; k < n_lost; k++) {
        const char *helpers[TB_HV_ACTIVE_MAX];
        size_t nh = 0;
        for (size_t i = 0; i < n->n_links; i++)
            if (n->links[i].peer != lost[k])
                helpers[nh++] = name_of(m, n->links[i].peer);
        m->ctr.links_lost++;
        send_to(m, n->idx, lost[k], new_msg(m, M_CLOSE, 0), true);
        link_down(m, n, lost[k]);
        tb_hv_link_down(n->hv, now, name_of(m, lost[k]));
        note(m, tb_mb_link_lost(n->mb, now, name_of(m, lost[k]), helpers, nh));
    }
}

static uint64_t periodic_every(const tb_simmesh *m, const snode *n)
{
    if (!m->paced)
        return m->periodic_base;
    size_t k = tb_mb_count(n->mb, TB_MB_ALIVE) + tb_mb_count(n->mb, TB_MB_SUSPECT) + 1;
    return tb_pace_every_ns(m->periodic_base, k);
}

static void periodic_bcast(tb_simmesh *m, snode *n, uint64_t now)
{
    uint8_t id[TB_PT_ID_LEN], payload[PAYLOAD_LEN];
    n->next_periodic = now + periodic_every(m, n);
    if (originate(m, n, P_PERIODIC, n->idx, 0, 0, id, payload) == 0)
        n->periodic_sent++;
}

static void tick_ev(tb_sim *sim, void *ctx, void *arg)
{
    tb_simmesh *m = ctx;
    snode *n = arg;
    uint64_t now = tb_sim_now(sim);
    if (!n->alive || n->tick_at != now)
        return;
    n->tick_at = UINT64_MAX;
    tb_hv_tick(n->hv, now);
    drain_hv(m, n);
    tb_pt_tick(n->pt, now);
    drain_pt(m, n);
    tb_mb_tick(n->mb, now);
    drain_mb(m, n);
    ping_links(m, n, now);
    if (now >= n->next_alive) {
        n->next_alive = now + m->cfg.alive_interval_ns;
        announce_alive(m, n);
    }
    if (now >= n->next_periodic)
        periodic_bcast(m, n, now);
    process(m, n);
}

/* ------------------------------------------------------------------ receiving */

static tb_simmesh_rx_kind rx_kind(const smsg *s)
{
    switch (s->kind) {
    case M_HV:
        return TB_SIMMESH_RX_HV;
    case M_GOSSIP:
        return s->u.g.payload[0] == P_ALIVE || s->u.g.payload[0] == P_SUSPECT ? TB_SIMMESH_RX_ALIVE
                                                                              : TB_SIMMESH_RX_BCAST;
    case M_IHAVE:
        return TB_SIMMESH_RX_IHAVE;
    case M_GRAFT:
        return TB_SIMMESH_RX_GRAFT;
    case M_PRUNE:
        return TB_SIMMESH_RX_PRUNE;
    case M_PREQ:
    case M_PACK:
        return TB_SIMMESH_RX_PROBE;
    case M_PING:
        return TB_SIMMESH_RX_PING;
    case M_PONG:
        return TB_SIMMESH_RX_PONG;
    default:
        return TB_SIMMESH_RX_CLOSE;
    }
}

/* Estimated wire sizes: the fields a real message carries, no QUIC/TLS framing. A PlumTree id
 * is 16 bytes, a name 12, a HyParView descriptor about 48 (name, region, one address), a signed
 * ALIVE/SUSPECT about 100 (names, incarnation, Ed25519 signature), a periodic broadcast
 * TB_SIMMESH_BCAST_BYTES (a signed measurement batch; the simulator carries 21). */
static uint64_t rx_bytes(const smsg *s)
{
    const tb_hv_msg *hv = (const void *)s->tail;
    switch (s->kind) {
    case M_HV:
        return 4 + (1 + (uint64_t)hv->n_descs) * 48;
    case M_GOSSIP:
        return TB_PT_ID_LEN + 4 +
               (s->u.g.payload[0] == P_PERIODIC ? TB_SIMMESH_BCAST_BYTES
                : s->u.g.payload[0] == P_TEST   ? PAYLOAD_LEN
                                                : 100);
    case M_IHAVE:
    case M_GRAFT:
        return 2 + (uint64_t)s->u.n_ids * TB_PT_ID_LEN;
    case M_PRUNE:
        return NAME_LEN;
    case M_PREQ:
    case M_PACK:
        return 2 * 8 + NAME_LEN + 2;
    case M_PING:
    case M_PONG:
        return 4 * 8;
    default:
        return 0;
    }
}

static void recv_msg(void *ctx, unsigned from, unsigned to, void *msg)
{
    tb_simmesh *m = ctx;
    smsg *s = msg;
    snode *n = &m->nodes[to];
    uint64_t now = tb_sim_now(m->sim);
    const char *fname = name_of(m, from);
    if (!n->alive || !n->hv) {
        free_msg(s);
        return;
    }
    m->rx[to].msgs[rx_kind(s)]++;
    m->rx[to].bytes += rx_bytes(s);
    bool is_new;
    switch (s->kind) {
    case M_HV:
        note(m, tb_hv_recv(n->hv, now, fname, (const tb_hv_msg *)s->tail));
        break;
    case M_GOSSIP: {
        /* The origin is in the id (originate); node.c reads it from the signed envelope. */
        unsigned origin = get_u32(s->u.g.id);
        if (origin >= m->cfg.n)
            break;
        if (s->u.g.payload[0] == P_TEST) {
            uint32_t x = get_u32(s->u.g.payload + 1);
            if (x < m->n_bc)
                m->bc[x].r.copies++;
        }
        note(m, tb_pt_recv_gossip(n->pt, now, fname, name_of(m, origin), s->u.g.id, s->u.g.hops,
                                  s->u.g.payload, PAYLOAD_LEN, &is_new));
        break;
    }
    case M_IHAVE:
        note(m, tb_pt_recv_ihave(n->pt, now, fname, (const uint8_t(*)[TB_PT_ID_LEN])s->tail,
                                 s->u.n_ids));
        break;
    case M_GRAFT:
        note(m, tb_pt_recv_graft(n->pt, now, fname, (const uint8_t(*)[TB_PT_ID_LEN])s->tail,
                                 s->u.n_ids));
        break;
    case M_PRUNE:
        if (s->u.origin < m->cfg.n)
            note(m, tb_pt_recv_prune(n->pt, now, fname, name_of(m, s->u.origin)));
        break;
    case M_PREQ:
        note(m,
             tb_mb_recv_probe_req(n->mb, now, fname, s->u.probe.id, name_of(m, s->u.probe.target),
                                  s->u.probe.inc, s->u.probe.suspect));
        break;
    case M_PACK:
        note(m, tb_mb_recv_probe_ack(n->mb, now, fname, s->u.probe.id,
                                     name_of(m, s->u.probe.target), s->u.probe.heard));
        break;
    case M_PING: {
        smsg *r = new_msg(m, M_PONG, 0);
        if (r) {
            r->u.ping = s->u.ping;
            r->u.ping.t2 = r->u.ping.t3 = (int64_t)now + 1;
        }
        send_to(m, to, from, r, false);
        break;
    }
    case M_CLOSE:
        if (tb_hv_is_active(n->hv, fname)) {
            link_down(m, n, from);
            tb_hv_link_down(n->hv, now, fname);
        }
        break;
    case M_PONG: {
        link *l = find_link(n, from);
        /* A pong is the direct contact PROBE_ACKs report (node.c may count any message). */
        tb_mb_heard(n->mb, now, fname);
        if (l)
            note(m, tb_live_pong(&l->live, now, s->u.ping.seq, s->u.ping.t1, s->u.ping.t2,
                                 s->u.ping.t3, (int64_t)now + 1, NULL));
        break;
    }
    }
    free_msg(s);
    process(m, n);
}

/* ------------------------------------------------------------------ set-up */

static void join_ev(tb_sim *sim, void *ctx, void *arg)
{
    tb_simmesh *m = ctx;
    snode *n = arg;
    uint64_t now = tb_sim_now(sim);
    if (n->idx > 0) {
        unsigned c = (unsigned)tb_sim_rand_below(sim, n->idx);
        note(m, tb_hv_join(n->hv, now, &m->nodes[c].desc));
    }
    /* Again once everybody joined, so every node knows every member; then periodically. */
    n->next_alive = m->cfg.join_spread_ns + tb_sim_rand_below(sim, 5 * TB_NS_PER_SEC) + 1;
    announce_alive(m, n);
    process(m, n);
}

static int node_init(tb_simmesh *m, snode *n, unsigned i)
{
    n->idx = i;
    n->alive = true;
    n->tick_at = UINT64_MAX;
    n->next_alive = UINT64_MAX;
    n->next_periodic = UINT64_MAX;
    snprintf(n->desc.name, sizeof(n->desc.name), "n%u", i);
    snprintf(m->names[i], sizeof(m->names[i]), "n%u", i);
    snprintf(n->desc.region, sizeof(n->desc.region), "r%u", i % 4);
    snprintf(n->desc.addrs[0], sizeof(n->desc.addrs[0]), "10.%u.%u.%u:4433", (i >> 16) & 255,
             (i >> 8) & 255, i & 255);
    n->desc.n_addrs = 1;
    uint64_t seed = m->cfg.seed * 1000003u + i;
    tb_pt_config pc = m->cfg.pt;
    pc.hash_key ^= seed;
    int rc = tb_hv_new(&m->cfg.hv, &n->desc, seed, 0, &n->hv);
    if (!rc)
        rc = tb_pt_new(&pc, &n->pt);
    if (!rc)
        rc = tb_mb_new(&m->cfg.mb, n->desc.name, 1, seed ^ 0xabcdef, &n->mb);
    return rc;
}

int tb_simmesh_new(const tb_simmesh_config *cfg, tb_simmesh **out)
{
    *out = NULL;
    if (cfg->n == 0 || cfg->n > 100000)
        return TB_ERR_INVAL;
    tb_simmesh *m = calloc(1, sizeof(*m));
    if (!m)
        return TB_ERR_NOMEM;
    m->cfg = *cfg;
    m->watch = -1;
    int rc = tb_sim_new(cfg->seed, &m->sim);
    if (!rc)
        rc = tb_simnet_new(m->sim, cfg->n, &cfg->net, recv_msg, free_msg, m, &m->net);
    if (!rc && (!(m->nodes = calloc(cfg->n, sizeof(*m->nodes))) ||
                !(m->dead_at = calloc(cfg->n, sizeof(*m->dead_at))) ||
                !(m->names = calloc(cfg->n, sizeof(*m->names))) ||
                !(m->rx = calloc(cfg->n, sizeof(*m->rx)))))
        rc = TB_ERR_NOMEM;
    for (unsigned i = 0; !rc && i < cfg->n; i++)
        rc = node_init(m, &m->nodes[i], i);
    for (unsigned i = 0; !rc && i < cfg->n; i++)
        rc = tb_sim_at(m->sim, (uint64_t)i * cfg->join_spread_ns / cfg->n, join_ev, m, &m->nodes[i],
                       NULL);
    if (rc) {
        tb_simmesh_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void tb_simmesh_free(tb_simmesh *m)
{
    if (!m)
        return;
    tb_sim_free(m->sim);
    tb_simnet_free(m->net);
    while (m->spare) {
        smsg *s = m->spare;
        m->spare = s->next;
        free(s);
    }
    for (unsigned i = 0; m->nodes && i < m->cfg.n; i++) {
        tb_hv_free(m->nodes[i].hv);
        tb_pt_free(m->nodes[i].pt);
        tb_mb_free(m->nodes[i].mb);
    }
    for (size_t i = 0; i < m->n_bc; i++)
        free(m->bc[i].got);
    free(m->bc);
    free(m->nodes);
    free(m->dead_at);
    free(m->names);
    free(m->rx);
    free(m);
}

void tb_simmesh_run_until(tb_simmesh *m, uint64_t t)
{
    tb_sim_run_until(m->sim, t);
}

uint64_t tb_simmesh_now(const tb_simmesh *m)
{
    return tb_sim_now(m->sim);
}

/* ------------------------------------------------------------------ experiments */

int tb_simmesh_broadcast(tb_simmesh *m, unsigned origin, unsigned *idx)
{
    if (origin >= m->cfg.n || !m->nodes[origin].alive)
        return TB_ERR_INVAL;
    if (m->n_bc == m->cap_bc) {
        size_t cap = m->cap_bc ? m->cap_bc * 2 : 16;
        bcast *b = realloc(m->bc, cap * sizeof(*b));
        if (!b)
            return TB_ERR_NOMEM;
        m->bc = b;
        m->cap_bc = cap;
    }
    bcast *b = &m->bc[m->n_bc];
    memset(b, 0, sizeof(*b));
    if (!(b->got = calloc(m->cfg.n, 1)))
        return TB_ERR_NOMEM;
    b->r.origin = origin;
    b->r.sent_at = tb_sim_now(m->sim);
    b->got[origin] = 1;
    *idx = (unsigned)m->n_bc++;
    snode *n = &m->nodes[origin];
    uint8_t id[TB_PT_ID_LEN], payload[PAYLOAD_LEN];
    int rc = originate(m, n, P_TEST, *idx, 0, 0, id, payload);
    process(m, n);
    return rc;
}

int tb_simmesh_bcast_result(const tb_simmesh *m, unsigned idx, tb_simmesh_bcast *out)
{
    if (idx >= m->n_bc)
        return TB_ERR_NOTFOUND;
    *out = m->bc[idx].r;
    return 0;
}

void tb_simmesh_kill(tb_simmesh *m, unsigned node)
{
    if (node >= m->cfg.n)
        return;
    m->nodes[node].alive = false;
    tb_simnet_set_up(m->net, node, false);
    m->watch = (int)node;
    memset(m->dead_at, 0, m->cfg.n * sizeof(*m->dead_at));
}

unsigned tb_simmesh_dead_seen(const tb_simmesh *m, uint64_t *last_at)
{
    unsigned k = 0;
    *last_at = 0;
    for (unsigned i = 0; i < m->cfg.n; i++) {
        if (!m->nodes[i].alive || m->dead_at[i] == 0)
            continue;
        k++;
        if (m->dead_at[i] > *last_at)
            *last_at = m->dead_at[i];
    }
    return k;
}

void tb_simmesh_partition(tb_simmesh *m, unsigned groups)
{
    for (unsigned i = 0; i < m->cfg.n; i++)
        tb_simnet_set_group(m->net, i, (unsigned)((uint64_t)i * groups / m->cfg.n));
}

void tb_simmesh_heal(tb_simmesh *m)
{
    for (unsigned i = 0; i < m->cfg.n; i++)
        tb_simnet_set_group(m->net, i, 0);
}

unsigned tb_simmesh_live(const tb_simmesh *m)
{
    unsigned k = 0;
    for (unsigned i = 0; i < m->cfg.n; i++)
        k += m->nodes[i].alive;
    return k;
}

bool tb_simmesh_is_live(const tb_simmesh *m, unsigned node)
{
    return node < m->cfg.n && m->nodes[node].alive;
}

bool tb_simmesh_overlay_connected(const tb_simmesh *m)
{
    unsigned n = m->cfg.n, *stack = malloc(n * sizeof(*stack)), top = 0, seen = 0;
    uint8_t *mark = calloc(n, 1);
    bool ok = false;
    if (!stack || !mark)
        goto out;
    /* Edges either way: a link is usable from both ends once one side holds it. Adjacency is
     * rebuilt per query from the active views (undirected: both ends are visited). */
    unsigned start = 0;
    while (start < n && !m->nodes[start].alive)
        start++;
    if (start == n)
        goto out;
    /* Undirected closure by repeated sweeps: a node joins when it lists, or is listed by, a
     * reached node. */
    mark[start] = 1;
    stack[top++] = start;
    seen = 1;
    while (top > 0) {
        unsigned u = stack[--top];
        const tb_hv *hv = m->nodes[u].hv;
        for (size_t i = 0; i < tb_hv_active_count(hv); i++) {
            unsigned v = idx_of(m, tb_hv_active_name(hv, i));
            if (v < n && !mark[v] && m->nodes[v].alive) {
                mark[v] = 1;
                seen++;
                stack[top++] = v;
            }
        }
        if (top == 0) {
            /* Reverse edges: any unmarked live node listing a marked one. */
            for (unsigned v = 0; v < n; v++) {
                if (mark[v] || !m->nodes[v].alive)
                    continue;
                const tb_hv *h2 = m->nodes[v].hv;
                for (size_t i = 0; i < tb_hv_active_count(h2); i++) {
                    unsigned w = idx_of(m, tb_hv_active_name(h2, i));
                    if (w < n && mark[w]) {
                        mark[v] = 1;
                        seen++;
                        stack[top++] = v;
                        break;
                    }
                }
            }
        }
    }
    ok = seen == tb_simmesh_live(m);
out:
    free(stack);
    free(mark);
    return ok;
}

uint64_t tb_simmesh_membership_errors(const tb_simmesh *m)
{
    /* Every member is one of our nodes: the live ones i holds alive are those it holds alive
     * minus the dead ones among them (few), without a look-up per pair. */
    uint64_t errors = 0, live = tb_simmesh_live(m);
    for (unsigned i = 0; i < m->cfg.n; i++) {
        if (!m->nodes[i].alive)
            continue;
        uint64_t ok = tb_mb_count(m->nodes[i].mb, TB_MB_ALIVE);
        for (unsigned j = 0; j < m->cfg.n; j++) {
            tb_mb_state st;
            if (!m->nodes[j].alive && tb_mb_get(m->nodes[i].mb, name_of(m, j), &st, NULL) == 0 &&
                st == TB_MB_ALIVE)
                ok--;
        }
        errors += live - 1 - ok;
    }
    return errors;
}

void tb_simmesh_active_range(const tb_simmesh *m, unsigned *min, unsigned *max, double *mean)
{
    unsigned lo = UINT32_MAX, hi = 0, k = 0;
    double sum = 0;
    for (unsigned i = 0; i < m->cfg.n; i++) {
        if (!m->nodes[i].alive)
            continue;
        unsigned a = (unsigned)tb_hv_active_count(m->nodes[i].hv);
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
        sum += a;
        k++;
    }
    *min = k ? lo : 0;
    *max = hi;
    *mean = k ? sum / k : 0;
}

uint64_t tb_simmesh_messages(const tb_simmesh *m)
{
    tb_simnet_stats st;
    tb_simnet_get_stats(m->net, &st);
    return st.sent;
}

void tb_simmesh_pt_totals(const tb_simmesh *m, tb_pt_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < m->cfg.n; i++) {
        tb_pt_stats s;
        tb_pt_get_stats(m->nodes[i].pt, &s);
        out->delivered += s.delivered;
        out->duplicates += s.duplicates;
        out->gossip_sent += s.gossip_sent;
        out->ihave_sent += s.ihave_sent;
        out->grafts_sent += s.grafts_sent;
        out->prunes_sent += s.prunes_sent;
        out->graft_misses += s.graft_misses;
        out->ids_dropped += s.ids_dropped;
        out->hop_ended += s.hop_ended;
        out->unknown_origin += s.unknown_origin;
        out->discarded += s.discarded;
        out->queue_full += s.queue_full;
    }
}

tb_hv *tb_simmesh_hv(tb_simmesh *m, unsigned node)
{
    return node < m->cfg.n ? m->nodes[node].hv : NULL;
}

/* ------------------------------------------------------------------ periodic traffic, cost */

void tb_simmesh_periodic(tb_simmesh *m, uint64_t base_ns, bool paced)
{
    uint64_t now = tb_sim_now(m->sim);
    m->periodic_base = base_ns ? base_ns : 1;
    m->paced = paced;
    for (unsigned i = 0; i < m->cfg.n; i++) {
        snode *n = &m->nodes[i];
        if (!n->alive)
            continue;
        n->next_periodic = now + 1 + tb_sim_rand_below(m->sim, periodic_every(m, n));
        schedule(m, n);
    }
}

void tb_simmesh_periodic_stop(tb_simmesh *m)
{
    for (unsigned i = 0; i < m->cfg.n; i++)
        m->nodes[i].next_periodic = UINT64_MAX;
}

uint64_t tb_simmesh_periodic_unreached(const tb_simmesh *m)
{
    uint64_t sent = 0, missing = 0;
    for (unsigned i = 0; i < m->cfg.n; i++)
        sent += m->nodes[i].periodic_sent;
    for (unsigned i = 0; i < m->cfg.n; i++) {
        const snode *n = &m->nodes[i];
        uint64_t want = sent - n->periodic_sent;
        if (n->alive && n->periodic_got < want)
            missing += want - n->periodic_got;
    }
    return missing;
}

const char *tb_simmesh_rx_name(tb_simmesh_rx_kind k)
{
    static const char *const names[TB_SIMMESH_RX_KINDS] = {
        "bcast", "alive", "ihave", "graft", "prune", "ping", "pong", "probe", "hv", "close"};
    return (unsigned)k < TB_SIMMESH_RX_KINDS ? names[k] : "?";
}

void tb_simmesh_rx_reset(tb_simmesh *m)
{
    memset(m->rx, 0, m->cfg.n * sizeof(*m->rx));
}

void tb_simmesh_rx_get(const tb_simmesh *m, unsigned node, tb_simmesh_rx *out)
{
    if (node < m->cfg.n)
        *out = m->rx[node];
    else
        memset(out, 0, sizeof(*out));
}

/* ------------------------------------------------------------------ the issue-10 scenario */

static unsigned random_live(tb_simmesh *m)
{
    for (;;) {
        unsigned i = (unsigned)tb_sim_rand_below(m->sim, m->cfg.n);
        if (m->nodes[i].alive)
            return i;
    }
}

/* k broadcasts 1 s apart, 5 s to settle; adds up what they did. */
static int broadcasts(tb_simmesh *m, unsigned k, unsigned *unreached, double *redundancy,
                      uint32_t *max_hops, uint64_t *slowest)
{
    unsigned first = (unsigned)m->n_bc, idx = first;
    for (unsigned i = 0; i < k; i++) {
        int rc = tb_simmesh_broadcast(m, random_live(m), &idx);
        if (rc)
            return rc;
        tb_simmesh_run_until(m, tb_simmesh_now(m) + TB_NS_PER_SEC);
    }
    tb_simmesh_run_until(m, tb_simmesh_now(m) + 5 * TB_NS_PER_SEC);
    unsigned live = tb_simmesh_live(m);
    uint64_t copies = 0;
    *unreached = 0;
    *max_hops = 0;
    *slowest = 0;
    for (unsigned i = first; i <= idx; i++) {
        const tb_simmesh_bcast *b = &m->bc[i].r;
        *unreached += live - 1 - b->reached;
        copies += b->copies;
        *max_hops = b->max_hops > *max_hops ? b->max_hops : *max_hops;
        *slowest = b->last_at - b->sent_at > *slowest ? b->last_at - b->sent_at : *slowest;
    }
    *redundancy = (double)copies / ((double)k * (live - 1)) - 1;
    return 0;
}

/* One broadcast from every live node, spread over `over`, then 2 s to settle: every origin's
 * tree is pruned once, as every node's measurement batch does each interval in the real mesh. */
static int warm_up(tb_simmesh *m, uint64_t over)
{
    uint64_t t0 = tb_simmesh_now(m);
    unsigned idx;
    for (unsigned i = 0; i < m->cfg.n; i++) {
        if (!m->nodes[i].alive)
            continue;
        tb_simmesh_run_until(m, t0 + over * i / m->cfg.n);
        int rc = tb_simmesh_broadcast(m, i, &idx);
        if (rc)
            return rc;
    }
    tb_simmesh_run_until(m, t0 + over + 2 * TB_NS_PER_SEC);
    return 0;
}

int tb_simmesh_scenario(unsigned n, uint64_t seed, tb_simmesh_report *out)
{
    const uint64_t s = TB_NS_PER_SEC;
    tb_simmesh_config cfg;
    tb_simmesh *m;
    double mean, ignored_r;
    uint32_t ignored_h;
    uint64_t ignored_t;
    memset(out, 0, sizeof(*out));
    out->n = n;
    tb_simmesh_config_default(&cfg, n, seed);
    int rc = tb_simmesh_new(&cfg, &m);
    if (rc)
        return rc;
    tb_simmesh_run_until(m, 25 * s);
    tb_simmesh_active_range(m, &out->active_min, &out->active_max, &mean);
    out->formed_connected = tb_simmesh_overlay_connected(m);
    out->formed_member_errors = tb_simmesh_membership_errors(m);
    if ((rc = warm_up(m, 5 * s)) ||
        (rc = broadcasts(m, 20, &out->steady_unreached, &out->redundancy, &out->max_hops,
                         &out->slowest_ns)))
        goto done;
    uint64_t before = tb_simmesh_messages(m);
    tb_simmesh_run_until(m, tb_simmesh_now(m) + 10 * s);
    out->msgs_per_node_s = (double)(tb_simmesh_messages(m) - before) / n / 10;

    uint64_t t_kill = tb_simmesh_now(m), last;
    tb_simmesh_kill(m, random_live(m));
    tb_simmesh_run_until(m, t_kill + 12 * s);
    out->dead_seen = tb_simmesh_dead_seen(m, &last);
    out->live = tb_simmesh_live(m);
    out->detect_ns = last > t_kill ? last - t_kill : 0;
    if ((rc = broadcasts(m, 3, &out->after_kill_unreached, &ignored_r, &ignored_h, &ignored_t)))
        goto done;

    tb_simmesh_partition(m, 2);
    tb_simmesh_run_until(m, tb_simmesh_now(m) + 12 * s);
    out->partition_errors = tb_simmesh_membership_errors(m);
    uint64_t t_heal = tb_simmesh_now(m);
    tb_simmesh_heal(m);
    while (tb_simmesh_now(m) - t_heal < 20 * s) {
        tb_simmesh_run_until(m, tb_simmesh_now(m) + s / 2);
        if (tb_simmesh_overlay_connected(m) && tb_simmesh_membership_errors(m) == 0) {
            out->heal_ns = tb_simmesh_now(m) - t_heal;
            break;
        }
    }
    out->heal_errors_left = tb_simmesh_membership_errors(m);
    rc = broadcasts(m, 3, &out->after_heal_unreached, &ignored_r, &ignored_h, &ignored_t);
done:
    tb_simmesh_free(m);
    return rc;
}
