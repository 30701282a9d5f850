/* libFuzzer target for the mesh wire format: decoding any input must never crash or read out of
 * bounds, and whatever decodes must encode again and decode to the same message. (The stream
 * frame around a message is quic/'s: fuzz_quic_frame.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/support/wire_equal.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[70000];

static void check_round_trip(const uint8_t *data, size_t size, const tb_wire_limits *lim)
{
    tb_wire_msg m, again;
    tb_wire_diag diag;
    if (tb_wire_decode(data, size, lim, &m, &diag) != 0) {
        if (m.owned != NULL)
            abort(); /* a failed decode leaves nothing to free */
        return;
    }
    size_t n;
    int rc = tb_wire_encode(&m, lim, out, sizeof(out), &n);
    if (rc != 0) {
        fprintf(stderr, "decoded %s does not encode: %d\n", tb_wire_type_name(m.type), rc);
        abort();
    }
    /* unknown keys are dropped, and integers may have been wider: never longer */
    if (n > size)
        abort();
    rc = tb_wire_decode(out, n, lim, &again, &diag);
    if (rc != 0 || !tb_wire_msg_equal(&m, &again)) {
        fprintf(stderr, "re-encoded %s decodes differently: %d\n", tb_wire_type_name(m.type), rc);
        abort();
    }
    tb_wire_msg_clear(&again);
    tb_wire_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_wire_limits small = tb_wire_limits_default();
    small.max_peers = 4;
    small.max_addrs = 2;
    small.max_str_len = 16;
    small.max_payload_len = 64;
    small.max_cert_len = 64;
    check_round_trip(data, size, NULL);
    check_round_trip(data, size, &small);
    return 0;
}
