/* The Roughtime server's socket edge: one UDP socket on a caller-supplied libev loop, recvmmsg
 * into the batch logic (server.h), a flush timer, sendmmsg out, the online-key rotation timer,
 * the statistics timer (the server logs its counters, by default every minute), and the
 * kernel's clock error for RADI. Several edges (one per thread and loop) can share a port with
 * SO_REUSEPORT. Optionally TCP on the same address and port (RFC 10049's framing: packets back
 * to back on a connection), its requests batched with the UDP ones: at most
 * TB_RT_TCP_MAX_CONN connections, each closed after TB_RT_TCP_IDLE_S s without a request, on
 * a framing error, or when it does not read its answers. */
#ifndef TB_ROUGHTIME_UDP_H
#define TB_ROUGHTIME_UDP_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "roughtime/server.h"

/* The port IANA assigned to Roughtime; servers in the wild mostly use 2002. */
#define TB_RT_PORT 5319
#define TB_RT_PORT_STR "5319"

typedef struct tb_rt_udp tb_rt_udp;

typedef struct tb_rt_udp_config {
    char listen[80];            /* numeric "ADDR:PORT" or "[V6]:PORT"; default 127.0.0.1:5319 */
    uint64_t flush_interval_ns; /* longest a request waits for its batch (default 1 ms) */
    uint32_t radius_s;          /* RADI when the kernel clock is not synchronised (default 3) */
    int radius_from_kernel;     /* read adjtimex maxerror/status (default 1) */
    int reuseport;              /* SO_REUSEPORT, for one edge per worker thread */
    uint64_t stats_interval_ns; /* how often the server's counters are logged (default 60 s) */
    int tcp;                    /* also listen on TCP, same address and port (default 0) */
    uint64_t cert_warn_ns;      /* an offline delegation (server.h) closer than this to its
                                   MAXT is warned about at start and with the statistics
                                   (default 1 day) */
} tb_rt_udp_config;

#define TB_RT_TCP_MAX_CONN 64
#define TB_RT_TCP_IDLE_S 10.0

void tb_rt_udp_config_default(tb_rt_udp_config *cfg);

/* Binds and starts the watchers on loop. srv stays owned by the caller and must outlive the edge;
 * clock gives MIDP (a shifted clock makes a lying server for tests). */
TB_WUR int tb_rt_udp_new(struct ev_loop *loop, const tb_log *log, const tb_clock *clock,
                         tb_rt_srv *srv, const tb_rt_udp_config *cfg, tb_rt_udp **out);
/* The bound port (useful after binding port 0). */
uint16_t tb_rt_udp_port(const tb_rt_udp *u);
/* Signs and sends what is pending, then stops the watchers (shutdown). */
void tb_rt_udp_drain(tb_rt_udp *u);
/* Drains, closes the socket and frees. */
void tb_rt_udp_free(tb_rt_udp *u);

#endif
