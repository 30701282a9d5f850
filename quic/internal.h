/* Private to quic/: the endpoint and connection structs and what the files of the endpoint
 * share. quic/endpoint.h is the public API (opaque structs); nothing outside quic/ includes this.
 *
 * Who owns what:
 *   endpoint.c  socket, connection table and demultiplexing, dial, the public API's entry points
 *   conn.c      connection lifetime (close, drain, reap), ngtcp2 callbacks, the write loop
 *   stateless.c what is answered without a connection: Retry and its tokens, stateless reset,
 *               version negotiation, and accepting a new connection
 *   streams.c   message streams: send queue, receive
 *   datagram.c  DATAGRAM frames: send now or queue, receive
 *   admit.c     who may start a handshake: half-open limits, penalties and the ban table
 *   app.c       h3 connections (quic/app.h): their parameters, callbacks and write loop
 *   frame.c     the stream frame itself (quic/frame.h, pure)
 *   mem.c       the allocator given to ngtcp2, which wipes what it frees
 *   testing.c   test-only hooks (quic/testing.h), in their own library */
#ifndef TB_QUIC_INTERNAL_H
#define TB_QUIC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "quic/app.h"
#include "quic/endpoint.h"
#include "quic/frame.h"
#include "quic/tls.h"

/* One source-CID length for client and server connections, so short headers demultiplex. */
#define SCID_LEN 16
#define MAX_CIDS 16
#define PKT_MAX 1500
#define RX_BUF 65536
#define SECRET_LEN TB_QUIC_SECRET_LEN
#define MAX_BANS 64
#define MAX_PREFERRED 32 /* configured peers' addresses (tb_quic_endpoint_prefer) */
#define MAX_KNOWN 64     /* addresses of peers connected lately */

/* Keys of the endpoint's log rate limit: one per kind of line an outsider can repeat. */
enum {
    TB_QUIC_RL_HALF_OPEN = 1, /* a never-connected accepted connection closed */
    TB_QUIC_RL_ADMIT,         /* a new connection not admitted */
    TB_QUIC_RL_REFUSED,       /* a handshake refused */
    TB_QUIC_RL_JUNK,          /* a message dropped as malformed or oversized */
    TB_QUIC_RL_PENALTY,       /* a stalled stream reset, a peer penalized */
};

/* A misbehaving peer, refused until `until` by address (at its first packet) and by
 * certificate (at handshake, whatever address it comes from next). */
typedef struct tb_quic_ban {
    uint64_t until; /* 0: free slot; kept past `until` to remember a repeat offender */
    int family;
    uint8_t addr[16];
    uint8_t fingerprint[32];
    int has_fingerprint;
    unsigned strikes; /* bans in a row: the next lasts ban_ns << strikes, up to ban_max_ns */
} tb_quic_ban;

/* An IP address that gets room when the tables are full: a configured peer's, or one a peer
 * was connected from (until `seen` + TB_QUIC_KNOWN_NS). */
typedef struct tb_quic_known {
    uint64_t seen; /* 0: free slot */
    int family;
    uint8_t addr[16];
} tb_quic_known;

typedef struct txmsg {
    struct txmsg *next;
    int64_t id; /* -1 until its stream is opened */
    int blocked;
    int no_fin; /* test hook: the message is never finished */
    size_t len, sent;
    uint8_t data[]; /* 4-byte length prefix + message */
} txmsg;

typedef struct rxmsg {
    struct rxmsg *next;
    int64_t id;
    uint64_t started; /* when its first bytes came: it is reset if unfinished by the deadline */
    size_t counted;   /* bytes of it in the connection's rx_buffered */
    tb_quic_frame_rx frame;
} rxmsg;

typedef struct dgmsg {
    struct dgmsg *next;
    size_t len;
    uint8_t data[];
} dgmsg;

/* A connection's lifecycle; it only moves forward (DEAD from any state). */
typedef enum tb_quic_conn_state {
    TB_QUIC_CS_HANDSHAKE = 0, /* handshake under way */
    TB_QUIC_CS_CONFIRMED,     /* ngtcp2 confirmed the handshake; the peer is not judged yet */
    TB_QUIC_CS_CONNECTED,     /* peer accepted and announced (on_connected) */
    TB_QUIC_CS_CLOSING,       /* closing or draining: kept three PTOs for late packets */
    TB_QUIC_CS_DEAD,          /* forgotten: freed by the next reap, once on_closed was told */
} tb_quic_conn_state;

/* What a connection is or has pending besides its lifecycle (tb_quic_conn.flags). */
enum {
    TB_QUIC_CF_SERVER = 1u << 0,          /* accepted, not dialled */
    TB_QUIC_CF_HAS_ODCID = 1u << 1,       /* odcid is set */
    TB_QUIC_CF_IN_NGTCP2 = 1u << 2,       /* inside a call into ngtcp2: do not re-enter it */
    TB_QUIC_CF_RESET_RECEIVED = 1u << 3,  /* the peer's stateless reset was accepted */
    TB_QUIC_CF_CLOSE_REQUESTED = 1u << 4, /* close with close_code once out of ngtcp2 */
    TB_QUIC_CF_CLOSED_REPORTED = 1u << 5, /* counted and logged as closed */
    TB_QUIC_CF_REPORT_PENDING = 1u << 6,  /* on_closed is due from the next reap */
    TB_QUIC_CF_INFO_SET = 1u << 7,        /* info holds the first reason given for the end */
    TB_QUIC_CF_WRITE_PENDING = 1u << 8,   /* tb_quic_conn_write deferred to the end of this
                                             loop iteration */
    TB_QUIC_CF_APP = 1u << 9,             /* an h3 connection (quic/app.h), no mesh peer */
};

struct tb_quic_conn {
    tb_quic_conn *next, *prev;
    tb_quic_endpoint *ep;
    ngtcp2_conn *conn;
    tb_quic_tls *tls;
    ngtcp2_crypto_conn_ref ref;
    ev_timer timer;
    ngtcp2_cid scids[MAX_CIDS];
    size_t nscids;
    ngtcp2_cid odcid; /* the DCID the client chose: Initials may still carry it */
    tb_quic_peer peer;
    tb_quic_conn_state state;
    unsigned flags; /* TB_QUIC_CF_* */
    uint64_t close_code;
    tb_quic_close_info info;
    uint8_t close_pkt[PKT_MAX];
    size_t close_len;
    txmsg *tx_head, *tx_tail;
    size_t ntx;
    rxmsg *rx;
    dgmsg *dg_head, *dg_tail;
    size_t ndg;
    size_t rx_buffered; /* bytes of unfinished received messages */
    unsigned penalties;
    uint64_t heard;         /* tb_quic_now of the last packet that decrypted (0: none yet) */
    void *app;              /* an h3 connection's state in the application layer (quic/app.h) */
    uint64_t penalty_since; /* penalties decay one per penalty_decay_ns from here */
};

/* Two connections with one peer whose last packets are further apart than this: the one heard
 * from more recently is kept (the other is a leftover, e.g. of a peer that was stopped). */
#define TB_QUIC_STALE_NS (2ULL * 1000000000ULL)

struct tb_quic_endpoint {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    tb_quic_callbacks cb;
    tb_quic_mode mode;
    int retry;
    uint64_t idle_ns, keep_alive_ns, connect_timeout_ns;
    size_t max_msg, max_conns, sockbuf;
    char name[TB_QUIC_NAME_MAX];
    int fd;
    ev_io rio;
    struct sockaddr_storage local;
    socklen_t locallen;
    tb_quic_tls_ctx *tls;
    uint8_t secret[SECRET_LEN]; /* keys stateless resets and Retry tokens; wiped on destroy */
    tb_quic_conn *conns;
    size_t nconns;
    ev_timer reap;
    ev_prepare flush; /* runs deferred writes before the loop next blocks */
    int shutting_down, shutdown_pending;
    uint64_t rx_mono;
    int64_t rx_real;
    uint8_t rxbuf[RX_BUF];
    tb_quic_stats stats;
    size_t max_half_open, max_half_open_addr, max_half_open_prefix;
    uint64_t half_open_ns, stream_timeout_ns, ban_ns, ban_max_ns, penalty_decay_ns;
    size_t max_streams_in, max_buffered;
    unsigned max_penalties;
    tb_quic_ban bans[MAX_BANS];
    tb_quic_known preferred[MAX_PREFERRED]; /* seen = 1 for every used slot */
    size_t npreferred;
    tb_quic_known known[MAX_KNOWN];
    tb_log_ratelimit rl;
    ev_timer sweep;    /* once a second: stalled streams, the half-open gauge */
    int testing_stall; /* quic/testing.h: take Retry packets only, as a stalling attacker */
    const tb_quic_app_ops *app_ops; /* h3 connections, when set (quic/app.h) */
};

/* A handshake this endpoint accepted and that is not confirmed yet. */
static inline int tb_quic_conn_half_open(const tb_quic_conn *c)
{
    return (c->flags & TB_QUIC_CF_SERVER) && c->state == TB_QUIC_CS_HANDSHAKE;
}

/* Everything ngtcp2_conn_{client,server}_new takes besides the CIDs. */
typedef struct tb_quic_conn_setup {
    ngtcp2_callbacks cb;
    ngtcp2_settings s;
    ngtcp2_transport_params p;
    ngtcp2_path path;
} tb_quic_conn_setup;

/* Closing, draining or dead: nothing more is sent or handed up. */
static inline int tb_quic_conn_gone(const tb_quic_conn *c)
{
    return c->state >= TB_QUIC_CS_CLOSING;
}

/* ---- endpoint.c */
TB_WUR int tb_quic_socket_open(tb_quic_endpoint *ep, const struct sockaddr_storage *addr,
                               socklen_t len);
void tb_quic_send_to(tb_quic_endpoint *ep, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *pkt, size_t len);
tb_quic_conn *tb_quic_find_connected(tb_quic_endpoint *ep, const char *name, tb_quic_conn *skip);

/* ---- conn.c */
uint64_t tb_quic_now(const tb_quic_endpoint *ep);
ngtcp2_path tb_quic_path(tb_quic_endpoint *ep, const struct sockaddr *remote, socklen_t len);
const char *tb_quic_conn_addr(const tb_quic_conn *c, char *buf);
void tb_quic_path_send(tb_quic_conn *c, const ngtcp2_path *path, const uint8_t *pkt, size_t len);
void tb_quic_schedule_reap(tb_quic_endpoint *ep);
void tb_quic_conn_set_info(tb_quic_conn *c, tb_quic_close_reason reason, tb_quic_refusal refusal,
                           uint64_t code, int app);
void tb_quic_conn_close_app(tb_quic_conn *c, uint64_t code);
void tb_quic_conn_close_liberr(tb_quic_conn *c, int liberr);
void tb_quic_conn_free(tb_quic_conn *c);
void tb_quic_on_reap(struct ev_loop *loop, ev_timer *w, int revents);
void tb_quic_conn_write(tb_quic_conn *c);
/* tb_quic_conn_write before the loop next blocks (many packets read, one write). */
void tb_quic_conn_defer_write(tb_quic_conn *c);
void tb_quic_on_flush(struct ev_loop *loop, ev_prepare *w, int revents);
void tb_quic_conn_on_packet(tb_quic_conn *c, const uint8_t *pkt, size_t len,
                            const struct sockaddr *src, socklen_t srclen);
int tb_quic_conn_new_cid(tb_quic_conn *c, ngtcp2_cid *cid, size_t len, uint8_t *token);
void tb_quic_conn_confirm_early(tb_quic_conn *c);
void tb_quic_conn_setup_init(tb_quic_conn_setup *st, tb_quic_conn *c);
tb_quic_conn *tb_quic_conn_alloc(tb_quic_endpoint *ep, const struct sockaddr *remote,
                                 socklen_t remotelen, int server);
void tb_quic_conn_link(tb_quic_endpoint *ep, tb_quic_conn *c);
void tb_quic_conn_unbuilt_free(tb_quic_conn *c);
TB_WUR int tb_quic_conn_attach_tls(tb_quic_conn *c, const char *expected);
int tb_quic_conn_usable(const tb_quic_conn *c);

/* ---- app.c */
void tb_quic_app_params(ngtcp2_transport_params *p);
void tb_quic_app_callbacks(ngtcp2_callbacks *cb);
/* The handshake of an h3 connection is confirmed and its peer accepted: hand it over. */
void tb_quic_app_start(tb_quic_conn *c);
void tb_quic_app_free(tb_quic_conn *c);
int tb_quic_app_recv(tb_quic_conn *c, uint32_t flags, int64_t id, const uint8_t *data, size_t len);
int tb_quic_app_stream_close(tb_quic_conn *c, uint32_t flags, int64_t id, uint64_t code);
/* The write loop of an h3 connection (tb_quic_conn_write calls it). */
TB_WUR int tb_quic_app_write(tb_quic_conn *c);

/* ---- admit.c */
TB_WUR int tb_quic_admit_config(tb_quic_endpoint *ep, const tb_quic_config *cfg);
/* Whether a connection from src may be created now (counts and logs a refusal). */
tb_quic_admit tb_quic_admit_check(tb_quic_endpoint *ep, const struct sockaddr *src,
                                  socklen_t srclen);
/* Before dialling with the table full: room for a configured or known peer at sa, made by
 * dropping another's half-open handshake. 1 when made. */
int tb_quic_admit_room_to_dial(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen);
/* c's peer is connected (or was, until now): its address gets room for a while. */
void tb_quic_admit_known(tb_quic_conn *c);
/* Drops a half-open connection at once, sending nothing (its slot goes to a newcomer). */
void tb_quic_conn_evict(tb_quic_conn *c);
/* After a connection was created: the half-open gauge and its peak. */
void tb_quic_admit_count(tb_quic_endpoint *ep);
/* tb_quic_conn_penalize with a weight: max_penalties disconnects at once (a budget broken). */
void tb_quic_conn_penalize_by(tb_quic_conn *c, const char *reason, unsigned weight);
int tb_quic_banned_fingerprint(const tb_quic_endpoint *ep, const uint8_t fp[32]);
void tb_quic_on_sweep(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- mem.c */
/* For every ngtcp2_conn: wipes each block before freeing it (ngtcp2 keeps keys in them). */
const ngtcp2_mem *tb_quic_mem(void);

/* ---- stateless.c */
/* The stateless reset token of one of our CIDs, keyed by the endpoint's static secret (the one
 * place that reads it besides Retry tokens). */
TB_WUR int tb_quic_reset_token(const tb_quic_endpoint *ep, const ngtcp2_cid *cid, uint8_t *token);
void tb_quic_send_version_negotiation(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
                                      size_t pktlen, const struct sockaddr *src, socklen_t srclen);
void tb_quic_on_unknown_packet(tb_quic_endpoint *ep, const ngtcp2_version_cid *vc,
                               const uint8_t *pkt, size_t len, const struct sockaddr *src,
                               socklen_t srclen);

/* ---- streams.c */
txmsg *tb_quic_stream_next(tb_quic_conn *c);
/* fin 0 (tests only): the stream is never finished. */
TB_WUR int tb_quic_stream_queue(tb_quic_conn *c, const uint8_t *hdr, size_t hdrlen,
                                const uint8_t *data, size_t len, int fin);
void tb_quic_streams_free(tb_quic_conn *c);
/* Resets the streams unfinished past the deadline (penalizing the peer for each). */
void tb_quic_streams_sweep(tb_quic_conn *c, uint64_t now);
int tb_quic_cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                                const uint8_t *data, size_t len, void *user_data, void *sud);
int tb_quic_cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error,
                            void *user_data, void *sud);

/* ---- datagram.c */
void tb_quic_dgram_flush(tb_quic_conn *c);
void tb_quic_dgram_free(tb_quic_conn *c);
int tb_quic_cb_recv_datagram(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                             void *user_data);

#endif
