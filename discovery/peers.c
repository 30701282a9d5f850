#include "discovery/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/name.h"
#include "common/rand.h"

typedef struct entry {
    uint32_t id; /* 0: free slot */
    char name[TB_PEERS_NAME_MAX + 1];
    char region[TB_PEERS_NAME_MAX + 1];
    char addrs[TB_PEERS_MAX_ADDRS][TB_PEERS_ADDR_MAX + 1];
    size_t naddrs;
    uint8_t *cert;
    size_t cert_len;
    int verified;
    tb_peer_source source;
    tb_peer_state state;
    unsigned failures;
    unsigned dials; /* rotates through the addresses */
    uint64_t next_time;
    uint64_t connected_at;            /* when the current connection came up */
    char from[TB_PEERS_NAME_MAX + 1]; /* who told us of it (learned entries; "" unknown) */
    unsigned dialled; /* 1 + the index in addrs of the rate-limited dial under way; 0: none */
    int parked;       /* not dialled (tb_peers_set_wanted) */
} entry;

/* Dials to unverified learned entries, per source of learning: a generic cell rate
 * (theoretical arrival time), so each source gets learned_dials_burst at once, then one per
 * 60 s / learned_dials_per_min. */
#define MAX_SOURCES 64
typedef struct source_rate {
    char name[TB_PEERS_NAME_MAX + 1];
    uint64_t tat;
    int used;
} source_rate;

/* A learned address that did not answer: no dial to it, from any entry, before next_ok. */
#define MAX_ADDR_BACKOFF 128
typedef struct addr_backoff {
    char addr[TB_PEERS_ADDR_MAX + 1]; /* "" free */
    unsigned failures;
    uint64_t next_ok; /* also the end of a dial under way */
} addr_backoff;

struct tb_peers {
    tb_peers_config cfg;
    char self_name[TB_PEERS_NAME_MAX + 1];
    entry *slots;
    size_t cap;
    uint32_t next_id;
    uint64_t rng;
    entry self;
    int has_self;
    tb_addr_policy policy;
    int has_policy;
    uint64_t addrs_refused;
    source_rate sources[MAX_SOURCES];
    addr_backoff addr_bo[MAX_ADDR_BACKOFF];
    tb_peers_stats st;
};

void tb_peers_config_default(tb_peers_config *cfg, const char *self_name, uint64_t rng_seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->self_name = self_name;
    cfg->max_peers = 64;
    cfg->max_connecting = 8;
    cfg->connect_timeout_ns = 10 * 1000000000ULL;
    cfg->backoff_initial_ns = 1000000000ULL;
    cfg->backoff_max_ns = 60 * 1000000000ULL;
    cfg->jitter_permille = 200;
    cfg->forget_after_failures = 8;
    cfg->learned_dials_per_min = 6;
    cfg->learned_dials_burst = 4;
    cfg->stable_ns = 30 * 1000000000ULL;
    cfg->rng_seed = rng_seed;
}

int tb_peers_addr_valid(const char *s, size_t len)
{
    tb_addr_hostport hp;
    return s && len <= TB_PEERS_ADDR_MAX && tb_addr_parse(s, len, 0, &hp, NULL) == TB_OK;
}

static int cert_valid(const uint8_t *cert, size_t len)
{
    if (len > TB_PEERS_CERT_MAX)
        return TB_ERR_TOO_BIG;
    /* A DER certificate is a SEQUENCE; the handshake does the real checking. */
    if (!cert || len < 2 || cert[0] != 0x30)
        return TB_ERR_MALFORMED;
    return 0;
}

static int info_valid(const tb_peer_info *info, int cert_optional)
{
    if (!tb_name_valid(info->name.p, info->name.len) ||
        !tb_name_valid(info->region.p, info->region.len))
        return TB_ERR_MALFORMED;
    if (info->naddrs > TB_PEERS_MAX_ADDRS)
        return TB_ERR_TOO_BIG;
    for (size_t i = 0; i < info->naddrs; i++) {
        if (info->addrs[i].len > TB_PEERS_ADDR_MAX)
            return TB_ERR_TOO_BIG;
        if (!tb_peers_addr_valid(info->addrs[i].p, info->addrs[i].len))
            return TB_ERR_MALFORMED;
    }
    if (cert_optional && !info->cert && info->cert_len == 0)
        return 0;
    return cert_valid(info->cert, info->cert_len);
}

int tb_peers_new(const tb_peers_config *cfg, tb_peers **out)
{
    tb_peers *t;
    size_t self_len;
    *out = NULL;
    if (!cfg || !cfg->self_name || cfg->max_peers < 1 || cfg->max_peers > TB_PEERS_MAX_CAP ||
        cfg->jitter_permille > 1000 || cfg->backoff_initial_ns == 0 ||
        cfg->backoff_max_ns < cfg->backoff_initial_ns || cfg->connect_timeout_ns == 0)
        return TB_ERR_INVAL;
    self_len = strnlen(cfg->self_name, TB_PEERS_NAME_MAX + 1);
    if (!tb_name_valid(cfg->self_name, self_len))
        return TB_ERR_INVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return TB_ERR_NOMEM;
    t->slots = calloc(cfg->max_peers, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return TB_ERR_NOMEM;
    }
    t->cfg = *cfg;
    memcpy(t->self_name, cfg->self_name, self_len);
    t->cfg.self_name = t->self_name;
    t->cap = cfg->max_peers;
    t->next_id = 1;
    t->rng = cfg->rng_seed;
    if (cfg->addr_policy) {
        t->policy = *cfg->addr_policy;
        t->has_policy = 1;
    }
    t->cfg.addr_policy = NULL;
    *out = t;
    return 0;
}

static void entry_clear(entry *e)
{
    free(e->cert);
    memset(e, 0, sizeof(*e));
}

void tb_peers_free(tb_peers *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        entry_clear(&t->slots[i]);
    entry_clear(&t->self);
    free(t->slots);
    free(t);
}

static entry *find_id(const tb_peers *t, uint32_t id)
{
    if (id == 0)
        return NULL;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].id == id)
            return &t->slots[i];
    return NULL;
}

static entry *find_name(const tb_peers *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (e->id && strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

static int has_addr(const entry *e, const char *a, size_t len)
{
    for (size_t i = 0; i < e->naddrs; i++)
        if (strlen(e->addrs[i]) == len && memcmp(e->addrs[i], a, len) == 0)
            return 1;
    return 0;
}

/* Addresses beyond the cap are dropped: the first ones heard are kept. */
static void add_addr(entry *e, const char *a, size_t len)
{
    if (e->naddrs >= TB_PEERS_MAX_ADDRS || has_addr(e, a, len))
        return;
    memcpy(e->addrs[e->naddrs], a, len);
    e->addrs[e->naddrs][len] = '\0';
    e->naddrs++;
}

static int set_cert(entry *e, const uint8_t *cert, size_t len)
{
    uint8_t *copy = malloc(len);
    if (!copy)
        return TB_ERR_NOMEM;
    memcpy(copy, cert, len);
    free(e->cert);
    e->cert = copy;
    e->cert_len = len;
    return 0;
}

static int evictable(const tb_peers *t, const entry *e, int for_learned)
{
    if (e->source != TB_PEER_LEARNED || e->verified || e->state == TB_PEER_CONNECTED ||
        e->state == TB_PEER_CONNECTING)
        return 0;
    if (for_learned)
        return t->cfg.forget_after_failures > 0 && e->failures >= t->cfg.forget_after_failures;
    return 1;
}

/* A free slot, or else the unverified learned entry that failed most often. Entries learned
 * from others can only push out other such entries, and only once those look dead, so a flood
 * of PEERS never displaces seeds or verified peers. */
static entry *alloc_entry(tb_peers *t, int for_learned)
{
    entry *victim = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (!e->id)
            return e;
        if (evictable(t, e, for_learned) && (!victim || e->failures > victim->failures))
            victim = e;
    }
    if (victim)
        entry_clear(victim);
    return victim;
}

static void entry_init(tb_peers *t, entry *e, tb_peer_source source)
{
    memset(e, 0, sizeof(*e));
    e->id = t->next_id++;
    if (t->next_id == 0)
        t->next_id = 1;
    e->source = source;
    e->state = TB_PEER_IDLE;
}

int tb_peers_add_seed(tb_peers *t, const char *addr, uint32_t *id)
{
    size_t len = addr ? strnlen(addr, TB_PEERS_ADDR_MAX + 1) : 0;
    entry *e;
    if (addr == NULL || !tb_peers_addr_valid(addr, len))
        return TB_ERR_INVAL;
    for (size_t i = 0; i < t->cap; i++) {
        e = &t->slots[i];
        if (e->id && has_addr(e, addr, len)) {
            e->source = TB_PEER_SEED;
            *id = e->id;
            return 0;
        }
    }
    e = alloc_entry(t, 0);
    if (!e)
        return TB_ERR_FULL;
    entry_init(t, e, TB_PEER_SEED);
    add_addr(e, addr, len);
    *id = e->id;
    return 0;
}

static void copy_str(char *dst, const tb_peers_str *s)
{
    memcpy(dst, s->p, s->len);
    dst[s->len] = '\0';
}

static int addr_allowed(tb_peers *t, const tb_peers_str *a)
{
    if (!t->has_policy || tb_addr_policy_check_text(&t->policy, a->p, a->len, NULL) == TB_OK)
        return 1;
    t->addrs_refused++;
    return 0;
}

int tb_peers_learn(tb_peers *t, const tb_peer_info *info, uint32_t *id)
{
    return tb_peers_learn_from(t, info, NULL, id);
}

int tb_peers_learn_from(tb_peers *t, const tb_peer_info *info, const char *from, uint32_t *id)
{
    /* Mesh v2 descriptors carry no certificate (the handshake proves who answers a dial). */
    int rc = info ? info_valid(info, 1) : TB_ERR_INVAL;
    entry *e;
    int allowed[TB_PEERS_MAX_ADDRS];
    size_t nallowed = 0;
    if (id)
        *id = 0;
    if (rc < 0)
        return rc;
    if (info->name.len == strlen(t->self_name) &&
        memcmp(info->name.p, t->self_name, info->name.len) == 0)
        return 0;
    for (size_t i = 0; i < info->naddrs; i++)
        nallowed += (size_t)(allowed[i] = addr_allowed(t, &info->addrs[i]));
    e = find_name(t, info->name.p, info->name.len);
    if (!e && info->naddrs && !nallowed)
        return TB_ERR_INVAL;
    if (!e) {
        e = alloc_entry(t, 1);
        if (!e)
            return TB_ERR_FULL;
        entry_init(t, e, TB_PEER_LEARNED);
        copy_str(e->name, &info->name);
        if (from)
            snprintf(e->from, sizeof(e->from), "%s", from);
        if (info->cert_len && (rc = set_cert(e, info->cert, info->cert_len)) < 0) {
            entry_clear(e);
            return rc;
        }
    } else if (!from) {
        e->from[0] = '\0'; /* vouched for now: no source's budget */
    }
    if (!e->region[0])
        copy_str(e->region, &info->region);
    for (size_t i = 0; i < info->naddrs; i++) {
        if (allowed[i])
            add_addr(e, info->addrs[i].p, info->addrs[i].len);
    }
    /* The first certificate heard stays until a handshake replaces it with the verified one. */
    if (!e->cert && info->cert_len && (rc = set_cert(e, info->cert, info->cert_len)) < 0)
        return rc;
    if (id)
        *id = e->id;
    return 0;
}

int tb_peers_set_cert(tb_peers *t, uint32_t id, const uint8_t *cert, size_t cert_len)
{
    entry *e = find_id(t, id);
    if (!e)
        return TB_ERR_NOTFOUND;
    if (!cert || cert_len == 0 || cert_len > TB_PEERS_CERT_MAX)
        return TB_ERR_MALFORMED;
    return set_cert(e, cert, cert_len);
}

int tb_peers_set_self(tb_peers *t, const tb_peer_info *self)
{
    int rc = self ? info_valid(self, 0) : TB_ERR_INVAL;
    entry *e = &t->self;
    if (rc < 0)
        return rc;
    if (self->name.len != strlen(t->self_name) ||
        memcmp(self->name.p, t->self_name, self->name.len) != 0)
        return TB_ERR_INVAL;
    entry_clear(e);
    copy_str(e->name, &self->name);
    copy_str(e->region, &self->region);
    for (size_t i = 0; i < self->naddrs; i++)
        add_addr(e, self->addrs[i].p, self->addrs[i].len);
    rc = set_cert(e, self->cert, self->cert_len);
    t->has_self = rc == 0;
    return rc;
}

uint64_t tb_peers_backoff_delay(const tb_peers_config *cfg, unsigned failures, uint64_t rnd)
{
    uint64_t d = cfg->backoff_initial_ns;
    uint64_t span;
    for (unsigned i = 1; i < failures && d < cfg->backoff_max_ns; i++)
        d = d > cfg->backoff_max_ns / 2 ? cfg->backoff_max_ns : d * 2;
    if (d > cfg->backoff_max_ns)
        d = cfg->backoff_max_ns;
    /* d / 1000 * permille cannot overflow; the sub-microsecond rest does not matter. */
    span = d / 1000 * cfg->jitter_permille;
    return span ? d - rnd % (span + 1) : d;
}

static void gate_done(tb_peers *t, entry *e, int failed, uint64_t now);

static void go_backoff(tb_peers *t, entry *e, uint64_t now)
{
    gate_done(t, e, 1, now);
    if (e->failures < UINT32_MAX)
        e->failures++;
    if (e->naddrs == 0) {
        e->state = TB_PEER_IDLE;
        e->next_time = 0;
        return;
    }
    e->state = TB_PEER_BACKOFF;
    e->next_time = now + tb_peers_backoff_delay(&t->cfg, e->failures, tb_rand_next(&t->rng));
}

static int identity_valid(const char *name, const char *region, const uint8_t *cert,
                          size_t cert_len)
{
    if (!name || !region || !tb_name_valid(name, strnlen(name, TB_PEERS_NAME_MAX + 1)) ||
        !tb_name_valid(region, strnlen(region, TB_PEERS_NAME_MAX + 1)))
        return TB_ERR_MALFORMED;
    return cert_valid(cert, cert_len);
}

static int mark_connected(entry *e, const char *name, const char *region, const uint8_t *cert,
                          size_t cert_len, uint64_t now)
{
    int rc = set_cert(e, cert, cert_len);
    if (rc < 0)
        return rc;
    strcpy(e->name, name);
    strcpy(e->region, region);
    e->verified = 1;
    e->state = TB_PEER_CONNECTED;
    e->connected_at = now; /* failures are forgotten once the connection proves stable */
    e->next_time = 0;
    return 0;
}

/* A seed that turned out to be a node the table already knows: fold it into that entry. */
static entry *merge_into(entry *seed, entry *named)
{
    for (size_t i = 0; i < seed->naddrs; i++)
        add_addr(named, seed->addrs[i], strlen(seed->addrs[i]));
    if (seed->source == TB_PEER_SEED)
        named->source = TB_PEER_SEED;
    entry_clear(seed);
    return named;
}

int tb_peers_connected(tb_peers *t, uint32_t id, const char *name, const char *region,
                       const uint8_t *cert, size_t cert_len, uint64_t now, uint32_t *id_out)
{
    entry *e = find_id(t, id), *other;
    int rc = identity_valid(name, region, cert, cert_len);
    *id_out = id;
    if (!e)
        return TB_ERR_NOTFOUND;
    if (rc < 0)
        return rc;
    if (strcmp(name, t->self_name) == 0) {
        entry_clear(e);
        *id_out = 0;
        return TB_ERR_INVAL;
    }
    if (e->name[0] && strcmp(e->name, name) != 0) {
        if (e->state == TB_PEER_CONNECTING)
            go_backoff(t, e, now);
        return TB_ERR_VERIFY;
    }
    other = find_name(t, name, strlen(name));
    if (other && other != e) {
        e = merge_into(e, other);
        *id_out = e->id;
    }
    if (e->state == TB_PEER_CONNECTED)
        return TB_ERR_EXISTS;
    gate_done(t, e, 0, now);
    return mark_connected(e, name, region, cert, cert_len, now);
}

int tb_peers_inbound(tb_peers *t, const char *name, const char *region, const uint8_t *cert,
                     size_t cert_len, uint64_t now, uint32_t *id_out)
{
    int rc = identity_valid(name, region, cert, cert_len);
    entry *e;
    *id_out = 0;
    if (rc < 0)
        return rc;
    if (strcmp(name, t->self_name) == 0)
        return TB_ERR_INVAL;
    e = find_name(t, name, strlen(name));
    if (!e) {
        e = alloc_entry(t, 0);
        if (!e)
            return TB_ERR_FULL;
        entry_init(t, e, TB_PEER_INBOUND);
    }
    *id_out = e->id;
    if (e->state == TB_PEER_CONNECTED)
        return TB_ERR_EXISTS;
    gate_done(t, e, 0, now);
    rc = mark_connected(e, name, region, cert, cert_len, now);
    if (rc < 0 && !e->name[0])
        entry_clear(e);
    return rc;
}

/* Both ends of an attempt lead to backoff; a connection that lasted starts the count afresh,
 * one closed right after it came up (a refusal) counts as one more failure. */
static int to_backoff(tb_peers *t, uint32_t id, uint64_t now, tb_peer_state from)
{
    entry *e = find_id(t, id);
    if (!e)
        return TB_ERR_NOTFOUND;
    if (e->state != from)
        return TB_ERR_STATE;
    if (from == TB_PEER_CONNECTED &&
        (now < e->connected_at || now - e->connected_at >= t->cfg.stable_ns))
        e->failures = 0;
    go_backoff(t, e, now);
    return 0;
}

int tb_peers_dial_failed(tb_peers *t, uint32_t id, uint64_t now)
{
    return to_backoff(t, id, now, TB_PEER_CONNECTING);
}

int tb_peers_disconnected(tb_peers *t, uint32_t id, uint64_t now)
{
    return to_backoff(t, id, now, TB_PEER_CONNECTED);
}

int tb_peers_superseded(tb_peers *t, uint32_t id, uint64_t now)
{
    entry *e = find_id(t, id);
    if (e && e->state == TB_PEER_CONNECTED)
        e->connected_at = now - t->cfg.stable_ns; /* as if it had lasted */
    return to_backoff(t, id, now, TB_PEER_CONNECTED);
}

int tb_peers_remove(tb_peers *t, uint32_t id)
{
    entry *e = find_id(t, id);
    if (!e)
        return TB_ERR_NOTFOUND;
    entry_clear(e);
    return 0;
}

int tb_peers_keep_dialled(const char *self, const char *peer)
{
    return strcmp(self, peer) < 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static int emit(tb_peers_action *out, size_t max, size_t *n, tb_peers_do what, const entry *e)
{
    if (*n >= max)
        return 0;
    out[*n].what = what;
    out[*n].id = e->id;
    out[*n].addr[0] = '\0';
    (*n)++;
    return 1;
}

static size_t count_state(const tb_peers *t, tb_peer_state s)
{
    size_t c = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].id && t->slots[i].state == s)
            c++;
    return c;
}

/* First pass: expired dials; returns 0 when out ran full. */
static int poll_timeouts(tb_peers *t, uint64_t now, tb_peers_action *out, size_t max, size_t *n,
                         uint64_t *wake)
{
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (!e->id || e->state != TB_PEER_CONNECTING)
            continue;
        if (e->next_time <= now) {
            if (!emit(out, max, n, TB_PEERS_DO_ABORT, e))
                return 0;
            go_backoff(t, e, now);
        } else {
            *wake = min_u64(*wake, e->next_time);
        }
    }
    return 1;
}

/* Dials to it are rate limited and its failures forgotten: a learned entry no handshake has
 * confirmed yet (anyone may have made it up, at any address the policy lets through). */
static int gated(const entry *e)
{
    return e->source == TB_PEER_LEARNED && !e->verified;
}

static addr_backoff *addr_find(tb_peers *t, const char *addr, int create)
{
    addr_backoff *pick = NULL;
    for (size_t i = 0; i < MAX_ADDR_BACKOFF; i++) {
        addr_backoff *a = &t->addr_bo[i];
        if (a->addr[0] && strcmp(a->addr, addr) == 0)
            return a;
        /* else a free slot, or the one free to dial soonest */
        if (!pick || !a->addr[0] || (pick->addr[0] && a->next_ok < pick->next_ok))
            pick = a;
    }
    if (!create)
        return NULL;
    memset(pick, 0, sizeof(*pick));
    snprintf(pick->addr, sizeof(pick->addr), "%s", addr);
    return pick;
}

static source_rate *source_find(tb_peers *t, const char *name, int create)
{
    source_rate *pick = NULL;
    for (size_t i = 0; i < MAX_SOURCES; i++) {
        source_rate *r = &t->sources[i];
        if (r->used && strcmp(r->name, name) == 0)
            return r;
        if (!pick || !r->used || (pick->used && r->tat < pick->tat))
            pick = r; /* a free slot, or the source idle longest */
    }
    if (!create)
        return NULL;
    memset(pick, 0, sizeof(*pick));
    pick->used = 1;
    snprintf(pick->name, sizeof(pick->name), "%s", name);
    return pick;
}

/* 0 when a dial of gated entry e to addr may start now, else when it may. */
static uint64_t gate_wait(tb_peers *t, const entry *e, const char *addr, uint64_t now)
{
    const addr_backoff *a = addr_find(t, addr, 0);
    if (a && a->next_ok > now)
        return a->next_ok;
    if (t->cfg.learned_dials_per_min == 0 || !e->from[0])
        return 0;
    uint64_t gap = 60ULL * 1000000000ULL / t->cfg.learned_dials_per_min;
    uint64_t slack = gap * (t->cfg.learned_dials_burst ? t->cfg.learned_dials_burst - 1 : 0);
    const source_rate *r = source_find(t, e->from, 0);
    return r && r->tat > now + slack ? r->tat - slack : 0;
}

/* A gated dial starts: charged to its source; its address is busy until the deadline. */
static void gate_take(tb_peers *t, entry *e, const char *addr, uint64_t now)
{
    t->st.learned_dials++;
    addr_backoff *a = addr_find(t, addr, 1);
    a->next_ok = now + t->cfg.connect_timeout_ns;
    if (t->cfg.learned_dials_per_min && e->from[0]) {
        source_rate *r = source_find(t, e->from, 1);
        r->tat =
            (r->tat > now ? r->tat : now) + 60ULL * 1000000000ULL / t->cfg.learned_dials_per_min;
    }
}

/* A dial of entry e ended: its address is free again, after a growing delay if it failed. */
static void gate_done(tb_peers *t, entry *e, int failed, uint64_t now)
{
    if (!e->dialled || e->dialled > e->naddrs)
        return;
    addr_backoff *a = addr_find(t, e->addrs[e->dialled - 1], failed);
    e->dialled = 0;
    if (!a)
        return;
    if (!failed) {
        memset(a, 0, sizeof(*a));
        return;
    }
    if (a->failures < UINT32_MAX)
        a->failures++;
    a->next_ok = now + tb_peers_backoff_delay(&t->cfg, a->failures, tb_rand_next(&t->rng));
}

/* Gated e failed forget_after_failures dials in a row, or every address it has did (whatever
 * entries they were dialled for). */
static int unanswered(tb_peers *t, const entry *e)
{
    unsigned n = t->cfg.forget_after_failures;
    if (n == 0)
        return 0;
    if (e->failures >= n)
        return 1;
    for (size_t i = 0; i < e->naddrs; i++) {
        const addr_backoff *a = addr_find(t, e->addrs[i], 0);
        if (!a || a->failures < n)
            return 0;
    }
    return e->naddrs > 0;
}

static int addr_dialled(const tb_peers *t, const char *addr)
{
    for (size_t i = 0; i < t->cap; i++) {
        const entry *e = &t->slots[i];
        if (e->id && e->dialled && e->dialled <= e->naddrs &&
            strcmp(e->addrs[e->dialled - 1], addr) == 0)
            return 1;
    }
    return 0;
}

size_t tb_peers_retry_now(tb_peers *t, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (e->id && e->state == TB_PEER_BACKOFF && e->next_time > now) {
            e->next_time = now;
            k++;
        }
    }
    for (size_t i = 0; i < MAX_ADDR_BACKOFF; i++) {
        addr_backoff *a = &t->addr_bo[i];
        if (a->addr[0] && a->failures && a->next_ok > now && !addr_dialled(t, a->addr))
            a->next_ok = now;
    }
    return k;
}

static int dial_due(const entry *e, uint64_t now)
{
    if (e->naddrs == 0 || e->parked)
        return 0;
    return e->state == TB_PEER_IDLE || (e->state == TB_PEER_BACKOFF && e->next_time <= now);
}

static int poll_dials(tb_peers *t, uint64_t now, tb_peers_action *out, size_t max, size_t *n,
                      uint64_t *wake)
{
    size_t connecting = count_state(t, TB_PEER_CONNECTING);
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (!e->id)
            continue;
        /* Made up, or gone: a learned address nobody answers at is forgotten. */
        if (gated(e) && e->state != TB_PEER_CONNECTING && unanswered(t, e)) {
            entry_clear(e);
            t->st.learned_forgotten++;
            continue;
        }
        if (e->state == TB_PEER_BACKOFF && e->next_time > now)
            *wake = min_u64(*wake, e->next_time);
        if (!dial_due(e, now))
            continue;
        const char *addr = e->addrs[e->dials % e->naddrs];
        uint64_t wait = gated(e) ? gate_wait(t, e, addr, now) : 0;
        if (wait) {
            *wake = min_u64(*wake, wait);
            continue;
        }
        /* Over the limit, a finished dial (an event the caller polls after) frees a place. */
        if (t->cfg.max_connecting && connecting >= t->cfg.max_connecting)
            continue;
        if (!emit(out, max, n, TB_PEERS_DO_DIAL, e))
            return 0;
        strcpy(out[*n - 1].addr, addr);
        if (gated(e)) {
            gate_take(t, e, addr, now);
            e->dialled = e->dials % e->naddrs + 1;
        }
        e->dials++;
        e->state = TB_PEER_CONNECTING;
        e->next_time = now + t->cfg.connect_timeout_ns;
        *wake = min_u64(*wake, e->next_time);
        connecting++;
    }
    return 1;
}

int tb_peers_poll(tb_peers *t, uint64_t now, tb_peers_action *out, size_t max, size_t *n,
                  uint64_t *next_wake)
{
    uint64_t wake = UINT64_MAX;
    *n = 0;
    if (!poll_timeouts(t, now, out, max, n, &wake) || !poll_dials(t, now, out, max, n, &wake))
        wake = now;
    *next_wake = wake;
    return 0;
}

static void entry_to_info(const entry *e, tb_peer_info *info)
{
    memset(info, 0, sizeof(*info));
    info->name.p = e->name;
    info->name.len = strlen(e->name);
    info->region.p = e->region;
    info->region.len = strlen(e->region);
    for (size_t i = 0; i < e->naddrs; i++) {
        info->addrs[i].p = e->addrs[i];
        info->addrs[i].len = strlen(e->addrs[i]);
    }
    info->naddrs = e->naddrs;
    info->cert = e->cert;
    info->cert_len = e->cert_len;
}

size_t tb_peers_export(const tb_peers *t, const char *requester, tb_peer_info *out, size_t max)
{
    size_t n = 0;
    if (t->has_self && n < max)
        entry_to_info(&t->self, &out[n++]);
    for (size_t i = 0; i < t->cap && n < max; i++) {
        const entry *e = &t->slots[i];
        if (!e->id || !e->verified)
            continue;
        if (requester && strcmp(e->name, requester) == 0)
            continue;
        entry_to_info(e, &out[n++]);
    }
    return n;
}

int tb_peers_set_wanted(tb_peers *t, uint32_t id, int wanted)
{
    entry *e = find_id(t, id);
    if (!e)
        return TB_ERR_NOTFOUND;
    e->parked = !wanted;
    return 0;
}

int tb_peers_get(const tb_peers *t, uint32_t id, tb_peer_view *out)
{
    const entry *e = find_id(t, id);
    if (!e)
        return TB_ERR_NOTFOUND;
    memset(out, 0, sizeof(*out));
    out->id = e->id;
    out->name = e->name;
    out->region = e->region;
    for (size_t i = 0; i < e->naddrs; i++)
        out->addrs[i] = e->addrs[i];
    out->naddrs = e->naddrs;
    out->cert = e->cert;
    out->cert_len = e->cert_len;
    out->verified = e->verified;
    out->source = e->source;
    out->state = e->state;
    out->failures = e->failures;
    out->wanted = !e->parked;
    out->next_time =
        e->state == TB_PEER_CONNECTING || e->state == TB_PEER_BACKOFF ? e->next_time : 0;
    return 0;
}

int tb_peers_find(const tb_peers *t, const char *name, uint32_t *id)
{
    const entry *e;
    if (!name || !name[0])
        return TB_ERR_NOTFOUND;
    e = find_name(t, name, strnlen(name, TB_PEERS_NAME_MAX + 1));
    if (!e)
        return TB_ERR_NOTFOUND;
    *id = e->id;
    return 0;
}

uint64_t tb_peers_addrs_refused(const tb_peers *t)
{
    return t->addrs_refused;
}

void tb_peers_get_stats(const tb_peers *t, tb_peers_stats *out)
{
    *out = t->st;
    out->addrs_refused = t->addrs_refused;
}

size_t tb_peers_count(const tb_peers *t)
{
    size_t c = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].id)
            c++;
    return c;
}

size_t tb_peers_list(const tb_peers *t, uint32_t *ids, size_t max)
{
    size_t c = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].id)
            continue;
        if (c < max)
            ids[c] = t->slots[i].id;
        c++;
    }
    return c;
}

size_t tb_peers_count_state(const tb_peers *t, tb_peer_state state)
{
    return count_state(t, state);
}

const char *tb_peers_state_name(tb_peer_state state)
{
    switch (state) {
    case TB_PEER_IDLE:
        return "idle";
    case TB_PEER_CONNECTING:
        return "connecting";
    case TB_PEER_CONNECTED:
        return "connected";
    case TB_PEER_BACKOFF:
        return "backoff";
    }
    return "?";
}
