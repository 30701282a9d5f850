/* libFuzzer: the Roughtime server-list parser (JSON as RFC 10049 and published lists write it).
 * Whatever it accepts must be an entry a client can use: a name, a supported version or 0, and
 * 1..TB_RT_LIST_ADDRS non-empty, terminated addresses. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "roughtime/codec.h"
#include "roughtime/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count(void *arg, const char *msg)
{
    if (!msg || !msg[0])
        __builtin_trap();
    (*(unsigned *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tb_rt_server_entry e[8];
    unsigned n = 0, skipped = 0, warned = 0;
    char err[200];
    if (sodium_init() < 0)
        return 0;
    int rc = tb_rt_server_list_parse((const char *)data, size, e, 8, &n, &skipped, count, &warned,
                                     err, sizeof(err));
    if (warned != skipped || n > 8 || (rc < 0 && !err[0]))
        __builtin_trap();
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (e[i].naddr < 1 || e[i].naddr > TB_RT_LIST_ADDRS ||
            (e[i].version && !tb_rt_profile_get(e[i].version)) ||
            memchr(e[i].name, 0, sizeof(e[i].name)) == NULL)
            __builtin_trap();
        for (unsigned a = 0; a < e[i].naddr; a++) {
            if (!e[i].address[a][0] || memchr(e[i].address[a], 0, sizeof(e[i].address[a])) == NULL)
                __builtin_trap();
        }
    }
    return 0;
}
