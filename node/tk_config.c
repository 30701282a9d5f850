/* The time node's keys in tbnode's config file: hosts_file and the crosscheck group. */
#include <stdio.h>
#include <string.h>

#include "common/cfg.h"
#include "node/tk_internal.h"

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
    c->limits = (tb_measure_limits){
        .max_evidence = 4096, .rate_per_min = 600, .bytes_per_hour = 16 * 1024 * 1024};
}

static const char *const xc_keys[] = {
    "window",          "min_agree",     "drift_ppm",    "drift_floor_ppb",   "peers_vote",
    "min_interval_ms", "peer_interval", "retention",    "hold_runs",         "grace",
    "max_evidence",    "origin_rate",   "origin_bytes", "batch_interval_ms", "store_origin_bytes",
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
