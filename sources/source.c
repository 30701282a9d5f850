#include "sources/source.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tb_source {
    tb_source_env env;
    const tb_source_driver *drv;
    void *state;
    tb_source_config cfg;
    tb_source_id id;
    tb_source_state st;
    char reason[160];
    bool running;
    uint64_t n_measurements;
    bool have_last;
    int64_t last_real_ns, last_offset_ns, last_error_ns;
    ev_timer timer;
    tb_source_state_cb hook;
    void *hook_arg;
};

static const char *const kind_names[TB_SOURCE_KIND_COUNT] = {"ntp", "pool", "roughtime", "peer",
                                                             "nts", "sock", "pps"};

const char *tb_source_kind_name(tb_source_kind kind)
{
    return (unsigned)kind < TB_SOURCE_KIND_COUNT ? kind_names[kind] : "unknown";
}

int tb_source_kind_parse(const char *s, tb_source_kind *out)
{
    for (int k = 0; k < TB_SOURCE_KIND_COUNT; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (tb_source_kind)k;
            return 0;
        }
    }
    return TB_ERR_INVAL;
}

const char *tb_source_state_name(tb_source_state st)
{
    static const char *const names[] = {"starting", "reachable", "unreachable", "demobilised",
                                        "stopped"};
    return (unsigned)st <= TB_SOURCE_STOPPED ? names[st] : "unknown";
}

void tb_source_config_default(tb_source_config *cfg, tb_source_kind kind)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->kind = kind;
    cfg->minpoll = 6;
    cfg->maxpoll = 10;
    cfg->count = 4;
    cfg->unreach_after = 4;
    cfg->resolve_interval = 3600;
    cfg->ntsport = 4460;
    cfg->precision_ns = 1000;
    cfg->rate = 1;
    cfg->maxlockage = 2;
}

bool tb_source_config_equal(const tb_source_config *a, const tb_source_config *b)
{
    return a->kind == b->kind && strcmp(a->address, b->address) == 0 &&
           strcmp(a->name, b->name) == 0 && a->minpoll == b->minpoll && a->maxpoll == b->maxpoll &&
           a->count == b->count && a->unreach_after == b->unreach_after &&
           a->resolve_interval == b->resolve_interval && a->has_public_key == b->has_public_key &&
           memcmp(a->public_key, b->public_key, sizeof(a->public_key)) == 0 &&
           a->ntsport == b->ntsport && strcmp(a->ca_file, b->ca_file) == 0 &&
           strcmp(a->server_name, b->server_name) == 0 && a->precision_ns == b->precision_ns &&
           a->delay_ns == b->delay_ns && a->xleave == b->xleave && strcmp(a->lock, b->lock) == 0 &&
           a->edge_clear == b->edge_clear && a->rate == b->rate && a->offset_ns == b->offset_ns &&
           a->width_ns == b->width_ns && a->maxlockage == b->maxlockage;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_source *s = w->data;
    (void)loop;
    (void)revents;
    if (s->running && s->drv && s->drv->poll)
        s->drv->poll(s, s->state);
}

int tb_source_create(const tb_source_env *env, const tb_source_driver *drv,
                     const tb_source_config *cfg, const char *address, tb_source **out)
{
    *out = NULL;
    tb_source *s = calloc(1, sizeof(*s));
    if (!s)
        return TB_ERR_NOMEM;
    s->env = *env;
    s->drv = drv;
    s->cfg = *cfg;
    s->id.kind = cfg->kind == TB_SOURCE_POOL ? TB_SOURCE_NTP : cfg->kind;
    snprintf(s->id.name, sizeof(s->id.name), "%s",
             cfg->kind == TB_SOURCE_POOL ? cfg->name : cfg->address);
    if (address)
        snprintf(s->id.address, sizeof(s->id.address), "%s", address);
    s->id.has_public_key = cfg->has_public_key;
    memcpy(s->id.public_key, cfg->public_key, sizeof(s->id.public_key));
    s->st = TB_SOURCE_STOPPED;
    snprintf(s->reason, sizeof(s->reason), "%s",
             drv ? "not started" : "no driver for this kind in this build");
    ev_init(&s->timer, timer_cb);
    s->timer.data = s;
    if (drv) {
        int err = drv->create(s, &s->cfg, &s->state);
        if (err < 0) {
            free(s);
            return err;
        }
    }
    *out = s;
    return 0;
}

int tb_source_start(tb_source *s)
{
    if (!s->drv || s->running)
        return s->drv ? 0 : TB_ERR_UNSUPPORTED;
    s->running = true;
    s->have_last = false;
    tb_source_set_state(s, TB_SOURCE_STARTING, "waiting for the first measurement");
    int err = s->drv->start(s, s->state);
    if (err < 0) {
        s->running = false;
        ev_timer_stop(s->env.loop, &s->timer);
        /* A driver that said why it stopped (sock: "not a socket") keeps its reason. */
        if (s->st != TB_SOURCE_STOPPED)
            tb_source_set_state(s, TB_SOURCE_STOPPED, "start failed: %s", tb_strerror(err));
    }
    return err;
}

void tb_source_stop(tb_source *s)
{
    if (!s->running)
        return;
    s->running = false;
    ev_timer_stop(s->env.loop, &s->timer);
    s->drv->stop(s, s->state);
    tb_source_set_state(s, TB_SOURCE_STOPPED, "stopped");
}

void tb_source_destroy(tb_source *s)
{
    if (!s)
        return;
    s->hook = NULL;
    tb_source_stop(s);
    if (s->drv)
        s->drv->destroy(s->state);
    free(s);
}

void tb_source_set_state_hook(tb_source *s, tb_source_state_cb cb, void *arg)
{
    s->hook = cb;
    s->hook_arg = arg;
}

const tb_source_id *tb_source_identity(const tb_source *s)
{
    return &s->id;
}

tb_source_state tb_source_state_of(const tb_source *s)
{
    return s->st;
}

const char *tb_source_reason(const tb_source *s)
{
    return s->reason;
}

uint64_t tb_source_measurements(const tb_source *s)
{
    return s->n_measurements;
}

bool tb_source_last(const tb_source *s, int64_t *real_ns, int64_t *offset_ns, int64_t *error_ns)
{
    *real_ns = s->last_real_ns;
    *offset_ns = s->last_offset_ns;
    *error_ns = s->last_error_ns;
    return s->have_last;
}

const tb_source_config *tb_source_config_of(const tb_source *s)
{
    return &s->cfg;
}

void *tb_source_driver_state(const tb_source *s)
{
    return s->state;
}

/* The address only adds something when the name is not already that address. */
static bool show_address(const tb_source *s)
{
    return s->id.address[0] && strcmp(s->id.address, s->id.name) != 0;
}

void tb_source_describe(const tb_source *s, char *buf, size_t len)
{
    char detail[200] = "";
    if (s->drv && s->drv->describe)
        s->drv->describe(s->state, detail, sizeof(detail));
    snprintf(buf, len, "%s %s%s%s %s (%s)%s%s", tb_source_kind_name(s->id.kind), s->id.name,
             show_address(s) ? " " : "", show_address(s) ? s->id.address : "",
             tb_source_state_name(s->st), s->reason, detail[0] ? ": " : "", detail);
}

const tb_source_env *tb_source_env_of(const tb_source *s)
{
    return &s->env;
}

void tb_source_set_address(tb_source *s, const char *address)
{
    snprintf(s->id.address, sizeof(s->id.address), "%s", address);
}

void tb_source_schedule(tb_source *s, uint64_t at_ns)
{
    ev_timer_stop(s->env.loop, &s->timer);
    if (at_ns == UINT64_MAX || !s->running)
        return;
    uint64_t now = tb_clock_mono(s->env.clock);
    double after = at_ns > now ? (double)(at_ns - now) / 1e9 : 0.0;
    ev_timer_set(&s->timer, after, 0.0);
    ev_timer_start(s->env.loop, &s->timer);
}

void tb_source_deliver(tb_source *s, tb_source_meas *m)
{
    m->source = &s->id;
    s->n_measurements++;
    s->have_last = true;
    s->last_real_ns = m->real_ns;
    s->last_offset_ns = m->offset_ns;
    s->last_error_ns = m->error_ns;
    if (s->st != TB_SOURCE_REACHABLE)
        tb_source_set_state(s, TB_SOURCE_REACHABLE, "measuring");
    if (s->env.on_measurement)
        s->env.on_measurement(s->env.measurement_arg, m);
}

void tb_source_set_state(tb_source *s, tb_source_state st, const char *fmt, ...)
{
    char reason[sizeof(s->reason)];
    va_list ap;
    va_start(ap, fmt);
    /* va_start initialised ap; clang-analyzer 14 loses that through tb_source_start's call. */
    vsnprintf(reason, sizeof(reason), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (s->st == st && strcmp(reason, s->reason) == 0)
        return;
    bool changed = s->st != st;
    s->st = st;
    memcpy(s->reason, reason, sizeof(reason));
    if (!changed)
        return;
    tb_log_write(s->env.log,
                 (st == TB_SOURCE_UNREACHABLE || st == TB_SOURCE_DEMOBILISED) ? TB_LOG_WARN
                                                                              : TB_LOG_INFO,
                 "source %s %s%s%s: %s (%s)", tb_source_kind_name(s->id.kind), s->id.name,
                 show_address(s) ? " " : "", show_address(s) ? s->id.address : "",
                 tb_source_state_name(st), reason);
    if (s->hook)
        s->hook(s->hook_arg, s);
}
