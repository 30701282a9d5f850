/* Mesh peers as time sources: the one place where peer time measurement becomes the time node's
 * business (adr/0007, "Mesh peers"). The measuring itself rides on the mesh: node.c sends a PING
 * DATAGRAM to every connected peer each ping interval and answers theirs, and discovery/liveness.c
 * keeps, per connection, the four-timestamp samples and the minimum-delay estimate (the same
 * exchange decides whether the peer is alive, which is why it lives there). This file turns those
 * estimates into what the time node uses: every crosscheck.peer_interval a signed PEER
 * measurement per connected peer with an estimate, gossiped like any other, and the peers' frame
 * (offset, uncertainty) for each cross-check run. In a mesh too large for every origin's PEER
 * measurements every peer_interval (node/pace.h) they are taken less often: a sample of each
 * link's estimate, which the mesh keeps current with every ping all the same. */
#include <stdlib.h>

#include "node/pace.h"
#include "node/tk_internal.h"

uint64_t tk_peers_base_ns(const tb_timekeeper *tk)
{
    return (uint64_t)tk->tc.peer_interval_s * TB_NS_PER_SEC;
}

uint64_t tk_peers_every_ns(const tb_timekeeper *tk)
{
    return tb_pace_every_ns(tk_peers_base_ns(tk), tk->node ? tb_node_mesh_size(tk->node) : 1);
}

static void on_peer_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    tb_timekeeper *tk = w->data;
    tb_node_peer_status *ps = calloc(TK_MAX_PEERS, sizeof(*ps));
    size_t k = ps ? tb_node_peers(tk->node, ps, TK_MAX_PEERS) : 0;
    for (size_t i = 0; i < k && i < TK_MAX_PEERS; i++) {
        if (!ps[i].has_estimate)
            continue;
        tb_measurement m = {.kind = TB_MEASURE_PEER,
                            .real_ns = tk_real_now(tk),
                            .offset_ns = ps[i].offset_ns,
                            .delay_ns = ps[i].rtt_ns > 0 ? ps[i].rtt_ns : 0,
                            .bound_ns = ps[i].uncertainty_ns > 0 ? ps[i].uncertainty_ns : 0};
        tb_tk_set_text(m.origin, sizeof(m.origin), tb_node_name(tk->node));
        tb_tk_set_text(m.source_name, sizeof(m.source_name), ps[i].name);
        tb_tk_set_text(m.source_addr, sizeof(m.source_addr), ps[i].addr);
        tk_publish(tk, &m);
    }
    free(ps);
    /* The next sample when the pace wants it, as the mesh's size is now. */
    w->repeat = (double)tk_peers_every_ns(tk) / 1e9;
    ev_timer_again(loop, w);
}

void tk_peers_init(tb_timekeeper *tk)
{
    ev_timer_init(&tk->peer_timer, on_peer_timer, 0., 0.);
    tk->peer_timer.data = tk;
}

void tk_peers_start(tb_timekeeper *tk)
{
    double pi = (double)tk_peers_every_ns(tk) / 1e9; /* paced already after a reload */
    ev_timer_stop(tk->loop, &tk->peer_timer);
    ev_timer_set(&tk->peer_timer, pi, pi);
    ev_timer_start(tk->loop, &tk->peer_timer);
}

size_t tk_peers_xc(const tb_timekeeper *tk, tb_node_peer_status *ps, tb_xc_peer *xp, int64_t now)
{
    size_t k = tb_node_peers(tk->node, ps, TK_MAX_PEERS), n = 0;
    xp[n++] = (tb_xc_peer){tb_node_name(tk->node), tb_node_region(tk->node), 0, 0, now, true};
    for (size_t i = 0; i < k && i < TK_MAX_PEERS; i++) {
        if (ps[i].has_estimate)
            xp[n++] = (tb_xc_peer){ps[i].name,           ps[i].region, ps[i].offset_ns,
                                   ps[i].uncertainty_ns, now,          false};
    }
    return n;
}
