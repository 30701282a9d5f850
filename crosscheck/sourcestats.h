/* crosscheck/sourcestats: one (origin, source) series judged against its own history, in the
 * manner of chrony's sourcestats. A measurement's error bound is dominated by what nobody can
 * measure (half the round trip: the path's asymmetry), but that error is a *fixed* bias of the
 * path; what a source does over time is measured to microseconds. So each series keeps a
 * baseline: a regression (crosscheck/stats.h: offset, frequency and their uncertainties from
 * the residuals) over the values the caller feeds it, which are the series' offsets relative to
 * the origin's own agreement (the caller removes what the origin's other sources share: its
 * clock). A new value is compared with the baseline's prediction:
 *   - within the tolerance (TB_XC_SS_TOL_MIN_NS, plus 3 sd of the prediction, plus the value's
 *     own bound: half its delay in excess of the series' least, at least
 *     TB_XC_SS_NOISE_FLOOR_NS): it joins the baseline, weighted by that bound;
 *   - outside: it does not. One such value makes the series SUSPECT (a spike is forgotten at
 *     the next good value), two in a row on one side MOVED: the source moved against everything
 *     else the origin measures. The baseline is frozen while MOVED (hysteresis: a drifter's
 *     growing offset is never learnt as normal), and the series settles again only after
 *     TB_XC_SS_CLEAR values in a row are back within the tolerance.
 * A constant error present from a series' first value is indistinguishable from the path's
 * asymmetry and is not seen here (the interval check of crosscheck.h sees it when it exceeds the
 * bounds). Pure: no I/O, no clock; times are the caller's (ns, the origin's clock). */
#ifndef TB_CROSSCHECK_SOURCESTATS_H
#define TB_CROSSCHECK_SOURCESTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "crosscheck/stats.h"

#define TB_XC_SS_MIN_SAMPLES 4 /* baseline values before the series judges */
#define TB_XC_SS_MIN_SPAN_NS (INT64_C(600) * 1000000000) /* ... and the time they span */
#define TB_XC_SS_CLEAR 3              /* good values in a row before a MOVED series settles */
#define TB_XC_SS_NOISE_FLOOR_NS 50000 /* least error of a value (50 µs) */
#define TB_XC_SS_TOL_MIN_NS 450000    /* added to every tolerance (0.45 ms) */

typedef enum tb_xc_ss_state {
    TB_XC_SS_LEARNING = 0, /* fewer than TB_XC_SS_MIN_SAMPLES baseline values: not judged */
    TB_XC_SS_SETTLED,      /* the newest value is within the tolerance */
    TB_XC_SS_SUSPECT,      /* the newest alone is outside */
    TB_XC_SS_MOVED,        /* two in a row outside on one side, and not yet back */
} tb_xc_ss_state;

typedef struct tb_xc_ss tb_xc_ss;

typedef struct tb_xc_ss_view {
    tb_xc_ss_state state;
    int64_t dev_ns;       /* newest value − the baseline's prediction for it (0 while learning) */
    int64_t tol_ns;       /* the tolerance it was judged with */
    int64_t since_ns;     /* SUSPECT, MOVED: time of the first value outside */
    int64_t base_from_ns; /* time of the oldest baseline value (0 without one) */
} tb_xc_ss_view;

/* NULL when out of memory. */
tb_xc_ss *tb_xc_ss_new(void);
void tb_xc_ss_free(tb_xc_ss *s);
void tb_xc_ss_reset(tb_xc_ss *s);

/* Judges and (when within the tolerance) learns the value taken at t_ns (0..2^62) over a path
 * of delay_ns (>= 0); a value beyond ±2^61 counts as that. TB_ERR_INVAL for a time out of range
 * or not after the newest, or a negative delay: ignored. */
TB_WUR int tb_xc_ss_add(tb_xc_ss *s, int64_t t_ns, int64_t value_ns, int64_t delay_ns);

/* The baseline's prediction at t_ns; TB_ERR_NOTFOUND while learning. */
TB_WUR int tb_xc_ss_predict(const tb_xc_ss *s, int64_t t_ns, int64_t *out_ns);

/* The baseline's regression (offset, frequency and their sd); TB_ERR_NOTFOUND without values. */
TB_WUR int tb_xc_ss_fit(const tb_xc_ss *s, tb_xc_stats_fit *out);

void tb_xc_ss_get(const tb_xc_ss *s, tb_xc_ss_view *out);

/* "learning", "settled", "suspect", "moved". */
const char *tb_xc_ss_state_name(int st);

#endif
