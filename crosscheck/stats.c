/* Weighted linear regression over a bounded ring of samples (crosscheck/stats.h). */
#include "crosscheck/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A bound below this is treated as this: a zero bound must not give an infinite weight. */
#define STATS_BOUND_FLOOR_NS 100.0
/* Samples spanning less than this give no frequency, however many they are. */
#define STATS_MIN_SPAN_S 1.0

typedef struct stats_sample {
    int64_t t_ns, off_ns, bound_ns;
} stats_sample;

struct tb_xc_stats {
    stats_sample s[TB_XC_STATS_MAX_SAMPLES];
    size_t first, count; /* ring: oldest at first */
    int suspect;         /* sign of the newest sample's deviation when it was an outlier, else 0 */
};

tb_xc_stats *tb_xc_stats_new(void)
{
    return calloc(1, sizeof(tb_xc_stats));
}

void tb_xc_stats_free(tb_xc_stats *s)
{
    free(s);
}

void tb_xc_stats_reset(tb_xc_stats *s)
{
    memset(s, 0, sizeof(*s));
}

size_t tb_xc_stats_count(const tb_xc_stats *s)
{
    return s->count;
}

/* The i-th sample in time order (0 = oldest). */
static const stats_sample *at(const tb_xc_stats *s, size_t i)
{
    return &s->s[(s->first + i) % TB_XC_STATS_MAX_SAMPLES];
}

int64_t tb_xc_stats_interval(const tb_xc_stats *s)
{
    if (s->count < 2)
        return 0;
    return (at(s, s->count - 1)->t_ns - at(s, 0)->t_ns) / (int64_t)(s->count - 1);
}

static double weight(int64_t bound_ns)
{
    double b = (double)bound_ns < STATS_BOUND_FLOOR_NS ? STATS_BOUND_FLOOR_NS : (double)bound_ns;
    return 1.0 / (b * b);
}

/* Weighted sums of one fit, x in s relative to the reference time, y in ns relative to the
 * reference offset (differences keep the doubles exact enough). */
typedef struct sums {
    double w, xm, ym, sxx, sxy;
} sums;

static sums sum_range(const tb_xc_stats *s, size_t n, const stats_sample *ref)
{
    sums z = {0};
    for (size_t i = 0; i < n; i++) {
        const stats_sample *p = at(s, i);
        double w = weight(p->bound_ns), x = (double)(p->t_ns - ref->t_ns) / 1e9;
        z.w += w;
        z.xm += w * x;
        z.ym += w * (double)(p->off_ns - ref->off_ns);
    }
    z.xm /= z.w;
    z.ym /= z.w;
    for (size_t i = 0; i < n; i++) {
        const stats_sample *p = at(s, i);
        double w = weight(p->bound_ns), x = (double)(p->t_ns - ref->t_ns) / 1e9 - z.xm;
        z.sxx += w * x * x;
        z.sxy += w * x * ((double)(p->off_ns - ref->off_ns) - z.ym);
    }
    return z;
}

/* Fits the oldest n samples, referred to the newest of them. */
static void fit_first(const tb_xc_stats *s, size_t n, tb_xc_stats_fit *f)
{
    const stats_sample *ref = at(s, n - 1);
    memset(f, 0, sizeof(*f));
    f->n = n;
    f->t_ref_ns = ref->t_ns;
    f->offset_ns = (double)ref->off_ns;
    f->offset_sd_ns = 1.0 / sqrt(weight(ref->bound_ns)) / 3.0;
    const stats_sample *old = at(s, 0);
    double span = (double)(ref->t_ns - old->t_ns) / 1e9;
    if (n < 2 || span < STATS_MIN_SPAN_S)
        return;
    if (n < TB_XC_STATS_MIN_FREQ) {
        /* too few for statistics: the line through the oldest and the newest, and the worst
         * case their bounds allow (as 3 sd, like the bounds everywhere here) */
        f->has_freq = true;
        f->freq_ppb = (double)(ref->off_ns - old->off_ns) / span;
        f->freq_sd_ppb =
            (1.0 / sqrt(weight(ref->bound_ns)) + 1.0 / sqrt(weight(old->bound_ns))) / span / 3.0;
        f->xm_s = 0;
        f->sum_w = 1.0 / (f->offset_sd_ns * f->offset_sd_ns);
        f->var_scale = 1.0;
        f->sxx = 1.0 / (f->freq_sd_ppb * f->freq_sd_ppb);
        return;
    }
    sums z = sum_range(s, n, ref);
    double b = z.sxy / z.sxx, a = z.ym - b * z.xm, chi = 0;
    for (size_t i = 0; i < n; i++) {
        const stats_sample *p = at(s, i);
        double x = (double)(p->t_ns - ref->t_ns) / 1e9;
        double r = (double)(p->off_ns - ref->off_ns) - a - b * x;
        chi += weight(p->bound_ns) * r * r;
    }
    chi /= (double)(n - 2);
    /* bounds are maximum errors: read them as 3 sigma when the residuals are smaller */
    if (chi < 1.0 / 9.0)
        chi = 1.0 / 9.0;
    f->has_freq = f->trusted = true;
    f->freq_ppb = b;
    f->freq_sd_ppb = sqrt(chi / z.sxx);
    f->offset_ns = (double)ref->off_ns + a;
    f->offset_sd_ns = sqrt(chi * (1.0 / z.w + z.xm * z.xm / z.sxx));
    /* kept for predict(): the weighted mean time relative to t_ref and the variance scale */
    f->xm_s = z.xm;
    f->var_scale = chi;
    f->sum_w = z.w;
    f->sxx = z.sxx;
}

int tb_xc_stats_get_fit(const tb_xc_stats *s, tb_xc_stats_fit *out)
{
    if (s->count == 0)
        return TB_ERR_NOTFOUND;
    fit_first(s, s->count, out);
    return TB_OK;
}

static int64_t clamp_i64(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 9.2e18)
        return INT64_MAX;
    if (v <= -9.2e18)
        return INT64_MIN;
    return (int64_t)llround(v);
}

int64_t tb_xc_stats_predict(const tb_xc_stats_fit *f, int64_t t_ns, int64_t *sd_ns)
{
    double x = ((double)t_ns - (double)f->t_ref_ns) / 1e9;
    double off = f->offset_ns, sd = f->offset_sd_ns;
    if (f->has_freq) {
        off += f->freq_ppb * x;
        double dx = x - f->xm_s;
        sd = sqrt(f->var_scale * (1.0 / f->sum_w + dx * dx / f->sxx));
    }
    if (sd_ns)
        *sd_ns = clamp_i64(sd);
    return clamp_i64(off);
}

/* Sign of the new sample's deviation when it lies outside what the held samples predict. */
static int outlier(const tb_xc_stats *s, size_t n, int64_t t_ns, int64_t off_ns, int64_t bound)
{
    if (n < TB_XC_STATS_MIN_FREQ)
        return 0;
    tb_xc_stats_fit f;
    fit_first(s, n, &f);
    if (!f.trusted)
        return 0;
    int64_t sd;
    double dev = (double)off_ns - (double)tb_xc_stats_predict(&f, t_ns, &sd);
    double tol = 3.0 * (double)sd + (double)bound + STATS_BOUND_FLOOR_NS;
    return dev > tol ? 1 : dev < -tol ? -1 : 0;
}

/* Appends to the ring, the oldest giving way when it is full. */
static void append(tb_xc_stats *s, int64_t t_ns, int64_t offset_ns, int64_t bound_ns)
{
    if (s->count == TB_XC_STATS_MAX_SAMPLES) {
        s->first = (s->first + 1) % TB_XC_STATS_MAX_SAMPLES;
        s->count--;
    }
    s->s[(s->first + s->count) % TB_XC_STATS_MAX_SAMPLES] =
        (stats_sample){.t_ns = t_ns, .off_ns = offset_ns, .bound_ns = bound_ns};
    s->count++;
}

int tb_xc_stats_add(tb_xc_stats *s, int64_t t_ns, int64_t offset_ns, int64_t bound_ns)
{
    if (bound_ns < 0 || (s->count && t_ns <= at(s, s->count - 1)->t_ns))
        return TB_ERR_INVAL;
    /* the previous sample, when it was an outlier, is left out of the prediction */
    size_t base = s->count - (s->suspect != 0);
    int sign = outlier(s, base, t_ns, offset_ns, bound_ns);
    if (sign != 0 && sign == s->suspect) {
        /* two in a row on the same side: a step; keep only the one before and this one */
        stats_sample prev = *at(s, s->count - 1);
        tb_xc_stats_reset(s);
        s->s[0] = prev;
        s->count = 1;
        sign = 0;
    }
    append(s, t_ns, offset_ns, bound_ns);
    s->suspect = sign;
    return TB_OK;
}

int tb_xc_stats_push(tb_xc_stats *s, int64_t t_ns, int64_t offset_ns, int64_t bound_ns)
{
    if (bound_ns < 0 || (s->count && t_ns <= at(s, s->count - 1)->t_ns))
        return TB_ERR_INVAL;
    append(s, t_ns, offset_ns, bound_ns);
    s->suspect = 0;
    return TB_OK;
}
