/* Writing the mesh's revocation list (crl.h, tb_ca_crl_pem) with OpenSSL, for tbcert only;
 * reading it is crl.c's (GnuTLS, what the node links). */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/crl.h"
#include "certs/issuer.h"

static int add_entry(X509_CRL *crl, const tb_crl_entry *e)
{
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    BIGNUM *bn = BN_bin2bn(e->serial, (int)e->serial_len, NULL);
    if (bn)
        serial = BN_to_ASN1_INTEGER(bn, NULL);
    int ok = r && serial && when && X509_REVOKED_set_serialNumber(r, serial) &&
             X509_REVOKED_set_revocationDate(r, when) && X509_CRL_add0_revoked(crl, r);
    if (!ok)
        X509_REVOKED_free(r);
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    return ok;
}

static int listed_before(const tb_crl_entry *entries, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (entries[j].serial_len == entries[i].serial_len &&
            memcmp(entries[j].serial, entries[i].serial, entries[i].serial_len) == 0)
            return 1;
    }
    return 0;
}

static int set_header(X509_CRL *crl, X509 *ca, uint64_t number, int64_t this_update,
                      int64_t next_update)
{
    ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)next_update);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
    X509_EXTENSION *aki =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    int ok = tu && nu && num && aki && X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) &&
             X509_CRL_set1_lastUpdate(crl, tu) && X509_CRL_set1_nextUpdate(crl, nu) &&
             ASN1_INTEGER_set_uint64(num, number) &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_DEFAULT) == 1 &&
             X509_CRL_add_ext(crl, aki, -1);
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    return ok;
}

static int to_pem(X509_CRL *crl, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = bio && PEM_write_bio_X509_CRL(bio, crl) ? BIO_get_mem_data(bio, &data) : 0;
    int rc = n > 0 && (*pem = malloc((size_t)n + 1)) ? TB_OK : TB_ERR_CRYPTO;
    if (rc == TB_OK) {
        memcpy(*pem, data, (size_t)n);
        (*pem)[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(bio);
    return rc;
}

int tb_ca_crl_pem(const tb_ca *ca, const tb_crl_entry *entries, size_t n, uint64_t number,
                  int64_t this_update, int64_t next_update, char **pem, size_t *len, char *err,
                  size_t errlen)
{
    if (!ca->key)
        return tb_cert_fail(TB_ERR_STATE, err, errlen, "CA loaded without its key");
    if (n > TB_CRL_MAX_ENTRIES)
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "more than %d revoked certificates",
                            TB_CRL_MAX_ENTRIES);
    if (number == 0 || number > INT64_MAX || next_update <= this_update)
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "CRL: bad number or dates");
    X509 *cert = tb_ca_x509(ca);
    EVP_PKEY *key = tb_ca_pkey(ca);
    X509_CRL *crl = X509_CRL_new();
    int ok = cert && key && crl && set_header(crl, cert, number, this_update, next_update);
    for (size_t i = 0; ok && i < n; i++)
        ok = listed_before(entries, i) || add_entry(crl, &entries[i]);
    /* Ed25519 signs the message itself and takes no digest. */
    const EVP_MD *md = key && EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256();
    ok = ok && X509_CRL_sort(crl) && X509_CRL_sign(crl, key, md) > 0;
    int rc = ok ? to_pem(crl, pem, len) : TB_ERR_CRYPTO;
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "cannot build the CRL");
    return TB_OK;
}
