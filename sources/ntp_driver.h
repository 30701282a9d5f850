/* The NTP source driver: one connected UDP socket (IPv4 or IPv6) per server, the pure client
 * of ntp/client.h, kernel receive timestamps (SO_TIMESTAMPNS) when the kernel gives them and
 * the clock module otherwise. A server given by name is resolved through the environment's
 * resolver at start and again whenever it becomes unreachable. */
#ifndef TB_SOURCES_NTP_DRIVER_H
#define TB_SOURCES_NTP_DRIVER_H

#include "ntp/client.h"
#include "sources/nts_assoc.h"
#include "sources/source.h"

const tb_source_driver *tb_ntp_driver(void);
/* The NTP driver for kind nts: a KE exchange first, then NTS-authenticated NTP
 * (sources/nts_assoc.h); replies that fail NTS never reach the NTP client. */
const tb_source_driver *tb_nts_driver(void);

/* The client state (poll interval, counters by rejection reason) of an NTP source, or NULL
 * before the server's address is known. For status output and tests. */
const tb_ntp_client *tb_ntp_driver_client(const tb_source *s);
/* The NTS association of an nts source (stats), NULL for plain NTP. */
const tb_nts_assoc *tb_ntp_driver_nts(const tb_source *s);

/* The client configuration of an NTP source: the defaults with the source's polls and
 * unreach_after, the start-up burst never slower than minpoll. */
void tb_ntp_driver_client_config(const tb_source_config *cfg, tb_ntp_client_config *out);

/* What the driver makes of one reply received at real time t4 (monotonic mono), without I/O:
 * the client judges it (*why), and true with *out filled (out->source unset; pointers into the
 * client or buf, valid until the client changes) when a measurement is to be delivered: a
 * sample the clock filter released, or an authentic reply whose server says it is
 * unsynchronised (stratum 16, leap 3, another kiss code), whose numbers are 0. The simulator
 * (sim/time.c) drives the client through this as the driver does. */
bool tb_ntp_driver_reply(tb_ntp_client *c, const uint8_t *buf, size_t n, int64_t t4, uint64_t mono,
                         tb_source_meas *out, tb_ntp_reject *why);

#endif
