/* The cfg module: what every libconfig reader (node/config.c, node/tk_config.c,
 * sources/config.c, roughtime/config.c) shares. It owns loading a file or string with integer
 * literals kept whole, the one error location format
 *   "FILE:LINE: key 'K': what"
 * and typed, range-checked getters that use it. Its own library (tb_cfg), so tb_common and the
 * tools that do not read a config file stay free of libconfig.
 *
 * Why the loaders: libconfig 1.5 stores a literal without the L suffix in 32 bits, so
 * `max_peers = 4294967297;` arrives as 1 and `window = 4294967396;` as 100. The loaders find
 * such literals in the text and store their whole value as a 64-bit setting; the getters read
 * every integer as 64-bit and range-check it before narrowing. */
#ifndef TB_COMMON_CFG_H
#define TB_COMMON_CFG_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_CFG_PREFIX_MAX 64

/* Where a reader's errors go and how it names keys: "PREFIX.KEY" (just KEY when the prefix is
 * empty, just PREFIX when the key is NULL). */
typedef struct tb_cfg_ctx {
    char *err;
    size_t errlen;
    const char *file; /* the file name when libconfig does not know it (a string load) */
    char prefix[TB_CFG_PREFIX_MAX];
} tb_cfg_ctx;

void tb_cfg_ctx_init(tb_cfg_ctx *c, char *err, size_t errlen, const char *file,
                     const char *prefix_fmt, ...) __attribute__((format(printf, 5, 6)));

/* Parses PATH (or TEXT, named NAME in errors) into lc, which the caller has config_init'ed.
 * A syntax error is written as "FILE:LINE: what" and returns TB_ERR_INVAL. */
TB_WUR int tb_cfg_read_file(config_t *lc, const char *path, char *err, size_t errlen);
TB_WUR int tb_cfg_read_string(config_t *lc, const char *text, const char *name, char *err,
                              size_t errlen);

/* Writes "FILE:LINE: key 'KEY': what" (no ":LINE" when line is 0); returns TB_ERR_INVAL. */
int tb_cfg_vformat(char *err, size_t errlen, const char *file, unsigned line, const char *key,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* The same at setting `at` (its file and line; NULL: c->file, no line) for c's KEY. */
int tb_cfg_fail(const tb_cfg_ctx *c, const config_setting_t *at, const char *key, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* "an integer", "a string", ... for "must be X, not Y" messages. */
const char *tb_cfg_type_name(int type);

/* One setting that must be an integer in lo..hi (read as 64-bit, checked before narrowing). */
TB_WUR int tb_cfg_int(const tb_cfg_ctx *c, const config_setting_t *s, const char *key, int64_t lo,
                      int64_t hi, int64_t *out);

/* Members of group g. An absent key returns TB_OK and leaves *out alone. */
TB_WUR int tb_cfg_get_i64(const tb_cfg_ctx *c, const config_setting_t *g, const char *key,
                          int64_t lo, int64_t hi, int64_t *out);
TB_WUR int tb_cfg_get_int(const tb_cfg_ctx *c, const config_setting_t *g, const char *key, int lo,
                          int hi, int *out);
TB_WUR int tb_cfg_get_u32(const tb_cfg_ctx *c, const config_setting_t *g, const char *key,
                          uint32_t lo, uint32_t hi, uint32_t *out);
TB_WUR int tb_cfg_get_bool(const tb_cfg_ctx *c, const config_setting_t *g, const char *key,
                           bool *out);
/* A string of 1..cap-1 characters copied to out; *present says whether the key was there. */
TB_WUR int tb_cfg_get_str(const tb_cfg_ctx *c, const config_setting_t *g, const char *key,
                          char *out, size_t cap, bool *present);

/* Every member of g is one of the n names in keys, else "unknown key" at the first stranger. */
TB_WUR int tb_cfg_check_keys(const tb_cfg_ctx *c, const config_setting_t *g,
                             const char *const *keys, size_t n);

/* For `tbnode check-config`, which reports every error of a file with readers that stop at
 * their first: runs read until it succeeds; after each error it reports the error through say
 * and sets aside (removes from lc) the setting the error names, so the next run finds the next
 * error. An error that only follows from a removal (it names a setting set aside, or one holding
 * it: "missing key") is not reported; its setting goes too. List elements are never removed
 * (the others would be renumbered): the list goes. Stops at an error that names no setting,
 * and before removing keep or anything holding it. Returns the errors reported. */
typedef int (*tb_cfg_reader)(void *arg, char *err, size_t errlen);
typedef void (*tb_cfg_say)(void *arg, const char *text);
unsigned tb_cfg_each_error(config_t *lc, const config_setting_t *keep, tb_cfg_reader read,
                           void *arg, tb_cfg_say say, void *say_arg);

#endif
