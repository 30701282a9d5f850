/* certs/issuer: what ca.c and store.c, the issuing side (tb_certs_ca, OpenSSL, tbcert only),
 * share: the node certificate and key as OpenSSL objects, and the CA of internal.h (kept as
 * DER, which the node side reads with GnuTLS) turned into them. */
#ifndef TB_CERTS_ISSUER_H
#define TB_CERTS_ISSUER_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/internal.h"

struct tb_node_cert {
    X509 *cert;
    EVP_PKEY *key;
    tb_cert_role role; /* which files tb_node_cert_save writes */
};

/* The CA certificate, and its key (NULL when the CA was loaded without it), as new OpenSSL
 * objects the caller frees. */
X509 *tb_ca_x509(const tb_ca *ca);
EVP_PKEY *tb_ca_pkey(const tb_ca *ca);

/* The DER encoding of x into a fresh OPENSSL_malloc buffer; TB_ERR_CRYPTO when it fails. */
TB_WUR int tb_cert_x509_der(X509 *x, uint8_t **der, size_t *len);

/* Checks x against the profile (tb_cert_identity_from_der on its DER). */
TB_WUR int tb_cert_x509_identity(X509 *x, tb_cert_identity *out, const char **why);

#endif
