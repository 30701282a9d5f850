/* One mesh node: the QUIC endpoint, the peer table (discovery/peers.h), per-connection liveness
 * (discovery/liveness.h), broadcast duplicate suppression and the control socket, all on the
 * event loop it is given. No globals: a test runs several nodes in one process and one loop.
 *
 * What it does: dials the seeds; on every confirmed connection starts a PING every
 * ping_interval over DATAGRAM frames (RTT and clock offset from the minimum-delay sample) and
 * sends DISCOVER; dials the peers a PEERS answer names; signs its BROADCASTs and forwards
 * others' once to every other connected peer after checking their origin's signature
 * (node/bcast.h: duplicates dropped by the digest of the signed bytes, hop limit decremented,
 * unknown origins' certificates fetched with CERT_REQ, ALIVE announcements); delivers
 * MESSAGEs addressed to it; redials a lost peer with capped exponential backoff and jitter.
 * The node key must be Ed25519. */
#ifndef TB_NODE_NODE_H
#define TB_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "node/config.h"
#include "node/control.h"
#include "measure/replay.h"

struct ev_loop;
struct tb_resolver;

typedef struct tb_node tb_node;

/* The BROADCAST (and MESSAGE) app_type of the mesh's revocation list: a DER X.509 CRL signed by
 * the mesh CA (certs/crl.h). The node consumes it itself (node/certwatch.h). */
#define TB_NODE_APP_CRL 0x746e0001u

typedef struct tb_node_callbacks {
    /* A BROADCAST reached this node (once per origin and id; also for its own). */
    void (*on_broadcast)(void *arg, const char *origin, uint64_t id, uint32_t app_type,
                         const uint8_t *payload, size_t len);
    /* A MESSAGE addressed to this node. */
    void (*on_message)(void *arg, const char *from, uint32_t app_type, const uint8_t *payload,
                       size_t len);
    /* tb_node_stop finished: every connection closed, the closes sent. */
    void (*on_stopped)(void *arg);
    void *arg;
    /* Optional: asked about the first copy of a BROADCAST from another node, before it is
     * delivered, remembered as seen or forwarded; nonzero drops it (neither delivered nor
     * forwarded, and not remembered, so a forged copy cannot make the genuine one with the same
     * origin and id look like a duplicate), so a layer above can verify before the mesh passes a
     * message on. */
    int (*accept_broadcast)(void *arg, const char *origin, uint32_t app_type,
                            const uint8_t *payload, size_t len);
    /* Optional: this node's certificate and key were reloaded (key_pem: the new key, PEM), or
     * a newer revocation list was taken (key_pem NULL): keys taken from certificates before may
     * now be revoked. */
    void (*on_certs)(void *arg, const char *key_pem, size_t key_len);
    /* Optional: extends `status`: text lines appended (json 0), or JSON members
     * (",\"key\":value...") added before the closing brace (json 1). */
    void (*status_ext)(void *arg, tb_control_buf *b, int json);
    /* Optional: answers a control request line the node does not know; returns 1 when it
     * answered, 0 when the line is not its either. */
    int (*control_ext)(void *arg, const char *line, tb_control_buf *b);
    /* Optional: resolves the host names of peers to dial (numeric addresses are dialled
     * directly); it must outlive the node. NULL: the node runs its own getaddrinfo thread
     * resolver. Resolutions still under way are cancelled when the dial times out, at
     * tb_node_stop and at tb_node_free. */
    struct tb_resolver *resolver;
    /* Optional: how often the layer above broadcasts at least, in a small mesh (the time node:
     * its peer measurements every crosscheck.peer_interval), paced for a larger one
     * (node/pace.h). The mesh takes a member silent for three of those for the other part of a
     * split overlay (node/mesh.h). 0: 16 s. */
    uint64_t bcast_every_ns;
} tb_node_callbacks;

/* Reads the identity from cfg->cert, opens the endpoint and the control socket in
 * cfg->state_dir (which must exist), and starts dialling. cfg must outlive the node. Errors
 * are logged naming the file or address. cb may be NULL. */
TB_WUR int tb_node_new(tb_node **out, struct ev_loop *loop, const tb_log *log,
                       const tb_clock *clock, const tb_node_config *cfg,
                       const tb_node_callbacks *cb);

/* Sends CONNECTION_CLOSE to every peer, then on_stopped once they are on the wire. */
void tb_node_stop(tb_node *n);
void tb_node_free(tb_node *n);

const char *tb_node_name(const tb_node *n);
const char *tb_node_region(const tb_node *n);

/* The DER certificate known for node `name`: this node's own, a connected peer's from its
 * handshake, or else the one the peer table learned from PEERS (unverified until the caller
 * checks it against the CA). TB_ERR_NOTFOUND when there is none. The bytes stay valid until
 * the loop runs again. */
TB_WUR int tb_node_peer_cert(const tb_node *n, const char *name, const uint8_t **der, size_t *len);
/* SIGHUP: reads this node's certificate, key and the `crl` file again (they are also watched).
 * TB_ERR_INVAL when one was refused: logged naming the file; the running one stays. */
TB_WUR int tb_node_reload_certs(tb_node *n);
/* 1 when the certificate (DER) is on the revocation list in use. */
int tb_node_cert_revoked(const tb_node *n, const uint8_t *der, size_t len);

/* The bound UDP port (for listen port 0). */
uint16_t tb_node_port(const tb_node *n);

/* The key that checks origin's signatures (tb_measure_lookup_fn for measurements): from its
 * certificate, verified against the mesh CA (learned from handshakes, ALIVE, CERT and PEERS);
 * an expired one still comes with its dates. TB_ERR_NOTFOUND when none is known. */
TB_WUR int tb_node_origin_key(tb_node *n, const char *origin, tb_measure_origin_key *out);

/* The certificate (DER) of origin as this node holds it, verified against the mesh CA (its own
 * included); valid until the node's tables change. TB_ERR_NOTFOUND when none is known. */
TB_WUR int tb_node_origin_der(const tb_node *n, const char *origin, const uint8_t **der,
                              size_t *len);

/* Sends a BROADCAST from this node to the mesh, signed with its certificate key (ADR 0010);
 * *id (optional) gets its message id. */
TB_WUR int tb_node_broadcast(tb_node *n, uint32_t app_type, const uint8_t *payload, size_t len,
                             uint64_t *id);
/* Sends a MESSAGE to a directly connected node. TB_ERR_NOTFOUND when not connected. */
TB_WUR int tb_node_send(tb_node *n, const char *to, uint32_t app_type, const uint8_t *payload,
                        size_t len);

typedef struct tb_node_peer_status {
    char name[64];
    char region[64];
    char addr[64];
    const char *state; /* "connected", "connecting", "backoff", "idle" */
    int has_estimate;
    int64_t rtt_ns, offset_ns, uncertainty_ns;
    unsigned samples;
} tb_node_peer_status;

/* Peers known to the table; writes up to max, returns how many there are. */
size_t tb_node_peers(const tb_node *n, tb_node_peer_status *out, size_t max);
size_t tb_node_connected_count(const tb_node *n);

/* Mesh v2 (ADR 0010): a member of the mesh as this node's failure detector holds it. */
typedef struct tb_node_member {
    char name[64];
    const char *state; /* "alive", "suspect", "dead" */
    uint64_t incarnation;
} tb_node_member;

/* The members known (not this node); writes up to max, returns how many there are. */
size_t tb_node_members(const tb_node *n, tb_node_member *out, size_t max);
/* The callbacks' bcast_every_ns changed (the time node's peer_interval, on a reload). */
void tb_node_set_bcast_every(tb_node *n, uint64_t ns);
/* Members alive or suspected, this node included: the n of node/pace.h. */
size_t tb_node_mesh_size(const tb_node *n);
/* How many members tb_node_members lists in each state. */
void tb_node_member_counts(const tb_node *n, size_t *alive, size_t *suspect, size_t *dead);
/* The HyParView views: peers kept connected and known in reserve. */
void tb_node_views(const tb_node *n, size_t *active, size_t *passive);

/* Counters of what was dropped and delivered, for operators and tests. */
typedef struct tb_node_stats {
    uint64_t msgs_bad;     /* stream messages dropped: undecodable, wrong type, misaddressed */
    uint64_t msgs_retired; /* DISCOVER/PEERS of mesh v1, dropped (ADR 0010) */
    uint64_t dgrams_bad;   /* datagrams dropped: undecodable or not PING/PONG */
    uint64_t pongs_bad;    /* PONGs matching no PING or with absurd timestamps */
    uint64_t oversized;    /* messages over max_message_size, dropped by the endpoint */
    uint64_t messages_delivered, pings_sent, pongs_received;
    uint64_t bcast_delivered, bcast_duplicates, bcast_forwarded;
    uint64_t bcast_refused;      /* bad signature, refused certificate, refused by the app */
    uint64_t bcast_held;         /* waited for their origin's certificate */
    uint64_t bcast_hold_dropped; /* waited in vain, or found the queue full */
    uint64_t cert_reqs_sent, certs_learned, certs_refused;
    /* Budgets (ADR 0010): messages dropped over a peer's budget, penalties given (the
     * endpoint's, malformed frames and stalls included), peers disconnected and banned, learned
     * addresses the address policy refused; handshakes not admitted (tables full, banned),
     * and those of configured or known peers admitted in the room of others' (quic); dials
     * to learned peers not confirmed yet, and those forgotten unanswered (discovery/peers.h). */
    uint64_t over_budget, penalties, peers_banned, addrs_refused;
    uint64_t handshakes_refused, room_for_peers, learned_dials, learned_forgotten;
} tb_node_stats;

void tb_node_get_stats(const tb_node *n, tb_node_stats *out);

/* The answer to a control request line: "status", "status json", "broadcast TEXT". */
void tb_node_control(void *node, const char *line, tb_control_buf *out);

#endif
