/* The time node's keys in tbnode's config file: hosts_file and the crosscheck group. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "node/tk_internal.h"

/* Where errors go, and the file name when libconfig does not know it (a string load). */
typedef struct ctx {
    char *err;
    size_t errlen;
    const char *file;
} ctx;

__attribute__((format(printf, 4, 5))) static int fail(const ctx *c, const config_setting_t *at,
                                                      const char *key, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *file = config_setting_source_file(at);
    snprintf(c->err, c->errlen, "%s:%u: key '%s': %s", file ? file : c->file,
             config_setting_source_line(at), key, what);
    return TB_ERR_INVAL;
}

static int tk_config_int(const config_setting_t *g, const char *key, long lo, long hi, long *out,
                         const ctx *c)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    if (!s)
        return TB_OK;
    int t = config_setting_type(s);
    char full[64];
    snprintf(full, sizeof(full), "crosscheck.%s", key);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail(c, s, full, "must be an integer");
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    if (v < lo || v > hi)
        return fail(c, s, full, "%lld is outside %ld..%ld", v, lo, hi);
    *out = (long)v;
    return TB_OK;
}

void tb_tk_config_default(tb_tk_config *c)
{
    memset(c, 0, sizeof(*c));
    c->xc = tb_xc_config_default();
    c->min_interval_ms = 1000;
    c->peer_interval_s = 16;
    c->retention_s = 7 * 86400;
}

static const char *const xc_keys[] = {
    "window",        "min_agree", "drift_ppm", "drift_floor_ppb", "peers_vote", "min_interval_ms",
    "peer_interval", "retention", "hold_runs", "grace",           NULL};

static int parse_hosts(const config_setting_t *s, tb_tk_config *out, const ctx *c)
{
    const char *v = config_setting_get_string(s);
    if (!v || !v[0])
        return fail(c, s, "hosts_file", "must be a non-empty string");
    const char *file = config_setting_source_file(s);
    const char *slash = file ? strrchr(file, '/') : NULL;
    int dir = v[0] == '/' || !slash ? 0 : (int)(slash - file) + 1;
    if ((size_t)dir + strlen(v) >= sizeof(out->hosts_file))
        return fail(c, s, "hosts_file", "path too long");
    snprintf(out->hosts_file, sizeof(out->hosts_file), "%.*s%s", dir, file ? file : "", v);
    return TB_OK;
}

static int parse_xc(const config_setting_t *g, tb_tk_config *out, const ctx *c)
{
    if (!config_setting_is_group(g))
        return fail(c, g, "crosscheck", "must be a group { ... }");
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        size_t k = 0;
        while (xc_keys[k] && strcmp(xc_keys[k], config_setting_name(s)) != 0)
            k++;
        if (!xc_keys[k])
            return fail(c, s, "crosscheck", "unknown key '%s'", config_setting_name(s));
    }
    long window = out->xc.window_ns / (long)TB_NS_PER_SEC, agree = out->xc.min_agree;
    long drift = out->xc.drift_ppb / 1000, floor = out->xc.drift_floor_ppb;
    long minint = out->min_interval_ms, hold = out->xc.hold_runs;
    long grace = out->xc.grace_ns / (long)TB_NS_PER_SEC;
    long peer = out->peer_interval_s, keep = out->retention_s;
    int rc = tk_config_int(g, "window", 10, 86400, &window, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "min_agree", 1, 64, &agree, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "drift_ppm", 0, 1000, &drift, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "drift_floor_ppb", 0, 1000000, &floor, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "hold_runs", 1, 100, &hold, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "grace", 0, 86400, &grace, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "min_interval_ms", 10, 600000, &minint, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "peer_interval", 1, 3600, &peer, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "retention", 60, 315360000, &keep, c);
    if (rc != TB_OK)
        return rc;
    const config_setting_t *pv = config_setting_get_member(g, "peers_vote");
    if (pv && config_setting_type(pv) != CONFIG_TYPE_BOOL)
        return fail(c, pv, "crosscheck.peers_vote", "must be true or false");
    if (pv)
        out->xc.peers_vote = config_setting_get_bool(pv);
    out->xc.window_ns = (int64_t)window * (int64_t)TB_NS_PER_SEC;
    out->xc.min_agree = (unsigned)agree;
    out->xc.drift_ppb = (uint32_t)drift * 1000;
    out->xc.drift_floor_ppb = (uint32_t)floor;
    out->xc.hold_runs = (unsigned)hold;
    out->xc.grace_ns = (int64_t)grace * (int64_t)TB_NS_PER_SEC;
    out->min_interval_ms = (uint32_t)minint;
    out->peer_interval_s = (uint32_t)peer;
    out->retention_s = (uint32_t)keep;
    return TB_OK;
}

int tb_tk_config_parse(const tb_node_config *cfg, tb_tk_config *out, char *err, size_t errlen)
{
    tb_tk_config_default(out);
    ctx c = {err, errlen, cfg->file[0] ? cfg->file : "config"};
    const config_setting_t *h = tb_node_config_section(cfg, "hosts_file");
    if (h && parse_hosts(h, out, &c) != TB_OK)
        return TB_ERR_INVAL;
    const config_setting_t *g = tb_node_config_section(cfg, "crosscheck");
    if (g && parse_xc(g, out, &c) != TB_OK)
        return TB_ERR_INVAL;
    return TB_OK;
}
