/* The SOCK reference clock driver (kind sock): a one-way source. tbnode binds a Unix datagram
 * socket at the configured path and a local writer (gpsd, or anything written for chrony's
 * and ntpd-rs's SOCK refclock) sends samples (sources/sock_sample.h) when it has them; there
 * is no polling. Each valid sample is one measurement with the configured delay and an error
 * bound of precision + delay/2. Pulse-only samples (PPS without a second-naming partner) and
 * malformed samples are dropped and counted.
 *
 * A stale socket file at the path (nobody bound to it) is replaced; a live one, or a path
 * that is not a socket, is refused. The file is removed on stop if it is still ours. */
#ifndef TB_SOURCES_SOCK_DRIVER_H
#define TB_SOURCES_SOCK_DRIVER_H

#include <stdint.h>

#include "sources/source.h"

typedef struct tb_sock_stats {
    uint64_t received;  /* datagrams read */
    uint64_t accepted;  /* delivered as measurements */
    uint64_t malformed; /* wrong length or magic, absurd or non-finite values */
    uint64_t stale;     /* sample time more than TB_SOCK_MAX_AGE_S away from our clock */
    uint64_t pulse;     /* pulse-only samples: no second to pair them with */
} tb_sock_stats;

/* A sample whose system time is further than this from the local real clock is not fresh. */
#define TB_SOCK_MAX_AGE_S 10

const tb_source_driver *tb_sock_driver(void);
/* Counters of a sock source, NULL for other kinds. */
const tb_sock_stats *tb_sock_driver_stats(const tb_source *s);

#endif
