/* The per-node cost run of sim/mesh.h (tb_simmesh_cost), on the mesh driver's public API. */
#include <string.h>

#include "common/clock.h"
#include "node/pace.h"
#include "sim/mesh.h"

/* crosscheck.peer_interval's default: how often a node samples and broadcasts its peers
 * unpaced (node/pace.h paces it) */
#define PERIODIC_BASE_NS (16 * TB_NS_PER_SEC)
#define FORMED_NS (25 * TB_NS_PER_SEC) /* joins over 10 s, every ALIVE again by 15 s */
#define SETTLE_NS (5 * TB_NS_PER_SEC)

static void acc(double *sum, double *max, double v)
{
    *sum += v;
    if (v > *max)
        *max = v;
}

/* Per live node per second of the window: summed here, divided into means below. */
static void rates(const tb_simmesh *m, tb_simmesh_cost_report *out)
{
    double secs = (double)out->window_ns / 1e9;
    unsigned live = 0;
    for (unsigned i = 0; i < out->n; i++) {
        if (!tb_simmesh_is_live(m, i))
            continue;
        tb_simmesh_rx r;
        uint64_t all = 0;
        tb_simmesh_rx_get(m, i, &r);
        for (int k = 0; k < TB_SIMMESH_RX_KINDS; k++) {
            acc(&out->mean[k], &out->max[k], (double)r.msgs[k] / secs);
            all += r.msgs[k];
        }
        acc(&out->bcast_ihave_mean, &out->bcast_ihave_max,
            (double)(r.msgs[TB_SIMMESH_RX_BCAST] + r.msgs[TB_SIMMESH_RX_IHAVE]) / secs);
        acc(&out->total_mean, &out->total_max, (double)all / secs);
        acc(&out->bytes_mean, &out->bytes_max, (double)r.bytes / secs);
        out->delivered_mean += (double)r.delivered / secs;
        live++;
    }
    if (!live)
        return;
    for (int k = 0; k < TB_SIMMESH_RX_KINDS; k++)
        out->mean[k] /= live;
    out->bcast_ihave_mean /= live;
    out->total_mean /= live;
    out->bytes_mean /= live;
    out->delivered_mean /= live;
}

int tb_simmesh_cost(unsigned n, uint64_t seed, bool paced, uint64_t min_window_ns,
                    tb_simmesh_cost_report *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    out->paced = paced;
    out->every_ns = paced ? tb_pace_every_ns(PERIODIC_BASE_NS, n) : PERIODIC_BASE_NS;
    uint64_t k = (min_window_ns + out->every_ns - 1) / out->every_ns;
    out->window_ns = (k < 4 ? 4 : k) * out->every_ns;
    tb_simmesh_config cfg;
    tb_simmesh *m;
    tb_simmesh_config_default(&cfg, n, seed);
    int rc = tb_simmesh_new(&cfg, &m);
    if (rc)
        return rc;
    tb_simmesh_run_until(m, FORMED_NS);
    tb_simmesh_periodic(m, PERIODIC_BASE_NS, paced);
    /* One interval for every origin's first broadcast (its tree pruned), then whole intervals:
     * each origin sends exactly window / every in the window, whatever its phase. */
    uint64_t t0 = FORMED_NS + out->every_ns;
    tb_simmesh_run_until(m, t0);
    tb_simmesh_rx_reset(m);
    tb_simmesh_run_until(m, t0 + out->window_ns);
    rates(m, out);
    tb_simmesh_periodic_stop(m);
    tb_simmesh_run_until(m, t0 + out->window_ns + SETTLE_NS);
    out->unreached = tb_simmesh_periodic_unreached(m);
    tb_simmesh_free(m);
    return 0;
}
