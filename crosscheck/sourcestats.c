/* A series against its own baseline (crosscheck/sourcestats.h). */
#include "crosscheck/sourcestats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SS_MAX_VALUE_NS (INT64_C(1) << 61) /* |offset| of an admitted measurement */
#define SS_MAX_TIME_NS (INT64_C(1) << 62)  /* real_ns of an admitted measurement */

struct tb_xc_ss {
    tb_xc_stats *base;
    int64_t last_t;    /* newest value's time, INT64_MIN before any */
    int64_t min_delay; /* least delay of the values learnt, -1 before any */
    int64_t first_t;   /* oldest value learnt since the last reset */
    int64_t last_learnt;
    tb_xc_ss_view v;
    int sign;       /* side of the values outside, when SUSPECT or MOVED */
    unsigned clear; /* MOVED: good values in a row */
};

tb_xc_ss *tb_xc_ss_new(void)
{
    tb_xc_ss *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base = tb_xc_stats_new();
    if (!s->base) {
        free(s);
        return NULL;
    }
    tb_xc_ss_reset(s);
    return s;
}

void tb_xc_ss_free(tb_xc_ss *s)
{
    if (!s)
        return;
    tb_xc_stats_free(s->base);
    free(s);
}

void tb_xc_ss_reset(tb_xc_ss *s)
{
    tb_xc_stats *base = s->base;
    memset(s, 0, sizeof(*s));
    s->base = base;
    tb_xc_stats_reset(base);
    s->last_t = INT64_MIN;
    s->min_delay = -1;
}

static int64_t clamp_i64(double v)
{
    if (!(v == v))
        return INT64_MAX;
    return v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)llround(v);
}

int tb_xc_ss_fit(const tb_xc_ss *s, tb_xc_stats_fit *out)
{
    return tb_xc_stats_get_fit(s->base, out);
}

/* Baseline values and the span they cover before the series judges. */
static bool ready(const tb_xc_ss *s)
{
    return tb_xc_stats_count(s->base) >= TB_XC_SS_MIN_SAMPLES &&
           s->last_learnt - s->first_t >= TB_XC_SS_MIN_SPAN_NS;
}

/* The baseline and its sd: the regression's weighted mean. A source relative to the origin's
 * agreement has no frequency of its own unless it drifts, and that is what is to be found: a
 * line through the first values extrapolates their noise for hours (sim/time.c saw a series
 * learnt in its first 25 minutes called moved by 20 ms a day later). The regression's frequency
 * is reported (tb_xc_ss_fit), not extrapolated. */
static bool baseline_at(const tb_xc_ss *s, double *pred, double *sd)
{
    tb_xc_stats_fit f;
    if (!ready(s) || tb_xc_stats_get_fit(s->base, &f) != TB_OK)
        return false;
    if (f.trusted) {
        *pred = f.offset_ns + f.freq_ppb * f.xm_s;
        *sd = sqrt(f.var_scale / f.sum_w);
    } else {
        *pred = f.offset_ns;
        *sd = f.offset_sd_ns;
    }
    return true;
}

int tb_xc_ss_predict(const tb_xc_ss *s, int64_t t_ns, int64_t *out_ns)
{
    double pred, sd;
    (void)t_ns;
    if (!baseline_at(s, &pred, &sd))
        return TB_ERR_NOTFOUND;
    *out_ns = clamp_i64(pred);
    return TB_OK;
}

/* The most a value over a path of delay_ns can be off by beyond the series' best: half the
 * delay in excess of the least seen (the excess may all be on one leg), plus the floor. */
static int64_t value_bound(const tb_xc_ss *s, int64_t delay_ns)
{
    int64_t excess = s->min_delay >= 0 && delay_ns > s->min_delay ? delay_ns - s->min_delay : 0;
    return excess / 2 + TB_XC_SS_NOISE_FLOOR_NS;
}

static void learn(tb_xc_ss *s, int64_t t_ns, int64_t value, int64_t delay)
{
    if (tb_xc_stats_push(s->base, t_ns, value, value_bound(s, delay)) != TB_OK)
        return;
    if (s->min_delay < 0 || delay < s->min_delay)
        s->min_delay = delay;
    if (tb_xc_stats_count(s->base) == 1)
        s->first_t = t_ns;
    s->last_learnt = t_ns;
}

int tb_xc_ss_add(tb_xc_ss *s, int64_t t_ns, int64_t value_ns, int64_t delay_ns)
{
    if (delay_ns < 0 || t_ns < 0 || t_ns > SS_MAX_TIME_NS || t_ns <= s->last_t)
        return TB_ERR_INVAL;
    /* the regression subtracts values from one another: keep them within measurement range */
    value_ns = value_ns > SS_MAX_VALUE_NS    ? SS_MAX_VALUE_NS
               : value_ns < -SS_MAX_VALUE_NS ? -SS_MAX_VALUE_NS
                                             : value_ns;
    s->last_t = t_ns;
    double pred, sd;
    if (!baseline_at(s, &pred, &sd)) {
        learn(s, t_ns, value_ns, delay_ns);
        s->v = (tb_xc_ss_view){.state = TB_XC_SS_LEARNING, .base_from_ns = s->first_t};
        return TB_OK;
    }
    int64_t dev = clamp_i64((double)value_ns - pred);
    int64_t tol = clamp_i64(TB_XC_SS_TOL_MIN_NS + 3.0 * sd + (double)value_bound(s, delay_ns));
    s->v.dev_ns = dev;
    s->v.tol_ns = tol;
    s->v.base_from_ns = s->first_t;
    int sign = dev > tol ? 1 : dev < -tol ? -1 : 0;
    if (sign == 0) {
        if (s->v.state == TB_XC_SS_MOVED && ++s->clear < TB_XC_SS_CLEAR)
            return TB_OK; /* frozen until it has been back long enough */
        learn(s, t_ns, value_ns, delay_ns);
        s->v.state = TB_XC_SS_SETTLED;
        s->v.since_ns = 0;
        s->sign = 0;
        s->clear = 0;
        return TB_OK;
    }
    s->clear = 0;
    if (s->v.state == TB_XC_SS_MOVED || (s->v.state == TB_XC_SS_SUSPECT && sign == s->sign)) {
        if (s->v.state == TB_XC_SS_MOVED && sign != s->sign)
            s->v.since_ns = t_ns; /* moved to the other side: a new movement */
        s->v.state = TB_XC_SS_MOVED;
    } else {
        s->v.state = TB_XC_SS_SUSPECT;
        s->v.since_ns = t_ns;
    }
    s->sign = sign;
    return TB_OK;
}

void tb_xc_ss_get(const tb_xc_ss *s, tb_xc_ss_view *out)
{
    *out = s->v;
}

const char *tb_xc_ss_state_name(int st)
{
    static const char *const names[] = {"learning", "settled", "suspect", "moved"};
    return st >= 0 && st < 4 ? names[st] : "unknown";
}
