/* Feeds arbitrary datagrams to the SOCK refclock sample parser; an accepted sample must lie
 * inside the ranges the parser promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sources/sock_sample.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_sock_sample s;
    if (tb_sock_sample_parse(data, size, &s) != 0)
        return 0;
    if (size != TB_SOCK_SAMPLE_LEN || s.real_ns < 0 || s.leap < 0 || s.leap > 2 ||
        s.offset_ns > INT64_C(1000000000000000) || s.offset_ns < -INT64_C(1000000000000000))
        abort();
    return 0;
}
