/* Ed25519 over domain-separated parts (measure/sign.h), the measurement signature on top, and
 * the key conversions the node needs. */
#include "measure/sign.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CTX_LEN sizeof(TB_MEASURE_SIGN_CONTEXT) /* includes the NUL */

/* libsodium has no streaming pure Ed25519, so the parts are joined in one bounded buffer. */
static int join(const tb_measure_part *parts, size_t n, uint8_t **out, size_t *outlen)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > TB_MEASURE_SIGNED_MAX - len || (parts[i].len && !parts[i].data))
            return TB_ERR_TOO_BIG;
        len += parts[i].len;
    }
    if (sodium_init() < 0)
        return TB_ERR_CRYPTO;
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return TB_ERR_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len)
            memcpy(b + at, parts[i].data, parts[i].len);
        at += parts[i].len;
    }
    *out = b;
    *outlen = len;
    return 0;
}

int tb_measure_sign_parts(const tb_measure_part *parts, size_t n,
                          const uint8_t sk[TB_MEASURE_SK_LEN], uint8_t sig[TB_MEASURE_SIG_LEN])
{
    uint8_t *b;
    size_t len;
    int rc = join(parts, n, &b, &len);
    if (rc != 0)
        return rc;
    if (crypto_sign_detached(sig, NULL, b, len, sk) != 0)
        rc = TB_ERR_CRYPTO;
    free(b);
    return rc;
}

int tb_measure_verify_parts(const tb_measure_part *parts, size_t n,
                            const uint8_t sig[TB_MEASURE_SIG_LEN],
                            const uint8_t pk[TB_MEASURE_PK_LEN])
{
    uint8_t *b;
    size_t len;
    int rc = join(parts, n, &b, &len);
    if (rc != 0)
        return rc == TB_ERR_NOMEM ? rc : TB_ERR_VERIFY;
    rc = crypto_sign_verify_detached(sig, b, len, pk) == 0 ? 0 : TB_ERR_VERIFY;
    free(b);
    return rc;
}

int tb_measure_digest(const tb_measure_part *parts, size_t n, uint8_t out[TB_MEASURE_DIGEST_LEN])
{
    crypto_hash_sha256_state st;
    uint8_t full[crypto_hash_sha256_BYTES];
    if (sodium_init() < 0 || crypto_hash_sha256_init(&st) != 0)
        return TB_ERR_CRYPTO;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len && crypto_hash_sha256_update(&st, parts[i].data, parts[i].len) != 0)
            return TB_ERR_CRYPTO;
    if (crypto_hash_sha256_final(&st, full) != 0)
        return TB_ERR_CRYPTO;
    memcpy(out, full, TB_MEASURE_DIGEST_LEN);
    return 0;
}

/* A measurement is signed as context ‖ body: the body alone is capped by its own format. */
static void measurement_parts(const uint8_t *body, size_t len, tb_measure_part p[2])
{
    p[0] = (tb_measure_part){(const uint8_t *)TB_MEASURE_SIGN_CONTEXT, CTX_LEN};
    p[1] = (tb_measure_part){body, len};
}

int tb_measure_sign(const uint8_t *body, size_t len, const uint8_t sk[TB_MEASURE_SK_LEN],
                    uint8_t sig[TB_MEASURE_SIG_LEN])
{
    tb_measure_part p[2];
    if (len > TB_MEASURE_BODY_MAX || (len > 0 && body == NULL))
        return TB_ERR_TOO_BIG;
    measurement_parts(body, len, p);
    return tb_measure_sign_parts(p, 2, sk, sig);
}

int tb_measure_verify(const uint8_t *body, size_t len, const uint8_t sig[TB_MEASURE_SIG_LEN],
                      const uint8_t pk[TB_MEASURE_PK_LEN])
{
    tb_measure_part p[2];
    if (len > TB_MEASURE_BODY_MAX || (len > 0 && body == NULL))
        return TB_ERR_VERIFY;
    measurement_parts(body, len, p);
    return tb_measure_verify_parts(p, 2, sig, pk);
}

int tb_measure_seal(const tb_measurement *m, const uint8_t sk[TB_MEASURE_SK_LEN], uint8_t *buf,
                    size_t cap, size_t *body_len, uint8_t sig[TB_MEASURE_SIG_LEN])
{
    int rc = tb_measure_encode(m, buf, cap, body_len);
    if (rc == 0)
        rc = tb_measure_sign(buf, *body_len, sk, sig);
    return rc;
}

int tb_measure_key_from_seed(const uint8_t seed[32], uint8_t sk[TB_MEASURE_SK_LEN],
                             uint8_t pk[TB_MEASURE_PK_LEN])
{
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, seed) != 0)
        return TB_ERR_CRYPTO;
    return 0;
}

/* GnuTLS reads the PEM (PKCS#8 or SEC1, as OpenSSL writes them): the node maps it for QUIC
 * already, so reading the key costs no other library. */
int tb_measure_key_from_pem(const char *pem, size_t len, uint8_t sk[TB_MEASURE_SK_LEN],
                            uint8_t pk[TB_MEASURE_PK_LEN])
{
    if (len > 65536)
        return TB_ERR_TOO_BIG;
    gnutls_x509_privkey_t key = NULL;
    if (gnutls_x509_privkey_init(&key) != GNUTLS_E_SUCCESS)
        return TB_ERR_NOMEM;
    gnutls_datum_t in = {(unsigned char *)(uintptr_t)pem, (unsigned)len};
    int rc = TB_ERR_MALFORMED;
    if (gnutls_x509_privkey_import2(key, &in, GNUTLS_X509_FMT_PEM, NULL, 0) == GNUTLS_E_SUCCESS)
        rc = TB_ERR_UNSUPPORTED;
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t x = {0}, y = {0}, seed = {0};
    if (rc == TB_ERR_UNSUPPORTED &&
        gnutls_x509_privkey_get_pk_algorithm2(key, NULL) == GNUTLS_PK_EDDSA_ED25519 &&
        gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &seed) == GNUTLS_E_SUCCESS &&
        curve == GNUTLS_ECC_CURVE_ED25519 && seed.size == 32)
        rc = tb_measure_key_from_seed(seed.data, sk, pk);
    if (seed.data)
        sodium_memzero(seed.data, seed.size);
    gnutls_free(seed.data);
    gnutls_free(x.data);
    gnutls_free(y.data);
    gnutls_x509_privkey_deinit(key);
    return rc;
}
