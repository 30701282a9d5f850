/* libFuzzer target: tb_crl_from_der on arbitrary bytes (a revocation list from the mesh is
 * untrusted input until its signature is checked). Seeds in tests/fuzz/corpus/crl/ are lists
 * from tbcert revoke (signed by another CA, so they exercise the decoding and the refusal);
 * every input is also tried as the first bytes of a list this CA signed. An accepted list must
 * keep its caps and answer lookups. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/ca.h"
#include "certs/crl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tb_ca *ca;
static uint8_t *good;
static size_t good_len;

static void setup(void)
{
    if (tb_ca_create("fuzz", 1700000000, 2000000000, &ca) != TB_OK)
        abort();
    tb_crl_entry e[2] = {{.serial = {1, 2, 3}, .serial_len = 3, .revoked_at = 1800000000},
                         {.serial = {0x7f}, .serial_len = 1, .revoked_at = 1800000001}};
    char *pem = NULL, err[256];
    size_t len = 0;
    if (tb_ca_crl_pem(ca, e, 2, 5, 1800000000, 1900000000, &pem, &len, err, sizeof(err)) != TB_OK)
        abort();
    char path[] = "/tmp/fuzz-crl.XXXXXX";
    int fd = mkstemp(path);
    tb_crl *crl = NULL;
    if (fd < 0 || write(fd, pem, len) != (ssize_t)len ||
        tb_crl_from_file(ca, path, &crl, err, sizeof(err)) != TB_OK)
        abort();
    close(fd);
    unlink(path);
    free(pem);
    const uint8_t *der = tb_crl_der(crl, &good_len);
    good = malloc(good_len);
    memcpy(good, der, good_len);
    tb_crl_free(crl);
}

static void check(const uint8_t *data, size_t size)
{
    tb_crl *crl = NULL;
    const char *why = NULL;
    if (tb_crl_from_der(ca, data, size, &crl, &why) != TB_OK)
        return;
    size_t len = 0;
    if (tb_crl_count(crl) > TB_CRL_MAX_ENTRIES || tb_crl_number(crl) > INT64_MAX ||
        !tb_crl_der(crl, &len) || len != size)
        abort();
    for (size_t i = 0; i < tb_crl_count(crl); i++) {
        const tb_crl_entry *e = &tb_crl_entries(crl)[i];
        if (e->serial_len == 0 || e->serial_len > TB_CERT_SERIAL_MAX ||
            !tb_crl_lists(crl, e->serial, e->serial_len))
            abort();
    }
    (void)tb_crl_lists_cert(crl, data, size);
    tb_crl_free(crl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ca)
        setup();
    check(data, size);
    if (size <= good_len) {
        uint8_t *mixed = malloc(good_len);
        memcpy(mixed, good, good_len);
        memcpy(mixed, data, size);
        check(mixed, good_len);
        free(mixed);
    }
    return 0;
}
