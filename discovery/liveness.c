#include "discovery/liveness.h"

#include <string.h>

void tb_live_config_default(tb_live_config *cfg)
{
    cfg->interval_ns = 1000000000ULL;
    cfg->max_missed = 5;
    cfg->max_delay_ns = 5 * 1000000000ULL;
    cfg->max_offset_ns = 86400LL * 1000000000LL;
}

int tb_live_init(tb_live *l, const tb_live_config *cfg, uint64_t now, uint64_t seq_seed)
{
    if (!cfg || cfg->interval_ns == 0 || cfg->max_missed == 0 || cfg->max_delay_ns == 0 ||
        cfg->max_offset_ns <= 0)
        return TB_ERR_INVAL;
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    l->next_ping = now;
    l->next_seq = seq_seed;
    l->last_answered = 1;
    return 0;
}

int tb_live_due(const tb_live *l, uint64_t now)
{
    return now >= l->next_ping;
}

int tb_live_ping_sent(tb_live *l, uint64_t now, int64_t t1, uint64_t *seq)
{
    if (!tb_live_due(l, now))
        return TB_ERR_AGAIN;
    if (!l->last_answered && l->missed < UINT32_MAX)
        l->missed++;
    *seq = l->next_seq++;
    /* The oldest pending ping makes room: a pong later than TB_LIVE_PENDING intervals
     * measures nothing useful. */
    l->pending[l->pending_next].seq = *seq;
    l->pending[l->pending_next].t1 = t1;
    l->pending[l->pending_next].used = 1;
    l->pending_next = (l->pending_next + 1) % TB_LIVE_PENDING;
    l->last_answered = 0;
    l->next_ping = now + l->cfg.interval_ns;
    return 0;
}

static int ts_ok(int64_t t)
{
    return t > 0 && t < TB_LIVE_TS_MAX;
}

int tb_live_compute(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *offset_ns,
                    int64_t *delay_ns)
{
    int64_t delay;
    if (!ts_ok(t1) || !ts_ok(t2) || !ts_ok(t3) || !ts_ok(t4) || t4 < t1 || t3 < t2)
        return TB_ERR_MALFORMED;
    /* Every timestamp is in (0, 2^62), so no difference or sum below can overflow. */
    delay = (t4 - t1) - (t3 - t2);
    if (delay < 0)
        return TB_ERR_MALFORMED;
    *delay_ns = delay;
    *offset_ns = ((t2 - t1) + (t3 - t4)) / 2;
    return 0;
}

static int take_pending(tb_live *l, uint64_t seq, int64_t t1)
{
    for (unsigned i = 0; i < TB_LIVE_PENDING; i++) {
        if (!l->pending[i].used || l->pending[i].seq != seq)
            continue;
        if (l->pending[i].t1 != t1)
            return TB_ERR_VERIFY;
        l->pending[i].used = 0;
        return 0;
    }
    return TB_ERR_NOTFOUND;
}

int tb_live_pong(tb_live *l, uint64_t now, uint64_t seq, int64_t t1, int64_t t2, int64_t t3,
                 int64_t t4, tb_live_sample *out)
{
    tb_live_sample s;
    int rc = take_pending(l, seq, t1);
    if (rc < 0)
        return rc;
    l->missed = 0;
    if (seq + 1 == l->next_seq)
        l->last_answered = 1;
    rc = tb_live_compute(t1, t2, t3, t4, &s.offset_ns, &s.delay_ns);
    if (rc < 0)
        return rc;
    if ((uint64_t)s.delay_ns > l->cfg.max_delay_ns || s.offset_ns > l->cfg.max_offset_ns ||
        s.offset_ns < -l->cfg.max_offset_ns)
        return TB_ERR_TOO_BIG;
    s.at = now;
    l->window[l->window_next] = s;
    l->window_next = (l->window_next + 1) % TB_LIVE_WINDOW;
    if (l->nsamples < TB_LIVE_WINDOW)
        l->nsamples++;
    if (out)
        *out = s;
    return 0;
}

int tb_live_get_estimate(const tb_live *l, tb_live_estimate *out)
{
    const tb_live_sample *best = NULL;
    if (l->nsamples == 0)
        return TB_ERR_AGAIN;
    for (unsigned i = 0; i < l->nsamples; i++)
        if (!best || l->window[i].delay_ns < best->delay_ns)
            best = &l->window[i];
    out->offset_ns = best->offset_ns;
    out->rtt_ns = best->delay_ns;
    out->uncertainty_ns = best->delay_ns / 2;
    out->samples = l->nsamples;
    out->at = best->at;
    return 0;
}

unsigned tb_live_missed(const tb_live *l)
{
    return l->missed;
}

int tb_live_lost(const tb_live *l)
{
    return l->missed >= l->cfg.max_missed;
}

uint64_t tb_live_next_wake(const tb_live *l)
{
    return l->next_ping;
}
