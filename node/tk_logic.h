/* node/tk_logic: the time node's decisions that need no loop, socket, store or clock: how a
 * source's measurement becomes the body the node signs, how a peer's evidence is re-checked,
 * one cross-check run with its verdict hold, and when the next run is due. The time node
 * (node/timekeeper.c) and the time simulator (sim/time.c, adr/0012) both call these, so the
 * simulator runs the node's own logic, not a copy. Pure: `now` is an argument. */
#ifndef TB_NODE_TK_LOGIC_H
#define TB_NODE_TK_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "crosscheck/crosscheck.h"
#include "crosscheck/hold.h"
#include "measure/measurement.h"
#include "measure/replay.h"
#include "sources/source.h"

/* What the evidence check found for a measurement (Roughtime: the re-verified MIDP, RADI). */
typedef struct tb_tk_evidence {
    bool has_rt;
    int64_t midp_ns, radi_ns;
} tb_tk_evidence;

/* The receiver's evidence check of a peer's measurement (the replay check's callback): NTP
 * packets re-checked (tb_ntp_exchange_check, leap and stratum as claimed), Roughtime as above,
 * other kinds accepted. *ev is reset, then filled for Roughtime. 0 or TB_ERR_VERIFY. */
TB_WUR int tb_tk_evidence_check(const tb_measurement *m, tb_tk_evidence *ev);

/* Whether a drop says the origin sent something false (not merely old or over its allowance):
 * a batch with one is not taken further nor passed on. */
bool tb_tk_drop_discredits(tb_measure_drop why);

/* What one origin may make this node verify and store, by default (crosscheck.max_evidence
 * 4096, origin_rate 600 a minute, origin_bytes 16 MiB an hour). */
tb_measure_limits tb_tk_limits_default(void);

tb_measure_kind tb_tk_measure_kind(tb_source_kind k);

/* Copies src into dst (cap > 0) as printable ASCII, '?' for anything else, truncated. */
void tb_tk_set_text(char *dst, size_t cap, const char *src);

/* The body the node signs for a source's measurement sm, taken by node `origin` (seq left 0;
 * evidence pointing into sm). NTP carries its packets, leap and stratum, an unsynchronised
 * reply with offset and bound 0; Roughtime its key, packets and chaining rand. TB_ERR_MALFORMED
 * when the measurement is not to be sent (evidence missing or too large). */
TB_WUR int tb_tk_measurement_of(const tb_source_meas *sm, const char *origin, tb_measurement *m);

/* One cross-check run as the node makes it: tb_xc_run, then the verdict hold (hold_runs of
 * cfg) at in->now_ns. On failure *out is empty. */
TB_WUR int tb_tk_xc_step(const tb_xc_config *cfg, tb_xc_hold *hold, const tb_xc_input *in,
                         tb_xc_result *out);

/* Seconds from now to the next timed run after a run whose result is r: when a measurement
 * goes stale, and at least every window/10 (the peers' offsets move without new data), never
 * sooner than min_interval_ms. */
double tb_tk_xc_next_s(const tb_xc_config *cfg, uint32_t min_interval_ms, const tb_xc_result *r,
                       int64_t now_ns);

/* Seconds until a run after new data, since_last_s after the last run: min_interval_ms after
 * it, at least 10 ms from now. */
double tb_tk_xc_kick_s(uint32_t min_interval_ms, double since_last_s);

#endif
