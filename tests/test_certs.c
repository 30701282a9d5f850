/* Unit tests of certs/: identity parsing and the profile checks, issue/renew/verify in process
 * for both key types, the verdicts (expired, not yet valid, foreign CA, bad signature), name
 * and request validation, and the files (modes, passphrase, no overwrite, key forms). Reading
 * and verifying is GnuTLS (tb_certs), issuing OpenSSL (tb_certs_ca): every certificate and key
 * read here was written by the other library. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/ca.h"
#include "certs/crl.h"
#include "certs/identity.h"
#include "tb_test.h"

#define DAY 86400
static const int64_t t0 = 1795000000; /* 2026-11-18, any fixed time works */

static tb_ca *make_ca_from(const char *mesh, int64_t not_before)
{
    tb_ca *ca = NULL;
    if (tb_ca_create(mesh, not_before, t0 + 3650 * (int64_t)DAY, &ca) != TB_OK)
        return NULL;
    return ca;
}

static tb_ca *make_ca(const char *mesh)
{
    return make_ca_from(mesh, t0 - DAY);
}

static tb_node_cert *issue(const tb_ca *ca, tb_cert_key_type type, int64_t nb, int64_t na)
{
    static const char *const ips[] = {"127.0.0.10", "::1"};
    static const char *const dns[] = {"node-a.example.net"};
    tb_cert_request req = {.name = "node-a",
                           .region = "eu-west",
                           .ips = ips,
                           .n_ips = 2,
                           .dns = dns,
                           .n_dns = 1,
                           .key_type = type,
                           .not_before = nb,
                           .not_after = na};
    tb_node_cert *n = NULL;
    char err[256];
    if (tb_ca_issue(ca, &req, &n, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "issue: %s\n", err);
        return NULL;
    }
    return n;
}

typedef struct der_buf {
    uint8_t b[TB_CERT_MAX_DER];
    size_t len;
} der_buf;

static tb_cert_verdict verdict_at(const tb_ca *ca, const der_buf *d, int64_t now)
{
    tb_cert_verdict v = TB_CERT_REJECTED;
    int rc = tb_ca_verify_der(ca, d->b, d->len, now, &v, NULL);
    TB_CHECK_EQ(rc == TB_OK, v == TB_CERT_OK);
    return v;
}

static void test_name_validation(void)
{
    char max[64], over[65];
    memset(max, 'a', 63);
    max[63] = '\0';
    memset(over, 'a', 64);
    over[64] = '\0';
    TB_CHECK(tb_cert_name_valid("a"));
    TB_CHECK(tb_cert_name_valid("node-1"));
    TB_CHECK(tb_cert_name_valid("0eu-west-"));
    TB_CHECK(tb_cert_name_valid(max));
    TB_CHECK(!tb_cert_name_valid(over));
    TB_CHECK(!tb_cert_name_valid(""));
    TB_CHECK(!tb_cert_name_valid(NULL));
    TB_CHECK(!tb_cert_name_valid("-a"));
    TB_CHECK(!tb_cert_name_valid("Node"));
    TB_CHECK(!tb_cert_name_valid("a_b"));
    TB_CHECK(!tb_cert_name_valid("a.b"));
    TB_CHECK(!tb_cert_name_valid("a b"));
}

static void check_issued_identity(tb_cert_key_type type, const char *type_name)
{
    tb_ca *ca = make_ca("mesh-1");
    TB_REQUIRE(ca);
    tb_node_cert *n = issue(ca, type, t0, t0 + 90 * DAY);
    TB_REQUIRE(n);
    der_buf d;
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    tb_cert_identity id;
    TB_REQUIRE(tb_cert_identity_from_der(d.b, d.len, &id) == TB_OK);
    TB_CHECK_STR(id.name, "node-a");
    TB_CHECK_STR(id.region, "eu-west");
    TB_CHECK_STR(id.key_type, type_name);
    TB_CHECK_EQ(id.is_ca, 0);
    TB_CHECK_EQ(id.not_before, t0);
    TB_CHECK_EQ(id.not_after, t0 + 90 * DAY);

    uint8_t fp[32];
    unsigned fplen = 0;
    TB_CHECK(EVP_Digest(d.b, d.len, fp, &fplen, EVP_sha256(), NULL) == 1);
    TB_CHECK_MEM(id.fingerprint, fp, 32);
    if (type == TB_CERT_KEY_ED25519) {
        /* An Ed25519 SubjectPublicKeyInfo is a 12-byte header and the raw 32-byte key. */
        uint8_t spki[128];
        size_t slen = 0;
        TB_CHECK(tb_node_cert_pubkey_der(n, spki, sizeof(spki), &slen) == TB_OK);
        TB_CHECK_EQ(slen, 44);
        TB_CHECK_MEM(id.ed25519_pub, spki + 12, 32);
    }
    tb_cert_identity vid;
    tb_cert_verdict v;
    TB_CHECK_EQ(tb_ca_verify_der(ca, d.b, d.len, t0 + DAY, &v, &vid), TB_OK);
    TB_CHECK_EQ(v, TB_CERT_OK);
    TB_CHECK_STR(vid.name, "node-a");

    char sans[512];
    TB_CHECK(tb_cert_san_text(d.b, d.len, sans, sizeof(sans)) == TB_OK);
    TB_CHECK_STR(sans, "DNS:node-a, URI:urn:tbmesh:node:node-a, URI:urn:tbmesh:region:eu-west, "
                       "DNS:node-a.example.net, IP:127.0.0.10, IP:::1");
    tb_node_cert_free(n);
    tb_ca_free(ca);
}

static void test_issue_verify_ed25519(void)
{
    check_issued_identity(TB_CERT_KEY_ED25519, "ed25519");
}

static void test_issue_verify_p256(void)
{
    check_issued_identity(TB_CERT_KEY_P256, "p256");
}

static void test_ca_identity(void)
{
    tb_ca *ca = make_ca("mesh-1");
    TB_REQUIRE(ca);
    der_buf d;
    TB_REQUIRE(tb_ca_cert_der(ca, d.b, sizeof(d.b), &d.len) == TB_OK);
    tb_cert_identity id;
    TB_REQUIRE(tb_cert_identity_from_der(d.b, d.len, &id) == TB_OK);
    TB_CHECK_EQ(id.is_ca, 1);
    TB_CHECK_STR(id.name, "mesh-1");
    TB_CHECK_STR(id.key_type, "ed25519");
    TB_CHECK_STR(tb_ca_mesh(ca), "mesh-1");
    TB_CHECK_EQ(id.not_after - id.not_before, 3651 * (int64_t)DAY);
    /* A CA certificate chains to itself but is no node certificate. */
    TB_CHECK_EQ(verdict_at(ca, &d, t0), TB_CERT_NOT_NODE);
    tb_ca_free(ca);
}

static void test_validity_verdicts(void)
{
    tb_ca *ca = make_ca_from("mesh-1", t0 - 1000 * DAY), *young = make_ca("mesh-1");
    TB_REQUIRE(ca && young);
    tb_node_cert *n = issue(ca, TB_CERT_KEY_ED25519, t0 - 100 * DAY, t0 - 10 * DAY);
    TB_REQUIRE(n);
    der_buf d;
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(ca, &d, t0), TB_CERT_EXPIRED);
    TB_CHECK_EQ(verdict_at(ca, &d, t0 - 200 * DAY), TB_CERT_NOT_YET_VALID);
    TB_CHECK_EQ(verdict_at(ca, &d, t0 - 50 * DAY), TB_CERT_OK);
    tb_node_cert_free(n);

    /* Inside the node's window, but before the CA's own notBefore. */
    n = issue(young, TB_CERT_KEY_ED25519, t0 - 100 * DAY, t0 - 10 * DAY);
    TB_REQUIRE(n);
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(young, &d, t0 - 50 * DAY), TB_CERT_CA_OUT_OF_DATE);
    tb_node_cert_free(n);
    tb_ca_free(young);

    n = issue(ca, TB_CERT_KEY_ED25519, t0, t0 + 90 * DAY);
    TB_REQUIRE(n);
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(ca, &d, t0), TB_CERT_OK);
    /* OpenSSL counts the notAfter second itself as expired: valid is [not_before, not_after). */
    TB_CHECK_EQ(verdict_at(ca, &d, t0 + 90 * DAY - 1), TB_CERT_OK);
    TB_CHECK_EQ(verdict_at(ca, &d, t0 + 90 * DAY), TB_CERT_EXPIRED);
    TB_CHECK_EQ(verdict_at(ca, &d, t0 - 1), TB_CERT_NOT_YET_VALID);
    tb_node_cert_free(n);
    tb_ca_free(ca);
}

static void test_foreign_ca_and_bad_signature(void)
{
    /* Same mesh name, so the foreign CA has the same subject as ours: only the key differs. */
    tb_ca *ours = make_ca("mesh-1"), *theirs = make_ca("mesh-1");
    TB_REQUIRE(ours && theirs);
    tb_node_cert *n = issue(theirs, TB_CERT_KEY_P256, t0, t0 + 90 * DAY);
    TB_REQUIRE(n);
    der_buf d;
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(theirs, &d, t0), TB_CERT_OK);
    TB_CHECK_EQ(verdict_at(ours, &d, t0), TB_CERT_FOREIGN_CA);
    tb_node_cert_free(n);

    n = issue(ours, TB_CERT_KEY_ED25519, t0, t0 + 90 * DAY);
    TB_REQUIRE(n);
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    d.b[d.len - 1] ^= 0x01; /* the last byte belongs to the signature */
    TB_CHECK_EQ(verdict_at(ours, &d, t0), TB_CERT_BAD_SIGNATURE);
    tb_node_cert_free(n);
    tb_ca_free(ours);
    tb_ca_free(theirs);
}

/* A CRL written by OpenSSL (tb_ca_crl_pem) and read by GnuTLS (tb_crl_from_file): the number,
 * the entries, serials compared as integers; a foreign CA's or a tampered list is refused; the
 * caps hold and the largest list fits a broadcast. */
static tb_crl *crl_via_file(const tb_ca *signer, const tb_ca *reader, const tb_crl_entry *e,
                            size_t n, uint64_t number, int *rc_out)
{
    char *pem = NULL, err[512], path[] = "/tmp/tb-crl.XXXXXX";
    size_t len = 0;
    tb_crl *crl = NULL;
    *rc_out = tb_ca_crl_pem(signer, e, n, number, t0, t0 + DAY, &pem, &len, err, sizeof(err));
    if (*rc_out != TB_OK)
        return NULL;
    int fd = mkstemp(path);
    int wrote = fd >= 0 && write(fd, pem, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    free(pem);
    if (!wrote) {
        *rc_out = TB_ERR_IO;
        unlink(path);
        return NULL;
    }
    *rc_out = tb_crl_from_file(reader, path, &crl, err, sizeof(err));
    unlink(path);
    return crl;
}

static void test_crl(void)
{
    tb_ca *ours = make_ca("mesh-1"), *theirs = make_ca("mesh-1");
    tb_node_cert *a = issue(ours, TB_CERT_KEY_ED25519, t0, t0 + 90 * DAY);
    tb_node_cert *b = issue(ours, TB_CERT_KEY_P256, t0, t0 + 90 * DAY);
    TB_REQUIRE(ours && theirs && a && b);
    der_buf da, db;
    tb_cert_identity ia;
    TB_REQUIRE(tb_node_cert_der(a, da.b, sizeof(da.b), &da.len) == TB_OK);
    TB_REQUIRE(tb_node_cert_der(b, db.b, sizeof(db.b), &db.len) == TB_OK);
    TB_REQUIRE(tb_cert_identity_from_der(da.b, da.len, &ia) == TB_OK);
    TB_CHECK(ia.serial_len >= 1 && ia.serial_len <= TB_CERT_SERIAL_MAX);
    tb_crl_entry e = {.serial_len = ia.serial_len, .revoked_at = t0};
    memcpy(e.serial, ia.serial, ia.serial_len);
    int rc;
    tb_crl *crl = crl_via_file(ours, ours, &e, 1, 7, &rc);
    TB_REQUIRE(rc == TB_OK && crl);
    TB_CHECK_EQ(tb_crl_number(crl), 7);
    TB_CHECK_EQ(tb_crl_count(crl), 1);
    TB_CHECK_EQ(tb_crl_this_update(crl), t0);
    TB_CHECK_EQ(tb_crl_entries(crl)[0].revoked_at, t0);
    TB_CHECK(tb_crl_lists_cert(crl, da.b, da.len));
    TB_CHECK(!tb_crl_lists_cert(crl, db.b, db.len));
    uint8_t padded[TB_CERT_SERIAL_MAX + 1] = {0};
    memcpy(padded + 1, ia.serial, ia.serial_len);
    TB_CHECK(tb_crl_lists(crl, padded, ia.serial_len + 1)); /* a leading zero changes nothing */
    TB_CHECK(!tb_crl_lists(crl, padded, 1));

    size_t len;
    const uint8_t *der = tb_crl_der(crl, &len);
    uint8_t *copy = malloc(TB_CRL_MAX_DER + 1);
    TB_REQUIRE(copy && len <= TB_CRL_MAX_DER);
    memcpy(copy, der, len);
    tb_crl *again = NULL;
    const char *why = NULL;
    TB_CHECK_EQ(tb_crl_from_der(theirs, copy, len, &again, &why), TB_ERR_VERIFY);
    copy[len - 1] ^= 1; /* the signature's last byte */
    TB_CHECK_EQ(tb_crl_from_der(ours, copy, len, &again, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_crl_from_der(ours, copy, TB_CRL_MAX_DER + 1, &again, &why), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_crl_from_der(ours, copy, 0, &again, &why), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_crl_from_der(ours,
                                (const uint8_t *)"\x30\x03"
                                                 "abc",
                                5, &again, &why),
                TB_ERR_MALFORMED);
    free(copy);
    tb_crl_free(crl);

    TB_CHECK(!crl_via_file(ours, theirs, &e, 1, 8, &rc) && rc == TB_ERR_VERIFY);
    TB_CHECK(!crl_via_file(ours, ours, &e, 1, 0, &rc) && rc == TB_ERR_INVAL);
    /* The largest list: 20-byte serials (the RFC 5280 maximum) still fit one broadcast. */
    tb_crl_entry *many = calloc(TB_CRL_MAX_ENTRIES + 1, sizeof(*many));
    TB_REQUIRE(many);
    for (size_t i = 0; i <= TB_CRL_MAX_ENTRIES; i++) {
        memset(many[i].serial, 0x7f, TB_CERT_SERIAL_MAX);
        many[i].serial[18] = (uint8_t)(i >> 8);
        many[i].serial[19] = (uint8_t)i;
        many[i].serial_len = TB_CERT_SERIAL_MAX;
        many[i].revoked_at = t0;
    }
    TB_CHECK(!crl_via_file(ours, ours, many, TB_CRL_MAX_ENTRIES + 1, 9, &rc) &&
             rc == TB_ERR_TOO_BIG);
    crl = crl_via_file(ours, ours, many, TB_CRL_MAX_ENTRIES, 9, &rc);
    TB_CHECK(rc == TB_OK && crl && tb_crl_count(crl) == TB_CRL_MAX_ENTRIES);
    if (crl)
        printf("a list of %d entries is %zu bytes of DER\n", TB_CRL_MAX_ENTRIES,
               (tb_crl_der(crl, &len), len));
    tb_crl_free(crl);
    free(many);
    tb_node_cert_free(a);
    tb_node_cert_free(b);
    tb_ca_free(ours);
    tb_ca_free(theirs);
}

static void test_foreign_mesh(void)
{
    /* Another mesh name: the issuer does not even name our CA. */
    tb_ca *ours = make_ca("mesh-1"), *theirs = make_ca("mesh-2");
    TB_REQUIRE(ours && theirs);
    tb_node_cert *n = issue(theirs, TB_CERT_KEY_ED25519, t0, t0 + 90 * DAY);
    TB_REQUIRE(n);
    der_buf d;
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(theirs, &d, t0), TB_CERT_OK);
    TB_CHECK_EQ(verdict_at(ours, &d, t0), TB_CERT_FOREIGN_CA);
    /* Their CA certificate presented as a node's: refused before any chain is looked at. */
    TB_REQUIRE(tb_ca_cert_der(theirs, d.b, sizeof(d.b), &d.len) == TB_OK);
    TB_CHECK_EQ(verdict_at(ours, &d, t0), TB_CERT_NOT_NODE);
    tb_node_cert_free(n);
    tb_ca_free(ours);
    tb_ca_free(theirs);
}

static void test_der_bounds(void)
{
    tb_ca *ca = make_ca("mesh-1");
    TB_REQUIRE(ca);
    tb_node_cert *n = issue(ca, TB_CERT_KEY_ED25519, t0, t0 + DAY);
    TB_REQUIRE(n);
    static der_buf d;
    TB_REQUIRE(tb_node_cert_der(n, d.b, sizeof(d.b) - 1, &d.len) == TB_OK);
    tb_cert_identity id;
    TB_CHECK_EQ(tb_cert_identity_from_der(d.b, d.len - 1, &id), TB_ERR_MALFORMED);
    d.b[d.len] = 0;
    TB_CHECK_EQ(tb_cert_identity_from_der(d.b, d.len + 1, &id), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_cert_identity_from_der(d.b, 0, &id), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_cert_identity_from_der(d.b, TB_CERT_MAX_DER + 1, &id), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_cert_identity_from_der((const uint8_t *)"junk", 4, &id), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_cert_identity_from_der(d.b, d.len, &id), TB_OK);
    tb_node_cert_free(n);
    tb_ca_free(ca);
}

/* A self-signed certificate with the given SANs and CN, built with OpenSSL directly so the
 * tests can break the profile in ways tbcert never would. */
static int craft(const char *cn, const char *san, int with_eku, der_buf *out)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *x = X509_new();
    X509V3_CTX ctx;
    int ok = key && x && X509_set_version(x, X509_VERSION_3) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
             X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)t0) &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)t0 + DAY) && X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e1 = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
    X509_EXTENSION *e2 =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    ok = ok && e1 && e2 && X509_add_ext(x, e1, -1) && (!with_eku || X509_add_ext(x, e2, -1)) &&
         X509_sign(x, key, NULL) > 0;
    unsigned char *p = out->b;
    int n = ok ? i2d_X509(x, NULL) : -1;
    ok = n > 0 && (size_t)n <= sizeof(out->b) && i2d_X509(x, &p) == n;
    out->len = ok ? (size_t)n : 0;
    X509_EXTENSION_free(e1);
    X509_EXTENSION_free(e2);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

static int crafted_rc(const char *cn, const char *san, int with_eku)
{
    static der_buf d;
    if (!craft(cn, san, with_eku, &d))
        return 99;
    tb_cert_identity id;
    return tb_cert_identity_from_der(d.b, d.len, &id);
}

static void test_profile_rejections(void)
{
    const char *good = "URI:urn:tbmesh:node:n1,URI:urn:tbmesh:region:r1";
    /* The crafted control case passes, so each rejection below is about its one change. */
    TB_CHECK_EQ(crafted_rc("n1", good, 1), TB_OK);
    TB_CHECK_EQ(crafted_rc("n1", "DNS:n1,URI:urn:tbmesh:node:n1,URI:urn:tbmesh:region:r1", 1),
                TB_OK);
    TB_CHECK_EQ(crafted_rc("n1", good, 0), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n2", good, 1), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1", "URI:urn:tbmesh:node:n1", 1), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1", "URI:urn:tbmesh:region:r1", 1), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1", "DNS:n1", 1), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1",
                           "URI:urn:tbmesh:node:n1,URI:urn:tbmesh:node:n3,"
                           "URI:urn:tbmesh:region:r1",
                           1),
                TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1",
                           "URI:urn:tbmesh:node:n1,URI:urn:tbmesh:region:r1,"
                           "URI:urn:tbmesh:region:r2",
                           1),
                TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("N1", "URI:urn:tbmesh:node:N1,URI:urn:tbmesh:region:r1", 1),
                TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1", "URI:urn:tbmesh:node:n1,URI:urn:tbmesh:region:", 1), TB_ERR_INVAL);
    TB_CHECK_EQ(crafted_rc("n1", "URI:urn:tbmesh:node:n1,URI:urn:tbmesh:region:r_1", 1),
                TB_ERR_INVAL);
}

static void test_request_validation(void)
{
    tb_ca *ca = make_ca("mesh-1");
    TB_REQUIRE(ca);
    const char *bad_ip[] = {"10.0.0.300"}, *bad_dns[] = {"bad..name"};
    tb_cert_request base = {.name = "n1", .region = "r1", .not_before = t0, .not_after = t0 + DAY};
    struct {
        tb_cert_request req;
        const char *field;
    } cases[] = {
        {base, NULL},         {base, "node name"}, {base, "region"},
        {base, "IP address"}, {base, "DNS name"},  {base, "validity"},
    };
    cases[1].req.name = "Bad";
    cases[2].req.region = "-r";
    cases[3].req.ips = bad_ip;
    cases[3].req.n_ips = 1;
    cases[4].req.dns = bad_dns;
    cases[4].req.n_dns = 1;
    cases[5].req.not_after = t0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tb_node_cert *n = NULL;
        char err[256] = "";
        int rc = tb_ca_issue(ca, &cases[i].req, &n, err, sizeof(err));
        if (!cases[i].field) {
            TB_CHECK_EQ(rc, TB_OK);
        } else {
            TB_CHECK_EQ(rc, TB_ERR_INVAL);
            TB_CHECK(strstr(err, cases[i].field) == err);
            TB_CHECK(n == NULL);
        }
        tb_node_cert_free(n);
    }
    tb_ca *bad = NULL;
    TB_CHECK_EQ(tb_ca_create("Bad Mesh", t0, t0 + DAY, &bad), TB_ERR_INVAL);
    tb_ca_free(ca);
}

static void test_renew(void)
{
    tb_ca *ca = make_ca("mesh-1"), *other = make_ca("mesh-1");
    TB_REQUIRE(ca && other);
    tb_node_cert *old = issue(ca, TB_CERT_KEY_P256, t0 - 100 * DAY, t0 - 10 * DAY), *fresh = NULL;
    TB_REQUIRE(old);
    char err[256];
    TB_REQUIRE(tb_ca_renew(ca, old, t0, t0 + 30 * DAY, &fresh, err, sizeof(err)) == TB_OK);
    der_buf a, b, ka, kb;
    TB_REQUIRE(tb_node_cert_der(old, a.b, sizeof(a.b), &a.len) == TB_OK);
    TB_REQUIRE(tb_node_cert_der(fresh, b.b, sizeof(b.b), &b.len) == TB_OK);
    TB_REQUIRE(tb_node_cert_pubkey_der(old, ka.b, sizeof(ka.b), &ka.len) == TB_OK);
    TB_REQUIRE(tb_node_cert_pubkey_der(fresh, kb.b, sizeof(kb.b), &kb.len) == TB_OK);
    TB_CHECK(ka.len == kb.len && memcmp(ka.b, kb.b, ka.len) == 0);
    TB_CHECK_EQ(verdict_at(ca, &a, t0 + DAY), TB_CERT_EXPIRED);
    TB_CHECK_EQ(verdict_at(ca, &b, t0 + DAY), TB_CERT_OK);
    char sa[512], sb[512];
    TB_CHECK(tb_cert_san_text(a.b, a.len, sa, sizeof(sa)) == TB_OK);
    TB_CHECK(tb_cert_san_text(b.b, b.len, sb, sizeof(sb)) == TB_OK);
    TB_CHECK_STR(sa, sb);
    tb_cert_identity ia, ib;
    TB_REQUIRE(tb_cert_identity_from_der(a.b, a.len, &ia) == TB_OK);
    TB_REQUIRE(tb_cert_identity_from_der(b.b, b.len, &ib) == TB_OK);
    TB_CHECK_STR(ia.name, ib.name);
    TB_CHECK_STR(ia.region, ib.region);
    TB_CHECK_EQ(ib.not_after, t0 + 30 * DAY);
    TB_CHECK(memcmp(ia.fingerprint, ib.fingerprint, 32) != 0);
    tb_node_cert_free(fresh);
    fresh = NULL;
    TB_CHECK_EQ(tb_ca_renew(other, old, t0, t0 + DAY, &fresh, err, sizeof(err)), TB_ERR_VERIFY);
    TB_CHECK(fresh == NULL);
    tb_node_cert_free(old);
    tb_ca_free(ca);
    tb_ca_free(other);
}

static int file_mode(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void remove_files(const char *dir, const char *const *names, int count)
{
    char path[512];
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

static void check_ca_files(const char *dir)
{
    tb_ca *ca = make_ca("mesh-1"), *loaded = NULL;
    TB_REQUIRE(ca);
    char err[4400];
    TB_CHECK_EQ(tb_ca_save(ca, dir, "s3cret", 0, err, sizeof(err)), TB_OK);
    TB_CHECK_EQ(file_mode(dir, TB_CA_KEY_FILE), 0600);
    TB_CHECK_EQ(tb_ca_save(ca, dir, "s3cret", 0, err, sizeof(err)), TB_ERR_EXISTS);
    TB_CHECK(strstr(err, "/ca.key: exists") != NULL);
    TB_CHECK_EQ(tb_ca_load(dir, 1, "wrong", &loaded, err, sizeof(err)), TB_ERR_CRYPTO);
    TB_CHECK(strstr(err, "/ca.key: wrong passphrase or corrupt key") != NULL);
    TB_CHECK_EQ(tb_ca_load(dir, 1, NULL, &loaded, err, sizeof(err)), TB_ERR_CRYPTO);
    TB_CHECK(strstr(err, "encrypted") != NULL);
    TB_CHECK_EQ(tb_ca_load(dir, 1, "s3cret", &loaded, err, sizeof(err)), TB_OK);
    TB_REQUIRE(loaded);
    TB_CHECK_STR(tb_ca_mesh(loaded), "mesh-1");
    tb_node_cert *n = issue(loaded, TB_CERT_KEY_ED25519, t0, t0 + DAY), *back = NULL;
    TB_REQUIRE(n);
    char node_dir[512];
    snprintf(node_dir, sizeof(node_dir), "%s/node", dir);
    TB_CHECK_EQ(tb_node_cert_save(n, loaded, node_dir, 0, err, sizeof(err)), TB_OK);
    TB_CHECK_EQ(file_mode(node_dir, TB_NODE_KEY_FILE), 0600);
    TB_CHECK_EQ(tb_node_cert_save(n, loaded, node_dir, 0, err, sizeof(err)), TB_ERR_EXISTS);
    TB_CHECK(strstr(err, "/node/node.key: exists") != NULL);
    TB_CHECK_EQ(tb_node_cert_save(n, loaded, node_dir, 1, err, sizeof(err)), TB_OK);
    TB_CHECK_EQ(tb_node_cert_load(node_dir, &back, err, sizeof(err)), TB_OK);
    der_buf a, b;
    TB_CHECK(back && tb_node_cert_der(back, b.b, sizeof(b.b), &b.len) == TB_OK);
    TB_CHECK(tb_node_cert_der(n, a.b, sizeof(a.b), &a.len) == TB_OK);
    TB_CHECK(a.len == b.len && memcmp(a.b, b.b, a.len) == 0);
    tb_node_cert_free(back);
    tb_node_cert_free(n);
    tb_ca_free(loaded);
    tb_ca_free(ca);
}

/* Rewrites dir/node.key in the traditional form (SEC1 "EC PRIVATE KEY" for P-256). */
static int rewrite_key_traditional(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, TB_NODE_KEY_FILE);
    FILE *f = fopen(path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    BIO *out = key ? BIO_new_file(path, "w") : NULL;
    int ok = out && PEM_write_bio_PrivateKey_traditional(out, key, NULL, NULL, 0, NULL, NULL) == 1;
    BIO_free(out);
    EVP_PKEY_free(key);
    return ok;
}

static void check_node_key_forms(const char *dir, tb_cert_key_type type)
{
    tb_ca *ca = make_ca("mesh-1");
    TB_REQUIRE(ca);
    tb_node_cert *n = issue(ca, type, t0, t0 + DAY), *back = NULL;
    TB_REQUIRE(n);
    char err[4400];
    TB_REQUIRE(tb_node_cert_save(n, ca, dir, 1, err, sizeof(err)) == TB_OK);
    der_buf a, b;
    TB_REQUIRE(tb_node_cert_pubkey_der(n, a.b, sizeof(a.b), &a.len) == TB_OK);
    /* Ed25519 has only PKCS#8; P-256 also SEC1, as `openssl ecparam -genkey` writes it. */
    for (int traditional = 0; traditional < (type == TB_CERT_KEY_P256 ? 2 : 1); traditional++) {
        if (traditional)
            TB_REQUIRE(rewrite_key_traditional(dir));
        TB_CHECK_EQ(tb_node_cert_load(dir, &back, err, sizeof(err)), TB_OK);
        TB_CHECK(back && tb_node_cert_pubkey_der(back, b.b, sizeof(b.b), &b.len) == TB_OK);
        TB_CHECK(a.len == b.len && memcmp(a.b, b.b, a.len) == 0);
        tb_node_cert_free(back);
        back = NULL;
    }
    /* Another node's key beside this certificate. */
    tb_node_cert *other = issue(ca, type, t0, t0 + DAY);
    TB_REQUIRE(other);
    char other_dir[600], from[700], to[700];
    snprintf(other_dir, sizeof(other_dir), "%s/other", dir);
    TB_REQUIRE(tb_node_cert_save(other, ca, other_dir, 1, err, sizeof(err)) == TB_OK);
    snprintf(from, sizeof(from), "%s/%s", other_dir, TB_NODE_KEY_FILE);
    snprintf(to, sizeof(to), "%s/%s", dir, TB_NODE_KEY_FILE);
    TB_REQUIRE(rename(from, to) == 0);
    TB_CHECK_EQ(tb_node_cert_load(dir, &back, err, sizeof(err)), TB_ERR_VERIFY);
    TB_CHECK(strstr(err, "node.key: does not belong to") != NULL);
    TB_CHECK(back == NULL);
    static const char *const names[] = {TB_NODE_CERT_FILE, TB_CA_CERT_FILE};
    remove_files(other_dir, names, 2);
    tb_node_cert_free(other);
    tb_node_cert_free(n);
    tb_ca_free(ca);
}

static void test_node_key_forms(void)
{
    char dir[] = "/tmp/tb_test_certs.XXXXXX";
    TB_REQUIRE(mkdtemp(dir));
    check_node_key_forms(dir, TB_CERT_KEY_ED25519);
    check_node_key_forms(dir, TB_CERT_KEY_P256);
    static const char *const names[] = {TB_NODE_KEY_FILE, TB_NODE_CERT_FILE, TB_CA_CERT_FILE};
    remove_files(dir, names, 3);
    TB_CHECK(access(dir, F_OK) != 0);
}

static void test_ca_key_mismatch(void)
{
    char dir[] = "/tmp/tb_test_certs.XXXXXX", other[64], from[128], to[128], err[4400];
    TB_REQUIRE(mkdtemp(dir));
    snprintf(other, sizeof(other), "%s/other", dir);
    tb_ca *a = make_ca("mesh-1"), *b = make_ca("mesh-1"), *loaded = NULL;
    TB_REQUIRE(a && b);
    TB_REQUIRE(tb_ca_save(a, dir, NULL, 0, err, sizeof(err)) == TB_OK);
    TB_REQUIRE(tb_ca_save(b, other, NULL, 0, err, sizeof(err)) == TB_OK);
    snprintf(from, sizeof(from), "%s/%s", other, TB_CA_KEY_FILE);
    snprintf(to, sizeof(to), "%s/%s", dir, TB_CA_KEY_FILE);
    TB_REQUIRE(rename(from, to) == 0);
    TB_CHECK_EQ(tb_ca_load(dir, 0, NULL, &loaded, err, sizeof(err)), TB_OK);
    tb_ca_free(loaded);
    loaded = NULL;
    TB_CHECK_EQ(tb_ca_load(dir, 1, NULL, &loaded, err, sizeof(err)), TB_ERR_VERIFY);
    TB_CHECK(strstr(err, "/ca.key: does not belong to") != NULL);
    TB_CHECK(loaded == NULL);
    static const char *const names[] = {("other/" TB_CA_CERT_FILE), "other", TB_CA_KEY_FILE,
                                        TB_CA_CERT_FILE};
    remove_files(dir, names, 4);
    TB_CHECK(access(dir, F_OK) != 0);
    tb_ca_free(a);
    tb_ca_free(b);
}

static void test_files(void)
{
    char dir[] = "/tmp/tb_test_certs.XXXXXX";
    TB_REQUIRE(mkdtemp(dir));
    check_ca_files(dir);
    static const char *const names[] = {"node/" TB_NODE_KEY_FILE, "node/" TB_NODE_CERT_FILE,
                                        "node/" TB_CA_CERT_FILE,  "node",
                                        TB_CA_KEY_FILE,           TB_CA_CERT_FILE};
    remove_files(dir, names, 6);
    TB_CHECK(access(dir, F_OK) != 0);
}

static void test_pem_file_errors(void)
{
    char dir[] = "/tmp/tb_test_certs.XXXXXX", path[512], err[4400];
    TB_REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bad.crt", dir);
    FILE *f = fopen(path, "w");
    TB_REQUIRE(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    tb_cert_identity id;
    TB_CHECK_EQ(tb_cert_identity_from_pem_file(path, &id, err, sizeof(err)), TB_ERR_MALFORMED);
    TB_CHECK(strstr(err, path) == err);
    unlink(path);
    TB_CHECK_EQ(tb_cert_identity_from_pem_file(path, &id, err, sizeof(err)), TB_ERR_NOTFOUND);
    TB_CHECK(strstr(err, path) == err);
    rmdir(dir);
}

int main(void)
{
    TB_RUN(test_name_validation);
    TB_RUN(test_issue_verify_ed25519);
    TB_RUN(test_issue_verify_p256);
    TB_RUN(test_ca_identity);
    TB_RUN(test_validity_verdicts);
    TB_RUN(test_foreign_ca_and_bad_signature);
    TB_RUN(test_foreign_mesh);
    TB_RUN(test_der_bounds);
    TB_RUN(test_profile_rejections);
    TB_RUN(test_request_validation);
    TB_RUN(test_renew);
    TB_RUN(test_files);
    TB_RUN(test_node_key_forms);
    TB_RUN(test_ca_key_mismatch);
    TB_RUN(test_pem_file_errors);
    TB_RUN(test_crl);
    return TB_DONE();
}
