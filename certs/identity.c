/* Reading a node identity out of a certificate, checked against the profile of adr/0004. On
 * GnuTLS, which the node links for QUIC anyway, so tbnode maps no second X.509 library. */
#include <arpa/inet.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509-ext.h>
#include <gnutls/x509.h>

#include "certs/identity.h"
#include "certs/internal.h"
#include "common/name.h"

#define OID_SAN "2.5.29.17"
/* Ours carry five; more is no certificate of ours, and bounds the duplicate check. */
#define MAX_EXTENSIONS 32

int tb_cert_name_valid(const char *s)
{
    return s && tb_name_valid(s, strnlen(s, TB_NAME_MAX + 1));
}

/* The one value of a subject attribute that must appear exactly once, as a valid name. */
static int subject_name(gnutls_x509_crt_t x, const char *oid, char out[64])
{
    char buf[TB_NAME_MAX + 2], extra[8];
    size_t n = sizeof(buf), m = sizeof(extra);
    if (gnutls_x509_crt_get_dn_by_oid(x, oid, 0, 0, buf, &n) != GNUTLS_E_SUCCESS ||
        gnutls_x509_crt_get_dn_by_oid(x, oid, 1, 0, extra, &m) !=
            GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
        !tb_name_valid(buf, n))
        return 0;
    memcpy(out, buf, n);
    out[n] = '\0';
    return 1;
}

static const char key_unsupported[] = "key type is neither Ed25519 nor P-256";

static const char *read_key(gnutls_x509_crt_t x, tb_cert_identity *out)
{
    int alg = gnutls_x509_crt_get_pk_algorithm(x, NULL);
    if (alg != GNUTLS_PK_EDDSA_ED25519 && alg != GNUTLS_PK_ECDSA)
        return alg < 0 ? "unreadable public key" : key_unsupported;
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t px = {0}, py = {0};
    if (gnutls_x509_crt_get_pk_ecc_raw(x, &curve, &px, &py) != GNUTLS_E_SUCCESS)
        return "unreadable public key";
    const char *why = NULL;
    if (alg == GNUTLS_PK_EDDSA_ED25519 && curve == GNUTLS_ECC_CURVE_ED25519 && px.size == 32) {
        memcpy(out->ed25519_pub, px.data, 32);
        strcpy(out->key_type, "ed25519");
    } else if (alg == GNUTLS_PK_ECDSA && curve == GNUTLS_ECC_CURVE_SECP256R1) {
        strcpy(out->key_type, "p256");
    } else {
        why = alg == GNUTLS_PK_ECDSA ? key_unsupported : "bad Ed25519 public key";
    }
    gnutls_free(px.data);
    gnutls_free(py.data);
    return why;
}

/* Takes the name after prefix from a URI SAN, counting how often the prefix appears. */
static const char *match_uri(const gnutls_datum_t *uri, const char *prefix, char out[64],
                             int *count)
{
    const char *p = (const char *)uri->data;
    size_t len = uri->size, plen = strlen(prefix);
    if (len < plen || memcmp(p, prefix, plen) != 0)
        return NULL;
    if (++*count > 1)
        return "more than one node or region URI";
    if (!tb_name_valid(p + plen, len - plen))
        return "invalid node or region name in URI";
    memcpy(out, p + plen, len - plen);
    out[len - plen] = '\0';
    return NULL;
}

/* The subjectAltName extension, which must appear once; NULL and *why when it cannot. */
static gnutls_subject_alt_names_t read_sans(gnutls_x509_crt_t x, const char **why)
{
    gnutls_datum_t ext = {0}, again = {0};
    unsigned crit = 0;
    int rv = gnutls_x509_crt_get_extension_by_oid2(x, OID_SAN, 0, &ext, &crit);
    if (rv != GNUTLS_E_SUCCESS) {
        *why = rv == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ? "no subjectAltName"
                                                           : "bad or repeated subjectAltName";
        return NULL;
    }
    gnutls_subject_alt_names_t sans = NULL;
    int repeated = gnutls_x509_crt_get_extension_by_oid2(x, OID_SAN, 1, &again, &crit) !=
                   GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
    if (repeated || gnutls_subject_alt_names_init(&sans) != GNUTLS_E_SUCCESS ||
        gnutls_x509_ext_import_subject_alt_names(&ext, sans, 0) != GNUTLS_E_SUCCESS) {
        if (sans)
            gnutls_subject_alt_names_deinit(sans);
        sans = NULL;
        *why = "bad or repeated subjectAltName";
    }
    gnutls_free(ext.data);
    gnutls_free(again.data);
    return sans;
}

/* The node, region and operator URIs (counts in n[0..2]); names into out. */
static const char *read_uris(gnutls_x509_crt_t x, tb_cert_identity *out, int n[3])
{
    const char *why = NULL;
    gnutls_subject_alt_names_t sans = read_sans(x, &why);
    if (!sans)
        return why;
    char op[64];
    unsigned type = 0;
    gnutls_datum_t san = {0};
    for (unsigned i = 0; !why && gnutls_subject_alt_names_get(sans, i, &type, &san, NULL) >= 0;
         i++) {
        if (type != GNUTLS_SAN_URI)
            continue;
        why = match_uri(&san, TB_CERT_URI_NODE, out->name, &n[0]);
        if (!why)
            why = match_uri(&san, TB_CERT_URI_REGION, out->region, &n[1]);
        if (!why)
            why = match_uri(&san, TB_CERT_URI_OPERATOR, op, &n[2]);
    }
    gnutls_subject_alt_names_deinit(sans);
    if (!why && n[2] == 1 && n[0] == 0)
        memcpy(out->name, op, sizeof(op));
    return why;
}

static const char *read_node_uris(gnutls_x509_crt_t x, tb_cert_identity *out)
{
    int n[3] = {0};
    const char *why = read_uris(x, out, n);
    /* An operator may query a node (adr/0013) but is never a mesh member. */
    if (!why && n[2] != 0)
        why = "an operator certificate, not a node's";
    if (!why && n[0] != 1)
        why = "no node URI";
    if (!why && n[1] != 1)
        why = "no region URI";
    return why;
}

/* Which of serverAuth (bit 0) and clientAuth (bit 1) the extendedKeyUsage lists. */
static unsigned tls_purposes(gnutls_x509_crt_t x)
{
    unsigned found = 0;
    for (unsigned i = 0; i < MAX_EXTENSIONS * 4; i++) {
        char oid[128];
        size_t n = sizeof(oid);
        int rv = gnutls_x509_crt_get_key_purpose_oid(x, i, oid, &n, NULL);
        if (rv == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue; /* an OID this long is neither */
        if (rv != GNUTLS_E_SUCCESS)
            break;
        found |= strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER) == 0 ? 1u : 0u;
        found |= strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0 ? 2u : 0u;
    }
    return found;
}

static const char *check_node(gnutls_x509_crt_t x, tb_cert_identity *out)
{
    const char *why = read_node_uris(x, out);
    if (why)
        return why;
    char cn_name[64];
    if (!subject_name(x, GNUTLS_OID_X520_COMMON_NAME, cn_name) || strcmp(cn_name, out->name) != 0)
        return "subject CN is not the node name";
    if (tls_purposes(x) != 3)
        return "extendedKeyUsage lacks serverAuth or clientAuth";
    return NULL;
}

/* An operator (adr/0004): one operator URI and no node or region URI, CN the operator name,
 * clientAuth without serverAuth (it dials, it never serves). */
static const char *check_operator(gnutls_x509_crt_t x, tb_cert_identity *out)
{
    int n[3] = {0};
    const char *why = read_uris(x, out, n);
    if (!why && (n[2] != 1 || n[0] != 0 || n[1] != 0))
        why = "not an operator certificate (needs one operator URI and no node URI)";
    if (why)
        return why;
    char cn_name[64];
    if (!subject_name(x, GNUTLS_OID_X520_COMMON_NAME, cn_name) || strcmp(cn_name, out->name) != 0)
        return "subject CN is not the operator name";
    if (tls_purposes(x) != 2)
        return "extendedKeyUsage of an operator must be clientAuth alone";
    out->is_operator = 1;
    return NULL;
}

static const char *check_ca(gnutls_x509_crt_t x, tb_cert_identity *out)
{
    if (!subject_name(x, GNUTLS_OID_X520_ORGANIZATION_NAME, out->name))
        return "CA subject O is not a valid mesh name";
    return NULL;
}

/* Every extension once, and basicConstraints (when present) readable. */
static const char *check_extensions(gnutls_x509_crt_t x, int *is_ca)
{
    char oids[MAX_EXTENSIONS][128];
    unsigned i = 0;
    for (;; i++) {
        size_t n = sizeof(oids[0]);
        int rv = i < MAX_EXTENSIONS ? gnutls_x509_crt_get_extension_info(x, i, oids[i], &n, NULL)
                                    : GNUTLS_E_SUCCESS;
        if (rv == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (rv != GNUTLS_E_SUCCESS || i == MAX_EXTENSIONS)
            return "malformed or repeated extension";
        for (unsigned j = 0; j < i; j++)
            if (strcmp(oids[j], oids[i]) == 0)
                return "malformed or repeated extension";
    }
    unsigned crit = 0, ca = 0;
    int pathlen = -1;
    int rv = gnutls_x509_crt_get_basic_constraints(x, &crit, &ca, &pathlen);
    if (rv < 0 && rv != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return "malformed or repeated extension";
    *is_ca = rv >= 0 && ca;
    return NULL;
}

static const char *read_identity(gnutls_x509_crt_t x, const uint8_t *der, size_t len, int operator,
                                 tb_cert_identity * out)
{
    memset(out, 0, sizeof(*out));
    const char *why = check_extensions(x, &out->is_ca);
    if (why)
        return why;
    if (gnutls_x509_crt_get_version(x) != 3)
        return "not an X.509 v3 certificate";
    time_t nb = gnutls_x509_crt_get_activation_time(x);
    time_t na = gnutls_x509_crt_get_expiration_time(x);
    if (nb == (time_t)-1 || na == (time_t)-1)
        return "unreadable validity";
    out->not_before = (int64_t)nb;
    out->not_after = (int64_t)na;
    out->serial_len = sizeof(out->serial);
    if (gnutls_x509_crt_get_serial(x, out->serial, &out->serial_len) != GNUTLS_E_SUCCESS)
        return "unreadable or over-long serial number";
    why = read_key(x, out);
    if (why)
        return why;
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, out->fingerprint) != GNUTLS_E_SUCCESS)
        return "cannot hash certificate";
    if (operator)
        return out->is_ca ? "a CA certificate, not an operator's" : check_operator(x, out);
    return out->is_ca ? check_ca(x, out) : check_node(x, out);
}

/* 1 when der is one DER value (a SEQUENCE, definite minimal length) filling all len bytes: a
 * peer's certificate with bytes after it is refused, not half-read. */
static int one_der_sequence(const uint8_t *der, size_t len)
{
    if (len < 2 || der[0] != 0x30)
        return 0;
    size_t body = der[1], head = 2;
    if (body & 0x80) {
        size_t nlen = body & 0x7f;
        if (nlen == 0 || nlen > 3 || len < 2 + nlen || der[2] == 0)
            return 0;
        body = 0;
        for (size_t i = 0; i < nlen; i++)
            body = (body << 8) | der[2 + i];
        if (body < 0x80)
            return 0;
        head += nlen;
    }
    return len - head == body;
}

int tb_cert_crt_from_der(const uint8_t *der, size_t len, gnutls_x509_crt_t *out)
{
    if (!der || len == 0 || len > TB_CERT_MAX_DER || !one_der_sequence(der, len))
        return len > TB_CERT_MAX_DER ? TB_ERR_TOO_BIG : TB_ERR_MALFORMED;
    gnutls_x509_crt_t x = NULL;
    if (gnutls_x509_crt_init(&x) != GNUTLS_E_SUCCESS)
        return TB_ERR_NOMEM;
    /* GnuTLS decodes certificates as strict DER, so the fingerprint of the bytes a peer sent is
     * the fingerprint every other reader computes. */
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)der, (unsigned)len};
    if (gnutls_x509_crt_import(x, &d, GNUTLS_X509_FMT_DER) != GNUTLS_E_SUCCESS) {
        gnutls_x509_crt_deinit(x);
        return TB_ERR_MALFORMED;
    }
    *out = x;
    return TB_OK;
}

static int der_identity(const uint8_t *der, size_t len, int operator, tb_cert_identity * out,
                        const char **why)
{
    gnutls_x509_crt_t x = NULL;
    int rc = tb_cert_crt_from_der(der, len, &x);
    if (rc != TB_OK) {
        if (why)
            *why = rc == TB_ERR_TOO_BIG ? "certificate too large" : "not a DER certificate";
        return rc;
    }
    const char *reason = read_identity(x, der, len, operator, out);
    gnutls_x509_crt_deinit(x);
    if (why)
        *why = reason;
    if (!reason)
        return TB_OK;
    memset(out, 0, sizeof(*out));
    return reason == key_unsupported ? TB_ERR_UNSUPPORTED : TB_ERR_INVAL;
}

int tb_cert_der_identity(const uint8_t *der, size_t len, tb_cert_identity *out, const char **why)
{
    return der_identity(der, len, 0, out, why);
}

int tb_cert_identity_from_der(const uint8_t *der, size_t len, tb_cert_identity *out)
{
    return der_identity(der, len, 0, out, NULL);
}

int tb_cert_operator_der(const uint8_t *der, size_t len, tb_cert_identity *out, const char **why)
{
    return der_identity(der, len, 1, out, why);
}

int tb_cert_pem_der(const char *pem, size_t n, uint8_t *der, size_t cap, size_t *len)
{
    gnutls_datum_t in = {(unsigned char *)(uintptr_t)pem, (unsigned)n}, out = {0};
    int ok = gnutls_pem_base64_decode2("CERTIFICATE", &in, &out) == GNUTLS_E_SUCCESS;
    gnutls_x509_crt_t x = NULL;
    int rc = ok ? tb_cert_crt_from_der(out.data, out.size, &x) : TB_ERR_MALFORMED;
    if (rc == TB_OK && out.size > cap)
        rc = TB_ERR_TOO_BIG;
    if (rc == TB_OK) {
        memcpy(der, out.data, out.size);
        *len = out.size;
    }
    gnutls_x509_crt_deinit(x);
    gnutls_free(out.data);
    return rc == TB_OK || rc == TB_ERR_TOO_BIG ? rc : TB_ERR_MALFORMED;
}

int tb_cert_read_pem_file(const char *path, uint8_t *der, size_t cap, size_t *len, char *err,
                          size_t errlen)
{
    char *pem = NULL;
    size_t n = 0;
    int rc = tb_cert_file_read(path, TB_CERT_MAX_PEM, &pem, &n, err, errlen);
    if (rc != TB_OK)
        return rc;
    rc = tb_cert_pem_der(pem, n, der, cap, len);
    tb_cert_file_free(pem, n);
    if (rc == TB_ERR_TOO_BIG)
        return tb_cert_fail(rc, err, errlen, "%s: certificate too large", path);
    if (rc != TB_OK)
        return tb_cert_fail(TB_ERR_MALFORMED, err, errlen,
                            "%s: not a PEM certificate (corrupt or wrong file)", path);
    return TB_OK;
}

int tb_cert_identity_from_pem_file(const char *path, tb_cert_identity *out, char *err,
                                   size_t errlen)
{
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    int rc = tb_cert_read_pem_file(path, der, sizeof(der), &len, err, errlen);
    if (rc != TB_OK)
        return rc;
    const char *why = NULL;
    rc = tb_cert_der_identity(der, len, out, &why);
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "%s: not a tbmesh certificate: %s", path, why);
    return TB_OK;
}

/* Appends to buf, replacing anything unprintable so a hostile SAN cannot forge output lines. */
static void append(char *buf, size_t buflen, size_t *used, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *used + 1 < buflen; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[(*used)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[*used] = '\0';
}

static void append_san(unsigned type, const gnutls_datum_t *v, char *buf, size_t buflen,
                       size_t *used)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const char *label = "other:";
    int text = 0;
    if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_URI) {
        label = type == GNUTLS_SAN_DNSNAME ? "DNS:" : "URI:";
        text = 1;
    } else if (type == GNUTLS_SAN_IPADDRESS) {
        label = "IP:";
        int af = v->size == 4 ? AF_INET : v->size == 16 ? AF_INET6 : 0;
        if (af)
            inet_ntop(af, v->data, ip, sizeof(ip));
    }
    append(buf, buflen, used, label, strlen(label));
    if (text)
        append(buf, buflen, used, (const char *)v->data, v->size);
    else if (type == GNUTLS_SAN_IPADDRESS)
        append(buf, buflen, used, ip, strlen(ip));
}

int tb_cert_san_text(const uint8_t *der, size_t len, char *buf, size_t buflen)
{
    if (!der || !buf || buflen == 0 || len > TB_CERT_MAX_DER)
        return TB_ERR_INVAL;
    buf[0] = '\0';
    gnutls_x509_crt_t x = NULL;
    int rc = tb_cert_crt_from_der(der, len, &x);
    if (rc != TB_OK)
        return rc;
    const char *why = NULL;
    gnutls_subject_alt_names_t sans = read_sans(x, &why);
    gnutls_x509_crt_deinit(x);
    size_t used = 0;
    unsigned type = 0;
    gnutls_datum_t v = {0};
    for (unsigned i = 0; sans && gnutls_subject_alt_names_get(sans, i, &type, &v, NULL) >= 0; i++) {
        if (i > 0)
            append(buf, buflen, &used, ", ", 2);
        append_san(type, &v, buf, buflen, &used);
    }
    if (sans)
        gnutls_subject_alt_names_deinit(sans);
    return TB_OK;
}
