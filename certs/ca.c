/* The mesh CA: building certificates to the profile of adr/0004 with OpenSSL (tbcert only).
 * Verifying them is verify.c's (GnuTLS, what the node links); saving the files is store.c's. */
#include <arpa/inet.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "certs/ca.h"
#include "certs/issuer.h"

/* What build_cert needs: issuer NULL means self-signed. */
typedef struct tb_cert_template {
    X509 *issuer;
    X509_NAME *subject;
    EVP_PKEY *pubkey, *signer;
    GENERAL_NAMES *sans;
    int64_t not_before, not_after;
    int is_ca;
    tb_cert_role role;
} tb_cert_template;

int tb_cert_key_type_parse(const char *s, tb_cert_key_type *out)
{
    if (s && strcmp(s, "ed25519") == 0)
        *out = TB_CERT_KEY_ED25519;
    else if (s && strcmp(s, "p256") == 0)
        *out = TB_CERT_KEY_P256;
    else
        return TB_ERR_INVAL;
    return TB_OK;
}

X509 *tb_ca_x509(const tb_ca *ca)
{
    const unsigned char *p = ca->der;
    return d2i_X509(NULL, &p, (long)ca->der_len);
}

EVP_PKEY *tb_ca_pkey(const tb_ca *ca)
{
    const unsigned char *p = ca->key;
    return ca->key ? d2i_AutoPrivateKey(NULL, &p, (long)ca->key_len) : NULL;
}

int tb_cert_x509_der(X509 *x, uint8_t **der, size_t *len)
{
    unsigned char *buf = NULL;
    int n = x ? i2d_X509(x, &buf) : -1;
    if (n <= 0)
        return TB_ERR_CRYPTO;
    *der = buf;
    *len = (size_t)n;
    return TB_OK;
}

int tb_cert_x509_identity(X509 *x, tb_cert_identity *out, const char **why)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (why)
        *why = "cannot encode the certificate";
    int rc = tb_cert_x509_der(x, &der, &len);
    if (rc == TB_OK)
        rc = tb_cert_der_identity(der, len, out, why);
    OPENSSL_free(der);
    return rc;
}

void tb_node_cert_free(tb_node_cert *n)
{
    if (!n)
        return;
    X509_free(n->cert);
    EVP_PKEY_free(n->key);
    OPENSSL_free(n);
}

static EVP_PKEY *generate_key(tb_cert_key_type type)
{
    if (type == TB_CERT_KEY_P256)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

/* 128 random bits; a BIGNUM from bytes is never negative. */
static int set_serial(X509 *x)
{
    unsigned char r[16];
    BIGNUM *bn = NULL;
    int ok = 0;
    do {
        BN_free(bn);
        bn = RAND_bytes(r, sizeof(r)) == 1 ? BN_bin2bn(r, sizeof(r), NULL) : NULL;
    } while (bn && BN_is_zero(bn));
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        ok = 1;
    BN_free(bn);
    return ok;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int add_profile_exts(X509 *x, X509 *issuer, int is_ca, tb_cert_role role)
{
    if (is_ca)
        return add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE") &&
               add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign") &&
               add_ext(x, NULL, NID_subject_key_identifier, "hash") &&
               add_ext(x, NULL, NID_authority_key_identifier, "keyid:always");
    return add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
           add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") &&
           add_ext(x, issuer, NID_ext_key_usage,
                   role == TB_CERT_ROLE_OPERATOR ? "clientAuth" : "serverAuth,clientAuth") &&
           add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
           add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
}

static int sign_cert(X509 *x, EVP_PKEY *key)
{
    /* Ed25519 signs the message itself and takes no digest. */
    const EVP_MD *md = EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256();
    return X509_sign(x, key, md) > 0;
}

static int set_validity(X509 *x, int64_t not_before, int64_t not_after)
{
    return ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) &&
           ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after);
}

/* Builds and signs a certificate. issuer NULL means self-signed by key. sans may be NULL. */
static X509 *build_cert(const tb_cert_template *t)
{
    X509 *x = X509_new();
    X509_NAME *issuer_name = t->issuer ? X509_get_subject_name(t->issuer) : t->subject;
    int ok = x && X509_set_version(x, X509_VERSION_3) && set_serial(x) &&
             X509_set_subject_name(x, t->subject) && X509_set_issuer_name(x, issuer_name) &&
             set_validity(x, t->not_before, t->not_after) && X509_set_pubkey(x, t->pubkey) &&
             add_profile_exts(x, t->issuer, t->is_ca, t->role);
    if (ok && t->sans)
        ok = X509_add1_ext_i2d(x, NID_subject_alt_name, t->sans, 0, X509V3_ADD_DEFAULT) == 1;
    if (ok)
        ok = sign_cert(x, t->signer);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static X509_NAME *make_subject(const char *cn, const char *org)
{
    X509_NAME *name = X509_NAME_new();
    const unsigned char *c = (const unsigned char *)cn, *o = (const unsigned char *)org;
    if (name && X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, c, -1, -1, 0) &&
        X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8, o, -1, -1, 0))
        return name;
    X509_NAME_free(name);
    return NULL;
}

static int check_times(int64_t not_before, int64_t not_after)
{
    /* 1950..9999 is what X.509 time fields can say. */
    const int64_t lo = -631152000LL, hi = 253402300799LL;
    return not_before >= lo && not_after <= hi && not_before < not_after;
}

/* The CA of internal.h from what OpenSSL built: the certificate and the key as PKCS#8 DER. */
static int ca_from_x509(X509 *cert, EVP_PKEY *key, tb_ca **out)
{
    uint8_t *der = NULL;
    unsigned char *kder = NULL;
    size_t len = 0;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    int klen = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &kder) : -1;
    int rc = klen > 0 ? tb_cert_x509_der(cert, &der, &len) : TB_ERR_CRYPTO;
    if (rc == TB_OK)
        rc = tb_ca_from_der(der, len, kder, (size_t)klen, out, NULL);
    OPENSSL_free(der);
    if (kder) {
        sodium_memzero(kder, (size_t)klen);
        OPENSSL_free(kder);
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    return rc;
}

int tb_ca_create(const char *mesh, int64_t not_before, int64_t not_after, tb_ca **out)
{
    if (!tb_cert_name_valid(mesh) || !check_times(not_before, not_after))
        return TB_ERR_INVAL;
    char cn[80];
    /* The space keeps the CA's subject apart from any node's (node names have none). */
    snprintf(cn, sizeof(cn), "%s CA", mesh);
    EVP_PKEY *key = generate_key(TB_CERT_KEY_ED25519);
    X509_NAME *subject = make_subject(cn, mesh);
    X509 *cert = NULL;
    if (key && subject) {
        tb_cert_template t = {.subject = subject,
                              .pubkey = key,
                              .signer = key,
                              .not_before = not_before,
                              .not_after = not_after,
                              .is_ca = 1};
        cert = build_cert(&t);
    }
    int rc = cert ? ca_from_x509(cert, key, out) : TB_ERR_CRYPTO;
    X509_NAME_free(subject);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc == TB_OK ? TB_OK : TB_ERR_CRYPTO;
}

/* A DNS SAN: labels of 1-63 letters, digits and hyphens, not at either end; 253 at most. */
static int dns_name_valid(const char *s)
{
    size_t len = strnlen(s, 254), label = 0;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c == '-' && label > 0);
        if (!ok)
            return 0;
        label++;
    }
    return 1;
}

static int push_ia5(GENERAL_NAMES *gens, int type, const char *prefix, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    char buf[320];
    int n = snprintf(buf, sizeof(buf), "%s%s", prefix, value);
    if (g && s && n > 0 && (size_t)n < sizeof(buf) && ASN1_STRING_set(s, buf, n)) {
        GENERAL_NAME_set0_value(g, type, s);
        if (sk_GENERAL_NAME_push(gens, g))
            return 1;
        s = NULL; /* now owned by g */
    }
    ASN1_IA5STRING_free(s);
    GENERAL_NAME_free(g);
    return 0;
}

static int push_ip(GENERAL_NAMES *gens, const char *ip)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OCTET_STRING *os = a2i_IPADDRESS(ip);
    if (g && os) {
        GENERAL_NAME_set0_value(g, GEN_IPADD, os);
        if (sk_GENERAL_NAME_push(gens, g))
            return 1;
        os = NULL;
    }
    ASN1_OCTET_STRING_free(os);
    GENERAL_NAME_free(g);
    return 0;
}

static int check_request(const tb_cert_request *req, char *err, size_t errlen)
{
    const char *rule = "must be 1-63 of [a-z0-9-], starting with a letter or digit";
    int op = req->role == TB_CERT_ROLE_OPERATOR;
    if (req->role != TB_CERT_ROLE_NODE && !op)
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "unknown certificate role");
    if (!tb_cert_name_valid(req->name))
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "%s name \"%s\": %s",
                            op ? "operator" : "node", req->name ? req->name : "", rule);
    if (op && ((req->region && req->region[0]) || req->n_ips || req->n_dns))
        return tb_cert_fail(TB_ERR_INVAL, err, errlen,
                            "an operator certificate has no region, IP or DNS name");
    if (!op && !tb_cert_name_valid(req->region))
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "region \"%s\": %s",
                            req->region ? req->region : "", rule);
    if (req->n_ips > TB_CERT_MAX_SANS || req->n_dns > TB_CERT_MAX_SANS)
        return tb_cert_fail(TB_ERR_TOO_BIG, err, errlen, "more than %d IP or DNS names",
                            TB_CERT_MAX_SANS);
    unsigned char addr[16];
    for (size_t i = 0; i < req->n_ips; i++) {
        const char *ip = req->ips[i];
        if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)
            return tb_cert_fail(TB_ERR_INVAL, err, errlen,
                                "IP address \"%s\": not an IPv4 or IPv6 address", ip);
    }
    for (size_t i = 0; i < req->n_dns; i++) {
        if (!dns_name_valid(req->dns[i]))
            return tb_cert_fail(TB_ERR_INVAL, err, errlen, "DNS name \"%s\": not a host name",
                                req->dns[i]);
    }
    if (!check_times(req->not_before, req->not_after))
        return tb_cert_fail(TB_ERR_INVAL, err, errlen,
                            "validity: not_before must precede "
                            "not_after, both in years 1950-9999");
    return TB_OK;
}

static GENERAL_NAMES *make_sans(const tb_cert_request *req)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (req->role == TB_CERT_ROLE_OPERATOR) {
        if (gens && push_ia5(gens, GEN_URI, TB_CERT_URI_OPERATOR, req->name))
            return gens;
        GENERAL_NAMES_free(gens);
        return NULL;
    }
    int ok = gens && push_ia5(gens, GEN_DNS, "", req->name) &&
             push_ia5(gens, GEN_URI, TB_CERT_URI_NODE, req->name) &&
             push_ia5(gens, GEN_URI, TB_CERT_URI_REGION, req->region);
    for (size_t i = 0; ok && i < req->n_dns; i++)
        ok = push_ia5(gens, GEN_DNS, "", req->dns[i]);
    for (size_t i = 0; ok && i < req->n_ips; i++)
        ok = push_ip(gens, req->ips[i]);
    if (!ok) {
        GENERAL_NAMES_free(gens);
        return NULL;
    }
    return gens;
}

/* Signs a node certificate for key with the given subject and SANs. */
static int sign_node(const tb_ca *ca, tb_cert_role role, EVP_PKEY *key, X509_NAME *subject,
                     GENERAL_NAMES *sans, int64_t not_before, int64_t not_after, tb_node_cert **out)
{
    X509 *issuer = tb_ca_x509(ca);
    EVP_PKEY *signer = tb_ca_pkey(ca);
    tb_cert_template t = {.issuer = issuer,
                          .subject = subject,
                          .pubkey = key,
                          .signer = signer,
                          .sans = sans,
                          .not_before = not_before,
                          .not_after = not_after,
                          .is_ca = 0,
                          .role = role};
    X509 *x = issuer && signer ? build_cert(&t) : NULL;
    X509_free(issuer);
    EVP_PKEY_free(signer);
    tb_node_cert *n = x ? OPENSSL_zalloc(sizeof(*n)) : NULL;
    if (!n || !EVP_PKEY_up_ref(key)) {
        X509_free(x);
        OPENSSL_free(n);
        return TB_ERR_CRYPTO;
    }
    n->cert = x;
    n->key = key;
    n->role = role;
    *out = n;
    return TB_OK;
}

int tb_ca_issue(const tb_ca *ca, const tb_cert_request *req, tb_node_cert **out, char *err,
                size_t errlen)
{
    int rc = check_request(req, err, errlen);
    if (rc != TB_OK)
        return rc;
    if (!ca->key)
        return tb_cert_fail(TB_ERR_STATE, err, errlen, "CA loaded without its key");
    EVP_PKEY *key = generate_key(req->key_type);
    X509_NAME *subject = make_subject(req->name, ca->mesh);
    GENERAL_NAMES *sans = make_sans(req);
    rc = TB_ERR_CRYPTO;
    if (key && subject && sans)
        rc = sign_node(ca, req->role, key, subject, sans, req->not_before, req->not_after, out);
    EVP_PKEY_free(key);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(sans);
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "cannot build the certificate");
    return TB_OK;
}

static int issued_by(X509 *cert, const tb_ca *ca)
{
    X509 *x = tb_ca_x509(ca);
    int ok =
        x && X509_check_issued(x, cert) == X509_V_OK && X509_verify(cert, X509_get0_pubkey(x)) == 1;
    X509_free(x);
    return ok;
}

int tb_ca_renew(const tb_ca *ca, const tb_node_cert *old, int64_t not_before, int64_t not_after,
                tb_node_cert **out, char *err, size_t errlen)
{
    tb_cert_identity id;
    const char *why = NULL;
    if (!ca->key)
        return tb_cert_fail(TB_ERR_STATE, err, errlen, "CA loaded without its key");
    if (tb_cert_x509_identity(old->cert, &id, &why) != TB_OK)
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "not a tbmesh certificate: %s", why);
    if (id.is_ca)
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "a CA certificate, not a node's");
    if (!issued_by(old->cert, ca))
        return tb_cert_fail(TB_ERR_VERIFY, err, errlen, "not issued by this CA");
    if (!check_times(not_before, not_after))
        return tb_cert_fail(TB_ERR_INVAL, err, errlen, "validity: bad dates");
    GENERAL_NAMES *sans = X509_get_ext_d2i(old->cert, NID_subject_alt_name, NULL, NULL);
    int rc = TB_ERR_CRYPTO;
    if (sans)
        rc = sign_node(ca, TB_CERT_ROLE_NODE, old->key, X509_get_subject_name(old->cert), sans,
                       not_before, not_after, out);
    GENERAL_NAMES_free(sans);
    if (rc != TB_OK)
        return tb_cert_fail(rc, err, errlen, "cannot build the certificate");
    return TB_OK;
}

static int x509_der(X509 *x, uint8_t *der, size_t cap, size_t *len)
{
    int n = i2d_X509(x, NULL);
    if (n <= 0 || (size_t)n > cap)
        return TB_ERR_TOO_BIG;
    unsigned char *p = der;
    *len = (size_t)i2d_X509(x, &p);
    return TB_OK;
}

int tb_node_cert_der(const tb_node_cert *n, uint8_t *der, size_t cap, size_t *len)
{
    return x509_der(n->cert, der, cap, len);
}

int tb_node_cert_pubkey_der(const tb_node_cert *n, uint8_t *der, size_t cap, size_t *len)
{
    int size = i2d_PUBKEY(n->key, NULL);
    if (size <= 0 || (size_t)size > cap)
        return TB_ERR_TOO_BIG;
    unsigned char *p = der;
    *len = (size_t)i2d_PUBKEY(n->key, &p);
    return TB_OK;
}
