/* sim/time_internal: what the time simulator's files share (sim/time.c, the NTP side, the
 * network, the observers; sim/time_rt.c, the Roughtime servers, clients and the framing
 * attack). Not a public interface: see sim/time.h. */
#ifndef TB_SIM_TIME_INTERNAL_H
#define TB_SIM_TIME_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "crosscheck/crosscheck.h"
#include "crosscheck/hold.h"
#include "crosscheck/window.h"
#include "measure/replay.h"
#include "node/tk_logic.h"
#include "ntp/client.h"
#include "sim/sim.h"
#include "sim/time.h"
#include "sources/source.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL
static const int64_t T0 = INT64_C(1765000000) * SEC; /* Unix time of virtual 0 */
#define WANDER_STEP (1000 * SEC) /* a clock's frequency takes a random step this often */
#define SERVER_NOISE (20 * US)   /* an honest server's own error, uniform in ± */
#define SERVER_PROC (30 * US)    /* between its receive and transmit stamps */
#define BATCH_NS (1 * SEC)       /* the node's batch_interval_ms default */
#define RTO_NS (200 * MS)        /* a reliable message's retransmission timeout (adr/0012) */
#define FLOOD_EVIDENCE 2048      /* bytes of request and of response in a flood measurement */
#define MAX_SRC (TB_SIMTIME_MAX_SOURCES + TB_SIMTIME_INVENTED)

typedef struct clk {
    int64_t t_last, off_last; /* true time of the last wander step, error then */
    double freq_ppb;
} clk;

typedef struct node node;
typedef struct tb_simrt_assoc tb_simrt_assoc; /* sim/time_rt.c */
typedef struct tb_simrt tb_simrt;

typedef struct assoc {
    node *n;
    unsigned src;
    tb_source_id id;
    tb_ntp_client c;
    bool lies;       /* the lying member answers this association itself, +attack_offset */
    int64_t asym;    /* fraction of the path in ppm the request leg is longer, fixed per pair */
    uint64_t polled; /* the poll event due (virtual ns) */
} assoc;

typedef struct item {
    uint64_t seq;
    uint8_t *body;
    size_t len;
    uint8_t sig[TB_MEASURE_SIG_LEN];
} item;

typedef struct batch {
    unsigned from;
    item *items;
    size_t n;
    unsigned refs;
} batch;

/* What one observer saw of one source. */
typedef struct tally {
    int shown; /* the shown verdict of the last run, -1 before */
    bool judged;
    unsigned changes;    /* after first judged */
    int64_t first_flag;  /* true time of the first flag after the source began to lie, -1 */
    int64_t poll_at_lie; /* the observer's own poll interval of the source when it began */
    unsigned unflagged;
    uint64_t wrong_runs;
    bool accused;
} tally;

struct node {
    struct run *r;
    unsigned idx, region;
    char name[32], region_name[16];
    clk clock;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    uint64_t seq;
    assoc *as;
    size_t n_as;
    item *pending;
    size_t n_pending, cap_pending;
    bool flush_armed;
    /* an observer judges */
    bool observer;
    tb_measure_replay *replay;
    tb_xc_window *win;
    tb_xc_hold *hold;
    tb_tk_evidence ev;
    int64_t started_local;
    int64_t last_run, timer_at; /* virtual ns; timer_at INT64_MAX when none */
    uint64_t timer_gen;
    tally t[MAX_SRC];
    bool named_liar;
    /* Roughtime (sim/time_rt.c): its associations, and as an observer the keys it reported
     * (once each, as node/tk_report.c) and the last false chain claim it counted */
    tb_simrt_assoc *rts;
    size_t n_rts;
    uint8_t rt_reported[TB_XC_MAX_VIOLATIONS][TB_MEASURE_RT_PK_LEN];
    size_t n_rt_reported;
    char rt_bad_origin[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t rt_bad_seq;
};

typedef struct run {
    const tb_simtime_scenario *s;
    tb_sim *sim;
    node *nodes;
    unsigned n_nodes;
    tb_simtime_source srcs[MAX_SRC];
    unsigned n_srcs, n_known;
    tb_xc_source known[MAX_SRC];
    tb_simtime_result *res;
    double err_sum;
    int failed;
    bool trace;   /* TB_SIM_TIME_TRACE: every shown verdict change to stderr */
    tb_simrt *rt; /* the Roughtime servers and the evidence kept for reports */
} run;

/* sim/time.c, for sim/time_rt.c: */
int64_t tb_simtime_uniform(run *r, int64_t half);                 /* uniform in [-half, half] */
int64_t tb_simtime_now(const run *r);                             /* true time */
int64_t tb_simtime_local(run *r, node *n);                        /* the node's clock now */
int64_t tb_simtime_path_ns(const run *r, unsigned a, unsigned b); /* one way, no jitter */
int64_t tb_simtime_jitter(run *r);
bool tb_simtime_lost(run *r);
void tb_simtime_sched(run *r, uint64_t when, tb_sim_fn fn, void *arg, tb_sim_drop_fn drop);
/* Seals m (seq assigned) and sends it as the node does. */
void tb_simtime_publish(run *r, node *n, tb_measurement *m);
/* Observer o found `kind` against member origin (about source, why): tallied as naming the
 * lying member or an honest one. */
void tb_simtime_finding(run *r, node *o, const char *origin, int kind, const char *source,
                        const char *why);
int tb_simtime_src_index(const run *r, const char *name);

/* sim/time_rt.c: Roughtime servers that sign real responses (roughtime/server.h, keys from the
 * scenario's seed, MIDP from the virtual clock), clients measuring through the real client
 * (roughtime/verify.h and the source driver's rules, sources/rt_driver.h), the framing attack,
 * and the observers' malfeasance reports as node/tk_report.c makes them. */
TB_WUR int tb_simrt_new(run *r);
void tb_simrt_free(run *r);
/* Node n measures Roughtime source k (polls scheduled). */
TB_WUR int tb_simrt_add_assoc(run *r, node *n, unsigned k);
void tb_simrt_free_node(node *n);
/* n's current poll interval of source k, ns; 0 when it does not measure it. */
int64_t tb_simrt_poll_ns(const node *n, unsigned k);
/* Keeps the body of n's Roughtime measurement seq (what the node's store holds for reports). */
void tb_simrt_keep(run *r, node *n, uint64_t seq, const uint8_t *body, size_t len);
/* Observer o's run found x: each violation becomes a malfeasance report when the claimed chain
 * holds on the packets, else a finding against the member (node/tk_report.c's rule). */
void tb_simrt_violations(run *r, node *o, const tb_xc_result *x);

#endif
