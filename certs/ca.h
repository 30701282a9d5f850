/* certs/ca: the mesh certificate authority behind tbcert. It owns creating the CA (Ed25519 key
 * and self-signed certificate), issuing and renewing node certificates to the profile of
 * adr/0004-certificate-profile.md, the files they live in, and verifying that a node
 * certificate chains to the CA and is in date at a given time. It reads no clock: every
 * function that needs a time takes it (Unix seconds).
 * Two libraries: tb_certs (GnuTLS) has loading the CA (tb_ca_load, tb_ca_free, tb_ca_mesh,
 * tb_ca_cert_der) and verifying (tb_ca_verify_der, tb_cert_verdict_str), which is all a node
 * needs; tb_certs_ca (OpenSSL, for tbcert) has everything else here. */
#ifndef TB_CERTS_CA_H
#define TB_CERTS_CA_H

#include <stddef.h>
#include <stdint.h>

#include "certs/identity.h"
#include "common/error.h"

/* File names (adr/0004). CA directory: ca.key (0600, PKCS#8 PEM, AES-256 encrypted when a
 * passphrase is given) and ca.crt. Node directory: node.key (0600, PKCS#8 PEM), node.crt and
 * ca.crt (a copy of the CA certificate). */
#define TB_CA_KEY_FILE "ca.key"
#define TB_CA_CERT_FILE "ca.crt"
#define TB_NODE_KEY_FILE "node.key"
#define TB_NODE_CERT_FILE "node.crt"
/* An operator's directory: operator.key (0600), operator.crt and ca.crt. */
#define TB_OPERATOR_KEY_FILE "operator.key"
#define TB_OPERATOR_CERT_FILE "operator.crt"

#define TB_CERT_DEFAULT_MESH "tbmesh"
#define TB_CA_DEFAULT_DAYS 3650
#define TB_NODE_DEFAULT_DAYS 90
#define TB_CERT_MAX_DAYS 36500
/* Certificates start this long before they are issued, so a peer whose clock is slightly
 * behind the issuer's does not see a fresh certificate as not yet valid. */
#define TB_CERT_BACKDATE_SECONDS 300
#define TB_CERT_MAX_SANS 32 /* --ip and --dns each */
#define TB_CERT_MAX_PASSPHRASE 1024

typedef enum tb_cert_key_type {
    TB_CERT_KEY_ED25519 = 0,
    TB_CERT_KEY_P256 = 1,
} tb_cert_key_type;

/* Parses "ed25519" or "p256". */
TB_WUR int tb_cert_key_type_parse(const char *s, tb_cert_key_type *out);

typedef struct tb_ca tb_ca;               /* the CA certificate, and its key when loaded */
typedef struct tb_node_cert tb_node_cert; /* a node key and certificate */

/* A new CA for mesh (a valid name, see tb_cert_name_valid) valid from not_before to
 * not_after. */
TB_WUR int tb_ca_create(const char *mesh, int64_t not_before, int64_t not_after, tb_ca **out);
void tb_ca_free(tb_ca *ca);

/* Writes ca.key and ca.crt into dir (created 0700 if missing). passphrase NULL writes the key
 * unencrypted. Without force an existing file is never overwritten (TB_ERR_EXISTS). */
TB_WUR int tb_ca_save(const tb_ca *ca, const char *dir, const char *passphrase, int force,
                      char *err, size_t errlen);

/* Loads ca.crt and, when with_key, ca.key from dir and checks they belong together. A wrong
 * passphrase gives TB_ERR_CRYPTO and "DIR/ca.key: wrong passphrase or corrupt key". */
TB_WUR int tb_ca_load(const char *dir, int with_key, const char *passphrase, tb_ca **out, char *err,
                      size_t errlen);

/* Loads a CA certificate from the PEM file at cert_path (any name; no key). */
TB_WUR int tb_ca_load_file(const char *cert_path, tb_ca **out, char *err, size_t errlen);

/* A node's own certificate and key as read, each file once, from their PEM files (tb_certs):
 * the certificate follows the node profile and the key belongs to it. Nothing here checks the
 * chain or the dates (tb_ca_verify_der). */
typedef struct tb_cert_pair {
    char *cert_pem, *key_pem; /* the files' bytes, NUL-terminated */
    size_t cert_len, key_len;
    uint8_t der[TB_CERT_MAX_DER];
    size_t der_len;
    tb_cert_identity id;
} tb_cert_pair;

/* Errors name the file: "PATH: does not belong to CERT", "PATH: not a PEM certificate...". */
TB_WUR int tb_cert_pair_load(const char *cert_path, const char *key_path, tb_cert_pair *out,
                             char *err, size_t errlen);
/* Frees the files' bytes (the key wiped first). */
void tb_cert_pair_clear(tb_cert_pair *p);

/* The CA's mesh name (its subject O). */
const char *tb_ca_mesh(const tb_ca *ca);

/* Who a certificate is for (adr/0004): a mesh node, or an operator who may query nodes over
 * HTTP/3 (URI urn:tbmesh:operator:NAME, EKU clientAuth alone, no region, no IP or DNS name). */
typedef enum tb_cert_role {
    TB_CERT_ROLE_NODE = 0,
    TB_CERT_ROLE_OPERATOR = 1,
} tb_cert_role;

typedef struct tb_cert_request {
    tb_cert_role role;
    const char *name;   /* node or operator name */
    const char *region; /* region name (nodes only) */
    const char *const *ips;
    size_t n_ips;
    const char *const *dns;
    size_t n_dns;
    tb_cert_key_type key_type;
    int64_t not_before, not_after; /* Unix seconds */
} tb_cert_request;

/* Generates a node key and a certificate for req signed by ca (which must hold its key).
 * A bad field gives TB_ERR_INVAL and err names it. */
TB_WUR int tb_ca_issue(const tb_ca *ca, const tb_cert_request *req, tb_node_cert **out, char *err,
                       size_t errlen);

/* A new certificate for old's key and identity (subject, every SAN) with a new serial and
 * validity. old must have been signed by ca (its dates do not matter). */
TB_WUR int tb_ca_renew(const tb_ca *ca, const tb_node_cert *old, int64_t not_before,
                       int64_t not_after, tb_node_cert **out, char *err, size_t errlen);

void tb_node_cert_free(tb_node_cert *n);

/* Writes node.key (0600), node.crt and ca.crt into dir (created if missing); for an operator
 * certificate operator.key and operator.crt instead of node.*. Without force it
 * refuses, before writing anything, when one of them exists. */
TB_WUR int tb_node_cert_save(const tb_node_cert *n, const tb_ca *ca, const char *dir, int force,
                             char *err, size_t errlen);

/* Replaces dir/node.crt atomically (temporary file, fsync, rename); node.key is untouched. */
TB_WUR int tb_node_cert_replace_cert(const tb_node_cert *n, const char *dir, char *err,
                                     size_t errlen);

/* Loads node.key and node.crt from dir and checks they belong together. */
TB_WUR int tb_node_cert_load(const char *dir, tb_node_cert **out, char *err, size_t errlen);

/* The certificate as DER into der (cap bytes). */
TB_WUR int tb_node_cert_der(const tb_node_cert *n, uint8_t *der, size_t cap, size_t *len);
TB_WUR int tb_ca_cert_der(const tb_ca *ca, uint8_t *der, size_t cap, size_t *len);

/* The DER SubjectPublicKeyInfo of the node key (to compare keys across a renewal). */
TB_WUR int tb_node_cert_pubkey_der(const tb_node_cert *n, uint8_t *der, size_t cap, size_t *len);

typedef enum tb_cert_verdict {
    TB_CERT_OK = 0,
    TB_CERT_EXPIRED,        /* now is after the certificate's notAfter */
    TB_CERT_NOT_YET_VALID,  /* now is before its notBefore */
    TB_CERT_FOREIGN_CA,     /* not issued by this CA */
    TB_CERT_BAD_SIGNATURE,  /* names this CA, but the signature does not verify */
    TB_CERT_CA_OUT_OF_DATE, /* the CA certificate itself is not valid at now */
    TB_CERT_BAD_PROFILE,    /* unparsable, or breaks the profile (adr/0004) */
    TB_CERT_NOT_NODE,       /* a CA certificate where a node certificate belongs */
    TB_CERT_REJECTED,       /* any other chain error */
} tb_cert_verdict;

const char *tb_cert_verdict_str(tb_cert_verdict v);

/* Checks a DER node certificate: follows the profile, chains to ca, in date at now (Unix
 * seconds; OpenSSL counts the notAfter second as expired, so valid means not_before <= now <
 * not_after), EKU serverAuth + clientAuth. Returns 0 (verdict TB_CERT_OK, id filled when not
 * NULL) or TB_ERR_VERIFY with *verdict saying why; other codes for failures of its own. */
TB_WUR int tb_ca_verify_der(const tb_ca *ca, const uint8_t *der, size_t len, int64_t now,
                            tb_cert_verdict *verdict, tb_cert_identity *id);

#endif
