#include "common/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tb_log_init(tb_log *log, const char *who, tb_log_level level)
{
    memset(log, 0, sizeof(*log));
    log->level = level;
    log->out = stderr;
    snprintf(log->who, sizeof(log->who), "%s", who ? who : "tb");
    log->journal = tb_log_fd_is_journal(STDERR_FILENO);
}

int tb_log_fd_is_journal(int fd)
{
    const char *env = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    char end;
    if (!env || sscanf(env, "%ju:%ju%c", &dev, &ino, &end) != 2)
        return 0;
    struct stat st;
    /* systemd keeps the variable for children whose stderr went elsewhere: compare. */
    return fstat(fd, &st) == 0 && (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

int tb_log_priority(tb_log_level level)
{
    static const int prio[] = {3 /* LOG_ERR */, 4 /* LOG_WARNING */, 6 /* LOG_INFO */,
                               7 /* LOG_DEBUG */};
    return (unsigned)level < sizeof(prio) / sizeof(prio[0]) ? prio[level] : 7;
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
    /* A sink (a test) always gets the timestamped form; journald gets the priority instead. */
    int journal = log->journal && !log->sink && (!log->out || log->out == stderr);
    if (journal) {
        snprintf(ts, sizeof(ts), "<%d>", tb_log_priority(level));
    } else {
        const tb_clock *clock = log->clock ? log->clock : tb_clock_system();
        tb_clock_format_rfc3339(tb_clock_real(clock), ts, sizeof(ts));
    }

    char line[1024];
    int n = snprintf(line, sizeof(line), "%s%s%s %s: ", ts, journal ? "" : " ", log->who,
                     tb_log_level_name(level));
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
