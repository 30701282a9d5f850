#include "node/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/name.h"
#include "common/cfg.h"
#include "common/opt.h"

/* A config file is a few hundred bytes; anything near this is a mistake, not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)

const char *const tb_node_config_reserved[] = {"sources",    "roughtime", "hosts_file",
                                               "crosscheck", "http",      NULL};

typedef enum key_kind {
    K_MODE,
    K_LISTEN,
    K_PEERS,
    K_PATH,
    K_LOG_LEVEL,
    K_NAME,
    K_USER,
    K_BOOL,
    K_U32,
} key_kind;

typedef struct key_spec {
    const char *name;
    key_kind kind;
    size_t offset;
    uint32_t min, max; /* K_U32 only */
} key_spec;

#define OFF(f) offsetof(tb_node_config, f)

static const key_spec keys[] = {
    {"mode", K_MODE, OFF(mode), 0, 0},
    {"listen", K_LISTEN, OFF(listen), 0, 0},
    {"peers", K_PEERS, OFF(peers), 0, 0},
    {"cert", K_PATH, OFF(cert), 0, 0},
    {"key", K_PATH, OFF(key), 0, 0},
    {"ca", K_PATH, OFF(ca), 0, 0},
    {"crl", K_PATH, OFF(crl), 0, 0},
    {"state_dir", K_PATH, OFF(state_dir), 0, 0},
    {"log_level", K_LOG_LEVEL, OFF(log_level), 0, 0},
    {"name", K_NAME, OFF(name), 0, 0},
    {"user", K_USER, OFF(user), 0, 0},
    {"retry", K_BOOL, OFF(retry), 0, 0},
    {"idle_timeout_ms", K_U32, OFF(idle_timeout_ms), 1000, 3600000},
    {"keepalive_ms", K_U32, OFF(keepalive_ms), 0, 3600000},
    {"connect_timeout_ms", K_U32, OFF(connect_timeout_ms), 100, 600000},
    {"max_message_size", K_U32, OFF(max_message_size), 1024, 16777216},
    {"ping_interval_ms", K_U32, OFF(ping_interval_ms), 100, 3600000},
    {"max_peers", K_U32, OFF(max_peers), 1, 1024},
};

static const char *const mode_names[] = {"hybrid", "server", "client"};

const char *tb_node_mode_name(tb_node_mode mode)
{
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

void tb_node_config_defaults(tb_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = TB_NODE_HYBRID;
    const char *why;
    if (tb_addr_parse(TB_NODE_DEFAULT_LISTEN, strlen(TB_NODE_DEFAULT_LISTEN), 0, &cfg->listen,
                      &why) != TB_OK)
        abort(); /* the default is a constant: failing here is a build mistake */
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", TB_NODE_DEFAULT_STATE_DIR);
    cfg->log_level = TB_LOG_INFO;
    cfg->retry = true;
    cfg->idle_timeout_ms = 30000;
    cfg->keepalive_ms = 10000;
    cfg->connect_timeout_ms = 5000;
    cfg->max_message_size = 65536;
    cfg->ping_interval_ms = 1000;
    cfg->max_peers = 64;
    cfg->active_view = 8;
    cfg->passive_view = 64;
}

void tb_node_config_free(tb_node_config *cfg)
{
    if (cfg->lc) {
        config_destroy(cfg->lc);
        free(cfg->lc);
        cfg->lc = NULL;
    }
}

/* Where an error points: the file and line of a setting, or the flag that gave the value. */
typedef struct origin {
    const char *file; /* NULL: from a flag */
    int line;
    const char *flag;
    const char *dir; /* base for relative paths; NULL keeps them as written */
} origin;

static int errf(char *err, size_t errlen, const origin *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int errf(char *err, size_t errlen, const origin *o, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (o->file) {
        tb_cfg_vformat(err, errlen, o->file, (unsigned)o->line, key, fmt, ap);
    } else {
        char what[256];
        vsnprintf(what, sizeof(what), fmt, ap);
        snprintf(err, errlen, "%s: %s", o->flag, what);
    }
    va_end(ap);
    return TB_ERR_INVAL;
}

static int set_mode(tb_node_config *cfg, const char *v, const origin *o, char *err, size_t el)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(v, mode_names[i]) == 0) {
            cfg->mode = (tb_node_mode)i;
            return TB_OK;
        }
    }
    return errf(err, el, o, "mode", "'%.64s' is not hybrid, server or client", v);
}

static int set_addr(tb_addr_hostport *out, const char *v, int flags, const origin *o,
                    const char *key, char *err, size_t el)
{
    const char *why = "";
    if (tb_addr_parse(v, strlen(v), flags, out, &why) != TB_OK)
        return errf(err, el, o, key, "'%.80s': %s", v, why);
    return TB_OK;
}

/* "host:port" or "name@host:port": a named seed must present that name in its certificate. */
static int add_peer(tb_node_config *cfg, const char *v, const origin *o, char *err, size_t el)
{
    if (cfg->npeers >= TB_NODE_MAX_SEEDS)
        return errf(err, el, o, "peers", "more than %d seed peers", TB_NODE_MAX_SEEDS);
    const char *at = strchr(v, '@');
    size_t nlen = at ? (size_t)(at - v) : 0;
    if (at && !tb_name_valid(v, nlen))
        return errf(err, el, o, "peers",
                    "'%.80s': the name before '@' is not 1 to %d of a-z, "
                    "0-9 and '-'",
                    v, TB_NODE_NAME_MAX);
    tb_addr_hostport hp;
    if (set_addr(&hp, at ? at + 1 : v, TB_ADDR_PORT_REQUIRED, o, "peers", err, el) != TB_OK)
        return TB_ERR_INVAL;
    memcpy(cfg->peer_names[cfg->npeers], v, nlen);
    cfg->peer_names[cfg->npeers][nlen] = '\0';
    cfg->peers[cfg->npeers++] = hp;
    return TB_OK;
}

static int set_path(char *dst, const char *v, const origin *o, const char *key, char *err,
                    size_t el)
{
    if (v[0] == '\0')
        return errf(err, el, o, key, "empty path");
    int n;
    if (o->dir && v[0] != '/')
        n = snprintf(dst, TB_NODE_PATH_MAX, "%s/%s", o->dir, v);
    else
        n = snprintf(dst, TB_NODE_PATH_MAX, "%s", v);
    if (n < 0 || n >= TB_NODE_PATH_MAX)
        return errf(err, el, o, key, "path longer than %d characters", TB_NODE_PATH_MAX - 1);
    return TB_OK;
}

static int set_log_level(tb_node_config *cfg, const char *v, const origin *o, char *err, size_t el)
{
    if (tb_log_level_parse(v, &cfg->log_level) != TB_OK)
        return errf(err, el, o, "log_level", "'%.64s' is not error, warn, info or debug", v);
    return TB_OK;
}

/* The name in the certificate, when given: tb_node_new checks they agree. */
static int set_name(tb_node_config *cfg, const char *v, const origin *o, char *err, size_t el)
{
    size_t n = strlen(v);
    if (n == 0 || n > TB_NODE_NAME_MAX)
        return errf(err, el, o, "name", "must be 1 to %d characters", TB_NODE_NAME_MAX);
    if (!tb_name_valid(v, n))
        return errf(err, el, o, "name", "'%.64s': only a-z, 0-9 and '-' (not first) are allowed",
                    v);
    memcpy(cfg->name, v, n + 1);
    return TB_OK;
}

/* A login name as useradd takes it: letters, digits, '.', '_', '-' (not first). */
static int set_user(tb_node_config *cfg, const char *v, const origin *o, char *err, size_t el)
{
    size_t n = strlen(v);
    if (n == 0 || n > TB_NODE_USER_MAX)
        return errf(err, el, o, "user", "must be 1 to %d characters", TB_NODE_USER_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!isalnum(c) && c != '_' && c != '.' && (c != '-' || i == 0))
            return errf(err, el, o, "user", "'%.64s' is not a user name", v);
    }
    memcpy(cfg->user, v, n + 1);
    return TB_OK;
}

static int apply_peers(tb_node_config *cfg, const config_setting_t *s, const origin *o, char *err,
                       size_t el)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return errf(err, el, o, "peers", "must be a list of \"host:port\" strings, not %s",
                    tb_cfg_type_name(type));
    cfg->npeers = 0; /* the file's list replaces the defaults (none) */
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        origin eo = *o;
        eo.line = config_setting_source_line(e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return errf(err, el, &eo, "peers", "element %d is %s, not a \"host:port\" string",
                        i + 1, tb_cfg_type_name(config_setting_type(e)));
        if (add_peer(cfg, config_setting_get_string(e), &eo, err, el) != TB_OK)
            return TB_ERR_INVAL;
    }
    return TB_OK;
}

/* mesh.allowed_ranges: a list of "ADDRESS/BITS" strings (common/addr.h). */
static int apply_ranges(tb_node_config *cfg, const tb_cfg_ctx *c, const config_setting_t *g)
{
    const config_setting_t *s = config_setting_get_member(g, "allowed_ranges");
    if (!s)
        return TB_OK;
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return tb_cfg_fail(c, s, "allowed_ranges",
                           "must be a list of \"ADDRESS/BITS\" strings, not %s",
                           tb_cfg_type_name(type));
    int n = config_setting_length(s);
    if (n > TB_ADDR_RANGES_MAX)
        return tb_cfg_fail(c, s, "allowed_ranges", "more than %d ranges", TB_ADDR_RANGES_MAX);
    cfg->nallowed_ranges = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return tb_cfg_fail(c, e, "allowed_ranges",
                               "element %d is %s, not an \"ADDRESS/BITS\" string", i + 1,
                               tb_cfg_type_name(config_setting_type(e)));
        const char *v = config_setting_get_string(e), *why = "";
        if (tb_addr_range_parse(v, strlen(v), &cfg->allowed_ranges[cfg->nallowed_ranges], &why) !=
            TB_OK)
            return tb_cfg_fail(c, e, "allowed_ranges", "'%.64s': %s", v, why);
        cfg->nallowed_ranges++;
    }
    return TB_OK;
}

/* mesh.budget_*, penalties and bans (ADR 0010, "Budgets and admission"). */
static int apply_budgets(tb_node_config *cfg, const tb_cfg_ctx *c, const config_setting_t *g)
{
    tb_budget_config *b = &cfg->budget;
    int rc = tb_cfg_get_u32(c, g, "budget_msgs_per_s", 1, 1000000, &b->msgs_per_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "budget_bytes_per_s", 1024, 1u << 30, &b->bytes_per_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "budget_broadcasts_per_s", 1, 100000, &b->own_bcasts_per_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "penalties_to_ban", 1, 10000, &cfg->penalties_to_ban);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "penalty_decay_s", 1, 86400, &cfg->penalty_decay_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "ban_s", 1, 7 * 86400, &cfg->ban_s);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(c, g, "ban_max_s", 1, 30 * 86400, &cfg->ban_max_s);
    if (rc != TB_OK)
        return rc;
    /* Unset: quic's defaults (TB_QUIC_BAN_S_DEFAULT, TB_QUIC_BAN_MAX_S_DEFAULT), which this
     * library does not link. */
    uint32_t ban = cfg->ban_s ? cfg->ban_s : 600, max = cfg->ban_max_s ? cfg->ban_max_s : 21600;
    if (max < ban) {
        const config_setting_t *at = config_setting_get_member(g, "ban_max_s");
        return tb_cfg_fail(c, at ? at : config_setting_get_member(g, "ban_s"), "ban_max_s",
                           "%u s is shorter than ban_s (%u s): the longest ban cannot be "
                           "shorter than the first",
                           max, ban);
    }
    return TB_OK;
}

/* The `mesh` group: the keys of mesh v2 (ADR 0010). */
static int apply_mesh(tb_node_config *cfg, const config_setting_t *g, const origin *o, char *err,
                      size_t el)
{
    static const char *const mesh_keys[] = {"allowed_ranges",
                                            "allow_names",
                                            "socket_buffer",
                                            "active_view",
                                            "passive_view",
                                            "budget_msgs_per_s",
                                            "budget_bytes_per_s",
                                            "budget_broadcasts_per_s",
                                            "penalties_to_ban",
                                            "penalty_decay_s",
                                            "ban_s",
                                            "ban_max_s"};
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, el, o->file ? o->file : "config", "mesh");
    if (!config_setting_is_group(g))
        return tb_cfg_fail(&c, g, NULL, "must be a group { ... }");
    int rc = tb_cfg_check_keys(&c, g, mesh_keys, sizeof(mesh_keys) / sizeof(mesh_keys[0]));
    if (rc == TB_OK)
        rc = apply_ranges(cfg, &c, g);
    if (rc == TB_OK)
        rc = tb_cfg_get_bool(&c, g, "allow_names", &cfg->allow_names);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(&c, g, "socket_buffer", 0, 1u << 30, &cfg->socket_buffer);
    /* HyParView's bounds (discovery/hyparview.h: TB_HV_ACTIVE_MAX, TB_HV_PASSIVE_MAX). */
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(&c, g, "active_view", 1, 64, &cfg->active_view);
    if (rc == TB_OK)
        rc = tb_cfg_get_u32(&c, g, "passive_view", 1, 1024, &cfg->passive_view);
    if (rc == TB_OK)
        rc = apply_budgets(cfg, &c, g);
    return rc;
}

static int apply_u32(tb_node_config *cfg, const key_spec *k, const config_setting_t *s,
                     const origin *o, char *err, size_t el)
{
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, el, o->file, "%s", "");
    int64_t v;
    if (tb_cfg_int(&c, s, k->name, k->min, k->max, &v) != TB_OK)
        return TB_ERR_INVAL;
    *(uint32_t *)((char *)cfg + k->offset) = (uint32_t)v;
    return TB_OK;
}

static int apply_string(tb_node_config *cfg, const key_spec *k, const char *v, const origin *o,
                        char *err, size_t el)
{
    switch (k->kind) {
    case K_MODE:
        return set_mode(cfg, v, o, err, el);
    case K_LISTEN:
        return set_addr(&cfg->listen, v, TB_ADDR_PORT_ZERO_OK, o, "listen", err, el);
    case K_PATH:
        return set_path((char *)cfg + k->offset, v, o, k->name, err, el);
    case K_LOG_LEVEL:
        return set_log_level(cfg, v, o, err, el);
    case K_NAME:
        return set_name(cfg, v, o, err, el);
    case K_USER:
        return set_user(cfg, v, o, err, el);
    default:
        return errf(err, el, o, k->name, "internal: not a string key");
    }
}

static int apply_key(tb_node_config *cfg, const key_spec *k, const config_setting_t *s,
                     const origin *o, char *err, size_t el)
{
    int type = config_setting_type(s);
    switch (k->kind) {
    case K_PEERS:
        return apply_peers(cfg, s, o, err, el);
    case K_U32:
        return apply_u32(cfg, k, s, o, err, el);
    case K_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            return errf(err, el, o, k->name, "must be true or false, not %s",
                        tb_cfg_type_name(type));
        *(bool *)((char *)cfg + k->offset) = config_setting_get_bool(s) != 0;
        return TB_OK;
    default:
        if (type != CONFIG_TYPE_STRING)
            return errf(err, el, o, k->name, "must be a string, not %s", tb_cfg_type_name(type));
        return apply_string(cfg, k, config_setting_get_string(s), o, err, el);
    }
}

static const key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

static int is_reserved(const char *name)
{
    for (const char *const *r = tb_node_config_reserved; *r; r++) {
        if (strcmp(*r, name) == 0)
            return 1;
    }
    return 0;
}

static int check_timeouts(const tb_node_config *cfg, const config_t *lc, const origin *o, char *err,
                          size_t el)
{
    if (cfg->keepalive_ms == 0 || cfg->keepalive_ms < cfg->idle_timeout_ms)
        return TB_OK;
    /* Point at whichever of the two the file set; keep-alive is the one to lower. */
    const config_setting_t *s = config_lookup(lc, "keepalive_ms");
    const char *key = "keepalive_ms";
    if (!s) {
        s = config_lookup(lc, "idle_timeout_ms");
        key = "idle_timeout_ms";
    }
    origin ko = *o;
    ko.line = s ? config_setting_source_line(s) : 0;
    return errf(err, el, &ko, key, "keepalive_ms (%u) must be below idle_timeout_ms (%u), or 0",
                cfg->keepalive_ms, cfg->idle_timeout_ms);
}

static int apply_file(tb_node_config *cfg, const config_t *lc, const origin *o0, char *err,
                      size_t el)
{
    const config_setting_t *root = config_root_setting(lc);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        origin o = *o0;
        o.line = config_setting_source_line(s);
        if (is_reserved(name))
            continue;
        if (strcmp(name, "mesh") == 0) {
            if (apply_mesh(cfg, s, &o, err, el) != TB_OK)
                return TB_ERR_INVAL;
            continue;
        }
        const key_spec *k = find_key(name);
        if (!k)
            return errf(err, el, &o, name, "unknown key (see node/tbnode.conf.example)");
        if (apply_key(cfg, k, s, &o, err, el) != TB_OK)
            return TB_ERR_INVAL;
    }
    return check_timeouts(cfg, lc, o0, err, el);
}

static int finish_load(tb_node_config *cfg, config_t *lc, int rc, const char *name, const char *dir,
                       char *err, size_t el)
{
    if (rc != TB_OK) {
        config_destroy(lc);
        free(lc);
        return rc;
    }
    origin o = {name, 0, NULL, dir};
    tb_node_config tmp = *cfg; /* a bad file leaves cfg untouched */
    tmp.lc = NULL;
    if (apply_file(&tmp, lc, &o, err, el) != TB_OK) {
        config_destroy(lc);
        free(lc);
        return TB_ERR_INVAL;
    }
    tb_node_config_free(cfg);
    *cfg = tmp;
    cfg->lc = lc;
    snprintf(cfg->file, sizeof(cfg->file), "%s", name);
    return TB_OK;
}

int tb_node_config_load_string(tb_node_config *cfg, const char *text, const char *name, char *err,
                               size_t errlen)
{
    config_t *lc = calloc(1, sizeof(*lc));
    if (!lc) {
        snprintf(err, errlen, "%s: out of memory", name);
        return TB_ERR_NOMEM;
    }
    config_init(lc);
    int rc = tb_cfg_read_string(lc, text, name, err, errlen);
    return finish_load(cfg, lc, rc, name, NULL, err, errlen);
}

static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* path read into a fresh libconfig tree (*lc), and its folder into dir (cap TB_NODE_PATH_MAX). */
static int read_tree(const char *path, config_t **out, char *dir, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot read the config file: %s", path, strerror(errno));
        return TB_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        fclose(fp);
        snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path, CONFIG_FILE_MAX);
        return TB_ERR_INVAL;
    }
    config_t *lc = calloc(1, sizeof(*lc));
    if (!lc) {
        fclose(fp);
        snprintf(err, errlen, "%s: out of memory", path);
        return TB_ERR_NOMEM;
    }
    dir_of(path, dir, TB_NODE_PATH_MAX);
    config_init(lc);
    config_set_include_dir(lc, dir);
    fclose(fp);
    /* By name, so libconfig knows the file: the owners of reserved groups name it in their
     * errors and take their relative paths from its folder. */
    int rc = tb_cfg_read_file(lc, path, err, errlen);
    *out = lc;
    return rc;
}

int tb_node_config_load_file(tb_node_config *cfg, const char *path, char *err, size_t errlen)
{
    char dir[TB_NODE_PATH_MAX];
    config_t *lc = NULL;
    int rc = read_tree(path, &lc, dir, err, errlen);
    if (!lc)
        return rc;
    return finish_load(cfg, lc, rc, path, dir, err, errlen);
}

typedef struct each_ctx {
    tb_node_config *cfg;
    tb_node_config base; /* what cfg held before, without a tree */
    config_t *lc;
    origin o;
} each_ctx;

static int apply_each(void *arg, char *err, size_t errlen)
{
    each_ctx *e = arg;
    tb_node_config tmp = e->base;
    if (apply_file(&tmp, e->lc, &e->o, err, errlen) != TB_OK)
        return TB_ERR_INVAL;
    *e->cfg = tmp;
    return TB_OK;
}

unsigned tb_node_config_load_each(tb_node_config *cfg, const char *path, tb_cfg_say say, void *arg)
{
    char err[TB_NODE_ERR_MAX], dir[TB_NODE_PATH_MAX];
    config_t *lc = NULL;
    int rc = read_tree(path, &lc, dir, err, sizeof(err));
    if (rc != TB_OK) {
        if (lc) {
            config_destroy(lc);
            free(lc);
        }
        say(arg, err);
        return 1;
    }
    tb_node_config_free(cfg);
    each_ctx e = {.cfg = cfg, .base = *cfg, .lc = lc, .o = {path, 0, NULL, dir}};
    unsigned n = tb_cfg_each_error(lc, NULL, apply_each, &e, say, arg);
    cfg->lc = lc;
    snprintf(cfg->file, sizeof(cfg->file), "%s", path);
    return n;
}

const config_setting_t *tb_node_config_section(const tb_node_config *cfg, const char *key)
{
    if (!cfg->lc || !is_reserved(key))
        return NULL;
    return config_lookup(cfg->lc, key);
}

int tb_node_config_check(const tb_node_config *cfg, char *err, size_t errlen)
{
    int given = (cfg->cert[0] != 0) + (cfg->key[0] != 0) + (cfg->ca[0] != 0);
    if (given != 0 && given != 3) {
        snprintf(err, errlen,
                 "cert, key and ca go together: give all three (--cert F --key F --ca F, or "
                 "in the config file)");
        return TB_ERR_INVAL;
    }
    if (cfg->mode != TB_NODE_SERVER && cfg->mode != TB_NODE_HYBRID && cfg->npeers == 0) {
        snprintf(err, errlen, "client mode dials only: give at least one --peer (or peers)");
        return TB_ERR_INVAL;
    }
    return TB_OK;
}

enum {
    OPT_CONFIG = 'c',
    OPT_HELP = 'h',
    OPT_MODE = 'm',
    OPT_LISTEN = 256,
    OPT_PEER,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_STATE_DIR,
    OPT_LOG_LEVEL,
    OPT_NAME,
    OPT_USER,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"mode", required_argument, NULL, OPT_MODE},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"peer", required_argument, NULL, OPT_PEER},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"name", required_argument, NULL, OPT_NAME},
    {"user", required_argument, NULL, OPT_USER},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int apply_flag(tb_node_config *cfg, int opt, const char *v, bool *peers_reset, char *err,
                      size_t el)
{
    char flag[32];
    for (const struct option *lo = long_opts; lo->name; lo++) {
        if (lo->val == opt)
            snprintf(flag, sizeof(flag), "--%s", lo->name);
    }
    origin o = {NULL, 0, flag, NULL};
    switch (opt) {
    case OPT_MODE:
        return set_mode(cfg, v, &o, err, el);
    case OPT_LISTEN:
        return set_addr(&cfg->listen, v, TB_ADDR_PORT_ZERO_OK, &o, "listen", err, el);
    case OPT_PEER:
        /* Flags replace the file's seeds rather than add to them: what the operator typed is
         * what gets dialled. */
        if (!*peers_reset) {
            cfg->npeers = 0;
            *peers_reset = true;
        }
        return add_peer(cfg, v, &o, err, el);
    case OPT_CERT:
        return set_path(cfg->cert, v, &o, "cert", err, el);
    case OPT_KEY:
        return set_path(cfg->key, v, &o, "key", err, el);
    case OPT_CA:
        return set_path(cfg->ca, v, &o, "ca", err, el);
    case OPT_STATE_DIR:
        return set_path(cfg->state_dir, v, &o, "state_dir", err, el);
    case OPT_LOG_LEVEL:
        return set_log_level(cfg, v, &o, err, el);
    case OPT_NAME:
        return set_name(cfg, v, &o, err, el);
    case OPT_USER:
        return set_user(cfg, v, &o, err, el);
    default:
        return TB_OK;
    }
}

/* First pass: --help, --version, --config and unknown flags. */
static int scan_args(int argc, char **argv, const char **config, tb_node_action *action, char *err,
                     size_t el)
{
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        if (c == OPT_HELP || c == OPT_VERSION) {
            *action = c == OPT_HELP ? TB_NODE_HELP : TB_NODE_VERSION;
            return TB_OK;
        }
        if (c == OPT_CONFIG)
            *config = optarg;
        if (c == ':' || c == '?') {
            tb_opt_bad_option(c, argv, "tbnode --help", err, el);
            return TB_ERR_INVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, el, "unexpected argument '%s' (see tbnode --help)", argv[optind]);
        return TB_ERR_INVAL;
    }
    return TB_OK;
}

int tb_node_config_from_args(tb_node_config *cfg, int argc, char **argv, tb_node_action *action,
                             char *err, size_t errlen)
{
    const char *config = NULL;
    *action = TB_NODE_RUN;
    int rc = scan_args(argc, argv, &config, action, err, errlen);
    if (rc != TB_OK || *action != TB_NODE_RUN)
        return rc;
    if (config && (rc = tb_node_config_load_file(cfg, config, err, errlen)) != TB_OK)
        return rc;
    optind = 0;
    bool peers_reset = false;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        /* Every flag that gets here takes a value (scan_args returned on the others and on a
         * missing value), so optarg is set; saying so keeps clang-tidy's analyzer, which does
         * not know getopt, from following a NULL into every setter. */
        if ((rc = apply_flag(cfg, c, optarg ? optarg : "", &peers_reset, err, errlen)) != TB_OK)
            return rc;
    }
    return tb_node_config_check(cfg, err, errlen);
}

void tb_node_config_usage(FILE *out)
{
    fprintf(out,
            "usage: tbnode [--mode hybrid|server|client] [--config FILE] [--listen ADDR:PORT]\n"
            "              [--peer ADDR:PORT]... [--cert F --key F --ca F] [--state-dir DIR]\n"
            "              [--log-level L] [--name NAME] [--user USER]\n"
            "       tbnode status [--state-dir DIR] [--json]\n"
            "       tbnode check-config FILE\n"
            "       tbnode history [--state-dir DIR] [--source S] [--since T] [--until T]\n"
            "                      [--limit N] [--json]\n"
            "\n"
            "tbnode joins a QUIC time mesh (mutual TLS against the mesh CA), pings its peers,\n"
            "learns more peers from them and forwards broadcasts. It runs until SIGINT/SIGTERM.\n"
            "Flags override the config file (see node/tbnode.conf.example for every key).\n"
            "\n"
            "  --mode M          hybrid: accept and dial from one socket (default)\n"
            "                    server: accept only; client: dial only, no listening socket\n"
            "  --config FILE     libconfig file; relative paths in it are relative to FILE\n"
            "  --listen A:P      UDP address to listen on (default " TB_NODE_DEFAULT_LISTEN
            "; use [::]:4433\n"
            "                    for IPv6; port 0 picks a free port)\n"
            "  --peer A:P        a seed peer to dial; repeatable; host names allowed, IPv6 as\n"
            "                    [::1]:4433; NAME@A:P also requires that node name in its\n"
            "                    certificate. Replaces the config file's peers.\n"
            "  --cert F, --key F, --ca F\n"
            "                    this node's certificate and key and the mesh CA certificate\n"
            "                    (written by tbcert); all three or none\n"
            "  --state-dir DIR   where the node keeps its state and control socket\n"
            "                    (default " TB_NODE_DEFAULT_STATE_DIR ", created with mode 0700)\n"
            "  --log-level L     error, warn, info (default) or debug\n"
            "  --name NAME       node name (default: the name in the certificate)\n"
            "  --user USER       started as root: switch to USER once the sockets are bound and\n"
            "                    the state opened (default: stay the user it was started as)\n"
            "  --version         print the version and exit\n"
            "  --help            print this help and exit\n"
            "\n"
            "Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on a bad argument or\n"
            "config value (the message names the file, line and key).\n");
}
