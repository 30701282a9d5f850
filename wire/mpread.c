#include "wire/mpread.h"

#include "common/bytes.h"
#include "wire/wire.h"

static size_t left(const tb_mpr *r)
{
    return r->len - r->used;
}

/* Reads an n-byte big-endian unsigned value (n = 1, 2, 4 or 8) after skipping `skip` bytes. */
static int read_be(tb_mpr *r, size_t skip, size_t n, uint64_t *v)
{
    if (left(r) < skip || left(r) - skip < n)
        return TB_ERR_TRUNCATED;
    const uint8_t *q = r->p + r->used + skip;
    switch (n) {
    case 1:
        *v = q[0];
        break;
    case 2:
        *v = tb_get_be16(q);
        break;
    case 4:
        *v = tb_get_be32(q);
        break;
    default:
        *v = tb_get_be64(q);
        break;
    }
    r->used += skip + n;
    return 0;
}

/* Two's complement value of the low `bits` bits of x, without implementation-defined casts. */
static int64_t sign_extend(uint64_t x, unsigned bits)
{
    uint64_t sign = 1ULL << (bits - 1);
    if (x & sign)
        return -(int64_t)(~x & (sign - 1)) - 1;
    return (int64_t)x;
}

int tb_mpr_int_any(tb_mpr *r, tb_mpr_int *v)
{
    if (left(r) < 1)
        return TB_ERR_TRUNCATED;
    uint8_t b = r->p[r->used];
    *v = (tb_mpr_int){0, 0, 0};
    if (b <= 0x7f) {
        r->used++;
        v->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        r->used++;
        v->neg = 1;
        v->s = (int64_t)b - 256;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf)
        return read_be(r, 1, (size_t)1 << (b - 0xcc), &v->u);
    if (b >= 0xd0 && b <= 0xd3) {
        unsigned n = 1u << (b - 0xd0);
        uint64_t x;
        int rc = read_be(r, 1, n, &x);
        if (rc)
            return rc;
        int64_t s = sign_extend(x, 8 * n);
        if (s < 0) {
            v->neg = 1;
            v->s = s;
        } else {
            v->u = (uint64_t)s;
        }
        return 0;
    }
    return TB_ERR_WIRE_FIELD_TYPE;
}

int tb_mpr_uint(tb_mpr *r, uint64_t *v)
{
    tb_mpr_int x;
    int rc = tb_mpr_int_any(r, &x);
    if (rc)
        return rc;
    if (x.neg)
        return TB_ERR_WIRE_FIELD_TYPE;
    *v = x.u;
    return 0;
}

int tb_mpr_int64(tb_mpr *r, int64_t *v)
{
    tb_mpr_int x;
    int rc = tb_mpr_int_any(r, &x);
    if (rc)
        return rc;
    if (x.neg) {
        *v = x.s;
        return 0;
    }
    if (x.u > (uint64_t)INT64_MAX)
        return TB_ERR_WIRE_FIELD_TYPE;
    *v = (int64_t)x.u;
    return 0;
}

/* Reads a header whose count is in the low bits of a fix byte (fix_lo..fix_lo+fix_mask) or in a
 * 16/32-bit field after the byte b16/b32 (b32 = b16 + 1). */
static int read_count(tb_mpr *r, uint8_t fix_lo, uint8_t fix_mask, uint8_t b16, uint64_t *n)
{
    if (left(r) < 1)
        return TB_ERR_TRUNCATED;
    uint8_t b = r->p[r->used];
    if ((b & (uint8_t)~fix_mask) == fix_lo) {
        r->used++;
        *n = b & fix_mask;
        return 0;
    }
    if (b == b16)
        return read_be(r, 1, 2, n);
    if (b == b16 + 1)
        return read_be(r, 1, 4, n);
    return TB_ERR_WIRE_FIELD_TYPE;
}

static int check_count(const tb_mpr *r, uint64_t n, uint64_t per_elem, size_t max)
{
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (n * per_elem > left(r))
        return TB_ERR_TRUNCATED;
    return 0;
}

/* A map or array header; per_elem is how many values each counted element holds. */
static int read_container(tb_mpr *r, uint8_t fix_lo, uint8_t b16, uint64_t per_elem, size_t max,
                          size_t *n)
{
    uint64_t c;
    int rc = read_count(r, fix_lo, 0x0f, b16, &c);
    if (!rc)
        rc = check_count(r, c, per_elem, max);
    if (!rc)
        *n = (size_t)c;
    return rc;
}

int tb_mpr_map(tb_mpr *r, size_t max, size_t *n)
{
    return read_container(r, 0x80, 0xde, 2, max, n);
}

int tb_mpr_array(tb_mpr *r, size_t max, size_t *n)
{
    return read_container(r, 0x90, 0xdc, 1, max, n);
}

/* str and bin share a shape: a length header, then that many bytes. */
static int read_blob(tb_mpr *r, uint64_t n, size_t max, const uint8_t **data, size_t *out)
{
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (left(r) < n)
        return TB_ERR_TRUNCATED;
    *data = r->p + r->used;
    *out = (size_t)n;
    r->used += (size_t)n;
    return 0;
}

int tb_mpr_str(tb_mpr *r, size_t max, const uint8_t **data, size_t *n)
{
    if (left(r) < 1)
        return TB_ERR_TRUNCATED;
    uint8_t b = r->p[r->used];
    uint64_t c;
    int rc;
    if ((b & 0xe0) == 0xa0) {
        r->used++;
        c = b & 0x1f;
        rc = 0;
    } else if (b >= 0xd9 && b <= 0xdb) {
        rc = read_be(r, 1, (size_t)1 << (b - 0xd9), &c);
    } else {
        return TB_ERR_WIRE_FIELD_TYPE;
    }
    return rc ? rc : read_blob(r, c, max, data, n);
}

int tb_mpr_bin(tb_mpr *r, size_t max, const uint8_t **data, size_t *n)
{
    if (left(r) < 1)
        return TB_ERR_TRUNCATED;
    uint8_t b = r->p[r->used];
    if (b < 0xc4 || b > 0xc6)
        return TB_ERR_WIRE_FIELD_TYPE;
    uint64_t c;
    int rc = read_be(r, 1, (size_t)1 << (b - 0xc4), &c);
    return rc ? rc : read_blob(r, c, max, data, n);
}

/* Moves past n bytes. */
static int advance(tb_mpr *r, uint64_t n)
{
    if (left(r) < n)
        return TB_ERR_TRUNCATED;
    r->used += (size_t)n;
    return 0;
}

/* Skips the value that starts with byte b; adds the elements it contains to *pending. */
static int skip_one(tb_mpr *r, uint8_t b, uint64_t *pending)
{
    uint64_t n = 0;
    int rc;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1))
        return advance(r, 1);
    if (b <= 0x8f || (b >= 0xde && b <= 0xdf)) {
        rc = read_count(r, 0x80, 0x0f, 0xde, &n);
        if (rc) /* n is not set */
            return rc;
        *pending += 2 * n;
        return 0;
    }
    if (b <= 0x9f || (b >= 0xdc && b <= 0xdd)) {
        rc = read_count(r, 0x90, 0x0f, 0xdc, &n);
        if (rc)
            return rc;
        *pending += n;
        return 0;
    }
    if (b <= 0xbf)
        return advance(r, 1 + (uint64_t)(b & 0x1f));
    switch (b) {
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        rc = read_be(r, 1, (size_t)1 << (b - 0xc4), &n);
        return rc ? rc : advance(r, n);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, type byte, data */
        rc = read_be(r, 1, (size_t)1 << (b - 0xc7), &n);
        return rc ? rc : advance(r, 1 + n);
    case 0xca:
        return advance(r, 5);
    case 0xcb:
        return advance(r, 9);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        return advance(r, 1 + ((uint64_t)1 << (b - 0xcc)));
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return advance(r, 1 + ((uint64_t)1 << (b - 0xd0)));
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext 1..16 */
        return advance(r, 2 + ((uint64_t)1 << (b - 0xd4)));
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        rc = read_be(r, 1, (size_t)1 << (b - 0xd9), &n);
        return rc ? rc : advance(r, n);
    default: /* 0xc1 is never used */
        return TB_ERR_MALFORMED;
    }
}

int tb_mpr_skip(tb_mpr *r)
{
    /* Every value takes at least one byte, so the loop ends within len iterations and a
     * pending count larger than the bytes left is already a truncation. */
    uint64_t pending = 1;
    while (pending > 0) {
        pending--;
        if (left(r) < 1)
            return TB_ERR_TRUNCATED;
        int rc = skip_one(r, r->p[r->used], &pending);
        if (rc)
            return rc;
        if (pending > left(r))
            return TB_ERR_TRUNCATED;
    }
    return 0;
}
