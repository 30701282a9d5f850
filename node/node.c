#include "measure/measurement.h"
#include "node/node.h"
#include "node/node_internal.h"
#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/identity.h"
#include "discovery/liveness.h"
#include "node/certwatch.h"
#include "discovery/peers.h"
#include "node/bcast.h"
#include "node/budget.h"
#include "node/mesh.h"
#include "quic/endpoint.h"
#include "routing/unicast.h"
#include "resolve/resolver.h"
#include "wire/wire.h"

#define NO_PEER UINT32_MAX
#define MAX_ACTIONS 16
/* Messages for peers being dialled wait this long, at most this many. */
#define OUTQ_MAX 256
/* A connection this node dialled for one exchange (a probe, a shuffle answer) and that did not
 * become an active-view link is closed after this long. */
#define TEMP_LINK_NS (10 * TB_NS_PER_SEC)
#define RECENT_BCASTS TB_NODE_RECENT_MAX
#define RECENT_TEXT_MAX 96
#define HEAP_TRIM_INTERVAL_NS (5 * TB_NS_PER_SEC)
#define HEAP_TRIM_MIN_GROWTH ((size_t)1 << 20) /* more bytes free below the heap's top */
/* Lines of one kind a peer can make this node write: this many per interval, then a count. */
#define LOG_BURST 5
#define LOG_INTERVAL_NS (10 * TB_NS_PER_SEC)

/* Rate-limit keys of the node's repeated log lines (tb_log_limited). */
enum {
    RL_DROPPED = 1, /* a peer's message dropped as invalid */
    RL_BUDGET,      /* a peer over one of its budgets */
    RL_SEND,        /* a message to a peer could not be queued */
    RL_DIAL,        /* a dial failed */
    RL_TABLE,       /* a connected peer not taken into the peer table */
    RL_LOST,        /* a peer went silent */
};

/* One QUIC connection and what the node knows about it. A link enters the peer table once
 * the peer's certificate is known (see on_peers). */
typedef struct plink {
    struct plink *next;
    tb_quic_conn *conn;
    uint32_t peer_id; /* NO_PEER until the peer table has it */
    int dialled;
    int connected;       /* handshake confirmed */
    int in_table;        /* counted as connected in the peer table */
    uint64_t up_at;      /* when the handshake was confirmed (mono) */
    uint64_t close_at;   /* HyParView let it go: closed then unless active again (0: no) */
    uint64_t close_code; /* nonzero: close pending (code + 1), done from the reaper timer */
    int let_go;          /* closed by let_go: the peer is alive, only not kept */
    char name[TB_QUIC_NAME_MAX];
    char region[TB_QUIC_NAME_MAX];
    char addr[TB_QUIC_ADDRSTR_MAX];
    uint8_t *cert; /* verified in the handshake (or a verified renewal); NULL until connected */
    size_t cert_len;
    int64_t not_after; /* of cert, Unix seconds */
    tb_live live;
    tb_budget budget;
} plink;

/* A dial waiting for the resolver's answer for its host name. */
typedef struct pending_dial {
    struct pending_dial *next;
    struct tb_node *n;
    uint32_t peer_id;
    uint64_t ticket;
    char addr[TB_PEERS_ADDR_MAX + 1];
} pending_dial;

/* A mesh message for a peer whose connection is being dialled (node/mesh.h's send). */
typedef struct outq {
    struct outq *next;
    char peer[TB_QUIC_NAME_MAX];
    uint64_t until;
    size_t len;
    uint8_t msg[];
} outq;

typedef struct recent_bcast {
    char origin[TB_QUIC_NAME_MAX];
    uint64_t id;
    char text[RECENT_TEXT_MAX];
} recent_bcast;

typedef struct node_stats {
    uint64_t msgs_bad, dgrams_bad, pongs_bad, over_budget;
    uint64_t messages_delivered, pings_sent, pongs_received;
    uint64_t retired;       /* DISCOVER/PEERS (mesh v1) dropped */
    uint64_t addrs_refused; /* descriptor addresses the policy refused (mesh v2) */
    uint64_t outq_dropped;
} node_stats;

struct tb_node {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    const tb_node_config *cfg;
    tb_node_callbacks cb;
    tb_quic_endpoint *ep;
    tb_peers *peers;
    tb_control *ctl;
    tb_live_config live_cfg;
    tb_wire_limits lim;
    tb_cert_identity self;
    uint8_t self_der[TB_PEERS_CERT_MAX];
    size_t self_der_len;
    char self_addr[TB_PEERS_ADDR_MAX + 1];
    plink *links;
    tb_resolver *resolver, *own_resolver;
    pending_dial *pending;
    ev_timer peers_timer, ping_timer, reaper;
    tb_certwatch *cw;
    tb_nbc *nbc;         /* signed broadcasts (node/bcast.h) */
    ev_timer nbc_timer;  /* its waiting copies and ALIVE refresh */
    tb_nmesh *mesh;      /* mesh v2: views, tree, members (node/mesh.h); NULL for a client */
    ev_timer mesh_timer; /* its one timer: the earliest wake of the three */
    outq *outq;
    size_t n_outq;
    recent_bcast recent[RECENT_BCASTS];
    size_t recent_next, recent_count;
    node_stats st;
    int stopping;
    uint64_t next_heap_trim;
    uint64_t retried_at; /* mono time of the last tb_peers_retry_now (mesh_reached) */
    size_t heap_holes;   /* free bytes below the heap's top after the last trim (trim_heap) */
    tb_budget_config budget_cfg;
    tb_addr_policy addr_policy;
    tb_log_ratelimit rl;
};

static uint64_t mono(const tb_node *n)
{
    return tb_clock_mono(n->clock);
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (uint64_t)(uintptr_t)&v ^ 0x9e3779b97f4a7c15ULL;
    return v;
}

static plink *link_by_conn(tb_node *n, const tb_quic_conn *c)
{
    for (plink *l = n->links; l; l = l->next) {
        if (l->conn == c)
            return l;
    }
    return NULL;
}

static plink *link_by_name(tb_node *n, const char *name)
{
    for (plink *l = n->links; l; l = l->next) {
        if (l->connected && strcmp(l->name, name) == 0)
            return l;
    }
    return NULL;
}

static plink *link_new(tb_node *n, tb_quic_conn *c, uint32_t peer_id, int dialled)
{
    plink *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->conn = c;
    l->peer_id = peer_id;
    l->dialled = dialled;
    tb_budget_init(&l->budget, &n->budget_cfg, mono(n));
    l->next = n->links;
    n->links = l;
    return l;
}

static void link_free(tb_node *n, plink *l)
{
    for (plink **p = &n->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    free(l->cert);
    free(l);
}

/* The peer table and the pings run from timers; callbacks only ask for a run soon. */
static void kick(struct ev_loop *loop, ev_timer *t)
{
    ev_timer_stop(loop, t);
    ev_timer_set(t, 0., 0.);
    ev_timer_start(loop, t);
}

static void arm(tb_node *n, ev_timer *t, uint64_t wake)
{
    ev_timer_stop(n->loop, t);
    if (wake == UINT64_MAX || n->stopping)
        return;
    uint64_t now = mono(n);
    ev_timer_set(t, wake > now ? (double)(wake - now) / 1e9 : 0., 0.);
    ev_timer_start(n->loop, t);
}

static void nbc_rearm(tb_node *n)
{
    arm(n, &n->nbc_timer, tb_nbc_poll(n->nbc, mono(n)));
}

static void on_nbc_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    nbc_rearm(w->data);
}

static int64_t real_s(const tb_node *n)
{
    return tb_clock_real(n->clock) / (int64_t)TB_NS_PER_SEC;
}

/* Closing a connection may call on_closed (which frees its link) at once: never from inside a
 * walk over the links or a handler still using one. Closes wait for the reaper timer. */
static void close_later(tb_node *n, plink *l, uint64_t app_code)
{
    l->connected = 0;
    if (!l->close_code)
        l->close_code = app_code + 1;
    kick(n->loop, &n->reaper);
}

static void on_reaper(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_node *n = w->data;
    plink *l = n->links;
    while (l) {
        if (!l->close_code) {
            l = l->next;
            continue;
        }
        uint64_t code = l->close_code - 1;
        l->close_code = 0;
        tb_quic_close(l->conn, code);
        l = n->links; /* the close may have freed links: walk again from the start */
    }
}

/* ---- Budgets and invalid messages (ADR 0010): every peer is hostile, even a member. A peer
 * over budget or sending invalid messages is penalised on its connection; at the endpoint's
 * max_penalties it is disconnected and banned (quic logs that once, with the reason). */

/* A message from the peer on c is invalid: counted, penalised, logged (rate limited). */
static void peer_invalid(tb_node *n, tb_quic_conn *c, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void peer_invalid(tb_node *n, tb_quic_conn *c, const char *peer, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    n->st.msgs_bad++;
    tb_log_limited(n->log, &n->rl, TB_LOG_WARN, RL_DROPPED, mono(n), "peer %s: %s", peer, what);
    tb_quic_conn_penalize(c, what);
}

/* 0 when the peer on link l may make this node handle one more event of this kind; else the
 * event is dropped and the peer penalised. */
static int charge(tb_node *n, plink *l, tb_budget_kind kind, size_t bytes)
{
    tb_budget_verdict v = tb_budget_charge(&l->budget, kind, bytes, mono(n));
    if (v == TB_BUDGET_OK)
        return 0;
    n->st.over_budget++;
    tb_log_limited(n->log, &n->rl, TB_LOG_WARN, RL_BUDGET, mono(n),
                   "peer %s (%s): message dropped: %s", l->name[0] ? l->name : "?", l->addr,
                   tb_budget_verdict_name(v));
    tb_quic_conn_penalize(l->conn, tb_budget_verdict_name(v));
    return -1;
}

/* Learned addresses must be of this node's family and scope (common/addr.h): loopback only
 * when this node listens on loopback itself. */
static void make_addr_policy(tb_node *n)
{
    const tb_node_config *cfg = n->cfg;
    tb_addr_policy *p = &n->addr_policy;
    tb_addr a;
    memset(p, 0, sizeof(*p));
    p->family = cfg->listen.kind == TB_ADDR_IPV6 ? AF_INET6 : AF_INET;
    p->allow_names = cfg->allow_names;
    p->allow_loopback = tb_addr_from_hostport(&cfg->listen, &a) == TB_OK &&
                        tb_addr_scope_of(&a) == TB_ADDR_SCOPE_LOOPBACK;
    p->nranges = cfg->nallowed_ranges;
    memcpy(p->ranges, cfg->allowed_ranges, sizeof(p->ranges));
}

/* The same policy for every descriptor HyParView takes (node/mesh.h). */
static bool mesh_addr_ok(void *ctx, const char *addr)
{
    tb_node *n = ctx;
    if (tb_addr_policy_check_text(&n->addr_policy, addr, strlen(addr), NULL) == TB_OK)
        return true;
    n->st.addrs_refused++;
    return false;
}

static int send_msg(tb_node *n, tb_quic_conn *c, const tb_wire_msg *m)
{
    uint8_t *buf = malloc(n->lim.max_msg_size);
    if (!buf)
        return TB_ERR_NOMEM;
    size_t len;
    int rc = tb_wire_encode(m, &n->lim, buf, n->lim.max_msg_size, &len);
    if (rc == TB_OK)
        rc = tb_quic_send_stream(c, buf, len);
    free(buf);
    return rc;
}

/* The name a seed was given in the config ("name@host:port"), or NULL. */
static const char *seed_name(const tb_node *n, const char *addr)
{
    for (size_t i = 0; i < n->cfg->npeers; i++) {
        char a[TB_PEERS_ADDR_MAX + 1];
        tb_addr_hostport_format(&n->cfg->peers[i], a, sizeof(a));
        if (n->cfg->peer_names[i][0] && strcmp(a, addr) == 0)
            return n->cfg->peer_names[i];
    }
    return NULL;
}

/* How a dial to peer `id` is named in the log: "n2 at host:port", or the address alone. */
static void dial_label(const tb_node *n, uint32_t id, const char *addr, char *buf, size_t len)
{
    tb_peer_view v;
    const char *name = tb_peers_get(n->peers, id, &v) == TB_OK && v.name[0] ? v.name : NULL;
    if (!name)
        name = seed_name(n, addr);
    if (name)
        snprintf(buf, len, "%s at %s", name, addr);
    else
        snprintf(buf, len, "%s", addr);
}

static void mesh_link_gone(tb_node *n, const char *peer, bool orderly);

/* HyParView hears of a failed dial as of a lost link. */
static void dial_gone(tb_node *n, uint32_t id)
{
    tb_peer_view v;
    char name[TB_QUIC_NAME_MAX] = "";
    if (tb_peers_get(n->peers, id, &v) == TB_OK)
        snprintf(name, sizeof(name), "%s", v.name);
    if (name[0])
        mesh_link_gone(n, name, false);
}

static void dial_failed(tb_node *n, uint32_t id, const char *addr, const char *why)
{
    char who[TB_PEERS_NAME_MAX + TB_PEERS_ADDR_MAX + 8];
    dial_label(n, id, addr, who, sizeof(who));
    tb_log_limited(n->log, &n->rl, TB_LOG_WARN, RL_DIAL, mono(n), "dial %s: %s", who, why);
    if (tb_peers_dial_failed(n->peers, id, mono(n)) != TB_OK)
        tb_log_debug(n->log, "dial %s: peer table had no dial under way", who);
    dial_gone(n, id);
}

static void dial_addr(tb_node *n, uint32_t id, const char *addr, const tb_addr *to)
{
    tb_peer_view v;
    tb_quic_conn *c = NULL;
    int rc = tb_peers_get(n->peers, id, &v);
    const char *expect = rc == TB_OK && v.name[0] ? v.name : seed_name(n, addr);
    if (rc == TB_OK)
        rc = tb_quic_dial_sa(n->ep, (const struct sockaddr *)&to->ss, to->len, expect, &c);
    plink *l = rc == TB_OK ? link_new(n, c, id, 1) : NULL;
    if (rc == TB_OK && !l) {
        tb_quic_close(c, TB_QUIC_APP_NO_ERROR);
        rc = TB_ERR_NOMEM;
    }
    if (rc != TB_OK) {
        dial_failed(n, id, addr, tb_strerror(rc));
        return;
    }
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    tb_log_debug(n->log, "dialling %s%s%s", addr, expect ? " as " : "", expect ? expect : "");
}

static int family_ok(const tb_node *n, const tb_addr *a)
{
    return a->ss.ss_family == (n->cfg->listen.kind == TB_ADDR_IPV6 ? AF_INET6 : AF_INET);
}

static const char *family_missing(const tb_node *n)
{
    return n->cfg->listen.kind == TB_ADDR_IPV6 ? "no IPv6 address (this node listens on IPv6)"
                                               : "no IPv4 address (this node listens on IPv4)";
}

/* What a learned name resolves to passes the same policy as a learned address. */
static int resolved_ok(const tb_node *n, const tb_peer_view *v, const tb_addr *a)
{
    if (v->source != TB_PEER_LEARNED)
        return family_ok(n, a);
    return tb_addr_policy_check(&n->addr_policy, a, NULL) == TB_OK;
}

static void pending_unlink(tb_node *n, pending_dial *d)
{
    for (pending_dial **p = &n->pending; *p; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            return;
        }
    }
}

/* Cancels the resolutions under way for peer id (NO_PEER: all of them). */
static void pending_cancel(tb_node *n, uint32_t id)
{
    pending_dial **p = &n->pending;
    while (*p) {
        pending_dial *d = *p;
        if (id != NO_PEER && d->peer_id != id) {
            p = &d->next;
            continue;
        }
        *p = d->next;
        n->resolver->cancel(n->resolver, d->ticket);
        free(d);
    }
}

static void on_resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t k)
{
    pending_dial *d = arg;
    tb_node *n = d->n;
    pending_unlink(n, d);
    tb_peer_view v;
    /* The entry may have been dropped or moved on meanwhile: then this dial is no longer due. */
    if (tb_peers_get(n->peers, d->peer_id, &v) != TB_OK || v.state != TB_PEER_CONNECTING) {
        tb_log_debug(n->log, "dial %s: resolved, but no longer wanted", d->addr);
    } else if (err != TB_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "cannot resolve the name: %s", why ? why : tb_strerror(err));
        dial_failed(n, d->peer_id, d->addr, msg);
    } else {
        size_t i = 0;
        while (i < k && !resolved_ok(n, &v, &addrs[i]))
            i++;
        if (i < k)
            dial_addr(n, d->peer_id, d->addr, &addrs[i]);
        else
            dial_failed(n, d->peer_id, d->addr,
                        v.source == TB_PEER_LEARNED ? "no address the address policy allows"
                                                    : family_missing(n));
    }
    free(d);
}

/* Numeric addresses are dialled at once; names go to the resolver, off the loop, and are
 * dialled from its answer. */
static void do_dial(tb_node *n, uint32_t id, const char *addr)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    tb_addr to;
    char port[8];
    if (tb_addr_parse(addr, strlen(addr), 0, &hp, &why) != TB_OK) {
        dial_failed(n, id, addr, why);
        return;
    }
    snprintf(port, sizeof(port), "%u", (unsigned)hp.port);
    if (hp.kind != TB_ADDR_NAME) {
        if (tb_addr_numeric(hp.host, hp.port, &to) != TB_OK)
            dial_failed(n, id, addr, "not a numeric address");
        else if (!family_ok(n, &to))
            dial_failed(n, id, addr, family_missing(n));
        else
            dial_addr(n, id, addr, &to);
        return;
    }
    pending_dial *d = calloc(1, sizeof(*d));
    if (!d) {
        dial_failed(n, id, addr, tb_strerror(TB_ERR_NOMEM));
        return;
    }
    d->n = n;
    d->peer_id = id;
    snprintf(d->addr, sizeof(d->addr), "%s", addr);
    int rc = n->resolver->resolve(n->resolver, hp.host, port, on_resolved, d, &d->ticket);
    if (rc != TB_OK) {
        free(d);
        dial_failed(n, id, addr, tb_strerror(rc));
        return;
    }
    d->next = n->pending;
    n->pending = d;
    tb_log_debug(n->log, "dial %s: resolving %s", addr, hp.host);
}

static void do_action(tb_node *n, const tb_peers_action *a)
{
    plink *l;
    switch (a->what) {
    case TB_PEERS_DO_DIAL:
        do_dial(n, a->id, a->addr);
        break;
    case TB_PEERS_DO_ABORT:
        for (pending_dial *d = n->pending; d; d = d->next) {
            if (d->peer_id == a->id)
                tb_log_info(n->log, "dial %s: the name did not resolve in time; backing off",
                            d->addr);
        }
        pending_cancel(n, a->id);
        for (l = n->links; l; l = l->next) {
            if (l->peer_id == a->id && !l->connected) {
                tb_log_info(n->log, "dial %s: no confirmed handshake in time; backing off",
                            l->addr);
                l->peer_id = NO_PEER; /* the table already counted the failure */
                close_later(n, l, TB_QUIC_APP_NO_ERROR);
            }
        }
        dial_gone(n, a->id);
        break;
    }
}

static void on_peers_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_node *n = w->data;
    tb_peers_action acts[MAX_ACTIONS];
    size_t k;
    uint64_t wake, now;
    do {
        now = mono(n);
        if (n->stopping || tb_peers_poll(n->peers, now, acts, MAX_ACTIONS, &k, &wake) != TB_OK)
            return;
        for (size_t i = 0; i < k; i++)
            do_action(n, &acts[i]);
    } while (k == MAX_ACTIONS && wake <= now);
    arm(n, &n->peers_timer, wake);
}

static void send_ping(tb_node *n, plink *l, uint64_t now)
{
    int64_t t1 = tb_clock_real(n->clock);
    uint64_t seq;
    if (tb_live_ping_sent(&l->live, now, t1, &seq) != TB_OK)
        return;
    tb_wire_msg m = {.type = TB_WIRE_PING};
    m.ping.id = seq;
    m.ping.t1 = t1;
    uint8_t buf[128];
    size_t len;
    if (tb_wire_encode(&m, &n->lim, buf, sizeof(buf), &len) == TB_OK &&
        tb_quic_send_datagram(l->conn, buf, len) == TB_OK)
        n->st.pings_sent++;
}

/* Handshakes and the PEERS fan-out when peers join free many buffers at once; glibc keeps
 * the holes they leave resident (about 3 MB with 32 peers). Give them back after such a burst
 * only: malloc_trim(0) walks every free chunk of every arena and hands each free page to the
 * kernel, which the next allocation there faults back in. Every 5 s unconditionally, that was
 * a steady cost of every node (bench/mesh/procs.sh at 30 and 60 nodes). A trimmed chunk stays
 * on the free lists, so what counts is growth of the free bytes since the last trim (or since
 * their lowest point after it); mallinfo2 only sums the free lists. */
static void trim_heap(tb_node *n, uint64_t now)
{
    if (now < n->next_heap_trim)
        return;
    n->next_heap_trim = now + HEAP_TRIM_INTERVAL_NS;
    struct mallinfo2 mi = mallinfo2();
    size_t holes = mi.fordblks > mi.keepcost ? mi.fordblks - mi.keepcost : 0;
    if (holes < n->heap_holes || holes - n->heap_holes < HEAP_TRIM_MIN_GROWTH) {
        n->heap_holes = holes < n->heap_holes ? holes : n->heap_holes;
        return;
    }
    n->heap_holes = holes;
    (void)malloc_trim(0);
}

/* Links HyParView does not keep: one it closed (a moment after, so what was sent before goes
 * out), or one this node dialled for one exchange that did not become an active link. */
static int let_go(tb_node *n, plink *l, uint64_t now)
{
    if (!n->mesh || tb_nmesh_is_leaf(n->mesh) || tb_nmesh_is_active(n->mesh, l->name)) {
        l->close_at = 0;
        return 0;
    }
    if (l->close_at && now >= l->close_at)
        return 1;
    return l->dialled && now - l->up_at >= TEMP_LINK_NS;
}

static void on_ping_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_node *n = w->data;
    uint64_t now = mono(n), wake = UINT64_MAX;
    for (plink *l = n->links; l; l = l->next) {
        if (!l->connected)
            continue;
        if (tb_live_lost(&l->live)) {
            tb_log_limited(n->log, &n->rl, TB_LOG_WARN, RL_LOST, now,
                           "peer %s: %u pings unanswered; closing", l->name,
                           tb_live_missed(&l->live));
            close_later(n, l, TB_QUIC_APP_NO_ERROR);
            continue;
        }
        if (let_go(n, l, now)) {
            l->let_go = 1;
            close_later(n, l, TB_QUIC_APP_NO_ERROR);
            continue;
        }
        if (tb_live_due(&l->live, now))
            send_ping(n, l, now);
        uint64_t t = tb_live_next_wake(&l->live);
        wake = t < wake ? t : wake;
    }
    trim_heap(n, now);
    tb_log_ratelimit_flush(&n->rl, n->log, now);
    arm(n, &n->ping_timer, wake);
}

/* ---- Mesh v2 (node/mesh.h): HyParView decides which peers are connected, PlumTree carries
 * broadcasts over those links, the member list detects failures. This is the glue to quic/,
 * discovery/peers.c (dials and their back-off) and the loop; everything else is node/mesh.c. */

static void mesh_rearm(tb_node *n)
{
    uint64_t wake = n->mesh ? tb_nmesh_next_wake(n->mesh) : UINT64_MAX;
    if (n->outq && n->outq->until < wake)
        wake = n->outq->until;
    arm(n, &n->mesh_timer, wake);
}

static void outq_drop(tb_node *n, const char *peer, uint64_t now)
{
    outq **p = &n->outq;
    while (*p) {
        outq *q = *p;
        if ((peer && strcmp(q->peer, peer) == 0) || (!peer && q->until <= now)) {
            *p = q->next;
            n->n_outq--;
            n->st.outq_dropped++;
            free(q);
        } else {
            p = &q->next;
        }
    }
}

/* Sends what waited for the connection to peer, oldest first. */
static void outq_flush(tb_node *n, plink *l)
{
    outq **p = &n->outq;
    while (*p) {
        outq *q = *p;
        if (strcmp(q->peer, l->name) != 0) {
            p = &q->next;
            continue;
        }
        *p = q->next;
        n->n_outq--;
        if (tb_quic_send_stream(l->conn, q->msg, q->len) != TB_OK)
            n->st.outq_dropped++;
        free(q);
    }
}

/* Appended at the tail: the list is in deadline order. */
static int outq_push(tb_node *n, const char *peer, const uint8_t *msg, size_t len)
{
    if (n->n_outq >= OUTQ_MAX)
        return TB_ERR_FULL;
    outq *q = malloc(sizeof(*q) + len);
    if (!q)
        return TB_ERR_NOMEM;
    snprintf(q->peer, sizeof(q->peer), "%s", peer);
    q->until = mono(n) + (uint64_t)n->cfg->connect_timeout_ms * TB_NS_PER_MS * 2;
    q->len = len;
    q->next = NULL;
    memcpy(q->msg, msg, len);
    outq **p = &n->outq;
    while (*p)
        p = &(*p)->next;
    *p = q;
    n->n_outq++;
    return TB_OK;
}

/* The peer table dials `d` (its addresses pass the address policy in tb_peers_learn), with the
 * table's back-off after failures. */
static int want_peer(tb_node *n, const tb_hv_desc *d)
{
    tb_peer_info info;
    memset(&info, 0, sizeof(info));
    info.name = (tb_peers_str){d->name, strlen(d->name)};
    info.region = (tb_peers_str){d->region, strlen(d->region)};
    for (size_t i = 0; i < d->n_addrs && i < TB_PEERS_MAX_ADDRS; i++)
        info.addrs[info.naddrs++] = (tb_peers_str){d->addrs[i], strlen(d->addrs[i])};
    uint32_t id = 0;
    int rc = tb_peers_learn(n->peers, &info, &id);
    if (rc == TB_OK && !id)
        rc = tb_peers_find(n->peers, d->name, &id);
    if (rc == TB_OK)
        rc = tb_peers_set_wanted(n->peers, id, 1);
    if (rc == TB_OK)
        kick(n->loop, &n->peers_timer);
    return rc;
}

static int mesh_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                     size_t len)
{
    tb_node *n = arg;
    plink *l = link_by_name(n, peer);
    if (l)
        return tb_quic_send_stream(l->conn, msg, len);
    if (!dial || dial->n_addrs == 0)
        return TB_ERR_NOTFOUND;
    int rc = want_peer(n, dial);
    if (rc == TB_OK)
        rc = outq_push(n, peer, msg, len);
    if (rc != TB_OK)
        tb_log_debug(n->log, "mesh: message for %s not sent: %s", peer, tb_strerror(rc));
    return rc;
}

/* The peer table stops dialling peer; a learned entry is forgotten (HyParView remembers it). */
static void unwant(tb_node *n, const char *peer)
{
    uint32_t id;
    tb_peer_view v;
    if (tb_peers_find(n->peers, peer, &id) != TB_OK || tb_peers_get(n->peers, id, &v) != TB_OK)
        return;
    /* Kept (unwanted) while it has a back-off to remember or a connection to count. */
    if (v.source == TB_PEER_SEED || v.failures || v.state == TB_PEER_CONNECTED ||
        v.state == TB_PEER_CONNECTING)
        (void)!tb_peers_set_wanted(n->peers, id, 0);
    else
        (void)!tb_peers_remove(n->peers, id);
}

/* After a moment (let_go), so what HyParView sent before goes out; a dial under way with
 * messages waiting goes on, and is closed as a temporary link once they went out. */
static void mesh_close(void *arg, const char *peer)
{
    tb_node *n = arg;
    for (const outq *q = n->outq; q; q = q->next)
        if (strcmp(q->peer, peer) == 0)
            return;
    unwant(n, peer);
    /* Only what this node dialled: the dialler closes, having heard the same (a DISCONNECT, a
     * refused NEIGHBOR, the end of its exchange). A peer that never lets go of a link it
     * dialled gets no messages on it; its budget and penalties still apply. */
    for (plink *l = n->links; l; l = l->next)
        if (l->connected && l->dialled && strcmp(l->name, peer) == 0 && !l->close_at)
            l->close_at = mono(n) + TB_NS_PER_SEC;
    kick(n->loop, &n->ping_timer);
}

static void mesh_suspect(void *arg, const char *target, uint64_t incarnation)
{
    tb_node *n = arg;
    uint8_t buf[512];
    size_t len;
    tb_log_info(n->log, "member %s suspected (no answer to probes)", target);
    if (tb_nmesh_suspect_payload(&n->lim, target, incarnation, buf, sizeof(buf), &len) != TB_OK ||
        tb_nbc_originate(n->nbc, mono(n), TB_NODE_APP_SUSPECT, buf, len, NULL) != TB_OK)
        tb_log_warn(n->log, "cannot broadcast SUSPECT of %s", target);
}

static void mesh_alive(void *arg, uint64_t incarnation, bool fresh, const char *peer)
{
    tb_node *n = arg;
    if (fresh && tb_nbc_announce_as(n->nbc, mono(n), incarnation) != TB_OK)
        tb_log_warn(n->log, "cannot announce this node (ALIVE %llu)",
                    (unsigned long long)incarnation);
    if (peer)
        tb_nbc_send_alive(n->nbc, peer);
}

static void mesh_member(void *arg, const char *name, tb_nmesh_member state)
{
    tb_node *n = arg;
    if (state == TB_NMESH_DEAD)
        tb_log_info(n->log, "member %s declared dead", name);
    else
        tb_log_debug(n->log, "member %s %s", name, tb_nmesh_member_name(state));
}

/* A member held dead answered: the partition that cut it off has most likely healed, so the
 * dials the partition made fail are tried again now, not at the end of backoffs grown through
 * it (up to 60 s, then max_connecting at a time). At most once per
 * TB_NODE_RETRY_NS: a member that keeps coming back costs no more dials than that. */
#define TB_NODE_RETRY_NS (10 * TB_NS_PER_SEC)
static void mesh_reached(void *arg, const char *name)
{
    tb_node *n = arg;
    uint64_t now = mono(n);
    if (n->retried_at && now - n->retried_at < TB_NODE_RETRY_NS)
        return;
    n->retried_at = now;
    size_t k = tb_peers_retry_now(n->peers, now);
    tb_log_info(n->log, "member %s reached again: %zu peers in backoff dialled again", name, k);
    kick(n->loop, &n->peers_timer);
}

/* A node with no active peer dials its seeds again (HyParView has nobody left to ask). */
static void seeds_again(tb_node *n)
{
    if (!n->mesh || tb_nmesh_is_leaf(n->mesh) || tb_nmesh_active_count(n->mesh) > 0 ||
        tb_nmesh_passive_count(n->mesh) > 0)
        return;
    uint32_t ids[256];
    size_t k = tb_peers_list(n->peers, ids, 256);
    for (size_t i = 0; i < k && i < 256; i++) {
        tb_peer_view v;
        if (tb_peers_get(n->peers, ids[i], &v) == TB_OK && v.source == TB_PEER_SEED && !v.wanted) {
            (void)!tb_peers_set_wanted(n->peers, ids[i], 1);
            kick(n->loop, &n->peers_timer);
        }
    }
}

static void on_mesh_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_node *n = w->data;
    uint64_t now = mono(n);
    outq_drop(n, NULL, now);
    if (n->mesh)
        tb_nmesh_tick(n->mesh, now);
    seeds_again(n);
    mesh_rearm(n);
}

/* The connection to peer is gone or its dial failed: unless another link to it is up. An
 * orderly close (let go, by either side) is no failure of the peer. */
static void mesh_link_gone(tb_node *n, const char *peer, bool orderly)
{
    if (!peer[0] || link_by_name(n, peer))
        return;
    outq_drop(n, peer, 0);
    if (n->mesh) {
        if (orderly)
            tb_nmesh_link_closed(n->mesh, mono(n), peer);
        else
            tb_nmesh_link_down(n->mesh, mono(n), peer);
        if (!tb_nmesh_is_leaf(n->mesh) && !tb_nmesh_is_active(n->mesh, peer))
            unwant(n, peer);
    }
    mesh_rearm(n);
}

static int open_mesh(tb_node *n)
{
    tb_nmesh_config c = {.active_view = n->cfg->active_view,
                         .passive_view = n->cfg->passive_view,
                         /* The ALIVE's: read apart, a second could tick in between and
                          * the node never refute being held dead (a healed partition). */
                         .incarnation = tb_nbc_incarnation(n->nbc),
                         .seed = random_u64(),
                         /* a pong is due every interval; a lost link has missed several */
                         .heard_window_ns = n->live_cfg.interval_ns * 3 / 2,
                         .bcast_every_ns = n->cb.bcast_every_ns,
                         .lim = &n->lim,
                         .addr_ok = mesh_addr_ok,
                         .addr_ctx = n};
    snprintf(c.self.name, sizeof(c.self.name), "%s", n->self.name);
    snprintf(c.self.region, sizeof(c.self.region), "%s", n->self.region);
    size_t alen = strlen(n->self_addr);
    if (alen > TB_HV_ADDR_MAX) {
        tb_log_error(n->log, "mesh: advertised address %s is over %d characters", n->self_addr,
                     TB_HV_ADDR_MAX);
        return TB_ERR_INVAL;
    }
    memcpy(c.self.addrs[0], n->self_addr, alen + 1);
    /* Nobody dials a client: a leaf, no part in the views (node/mesh.h). */
    c.self.n_addrs = n->cfg->mode == TB_NODE_CLIENT ? 0 : 1;
    tb_nmesh_io io = {n,          mesh_send,   mesh_close,  mesh_suspect,
                      mesh_alive, mesh_member, mesh_reached};
    int rc = tb_nmesh_new(&c, &io, mono(n), &n->mesh);
    if (rc != TB_OK)
        tb_log_error(n->log, "mesh: this node's descriptor (%s, %s) is not valid: %s", n->self.name,
                     n->self_addr, tb_strerror(rc));
    return rc;
}

/* The name of the peer on l: from its handshake, else the one its dial expected. */
static void peer_name_of(tb_node *n, const plink *l, char out[TB_QUIC_NAME_MAX])
{
    tb_peer_view v;
    if (l->name[0])
        snprintf(out, TB_QUIC_NAME_MAX, "%s", l->name);
    else if (l->peer_id != NO_PEER && tb_peers_get(n->peers, l->peer_id, &v) == TB_OK)
        snprintf(out, TB_QUIC_NAME_MAX, "%s", v.name);
    else
        out[0] = '\0';
}

/* A link is up: what waited for it goes out, and a seed joins us to the mesh when we have
 * nobody yet (as the address that answered: a seed's name is no descriptor address). */
static void mesh_connected(tb_node *n, plink *l)
{
    if (!n->mesh)
        return;
    uint64_t now = mono(n);
    tb_peer_view v;
    tb_nmesh_link_up(n->mesh, now, l->name);
    outq_flush(n, l);
    if (l->dialled && l->in_table && !tb_nmesh_is_leaf(n->mesh) &&
        tb_nmesh_active_count(n->mesh) == 0 && tb_peers_get(n->peers, l->peer_id, &v) == TB_OK &&
        v.source == TB_PEER_SEED &&
        tb_nmesh_join(n->mesh, now, l->name, l->region, l->addr) != TB_OK)
        tb_log_warn(n->log, "mesh: cannot join through %s (%s)", l->name, l->addr);
    mesh_rearm(n);
}

/* The peer table learns a connected peer from its handshake: name, region and certificate. */
static void enter_table(tb_node *n, plink *l, const uint8_t *cert, size_t cert_len)
{
    uint32_t id = NO_PEER;
    int rc;
    if (l->dialled && l->peer_id != NO_PEER)
        rc = tb_peers_connected(n->peers, l->peer_id, l->name, l->region, cert, cert_len, mono(n),
                                &id);
    else
        rc = tb_peers_inbound(n->peers, l->name, l->region, cert, cert_len, mono(n), &id);
    if (rc == TB_OK) {
        l->peer_id = id;
        l->in_table = 1;
        kick(n->loop, &n->peers_timer);
        return;
    }
    if (rc == TB_ERR_EXISTS) {
        /* Another connection to this peer is in the table; the endpoint's one-connection-
         * per-pair rule closes one of the two. */
        tb_log_debug(n->log, "peer %s: already connected through another connection", l->name);
        l->peer_id = NO_PEER;
        return;
    }
    tb_log_limited(n->log, &n->rl, TB_LOG_WARN, RL_TABLE, mono(n),
                   "peer %s (%s): not accepted by the peer table: %s", l->name, l->addr,
                   rc == TB_ERR_INVAL    ? "it is this node"
                   : rc == TB_ERR_VERIFY ? "a different node answered at that address"
                                         : tb_strerror(rc));
    l->peer_id = NO_PEER;
    close_later(n, l, TB_QUIC_APP_IDENTITY);
}

static void on_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    tb_node *n = arg;
    plink *l = link_by_conn(n, c);
    if (!l && !(l = link_new(n, c, NO_PEER, 0))) {
        tb_quic_close(c, TB_QUIC_APP_NO_ERROR);
        return;
    }
    snprintf(l->name, sizeof(l->name), "%s", peer->name);
    snprintf(l->region, sizeof(l->region), "%s", peer->region);
    tb_addr_format_sockaddr((const struct sockaddr *)&peer->addr, l->addr, sizeof(l->addr));
    if (strcmp(l->name, n->self.name) == 0) {
        tb_log_info(n->log, "%s is this node; not a peer", l->addr);
        if (l->peer_id != NO_PEER && tb_peers_remove(n->peers, l->peer_id) != TB_OK)
            tb_log_debug(n->log, "peer table had no entry for %s", l->addr);
        l->peer_id = NO_PEER;
        close_later(n, l, TB_QUIC_APP_NO_ERROR);
        return;
    }
    if (tb_live_init(&l->live, &n->live_cfg, mono(n), random_u64()) != TB_OK) {
        close_later(n, l, TB_QUIC_APP_NO_ERROR);
        return;
    }
    l->connected = 1;
    free(l->cert);
    l->cert = peer->cert_len ? malloc(peer->cert_len) : NULL;
    l->cert_len = l->cert ? peer->cert_len : 0;
    if (l->cert)
        memcpy(l->cert, peer->cert, l->cert_len);
    l->not_after = peer->not_after;
    /* A handshake begun before the newest revocation list still completes with the old one. */
    if (tb_certwatch_revoked(n->cw, l->cert, l->cert_len)) {
        tb_log_warn(n->log, "peer %s (%s) dropped: certificate revoked", l->name, l->addr);
        close_later(n, l, TB_QUIC_APP_IDENTITY);
        return;
    }
    tb_log_info(n->log, "peer %s (region %s, %s) connected, %s", l->name, l->region, l->addr,
                peer->dialled ? "dialled" : "accepted");
    l->up_at = mono(n);
    enter_table(n, l, l->cert, l->cert_len);
    if (!l->connected)
        return;
    /* The tree first: this node's first ALIVE goes out on the link that just came up. */
    mesh_connected(n, l);
    tb_nbc_link_up(n->nbc, mono(n), real_s(n), l->name, l->cert, l->cert_len);
    nbc_rearm(n);
    tb_certwatch_peer_connected(n->cw, l->name);
    kick(n->loop, &n->ping_timer);
}

/* Another connection with peer: up, or a dial under way. A peer's DUPLICATE close names no
 * connection, and a hostile peer may send one on its only link. */
static int other_link(tb_node *n, const char *peer)
{
    char name[TB_QUIC_NAME_MAX];
    for (plink *l = n->links; l; l = l->next) {
        if (!l->connected && (l->name[0] || !l->dialled || l->close_code))
            continue;
        peer_name_of(n, l, name);
        if (strcmp(name, peer) == 0)
            return 1;
    }
    return 0;
}

static void on_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info)
{
    tb_node *n = arg;
    plink *l = link_by_conn(n, c);
    if (!l)
        return;
    uint64_t now = mono(n);
    /* A close that keeps the pair's other connection (crossed dials) is no loss. */
    int dup = info->reason == TB_QUIC_CLOSED_DUPLICATE ||
              (info->app && info->code == TB_QUIC_APP_DUPLICATE);
    int was_up = l->up_at != 0;
    /* Let go by this node, or by the peer (what let_go sends); not a stop, a timeout, a reset. */
    bool orderly = was_up && (l->let_go || (info->reason == TB_QUIC_CLOSED_PEER && info->app &&
                                            info->code == TB_QUIC_APP_NO_ERROR));
    if (l->in_table) {
        tb_log_info(n->log, "peer %s (%s) lost: %s", l->name, l->addr,
                    tb_quic_close_reason_name(info->reason));
        /* No refusal either: no growing backoff. */
        if ((dup ? tb_peers_superseded(n->peers, l->peer_id, now)
                 : tb_peers_disconnected(n->peers, l->peer_id, now)) != TB_OK)
            tb_log_debug(n->log, "peer %s: table did not have it connected", l->name);
    } else if (l->dialled && l->peer_id != NO_PEER) {
        tb_log_info(
            n->log, "dial %s failed: %s%s%s", l->addr, tb_quic_close_reason_name(info->reason),
            info->reason == TB_QUIC_CLOSED_REFUSED ? ": " : "",
            info->reason == TB_QUIC_CLOSED_REFUSED ? tb_quic_refusal_name(info->refusal) : "");
        if (tb_peers_dial_failed(n->peers, l->peer_id, now) != TB_OK)
            tb_log_debug(n->log, "dial %s: table had no dial under way", l->addr);
    }
    char gone[TB_QUIC_NAME_MAX];
    peer_name_of(n, l, gone);
    link_free(n, l);
    if (!n->stopping) {
        /* Of two connections with the peer, the one the table did not take may be the one
         * kept (crossed dials): the table takes it now. */
        plink *kept = gone[0] ? link_by_name(n, gone) : NULL;
        if (kept && !kept->in_table)
            enter_table(n, kept, kept->cert, kept->cert_len);
        /* Also while the kept one is not confirmed here yet (the peer, confirming it first,
         * closed this one): as a loss, HyParView would drop a peer it keeps a link to, and let
         * that link go 10 s later (CI: a 3-node mesh left a line). What went on it may be lost. */
        if (dup && n->mesh && gone[0] && other_link(n, gone)) {
            if (was_up)
                tb_nmesh_link_replaced(n->mesh, now, gone);
            mesh_rearm(n);
        } else {
            mesh_link_gone(n, gone, orderly);
        }
        kick(n->loop, &n->peers_timer);
    }
}

static void on_refused(void *arg, const struct sockaddr *addr, socklen_t addrlen,
                       tb_quic_refusal reason, const char *detail)
{
    /* The endpoint logs the refusal with its reason; nothing else to do here. */
}

static void remember(tb_node *n, const char *origin, uint64_t id, const tb_wire_bytes *payload)
{
    recent_bcast *r = &n->recent[n->recent_next];
    n->recent_next = (n->recent_next + 1) % RECENT_BCASTS;
    if (n->recent_count < RECENT_BCASTS)
        n->recent_count++;
    snprintf(r->origin, sizeof(r->origin), "%s", origin);
    r->id = id;
    size_t k = 0;
    for (size_t i = 0; i < payload->len && k + 1 < sizeof(r->text); i++) {
        char c = (char)payload->data[i];
        r->text[k++] = (c > ' ' && c < 127) ? c : '_';
    }
    r->text[k] = '\0';
}

/* The connected neighbours, one link per name, as routing/ wants them. */
typedef struct neighbours {
    size_t n;
    const char **names;
    plink **links;
    size_t *forward;
} neighbours;

static void neighbours_free(neighbours *nb)
{
    free(nb->names);
    free(nb->links);
    free(nb->forward);
}

static int neighbours_get(tb_node *n, neighbours *nb)
{
    size_t cap = 1;
    for (plink *l = n->links; l; l = l->next)
        cap++;
    nb->n = 0;
    nb->names = calloc(cap, sizeof(*nb->names));
    nb->links = calloc(cap, sizeof(*nb->links));
    nb->forward = calloc(cap, sizeof(*nb->forward));
    if (!nb->names || !nb->links || !nb->forward) {
        neighbours_free(nb);
        return TB_ERR_NOMEM;
    }
    for (plink *l = n->links; l; l = l->next) {
        size_t i = 0;
        while (i < nb->n && strcmp(nb->names[i], l->name) != 0)
            i++;
        if (!l->connected || i < nb->n)
            continue;
        nb->names[nb->n] = l->name;
        nb->links[nb->n++] = l;
    }
    return TB_OK;
}

static void deliver_broadcast(tb_node *n, const tb_wire_broadcast *b)
{
    /* Only operators' text (app_type 0, `tbnode broadcast`): the time node's measurements would
     * push it out of the few slots within seconds. */
    if (b->app_type == 0)
        remember(n, b->origin, b->msg_id, &b->payload);
    tb_log_debug(n->log, "broadcast %s/%llu (%zu bytes) delivered", b->origin,
                 (unsigned long long)b->msg_id, b->payload.len);
    if (n->cb.on_broadcast)
        n->cb.on_broadcast(n->cb.arg, b->origin, b->msg_id, b->app_type, b->payload.data,
                           b->payload.len);
}

/* --- the glue to node/bcast.h: signed broadcasts ride on the connections here --- */

static int nbc_send(void *arg, const char *to, const uint8_t *msg, size_t len)
{
    plink *l = link_by_name(arg, to);
    return l ? tb_quic_send_stream(l->conn, msg, len) : TB_ERR_NOTFOUND;
}

static void mesh_rearm(tb_node *n);

static bool nbc_seen(void *arg, const uint8_t dg[TB_BC_DIGEST_LEN])
{
    tb_node *n = arg;
    return n->mesh && tb_nmesh_seen(n->mesh, dg);
}

/* A client has no tree: it neither forwards nor hears broadcasts through one. */
static int nbc_tree(void *arg, const char *from, const char *origin,
                    const uint8_t dg[TB_BC_DIGEST_LEN], uint8_t hop_limit, const uint8_t *raw,
                    size_t len, bool *is_new)
{
    tb_node *n = arg;
    if (!n->mesh) {
        if (is_new)
            *is_new = true;
        return TB_OK;
    }
    int rc = from ? tb_nmesh_gossip(n->mesh, mono(n), from, origin, dg, hop_limit, raw, len, is_new)
                  : tb_nmesh_originate(n->mesh, mono(n), dg, raw, len);
    mesh_rearm(n);
    return rc;
}

static void nbc_mesh(void *arg, const tb_wire_broadcast *b)
{
    tb_node *n = arg;
    if (n->mesh && tb_nmesh_mesh_bcast(n->mesh, mono(n), b->origin, b->app_type, b->payload.data,
                                       b->payload.len) != TB_OK)
        tb_log_debug(n->log, "broadcast %s/%llu: mesh payload not understood", b->origin,
                     (unsigned long long)b->msg_id);
    mesh_rearm(n);
}

static int nbc_accept(void *arg, const tb_wire_broadcast *b)
{
    tb_node *n = arg;
    /* The revocation list is the node's own business (certwatch.c); the rest the layer above's. */
    if (b->app_type == TB_NODE_APP_CRL)
        return tb_certwatch_take_crl(n->cw, b->payload.data, b->payload.len, b->origin);
    if (!n->cb.accept_broadcast)
        return 0;
    return n->cb.accept_broadcast(n->cb.arg, b->origin, b->app_type, b->payload.data,
                                  b->payload.len);
}

static void nbc_deliver(void *arg, const tb_wire_broadcast *b)
{
    deliver_broadcast(arg, b);
}

static int open_nbc(tb_node *n)
{
    tb_nbc_config c = {.log = n->log,
                       .self = n->self.name,
                       .region = n->self.region,
                       .self_der = n->self_der,
                       .self_der_len = n->self_der_len,
                       .key_file = n->cfg->key,
                       .ca_file = n->cfg->ca,
                       .state_dir = n->cfg->state_dir,
                       .lim = &n->lim,
                       /* Real time: a restarted node does not reuse ids or incarnations. */
                       .first_id = (uint64_t)tb_clock_real(n->clock),
                       .incarnation = (uint64_t)real_s(n),
                       .now_s = real_s(n)};
    tb_nbc_io io = {n, nbc_send, nbc_seen, nbc_tree, nbc_accept, nbc_deliver, nbc_mesh};
    return tb_nbc_new(&c, &io, &n->nbc);
}

static void on_broadcast(tb_node *n, const tb_wire_broadcast *b, plink *from, const uint8_t *raw,
                         size_t len)
{
    if (strcmp(b->origin, from->name) == 0 && charge(n, from, TB_BUDGET_OWN_BCAST, 0) != 0)
        return;
    int rc = tb_nbc_receive(n->nbc, mono(n), real_s(n), from->name, b, raw, len);
    if (rc == TB_ERR_MALFORMED || rc == TB_ERR_VERIFY) /* a forgery costs its forwarder */
        peer_invalid(n, from->conn, from->name, "broadcast from '%s' refused: %s", b->origin,
                     tb_strerror(rc));
    nbc_rearm(n);
}

static void on_message(tb_node *n, const tb_wire_message *m, const plink *from)
{
    int rc = tb_uc_accept(n->self.name, m->to, strlen(m->to));
    if (rc != TB_OK || strcmp(m->from, from->name) != 0) {
        peer_invalid(n, from->conn, from->name, "MESSAGE from '%s' to '%s' dropped: %s", m->from,
                     m->to,
                     rc == TB_ERR_NOTFOUND ? "not for this node (messages are not relayed)"
                     : rc != TB_OK         ? "bad node name"
                                           : "sender is not the connected peer");
        return;
    }
    n->st.messages_delivered++;
    if (m->app_type == TB_NODE_APP_CRL) {
        (void)tb_certwatch_take_crl(n->cw, m->payload.data, m->payload.len, from->name);
        return;
    }
    if (n->cb.on_message)
        n->cb.on_message(n->cb.arg, m->from, m->app_type, m->payload.data, m->payload.len);
}

static void on_stream_message(void *arg, tb_quic_conn *c, const uint8_t *msg, size_t len)
{
    tb_node *n = arg;
    plink *l = link_by_conn(n, c);
    tb_wire_msg m;
    tb_wire_diag diag = {0};
    /* Charged before anything else is done with it, so a flood costs the least it can. */
    if (l && charge(n, l, TB_BUDGET_MESSAGE, len) != 0)
        return;
    int rc = tb_wire_decode(msg, len, &n->lim, &m, &diag);
    if (rc != TB_OK) {
        peer_invalid(n, c, l ? l->name : "?", "message dropped: %s (field %s, offset %zu)",
                     tb_wire_strerror(rc), diag.field ? diag.field : "-", diag.offset);
        return;
    }
    /* A link being closed (close_later) still receives what was already in flight. */
    if (!l || !l->connected) {
        n->st.msgs_bad++;
        tb_log_debug(n->log, "peer %s: %s dropped: %s", l ? l->name : "?",
                     tb_wire_type_name(m.type), l ? "connection closing" : "no connection");
        tb_wire_msg_clear(&m);
        return;
    }
    tb_log_debug(n->log, "peer %s: %s received (%zu bytes)", l->name, tb_wire_type_name(m.type),
                 len);
    switch (m.type) {
    case TB_WIRE_DISCOVER:
    case TB_WIRE_PEERS:
        n->st.retired++; /* mesh v1 (ADR 0010): members come from ALIVE and HyParView now */
        break;
    case TB_WIRE_BROADCAST:
        on_broadcast(n, &m.broadcast, l, msg, len);
        break;
    case TB_WIRE_CERT_REQ:
        tb_nbc_on_cert_req(n->nbc, l->name, &m.cert_req);
        break;
    case TB_WIRE_CERT:
        tb_nbc_on_cert(n->nbc, mono(n), real_s(n), l->name, &m.cert);
        nbc_rearm(n);
        break;
    case TB_WIRE_MESSAGE:
        on_message(n, &m.message, l);
        break;
    default:
        if (n->mesh && tb_nmesh_handles(m.type)) {
            if (tb_nmesh_recv(n->mesh, mono(n), l->name, &m) != TB_OK)
                peer_invalid(n, c, l->name, "%s refused", tb_wire_type_name(m.type));
            mesh_rearm(n);
            break;
        }
        peer_invalid(n, c, l->name, "%s on a stream dropped", tb_wire_type_name(m.type));
        break;
    }
    tb_wire_msg_clear(&m);
}

static void answer_ping(tb_node *n, plink *l, const tb_wire_ping *p, int64_t rx_real)
{
    tb_wire_msg m = {.type = TB_WIRE_PONG};
    m.pong.id = p->id;
    m.pong.t1 = p->t1;
    m.pong.t2 = rx_real;
    m.pong.t3 = tb_clock_real(n->clock);
    uint8_t buf[128];
    size_t len;
    if (tb_wire_encode(&m, &n->lim, buf, sizeof(buf), &len) == TB_OK &&
        tb_quic_send_datagram(l->conn, buf, len) == TB_OK)
        return;
    tb_log_debug(n->log, "peer %s: PONG not sent", l->name);
}

static void on_datagram(void *arg, tb_quic_conn *c, const uint8_t *data, size_t len,
                        uint64_t rx_mono_ns, int64_t rx_real_ns)
{
    tb_node *n = arg;
    plink *l = link_by_conn(n, c);
    tb_wire_msg m;
    if (l && l->connected && charge(n, l, TB_BUDGET_MESSAGE, len) != 0)
        return;
    int rc = tb_wire_decode(data, len, &n->lim, &m, NULL);
    if (!l || !l->connected || rc != TB_OK || !tb_wire_datagram_ok(m.type)) {
        n->st.dgrams_bad++;
        if (rc == TB_OK)
            tb_wire_msg_clear(&m);
        if (l && l->connected) /* in flight on a closing link is no fault */
            tb_quic_conn_penalize(c, rc != TB_OK ? "undecodable datagram" : "not PING or PONG");
        return;
    }
    if (m.type == TB_WIRE_PING) {
        answer_ping(n, l, &m.ping, rx_real_ns);
    } else {
        rc = tb_live_pong(&l->live, rx_mono_ns, m.pong.id, m.pong.t1, m.pong.t2, m.pong.t3,
                          rx_real_ns, NULL);
        if (rc == TB_OK)
            n->st.pongs_received++;
        else
            n->st.pongs_bad++;
        if (rc == TB_OK && n->mesh) {
            tb_nmesh_heard(n->mesh, rx_mono_ns, l->name);
            mesh_rearm(n);
        }
    }
    tb_wire_msg_clear(&m);
}

static void on_shutdown(void *arg)
{
    tb_node *n = arg;
    if (n->cb.on_stopped)
        n->cb.on_stopped(n->cb.arg);
}

/* What this node tells others about itself (first entry of its PEERS): its certificate and the
 * address to dial it on.
 * A wildcard listen address is no use to others: then the node name (a DNS SAN of its
 * certificate) stands for the host. */
static int set_self(tb_node *n)
{
    tb_addr_hostport hp = n->cfg->listen;
    /* Nobody dials a client: it tells its certificate and no address. */
    size_t naddrs = n->cfg->mode == TB_NODE_CLIENT ? 0 : 1;
    if (n->ep && hp.port == 0)
        hp.port = tb_node_port(n);
    if (!strcmp(hp.host, "0.0.0.0") || !strcmp(hp.host, "::")) {
        snprintf(hp.host, sizeof(hp.host), "%s", n->self.name);
        hp.kind = TB_ADDR_NAME;
    }
    tb_addr_hostport_format(&hp, n->self_addr, sizeof(n->self_addr));
    tb_peer_info self;
    memset(&self, 0, sizeof(self));
    self.name = (tb_peers_str){n->self.name, strlen(n->self.name)};
    self.region = (tb_peers_str){n->self.region, strlen(n->self.region)};
    self.addrs[0] = (tb_peers_str){n->self_addr, strlen(n->self_addr)};
    self.naddrs = naddrs;
    tb_nbc_set_addr(n->nbc, naddrs ? n->self_addr : NULL);
    if (!naddrs)
        snprintf(n->self_addr, sizeof(n->self_addr), "(client: no address)");
    self.cert = n->self_der;
    self.cert_len = n->self_der_len;
    int rc = tb_peers_set_self(n->peers, &self);
    if (rc != TB_OK)
        tb_log_error(n->log, "this node's own peer entry (%s, %s) is not valid: %s", n->self.name,
                     n->self_addr, tb_strerror(rc));
    return rc;
}

static int load_identity(tb_node *n)
{
    const tb_node_config *cfg = n->cfg;
    char err[TB_NODE_ERR_MAX];
    if (!cfg->cert[0]) {
        tb_log_error(n->log, "no certificate: give --cert F --key F --ca F (tbcert issue writes "
                             "them)");
        return TB_ERR_INVAL;
    }
    if (tb_cert_identity_from_pem_file(cfg->cert, &n->self, err, sizeof(err)) != TB_OK ||
        tb_cert_read_pem_file(cfg->cert, n->self_der, sizeof(n->self_der), &n->self_der_len, err,
                              sizeof(err)) != TB_OK) {
        tb_log_error(n->log, "%s", err);
        return TB_ERR_INVAL;
    }
    if (cfg->name[0] && strcmp(cfg->name, n->self.name) != 0) {
        tb_log_error(n->log, "name '%s' (config) differs from '%s' in the certificate %s",
                     cfg->name, n->self.name, cfg->cert);
        return TB_ERR_INVAL;
    }
    return TB_OK;
}

/* The endpoint's static secret lives in the state dir, so after a restart (even kill -9) the
 * stateless resets this node sends for its old connections are recognised by the peers at
 * once; with a fresh secret they would hold the dead connection until it idles out and refuse
 * the new one as a duplicate meanwhile. */
static int load_secret(tb_node *n, uint8_t secret[TB_QUIC_SECRET_LEN])
{
    char path[TB_NODE_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/quic.secret", n->cfg->state_dir);
    /* O_NOFOLLOW: a link planted in the state dir must not make the node write elsewhere. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        int ok = getrandom(secret, TB_QUIC_SECRET_LEN, 0) == TB_QUIC_SECRET_LEN &&
                 write(fd, secret, TB_QUIC_SECRET_LEN) == TB_QUIC_SECRET_LEN && fsync(fd) == 0;
        close(fd);
        if (ok)
            return TB_OK;
        unlink(path);
        tb_log_error(n->log, "%s: cannot write the QUIC secret", path);
        return TB_ERR_IO;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP) {
        tb_log_error(n->log, "%s: is a symbolic link; not followed (delete it to make a new one)",
                     path);
        return TB_ERR_IO;
    }
    struct stat st;
    ssize_t got = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size == TB_QUIC_SECRET_LEN)
        got = read(fd, secret, TB_QUIC_SECRET_LEN);
    if (fd >= 0)
        close(fd);
    if (got != TB_QUIC_SECRET_LEN) {
        tb_log_error(n->log, "%s: unreadable or not %d bytes (delete it to make a new one)", path,
                     TB_QUIC_SECRET_LEN);
        return TB_ERR_IO;
    }
    return TB_OK;
}

static int open_endpoint(tb_node *n)
{
    const tb_node_config *cfg = n->cfg;
    static const tb_quic_mode modes[] = {TB_QUIC_MODE_HYBRID, TB_QUIC_MODE_SERVER,
                                         TB_QUIC_MODE_CLIENT};
    tb_addr_hostport hp = cfg->listen;
    if (cfg->mode == TB_NODE_CLIENT)
        hp.port = 0; /* a client only dials: any free port of the listen address */
    char listen[TB_ADDR_HOST_MAX + 16];
    tb_addr_hostport_format(&hp, listen, sizeof(listen));
    uint8_t secret[TB_QUIC_SECRET_LEN];
    int rc = load_secret(n, secret);
    if (rc != TB_OK)
        return rc;
    tb_quic_config qc = {
        .listen = listen,
        .mode = modes[cfg->mode],
        .cert_file = cfg->cert,
        .key_file = cfg->key,
        .ca_file = cfg->ca,
        .node_name = n->self.name,
        .retry = cfg->retry ? 1 : 0,
        .idle_timeout_ns = (uint64_t)cfg->idle_timeout_ms * TB_NS_PER_MS,
        .keep_alive_ns =
            cfg->keepalive_ms ? (uint64_t)cfg->keepalive_ms * TB_NS_PER_MS : UINT64_MAX,
        .connect_timeout_ns = (uint64_t)cfg->connect_timeout_ms * TB_NS_PER_MS,
        .max_message_size = cfg->max_message_size,
        .max_connections = (size_t)cfg->max_peers * 2,
        .socket_buffer = cfg->socket_buffer,
        .static_secret = secret,
        .max_penalties = cfg->penalties_to_ban,
        .penalty_decay_ns = (uint64_t)cfg->penalty_decay_s * TB_NS_PER_SEC,
        .ban_ns = (uint64_t)cfg->ban_s * TB_NS_PER_SEC,
        .ban_max_ns = (uint64_t)cfg->ban_max_s * TB_NS_PER_SEC,
    };
    tb_quic_callbacks cb = {on_connected, on_closed,   on_refused, on_stream_message,
                            on_datagram,  on_shutdown, n};
    rc = tb_quic_endpoint_create(&n->ep, n->loop, n->log, n->clock, &qc, &cb);
    sodium_memzero(secret, sizeof(secret));
    /* Configured peers always have room (ADR 0010); a seed given by name does not (yet). */
    for (size_t i = 0; rc == TB_OK && i < cfg->npeers; i++) {
        tb_addr_hostport_format(&cfg->peers[i], listen, sizeof(listen));
        if (tb_quic_endpoint_prefer(n->ep, listen) == TB_ERR_FULL)
            break;
    }
    return rc;
}

static int open_peers(tb_node *n)
{
    const tb_node_config *cfg = n->cfg;
    tb_peers_config pc;
    tb_peers_config_default(&pc, n->self.name, random_u64());
    pc.max_peers = cfg->max_peers;
    pc.connect_timeout_ns = (uint64_t)cfg->connect_timeout_ms * TB_NS_PER_MS;
    make_addr_policy(n);
    pc.addr_policy = &n->addr_policy;
    int rc = tb_peers_new(&pc, &n->peers);
    if (rc != TB_OK)
        return rc;
    for (size_t i = 0; i < cfg->npeers && cfg->mode != TB_NODE_SERVER; i++) {
        char addr[TB_PEERS_ADDR_MAX + 1];
        uint32_t id;
        tb_addr_hostport_format(&cfg->peers[i], addr, sizeof(addr));
        if ((rc = tb_peers_add_seed(n->peers, addr, &id)) != TB_OK) {
            tb_log_error(n->log, "seed peer %s: %s", addr, tb_strerror(rc));
            return rc;
        }
    }
    return TB_OK;
}

static int open_resolver(tb_node *n, tb_resolver *given)
{
    n->resolver = given;
    if (given)
        return TB_OK;
    int rc = tb_resolver_thread_create(n->loop, &n->own_resolver);
    if (rc != TB_OK)
        tb_log_error(n->log, "cannot start the name resolver: %s", tb_strerror(rc));
    n->resolver = n->own_resolver;
    return rc;
}

int tb_node_new(tb_node **out, struct ev_loop *loop, const tb_log *log, const tb_clock *clock,
                const tb_node_config *cfg, const tb_node_callbacks *cb)
{
    tb_node *n = calloc(1, sizeof(*n));
    if (!n)
        return TB_ERR_NOMEM;
    n->loop = loop;
    n->log = log;
    n->clock = clock;
    n->cfg = cfg;
    if (cb)
        n->cb = *cb;
    n->lim = tb_wire_limits_default();
    n->lim.max_msg_size = cfg->max_message_size;
    tb_live_config_default(&n->live_cfg);
    tb_budget_config_for_mesh(&n->budget_cfg, cfg->max_peers);
    tb_budget_config_apply(&n->budget_cfg, &cfg->budget);
    tb_log_ratelimit_init(&n->rl, LOG_BURST, LOG_INTERVAL_NS);
    n->live_cfg.interval_ns = (uint64_t)cfg->ping_interval_ms * TB_NS_PER_MS;
    ev_timer_init(&n->peers_timer, on_peers_timer, 0., 0.);
    ev_timer_init(&n->ping_timer, on_ping_timer, 0., 0.);
    ev_timer_init(&n->reaper, on_reaper, 0., 0.);
    ev_timer_init(&n->nbc_timer, on_nbc_timer, 0., 0.);
    ev_timer_init(&n->mesh_timer, on_mesh_timer, 0., 0.);
    n->peers_timer.data = n->ping_timer.data = n->reaper.data = n->nbc_timer.data = n;
    n->mesh_timer.data = n;
    int rc = load_identity(n);
    if (rc == TB_OK)
        rc = tb_certwatch_new(&n->cw, n, loop, log, clock, cfg);
    if (rc == TB_OK)
        rc = open_resolver(n, cb ? cb->resolver : NULL);
    if (rc == TB_OK)
        rc = open_peers(n);
    if (rc == TB_OK)
        rc = open_nbc(n);
    if (rc == TB_OK)
        rc = open_endpoint(n);
    if (rc == TB_OK)
        rc = set_self(n);
    if (rc == TB_OK)
        rc = open_mesh(n);
    if (rc == TB_OK)
        rc = tb_control_open(&n->ctl, loop, log, cfg->state_dir, tb_node_control, n);
    if (rc != TB_OK) {
        tb_node_free(n);
        return rc;
    }
    tb_log_info(log, "node %s (region %s) up: mode %s, advertised as %s, %zu seed(s)", n->self.name,
                n->self.region, tb_node_mode_name(cfg->mode), n->self_addr, cfg->npeers);
    tb_certwatch_start(n->cw);
    kick(loop, &n->peers_timer);
    *out = n;
    return TB_OK;
}

void tb_node_stop(tb_node *n)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    ev_timer_stop(n->loop, &n->peers_timer);
    ev_timer_stop(n->loop, &n->ping_timer);
    ev_timer_stop(n->loop, &n->nbc_timer);
    ev_timer_stop(n->loop, &n->mesh_timer);
    pending_cancel(n, NO_PEER);
    tb_certwatch_stop(n->cw);
    tb_control_close(n->ctl);
    n->ctl = NULL;
    tb_quic_endpoint_shutdown(n->ep);
}

void tb_node_free(tb_node *n)
{
    if (!n)
        return;
    ev_timer_stop(n->loop, &n->peers_timer);
    ev_timer_stop(n->loop, &n->ping_timer);
    ev_timer_stop(n->loop, &n->reaper);
    ev_timer_stop(n->loop, &n->nbc_timer);
    ev_timer_stop(n->loop, &n->mesh_timer);
    pending_cancel(n, NO_PEER);
    if (n->own_resolver)
        tb_resolver_thread_destroy(n->own_resolver);
    tb_control_close(n->ctl);
    if (n->ep)
        tb_quic_endpoint_destroy(n->ep);
    while (n->links)
        link_free(n, n->links);
    tb_peers_free(n->peers);
    tb_nbc_free(n->nbc);
    tb_nmesh_free(n->mesh);
    while (n->outq) {
        outq *q = n->outq;
        n->outq = q->next;
        free(q);
    }
    tb_certwatch_free(n->cw);
    free(n);
}

const char *tb_node_name(const tb_node *n)
{
    return n->self.name;
}

const char *tb_node_region(const tb_node *n)
{
    return n->self.region;
}

int tb_node_peer_cert(const tb_node *n, const char *name, const uint8_t **der, size_t *len)
{
    if (strcmp(name, n->self.name) == 0) {
        *der = n->self_der;
        *len = n->self_der_len;
        return TB_OK;
    }
    if (tb_nbc_origin_der(n->nbc, name, der, len) == TB_OK)
        return TB_OK; /* verified against the CA */
    /* A connected peer's certificate was verified in its handshake: it is known before the
     * peer's PEERS entry arrives, so its first measurements are not dropped as unknown. */
    for (const plink *l = n->links; l; l = l->next) {
        if (l->connected && l->cert && strcmp(l->name, name) == 0) {
            *der = l->cert;
            *len = l->cert_len;
            return TB_OK;
        }
    }
    uint32_t id;
    tb_peer_view v;
    if (tb_peers_find(n->peers, name, &id) != TB_OK || tb_peers_get(n->peers, id, &v) != TB_OK ||
        !v.cert_len)
        return TB_ERR_NOTFOUND;
    *der = v.cert;
    *len = v.cert_len;
    return TB_OK;
}

uint16_t tb_node_port(const tb_node *n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (tb_quic_endpoint_local_addr(n->ep, &ss, &len) != TB_OK)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

int tb_node_broadcast(tb_node *n, uint32_t app_type, const uint8_t *payload, size_t len,
                      uint64_t *id)
{
    int rc = tb_nbc_originate(n->nbc, mono(n), app_type, payload, len, id);
    nbc_rearm(n);
    return rc;
}

/* A revoked origin has no key from the list's arrival on, so its measurements are dropped. */
int tb_node_origin_key(tb_node *n, const char *origin, tb_measure_origin_key *out)
{
    const uint8_t *der;
    size_t len;
    if (tb_nbc_origin_der(n->nbc, origin, &der, &len) == TB_OK &&
        tb_certwatch_revoked(n->cw, der, len))
        return TB_ERR_NOTFOUND;
    return tb_nbc_origin_key(n->nbc, origin, real_s(n), out);
}

int tb_node_send(tb_node *n, const char *to, uint32_t app_type, const uint8_t *payload, size_t len)
{
    neighbours nb;
    int rc = neighbours_get(n, &nb);
    if (rc != TB_OK)
        return rc;
    tb_uc_route r;
    rc = tb_uc_route_to(n->self.name, to, strlen(to), nb.names, nb.n, &r);
    if (rc == TB_OK && r.action == TB_UC_SEND) {
        tb_wire_msg m = {.type = TB_WIRE_MESSAGE};
        m.message = (tb_wire_message){to, n->self.name, app_type, {payload, len}};
        rc = send_msg(n, nb.links[r.neighbour]->conn, &m);
    } else if (rc == TB_OK) {
        rc = TB_ERR_INVAL; /* to this node itself */
    }
    neighbours_free(&nb);
    return rc;
}

static void fill_status(const plink *l, tb_node_peer_status *s)
{
    tb_live_estimate e;
    if (l->connected && tb_live_get_estimate(&l->live, &e) == TB_OK) {
        s->has_estimate = 1;
        s->rtt_ns = e.rtt_ns;
        s->offset_ns = e.offset_ns;
        s->uncertainty_ns = e.uncertainty_ns;
        s->samples = e.samples;
    }
}

size_t tb_node_peers(const tb_node *n, tb_node_peer_status *out, size_t max)
{
    size_t k = 0;
    for (const plink *l = n->links; l; l = l->next) {
        if (!l->connected)
            continue;
        if (k < max) {
            tb_node_peer_status *s = &out[k];
            memset(s, 0, sizeof(*s));
            snprintf(s->name, sizeof(s->name), "%s", l->name);
            snprintf(s->region, sizeof(s->region), "%s", l->region);
            snprintf(s->addr, sizeof(s->addr), "%s", l->addr);
            s->state = "connected";
            fill_status(l, s);
        }
        k++;
    }
    uint32_t ids[256];
    size_t nids = tb_peers_list(n->peers, ids, 256);
    for (size_t i = 0; i < nids && i < 256; i++) {
        tb_peer_view v;
        if (tb_peers_get(n->peers, ids[i], &v) != TB_OK || v.state == TB_PEER_CONNECTED)
            continue;
        if (k < max) {
            tb_node_peer_status *s = &out[k];
            memset(s, 0, sizeof(*s));
            snprintf(s->name, sizeof(s->name), "%s", v.name[0] ? v.name : "?");
            snprintf(s->region, sizeof(s->region), "%s", v.region[0] ? v.region : "?");
            snprintf(s->addr, sizeof(s->addr), "%s", v.naddrs ? v.addrs[0] : "-");
            s->state = tb_peers_state_name(v.state);
        }
        k++;
    }
    return k;
}

void tb_node_get_stats(const tb_node *n, tb_node_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->msgs_bad = n->st.msgs_bad;
    out->msgs_retired = n->st.retired;
    out->dgrams_bad = n->st.dgrams_bad;
    out->pongs_bad = n->st.pongs_bad;
    const tb_quic_stats *qs = tb_quic_endpoint_stats(n->ep);
    out->oversized = qs->msgs_dropped_oversized;
    out->over_budget = n->st.over_budget;
    out->penalties = qs->penalties;
    out->peers_banned = qs->peers_banned;
    out->addrs_refused = tb_peers_addrs_refused(n->peers) + n->st.addrs_refused;
    for (int i = 0; i < TB_QUIC_ADMIT_COUNT; i++)
        out->handshakes_refused += qs->admission[i];
    out->room_for_peers = qs->preferred_room;
    tb_peers_stats ps;
    tb_peers_get_stats(n->peers, &ps);
    out->learned_dials = ps.learned_dials;
    out->learned_forgotten = ps.learned_forgotten;
    out->messages_delivered = n->st.messages_delivered;
    out->pings_sent = n->st.pings_sent;
    out->pongs_received = n->st.pongs_received;
    tb_nbc_stats bs;
    tb_nbc_get_stats(n->nbc, &bs);
    out->bcast_delivered = bs.delivered;
    out->bcast_duplicates = bs.duplicates;
    tb_nmesh_stats ms = {0};
    if (n->mesh)
        tb_nmesh_get_stats(n->mesh, &ms);
    out->bcast_forwarded = ms.gossip_sent;
    out->bcast_refused = bs.refused;
    out->bcast_held = bs.held;
    out->bcast_hold_dropped = bs.hold_dropped;
    out->cert_reqs_sent = bs.cert_reqs_sent;
    out->certs_learned = bs.certs_learned;
    out->certs_refused = bs.certs_refused;
}

size_t tb_node_connected_count(const tb_node *n)
{
    size_t k = 0;
    for (const plink *l = n->links; l; l = l->next)
        k += l->connected != 0;
    return k;
}

typedef struct members_out {
    tb_node_member *out;
    size_t max, k;
} members_out;

static void member_add(void *arg, const char *name, tb_nmesh_member state, uint64_t incarnation)
{
    members_out *m = arg;
    if (m->k < m->max) {
        tb_node_member *o = &m->out[m->k];
        snprintf(o->name, sizeof(o->name), "%s", name);
        o->state = tb_nmesh_member_name(state);
        o->incarnation = incarnation;
    }
    m->k++;
}

size_t tb_node_members(const tb_node *n, tb_node_member *out, size_t max)
{
    members_out m = {out, max, 0};
    if (n->mesh)
        tb_nmesh_members(n->mesh, member_add, &m);
    return m.k;
}

void tb_node_set_bcast_every(tb_node *n, uint64_t ns)
{
    n->cb.bcast_every_ns = ns;
    if (n->mesh)
        tb_nmesh_set_bcast_every(n->mesh, ns);
}

size_t tb_node_mesh_size(const tb_node *n)
{
    return n->mesh ? tb_nmesh_size(n->mesh) : 1;
}

void tb_node_member_counts(const tb_node *n, size_t *alive, size_t *suspect, size_t *dead)
{
    *alive = n->mesh ? tb_nmesh_member_count(n->mesh, TB_NMESH_ALIVE) : 0;
    *suspect = n->mesh ? tb_nmesh_member_count(n->mesh, TB_NMESH_SUSPECT) : 0;
    *dead = n->mesh ? tb_nmesh_member_count(n->mesh, TB_NMESH_DEAD) : 0;
}

void tb_node_views(const tb_node *n, size_t *active, size_t *passive)
{
    *active = n->mesh ? tb_nmesh_active_count(n->mesh) : 0;
    *passive = n->mesh ? tb_nmesh_passive_count(n->mesh) : 0;
}

size_t tb_node_recent_bcasts(const tb_node *n, tb_node_recent *out, size_t max)
{
    size_t k = n->recent_count < max ? n->recent_count : max;
    for (size_t i = 0; i < k; i++) {
        const recent_bcast *r =
            &n->recent[(n->recent_next + RECENT_BCASTS - 1 - i) % RECENT_BCASTS];
        out[i] = (tb_node_recent){r->origin, r->id, r->text};
    }
    return k;
}

const char *tb_node_advertised(const tb_node *n)
{
    return n->self_addr;
}

tb_node_mode tb_node_mode_of(const tb_node *n)
{
    return n->cfg->mode;
}

const tb_quic_stats *tb_node_quic_stats(const tb_node *n)
{
    return tb_quic_endpoint_stats(n->ep);
}

void tb_node_status_ext(const tb_node *n, tb_control_buf *b, int json)
{
    if (n->cb.status_ext)
        n->cb.status_ext(n->cb.arg, b, json);
}

int tb_node_control_ext(const tb_node *n, const char *line, tb_control_buf *b)
{
    return n->cb.control_ext ? n->cb.control_ext(n->cb.arg, line, b) : 0;
}

int tb_node_origin_der(const tb_node *n, const char *origin, const uint8_t **der, size_t *len)
{
    return tb_nbc_origin_der(n->nbc, origin, der, len);
}

/* --- the certificate lifecycle (certwatch.c) --- */

int tb_node_reload_certs(tb_node *n)
{
    return tb_certwatch_reload(n->cw);
}

int tb_node_cert_revoked(const tb_node *n, const uint8_t *der, size_t len)
{
    return tb_certwatch_revoked(n->cw, der, len);
}

tb_quic_endpoint *tb_node_endpoint(tb_node *n)
{
    return n->ep;
}

const tb_certwatch *tb_node_certwatch(const tb_node *n)
{
    return n->cw;
}

void tb_node_own_cert_changed(tb_node *n, const tb_cert_identity *id, const uint8_t *der,
                              size_t len)
{
    if (len > sizeof(n->self_der))
        return;
    n->self = *id;
    memcpy(n->self_der, der, len);
    n->self_der_len = len;
    (void)!set_self(n);
    /* Every node learns it from the signed ALIVE, of a new incarnation: SWIM's records of the
     * old one (a suspicion) are stale, and every member takes the new certificate as newer. */
    if (tb_nbc_set_cert(n->nbc, der, len) != TB_OK || !n->mesh) {
        tb_log_warn(n->log, "renewed certificate not announced to the mesh");
        return;
    }
    tb_nmesh_renewed(n->mesh, mono(n));
    mesh_rearm(n);
}

void tb_node_notify_certs(tb_node *n, const char *key_pem, size_t key_len)
{
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    if (key_pem && tb_measure_key_from_pem(key_pem, key_len, sk, pk) == TB_OK)
        tb_nbc_set_key(n->nbc, sk, pk);
    sodium_memzero(sk, sizeof(sk));
    if (n->cb.on_certs)
        n->cb.on_certs(n->cb.arg, key_pem, key_len);
}

size_t tb_node_drop_peers(tb_node *n, const char *(*judge)(void *arg, const tb_node_link_view *v),
                          void *arg)
{
    size_t k = 0;
    for (plink *l = n->links; l; l = l->next) {
        if (!l->connected || !l->cert)
            continue;
        tb_node_link_view v = {l->name, l->addr, l->cert, l->cert_len, l->not_after};
        const char *why = judge(arg, &v);
        if (!why)
            continue;
        tb_log_warn(n->log, "peer %s (%s) dropped: %s", l->name, l->addr, why);
        close_later(n, l, TB_QUIC_APP_IDENTITY);
        k++;
    }
    return k;
}
