/* The NTS cookie jar (RFC 8915 §5.7): the opaque cookies an NTS-KE server or an authenticated
 * NTP reply handed us, each used for exactly one request and then forgotten, oldest first.
 * Pure bookkeeping: no I/O. The jar never holds more than TB_NTS_COOKIES_MAX cookies; extras
 * are dropped (a server that sends more than we asked for gains nothing). */
#ifndef TB_NTP_NTS_COOKIES_H
#define TB_NTP_NTS_COOKIES_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* RFC 8915 §4: clients keep eight cookies. */
#define TB_NTS_COOKIES_MAX 8
/* Longest cookie kept; chrony's are 100 bytes, its own limit is 256. */
#define TB_NTS_COOKIE_MAX 256

typedef struct tb_nts_cookie_jar {
    uint8_t cookie[TB_NTS_COOKIES_MAX][TB_NTS_COOKIE_MAX];
    uint16_t len[TB_NTS_COOKIES_MAX];
    unsigned head; /* slot of the oldest cookie */
    unsigned n;
} tb_nts_cookie_jar;

/* Empties the jar and wipes what it held (cookies are bearer tokens for our keys). */
void tb_nts_jar_clear(tb_nts_cookie_jar *jar);

/* Adds a cookie of len bytes. TB_ERR_INVAL when empty, TB_ERR_TOO_BIG when longer than
 * TB_NTS_COOKIE_MAX, TB_ERR_FULL when the jar already holds TB_NTS_COOKIES_MAX. */
TB_WUR int tb_nts_jar_put(tb_nts_cookie_jar *jar, const uint8_t *p, size_t len);

/* Takes the oldest cookie out (it must never be sent twice: RFC 8915 §6 unlinkability).
 * TB_ERR_AGAIN when the jar is empty, TB_ERR_TOO_BIG when cap is too small (nothing taken). */
TB_WUR int tb_nts_jar_take(tb_nts_cookie_jar *jar, uint8_t *out, size_t cap, size_t *len);

size_t tb_nts_jar_count(const tb_nts_cookie_jar *jar);

#endif
