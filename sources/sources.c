#include "sources/sources.h"

#include <stdlib.h>
#include <string.h>

#include "sources/ntp_driver.h"
#include "sources/pps_driver.h"
#include "sources/sock_driver.h"

typedef struct entry {
    tb_source_config cfg;
    tb_source *src;
    tb_pool *pool;
} entry;

struct tb_sources {
    tb_source_env env;
    const tb_source_driver *drivers[TB_SOURCE_KIND_COUNT];
    entry *entries;
    size_t n;
};

/* Among sources of one name (a pool's members) the one measured last names the time best. */
static const tb_source *find_source(void *arg, const char *name)
{
    const tb_sources *set = arg;
    const tb_source *best = NULL;
    int64_t best_real = INT64_MIN;
    for (size_t i = 0; i < tb_sources_count(set); i++) {
        const tb_source *s = tb_sources_get(set, i);
        int64_t real, off, err;
        if (strcmp(tb_source_identity(s)->name, name) != 0)
            continue;
        bool have = tb_source_last(s, &real, &off, &err);
        if (!best || (have && real > best_real)) {
            best = s;
            best_real = have ? real : INT64_MIN;
        }
    }
    return best;
}

int tb_sources_create(const tb_source_env *env, tb_sources **out)
{
    tb_sources *set = calloc(1, sizeof(*set));
    if (!set)
        return TB_ERR_NOMEM;
    set->env = *env;
    set->env.find = find_source;
    set->env.find_arg = set;
    set->drivers[TB_SOURCE_NTP] = tb_ntp_driver();
    set->drivers[TB_SOURCE_NTS] = tb_nts_driver();
    set->drivers[TB_SOURCE_SOCK] = tb_sock_driver();
    set->drivers[TB_SOURCE_PPS] = tb_pps_driver();
    *out = set;
    return 0;
}

void tb_sources_set_driver(tb_sources *set, const tb_source_driver *drv)
{
    if ((unsigned)drv->kind < TB_SOURCE_KIND_COUNT && drv->kind != TB_SOURCE_POOL)
        set->drivers[drv->kind] = drv;
}

static void entry_stop(entry *e)
{
    tb_source_destroy(e->src);
    tb_pool_destroy(e->pool);
    e->src = NULL;
    e->pool = NULL;
}

static int entry_start(tb_sources *set, entry *e)
{
    if (e->cfg.kind == TB_SOURCE_POOL) {
        int err = tb_pool_create(&set->env, set->drivers[TB_SOURCE_NTP], &e->cfg, &e->pool);
        return err < 0 ? err : tb_pool_start(e->pool);
    }
    int err = tb_source_create(&set->env, set->drivers[e->cfg.kind], &e->cfg, NULL, &e->src);
    if (err < 0) {
        tb_log_error(set->env.log, "source %s %s (line %d): %s", tb_source_kind_name(e->cfg.kind),
                     e->cfg.address, e->cfg.line, tb_strerror(err));
        /* Keep it visible as an inert source. */
        int why = err;
        err = tb_source_create(&set->env, NULL, &e->cfg, NULL, &e->src);
        if (err == 0)
            tb_source_set_state(e->src, TB_SOURCE_STOPPED, "cannot create: %s", tb_strerror(why));
        return err;
    }
    if (set->drivers[e->cfg.kind] && tb_source_start(e->src) < 0)
        tb_log_warn(set->env.log, "source %s: %s", e->cfg.address, tb_source_reason(e->src));
    return 0;
}

int tb_sources_apply(tb_sources *set, const tb_source_config_list *list)
{
    tb_source_config_list old = {.n = set->n};
    old.items = calloc(set->n + 1, sizeof(*old.items));
    entry *next = calloc(list->n + 1, sizeof(*next));
    tb_sources_diff diff;
    if (!old.items || !next) {
        free(old.items);
        free(next);
        return TB_ERR_NOMEM;
    }
    for (size_t i = 0; i < set->n; i++)
        old.items[i] = set->entries[i].cfg;
    int err = tb_sources_diff_compute(&old, list, &diff);
    free(old.items);
    if (err < 0) {
        free(next);
        return err;
    }
    for (size_t i = 0; i < set->n; i++)
        if (diff.old_to_new[i] < 0)
            entry_stop(&set->entries[i]);
    for (size_t j = 0; j < list->n; j++) {
        long from = diff.new_from_old[j];
        if (from >= 0) {
            next[j] = set->entries[from];
            next[j].cfg.line = list->items[j].line;
            continue;
        }
        next[j].cfg = list->items[j];
        if (entry_start(set, &next[j]) < 0)
            tb_log_error(set->env.log, "source at line %d could not be started",
                         list->items[j].line);
    }
    tb_log_info(set->env.log, "sources: %zu kept, %zu stopped, %zu started", diff.n_keep,
                diff.n_stop, diff.n_start);
    tb_sources_diff_free(&diff);
    free(set->entries);
    set->entries = next;
    set->n = list->n;
    return 0;
}

size_t tb_sources_count(const tb_sources *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->entries[i].pool ? tb_pool_size(set->entries[i].pool) : !!set->entries[i].src;
    return n;
}

tb_source *tb_sources_get(const tb_sources *set, size_t i)
{
    for (size_t k = 0; k < set->n; k++) {
        const entry *e = &set->entries[k];
        size_t here = e->pool ? tb_pool_size(e->pool) : !!e->src;
        if (i < here)
            return e->pool ? tb_pool_member(e->pool, i) : e->src;
        i -= here;
    }
    return NULL;
}

size_t tb_sources_entries(const tb_sources *set)
{
    return set->n;
}

tb_pool *tb_sources_entry_pool(const tb_sources *set, size_t i)
{
    return i < set->n ? set->entries[i].pool : NULL;
}

void tb_sources_destroy(tb_sources *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        entry_stop(&set->entries[i]);
    free(set->entries);
    free(set);
}
