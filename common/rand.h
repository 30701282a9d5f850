/* common/rand: a small seeded generator (splitmix64) for the pure protocol modules and the
 * simulator. Deterministic on purpose: a module takes its seed from the caller (the node seeds it
 * from getrandom, a test or the simulator from a fixed number), so a run can be replayed. Not for
 * keys or anything an attacker must not predict. */
#ifndef TB_COMMON_RAND_H
#define TB_COMMON_RAND_H

#include <stdint.h>

static inline uint64_t tb_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
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
