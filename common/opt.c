#include "common/opt.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef TB_VERSION
#error "TB_VERSION comes from CMake (common/CMakeLists.txt)"
#endif

/* strtod and strtoull skip leading blanks and strtoull takes a '-' (and wraps it): neither is
 * a number anyone meant. */
static int starts_ok(const char *s, int sign_ok)
{
    return s[0] && !isspace((unsigned char)s[0]) && (sign_ok || (s[0] != '-' && s[0] != '+'));
}

int tb_opt_parse_double(const char *opt, const char *s, double lo, double hi, double *out,
                        char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    double v = starts_ok(s, 1) ? strtod(s, &end) : 0;
    if (!end || end == s || *end || !isfinite(v) || errno == ERANGE) {
        snprintf(err, errlen, "%s: '%.64s' is not a number", opt, s);
        return TB_ERR_INVAL;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "%s: %.64s is outside %g..%g", opt, s, lo, hi);
        return TB_ERR_INVAL;
    }
    *out = v;
    return TB_OK;
}

int tb_opt_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                     char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = starts_ok(s, 0) ? strtoull(s, &end, 10) : 0;
    if (!end || end == s || *end) {
        snprintf(err, errlen, "%s: '%.64s' is not a whole number", opt, s);
        return TB_ERR_INVAL;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        snprintf(err, errlen, "%s: %.64s is outside %llu..%llu", opt, s, (unsigned long long)lo,
                 (unsigned long long)hi);
        return TB_ERR_INVAL;
    }
    *out = v;
    return TB_OK;
}

void tb_opt_print_version(const char *prog)
{
    printf("%s %s\n", prog, TB_VERSION);
}

void tb_opt_bad_option(int c, char **argv, const char *help, char *err, size_t errlen)
{
    char name[64];
    if (c == '?' && optopt > 0 && optopt < 256 && isprint(optopt)) {
        snprintf(name, sizeof(name), "-%c", optopt); /* an unknown short option */
    } else {
        /* A long option, or one missing its value: the word typed, without any "=value". */
        const char *arg = optind > 0 ? argv[optind - 1] : "?";
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    }
    if (c == ':')
        snprintf(err, errlen, "option '%s' needs a value (see %s)", name, help);
    else
        snprintf(err, errlen, "unknown option '%s' (see %s)", name, help);
}
