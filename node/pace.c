#include "node/pace.h"

#include <math.h>

uint64_t tb_pace_gap_ns(uint64_t base_ns, size_t n)
{
    if (n < 2)
        return base_ns ? base_ns : 1;
    double g = (double)base_ns * (double)n / (TB_PACE_PER_LOG * log2((double)n));
    if (g >= 0x1p63)
        return UINT64_MAX / 2;
    return g < 1. ? 1 : (uint64_t)g;
}

uint64_t tb_pace_every_ns(uint64_t base_ns, size_t n)
{
    uint64_t g = tb_pace_gap_ns(base_ns, n);
    return g > base_ns ? g : base_ns;
}
