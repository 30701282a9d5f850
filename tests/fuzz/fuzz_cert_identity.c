/* libFuzzer target: tb_cert_identity_from_der on arbitrary bytes (a peer's certificate is
 * untrusted input). Seeds in tests/fuzz/corpus/cert_identity/ are certificates from tbcert.
 * Every accepted input must give a NUL-terminated, valid identity; tb_cert_san_text must
 * cope with the same bytes. tb_cert_operator_der (an operator's certificate on h3) too, and
 * no certificate is both a node's and an operator's. */
#include <stdlib.h>
#include <string.h>

#include "certs/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_cert_identity id;
    if (tb_cert_identity_from_der(data, size, &id) == TB_OK) {
        if (!memchr(id.name, 0, sizeof(id.name)) || !memchr(id.region, 0, sizeof(id.region)))
            abort();
        if (!tb_cert_name_valid(id.name) || (!id.is_ca && !tb_cert_name_valid(id.region)))
            abort();
        if (strcmp(id.key_type, "ed25519") != 0 && strcmp(id.key_type, "p256") != 0)
            abort();
    }
    tb_cert_identity op;
    const char *why = NULL;
    if (tb_cert_operator_der(data, size, &op, &why) == TB_OK) {
        if (!op.is_operator || op.is_ca || op.region[0] || !tb_cert_name_valid(op.name))
            abort();
        if (tb_cert_identity_from_der(data, size, &id) == TB_OK)
            abort();
    } else if (!why) {
        abort();
    }
    char sans[512];
    if (size <= TB_CERT_MAX_DER)
        (void)!tb_cert_san_text(data, size, sans, sizeof(sans));
    return 0;
}
