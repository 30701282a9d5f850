/* libFuzzer target for the cross-check fed hostile measurement sequences: the input is a list
 * of 48-byte records, each a verified-looking measurement of one of 8 sources by one of 5
 * nodes (kind, leap, stratum, real time, offset, delay, bound, Roughtime MIDP/RADI taken from
 * the bytes: extreme values and series that contradict themselves), going through the window
 * (crosscheck/window.h, with its regression) as the time node's does; a record's last byte can
 * trigger a run of tb_xc_run and the verdict hold at a time the bytes choose. The peers' offsets
 * come from the first 40 bytes. Whatever the input: every run succeeds, its verdicts and
 * findings are well-formed, the estimate's interval is ordered, and the hold keeps since-when
 * in the past. Only what the receiver admits goes in (tb_measure_range_error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arith.h"
#include "common/bytes.h"
#include "crosscheck/crosscheck.h"
#include "crosscheck/hold.h"
#include "crosscheck/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NODES 5
#define REC 48
static const char *names[NODES] = {"a", "b", "c", "d", "e"};
static const char *regions[NODES] = {"eu", "us", "eu", "ap", "sa"};
static const char *sources[8] = {"n1", "n2", "n3", "n4", "r1", "r2", "b", "c"};
static const int64_t T0 = INT64_C(1763700000) * 1000000000;

static int64_t i64(const uint8_t *p)
{
    return (int64_t)tb_get_be64(p);
}

static void check_result(const tb_xc_result *r, int64_t now)
{
    for (size_t i = 0; i < r->n_verdicts; i++) {
        const tb_xc_verdict *v = &r->verdicts[i];
        if ((unsigned)v->verdict > TB_XC_UNSYNCHRONISED || v->n_refs > TB_XC_MAX_REFS ||
            v->since_ns > now || memchr(v->reason, 0, sizeof(v->reason)) == NULL)
            abort();
        if (v->has_interval && v->lo_ns > v->hi_ns)
            abort();
    }
    if (r->estimate.valid && (r->estimate.lo_ns > r->estimate.hi_ns || r->estimate.uncert_ns < 0))
        abort();
    if (r->n_findings > TB_XC_MAX_FINDINGS)
        abort();
    for (size_t i = 0; i < r->n_findings; i++)
        if ((unsigned)r->findings[i].kind >= TB_XC_FINDING_KINDS || r->findings[i].n_refs > 2)
            abort();
}

static void run(tb_xc_window *w, tb_xc_hold *h, const tb_xc_peer *peers, int64_t now)
{
    static const tb_xc_source known[] = {{TB_MEASURE_NTP, "n1"}, {TB_MEASURE_ROUGHTIME, "r1"}};
    tb_xc_obs *obs = NULL;
    size_t n = 0;
    if (tb_xc_window_inputs(w, &obs, &n) != TB_OK)
        abort();
    tb_xc_input in = {.peers = peers,
                      .n_peers = NODES,
                      .obs = obs,
                      .n_obs = n,
                      .known = known,
                      .n_known = 2,
                      .now_ns = now,
                      .started_ns = T0,
                      .self = "a",
                      .hold = h};
    tb_xc_config cfg = tb_xc_config_default();
    cfg.grace_ns = 5 * INT64_C(1000000000);
    tb_xc_result r;
    if (tb_xc_run(&cfg, &in, &r) != TB_OK || tb_xc_hold_apply(h, 2, now, &r) != TB_OK)
        abort();
    check_result(&r, now);
    tb_xc_result_clear(&r);
    free(obs);
}

static void record(tb_xc_window *w, tb_xc_hold *h, const tb_xc_peer *peers, const uint8_t *p,
                   uint64_t *seq, int64_t *now)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    int node = p[0] % NODES, src = p[1] % 8;
    snprintf(m.origin, sizeof(m.origin), "%s", names[node]);
    snprintf(m.source_name, sizeof(m.source_name), "%s", sources[src]);
    m.kind = src < 4 ? TB_MEASURE_NTP : src < 6 ? TB_MEASURE_ROUGHTIME : TB_MEASURE_PEER;
    if (m.kind == TB_MEASURE_NTP) {
        m.leap = p[2] & 3;
        m.stratum = p[3];
    }
    m.seq = ++seq[node];
    /* small steps around T0 most of the time, anything when the top bit says so */
    int64_t dt = i64(p + 4);
    m.real_ns = p[2] & 0x80 ? dt : T0 + (dt % (INT64_C(1) << 40));
    m.offset_ns = i64(p + 12) >> (p[2] & 0x40 ? 0 : 24);
    m.delay_ns = (int64_t)(tb_get_be64(p + 20) >> 34);
    m.bound_ns = (int64_t)(tb_get_be64(p + 28) >> (p[2] & 0x20 ? 3 : 30));
    if (tb_measure_range_error(&m) != NULL)
        return;
    bool has_rt = m.kind == TB_MEASURE_ROUGHTIME && (p[2] & 0x10);
    int64_t midp = i64(p + 36) >> 8, radi = (int64_t)(tb_get_be32(p + 44) & 0x7fffffff) * 1000;
    if (has_rt)
        memset(m.rt_pubkey, src, sizeof(m.rt_pubkey));
    tb_xc_window_add(w, &m, node == 0, has_rt, midp, radi);
    if (p[47] & 1) {
        *now = tb_sat_add(*now, (int64_t)(p[47] >> 1) * 1000000000);
        run(w, h, peers, *now);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 40)
        return 0;
    tb_xc_peer peers[NODES];
    for (int i = 0; i < NODES; i++)
        peers[i] = (tb_xc_peer){names[i],
                                regions[i],
                                i ? i64(data + 8 * i) >> 20 : 0,
                                i ? (int64_t)(tb_get_be64(data + 8 * i) >> 40) : 0,
                                T0,
                                i == 0};
    tb_xc_window *w = tb_xc_window_new();
    tb_xc_hold *h = tb_xc_hold_new();
    if (!w || !h)
        abort();
    uint64_t seq[NODES] = {0};
    int64_t now = T0;
    for (size_t off = 40; size - off >= REC; off += REC)
        record(w, h, peers, data + off, seq, &now);
    run(w, h, peers, now);
    tb_xc_window_free(w);
    tb_xc_hold_free(h);
    return 0;
}
