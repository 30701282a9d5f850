/* The mesh CA as a node sees it: loading ca.crt (and, for tbcert, ca.key) and verifying that a
 * node certificate chains to it at a given time. GnuTLS only (see internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certs/ca.h"
#include "certs/internal.h"

#define MAX_KEY_PEM 16384

const char *tb_ca_mesh(const tb_ca *ca)
{
    return ca->mesh;
}

void tb_ca_free(tb_ca *ca)
{
    if (!ca)
        return;
    if (ca->cert)
        gnutls_x509_crt_deinit(ca->cert);
    if (ca->key)
        tb_cert_wipe(ca->key, ca->key_len);
    free(ca->key);
    free(ca->der);
    free(ca);
}

int tb_ca_from_der(const uint8_t *der, size_t len, const uint8_t *key, size_t key_len, tb_ca **out,
                   const char **why)
{
    tb_cert_identity id;
    const char *reason = NULL;
    int rc = tb_cert_der_identity(der, len, &id, &reason);
    if (rc == TB_OK && !id.is_ca) {
        rc = TB_ERR_INVAL;
        reason = "a node certificate, not a CA's";
    }
    if (why)
        *why = reason;
    if (rc != TB_OK)
        return rc == TB_ERR_UNSUPPORTED ? TB_ERR_INVAL : rc;
    tb_ca *ca = calloc(1, sizeof(*ca));
    if (!ca)
        return TB_ERR_NOMEM;
    ca->der = malloc(len);
    ca->key = key ? malloc(key_len) : NULL;
    rc = ca->der && (!key || ca->key) ? tb_cert_crt_from_der(der, len, &ca->cert) : TB_ERR_NOMEM;
    if (rc != TB_OK) {
        tb_ca_free(ca);
        return rc;
    }
    memcpy(ca->der, der, len);
    ca->der_len = len;
    if (key) {
        memcpy(ca->key, key, key_len);
        ca->key_len = key_len;
    }
    snprintf(ca->mesh, sizeof(ca->mesh), "%s", id.name);
    *out = ca;
    return TB_OK;
}

/* key as a fresh malloc copy of its unencrypted PKCS#8 DER. */
static int export_key(gnutls_x509_privkey_t key, uint8_t **out, size_t *len)
{
    gnutls_datum_t d = {0};
    if (gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN, &d) !=
        GNUTLS_E_SUCCESS)
        return TB_ERR_CRYPTO;
    *out = malloc(d.size);
    if (*out) {
        memcpy(*out, d.data, d.size);
        *len = d.size;
    }
    tb_cert_wipe(d.data, d.size);
    gnutls_free(d.data);
    return *out ? TB_OK : TB_ERR_NOMEM;
}

static int same_key(gnutls_x509_privkey_t key, gnutls_x509_crt_t cert)
{
    unsigned char kid[32], cid[32];
    size_t klen = sizeof(kid), clen = sizeof(cid);
    return gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, kid, &klen) == 0 &&
           gnutls_x509_crt_get_key_id(cert, GNUTLS_KEYID_USE_SHA256, cid, &clen) == 0 &&
           klen == clen && memcmp(kid, cid, klen) == 0;
}

int tb_cert_key_from_pem(const char *pem, size_t n, const char *path, const char *pass,
                         const char *cert_path, gnutls_x509_crt_t cert, uint8_t **key_out,
                         size_t *len, char *err, size_t errlen)
{
    int rc;
    int encrypted = strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t in = {(unsigned char *)(uintptr_t)pem, (unsigned)n};
    int ok =
        !(encrypted && !pass) && gnutls_x509_privkey_init(&key) == GNUTLS_E_SUCCESS &&
        gnutls_x509_privkey_import2(key, &in, GNUTLS_X509_FMT_PEM, pass, 0) == GNUTLS_E_SUCCESS;
    if (ok && same_key(key, cert))
        rc = export_key(key, key_out, len);
    else if (ok)
        rc = tb_cert_fail(TB_ERR_VERIFY, err, errlen, "%s: does not belong to %s", path, cert_path);
    else if (encrypted && !pass)
        rc = tb_cert_fail(TB_ERR_CRYPTO, err, errlen,
                          "%s: key is encrypted (give --passphrase-file)", path);
    else if (encrypted)
        rc = tb_cert_fail(TB_ERR_CRYPTO, err, errlen, "%s: wrong passphrase or corrupt key", path);
    else
        rc = tb_cert_fail(TB_ERR_MALFORMED, err, errlen,
                          "%s: not a PEM private key (corrupt or wrong file)", path);
    if (key)
        gnutls_x509_privkey_deinit(key);
    if (rc != TB_OK && rc != TB_ERR_VERIFY && rc != TB_ERR_CRYPTO && rc != TB_ERR_MALFORMED)
        rc = tb_cert_fail(rc, err, errlen, "%s: %s", path, tb_strerror(rc));
    return rc;
}

int tb_cert_key_load(const char *path, const char *pass, const char *cert_path,
                     gnutls_x509_crt_t cert, uint8_t **key_out, size_t *len, char *err,
                     size_t errlen)
{
    char *pem = NULL;
    size_t n = 0;
    int rc = tb_cert_file_read(path, MAX_KEY_PEM, &pem, &n, err, errlen);
    if (rc != TB_OK)
        return rc;
    rc = tb_cert_key_from_pem(pem, n, path, pass, cert_path, cert, key_out, len, err, errlen);
    tb_cert_file_free(pem, n);
    return rc;
}

/* A node's own certificate and key, both files read once: what is checked is what is used. */
int tb_cert_pair_load(const char *cert_path, const char *key_path, tb_cert_pair *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc =
        tb_cert_file_read(cert_path, TB_CERT_MAX_PEM, &out->cert_pem, &out->cert_len, err, errlen);
    if (rc == TB_OK)
        rc = tb_cert_file_read(key_path, MAX_KEY_PEM, &out->key_pem, &out->key_len, err, errlen);
    if (rc != TB_OK) {
        tb_cert_pair_clear(out);
        return rc;
    }
    const char *why = NULL;
    gnutls_x509_crt_t crt = NULL;
    rc = tb_cert_pem_der(out->cert_pem, out->cert_len, out->der, sizeof(out->der), &out->der_len);
    if (rc != TB_OK)
        rc = tb_cert_fail(rc, err, errlen, "%s: not a PEM certificate (corrupt or wrong file)",
                          cert_path);
    else if ((rc = tb_cert_der_identity(out->der, out->der_len, &out->id, &why)) != TB_OK)
        rc = tb_cert_fail(rc, err, errlen, "%s: not a tbmesh certificate: %s", cert_path, why);
    else if (out->id.is_ca)
        rc = tb_cert_fail(TB_ERR_INVAL, err, errlen, "%s: a CA certificate, not a node's",
                          cert_path);
    else if ((rc = tb_cert_crt_from_der(out->der, out->der_len, &crt)) != TB_OK)
        rc = tb_cert_fail(rc, err, errlen, "%s: %s", cert_path, tb_strerror(rc));
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (rc == TB_OK)
        rc = tb_cert_key_from_pem(out->key_pem, out->key_len, key_path, NULL, cert_path, crt, &key,
                                  &key_len, err, errlen);
    if (key)
        tb_cert_wipe(key, key_len);
    free(key);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (rc != TB_OK)
        tb_cert_pair_clear(out);
    return rc;
}

void tb_cert_pair_clear(tb_cert_pair *p)
{
    if (p->cert_pem)
        tb_cert_file_free(p->cert_pem, p->cert_len);
    if (p->key_pem)
        tb_cert_file_free(p->key_pem, p->key_len);
    p->cert_pem = p->key_pem = NULL;
    p->cert_len = p->key_len = 0;
}

int tb_ca_load_file(const char *cert_path, tb_ca **out, char *err, size_t errlen)
{
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    int rc = tb_cert_read_pem_file(cert_path, der, sizeof(der), &len, err, errlen);
    if (rc != TB_OK)
        return rc;
    const char *why = NULL;
    rc = tb_ca_from_der(der, len, NULL, 0, out, &why);
    if (rc == TB_ERR_INVAL)
        return tb_cert_fail(rc, err, errlen, "%s: not a tbmesh CA certificate%s%s", cert_path,
                            why ? ": " : "", why ? why : "");
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "%s: %s", cert_path, tb_strerror(rc));
    return TB_OK;
}

int tb_ca_load(const char *dir, int with_key, const char *passphrase, tb_ca **out, char *err,
               size_t errlen)
{
    char cert_path[4096], key_path[4096];
    if (tb_cert_path(cert_path, sizeof(cert_path), dir, TB_CA_CERT_FILE) != TB_OK ||
        tb_cert_path(key_path, sizeof(key_path), dir, TB_CA_KEY_FILE) != TB_OK)
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "%s: path too long", dir);
    tb_ca *ca = NULL;
    int rc = tb_ca_load_file(cert_path, &ca, err, errlen);
    if (rc == TB_OK && !ca) /* never: tb_ca_load_file sets it on success (for the analyzer) */
        rc = TB_ERR_STATE;
    if (rc == TB_OK && with_key)
        rc = tb_cert_key_load(key_path, passphrase, cert_path, ca->cert, &ca->key, &ca->key_len,
                              err, errlen);
    if (rc != TB_OK) {
        tb_ca_free(ca);
        return rc;
    }
    *out = ca;
    return TB_OK;
}

int tb_ca_cert_der(const tb_ca *ca, uint8_t *der, size_t cap, size_t *len)
{
    if (ca->der_len > cap)
        return TB_ERR_TOO_BIG;
    memcpy(der, ca->der, ca->der_len);
    *len = ca->der_len;
    return TB_OK;
}

const char *tb_cert_verdict_str(tb_cert_verdict v)
{
    switch (v) {
    case TB_CERT_OK:
        return "ok";
    case TB_CERT_EXPIRED:
        return "expired";
    case TB_CERT_NOT_YET_VALID:
        return "not yet valid";
    case TB_CERT_FOREIGN_CA:
        return "not issued by this CA (foreign CA)";
    case TB_CERT_BAD_SIGNATURE:
        return "bad signature";
    case TB_CERT_CA_OUT_OF_DATE:
        return "the CA certificate is expired or not yet valid";
    case TB_CERT_BAD_PROFILE:
        return "not a tbmesh certificate";
    case TB_CERT_NOT_NODE:
        return "a CA certificate, not a node certificate";
    case TB_CERT_REJECTED:
        break;
    }
    return "rejected";
}

/* Issued by ca: the issuer names its subject and, when both say, the authority key identifier
 * is its subject key identifier (a foreign CA of the same mesh name has the same subject). */
static int names_ca(gnutls_x509_crt_t leaf, gnutls_x509_crt_t ca)
{
    if (!gnutls_x509_crt_check_issuer(leaf, ca))
        return 0;
    unsigned char aki[64], ski[64];
    size_t alen = sizeof(aki), slen = sizeof(ski);
    unsigned crit = 0;
    int ra = gnutls_x509_crt_get_authority_key_id(leaf, aki, &alen, &crit);
    int rs = gnutls_x509_crt_get_subject_key_id(ca, ski, &slen, &crit);
    if (ra == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || rs == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return 1;
    return ra == GNUTLS_E_SUCCESS && rs == GNUTLS_E_SUCCESS && alen == slen &&
           memcmp(aki, ski, alen) == 0;
}

/* In date means not_before <= now < not_after, the notAfter second itself expired (as
 * OpenSSL, which issues them, counts it). */
static int in_date(const tb_cert_identity *id, int64_t now)
{
    return id->not_before <= now && now < id->not_after;
}

/* The checks in OpenSSL's order, so the verdict names the first thing wrong: issuer, the
 * CA's dates, the signature, then the node certificate's dates. */
static tb_cert_verdict chain_verdict(const tb_ca *ca, gnutls_x509_crt_t leaf,
                                     const tb_cert_identity *id, int64_t now)
{
    tb_cert_identity ca_id;
    if (!names_ca(leaf, ca->cert))
        return TB_CERT_FOREIGN_CA;
    if (tb_cert_der_identity(ca->der, ca->der_len, &ca_id, NULL) != TB_OK)
        return TB_CERT_REJECTED;
    if (!in_date(&ca_id, now))
        return TB_CERT_CA_OUT_OF_DATE;
    unsigned status = 0;
    const unsigned flags =
        GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS;
    if (gnutls_x509_crt_verify(leaf, &ca->cert, 1, flags, &status) != GNUTLS_E_SUCCESS)
        return TB_CERT_REJECTED;
    if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
        return TB_CERT_BAD_SIGNATURE;
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
        return TB_CERT_FOREIGN_CA;
    if (status != 0)
        return TB_CERT_REJECTED;
    if (now < id->not_before)
        return TB_CERT_NOT_YET_VALID;
    if (now >= id->not_after)
        return TB_CERT_EXPIRED;
    return TB_CERT_OK;
}

static int verify_der(const tb_ca *ca, const uint8_t *der, size_t len, int64_t now, int operator,
                      tb_cert_verdict * verdict, tb_cert_identity *id)
{
    tb_cert_identity local;
    tb_cert_identity *ident = id ? id : &local;
    *verdict = TB_CERT_BAD_PROFILE;
    int rc = operator? tb_cert_operator_der(der, len, ident, NULL)
                     : tb_cert_der_identity(der, len, ident, NULL);
    if (rc != TB_OK)
        return TB_ERR_VERIFY;
    if (ident->is_ca) {
        *verdict = TB_CERT_NOT_NODE;
        return TB_ERR_VERIFY;
    }
    gnutls_x509_crt_t leaf = NULL;
    if (tb_cert_crt_from_der(der, len, &leaf) != TB_OK)
        return TB_ERR_VERIFY;
    *verdict = chain_verdict(ca, leaf, ident, now);
    gnutls_x509_crt_deinit(leaf);
    return *verdict == TB_CERT_OK ? TB_OK : TB_ERR_VERIFY;
}

int tb_ca_verify_der(const tb_ca *ca, const uint8_t *der, size_t len, int64_t now,
                     tb_cert_verdict *verdict, tb_cert_identity *id)
{
    return verify_der(ca, der, len, now, 0, verdict, id);
}

int tb_ca_verify_operator_der(const tb_ca *ca, const uint8_t *der, size_t len, int64_t now,
                              tb_cert_verdict *verdict, tb_cert_identity *id)
{
    return verify_der(ca, der, len, now, 1, verdict, id);
}
