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

#endif
