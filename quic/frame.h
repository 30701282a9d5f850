/* Message framing on QUIC streams (adr/0003): one message per stream, written as a 4-byte
 * big-endian length (1..max) followed by the message, then FIN. This is the one implementation
 * of that frame, both directions; quic/streams.c runs it and tests/fuzz/fuzz_quic_frame.c
 * fuzzes it exactly as it runs.
 *
 * The receive side is fed the way ngtcp2's recv_stream_data callback hands stream data over:
 * pieces in stream order, of any size (empty ones too), FIN set on the last one. It refuses an
 * oversized length at its 4th byte, before buffering anything, and grows its buffer with the
 * bytes that really arrive, never with the length a peer announces.
 *
 * Pure: no I/O, no clock, no ngtcp2. */
#ifndef TB_QUIC_FRAME_H
#define TB_QUIC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_QUIC_FRAME_HDR 4

/* Writes the frame header for a message of len bytes. TB_ERR_INVAL for an empty message,
 * TB_ERR_TOO_BIG above max (or above what 4 bytes can say). */
TB_WUR int tb_quic_frame_header(uint8_t out[TB_QUIC_FRAME_HDR], size_t len, size_t max);

/* Reassembles the one frame of one stream. Fields are private to frame.c. */
typedef struct tb_quic_frame_rx {
    size_t max;
    uint8_t hdr[TB_QUIC_FRAME_HDR];
    size_t hdrlen;
    uint8_t *buf; /* owned until the message is handed out */
    size_t want, got, cap;
    int done;        /* the message was handed out */
    int failed;      /* an error was returned: the rest of the stream is ignored */
    const char *why; /* after an error: what was wrong, for a log line */
} tb_quic_frame_rx;

/* max: largest message accepted, 1..UINT32_MAX (clamped into that range). */
void tb_quic_frame_rx_init(tb_quic_frame_rx *r, size_t max);

/* Takes the next piece (p, len) of the stream; fin when the stream ends with it.
 * Returns 0 with *msg NULL while the message is incomplete (and for anything after it was
 * handed out or after an error), 0 with *msg set once, when the message completes: the caller
 * owns *msg (free()) and *msg_len bytes of it. Otherwise the first error, once, with
 * tb_quic_frame_rx_why() saying what was wrong:
 *   TB_ERR_TOO_BIG    the announced length is above max
 *   TB_ERR_MALFORMED  an empty message, or bytes after the announced length
 *   TB_ERR_TRUNCATED  FIN before the end of the frame
 *   TB_ERR_NOMEM      no memory for the message
 *   TB_ERR_INVAL      p is NULL with len > 0 */
TB_WUR int tb_quic_frame_rx_feed(tb_quic_frame_rx *r, const uint8_t *p, size_t len, int fin,
                                 uint8_t **msg, size_t *msg_len);

const char *tb_quic_frame_rx_why(const tb_quic_frame_rx *r);

/* Bytes this reader holds now (its buffer, at most the announced length, itself at most max). */
size_t tb_quic_frame_rx_buffered(const tb_quic_frame_rx *r);
/* 1 while the message is neither handed out nor refused. */
int tb_quic_frame_rx_pending(const tb_quic_frame_rx *r);
/* Gives up on the message (a deadline passed): frees it, ignores the rest of the stream. */
void tb_quic_frame_rx_abort(tb_quic_frame_rx *r, const char *why);

/* Frees what is buffered; the reader may then be initialised again. */
void tb_quic_frame_rx_clear(tb_quic_frame_rx *r);

#endif
