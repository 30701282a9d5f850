/* The member list (ADR 0010): every node known mesh-wide, with its incarnation and state (alive,
 * suspect, dead), and failure detection in the manner of SWIM with suspicion (Das, Gupta,
 * Motivala 2002), adapted to a mesh where a node holds connections to its active view only:
 * - direct failure detection is the link's (liveness: missed pongs); when a link is lost the
 *   caller says so (tb_mb_link_lost) with the other active peers as helpers;
 * - indirect probe: PROBE_REQ(target) goes to up to probe_helpers of them, each answers
 *   PROBE_ACK with whether it heard from the target within heard_window (tb_mb_heard feeds
 *   that) or, when it had not, whether the target answered a PROBE_REQ of its own (most
 *   helpers have no link to the target: SWIM's ping-req). One "heard" clears the target (only
 *   our link broke); none within probe_timeout, or every helper saying no, makes it suspect:
 *   SUSPECT(target, incarnation) is broadcast;
 * - a suspect member that does not refute with ALIVE(incarnation + 1) within suspicion_timeout
 *   is dead, decided by every member on its own clock; this node refutes SUSPECTs about itself;
 * - dead members are kept for dead_keep; one of them is probed directly every
 *   reconnect_interval (PROBE_REQ whose target is the receiver itself: "I hold you dead"). A
 *   member that answers is REACHED (the caller reconnects the overlay to it), and it refutes,
 *   sending its ALIVE to the prober as well as broadcasting it: that is how the halves of a
 *   healed partition find each other. A dead or suspect member heard from directly (a
 *   PROBE_REQ it sends, a pong or any message on a link to it: tb_mb_heard) is probed back at
 *   once (both sides of a healed partition refute at their first contact, over any link that
 *   comes back; the SUSPECTs that made them dead went round one side only), and a dead member
 *   coming back brings the next direct probe forward to reconnect_interval / 8 (the partition
 *   has healed, most likely: the rest of the other side is found in a fraction of the time).
 *
 * ALIVE and SUSPECT travel as signed broadcasts (their encoding and signatures are not this
 * module's): the caller feeds verified ones in with tb_mb_alive / tb_mb_suspect and broadcasts
 * the ones this module asks for. Pure logic: no I/O, no clock; actions via tb_mb_next_action.
 * Everything a peer sends is untrusted: names are validated, incarnations about this node above
 * our own are refused (only we sign our ALIVE), and the list is bounded by max_members. */
#ifndef TB_DISCOVERY_MEMBERS_H
#define TB_DISCOVERY_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/name.h"

#define TB_MB_MEMBERS_MAX (1u << 20) /* cap on the configurable member count */
#define TB_MB_HELPERS_MAX 8          /* cap on the configurable probe helpers */

typedef enum tb_mb_state {
    TB_MB_ALIVE = 1,
    TB_MB_SUSPECT,
    TB_MB_DEAD,
} tb_mb_state;

typedef struct tb_mb_config {
    uint64_t probe_timeout_ns;      /* helpers' answers awaited this long (1 s) */
    unsigned probe_helpers;         /* PROBE_REQs per lost link (3) */
    uint64_t heard_window_ns;       /* a helper "heard" the target within this (2 s) */
    uint64_t suspicion_timeout_ns;  /* a suspect is dead after this without refutation (3 s) */
    uint64_t reconnect_interval_ns; /* one dead member probed directly this often (1 s) */
    uint64_t dead_keep_ns;          /* dead members forgotten after this (1 h) */
    size_t max_members;             /* (4096) */
} tb_mb_config;

void tb_mb_config_default(tb_mb_config *cfg);

typedef enum tb_mb_act_type {
    TB_MB_ACT_PROBE_REQ = 1, /* send PROBE_REQ(probe_id, target, incarnation) to peer */
    TB_MB_ACT_PROBE_ACK,     /* send PROBE_ACK(probe_id, target, heard) to peer */
    TB_MB_ACT_SUSPECT,       /* broadcast SUSPECT(target, incarnation), signed by us */
    TB_MB_ACT_ALIVE,         /* fresh: broadcast our new ALIVE(incarnation); and when peer is
                                set, send our latest ALIVE to peer too (a direct prober that
                                holds us dead: its half of a healed partition learns it) */
    TB_MB_ACT_UP,            /* target is a new or revived member */
    TB_MB_ACT_DEAD,          /* target was declared dead */
    TB_MB_ACT_REACHED,       /* target, dead to us, answered a direct probe: reconnect to it */
} tb_mb_act_type;

typedef struct tb_mb_action {
    tb_mb_act_type type;
    char peer[TB_NAME_MAX + 1];   /* PROBE_REQ/PROBE_ACK: whom to send it to */
    char target[TB_NAME_MAX + 1]; /* the member concerned */
    uint64_t probe_id;
    uint64_t incarnation;
    bool heard;
    bool suspect; /* PROBE_REQ to the target itself: "I hold you suspect or dead" */
    bool fresh;
} tb_mb_action;

typedef struct tb_mb_stats {
    uint64_t probes;    /* indirect probes started */
    uint64_t probes_ok; /* ... cleared by a helper that heard the target */
    uint64_t suspected; /* SUSPECTs this node raised */
    uint64_t refuted;   /* SUSPECTs about this node refuted */
    uint64_t renewed;   /* new incarnations for a renewed identity (tb_mb_renew) */
    uint64_t declared_dead;
    uint64_t revived;     /* dead or suspect members back with a newer incarnation */
    uint64_t probed_back; /* dead or suspect members probed because we heard from them */
    uint64_t refused;     /* invalid names, stale or impossible incarnations, unasked acks */
    uint64_t full;        /* members not added: max_members reached */
    uint64_t queue_full;
} tb_mb_stats;

typedef struct tb_mb tb_mb;

/* self: this node's name; incarnation: where its own count starts (a restarted node should not
 * reuse an old one: pass the real time in seconds, say). */
TB_WUR int tb_mb_new(const tb_mb_config *cfg, const char *self, uint64_t incarnation, uint64_t seed,
                     tb_mb **out);
void tb_mb_free(tb_mb *mb);

/* A verified ALIVE(name, incarnation) (or a member learned at join, incarnation 0): adds the
 * member or revives it when the incarnation is newer than what we hold. */
TB_WUR int tb_mb_alive(tb_mb *mb, uint64_t now, const char *name, uint64_t incarnation);
/* A verified SUSPECT(name, incarnation). About this node: refuted (ALIVE with incarnation + 1)
 * when it names our current incarnation. */
TB_WUR int tb_mb_suspect(tb_mb *mb, uint64_t now, const char *name, uint64_t incarnation);

/* This node's identity changed (a renewed certificate): a new incarnation, broadcast (ALIVE,
 * fresh). Every member then takes the ALIVE that carries the new certificate as newer than what
 * it holds, and a SUSPECT raised against the new incarnation is refuted like any other. */
void tb_mb_renew(tb_mb *mb);

/* We heard from name directly (a pong or any message on its link). A member held dead or
 * suspect is probed directly (PROBE_REQ, suspect): it refutes. */
void tb_mb_heard(tb_mb *mb, uint64_t now, const char *name);

/* The link to target was lost; helpers are the other active peers (any order; target and
 * unknown names among them are skipped). */
TB_WUR int tb_mb_link_lost(tb_mb *mb, uint64_t now, const char *target, const char *const *helpers,
                           size_t n_helpers);

/* PROBE_REQ(probe_id, target, incarnation, suspect). About another member: answered at once
 * when we heard from it within heard_window, else we probe it ourselves (PROBE_REQ to it) and
 * answer when it does or after probe_timeout / 2. About us: answered at once; with `suspect`
 * (the asker holds us suspect or dead at `incarnation`) we also refute or resend our ALIVE. */
TB_WUR int tb_mb_recv_probe_req(tb_mb *mb, uint64_t now, const char *from, uint64_t probe_id,
                                const char *target, uint64_t incarnation, bool suspect);
TB_WUR int tb_mb_recv_probe_ack(tb_mb *mb, uint64_t now, const char *from, uint64_t probe_id,
                                const char *target, bool heard);

/* Probe and suspicion timeouts, direct probes of dead members, forgetting old dead ones. */
void tb_mb_tick(tb_mb *mb, uint64_t now);
uint64_t tb_mb_next_wake(const tb_mb *mb);

TB_WUR int tb_mb_next_action(tb_mb *mb, tb_mb_action *out);

/* TB_ERR_NOTFOUND for a name not in the list (this node is not in it). */
TB_WUR int tb_mb_get(const tb_mb *mb, const char *name, tb_mb_state *state, uint64_t *incarnation);
size_t tb_mb_count(const tb_mb *mb, tb_mb_state state);
/* Calls fn for every member (not this node). */
void tb_mb_each(const tb_mb *mb,
                void (*fn)(void *arg, const char *name, tb_mb_state state, uint64_t incarnation),
                void *arg);
uint64_t tb_mb_incarnation(const tb_mb *mb);
void tb_mb_get_stats(const tb_mb *mb, tb_mb_stats *out);

#endif
