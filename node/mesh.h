/* node/mesh: mesh v2 (ADR 0010) between the wire and the pure modules: HyParView
 * (discovery/hyparview.h, which peers to keep connections to), PlumTree (routing/plumtree.h, how
 * a broadcast travels) and the member list with SWIM-style failure detection
 * (discovery/members.h). It owns one instance of each, converts the wire messages of types 8-19
 * (ADR 0003) into their calls and their actions into encoded wire messages, and runs their
 * actions until none is left, so each feeds the others (HyParView's choice becomes the
 * connections, which are PlumTree's neighbours; a verified ALIVE a member and a passive peer; a
 * lost active link an indirect probe). This
 * is the only place that calls tb_hv_, tb_pt_ and tb_mb_; node.c feeds it what the transport and
 * node/bcast.c saw, and the fuzz target fuzz_mesh_recv feeds it what a peer may send.
 *
 * Broadcasts: the tree carries the encoded BROADCAST as received (node/bcast.c verified it first),
 * keyed on the digest of its signed bytes (ADR 0010); the hop count of PlumTree rides in the
 * BROADCAST's hop_limit (hop_limit = TB_NMESH_MAX_HOPS - hops), rewritten per copy sent.
 * SUSPECT(target, incarnation) is the payload of a signed BROADCAST of app type
 * TB_NODE_APP_SUSPECT, encoded as a PROBE_REQ message with `suspect` set (the same two fields).
 *
 * Pure logic: no I/O of its own, no clock (`now`: monotonic ns); it sends, dials and closes
 * through tb_nmesh_io. Everything a peer sends is untrusted: the modules validate names,
 * descriptors and counts; a message invalid as a whole returns TB_ERR_MALFORMED for the caller
 * to penalise. */
#ifndef TB_NODE_MESH_H
#define TB_NODE_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "discovery/hyparview.h"
#include "wire/wire.h"

#define TB_NMESH_MAX_HOPS 64            /* PlumTree's max_hops; see hop_limit above */
#define TB_NODE_APP_SUSPECT 0x6d650002u /* a mesh app type (node/bcast.h: TB_NBC_APP_MESH) */
#define TB_NMESH_ID_LEN 16
/* Origins listed as members from their verified broadcasts alone, before their ALIVE (repeated
 * every 10 min, node/bcast.h) makes them members: at most this many (the certificates this node
 * verifies broadcasts with, node/origins.h), each while heard from within two ALIVE periods. */
#define TB_NMESH_HEARD_MAX 1024
#define TB_NMESH_HEARD_KEEP_NS (1200ULL * 1000000000ULL)
/* Each node broadcasts at least this often in a small mesh (0 in the config: this). */
#define TB_NMESH_BCAST_EVERY_NS (16ULL * 1000000000ULL)

typedef enum tb_nmesh_member {
    TB_NMESH_ALIVE = 1,
    TB_NMESH_SUSPECT,
    TB_NMESH_DEAD,
} tb_nmesh_member;

typedef struct tb_nmesh_io {
    void *arg;
    /* An encoded stream message for peer. `dial` (NULL when not known) says where to reach it
     * when there is no connection: the caller dials and sends once connected, or reports the
     * failure with tb_nmesh_link_down. */
    int (*send)(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                size_t len);
    /* HyParView no longer needs the connection to peer (after the sends queued before). */
    void (*close)(void *arg, const char *peer);
    /* Broadcast SUSPECT(target, incarnation), signed (the payload: tb_nmesh_suspect_payload). */
    void (*suspect)(void *arg, const char *target, uint64_t incarnation);
    /* Announce this node (ALIVE) with `incarnation` when fresh; and send its latest ALIVE to
     * peer when peer is not NULL (a prober that holds us dead). */
    void (*alive)(void *arg, uint64_t incarnation, bool fresh, const char *peer);
    /* A member changed state (for the log); optional. */
    void (*member)(void *arg, const char *name, tb_nmesh_member state);
    /* A member held dead answered a direct probe: the network between us is back, most likely
     * for its neighbours too (a healed partition). Optional. */
    void (*reached)(void *arg, const char *name);
} tb_nmesh_io;

typedef struct tb_nmesh_config {
    tb_hv_desc self;       /* name, region, addresses (none for a client) */
    unsigned active_view;  /* HyParView active view (default 8) */
    unsigned passive_view; /* passive view (default 64) */
    uint64_t incarnation;  /* this node's first incarnation (real time in s at start) */
    uint64_t seed;         /* randomness for walks, probes and the hash key */
    /* A helper "heard" a probed member within this (0: discovery/members' 2 s). Keep it under
     * the time a link takes to be found lost (pings missed), or a helper's last pong from
     * before the failure clears the target. */
    uint64_t heard_window_ns;
    /* How often each node broadcasts at least in a small mesh (the time node's peer_interval;
     * 0: TB_NMESH_BCAST_EVERY_NS), paced for a larger one (node/pace.h). A member alive in the
     * member list silent for three of its paced intervals while it is no neighbour is taken for
     * the other part of a split overlay and asked to be a neighbour. */
    uint64_t bcast_every_ns;
    const tb_wire_limits *lim;
    tb_hv_addr_ok_fn addr_ok; /* the address policy for every descriptor */
    void *addr_ctx;
} tb_nmesh_config;

typedef struct tb_nmesh_stats {
    uint64_t bad;         /* mesh messages refused by a module as invalid */
    uint64_t gossip_sent; /* full broadcasts sent (eager pushes and GRAFT answers) */
    uint64_t ihave_sent, grafts_sent, prunes_sent;
    uint64_t duplicates;  /* broadcast copies already seen */
    uint64_t send_failed; /* messages the transport did not take */
    uint64_t probes, suspected, declared_dead, refuted;
    uint64_t split_asks; /* urgent NEIGHBORs to silent members (a split overlay, mesh.c) */
} tb_nmesh_stats;

typedef struct tb_nmesh tb_nmesh;

TB_WUR int tb_nmesh_new(const tb_nmesh_config *cfg, const tb_nmesh_io *io, uint64_t now,
                        tb_nmesh **out);
void tb_nmesh_free(tb_nmesh *nm);

/* True for the wire types this module handles (8..19). */
bool tb_nmesh_handles(tb_wire_type type);

/* A decoded message of one of those types from the peer authenticated as `from`. */
TB_WUR int tb_nmesh_recv(tb_nmesh *nm, uint64_t now, const char *from, const tb_wire_msg *m);

/* Joins through contact (a seed that answered a dial: its name is known now). */
TB_WUR int tb_nmesh_join(tb_nmesh *nm, uint64_t now, const char *name, const char *region,
                         const char *addr);

/* The transport: a connection to peer came up, or is gone (closed, dial failed, liveness
 * lost). */
void tb_nmesh_link_up(tb_nmesh *nm, uint64_t now, const char *peer);
void tb_nmesh_link_down(tb_nmesh *nm, uint64_t now, const char *peer);
/* A connection to peer that was up closed in order (this node let it go, or the peer did): the
 * peer is alive; HyParView keeps its passive view as it was (see tb_hv_link_closed). */
void tb_nmesh_link_closed(tb_nmesh *nm, uint64_t now, const char *peer);
/* A connection to peer closed for the pair's other one (crossed dials, one kept): no loss, but
 * what was sent on it may be lost, so the views send again what they wait on. */
void tb_nmesh_link_replaced(tb_nmesh *nm, uint64_t now, const char *peer);
/* Peer answered a ping (the direct contact PROBE_ACKs report). */
void tb_nmesh_heard(tb_nmesh *nm, uint64_t now, const char *peer);

/* Broadcasts. dg: the digest of the signed bytes; raw: the encoded BROADCAST. */
bool tb_nmesh_seen(const tb_nmesh *nm, const uint8_t dg[TB_NMESH_ID_LEN]);
/* A copy from `from` of origin's broadcast (one PlumTree tree per origin), verified by the
 * caller against a certificate of the mesh CA for origin unless tb_nmesh_seen said it is a
 * duplicate. *is_new: the first copy (deliver it); its origin is listed as a member from then on
 * (TB_NMESH_HEARD_MAX). */
TB_WUR int tb_nmesh_gossip(tb_nmesh *nm, uint64_t now, const char *from, const char *origin,
                           const uint8_t dg[TB_NMESH_ID_LEN], uint8_t hop_limit, const uint8_t *raw,
                           size_t len, bool *is_new);
/* A broadcast of this node, signed. */
TB_WUR int tb_nmesh_originate(tb_nmesh *nm, uint64_t now, const uint8_t dg[TB_NMESH_ID_LEN],
                              const uint8_t *raw, size_t len);
/* A verified broadcast of a mesh app type (ALIVE, SUSPECT) from origin: the member list learns
 * it. TB_ERR_MALFORMED for a payload that does not decode. */
TB_WUR int tb_nmesh_mesh_bcast(tb_nmesh *nm, uint64_t now, const char *origin, uint32_t app_type,
                               const uint8_t *payload, size_t len);
/* This node's certificate was renewed: a new incarnation of the member list, announced through
 * io.alive (fresh) so that every member takes the ALIVE carrying the new certificate as newer,
 * and suspicion of the old incarnation is stale. */
void tb_nmesh_renewed(tb_nmesh *nm, uint64_t now);
/* Encodes the payload of SUSPECT(target, incarnation) into buf. */
TB_WUR int tb_nmesh_suspect_payload(const tb_wire_limits *lim, const char *target,
                                    uint64_t incarnation, uint8_t *buf, size_t cap, size_t *len);

void tb_nmesh_tick(tb_nmesh *nm, uint64_t now);
uint64_t tb_nmesh_next_wake(const tb_nmesh *nm);

/* A leaf (a client: self has no address) takes no part in HyParView; it hears broadcasts on
 * its connections and is a member like any node. */
bool tb_nmesh_is_leaf(const tb_nmesh *nm);
/* Views and members, for status and link management. */
bool tb_nmesh_is_active(const tb_nmesh *nm, const char *peer);
size_t tb_nmesh_active_count(const tb_nmesh *nm);
size_t tb_nmesh_passive_count(const tb_nmesh *nm);
/* peer_interval changed (a reload): cfg.bcast_every_ns from now on (0: the default). */
void tb_nmesh_set_bcast_every(tb_nmesh *nm, uint64_t ns);
/* The pace's n (node/pace.h): members alive or suspected, this node included. */
size_t tb_nmesh_size(const tb_nmesh *nm);
size_t tb_nmesh_member_count(const tb_nmesh *nm, tb_nmesh_member state);
/* Calls fn for every member (not this node) with its state and incarnation: the member list's,
 * and the origins heard from lately that are not in it (alive, incarnation 0: not known). */
void tb_nmesh_members(const tb_nmesh *nm,
                      void (*fn)(void *arg, const char *name, tb_nmesh_member state,
                                 uint64_t incarnation),
                      void *arg);
const char *tb_nmesh_member_name(tb_nmesh_member state);
uint64_t tb_nmesh_incarnation(const tb_nmesh *nm);
void tb_nmesh_get_stats(const tb_nmesh *nm, tb_nmesh_stats *out);

#endif
