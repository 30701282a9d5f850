/* The peer table: every node this node knows of, how it learned of it, and what to do about it
 * next (dial, give up on a slow dial). Pure logic: no I/O, no clock; each
 * call takes `now` (monotonic ns) and tb_peers_poll says when it next needs to run.
 *
 * Entries are keyed by node name. A seed (--peer) starts as an address without a name; the first
 * confirmed handshake names it (tb_peers_connected). Entries learned from a PEERS message are
 * untrusted input and are validated strictly (tb_peers_learn); the certificate of a learned entry
 * is only a hint until a handshake against the mesh CA confirms the peer ("verified"). Only
 * verified peers (and this node itself) are passed on to others (tb_peers_export), so one liar
 * cannot spread entries through the mesh.
 *
 * Peers are referred to by a uint32_t id that is never reused within one table. */
#ifndef TB_DISCOVERY_PEERS_H
#define TB_DISCOVERY_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/error.h"
#include "common/name.h"

#define TB_PEERS_NAME_MAX TB_NAME_MAX /* node names and regions: tb_name_valid */
#define TB_PEERS_ADDR_MAX 259         /* "host:port"; host ≤ 253 (DNS) or a bracketed IPv6 */
#define TB_PEERS_MAX_ADDRS 4          /* addresses kept per peer */
#define TB_PEERS_CERT_MAX 4096        /* DER bytes of one certificate */
#define TB_PEERS_MAX_CAP 4096         /* hard upper bound on the configurable table size */

typedef enum tb_peer_state {
    TB_PEER_IDLE = 0,       /* nothing under way (no address to dial, or not yet dialled) */
    TB_PEER_CONNECTING = 1, /* a dial is under way; aborted at its connect deadline */
    TB_PEER_CONNECTED = 2,  /* handshake confirmed */
    TB_PEER_BACKOFF = 3,    /* waiting before the next dial */
} tb_peer_state;

typedef enum tb_peer_source {
    TB_PEER_SEED = 0,    /* from --peer / the config */
    TB_PEER_LEARNED = 1, /* from a PEERS message */
    TB_PEER_INBOUND = 2, /* it connected to us first */
} tb_peer_source;

typedef struct tb_peers_config {
    const char *self_name;       /* this node's name: never dialled, never learned */
    size_t max_peers;            /* table size, 1..TB_PEERS_MAX_CAP */
    size_t max_connecting;       /* dials under way at once (0 = no limit) */
    uint64_t connect_timeout_ns; /* a dial not confirmed by then is aborted */
    uint64_t backoff_initial_ns; /* delay after the first failure */
    uint64_t backoff_max_ns;     /* cap on the doubling delay */
    unsigned jitter_permille;    /* up to this share of a delay is randomly taken off (≤ 1000) */
    /* A learned entry never verified that failed this many dials in a row is forgotten
     * (0 = never): anyone can make up members at addresses the policy lets through. */
    unsigned forget_after_failures;
    /* Dials to learned entries no handshake has confirmed yet, per peer they were learned
     * from (tb_peers_learn_from): this many at once, then this many per minute (0: no
     * limit). Their addresses back off on their own too: one that did not answer is dialled
     * again, whatever entry names it, only after the backoff of its failures in a row, and
     * never twice at once. */
    unsigned learned_dials_per_min, learned_dials_burst;
    /* A connection that closes sooner than this after it came up counts as a failed dial (the
     * peer refused us: its table was full, it refused our identity, ...), so the backoff grows
     * instead of starting over; one that lasted starts the count afresh. */
    uint64_t stable_ns;
    uint64_t rng_seed; /* seeds the jitter; tests pass a fixed value, nodes a random one */
    /* Addresses learned from PEERS must pass it (common/addr.h, copied at tb_peers_new); NULL:
     * syntax only. Seeds are the operator's and are not checked. */
    const tb_addr_policy *addr_policy;
} tb_peers_config;

/* Sane defaults: 64 peers, 8 dials at once, 10 s connect timeout, backoff 1 s doubling to
 * 60 s with 20 % jitter, forget after 8 failures, stable after 30 s,
 * learned entries dialled 4 at once then 6 a minute per peer they came from. */
void tb_peers_config_default(tb_peers_config *cfg, const char *self_name, uint64_t rng_seed);

/* A string that need not be NUL-terminated (as decoded off the wire). */
typedef struct tb_peers_str {
    const char *p;
    size_t len;
} tb_peers_str;

/* One peer as learned from / exported into a PEERS message. */
typedef struct tb_peer_info {
    tb_peers_str name;
    tb_peers_str region;
    tb_peers_str addrs[TB_PEERS_MAX_ADDRS];
    size_t naddrs;
    const uint8_t *cert; /* DER */
    size_t cert_len;
} tb_peer_info;

/* A read-only view of one entry; its pointers stay valid until the table next changes. */
typedef struct tb_peer_view {
    uint32_t id;
    const char *name;   /* "" while a seed is unnamed */
    const char *region; /* "" until known */
    const char *addrs[TB_PEERS_MAX_ADDRS];
    size_t naddrs;
    const uint8_t *cert;
    size_t cert_len;
    int verified; /* a handshake against the mesh CA confirmed this name and certificate */
    tb_peer_source source;
    tb_peer_state state;
    unsigned failures;  /* consecutive failed dials */
    int wanted;         /* dialled when due (tb_peers_set_wanted) */
    uint64_t next_time; /* connect deadline (CONNECTING) or next dial (BACKOFF), else 0 */
} tb_peer_view;

typedef enum tb_peers_do {
    TB_PEERS_DO_DIAL = 1,  /* dial addr; then tb_peers_connected or tb_peers_dial_failed */
    TB_PEERS_DO_ABORT = 2, /* the dial to this peer timed out: abandon it (now in backoff) */
} tb_peers_do;

typedef struct tb_peers_action {
    tb_peers_do what;
    uint32_t id;
    char addr[TB_PEERS_ADDR_MAX + 1]; /* for DIAL: which of the peer's addresses to use */
} tb_peers_action;

typedef struct tb_peers tb_peers;

TB_WUR int tb_peers_new(const tb_peers_config *cfg, tb_peers **out);
void tb_peers_free(tb_peers *t);

/* Syntax check for an untrusted address (explicit length; no NUL needed): "host:port" or
 * "[v6]:port" as tb_addr_parse (common/addr.h) accepts it, and at most TB_PEERS_ADDR_MAX bytes.
 * Names and regions follow tb_name_valid (common/name.h). */
int tb_peers_addr_valid(const char *s, size_t len);

/* Adds a seed address (unnamed until its first handshake). Adding the same address twice
 * returns the existing id. TB_ERR_INVAL for a bad address, TB_ERR_FULL when no room. */
TB_WUR int tb_peers_add_seed(tb_peers *t, const char *addr, uint32_t *id);

/* Merges one untrusted entry from a PEERS message or a mesh v2 descriptor (which has no
 * certificate: cert NULL, cert_len 0). Entries naming this node are ignored (0).
 * A new name gets a new entry (dialled when it has an address; a node that does not listen,
 * such as one in client mode, has none and is kept for its certificate); a known one gains any
 * new addresses, and a certificate if it had none. Addresses the policy refuses are left out
 * (counted: tb_peers_addrs_refused); a new entry whose every address is refused is not stored
 * (TB_ERR_INVAL), so nobody can aim this node's dials, or fill its table, with them. A sender with
 * more addresses than TB_PEERS_MAX_ADDRS should pass the first ones: more is TB_ERR_TOO_BIG.
 * Errors: TB_ERR_MALFORMED (name, region, address or certificate syntax), TB_ERR_TOO_BIG (over a
 * cap), TB_ERR_FULL (no room). `id` (optional) gets the entry. */
TB_WUR int tb_peers_learn(tb_peers *t, const tb_peer_info *info, uint32_t *id);
/* The same, learned from peer `from`, whose budget of dials (learned_dials_per_min) the
 * entry's dials are charged to until a handshake confirms it. NULL: the caller knows the name
 * is real (its certificate passed the mesh CA): no source's budget, though the per-address
 * backoff and forgetting still apply. */
TB_WUR int tb_peers_learn_from(tb_peers *t, const tb_peer_info *info, const char *from,
                               uint32_t *id);

/* Replaces the certificate of entry `id` with one the caller verified against the mesh CA
 * (a renewed certificate of that node), so exports pass the new one on. The entry's verified
 * state is unchanged. TB_ERR_NOTFOUND, TB_ERR_MALFORMED (empty or over TB_PEERS_CERT_MAX). */
TB_WUR int tb_peers_set_cert(tb_peers *t, uint32_t id, const uint8_t *cert, size_t cert_len);

/* This node's own entry, sent first in every export (its advertised addresses: none for a
 * node that does not listen). */
TB_WUR int tb_peers_set_self(tb_peers *t, const tb_peer_info *self);

/* A dial to `id` completed its handshake (confirmed), and the peer's certificate says `name`,
 * `region`. Marks the entry connected and verified, stores the certificate and resets the
 * backoff. A seed that turns out to be a node already in the table is merged into that entry
 * (its address joins it, the seed entry goes): *id_out gets the surviving id. Errors:
 *   TB_ERR_VERIFY: the entry was learned under another name (the dial is treated as failed);
 *   TB_ERR_INVAL: the name is this node's own (the seed entry is dropped);
 *   TB_ERR_EXISTS: the peer is already connected through another connection (the table keeps
 *     one connection per peer: the caller closes one of the two; *id_out is the peer's id);
 *   TB_ERR_MALFORMED/TB_ERR_TOO_BIG: bad name, region or certificate. */
TB_WUR int tb_peers_connected(tb_peers *t, uint32_t id, const char *name, const char *region,
                              const uint8_t *cert, size_t cert_len, uint64_t now, uint32_t *id_out);

/* A peer connected to us and its handshake is confirmed. Same rules as tb_peers_connected,
 * for an entry looked up (or created) by name. */
TB_WUR int tb_peers_inbound(tb_peers *t, const char *name, const char *region, const uint8_t *cert,
                            size_t cert_len, uint64_t now, uint32_t *id_out);

/* A dial under way failed (refused, handshake error): backoff. TB_ERR_STATE when the entry
 * was not connecting (for example an inbound connection got there first). */
TB_WUR int tb_peers_dial_failed(tb_peers *t, uint32_t id, uint64_t now);

/* The connection to a connected peer closed: redial after the first backoff step when it had
 * lasted stable_ns, else after the next step as for a failed dial (peers without an address go
 * idle). TB_ERR_STATE when it was not connected. */
TB_WUR int tb_peers_disconnected(tb_peers *t, uint32_t id, uint64_t now);

/* The connection to a connected peer closed because the other connection between the same
 * pair is kept (crossed dials, a restarted peer): redial after the first backoff step, not
 * counted as a failure however short it was. TB_ERR_STATE when it was not connected. */
TB_WUR int tb_peers_superseded(tb_peers *t, uint32_t id, uint64_t now);

/* Whether the entry is dialled when due (default yes). Mesh v2 (ADR 0010) dials only the peers
 * HyParView wants; an unwanted entry keeps its back-off state, so wanting it again soon after a
 * failure waits for the delay. TB_ERR_NOTFOUND. */
TB_WUR int tb_peers_set_wanted(tb_peers *t, uint32_t id, int wanted);

/* The network came back (a member held dead answered: node/node.c): every entry in backoff is
 * due now, and every address backoff no dial holds ends, so the links a partition cut are
 * dialled again at once rather than after up to backoff_max_ns each (and max_connecting at a
 * time). Failure counts stay: a dial that fails again backs off further. Returns how many
 * entries were made due. */
size_t tb_peers_retry_now(tb_peers *t, uint64_t now);

/* Removes an entry. */
TB_WUR int tb_peers_remove(tb_peers *t, uint32_t id);

/* Of two connections between this node and `peer` (both dialled at once), which to keep so
 * that both ends keep the same one: 1 when the one this node dialled (its name sorts first),
 * 0 when the one the peer dialled. */
int tb_peers_keep_dialled(const char *self, const char *peer);

/* What to do now: dials to start (state becomes CONNECTING), dials to abort (past their
 * deadline; state becomes BACKOFF). Writes up to `max` actions, sets *n, and
 * *next_wake to the earliest time something is due next (UINT64_MAX when nothing is; `now`
 * when `out` was too small to hold everything due). Call it at *next_wake and again after every
 * call that changes the table (a connect, a failure, a learned entry). */
TB_WUR int tb_peers_poll(tb_peers *t, uint64_t now, tb_peers_action *out, size_t max, size_t *n,
                         uint64_t *next_wake);

/* The delay before dial number `failures` + 1 after `failures` (≥ 1) failed dials in a row:
 * min(initial · 2^(failures−1), max), less a random part of up to jitter_permille ‰ taken
 * from `rnd`. */
uint64_t tb_peers_backoff_delay(const tb_peers_config *cfg, unsigned failures, uint64_t rnd);

/* The PEERS answer to a DISCOVER from `requester` (may be NULL): this node's own entry first
 * (when set), then every verified peer (with or without addresses), except the requester,
 * so that every node learns every certificate that signs measurements. Returns
 * how many entries it wrote to out (≤ max). Pointers stay valid until the table changes. */
size_t tb_peers_export(const tb_peers *t, const char *requester, tb_peer_info *out, size_t max);

/* Lookups. */
TB_WUR int tb_peers_get(const tb_peers *t, uint32_t id, tb_peer_view *out);
TB_WUR int tb_peers_find(const tb_peers *t, const char *name, uint32_t *id);
size_t tb_peers_count(const tb_peers *t);
/* Learned addresses the policy refused so far. */
uint64_t tb_peers_addrs_refused(const tb_peers *t);
typedef struct tb_peers_stats {
    uint64_t addrs_refused;     /* tb_peers_addrs_refused */
    uint64_t learned_dials;     /* dials started to learned entries not yet confirmed */
    uint64_t learned_forgotten; /* such entries forgotten after forget_after_failures */
} tb_peers_stats;
void tb_peers_get_stats(const tb_peers *t, tb_peers_stats *out);
/* Writes up to max ids in table order; returns the number of entries. */
size_t tb_peers_list(const tb_peers *t, uint32_t *ids, size_t max);
/* Number of entries in a state. */
size_t tb_peers_count_state(const tb_peers *t, tb_peer_state state);
const char *tb_peers_state_name(tb_peer_state state);

#endif
