/* The time simulator's scenario files: see sim/time.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/time.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define MAX_TOKENS 8
#define MAX_LINE 256

void tb_simtime_defaults(tb_simtime_scenario *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "unnamed");
    s->seed = 1;
    s->regions = 3;
    s->per_region = 1;
    s->duration_ns = 3600 * SEC;
    s->minpoll = 6;
    s->maxpoll = 10;
    s->clock_offset_ns = 1 * MS;
    s->clock_freq_ppb = 50;
    s->clock_wander_ppb = 5;
    s->delay_min_ns = 5 * MS;
    s->delay_max_ns = 60 * MS;
    s->delay_local_ns = MS / 2;
    s->jitter_ns = 1 * MS;
    s->asym = 0.2;
    s->loss = 0.01;
    s->server_root_ns = 200000;
    s->xc = tb_xc_config_default();
    s->min_interval_ms = 1000;
}

typedef struct line {
    char *tok[MAX_TOKENS];
    int n;
    unsigned no;
    char *err;
    size_t errlen;
} line;

static int fail(const line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const line *l, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "line %u: %s", l->no, what);
    return TB_ERR_INVAL;
}

/* A decimal number (optionally fractional) in [lo, hi], scaled by `unit`, into *out. */
static int num(const line *l, int i, double lo, double hi, double unit, int64_t *out)
{
    if (i >= l->n)
        return fail(l, "'%s' needs more values", l->tok[0]);
    char *end;
    errno = 0;
    double v = strtod(l->tok[i], &end);
    if (errno || end == l->tok[i] || *end || !(v >= lo && v <= hi))
        return fail(l, "'%s': '%s' is not a number in [%g, %g]", l->tok[0], l->tok[i], lo, hi);
    *out = (int64_t)(v * unit);
    return TB_OK;
}

static int frac(const line *l, int i, double lo, double hi, double *out)
{
    int64_t v = 0;
    int rc = num(l, i, lo, hi, 1e6, &v);
    *out = (double)v / 1e6;
    return rc;
}

static int name(const line *l, int i, char *dst)
{
    if (i >= l->n)
        return fail(l, "'%s' needs a name", l->tok[0]);
    size_t n = strlen(l->tok[i]);
    if (n == 0 || n >= TB_SIMTIME_NAME_MAX)
        return fail(l, "name '%s' too long (at most %d)", l->tok[i], TB_SIMTIME_NAME_MAX - 1);
    for (size_t k = 0; k < n; k++)
        if (l->tok[i][k] < 0x21 || l->tok[i][k] > 0x7e)
            return fail(l, "name with a character that is not printable ASCII");
    memcpy(dst, l->tok[i], n + 1);
    return TB_OK;
}

static int source(const line *l, tb_simtime_scenario *s)
{
    if (s->n_sources >= TB_SIMTIME_MAX_SOURCES)
        return fail(l, "more than %d sources", TB_SIMTIME_MAX_SOURCES);
    tb_simtime_source *src = &s->sources[s->n_sources];
    memset(src, 0, sizeof(*src));
    if (name(l, 1, src->name) != TB_OK)
        return TB_ERR_INVAL;
    for (unsigned k = 0; k < s->n_sources; k++)
        if (strcmp(s->sources[k].name, src->name) == 0)
            return fail(l, "source '%s' twice", src->name);
    const char *b = l->n > 2 ? l->tok[2] : "";
    int rc = TB_OK;
    int args = 0;
    src->roughtime = strcmp(l->tok[0], "roughtime") == 0;
    if (src->roughtime && strcmp(b, "honest") != 0 && strcmp(b, "unsync") != 0 &&
        strcmp(b, "step") != 0)
        return fail(l, "roughtime behaviour '%s' (honest, step, unsync)", b);
    if (strcmp(b, "honest") == 0)
        src->behaviour = TB_SIMTIME_HONEST;
    else if (strcmp(b, "unsync") == 0)
        src->behaviour = TB_SIMTIME_UNSYNC;
    else if (strcmp(b, "kod") == 0)
        src->behaviour = TB_SIMTIME_KOD;
    else if (strcmp(b, "step") == 0 || strcmp(b, "ramp") == 0 || strcmp(b, "drift") == 0) {
        src->behaviour = b[0] == 's'   ? TB_SIMTIME_STEP
                         : b[0] == 'r' ? TB_SIMTIME_RAMP
                                       : TB_SIMTIME_DRIFT;
        args = 2;
        rc = num(l, 3, 0, 1e7, 1e9, &src->at_ns);
        if (rc == TB_OK && src->behaviour == TB_SIMTIME_STEP)
            rc = num(l, 4, -1e7, 1e7, 1e6, &src->value); /* ms */
        else if (rc == TB_OK)
            rc = num(l, 4, -1e5, 1e5, 1e3, &src->value); /* ppm → ppb */
    } else
        return fail(l, "source behaviour '%s' (honest, step, ramp, drift, unsync, kod)", b);
    if (rc == TB_OK && l->n != 3 + args)
        return fail(l, "source '%s': %d values expected", b, args);
    if (rc == TB_OK)
        s->n_sources++;
    return rc;
}

static int attack(const line *l, tb_simtime_scenario *s)
{
    const char *a = l->n > 1 ? l->tok[1] : "";
    int64_t member;
    int rc;
    if (strcmp(a, "takeover") == 0) {
        s->attack = TB_SIMTIME_TAKEOVER;
        if ((rc = num(l, 2, 0, TB_SIMTIME_MAX_NODES - 1, 1, &member)) != TB_OK ||
            (rc = num(l, 3, 0, 1e7, 1e9, &s->attack_at_ns)) != TB_OK ||
            (rc = name(l, 4, s->attack_source)) != TB_OK ||
            (rc = num(l, 5, -1e7, 1e7, 1e6, &s->attack_offset_ns)) != TB_OK)
            return rc;
        if (l->n != 6)
            return fail(l, "attack takeover MEMBER AT_S SOURCE OFFSET_MS");
    } else if (strcmp(a, "flood") == 0) {
        int64_t rate;
        s->attack = TB_SIMTIME_FLOOD;
        if ((rc = num(l, 2, 0, TB_SIMTIME_MAX_NODES - 1, 1, &member)) != TB_OK ||
            (rc = num(l, 3, 0, 1e7, 1e9, &s->attack_at_ns)) != TB_OK ||
            (rc = num(l, 4, 0, 1e7, 1e9, &s->attack_until_ns)) != TB_OK ||
            (rc = num(l, 5, 1, 1000, 1, &rate)) != TB_OK)
            return rc;
        if (l->n != 6)
            return fail(l, "attack flood MEMBER AT_S UNTIL_S PER_S");
        s->flood_per_s = (unsigned)rate;
    } else if (strcmp(a, "frame") == 0) {
        s->attack = TB_SIMTIME_FRAME;
        if ((rc = num(l, 2, 0, TB_SIMTIME_MAX_NODES - 1, 1, &member)) != TB_OK ||
            (rc = num(l, 3, 0, 1e7, 1e9, &s->attack_at_ns)) != TB_OK ||
            (rc = num(l, 4, 0, 1e7, 1e9, &s->attack_until_ns)) != TB_OK ||
            (rc = name(l, 5, s->attack_source)) != TB_OK)
            return rc;
        if (l->n != 6)
            return fail(l, "attack frame MEMBER AT_S UNTIL_S ROUGHTIME_SOURCE");
    } else
        return fail(l, "attack '%s' (takeover, flood, frame)", a);
    s->liar = (unsigned)member;
    return TB_OK;
}

static int scalar(const line *l, tb_simtime_scenario *s)
{
    const char *k = l->tok[0];
    int64_t v = 0;
    int rc = TB_OK;
    if (l->n != 2 && strcmp(k, "clock") != 0 && strcmp(k, "network") != 0)
        return fail(l, "'%s' takes one value", k);
    if (strcmp(k, "name") == 0)
        return name(l, 1, s->name);
    if (strcmp(k, "seed") == 0)
        rc = num(l, 1, 0, 1e15, 1, &v), s->seed = (uint64_t)v;
    else if (strcmp(k, "hours") == 0)
        rc = num(l, 1, 0.01, 24 * 30, 3600e9, &s->duration_ns);
    else if (strcmp(k, "minutes") == 0)
        rc = num(l, 1, 1, 60 * 24 * 30, 60e9, &s->duration_ns);
    else if (strcmp(k, "regions") == 0)
        rc = num(l, 1, 1, TB_SIMTIME_MAX_NODES, 1, &v), s->regions = (unsigned)v;
    else if (strcmp(k, "per_region") == 0)
        rc = num(l, 1, 1, TB_SIMTIME_MAX_NODES, 1, &v), s->per_region = (unsigned)v;
    else if (strcmp(k, "observers") == 0)
        rc = num(l, 1, 0, TB_SIMTIME_MAX_NODES, 1, &v), s->observers = (unsigned)v;
    else if (strcmp(k, "minpoll") == 0)
        rc = num(l, 1, 0, 17, 1, &v), s->minpoll = (int)v;
    else if (strcmp(k, "maxpoll") == 0)
        rc = num(l, 1, 0, 17, 1, &v), s->maxpoll = (int)v;
    else if (strcmp(k, "server_root_us") == 0)
        rc = num(l, 1, 0, 1e6, 1e3, &s->server_root_ns);
    else if (strcmp(k, "hold_runs") == 0)
        rc = num(l, 1, 0, 100, 1, &v), s->xc.hold_runs = (unsigned)v;
    else if (strcmp(k, "window_s") == 0)
        rc = num(l, 1, 10, 86400, 1e9, &s->xc.window_ns);
    else if (strcmp(k, "min_interval_ms") == 0)
        rc = num(l, 1, 10, 600000, 1, &v), s->min_interval_ms = (uint32_t)v;
    else if (strcmp(k, "clock") == 0) {
        if (l->n != 4)
            return fail(l, "clock OFFSET_MS FREQ_PPM WANDER_PPB");
        if ((rc = num(l, 1, 0, 1e6, 1e6, &s->clock_offset_ns)) == TB_OK &&
            (rc = num(l, 2, 0, 500, 1e3, &s->clock_freq_ppb)) == TB_OK)
            rc = num(l, 3, 0, 1e5, 1, &s->clock_wander_ppb);
    } else if (strcmp(k, "network") == 0) {
        if (l->n != 7)
            return fail(l, "network MIN_MS MAX_MS LOCAL_MS JITTER_MS ASYM LOSS");
        if ((rc = num(l, 1, 0, 1e4, 1e6, &s->delay_min_ns)) == TB_OK &&
            (rc = num(l, 2, 0, 1e4, 1e6, &s->delay_max_ns)) == TB_OK &&
            (rc = num(l, 3, 0, 1e4, 1e6, &s->delay_local_ns)) == TB_OK &&
            (rc = num(l, 4, 0, 1e4, 1e6, &s->jitter_ns)) == TB_OK &&
            (rc = frac(l, 5, 0, 0.9, &s->asym)) == TB_OK)
            rc = frac(l, 6, 0, 0.5, &s->loss);
        if (rc == TB_OK && s->delay_max_ns < s->delay_min_ns)
            return fail(l, "network: MAX_MS below MIN_MS");
    } else
        return fail(l, "unknown directive '%s'", k);
    return rc;
}

static int directive(line *l, tb_simtime_scenario *s)
{
    if (strcmp(l->tok[0], "source") == 0 || strcmp(l->tok[0], "roughtime") == 0)
        return source(l, s);
    if (strcmp(l->tok[0], "attack") == 0)
        return attack(l, s);
    return scalar(l, s);
}

static int check(const tb_simtime_scenario *s, char *err, size_t errlen)
{
    unsigned nodes = s->regions * s->per_region;
    const char *why = nodes > TB_SIMTIME_MAX_NODES ? "more nodes than the simulator holds"
                      : s->minpoll > s->maxpoll    ? "minpoll above maxpoll"
                      : s->n_sources == 0          ? "no source"
                      : s->attack != TB_SIMTIME_NO_ATTACK && s->liar >= nodes
                          ? "the attacking member is not a node"
                          : NULL;
    if (!why && s->attack == TB_SIMTIME_TAKEOVER) {
        why = "takeover: the attacked source is not configured";
        for (unsigned k = 0; k < s->n_sources; k++)
            if (strcmp(s->sources[k].name, s->attack_source) == 0 && !s->sources[k].roughtime)
                why = NULL;
    }
    if (!why && s->attack == TB_SIMTIME_FRAME) {
        why = "frame: the framed source is not a configured Roughtime server";
        for (unsigned k = 0; k < s->n_sources; k++)
            if (strcmp(s->sources[k].name, s->attack_source) == 0 && s->sources[k].roughtime)
                why = NULL;
    }
    if (why) {
        snprintf(err, errlen, "scenario %s: %s", s->name, why);
        return TB_ERR_INVAL;
    }
    return TB_OK;
}

int tb_simtime_parse(const char *text, size_t len, tb_simtime_scenario *out, char *err,
                     size_t errlen)
{
    tb_simtime_defaults(out);
    size_t i = 0;
    unsigned no = 0;
    while (i < len) {
        char buf[MAX_LINE];
        size_t n = 0;
        no++;
        while (i < len && text[i] != '\n') {
            if (n + 1 >= sizeof(buf)) {
                snprintf(err, errlen, "line %u: longer than %d bytes", no, MAX_LINE - 1);
                return TB_ERR_INVAL;
            }
            char c = text[i++];
            buf[n++] = c == '\t' ? ' ' : c;
        }
        i++; /* the newline */
        buf[n] = '\0';
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        line l = {.no = no, .err = err, .errlen = errlen};
        char *save = NULL;
        for (char *t = strtok_r(buf, " \r", &save); t; t = strtok_r(NULL, " \r", &save)) {
            if (l.n == MAX_TOKENS) {
                snprintf(err, errlen, "line %u: more than %d words", no, MAX_TOKENS);
                return TB_ERR_INVAL;
            }
            l.tok[l.n++] = t;
        }
        if (l.n > 0 && directive(&l, out) != TB_OK)
            return TB_ERR_INVAL;
    }
    return check(out, err, errlen);
}
