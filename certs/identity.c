/* Reading a node identity out of a certificate, checked against the profile of adr/0004. */
#include <arpa/inet.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/identity.h"
#include "certs/internal.h"
#include "common/name.h"

int tb_cert_name_valid(const char *s)
{
    return s && tb_name_valid(s, strnlen(s, TB_NAME_MAX + 1));
}

/* Copies an ASN.1 string that must be a valid name into out (64 bytes). */
static int take_name(const ASN1_STRING *a, char out[64])
{
    const char *p = (const char *)ASN1_STRING_get0_data(a);
    int len = ASN1_STRING_length(a);
    if (len < 0 || !tb_name_valid(p, (size_t)len))
        return 0;
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    return 1;
}

/* The one value of an attribute that must appear exactly once in the subject. */
static const ASN1_STRING *subject_entry(X509 *x, int nid)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
        return NULL;
    return X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    int64_t days = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    *out = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return 1;
}

static const char key_unsupported[] = "key type is neither Ed25519 nor P-256";

static const char *read_key(X509 *x, tb_cert_identity *out)
{
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    if (!pkey)
        return "unreadable public key";
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        size_t n = sizeof(out->ed25519_pub);
        if (EVP_PKEY_get_raw_public_key(pkey, out->ed25519_pub, &n) != 1 || n != 32)
            return "bad Ed25519 public key";
        strcpy(out->key_type, "ed25519");
        return NULL;
    }
    char group[32];
    size_t glen = 0;
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
        strcmp(group, "prime256v1") == 0) {
        strcpy(out->key_type, "p256");
        return NULL;
    }
    return key_unsupported;
}

/* Takes the name after prefix from a URI SAN, counting how often the prefix appears. */
static const char *match_uri(const ASN1_IA5STRING *uri, const char *prefix, char out[64],
                             int *count)
{
    const char *p = (const char *)ASN1_STRING_get0_data(uri);
    int len = ASN1_STRING_length(uri);
    size_t plen = strlen(prefix);
    if (len < 0 || (size_t)len < plen || memcmp(p, prefix, plen) != 0)
        return NULL;
    if (++*count > 1)
        return "more than one node or region URI";
    if (!tb_name_valid(p + plen, (size_t)len - plen))
        return "invalid node or region name in URI";
    memcpy(out, p + plen, (size_t)len - plen);
    out[(size_t)len - plen] = '\0';
    return NULL;
}

static const char *read_node_uris(X509 *x, tb_cert_identity *out)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (!gens)
        return crit == -1 ? "no subjectAltName" : "bad or repeated subjectAltName";
    int nodes = 0, regions = 0;
    const char *why = NULL;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && !why; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        why = match_uri(g->d.uniformResourceIdentifier, TB_CERT_URI_NODE, out->name, &nodes);
        if (!why)
            why = match_uri(g->d.uniformResourceIdentifier, TB_CERT_URI_REGION, out->region,
                            &regions);
    }
    GENERAL_NAMES_free(gens);
    if (!why && nodes != 1)
        why = "no node URI";
    if (!why && regions != 1)
        why = "no region URI";
    return why;
}

static const char *check_node(X509 *x, tb_cert_identity *out)
{
    const char *why = read_node_uris(x, out);
    if (why)
        return why;
    const ASN1_STRING *cn = subject_entry(x, NID_commonName);
    char cn_name[64];
    if (!cn || !take_name(cn, cn_name) || strcmp(cn_name, out->name) != 0)
        return "subject CN is not the node name";
    uint32_t flags = X509_get_extension_flags(x);
    uint32_t need = XKU_SSL_SERVER | XKU_SSL_CLIENT;
    if (!(flags & EXFLAG_XKUSAGE) || (X509_get_extended_key_usage(x) & need) != need)
        return "extendedKeyUsage lacks serverAuth or clientAuth";
    return NULL;
}

static const char *check_ca(X509 *x, tb_cert_identity *out)
{
    const ASN1_STRING *o = subject_entry(x, NID_organizationName);
    if (!o || !take_name(o, out->name))
        return "CA subject O is not a valid mesh name";
    return NULL;
}

static const char *read_identity(X509 *x, tb_cert_identity *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t flags = X509_get_extension_flags(x);
    if (flags & EXFLAG_INVALID)
        return "malformed or repeated extension";
    if (X509_get_version(x) != X509_VERSION_3)
        return "not an X.509 v3 certificate";
    if (!asn1_time_unix(X509_get0_notBefore(x), &out->not_before) ||
        !asn1_time_unix(X509_get0_notAfter(x), &out->not_after))
        return "unreadable validity";
    const char *why = read_key(x, out);
    if (why)
        return why;
    unsigned n = 0;
    if (X509_digest(x, EVP_sha256(), out->fingerprint, &n) != 1 || n != 32)
        return "cannot hash certificate";
    out->is_ca = (flags & EXFLAG_CA) != 0;
    return out->is_ca ? check_ca(x, out) : check_node(x, out);
}

int tb_cert_x509_identity(X509 *x, tb_cert_identity *out, const char **why)
{
    const char *reason = read_identity(x, out);
    if (why)
        *why = reason;
    if (!reason)
        return TB_OK;
    memset(out, 0, sizeof(*out));
    return reason == key_unsupported ? TB_ERR_UNSUPPORTED : TB_ERR_INVAL;
}

/* Only strict DER is accepted, so the fingerprint of the bytes a peer sent is the fingerprint
 * every other reader computes. */
static int is_strict_der(X509 *x, const uint8_t *der, size_t len)
{
    unsigned char *enc = NULL;
    int n = i2d_X509(x, &enc);
    int same = n > 0 && (size_t)n == len && memcmp(enc, der, len) == 0;
    OPENSSL_free(enc);
    return same;
}

int tb_cert_der_identity(const uint8_t *der, size_t len, tb_cert_identity *out, const char **why)
{
    if (why)
        *why = "not a DER certificate";
    if (!der || len == 0)
        return TB_ERR_MALFORMED;
    if (len > TB_CERT_MAX_DER) {
        if (why)
            *why = "certificate too large";
        return TB_ERR_TOO_BIG;
    }
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        return TB_ERR_MALFORMED;
    int rc = TB_ERR_MALFORMED;
    if (p == der + len && is_strict_der(x, der, len))
        rc = tb_cert_x509_identity(x, out, why);
    else if (why)
        *why = "trailing bytes or non-DER encoding";
    X509_free(x);
    return rc;
}

int tb_cert_identity_from_der(const uint8_t *der, size_t len, tb_cert_identity *out)
{
    return tb_cert_der_identity(der, len, out, NULL);
}

int tb_cert_x509_from_pem_file(const char *path, X509 **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = tb_cert_file_read(path, TB_CERT_MAX_PEM, &pem, &len, err, errlen);
    if (rc != TB_OK)
        return rc;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(pem, len + 1);
    if (!x)
        return tb_cert_fail(TB_ERR_MALFORMED, err, errlen,
                            "%s: not a PEM certificate (corrupt or wrong file)", path);
    *out = x;
    return TB_OK;
}

int tb_cert_read_pem_file(const char *path, uint8_t *der, size_t cap, size_t *len, char *err,
                          size_t errlen)
{
    X509 *x = NULL;
    int rc = tb_cert_x509_from_pem_file(path, &x, err, errlen);
    if (rc != TB_OK)
        return rc;
    int n = i2d_X509(x, NULL);
    if (n <= 0 || (size_t)n > cap) {
        X509_free(x);
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "%s: certificate too large", path);
    }
    unsigned char *p = der;
    n = i2d_X509(x, &p);
    X509_free(x);
    *len = (size_t)n;
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

static void append_general_name(const GENERAL_NAME *g, char *buf, size_t buflen, size_t *used)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const ASN1_STRING *s = NULL;
    const char *label = "other:";
    if (g->type == GEN_DNS) {
        label = "DNS:";
        s = g->d.dNSName;
    } else if (g->type == GEN_URI) {
        label = "URI:";
        s = g->d.uniformResourceIdentifier;
    } else if (g->type == GEN_IPADD) {
        label = "IP:";
        int alen = ASN1_STRING_length(g->d.iPAddress);
        int af = alen == 4 ? AF_INET : alen == 16 ? AF_INET6 : 0;
        if (af)
            inet_ntop(af, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
    }
    append(buf, buflen, used, label, strlen(label));
    if (s)
        append(buf, buflen, used, (const char *)ASN1_STRING_get0_data(s),
               (size_t)ASN1_STRING_length(s));
    else if (g->type == GEN_IPADD)
        append(buf, buflen, used, ip, strlen(ip));
}

int tb_cert_san_text(const uint8_t *der, size_t len, char *buf, size_t buflen)
{
    if (!der || !buf || buflen == 0 || len > TB_CERT_MAX_DER)
        return TB_ERR_INVAL;
    buf[0] = '\0';
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        return TB_ERR_MALFORMED;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    X509_free(x);
    size_t used = 0;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        if (i > 0)
            append(buf, buflen, &used, ", ", 2);
        append_general_name(sk_GENERAL_NAME_value(gens, i), buf, buflen, &used);
    }
    GENERAL_NAMES_free(gens);
    return TB_OK;
}
