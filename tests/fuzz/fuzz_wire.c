/* libFuzzer target for the mesh wire format: decoding any input must never crash or read out of
 * bounds, and whatever decodes must encode again and decode to the same message. The first
 * input byte also drives the stream frame reader over the rest, in pieces. */
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

/* Feeds (data, size) to a frame reader in pieces of `step` bytes. */
static void check_reader(const uint8_t *data, size_t size, size_t step, const tb_wire_limits *lim)
{
    tb_wire_reader r;
    tb_wire_reader_init(&r, lim);
    int rc = TB_ERR_AGAIN;
    for (size_t at = 0; at < size && rc == TB_ERR_AGAIN; at += step) {
        size_t k = size - at < step ? size - at : step;
        rc = tb_wire_reader_feed(&r, data + at, k);
    }
    const uint8_t *body;
    size_t len;
    if (tb_wire_reader_finish(&r, &body, &len) == 0)
        check_round_trip(body, len, lim);
    tb_wire_reader_clear(&r);
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
    if (size > 0)
        check_reader(data + 1, size - 1, 1 + data[0] % 16, NULL);
    return 0;
}
