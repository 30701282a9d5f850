/* The opt module: what the command-line tools (tbnode, tbntp, tbcert, tbroughtime) share on
 * top of getopt_long: numbers parsed with full error and range checks, the --version line
 * (TB_VERSION, the CMake project version, defined for everything linking tb_opt) and the
 * one-line message for an unknown option or a missing value. Every text names the option:
 *   "--timeout: 'abc' is not a number"
 *   "--days: 0 is outside 1..36500"
 *   "unknown option '--tiemout' (see tbntp --help)" */
#ifndef TB_COMMON_OPT_H
#define TB_COMMON_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

/* Exit status for a bad command line, in every tool. */
#define TB_OPT_EXIT_USAGE 2

/* A decimal number (strtod) in lo..hi, finite, nothing before or after it. */
TB_WUR int tb_opt_parse_double(const char *opt, const char *s, double lo, double hi, double *out,
                               char *err, size_t errlen);

/* A decimal whole number (strtoull) in lo..hi: no sign, no spaces, nothing after it. */
TB_WUR int tb_opt_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                            char *err, size_t errlen);

/* "PROG VERSION\n" on stdout. */
void tb_opt_print_version(const char *prog);

/* After getopt_long (with opterr = 0 and an optstring starting with ':') returned '?' or ':',
 * writes "unknown option 'X' (see HELP)" or "option 'X' needs a value (see HELP)" into err,
 * HELP being e.g. "tbcert issue --help". */
void tb_opt_bad_option(int c, char **argv, const char *help, char *err, size_t errlen);

#endif
