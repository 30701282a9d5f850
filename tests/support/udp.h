/* A UDP socket for a test's own responder on loopback. */
#ifndef TB_TESTS_SUPPORT_UDP_H
#define TB_TESTS_SUPPORT_UDP_H

#include <stddef.h>

/* Binds a non-blocking UDP socket to the numeric address ip on a free port and writes
 * "ip:port" (what a source config takes) into addr. Returns the socket, or -1 (nothing left
 * open). */
int tb_test_udp_bind(const char *ip, char *addr, size_t addrlen);

#endif
