/* NTS Key Establishment records (RFC 8915 §4): the client's request and the parser of the
 * server's response, as carried over TLS. Owns the record format only: no TLS, no sockets.
 *
 * A record is a 16-bit word (critical bit, 15-bit type), a 16-bit body length and the body.
 * We ask for NTPv4 (protocol 0) and AEAD_AES_SIV_CMAC_256 (15), the only pair we speak. */
#ifndef TB_NTP_NTS_KE_H
#define TB_NTP_NTS_KE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "ntp/nts_cookies.h"

#define TB_NTS_KE_PORT 4460
#define TB_NTS_KE_ALPN "ntske/1"
#define TB_NTS_PROTO_NTPV4 0
#define TB_NTS_AEAD_AES_SIV_CMAC_256 15
/* A response longer than this is refused (eight 256-byte cookies and the rest fit in 4 KiB). */
#define TB_NTS_KE_RESPONSE_MAX 16384
/* Records in one response, at most. */
#define TB_NTS_KE_RECORDS_MAX 64
#define TB_NTS_KE_SERVER_MAX 253 /* a full DNS name (RFC 1035), as common/addr.h holds */

enum {
    TB_NTS_KE_END = 0,
    TB_NTS_KE_NEXT_PROTO = 1,
    TB_NTS_KE_ERROR = 2,
    TB_NTS_KE_WARNING = 3,
    TB_NTS_KE_AEAD = 4,
    TB_NTS_KE_COOKIE = 5,
    TB_NTS_KE_SERVER = 6,
    TB_NTS_KE_PORT_REC = 7,
};

/* What a successful response told us. */
typedef struct tb_nts_ke_response {
    uint16_t aead;   /* TB_NTS_AEAD_AES_SIV_CMAC_256 after a successful parse */
    bool has_server; /* NTPv4 server negotiation: use this host instead of the KE host */
    char server[TB_NTS_KE_SERVER_MAX + 1];
    bool has_port; /* NTPv4 port negotiation */
    uint16_t port;
    unsigned n_cookies_dropped; /* cookies beyond the jar's capacity or size limit */
    int error;                  /* the server's error code when the parse failed with TB_ERR_VERIFY,
                                   else -1 */
    tb_nts_cookie_jar cookies;
} tb_nts_ke_response;

/* Writes the request (next protocol NTPv4, AEAD AES-SIV-CMAC-256, end of message). */
TB_WUR int tb_nts_ke_request_write(uint8_t *out, size_t cap, size_t *len);

/* Parses a complete response of len bytes. TB_ERR_TRUNCATED when it does not end with an
 * end-of-message record yet (read more); TB_ERR_VERIFY when the server sent an error record
 * (out->error); TB_ERR_UNSUPPORTED when it chose another protocol or AEAD, or sent an unknown
 * critical record; TB_ERR_MALFORMED for anything else wrong (no cookie, duplicated
 * negotiation, data after the end, a bad server name). *why names the problem. */
TB_WUR int tb_nts_ke_response_parse(const uint8_t *p, size_t len, tb_nts_ke_response *out,
                                    const char **why);

/* The RFC 8915 name of a KE error code, for messages. */
const char *tb_nts_ke_error_name(int code);

#endif
