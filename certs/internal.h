/* certs/internal: what identity.c, ca.c and files.c share inside tb_certs and nothing outside
 * the folder uses: the OpenSSL-typed profile check and careful file reading and writing. */
#ifndef TB_CERTS_INTERNAL_H
#define TB_CERTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/ca.h"
#include "certs/identity.h"
#include "common/error.h"

struct tb_ca {
    X509 *cert;
    EVP_PKEY *key; /* NULL when loaded for verifying only */
    char mesh[64];
};

struct tb_node_cert {
    X509 *cert;
    EVP_PKEY *key;
};

/* What build_cert needs: issuer NULL means self-signed. */
typedef struct tb_cert_template {
    X509 *issuer;
    X509_NAME *subject;
    EVP_PKEY *pubkey, *signer;
    GENERAL_NAMES *sans;
    int64_t not_before, not_after;
    int is_ca;
} tb_cert_template;

/* Fills out from a parsed certificate and checks it against the profile (adr/0004). On
 * failure *why (if why) names what was wrong, as a static string. */
TB_WUR int tb_cert_x509_identity(X509 *x, tb_cert_identity *out, const char **why);

/* tb_cert_identity_from_der with the reason of a failure. */
TB_WUR int tb_cert_der_identity(const uint8_t *der, size_t len, tb_cert_identity *out,
                                const char **why);

/* Reads the first certificate of a PEM file; err gets "PATH: reason". */
TB_WUR int tb_cert_x509_from_pem_file(const char *path, X509 **out, char *err, size_t errlen);

/* Reads a whole regular file of at most cap bytes into a fresh buffer (NUL-terminated, the
 * terminator not counted). The caller frees *out with OPENSSL_clear_free(*out, *len + 1). */
TB_WUR int tb_cert_file_read(const char *path, size_t cap, char **out, size_t *len, char *err,
                             size_t errlen);

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
