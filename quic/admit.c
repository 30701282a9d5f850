/* Who may start a handshake (limits on half-open connections, overall, per address and per
 * prefix), penalties for a misbehaving peer, and the small table of banned peers. */
#include "quic/internal.h"

#include "common/addr.h"

#include <string.h>

#include <netinet/in.h>

#define HALF_OPEN_PER_ADDR 8
#define HALF_OPEN_PER_PREFIX 32
#define HALF_OPEN_TIMEOUT (5 * NGTCP2_SECONDS)
#define MAX_STREAMS_IN 16
#define STREAM_TIMEOUT (10 * NGTCP2_SECONDS)
#define MAX_PENALTIES 16
#define PENALTY_DECAY (60 * NGTCP2_SECONDS)
#define BAN_TIME (600 * NGTCP2_SECONDS)
#define BAN_MAX (6 * 3600 * NGTCP2_SECONDS)
/* How long a peer's address keeps its room after its connection ended. */
#define KNOWN_TIME (3600 * NGTCP2_SECONDS)
/* Lines of one kind an outsider can make us write: this many per interval, then a count. */
#define LOG_BURST 5
#define LOG_INTERVAL (10 * NGTCP2_SECONDS)

const char *tb_quic_admit_name(tb_quic_admit a)
{
    static const char *const names[TB_QUIC_ADMIT_COUNT] = {"admitted",
                                                           "connection table full",
                                                           "too many handshakes",
                                                           "too many handshakes from the address",
                                                           "too many handshakes from the prefix",
                                                           "address banned"};
    return (unsigned)a < TB_QUIC_ADMIT_COUNT ? names[a] : "?";
}

int tb_quic_admit_config(tb_quic_endpoint *ep, const tb_quic_config *cfg)
{
    ep->max_half_open = cfg->max_half_open ? cfg->max_half_open : ep->max_conns / 4;
    if (ep->max_half_open == 0)
        ep->max_half_open = 1;
    if (ep->max_half_open >= ep->max_conns) {
        tb_log_error(ep->log,
                     "quic: max_half_open must be below max_connections (%zu), so "
                     "handshakes cannot take the room of established peers",
                     ep->max_conns);
        return TB_ERR_INVAL;
    }
    ep->max_half_open_addr =
        cfg->max_half_open_per_addr ? cfg->max_half_open_per_addr : HALF_OPEN_PER_ADDR;
    ep->max_half_open_prefix =
        cfg->max_half_open_per_prefix ? cfg->max_half_open_per_prefix : HALF_OPEN_PER_PREFIX;
    ep->half_open_ns = cfg->half_open_timeout_ns ? cfg->half_open_timeout_ns : HALF_OPEN_TIMEOUT;
    if (ep->half_open_ns > ep->connect_timeout_ns)
        ep->half_open_ns = ep->connect_timeout_ns;
    ep->max_streams_in = cfg->max_streams_in ? cfg->max_streams_in : MAX_STREAMS_IN;
    if (ep->max_streams_in > 1024) {
        tb_log_error(ep->log, "quic: max_streams_in over 1024");
        return TB_ERR_INVAL;
    }
    ep->max_buffered = cfg->max_buffered ? cfg->max_buffered : ep->max_streams_in * ep->max_msg;
    ep->stream_timeout_ns = cfg->stream_timeout_ns ? cfg->stream_timeout_ns : STREAM_TIMEOUT;
    ep->max_penalties = cfg->max_penalties ? cfg->max_penalties : MAX_PENALTIES;
    ep->penalty_decay_ns = cfg->penalty_decay_ns ? cfg->penalty_decay_ns : PENALTY_DECAY;
    ep->ban_ns = cfg->ban_ns ? cfg->ban_ns : BAN_TIME;
    ep->ban_max_ns = cfg->ban_max_ns ? cfg->ban_max_ns : BAN_MAX;
    if (ep->ban_max_ns < ep->ban_ns)
        ep->ban_max_ns = ep->ban_ns;
    tb_log_ratelimit_init(&ep->rl, LOG_BURST, LOG_INTERVAL);
    return TB_OK;
}

/* The IP address of sa in 16 bytes (IPv4 in the first 4); 0 for another family. */
static int ip_of(const struct sockaddr *sa, socklen_t len, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

static int same_ip(int family, const uint8_t *a, const uint8_t *b, int prefix_only)
{
    size_t n = family == AF_INET ? (prefix_only ? 3 : 4) : (prefix_only ? 8 : 16);
    return memcmp(a, b, n) == 0;
}

static int in_list(const tb_quic_known *list, size_t n, int family, const uint8_t ip[16],
                   uint64_t since)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].seen && list[i].seen >= since && list[i].family == family &&
            same_ip(family, list[i].addr, ip, 0))
            return 1;
    }
    return 0;
}

/* A configured peer's address, or one a peer is or was lately connected from. */
static int preferred(const tb_quic_endpoint *ep, int family, const uint8_t ip[16], uint64_t now)
{
    if (!family)
        return 0;
    uint64_t since = now > KNOWN_TIME ? now - KNOWN_TIME : 1;
    if (in_list(ep->preferred, ep->npreferred, family, ip, 1) ||
        in_list(ep->known, MAX_KNOWN, family, ip, since))
        return 1;
    uint8_t other[16];
    for (const tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (c->state == TB_QUIC_CS_CONNECTED &&
            ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, other) == family &&
            same_ip(family, ip, other, 0))
            return 1;
    }
    return 0;
}

static int conn_preferred(const tb_quic_endpoint *ep, const tb_quic_conn *c, uint64_t now)
{
    uint8_t ip[16];
    int family = ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, ip);
    return preferred(ep, family, ip, now);
}

int tb_quic_endpoint_prefer(tb_quic_endpoint *ep, const char *addr)
{
    tb_addr a;
    if (!addr || tb_addr_parse_numeric(addr, strlen(addr), TB_ADDR_PORT_ZERO_OK, &a, NULL) != TB_OK)
        return TB_ERR_INVAL;
    tb_quic_known k = {.seen = 1};
    k.family = ip_of((const struct sockaddr *)&a.ss, a.len, k.addr);
    if (!k.family)
        return TB_ERR_INVAL;
    if (in_list(ep->preferred, ep->npreferred, k.family, k.addr, 1))
        return TB_OK;
    if (ep->npreferred == MAX_PREFERRED)
        return TB_ERR_FULL;
    ep->preferred[ep->npreferred++] = k;
    return TB_OK;
}

void tb_quic_admit_known(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    uint8_t ip[16];
    int family = ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, ip);
    if (!family)
        return;
    tb_quic_known *slot = &ep->known[0];
    for (size_t i = 0; i < MAX_KNOWN; i++) {
        tb_quic_known *k = &ep->known[i];
        if (k->seen && k->family == family && same_ip(family, k->addr, ip, 0)) {
            slot = k;
            break;
        }
        if (k->seen < slot->seen)
            slot = k; /* the free or stalest slot */
    }
    slot->seen = tb_quic_now(ep);
    slot->family = family;
    memcpy(slot->addr, ip, sizeof(slot->addr));
}

/* Slots of the connection table kept for configured peers not connected now, at most a
 * quarter of the table, so a table full of others still lets them in. */
static size_t reserved_free(const tb_quic_endpoint *ep)
{
    size_t k = 0;
    uint8_t other[16];
    for (size_t i = 0; i < ep->npreferred; i++) {
        const tb_quic_known *p = &ep->preferred[i];
        int up = 0;
        for (const tb_quic_conn *c = ep->conns; c && !up; c = c->next) {
            up = !tb_quic_conn_gone(c) &&
                 ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, other) ==
                     p->family &&
                 same_ip(p->family, p->addr, other, 0);
        }
        k += !up;
    }
    return k < ep->max_conns / 4 ? k : ep->max_conns / 4;
}

static size_t live_conns(const tb_quic_endpoint *ep)
{
    size_t k = 0;
    for (const tb_quic_conn *c = ep->conns; c; c = c->next)
        k += c->state != TB_QUIC_CS_DEAD;
    return k;
}

/* For a configured or known peer: the oldest half-open handshake of anyone else makes room.
 * 1 when a slot was freed. */
static int evict_other(tb_quic_endpoint *ep, uint64_t now)
{
    tb_quic_conn *victim = NULL;
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (tb_quic_conn_half_open(c) && !conn_preferred(ep, c, now))
            victim = c; /* newest first: the last one is the oldest */
    }
    if (!victim)
        return 0;
    tb_quic_conn_evict(victim);
    ep->stats.preferred_room++;
    return 1;
}

int tb_quic_admit_room_to_dial(tb_quic_endpoint *ep, const struct sockaddr *sa, socklen_t salen)
{
    uint8_t ip[16];
    uint64_t now = tb_quic_now(ep);
    int family = ip_of(sa, salen, ip);
    return preferred(ep, family, ip, now) && evict_other(ep, now) && live_conns(ep) < ep->max_conns;
}

static int addr_banned(const tb_quic_endpoint *ep, int family, const uint8_t ip[16], uint64_t now)
{
    for (size_t i = 0; i < MAX_BANS; i++) {
        const tb_quic_ban *b = &ep->bans[i];
        if (b->until > now && b->family == family && same_ip(family, b->addr, ip, 0))
            return 1;
    }
    return 0;
}

int tb_quic_banned_fingerprint(const tb_quic_endpoint *ep, const uint8_t fp[32])
{
    uint64_t now = tb_quic_now(ep);
    for (size_t i = 0; i < MAX_BANS; i++) {
        const tb_quic_ban *b = &ep->bans[i];
        if (b->until > now && b->has_fingerprint && memcmp(b->fingerprint, fp, 32) == 0)
            return 1;
    }
    return 0;
}

/* Half-open handshakes of c's prefix. */
static size_t prefix_count(const tb_quic_endpoint *ep, const tb_quic_conn *c)
{
    uint8_t ip[16], other[16];
    int family = ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, ip);
    size_t k = 0;
    for (const tb_quic_conn *o = ep->conns; o; o = o->next) {
        if (tb_quic_conn_half_open(o) &&
            ip_of((const struct sockaddr *)&o->peer.addr, o->peer.addrlen, other) == family)
            k += same_ip(family, ip, other, 1);
    }
    return k;
}

/* The half-open table is full. Handshakes from many sources can fill it while each stays
 * under its per-address and per-prefix share, and a newcomer would be refused until the flood
 * stops: instead it takes the slot of the oldest handshake of the prefix holding the most,
 * when that prefix holds more than the newcomer's would (mine: its count before this one).
 * No set of sources can then keep a new real peer out. 1 when a slot was freed. */
static int evict_for(tb_quic_endpoint *ep, size_t mine)
{
    tb_quic_conn *victim = NULL;
    size_t most = 0;
    /* conns is newest first: among equals the last one seen is the oldest. */
    uint64_t now = tb_quic_now(ep);
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_half_open(c) || conn_preferred(ep, c, now))
            continue;
        size_t k = prefix_count(ep, c);
        if (k >= most) {
            most = k;
            victim = c;
        }
    }
    if (!victim || most <= mine + 1)
        return 0;
    tb_quic_conn_evict(victim);
    return 1;
}

static tb_quic_admit judge(tb_quic_endpoint *ep, const struct sockaddr *src, socklen_t srclen)
{
    uint8_t ip[16], other[16];
    uint64_t now = tb_quic_now(ep);
    int family = ip_of(src, srclen, ip);
    if (addr_banned(ep, family, ip, now))
        return TB_QUIC_ADMIT_BANNED;
    int pref = preferred(ep, family, ip, now);
    if (pref ? live_conns(ep) >= ep->max_conns && !evict_other(ep, now)
             : ep->nconns + reserved_free(ep) >= ep->max_conns)
        return TB_QUIC_ADMIT_TABLE_FULL;
    size_t all = 0, addr = 0, prefix = 0;
    for (const tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_half_open(c))
            continue;
        all++;
        if (ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, other) != family)
            continue;
        addr += same_ip(family, ip, other, 0);
        prefix += same_ip(family, ip, other, 1);
    }
    if (addr >= ep->max_half_open_addr)
        return TB_QUIC_ADMIT_PER_ADDR;
    if (prefix >= ep->max_half_open_prefix && !pref)
        return TB_QUIC_ADMIT_PER_PREFIX;
    if (prefix >= ep->max_half_open_prefix)
        ep->stats.preferred_room++;
    if (all >= ep->max_half_open && !(pref ? evict_other(ep, now) : evict_for(ep, prefix)))
        return TB_QUIC_ADMIT_HALF_OPEN_FULL;
    return TB_QUIC_ADMIT_OK;
}

tb_quic_admit tb_quic_admit_check(tb_quic_endpoint *ep, const struct sockaddr *src,
                                  socklen_t srclen)
{
    tb_quic_admit a = judge(ep, src, srclen);
    if (a == TB_QUIC_ADMIT_OK)
        return a;
    ep->stats.admission[a]++;
    char s[TB_QUIC_ADDRSTR_MAX];
    tb_addr_format_sockaddr(src, s, sizeof(s));
    tb_log_limited(ep->log, &ep->rl, TB_LOG_INFO, TB_QUIC_RL_ADMIT, tb_quic_now(ep),
                   "quic: not admitting %s: %s", s, tb_quic_admit_name(a));
    return a;
}

void tb_quic_admit_count(tb_quic_endpoint *ep)
{
    uint64_t n = 0;
    for (const tb_quic_conn *c = ep->conns; c; c = c->next)
        n += tb_quic_conn_half_open(c);
    ep->stats.half_open = n;
    if (n > ep->stats.half_open_peak)
        ep->stats.half_open_peak = n;
}

/* The record of this peer (by address or certificate), else a free slot, else the record
 * whose ban ended longest ago, else the ban that ends first: the table stays bounded under any
 * attack, and a repeat offender is remembered as long as there is room. */
static tb_quic_ban *ban_slot(tb_quic_endpoint *ep, int family, const uint8_t ip[16],
                             const uint8_t *fp)
{
    tb_quic_ban *pick = NULL;
    for (size_t i = 0; i < MAX_BANS; i++) {
        tb_quic_ban *b = &ep->bans[i];
        if (b->until && ((family && b->family == family && same_ip(family, b->addr, ip, 0)) ||
                         (fp && b->has_fingerprint && memcmp(b->fingerprint, fp, 32) == 0)))
            return b;
        if (!pick || b->until < pick->until)
            pick = b;
    }
    pick->strikes = 0;
    return pick;
}

uint64_t tb_quic_ban_length(uint64_t ban_ns, uint64_t ban_max_ns, unsigned strikes)
{
    uint64_t d = ban_ns;
    for (unsigned i = 1; i < strikes && d < ban_max_ns; i++)
        d = d > ban_max_ns / 2 ? ban_max_ns : d * 2;
    return d < ban_max_ns ? d : ban_max_ns;
}

/* Bans c's address and certificate; returns for how long. */
static uint64_t ban(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    uint64_t now = tb_quic_now(ep);
    uint8_t ip[16];
    int family = ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, ip);
    const uint8_t *fp = c->peer.name[0] ? c->peer.fingerprint : NULL;
    tb_quic_ban *b = ban_slot(ep, family, ip, fp);
    /* Out of trouble for ban_max_ns since its last ban ended: a first offence again. */
    unsigned strikes = 0;
    if (b->until > now || (b->until && now - b->until < ep->ban_max_ns))
        strikes = b->strikes;
    memset(b, 0, sizeof(*b));
    b->strikes = strikes < 64 ? strikes + 1 : strikes;
    uint64_t len = tb_quic_ban_length(ep->ban_ns, ep->ban_max_ns, b->strikes);
    b->until = now + len;
    b->family = family;
    memcpy(b->addr, ip, sizeof(b->addr));
    if (fp) {
        memcpy(b->fingerprint, fp, sizeof(b->fingerprint));
        b->has_fingerprint = 1;
    }
    ep->stats.peers_banned++;
    return len;
}

unsigned tb_quic_penalty_decay(unsigned penalties, uint64_t *since, uint64_t decay_ns, uint64_t now)
{
    if (penalties == 0 || now <= *since || decay_ns == 0) {
        if (penalties == 0 || *since > now)
            *since = now;
        return penalties;
    }
    uint64_t steps = (now - *since) / decay_ns;
    if (steps >= penalties) {
        *since = now;
        return 0;
    }
    *since += steps * decay_ns;
    return penalties - (unsigned)steps;
}

void tb_quic_conn_penalize(tb_quic_conn *c, const char *reason)
{
    tb_quic_conn_penalize_by(c, reason, 1);
}

void tb_quic_conn_penalize_by(tb_quic_conn *c, const char *reason, unsigned weight)
{
    if (!c || tb_quic_conn_gone(c) || (c->flags & TB_QUIC_CF_CLOSE_REQUESTED))
        return;
    tb_quic_endpoint *ep = c->ep;
    uint64_t now = tb_quic_now(ep);
    ep->stats.penalties++;
    c->penalties =
        tb_quic_penalty_decay(c->penalties, &c->penalty_since, ep->penalty_decay_ns, now);
    c->penalties =
        weight > ep->max_penalties - c->penalties ? ep->max_penalties : c->penalties + weight;
    if (c->penalties < ep->max_penalties)
        return;
    char a[TB_QUIC_ADDRSTR_MAX];
    uint64_t len = ban(c);
    tb_log_limited(ep->log, &ep->rl, TB_LOG_WARN, TB_QUIC_RL_PENALTY, now,
                   "quic: disconnecting %s %s and refusing it for %llu s: %u penalties, last: %s",
                   c->peer.name[0] ? c->peer.name : "(unidentified)", tb_quic_conn_addr(c, a),
                   (unsigned long long)(len / NGTCP2_SECONDS), c->penalties, reason ? reason : "?");
    tb_quic_conn_set_info(c, TB_QUIC_CLOSED_LOCAL, TB_QUIC_REFUSE_NONE, TB_QUIC_APP_MISBEHAVING, 1);
    tb_quic_conn_close_app(c, TB_QUIC_APP_MISBEHAVING);
}

void tb_quic_on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_quic_endpoint *ep = w->data;
    uint64_t now = tb_quic_now(ep);
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_gone(c) && c->rx)
            tb_quic_streams_sweep(c, now);
    }
    tb_quic_admit_count(ep);
    tb_log_ratelimit_flush(&ep->rl, ep->log, now);
}
