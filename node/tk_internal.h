/* Private to the time node (node/timekeeper.c, tk_*.c): its state, shared by the files it is
 * split into. */
#ifndef TB_NODE_TK_INTERNAL_H
#define TB_NODE_TK_INTERNAL_H

#include <ev.h>
#include <stdbool.h>

#include "certs/ca.h"
#include "measure/keycache.h"
#include "measure/measurement.h"
#include "measure/replay.h"
#include "node/control.h"
#include "node/timekeeper.h"
#include "roughtime/config.h"
#include "roughtime/udp.h"
#include "sources/sources.h"
#include "store/store.h"

/* What the cross-check and the status need of the verified measurements (own and peers') is
 * kept in memory, without evidence and without history: the newest per (origin, kind, source,
 * address), and per Roughtime source the newest TB_XC_MAX_RT_PER_SERVER re-verified responses
 * for the causality check. The history, evidence included, is in the store (a malfeasance report
 * reads its two responses from there). Both tables are capped; when full, the entry updated
 * longest ago gives way. */
#define TK_MAX_SERIES 4096
#define TK_MAX_RT_SOURCES 64
#define TK_MAX_PEERS 128
/* Origin keys from verified certificates (measure/keycache.h): one per mesh node is enough. */
#define TK_KEYCACHE 256

/* One verified measurement, its evidence left in the store. */
typedef struct tk_obs {
    uint64_t id; /* arrival order (1, 2, ...): newest is highest */
    uint64_t seq;
    int64_t real_ns, offset_ns, delay_ns, bound_ns;
    bool has_rt; /* Roughtime response re-verified: key, midp, radi below */
    uint8_t rt_pubkey[TB_MEASURE_RT_PK_LEN];
    int64_t midp_ns, radi_ns;
} tk_obs;

typedef struct tk_series {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1], addr[TB_MEASURE_MAX_TEXT + 1];
    bool own;
    tk_obs last;
} tk_series;

typedef struct tk_rt_entry {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    tk_obs o;
} tk_rt_entry;

/* A ring, oldest replaced first, grown up to TB_XC_MAX_RT_PER_SERVER entries. */
typedef struct tk_rt_ring {
    char source[TB_MEASURE_MAX_TEXT + 1];
    tk_rt_entry *e;
    size_t cap, next, count;
    uint64_t touched; /* id of the newest entry */
} tk_rt_ring;

typedef struct tk_window {
    tk_series *series;
    size_t n_series, cap_series;
    tk_rt_ring *rings;
    size_t n_rings;
    uint64_t next_id;
} tk_window;

/* What the evidence check found for the measurement being accepted (Roughtime: MIDP, RADI). */
typedef struct tk_evidence {
    bool has_rt;
    int64_t midp_ns, radi_ns;
} tk_evidence;

/* The last verdict stored per source, so a verdict is stored when it changes, not every run. */
typedef struct tk_last_verdict {
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1];
    tb_xc_verdict_kind verdict;
} tk_last_verdict;

struct tb_timekeeper {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    const tb_node_config *cfg;
    tb_tk_options opt;
    tb_tk_config tc;
    tb_node *node;
    tb_ca *ca;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    tb_store *store;
    tb_measure_replay *replay;
    tb_measure_keycache *keys;
    tk_evidence ev; /* set by the replay check's evidence callback */
    struct tb_resolver *resolver, *own_resolver, *thread_resolver;
    tb_source_env env;
    tb_sources *sources;
    tb_rt_config rtc;
    tb_rt_srv *rt_srv;
    tb_rt_udp *rt_udp;
    tk_window win;
    tb_xc_result result;
    tk_last_verdict *last_verdicts;
    size_t n_last_verdicts;
    uint8_t reported[TB_XC_MAX_VIOLATIONS][TB_MEASURE_RT_PK_LEN]; /* keys already reported */
    size_t n_reported;
    ev_timer xc_timer, peer_timer, prune_timer;
    int64_t xc_last_ns; /* mono time of the last run */
    tb_tk_stats st;
    uint64_t malformed; /* wire envelopes that did not decode */
    int stopping;
};

/* tk_window.c */
/* Takes a verified measurement (has_rt: its Roughtime response re-verified, midp/radi set). */
void tk_window_add(tk_window *w, const tb_measurement *m, bool own, bool has_rt, int64_t midp_ns,
                   int64_t radi_ns);
/* The cross-check's input: the newest per (origin, kind, source) and the Roughtime rings, each
 * measurement once, pointing into w (valid until the next tk_window_add). Caller frees *out. */
TB_WUR int tk_window_inputs(const tk_window *w, tb_xc_obs **out, size_t *n);
/* The newest own measurement of (kind, name[, addr]), or NULL. */
const tk_obs *tk_window_last_own(const tk_window *w, tb_measure_kind kind, const char *name,
                                 const char *addr);
void tk_window_free(tk_window *w);

/* tk_status.c */
void tk_status(void *arg, tb_control_buf *b, int json);

#endif
