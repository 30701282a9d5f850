/* The mesh wire format (ADR 0003): encode and strictly decode every message nodes exchange.
 *
 * A message is one msgpack map with small unsigned integer keys: 0 = format version (major,
 * TB_WIRE_VERSION), 1 = message type (tb_wire_type), then per-type keys from 2 up (the table is
 * in adr/0003-wire-format.md). Keys are written in ascending order and the decoder requires
 * them strictly ascending, so a message has one meaning and no duplicate keys. Unknown keys in a
 * known message are skipped, so the format can grow without a version bump.
 *
 * Encoding: fill a tb_wire_msg (the fields point to the caller's data; nothing is copied) and call
 * tb_wire_encode() into a caller buffer. The encoder applies the same limits and checks as the
 * decoder, so a node never sends what its peers would reject.
 *
 * Decoding: tb_wire_decode() takes the bytes of exactly one message and the limits, and either
 * fills the message or returns a negative code without reading outside (p, len) and without
 * allocating more than a small multiple of len. The decoded message OWNS copies of every string
 * (NUL-terminated) and byte field: they stay valid after the input buffer is gone, until
 * tb_wire_msg_clear(). On failure nothing is left to free (clear is still safe to call).
 * tb_wire_decode() overwrites *out without freeing it: clear a decoded message before reusing it.
 *
 * Errors: the common codes TB_ERR_TRUNCATED (input ends inside a field), TB_ERR_TOO_BIG (message
 * size, a length or a count over a limit), TB_ERR_MALFORMED (not a map, a key that is not an
 * unsigned integer, keys not ascending, invalid msgpack, text that is not UTF-8 without control
 * characters), TB_ERR_NOMEM, TB_ERR_INVAL (bad arguments; encoder only), plus the wire codes
 * below. tb_wire_strerror() names every one. An optional tb_wire_diag says which field and
 * byte offset, for a log line that tells the operator what was wrong.
 *
 * Framing (streams): one encoded message per QUIC stream, framed by quic/ (quic/frame.h, ADR
 * 0003): callers hand tb_quic_send_stream the encoded message and receive it unframed.
 * Framing (datagrams): a QUIC DATAGRAM frame carries one encoded message, no length prefix. Only
 * PING and PONG may travel in datagrams (tb_wire_datagram_ok()): a time probe must never be
 * retransmitted, since a late copy would falsify the measurement.
 *
 * Nothing here does I/O, reads a clock or keeps global state. */
#ifndef TB_WIRE_WIRE_H
#define TB_WIRE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Major version of the format, carried in every message (key 0). A message with another major
 * version is rejected with TB_ERR_WIRE_VERSION. */
#define TB_WIRE_VERSION 2

/* Length of a MEASUREMENT or BROADCAST signature (Ed25519). */
#define TB_WIRE_SIG_LEN 64
/* Length of a broadcast message id in IHAVE/GRAFT (ADR 0010: SHA-256 of the signed bytes, cut). */
#define TB_WIRE_ID_LEN 16

/* Wire-specific error codes (the range -100..-119 is reserved for wire). */
enum {
    TB_ERR_WIRE_VERSION = -100,      /* the message has another major format version */
    TB_ERR_WIRE_UNKNOWN_TYPE = -101, /* the message type is not one this version knows */
    TB_ERR_WIRE_MISSING = -102,      /* a required field is absent */
    TB_ERR_WIRE_FIELD_TYPE = -103,   /* a field has the wrong msgpack type or its value is out
                                        of range (a u8 over 255, a negative id, a 63-byte sig) */
    TB_ERR_WIRE_TRAILING = -104,     /* bytes follow the message */
};

/* A short static text for any code tb_wire returns (falls back to tb_strerror). */
const char *tb_wire_strerror(int err);

typedef enum tb_wire_type {
    TB_WIRE_PING = 1,
    TB_WIRE_PONG = 2,
    TB_WIRE_DISCOVER = 3,
    TB_WIRE_PEERS = 4,
    TB_WIRE_MESSAGE = 5,
    TB_WIRE_BROADCAST = 6,
    TB_WIRE_MEASUREMENT = 7,
    /* 8..19: membership and tree broadcast (ADR 0010) */
    TB_WIRE_CERT_REQ = 20,     /* asks the neighbour for the certificates of named origins */
    TB_WIRE_CERT = 21,         /* certificates (DER), answering CERT_REQ */
    TB_WIRE_ALIVE = 22,        /* a node's announcement, the payload of a signed BROADCAST */
    TB_WIRE_MEASUREMENTS = 23, /* one origin's batch of signed measurements, likewise */
    /* Mesh v2 (ADR 0010): HyParView membership, PlumTree repair, SWIM probes. 20 and up are
     * the signed-broadcast and certificate messages of the same ADR. */
    TB_WIRE_JOIN = 8,
    TB_WIRE_FORWARD_JOIN = 9,
    TB_WIRE_NEIGHBOR = 10,
    TB_WIRE_NEIGHBOR_REPLY = 11,
    TB_WIRE_DISCONNECT = 12,
    TB_WIRE_SHUFFLE = 13,
    TB_WIRE_SHUFFLE_REPLY = 14,
    TB_WIRE_IHAVE = 15,
    TB_WIRE_GRAFT = 16,
    TB_WIRE_PRUNE = 17,
    TB_WIRE_PROBE_REQ = 18,
    TB_WIRE_PROBE_ACK = 19,
} tb_wire_type;

/* "PING", "PONG", ...; "unknown" for anything else. */
const char *tb_wire_type_name(int type);

/* Caps applied by the decoder (and the encoder). Lengths are in bytes. */
typedef struct tb_wire_limits {
    size_t max_msg_size;    /* one encoded message, frame header excluded (default 65536) */
    size_t max_peers;       /* peers in one PEERS message (default 64) */
    size_t max_addrs;       /* addresses of one peer (default 8) */
    size_t max_str_len;     /* a name, region or address (default 255) */
    size_t max_payload_len; /* MESSAGE/BROADCAST payload, MEASUREMENT body (default 65000) */
    size_t max_cert_len;    /* a peer certificate, DER (default 4096) */
    size_t max_certs;       /* names in CERT_REQ, certificates in CERT (default 16) */
    size_t max_batch;       /* measurements in one MEASUREMENTS (default 256) */
    size_t max_nodes;       /* node descriptors in one SHUFFLE/SHUFFLE_REPLY (default 8) */
    size_t max_ids;         /* message ids in one IHAVE/GRAFT (default 64) */
} tb_wire_limits;

tb_wire_limits tb_wire_limits_default(void);

/* Bytes. In a message to encode they point to the caller's data; in a decoded message to a copy
 * the message owns. data may be NULL when len is 0. */
typedef struct tb_wire_bytes {
    const uint8_t *data;
    size_t len;
} tb_wire_bytes;

/* NTP-style four-timestamp probe, all real time in ns since the Unix epoch (tb_clock_real).
 * The pinger sends PING{id, t1 = its transmit time}; the peer answers PONG{id, t1 echoed,
 * t2 = its receive time, t3 = its transmit time}; t4 is the pinger's own receive time. */
typedef struct tb_wire_ping {
    uint64_t id;
    int64_t t1;
} tb_wire_ping;

typedef struct tb_wire_pong {
    uint64_t id;
    int64_t t1, t2, t3;
} tb_wire_pong;

/* Asks a peer for the peers it knows; it answers with PEERS of at most max_peers entries. */
typedef struct tb_wire_discover {
    uint32_t max_peers;
} tb_wire_discover;

typedef struct tb_wire_peer {
    const char *name;         /* node name (as in its certificate) */
    const char *region;       /* region (as in its certificate) */
    const char *const *addrs; /* "host:port" strings; "[v6]:port" for IPv6 */
    size_t n_addrs;           /* may be 0 */
    tb_wire_bytes cert;       /* the node certificate, DER */
} tb_wire_peer;

typedef struct tb_wire_peers {
    const tb_wire_peer *peers;
    size_t n_peers; /* may be 0 */
} tb_wire_peers;

/* Unicast to a named node, routed. app_type says what the payload is (the application's). */
typedef struct tb_wire_message {
    const char *to;
    const char *from;
    uint32_t app_type;
    tb_wire_bytes payload;
} tb_wire_message;

/* Delivered once to every node. sig is the origin's Ed25519 signature over everything but the
 * hop limit (the bytes routing/broadcast.h lays out, ADR 0010); duplicates are recognised by a
 * digest of those bytes; hop_limit is decremented at each forward. */
typedef struct tb_wire_broadcast {
    const char *origin;
    uint64_t msg_id;
    uint8_t hop_limit;
    uint32_t app_type;
    tb_wire_bytes payload;
    uint8_t sig[TB_WIRE_SIG_LEN];
} tb_wire_broadcast;

/* Names of origins whose certificates the sender lacks (1..max_certs). */
typedef struct tb_wire_cert_req {
    const char *const *names;
    size_t n_names;
} tb_wire_cert_req;

/* Certificates, DER, each checked against the mesh CA by the receiver (0..max_certs). */
typedef struct tb_wire_cert {
    const tb_wire_bytes *certs;
    size_t n_certs;
} tb_wire_cert;

/* A node's announcement of itself (the payload of a BROADCAST it signs): at join, when its
 * certificate changes and now and then, so every node learns every origin's certificate.
 * incarnation grows with every change of what it announces. */
typedef struct tb_wire_alive {
    const char *name;
    const char *region;
    const char *const *addrs; /* "host:port"; may be 0 (a client) */
    size_t n_addrs;
    tb_wire_bytes cert;
    uint64_t incarnation;
} tb_wire_alive;

/* One measurement of a batch: its sequence, body and signature as in MEASUREMENT. */
typedef struct tb_wire_mitem {
    uint64_t seq;
    tb_wire_bytes body;
    uint8_t sig[TB_WIRE_SIG_LEN];
} tb_wire_mitem;

/* An origin's new measurements of one interval (the payload of a BROADCAST it signs); each
 * item is signed on its own so it stands alone as evidence. */
typedef struct tb_wire_measurements {
    const char *origin;
    const tb_wire_mitem *items;
    size_t n_items; /* 1..max_batch */
} tb_wire_measurements;

/* A signed measurement (issue 6). body holds the measurement itself (its format belongs to the
 * measurement module) and sig the origin's Ed25519 signature over it, so the signature covers
 * exact bytes and needs no canonical re-encoding. Fields may be added with new keys. */
typedef struct tb_wire_measurement {
    const char *origin;
    uint64_t seq;
    tb_wire_bytes body;
    uint8_t sig[TB_WIRE_SIG_LEN];
} tb_wire_measurement;

/* A node descriptor of mesh v2 (no certificate: the handshake proves who answers a dial). */
typedef struct tb_wire_node {
    const char *name;
    const char *region;
    const char *const *addrs; /* "host:port", "[v6]:port" */
    size_t n_addrs;           /* may be 0 */
} tb_wire_node;

typedef struct tb_wire_nodes {
    const tb_wire_node *nodes;
    size_t n_nodes; /* may be 0 */
} tb_wire_nodes;

typedef struct tb_wire_ids {
    const uint8_t (*ids)[TB_WIRE_ID_LEN];
    size_t n_ids; /* may be 0 */
} tb_wire_ids;

/* Flags (high, accepted, alive, suspect, heard) are 0 or 1; anything else is refused. */
typedef struct tb_wire_join {
    tb_wire_node node; /* the joiner: the sender */
} tb_wire_join;

typedef struct tb_wire_forward_join {
    tb_wire_node node; /* the joiner */
    uint8_t ttl;
} tb_wire_forward_join;

typedef struct tb_wire_neighbor {
    tb_wire_node node; /* the sender */
    uint8_t high;      /* high priority: the sender has no active peer */
} tb_wire_neighbor;

typedef struct tb_wire_neighbor_reply {
    tb_wire_node node; /* the sender */
    uint8_t accepted;
} tb_wire_neighbor_reply;

typedef struct tb_wire_disconnect {
    uint8_t alive; /* the sender stays up: keep it as a passive peer */
} tb_wire_disconnect;

typedef struct tb_wire_shuffle {
    tb_wire_node node; /* the origin of the walk */
    uint8_t ttl;
    tb_wire_nodes nodes; /* its sample */
} tb_wire_shuffle;

typedef struct tb_wire_shuffle_reply {
    tb_wire_nodes nodes;
} tb_wire_shuffle_reply;

typedef struct tb_wire_ihave {
    tb_wire_ids ids;
} tb_wire_ihave;

typedef struct tb_wire_graft {
    tb_wire_ids ids;
} tb_wire_graft;

typedef struct tb_wire_prune {
    const char *origin; /* the link leaves this origin's tree (routing/plumtree.h) */
} tb_wire_prune;

typedef struct tb_wire_probe_req {
    uint64_t probe_id;
    const char *target;
    uint64_t incarnation; /* what the sender holds for target */
    uint8_t suspect;      /* to the target itself: the sender holds it suspect or dead */
} tb_wire_probe_req;

typedef struct tb_wire_probe_ack {
    uint64_t probe_id;
    const char *target;
    uint8_t heard;
} tb_wire_probe_ack;

struct tb_wire_chunk; /* private: storage of a decoded message */

typedef struct tb_wire_msg {
    tb_wire_type type;
    union {
        tb_wire_ping ping;
        tb_wire_pong pong;
        tb_wire_discover discover;
        tb_wire_peers peers;
        tb_wire_message message;
        tb_wire_broadcast broadcast;
        tb_wire_measurement measurement;
        tb_wire_cert_req cert_req;
        tb_wire_cert cert;
        tb_wire_alive alive;
        tb_wire_measurements measurements;
        tb_wire_join join;
        tb_wire_forward_join forward_join;
        tb_wire_neighbor neighbor;
        tb_wire_neighbor_reply neighbor_reply;
        tb_wire_disconnect disconnect;
        tb_wire_shuffle shuffle;
        tb_wire_shuffle_reply shuffle_reply;
        tb_wire_ihave ihave;
        tb_wire_graft graft;
        tb_wire_prune prune;
        tb_wire_probe_req probe_req;
        tb_wire_probe_ack probe_ack;
    };
    struct tb_wire_chunk *owned; /* private; NULL in a message built for encoding */
} tb_wire_msg;

/* Where decoding failed, for the operator's log line. */
typedef struct tb_wire_diag {
    const char *field; /* static text: "version", "type", "peers[].addresses[]", "message" ... */
    size_t offset;     /* byte offset in the input where the problem was found */
} tb_wire_diag;

/* Decodes exactly one message from (p, len). lim NULL means tb_wire_limits_default(); diag may
 * be NULL. Returns 0 and fills *out (which then owns its strings and bytes, see above), or a
 * negative code with *out empty. */
TB_WUR int tb_wire_decode(const uint8_t *p, size_t len, const tb_wire_limits *lim, tb_wire_msg *out,
                          tb_wire_diag *diag);

/* Frees what a decoded message owns and empties it. Safe on a message built for encoding (it
 * then only zeroes it) and on an already cleared one. */
void tb_wire_msg_clear(tb_wire_msg *m);

/* Encodes m into buf[0..cap). Returns 0 and the length in *outlen, TB_ERR_TOO_BIG when the
 * result would exceed cap or lim->max_msg_size or a field exceeds a limit, TB_ERR_INVAL for a
 * NULL/empty name, text that is not UTF-8 without control characters, or a NULL data pointer
 * with a nonzero length, TB_ERR_WIRE_UNKNOWN_TYPE for a bad m->type. lim NULL = defaults. */
TB_WUR int tb_wire_encode(const tb_wire_msg *m, const tb_wire_limits *lim, uint8_t *buf, size_t cap,
                          size_t *outlen);

/* True for the types allowed in a QUIC DATAGRAM frame (PING, PONG). */
bool tb_wire_datagram_ok(tb_wire_type type);

#endif
