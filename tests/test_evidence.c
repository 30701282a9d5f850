/* measure/evidence and measure/bundle: the raw evidence re-check (an honest NTP exchange passes,
 * a lie about it does not), and bundles written, parsed and verified: a good one holds, and
 * each kind of tampering fails the item it touched; the parser refuses what is not a bundle. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs/ca.h"
#include "measure/bundle.h"
#include "measure/evidence.h"
#include "ntp/packet.h"
#include "tb_test.h"

#define DAY 86400
static const int64_t t0 = 1795000000;
static const int64_t real0 = (int64_t)1795000100 * 1000000000;

typedef struct node {
    tb_node_cert *cert;
    uint8_t der[TB_CERT_MAX_DER];
    size_t der_len;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
} node;

static int make_node(const tb_ca *ca, const char *name, node *out)
{
    tb_cert_request req = {.name = name,
                           .region = "eu",
                           .key_type = TB_CERT_KEY_ED25519,
                           .not_before = t0,
                           .not_after = t0 + 30 * DAY};
    char err[256], dir[] = "/tmp/tb-evidence-XXXXXX", path[300];
    if (tb_ca_issue(ca, &req, &out->cert, err, sizeof(err)) != TB_OK || !mkdtemp(dir) ||
        tb_node_cert_save(out->cert, ca, dir, 1, err, sizeof(err)) != TB_OK ||
        tb_node_cert_der(out->cert, out->der, sizeof(out->der), &out->der_len) != TB_OK)
        return -1;
    snprintf(path, sizeof(path), "%s/node.key", dir);
    FILE *f = fopen(path, "r");
    char pem[4096];
    size_t n = f ? fread(pem, 1, sizeof(pem), f) : 0;
    if (f)
        fclose(f);
    int rc = tb_measure_key_from_pem(pem, n, out->sk, out->pk);
    const char *files[] = {"node.key", "node.crt", "ca.crt"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}

/* An honest NTP exchange: sent at real − delay, the server's clock offset ahead. */
static void ntp_exchange(int64_t offset, int64_t delay, uint8_t req[48], uint8_t resp[48])
{
    int64_t t1 = real0 - delay, t4 = real0;
    tb_ntp_packet q = {
        .version = 4, .mode = TB_NTP_MODE_CLIENT, .transmit_ts = 0x1122334455667788ULL};
    tb_ntp_packet r = {.version = 4,
                       .mode = TB_NTP_MODE_SERVER,
                       .stratum = 2,
                       .precision = -20,
                       .origin_ts = q.transmit_ts,
                       .receive_ts = tb_ntp_ts_from_unix_ns(t1 + delay / 2 + offset),
                       .transmit_ts = tb_ntp_ts_from_unix_ns(t4 - delay / 2 + offset)};
    tb_ntp_packet_write(&q, req);
    tb_ntp_packet_write(&r, resp);
}

typedef struct sealed {
    uint8_t body[TB_MEASURE_BODY_MAX], sig[TB_MEASURE_SIG_LEN];
    size_t len;
    uint8_t req[48], resp[48];
} sealed;

static int seal_ntp(const node *n, const char *origin, uint64_t seq, int64_t claimed, sealed *s)
{
    ntp_exchange(5000000, 2000000, s->req, s->resp);
    tb_measurement m = {.kind = TB_MEASURE_NTP,
                        .seq = seq,
                        .real_ns = real0,
                        .offset_ns = claimed,
                        .delay_ns = 2000000,
                        .bound_ns = 3000000,
                        .stratum = 2,
                        .ev_request = {s->req, 48},
                        .ev_response = {s->resp, 48}};
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    snprintf(m.source_name, sizeof(m.source_name), "ntp1.test:123");
    return tb_measure_seal(&m, n->sk, s->body, sizeof(s->body), &s->len, s->sig);
}

static void test_ntp_evidence(void)
{
    tb_measurement m;
    sealed s;
    node none = {0};
    randombytes_buf(none.sk, sizeof(none.sk));
    TB_REQUIRE(seal_ntp(&none, "a", 1, 5000000, &s) == TB_OK);
    TB_REQUIRE(tb_measure_parse(s.body, s.len, &m, NULL) == TB_OK);
    tb_measure_evidence ev;
    const char *why = NULL;
    TB_CHECK_EQ(tb_measure_evidence_check(&m, &ev, &why), TB_OK);
    TB_CHECK(ev.has_offset);
    TB_CHECK(ev.offset_ns >= 4999999 && ev.offset_ns <= 5000001);
    m.offset_ns += 1000; /* a claim the packets do not give */
    TB_CHECK_EQ(tb_measure_evidence_check(&m, &ev, &why), TB_ERR_VERIFY);
    TB_CHECK(why && strstr(why, "claimed offset"));
    m.offset_ns -= 1000;
    m.stratum = 1;
    TB_CHECK_EQ(tb_measure_evidence_check(&m, &ev, &why), TB_ERR_VERIFY);
    TB_CHECK(strstr(why, "stratum") != NULL);
    m.stratum = 2;
    m.ev_response.len = 0;
    TB_CHECK_EQ(tb_measure_evidence_check(&m, &ev, &why), TB_ERR_VERIFY);
}

typedef struct lines {
    char text[16][1200];
    bool ok[16];
    size_t n;
} lines;

static void collect(void *arg, const char *item, bool ok, const char *detail)
{
    lines *l = arg;
    if (l->n < 16) {
        snprintf(l->text[l->n], sizeof(l->text[0]), "%s: %s", item, detail);
        l->ok[l->n++] = ok;
    }
}

static const char *failed_line(const lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!l->ok[i])
            return l->text[i];
    return "";
}

/* A bundle of two measurements by a and b, with a verdict citing both. */
static char *write_bundle(const tb_ca *ca, const node *a, const node *b, sealed s[2], size_t *len)
{
    uint8_t ca_der[TB_CERT_MAX_DER];
    size_t ca_len;
    if (tb_ca_cert_der(ca, ca_der, sizeof(ca_der), &ca_len) != TB_OK ||
        seal_ntp(a, "node-a", 7, 5000000, &s[0]) != TB_OK ||
        seal_ntp(b, "node-b", 9, 5000000, &s[1]) != TB_OK)
        return NULL;
    const uint8_t *certs[2] = {a->der, b->der};
    size_t cert_len[2] = {a->der_len, b->der_len};
    tb_measure_bundle_item items[2] = {{s[0].body, s[0].len, s[0].sig},
                                       {s[1].body, s[1].len, s[1].sig}};
    tb_measure_bundle_ref refs[2] = {{"node-a", 7}, {"node-b", 9}};
    tb_measure_bundle_verdict v = {"ntp", "ntp1.test:123", "ok", "agrees", real0, refs, 2};
    tb_measure_bundle_in in = {"node-a", real0, ca_der, ca_len, certs, cert_len, 2, items, 2, &v};
    char *out = NULL;
    return tb_measure_bundle_write(&in, &out, len) == TB_OK ? out : NULL;
}

static size_t verify_text(const char *text, const tb_ca *ca, lines *l)
{
    tb_measure_bundle *b = NULL;
    char err[256];
    memset(l, 0, sizeof(*l));
    if (tb_measure_bundle_parse((const uint8_t *)text, strlen(text), &b, err, sizeof(err)) !=
        TB_OK) {
        fprintf(stderr, "parse: %s\n", err);
        return 99;
    }
    size_t failed = tb_measure_bundle_verify(b, ca, NULL, collect, l);
    tb_measure_bundle_free(b);
    return failed;
}

/* Replaces the first occurrence of from (after `after`) by to, in place (same length). */
static void patch(char *text, const char *after, const char *from, const char *to)
{
    char *p = strstr(strstr(text, after), from);
    TB_REQUIRE(p && strlen(from) == strlen(to));
    memcpy(p, to, strlen(to));
}

static void test_bundle(void)
{
    tb_ca *ca = NULL, *other = NULL;
    TB_REQUIRE(tb_ca_create("mesh", t0 - DAY, t0 + 3650 * (int64_t)DAY, &ca) == TB_OK);
    TB_REQUIRE(tb_ca_create("other", t0 - DAY, t0 + 3650 * (int64_t)DAY, &other) == TB_OK);
    node a, b;
    TB_REQUIRE(make_node(ca, "node-a", &a) == 0 && make_node(ca, "node-b", &b) == 0);
    sealed s[2];
    size_t len;
    char *text = write_bundle(ca, &a, &b, s, &len);
    TB_REQUIRE(text != NULL);
    lines l;
    TB_CHECK_EQ(verify_text(text, ca, &l), 0);
    TB_CHECK_EQ(l.n, 6); /* ca, 2 certificates, 2 measurements, verdict */
    TB_CHECK(strstr(l.text[3], "measurement node-a:7: signature ok; NTP packets re-checked"));

    /* the trusted CA is another: the CA, both certificates and both measurements fail */
    TB_CHECK_EQ(verify_text(text, other, &l), 6);
    TB_CHECK(strstr(l.text[0], "is not the trusted CA (mesh other)") != NULL);

    /* a flipped signature byte: that measurement and the verdict citing it */
    char *t = strdup(text);
    char sig[100];
    sodium_bin2base64(sig, sizeof(sig), s[1].sig, 64, sodium_base64_VARIANT_ORIGINAL);
    char flipped[100];
    snprintf(flipped, sizeof(flipped), "%s", sig);
    flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
    patch(t, "\"seq\": 9", sig, flipped);
    TB_CHECK_EQ(verify_text(t, ca, &l), 2);
    TB_CHECK(strstr(failed_line(&l), "measurement node-b:9: the signature does not verify"));
    free(t);

    /* a claim beside the body that is not the body's */
    t = strdup(text);
    patch(t, "\"seq\": 7", "\"offset_ns\": 5000000", "\"offset_ns\": 5000001");
    TB_CHECK_EQ(verify_text(t, ca, &l), 2);
    TB_CHECK(strstr(failed_line(&l), "node-a:7: the bundle's offset_ns is not the signed body's"));
    free(t);

    /* b's certificate given as a's: a's certificate fails, and so do a's measurements */
    t = strdup(text);
    patch(t, "\"certificates\"", "\"origin\": \"node-b\"", "\"origin\": \"node-a\"");
    TB_CHECK(verify_text(t, ca, &l) >= 1);
    TB_CHECK(strstr(failed_line(&l), "certificate node-a: names node node-b, not node-a"));
    free(t);

    tb_measure_bundle *pb = NULL;
    char err[256];
    TB_CHECK_EQ(tb_measure_bundle_parse((const uint8_t *)text, len, &pb, err, sizeof(err)), 0);
    TB_CHECK_EQ(tb_measure_bundle_count(pb), 2);
    tb_measure_bundle_free(pb);
    free(text);
    tb_node_cert_free(a.cert);
    tb_node_cert_free(b.cert);
    tb_ca_free(ca);
    tb_ca_free(other);
}

static void refused(const char *text, const char *want)
{
    tb_measure_bundle *b = NULL;
    char err[256] = "";
    TB_CHECK(tb_measure_bundle_parse((const uint8_t *)text, strlen(text), &b, err, sizeof(err)) <
             0);
    TB_CHECK(b == NULL);
    if (!strstr(err, want))
        fprintf(stderr, "want '%s' in '%s'\n", want, err);
    TB_CHECK(strstr(err, want) != NULL);
}

static void test_parse_refusals(void)
{
    refused("", "not JSON");
    refused("[]", "not a JSON object");
    refused("{\"format\":\"x\",\"version\":1}", "format");
    refused("{\"format\":\"tbnode-evidence\",\"version\":2}", "version");
    refused("{\"format\":\"tbnode-evidence\",\"version\":1,\"version\":1}", "not JSON");
    refused("{\"format\":\"tbnode-evidence\",\"version\":1,\"ca\":\"!!\"}", "ca: not 1 to");
    refused("{\"format\":\"tbnode-evidence\",\"version\":1,\"ca\":\"AAAA\",\"certificates\":[],"
            "\"measurements\":[{\"origin\":\"a\"}]}",
            "measurements[0].seq: missing");
    refused("{\"format\":\"tbnode-evidence\",\"version\":1,\"ca\":\"AAAA\",\"certificates\":[],"
            "\"measurements\":[{\"origin\":\"a\",\"seq\":1,\"kind\":\"ntp\",\"source\":\"s\","
            "\"real_ns\":1,\"offset_ns\":1,\"delay_ns\":1,\"bound_ns\":1,\"body\":\"AAAA\","
            "\"sig\":\"AAAA\"}]}",
            "measurements[0].sig: not 64 bytes");
    /* counts are capped before anything is decoded */
    size_t n = 70, cap = 64 + n * 4;
    char *big = malloc(cap + 200);
    TB_REQUIRE(big != NULL);
    int at = snprintf(big, cap + 200,
                      "{\"format\":\"tbnode-evidence\",\"version\":1,\"ca\":\"AAAA\","
                      "\"certificates\":[");
    for (size_t i = 0; i < n; i++)
        at += snprintf(big + at, cap + 200 - (size_t)at, "%s{}", i ? "," : "");
    snprintf(big + at, cap + 200 - (size_t)at, "],\"measurements\":[]}");
    refused(big, "certificates: more than 64");
    free(big);
    char *huge = calloc(1, TB_MEASURE_BUNDLE_MAX_BYTES + 2);
    TB_REQUIRE(huge != NULL);
    memset(huge, ' ', TB_MEASURE_BUNDLE_MAX_BYTES + 1);
    refused(huge, "over");
    free(huge);
}

static void test_refs(void)
{
    tb_measure_bundle_ref r;
    TB_CHECK_EQ(tb_measure_bundle_ref_parse("eu-1:42 trailing", 7, &r), TB_OK);
    TB_CHECK(strcmp(r.origin, "eu-1") == 0 && r.seq == 42);
    TB_CHECK_EQ(tb_measure_bundle_ref_parse("a:9223372036854775807", 21, &r), TB_OK);
    const char *bad[] = {
        "",     ":1",   "a:", "a:1x", "A:1", "a:9223372036854775808", "a:12345678901234567890",
        "a:-1", "a b:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        TB_CHECK_EQ(tb_measure_bundle_ref_parse(bad[i], strlen(bad[i]), &r), TB_ERR_MALFORMED);
}

int main(void)
{
    TB_RUN(test_refs);
    TB_RUN(test_ntp_evidence);
    TB_RUN(test_bundle);
    TB_RUN(test_parse_refusals);
    return TB_DONE();
}
