/* libFuzzer: Roughtime response parsing and full verification, for every version the client
 * speaks, against a fixed request (the first byte picks the version). */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "roughtime/codec.h"
#include "roughtime/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t versions[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT12, TB_RT_VER_DRAFT11,
                                        TB_RT_VER_DRAFT08, TB_RT_VER_GOOGLE};
    static int ready;
    static tb_rt_query base[5];
    if (!ready) {
        uint8_t pk[32] = {1}, nonce[64] = {2};
        if (sodium_init() < 0)
            return 0;
        for (int i = 0; i < 5; i++) {
            if (tb_rt_query_init(&base[i], pk, &versions[i], 1, nonce, 0) < 0)
                return 0;
        }
        ready = 1;
    }
    if (size < 1)
        return 0;
    unsigned v = data[0] % 5;
    data++;
    size--;
    tb_rt_response r;
    uint32_t ver;
    (void)tb_rt_response_version(data, size, &ver);
    if (tb_rt_response_parse(data, size, versions[v], &r) == 0 &&
        (r.path_len > 32 * 64 || r.nvers > TB_RT_MAX_VERSIONS))
        __builtin_trap();
    static tb_rt_query q;
    q = base[v];
    tb_rt_reason why;
    (void)tb_rt_verify(&q, data, size, 0, &why);
    return 0;
}
