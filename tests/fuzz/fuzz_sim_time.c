/* The time simulator's scenario parser (sim/time.h) on arbitrary text: bounded, never crashes,
 * and what it accepts is a scenario the simulator takes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sim/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_simtime_scenario s;
    char err[256];
    if (tb_simtime_parse((const char *)data, size, &s, err, sizeof(err)) != TB_OK)
        return 0;
    if (s.regions * s.per_region > TB_SIMTIME_MAX_NODES || s.n_sources == 0 ||
        s.minpoll > s.maxpoll)
        abort();
    return 0;
}
