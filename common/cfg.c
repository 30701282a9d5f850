#include "common/cfg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Config files are a few KiB; an included file larger than this is not fixed up. */
#define CFG_FILE_MAX (1024 * 1024)

/* ---- integer literals libconfig 1.5 would wrap ---- */

/* An integer setting libconfig made, in file order, and the file it came from. */
typedef struct int_setting {
    config_setting_t *s;
    const char *file; /* NULL: the string that was loaded */
} int_setting;

typedef struct int_list {
    int_setting *v;
    size_t n, cap;
} int_list;

static int collect(config_setting_t *s, int_list *l)
{
    int type = config_setting_type(s);
    if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
        for (int i = 0; i < config_setting_length(s); i++) {
            if (collect(config_setting_get_elem(s, (unsigned)i), l) != TB_OK)
                return TB_ERR_NOMEM;
        }
        return TB_OK;
    }
    if (type != CONFIG_TYPE_INT)
        return TB_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int_setting *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return TB_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (int_setting){s, config_setting_source_file(s)};
    return TB_OK;
}

/* The libconfig 1.5 lexer's tokens, as far as integers go: comments, strings and names are
 * skipped so digits inside them are not taken for literals. */
static size_t skip_comment(const char *p, size_t n, size_t i)
{
    if (p[i] == '#' || p[i + 1] == '/') {
        while (i < n && p[i] != '\n')
            i++;
        return i;
    }
    for (i += 2; i + 1 < n && !(p[i] == '*' && p[i + 1] == '/');)
        i++;
    return i + 2 < n ? i + 2 : n;
}

static size_t skip_string(const char *p, size_t n, size_t i)
{
    for (i++; i < n && p[i] != '"'; i++) {
        if (p[i] == '\\')
            i++;
    }
    return i + 1 < n ? i + 1 : n;
}

static int is_name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '*';
}

/* One numeric token from p[i]. *plain: an integer without the L suffix, whose whole value is
 * *v (saturated at the int64 limits, as libconfig's own conversion saturates). */
static size_t scan_number(const char *p, size_t n, size_t i, int *plain, int64_t *v)
{
    size_t start = i;
    *plain = 0;
    if (p[i] == '0' && i + 2 < n && (p[i + 1] == 'x' || p[i + 1] == 'X') &&
        isxdigit((unsigned char)p[i + 2])) {
        for (i += 2; i < n && isxdigit((unsigned char)p[i]);)
            i++;
        if (i < n && p[i] == 'L')
            return i;
        unsigned long long u = strtoull(p + start, NULL, 16);
        *v = u > INT64_MAX ? INT64_MAX : (int64_t)u;
        *plain = 1;
        return i;
    }
    if (p[i] == '-' || p[i] == '+')
        i++;
    while (i < n && isdigit((unsigned char)p[i]))
        i++;
    if (i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E')) { /* a float */
        for (; i < n && (isdigit((unsigned char)p[i]) || strchr(".eE", p[i])); i++) {
            if ((p[i] == 'e' || p[i] == 'E') && i + 1 < n && (p[i + 1] == '-' || p[i + 1] == '+'))
                i++;
        }
        return i;
    }
    if (i < n && p[i] == 'L')
        return i;
    *v = strtoll(p + start, NULL, 10);
    *plain = 1;
    return i;
}

/* The whole values of the plain integer literals in p, in order; *count may exceed cap. */
static void scan_literals(const char *p, size_t n, int64_t *out, size_t cap, size_t *count)
{
    *count = 0;
    size_t i = 0;
    while (i < n) {
        char ch = p[i], next = i + 1 < n ? p[i + 1] : '\0';
        if (ch == '#' || (ch == '/' && (next == '/' || next == '*'))) {
            i = skip_comment(p, n, i);
        } else if (ch == '"') {
            i = skip_string(p, n, i);
        } else if (isalpha((unsigned char)ch) || ch == '*' || ch == '@') {
            while (++i < n && is_name_char(p[i])) {
            }
        } else if (isdigit((unsigned char)ch) || ((ch == '-' || ch == '+' || ch == '.') &&
                                                  (isdigit((unsigned char)next) || next == '.'))) {
            int plain;
            int64_t v;
            i = scan_number(p, n, i, &plain, &v);
            if (plain && *count < cap)
                out[*count] = v;
            *count += (size_t)plain;
        } else {
            i++;
        }
    }
}

/* What libconfig 1.5 stored for a literal whose whole value is v: its low 32 bits. */
static int wrapped(int64_t v)
{
    return (int)(int32_t)(uint32_t)(uint64_t)v;
}

/* Pairs file's integer settings with the literals of its text; changes only settings whose
 * stored value is the literal wrapped, and gives up when the counts differ (a token this scan
 * reads unlike libconfig). */
static int fix_file(const int_list *l, const char *file, const char *text, size_t len)
{
    size_t want = 0;
    for (size_t i = 0; i < l->n; i++)
        want += (l->v[i].file == file) || (file && l->v[i].file && !strcmp(l->v[i].file, file));
    int64_t *lit = calloc(want ? want : 1, sizeof(*lit));
    if (!lit)
        return TB_ERR_NOMEM;
    size_t count;
    scan_literals(text, len, lit, want, &count);
    for (size_t i = 0, k = 0; count == want && i < l->n; i++) {
        const char *f = l->v[i].file;
        if (!(f == file || (file && f && !strcmp(f, file))))
            continue;
        int64_t v = lit[k++];
        config_setting_t *s = l->v[i].s;
        if ((v < INT32_MIN || v > INT32_MAX) && config_setting_get_int(s) == wrapped(v)) {
            /* The struct is public in libconfig.h; no call turns an int setting into int64. */
            s->type = CONFIG_TYPE_INT64;
            s->value.llval = v;
        }
    }
    free(lit);
    return TB_OK;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= CFG_FILE_MAX)
        buf = malloc((size_t)st.st_size + 1);
    *len = buf ? fread(buf, 1, (size_t)st.st_size, fp) : 0;
    fclose(fp);
    if (buf)
        buf[*len] = '\0'; /* strtoll and strtoull stop at a non-digit */
    return buf;
}

/* Every file the settings came from (main, the file read, and included ones), each fixed
 * once; text is the string read, if that is what was read. */
static int fix_ints(config_t *lc, const char *main, const char *text)
{
    int_list l = {0};
    int rc = collect(config_root_setting(lc), &l);
    for (size_t i = 0; rc == TB_OK && i < l.n; i++) {
        const char *f = l.v[i].file;
        size_t j = 0;
        while (j < i && !(l.v[j].file == f || (f && l.v[j].file && !strcmp(l.v[j].file, f))))
            j++;
        if (j < i)
            continue; /* seen */
        if (!f) {
            rc = text ? fix_file(&l, NULL, text, strlen(text)) : TB_OK;
            continue;
        }
        /* libconfig names an included file as written, relative to its include dir. */
        const char *dir = config_get_include_dir(lc);
        char path[4096];
        if (f[0] != '/' && dir && !(main && !strcmp(f, main)))
            snprintf(path, sizeof(path), "%s/%s", dir, f);
        else
            snprintf(path, sizeof(path), "%s", f);
        size_t len = 0;
        char *buf = slurp(path, &len);
        if (buf)
            rc = fix_file(&l, f, buf, len);
        free(buf);
    }
    free(l.v);
    return rc;
}

static int read_done(config_t *lc, int ok, const char *name, const char *text, char *err,
                     size_t errlen)
{
    if (!ok) {
        const char *file = config_error_file(lc);
        snprintf(err, errlen, "%s:%d: %s", file ? file : name, config_error_line(lc),
                 config_error_text(lc));
        return TB_ERR_INVAL;
    }
    if (fix_ints(lc, text ? NULL : name, text) != TB_OK) {
        snprintf(err, errlen, "%s: out of memory", name);
        return TB_ERR_NOMEM;
    }
    return TB_OK;
}

int tb_cfg_read_file(config_t *lc, const char *path, char *err, size_t errlen)
{
    return read_done(lc, config_read_file(lc, path) == CONFIG_TRUE, path, NULL, err, errlen);
}

int tb_cfg_read_string(config_t *lc, const char *text, const char *name, char *err, size_t errlen)
{
    return read_done(lc, config_read_string(lc, text) == CONFIG_TRUE, name, text, err, errlen);
}

/* ---- errors ---- */

void tb_cfg_ctx_init(tb_cfg_ctx *c, char *err, size_t errlen, const char *file,
                     const char *prefix_fmt, ...)
{
    c->err = err;
    c->errlen = errlen;
    c->file = file ? file : "config";
    va_list ap;
    va_start(ap, prefix_fmt);
    vsnprintf(c->prefix, sizeof(c->prefix), prefix_fmt, ap);
    va_end(ap);
}

int tb_cfg_vformat(char *err, size_t errlen, const char *file, unsigned line, const char *key,
                   const char *fmt, va_list ap)
{
    char what[256], where[32] = "";
    vsnprintf(what, sizeof(what), fmt, ap);
    if (line)
        snprintf(where, sizeof(where), ":%u", line);
    snprintf(err, errlen, "%s%s: key '%s': %s", file, where, key, what);
    return TB_ERR_INVAL;
}

int tb_cfg_fail(const tb_cfg_ctx *c, const config_setting_t *at, const char *key, const char *fmt,
                ...)
{
    char full[TB_CFG_PREFIX_MAX + 128];
    const char *dot = c->prefix[0] && key ? "." : "";
    snprintf(full, sizeof(full), "%s%s%s", c->prefix, dot, key ? key : "");
    const char *file = at ? config_setting_source_file(at) : NULL;
    va_list ap;
    va_start(ap, fmt);
    tb_cfg_vformat(c->err, c->errlen, file ? file : c->file,
                   at ? config_setting_source_line(at) : 0, full, fmt, ap);
    va_end(ap);
    return TB_ERR_INVAL;
}

const char *tb_cfg_type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "something else";
    }
}

/* ---- getters ---- */

int tb_cfg_int(const tb_cfg_ctx *c, const config_setting_t *s, const char *key, int64_t lo,
               int64_t hi, int64_t *out)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return tb_cfg_fail(c, s, key, "must be an integer, not %s", tb_cfg_type_name(type));
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return tb_cfg_fail(c, s, key, "%lld is outside %lld..%lld", v, (long long)lo,
                           (long long)hi);
    *out = v;
    return TB_OK;
}

int tb_cfg_get_i64(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, int64_t lo,
                   int64_t hi, int64_t *out)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    return s ? tb_cfg_int(c, s, key, lo, hi, out) : TB_OK;
}

/* Narrowing is safe: the value is *out's own or was checked against lo..hi of out's type. */
int tb_cfg_get_int(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, int lo, int hi,
                   int *out)
{
    int64_t v = *out;
    int rc = tb_cfg_get_i64(c, g, key, lo, hi, &v);
    *out = (int)v;
    return rc;
}

int tb_cfg_get_u32(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, uint32_t lo,
                   uint32_t hi, uint32_t *out)
{
    int64_t v = *out;
    int rc = tb_cfg_get_i64(c, g, key, lo, hi, &v);
    *out = (uint32_t)v;
    return rc;
}

int tb_cfg_get_bool(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, bool *out)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    if (!s)
        return TB_OK;
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_BOOL)
        return tb_cfg_fail(c, s, key, "must be true or false, not %s", tb_cfg_type_name(type));
    *out = config_setting_get_bool(s) != 0;
    return TB_OK;
}

int tb_cfg_get_str(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, char *out,
                   size_t cap, bool *present)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    *present = s != NULL;
    if (!s)
        return TB_OK;
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_STRING)
        return tb_cfg_fail(c, s, key, "must be a string, not %s", tb_cfg_type_name(type));
    const char *v = config_setting_get_string(s);
    size_t n = strlen(v);
    if (n == 0 || n >= cap)
        return tb_cfg_fail(c, s, key, "must be 1..%zu characters", cap - 1);
    memcpy(out, v, n + 1);
    return TB_OK;
}

int tb_cfg_check_keys(const tb_cfg_ctx *c, const config_setting_t *g, const char *const *keys,
                      size_t n)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool known = false;
        for (size_t k = 0; k < n && name && !known; k++)
            known = strcmp(name, keys[k]) == 0;
        if (!known)
            return tb_cfg_fail(c, m, name, "unknown key");
    }
    return TB_OK;
}

/* ---- every error of a reader that stops at its first ---- */

#define EACH_MAX_ERRORS 256
#define EACH_PATH_MAX 256

/* The key an error names: "FILE:LINE: key 'K': what". */
static int key_of(const char *err, char *path, size_t cap)
{
    const char *k = strstr(err, ": key '");
    const char *e = k ? strstr(k + 7, "': ") : NULL;
    if (!e || e == k + 7 || (size_t)(e - (k + 7)) >= cap)
        return 0;
    memcpy(path, k + 7, (size_t)(e - (k + 7)));
    path[e - (k + 7)] = 0;
    return 1;
}

/* a is b or holds it ("sources.[0]" holds "sources.[0].address"). */
static int holds(const char *a, const char *b)
{
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '.');
}

static int is_within(const config_setting_t *s, const config_setting_t *outer)
{
    for (; s; s = config_setting_parent(s))
        if (s == outer)
            return 1;
    return 0;
}

/* The setting to set aside for an error at path: the deepest that exists, never an element of a
 * list (removing one would renumber the others, and their errors would name the wrong index).
 * path is cut to the setting's own. */
static config_setting_t *aside(config_t *lc, char *path)
{
    config_setting_t *s = config_lookup(lc, path);
    char *dot;
    while (!s && (dot = strrchr(path, '.')) != NULL) {
        *dot = 0;
        s = config_lookup(lc, path);
    }
    while (s && config_setting_parent(s) && !config_setting_is_group(config_setting_parent(s)) &&
           (dot = strrchr(path, '.')) != NULL) {
        *dot = 0;
        s = config_setting_parent(s);
    }
    return s && !config_setting_is_root(s) ? s : NULL;
}

unsigned tb_cfg_each_error(config_t *lc, const config_setting_t *keep, tb_cfg_reader read,
                           void *arg, tb_cfg_say say, void *say_arg)
{
    char err[1024], path[EACH_PATH_MAX];
    char(*removed)[EACH_PATH_MAX] = calloc(EACH_MAX_ERRORS, EACH_PATH_MAX);
    unsigned errors = 0, n = 0;
    for (unsigned round = 0; round < EACH_MAX_ERRORS; round++) {
        err[0] = 0;
        if (read(arg, err, sizeof(err)) == TB_OK)
            break;
        int follows = 0;
        int has_key = key_of(err, path, sizeof(path));
        for (unsigned i = 0; has_key && removed && i < n && !follows; i++)
            follows = holds(path, removed[i]);
        /* an error that only says a setting set aside is missing is no news */
        if (!follows) {
            say(say_arg, err);
            errors++;
        }
        config_setting_t *s = has_key && removed && n < EACH_MAX_ERRORS ? aside(lc, path) : NULL;
        if (!s || (keep && is_within(keep, s)))
            break;
        snprintf(removed[n++], EACH_PATH_MAX, "%s", path);
        config_setting_t *parent = config_setting_parent(s);
        if (config_setting_remove_elem(parent, (unsigned)config_setting_index(s)) != CONFIG_TRUE)
            break;
    }
    free(removed);
    return errors;
}
