/* libFuzzer target: an evidence bundle as `tbnode evidence verify` reads it (measure/bundle.h,
 * store/evidence.md), a file an auditor got from anywhere. Every input is parsed; a bundle that
 * parses is verified against the CA it carries itself (so the certificate, signature, evidence
 * and verdict checks all run on hostile data), and must report one line per item and count its
 * failures consistently. Seeds in tests/fuzz/corpus/evidence_bundle/ are bundles exported from
 * the 3-region test mesh (tests/test_evidence.sh). */
#include <stdlib.h>
#include <string.h>

#include "certs/internal.h"
#include "measure/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct tally {
    size_t items, failed;
} tally;

static void say(void *arg, const char *item, bool ok, const char *detail)
{
    tally *t = arg;
    t->items++;
    t->failed += !ok;
    if (!item[0] || strlen(detail) > 1023)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_measure_bundle *b = NULL;
    char err[256];
    if (tb_measure_bundle_parse(data, size, &b, err, sizeof(err)) != TB_OK) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    size_t len;
    const uint8_t *der = tb_measure_bundle_ca(b, &len);
    tb_ca *ca = NULL;
    if (tb_ca_from_der(der, len, NULL, 0, &ca, NULL) == TB_OK) {
        tally t = {0, 0};
        size_t failed = tb_measure_bundle_verify(b, ca, NULL, say, &t);
        if (failed != t.failed || t.items < 1 + tb_measure_bundle_count(b))
            abort();
        tb_ca_free(ca);
    }
    tb_measure_bundle_free(b);
    return 0;
}
