/* common/arith: saturating 64-bit arithmetic for numbers that come from peers (measurements,
 * Roughtime times): a result that does not fit is clamped to INT64_MIN / INT64_MAX instead of
 * being undefined behaviour. Callers that must refuse such a value use the checked forms
 * (__builtin_*_overflow) directly. */
#ifndef TB_COMMON_ARITH_H
#define TB_COMMON_ARITH_H

#include <stdint.h>

static inline int64_t tb_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t tb_sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* |a|, with |INT64_MIN| clamped to INT64_MAX. */
static inline int64_t tb_sat_abs(int64_t a)
{
    return a == INT64_MIN ? INT64_MAX : (a < 0 ? -a : a);
}

#endif
