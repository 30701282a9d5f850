/* The NTS side of one NTS source (RFC 8915): its trust store, the NTS-KE exchanges
 * (sources/nts_session.h), the keys and the cookie jar, and what it does to each NTP packet
 * (adds the NTS fields to a request, checks them in a reply). The NTP driver owns the socket,
 * the NTP client and the polls; it asks the association for a request's NTS fields and a
 * reply's verdict. A re-key (a new KE exchange) starts when the jar is empty, when the server
 * answers with an NTS NAK, and at start. */
#ifndef TB_SOURCES_NTS_ASSOC_H
#define TB_SOURCES_NTS_ASSOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ntp/nts_ef.h"
#include "sources/source.h"

typedef struct tb_nts_assoc tb_nts_assoc;

/* A KE exchange succeeded: NTP goes to ntp_where ("host:port", the server and port the KE
 * server named, else the configured ones). */
typedef void (*tb_nts_ready_cb)(void *arg, const char *ntp_where);

/* Reads the trust store (a configured CA file or the system's): a bad file fails here, at
 * configuration time. No network I/O yet. */
TB_WUR int tb_nts_assoc_create(tb_source *src, const tb_source_config *cfg, tb_nts_ready_cb ready,
                               void *arg, tb_nts_assoc **out);
void tb_nts_assoc_destroy(tb_nts_assoc *a);

/* Starts a KE exchange unless one is running. On failure the source is set UNREACHABLE with
 * the reason and a retry is scheduled (the driver's poll calls rekey again). */
void tb_nts_assoc_rekey(tb_nts_assoc *a);
/* Cancels a running exchange (source stopped). */
void tb_nts_assoc_stop(tb_nts_assoc *a);

/* Keys and at least one cookie: a request can go out. */
bool tb_nts_assoc_ready(const tb_nts_assoc *a);

/* header (48 bytes, made by the NTP client) plus the NTS fields, into out; takes a cookie.
 * rnd: TB_NTS_UID_LEN + TB_NTS_NONCE_LEN random bytes. TB_ERR_STATE when not ready. */
TB_WUR int tb_nts_assoc_wrap(tb_nts_assoc *a, const uint8_t header[48], const uint8_t *rnd,
                             uint8_t *out, size_t cap, size_t *len);

/* The reply's NTS verdict, counted. TB_NTS_OK: its cookies are in the jar and the NTP client
 * may judge it. TB_NTS_NAK: the keys are dropped and a re-key starts. */
tb_nts_verdict tb_nts_assoc_check(tb_nts_assoc *a, const uint8_t *p, size_t len);

/* Counters, for status and tests. */
typedef struct tb_nts_stats {
    uint64_t ke_ok, ke_failed, naks;
    uint64_t rejects[TB_NTS_VERDICT_COUNT]; /* by verdict; [TB_NTS_OK] counts accepted */
    tb_nts_verdict last;                    /* of the last reply checked */
    size_t cookies;                         /* in the jar now */
    const char *last_ke_error;              /* "" when the last KE succeeded */
} tb_nts_stats;
void tb_nts_assoc_stats(const tb_nts_assoc *a, tb_nts_stats *out);

#endif
