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
#define BAN_TIME (600 * NGTCP2_SECONDS)
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
    ep->ban_ns = cfg->ban_ns ? cfg->ban_ns : BAN_TIME;
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
    for (tb_quic_conn *c = ep->conns; c; c = c->next) {
        if (!tb_quic_conn_half_open(c))
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
    int family = ip_of(src, srclen, ip);
    if (addr_banned(ep, family, ip, tb_quic_now(ep)))
        return TB_QUIC_ADMIT_BANNED;
    if (ep->nconns >= ep->max_conns)
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
    if (prefix >= ep->max_half_open_prefix)
        return TB_QUIC_ADMIT_PER_PREFIX;
    if (all >= ep->max_half_open && !evict_for(ep, prefix))
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

/* A free slot, else the ban that ends first: the table stays bounded under any attack. */
static tb_quic_ban *ban_slot(tb_quic_endpoint *ep, uint64_t now)
{
    tb_quic_ban *pick = &ep->bans[0];
    for (size_t i = 0; i < MAX_BANS; i++) {
        if (ep->bans[i].until <= now)
            return &ep->bans[i];
        if (ep->bans[i].until < pick->until)
            pick = &ep->bans[i];
    }
    return pick;
}

static void ban(tb_quic_conn *c)
{
    tb_quic_endpoint *ep = c->ep;
    uint64_t now = tb_quic_now(ep);
    tb_quic_ban *b = ban_slot(ep, now);
    memset(b, 0, sizeof(*b));
    b->until = now + ep->ban_ns;
    b->family = ip_of((const struct sockaddr *)&c->peer.addr, c->peer.addrlen, b->addr);
    if (c->peer.name[0]) {
        memcpy(b->fingerprint, c->peer.fingerprint, sizeof(b->fingerprint));
        b->has_fingerprint = 1;
    }
    ep->stats.peers_banned++;
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
    ep->stats.penalties++;
    c->penalties =
        weight > ep->max_penalties - c->penalties ? ep->max_penalties : c->penalties + weight;
    if (c->penalties < ep->max_penalties)
        return;
    char a[TB_QUIC_ADDRSTR_MAX];
    tb_log_limited(ep->log, &ep->rl, TB_LOG_WARN, TB_QUIC_RL_PENALTY, tb_quic_now(ep),
                   "quic: disconnecting %s %s and refusing it for %llu s: %u penalties, last: %s",
                   c->peer.name[0] ? c->peer.name : "(unidentified)", tb_quic_conn_addr(c, a),
                   (unsigned long long)(ep->ban_ns / NGTCP2_SECONDS), c->penalties,
                   reason ? reason : "?");
    ban(c);
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
