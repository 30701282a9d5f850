/* For the routing tests, which run without crypto: a stand-in for the digest of a broadcast's
 * signed bytes (routing/broadcast.h) that differs for every (origin, id) they use (origins of up
 * to 8 bytes). */
#ifndef TB_TESTS_SUPPORT_BC_DIGEST_H
#define TB_TESTS_SUPPORT_BC_DIGEST_H

#include <stdint.h>
#include <string.h>

#include "routing/broadcast.h"

/* The result stays valid for the next 15 calls. */
static inline const uint8_t *D(const char *origin, uint64_t id)
{
    static uint8_t ring[16][TB_BC_DIGEST_LEN];
    static unsigned next;
    uint8_t *d = ring[next++ % 16];
    memset(d, 0, TB_BC_DIGEST_LEN);
    memcpy(d, &id, 8);
    memcpy(d + 8, origin, strnlen(origin, 8));
    return d;
}

#endif
