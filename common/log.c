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

void tb_log_ratelimit_init(tb_log_ratelimit *rl, unsigned burst, uint64_t interval_ns)
{
    memset(rl, 0, sizeof(*rl));
    rl->burst = burst ? burst : 1;
    rl->interval_ns = interval_ns;
}

static void rl_report(tb_log_ratelimit *rl, const tb_log *log, unsigned i)
{
    if (rl->slot[i].suppressed)
        tb_log_write(log, rl->slot[i].level, "(%llu similar lines suppressed)",
                     (unsigned long long)rl->slot[i].suppressed);
    rl->slot[i].suppressed = 0;
}

/* The key's slot; a new key takes a free slot or the one whose window started first (its
 * pending count is written now so it is not lost). */
static unsigned rl_slot(tb_log_ratelimit *rl, const tb_log *log, tb_log_level level, uint64_t key)
{
    unsigned pick = 0;
    for (unsigned i = 0; i < TB_LOG_RATELIMIT_KEYS; i++) {
        if (rl->slot[i].used && rl->slot[i].key == key)
            return i;
        if (!rl->slot[i].used)
            return i;
        if (rl->slot[i].start < rl->slot[pick].start)
            pick = i;
    }
    rl_report(rl, log, pick);
    rl->slot[pick].used = 0;
    return pick;
}

void tb_log_ratelimit_flush(tb_log_ratelimit *rl, const tb_log *log, uint64_t now)
{
    for (unsigned i = 0; i < TB_LOG_RATELIMIT_KEYS; i++) {
        if (rl->slot[i].used && now - rl->slot[i].start >= rl->interval_ns)
            rl_report(rl, log, i);
    }
}

int tb_log_ratelimit_allow(tb_log_ratelimit *rl, const tb_log *log, tb_log_level level,
                           uint64_t key, uint64_t now)
{
    if (!log || level > log->level)
        return 0;
    unsigned i = rl_slot(rl, log, level, key);
    if (!rl->slot[i].used || now - rl->slot[i].start >= rl->interval_ns) {
        if (rl->slot[i].used)
            rl_report(rl, log, i);
        rl->slot[i].used = 1;
        rl->slot[i].level = level;
        rl->slot[i].key = key;
        rl->slot[i].start = now;
        rl->slot[i].count = 0;
        rl->slot[i].suppressed = 0;
    }
    if (rl->slot[i].count < rl->burst) {
        rl->slot[i].count++;
        return 1;
    }
    rl->slot[i].suppressed++;
    return 0;
}
