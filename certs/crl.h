/* certs/crl: the mesh's revocation list as a node reads it (adr/0004, "Revocation"): a standard
 * X.509 v2 CRL signed by the mesh CA, with a CRL number (the newest number wins), bounded in
 * size so that it travels in one mesh broadcast. Reading checks the CA's signature and the
 * issuer; it ignores the CRL's own dates (a revocation never lapses: only a CRL with a higher
 * number replaces one). GnuTLS only (tb_certs); tbcert writes CRLs with tb_ca_crl (ca.h). */
#ifndef TB_CERTS_CRL_H
#define TB_CERTS_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "certs/ca.h"
#include "certs/identity.h"
#include "common/error.h"

/* Largest CRL accepted (DER); it must fit a mesh broadcast of the default 64 KiB. */
#define TB_CRL_MAX_DER 32768
/* Most entries read from one CRL (about 40 bytes each in DER). */
#define TB_CRL_MAX_ENTRIES 700
#define TB_CRL_FILE "revoked.crl"

typedef struct tb_crl tb_crl;

typedef struct tb_crl_entry {
    uint8_t serial[TB_CERT_SERIAL_MAX];
    size_t serial_len;
    int64_t revoked_at; /* Unix seconds */
} tb_crl_entry;

/* Parses one DER CRL and checks it: v2, issued and signed by ca, a CRL number of at most 63
 * bits, at most TB_CRL_MAX_ENTRIES entries. TB_ERR_TOO_BIG, TB_ERR_MALFORMED (not a CRL),
 * TB_ERR_VERIFY (not signed by this CA), TB_ERR_INVAL (no number, too many entries); *why (may
 * be NULL) gets a static reason. */
TB_WUR int tb_crl_from_der(const tb_ca *ca, const uint8_t *der, size_t len, tb_crl **out,
                           const char **why);

/* Reads a CRL file (PEM "X509 CRL" or DER) and checks it as tb_crl_from_der. On failure err
 * holds "PATH: reason". */
TB_WUR int tb_crl_from_file(const tb_ca *ca, const char *path, tb_crl **out, char *err,
                            size_t errlen);

void tb_crl_free(tb_crl *c);

uint64_t tb_crl_number(const tb_crl *c);
int64_t tb_crl_this_update(const tb_crl *c);
size_t tb_crl_count(const tb_crl *c);
const tb_crl_entry *tb_crl_entries(const tb_crl *c);
/* The DER bytes it was read from. */
const uint8_t *tb_crl_der(const tb_crl *c, size_t *len);

/* 1 when a certificate with this serial (big-endian, as encoded) is listed. */
int tb_crl_lists(const tb_crl *c, const uint8_t *serial, size_t serial_len);
/* 1 when the certificate (DER) is listed; 0 when not, or when it does not parse. */
int tb_crl_lists_cert(const tb_crl *c, const uint8_t *der, size_t len);

/* tb_certs_ca (OpenSSL, tbcert) only: a CRL signed by ca (loaded with its key) listing the n
 * entries, with CRL number `number` (1..2^63-1), thisUpdate and nextUpdate (Unix seconds), the
 * CA's authority key identifier, as PEM ("X509 CRL") in a fresh malloc buffer the caller frees.
 * Entries are sorted by serial; a serial listed twice is written once. */
TB_WUR int tb_ca_crl_pem(const tb_ca *ca, const tb_crl_entry *entries, size_t n, uint64_t number,
                         int64_t this_update, int64_t next_update, char **pem, size_t *len,
                         char *err, size_t errlen);

#endif
