/* measure/bundle: the parsed bundle, shared by the parser (bundle.c) and the verifier
 * (bundle_verify.c). Private to measure/. */
#ifndef TB_MEASURE_BUNDLE_INTERNAL_H
#define TB_MEASURE_BUNDLE_INTERNAL_H

#include "measure/bundle.h"

#define BUNDLE_REASON_MAX 1024

typedef struct bundle_cert {
    char origin[TB_MEASURE_MAX_ORIGIN + 1]; /* as the bundle states it */
    uint8_t *der;
    size_t len;
} bundle_cert;

/* A measurement: the signed bytes, and what the bundle states about them (checked against
 * the body by the verifier, never trusted). */
typedef struct bundle_item {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t seq;
    char kind[16];
    char source[TB_MEASURE_MAX_TEXT + 1];
    int64_t real_ns, offset_ns, delay_ns, bound_ns;
    uint8_t *body;
    size_t body_len;
    uint8_t sig[TB_MEASURE_SIG_LEN];
    uint8_t *req, *resp; /* NULL when the bundle states none */
    size_t req_len, resp_len;
} bundle_item;

struct tb_measure_bundle {
    uint8_t *ca;
    size_t ca_len;
    bundle_cert certs[TB_MEASURE_BUNDLE_MAX_CERTS];
    size_t n_certs;
    bundle_item *items;
    size_t n_items, items_cap; /* items parsed; allocated (zeroed, freed in full) */
    bool has_verdict;
    char v_kind[16], v_source[TB_MEASURE_MAX_TEXT + 1], v_verdict[32];
    char v_reason[BUNDLE_REASON_MAX];
    tb_measure_bundle_ref refs[TB_MEASURE_BUNDLE_MAX_REFS];
    size_t n_refs;
};

#endif
