/* Mesh v2 at 100, 300 and 1,000 simulated nodes (issue 10; ADR 0012): the scenario of
 * tb_simmesh_scenario, printed as a table. Reported, never gated. Set BENCH_MESH_MAX to stop
 * earlier (e.g. 300). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sim/mesh.h"

int main(void)
{
    const unsigned sizes[] = {100, 300, 1000};
    const char *env = getenv("BENCH_MESH_MAX");
    unsigned max = env ? (unsigned)strtoul(env, NULL, 10) : 1000;
    printf("%6s %10s %8s %10s %10s %12s %9s %8s\n", "N", "redundancy", "max hop", "detect s",
           "heal s", "msgs/node/s", "active", "CPU s");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && sizes[i] <= max; i++) {
        tb_simmesh_report r;
        clock_t c0 = clock();
        if (tb_simmesh_scenario(sizes[i], 1, &r)) {
            fprintf(stderr, "bench_mesh: scenario of %u nodes failed\n", sizes[i]);
            return 1;
        }
        char heal[32];
        if (r.heal_ns)
            snprintf(heal, sizeof(heal), "%.2f", (double)r.heal_ns / 1e9);
        else
            snprintf(heal, sizeof(heal), "> 20 (%llu)", (unsigned long long)r.heal_errors_left);
        printf("%6u %10.3f %8u %10.2f %10s %12.1f %5u..%-3u %8.1f\n", r.n, r.redundancy, r.max_hops,
               (double)r.detect_ns / 1e9, heal, r.msgs_per_node_s, r.active_min, r.active_max,
               (double)(clock() - c0) / CLOCKS_PER_SEC);
        fflush(stdout);
    }
    return 0;
}
