/* NTS extension fields in NTP packets (RFC 8915 §5): the client request (unique identifier,
 * cookie, cookie placeholders, authenticator) and the check of the server's reply (unique
 * identifier echoed, authenticator verified with AEAD_AES_SIV_CMAC_256, fresh cookies
 * decrypted into the jar, NTS NAK recognised). Pure: the caller passes the keys, the random
 * bytes and the packets; no I/O, no clock.
 *
 * The 48-byte NTP header is made and judged by ntp/client.h; this module only wraps it. */
#ifndef TB_NTP_NTS_EF_H
#define TB_NTP_NTS_EF_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "ntp/nts_cookies.h"

#define TB_NTS_KEY_LEN 32   /* AES-SIV-CMAC-256 */
#define TB_NTS_UID_LEN 32   /* unique identifier we send */
#define TB_NTS_NONCE_LEN 16 /* authenticator nonce we send */
#define TB_NTS_TAG_LEN 16   /* the SIV */
/* The longest request: header, identifier, cookie and seven placeholders of the longest
 * cookie, authenticator. */
#define TB_NTS_REQUEST_MAX (48 + 36 + 8 * (4 + TB_NTS_COOKIE_MAX) + 40)
/* Extension fields walked in a reply (outside and inside the authenticator), at most. */
#define TB_NTS_EF_MAX 16

enum {
    TB_NTS_EF_UID = 0x0104,
    TB_NTS_EF_COOKIE = 0x0204,
    TB_NTS_EF_PLACEHOLDER = 0x0304,
    TB_NTS_EF_AUTH = 0x0404,
};

/* The two keys exported from the NTS-KE TLS session (RFC 8915 §5.1). */
typedef struct tb_nts_keys {
    uint8_t c2s[TB_NTS_KEY_LEN];
    uint8_t s2c[TB_NTS_KEY_LEN];
} tb_nts_keys;

typedef enum tb_nts_verdict {
    TB_NTS_OK = 0,
    TB_NTS_REJ_MALFORMED,  /* extension fields do not parse, or too many */
    TB_NTS_REJ_UID,        /* unique identifier missing or not the one we sent */
    TB_NTS_REJ_NO_AUTH,    /* no authenticator (and not a NAK) */
    TB_NTS_REJ_AUTH,       /* the authenticator does not verify */
    TB_NTS_REJ_AFTER_AUTH, /* unauthenticated extension fields after the authenticator */
    TB_NTS_NAK,            /* NTS negative acknowledgement (kiss NTSN): the cookie was refused */
    TB_NTS_VERDICT_COUNT
} tb_nts_verdict;

const char *tb_nts_verdict_name(tb_nts_verdict v);

/* Builds header ‖ unique identifier ‖ cookie ‖ n_placeholders placeholders ‖ authenticator
 * (sealed with keys->c2s and nonce, no encrypted fields). n_placeholders at most 7. */
TB_WUR int tb_nts_request_write(const tb_nts_keys *keys, const uint8_t header[48],
                                const uint8_t uid[TB_NTS_UID_LEN],
                                const uint8_t nonce[TB_NTS_NONCE_LEN], const uint8_t *cookie,
                                size_t cookie_len, unsigned n_placeholders, uint8_t *out,
                                size_t cap, size_t *len);

/* Judges the extension fields of reply p (len bytes, header included) to the request that
 * carried uid. On TB_NTS_OK the cookies it carried are added to jar (those that do not fit are
 * dropped). TB_NTS_NAK only when the identifier matches. The header itself (mode, origin
 * timestamp, ...) is the NTP client's to judge. */
tb_nts_verdict tb_nts_reply_check(const tb_nts_keys *keys, const uint8_t uid[TB_NTS_UID_LEN],
                                  const uint8_t *p, size_t len, tb_nts_cookie_jar *jar);

/* AEAD_AES_SIV_CMAC_256 (RFC 5297) with one associated-data string and a nonce, as NTS uses
 * it. seal writes TB_NTS_TAG_LEN + plen bytes; open writes clen - TB_NTS_TAG_LEN bytes and
 * returns TB_ERR_VERIFY when the tag does not verify. */
TB_WUR int tb_nts_aead_seal(const uint8_t key[TB_NTS_KEY_LEN], const uint8_t *nonce, size_t nlen,
                            const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t plen,
                            uint8_t *out, size_t cap);
TB_WUR int tb_nts_aead_open(const uint8_t key[TB_NTS_KEY_LEN], const uint8_t *nonce, size_t nlen,
                            const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t clen,
                            uint8_t *out, size_t cap);

#endif
