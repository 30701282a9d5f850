/* What a SOCK refclock writer (gpsd) sends: chrony's struct sock_sample as a 64-bit build lays
 * it out (sources/sock_sample.h), written field by field by the tests, independent of the
 * parser. Static in a header: each test includes it once. */
#ifndef TB_TESTS_SUPPORT_SOCK_PUT_H
#define TB_TESTS_SUPPORT_SOCK_PUT_H

#include <stdint.h>
#include <string.h>

static inline void tb_test_sock_put(uint8_t b[40], int64_t sec, int64_t usec, double offset,
                                    int32_t pulse, int32_t leap, uint32_t magic)
{
    int32_t pad = 0;
    memcpy(b, &sec, 8);
    memcpy(b + 8, &usec, 8);
    memcpy(b + 16, &offset, 8);
    memcpy(b + 24, &pulse, 4);
    memcpy(b + 28, &leap, 4);
    memcpy(b + 32, &pad, 4);
    memcpy(b + 36, &magic, 4);
}

#endif
