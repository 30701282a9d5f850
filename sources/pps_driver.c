#include "sources/pps_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bytes.h"
#include "sources/pps_dev.h"

#define NS INT64_C(1000000000)
#define MIN_FETCH_NS INT64_C(10000000)

typedef struct pps_drv {
    tb_source *src;
    tb_source_config cfg; /* device in address, lock, edge */
    const tb_pps_dev_ops *ops;
    void *dev;
    tb_pps *logic;
    uint64_t fetch_ns;
    uint64_t last_new_mono; /* when the sequence last moved */
    unsigned refused_row;   /* new pulses refused in a row */
    tb_pps_verdict last_refusal;
    int64_t last_lock_diff_ns;
} pps_drv;

static int pps_create(tb_source *src, const tb_source_config *cfg, void **state)
{
    pps_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return TB_ERR_NOMEM;
    d->src = src;
    d->cfg = *cfg;
    int64_t half = NS / 2 / (cfg->rate ? cfg->rate : 1);
    d->fetch_ns = (uint64_t)(half > MIN_FETCH_NS ? half : MIN_FETCH_NS);
    *state = d;
    return 0;
}

/* The device stamps with the system's real clock; the environment's clock may be another
 * (a shifted or manual one in tests), so the stamp keeps its age, not its value. */
static void to_env_clock(const tb_source_env *env, int64_t sys_ns, int64_t *real, uint64_t *mono)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = (int64_t)now.tv_sec * NS + now.tv_nsec - sys_ns;
    *real = tb_clock_real(env->clock) - age;
    uint64_t m = tb_clock_mono(env->clock);
    *mono = age <= 0 ? m : (uint64_t)age < m ? m - (uint64_t)age : 0;
}

static const tb_pps_lock *lock_of(const pps_drv *d, tb_pps_lock *buf)
{
    const tb_source_env *env = tb_source_env_of(d->src);
    const tb_source *lk = env->find ? env->find(env->find_arg, d->cfg.lock) : NULL;
    if (!lk || !tb_source_last(lk, &buf->real_ns, &buf->offset_ns, &buf->error_ns))
        return NULL;
    return buf;
}

static void deliver(pps_drv *d, const tb_pps_sample *smp, uint64_t mono)
{
    tb_source_meas m = {
        .mono_ns = mono,
        .real_ns = smp->real_ns,
        .offset_ns = smp->offset_ns,
        .delay_ns = 0,
        .error_ns = smp->error_ns,
        .stratum = 0, /* a reference clock */
        .refid = tb_get_be32((const uint8_t *)"PPS\0"),
    };
    d->refused_row = 0;
    d->last_lock_diff_ns = smp->lock_diff_ns;
    tb_source_deliver(d->src, &m);
}

static void refused(pps_drv *d, tb_pps_verdict v)
{
    d->last_refusal = v;
    if (++d->refused_row < d->cfg.unreach_after)
        return;
    tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "%u pulses in a row refused: %s (lock %s)",
                        d->refused_row, tb_pps_verdict_name(v), d->cfg.lock);
}

static void silent(pps_drv *d, uint64_t mono)
{
    uint64_t quiet = TB_PPS_SILENT_INTERVALS * (uint64_t)NS / d->cfg.rate;
    if (quiet < 2 * (uint64_t)NS)
        quiet = 2 * (uint64_t)NS;
    if (mono - d->last_new_mono >= quiet)
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "no pulse for %llu s",
                            (unsigned long long)((mono - d->last_new_mono) / (uint64_t)NS));
}

static void pps_poll(tb_source *src, void *state)
{
    pps_drv *d = state;
    const tb_source_env *env = tb_source_env_of(src);
    uint64_t now_mono = tb_clock_mono(env->clock);
    tb_source_schedule(src, now_mono + d->fetch_ns);
    uint32_t seq = 0;
    int64_t sys_ns = 0;
    char why[160] = "";
    int rc = d->ops->fetch(d->ops->arg, d->dev, &seq, &sys_ns, why, sizeof(why));
    if (rc == TB_ERR_AGAIN) {
        silent(d, now_mono);
        return;
    }
    if (rc < 0) {
        tb_source_set_state(src, TB_SOURCE_UNREACHABLE, "%s: %s", d->cfg.address, why);
        return;
    }
    tb_pps_pulse p = {.seq = seq};
    uint64_t mono;
    to_env_clock(env, sys_ns, &p.real_ns, &mono);
    tb_pps_lock buf;
    tb_pps_sample smp;
    tb_pps_verdict v =
        tb_pps_pulse_in(d->logic, tb_clock_real(env->clock), &p, lock_of(d, &buf), &smp);
    if (v == TB_PPS_SAME) {
        silent(d, now_mono);
        return;
    }
    d->last_new_mono = now_mono;
    if (v == TB_PPS_ACCEPTED)
        deliver(d, &smp, mono);
    else if (v == TB_PPS_SETTLING)
        tb_source_set_state(src, TB_SOURCE_STARTING,
                            "settling: the jitter needs %d pairs of consecutive pulses",
                            TB_PPS_JITTER_MIN);
    else
        refused(d, v);
}

static int pps_start(tb_source *src, void *state)
{
    pps_drv *d = state;
    const tb_source_env *env = tb_source_env_of(src);
    tb_pps_params pp = {.rate = d->cfg.rate,
                        .offset_ns = d->cfg.offset_ns,
                        .width_ns = d->cfg.width_ns,
                        .precision_ns = d->cfg.precision_ns,
                        .maxlockage = d->cfg.maxlockage};
    int err = tb_pps_create(&pp, &d->logic);
    if (err < 0)
        return err;
    d->ops = env->pps_dev ? env->pps_dev : tb_pps_dev_kernel();
    char why[200] = "";
    err = d->ops->open(d->ops->arg, d->cfg.address, d->cfg.edge_clear, &d->dev, why, sizeof(why));
    if (err < 0) {
        tb_pps_free(d->logic);
        d->logic = NULL;
        tb_source_set_state(src, TB_SOURCE_STOPPED, "%s", why[0] ? why : tb_strerror(err));
        return err;
    }
    d->refused_row = 0;
    d->last_new_mono = tb_clock_mono(env->clock);
    tb_source_set_state(src, TB_SOURCE_STARTING, "waiting for pulses (%s edge), locked to %s",
                        d->cfg.edge_clear ? "clear" : "assert", d->cfg.lock);
    tb_source_schedule(src, d->last_new_mono);
    return 0;
}

static void pps_stop(tb_source *src, void *state)
{
    pps_drv *d = state;
    (void)src;
    if (d->ops && d->dev)
        d->ops->close(d->ops->arg, d->dev);
    d->dev = NULL;
    tb_pps_free(d->logic);
    d->logic = NULL;
}

static void pps_destroy(void *state)
{
    pps_drv *d = state;
    if (d && d->logic)
        pps_stop(d->src, d);
    free(d);
}

static void pps_describe(const void *state, char *buf, size_t len)
{
    const pps_drv *d = state;
    if (!d->logic) {
        snprintf(buf, len, "lock %s", d->cfg.lock);
        return;
    }
    const tb_pps_stats *st = tb_pps_stats_of(d->logic);
    snprintf(buf, len,
             "lock %s, pulses %llu, used %llu, missed %llu, jitter %lld ns, lock - pps %lld ns%s%s",
             d->cfg.lock, (unsigned long long)st->pulses,
             (unsigned long long)st->verdicts[TB_PPS_ACCEPTED], (unsigned long long)st->missed,
             (long long)st->jitter_ns, (long long)d->last_lock_diff_ns,
             d->refused_row ? ", last refused: " : "",
             d->refused_row ? tb_pps_verdict_name(d->last_refusal) : "");
}

static const tb_source_driver pps_driver = {
    .kind = TB_SOURCE_PPS,
    .create = pps_create,
    .start = pps_start,
    .stop = pps_stop,
    .poll = pps_poll,
    .destroy = pps_destroy,
    .describe = pps_describe,
};

const tb_source_driver *tb_pps_driver(void)
{
    return &pps_driver;
}

const tb_pps_stats *tb_pps_driver_stats(const tb_source *s)
{
    const pps_drv *d = tb_source_driver_state(s);
    return d && tb_source_identity(s)->kind == TB_SOURCE_PPS && d->logic ? tb_pps_stats_of(d->logic)
                                                                         : NULL;
}
