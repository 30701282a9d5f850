/* The CA's and nodes' files (names in ca.h, layout in adr/0004): PEM in and out, keys written
 * 0600 from the first byte, nothing overwritten without force. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "certs/ca.h"
#include "certs/issuer.h"

#define KEY_MODE 0600
#define CERT_MODE 0644

typedef struct pem_out {
    BIO *bio;
    const char *data;
    size_t len;
} pem_out;

/* PBKDF2-HMAC-SHA256 rounds for an encrypted CA key: OpenSSL's default (2048) is far too
 * cheap against an offline guess; this costs a few tenths of a second per load. */
#define KEY_PBKDF2_ITER 600000

static int write_key_pem(BIO *bio, EVP_PKEY *key, const char *pass)
{
    if (!pass)
        return PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    /* pbe_nid -1: PBES2 with the cipher given, a random 16-byte salt and HMAC-SHA256. */
    X509_SIG *sig = p8 ? PKCS8_encrypt_ex(-1, EVP_aes_256_cbc(), pass, (int)strlen(pass), NULL, 16,
                                          KEY_PBKDF2_ITER, p8, NULL, NULL)
                       : NULL;
    int ok = sig && PEM_write_bio_PKCS8(bio, sig);
    X509_SIG_free(sig);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return ok;
}

/* Keys go through a secure-memory BIO, which is cleansed when freed. */
static int pem_key(EVP_PKEY *key, const char *pass, pem_out *out)
{
    char *data = NULL;
    out->bio = BIO_new(BIO_s_secmem());
    if (!out->bio || !write_key_pem(out->bio, key, pass))
        return TB_ERR_CRYPTO;
    long n = BIO_get_mem_data(out->bio, &data);
    out->data = data;
    out->len = n > 0 ? (size_t)n : 0;
    return n > 0 ? TB_OK : TB_ERR_CRYPTO;
}

static int pem_cert(X509 *cert, pem_out *out)
{
    char *data = NULL;
    out->bio = BIO_new(BIO_s_mem());
    if (!out->bio || !PEM_write_bio_X509(out->bio, cert))
        return TB_ERR_CRYPTO;
    long n = BIO_get_mem_data(out->bio, &data);
    out->data = data;
    out->len = n > 0 ? (size_t)n : 0;
    return n > 0 ? TB_OK : TB_ERR_CRYPTO;
}

static int write_pem(const char *path, int is_key, void *obj, const char *pass, int replace,
                     char *err, size_t errlen)
{
    pem_out pem = {0};
    int rc = !obj ? TB_ERR_CRYPTO : is_key ? pem_key(obj, pass, &pem) : pem_cert(obj, &pem);
    if (rc == TB_OK)
        rc = tb_cert_file_write(path, pem.data, pem.len, is_key ? KEY_MODE : CERT_MODE, replace,
                                err, errlen);
    else
        tb_cert_fail(rc, err, errlen, "%s: cannot encode", path);
    BIO_free(pem.bio);
    ERR_clear_error();
    return rc;
}

/* Full paths of up to three files in dir; refuses when one exists and force is off. */
static int out_paths(const char *dir, const char *const *names, char (*paths)[4096], int count,
                     int force, char *err, size_t errlen)
{
    for (int i = 0; i < count; i++) {
        if (tb_cert_path(paths[i], sizeof(paths[i]), dir, names[i]) != TB_OK)
            return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "%s: path too long", dir);
        if (!force && tb_cert_file_exists(paths[i]))
            return tb_cert_fail(TB_ERR_EXISTS, err, errlen, "%s: exists (use --force to overwrite)",
                                paths[i]);
    }
    return TB_OK;
}

int tb_ca_save(const tb_ca *ca, const char *dir, const char *passphrase, int force, char *err,
               size_t errlen)
{
    static const char *const names[] = {TB_CA_KEY_FILE, TB_CA_CERT_FILE};
    char paths[2][4096];
    if (!ca->key)
        return tb_cert_fail(TB_ERR_STATE, err, errlen, "CA has no key to save");
    EVP_PKEY *key = tb_ca_pkey(ca);
    X509 *cert = tb_ca_x509(ca);
    int rc = tb_cert_mkdir(dir, 0700, err, errlen);
    if (rc == TB_OK)
        rc = out_paths(dir, names, paths, 2, force, err, errlen);
    if (rc == TB_OK)
        rc = write_pem(paths[0], 1, key, passphrase, force, err, errlen);
    if (rc == TB_OK)
        rc = write_pem(paths[1], 0, cert, NULL, force, err, errlen);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

int tb_node_cert_save(const tb_node_cert *n, const tb_ca *ca, const char *dir, int force, char *err,
                      size_t errlen)
{
    static const char *const node[] = {TB_NODE_KEY_FILE, TB_NODE_CERT_FILE, TB_CA_CERT_FILE};
    static const char *const op[] = {TB_OPERATOR_KEY_FILE, TB_OPERATOR_CERT_FILE, TB_CA_CERT_FILE};
    const char *const *names = n->role == TB_CERT_ROLE_OPERATOR ? op : node;
    char paths[3][4096];
    int rc = tb_cert_mkdir(dir, 0755, err, errlen);
    if (rc == TB_OK)
        rc = out_paths(dir, names, paths, 3, force, err, errlen);
    if (rc == TB_OK)
        rc = write_pem(paths[0], 1, n->key, NULL, force, err, errlen);
    if (rc == TB_OK)
        rc = write_pem(paths[1], 0, n->cert, NULL, force, err, errlen);
    X509 *ca_cert = rc == TB_OK ? tb_ca_x509(ca) : NULL;
    if (rc == TB_OK)
        rc = write_pem(paths[2], 0, ca_cert, NULL, force, err, errlen);
    X509_free(ca_cert);
    return rc;
}

int tb_node_cert_replace_cert(const tb_node_cert *n, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (tb_cert_path(path, sizeof(path), dir, TB_NODE_CERT_FILE) != TB_OK)
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "%s: path too long", dir);
    return write_pem(path, 0, n->cert, NULL, 1, err, errlen);
}

/* node.key through the one key loader (GnuTLS, tb_cert_key_load), then into OpenSSL. */
static int load_node(const char *dir, X509 **cert_out, EVP_PKEY **key_out, char *err, size_t errlen)
{
    char cert_path[4096], key_path[4096];
    if (tb_cert_path(cert_path, sizeof(cert_path), dir, TB_NODE_CERT_FILE) != TB_OK ||
        tb_cert_path(key_path, sizeof(key_path), dir, TB_NODE_KEY_FILE) != TB_OK)
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "%s: path too long", dir);
    uint8_t der[TB_CERT_MAX_DER], *key = NULL;
    size_t len = 0, key_len = 0;
    gnutls_x509_crt_t crt = NULL;
    int rc = tb_cert_read_pem_file(cert_path, der, sizeof(der), &len, err, errlen);
    if (rc == TB_OK && tb_cert_crt_from_der(der, len, &crt) != TB_OK)
        rc = tb_cert_fail(TB_ERR_MALFORMED, err, errlen, "%s: not a certificate", cert_path);
    if (rc == TB_OK)
        rc = tb_cert_key_load(key_path, NULL, cert_path, crt, &key, &key_len, err, errlen);
    const unsigned char *p = der, *k = key;
    if (rc == TB_OK && (!(*cert_out = d2i_X509(NULL, &p, (long)len)) ||
                        !(*key_out = d2i_AutoPrivateKey(NULL, &k, (long)key_len))))
        rc = tb_cert_fail(TB_ERR_CRYPTO, err, errlen, "%s: cannot decode", key_path);
    if (key)
        tb_cert_wipe(key, key_len);
    free(key);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rc;
}

int tb_node_cert_load(const char *dir, tb_node_cert **out, char *err, size_t errlen)
{
    tb_node_cert *n = OPENSSL_zalloc(sizeof(*n));
    if (!n)
        return tb_cert_fail(TB_ERR_NOMEM, err, errlen, "%s: out of memory", dir);
    int rc = load_node(dir, &n->cert, &n->key, err, errlen);
    if (rc != TB_OK) {
        tb_node_cert_free(n);
        return rc;
    }
    *out = n;
    return TB_OK;
}
