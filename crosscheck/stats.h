/* crosscheck/stats: per-series statistics in the manner of chrony's sourcestats. A series is
 * one origin's measurements of one source; it keeps the newest TB_XC_STATS_MAX_SAMPLES samples
 * in a ring and fits offset(t) = a + b·(t − t_newest) by weighted least squares (weight
 * 1/bound²), so the cross-check can predict a source's offset to `now` and age an interval by
 * how well the series' frequency is actually known instead of by a blanket allowance.
 *
 * A sample's bound is a maximum error, not a standard deviation: the residual variance is
 * floored at (bound/3)², so a perfect synthetic series still reports a non-zero uncertainty.
 * A step (two samples in a row far outside the prediction of the older ones, in the same
 * direction) discards the older samples: the series starts over from the step.
 *
 * Pure: no I/O, no clock; times are the caller's (ns). */
#ifndef TB_CROSSCHECK_STATS_H
#define TB_CROSSCHECK_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_XC_STATS_MAX_SAMPLES 16
#define TB_XC_STATS_MIN_FREQ 4 /* samples before the regression's frequency is trusted */

typedef struct tb_xc_stats tb_xc_stats;

/* NULL when out of memory. */
tb_xc_stats *tb_xc_stats_new(void);
void tb_xc_stats_free(tb_xc_stats *s);
void tb_xc_stats_reset(tb_xc_stats *s);

/* Adds a sample taken at t_ns with offset_ns ± bound_ns (bound >= 0). A sample not newer than
 * the newest held is ignored (TB_ERR_INVAL): the series is a time series. */
TB_WUR int tb_xc_stats_add(tb_xc_stats *s, int64_t t_ns, int64_t offset_ns, int64_t bound_ns);

/* The same without the step rule, for a caller that judges outliers itself
 * (crosscheck/sourcestats.h): the sample joins the ring whatever it says. */
TB_WUR int tb_xc_stats_push(tb_xc_stats *s, int64_t t_ns, int64_t offset_ns, int64_t bound_ns);

size_t tb_xc_stats_count(const tb_xc_stats *s);

/* The mean spacing of the held samples in ns (how often this series delivers), 0 with fewer
 * than two. */
int64_t tb_xc_stats_interval(const tb_xc_stats *s);

typedef struct tb_xc_stats_fit {
    size_t n;         /* samples fitted */
    bool has_freq;    /* n >= 2 spanning time: freq_* are meaningful */
    bool trusted;     /* n >= TB_XC_STATS_MIN_FREQ: freq_* come from the regression; below,
                         from the oldest and newest sample with the worst case of their
                         bounds as 3 sd */
    int64_t t_ref_ns; /* time of the newest sample: offset_ns is the fit there */
    double offset_ns; /* fitted offset at t_ref (the newest sample itself without a frequency) */
    double offset_sd_ns;
    double freq_ppb; /* d offset / dt in ns per s (= ppb); 0 without a frequency */
    double freq_sd_ppb;
    /* for tb_xc_stats_predict: weighted mean time (s, from t_ref), variance scale, weights */
    double xm_s, var_scale, sum_w, sxx;
} tb_xc_stats_fit;

/* Fits the held samples; TB_ERR_NOTFOUND when there are none. */
TB_WUR int tb_xc_stats_get_fit(const tb_xc_stats *s, tb_xc_stats_fit *out);

/* The fitted offset at t_ns and its standard deviation (*sd_ns, may be NULL); without a
 * frequency the newest offset and its sd. Saturates instead of overflowing. */
int64_t tb_xc_stats_predict(const tb_xc_stats_fit *f, int64_t t_ns, int64_t *sd_ns);

#endif
