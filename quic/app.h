/* quic/app: connections that are not mesh peers but HTTP/3 (ALPN "h3", adr/0013). The endpoint
 * keeps everything QUIC (admission, handshake, flow control, timers, closing) and hands each
 * stream's bytes to an application layer above it (http/h3.c runs nghttp3 there), which hands
 * back what to send. A server endpoint given ops accepts "h3" beside "tbmesh/1", and only from a
 * client whose certificate is an operator's of the mesh CA (certs/identity.h); anything else is
 * refused in the handshake with a TLS alert. A client endpoint given ops can dial a node with
 * "h3" (tb_quic_dial_h3), presenting its own (operator) certificate.
 *
 * An h3 connection counts in max_connections and the half-open limits like any other, never
 * reaches on_connected, and is not found by tb_quic_find_peer. The hooks run from the loop,
 * inside the endpoint's calls into ngtcp2: they may call the functions below, and tb_quic_close,
 * but never destroy the endpoint. */
#ifndef TB_QUIC_APP_H
#define TB_QUIC_APP_H

#include <stddef.h>
#include <stdint.h>

#include "quic/endpoint.h"

#define TB_QUIC_ALPN_H3 "h3"
/* Unidirectional streams an h3 peer may open (control and the two QPACK streams, and a few
 * that RFC 9114 lets it open and us ignore). */
#define TB_QUIC_APP_UNI_STREAMS 8

typedef struct tb_quic_app_vec {
    const uint8_t *base;
    size_t len;
} tb_quic_app_vec;

typedef struct tb_quic_app_ops {
    /* The handshake is confirmed and the peer judged (server: an operator, by name; client: a
     * node). Returns the connection's state, or NULL to close it. */
    void *(*open)(void *arg, tb_quic_conn *c, const char *peer_name);
    /* Bytes of stream id (fin: its last). Returns how many of them count against flow control
     * as consumed (credit given back at once), or <0 to close the connection (the hook calls
     * tb_quic_close with its code first). */
    int64_t (*recv)(void *st, int64_t id, const uint8_t *data, size_t len, int fin);
    /* n more bytes of stream id were acknowledged by the peer. */
    int (*acked)(void *st, int64_t id, uint64_t n);
    /* The stream is closed (code: the peer's or ours; has_code 0 when none was given). */
    int (*stream_close)(void *st, int64_t id, uint64_t code, int has_code);
    /* The peer reset the stream or asked us to stop sending on it. */
    int (*stream_reset)(void *st, int64_t id);
    /* The stream may take more data again (the peer raised its flow-control limit). */
    int (*unblock)(void *st, int64_t id);
    /* What to send next: *id -1 when nothing. Returns the number of vecs filled or <0. */
    int (*pull)(void *st, int64_t *id, int *fin, tb_quic_app_vec *v, size_t nv);
    /* n bytes of what pull gave for stream id were taken by QUIC. */
    int (*pushed)(void *st, int64_t id, size_t n);
    /* Stream id cannot take data now: blocked by flow control, or shut (for good). */
    void (*blocked)(void *st, int64_t id, int shut);
    /* The connection is gone: free st. */
    void (*close)(void *st);
    void *arg;
} tb_quic_app_ops;

/* Server or client: h3 connections are handled by ops (which must outlive the endpoint). Call
 * before the first handshake; NULL turns h3 off again for new handshakes. */
void tb_quic_endpoint_set_app(tb_quic_endpoint *ep, const tb_quic_app_ops *ops);

/* Client: dials addr ("host:port", numeric) with ALPN h3. expected_name as in tb_quic_dial. */
TB_WUR int tb_quic_dial_h3(tb_quic_endpoint *ep, const char *addr, const char *expected_name,
                           tb_quic_conn **out);

/* For the application layer, on a connection handed to it. */
TB_WUR int tb_quic_app_open_uni(tb_quic_conn *c, int64_t *id);
TB_WUR int tb_quic_app_open_bidi(tb_quic_conn *c, int64_t *id);
/* Gives the peer n more bytes of credit on stream id (bytes the application consumed that
 * recv did not count, e.g. a response body). */
void tb_quic_app_extend(tb_quic_conn *c, int64_t id, size_t n);
/* Resets and stops stream id with code. */
void tb_quic_app_shutdown_stream(tb_quic_conn *c, int64_t id, uint64_t code);
/* There is something new to send: written before the loop next blocks. */
void tb_quic_app_want_write(tb_quic_conn *c);

#endif
