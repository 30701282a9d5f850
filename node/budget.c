#include "node/budget.h"

#define NS 1000000000ULL

static uint64_t cap(uint64_t v)
{
    return v > TB_BUCKET_MAX ? TB_BUCKET_MAX : v;
}

void tb_bucket_init(tb_bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
    b->rate = cap(rate);
    b->burst = cap(burst ? burst : 1);
    b->level = b->burst * NS;
    b->last = now;
}

static void refill(tb_bucket *b, uint64_t now)
{
    uint64_t full = b->burst * NS;
    if (now <= b->last) {
        b->last = now;
        return;
    }
    uint64_t dt = now - b->last;
    b->last = now;
    if (b->rate == 0)
        return;
    /* dt * rate could overflow only when the bucket would be full anyway. */
    if (dt > (full - b->level) / b->rate)
        b->level = full;
    else
        b->level += dt * b->rate;
}

int tb_bucket_take(tb_bucket *b, uint64_t n, uint64_t now)
{
    refill(b, now);
    if (n > b->burst || n * NS > b->level)
        return 0;
    b->level -= n * NS;
    return 1;
}

void tb_budget_config_default(tb_budget_config *cfg)
{
    cfg->msgs_per_s = 100;
    cfg->msgs_burst = 300;
    cfg->bytes_per_s = 1u << 20;
    cfg->bytes_burst = 4u << 20;
    cfg->own_bcasts_per_s = 20;
    cfg->own_bcasts_burst = 60;
}

void tb_budget_config_for_mesh(tb_budget_config *cfg, size_t max_peers)
{
    tb_budget_config_default(cfg);
    uint64_t peers = max_peers > 65536 ? 65536 : max_peers;
    if (16 * peers > cfg->msgs_per_s) {
        cfg->msgs_per_s = (uint32_t)(16 * peers);
        cfg->msgs_burst = (uint32_t)(48 * peers);
    }
    if (peers + 64 > cfg->own_bcasts_burst)
        cfg->own_bcasts_burst = (uint32_t)(peers + 64);
}

/* A burst of k seconds of a rate set, never below the one it replaces (which fits the mesh's
 * size: a node sends a measurement of every peer at once). */
static uint32_t burst_of(uint32_t rate, uint32_t k, uint32_t old)
{
    uint32_t b = rate > UINT32_MAX / k ? UINT32_MAX : rate * k;
    return b > old ? b : old;
}

void tb_budget_config_apply(tb_budget_config *cfg, const tb_budget_config *set)
{
    if (set->msgs_per_s) {
        cfg->msgs_per_s = set->msgs_per_s;
        cfg->msgs_burst = burst_of(set->msgs_per_s, 3, cfg->msgs_burst);
    }
    if (set->bytes_per_s) {
        cfg->bytes_per_s = set->bytes_per_s;
        cfg->bytes_burst = burst_of(set->bytes_per_s, 4, cfg->bytes_burst);
    }
    if (set->own_bcasts_per_s) {
        cfg->own_bcasts_per_s = set->own_bcasts_per_s;
        cfg->own_bcasts_burst = burst_of(set->own_bcasts_per_s, 3, cfg->own_bcasts_burst);
    }
}

const char *tb_budget_verdict_name(tb_budget_verdict v)
{
    static const char *const names[TB_BUDGET_VERDICT_COUNT] = {
        "within budget", "over the message rate", "over the byte rate",
        "over the rate of broadcasts it originates"};
    return (unsigned)v < TB_BUDGET_VERDICT_COUNT ? names[v] : "?";
}

void tb_budget_init(tb_budget *b, const tb_budget_config *cfg, uint64_t now)
{
    tb_bucket_init(&b->msgs, cfg->msgs_per_s, cfg->msgs_burst, now);
    tb_bucket_init(&b->bytes, cfg->bytes_per_s, cfg->bytes_burst, now);
    tb_bucket_init(&b->bcasts, cfg->own_bcasts_per_s, cfg->own_bcasts_burst, now);
}

tb_budget_verdict tb_budget_charge(tb_budget *b, tb_budget_kind kind, size_t bytes, uint64_t now)
{
    switch (kind) {
    case TB_BUDGET_MESSAGE:
        if (!tb_bucket_take(&b->msgs, 1, now))
            return TB_BUDGET_OVER_MSGS;
        if (!tb_bucket_take(&b->bytes, bytes, now)) {
            b->msgs.level += NS; /* give the message token back: nothing was handled */
            return TB_BUDGET_OVER_BYTES;
        }
        return TB_BUDGET_OK;
    case TB_BUDGET_OWN_BCAST:
        return tb_bucket_take(&b->bcasts, 1, now) ? TB_BUDGET_OK : TB_BUDGET_OVER_BCASTS;
    }
    return TB_BUDGET_OK;
}
