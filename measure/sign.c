/* Ed25519 over the domain-separated body, and the key conversions the node needs. */
#include "measure/measurement.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <string.h>

#define CTX_LEN sizeof(TB_MEASURE_SIGN_CONTEXT) /* includes the NUL */

/* libsodium has no streaming pure Ed25519, so context and body are joined in a bounded buffer. */
typedef struct signed_msg {
    uint8_t b[CTX_LEN + TB_MEASURE_BODY_MAX];
    size_t len;
} signed_msg;

static int join(signed_msg *s, const uint8_t *body, size_t len)
{
    if (len > TB_MEASURE_BODY_MAX || (len > 0 && body == NULL))
        return TB_ERR_TOO_BIG;
    if (sodium_init() < 0)
        return TB_ERR_CRYPTO;
    memcpy(s->b, TB_MEASURE_SIGN_CONTEXT, CTX_LEN);
    if (len > 0)
        memcpy(s->b + CTX_LEN, body, len);
    s->len = CTX_LEN + len;
    return 0;
}

int tb_measure_sign(const uint8_t *body, size_t len, const uint8_t sk[TB_MEASURE_SK_LEN],
                    uint8_t sig[TB_MEASURE_SIG_LEN])
{
    signed_msg s;
    int rc = join(&s, body, len);
    if (rc != 0)
        return rc;
    if (crypto_sign_detached(sig, NULL, s.b, s.len, sk) != 0)
        return TB_ERR_CRYPTO;
    return 0;
}

int tb_measure_verify(const uint8_t *body, size_t len, const uint8_t sig[TB_MEASURE_SIG_LEN],
                      const uint8_t pk[TB_MEASURE_PK_LEN])
{
    signed_msg s;
    int rc = join(&s, body, len);
    if (rc != 0)
        return rc == TB_ERR_TOO_BIG ? TB_ERR_VERIFY : rc;
    return crypto_sign_verify_detached(sig, s.b, s.len, pk) == 0 ? 0 : TB_ERR_VERIFY;
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
