/* The handshake's TLS backend, behind one small interface (adr/0002): credentials, priority,
 * ALPN, and the peer-certificate checks that decide whether a peer is refused and why. The only
 * implementation is tls_gnutls.c (ngtcp2_crypto_gnutls); nothing else includes GnuTLS. */
#ifndef TB_QUIC_TLS_H
#define TB_QUIC_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2_crypto.h>

#include "common/error.h"
#include "common/log.h"
#include "quic/endpoint.h"

typedef struct tb_quic_tls_ctx tb_quic_tls_ctx; /* per endpoint: our cert chain and the CA */
typedef struct tb_quic_tls tb_quic_tls;         /* per connection */

/* Loads our chain + key and the mesh CA (the only trust anchor). Errors name the file. */
TB_WUR int tb_quic_tls_ctx_create(tb_quic_tls_ctx **out, const char *cert_file,
                                  const char *key_file, const char *ca_file, const tb_log *log);
void tb_quic_tls_ctx_free(tb_quic_tls_ctx *ctx);
/* New credentials for the sessions created from now on (tb_quic_endpoint_set_credentials);
 * sessions already created keep theirs until they are freed. */
TB_WUR int tb_quic_tls_ctx_set(tb_quic_tls_ctx *ctx, const tb_quic_credentials *c);

/* A session wired to ngtcp2 through ref (ref->get_conn must return the ngtcp2_conn).
 * expected_name (client only, may be NULL) must match the server's node name. h3: a client
 * offers ALPN "h3" alone (an operator querying a node); a server accepts "h3" beside
 * "tbmesh/1", and then only from a client with an operator certificate (adr/0013). */
TB_WUR int tb_quic_tls_new(tb_quic_tls **out, tb_quic_tls_ctx *ctx, int server,
                           ngtcp2_crypto_conn_ref *ref, const char *expected_name, int h3);
/* 1 when the session speaks h3 (server: known once the ClientHello is read). */
int tb_quic_tls_is_h3(const tb_quic_tls *t);
/* Server side, implemented by the endpoint (quic/app.c): the client chose h3, before this
 * side's transport parameters are sent. ref is the one given to tb_quic_tls_new. <0 refuses. */
int tb_quic_tls_chose_h3(ngtcp2_crypto_conn_ref *ref);
void tb_quic_tls_free(tb_quic_tls *t);
/* For ngtcp2_conn_set_tls_native_handle. */
void *tb_quic_tls_native(tb_quic_tls *t);

/* After a failed handshake: why, judged by this side. alert is the TLS alert this side sent
 * (ngtcp2_conn_get_tls_alert), used when the checks themselves recorded nothing. t may be
 * NULL (session already freed): then the alert alone decides. */
tb_quic_refusal tb_quic_tls_refusal(const tb_quic_tls *t, uint8_t alert, char *detail,
                                    size_t detaillen);

/* After a successful handshake: the identity read from the verified peer certificate. */
TB_WUR int tb_quic_tls_peer_identity(const tb_quic_tls *t, tb_quic_peer *peer);

/* Cryptographically secure random bytes. */
TB_WUR int tb_quic_tls_random(uint8_t *buf, size_t len);

#endif
