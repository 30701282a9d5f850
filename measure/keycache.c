/* A small array scanned linearly: the table holds one entry per mesh node's certificate (a few
 * hundred at most), and a linear scan of fingerprints costs far less than the signature check
 * that follows every lookup. Recency is a use counter; the smallest gives way when full. */
#include "measure/keycache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint8_t fp[TB_MEASURE_FP_LEN];
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    tb_measure_origin_key key;
    uint64_t used;
} entry;

struct tb_measure_keycache {
    entry *e;
    size_t n, cap;
    uint64_t clock; /* use counter, not time */
};

tb_measure_keycache *tb_measure_keycache_new(size_t capacity)
{
    if (capacity < 1 || capacity > TB_MEASURE_KEYCACHE_MAX)
        return NULL;
    tb_measure_keycache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->e = calloc(capacity, sizeof(*c->e));
    if (!c->e) {
        free(c);
        return NULL;
    }
    c->cap = capacity;
    return c;
}

void tb_measure_keycache_free(tb_measure_keycache *c)
{
    if (!c)
        return;
    free(c->e);
    free(c);
}

void tb_measure_keycache_clear(tb_measure_keycache *c)
{
    c->n = 0;
}

static bool valid_at(const tb_measure_origin_key *k, int64_t now_s)
{
    return now_s >= k->not_before && now_s <= k->not_after;
}

static size_t find(const tb_measure_keycache *c, const uint8_t *fp, const char *origin)
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->e[i].fp, fp, TB_MEASURE_FP_LEN) == 0 && strcmp(c->e[i].origin, origin) == 0)
            return i;
    return c->n;
}

static void remove_at(tb_measure_keycache *c, size_t i)
{
    c->e[i] = c->e[--c->n];
}

int tb_measure_keycache_get(tb_measure_keycache *c, const uint8_t fp[TB_MEASURE_FP_LEN],
                            const char *origin, int64_t now_s, tb_measure_origin_key *out)
{
    size_t i = find(c, fp, origin);
    if (i == c->n)
        return TB_ERR_NOTFOUND;
    if (!valid_at(&c->e[i].key, now_s)) {
        remove_at(c, i);
        return TB_ERR_NOTFOUND;
    }
    c->e[i].used = ++c->clock;
    *out = c->e[i].key;
    return TB_OK;
}

/* The entry to overwrite for a new key: a free one, else one that expired, else the least
 * recently used. */
static size_t slot_for(tb_measure_keycache *c, int64_t now_s)
{
    if (c->n < c->cap)
        return c->n++;
    size_t lru = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!valid_at(&c->e[i].key, now_s))
            return i;
        if (c->e[i].used < c->e[lru].used)
            lru = i;
    }
    return lru;
}

int tb_measure_keycache_put(tb_measure_keycache *c, const uint8_t fp[TB_MEASURE_FP_LEN],
                            const char *origin, int64_t now_s, const tb_measure_origin_key *key)
{
    size_t olen = strlen(origin);
    if (olen == 0 || olen > TB_MEASURE_MAX_ORIGIN)
        return TB_ERR_INVAL;
    if (!valid_at(key, now_s))
        return TB_ERR_STATE;
    size_t i = find(c, fp, origin);
    if (i == c->n)
        i = slot_for(c, now_s);
    entry *e = &c->e[i];
    memcpy(e->fp, fp, TB_MEASURE_FP_LEN);
    memcpy(e->origin, origin, olen + 1);
    e->key = *key;
    e->used = ++c->clock;
    return TB_OK;
}

size_t tb_measure_keycache_size(const tb_measure_keycache *c)
{
    return c->n;
}
