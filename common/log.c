#include "common/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tb_log_init(tb_log *log, const char *who, tb_log_level level)
{
    memset(log, 0, sizeof(*log));
    log->level = level;
    log->out = stderr;
    snprintf(log->who, sizeof(log->who), "%s", who ? who : "tb");
}

int tb_log_level_parse(const char *s, tb_log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (tb_log_level)i;
            return TB_OK;
        }
    }
    return TB_ERR_INVAL;
}

const char *tb_log_level_name(tb_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

void tb_log_write(const tb_log *log, tb_log_level level, const char *fmt, ...)
{
    if (!log || level > log->level)
        return;
    char ts[TB_CLOCK_RFC3339_LEN];
    const tb_clock *clock = log->clock ? log->clock : tb_clock_system();
    tb_clock_format_rfc3339(tb_clock_real(clock), ts, sizeof(ts));

    char line[1024];
    int n = snprintf(line, sizeof(line), "%s %s %s: ", ts, log->who, tb_log_level_name(level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One event, one line: a peer-supplied string must not be able to forge extra lines. */
    for (char *c = line + n; *c; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    if (log->sink) {
        log->sink(log->sink_arg, level, line);
        return;
    }
    FILE *out = log->out ? log->out : stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}
