#include "roughtime/config.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
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
                                                           "enabled"};

__attribute__((format(printf, 5, 6))) static int
fail(char *err, size_t errlen, const config_setting_t *at, const char *key, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *file = config_setting_source_file(at);
    snprintf(err, errlen, "%s:%u: roughtime%s%s: %s", file ? file : "config",
             config_setting_source_line(at), key ? "." : "", key ? key : "", what);
    return TB_ERR_INVAL;
}

void tb_rt_config_default(tb_rt_config *c)
{
    memset(c, 0, sizeof(*c));
    c->threads = 1;
    tb_rt_srv_config_default(&c->srv);
    tb_rt_udp_config_default(&c->udp);
}

typedef struct ctx {
    const config_setting_t *g;
    char *err;
    size_t errlen;
} ctx;

/* An integer key in lo..hi (int or int64 in the file); absent leaves *out alone. */
static int get_num(const ctx *c, const char *key, long long lo, long long hi, long long *out)
{
    const config_setting_t *s = config_setting_get_member(c->g, key);
    if (!s)
        return 0;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail(c->err, c->errlen, s, key, "must be an integer");
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    if (v < lo || v > hi)
        return fail(c->err, c->errlen, s, key, "%lld is out of range %lld..%lld", v, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(const ctx *c, const char *key, bool *out)
{
    const config_setting_t *s = config_setting_get_member(c->g, key);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail(c->err, c->errlen, s, key, "must be true or false");
    *out = config_setting_get_bool(s) != 0;
    return 0;
}

/* A string key of 1..cap-1 characters; *present says whether it was there. */
static int get_str(const ctx *c, const char *key, char *out, size_t cap, bool *present)
{
    const config_setting_t *s = config_setting_get_member(c->g, key);
    *present = s != NULL;
    if (!s)
        return 0;
    const char *v = config_setting_get_string(s);
    if (!v)
        return fail(c->err, c->errlen, s, key, "must be a string");
    size_t n = strlen(v);
    if (n == 0 || n >= cap)
        return fail(c->err, c->errlen, s, key, "must be 1..%zu characters", cap - 1);
    memcpy(out, v, n + 1);
    return 0;
}

static int check_keys(const ctx *c)
{
    for (int i = 0; i < config_setting_length(c->g); i++) {
        const config_setting_t *m = config_setting_get_elem(c->g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool known = false;
        for (size_t k = 0; k < TB_RT_CONFIG_NKEYS && name; k++)
            known = known || strcmp(name, tb_rt_config_keys[k]) == 0;
        if (!known)
            return fail(c->err, c->errlen, m, name, "unknown key");
    }
    return 0;
}

static int parse_listen(const ctx *c, tb_rt_config *out)
{
    bool present;
    int rc = get_str(c, "listen", out->udp.listen, sizeof(out->udp.listen), &present);
    if (rc < 0 || !present)
        return rc;
    tb_addr a;
    const char *why = "";
    if (tb_addr_parse_numeric(out->udp.listen, strlen(out->udp.listen), TB_ADDR_PORT_ZERO_OK, &a,
                              &why) != TB_OK)
        return fail(c->err, c->errlen, config_setting_get_member(c->g, "listen"), "listen",
                    "\"%s\" is not a numeric ADDR:PORT or [V6]:PORT: %s", out->udp.listen, why);
    return 0;
}

/* A relative key path is taken from the folder of the file that names it, so the node finds
 * it whatever its working directory. */
static int parse_key_path(const ctx *c, bool required, tb_rt_config *out)
{
    char v[TB_RT_CONFIG_PATH_MAX] = "";
    bool present = false;
    int rc = get_str(c, "key", v, sizeof(v), &present);
    if (rc < 0)
        return rc;
    if (!present && !required)
        return 0;
    if (!present)
        return fail(c->err, c->errlen, c->g, "key",
                    "missing: the long-term key file (tbroughtime keygen --out FILE)");
    const config_setting_t *s = config_setting_get_member(c->g, "key");
    const char *file = config_setting_source_file(s);
    const char *slash = file ? strrchr(file, '/') : NULL;
    size_t dir = v[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
    if (dir + strlen(v) >= sizeof(out->key_path))
        return fail(c->err, c->errlen, s, "key", "path too long with the config's folder");
    memcpy(out->key_path, file ? file : "", dir);
    memcpy(out->key_path + dir, v, strlen(v) + 1);
    return 0;
}

static int parse_numbers(const ctx *c, tb_rt_config *out)
{
    long long batch = out->srv.max_batch, queue = -1, flush_us = 1000, radius = out->udp.radius_s;
    long long lifetime = (long long)out->srv.dele_lifetime_s, threads = out->threads;
    int rc = get_num(c, "max_batch", 1, TB_RT_SRV_MAX_BATCH, &batch);
    if (rc == 0)
        rc = get_num(c, "queue", 1, TB_RT_SRV_MAX_QUEUE, &queue);
    if (rc == 0)
        rc = get_num(c, "flush_interval_us", 1, 10000000, &flush_us);
    if (rc == 0)
        rc = get_num(c, "radius", 1, 86400, &radius);
    if (rc == 0)
        rc = get_num(c, "key_lifetime", 60, 31536000, &lifetime);
    if (rc == 0)
        rc = get_num(c, "threads", 1, TB_RT_CONFIG_MAX_THREADS, &threads);
    if (rc < 0)
        return rc;
    if (queue < 0)
        queue = 4 * batch > TB_RT_SRV_MAX_QUEUE ? TB_RT_SRV_MAX_QUEUE : 4 * batch;
    if (queue < batch)
        return fail(c->err, c->errlen, config_setting_get_member(c->g, "queue"), "queue",
                    "%lld is below max_batch %lld", queue, batch);
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
        return fail(c->err, c->errlen, c->g, NULL, "must be a group { listen = ...; key = ...; }");
    bool enabled = true, from_kernel = out->udp.radius_from_kernel != 0;
    int rc = check_keys(c);
    if (rc == 0)
        rc = get_bool(c, "enabled", &enabled);
    if (rc == 0)
        rc = get_bool(c, "radius_from_kernel", &from_kernel);
    if (rc == 0)
        rc = parse_listen(c, out);
    if (rc == 0)
        rc = parse_key_path(c, enabled, out);
    if (rc == 0)
        rc = parse_numbers(c, out);
    out->enabled = enabled;
    out->udp.radius_from_kernel = from_kernel;
    return rc;
}

int tb_rt_config_parse(const config_setting_t *group, tb_rt_config *out, char *err, size_t errlen)
{
    tb_rt_config_default(out);
    if (!group)
        return 0;
    ctx c = {.g = group, .err = err, .errlen = errlen};
    int rc = parse_group(&c, out);
    if (rc < 0)
        tb_rt_config_default(out);
    return rc;
}

int tb_rt_config_load_key(tb_rt_config *c, char *err, size_t errlen)
{
    return tb_rt_key_load(c->key_path, c->srv.longterm_sk, err, errlen);
}

void tb_rt_config_clear(tb_rt_config *c)
{
    sodium_memzero(c->srv.longterm_sk, sizeof(c->srv.longterm_sk));
}
