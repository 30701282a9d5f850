/* The Roughtime driver's TCP transport (RFC 10049's framing: each packet with its ROUGHTIM
 * header, back to back on the stream), for a source whose address is "tcp://host:port". One
 * non-blocking connection per request on the environment's libev loop: connect, write the
 * request, read until one whole packet is there, hand it over and close. A request replaces the
 * connection of the one before, and a connection is closed after its timeout, so at most one is
 * open per source. The reader's buffer is fixed (TB_RT_RESPONSE_BUF); the length in a packet's
 * header is checked against it before the packet is awaited, and a stream that does not start
 * with a packet header, or announces a longer one, is closed. */
#ifndef TB_SOURCES_RT_TCP_H
#define TB_SOURCES_RT_TCP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/error.h"
#include "roughtime/verify.h"
#include "sources/source.h"

#define TB_RT_TCP_PREFIX "tcp://"

/* The request's first bytes went to the kernel at real/mono: the request's T1. */
typedef void (*tb_rt_tcp_sent_cb)(void *arg, int64_t real, uint64_t mono);
/* One whole packet (header included) from the server, read at real/mono. */
typedef void (*tb_rt_tcp_recv_cb)(void *arg, const uint8_t *p, size_t n, int64_t real,
                                  uint64_t mono);

/* Embedded in the driver's state; fields are read-only outside rt_tcp.c. */
typedef struct tb_rt_tcp {
    tb_source *src;
    int fd;
    bool connected;
    ev_io io;
    ev_timer timer;
    tb_rt_tcp_sent_cb on_sent;
    tb_rt_tcp_recv_cb on_recv;
    void *arg;
    uint8_t out[TB_RT_REQUEST_BUF];
    size_t out_len, out_off;
    uint8_t in[TB_RT_RESPONSE_BUF];
    size_t in_len;
    uint64_t n_connects, n_failed; /* connections opened; ended without a packet */
    char last_error[96];           /* why the last one failed ("" when none has) */
} tb_rt_tcp;

void tb_rt_tcp_init(tb_rt_tcp *t, tb_source *src, tb_rt_tcp_sent_cb on_sent,
                    tb_rt_tcp_recv_cb on_recv, void *arg);
/* Closes the previous connection and opens one to a that sends req (at most
 * TB_RT_REQUEST_BUF bytes) and waits at most timeout_ns for the answer. TB_ERR_IO (errno kept)
 * when the socket cannot be opened or the connection fails at once; TB_ERR_TOO_BIG. */
TB_WUR int tb_rt_tcp_request(tb_rt_tcp *t, const tb_addr *a, const uint8_t *req, size_t n,
                             uint64_t timeout_ns);
/* Closes the connection, if any. */
void tb_rt_tcp_close(tb_rt_tcp *t);

#endif
