/* crosscheck/hold: verdict stability across runs of the cross-check. A source's shown verdict
 * changes only when the evidence for the new one holds for `runs` consecutive runs; until then
 * the run's verdict is replaced by the shown one (marked held, the reason saying what this run
 * found). Every verdict gets since_ns: when its shown verdict last changed (or the source first
 * appeared), and it remembers which sources a run has judged (not warming_up) for tb_xc_run to
 * keep them judged. Sources absent from a run are forgotten, so the state is bounded by the result.
 * Pure: no I/O, no clock. */
#ifndef TB_CROSSCHECK_HOLD_H
#define TB_CROSSCHECK_HOLD_H

#include <stdint.h>

#include "common/error.h"
#include "crosscheck/crosscheck.h"

typedef struct tb_xc_hold tb_xc_hold;

/* NULL when out of memory. */
tb_xc_hold *tb_xc_hold_new(void);
void tb_xc_hold_free(tb_xc_hold *h);

/* Applies the hold to r's verdicts (sorted by kind and source, as tb_xc_run leaves them), in
 * place, and remembers them. runs 0 or 1: every change shows at once. TB_ERR_NOMEM leaves r
 * untouched and the state as it was. */
TB_WUR int tb_xc_hold_apply(tb_xc_hold *h, unsigned runs, int64_t now_ns, tb_xc_result *r);

/* Whether a run has ever given the source a verdict other than warming_up (while it stayed in
 * every run since). h NULL: false. */
bool tb_xc_hold_judged(const tb_xc_hold *h, tb_measure_kind kind, const char *source);

#endif
