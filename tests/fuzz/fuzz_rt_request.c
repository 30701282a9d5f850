/* libFuzzer: the Roughtime server's request path (framing, message, VER/NONC/TYPE/SRV rules,
 * version choice, queueing) and signing whatever was accepted. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "roughtime/codec.h"
#include "roughtime/server.h"

static void sink(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    size_t *max = arg;
    if (len > *max)
        __builtin_trap(); /* never larger than the request */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tb_rt_srv *srv;
    if (!srv) {
        tb_rt_srv_config cfg;
        uint8_t pk[32], seed[32] = {7};
        if (sodium_init() < 0)
            return 0;
        tb_rt_srv_config_default(&cfg);
        crypto_sign_ed25519_seed_keypair(pk, cfg.longterm_sk, seed);
        if (tb_rt_srv_new(&cfg, NULL, 1795000000LL * 1000000000LL, &srv) < 0)
            return 0;
    }
    tb_rt_request r;
    tb_rt_req_error why;
    if (tb_rt_request_parse(data, size, &r, &why) == 0 && r.nversions > TB_RT_MAX_VERSIONS)
        __builtin_trap();
    tb_rt_msg m;
    (void)tb_rt_msg_parse(data, size, &m);
    if (tb_rt_srv_submit(srv, data, size, 0) == 0) {
        size_t max = size;
        if (tb_rt_srv_flush(srv, 1795000000LL * 1000000000LL, 3, sink, &max) != 1)
            __builtin_trap();
    }
    return 0;
}
