/* libFuzzer target for the measurement body (measure/): parsing any input must never crash or
 * read out of bounds; whatever parses must encode to the very same bytes (one encoding per
 * measurement), and the receiver path (signature, parse, sequence) must hold on any input. */
#include <stdlib.h>
#include <string.h>

#include "measure/measurement.h"
#include "measure/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[TB_MEASURE_BODY_MAX];

static int lookup(void *arg, const char *origin, tb_measure_origin_key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->ed25519_pub, arg, TB_MEASURE_PK_LEN);
    k->not_after = INT64_MAX;
    return origin[0] == 'x' ? TB_ERR_NOTFOUND : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_measurement m;
    tb_measure_diag d;
    if (tb_measure_parse(data, size, &m, &d) == 0) {
        size_t n;
        if (tb_measure_encode(&m, out, sizeof(out), &n) != 0 || n != size ||
            memcmp(out, data, n) != 0)
            abort();
    }
    /* the receiver: the first 64 bytes as a signature, the rest as a body */
    if (size >= TB_MEASURE_SIG_LEN) {
        static uint8_t sk[64], pk[32];
        if (pk[0] == 0) {
            uint8_t seed[32] = {1};
            if (tb_measure_key_from_seed(seed, sk, pk) != 0)
                abort();
        }
        tb_measure_replay_config cfg = {4, lookup, NULL, pk, {0}};
        tb_measure_replay *r = tb_measure_replay_new(&cfg);
        tb_measure_drop why;
        const uint8_t *body = data + TB_MEASURE_SIG_LEN;
        size_t len = size - TB_MEASURE_SIG_LEN;
        if (tb_measure_replay_accept(r, "node-a", 1, body, len, data, 0, &m, &why) == 0)
            abort(); /* nobody can sign with our key */
        /* a correctly signed copy goes as far as the parser and the range check let it */
        uint8_t sig[64];
        if (tb_measure_sign(body, len, sk, sig) == 0 &&
            tb_measure_replay_accept(r, "node-a", 1, body, len, sig, 0, &m, &why) != 0 &&
            why != TB_MEASURE_DROP_MALFORMED && why != TB_MEASURE_DROP_RANGE)
            abort();
        tb_measure_replay_free(r);
    }
    return 0;
}
