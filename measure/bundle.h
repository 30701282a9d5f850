/* measure/bundle: the evidence bundle an auditor checks offline (issue 13; the format is
 * documented in store/evidence.md). A bundle is self-contained: signed measurements (the exact
 * signed bytes and signatures, as stored), the certificates of their origins, the mesh CA
 * certificate, optionally the verdict they back; the raw NTP packets and Roughtime request and
 * response travel inside the signed bodies and are repeated beside them for readers without
 * tbnode. JSON, binary values in standard base64.
 *
 * One writer (tb_measure_bundle_write: the node's `evidence` control request, and any route
 * that serves one, build bundles through it), one parser that takes the file as hostile input
 * (size, counts, every string and decoded length bounded; duplicate keys refused), and one
 * verifier that needs no node: every certificate must chain to the CA the auditor trusts (and
 * not be on a CRL when one is given) at the time of the measurements it signs, every signature
 * verify with its origin's certificate key, every raw evidence re-check
 * (measure/evidence.h), and every number the bundle states agree with the signed body and the
 * packets. Pure: no I/O, no clock (times come from the measurements), no global state. */
#ifndef TB_MEASURE_BUNDLE_H
#define TB_MEASURE_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/ca.h"
#include "certs/crl.h"
#include "common/error.h"
#include "measure/measurement.h"

#define TB_MEASURE_BUNDLE_FORMAT "tbnode-evidence"
#define TB_MEASURE_BUNDLE_VERSION 1
#define TB_MEASURE_BUNDLE_MAX_BYTES (4u << 20) /* a bundle file */
#define TB_MEASURE_BUNDLE_MAX_CERTS 64
#define TB_MEASURE_BUNDLE_MAX_ITEMS 256 /* measurements */
#define TB_MEASURE_BUNDLE_MAX_REFS 64   /* measurements a verdict cites */

/* One signed measurement as stored. */
typedef struct tb_measure_bundle_item {
    const uint8_t *body;
    size_t body_len;
    const uint8_t *sig; /* TB_MEASURE_SIG_LEN bytes */
} tb_measure_bundle_item;

typedef struct tb_measure_bundle_ref {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t seq;
} tb_measure_bundle_ref;

/* Reads "ORIGIN:SEQ" (len bytes, no NUL needed): a valid node name, a sequence number of 1 to 19
 * digits below 2^63. TB_ERR_MALFORMED otherwise. */
TB_WUR int tb_measure_bundle_ref_parse(const char *s, size_t len, tb_measure_bundle_ref *out);

/* The verdict the measurements back (what the exporting node concluded). */
typedef struct tb_measure_bundle_verdict {
    const char *kind, *source, *verdict, *reason;
    int64_t since_ns;
    const tb_measure_bundle_ref *refs;
    size_t n_refs;
} tb_measure_bundle_verdict;

typedef struct tb_measure_bundle_in {
    const char *exported_by; /* the node that wrote it */
    int64_t created_ns;
    const uint8_t *ca_der;
    size_t ca_len;
    const uint8_t *const *cert_der; /* the origins' certificates */
    const size_t *cert_len;
    size_t n_certs;
    const tb_measure_bundle_item *items;
    size_t n_items;
    const tb_measure_bundle_verdict *verdict; /* NULL: none */
} tb_measure_bundle_in;

/* Writes the bundle as a NUL-terminated JSON text into a fresh malloc buffer (*out, *len
 * without the NUL). TB_ERR_INVAL for a body that does not parse, a certificate that does not
 * follow the profile, counts over the caps; TB_ERR_NOMEM. */
TB_WUR int tb_measure_bundle_write(const tb_measure_bundle_in *in, char **out, size_t *len);

typedef struct tb_measure_bundle tb_measure_bundle;

/* Parses a bundle read from a file. On failure err says which field is wrong
 * ("measurements[3].sig: not 64 bytes of base64"): TB_ERR_TOO_BIG, TB_ERR_MALFORMED,
 * TB_ERR_UNSUPPORTED (another format or version), TB_ERR_NOMEM. */
TB_WUR int tb_measure_bundle_parse(const uint8_t *p, size_t len, tb_measure_bundle **out, char *err,
                                   size_t errlen);
void tb_measure_bundle_free(tb_measure_bundle *b);

/* The CA certificate the bundle carries (DER). */
const uint8_t *tb_measure_bundle_ca(const tb_measure_bundle *b, size_t *len);
size_t tb_measure_bundle_count(const tb_measure_bundle *b); /* measurements */

/* Receives one line per item checked: item names it ("ca", "certificate node-a", "measurement
 * node-a:17", "verdict ntp ntp-1"), detail says what was found or why it failed. */
typedef void (*tb_measure_bundle_say)(void *arg, const char *item, bool ok, const char *detail);

/* Verifies every item of b against the trusted ca and, when crl is not NULL, that list. Returns
 * the number of items that failed (0: the bundle holds). */
size_t tb_measure_bundle_verify(const tb_measure_bundle *b, const tb_ca *ca, const tb_crl *crl,
                                tb_measure_bundle_say say, void *arg);

#endif
