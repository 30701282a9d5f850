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
    /* a Roughtime request is 1024 bytes, a response well under 2 KiB; 600 a minute covers a
     * measurement of each of 128 peers every 16 s plus the sources; 16 MiB an hour is ~4x what
     * such a node sends */
    c->limits = (tb_measure_limits){
        .max_evidence = 4096, .rate_per_min = 600, .bytes_per_hour = 16 * 1024 * 1024};
}

static const char *const xc_keys[] = {
    "window",          "min_agree",     "drift_ppm", "peers_vote",
    "min_interval_ms", "peer_interval", "retention", "max_evidence",
    "origin_rate",     "origin_bytes",  NULL};

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
    long drift = out->xc.drift_ppb / 1000, minint = out->min_interval_ms;
    long peer = out->peer_interval_s, keep = out->retention_s;
    long maxev = (long)out->limits.max_evidence, rate = (long)out->limits.rate_per_min;
    long bytes = (long)out->limits.bytes_per_hour;
    int rc = tk_config_int(g, "window", 10, 86400, &window, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "min_agree", 1, 64, &agree, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "drift_ppm", 0, 1000, &drift, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "min_interval_ms", 10, 600000, &minint, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "peer_interval", 1, 3600, &peer, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "retention", 60, 315360000, &keep, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "max_evidence", 1024, 2 * TB_MEASURE_MAX_EVIDENCE, &maxev, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "origin_rate", 1, 1000000, &rate, c);
    if (rc == TB_OK)
        rc = tk_config_int(g, "origin_bytes", 65536, 1L << 40, &bytes, c);
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
    out->min_interval_ms = (uint32_t)minint;
    out->peer_interval_s = (uint32_t)peer;
    out->retention_s = (uint32_t)keep;
    out->limits = (tb_measure_limits){.max_evidence = (size_t)maxev,
                                      .rate_per_min = (uint32_t)rate,
                                      .bytes_per_hour = (uint64_t)bytes};
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
