/* Mesh v2 on the simulator (issue 10; ADR 0012), printed as tables, reported, never gated:
 * - the scenario of tb_simmesh_scenario at 100, 300 and 1,000 nodes (BENCH_MESH_MAX stops
 *   earlier, e.g. 300);
 * - the per-node cost of tb_simmesh_cost (ADR 0010, "Pacing") at 10..1,000 nodes, paced and
 *   unpaced: what one node receives per second, by kind, and bcast+IHAVE against N = 10 beside
 *   log2 N / log2 10 (BENCH_MESH_COST_MAX stops earlier).
 * `bench_mesh scenario` or `bench_mesh cost` prints one of them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/mesh.h"

static unsigned env_max(const char *name)
{
    const char *env = getenv(name);
    return env ? (unsigned)strtoul(env, NULL, 10) : 1000;
}

static int scenario_table(void)
{
    const unsigned sizes[] = {100, 300, 1000};
    unsigned max = env_max("BENCH_MESH_MAX");
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

static void cost_header(void)
{
    printf("\nper-node cost: messages received per node per second (mean over nodes), a broadcast "
           "from every node every 16 s, paced (node/pace.h) or not\n");
    printf("%5s %5s %6s %6s", "N", "paced", "every", "window");
    for (int k = 0; k < TB_SIMMESH_RX_KINDS; k++)
        printf(" %6s", tb_simmesh_rx_name((tb_simmesh_rx_kind)k));
    printf(" %7s %7s %7s %7s %6s %6s %6s %6s %5s %6s\n", "b+i", "b+i max", "all", "all max", "KB/s",
           "KB max", "ratio", "log2r", "unrch", "CPU s");
}

static void cost_row(const tb_simmesh_cost_report *r, double base, double cpu)
{
    printf("%5u %5s %6.1f %6.0f", r->n, r->paced ? "yes" : "no", (double)r->every_ns / 1e9,
           (double)r->window_ns / 1e9);
    for (int k = 0; k < TB_SIMMESH_RX_KINDS; k++)
        printf(" %6.2f", r->mean[k]);
    printf(" %7.2f %7.2f %7.2f %7.2f %6.1f %6.1f %6.2f %6.2f %5llu %6.1f\n", r->bcast_ihave_mean,
           r->bcast_ihave_max, r->total_mean, r->total_max, r->bytes_mean / 1e3, r->bytes_max / 1e3,
           r->bcast_ihave_mean / base, log2(r->n) / log2(10), (unsigned long long)r->unreached,
           cpu);
    fflush(stdout);
}

static int cost_table(void)
{
    const unsigned sizes[] = {10, 30, 60, 100, 300, 1000};
    unsigned max = env_max("BENCH_MESH_COST_MAX");
    cost_header();
    for (int paced = 1; paced >= 0; paced--) {
        double base = 0;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && sizes[i] <= max; i++) {
            tb_simmesh_cost_report r;
            clock_t c0 = clock();
            if (tb_simmesh_cost(sizes[i], 1, paced, 600ULL * 1000000000ULL, &r)) {
                fprintf(stderr, "bench_mesh: cost run of %u nodes failed\n", sizes[i]);
                return 1;
            }
            if (i == 0)
                base = r.bcast_ihave_mean;
            cost_row(&r, base, (double)(clock() - c0) / CLOCKS_PER_SEC);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : "";
    if (strcmp(only, "cost") != 0 && scenario_table())
        return 1;
    if (strcmp(only, "scenario") != 0 && cost_table())
        return 1;
    return 0;
}
