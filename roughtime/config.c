#include "roughtime/config.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/cfg.h"
#include "roughtime/keyfile.h"

const char *const tb_rt_config_keys[TB_RT_CONFIG_NKEYS] = {"listen",
                                                           "key",
                                                           "max_batch",
                                                           "queue",
                                                           "flush_interval_us",
                                                           "radius",
                                                           "radius_from_kernel",
                                                           "key_lifetime",
                                                           "threads",
                                                           "enabled",
                                                           "tcp",
                                                           "cert",
                                                           "online_key",
                                                           "cert_warn"};

void tb_rt_config_default(tb_rt_config *c)
{
    memset(c, 0, sizeof(*c));
    c->threads = 1;
    tb_rt_srv_config_default(&c->srv);
    tb_rt_udp_config_default(&c->udp);
}

typedef struct ctx {
    const config_setting_t *g;
    tb_cfg_ctx e;
} ctx;

static int parse_listen(const ctx *c, tb_rt_config *out)
{
    bool present;
    int rc =
        tb_cfg_get_str(&c->e, c->g, "listen", out->udp.listen, sizeof(out->udp.listen), &present);
    if (rc < 0 || !present)
        return rc;
    tb_addr a;
    const char *why = "";
    if (tb_addr_parse_numeric(out->udp.listen, strlen(out->udp.listen), TB_ADDR_PORT_ZERO_OK, &a,
                              &why) != TB_OK)
        return tb_cfg_fail(&c->e, config_setting_get_member(c->g, "listen"), "listen",
                           "\"%s\" is not a numeric ADDR:PORT or [V6]:PORT: %s", out->udp.listen,
                           why);
    return 0;
}

/* A relative path is taken from the folder of the file that names it, so the node finds it
 * whatever its working directory. dst is "" when the key is absent. */
static int parse_path(const ctx *c, const char *name, char dst[TB_RT_CONFIG_PATH_MAX])
{
    char v[TB_RT_CONFIG_PATH_MAX] = "";
    bool present = false;
    dst[0] = 0;
    int rc = tb_cfg_get_str(&c->e, c->g, name, v, sizeof(v), &present);
    if (rc < 0 || !present)
        return rc;
    const config_setting_t *s = config_setting_get_member(c->g, name);
    const char *file = config_setting_source_file(s);
    const char *slash = file ? strrchr(file, '/') : NULL;
    size_t dir = v[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
    if (dir + strlen(v) >= TB_RT_CONFIG_PATH_MAX)
        return tb_cfg_fail(&c->e, s, name, "path too long with the config's folder");
    memcpy(dst, file ? file : "", dir);
    memcpy(dst + dir, v, strlen(v) + 1);
    return 0;
}

/* Either the long-term `key`, or an offline delegation (`cert` and `online_key`). */
static int parse_key_path(const ctx *c, bool required, tb_rt_config *out)
{
    int rc = parse_path(c, "key", out->key_path);
    if (rc == 0)
        rc = parse_path(c, "cert", out->cert_path);
    if (rc == 0)
        rc = parse_path(c, "online_key", out->online_key_path);
    if (rc < 0)
        return rc;
    bool key = out->key_path[0], cert = out->cert_path[0], online = out->online_key_path[0];
    if (cert != online)
        return tb_cfg_fail(&c->e, c->g, cert ? "online_key" : "cert",
                           "missing: a delegation needs both cert and online_key "
                           "(tbroughtime delegate)");
    if (key && cert)
        return tb_cfg_fail(&c->e, c->g, "cert", "give either key, or cert and online_key");
    if (!key && !cert && required)
        return tb_cfg_fail(&c->e, c->g, "key",
                           "missing: the long-term key file (tbroughtime keygen --out FILE)");
    return 0;
}

static int parse_numbers(const ctx *c, tb_rt_config *out)
{
    int64_t batch = out->srv.max_batch, queue = -1, flush_us = 1000, radius = out->udp.radius_s;
    int64_t lifetime = (int64_t)out->srv.dele_lifetime_s, threads = out->threads;
    int rc = tb_cfg_get_i64(&c->e, c->g, "max_batch", 1, TB_RT_SRV_MAX_BATCH, &batch);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "queue", 1, TB_RT_SRV_MAX_QUEUE, &queue);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "flush_interval_us", 1, 10000000, &flush_us);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "radius", 1, 86400, &radius);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "key_lifetime", 60, 31536000, &lifetime);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "threads", 1, TB_RT_CONFIG_MAX_THREADS, &threads);
    if (rc < 0)
        return rc;
    if (queue < 0)
        queue = 4 * batch > TB_RT_SRV_MAX_QUEUE ? TB_RT_SRV_MAX_QUEUE : 4 * batch;
    if (queue < batch)
        return tb_cfg_fail(&c->e, config_setting_get_member(c->g, "queue"), "queue",
                           "%lld is below max_batch %lld", (long long)queue, (long long)batch);
    out->srv.max_batch = (unsigned)batch;
    out->srv.queue_cap = (unsigned)queue;
    out->srv.dele_lifetime_s = (uint64_t)lifetime;
    out->udp.flush_interval_ns = (uint64_t)flush_us * TB_NS_PER_US;
    out->udp.radius_s = (uint32_t)radius;
    out->threads = (unsigned)threads;
    out->udp.reuseport = threads > 1;
    return 0;
}

static int parse_group(const ctx *c, tb_rt_config *out)
{
    if (config_setting_type(c->g) != CONFIG_TYPE_GROUP)
        return tb_cfg_fail(&c->e, c->g, NULL, "must be a group { listen = ...; key = ...; }");
    bool enabled = true, from_kernel = out->udp.radius_from_kernel != 0, tcp = out->udp.tcp != 0;
    int rc = tb_cfg_check_keys(&c->e, c->g, tb_rt_config_keys, TB_RT_CONFIG_NKEYS);
    if (rc == 0)
        rc = tb_cfg_get_bool(&c->e, c->g, "enabled", &enabled);
    if (rc == 0)
        rc = tb_cfg_get_bool(&c->e, c->g, "radius_from_kernel", &from_kernel);
    if (rc == 0)
        rc = tb_cfg_get_bool(&c->e, c->g, "tcp", &tcp);
    int64_t warn = (int64_t)(out->udp.cert_warn_ns / TB_NS_PER_SEC);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c->e, c->g, "cert_warn", 0, 31536000, &warn);
    out->udp.cert_warn_ns = (uint64_t)warn * TB_NS_PER_SEC;
    if (rc == 0)
        rc = parse_listen(c, out);
    if (rc == 0)
        rc = parse_key_path(c, enabled, out);
    if (rc == 0)
        rc = parse_numbers(c, out);
    out->enabled = enabled;
    out->udp.radius_from_kernel = from_kernel;
    out->udp.tcp = tcp;
    return rc;
}

int tb_rt_config_parse(const config_setting_t *group, tb_rt_config *out, char *err, size_t errlen)
{
    tb_rt_config_default(out);
    if (!group)
        return 0;
    ctx c = {.g = group};
    tb_cfg_ctx_init(&c.e, err, errlen, "config", "roughtime");
    int rc = parse_group(&c, out);
    if (rc < 0)
        tb_rt_config_default(out);
    return rc;
}

int tb_rt_config_load_key(tb_rt_config *c, int64_t now_ns, char *err, size_t errlen)
{
    if (!c->cert_path[0])
        return tb_rt_key_load(c->key_path, c->srv.longterm_sk, err, errlen);
    c->srv.has_delegation = 1;
    return tb_rt_delegation_load(c->cert_path, c->online_key_path, now_ns / (int64_t)TB_NS_PER_SEC,
                                 &c->srv.delegation, err, errlen);
}

void tb_rt_config_clear(tb_rt_config *c)
{
    sodium_memzero(c->srv.longterm_sk, sizeof(c->srv.longterm_sk));
    sodium_memzero(&c->srv.delegation, sizeof(c->srv.delegation));
}
