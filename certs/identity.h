/* certs/identity: reads a node's identity (name, region, key, validity) out of an X.509
 * certificate written by tbcert, and validates it against the certificate profile of
 * adr/0004-certificate-profile.md. A certificate that does not follow the profile (no node or
 * region URI, two of either, a bad name, another key type, missing EKU) is rejected, never
 * half-read. No OpenSSL type appears here, so callers on GnuTLS can pass the peer's DER. */
#ifndef TB_CERTS_IDENTITY_H
#define TB_CERTS_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Longest certificate accepted, DER or PEM. Ours are under 1 KiB. */
#define TB_CERT_MAX_DER 16384
#define TB_CERT_MAX_PEM (2 * TB_CERT_MAX_DER)

/* RFC 5280 caps serial numbers at 20 octets. */
#define TB_CERT_SERIAL_MAX 20

#define TB_CERT_URI_NODE "urn:tbmesh:node:"
#define TB_CERT_URI_REGION "urn:tbmesh:region:"
/* An operator's certificate (adr/0004): may query a node over HTTP/3, is never a mesh node. */
#define TB_CERT_URI_OPERATOR "urn:tbmesh:operator:"

typedef struct tb_cert_identity {
    char name[64]; /* node name (for a CA: the mesh name) */
    char region[64];
    char key_type[16];                  /* "ed25519" or "p256" */
    int64_t not_before, not_after;      /* Unix seconds */
    uint8_t fingerprint[32];            /* SHA-256 of the DER certificate */
    uint8_t ed25519_pub[32];            /* raw public key when key_type is ed25519 */
    uint8_t serial[TB_CERT_SERIAL_MAX]; /* big-endian, as encoded (what a CRL lists) */
    size_t serial_len;
    int is_ca;
    int is_operator; /* only from tb_cert_operator_der: name is the operator's, region empty */
} tb_cert_identity;

/* Parses one DER certificate (no trailing bytes). Returns 0, TB_ERR_TOO_BIG over
 * TB_CERT_MAX_DER, TB_ERR_MALFORMED when it is not X.509, TB_ERR_UNSUPPORTED for another key
 * type, TB_ERR_INVAL when it breaks the profile. Checks no signature and no date: that is
 * tb_ca_verify_der's job. */
TB_WUR int tb_cert_identity_from_der(const uint8_t *der, size_t len, tb_cert_identity *out);

/* Parses one DER operator certificate (one URI urn:tbmesh:operator:NAME, no node or region URI,
 * CN NAME, EKU clientAuth alone), with the same limits and codes as tb_cert_identity_from_der;
 * a node or CA certificate is TB_ERR_INVAL. *why (when why) gets the reason of a failure. */
TB_WUR int tb_cert_operator_der(const uint8_t *der, size_t len, tb_cert_identity *out,
                                const char **why);

/* Reads the first certificate of a PEM file. On failure err holds "PATH: reason". */
TB_WUR int tb_cert_identity_from_pem_file(const char *path, tb_cert_identity *out, char *err,
                                          size_t errlen);

/* Reads the first certificate of a PEM file as DER into der (cap bytes). */
TB_WUR int tb_cert_read_pem_file(const char *path, uint8_t *der, size_t cap, size_t *len, char *err,
                                 size_t errlen);

/* 1 when the NUL-terminated s is a valid node, region or mesh name (tb_name_valid). */
int tb_cert_name_valid(const char *s);

/* Writes the subjectAltNames as "DNS:a, IP:10.0.0.1, URI:urn:..." (empty when none). */
TB_WUR int tb_cert_san_text(const uint8_t *der, size_t len, char *buf, size_t buflen);

#endif
