/* UDP socket edge shared by the source drivers (NTP, Roughtime): a connected, non-blocking
 * socket that asks the kernel for receive timestamps, and the receive time of a datagram in the
 * environment's clock. One copy, so every driver timestamps the same way (adr/0007). */
#ifndef TB_SOURCES_UDP_H
#define TB_SOURCES_UDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "sources/resolver.h"

/* Control buffer size for recvmsg that leaves room for SCM_TIMESTAMPNS. */
#define TB_SOURCE_UDP_CMSG_SPACE (CMSG_SPACE(sizeof(struct timespec)) + 64)

/* Opens a non-blocking UDP socket connected to a. *kernel_ts says whether SO_TIMESTAMPNS was
 * accepted. TB_ERR_IO with errno kept on failure. */
TB_WUR int tb_source_udp_open(const tb_addr *a, bool *kernel_ts, int *fd);

/* The receive time of the datagram read with msg: the kernel's stamp when msg carries one,
 * moved into clk by the time elapsed since (so a manual or shifted clock stays consistent);
 * otherwise clk read now. Returns true when the kernel's stamp was used. */
bool tb_source_udp_rx_time(const tb_clock *clk, struct msghdr *msg, int64_t *real, uint64_t *mono);

#endif
