#include "ntp/nts_ef.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "common/bytes.h"
#include "ntp/packet.h"

/* Kiss code of an NTS NAK (RFC 8915 §5.7), "NTSN". */
#define KISS_NTSN 0x4e54534eu
/* Largest authenticator ciphertext we decrypt: more than any UDP reply we read. */
#define CT_MAX 4096

static const char *const verdict_names[TB_NTS_VERDICT_COUNT] = {
    [TB_NTS_OK] = "authenticated",
    [TB_NTS_REJ_MALFORMED] = "NTS extension fields malformed",
    [TB_NTS_REJ_UID] = "NTS unique identifier missing or not ours",
    [TB_NTS_REJ_NO_AUTH] = "NTS authenticator missing",
    [TB_NTS_REJ_AUTH] = "NTS authenticator does not verify",
    [TB_NTS_REJ_AFTER_AUTH] = "unauthenticated extension fields after the NTS authenticator",
    [TB_NTS_NAK] = "NTS NAK (the server refused our cookie)",
};

const char *tb_nts_verdict_name(tb_nts_verdict v)
{
    return (unsigned)v < TB_NTS_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

static size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

static int aead(bool seal, const uint8_t key[TB_NTS_KEY_LEN], const uint8_t *nonce, size_t nlen,
                const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen, uint8_t *out,
                size_t cap)
{
    uint8_t k[TB_NTS_KEY_LEN];
    memcpy(k, key, sizeof(k));
    gnutls_datum_t kd = {.data = k, .size = sizeof(k)};
    gnutls_aead_cipher_hd_t h;
    int rc = gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_SIV, &kd);
    sodium_memzero(k, sizeof(k));
    if (rc < 0)
        return TB_ERR_CRYPTO;
    size_t outlen = cap;
    if (seal)
        rc = gnutls_aead_cipher_encrypt(h, nonce, nlen, ad, adlen, TB_NTS_TAG_LEN, in, inlen, out,
                                        &outlen);
    else
        rc = gnutls_aead_cipher_decrypt(h, nonce, nlen, ad, adlen, TB_NTS_TAG_LEN, in, inlen, out,
                                        &outlen);
    gnutls_aead_cipher_deinit(h);
    if (rc == GNUTLS_E_DECRYPTION_FAILED)
        return TB_ERR_VERIFY;
    return rc < 0 ? TB_ERR_CRYPTO : 0;
}

int tb_nts_aead_seal(const uint8_t key[TB_NTS_KEY_LEN], const uint8_t *nonce, size_t nlen,
                     const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t plen, uint8_t *out,
                     size_t cap)
{
    if (cap < plen + TB_NTS_TAG_LEN)
        return TB_ERR_TOO_BIG;
    return aead(true, key, nonce, nlen, ad, adlen, pt, plen, out, cap);
}

int tb_nts_aead_open(const uint8_t key[TB_NTS_KEY_LEN], const uint8_t *nonce, size_t nlen,
                     const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t clen, uint8_t *out,
                     size_t cap)
{
    if (clen < TB_NTS_TAG_LEN)
        return TB_ERR_VERIFY;
    if (cap < clen - TB_NTS_TAG_LEN)
        return TB_ERR_TOO_BIG;
    return aead(false, key, nonce, nlen, ad, adlen, ct, clen, out, cap);
}

/* Appends one field with body (NULL: zeros) padded to a multiple of 4. */
static int put_ef(uint8_t *out, size_t cap, size_t *used, uint16_t type, const uint8_t *body,
                  size_t blen)
{
    size_t flen = 4 + pad4(blen);
    if (flen > 0xffff || cap - *used < flen)
        return TB_ERR_TOO_BIG;
    memset(out + *used, 0, flen);
    tb_put_be16(out + *used, type);
    tb_put_be16(out + *used + 2, (uint16_t)flen);
    if (body)
        memcpy(out + *used + 4, body, blen);
    *used += flen;
    return 0;
}

int tb_nts_request_write(const tb_nts_keys *keys, const uint8_t header[48],
                         const uint8_t uid[TB_NTS_UID_LEN], const uint8_t nonce[TB_NTS_NONCE_LEN],
                         const uint8_t *cookie, size_t cookie_len, unsigned n_placeholders,
                         uint8_t *out, size_t cap, size_t *len)
{
    if (cookie_len == 0 || cookie_len > TB_NTS_COOKIE_MAX || n_placeholders >= TB_NTS_COOKIES_MAX ||
        cap < TB_NTP_HEADER_LEN)
        return TB_ERR_INVAL;
    size_t used = TB_NTP_HEADER_LEN;
    memcpy(out, header, TB_NTP_HEADER_LEN);
    int err = put_ef(out, cap, &used, TB_NTS_EF_UID, uid, TB_NTS_UID_LEN);
    if (err == 0)
        err = put_ef(out, cap, &used, TB_NTS_EF_COOKIE, cookie, cookie_len);
    for (unsigned i = 0; err == 0 && i < n_placeholders; i++)
        err = put_ef(out, cap, &used, TB_NTS_EF_PLACEHOLDER, NULL, cookie_len);
    /* Authenticator: nonce length, ciphertext length, nonce, ciphertext (the bare SIV: we
     * encrypt no fields), all that precedes it as associated data. */
    size_t flen = 4 + 4 + TB_NTS_NONCE_LEN + TB_NTS_TAG_LEN;
    if (err == 0 && cap - used < flen)
        err = TB_ERR_TOO_BIG;
    if (err < 0)
        return err;
    uint8_t *a = out + used;
    tb_put_be16(a, TB_NTS_EF_AUTH);
    tb_put_be16(a + 2, (uint16_t)flen);
    tb_put_be16(a + 4, TB_NTS_NONCE_LEN);
    tb_put_be16(a + 6, TB_NTS_TAG_LEN);
    memcpy(a + 8, nonce, TB_NTS_NONCE_LEN);
    err = tb_nts_aead_seal(keys->c2s, nonce, TB_NTS_NONCE_LEN, out, used, NULL, 0,
                           a + 8 + TB_NTS_NONCE_LEN, TB_NTS_TAG_LEN);
    if (err < 0)
        return err;
    *len = used + flen;
    return 0;
}

/* One field at p[*used]: TB_ERR_* when it does not fit or its length is not a multiple of 4. */
static int next_ef(const uint8_t *p, size_t len, size_t *used, uint16_t *type, const uint8_t **body,
                   size_t *blen)
{
    if (len - *used < 4)
        return TB_ERR_TRUNCATED;
    size_t flen = tb_get_be16(p + *used + 2);
    if (flen < 4 || flen % 4 != 0)
        return TB_ERR_MALFORMED;
    if (len - *used < flen)
        return TB_ERR_TRUNCATED;
    *type = tb_get_be16(p + *used);
    *body = p + *used + 4;
    *blen = flen - 4;
    *used += flen;
    return 0;
}

/* The decrypted fields: fresh cookies go to the jar; nothing else is defined for replies. */
static tb_nts_verdict take_cookies(const uint8_t *p, size_t len, tb_nts_cookie_jar *jar)
{
    size_t used = 0;
    for (unsigned i = 0; used < len; i++) {
        uint16_t type;
        const uint8_t *body;
        size_t blen;
        if (i >= TB_NTS_EF_MAX || next_ef(p, len, &used, &type, &body, &blen) < 0)
            return TB_NTS_REJ_MALFORMED;
        /* A full jar drops the extra. */
        if (type == TB_NTS_EF_COOKIE && blen > 0 && tb_nts_jar_put(jar, body, blen) < 0)
            continue;
    }
    return TB_NTS_OK;
}

/* The authenticator field at p[start..start+4+blen): verifies it over p[0..start). */
static tb_nts_verdict open_auth(const tb_nts_keys *keys, const uint8_t *p, size_t start,
                                const uint8_t *b, size_t blen, tb_nts_cookie_jar *jar)
{
    if (blen < 4)
        return TB_NTS_REJ_MALFORMED;
    size_t nlen = tb_get_be16(b), clen = tb_get_be16(b + 2);
    size_t at = 4;
    /* Both lengths come from the peer: compare before adding. */
    if (nlen == 0 || blen - at < pad4(nlen))
        return TB_NTS_REJ_MALFORMED;
    const uint8_t *nonce = b + at;
    at += pad4(nlen);
    if (blen - at < pad4(clen))
        return TB_NTS_REJ_MALFORMED;
    if (clen < TB_NTS_TAG_LEN || clen > CT_MAX)
        return TB_NTS_REJ_AUTH;
    uint8_t pt[CT_MAX];
    if (tb_nts_aead_open(keys->s2c, nonce, nlen, p, start, b + at, clen, pt, sizeof(pt)) < 0)
        return TB_NTS_REJ_AUTH;
    tb_nts_verdict v = take_cookies(pt, clen - TB_NTS_TAG_LEN, jar);
    sodium_memzero(pt, clen - TB_NTS_TAG_LEN);
    return v;
}

tb_nts_verdict tb_nts_reply_check(const tb_nts_keys *keys, const uint8_t uid[TB_NTS_UID_LEN],
                                  const uint8_t *p, size_t len, tb_nts_cookie_jar *jar)
{
    if (len < TB_NTP_HEADER_LEN)
        return TB_NTS_REJ_MALFORMED;
    bool uid_ok = false;
    size_t used = TB_NTP_HEADER_LEN;
    for (unsigned i = 0; used < len; i++) {
        size_t start = used;
        uint16_t type;
        const uint8_t *body;
        size_t blen;
        if (i >= TB_NTS_EF_MAX || next_ef(p, len, &used, &type, &body, &blen) < 0)
            return TB_NTS_REJ_MALFORMED;
        if (type == TB_NTS_EF_UID) {
            if (uid_ok || blen != TB_NTS_UID_LEN || sodium_memcmp(body, uid, TB_NTS_UID_LEN) != 0)
                return TB_NTS_REJ_UID;
            uid_ok = true;
        } else if (type == TB_NTS_EF_AUTH) {
            if (!uid_ok)
                return TB_NTS_REJ_UID;
            if (used != len)
                return TB_NTS_REJ_AFTER_AUTH;
            return open_auth(keys, p, start, body, blen, jar);
        }
    }
    if (!uid_ok)
        return TB_NTS_REJ_UID;
    if (p[1] == 0 && tb_get_be32(p + 12) == KISS_NTSN)
        return TB_NTS_NAK;
    return TB_NTS_REJ_NO_AUTH;
}
