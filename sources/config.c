#include "sources/config.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntp/client.h"
#include "common/addr.h"

typedef struct ctx {
    char *err;
    size_t errlen;
    const char *file;
    unsigned index;
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
    snprintf(c->err, c->errlen, "%s:%u: sources.[%u]%s%s: %s", file ? file : c->file,
             config_setting_source_line(at), c->index, key ? "." : "", key ? key : "", what);
    return TB_ERR_INVAL;
}

static int get_int(const ctx *c, const config_setting_t *e, const char *key, int lo, int hi,
                   int *out)
{
    const config_setting_t *s = config_setting_get_member(e, key);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_INT)
        return fail(c, s, key, "must be an integer");
    int v = config_setting_get_int(s);
    if (v < lo || v > hi)
        return fail(c, s, key, "%d is out of range %d..%d", v, lo, hi);
    *out = v;
    return 0;
}

static int get_str(const ctx *c, const config_setting_t *e, const char *key, char *out,
                   size_t outlen, bool *present)
{
    const config_setting_t *s = config_setting_get_member(e, key);
    *present = s != NULL;
    if (!s)
        return 0;
    const char *v = config_setting_get_string(s);
    if (!v)
        return fail(c, s, key, "must be a string");
    if (!*v || strlen(v) >= outlen)
        return fail(c, s, key, "must be 1..%zu characters", outlen - 1);
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

const char *const tb_sources_config_keys[TB_SOURCES_CONFIG_NKEYS] = {"kind",
                                                                     "address",
                                                                     "name",
                                                                     "minpoll",
                                                                     "maxpoll",
                                                                     "count",
                                                                     "unreachable_after",
                                                                     "resolve_interval",
                                                                     "public_key"};

static int check_keys(const ctx *c, const config_setting_t *e)
{
    for (int i = 0; i < config_setting_length(e); i++) {
        const config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
        const char *name = config_setting_name(m);
        bool known = false;
        for (size_t k = 0; k < TB_SOURCES_CONFIG_NKEYS; k++)
            known = known || (name && strcmp(name, tb_sources_config_keys[k]) == 0);
        if (!known)
            return fail(c, m, name, "unknown key");
    }
    return 0;
}

static int parse_key(const ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    char b64[128];
    bool present;
    int err = get_str(c, e, "public_key", b64, sizeof(b64), &present);
    if (err < 0 || !present)
        return err;
    size_t n = 0;
    const config_setting_t *s = config_setting_get_member(e, "public_key");
    if (sodium_base642bin(sc->public_key, sizeof(sc->public_key), b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != TB_SOURCE_KEY_LEN)
        return fail(c, s, "public_key", "must be the base64 of a 32-byte Ed25519 key");
    sc->has_public_key = true;
    return 0;
}

static int check_address(const ctx *c, const config_setting_t *e, const char *key, const char *v)
{
    tb_addr_hostport hp;
    const char *why = "";
    if (tb_addr_parse_default(v, strlen(v), 123, 0, &hp, &why) != TB_OK)
        return fail(c, config_setting_get_member(e, key), key,
                    "\"%s\" is not host, host:port or [ipv6]:port: %s", v, why);
    return 0;
}

static int parse_kind_fields(const ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    bool has_addr = false, has_name = false;
    int err = get_str(c, e, "address", sc->address, sizeof(sc->address), &has_addr);
    if (err == 0)
        err = get_str(c, e, "name", sc->name, sizeof(sc->name), &has_name);
    if (err < 0)
        return err;
    if (sc->kind == TB_SOURCE_POOL) {
        if (!has_name)
            return fail(c, e, "name", "a pool needs a name to resolve");
        if (has_addr)
            return fail(c, e, "address", "a pool takes a name, not an address");
        return check_address(c, e, "name", sc->name);
    }
    if (!has_addr)
        return fail(c, e, "address", "a %s source needs an address", tb_source_kind_name(sc->kind));
    if (has_name)
        return fail(c, e, "name", "only pools take a name");
    if (sc->kind == TB_SOURCE_ROUGHTIME && !config_setting_get_member(e, "public_key"))
        return fail(c, e, "public_key", "a roughtime source needs the server's public key");
    if (sc->kind != TB_SOURCE_ROUGHTIME && config_setting_get_member(e, "public_key"))
        return fail(c, e, "public_key", "only roughtime sources take a public key");
    return check_address(c, e, "address", sc->address);
}

static int parse_entry(const ctx *c, const config_setting_t *e, tb_source_config *sc)
{
    if (config_setting_type(e) != CONFIG_TYPE_GROUP)
        return fail(c, e, NULL, "each source must be a group { kind = ...; }");
    int err = check_keys(c, e);
    if (err < 0)
        return err;
    const char *kind = NULL;
    const config_setting_t *ks = config_setting_get_member(e, "kind");
    if (!ks || !(kind = config_setting_get_string(ks)))
        return fail(c, ks ? ks : e, "kind", "missing or not a string");
    tb_source_kind k;
    if (tb_source_kind_parse(kind, &k) < 0)
        return fail(c, ks, "kind", "\"%s\" is not ntp, pool or roughtime", kind);
    if (k == TB_SOURCE_PEER) /* adr/0007, "Mesh peers" */
        return fail(c, ks, "kind",
                    "mesh peers are not configured: every connected peer is measured "
                    "(crosscheck.peer_interval)");
    tb_source_config_default(sc, k);
    sc->line = config_setting_source_line(e);
    int count = (int)sc->count, unreach = (int)sc->unreach_after;
    int resolve = (int)sc->resolve_interval;
    err = parse_kind_fields(c, e, sc);
    if (err == 0)
        err = get_int(c, e, "minpoll", TB_NTP_POLL_MIN, TB_NTP_POLL_MAX, &sc->minpoll);
    if (err == 0)
        err = get_int(c, e, "maxpoll", TB_NTP_POLL_MIN, TB_NTP_POLL_MAX, &sc->maxpoll);
    if (err == 0)
        err = get_int(c, e, "unreachable_after", 1, 64, &unreach);
    if (err == 0)
        err = get_int(c, e, "count", 1, 16, &count);
    if (err == 0)
        err = get_int(c, e, "resolve_interval", 10, 604800, &resolve);
    if (err == 0)
        err = parse_key(c, e, sc);
    if (err < 0)
        return err;
    if (sc->minpoll > sc->maxpoll)
        return fail(c, e, "minpoll", "minpoll %d is above maxpoll %d", sc->minpoll, sc->maxpoll);
    sc->count = (unsigned)count;
    sc->unreach_after = (unsigned)unreach;
    sc->resolve_interval = (unsigned)resolve;
    return 0;
}

int tb_sources_config_parse(const config_setting_t *list, tb_source_config_list *out, char *err,
                            size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    ctx c = {.err = err, .errlen = errlen, .file = "config"};
    if (!list || (config_setting_type(list) != CONFIG_TYPE_LIST &&
                  config_setting_type(list) != CONFIG_TYPE_GROUP)) {
        snprintf(err, errlen, "sources: must be a list ( { kind = ...; }, ... )");
        return TB_ERR_INVAL;
    }
    int n = config_setting_length(list);
    if (config_setting_type(list) == CONFIG_TYPE_GROUP && n > 0) {
        snprintf(err, errlen, "%s:%u: sources: must be a list ( ... ), not a group { ... }",
                 config_setting_source_file(list) ? config_setting_source_file(list) : "config",
                 config_setting_source_line(list));
        return TB_ERR_INVAL;
    }
    if (n > TB_SOURCES_MAX) {
        snprintf(err, errlen, "sources: %d entries, at most %d", n, TB_SOURCES_MAX);
        return TB_ERR_TOO_BIG;
    }
    if (n == 0)
        return 0;
    out->items = calloc((size_t)n, sizeof(*out->items));
    if (!out->items)
        return TB_ERR_NOMEM;
    for (c.index = 0; c.index < (unsigned)n; c.index++) {
        int rc = parse_entry(&c, config_setting_get_elem(list, c.index), &out->items[c.index]);
        if (rc < 0) {
            tb_sources_config_free(out);
            return rc;
        }
        out->n++;
    }
    return 0;
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
