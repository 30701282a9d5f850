/* The `http` group of tbnode's config file (http/http.h). */
#include <stdio.h>
#include <string.h>

#include "common/cfg.h"
#include "http/http.h"

const char *const tb_http_config_keys[TB_HTTP_CONFIG_NKEYS] = {
    "listen", "dashboard", "max_connections", "timeout", "enabled"};

void tb_http_config_default(tb_http_config *c, const char *default_dashboard)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_text, sizeof(c->listen_text), "%s", TB_HTTP_DEFAULT_LISTEN);
    const char *why = "";
    if (tb_addr_parse_numeric(c->listen_text, strlen(c->listen_text), 0, &c->listen, &why) != TB_OK)
        c->listen.len = 0; /* cannot happen: the default is numeric */
    snprintf(c->dashboard, sizeof(c->dashboard), "%s", default_dashboard ? default_dashboard : "");
    c->max_connections = 32;
    c->timeout_s = 10;
}

static int parse_listen(const tb_cfg_ctx *e, const config_setting_t *g, tb_http_config *out)
{
    char v[TB_ADDR_TEXT_MAX];
    bool present = false;
    int rc = tb_cfg_get_str(e, g, "listen", v, sizeof(v), &present);
    if (rc < 0 || !present)
        return rc;
    const char *why = "";
    if (tb_addr_parse_numeric(v, strlen(v), TB_ADDR_PORT_ZERO_OK, &out->listen, &why) != TB_OK)
        return tb_cfg_fail(e, config_setting_get_member(g, "listen"), "listen",
                           "\"%s\" is not a numeric ADDR:PORT or [V6]:PORT: %s", v, why);
    memcpy(out->listen_text, v, sizeof(v));
    return 0;
}

/* A relative folder is taken from the folder of the file that names it. */
static int parse_dashboard(const tb_cfg_ctx *e, const config_setting_t *g, tb_http_config *out)
{
    char v[TB_HTTP_PATH_MAX];
    bool present = false;
    int rc = tb_cfg_get_str(e, g, "dashboard", v, sizeof(v), &present);
    if (rc < 0 || !present)
        return rc;
    const config_setting_t *s = config_setting_get_member(g, "dashboard");
    const char *file = config_setting_source_file(s);
    const char *slash = file ? strrchr(file, '/') : NULL;
    size_t dir = v[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
    if (dir + strlen(v) >= sizeof(out->dashboard))
        return tb_cfg_fail(e, s, "dashboard", "path too long with the config's folder");
    memcpy(out->dashboard, file ? file : "", dir);
    memcpy(out->dashboard + dir, v, strlen(v) + 1);
    return 0;
}

static int parse_group(const tb_cfg_ctx *e, const config_setting_t *g, tb_http_config *out)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return tb_cfg_fail(e, g, NULL, "must be a group { listen = \"127.0.0.1:9123\"; }");
    bool enabled = true;
    uint32_t conns = out->max_connections, timeout = out->timeout_s;
    int rc = tb_cfg_check_keys(e, g, tb_http_config_keys, TB_HTTP_CONFIG_NKEYS);
    if (rc == 0)
        rc = tb_cfg_get_bool(e, g, "enabled", &enabled);
    if (rc == 0)
        rc = parse_listen(e, g, out);
    if (rc == 0)
        rc = parse_dashboard(e, g, out);
    if (rc == 0)
        rc = tb_cfg_get_u32(e, g, "max_connections", 1, 1024, &conns);
    if (rc == 0)
        rc = tb_cfg_get_u32(e, g, "timeout", 1, 600, &timeout);
    out->enabled = enabled;
    out->max_connections = conns;
    out->timeout_s = timeout;
    return rc;
}

int tb_http_config_parse(const config_setting_t *group, const char *default_dashboard,
                         tb_http_config *out, char *err, size_t errlen)
{
    tb_http_config_default(out, default_dashboard);
    if (!group)
        return 0;
    tb_cfg_ctx e;
    tb_cfg_ctx_init(&e, err, errlen, "config", "http");
    int rc = parse_group(&e, group, out);
    if (rc < 0) {
        tb_http_config_default(out, default_dashboard);
        return TB_ERR_INVAL;
    }
    return 0;
}
