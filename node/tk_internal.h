/* Private to the time node (node/timekeeper.c, tk_*.c): its state, shared by the files it is
 * split into. */
#ifndef TB_NODE_TK_INTERNAL_H
#define TB_NODE_TK_INTERNAL_H

#include <ev.h>
#include <stdbool.h>

#include "certs/ca.h"
#include "crosscheck/hold.h"
#include "crosscheck/window.h"
#include "measure/measurement.h"
#include "measure/replay.h"
#include "node/control.h"
#include "node/timekeeper.h"
#include "node/tk_logic.h"
#include "roughtime/config.h"
#include "roughtime/udp.h"
#include "sources/sources.h"
#include "store/store.h"

#define TK_MAX_PEERS 128

/* The last verdict stored per source, so a verdict is stored when it changes, not every run. */
typedef struct tk_last_verdict {
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1];
    tb_xc_verdict_kind verdict;
} tk_last_verdict;

typedef struct tk_batch tk_batch; /* tk_gossip.c: own measurements waiting to be broadcast */

struct tb_timekeeper {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    const tb_node_config *cfg;
    tb_tk_options opt;
    tb_tk_config tc;
    tb_node *node;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    tb_store *store;
    tb_measure_replay *replay;
    tb_tk_evidence ev; /* set by the replay check's evidence callback */
    struct tb_resolver *resolver, *own_resolver, *thread_resolver;
    tb_source_env env;
    tb_sources *sources;
    tb_rt_config rtc;
    tb_rt_srv *rt_srv;
    tb_rt_udp *rt_udp;
    tb_xc_window *win; /* the newest verified measurements, for cross-check and status */
    tb_xc_result result;
    tb_xc_hold *hold; /* verdict stability across runs */
    tk_last_verdict *last_verdicts;
    size_t n_last_verdicts;
    uint8_t reported[TB_XC_MAX_VIOLATIONS][TB_MEASURE_RT_PK_LEN]; /* keys already reported */
    size_t n_reported;
    char bad_chain_origin[TB_MEASURE_MAX_ORIGIN + 1]; /* the last false chain claim, counted once */
    uint64_t bad_chain_seq;
    ev_timer xc_timer, peer_timer, prune_timer, batch_timer;
    tk_batch *batch;
    int64_t xc_last_ns; /* mono time of the last run */
    int64_t started_ns; /* real time at start: sources warm up from here (crosscheck.grace) */
    tb_tk_stats st;
    uint64_t malformed; /* wire envelopes that did not decode */
    int stopping;
    struct tb_http *http;   /* the operators' HTTP endpoint (node/tk_http.c), NULL when off */
    struct tb_h3 *h3;       /* the same routes over HTTP/3 on the mesh port (node/tk_http.c) */
    uint64_t start_mono_ns; /* for uptime */
};

/* timekeeper.c: the real clock; signs, stores, gossips and takes into the window one own
 * measurement (its seq is assigned here). */
int64_t tk_real_now(const tb_timekeeper *tk);
void tk_publish(tb_timekeeper *tk, tb_measurement *m);

/* timekeeper.c: takes a peer's measurement that passed the replay checks into the window. */
void tk_take(tb_timekeeper *tk, const tb_measurement *m);

/* tk_gossip.c: own measurements in batches (one broadcast per batch_interval_ms). add queues a
 * sealed one (sending the batch first when it is full); flush sends what waits; accept checks a
 * received batch (the accept_broadcast verdict: nonzero drops it). */
void tk_gossip_init(tb_timekeeper *tk);
void tk_gossip_add(tb_timekeeper *tk, uint64_t seq, const uint8_t *body, size_t len,
                   const uint8_t sig[TB_MEASURE_SIG_LEN]);
void tk_gossip_flush(tb_timekeeper *tk);
void tk_gossip_free(tb_timekeeper *tk);
int tk_gossip_accept(tb_timekeeper *tk, const char *origin, const uint8_t *payload, size_t len);

/* tk_peers.c: mesh peers as sources (PEER measurements every peer_interval, base_ns, paced for
 * the mesh's size: every_ns, node/pace.h) and their frame for the cross-check. start (re)arms
 * the timer with every_ns. */
void tk_peers_init(tb_timekeeper *tk);
void tk_peers_start(tb_timekeeper *tk);
uint64_t tk_peers_base_ns(const tb_timekeeper *tk);
uint64_t tk_peers_every_ns(const tb_timekeeper *tk);
/* xp[0] is this node; then each connected peer with an estimate (ps: TK_MAX_PEERS scratch,
 * xp: TK_MAX_PEERS + 1). Returns the count. */
size_t tk_peers_xc(const tb_timekeeper *tk, tb_node_peer_status *ps, tb_xc_peer *xp, int64_t now);

/* tk_report.c: reports the violations of tk->result not reported before (once per key). */
void tk_report_violations(tb_timekeeper *tk, int64_t now);

/* tk_status.c; the measurement drop reasons as JSON keys and metric labels (measure/replay.h
 * order). */
void tk_status(void *arg, tb_control_buf *b, int json);
extern const char *const tk_drop_keys[TB_MEASURE_DROP_COUNT];

/* tk_regions.c: what the regions' newest measurements of each source say, in this node's frame
 * (offset + the origin's PING/PONG offset, bound + its uncertainty), for status, metrics and the
 * dashboard. A view is taken once per answer and holds the peer frame and the window's input. */
#define TK_REGIONS_MAX 64
typedef struct tk_view {
    tb_node_peer_status *ps; /* TK_MAX_PEERS */
    tb_xc_peer *xp;          /* TK_MAX_PEERS + 1; xp[0] is this node */
    size_t n_xp;
    tb_xc_obs *obs;
    size_t n_obs;
    int64_t now_ns;
} tk_view;
typedef struct tk_region_obs {
    const char *region, *origin; /* valid while the view is */
    int64_t offset_ns, bound_ns;
    int64_t age_ns; /* since the origin took it, by this node's clock */
    int agrees;     /* 1: meets the consensus interval, 0: misses it, -1: no consensus */
} tk_region_obs;
TB_WUR int tk_view_open(const tb_timekeeper *tk, tk_view *v);
void tk_view_close(tk_view *v);
/* The newest fresh measurement of (kind, source) per region, sorted by region name. */
size_t tk_view_regions(const tb_timekeeper *tk, const tk_view *v, tb_measure_kind kind,
                       const char *source, tk_region_obs *out, size_t max);

/* tk_http.c: the `http` group; opens the endpoint when configured (before privileges drop). */
TB_WUR int tk_http_open(tb_timekeeper *tk);
/* tk_metrics.c: the Prometheus text exposition of /metrics into b. */
void tk_metrics(const tb_timekeeper *tk, tb_control_buf *b);
/* tk_evidence.c: the control requests "evidence ..." (the control_ext hook, node/node.h). */
int tk_evidence_control(void *arg, const char *line, tb_control_buf *b);
/* The command that exports the evidence behind v ("tbnode evidence export --verdict ntp/x"),
 * for status and metrics. */
void tk_evidence_command(const tb_timekeeper *tk, const tb_xc_verdict *v, char *buf, size_t cap);

#endif
