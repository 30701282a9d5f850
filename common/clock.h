/* The clock module: the one place time is read. Every module that needs time takes a
 * const tb_clock * (or simply a `now` argument), so tests and simulations substitute a
 * manual clock and several nodes in one process can each have their own. */
#ifndef TB_COMMON_CLOCK_H
#define TB_COMMON_CLOCK_H

#include <stdint.h>

#define TB_NS_PER_SEC 1000000000ULL
#define TB_NS_PER_MS 1000000ULL
#define TB_NS_PER_US 1000ULL

typedef struct tb_clock {
    /* Monotonic nanoseconds since an arbitrary origin (ngtcp2_tstamp compatible). */
    uint64_t (*mono_ns)(void *arg);
    /* Real (UTC, Unix epoch) time in nanoseconds. */
    int64_t (*real_ns)(void *arg);
    void *arg;
} tb_clock;

/* The system clock (CLOCK_MONOTONIC and CLOCK_REALTIME). Immutable, shared. */
const tb_clock *tb_clock_system(void);

static inline uint64_t tb_clock_mono(const tb_clock *c)
{
    return c->mono_ns(c->arg);
}

static inline int64_t tb_clock_real(const tb_clock *c)
{
    return c->real_ns(c->arg);
}

/* A clock that only moves when told: for unit tests and simulations. */
typedef struct tb_clock_manual {
    tb_clock clock;
    uint64_t mono;
    int64_t real;
} tb_clock_manual;

void tb_clock_manual_init(tb_clock_manual *m, uint64_t mono_ns, int64_t real_ns);
void tb_clock_manual_advance(tb_clock_manual *m, uint64_t ns);

/* Formats real time as RFC 3339 UTC with milliseconds ("2026-11-21T06:50:19.123Z").
 * buf must hold at least TB_CLOCK_RFC3339_LEN bytes. */
#define TB_CLOCK_RFC3339_LEN 32
void tb_clock_format_rfc3339(int64_t real_ns, char *buf, unsigned buflen);

#endif
