/* `tbnode history`: options, time parsing, and the text and JSON lines. The query itself is
 * the store's (tb_store_query), the one the HTTP history endpoint uses too. */
#define _GNU_SOURCE /* strptime */
#include "node/history.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/opt.h"
#include "measure/measurement.h"
#include "node/config.h"
#include "store/store.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = TB_OPT_EXIT_USAGE };
#define DEFAULT_LIMIT 1000

static const char usage[] =
    "usage: tbnode history [--state-dir DIR] [--source S] [--since T] [--until T] [--limit N]\n"
    "                      [--json]\n"
    "The measurements kept in DIR/tbnode.db (read-only; a running node is not disturbed), the\n"
    "newest N (default 1000, at most 20000) oldest first: one line each with the origin's\n"
    "time, origin, kind, source, offset, bound and the verdict that followed, or --json.\n"
    "T is ISO 8601 UTC (2026-12-06T17:00:00Z) or relative to now (90s, 30m, 1h, 2d).\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "tbnode: %s\n%s", what, usage);
    return EXIT_USAGE;
}

static int parse_relative(const char *s, int64_t now_ns, int64_t *out)
{
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    static const struct {
        char c;
        int64_t ns;
    } units[] = {
        {'s', 1000000000LL}, {'m', 60000000000LL}, {'h', 3600000000000LL}, {'d', 86400000000000LL}};
    if (end == s || s[0] < '0' || s[0] > '9' || end[0] == 0 || end[1] != 0)
        return TB_ERR_INVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (end[0] == units[i].c) {
            if (n > (unsigned long long)(INT64_MAX / units[i].ns))
                return TB_ERR_INVAL;
            int64_t back = (int64_t)n * units[i].ns;
            *out = now_ns < INT64_MIN + back ? INT64_MIN : now_ns - back;
            return 0;
        }
    return TB_ERR_INVAL;
}

int tb_history_parse_time(const char *s, int64_t now_ns, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return parse_relative(s, now_ns, out);
    int64_t frac = 0, scale = 100000000;
    if (*rest == '.') {
        if (rest[1] < '0' || rest[1] > '9')
            return TB_ERR_INVAL;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            frac += scale * (*rest - '0');
    }
    if (strcmp(rest, "Z") != 0 || tm.tm_year < 0)
        return TB_ERR_INVAL;
    time_t t = timegm(&tm);
    *out = (int64_t)t * 1000000000LL + frac;
    return 0;
}

typedef struct out_ctx {
    bool json;
    unsigned rows;
} out_ctx;

static void iso_time(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000LL - (ns % 1000000000LL < 0));
    long frac = (long)(((ns % 1000000000LL) + 1000000000LL) % 1000000000LL) / 1000000L;
    struct tm tm;
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
    snprintf(buf, len, "%s.%03ldZ", day, frac);
}

static int print_row(void *arg, const tb_store_row *r)
{
    out_ctx *o = arg;
    char at[48];
    iso_time(r->real_ns, at, sizeof(at));
    o->rows++;
    if (!o->json) {
        printf("%s %s %s %s offset %+.6f ms bound %.6f ms%s%s\n", at, r->origin,
               tb_measure_kind_name(r->kind), r->source, (double)r->offset_ns / 1e6,
               (double)r->bound_ns / 1e6, r->verdict ? " verdict " : "",
               r->verdict ? r->verdict : "");
        return 0;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:b, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "time", at,
                          "origin", r->origin, "seq", (json_int_t)r->seq, "own", r->own, "kind",
                          tb_measure_kind_name(r->kind), "source", r->source, "address", r->address,
                          "real_ns", (json_int_t)r->real_ns, "offset_ns", (json_int_t)r->offset_ns,
                          "delay_ns", (json_int_t)r->delay_ns, "bound_ns", (json_int_t)r->bound_ns);
    if (j == NULL)
        return TB_ERR_NOMEM;
    json_object_set_new(j, "verdict", r->verdict ? json_string(r->verdict) : json_null());
    int rc = json_dumpf(j, stdout, JSON_COMPACT) == 0 && putchar('\n') != EOF ? 0 : TB_ERR_IO;
    json_decref(j);
    return rc;
}

typedef struct history_args {
    const char *dir;
    tb_store_filter f;
    bool json;
} history_args;

/* -1 when s is a time, else the exit code. */
static int time_option(const char *opt, const char *s, int64_t *out)
{
    if (tb_history_parse_time(s, tb_clock_real(tb_clock_system()), out) == 0)
        return -1;
    char err[256];
    snprintf(err, sizeof(err),
             "%s: '%.64s' is neither ISO 8601 UTC (2026-12-06T17:00:00Z) nor relative "
             "(90s, 30m, 1h, 2d)",
             opt, s);
    return usage_error(err);
}

/* -1 when the arguments are good, else the exit code (0 after --help). */
static int history_args_parse(int argc, char **argv, history_args *a)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"source", required_argument, NULL, 's'},
        {"since", required_argument, NULL, 'S'},
        {"until", required_argument, NULL, 'U'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[256];
    uint64_t n;
    int c, rc;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        rc = -1;
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else if (c == 'd') {
            a->dir = optarg;
        } else if (c == 's') {
            a->f.source = optarg;
        } else if (c == 'S' || c == 'U') {
            rc = time_option(c == 'S' ? "--since" : "--until", optarg,
                             c == 'S' ? &a->f.since_ns : &a->f.until_ns);
        } else if (c == 'n') {
            if (tb_opt_parse_u64("--limit", optarg, 1, TB_STORE_HISTORY_MAX, &n, err,
                                 sizeof(err)) != 0)
                return usage_error(err);
            a->f.limit = (unsigned)n;
        } else if (c == 'j') {
            a->json = true;
        } else {
            tb_opt_bad_option(c, argv, "tbnode history --help", err, sizeof(err));
            return usage_error(err);
        }
        if (rc >= 0)
            return rc;
    }
    if (optind != argc)
        return usage_error("history takes no arguments besides its options");
    if (a->f.since_ns > a->f.until_ns)
        return usage_error("--since: later than --until");
    return -1;
}

int tb_history_main(int argc, char **argv)
{
    history_args a = {
        TB_NODE_DEFAULT_STATE_DIR, {0, NULL, INT64_MIN, INT64_MAX, DEFAULT_LIMIT}, false};
    int rc = history_args_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char err[4200];
    tb_store *s;
    if (tb_store_open_readonly(a.dir, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbnode: %s\n", err);
        return EXIT_RUNTIME;
    }
    out_ctx o = {a.json, 0};
    rc = tb_store_query(s, &a.f, print_row, &o);
    tb_store_close(s);
    if (rc != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "tbnode: %s/%s: cannot read the history (%s)\n", a.dir, TB_STORE_FILE,
                tb_strerror(rc));
        return EXIT_RUNTIME;
    }
    return 0;
}
