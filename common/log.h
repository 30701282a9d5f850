/* The log module: one line per event, printf-checked, with a level and the name of whoever
 * logs (a node, a tool). A tb_log is passed explicitly to every module; a test can install a
 * sink to capture lines and assert on the reasons they give.
 *
 * Lines start with an ISO 8601 UTC time to the millisecond, except under journald (stderr is
 * the stream JOURNAL_STREAM names, sd-daemon(3)): the journal stamps lines itself, so they start
 * with the syslog priority instead ("<4>tbnode warn: ..."), which `journalctl -p` filters on. */
#ifndef TB_COMMON_LOG_H
#define TB_COMMON_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "common/clock.h"
#include "common/error.h"

typedef enum tb_log_level {
    TB_LOG_ERROR = 0,
    TB_LOG_WARN = 1,
    TB_LOG_INFO = 2,
    TB_LOG_DEBUG = 3,
} tb_log_level;

typedef void (*tb_log_sink)(void *arg, tb_log_level level, const char *line);

typedef struct tb_log {
    tb_log_level level;
    char who[48];     /* prefix naming the node or tool */
    FILE *out;        /* where lines go when there is no sink (default stderr) */
    tb_log_sink sink; /* optional: receives every line at or above level */
    void *sink_arg;
    const tb_clock *clock; /* for the timestamp; NULL means the system clock */
    int journal;           /* out is journald's stream: "<N>" prefix, no timestamp */
} tb_log;

/* Writes to stderr; sets journal when stderr is journald's stream. */
void tb_log_init(tb_log *log, const char *who, tb_log_level level);

/* 1 when fd is the stream JOURNAL_STREAM ("DEVICE:INODE") names. */
int tb_log_fd_is_journal(int fd);

/* The syslog priority journald files a line of this level under (3 error .. 7 debug). */
int tb_log_priority(tb_log_level level);

/* Parses "error", "warn", "info" or "debug". */
TB_WUR int tb_log_level_parse(const char *s, tb_log_level *out);
const char *tb_log_level_name(tb_log_level level);

void tb_log_write(const tb_log *log, tb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limit for lines that an outsider can make repeat (refusals, junk, half-open
 * connections): per key, at most `burst` lines per interval; the lines over it are counted, and
 * the first line allowed after the interval is preceded by one "(K similar lines suppressed)".
 * Keys are the caller's (an event kind, an address hash); a bounded number of keys is tracked,
 * the least recently started window giving way. Reads no clock: the caller passes `now`. */
#define TB_LOG_RATELIMIT_KEYS 16

typedef struct tb_log_ratelimit {
    unsigned burst;
    uint64_t interval_ns;
    struct {
        uint64_t key, start, suppressed;
        unsigned count, used;
        tb_log_level level;
    } slot[TB_LOG_RATELIMIT_KEYS];
} tb_log_ratelimit;

void tb_log_ratelimit_init(tb_log_ratelimit *rl, unsigned burst, uint64_t interval_ns);
/* 1 when a line for key may be written now (after writing any pending suppression count). */
int tb_log_ratelimit_allow(tb_log_ratelimit *rl, const tb_log *log, tb_log_level level,
                           uint64_t key, uint64_t now);

/* Writes the pending count of every window that has ended by now: call it from a timer, so
 * the count of a burst that stopped is not held back until the next line of its kind. */
void tb_log_ratelimit_flush(tb_log_ratelimit *rl, const tb_log *log, uint64_t now);

/* tb_log_write when rl allows it; arguments are not evaluated otherwise. */
#define tb_log_limited(log, rl, level, key, now, ...)                                              \
    do {                                                                                           \
        if (tb_log_ratelimit_allow((rl), (log), (level), (key), (now)))                            \
            tb_log_write((log), (level), __VA_ARGS__);                                             \
    } while (0)

#define tb_log_error(log, ...) tb_log_write((log), TB_LOG_ERROR, __VA_ARGS__)
#define tb_log_warn(log, ...) tb_log_write((log), TB_LOG_WARN, __VA_ARGS__)
#define tb_log_info(log, ...) tb_log_write((log), TB_LOG_INFO, __VA_ARGS__)
#define tb_log_debug(log, ...) tb_log_write((log), TB_LOG_DEBUG, __VA_ARGS__)

#endif
