/* For the tests that play a hostile member: a BROADCAST as the wire carries it, claiming any
 * origin, signed with any key (routing/broadcast.h lays out what is signed). */
#ifndef TB_TESTS_SUPPORT_BC_FORGE_H
#define TB_TESTS_SUPPORT_BC_FORGE_H

#include <string.h>

#include "measure/sign.h"
#include "routing/broadcast.h"
#include "wire/wire.h"

/* Encodes into out (cap bytes) a BROADCAST claiming origin and id, signed with sk; returns its
 * length, 0 on failure. */
static inline size_t tb_test_forge_broadcast(const char *origin, uint64_t id, uint32_t app,
                                             const uint8_t *payload, size_t plen, const uint8_t *sk,
                                             uint8_t *out, size_t cap)
{
    uint8_t hdr[TB_BC_SIGNED_HEADER_MAX];
    size_t hlen, len = 0;
    tb_wire_msg w = {.type = TB_WIRE_BROADCAST};
    w.broadcast = (tb_wire_broadcast){origin, id, 8, app, {payload, plen}, {0}};
    if (tb_bc_signed_header(origin, strlen(origin), id, app, hdr, sizeof(hdr), &hlen) != 0)
        return 0;
    tb_measure_part parts[2] = {{hdr, hlen}, {payload, plen}};
    if (tb_measure_sign_parts(parts, 2, sk, w.broadcast.sig) != 0 ||
        tb_wire_encode(&w, NULL, out, cap, &len) != 0)
        return 0;
    return len;
}

#endif
