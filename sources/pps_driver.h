/* The PPS reference clock driver (kind pps): a one-way source that pairs each pulse of a PPS
 * device with the newest measurement of a second source, the lock, that names the second
 * (as chrony's `refclock PPS /dev/pps0 lock NMEA`). The device is fetched on a timer, twice
 * per pulse interval but not more often than every 10 ms (above 50 Hz pulses between two
 * fetches count as missed), through the seam of sources/pps_dev.h; the pure logic (sources/pps.h)
 * judges each new pulse, and every accepted one is a measurement: offset from the pulse's phase and
 * the lock's second, delay 0, error bound precision + 3 × jitter.
 *
 * States: reachable while pulses are accepted; unreachable after unreachable_after new pulses
 * in a row were refused (the reason names why: "lock sample too old", ...), or when no new
 * pulse came for 4 intervals (at least 2 s), or when the device fails. */
#ifndef TB_SOURCES_PPS_DRIVER_H
#define TB_SOURCES_PPS_DRIVER_H

#include "sources/pps.h"
#include "sources/source.h"

/* No new pulse for this many intervals (and at least 2 s): the signal is lost. */
#define TB_PPS_SILENT_INTERVALS 4

const tb_source_driver *tb_pps_driver(void);
/* The pulse counters of a pps source, NULL for other kinds or before its start. */
const tb_pps_stats *tb_pps_driver_stats(const tb_source *s);

#endif
