/* common/rand: a small seeded generator (splitmix64) for the pure protocol modules and the
 * simulator. Deterministic on purpose: a module takes its seed from the caller (the node seeds it
 * from getrandom, a test or the simulator from a fixed number), so a run can be replayed. Not for
 * keys or anything an attacker must not predict. */
#ifndef TB_COMMON_RAND_H
#define TB_COMMON_RAND_H

#include <stdint.h>
#include <string.h>

/* splitmix64's finaliser: mixes every input bit into every output bit. */
static inline uint64_t tb_rand_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t tb_rand_next(uint64_t *state)
{
    return tb_rand_mix(*state += 0x9e3779b97f4a7c15ULL);
}

/* A 16-byte message id hashed under a per-node random key, for table slots a peer cannot aim
 * at (duplicate caches of routing/). */
static inline uint64_t tb_rand_hash_id(const uint8_t id[16], uint64_t key)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return tb_rand_mix(a ^ key) ^ tb_rand_mix(b + key);
}

/* A NUL-terminated name (FNV-1a, then mixed) under a per-node random key, for the same use. */
static inline uint64_t tb_rand_hash_str(const char *s, uint64_t key)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ key;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return tb_rand_mix(h);
}

/* Uniform in [0, n) (n > 0), by rejection so small n has no bias. */
static inline uint64_t tb_rand_below(uint64_t *state, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do
        v = tb_rand_next(state);
    while (v >= limit);
    return v % n;
}

#endif
