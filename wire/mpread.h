/* A bounded reader for the subset of msgpack the wire format uses (private to wire/).
 *
 * Why not msgpack_unpack_next(): msgpack-c's unpacker allocates an array or map's element
 * storage from the count announced in its header before any element is read, so five bytes
 * (array32 of 2^32-1) ask for ~100 GB, and a 64 KiB message can nest such claims. This reader
 * builds no object tree: the decoder pulls one typed value at a time, every count is checked
 * against its cap and against the bytes left before anything is allocated, and unknown values
 * are skipped with a counter instead of recursion. */
#ifndef TB_WIRE_MPREAD_H
#define TB_WIRE_MPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct tb_mpr {
    const uint8_t *p;
    size_t len;
    size_t used;
} tb_mpr;

/* An integer of any msgpack integer encoding. */
typedef struct tb_mpr_int {
    int neg; /* 1 when the value is negative (then it is in s), else it is in u */
    uint64_t u;
    int64_t s;
} tb_mpr_int;

/* Each returns 0, TB_ERR_TRUNCATED when the input ends inside the value, TB_ERR_WIRE_FIELD_TYPE
 * when the value is of another msgpack type, TB_ERR_TOO_BIG when a length or count exceeds max. */
TB_WUR int tb_mpr_int_any(tb_mpr *r, tb_mpr_int *v);
TB_WUR int tb_mpr_uint(tb_mpr *r, uint64_t *v);
TB_WUR int tb_mpr_int64(tb_mpr *r, int64_t *v);
/* Map and array headers: the count is also checked against the bytes left (every element takes
 * at least one byte), so a count that cannot be true fails before the caller allocates. */
TB_WUR int tb_mpr_map(tb_mpr *r, size_t max, size_t *n);
TB_WUR int tb_mpr_array(tb_mpr *r, size_t max, size_t *n);
/* str and bin: *data points into the input, valid while the input is. */
TB_WUR int tb_mpr_str(tb_mpr *r, size_t max, const uint8_t **data, size_t *n);
TB_WUR int tb_mpr_bin(tb_mpr *r, size_t max, const uint8_t **data, size_t *n);
/* Skips one value of any type, nested ones included; TB_ERR_MALFORMED for the unused 0xc1. */
TB_WUR int tb_mpr_skip(tb_mpr *r);

#endif
