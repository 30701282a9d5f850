#include "routing/plumtree.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/rand.h"

#define QUEUE_MAX 4096 /* actions per call: one per neighbour and a GRAFT answer's messages */

/* One message id seen, in a ring ordered by arrival; the newest ones still hold their payload
 * (the store). */
typedef struct entry {
    uint8_t id[TB_PT_ID_LEN];
    uint64_t origin; /* its origin's key (origin_key) */
    uint64_t at;
    uint32_t hops;
    uint8_t *payload; /* NULL once evicted from the store (or for an empty payload) */
    size_t len;
    bool stored;
    uint16_t from; /* slot + 1 of the neighbour it came from first (0: none) */
} entry;

typedef struct peer {
    char name[TB_NAME_MAX + 1];
    uint64_t key; /* name_key(name): compared before the name */
    uint32_t gen; /* bumped when the slot is reused, so stale announcers are ignored */
    bool used;
    uint8_t (*batch)[TB_PT_ID_LEN]; /* IHAVE ids waiting for the next flush */
    size_t n_batch;
} peer;

typedef struct missing {
    uint8_t id[TB_PT_ID_LEN];
    uint64_t deadline;
    uint32_t who[TB_PT_ANNOUNCERS], gen[TB_PT_ANNOUNCERS];
    size_t n_who;
} missing;

struct tb_pt {
    tb_pt_config cfg;
    entry *ring; /* seen_max entries; [tail, tail + count) in use, oldest first */
    size_t tail, count;
    size_t store_from, store_count, store_bytes; /* the stored suffix of the ring */
    uint64_t *table;                             /* open addressing: slot_val(), 0 = empty */
    size_t table_mask;
    peer *peers;
    uint64_t *pkeys; /* each slot's peer key (0 when unused), scanned before the peers */
    /* Per origin, which neighbours are lazy for its tree: one bit per peer slot (set: lazy), in
     * `words` words per origin. Open addressing on the origin's key (0 = empty), never deleted:
     * full, the table is emptied and every tree starts over from eager (one flood each). */
    uint64_t *otab; /* per slot: the key, then its `words` lazy words (one cache line to read) */
    size_t omask, n_origins, words;
    missing *miss;
    uint64_t *miss_h;   /* hashes of the missing ids, compared before the entries */
    uint32_t *miss_tab; /* open addressing on miss_h: index + 1, 0 = empty */
    size_t miss_mask;
    size_t n_miss;
    uint64_t miss_wake;  /* no later than the earliest missing deadline (may be earlier) */
    uint64_t next_flush; /* UINT64_MAX while no IHAVE is waiting */
    tb_pt_action *queue;
    size_t q_head, q_len, q_cap;
    tb_pt_stats stats;
};

void tb_pt_config_default(tb_pt_config *cfg, uint64_t hash_key)
{
    *cfg = (tb_pt_config){
        .ihave_interval_ns = 100 * TB_NS_PER_MS,
        .graft_timeout_ns = TB_NS_PER_SEC,
        .graft_retry_ns = 500 * TB_NS_PER_MS,
        .store_ttl_ns = 60 * TB_NS_PER_SEC,
        .store_max = 4096,
        .store_max_bytes = 16u << 20,
        .seen_max = 65536,
        .seen_ttl_ns = 600 * TB_NS_PER_SEC,
        .ids_max = 64,
        .missing_max = 1024,
        .neighbors_max = 64,
        .origins_max = 4096,
        .max_hops = 64,
        .hash_key = hash_key,
    };
}

static bool config_ok(const tb_pt_config *c)
{
    return c->ihave_interval_ns > 0 && c->graft_timeout_ns > 0 && c->graft_retry_ns > 0 &&
           c->store_max >= 1 && c->seen_max >= c->store_max && c->seen_max <= (1u << 24) &&
           c->seen_ttl_ns >= c->store_ttl_ns && c->ids_max >= 1 && c->ids_max <= TB_PT_IDS_MAX &&
           c->missing_max >= 1 && c->missing_max <= (1u << 20) && c->neighbors_max >= 1 &&
           c->neighbors_max <= TB_PT_NEIGHBORS_MAX && c->origins_max >= 1 &&
           c->origins_max <= (1u << 20) && c->max_hops >= 1;
}

int tb_pt_new(const tb_pt_config *cfg, tb_pt **out)
{
    *out = NULL;
    if (!config_ok(cfg))
        return TB_ERR_INVAL;
    tb_pt *pt = calloc(1, sizeof(*pt));
    if (!pt)
        return TB_ERR_NOMEM;
    pt->cfg = *cfg;
    size_t tsize = 1;
    while (tsize < cfg->seen_max * 2)
        tsize <<= 1;
    pt->table_mask = tsize - 1;
    size_t osize = 2;
    while (osize < cfg->origins_max * 2)
        osize <<= 1;
    pt->omask = osize - 1;
    pt->words = (cfg->neighbors_max + 63) / 64;
    pt->otab = calloc(osize * (1 + pt->words), sizeof(*pt->otab));
    pt->ring = calloc(cfg->seen_max, sizeof(*pt->ring));
    pt->table = calloc(tsize, sizeof(*pt->table));
    pt->peers = calloc(cfg->neighbors_max, sizeof(*pt->peers));
    pt->pkeys = calloc(cfg->neighbors_max, sizeof(*pt->pkeys));
    pt->miss = calloc(cfg->missing_max, sizeof(*pt->miss));
    pt->miss_h = calloc(cfg->missing_max, sizeof(*pt->miss_h));
    size_t msize = 2;
    while (msize < cfg->missing_max * 2)
        msize <<= 1;
    pt->miss_mask = msize - 1;
    pt->miss_tab = calloc(msize, sizeof(*pt->miss_tab));
    pt->next_flush = UINT64_MAX;
    if (!pt->ring || !pt->table || !pt->peers || !pt->miss || !pt->miss_h || !pt->miss_tab ||
        !pt->otab || !pt->pkeys) {
        tb_pt_free(pt);
        return TB_ERR_NOMEM;
    }
    *out = pt;
    return 0;
}

void tb_pt_free(tb_pt *pt)
{
    if (!pt)
        return;
    if (pt->ring)
        for (size_t i = 0; i < pt->count; i++)
            free(pt->ring[(pt->tail + i) % pt->cfg.seen_max].payload);
    if (pt->peers)
        for (size_t i = 0; i < pt->cfg.neighbors_max; i++) {
            free(pt->peers[i].batch);
        }
    free(pt->ring);
    free(pt->table);
    free(pt->peers);
    free(pt->miss);
    free(pt->miss_h);
    free(pt->miss_tab);
    free(pt->otab);
    free(pt->pkeys);
    free(pt->queue);
    free(pt);
}

/* ------------------------------------------------------------------ actions */

static void begin(tb_pt *pt)
{
    pt->stats.discarded += pt->q_len;
    pt->q_len = 0;
    pt->q_head = 0;
}

static tb_pt_action *push(tb_pt *pt, tb_pt_act_type type, const char *to)
{
    if (pt->q_len == pt->q_cap) {
        size_t cap = pt->q_cap ? pt->q_cap * 2 : 16;
        tb_pt_action *q = cap <= QUEUE_MAX ? realloc(pt->queue, cap * sizeof(*q)) : NULL;
        if (!q) {
            pt->stats.queue_full++;
            return NULL;
        }
        pt->queue = q;
        pt->q_cap = cap;
    }
    /* begin() empties the queue at every call, so it never wraps: q_head is 0 while pushing. */
    tb_pt_action *a = &pt->queue[pt->q_head + pt->q_len++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    if (to)
        memcpy(a->peer, to, strnlen(to, TB_NAME_MAX));
    return a;
}

int tb_pt_next_action(tb_pt *pt, tb_pt_action *out)
{
    if (pt->q_len == 0)
        return TB_ERR_AGAIN;
    *out = pt->queue[pt->q_head++];
    pt->q_len--;
    return 0;
}

/* ------------------------------------------------------------------ id table */

/* A table slot holds the low TAG_BITS of the id's hash above the ring index + 1, so probes
 * compare (and deletions find an entry's home slot) without reading the ring: at 1,000 simulated
 * nodes the ring reads were the largest single cost, each one a cache miss. The table is at
 * most 2^25 slots (seen_max <= 2^24), so the tag holds the home slot's bits. */
#define IDX_BITS 25
#define IDX_MASK (((uint64_t)1 << IDX_BITS) - 1)
#define TAG_MASK (((uint64_t)1 << (64 - IDX_BITS)) - 1)

static uint64_t id_hash(const tb_pt *pt, const uint8_t *id)
{
    return tb_rand_hash_id(id, pt->cfg.hash_key) & TAG_MASK;
}

static uint64_t slot_val(uint64_t tag, size_t r)
{
    return tag << IDX_BITS | (r + 1);
}

/* Ring index of id, or -1. */
static ptrdiff_t lookup(const tb_pt *pt, const uint8_t *id)
{
    uint64_t tag = id_hash(pt, id);
    for (size_t s = (size_t)tag & pt->table_mask;; s = (s + 1) & pt->table_mask) {
        uint64_t v = pt->table[s];
        if (v == 0)
            return -1;
        size_t r = (size_t)(v & IDX_MASK) - 1;
        if (v >> IDX_BITS == tag && memcmp(pt->ring[r].id, id, TB_PT_ID_LEN) == 0)
            return (ptrdiff_t)r;
    }
}

/* Removes ring index r from the table (backward-shift deletion keeps probe chains intact). */
static void table_remove(tb_pt *pt, size_t r)
{
    size_t s = (size_t)id_hash(pt, pt->ring[r].id) & pt->table_mask;
    while ((pt->table[s] & IDX_MASK) != r + 1)
        s = (s + 1) & pt->table_mask;
    for (size_t next = (s + 1) & pt->table_mask;; next = (next + 1) & pt->table_mask) {
        uint64_t v = pt->table[next];
        if (v == 0)
            break;
        size_t home = (size_t)(v >> IDX_BITS) & pt->table_mask;
        /* Move v back into the hole unless its home lies cyclically in (s, next]. */
        bool stays = s <= next ? (home > s && home <= next) : (home > s || home <= next);
        if (!stays) {
            pt->table[s] = v;
            s = next;
        }
    }
    pt->table[s] = 0;
}

static void unstore(tb_pt *pt, entry *e)
{
    if (!e->stored)
        return;
    pt->store_bytes -= e->len;
    pt->store_count--;
    free(e->payload);
    e->payload = NULL;
    e->stored = false;
}

/* Drops payloads beyond the store's limits and ids beyond the cache's, oldest first. */
static void expire(tb_pt *pt, uint64_t now, size_t room)
{
    size_t cap = pt->cfg.seen_max;
    while (pt->store_count > 0) {
        entry *e = &pt->ring[pt->store_from];
        bool old = now - e->at >= pt->cfg.store_ttl_ns || !e->stored;
        if (!old && pt->store_count + room <= pt->cfg.store_max &&
            pt->store_bytes <= pt->cfg.store_max_bytes)
            break;
        unstore(pt, e);
        pt->store_from = (pt->store_from + 1) % cap;
    }
    while (pt->count > 0) {
        entry *e = &pt->ring[pt->tail];
        if (now - e->at < pt->cfg.seen_ttl_ns && pt->count + room <= cap)
            break;
        if (pt->tail == pt->store_from && e->stored)
            pt->store_from = (pt->store_from + 1) % cap;
        unstore(pt, e);
        table_remove(pt, pt->tail);
        pt->tail = (pt->tail + 1) % cap;
        pt->count--;
    }
    if (pt->store_count == 0)
        pt->store_from = (pt->tail + pt->count) % cap;
}

/* Remembers id and keeps a copy of the payload; TB_ERR_NOMEM leaves nothing behind. */
static int remember(tb_pt *pt, uint64_t now, uint64_t origin, const uint8_t *id, uint32_t hops,
                    const uint8_t *payload, size_t len)
{
    uint8_t *copy = NULL;
    if (len > 0 && !(copy = malloc(len)))
        return TB_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, payload, len);
    pt->store_bytes += len;
    expire(pt, now, 1);
    size_t r = (pt->tail + pt->count) % pt->cfg.seen_max;
    if (pt->store_count == 0)
        pt->store_from = r;
    pt->count++;
    pt->ring[r] = (entry){
        .origin = origin, .at = now, .hops = hops, .payload = copy, .len = len, .stored = true};
    memcpy(pt->ring[r].id, id, TB_PT_ID_LEN);
    pt->store_count++;
    uint64_t tag = id_hash(pt, id);
    size_t s = (size_t)tag & pt->table_mask;
    while (pt->table[s] != 0)
        s = (s + 1) & pt->table_mask;
    pt->table[s] = slot_val(tag, r);
    /* The new one's bytes were counted first, so older payloads make room for it. */
    expire(pt, now, 0);
    return 0;
}

/* ------------------------------------------------------------------ origins */

static uint64_t origin_key(const tb_pt *pt, const char *origin)
{
    uint64_t k = tb_rand_hash_str(origin, pt->cfg.hash_key);
    return k ? k : 1;
}

static uint64_t *okey(const tb_pt *pt, size_t s)
{
    return &pt->otab[s * (1 + pt->words)];
}

/* The table slot of origin `key`, or of the empty slot where it would go. */
static size_t origin_slot(const tb_pt *pt, uint64_t key)
{
    size_t s = (size_t)tb_rand_mix(key) & pt->omask;
    while (*okey(pt, s) != 0 && *okey(pt, s) != key)
        s = (s + 1) & pt->omask;
    return s;
}

/* The lazy bits of origin `key`; NULL when it is unknown and !create. */
static uint64_t *origin_lazy(tb_pt *pt, uint64_t key, bool create)
{
    size_t s = origin_slot(pt, key);
    if (*okey(pt, s) == key)
        return okey(pt, s) + 1;
    if (!create)
        return NULL;
    if (pt->n_origins == pt->cfg.origins_max) {
        /* More origins than configured (members are bounded elsewhere): start every tree over
         * rather than keep an eviction order; the cost is one eager round per origin. */
        pt->stats.origins_reset++;
        memset(pt->otab, 0, (pt->omask + 1) * (1 + pt->words) * sizeof(*pt->otab));
        pt->n_origins = 0;
        s = origin_slot(pt, key);
    }
    *okey(pt, s) = key;
    pt->n_origins++;
    return okey(pt, s) + 1;
}

static size_t slot_no(const tb_pt *pt, const peer *p)
{
    return (size_t)(p - pt->peers);
}

static bool is_lazy(const tb_pt *pt, const uint64_t *lazy, const peer *p)
{
    size_t i = slot_no(pt, p);
    return lazy && (lazy[i / 64] >> (i % 64) & 1);
}

static void set_lazy(const tb_pt *pt, uint64_t *lazy, const peer *p, bool on)
{
    size_t i = slot_no(pt, p);
    if (!lazy)
        return;
    if (on)
        lazy[i / 64] |= (uint64_t)1 << (i % 64);
    else
        lazy[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* Sets p lazy (or eager) for every origin known so far. */
static void set_lazy_all(tb_pt *pt, const peer *p, bool lazy)
{
    for (size_t s = 0; s <= pt->omask; s++)
        if (*okey(pt, s) != 0)
            set_lazy(pt, okey(pt, s) + 1, p, lazy);
}

/* ------------------------------------------------------------------ neighbours */

static peer *find_peer(const tb_pt *pt, const char *name)
{
    uint64_t key = tb_rand_hash_str(name, pt->cfg.hash_key);
    for (size_t i = 0; i < pt->cfg.neighbors_max; i++) {
        peer *p = &pt->peers[i];
        if (pt->pkeys[i] == key && p->used && p->key == key && strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

int tb_pt_neighbor_up(tb_pt *pt, const char *name)
{
    begin(pt);
    if (!name || !tb_name_valid(name, strnlen(name, TB_NAME_MAX + 1)))
        return TB_ERR_INVAL;
    peer *p = find_peer(pt, name);
    if (p) {
        set_lazy_all(pt, p, true);
        return 0;
    }
    for (size_t i = 0; i < pt->cfg.neighbors_max; i++) {
        p = &pt->peers[i];
        if (p->used)
            continue;
        uint32_t gen = p->gen + 1;
        *p = (peer){.gen = gen, .used = true, .key = tb_rand_hash_str(name, pt->cfg.hash_key)};
        memcpy(p->name, name, strlen(name));
        pt->pkeys[i] = p->key;
        set_lazy_all(pt, p, true);
        return 0;
    }
    return TB_ERR_FULL;
}

void tb_pt_neighbor_down(tb_pt *pt, const char *name)
{
    begin(pt);
    peer *p = find_peer(pt, name);
    if (!p)
        return;
    free(p->batch);
    uint32_t gen = p->gen + 1;
    *p = (peer){.gen = gen};
    pt->pkeys[slot_no(pt, p)] = 0;
}

static void flush(tb_pt *pt, peer *p)
{
    if (p->n_batch == 0)
        return;
    tb_pt_action *a = push(pt, TB_PT_ACT_IHAVE, p->name);
    if (a) {
        a->ids = (const uint8_t(*)[TB_PT_ID_LEN])p->batch;
        a->n_ids = p->n_batch;
        pt->stats.ihave_sent++;
    }
    p->n_batch = 0;
}

static void announce(tb_pt *pt, uint64_t now, peer *p, const uint8_t *id)
{
    if (!p->batch && !(p->batch = malloc(pt->cfg.ids_max * TB_PT_ID_LEN)))
        return;
    memcpy(p->batch[p->n_batch++], id, TB_PT_ID_LEN);
    if (p->n_batch == pt->cfg.ids_max)
        flush(pt, p);
    else if (pt->next_flush == UINT64_MAX)
        pt->next_flush = now + pt->cfg.ihave_interval_ns;
}

static void send_gossip(tb_pt *pt, const char *to, const entry *e, uint32_t hops)
{
    tb_pt_action *a = push(pt, TB_PT_ACT_GOSSIP, to);
    if (!a)
        return;
    memcpy(a->id, e->id, TB_PT_ID_LEN);
    a->hops = hops;
    a->payload = e->payload;
    a->len = e->len;
    pt->stats.gossip_sent++;
}

/* Eager push on the origin's tree, IHAVE to the rest; `from` (may be NULL) gets neither. */
static void spread(tb_pt *pt, uint64_t now, const entry *e, const peer *from)
{
    if (e->hops >= pt->cfg.max_hops) {
        pt->stats.hop_ended++;
        return;
    }
    const uint64_t *lazy = origin_lazy(pt, e->origin, true);
    for (size_t i = 0; i < pt->cfg.neighbors_max; i++) {
        peer *p = &pt->peers[i];
        if (!p->used || p == from)
            continue;
        if (!is_lazy(pt, lazy, p))
            send_gossip(pt, p->name, e, e->hops + 1);
        else
            announce(pt, now, p, e->id);
    }
}

/* ------------------------------------------------------------------ messages */

/* A second path to us: the sender's link leaves this origin's tree, on both sides. When we
 * pushed this message to p ourselves (p eager here, not where it came from, not at the hop
 * limit), the copies crossed: ours is a duplicate at p as well and p cuts its side, so a PRUNE
 * would only double that (in an origin's first, flooded message nearly every duplicate is such
 * a crossing). Otherwise PRUNE, also when we hold p lazy already: it pushed, so it holds us eager
 * (a copy of ours reached it before its PRUNE reached us), and only our PRUNE makes the link
 * symmetric. */
static void duplicate_from(tb_pt *pt, const entry *e, uint64_t okey, peer *p, const char *origin)
{
    uint64_t *lazy = origin_lazy(pt, okey, true);
    bool crossed =
        !is_lazy(pt, lazy, p) && e->hops < pt->cfg.max_hops && e->from != slot_no(pt, p) + 1;
    set_lazy(pt, lazy, p, true);
    if (crossed) {
        pt->stats.prunes_saved++;
        return;
    }
    tb_pt_action *a = push(pt, TB_PT_ACT_PRUNE, p->name);
    if (a) {
        memcpy(a->origin, origin, strlen(origin));
        pt->stats.prunes_sent++;
    }
}

/* The missing set is looked up on every new message and announced id: hashed, not scanned
 * (up to missing_max entries). The entries stay in an array in the order the timers walk. */
static size_t miss_slot_of(const tb_pt *pt, size_t i)
{
    size_t s = (size_t)pt->miss_h[i] & pt->miss_mask;
    while (pt->miss_tab[s] != i + 1)
        s = (s + 1) & pt->miss_mask;
    return s;
}

static ptrdiff_t miss_index(const tb_pt *pt, const uint8_t *id)
{
    if (!pt->miss) /* missing_max 0: nothing is ever missing */
        return -1;
    uint64_t h = tb_rand_hash_id(id, pt->cfg.hash_key);
    for (size_t s = (size_t)h & pt->miss_mask;; s = (s + 1) & pt->miss_mask) {
        uint32_t v = pt->miss_tab[s];
        if (v == 0)
            return -1;
        if (pt->miss_h[v - 1] == h && memcmp(pt->miss[v - 1].id, id, TB_PT_ID_LEN) == 0)
            return (ptrdiff_t)(v - 1);
    }
}

static void miss_add(tb_pt *pt, uint64_t h)
{
    size_t i = pt->n_miss++, s = (size_t)h & pt->miss_mask;
    pt->miss_h[i] = h;
    while (pt->miss_tab[s] != 0)
        s = (s + 1) & pt->miss_mask;
    pt->miss_tab[s] = (uint32_t)(i + 1);
}

/* Backward-shift deletion of entry i from the table, as table_remove. */
static void miss_unhash(tb_pt *pt, size_t i)
{
    size_t s = miss_slot_of(pt, i);
    for (size_t next = (s + 1) & pt->miss_mask;; next = (next + 1) & pt->miss_mask) {
        uint32_t v = pt->miss_tab[next];
        if (v == 0)
            break;
        size_t home = (size_t)pt->miss_h[v - 1] & pt->miss_mask;
        bool stays = s <= next ? (home > s && home <= next) : (home > s || home <= next);
        if (!stays) {
            pt->miss_tab[s] = v;
            s = next;
        }
    }
    pt->miss_tab[s] = 0;
}

static void miss_remove(tb_pt *pt, size_t i)
{
    size_t last = pt->n_miss - 1;
    miss_unhash(pt, i);
    if (last != i)
        pt->miss_tab[miss_slot_of(pt, last)] = (uint32_t)(i + 1);
    pt->n_miss--;
    pt->miss[i] = pt->miss[last];
    pt->miss_h[i] = pt->miss_h[last];
}

static void drop_missing(tb_pt *pt, const uint8_t *id)
{
    ptrdiff_t i = pt->n_miss > 0 ? miss_index(pt, id) : -1;
    if (i >= 0)
        miss_remove(pt, (size_t)i);
}

static bool name_ok(const char *name)
{
    return name && tb_name_valid(name, strnlen(name, TB_NAME_MAX + 1));
}

int tb_pt_broadcast(tb_pt *pt, uint64_t now, const char *origin, const uint8_t id[TB_PT_ID_LEN],
                    const uint8_t *payload, size_t len)
{
    begin(pt);
    if ((len > 0 && !payload) || !name_ok(origin))
        return TB_ERR_INVAL;
    if (len > pt->cfg.store_max_bytes)
        return TB_ERR_TOO_BIG;
    if (lookup(pt, id) >= 0)
        return TB_ERR_EXISTS;
    int rc = remember(pt, now, origin_key(pt, origin), id, 0, payload, len);
    if (rc)
        return rc;
    pt->stats.originated++;
    drop_missing(pt, id);
    ptrdiff_t r = lookup(pt, id);
    if (r >= 0)
        spread(pt, now, &pt->ring[r], NULL);
    return 0;
}

int tb_pt_recv_gossip(tb_pt *pt, uint64_t now, const char *from, const char *origin,
                      const uint8_t id[TB_PT_ID_LEN], uint32_t hops, const uint8_t *payload,
                      size_t len, bool *is_new)
{
    begin(pt);
    if (is_new)
        *is_new = false;
    if ((len > 0 && !payload) || !from || !name_ok(origin))
        return TB_ERR_INVAL;
    if (len > pt->cfg.store_max_bytes)
        return TB_ERR_TOO_BIG;
    peer *p = find_peer(pt, from);
    uint64_t okey = origin_key(pt, origin);
    ptrdiff_t seen = lookup(pt, id);
    if (seen >= 0) {
        pt->stats.duplicates++;
        if (p)
            duplicate_from(pt, &pt->ring[seen], okey, p, origin);
        return 0;
    }
    if (hops == 0 || hops > pt->cfg.max_hops)
        hops = pt->cfg.max_hops;
    int rc = remember(pt, now, okey, id, hops, payload, len);
    if (rc)
        return rc;
    pt->stats.delivered++;
    if (is_new)
        *is_new = true;
    ptrdiff_t r = lookup(pt, id);
    if (r < 0) {
        drop_missing(pt, id);
        return 0;
    }
    entry *e = &pt->ring[r];
    if (p) {
        set_lazy(pt, origin_lazy(pt, okey, true), p, false);
        e->from = (uint16_t)(slot_no(pt, p) + 1);
    }
    drop_missing(pt, id);
    tb_pt_action *a = push(pt, TB_PT_ACT_DELIVER, from);
    if (a) {
        memcpy(a->id, id, TB_PT_ID_LEN);
        a->hops = hops;
        a->payload = e->payload;
        a->len = e->len;
    }
    spread(pt, now, e, p);
    return 0;
}

static missing *find_missing(tb_pt *pt, const uint8_t *id)
{
    ptrdiff_t i = miss_index(pt, id);
    return i >= 0 ? &pt->miss[i] : NULL;
}

int tb_pt_recv_ihave(tb_pt *pt, uint64_t now, const char *from, const uint8_t (*ids)[TB_PT_ID_LEN],
                     size_t n)
{
    begin(pt);
    peer *p = from ? find_peer(pt, from) : NULL;
    if (!p) {
        pt->stats.unknown_peer++;
        return TB_ERR_NOTFOUND;
    }
    if (n > pt->cfg.ids_max) {
        pt->stats.ids_dropped += n - pt->cfg.ids_max;
        n = pt->cfg.ids_max;
    }
    uint32_t who = (uint32_t)(p - pt->peers);
    for (size_t i = 0; i < n; i++) {
        if (lookup(pt, ids[i]) >= 0)
            continue;
        missing *m = find_missing(pt, ids[i]);
        if (!m) {
            if (pt->n_miss == pt->cfg.missing_max || !pt->miss) { /* missing_max may be 0 */
                pt->stats.ids_dropped++;
                continue;
            }
            miss_add(pt, tb_rand_hash_id(ids[i], pt->cfg.hash_key));
            m = &pt->miss[pt->n_miss - 1];
            *m = (missing){.deadline = now + pt->cfg.graft_timeout_ns};
            if (pt->n_miss == 1 || m->deadline < pt->miss_wake)
                pt->miss_wake = m->deadline;
            memcpy(m->id, ids[i], TB_PT_ID_LEN);
        }
        bool known = false;
        for (size_t k = 0; k < m->n_who; k++)
            known |= m->who[k] == who && m->gen[k] == p->gen;
        if (!known && m->n_who < TB_PT_ANNOUNCERS) {
            m->who[m->n_who] = who;
            m->gen[m->n_who++] = p->gen;
        }
    }
    return 0;
}

int tb_pt_recv_graft(tb_pt *pt, uint64_t now, const char *from, const uint8_t (*ids)[TB_PT_ID_LEN],
                     size_t n)
{
    begin(pt);
    peer *p = from ? find_peer(pt, from) : NULL;
    if (!p) {
        pt->stats.unknown_peer++;
        return TB_ERR_NOTFOUND;
    }
    if (n > pt->cfg.ids_max) {
        pt->stats.ids_dropped += n - pt->cfg.ids_max;
        n = pt->cfg.ids_max;
    }
    for (size_t i = 0; i < n; i++) {
        ptrdiff_t r = lookup(pt, ids[i]);
        if (r < 0 || !pt->ring[r].stored) {
            pt->stats.graft_misses++;
            continue;
        }
        /* The asker lost its path from this origin: our link joins its tree. */
        set_lazy(pt, origin_lazy(pt, pt->ring[r].origin, true), p, false);
        send_gossip(pt, from, &pt->ring[r], pt->ring[r].hops + 1);
    }
    return 0;
}

int tb_pt_recv_prune(tb_pt *pt, uint64_t now, const char *from, const char *origin)
{
    begin(pt);
    (void)now;
    peer *p = from ? find_peer(pt, from) : NULL;
    if (!p) {
        pt->stats.unknown_peer++;
        return TB_ERR_NOTFOUND;
    }
    if (!name_ok(origin))
        return TB_ERR_INVAL;
    /* Only origins we forwarded: a peer cannot fill the table with names. */
    uint64_t *lazy = origin_lazy(pt, origin_key(pt, origin), false);
    if (!lazy) {
        pt->stats.unknown_origin++;
        return TB_ERR_NOTFOUND;
    }
    set_lazy(pt, lazy, p, true);
    return 0;
}

/* ------------------------------------------------------------------ timers */

static void graft_due(tb_pt *pt, uint64_t now)
{
    if (pt->n_miss == 0 || pt->miss_wake > now)
        return;
    pt->miss_wake = UINT64_MAX;
    for (size_t i = 0; i < pt->n_miss;) {
        missing *m = &pt->miss[i];
        if (m->deadline > now) {
            i++;
            continue;
        }
        peer *p = NULL;
        while (m->n_who > 0 && !p) {
            peer *c = &pt->peers[m->who[0]];
            if (c->used && c->gen == m->gen[0])
                p = c;
            m->n_who--;
            memmove(m->who, m->who + 1, m->n_who * sizeof(m->who[0]));
            memmove(m->gen, m->gen + 1, m->n_who * sizeof(m->gen[0]));
        }
        if (!p) {
            miss_remove(pt, i);
            continue;
        }
        tb_pt_action *a = push(pt, TB_PT_ACT_GRAFT, p->name);
        if (a) {
            memcpy(a->id, m->id, TB_PT_ID_LEN);
            a->n_ids = 1;
            pt->stats.grafts_sent++;
        }
        m->deadline = now + pt->cfg.graft_retry_ns;
        i++;
    }
    for (size_t i = 0; i < pt->n_miss; i++)
        if (pt->miss[i].deadline < pt->miss_wake)
            pt->miss_wake = pt->miss[i].deadline;
}

void tb_pt_tick(tb_pt *pt, uint64_t now)
{
    begin(pt);
    graft_due(pt, now);
    if (now >= pt->next_flush) {
        pt->next_flush = UINT64_MAX;
        for (size_t i = 0; i < pt->cfg.neighbors_max; i++)
            if (pt->peers[i].used)
                flush(pt, &pt->peers[i]);
    }
    expire(pt, now, 0);
}

uint64_t tb_pt_next_wake(const tb_pt *pt)
{
    uint64_t w = pt->next_flush;
    if (pt->n_miss > 0 && pt->miss_wake < w)
        w = pt->miss_wake;
    if (pt->store_count > 0) {
        uint64_t t = pt->ring[pt->store_from].at + pt->cfg.store_ttl_ns;
        if (t < w)
            w = t;
    }
    if (pt->count > 0) {
        uint64_t t = pt->ring[pt->tail].at + pt->cfg.seen_ttl_ns;
        if (t < w)
            w = t;
    }
    return w;
}

bool tb_pt_is_eager(const tb_pt *pt, const char *origin, const char *name)
{
    const peer *p = find_peer(pt, name);
    if (!p || !name_ok(origin))
        return false;
    size_t s = origin_slot(pt, origin_key(pt, origin));
    return *okey(pt, s) == 0 || !is_lazy(pt, okey(pt, s) + 1, p);
}

size_t tb_pt_neighbor_count(const tb_pt *pt)
{
    size_t n = 0;
    for (size_t i = 0; i < pt->cfg.neighbors_max; i++)
        n += pt->peers[i].used;
    return n;
}

bool tb_pt_seen(const tb_pt *pt, const uint8_t id[TB_PT_ID_LEN])
{
    return lookup(pt, id) >= 0;
}

size_t tb_pt_store_count(const tb_pt *pt)
{
    return pt->store_count;
}

size_t tb_pt_missing_count(const tb_pt *pt)
{
    return pt->n_miss;
}

void tb_pt_get_stats(const tb_pt *pt, tb_pt_stats *out)
{
    *out = pt->stats;
}
