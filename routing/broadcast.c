#include "routing/broadcast.h"

#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/name.h"
#include "common/rand.h"

#define NONE UINT32_MAX

typedef struct slot {
    uint8_t digest[TB_BC_DIGEST_LEN];
    uint64_t seen;
    uint32_t next; /* hash chain */
    uint32_t bucket;
} slot;

struct tb_bc {
    tb_bc_config cfg;
    char self[TB_NAME_MAX + 1];
    uint64_t next_id;
    slot *slots;     /* a ring in arrival order: oldest at head */
    uint32_t *heads; /* hash buckets: first slot of each chain */
    uint32_t nbuckets;
    uint32_t head, count;
    tb_bc_stats stats;
};

void tb_bc_config_default(tb_bc_config *cfg, uint64_t hash_key)
{
    cfg->cache_capacity = 4096;
    cfg->cache_ttl_ns = 600ULL * 1000000000ULL;
    cfg->hop_limit = 16;
    cfg->max_hop_limit = 32;
    cfg->hash_key = hash_key;
}

int tb_bc_new(const tb_bc_config *cfg, const char *self, uint64_t first_id, tb_bc **out)
{
    size_t self_len = self ? strnlen(self, TB_NAME_MAX + 1) : 0;
    tb_bc *bc;
    *out = NULL;
    if (!cfg || !self || cfg->cache_capacity < 1 || cfg->cache_capacity > TB_BC_CACHE_MAX ||
        cfg->cache_ttl_ns == 0 || cfg->hop_limit < 1 || cfg->max_hop_limit < cfg->hop_limit ||
        !tb_name_valid(self, self_len))
        return TB_ERR_INVAL;
    bc = calloc(1, sizeof(*bc));
    if (!bc)
        return TB_ERR_NOMEM;
    bc->cfg = *cfg;
    memcpy(bc->self, self, self_len);
    bc->next_id = first_id;
    bc->nbuckets = 1;
    while (bc->nbuckets < 2 * cfg->cache_capacity)
        bc->nbuckets <<= 1;
    bc->slots = calloc(cfg->cache_capacity, sizeof(*bc->slots));
    bc->heads = malloc(bc->nbuckets * sizeof(*bc->heads));
    if (!bc->slots || !bc->heads) {
        tb_bc_free(bc);
        return TB_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < bc->nbuckets; i++)
        bc->heads[i] = NONE;
    *out = bc;
    return 0;
}

void tb_bc_free(tb_bc *bc)
{
    if (!bc)
        return;
    free(bc->slots);
    free(bc->heads);
    free(bc);
}

static uint32_t bucket_of(const tb_bc *bc, const uint8_t *digest)
{
    return (uint32_t)(tb_rand_hash_id(digest, bc->cfg.hash_key) & (bc->nbuckets - 1));
}

static int cache_has(const tb_bc *bc, const uint8_t *digest)
{
    for (uint32_t i = bc->heads[bucket_of(bc, digest)]; i != NONE; i = bc->slots[i].next)
        if (memcmp(bc->slots[i].digest, digest, TB_BC_DIGEST_LEN) == 0)
            return 1;
    return 0;
}

static void drop_oldest(tb_bc *bc)
{
    uint32_t victim = bc->head;
    uint32_t *link = &bc->heads[bc->slots[victim].bucket];
    while (*link != victim)
        link = &bc->slots[*link].next;
    *link = bc->slots[victim].next;
    /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): tb_bc_new refuses a capacity below 1 */
    bc->head = (bc->head + 1) % (uint32_t)bc->cfg.cache_capacity;
    bc->count--;
}

uint64_t tb_bc_expire(tb_bc *bc, uint64_t now)
{
    while (bc->count) {
        const slot *s = &bc->slots[bc->head];
        if (now < s->seen || now - s->seen < bc->cfg.cache_ttl_ns)
            return s->seen + bc->cfg.cache_ttl_ns;
        drop_oldest(bc);
    }
    return UINT64_MAX;
}

static void cache_add(tb_bc *bc, uint64_t now, const uint8_t *digest)
{
    uint32_t cap = (uint32_t)bc->cfg.cache_capacity, i;
    slot *s;
    if (bc->count == cap) {
        drop_oldest(bc);
        bc->stats.evicted++;
    }
    i = (bc->head + bc->count) % cap; /* NOLINT(clang-analyzer-core.DivideZero): cap >= 1 */
    s = &bc->slots[i];
    memcpy(s->digest, digest, TB_BC_DIGEST_LEN);
    s->seen = now;
    s->bucket = bucket_of(bc, digest);
    s->next = bc->heads[s->bucket];
    bc->heads[s->bucket] = i;
    bc->count++;
}

static size_t choose(const char *const *nb, size_t n, const char *from, const char *origin,
                     size_t origin_len, size_t *forward)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (from && strcmp(nb[i], from) == 0)
            continue;
        if (strlen(nb[i]) == origin_len && memcmp(nb[i], origin, origin_len) == 0)
            continue;
        forward[k++] = i;
    }
    return k;
}

int tb_bc_signed_header(const char *origin, size_t origin_len, uint64_t msg_id, uint32_t app_type,
                        uint8_t *buf, size_t cap, size_t *len)
{
    size_t need = sizeof(TB_BC_SIGN_CONTEXT) + 1 + origin_len + 8 + 4;
    if (!tb_name_valid(origin, origin_len))
        return TB_ERR_MALFORMED;
    if (cap < need)
        return TB_ERR_TOO_BIG;
    uint8_t *p = buf;
    memcpy(p, TB_BC_SIGN_CONTEXT, sizeof(TB_BC_SIGN_CONTEXT));
    p += sizeof(TB_BC_SIGN_CONTEXT);
    *p++ = (uint8_t)origin_len;
    memcpy(p, origin, origin_len);
    p += origin_len;
    tb_put_be64(p, msg_id);
    tb_put_be32(p + 8, app_type);
    *len = need;
    return 0;
}

uint64_t tb_bc_next_id(tb_bc *bc)
{
    return bc->next_id++;
}

int tb_bc_originate(tb_bc *bc, uint64_t now, const uint8_t digest[TB_BC_DIGEST_LEN],
                    const char *const *neighbours, size_t nneighbours, size_t *forward,
                    tb_bc_decision *out)
{
    size_t len = strlen(bc->self);
    tb_bc_expire(bc, now);
    if (!cache_has(bc, digest))
        cache_add(bc, now, digest);
    out->deliver = 0;
    out->hop_limit = bc->cfg.hop_limit;
    out->nforward = choose(neighbours, nneighbours, NULL, bc->self, len, forward);
    bc->stats.originated++;
    bc->stats.forwarded += out->nforward;
    return 0;
}

int tb_bc_check(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len,
                const uint8_t digest[TB_BC_DIGEST_LEN], uint8_t hop_limit, const char *from,
                const char *const *neighbours, size_t nneighbours, size_t *forward,
                tb_bc_decision *out)
{
    memset(out, 0, sizeof(*out));
    if (!tb_name_valid(origin, origin_len) || hop_limit == 0) {
        bc->stats.malformed++;
        return TB_ERR_MALFORMED;
    }
    bc->stats.received++;
    tb_bc_expire(bc, now);
    /* A copy of this node's own broadcast that the cache forgot is still not news here. */
    if (cache_has(bc, digest) ||
        (origin_len == strlen(bc->self) && memcmp(origin, bc->self, origin_len) == 0)) {
        bc->stats.duplicates++;
        return 0;
    }
    out->deliver = 1;
    if (hop_limit > bc->cfg.max_hop_limit)
        hop_limit = bc->cfg.max_hop_limit;
    if (hop_limit <= 1)
        return 0;
    out->hop_limit = (uint8_t)(hop_limit - 1);
    out->nforward = choose(neighbours, nneighbours, from, origin, origin_len, forward);
    return 0;
}

void tb_bc_commit(tb_bc *bc, uint64_t now, const uint8_t digest[TB_BC_DIGEST_LEN],
                  const tb_bc_decision *d)
{
    if (!d->deliver || cache_has(bc, digest))
        return;
    cache_add(bc, now, digest);
    bc->stats.delivered++;
    if (d->hop_limit == 0)
        bc->stats.hop_ended++;
    bc->stats.forwarded += d->nforward;
}

void tb_bc_refused(tb_bc *bc)
{
    bc->stats.refused++;
}

int tb_bc_receive(tb_bc *bc, uint64_t now, const char *origin, size_t origin_len,
                  const uint8_t digest[TB_BC_DIGEST_LEN], uint8_t hop_limit, const char *from,
                  const char *const *neighbours, size_t nneighbours, size_t *forward,
                  tb_bc_decision *out)
{
    int rc = tb_bc_check(bc, now, origin, origin_len, digest, hop_limit, from, neighbours,
                         nneighbours, forward, out);
    if (rc == 0)
        tb_bc_commit(bc, now, digest, out);
    return rc;
}

size_t tb_bc_cache_size(const tb_bc *bc)
{
    return bc->count;
}

void tb_bc_get_stats(const tb_bc *bc, tb_bc_stats *out)
{
    *out = bc->stats;
}
