#include "sources/pool.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "ntp/packet.h"
#include "resolve/resolver.h"

#define MAX_BAD 32

typedef struct bad_addr {
    tb_addr addr;
    bool permanent; /* demobilised (KoD DENY/RSTR): never retried */
} bad_addr;

struct tb_pool {
    tb_source_env env;
    const tb_source_driver *drv;
    tb_source_config cfg;
    char host[TB_SOURCE_NAME_MAX];
    char port[8];
    tb_source *members[TB_POOL_MAX_MEMBERS];
    tb_addr member_addr[TB_POOL_MAX_MEMBERS];
    size_t n;
    tb_addr spare[TB_RESOLVE_MAX_ADDRS];
    size_t n_spare;
    bad_addr bad[MAX_BAD];
    size_t n_bad, bad_next;
    ev_timer resolve_timer;
    ev_timer maint_timer;
    bool running, resolving;
    uint64_t ticket;
    uint64_t last_resolve;
    unsigned long replacements;
    char status[400];
};

static bool is_bad(const tb_pool *p, const tb_addr *a)
{
    for (size_t i = 0; i < p->n_bad; i++)
        if (tb_addr_equal(&p->bad[i].addr, a))
            return true;
    return false;
}

static bool in_use(const tb_pool *p, const tb_addr *a)
{
    for (size_t i = 0; i < p->n; i++)
        if (tb_addr_equal(&p->member_addr[i], a))
            return true;
    return false;
}

static void mark_bad(tb_pool *p, const tb_addr *a, bool permanent)
{
    if (is_bad(p, a))
        return;
    p->bad[p->bad_next] = (bad_addr){.addr = *a, .permanent = permanent};
    p->bad_next = (p->bad_next + 1) % MAX_BAD;
    if (p->n_bad < MAX_BAD)
        p->n_bad++;
}

static void forget_transient_bad(tb_pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_bad; i++)
        if (p->bad[i].permanent)
            p->bad[k++] = p->bad[i];
    p->n_bad = k;
    p->bad_next = k % MAX_BAD;
}

static void update_status(tb_pool *p)
{
    snprintf(p->status, sizeof(p->status), "%zu of %u members, %zu spare, %lu replaced", p->n,
             p->cfg.count, p->n_spare, p->replacements);
}

static void member_state(void *arg, tb_source *s)
{
    tb_pool *p = arg;
    tb_source_state st = tb_source_state_of(s);
    if (st == TB_SOURCE_UNREACHABLE || st == TB_SOURCE_DEMOBILISED)
        ev_feed_event(p->env.loop, &p->maint_timer, EV_TIMER); /* replace it outside the hook */
}

static void add_member(tb_pool *p, const tb_addr *a)
{
    char text[TB_SOURCE_ADDR_MAX];
    tb_addr_format(a, text, sizeof(text));
    tb_source *s;
    if (tb_source_create(&p->env, p->drv, &p->cfg, text, &s) < 0) {
        tb_log_warn(p->env.log, "pool %s: cannot create a source for %s", p->cfg.name, text);
        mark_bad(p, a, false);
        return;
    }
    p->members[p->n] = s;
    p->member_addr[p->n] = *a;
    p->n++;
    tb_source_set_state_hook(s, member_state, p);
    if (tb_source_start(s) < 0)
        mark_bad(p, a, false); /* the source shows why; maintenance replaces it */
}

static void fill(tb_pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_spare; i++) {
        const tb_addr *a = &p->spare[i];
        if (p->n < p->cfg.count && !in_use(p, a) && !is_bad(p, a))
            add_member(p, a);
        else if (!in_use(p, a) && !is_bad(p, a))
            p->spare[k++] = *a;
    }
    p->n_spare = k;
    update_status(p);
}

static void start_resolve(tb_pool *p);

static void resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    tb_pool *p = arg;
    p->resolving = false;
    uint64_t retry = (uint64_t)tb_ntp_log2_to_ns(p->cfg.minpoll < 0 ? 0 : p->cfg.minpoll);
    double again = (double)p->cfg.resolve_interval;
    if (err < 0) {
        snprintf(p->status, sizeof(p->status), "cannot resolve %s: %s", p->host, why);
        tb_log_warn(p->env.log, "pool %s: %s", p->cfg.name, p->status);
        again = (double)retry / 1e9;
    } else {
        p->n_spare = n < TB_RESOLVE_MAX_ADDRS ? n : TB_RESOLVE_MAX_ADDRS;
        memcpy(p->spare, addrs, p->n_spare * sizeof(*addrs));
        fill(p);
        tb_log_info(p->env.log, "pool %s: %zu addresses, %s", p->cfg.name, n, p->status);
        if (p->n < p->cfg.count) /* not enough good servers: try again sooner */
            again = (double)retry / 1e9 < again ? (double)retry / 1e9 : again;
    }
    ev_timer_stop(p->env.loop, &p->resolve_timer);
    ev_timer_set(&p->resolve_timer, again, 0.0);
    ev_timer_start(p->env.loop, &p->resolve_timer);
}

static void start_resolve(tb_pool *p)
{
    if (p->resolving || !p->running)
        return;
    if (!p->env.resolver) {
        snprintf(p->status, sizeof(p->status), "no resolver to resolve %s", p->host);
        return;
    }
    p->last_resolve = tb_clock_mono(p->env.clock);
    if (p->env.resolver->resolve(p->env.resolver, p->host, p->port, resolved, p, &p->ticket) == 0)
        p->resolving = true;
    snprintf(p->status, sizeof(p->status), "resolving %s", p->host);
}

static void resolve_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_pool *p = w->data;
    (void)loop;
    (void)revents;
    forget_transient_bad(p);
    start_resolve(p);
}

static void maint_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_pool *p = w->data;
    (void)loop;
    (void)revents;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        tb_source *s = p->members[i];
        tb_source_state st = tb_source_state_of(s);
        if (st == TB_SOURCE_UNREACHABLE || st == TB_SOURCE_DEMOBILISED || st == TB_SOURCE_STOPPED) {
            tb_log_info(p->env.log, "pool %s: replacing %s (%s: %s)", p->cfg.name,
                        tb_source_identity(s)->address, tb_source_state_name(st),
                        tb_source_reason(s));
            mark_bad(p, &p->member_addr[i], st == TB_SOURCE_DEMOBILISED);
            tb_source_destroy(s);
            p->replacements++;
            continue;
        }
        p->members[k] = s;
        p->member_addr[k] = p->member_addr[i];
        k++;
    }
    p->n = k;
    fill(p);
    if (p->n < p->cfg.count && p->running)
        start_resolve(p);
}

int tb_pool_create(const tb_source_env *env, const tb_source_driver *member_driver,
                   const tb_source_config *cfg, tb_pool **out)
{
    *out = NULL;
    if (cfg->kind != TB_SOURCE_POOL || cfg->count == 0 || cfg->count > TB_POOL_MAX_MEMBERS)
        return TB_ERR_INVAL;
    tb_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return TB_ERR_NOMEM;
    p->env = *env;
    p->drv = member_driver;
    p->cfg = *cfg;
    tb_addr_hostport hp;
    if (tb_addr_parse_default(cfg->name, strlen(cfg->name), 123, 0, &hp, NULL) != TB_OK) {
        free(p);
        return TB_ERR_INVAL;
    }
    snprintf(p->host, sizeof(p->host), "%s", hp.host);
    snprintf(p->port, sizeof(p->port), "%u", (unsigned)hp.port);
    ev_init(&p->resolve_timer, resolve_timer_cb);
    p->resolve_timer.data = p;
    ev_init(&p->maint_timer, maint_cb);
    p->maint_timer.data = p;
    snprintf(p->status, sizeof(p->status), "not started");
    *out = p;
    return 0;
}

int tb_pool_start(tb_pool *p)
{
    if (p->running)
        return 0;
    p->running = true;
    start_resolve(p);
    return 0;
}

void tb_pool_stop(tb_pool *p)
{
    if (!p->running)
        return;
    p->running = false;
    if (p->resolving && p->env.resolver)
        p->env.resolver->cancel(p->env.resolver, p->ticket);
    p->resolving = false;
    ev_timer_stop(p->env.loop, &p->resolve_timer);
    ev_clear_pending(p->env.loop, &p->maint_timer);
    for (size_t i = 0; i < p->n; i++)
        tb_source_destroy(p->members[i]);
    p->n = 0;
    snprintf(p->status, sizeof(p->status), "stopped");
}

void tb_pool_destroy(tb_pool *p)
{
    if (!p)
        return;
    tb_pool_stop(p);
    free(p);
}

size_t tb_pool_size(const tb_pool *p)
{
    return p->n;
}

tb_source *tb_pool_member(const tb_pool *p, size_t i)
{
    return i < p->n ? p->members[i] : NULL;
}

const char *tb_pool_status(const tb_pool *p)
{
    return p->status;
}

unsigned long tb_pool_replacements(const tb_pool *p)
{
    return p->replacements;
}
