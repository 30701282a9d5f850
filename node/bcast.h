/* node/bcast: signed broadcasts on the mesh (ADR 0010), between node.c (connections, the loop)
 * and the pure parts (routing/broadcast.h: the signed header; node/mesh.h: the tree that
 * keeps the duplicate cache and forwards;
 * measure/sign.h: Ed25519; node/origins.h: certificates of origins). Private to node/.
 *
 * Sending: every broadcast is signed with this node's certificate key over the bytes of
 * tb_bc_signed_header ‖ payload. Receiving: a copy whose digest the cache knows is a duplicate;
 * a new one is verified against its origin's certificate before it is delivered, remembered as
 * seen or forwarded. An origin without a known certificate: the copy waits (node/origins.h) and
 * a CERT_REQ goes to the neighbour that forwarded it; its CERT answer (verified against the CA)
 * releases the copy. ALIVE announcements (app type TB_NODE_APP_ALIVE, payload a wire ALIVE)
 * carry the origin's certificate and verify on their own; this node sends one when its first
 * link comes up (again 5, 20 and 60 s later, for who joins meanwhile), on tb_nbc_announce_as and
 * every TB_NBC_ALIVE_NS.
 *
 * No I/O of its own: it sends and delivers through tb_nbc_io, and takes time as arguments
 * (now: monotonic ns; now_s: real Unix seconds for certificate dates). */
#ifndef TB_NODE_BCAST_H
#define TB_NODE_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/log.h"
#include "measure/replay.h"
#include "routing/broadcast.h"
#include "wire/wire.h"

/* App types from 0x6d650000 ("me") up are the mesh's own: never handed to the application. */
#define TB_NBC_APP_MESH 0x6d650000u
#define TB_NODE_APP_ALIVE 0x6d650001u
#define TB_NBC_ALIVE_NS (600ULL * 1000000000ULL)
#define TB_NBC_ADDR_MAX 280 /* the announced "host:port" */

typedef struct tb_nbc_io {
    void *arg;
    /* Sends an encoded message to the neighbour `to` (CERT_REQ, CERT, an ALIVE to a prober). */
    int (*send)(void *arg, const char *to, const uint8_t *msg, size_t len);
    /* The tree (node/mesh.h): whether a digest was seen already, and a copy handed on: a
     * duplicate (seen), a verified first copy from `from`, or this node's own (from NULL).
     * raw is the encoded BROADCAST. *is_new (may be NULL): it was the first copy. */
    bool (*seen)(void *arg, const uint8_t dg[TB_BC_DIGEST_LEN]);
    int (*tree)(void *arg, const char *from, const char *origin, const uint8_t dg[TB_BC_DIGEST_LEN],
                uint8_t hop_limit, const uint8_t *raw, size_t len, bool *is_new);
    /* Optional: the application's verdict on a verified first copy; nonzero drops it (neither
     * delivered, remembered nor forwarded). */
    int (*accept)(void *arg, const tb_wire_broadcast *b);
    /* A verified first copy (also of this node's own broadcasts), not of a mesh app type. */
    void (*deliver)(void *arg, const tb_wire_broadcast *b);
    /* Optional: a verified first copy of a mesh app type (ALIVE, SUSPECT) from another node. */
    void (*mesh)(void *arg, const tb_wire_broadcast *b);
} tb_nbc_io;

typedef struct tb_nbc_config {
    const tb_log *log;
    const char *self, *region; /* this node's name and region (from its certificate) */
    const uint8_t *self_der;   /* its certificate, DER */
    size_t self_der_len;
    const char *key_file, *ca_file, *state_dir;
    const tb_wire_limits *lim;
    uint64_t first_id;    /* first message id (the real time in ns at start: not reused) */
    uint64_t incarnation; /* first ALIVE incarnation (real time in s at start), grows */
    int64_t now_s;        /* real time at start (Unix s), to check its own certificate */
} tb_nbc_config;

typedef struct tb_nbc_stats {
    uint64_t delivered; /* first copies handed to the application (not the mesh's own) */
    uint64_t duplicates, originated;
    uint64_t refused;   /* bad signature, unknown or refused certificate, app refused */
    uint64_t malformed; /* bad origin name, hop limit 0, undecodable ALIVE */
    uint64_t held, hold_dropped, cert_reqs_sent, certs_sent, certs_learned, certs_refused;
    uint64_t alives_sent, alives_received;
} tb_nbc_stats;

typedef struct tb_nbc tb_nbc;

/* Reads the key and the CA (errors logged naming the file). */
TB_WUR int tb_nbc_new(const tb_nbc_config *cfg, const tb_nbc_io *io, tb_nbc **out);
void tb_nbc_free(tb_nbc *b);

/* The address this node announces in ALIVE (none: a client). */
void tb_nbc_set_addr(tb_nbc *b, const char *addr);

/* Signs and sends a broadcast of this node; delivers it locally too (not a mesh app type). */
TB_WUR int tb_nbc_originate(tb_nbc *b, uint64_t now, uint32_t app_type, const uint8_t *payload,
                            size_t len, uint64_t *id);

/* A BROADCAST decoded from raw (raw, len: as received, kept while it waits) from neighbour
 * `from`. TB_ERR_MALFORMED; TB_ERR_VERIFY: its signature fails against the origin's known
 * certificate (every node verifies before it forwards, so `from` forwarded a forgery); or 0:
 * delivered, duplicate, waiting for the origin's certificate, or refused for a reason that is
 * not the neighbour's (no usable certificate, the application said no; counted in refused). */
TB_WUR int tb_nbc_receive(tb_nbc *b, uint64_t now, int64_t now_s, const char *from,
                          const tb_wire_broadcast *m, const uint8_t *raw, size_t len);
void tb_nbc_on_cert_req(tb_nbc *b, const char *from, const tb_wire_cert_req *m);
void tb_nbc_on_cert(tb_nbc *b, uint64_t now, int64_t now_s, const char *from,
                    const tb_wire_cert *m);

/* A link to `peer` came up; der: its certificate from the handshake. The first link sends
 * this node's ALIVE (with the configured incarnation). */
void tb_nbc_link_up(tb_nbc *b, uint64_t now, int64_t now_s, const char *peer, const uint8_t *der,
                    size_t len);
/* A certificate heard of (PEERS) for the node `name`: kept once it verifies. 1 when it is a
 * certificate of the mesh CA for that node (kept now or before): the CA vouches for the name. */
int tb_nbc_learn(tb_nbc *b, int64_t now_s, const char *name, const uint8_t *der, size_t len);

/* This node's certificate changed: its next ALIVE carries der (the member list gives it a new
 * incarnation: tb_nmesh_renewed, then tb_nbc_announce_as). */
TB_WUR int tb_nbc_set_cert(tb_nbc *b, const uint8_t *der, size_t len);
/* Sends this node's ALIVE with `incarnation` when it is above the current one (the member list
 * refutes a suspicion), else with the current one. */
TB_WUR int tb_nbc_announce_as(tb_nbc *b, uint64_t now, uint64_t incarnation);
/* The incarnation this node's ALIVE carries. The member list starts from it: SWIM refutes a
 * SUSPECT or a direct probe only when it names the member list's own incarnation, and members
 * hold the one the ALIVE carried. */
uint64_t tb_nbc_incarnation(const tb_nbc *b);
/* Sends the last ALIVE this node broadcast to neighbour `to` (a prober holding it dead). */
void tb_nbc_send_alive(tb_nbc *b, const char *to);

/* The node's key was reloaded (its certificate renewed): broadcasts are signed with it from now
 * on. */
void tb_nbc_set_key(tb_nbc *b, const uint8_t sk[TB_MEASURE_SK_LEN],
                    const uint8_t pk[TB_MEASURE_PK_LEN]);

/* Expires waiting copies and re-announces when due; returns the next time to call. */
uint64_t tb_nbc_poll(tb_nbc *b, uint64_t now);

/* The key for origin's signatures (tb_measure_lookup_fn for measurements). */
TB_WUR int tb_nbc_origin_key(tb_nbc *b, const char *origin, int64_t now_s,
                             tb_measure_origin_key *out);
/* The certificate kept for origin; TB_ERR_NOTFOUND. */
TB_WUR int tb_nbc_origin_der(const tb_nbc *b, const char *origin, const uint8_t **der, size_t *len);

void tb_nbc_get_stats(const tb_nbc *b, tb_nbc_stats *out);

#endif
