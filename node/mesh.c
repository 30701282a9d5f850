/* Mesh v2 glue between the wire and hyparview/plumtree/members. See node/mesh.h. */
#include "node/mesh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/members.h"
#include "node/pace.h"
#include "routing/plumtree.h"

#define DESCS_MAX 4096 /* members whose descriptor is kept (discovery/members' default) */

typedef struct heard_of {
    char name[TB_NAME_MAX + 1];
    uint64_t at;    /* the last broadcast */
    uint64_t asked; /* the last urgent NEIGHBOR for a silent member (split_repair) */
} heard_of;

/* A split overlay (split_repair): looked for this often; a member is asked again no sooner. */
#define SPLIT_CHECK_NS (5ULL * 1000000000ULL)
#define SPLIT_RETRY_NS (120ULL * 1000000000ULL)
/* A member quiet for this many of its paced broadcast intervals is silent. */
#define SPLIT_SILENT_INTERVALS 3

struct tb_nmesh {
    tb_nmesh_config cfg;
    tb_nmesh_io io;
    tb_wire_limits lim;
    tb_hv *hv;
    tb_pt *pt;
    tb_mb *mb;
    /* Where members can be dialled (ALIVE, HyParView descriptors): PROBE_REQ to a member that
     * is not a neighbour, a member (re)joining the passive view. */
    tb_hv_desc *descs;
    size_t n_descs;
    uint8_t *buf; /* one encoded message at a time */
    /* The origins of verified broadcasts and when they were last heard: those not in the member
     * list yet (their ALIVE has not come by) are listed as alive while heard from within
     * TB_NMESH_HEARD_KEEP_NS; members that fall silent are what split_repair looks for. */
    heard_of *heard;
    size_t n_heard;
    uint64_t next_split_check;
    uint64_t now; /* the latest time given, for listing */
    tb_nmesh_stats st;
};

static void run(tb_nmesh *nm, uint64_t now);

/* ------------------------------------------------------------------ descriptors */

static tb_hv_desc *desc_find(tb_nmesh *nm, const char *name)
{
    for (size_t i = 0; i < nm->n_descs; i++)
        /* descs is allocated by tb_nmesh_new before any entry is counted in n_descs */
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
        if (strcmp(nm->descs[i].name, name) == 0)
            return &nm->descs[i];
    return NULL;
}

/* Keeps the newest addresses of a validated descriptor. */
static void desc_keep(tb_nmesh *nm, const tb_hv_desc *d)
{
    if (strcmp(d->name, nm->cfg.self.name) == 0)
        return;
    tb_hv_desc *have = desc_find(nm, d->name);
    if (!have && nm->n_descs < DESCS_MAX)
        have = &nm->descs[nm->n_descs++];
    if (have)
        *have = *d;
}

/* ------------------------------------------------------------------ heard-of origins */

static bool heard_fresh(const tb_nmesh *nm, const heard_of *h)
{
    return nm->now - h->at < TB_NMESH_HEARD_KEEP_NS;
}

/* A verified broadcast of origin. Its signature passed a certificate of the mesh CA, which names
 * one node: a member can put only itself here, and the table is bounded (the stalest entry
 * gives way). */
static void heard_note(tb_nmesh *nm, uint64_t now, const char *origin)
{
    if (now > nm->now)
        nm->now = now;
    if (strcmp(origin, nm->cfg.self.name) == 0 || strlen(origin) > TB_NAME_MAX)
        return;
    heard_of *h = NULL, *stalest = NULL;
    for (size_t i = 0; i < nm->n_heard && !h; i++) {
        if (strcmp(nm->heard[i].name, origin) == 0)
            h = &nm->heard[i];
        else if (!stalest || nm->heard[i].at < stalest->at)
            stalest = &nm->heard[i];
    }
    if (!h && nm->n_heard < TB_NMESH_HEARD_MAX)
        h = &nm->heard[nm->n_heard++];
    else if (!h)
        h = stalest;
    if (strcmp(h->name, origin) != 0)
        h->asked = 0;
    snprintf(h->name, sizeof(h->name), "%s", origin);
    h->at = now;
}

/* HyParView repairs an active view that lost a peer, but two parts of the overlay whose active
 * views are all full (formed apart, or a partition healed before a link across it failed) never
 * reach each other, and the member list holds the other part alive, as nothing failed. Every
 * node broadcasts at least every bcast_every_ns paced for the mesh's size (its peer
 * measurements; ALIVE every 10 min): a member heard from once, still alive in the member list,
 * silent for three of those and not a neighbour is asked to become one at high priority
 * (HyParView's urgent NEIGHBOR: at most one per its urgent_interval, the receiver makes room),
 * which joins the parts; PlumTree then carries what each side broadcasts next. One member per
 * check, each at most once per SPLIT_RETRY_NS, so a mesh whose nodes broadcast less often costs one
 * NEIGHBOR per member then. */
static void split_repair(tb_nmesh *nm, uint64_t now)
{
    if (!nm->hv || now < nm->next_split_check)
        return;
    nm->next_split_check = now + SPLIT_CHECK_NS;
    uint64_t silent =
        SPLIT_SILENT_INTERVALS * tb_pace_every_ns(nm->cfg.bcast_every_ns, tb_nmesh_size(nm));
    for (size_t i = 0; i < nm->n_heard; i++) {
        heard_of *h = &nm->heard[i];
        tb_mb_state st;
        const tb_hv_desc *d;
        if (now - h->at < silent || (h->asked && now - h->asked < SPLIT_RETRY_NS) ||
            tb_mb_get(nm->mb, h->name, &st, NULL) != 0 || st != TB_MB_ALIVE ||
            tb_hv_is_active(nm->hv, h->name) || (d = desc_find(nm, h->name)) == NULL ||
            d->n_addrs == 0)
            continue;
        h->asked = now;
        nm->st.split_asks++;
        if (tb_hv_add_passive(nm->hv, now, d, true) != 0)
            nm->st.bad++;
        return;
    }
}

/* Listed: heard from lately, and not (yet) in the member list, which then speaks for it. */
static bool heard_listed(const tb_nmesh *nm, const heard_of *h)
{
    return heard_fresh(nm, h) && tb_mb_get(nm->mb, h->name, NULL, NULL) != 0;
}

/* A wire node as a HyParView descriptor; overlong text is cut (the module validates it). */
static void to_desc(const tb_wire_node *n, tb_hv_desc *d)
{
    memset(d, 0, sizeof(*d));
    if (n->name)
        strncpy(d->name, n->name, sizeof(d->name) - 1);
    if (n->region)
        strncpy(d->region, n->region, sizeof(d->region) - 1);
    for (size_t i = 0; i < n->n_addrs && d->n_addrs < TB_HV_ADDRS_MAX; i++)
        if (n->addrs[i] && strlen(n->addrs[i]) <= TB_HV_ADDR_MAX)
            strncpy(d->addrs[d->n_addrs++], n->addrs[i], sizeof(d->addrs[0]) - 1);
}

/* The other way; strings point into d (ptrs holds the address pointers). */
static void from_desc(const tb_hv_desc *d, const char **ptrs, tb_wire_node *n)
{
    for (size_t i = 0; i < d->n_addrs; i++)
        ptrs[i] = d->addrs[i];
    n->name = d->name;
    n->region = d->region;
    n->addrs = ptrs;
    n->n_addrs = d->n_addrs;
}

/* ------------------------------------------------------------------ sending */

static void send_wire(tb_nmesh *nm, const char *peer, const tb_hv_desc *dial, const tb_wire_msg *w)
{
    size_t len;
    int rc = tb_wire_encode(w, &nm->lim, nm->buf, nm->lim.max_msg_size, &len);
    if (rc == 0)
        rc = nm->io.send(nm->io.arg, peer, dial, nm->buf, len);
    if (rc)
        nm->st.send_failed++;
}

static void hv_send(tb_nmesh *nm, const tb_hv_action *a)
{
    const tb_hv_msg *m = &a->msg;
    const char *ptrs[TB_HV_ADDRS_MAX], *dptrs[TB_HV_SHUFFLE_MAX][TB_HV_ADDRS_MAX];
    tb_wire_node node, nodes[TB_HV_SHUFFLE_MAX];
    from_desc(&m->node, ptrs, &node);
    for (size_t i = 0; i < m->n_descs && i < TB_HV_SHUFFLE_MAX; i++)
        from_desc(&m->descs[i], dptrs[i], &nodes[i]);
    tb_wire_nodes list = {nodes, m->n_descs};
    tb_wire_msg w = {0};
    switch (m->type) {
    case TB_HV_JOIN:
        w.type = TB_WIRE_JOIN;
        w.join.node = node;
        break;
    case TB_HV_FORWARD_JOIN:
        w.type = TB_WIRE_FORWARD_JOIN;
        w.forward_join = (tb_wire_forward_join){node, m->ttl};
        break;
    case TB_HV_NEIGHBOR:
        w.type = TB_WIRE_NEIGHBOR;
        w.neighbor = (tb_wire_neighbor){node, m->flag != 0};
        break;
    case TB_HV_NEIGHBOR_REPLY:
        w.type = TB_WIRE_NEIGHBOR_REPLY;
        w.neighbor_reply = (tb_wire_neighbor_reply){node, m->flag != 0};
        break;
    case TB_HV_DISCONNECT:
        w.type = TB_WIRE_DISCONNECT;
        w.disconnect.alive = m->flag != 0;
        break;
    case TB_HV_SHUFFLE:
        w.type = TB_WIRE_SHUFFLE;
        w.shuffle = (tb_wire_shuffle){node, m->ttl, list};
        break;
    case TB_HV_SHUFFLE_REPLY:
        w.type = TB_WIRE_SHUFFLE_REPLY;
        w.shuffle_reply.nodes = list;
        break;
    }
    send_wire(nm, a->peer.name, &a->peer, &w);
}

/* A stored BROADCAST sent on with the hop count of this copy. */
static void pt_gossip(tb_nmesh *nm, const tb_pt_action *a)
{
    tb_wire_msg w;
    if (tb_wire_decode(a->payload, a->len, &nm->lim, &w, NULL) != 0)
        return;
    if (w.type == TB_WIRE_BROADCAST) {
        uint32_t hops = a->hops < TB_NMESH_MAX_HOPS ? a->hops : TB_NMESH_MAX_HOPS;
        w.broadcast.hop_limit = (uint8_t)(TB_NMESH_MAX_HOPS - hops);
        send_wire(nm, a->peer, NULL, &w);
        nm->st.gossip_sent++;
    }
    tb_wire_msg_clear(&w);
}

static void pt_out(tb_nmesh *nm, const tb_pt_action *a)
{
    tb_wire_msg w = {0};
    switch (a->type) {
    case TB_PT_ACT_GOSSIP:
        pt_gossip(nm, a);
        return;
    case TB_PT_ACT_IHAVE:
        w.type = TB_WIRE_IHAVE;
        w.ihave.ids = (tb_wire_ids){a->ids, a->n_ids};
        nm->st.ihave_sent++;
        break;
    case TB_PT_ACT_GRAFT:
        w.type = TB_WIRE_GRAFT;
        w.graft.ids = (tb_wire_ids){&a->id, 1};
        nm->st.grafts_sent++;
        break;
    case TB_PT_ACT_PRUNE:
        w.type = TB_WIRE_PRUNE;
        w.prune.origin = a->origin;
        nm->st.prunes_sent++;
        break;
    case TB_PT_ACT_DELIVER:
        return; /* node/bcast.c delivers the first copy it verified (tb_nmesh_gossip's is_new) */
    }
    send_wire(nm, a->peer, NULL, &w);
}

static void mb_probe(tb_nmesh *nm, const tb_mb_action *a)
{
    tb_wire_msg w = {0};
    if (a->type == TB_MB_ACT_PROBE_REQ) {
        w.type = TB_WIRE_PROBE_REQ;
        w.probe_req = (tb_wire_probe_req){a->probe_id, a->target, a->incarnation, a->suspect};
    } else {
        w.type = TB_WIRE_PROBE_ACK;
        w.probe_ack = (tb_wire_probe_ack){a->probe_id, a->target, a->heard};
    }
    send_wire(nm, a->peer, desc_find(nm, a->peer), &w);
}

static void member_note(tb_nmesh *nm, const char *name, tb_nmesh_member st)
{
    if (nm->io.member)
        nm->io.member(nm->io.arg, name, st);
}

static void mb_out(tb_nmesh *nm, uint64_t now, const tb_mb_action *a)
{
    const tb_hv_desc *d;
    switch (a->type) {
    case TB_MB_ACT_PROBE_REQ:
    case TB_MB_ACT_PROBE_ACK:
        mb_probe(nm, a);
        break;
    case TB_MB_ACT_SUSPECT:
        nm->io.suspect(nm->io.arg, a->target, a->incarnation);
        break;
    case TB_MB_ACT_ALIVE:
        nm->io.alive(nm->io.arg, tb_mb_incarnation(nm->mb), a->fresh, a->peer[0] ? a->peer : NULL);
        break;
    case TB_MB_ACT_UP:
    case TB_MB_ACT_REACHED:
        if (nm->hv && (d = desc_find(nm, a->target)) != NULL && d->n_addrs > 0 &&
            tb_hv_add_passive(nm->hv, now, d, a->type == TB_MB_ACT_REACHED) != 0)
            nm->st.bad++;
        member_note(nm, a->target, TB_NMESH_ALIVE);
        if (a->type == TB_MB_ACT_REACHED && nm->io.reached)
            nm->io.reached(nm->io.arg, a->target);
        break;
    case TB_MB_ACT_DEAD:
        member_note(nm, a->target, TB_NMESH_DEAD);
        break;
    }
}

/* Runs every module's actions until none is left: they feed each other. */
static void run(tb_nmesh *nm, uint64_t now)
{
    if (now > nm->now)
        nm->now = now;
    bool more = true;
    while (more) {
        more = false;
        tb_hv_action ha;
        while (nm->hv && tb_hv_next_action(nm->hv, &ha) == 0) {
            more = true;
            switch (ha.type) {
            case TB_HV_ACT_SEND:
                hv_send(nm, &ha);
                break;
            case TB_HV_ACT_CLOSE:
                nm->io.close(nm->io.arg, ha.peer.name);
                break;
            case TB_HV_ACT_UP:
                desc_keep(nm, &ha.peer);
                if (tb_mb_alive(nm->mb, now, ha.peer.name, 0) != 0)
                    nm->st.bad++;
                break;
            case TB_HV_ACT_DOWN:
                break; /* the connection's close tells PlumTree (tb_nmesh_link_down) */
            }
        }
        /* Pointers in a PlumTree action live until the next tb_pt_ call: pt_out makes none. */
        tb_pt_action pa;
        while (tb_pt_next_action(nm->pt, &pa) == 0) {
            more = true;
            pt_out(nm, &pa);
        }
        tb_mb_action ma;
        while (tb_mb_next_action(nm->mb, &ma) == 0) {
            more = true;
            mb_out(nm, now, &ma);
        }
    }
}

/* ------------------------------------------------------------------ receiving */

bool tb_nmesh_handles(tb_wire_type type)
{
    return type >= TB_WIRE_JOIN && type <= TB_WIRE_PROBE_ACK;
}

static void to_hv(const tb_wire_msg *w, tb_hv_msg *m)
{
    memset(m, 0, sizeof(*m));
    const tb_wire_nodes *nodes = NULL;
    switch (w->type) {
    case TB_WIRE_JOIN:
        m->type = TB_HV_JOIN;
        to_desc(&w->join.node, &m->node);
        break;
    case TB_WIRE_FORWARD_JOIN:
        m->type = TB_HV_FORWARD_JOIN;
        to_desc(&w->forward_join.node, &m->node);
        m->ttl = w->forward_join.ttl;
        break;
    case TB_WIRE_NEIGHBOR:
        m->type = TB_HV_NEIGHBOR;
        to_desc(&w->neighbor.node, &m->node);
        m->flag = w->neighbor.high;
        break;
    case TB_WIRE_NEIGHBOR_REPLY:
        m->type = TB_HV_NEIGHBOR_REPLY;
        to_desc(&w->neighbor_reply.node, &m->node);
        m->flag = w->neighbor_reply.accepted;
        break;
    case TB_WIRE_DISCONNECT:
        m->type = TB_HV_DISCONNECT;
        m->flag = w->disconnect.alive;
        break;
    case TB_WIRE_SHUFFLE:
        m->type = TB_HV_SHUFFLE;
        to_desc(&w->shuffle.node, &m->node);
        m->ttl = w->shuffle.ttl;
        nodes = &w->shuffle.nodes;
        break;
    default:
        m->type = TB_HV_SHUFFLE_REPLY;
        nodes = &w->shuffle_reply.nodes;
        break;
    }
    for (size_t i = 0; nodes && i < nodes->n_nodes && i < TB_HV_SHUFFLE_MAX; i++)
        to_desc(&nodes->nodes[i], &m->descs[m->n_descs++]);
}

/* A peer's own descriptor (JOIN, NEIGHBOR, NEIGHBOR_REPLY) says where to dial it. */
static void learn_sender(tb_nmesh *nm, const char *from, const tb_hv_msg *m)
{
    if (m->type != TB_HV_JOIN && m->type != TB_HV_NEIGHBOR && m->type != TB_HV_NEIGHBOR_REPLY)
        return;
    tb_hv_desc d = m->node;
    tb_hv_config hc;
    tb_hv_config_default(&hc);
    hc.addr_ok = nm->cfg.addr_ok;
    hc.addr_ctx = nm->cfg.addr_ctx;
    if (strcmp(d.name, from) == 0 && tb_hv_desc_check(&hc, &d) == 0)
        desc_keep(nm, &d);
}

static int recv_one(tb_nmesh *nm, uint64_t now, const char *from, const tb_wire_msg *m)
{
    tb_hv_msg hm;
    switch (m->type) {
    case TB_WIRE_JOIN:
    case TB_WIRE_FORWARD_JOIN:
    case TB_WIRE_NEIGHBOR:
    case TB_WIRE_NEIGHBOR_REPLY:
    case TB_WIRE_DISCONNECT:
    case TB_WIRE_SHUFFLE:
    case TB_WIRE_SHUFFLE_REPLY:
        if (!nm->hv)
            return 0; /* a leaf takes no part in the views */
        to_hv(m, &hm);
        learn_sender(nm, from, &hm);
        return tb_hv_recv(nm->hv, now, from, &hm);
    case TB_WIRE_IHAVE:
        return tb_pt_recv_ihave(nm->pt, now, from, m->ihave.ids.ids, m->ihave.ids.n_ids);
    case TB_WIRE_GRAFT:
        return tb_pt_recv_graft(nm->pt, now, from, m->graft.ids.ids, m->graft.ids.n_ids);
    case TB_WIRE_PRUNE:
        return tb_pt_recv_prune(nm->pt, now, from, m->prune.origin);
    case TB_WIRE_PROBE_REQ:
        return tb_mb_recv_probe_req(nm->mb, now, from, m->probe_req.probe_id, m->probe_req.target,
                                    m->probe_req.incarnation, m->probe_req.suspect);
    case TB_WIRE_PROBE_ACK:
        return tb_mb_recv_probe_ack(nm->mb, now, from, m->probe_ack.probe_id, m->probe_ack.target,
                                    m->probe_ack.heard);
    default:
        return TB_ERR_INVAL;
    }
}

int tb_nmesh_recv(tb_nmesh *nm, uint64_t now, const char *from, const tb_wire_msg *m)
{
    if (!tb_nmesh_handles(m->type))
        return TB_ERR_INVAL;
    int rc = recv_one(nm, now, from, m);
    run(nm, now);
    /* IHAVE/GRAFT/PRUNE from a peer that is no neighbour (any more) is a race, not a fault. */
    if (rc == TB_ERR_NOTFOUND)
        return 0;
    if (rc)
        nm->st.bad++;
    return rc ? TB_ERR_MALFORMED : 0;
}

/* ------------------------------------------------------------------ the rest of the API */

int tb_nmesh_new(const tb_nmesh_config *cfg, const tb_nmesh_io *io, uint64_t now, tb_nmesh **out)
{
    *out = NULL;
    tb_nmesh *nm = calloc(1, sizeof(*nm));
    if (!nm)
        return TB_ERR_NOMEM;
    nm->cfg = *cfg;
    nm->io = *io;
    nm->lim = cfg->lim ? *cfg->lim : tb_wire_limits_default();
    tb_hv_config hc;
    tb_hv_config_default(&hc);
    hc.active_size = cfg->active_view;
    hc.passive_size = cfg->passive_view;
    hc.addr_ok = cfg->addr_ok;
    hc.addr_ctx = cfg->addr_ctx;
    tb_pt_config pc;
    tb_pt_config_default(&pc, cfg->seed ^ 0x9e3779b97f4a7c15ULL);
    pc.max_hops = TB_NMESH_MAX_HOPS;
    pc.neighbors_max = TB_PT_NEIGHBORS_MAX; /* every connection, leaves included */
    pc.ids_max = nm->lim.max_ids < pc.ids_max ? nm->lim.max_ids : pc.ids_max;
    if (pc.store_max_bytes > 4 * nm->lim.max_msg_size * 64)
        pc.store_max_bytes = 4 * nm->lim.max_msg_size * 64;
    tb_mb_config mc;
    tb_mb_config_default(&mc);
    if (cfg->heard_window_ns)
        mc.heard_window_ns = cfg->heard_window_ns;
    if (!nm->cfg.bcast_every_ns)
        nm->cfg.bcast_every_ns = TB_NMESH_BCAST_EVERY_NS;
    int rc = 0;
    nm->buf = malloc(nm->lim.max_msg_size);
    nm->descs = calloc(DESCS_MAX, sizeof(*nm->descs));
    nm->heard = calloc(TB_NMESH_HEARD_MAX, sizeof(*nm->heard));
    if (!nm->buf || !nm->descs || !nm->heard)
        rc = TB_ERR_NOMEM;
    if (!rc && cfg->self.n_addrs > 0)
        rc = tb_hv_new(&hc, &cfg->self, cfg->seed, now, &nm->hv);
    if (!rc)
        rc = tb_pt_new(&pc, &nm->pt);
    if (!rc)
        rc = tb_mb_new(&mc, cfg->self.name, cfg->incarnation, cfg->seed ^ 0xabcdefULL, &nm->mb);
    if (rc) {
        tb_nmesh_free(nm);
        return rc;
    }
    *out = nm;
    return 0;
}

void tb_nmesh_free(tb_nmesh *nm)
{
    if (!nm)
        return;
    tb_hv_free(nm->hv);
    tb_pt_free(nm->pt);
    tb_mb_free(nm->mb);
    free(nm->descs);
    free(nm->heard);
    free(nm->buf);
    free(nm);
}

int tb_nmesh_join(tb_nmesh *nm, uint64_t now, const char *name, const char *region,
                  const char *addr)
{
    tb_hv_desc d = {0};
    if (!nm->hv)
        return TB_ERR_STATE;
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.region, sizeof(d.region), "%s", region);
    snprintf(d.addrs[0], sizeof(d.addrs[0]), "%s", addr);
    d.n_addrs = 1;
    int rc = tb_hv_join(nm->hv, now, &d);
    run(nm, now);
    return rc;
}

/* PlumTree's neighbours are the connections: the active view once it settles, and leaves
 * (clients), which take no part in the views but hear the broadcasts. */
void tb_nmesh_link_up(tb_nmesh *nm, uint64_t now, const char *peer)
{
    if (tb_pt_neighbor_up(nm->pt, peer) != 0)
        nm->st.bad++;
    tb_mb_heard(nm->mb, now, peer);
    run(nm, now);
}

void tb_nmesh_link_down(tb_nmesh *nm, uint64_t now, const char *peer)
{
    tb_pt_neighbor_down(nm->pt, peer);
    if (!nm->hv) {
        run(nm, now);
        return;
    }
    bool was_active = tb_hv_is_active(nm->hv, peer);
    tb_hv_link_down(nm->hv, now, peer);
    if (was_active) {
        /* The other active peers probe it for us (SWIM's indirect probe). */
        const char *helpers[TB_HV_ACTIVE_MAX];
        size_t k = 0;
        for (size_t i = 0; i < tb_hv_active_count(nm->hv) && k < TB_HV_ACTIVE_MAX; i++)
            helpers[k++] = tb_hv_active_name(nm->hv, i);
        if (tb_mb_link_lost(nm->mb, now, peer, helpers, k) != 0)
            nm->st.bad++;
        nm->st.probes++;
    }
    run(nm, now);
}

void tb_nmesh_link_closed(tb_nmesh *nm, uint64_t now, const char *peer)
{
    tb_pt_neighbor_down(nm->pt, peer);
    if (nm->hv)
        tb_hv_link_closed(nm->hv, now, peer);
    run(nm, now);
}

void tb_nmesh_link_replaced(tb_nmesh *nm, uint64_t now, const char *peer)
{
    if (nm->hv)
        tb_hv_link_replaced(nm->hv, now, peer);
    run(nm, now);
}

void tb_nmesh_heard(tb_nmesh *nm, uint64_t now, const char *peer)
{
    tb_mb_heard(nm->mb, now, peer);
    run(nm, now);
}

bool tb_nmesh_seen(const tb_nmesh *nm, const uint8_t dg[TB_NMESH_ID_LEN])
{
    return tb_pt_seen(nm->pt, dg);
}

int tb_nmesh_gossip(tb_nmesh *nm, uint64_t now, const char *from, const char *origin,
                    const uint8_t dg[TB_NMESH_ID_LEN], uint8_t hop_limit, const uint8_t *raw,
                    size_t len, bool *is_new)
{
    uint32_t hops = hop_limit >= TB_NMESH_MAX_HOPS ? 1 : TB_NMESH_MAX_HOPS - hop_limit;
    bool fresh = false;
    int rc = tb_pt_recv_gossip(nm->pt, now, from, origin, dg, hops, raw, len, &fresh);
    if (!rc && !fresh)
        nm->st.duplicates++;
    if (!rc && fresh)
        heard_note(nm, now, origin);
    run(nm, now);
    if (is_new)
        *is_new = fresh;
    return rc;
}

int tb_nmesh_originate(tb_nmesh *nm, uint64_t now, const uint8_t dg[TB_NMESH_ID_LEN],
                       const uint8_t *raw, size_t len)
{
    int rc = tb_pt_broadcast(nm->pt, now, nm->cfg.self.name, dg, raw, len);
    run(nm, now);
    return rc;
}

static void take_alive(tb_nmesh *nm, uint64_t now, const char *origin, const tb_wire_alive *a)
{
    tb_hv_desc d = {0};
    tb_wire_node n = {a->name, a->region, a->addrs, a->n_addrs};
    to_desc(&n, &d);
    tb_hv_config hc;
    tb_hv_config_default(&hc);
    hc.addr_ok = nm->cfg.addr_ok;
    hc.addr_ctx = nm->cfg.addr_ctx;
    /* The origin is verified; a client (no address) or one the policy refuses is listed as a
     * member all the same, with nowhere to dial. */
    if (tb_hv_desc_check(&hc, &d) != 0)
        d.n_addrs = 0;
    snprintf(d.name, sizeof(d.name), "%s", origin);
    desc_keep(nm, &d);
    if (tb_mb_alive(nm->mb, now, origin, a->incarnation) != 0)
        nm->st.bad++;
}

int tb_nmesh_mesh_bcast(tb_nmesh *nm, uint64_t now, const char *origin, uint32_t app_type,
                        const uint8_t *payload, size_t len)
{
    tb_wire_msg w;
    if (tb_wire_decode(payload, len, &nm->lim, &w, NULL) != 0)
        return TB_ERR_MALFORMED;
    int rc = TB_ERR_MALFORMED;
    if (w.type == TB_WIRE_ALIVE && strcmp(w.alive.name, origin) == 0) {
        take_alive(nm, now, origin, &w.alive);
        rc = 0;
    } else if (app_type == TB_NODE_APP_SUSPECT && w.type == TB_WIRE_PROBE_REQ &&
               w.probe_req.suspect) {
        rc = 0;
        if (tb_mb_suspect(nm->mb, now, w.probe_req.target, w.probe_req.incarnation) != 0)
            nm->st.bad++;
    }
    tb_wire_msg_clear(&w);
    run(nm, now);
    return rc;
}

void tb_nmesh_renewed(tb_nmesh *nm, uint64_t now)
{
    tb_mb_renew(nm->mb);
    run(nm, now);
}

int tb_nmesh_suspect_payload(const tb_wire_limits *lim, const char *target, uint64_t incarnation,
                             uint8_t *buf, size_t cap, size_t *len)
{
    tb_wire_msg w = {.type = TB_WIRE_PROBE_REQ};
    w.probe_req = (tb_wire_probe_req){0, target, incarnation, 1};
    return tb_wire_encode(&w, lim, buf, cap, len);
}

void tb_nmesh_tick(tb_nmesh *nm, uint64_t now)
{
    split_repair(nm, now);
    if (nm->hv)
        tb_hv_tick(nm->hv, now);
    run(nm, now);
    tb_pt_tick(nm->pt, now);
    run(nm, now);
    tb_mb_tick(nm->mb, now);
    run(nm, now);
}

uint64_t tb_nmesh_next_wake(const tb_nmesh *nm)
{
    uint64_t w = nm->hv ? tb_hv_next_wake(nm->hv) : UINT64_MAX, t;
    if ((t = tb_pt_next_wake(nm->pt)) < w)
        w = t;
    if ((t = tb_mb_next_wake(nm->mb)) < w)
        w = t;
    if (nm->hv && nm->next_split_check < w)
        w = nm->next_split_check;
    return w;
}

bool tb_nmesh_is_leaf(const tb_nmesh *nm)
{
    return !nm->hv;
}

bool tb_nmesh_is_active(const tb_nmesh *nm, const char *peer)
{
    return nm->hv && tb_hv_is_active(nm->hv, peer);
}

size_t tb_nmesh_active_count(const tb_nmesh *nm)
{
    return nm->hv ? tb_hv_active_count(nm->hv) : 0;
}

size_t tb_nmesh_passive_count(const tb_nmesh *nm)
{
    return nm->hv ? tb_hv_passive_count(nm->hv) : 0;
}

void tb_nmesh_set_bcast_every(tb_nmesh *nm, uint64_t ns)
{
    nm->cfg.bcast_every_ns = ns ? ns : TB_NMESH_BCAST_EVERY_NS;
}

size_t tb_nmesh_size(const tb_nmesh *nm)
{
    return tb_nmesh_member_count(nm, TB_NMESH_ALIVE) + tb_nmesh_member_count(nm, TB_NMESH_SUSPECT) +
           1;
}

size_t tb_nmesh_member_count(const tb_nmesh *nm, tb_nmesh_member state)
{
    size_t k = tb_mb_count(nm->mb, (tb_mb_state)state);
    for (size_t i = 0; state == TB_NMESH_ALIVE && i < nm->n_heard; i++)
        k += heard_listed(nm, &nm->heard[i]);
    return k;
}

typedef struct members_fn {
    void (*fn)(void *arg, const char *name, tb_nmesh_member state, uint64_t incarnation);
    void *arg;
} members_fn;

static void member_each(void *arg, const char *name, tb_mb_state state, uint64_t incarnation)
{
    const members_fn *f = arg;
    f->fn(f->arg, name, (tb_nmesh_member)state, incarnation);
}

void tb_nmesh_members(const tb_nmesh *nm,
                      void (*fn)(void *arg, const char *name, tb_nmesh_member state,
                                 uint64_t incarnation),
                      void *arg)
{
    members_fn f = {fn, arg};
    tb_mb_each(nm->mb, member_each, &f);
    for (size_t i = 0; i < nm->n_heard; i++)
        if (heard_listed(nm, &nm->heard[i]))
            fn(arg, nm->heard[i].name, TB_NMESH_ALIVE, 0);
}

const char *tb_nmesh_member_name(tb_nmesh_member state)
{
    return state == TB_NMESH_ALIVE ? "alive" : state == TB_NMESH_SUSPECT ? "suspect" : "dead";
}

uint64_t tb_nmesh_incarnation(const tb_nmesh *nm)
{
    return tb_mb_incarnation(nm->mb);
}

void tb_nmesh_get_stats(const tb_nmesh *nm, tb_nmesh_stats *out)
{
    *out = nm->st;
    tb_pt_stats ps;
    tb_pt_get_stats(nm->pt, &ps);
    out->duplicates = ps.duplicates;
    tb_mb_stats ms;
    tb_mb_get_stats(nm->mb, &ms);
    out->suspected = ms.suspected;
    out->declared_dead = ms.declared_dead;
    out->refuted = ms.refuted;
    out->probes = ms.probes;
}
