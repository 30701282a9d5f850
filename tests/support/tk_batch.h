/* For the tests and tools that play a member of the mesh (tests/test_timekeeper*.c,
 * tests/tool_forge.c): broadcasts what a time node gossips, or a forgery of it. */
#ifndef TB_TESTS_SUPPORT_TK_BATCH_H
#define TB_TESTS_SUPPORT_TK_BATCH_H

#include <string.h>

#include "measure/measurement.h"
#include "node/node.h"
#include "node/timekeeper.h"
#include "wire/wire.h"

/* Broadcasts from n a MEASUREMENTS batch claiming batch_origin that carries m, sealed with sk.
 * Honest: batch_origin is n's name, m.origin too, sk n's key; anything else is a forgery. */
static inline int tb_test_send_batch(tb_node *n, const char *batch_origin, const tb_measurement *m,
                                     const uint8_t *sk)
{
    static uint8_t body[TB_MEASURE_BODY_MAX], wire[TB_MEASURE_BODY_MAX + 512];
    tb_wire_mitem item = {.seq = m->seq};
    size_t len, wlen;
    int rc = tb_measure_seal(m, sk, body, sizeof(body), &len, item.sig);
    if (rc != TB_OK)
        return rc;
    item.body = (tb_wire_bytes){body, len};
    tb_wire_msg w = {.type = TB_WIRE_MEASUREMENTS};
    w.measurements = (tb_wire_measurements){batch_origin, &item, 1};
    rc = tb_wire_encode(&w, NULL, wire, sizeof(wire), &wlen);
    return rc ? rc : tb_node_broadcast(n, TB_TK_APP_MEASUREMENTS, wire, wlen, NULL);
}

#endif
