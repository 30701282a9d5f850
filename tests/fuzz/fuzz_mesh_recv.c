/* libFuzzer target for the mesh v2 receive path: any input is decoded as one wire message (with
 * the default limits); JOIN..SHUFFLE_REPLY go to discovery/hyparview, IHAVE/GRAFT/PRUNE to
 * routing/plumtree, PROBE_REQ/PROBE_ACK to discovery/members, each from a sender named by the
 * first input byte, as node.c will hand them over. The modules live across inputs, so state
 * built by one message meets the next; every action is drained, and their bounds must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/hyparview.h"
#include "discovery/members.h"
#include "routing/plumtree.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tb_hv *hv;
static tb_pt *pt;
static tb_mb *mb;
static uint64_t now;

static const char *const senders[] = {"a", "b", "c", "me", "node-a"};

static void init(void)
{
    tb_hv_config hc;
    tb_hv_config_default(&hc);
    tb_hv_desc self = {.name = "me", .region = "eu", .addrs = {"192.0.2.1:4433"}, .n_addrs = 1};
    tb_pt_config pc;
    tb_pt_config_default(&pc, 1);
    pc.seen_max = pc.store_max = 256;
    tb_mb_config mc;
    tb_mb_config_default(&mc);
    mc.max_members = 64;
    if (tb_hv_new(&hc, &self, 1, 0, &hv) || tb_pt_new(&pc, &pt) || tb_mb_new(&mc, "me", 1, 1, &mb))
        abort();
    for (size_t i = 0; i < 3; i++)
        if (tb_pt_neighbor_up(pt, senders[i]))
            abort();
}

/* A wire node as a HyParView descriptor; overlong text is cut (the module validates it). */
static void to_desc(const tb_wire_node *n, tb_hv_desc *d)
{
    memset(d, 0, sizeof(*d));
    if (n->name)
        strncpy(d->name, n->name, sizeof(d->name) - 1);
    if (n->region)
        strncpy(d->region, n->region, sizeof(d->region) - 1);
    for (size_t i = 0; i < n->n_addrs && i < TB_HV_ADDRS_MAX; i++)
        strncpy(d->addrs[d->n_addrs++], n->addrs[i], sizeof(d->addrs[0]) - 1);
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

static void drain(void)
{
    tb_hv_action ha;
    while (tb_hv_next_action(hv, &ha) == 0)
        if (ha.type == TB_HV_ACT_SEND && ha.msg.n_descs > TB_HV_SHUFFLE_MAX)
            abort();
    tb_pt_action pa;
    while (tb_pt_next_action(pt, &pa) == 0)
        if (pa.type == TB_PT_ACT_IHAVE && pa.n_ids > 64)
            abort();
    tb_mb_action ma;
    while (tb_mb_next_action(mb, &ma) == 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!hv)
        init();
    if (size < 1)
        return 0;
    const char *from = senders[data[0] % 5];
    now += 100000000ULL * (data[0] >> 4);
    tb_wire_msg w;
    if (tb_wire_decode(data + 1, size - 1, NULL, &w, NULL) != 0)
        return 0;
    tb_hv_msg hm;
    int rc = 0;
    switch (w.type) {
    case TB_WIRE_JOIN:
    case TB_WIRE_FORWARD_JOIN:
    case TB_WIRE_NEIGHBOR:
    case TB_WIRE_NEIGHBOR_REPLY:
    case TB_WIRE_DISCONNECT:
    case TB_WIRE_SHUFFLE:
    case TB_WIRE_SHUFFLE_REPLY:
        to_hv(&w, &hm);
        rc = tb_hv_recv(hv, now, from, &hm);
        break;
    case TB_WIRE_IHAVE:
        rc = tb_pt_recv_ihave(pt, now, from, w.ihave.ids.ids, w.ihave.ids.n_ids);
        break;
    case TB_WIRE_GRAFT:
        rc = tb_pt_recv_graft(pt, now, from, w.graft.ids.ids, w.graft.ids.n_ids);
        break;
    case TB_WIRE_PRUNE:
        rc = tb_pt_recv_prune(pt, now, from, w.prune.origin);
        break;
    case TB_WIRE_PROBE_REQ:
        rc = tb_mb_recv_probe_req(mb, now, from, w.probe_req.probe_id, w.probe_req.target,
                                  w.probe_req.incarnation, w.probe_req.suspect);
        break;
    case TB_WIRE_PROBE_ACK:
        rc = tb_mb_recv_probe_ack(mb, now, from, w.probe_ack.probe_id, w.probe_ack.target,
                                  w.probe_ack.heard);
        break;
    default:
        break;
    }
    (void)rc;
    drain();
    tb_hv_tick(hv, now);
    tb_pt_tick(pt, now);
    tb_mb_tick(mb, now);
    drain();
    if (tb_hv_active_count(hv) > 8 || tb_hv_passive_count(hv) > 64 || tb_pt_store_count(pt) > 256)
        abort();
    tb_wire_msg_clear(&w);
    return 0;
}
