/* Test-only hooks into the QUIC endpoint. Built as the separate library tb_quic_testing, which
 * only tests link: tbnode never carries them. */
#ifndef TB_QUIC_TESTING_H
#define TB_QUIC_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "quic/endpoint.h"

/* For the peer's frame checks: sends bytes as they are (no frame header added) on a new
 * stream, then FIN. */
TB_WUR int tb_quic_send_stream_raw(tb_quic_conn *c, const uint8_t *bytes, size_t len);

/* For migration: moves the socket to a new ephemeral port on the same address, as a NAT
 * rebinding would; connections carry on over the new path. */
TB_WUR int tb_quic_endpoint_rebind(tb_quic_endpoint *ep);

/* Sends bytes on a new stream and never finishes it (no FIN): a peer holding our buffers. */
TB_WUR int tb_quic_send_stream_unfinished(tb_quic_conn *c, const uint8_t *bytes, size_t len);

/* Makes a client endpoint the outsider of a handshake flood: it takes Retry packets and
 * nothing else, so each connection it dials passes Retry and then stalls. */
void tb_quic_endpoint_stall_handshakes(tb_quic_endpoint *ep);

#endif
