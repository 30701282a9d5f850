/* The UDP edge shared by the source drivers (NTP, Roughtime): the server's address, resolved
 * through the environment's resolver when it is a name, one connected non-blocking socket that
 * asks the kernel for receive timestamps, and a reader that hands each datagram from the server
 * to the driver with its receive time in the environment's clock. One copy, so every driver
 * resolves, connects and timestamps the same way (adr/0007). */
#ifndef TB_SOURCES_UDP_H
#define TB_SOURCES_UDP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "resolve/resolver.h"
#include "sources/source.h"

#define TB_SOURCE_UDP_MAX 2048 /* largest datagram read; longer ones are flagged truncated */

/* The address is known and the socket open (none with addr_only): the driver starts polling. */
typedef void (*tb_source_udp_ready_cb)(void *arg);
/* One datagram from the server; real/mono its receive time (kernel stamp when there is one). */
typedef void (*tb_source_udp_recv_cb)(void *arg, const uint8_t *p, size_t n, bool truncated,
                                      int64_t real, uint64_t mono);

/* Embedded in the driver's state; fields are read-only outside udp.c. */
typedef struct tb_source_udp {
    tb_source *src;
    char host[TB_SOURCE_NAME_MAX];
    char port[8];
    bool numeric;   /* host is an address: never resolved */
    bool have_addr; /* addr is set and the socket open */
    bool addr_only; /* set by a driver with its own transport: resolve, open no socket */
    bool resolving;
    tb_addr addr;
    int fd;
    ev_io io;
    uint64_t ticket;
    uint64_t retry_ns; /* after a failed resolution or socket, poll again this much later */
    tb_source_udp_ready_cb on_ready;
    tb_source_udp_recv_cb on_recv;
    void *arg;
    uint64_t n_foreign; /* datagrams from another address, ignored */
    uint64_t n_kernel_ts, n_clock_ts;
    uint8_t buf[TB_SOURCE_UDP_MAX];
} tb_source_udp;

/* where: "host", "host:port" or "[v6]:port" (default_port when none). No I/O yet. */
TB_WUR int tb_source_udp_init(tb_source_udp *u, tb_source *src, const char *where,
                              uint16_t default_port, uint64_t retry_ns,
                              tb_source_udp_ready_cb on_ready, tb_source_udp_recv_cb on_recv,
                              void *arg);
/* A numeric address opens at once (on_ready before returning; TB_ERR_IO when the socket fails);
 * a name starts resolving and returns 0. */
TB_WUR int tb_source_udp_start(tb_source_udp *u);
/* Closes the socket and resolves the name again (on_ready when done); failures set the source
 * UNREACHABLE with the reason and schedule a poll retry_ns later. */
void tb_source_udp_resolve(tb_source_udp *u);
/* Cancels resolution and closes the socket; start may be called again. */
void tb_source_udp_stop(tb_source_udp *u);
/* Sends on the connected socket; TB_ERR_IO (errno kept) when it did not go out whole. */
TB_WUR int tb_source_udp_send(tb_source_udp *u, const uint8_t *p, size_t n);
/* "resolving" or "no address" while there is no socket, for describe hooks. */
const char *tb_source_udp_status(const tb_source_udp *u);

/* The pieces, for a driver with its own socket. */
/* Opens a non-blocking UDP socket connected to a. *kernel_ts says whether SO_TIMESTAMPNS was
 * accepted. TB_ERR_IO with errno kept on failure. */
TB_WUR int tb_source_udp_open(const tb_addr *a, bool *kernel_ts, int *fd);
/* The receive time of the datagram read with msg: the kernel's stamp when msg carries one,
 * moved into clk by the time elapsed since (so a manual or shifted clock stays consistent);
 * otherwise clk read now. Returns true when the kernel's stamp was used. */
bool tb_source_udp_rx_time(const tb_clock *clk, struct msghdr *msg, int64_t *real, uint64_t *mono);

#endif
