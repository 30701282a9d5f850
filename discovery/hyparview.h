/* HyParView membership (ADR 0010; Leitão, Pereira, Rodrigues 2007): which peers this node keeps
 * connections to. Owns the active view (connected peers, symmetric, default 8) and the passive
 * view (known peers, not connected, default 64, the reserve that replaces a lost active peer),
 * and the protocol that keeps both: JOIN, FORWARD_JOIN (random walk of a newcomer), NEIGHBOR
 * (ask to become active; high priority when our active view is empty), NEIGHBOR_REPLY,
 * DISCONNECT and SHUFFLE/SHUFFLE_REPLY (periodic exchange of passive entries by random walk).
 *
 * Pure logic: no I/O, no clock. The caller passes `now` (monotonic ns), feeds what peers sent
 * (tb_hv_recv) and what the transport saw (tb_hv_link_down), calls tb_hv_tick at
 * tb_hv_next_wake, and drains actions with tb_hv_next_action: SEND a message to a peer (the
 * transport dials it when there is no connection), CLOSE a connection HyParView no longer needs
 * (after the SENDs queued before it), and UP/DOWN when a peer enters or leaves the active view
 * (PlumTree's neighbours). Peers are named by node name; a descriptor also carries region and
 * addresses, which are hints: the TLS handshake proves who answers a dial.
 *
 * Everything a peer sends is untrusted: descriptors are validated (names by common/name, every
 * address by common/addr and the caller's policy hook) and the invalid ones dropped and counted,
 * TTLs are capped, SHUFFLE sizes are capped, and a NEIGHBOR_REPLY or SHUFFLE_REPLY we did not ask
 * for changes nothing. */
#ifndef TB_DISCOVERY_HYPARVIEW_H
#define TB_DISCOVERY_HYPARVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/name.h"

#define TB_HV_ADDRS_MAX 4      /* addresses kept per descriptor (more are dropped) */
#define TB_HV_ADDR_MAX 63      /* "[v6]:port" is at most 47; longer host names are not kept */
#define TB_HV_SHUFFLE_MAX 8    /* descriptors in one SHUFFLE or SHUFFLE_REPLY */
#define TB_HV_ACTIVE_MAX 64    /* cap on the configurable active view */
#define TB_HV_PASSIVE_MAX 1024 /* cap on the configurable passive view */
#define TB_HV_TTL_MAX 16       /* a received walk TTL is lowered to this */

typedef struct tb_hv_desc {
    char name[TB_NAME_MAX + 1];
    char region[TB_NAME_MAX + 1];
    char addrs[TB_HV_ADDRS_MAX][TB_HV_ADDR_MAX + 1];
    uint8_t n_addrs;
} tb_hv_desc;

typedef enum tb_hv_type {
    TB_HV_JOIN = 1,       /* node: the joiner */
    TB_HV_FORWARD_JOIN,   /* node: the joiner; ttl */
    TB_HV_NEIGHBOR,       /* node: the sender; flag: high priority */
    TB_HV_NEIGHBOR_REPLY, /* node: the sender; flag: accepted */
    TB_HV_DISCONNECT,     /* flag: the sender stays alive (keep it in the passive view) */
    TB_HV_SHUFFLE,        /* node: the origin of the walk; ttl; descs: its sample */
    TB_HV_SHUFFLE_REPLY,  /* descs: the answering node's sample */
} tb_hv_type;

typedef struct tb_hv_msg {
    tb_hv_type type;
    uint8_t ttl;
    uint8_t flag;
    tb_hv_desc node;
    uint8_t n_descs;
    tb_hv_desc descs[TB_HV_SHUFFLE_MAX];
} tb_hv_msg;

typedef enum tb_hv_act_type {
    TB_HV_ACT_SEND = 1, /* send msg to peer (dial peer.addrs when not connected) */
    TB_HV_ACT_CLOSE,    /* close the connection to peer once earlier SENDs went out */
    TB_HV_ACT_UP,       /* peer joined the active view */
    TB_HV_ACT_DOWN,     /* peer left the active view */
} tb_hv_act_type;

typedef struct tb_hv_action {
    tb_hv_act_type type;
    tb_hv_desc peer;
    tb_hv_msg msg; /* SEND only */
} tb_hv_action;

/* The address policy of ADR 0010 (issue 11) lives with the caller; NULL accepts every address
 * common/addr parses. */
typedef bool (*tb_hv_addr_ok_fn)(void *ctx, const char *addr);

typedef struct tb_hv_config {
    unsigned active_size;         /* 1..TB_HV_ACTIVE_MAX (default 8) */
    unsigned passive_size;        /* 1..TB_HV_PASSIVE_MAX (default 64) */
    unsigned arwl;                /* active random walk length (default 6) */
    unsigned prwl;                /* passive random walk length, < arwl (default 3) */
    unsigned shuffle_active;      /* active entries in a SHUFFLE (default 3) */
    unsigned shuffle_passive;     /* passive entries in a SHUFFLE (default 4) */
    uint64_t shuffle_interval_ns; /* default 30 s; the first one is at a random point of it */
    uint64_t repair_interval_ns;  /* a short active view asks a passive peer this often (1 s) */
    uint64_t neighbor_timeout_ns; /* an unanswered NEIGHBOR is given up after this (5 s) */
    uint64_t urgent_interval_ns;  /* at most one urgent tb_hv_add_passive per this (10 s) */
    tb_hv_addr_ok_fn addr_ok;
    void *addr_ctx;
} tb_hv_config;

void tb_hv_config_default(tb_hv_config *cfg);

typedef struct tb_hv_stats {
    uint64_t bad_descs;  /* descriptors refused (name, region or every address invalid) */
    uint64_t unexpected; /* replies nobody asked for, messages from a peer about itself */
    uint64_t queue_full; /* actions dropped because the caller did not drain them */
    uint64_t evictions;  /* active peers dropped to make room for a high-priority one */
    uint64_t repairs;    /* passive peers promoted after a loss */
} tb_hv_stats;

typedef struct tb_hv tb_hv;

/* self: this node's descriptor (validated as a peer's would be). seed: randomness for walks and
 * samples (give each node its own). */
TB_WUR int tb_hv_new(const tb_hv_config *cfg, const tb_hv_desc *self, uint64_t seed, uint64_t now,
                     tb_hv **out);
void tb_hv_free(tb_hv *hv);

/* Joins through contact (a seed): sends it JOIN and counts it active once it answers. May be
 * called again (another seed) while the active view is empty. */
TB_WUR int tb_hv_join(tb_hv *hv, uint64_t now, const tb_hv_desc *contact);

/* A message from the peer authenticated as `from` (the connection's certificate name). Returns
 * TB_ERR_MALFORMED for a message that is invalid as a whole (its node descriptor is invalid or
 * names the wrong sender); bad entries inside a SHUFFLE are dropped and counted instead. */
TB_WUR int tb_hv_recv(tb_hv *hv, uint64_t now, const char *from, const tb_hv_msg *m);

/* The connection to peer is gone (closed, failed to dial, liveness lost): an active peer is
 * replaced from the passive view, a pending NEIGHBOR tries another candidate. */
void tb_hv_link_down(tb_hv *hv, uint64_t now, const char *peer);

/* The connection to peer was closed in order, by us or by the peer, which let it go (a link for
 * one exchange, one the views dropped): the peer is alive, and no failure. An active peer is
 * replaced and kept passive; a NEIGHBOR under way to it is given up; the passive view stays as
 * the protocol left it (a DISCONNECT's sender, a shuffle's origin stay candidates, a peer that
 * refused or never answered stays out). */
void tb_hv_link_closed(tb_hv *hv, uint64_t now, const char *peer);

/* The connection to peer was closed for another one between the same pair (crossed dials keep
 * one): no loss, but messages sent on it may be lost. Sends again what the views wait on: the
 * NEIGHBOR under way to peer, or, for an active peer, a high-priority NEIGHBOR that makes the
 * link symmetric again (a lost JOIN, NEIGHBOR or accepting NEIGHBOR_REPLY left it one-sided). A
 * peer that took us already answers and changes nothing. */
void tb_hv_link_replaced(tb_hv *hv, uint64_t now, const char *peer);

/* Adds a peer learned elsewhere (a member that came back after a partition) to the passive view;
 * with `urgent`, asks it at once with high priority to be an active neighbour (the link that
 * joins two halves of a healed partition), at most once per urgent_interval: many nodes of a
 * half reach the other at once, and a few links join the halves; every urgent link evicts
 * someone. */
TB_WUR int tb_hv_add_passive(tb_hv *hv, uint64_t now, const tb_hv_desc *d, bool urgent);

/* Timers: shuffle, repair of a short active view, NEIGHBOR timeouts. */
void tb_hv_tick(tb_hv *hv, uint64_t now);
uint64_t tb_hv_next_wake(const tb_hv *hv);

/* 0 and the oldest pending action, or TB_ERR_AGAIN when there is none. */
TB_WUR int tb_hv_next_action(tb_hv *hv, tb_hv_action *out);

/* Views: names valid until the next call that changes them. */
size_t tb_hv_active_count(const tb_hv *hv);
const char *tb_hv_active_name(const tb_hv *hv, size_t i);
size_t tb_hv_passive_count(const tb_hv *hv);
bool tb_hv_is_active(const tb_hv *hv, const char *name);
bool tb_hv_is_passive(const tb_hv *hv, const char *name);
void tb_hv_get_stats(const tb_hv *hv, tb_hv_stats *out);

/* Validates an untrusted descriptor in place: name and region by tb_name_valid, addresses by
 * common/addr and the policy; invalid addresses are removed. TB_ERR_INVAL when the name or
 * region is invalid or no address is left (a descriptor nobody can dial is useless). */
TB_WUR int tb_hv_desc_check(const tb_hv_config *cfg, tb_hv_desc *d);

#endif
