/* certs/internal: what the files of certs/ share and nothing outside the folder uses: the CA
 * as both libraries see it, the DER import behind the profile check, and careful file reading
 * and writing. No OpenSSL type appears here: tb_certs (what tbnode links) is GnuTLS only. */
#ifndef TB_CERTS_INTERNAL_H
#define TB_CERTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/x509.h>

#include "certs/ca.h"
#include "certs/identity.h"
#include "common/error.h"

/* The CA key travels as unencrypted PKCS#8 DER, the one form both GnuTLS (which loads it) and
 * OpenSSL (which signs with it, in tb_certs_ca) read. */
struct tb_ca {
    gnutls_x509_crt_t cert;
    uint8_t *der; /* the certificate as read or built */
    size_t der_len;
    uint8_t *key; /* NULL when loaded for verifying only; wiped when freed */
    size_t key_len;
    char mesh[64];
};

/* A CA from its certificate and (key may be NULL) PKCS#8 DER key, both copied. TB_ERR_INVAL
 * when the certificate is no tbmesh CA certificate; *why (if why) then says why. */
TB_WUR int tb_ca_from_der(const uint8_t *der, size_t len, const uint8_t *key, size_t key_len,
                          tb_ca **out, const char **why);

/* Loads the PEM private key at path (PKCS#8, encrypted with pass when not NULL, or SEC1) and
 * checks it is the key of cert (read from cert_path, for the message). *key_out gets its
 * unencrypted PKCS#8 DER, which the caller wipes (tb_cert_wipe) and frees. A wrong or missing
 * passphrase gives TB_ERR_CRYPTO, another key TB_ERR_VERIFY, no key TB_ERR_MALFORMED. */
TB_WUR int tb_cert_key_load(const char *path, const char *pass, const char *cert_path,
                            gnutls_x509_crt_t cert, uint8_t **key_out, size_t *len, char *err,
                            size_t errlen);

/* The first PEM certificate of pem (n bytes) as checked DER into der (cap bytes):
 * TB_ERR_MALFORMED, TB_ERR_TOO_BIG. */
TB_WUR int tb_cert_pem_der(const char *pem, size_t n, uint8_t *der, size_t cap, size_t *len);

/* tb_cert_key_load on a key already read (pem, n bytes; path for the messages). */
TB_WUR int tb_cert_key_from_pem(const char *pem, size_t n, const char *path, const char *pass,
                                const char *cert_path, gnutls_x509_crt_t cert, uint8_t **key_out,
                                size_t *len, char *err, size_t errlen);

/* Imports one DER certificate of at most TB_CERT_MAX_DER bytes with nothing after it. */
TB_WUR int tb_cert_crt_from_der(const uint8_t *der, size_t len, gnutls_x509_crt_t *out);

/* tb_cert_identity_from_der with the reason of a failure (a static string). */
TB_WUR int tb_cert_der_identity(const uint8_t *der, size_t len, tb_cert_identity *out,
                                const char **why);

/* Reads a whole regular file of at most cap bytes into a fresh buffer (NUL-terminated, the
 * terminator not counted). The caller frees *out with tb_cert_file_free(*out, *len). */
TB_WUR int tb_cert_file_read(const char *path, size_t cap, char **out, size_t *len, char *err,
                             size_t errlen);

/* Zeroes a secret in a way the compiler does not drop. */
void tb_cert_wipe(void *p, size_t len);

/* Wipes (it may hold a key) and frees what tb_cert_file_read returned. */
void tb_cert_file_free(char *buf, size_t len);

/* Writes data to path through a temporary file in the same directory (created O_EXCL with
 * mode, written, fsynced, then moved into place, and the directory fsynced). With replace the
 * move is a rename; without, a link that fails when path exists (TB_ERR_EXISTS), so an
 * existing key is never clobbered, not even by a race. */
TB_WUR int tb_cert_file_write(const char *path, const void *data, size_t len, unsigned mode,
                              int replace, char *err, size_t errlen);

/* dir + "/" + name into buf; TB_ERR_TOO_BIG when it does not fit. */
TB_WUR int tb_cert_path(char *buf, size_t cap, const char *dir, const char *name);

/* Creates dir with mode unless it exists as a directory. */
TB_WUR int tb_cert_mkdir(const char *dir, unsigned mode, char *err, size_t errlen);

/* 1 when path exists (any type, symlinks not followed). */
int tb_cert_file_exists(const char *path);

/* Formats an error message into err (if any) and returns rc. */
int tb_cert_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
