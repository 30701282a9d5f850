/* One NTS-KE exchange (RFC 8915 §4) on the libev loop: resolve the KE server through the
 * environment's resolver, connect over TCP, TLS 1.3 with ALPN "ntske/1" and the server's
 * certificate verified for a configured name, send the request of ntp/nts_ke.h, read the
 * response, export the two NTP keys. Everything is non-blocking (GnuTLS in non-blocking mode
 * driven by an ev_io watcher) and bounded by a timeout, so the loop never waits on a slow or
 * silent server. The trust store (system or a CA file) is loaded once per source. */
#ifndef TB_SOURCES_NTS_SESSION_H
#define TB_SOURCES_NTS_SESSION_H

#include <stdint.h>

#include "common/error.h"
#include "ntp/nts_ef.h"
#include "ntp/nts_ke.h"
#include "sources/source.h"

/* Certificates a KE server is verified against. */
typedef struct tb_nts_trust tb_nts_trust;

/* ca_file NULL or "": the system store. On failure, err says why (file, count). */
TB_WUR int tb_nts_trust_create(const char *ca_file, tb_nts_trust **out, char *err, size_t errlen);
void tb_nts_trust_destroy(tb_nts_trust *t);

typedef struct tb_nts_session_params {
    const char *host;        /* KE server, a name or an address */
    uint16_t port;           /* KE port */
    const char *server_name; /* the name its certificate must carry; NULL or "": host */
    const tb_nts_trust *trust;
    uint64_t timeout_ns; /* the whole exchange, resolution included */
} tb_nts_session_params;

typedef struct tb_nts_session tb_nts_session;

/* The last thing a session does: err 0 with the response and the keys, or a negative code
 * with why ("certificate: ...", "connect: ...", "server error: bad request", ...). The
 * callback may destroy the session. */
typedef void (*tb_nts_session_cb)(void *arg, int err, const char *why,
                                  const tb_nts_ke_response *resp, const tb_nts_keys *keys);

/* Starts an exchange on env's loop; cb is never called from inside start. */
TB_WUR int tb_nts_session_start(const tb_source_env *env, const tb_nts_session_params *p,
                                tb_nts_session_cb cb, void *arg, tb_nts_session **out);
/* Cancels (no callback) or frees a finished session. NULL is fine. */
void tb_nts_session_destroy(tb_nts_session *s);

#endif
