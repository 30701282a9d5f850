/* Ed25519 over the domain-separated body, and the key conversions the node needs. */
#include "measure/measurement.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
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

int tb_measure_key_from_pem(const char *pem, size_t len, uint8_t sk[TB_MEASURE_SK_LEN],
                            uint8_t pk[TB_MEASURE_PK_LEN])
{
    if (len > 65536)
        return TB_ERR_TOO_BIG;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return TB_ERR_NOMEM;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL)
        return TB_ERR_MALFORMED;
    uint8_t seed[32];
    size_t n = sizeof(seed);
    int rc = TB_ERR_UNSUPPORTED;
    if (EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 &&
        EVP_PKEY_get_raw_private_key(key, seed, &n) == 1 && n == sizeof(seed))
        rc = tb_measure_key_from_seed(seed, sk, pk);
    EVP_PKEY_free(key);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}
