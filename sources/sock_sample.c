#include "sources/sock_sample.h"

#include <string.h>

/* The writer is a local process using its own struct: native byte order, read through memcpy
 * so alignment never matters. */
static int64_t get_i64(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static int32_t get_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

int tb_sock_sample_parse(const uint8_t *p, size_t len, tb_sock_sample *out)
{
    if (len != TB_SOCK_SAMPLE_LEN)
        return TB_ERR_MALFORMED;
    if ((uint32_t)get_i32(p + 36) != TB_SOCK_MAGIC)
        return TB_ERR_MALFORMED;
    int64_t sec = get_i64(p), usec = get_i64(p + 8);
    /* 2^33 s (year 2242) keeps sec·1e9 far inside int64. */
    if (sec < 0 || sec >= (INT64_C(1) << 33) || usec < 0 || usec >= 1000000)
        return TB_ERR_MALFORMED;
    double off;
    memcpy(&off, p + 16, sizeof(off));
    if (!(off >= -TB_SOCK_MAX_OFFSET_S && off <= TB_SOCK_MAX_OFFSET_S)) /* NaN fails too */
        return TB_ERR_MALFORMED;
    int32_t leap = get_i32(p + 28);
    if (leap < 0 || leap > 2)
        return TB_ERR_MALFORMED;
    /* chrony's offset is true time − system time: already adr/0008's source − local. */
    out->real_ns = sec * INT64_C(1000000000) + usec * 1000;
    double ns = off * 1e9; /* |ns| ≤ 1e15: exact enough and far inside int64 */
    out->offset_ns = (int64_t)(ns < 0 ? ns - 0.5 : ns + 0.5);
    out->pulse = get_i32(p + 24) != 0;
    out->leap = leap;
    return 0;
}
