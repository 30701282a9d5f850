/* The QUIC endpoint of the mesh (ngtcp2 0.12.1 + GnuTLS, see adr/0002): one UDP socket that
 * accepts peers (server/hybrid) and dials peers (client/hybrid), mutual TLS 1.3 against the mesh
 * CA only, ALPN "tbmesh/1". It owns the socket, every connection, their timers and the TLS
 * sessions; it carries opaque messages (one per stream) and datagrams, and knows
 * nothing about what they mean (the mesh layer above does).
 *
 * Everything is driven by the libev loop given at creation; the log and clock are passed in, so
 * several endpoints can live in one process and one loop. Callbacks run from the loop, never
 * from inside a call into this API. A callback may call any function here, except
 * tb_quic_endpoint_destroy (allowed in on_shutdown only).
 *
 * Messages: one per stream (bidirectional, used one way: see adr/0003), framed as adr/0003 says
 * (4-byte big-endian length 1..max_message_size, the message, FIN). The endpoint writes and checks
 * that frame itself: callers pass and receive the encoded message only. A frame over the limit is
 * refused at its first 4 bytes (stream reset TB_QUIC_STREAM_TOO_BIG, counter), never buffered.
 *
 * Peers: a peer is connected once the handshake is confirmed and its certificate passed the mesh
 * CA, the key purpose, the node profile (certs/identity.h) and, when dialled with one, the
 * expected name. There is one connection per pair of nodes: when both dial, each keeps the
 * connection dialled by the node whose name sorts lower and closes the other with
 * TB_QUIC_APP_DUPLICATE. So on_closed(TB_QUIC_CLOSED_DUPLICATE) may follow an on_connected for
 * the same peer: the peer is still connected through the other connection (tb_quic_find_peer),
 * and messages queued on the closed one may be lost; resend what matters. */
#ifndef TB_QUIC_ENDPOINT_H
#define TB_QUIC_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

struct ev_loop;

typedef struct tb_quic_endpoint tb_quic_endpoint;
typedef struct tb_quic_conn tb_quic_conn;

#define TB_QUIC_ALPN "tbmesh/1"
#define TB_QUIC_NAME_MAX 64
/* Longest numeric "[addr]:port" text (common/addr.h tb_addr_format_sockaddr), with its
 * terminator. */
#define TB_QUIC_ADDRSTR_MAX 64
#define TB_QUIC_SECRET_LEN 32

typedef enum tb_quic_mode {
    TB_QUIC_MODE_SERVER = 1, /* accepts only */
    TB_QUIC_MODE_CLIENT = 2, /* dials only; the socket still binds the listen address if given */
    TB_QUIC_MODE_HYBRID = 3, /* both, from the same socket */
} tb_quic_mode;

/* Why a handshake was refused, by this endpoint or (seen through the close code) by the peer. */
typedef enum tb_quic_refusal {
    TB_QUIC_REFUSE_NONE = 0,
    TB_QUIC_REFUSE_NO_CERT,   /* the peer sent no certificate */
    TB_QUIC_REFUSE_UNTRUSTED, /* not signed by the mesh CA (foreign CA, bad signature) */
    TB_QUIC_REFUSE_EXPIRED,   /* expired or not yet valid */
    TB_QUIC_REFUSE_PURPOSE,   /* missing the clientAuth/serverAuth key purpose */
    TB_QUIC_REFUSE_NAME,      /* node name differs from the one dialled */
    TB_QUIC_REFUSE_IDENTITY,  /* certificate carries no usable node name / region */
    TB_QUIC_REFUSE_ALPN,      /* the client offered no "tbmesh/1" */
    TB_QUIC_REFUSE_TLS,       /* any other TLS failure (bad alert, protocol error...) */
    TB_QUIC_REFUSE_BY_PEER,   /* the peer refused us (TLS alert in its CONNECTION_CLOSE) */
    TB_QUIC_REFUSE_BANNED,  /* its certificate is banned for misbehaving (tb_quic_conn_penalize) */
    TB_QUIC_REFUSE_REVOKED, /* its certificate is on the mesh's revocation list */
    TB_QUIC_REFUSE_COUNT
} tb_quic_refusal;

const char *tb_quic_refusal_name(tb_quic_refusal r);

/* Why a new connection was not admitted, before any handshake (tb_quic_stats.admission). Each
 * is answered with a stateless CONNECTION_CLOSE (CONNECTION_REFUSED) once the address is
 * validated by a Retry token, dropped otherwise; nothing is kept. */
typedef enum tb_quic_admit {
    TB_QUIC_ADMIT_OK = 0,
    TB_QUIC_ADMIT_TABLE_FULL,     /* max_connections reached */
    TB_QUIC_ADMIT_HALF_OPEN_FULL, /* max_half_open handshakes under way */
    TB_QUIC_ADMIT_PER_ADDR,       /* max_half_open_per_addr from this IP address */
    TB_QUIC_ADMIT_PER_PREFIX,     /* max_half_open_per_prefix from its /24 (IPv4) or /64 */
    TB_QUIC_ADMIT_BANNED,         /* the address is banned (tb_quic_conn_penalize) */
    TB_QUIC_ADMIT_COUNT
} tb_quic_admit;

const char *tb_quic_admit_name(tb_quic_admit a);

/* Why a connection ended (on_closed). */
typedef enum tb_quic_close_reason {
    TB_QUIC_CLOSED_LOCAL = 0,       /* tb_quic_close or shutdown from this side */
    TB_QUIC_CLOSED_PEER,            /* the peer sent CONNECTION_CLOSE (see code/app) */
    TB_QUIC_CLOSED_IDLE,            /* idle timeout */
    TB_QUIC_CLOSED_CONNECT_TIMEOUT, /* handshake not confirmed in time */
    TB_QUIC_CLOSED_REFUSED,         /* handshake refused (see refusal) */
    TB_QUIC_CLOSED_RESET,           /* stateless reset received */
    TB_QUIC_CLOSED_DUPLICATE,       /* lost the "one connection per pair" tie-break */
    TB_QUIC_CLOSED_ERROR,           /* protocol or internal error */
} tb_quic_close_reason;

const char *tb_quic_close_reason_name(tb_quic_close_reason r);

/* Application close codes this endpoint sends (CONNECTION_CLOSE, application type). */
enum {
    TB_QUIC_APP_NO_ERROR = 0,
    TB_QUIC_APP_SHUTDOWN = 1,    /* the node is stopping */
    TB_QUIC_APP_DUPLICATE = 2,   /* the other connection between the same pair is kept */
    TB_QUIC_APP_IDENTITY = 3,    /* handshake passed but the peer's identity is not acceptable */
    TB_QUIC_APP_MISBEHAVING = 4, /* over a budget or too many invalid messages: banned a while */
    TB_QUIC_APP_USER_BASE = 16,  /* codes from 16 up are the caller's (tb_quic_close) */
};

/* STOP_SENDING codes for a dropped message: over max_message_size, or a frame that lies about
 * its length (empty, bytes after it, FIN before its end). Each also counts as a penalty. */
#define TB_QUIC_STREAM_TOO_BIG 0x10
#define TB_QUIC_STREAM_MALFORMED 0x11
/* STOP_SENDING for a message still unfinished at stream_timeout_ns. */
#define TB_QUIC_STREAM_TIMEOUT 0x12

/* Who is at the other end: from the peer's verified certificate. */
typedef struct tb_quic_peer {
    char name[TB_QUIC_NAME_MAX];   /* node name (URI SAN urn:tbmesh:node:, also CN) */
    char region[TB_QUIC_NAME_MAX]; /* URI SAN urn:tbmesh:region: */
    uint8_t fingerprint[32];       /* SHA-256 of the certificate DER */
    int64_t not_after;             /* Unix seconds */
    struct sockaddr_storage addr;  /* current remote address (changes on migration) */
    socklen_t addrlen;
    int dialled; /* 1 if this endpoint dialled the connection */
    /* The verified certificate (DER). Only inside on_connected; NULL everywhere else, since the
     * TLS session that holds it is released once the peer is connected. */
    const uint8_t *cert;
    size_t cert_len;
} tb_quic_peer;

typedef struct tb_quic_close_info {
    tb_quic_close_reason reason;
    tb_quic_refusal refusal; /* when reason is TB_QUIC_CLOSED_REFUSED */
    uint64_t code;           /* QUIC error code sent or received, 0 when none */
    int app;                 /* 1 if code is an application code */
    int was_connected;       /* on_connected had been called for this connection */
} tb_quic_close_info;

typedef struct tb_quic_callbacks {
    /* The handshake is confirmed and the peer's certificate accepted. */
    void (*on_connected)(void *arg, tb_quic_conn *c, const tb_quic_peer *peer);
    /* The connection is gone (after this call c is invalid). peer->name is empty when the
     * handshake never produced an identity. Called for every connection that was dialled or
     * accepted, connected or not. */
    void (*on_closed)(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info);
    /* This endpoint refused a handshake (also logged with reason and address). */
    void (*on_refused)(void *arg, const struct sockaddr *addr, socklen_t addrlen,
                       tb_quic_refusal reason, const char *detail);
    /* One complete message from a stream, at most max_message_size bytes. */
    void (*on_stream_message)(void *arg, tb_quic_conn *c, const uint8_t *msg, size_t len);
    /* One DATAGRAM frame; rx_mono_ns/rx_real_ns are read from the clock when the UDP packet
     * carrying it was taken from the socket. */
    void (*on_datagram)(void *arg, tb_quic_conn *c, const uint8_t *data, size_t len,
                        uint64_t rx_mono_ns, int64_t rx_real_ns);
    /* tb_quic_endpoint_shutdown finished: every connection closed, its close on the wire and
     * its on_closed delivered. The one callback that may destroy the endpoint. */
    void (*on_shutdown)(void *arg);
    void *arg;
} tb_quic_callbacks;

typedef struct tb_quic_config {
    const char *listen; /* "127.0.0.11:4433", "[::1]:0"; port 0 = ephemeral */
    tb_quic_mode mode;
    /* PEM chain of this node and its key. Both may be NULL in client mode only: such a client
     * is refused by every mesh node, which is what probes and tests want. */
    const char *cert_file;
    const char *key_file;
    const char *ca_file;         /* PEM mesh CA: the only trust anchor */
    const char *node_name;       /* this node's name, for the duplicate tie-break and logs */
    int retry;                   /* -1 default (on for server/hybrid), 0 off, 1 on */
    uint64_t idle_timeout_ns;    /* 0: default 30 s */
    uint64_t keep_alive_ns;      /* 0: default idle/3; UINT64_MAX disables */
    uint64_t connect_timeout_ns; /* 0: default 10 s */
    size_t max_message_size;     /* 0: default 64 KiB; a received message above it is dropped */
    size_t max_connections;      /* 0: default 256 */
    /* UDP receive and send buffer asked of the kernel, bytes (0: default 4 MiB, at most
     * 1 GiB). The kernel's default (208 KiB) overflowed at 20 nodes. Granted beyond
     * net.core.rmem_max / wmem_max only with CAP_NET_ADMIN; see tb_quic_stats. */
    size_t socket_buffer;
    /* TB_QUIC_SECRET_LEN bytes kept across restarts, so the stateless resets a restarted node
     * sends are recognised by its old peers (also keys Retry tokens); NULL: random. */
    const uint8_t *static_secret;
    /* Admission of accepted connections. A half-open connection (handshake not confirmed) has
     * its own limits, below max_connections, so handshakes can never take the room of
     * established peers; one that does not confirm within half_open_timeout_ns is dropped. */
    size_t max_half_open;            /* 0: default max_connections / 4 (below max_connections) */
    size_t max_half_open_per_addr;   /* 0: default 8, per source IP address */
    size_t max_half_open_per_prefix; /* 0: default 32, per /24 (IPv4) or /64 (IPv6) */
    uint64_t half_open_timeout_ns;   /* 0: default 5 s (and never above connect_timeout) */
    /* Per-connection budgets (hostile peers with valid certificates too). */
    size_t max_streams_in;      /* 0: default 16 incoming streams open at once */
    size_t max_buffered;        /* 0: default max_streams_in * max_message_size: bytes of
                                   unfinished messages per connection; over it the peer is
                                   disconnected and banned */
    uint64_t stream_timeout_ns; /* 0: default 10 s: a message not finished by then is reset */
    unsigned max_penalties;     /* 0: default 16 invalid messages/stalls before disconnecting */
    uint64_t penalty_decay_ns;  /* 0: default 60 s: one penalty is forgiven per interval, so
                                   rare faults of a long-lived peer never add up to a ban */
    uint64_t ban_ns;            /* 0: default 10 min: how long a disconnected misbehaving peer
                                   (address and certificate) is not re-admitted */
    uint64_t ban_max_ns;        /* 0: default 6 h: a repeat offender's ban doubles each time
                                   (ban_ns, 2 ban_ns, ...) up to this; forgotten after it has
                                   stayed away this long past its last ban */
} tb_quic_config;

/* Counters, for operators and tests. */
typedef struct tb_quic_stats {
    uint64_t accepted, dialled, connected, closed;
    uint64_t refused[TB_QUIC_REFUSE_COUNT];
    uint64_t retries_sent, retry_tokens_bad;
    uint64_t stateless_resets_sent, stateless_resets_received;
    uint64_t msgs_sent, msgs_received, msgs_dropped_oversized, msgs_dropped_malformed;
    uint64_t dgrams_sent, dgrams_received, dgrams_dropped;
    uint64_t duplicates_closed, migrations;
    uint64_t packets_in, packets_out, packets_dropped;
    /* What the kernel granted for the current socket (getsockopt: it doubles what it is
     * asked, for its own overhead). */
    uint64_t socket_rcvbuf, socket_sndbuf;
    /* Admission: refusals by reason (index TB_QUIC_ADMIT_*), half-open handshakes now and at
     * most, those dropped at their deadline. */
    uint64_t admission[TB_QUIC_ADMIT_COUNT];
    uint64_t half_open, half_open_peak, half_open_timeouts;
    uint64_t half_open_evicted; /* dropped for a newcomer when the half-open table was full */
    uint64_t preferred_room;    /* a configured or known peer admitted (or dialled) by taking the
                                   slot of another's handshake, or past the per-prefix limit */
    /* Budgets: penalties given, streams reset for stalling, peers disconnected and banned. */
    uint64_t penalties, streams_stalled, peers_banned;
    uint64_t buffered_peak; /* most bytes of unfinished messages one connection held */
} tb_quic_stats;

/* Opens the socket and loads the certificates. Errors name the file or address. */
TB_WUR int tb_quic_endpoint_create(tb_quic_endpoint **out, struct ev_loop *loop, const tb_log *log,
                                   const tb_clock *clock, const tb_quic_config *cfg,
                                   const tb_quic_callbacks *cb);
/* Frees everything at once, sending nothing (use shutdown first for a clean stop). */
void tb_quic_endpoint_destroy(tb_quic_endpoint *ep);

/* This node's certificate chain and key (PEM) and the mesh's revocation list (a DER X.509 CRL
 * signed by the CA, checked by the caller; NULL when none), for every handshake that starts
 * from now on: handshakes under way and established connections keep what they started with.
 * Nothing changes when the new credentials do not load (the log says why). The CA stays the
 * one loaded at creation. */
typedef struct tb_quic_credentials {
    const uint8_t *cert_pem, *key_pem, *crl_der;
    size_t cert_len, key_len, crl_len;
} tb_quic_credentials;

TB_WUR int tb_quic_endpoint_set_credentials(tb_quic_endpoint *ep, const tb_quic_credentials *c);

/* A configured peer's address ("host:port" or "[v6]:port", numeric; the port is ignored).
 * Handshakes from its IP address are admitted even when the tables are full of others: past
 * the per-prefix limit, in the slot of the oldest other half-open handshake, and in slots of
 * the connection table kept free while configured peers are not connected (at most a quarter
 * of it). Peers that were connected within the last hour (by IP address) get the same room.
 * TB_ERR_INVAL for a name or bad address, TB_ERR_FULL past 32 addresses. */
TB_WUR int tb_quic_endpoint_prefer(tb_quic_endpoint *ep, const char *addr);

/* The bound local address (to learn an ephemeral port). */
TB_WUR int tb_quic_endpoint_local_addr(const tb_quic_endpoint *ep, struct sockaddr_storage *out,
                                       socklen_t *len);
const tb_quic_stats *tb_quic_endpoint_stats(const tb_quic_endpoint *ep);

/* Starts a handshake to addr ("host:port", "[v6]:port"; numeric). expected_name, when not
 * NULL, must equal the peer's certificate node name, or the handshake is refused
 * (TB_QUIC_REFUSE_NAME). The result is reported through on_connected / on_closed. */
TB_WUR int tb_quic_dial(tb_quic_endpoint *ep, const char *addr, const char *expected_name,
                        tb_quic_conn **out);
TB_WUR int tb_quic_dial_sa(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen,
                           const char *expected_name, tb_quic_conn **out);

/* The connected connection to a peer by node name, or NULL. */
tb_quic_conn *tb_quic_find_peer(tb_quic_endpoint *ep, const char *name);
/* The peer of a connection (name empty until connected). */
const tb_quic_peer *tb_quic_conn_peer(const tb_quic_conn *c);
/* Round-trip estimate of the connection (QUIC smoothed RTT), ns. */
uint64_t tb_quic_conn_srtt(const tb_quic_conn *c);

/* Queues one message on a new stream. TB_ERR_TOO_BIG above max_message_size,
 * TB_ERR_STATE when not connected, TB_ERR_FULL when the peer's stream limit is used up. */
TB_WUR int tb_quic_send_stream(tb_quic_conn *c, const uint8_t *msg, size_t len);
TB_WUR int tb_quic_send_stream_to(tb_quic_endpoint *ep, const char *peer_name, const uint8_t *msg,
                                  size_t len);
/* Sends one DATAGRAM frame now (unreliable, never retransmitted). TB_ERR_TOO_BIG when it
 * cannot fit in one packet, TB_ERR_AGAIN when congestion control says wait. */
TB_WUR int tb_quic_send_datagram(tb_quic_conn *c, const uint8_t *data, size_t len);
TB_WUR int tb_quic_send_datagram_to(tb_quic_endpoint *ep, const char *peer_name,
                                    const uint8_t *data, size_t len);

/* For the layer above: a message from this peer failed to decode (reason, for the log). The
 * endpoint counts these with its own (malformed frames, stalled streams); at max_penalties the
 * peer is closed with TB_QUIC_APP_MISBEHAVING and its address and certificate are refused for
 * ban_ns. */
void tb_quic_conn_penalize(tb_quic_conn *c, const char *reason);

/* The arithmetic of penalties and bans (pure): the penalties left of `penalties` counted
 * since *since, one forgiven per decay_ns up to now (*since moves on by the intervals used, to
 * now when none is left); and the length of an offender's `strikes`th ban in a row (≥ 1):
 * ban_ns doubling, at most ban_max_ns. */
unsigned tb_quic_penalty_decay(unsigned penalties, uint64_t *since, uint64_t decay_ns,
                               uint64_t now);
uint64_t tb_quic_ban_length(uint64_t ban_ns, uint64_t ban_max_ns, unsigned strikes);

/* Closes with an application code (TB_QUIC_APP_*); on_closed follows from the loop. */
void tb_quic_close(tb_quic_conn *c, uint64_t app_code);
/* CONNECTION_CLOSE (TB_QUIC_APP_SHUTDOWN) to every connection, stops accepting, then
 * on_shutdown once the closes are on the wire. */
void tb_quic_endpoint_shutdown(tb_quic_endpoint *ep);

#endif
