/* The time node's keys in tbnode's config file (hosts_file and the crosscheck group), and the
 * check of the whole file before anything opens. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "node/tk_internal.h"
#include "roughtime/config.h"
#include "sources/config.h"

void tb_tk_config_default(tb_tk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->xc = tb_xc_config_default();
    c->min_interval_ms = 1000;
    c->peer_interval_s = 16;
    c->retention_s = 7 * 86400;
    c->batch_interval_ms = 1000;
    c->store_origin_bytes = 64ULL << 20;
    c->store_bytes = 1ULL << 30;
    /* a Roughtime request is 1024 bytes, a response well under 2 KiB; 600 a minute covers a
     * measurement of each of 128 peers every 16 s plus the sources; 16 MiB an hour is ~4x what
     * such a node sends */
    c->limits = tb_tk_limits_default();
}

static const char *const xc_keys[] = {"window",
                                      "min_agree",
                                      "drift_ppm",
                                      "drift_floor_ppb",
                                      "peers_vote",
                                      "min_interval_ms",
                                      "peer_interval",
                                      "retention",
                                      "hold_runs",
                                      "grace",
                                      "max_evidence",
                                      "origin_rate",
                                      "origin_bytes",
                                      "max_radius",
                                      "max_clock_off",
                                      "batch_interval_ms",
                                      "store_origin_bytes",
                                      "store_bytes"};

static int parse_hosts(const config_setting_t *s, tb_tk_config *out, const tb_cfg_ctx *c)
{
    const char *v = config_setting_get_string(s);
    if (!v || !v[0])
        return tb_cfg_fail(c, s, "hosts_file", "must be a non-empty string");
    const char *file = config_setting_source_file(s);
    const char *slash = file ? strrchr(file, '/') : NULL;
    int dir = v[0] == '/' || !slash ? 0 : (int)(slash - file) + 1;
    if ((size_t)dir + strlen(v) >= sizeof(out->hosts_file))
        return tb_cfg_fail(c, s, "hosts_file", "path too long");
    snprintf(out->hosts_file, sizeof(out->hosts_file), "%.*s%s", dir, file ? file : "", v);
    return TB_OK;
}

static int parse_xc(const config_setting_t *g, tb_tk_config *out, const tb_cfg_ctx *c)
{
    if (!config_setting_is_group(g))
        return tb_cfg_fail(c, g, NULL, "must be a group { ... }");
    int rc = tb_cfg_check_keys(c, g, xc_keys, sizeof(xc_keys) / sizeof(xc_keys[0]));
    int64_t window = out->xc.window_ns / (int64_t)TB_NS_PER_SEC;
    int64_t drift = out->xc.drift_ppb / 1000, agree = out->xc.min_agree;
    int64_t grace = out->xc.grace_ns / (int64_t)TB_NS_PER_SEC;
    int64_t radius_ms = out->xc.max_radius_ns / (int64_t)TB_NS_PER_MS;
    int64_t clock_off_ms = out->xc.max_clock_off_ns / (int64_t)TB_NS_PER_MS;
    int64_t maxev = (int64_t)out->limits.max_evidence, bytes = (int64_t)out->limits.bytes_per_hour;
    int64_t sob = (int64_t)out->store_origin_bytes, sb = (int64_t)out->store_bytes;
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "window", 10, 86400, &window);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "min_agree", 1, 64, &agree);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "drift_ppm", 0, 1000, &drift);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "drift_floor_ppb", 0, 1000000, &out->xc.drift_floor_ppb);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "hold_runs", 1, 100, &out->xc.hold_runs);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "grace", 0, 86400, &grace);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "max_radius", 1, 86400000, &radius_ms);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "max_clock_off", 1, 86400000, &clock_off_ms);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "min_interval_ms", 10, 600000, &out->min_interval_ms);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "peer_interval", 1, 3600, &out->peer_interval_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "retention", 60, 315360000, &out->retention_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "batch_interval_ms", 10, 60000, &out->batch_interval_ms);
    if (rc == TB_OK)
        rc = tb_cfg_get_bool(c, g, "peers_vote", &out->xc.peers_vote);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "max_evidence", 1024, 2 * TB_MEASURE_MAX_EVIDENCE, &maxev);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "origin_rate", 1, 1000000, &out->limits.rate_per_min);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "origin_bytes", 65536, INT64_C(1) << 40, &bytes);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "store_origin_bytes", 65536, INT64_C(1) << 40, &sob);
    if (rc == TB_OK)
        rc = tb_cfg_get_i64(c, g, "store_bytes", INT64_C(1) << 20, INT64_C(1) << 42, &sb);
    if (rc != TB_OK)
        return rc;
    out->store_origin_bytes = (uint64_t)sob;
    out->store_bytes = (uint64_t)sb;
    out->xc.window_ns = window * (int64_t)TB_NS_PER_SEC;
    out->xc.drift_ppb = (uint32_t)drift * 1000;
    out->xc.grace_ns = grace * (int64_t)TB_NS_PER_SEC;
    out->xc.max_radius_ns = radius_ms * (int64_t)TB_NS_PER_MS;
    out->xc.max_clock_off_ns = clock_off_ms * (int64_t)TB_NS_PER_MS;
    out->xc.min_agree = (unsigned)agree;
    out->limits.max_evidence = (size_t)maxev;
    out->limits.bytes_per_hour = (uint64_t)bytes;
    return TB_OK;
}

int tb_tk_config_parse(const tb_node_config *cfg, tb_tk_config *out, char *err, size_t errlen)
{
    tb_tk_config_default(out);
    const char *file = cfg->file[0] ? cfg->file : "config";
    tb_cfg_ctx c, xc;
    tb_cfg_ctx_init(&c, err, errlen, file, "%s", "");
    tb_cfg_ctx_init(&xc, err, errlen, file, "crosscheck");
    const config_setting_t *h = tb_node_config_section(cfg, "hosts_file");
    if (h && parse_hosts(h, out, &c) != TB_OK)
        return TB_ERR_INVAL;
    const config_setting_t *g = tb_node_config_section(cfg, "crosscheck");
    if (g && parse_xc(g, out, &xc) != TB_OK)
        return TB_ERR_INVAL;
    return TB_OK;
}

typedef struct check_ctx {
    const tb_node_config *cfg;
    const char *file;
    tb_tk_check_say say;
    void *arg;
    unsigned flags;
    unsigned errors;
} check_ctx;

/* One line per finding: a value quoted in a message may hold a newline from the file. */
static void report(check_ctx *k, int is_error, const char *text)
{
    char line[TB_NODE_ERR_MAX];
    snprintf(line, sizeof(line), "%s", text);
    for (char *c = line; *c; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    k->errors += is_error != 0;
    k->say(k->arg, is_error, line);
}

static void say_error(check_ctx *k, const char *text)
{
    report(k, 1, text);
}

static void warnf(check_ctx *k, const config_setting_t *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warnf(check_ctx *k, const config_setting_t *at, const char *key, const char *fmt, ...)
{
    char text[TB_NODE_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    tb_cfg_vformat(text, sizeof(text), k->file, at ? (unsigned)config_setting_source_line(at) : 0,
                   key, fmt, ap);
    va_end(ap);
    report(k, 0, text);
}

/* The node opens these only after binding; a path this user cannot read would fail it then. */
static void check_readable(check_ctx *k, const char *path, const char *key, const char *lookup)
{
    if (!(k->flags & TB_TK_CHECK_FILES) || !path[0] || access(path, R_OK) == 0)
        return;
    int e = errno;
    warnf(k, k->cfg->lc ? config_lookup(k->cfg->lc, lookup) : NULL, key, "cannot read '%.200s': %s",
          path, strerror(e));
}

static int same_source(const tb_source_config *a, const tb_source_config *b)
{
    if (a->kind != b->kind)
        return 0;
    return a->kind == TB_SOURCE_POOL ? strcmp(a->name, b->name) == 0
                                     : strcmp(a->address, b->address) == 0;
}

/* A source listed twice is measured, gossiped and judged twice under one identity. */
static void check_duplicates(check_ctx *k, const config_setting_t *list,
                             const tb_source_config_list *l, const unsigned *idx)
{
    for (size_t j = 1; j < l->n; j++) {
        for (size_t i = 0; i < j; i++) {
            if (!same_source(&l->items[i], &l->items[j]))
                continue;
            /* idx: the entries' places in the file when some were left out as bad */
            unsigned at = idx ? idx[j] : (unsigned)j;
            char key[32];
            snprintf(key, sizeof(key), "sources.[%u]", at);
            const tb_source_config *d = &l->items[j];
            warnf(k, config_setting_get_elem(list, at), key,
                  "%s source '%s' is listed twice (first at line %d)", tb_source_kind_name(d->kind),
                  d->kind == TB_SOURCE_POOL ? d->name : d->address, l->items[i].line);
            break;
        }
    }
}

static void say_each(void *arg, const char *text)
{
    say_error(arg, text);
}

typedef struct entry_ctx {
    const config_setting_t *list;
    unsigned i;
    tb_source_config *out;
} entry_ctx;

static int read_entry(void *arg, char *err, size_t errlen)
{
    entry_ctx *e = arg;
    return tb_sources_config_parse_entry(e->list, e->i, e->out, err, errlen);
}

/* Every entry on its own, each with every error (TB_TK_CHECK_ALL); the good ones into l, their
 * places in the file into idx (TB_SOURCES_MAX). */
static void check_entries(check_ctx *k, const config_setting_t *s, tb_source_config_list *l,
                          unsigned *idx)
{
    char err[TB_NODE_ERR_MAX];
    int n = config_setting_length(s);
    if (tb_sources_config_parse(s, l, err, sizeof(err)) == TB_OK) {
        for (unsigned i = 0; i < l->n; i++)
            idx[i] = i;
        return;
    }
    tb_sources_config_free(l);
    /* the list itself is wrong: nothing to read entry by entry */
    if (!config_setting_is_list(s) || n > TB_SOURCES_MAX ||
        !(l->items = calloc((size_t)n, sizeof(*l->items)))) {
        say_error(k, err);
        return;
    }
    char err2[TB_NODE_ERR_MAX];
    for (unsigned i = 0; i < (unsigned)n; i++) {
        entry_ctx e = {s, i, &l->items[l->n]};
        const config_setting_t *elem = config_setting_get_elem(s, i);
        unsigned bad = tb_cfg_each_error(k->cfg->lc, elem, read_entry, &e, say_each, k);
        /* an entry whose every error was set aside still counts as bad: it was */
        if (bad == 0 && read_entry(&e, err2, sizeof(err2)) == TB_OK)
            idx[l->n++] = i;
    }
    /* every entry good alone: the list's error is between entries (a pps lock naming none) */
    if (l->n == (size_t)n)
        say_error(k, err);
}

static size_t check_sources(check_ctx *k)
{
    const config_setting_t *s = tb_node_config_section(k->cfg, "sources");
    char err[TB_NODE_ERR_MAX];
    tb_source_config_list l = {0};
    unsigned idx[TB_SOURCES_MAX] = {0};
    if (!s)
        return 0;
    if (k->flags & TB_TK_CHECK_ALL) {
        check_entries(k, s, &l, idx);
    } else if (tb_sources_config_parse(s, &l, err, sizeof(err)) != TB_OK) {
        say_error(k, err);
        return 0;
    }
    check_duplicates(k, s, &l, k->flags & TB_TK_CHECK_ALL ? idx : NULL);
    size_t n = l.n;
    tb_sources_config_free(&l);
    return n;
}

typedef struct rt_ctx {
    const tb_node_config *cfg;
    tb_rt_config *rt;
} rt_ctx;

/* The group is looked up every time: the run before may have set it aside. */
static int read_rt(void *arg, char *err, size_t errlen)
{
    rt_ctx *r = arg;
    tb_rt_config_clear(r->rt);
    tb_rt_config_default(r->rt);
    return tb_rt_config_parse(tb_node_config_section(r->cfg, "roughtime"), r->rt, err, errlen);
}

static void check_roughtime(check_ctx *k, tb_rt_config *rt)
{
    char err[TB_NODE_ERR_MAX];
    tb_rt_config_default(rt);
    rt_ctx r = {k->cfg, rt};
    if (k->flags & TB_TK_CHECK_ALL) {
        if (tb_cfg_each_error(k->cfg->lc, NULL, read_rt, &r, say_each, k) != 0)
            return;
    } else if (read_rt(&r, err, sizeof(err)) != TB_OK) {
        say_error(k, err);
        return;
    }
    if (rt->enabled)
        check_readable(k, rt->key_path, "roughtime.key", "roughtime.key");
}

typedef struct tk_ctx {
    const tb_node_config *cfg;
    tb_tk_config *tc;
} tk_ctx;

static int read_tk(void *arg, char *err, size_t errlen)
{
    tk_ctx *t = arg;
    return tb_tk_config_parse(t->cfg, t->tc, err, errlen);
}

static void check_tk(check_ctx *k)
{
    char err[TB_NODE_ERR_MAX];
    tb_tk_config tc;
    tk_ctx t = {k->cfg, &tc};
    if (k->flags & TB_TK_CHECK_ALL) {
        if (tb_cfg_each_error(k->cfg->lc, NULL, read_tk, &t, say_each, k) == 0)
            check_readable(k, tc.hosts_file, "hosts_file", "hosts_file");
    } else if (read_tk(&t, err, sizeof(err)) != TB_OK) {
        say_error(k, err);
    } else {
        check_readable(k, tc.hosts_file, "hosts_file", "hosts_file");
    }
}

unsigned tb_tk_config_check(const tb_node_config *cfg, unsigned flags, tb_tk_check_say say,
                            void *arg, char *summary, size_t summary_len)
{
    check_ctx k = {.cfg = cfg,
                   .file = cfg->file[0] ? cfg->file : "config",
                   .say = say,
                   .arg = arg,
                   .flags = flags};
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_check(cfg, err, sizeof(err)) != TB_OK)
        say_error(&k, err);
    check_readable(&k, cfg->cert, "cert", "cert");
    check_readable(&k, cfg->key, "key", "key");
    check_readable(&k, cfg->ca, "ca", "ca");
    check_tk(&k);
    size_t nsrc = check_sources(&k);
    tb_rt_config rt;
    check_roughtime(&k, &rt);
    if (k.errors == 0 && summary && summary_len) {
        char listen[TB_ADDR_HOST_MAX + 16];
        tb_addr_hostport_format(&cfg->listen, listen, sizeof(listen));
        snprintf(summary, summary_len,
                 "mode %s, listen %s, %zu seed peer(s), %zu source(s), roughtime server %s%s, "
                 "state %s",
                 tb_node_mode_name(cfg->mode), cfg->mode == TB_NODE_CLIENT ? "(none)" : listen,
                 cfg->npeers, nsrc, rt.enabled ? "on " : "off", rt.enabled ? rt.udp.listen : "",
                 cfg->state_dir);
    }
    tb_rt_config_clear(&rt);
    return k.errors;
}
