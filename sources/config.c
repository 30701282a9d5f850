#include "sources/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "ntp/client.h"
#include "common/addr.h"
#include "sources/pps.h"

const char *const tb_sources_config_keys[TB_SOURCES_CONFIG_NKEYS] = {"kind",
                                                                     "address",
                                                                     "name",
                                                                     "minpoll",
                                                                     "maxpoll",
                                                                     "count",
                                                                     "unreachable_after",
                                                                     "resolve_interval",
                                                                     "public_key",
                                                                     "ntsport",
                                                                     "ca_file",
                                                                     "server_name",
                                                                     "path",
                                                                     "precision",
                                                                     "delay",
                                                                     "xleave",
                                                                     "device",
                                                                     "lock",
                                                                     "edge",
                                                                     "rate",
                                                                     "offset",
                                                                     "width",
                                                                     "maxlockage"};

static int parse_key(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    char b64[128];
    bool present;
    int err = tb_cfg_get_str(c, e, "public_key", b64, sizeof(b64), &present);
    if (err < 0 || !present)
        return err;
    size_t n = 0;
    const config_setting_t *s = config_setting_get_member(e, "public_key");
    if (sodium_base642bin(sc->public_key, sizeof(sc->public_key), b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != TB_SOURCE_KEY_LEN)
        return tb_cfg_fail(c, s, "public_key", "must be the base64 of a 32-byte Ed25519 key");
    sc->has_public_key = true;
    return 0;
}

static int check_address(const tb_cfg_ctx *c, const config_setting_t *e, const char *key,
                         const char *v)
{
    tb_addr_hostport hp;
    const char *why = "";
    if (tb_addr_parse_default(v, strlen(v), 123, 0, &hp, &why) != TB_OK)
        return tb_cfg_fail(c, config_setting_get_member(e, key), key,
                           "\"%s\" is not host, host:port or [ipv6]:port: %s", v, why);
    return 0;
}

/* A relative ca_file is taken from the configuration file's folder, as the node's other paths
 * are (node/config.h); read from a string, it stays as written. */
static int anchor_path(const tb_cfg_ctx *c, const config_setting_t *e, char *path, size_t len)
{
    const char *file = config_setting_source_file(e);
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!path[0] || path[0] == '/' || !slash)
        return 0;
    char joined[TB_SOURCE_NAME_MAX];
    if (snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - file), file, path) >=
        (int)sizeof(joined))
        return tb_cfg_fail(c, config_setting_get_member(e, "ca_file"), "ca_file",
                           "path too long with the configuration's folder");
    snprintf(path, len, "%s", joined);
    return 0;
}

/* ntsport, ca_file, server_name: NTS only. */
static int parse_nts(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    static const char *const keys[] = {"ntsport", "ca_file", "server_name"};
    if (sc->kind != TB_SOURCE_NTS) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (config_setting_get_member(e, keys[i]))
                return tb_cfg_fail(c, config_setting_get_member(e, keys[i]), keys[i],
                                   "only nts sources take %s", keys[i]);
        return 0;
    }
    unsigned port = sc->ntsport;
    bool present;
    int err = tb_cfg_get_u32(c, e, "ntsport", 1, 65535, &port);
    sc->ntsport = (uint16_t)port;
    if (err == 0)
        err = tb_cfg_get_str(c, e, "ca_file", sc->ca_file, sizeof(sc->ca_file), &present);
    if (err == 0)
        err = anchor_path(c, e, sc->ca_file, sizeof(sc->ca_file));
    if (err == 0)
        err =
            tb_cfg_get_str(c, e, "server_name", sc->server_name, sizeof(sc->server_name), &present);
    return err;
}

#define KIND_BIT(k) (1u << (k))

/* Keys of the local reference clocks, and which of them take each. */
static const struct {
    const char *key;
    unsigned kinds;
    const char *who; /* for "only ... sources take KEY" */
} refclock_keys[] = {
    {"path", KIND_BIT(TB_SOURCE_SOCK), "sock"},
    {"delay", KIND_BIT(TB_SOURCE_SOCK), "sock"},
    {"precision", KIND_BIT(TB_SOURCE_SOCK) | KIND_BIT(TB_SOURCE_PPS), "sock and pps"},
    {"device", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"lock", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"edge", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"rate", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"offset", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"width", KIND_BIT(TB_SOURCE_PPS), "pps"},
    {"maxlockage", KIND_BIT(TB_SOURCE_PPS), "pps"},
};

static bool is_refclock(tb_source_kind k)
{
    return k == TB_SOURCE_SOCK || k == TB_SOURCE_PPS;
}

/* Each key only on the kinds that take it; a reference clock takes nothing of the network
 * kinds'. */
static int check_kind_keys(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_kind kind)
{
    for (size_t i = 0; i < sizeof(refclock_keys) / sizeof(refclock_keys[0]); i++) {
        const config_setting_t *m = config_setting_get_member(e, refclock_keys[i].key);
        if (m && !(refclock_keys[i].kinds & KIND_BIT(kind)))
            return tb_cfg_fail(c, m, refclock_keys[i].key, "only %s sources take %s",
                               refclock_keys[i].who, refclock_keys[i].key);
    }
    static const char *const net_keys[] = {"address", "name", "public_key"};
    for (size_t i = 0; is_refclock(kind) && i < 3; i++)
        if (config_setting_get_member(e, net_keys[i]))
            return tb_cfg_fail(c, config_setting_get_member(e, net_keys[i]), net_keys[i],
                               "%s sources take no %s", tb_source_kind_name(kind), net_keys[i]);
    return 0;
}

/* An absolute path that fits sun_path (108 bytes with the terminator); device paths too, so
 * both refclock kinds read alike. */
static int get_path(const tb_cfg_ctx *c, const config_setting_t *e, const char *key,
                    const char *missing, tb_source_config *sc)
{
    bool present = false;
    int err = tb_cfg_get_str(c, e, key, sc->address, sizeof(sc->address), &present);
    if (err < 0)
        return err;
    if (!present)
        return tb_cfg_fail(c, e, key, "%s", missing);
    if (sc->address[0] != '/' || strlen(sc->address) > 107)
        return tb_cfg_fail(c, config_setting_get_member(e, key), key,
                           "must be an absolute path of at most 107 bytes");
    return 0;
}

static int parse_sock(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    int err = get_path(c, e, "path", "a sock source needs the path of its socket", sc);
    if (err == 0)
        err = tb_cfg_get_i64(c, e, "precision", 0, 1000000000, &sc->precision_ns);
    if (err == 0)
        err = tb_cfg_get_i64(c, e, "delay", 0, 1000000000, &sc->delay_ns);
    return err;
}

/* xleave: plain NTP only (NTS requests are sealed per poll, and an NTS reply's origin is
 * checked against the transmit timestamp before the client sees it). */
static int parse_xleave(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    const config_setting_t *x = config_setting_get_member(e, "xleave");
    if (!x)
        return 0;
    if (sc->kind != TB_SOURCE_NTP && sc->kind != TB_SOURCE_POOL)
        return tb_cfg_fail(c, x, "xleave", "only ntp and pool sources take xleave");
    return tb_cfg_get_bool(c, e, "xleave", &sc->xleave);
}

static int parse_edge(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    char edge[16];
    bool present = false;
    int err = tb_cfg_get_str(c, e, "edge", edge, sizeof(edge), &present);
    if (err < 0 || !present)
        return err;
    if (strcmp(edge, "assert") != 0 && strcmp(edge, "clear") != 0)
        return tb_cfg_fail(c, config_setting_get_member(e, "edge"), "edge",
                           "\"%s\" is not \"assert\" or \"clear\"", edge);
    sc->edge_clear = strcmp(edge, "clear") == 0;
    return 0;
}

/* rate first: offset and width are bounded by the pulse interval. */
static int parse_pps(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    int err = get_path(c, e, "device", "a pps source needs its device (\"/dev/pps0\")", sc);
    bool present = false;
    if (err == 0)
        err = tb_cfg_get_str(c, e, "lock", sc->lock, sizeof(sc->lock), &present);
    if (err == 0 && !present)
        err = tb_cfg_fail(c, e, "lock",
                          "a pps source needs the source that names the second (lock = "
                          "\"NAME\", the name of another source in this list)");
    if (err == 0)
        err = parse_edge(c, e, sc);
    if (err == 0)
        err = tb_cfg_get_u32(c, e, "rate", 1, TB_PPS_MAX_RATE, &sc->rate);
    int64_t interval = 1000000000 / (int64_t)sc->rate;
    if (err == 0)
        err =
            tb_cfg_get_i64(c, e, "offset", -(interval - 1) / 2, (interval - 1) / 2, &sc->offset_ns);
    if (err == 0)
        err = tb_cfg_get_i64(c, e, "width", 0, interval - 1, &sc->width_ns);
    if (err == 0)
        err = tb_cfg_get_u32(c, e, "maxlockage", 1, 64, &sc->maxlockage);
    if (err == 0)
        err = tb_cfg_get_i64(c, e, "precision", 0, 1000000000, &sc->precision_ns);
    return err;
}

static int parse_kind_fields(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    int err = check_kind_keys(c, e, sc->kind);
    if (err < 0)
        return err;
    if (sc->kind == TB_SOURCE_SOCK)
        return parse_sock(c, e, sc);
    if (sc->kind == TB_SOURCE_PPS)
        return parse_pps(c, e, sc);
    bool has_addr = false, has_name = false;
    err = tb_cfg_get_str(c, e, "address", sc->address, sizeof(sc->address), &has_addr);
    if (err == 0)
        err = tb_cfg_get_str(c, e, "name", sc->name, sizeof(sc->name), &has_name);
    if (err < 0)
        return err;
    if (sc->kind == TB_SOURCE_POOL) {
        if (!has_name)
            return tb_cfg_fail(c, e, "name", "a pool needs a name to resolve");
        if (has_addr)
            return tb_cfg_fail(c, e, "address", "a pool takes a name, not an address");
        return check_address(c, e, "name", sc->name);
    }
    if (!has_addr)
        return tb_cfg_fail(c, e, "address", "a %s source needs an address",
                           tb_source_kind_name(sc->kind));
    if (has_name)
        return tb_cfg_fail(c, e, "name", "only pools take a name");
    if (sc->kind == TB_SOURCE_ROUGHTIME && !config_setting_get_member(e, "public_key"))
        return tb_cfg_fail(c, e, "public_key", "a roughtime source needs the server's public key");
    if (sc->kind != TB_SOURCE_ROUGHTIME && config_setting_get_member(e, "public_key"))
        return tb_cfg_fail(c, e, "public_key", "only roughtime sources take a public key");
    const char *addr = sc->address;
    if (sc->kind == TB_SOURCE_ROUGHTIME && strncmp(addr, "tcp://", 6) == 0)
        addr += 6; /* Roughtime over TCP (sources/rt_tcp.h) */
    return check_address(c, e, "address", addr);
}

static int parse_entry(const tb_cfg_ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    if (config_setting_type(e) != CONFIG_TYPE_GROUP)
        return tb_cfg_fail(c, e, NULL, "each source must be a group { kind = ...; }");
    int err = tb_cfg_check_keys(c, e, tb_sources_config_keys, TB_SOURCES_CONFIG_NKEYS);
    if (err < 0)
        return err;
    const char *kind = NULL;
    const config_setting_t *ks = config_setting_get_member(e, "kind");
    if (!ks || !(kind = config_setting_get_string(ks)))
        return tb_cfg_fail(c, ks ? ks : e, "kind", "missing or not a string");
    tb_source_kind k;
    if (tb_source_kind_parse(kind, &k) < 0)
        return tb_cfg_fail(c, ks, "kind", "\"%s\" is not ntp, nts, pool, roughtime, sock or pps",
                           kind);
    if (k == TB_SOURCE_PEER) /* adr/0007, "Mesh peers" */
        return tb_cfg_fail(c, ks, "kind",
                           "mesh peers are not configured: every connected peer is measured "
                           "(crosscheck.peer_interval)");
    tb_source_config_default(sc, k);
    sc->line = config_setting_source_line(e);
    err = parse_kind_fields(c, e, sc);
    if (err == 0)
        err = tb_cfg_get_int(c, e, "minpoll", TB_NTP_POLL_MIN, TB_NTP_POLL_MAX, &sc->minpoll);
    if (err == 0)
        err = tb_cfg_get_int(c, e, "maxpoll", TB_NTP_POLL_MIN, TB_NTP_POLL_MAX, &sc->maxpoll);
    if (err == 0)
        err = tb_cfg_get_u32(c, e, "unreachable_after", 1, 64, &sc->unreach_after);
    if (err == 0)
        err = tb_cfg_get_u32(c, e, "count", 1, 16, &sc->count);
    if (err == 0)
        err = tb_cfg_get_u32(c, e, "resolve_interval", 10, 604800, &sc->resolve_interval);
    if (err == 0)
        err = parse_key(c, e, sc);
    if (err == 0)
        err = parse_nts(c, e, sc);
    if (err == 0)
        err = parse_xleave(c, e, sc);
    if (err < 0)
        return err;
    if (sc->minpoll > sc->maxpoll)
        return tb_cfg_fail(c, e, "minpoll", "minpoll %d is above maxpoll %d", sc->minpoll,
                           sc->maxpoll);
    return 0;
}

static const char *entry_name(const tb_source_config *sc)
{
    return sc->kind == TB_SOURCE_POOL ? sc->name : sc->address;
}

/* A pps source's lock must be another source of the list that measures on its own: a pps
 * source names no second, so it cannot lock another. */
static int check_lock(tb_cfg_ctx *c, const config_setting_t *list, const tb_source_config_list *l,
                      unsigned i)
{
    const tb_source_config *p = &l->items[i];
    const config_setting_t *at =
        config_setting_get_member(config_setting_get_elem(list, i), "lock");
    for (size_t j = 0; j < l->n; j++) {
        if (strcmp(entry_name(&l->items[j]), p->lock) != 0)
            continue;
        if (l->items[j].kind == TB_SOURCE_PPS)
            return tb_cfg_fail(c, at, "lock",
                               "\"%s\" is a pps source: the lock must name the second itself "
                               "(sock, ntp, nts, pool or roughtime)",
                               p->lock);
        return 0;
    }
    return tb_cfg_fail(c, at, "lock",
                       "no source in the list is named \"%s\" (a source is named by its address, "
                       "a pool by its name, a sock source by its path)",
                       p->lock);
}

int tb_sources_config_parse(const config_setting_t *list, tb_source_config_list *out, char *err,
                            size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, errlen, "config", "%s", "");
    if (!list || (config_setting_type(list) != CONFIG_TYPE_LIST &&
                  config_setting_type(list) != CONFIG_TYPE_GROUP))
        return tb_cfg_fail(&c, list, "sources", "must be a list ( { kind = ...; }, ... )");
    int n = config_setting_length(list);
    if (config_setting_type(list) == CONFIG_TYPE_GROUP && n > 0)
        return tb_cfg_fail(&c, list, "sources", "must be a list ( ... ), not a group { ... }");
    if (n > TB_SOURCES_MAX) {
        (void)tb_cfg_fail(&c, list, "sources", "%d entries, at most %d", n, TB_SOURCES_MAX);
        return TB_ERR_TOO_BIG;
    }
    if (n == 0)
        return 0;
    out->items = calloc((size_t)n, sizeof(*out->items));
    if (!out->items)
        return TB_ERR_NOMEM;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        tb_cfg_ctx_init(&c, err, errlen, "config", "sources.[%u]", i);
        int rc = parse_entry(&c, config_setting_get_elem(list, i), &out->items[i]);
        if (rc < 0) {
            tb_sources_config_free(out);
            return rc;
        }
        out->n++;
    }
    for (unsigned i = 0; i < out->n; i++) {
        tb_cfg_ctx_init(&c, err, errlen, "config", "sources.[%u]", i);
        int rc = out->items[i].kind == TB_SOURCE_PPS ? check_lock(&c, list, out, i) : 0;
        if (rc < 0) {
            tb_sources_config_free(out);
            return rc;
        }
    }
    return 0;
}

int tb_sources_config_parse_entry(const config_setting_t *list, unsigned i, tb_source_config *out,
                                  char *err, size_t errlen)
{
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, errlen, "config", "sources.[%u]", i);
    const config_setting_t *e = config_setting_get_elem(list, i);
    if (!e)
        return tb_cfg_fail(&c, list, NULL, "no such entry");
    return parse_entry(&c, e, out);
}

void tb_sources_config_free(tb_source_config_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int tb_sources_diff_compute(const tb_source_config_list *old, const tb_source_config_list *new_list,
                            tb_sources_diff *out)
{
    memset(out, 0, sizeof(*out));
    out->old_to_new = calloc(old->n + 1, sizeof(long));
    out->new_from_old = calloc(new_list->n + 1, sizeof(long));
    if (!out->old_to_new || !out->new_from_old) {
        tb_sources_diff_free(out);
        return TB_ERR_NOMEM;
    }
    for (size_t i = 0; i < old->n; i++)
        out->old_to_new[i] = -1;
    /* Duplicates pair up one to one, in order. */
    for (size_t j = 0; j < new_list->n; j++) {
        out->new_from_old[j] = -1;
        for (size_t i = 0; i < old->n; i++) {
            if (out->old_to_new[i] < 0 &&
                tb_source_config_equal(&old->items[i], &new_list->items[j])) {
                out->old_to_new[i] = (long)j;
                out->new_from_old[j] = (long)i;
                out->n_keep++;
                break;
            }
        }
    }
    out->n_start = new_list->n - out->n_keep;
    out->n_stop = old->n - out->n_keep;
    return 0;
}

void tb_sources_diff_free(tb_sources_diff *d)
{
    free(d->old_to_new);
    free(d->new_from_old);
    d->old_to_new = NULL;
    d->new_from_old = NULL;
}
