/* The mesh's revocation list as a node reads it (crl.h). GnuTLS only (see internal.h). */
#include "certs/crl.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certs/internal.h"

struct tb_crl {
    uint64_t number;
    int64_t this_update;
    tb_crl_entry *entries;
    size_t n;
    uint8_t *der;
    size_t der_len;
};

void tb_crl_free(tb_crl *c)
{
    if (!c)
        return;
    free(c->entries);
    free(c->der);
    free(c);
}

/* The CRL number extension (RFC 5280 5.2.3), which orders CRLs: at most 63 bits here. */
static const char *read_number(gnutls_x509_crl_t x, uint64_t *out)
{
    uint8_t buf[32];
    size_t len = sizeof(buf);
    unsigned crit = 0;
    if (gnutls_x509_crl_get_number(x, buf, &len, &crit) != GNUTLS_E_SUCCESS)
        return "no CRL number";
    size_t i = 0;
    while (i < len && buf[i] == 0)
        i++;
    if (len - i > 8 || (len - i == 8 && (buf[i] & 0x80)))
        return "CRL number over 63 bits";
    uint64_t v = 0;
    for (; i < len; i++)
        v = (v << 8) | buf[i];
    *out = v;
    return NULL;
}

static const char *read_entries(gnutls_x509_crl_t x, tb_crl *c)
{
    int count = gnutls_x509_crl_get_crt_count(x);
    if (count < 0)
        return "unreadable entries";
    if ((size_t)count > TB_CRL_MAX_ENTRIES)
        return "too many entries";
    c->entries = calloc(count ? (size_t)count : 1, sizeof(*c->entries));
    if (!c->entries)
        return "out of memory";
    for (int i = 0; i < count; i++) {
        tb_crl_entry *e = &c->entries[i];
        time_t when = 0;
        e->serial_len = sizeof(e->serial);
        if (gnutls_x509_crl_get_crt_serial(x, (unsigned)i, e->serial, &e->serial_len, &when) !=
                GNUTLS_E_SUCCESS ||
            e->serial_len == 0)
            return "unreadable or over-long serial number in an entry";
        e->revoked_at = (int64_t)when;
    }
    c->n = (size_t)count;
    return NULL;
}

/* Issued by ca and signed by its key. The CRL's own dates are not checked (crl.h): GnuTLS
 * judges them even with time checks disabled, so those bits (and the INVALID they bring) are
 * taken out; any other problem (signature, signer, algorithm) stays a refusal. */
static int signed_by(gnutls_x509_crl_t x, const tb_ca *ca)
{
    unsigned status = 0;
    const unsigned flags =
        GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS;
    const unsigned dates =
        GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED | GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE;
    gnutls_x509_crt_t cas[1] = {ca->cert};
    if (!gnutls_x509_crl_check_issuer(x, ca->cert) ||
        gnutls_x509_crl_verify(x, cas, 1, flags, &status) != GNUTLS_E_SUCCESS)
        return 0;
    if (status & dates)
        status &= ~(dates | GNUTLS_CERT_INVALID);
    return status == 0;
}

static int check(gnutls_x509_crl_t x, const tb_ca *ca, tb_crl *c, const char **why)
{
    if (gnutls_x509_crl_get_version(x) != 2) {
        *why = "not an X.509 v2 CRL";
        return TB_ERR_INVAL;
    }
    if (!signed_by(x, ca)) {
        *why = "not signed by the mesh CA";
        return TB_ERR_VERIFY;
    }
    if ((*why = read_number(x, &c->number)) != NULL)
        return TB_ERR_INVAL;
    time_t tu = gnutls_x509_crl_get_this_update(x);
    if (tu == (time_t)-1) {
        *why = "unreadable thisUpdate";
        return TB_ERR_INVAL;
    }
    c->this_update = (int64_t)tu;
    if ((*why = read_entries(x, c)) != NULL)
        return TB_ERR_INVAL;
    return TB_OK;
}

int tb_crl_from_der(const tb_ca *ca, const uint8_t *der, size_t len, tb_crl **out, const char **why)
{
    const char *reason = NULL;
    if (!why)
        why = &reason;
    *why = NULL;
    if (!der || len == 0 || len > TB_CRL_MAX_DER) {
        *why = len ? "over the size limit" : "empty";
        return len ? TB_ERR_TOO_BIG : TB_ERR_MALFORMED;
    }
    gnutls_x509_crl_t x = NULL;
    if (gnutls_x509_crl_init(&x) != GNUTLS_E_SUCCESS)
        return TB_ERR_NOMEM;
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)der, (unsigned)len};
    tb_crl *c = calloc(1, sizeof(*c));
    int rc = c ? TB_OK : TB_ERR_NOMEM;
    if (rc == TB_OK && gnutls_x509_crl_import(x, &d, GNUTLS_X509_FMT_DER) != GNUTLS_E_SUCCESS) {
        *why = "not a DER X.509 CRL";
        rc = TB_ERR_MALFORMED;
    }
    if (rc == TB_OK)
        rc = check(x, ca, c, why);
    if (rc == TB_OK && !(c->der = malloc(len)))
        rc = TB_ERR_NOMEM;
    gnutls_x509_crl_deinit(x);
    if (rc != TB_OK) {
        tb_crl_free(c);
        return rc;
    }
    memcpy(c->der, der, len);
    c->der_len = len;
    *out = c;
    return TB_OK;
}

/* The file's bytes as DER: PEM is decoded, anything else is taken as DER. */
static int file_der(const char *buf, size_t len, gnutls_datum_t *der)
{
    if (!strstr(buf, "-----BEGIN X509 CRL-----")) {
        der->data = gnutls_malloc(len ? len : 1);
        if (!der->data)
            return TB_ERR_NOMEM;
        memcpy(der->data, buf, len);
        der->size = (unsigned)len;
        return TB_OK;
    }
    gnutls_datum_t pem = {(unsigned char *)(uintptr_t)buf, (unsigned)len};
    return gnutls_pem_base64_decode2("X509 CRL", &pem, der) == GNUTLS_E_SUCCESS ? TB_OK
                                                                                : TB_ERR_MALFORMED;
}

int tb_crl_from_file(const tb_ca *ca, const char *path, tb_crl **out, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = tb_cert_file_read(path, 2 * TB_CRL_MAX_DER, &buf, &len, err, errlen);
    if (rc != TB_OK)
        return rc;
    gnutls_datum_t der = {NULL, 0};
    rc = file_der(buf, len, &der);
    tb_cert_file_free(buf, len);
    if (rc != TB_OK) {
        gnutls_free(der.data);
        return tb_cert_fail(rc, err, errlen, "%s: not a PEM X509 CRL", path);
    }
    const char *why = NULL;
    rc = tb_crl_from_der(ca, der.data, der.size, out, &why);
    gnutls_free(der.data);
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "%s: %s", path, why ? why : tb_strerror(rc));
    return TB_OK;
}

uint64_t tb_crl_number(const tb_crl *c)
{
    return c->number;
}

int64_t tb_crl_this_update(const tb_crl *c)
{
    return c->this_update;
}

size_t tb_crl_count(const tb_crl *c)
{
    return c->n;
}

const tb_crl_entry *tb_crl_entries(const tb_crl *c)
{
    return c->entries;
}

const uint8_t *tb_crl_der(const tb_crl *c, size_t *len)
{
    *len = c->der_len;
    return c->der;
}

/* Serials compare as integers: a leading zero octet (kept by DER for a set high bit) does not
 * make two serials differ. */
static void strip(const uint8_t **p, size_t *len)
{
    while (*len > 1 && (*p)[0] == 0) {
        (*p)++;
        (*len)--;
    }
}

int tb_crl_lists(const tb_crl *c, const uint8_t *serial, size_t serial_len)
{
    if (!c || serial_len == 0)
        return 0;
    strip(&serial, &serial_len);
    for (size_t i = 0; i < c->n; i++) {
        const uint8_t *s = c->entries[i].serial;
        size_t n = c->entries[i].serial_len;
        strip(&s, &n);
        if (n == serial_len && memcmp(s, serial, n) == 0)
            return 1;
    }
    return 0;
}

int tb_crl_lists_cert(const tb_crl *c, const uint8_t *der, size_t len)
{
    tb_cert_identity id;
    if (!c || tb_cert_identity_from_der(der, len, &id) != TB_OK)
        return 0;
    return tb_crl_lists(c, id.serial, id.serial_len);
}
