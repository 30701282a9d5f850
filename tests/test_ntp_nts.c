/* The pure NTS pieces: KE records, the extension fields of requests and replies (with a
 * server's side built here from the same primitives), and the cookie jar. The exchange with a
 * real server is tests/test_sources_nts.c. */
#include <string.h>

#include "common/bytes.h"
#include "ntp/nts_cookies.h"
#include "ntp/nts_ef.h"
#include "ntp/nts_ke.h"
#include "ntp/packet.h"
#include "tb_test.h"

static size_t rec(uint8_t *p, uint16_t type, const void *body, uint16_t len)
{
    tb_put_be16(p, type);
    tb_put_be16(p + 2, len);
    memcpy(p + 4, body, len);
    return 4u + len;
}

/* An NTP extension field: its length counts the 4-byte header. */
static size_t ef(uint8_t *p, uint16_t type, const void *body, uint16_t len)
{
    tb_put_be16(p, type);
    tb_put_be16(p + 2, (uint16_t)(len + 4));
    memcpy(p + 4, body, len);
    return 4u + len;
}

/* A response as chronyd sends it: protocol, AEAD, port, eight 100-byte cookies, end. */
static size_t ke_response(uint8_t *p, bool with_end)
{
    uint8_t v0[2] = {0, 0}, v15[2] = {0, 15}, port[2] = {0x30, 0x39}, cookie[100];
    size_t n = rec(p, 0x8001, v0, 2);
    n += rec(p + n, 0x8004, v15, 2);
    n += rec(p + n, 0x8007, port, 2);
    for (int i = 0; i < 8; i++) {
        memset(cookie, 'a' + i, sizeof(cookie));
        n += rec(p + n, 5, cookie, sizeof(cookie));
    }
    if (with_end)
        n += rec(p + n, 0x8000, "", 0);
    return n;
}

static void test_ke_request(void)
{
    uint8_t b[64];
    size_t n;
    TB_REQUIRE(tb_nts_ke_request_write(b, sizeof(b), &n) == 0);
    const uint8_t want[] = {0x80, 1, 0, 2, 0, 0, 0, 4, 0, 2, 0, 15, 0x80, 0, 0, 0};
    TB_CHECK_EQ(n, sizeof(want));
    TB_CHECK_MEM(b, want, sizeof(want));
    TB_CHECK(tb_nts_ke_request_write(b, 15, &n) == TB_ERR_TOO_BIG);
}

static void test_ke_response(void)
{
    static uint8_t b[2048];
    static tb_nts_ke_response r;
    size_t n = ke_response(b, true);
    const char *why;
    TB_REQUIRE(tb_nts_ke_response_parse(b, n, &r, &why) == 0);
    TB_CHECK_EQ(r.aead, 15);
    TB_CHECK(r.has_port && r.port == 12345);
    TB_CHECK(!r.has_server);
    TB_CHECK_EQ(tb_nts_jar_count(&r.cookies), 8);
    /* Every prefix is "not complete yet", never an error or a success. */
    for (size_t k = 0; k < n; k++)
        TB_CHECK(tb_nts_ke_response_parse(b, k, &r, &why) == TB_ERR_TRUNCATED);
    /* Bytes after the end of message. */
    b[n] = 0;
    TB_CHECK(tb_nts_ke_response_parse(b, n + 1, &r, &why) == TB_ERR_MALFORMED);
    /* An error record. */
    uint8_t e[] = {0x80, 2, 0, 2, 0, 1, 0x80, 0, 0, 0};
    TB_CHECK(tb_nts_ke_response_parse(e, sizeof(e), &r, &why) == TB_ERR_VERIFY);
    TB_CHECK_EQ(r.error, 1);
    TB_CHECK_STR(tb_nts_ke_error_name(r.error), "bad request");
    /* Another AEAD (AES-128-GCM-SIV, 30). */
    n = ke_response(b, true);
    b[11] = 30;
    TB_CHECK(tb_nts_ke_response_parse(b, n, &r, &why) == TB_ERR_UNSUPPORTED);
    /* An unknown critical record before the end; the same record non-critical is ignored. */
    n = ke_response(b, false);
    n += rec(b + n, 0x8000 | 99, "x", 1);
    n += rec(b + n, 0x8000, "", 0);
    TB_CHECK(tb_nts_ke_response_parse(b, n, &r, &why) == TB_ERR_UNSUPPORTED);
    b[n - 9] = 0;
    TB_CHECK(tb_nts_ke_response_parse(b, n, &r, &why) == 0);
    /* Server negotiation: a name is kept, a name with a slash is refused. */
    n = ke_response(b, false);
    n += rec(b + n, 6, "ntp.example", 11);
    n += rec(b + n, 0x8000, "", 0);
    TB_REQUIRE(tb_nts_ke_response_parse(b, n, &r, &why) == 0);
    TB_CHECK_STR(r.server, "ntp.example");
    n = ke_response(b, false);
    n += rec(b + n, 6, "ntp/example", 11);
    n += rec(b + n, 0x8000, "", 0);
    TB_CHECK(tb_nts_ke_response_parse(b, n, &r, &why) == TB_ERR_MALFORMED);
    /* No cookie at all. */
    uint8_t nc[] = {0x80, 1, 0, 2, 0, 0, 0x80, 4, 0, 2, 0, 15, 0x80, 0, 0, 0};
    TB_CHECK(tb_nts_ke_response_parse(nc, sizeof(nc), &r, &why) == TB_ERR_MALFORMED);
    TB_CHECK_STR(why, "no usable cookie");
}

static void test_jar(void)
{
    static tb_nts_cookie_jar jar;
    tb_nts_jar_clear(&jar);
    uint8_t c[TB_NTS_COOKIE_MAX + 1], out[TB_NTS_COOKIE_MAX];
    size_t n;
    TB_CHECK(tb_nts_jar_take(&jar, out, sizeof(out), &n) == TB_ERR_AGAIN);
    for (int i = 0; i < TB_NTS_COOKIES_MAX; i++) {
        memset(c, i, 10);
        TB_CHECK(tb_nts_jar_put(&jar, c, 10) == 0);
    }
    TB_CHECK(tb_nts_jar_put(&jar, c, 10) == TB_ERR_FULL);
    TB_CHECK(tb_nts_jar_put(&jar, c, 0) == TB_ERR_INVAL);
    TB_CHECK(tb_nts_jar_take(&jar, out, 9, &n) == TB_ERR_TOO_BIG);
    /* Oldest first, each once. */
    for (int i = 0; i < TB_NTS_COOKIES_MAX; i++) {
        TB_REQUIRE(tb_nts_jar_take(&jar, out, sizeof(out), &n) == 0);
        TB_CHECK(n == 10 && out[0] == i);
        if (i == 2)
            TB_CHECK(tb_nts_jar_put(&jar, c, TB_NTS_COOKIE_MAX + 1) == TB_ERR_TOO_BIG);
    }
    TB_CHECK_EQ(tb_nts_jar_count(&jar), 0);
}

static const tb_nts_keys keys = {.c2s = {1, 2, 3}, .s2c = {4, 5, 6}};

/* The server's side: header ‖ uid ‖ authenticator sealing n_cookies cookie fields. */
static size_t server_reply(uint8_t *p, const uint8_t *uid, int n_cookies, uint32_t refid,
                           uint8_t stratum)
{
    tb_ntp_packet h = {.version = 4, .mode = 4, .stratum = stratum, .refid = refid};
    tb_ntp_packet_write(&h, p);
    size_t n = 48;
    n += ef(p + n, TB_NTS_EF_UID, uid, 32);
    uint8_t pt[1024], nonce[16] = {9};
    size_t plen = 0;
    for (int i = 0; i < n_cookies; i++) {
        uint8_t cookie[100];
        memset(cookie, 0x40 + i, sizeof(cookie));
        plen += ef(pt + plen, TB_NTS_EF_COOKIE, cookie, sizeof(cookie));
    }
    uint8_t *a = p + n;
    size_t flen = 4 + 4 + 16 + 16 + plen;
    tb_put_be16(a, TB_NTS_EF_AUTH);
    tb_put_be16(a + 2, (uint16_t)flen);
    tb_put_be16(a + 4, 16);
    tb_put_be16(a + 6, (uint16_t)(16 + plen));
    memcpy(a + 8, nonce, 16);
    if (tb_nts_aead_seal(keys.s2c, nonce, 16, p, n, pt, plen, a + 24, 16 + plen) < 0)
        return 0;
    return n + flen;
}

/* GnuTLS's AES-SIV-CMAC-256 with the nonce as the last associated-data string, as RFC 8915
 * uses it, agrees with an independent implementation (Python cryptography's AESSIV, given
 * [ad, nonce]). */
static void test_aead_vector(void)
{
    uint8_t key[32], nonce[16], out[64], back[16];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    memset(nonce, 9, sizeof(nonce));
    static const uint8_t want[] = {0x6e, 0x6a, 0xbb, 0x9a, 0x16, 0xc7, 0xcc, 0xe5, 0xa5, 0x2b,
                                   0xdb, 0xc5, 0xb7, 0x43, 0xf5, 0x36, 0x34, 0xc8, 0x97, 0x68,
                                   0xe1, 0xc4, 0x6c, 0x7b, 0xc0, 0x02, 0x37, 0x09, 0xd3};
    const char *ad = "associated data", *pt = "NTS plaintext";
    TB_REQUIRE(tb_nts_aead_seal(key, nonce, 16, (const uint8_t *)ad, strlen(ad),
                                (const uint8_t *)pt, strlen(pt), out, sizeof(out)) == 0);
    TB_CHECK_MEM(out, want, sizeof(want));
    TB_CHECK(tb_nts_aead_open(key, nonce, 16, (const uint8_t *)ad, strlen(ad), want, sizeof(want),
                              back, sizeof(back)) == 0);
    TB_CHECK_MEM(back, pt, strlen(pt));
    TB_CHECK(tb_nts_aead_seal(key, nonce, 16, NULL, 0, (const uint8_t *)pt, strlen(pt), out, 28) ==
             TB_ERR_TOO_BIG);
}

static void test_request(void)
{
    uint8_t hdr[48] = {0x23}, uid[32] = {7}, nonce[16] = {8}, cookie[100] = {0x55};
    static uint8_t out[TB_NTS_REQUEST_MAX];
    size_t n;
    TB_REQUIRE(tb_nts_request_write(&keys, hdr, uid, nonce, cookie, sizeof(cookie), 3, out,
                                    sizeof(out), &n) == 0);
    TB_CHECK_EQ(n, 48 + 36 + 4 * 104 + 40);
    TB_CHECK_EQ(tb_get_be16(out + 48), TB_NTS_EF_UID);
    TB_CHECK_EQ(tb_get_be16(out + 84), TB_NTS_EF_COOKIE);
    TB_CHECK_MEM(out + 88, cookie, sizeof(cookie));
    TB_CHECK_EQ(tb_get_be16(out + 188), TB_NTS_EF_PLACEHOLDER);
    /* The NTP parser walks it: 6 extension fields, no MAC. */
    tb_ntp_packet pk;
    TB_REQUIRE(tb_ntp_packet_parse(out, n, &pk) == 0);
    TB_CHECK_EQ(pk.n_ext_fields, 6);
    /* The server opens the authenticator with c2s over everything before it. */
    size_t at = n - 40;
    uint8_t pt[16];
    TB_CHECK(tb_nts_aead_open(keys.c2s, out + at + 8, 16, out, at, out + at + 24, 16, pt,
                              sizeof(pt)) == 0);
    out[60] ^= 1;
    TB_CHECK(tb_nts_aead_open(keys.c2s, out + at + 8, 16, out, at, out + at + 24, 16, pt,
                              sizeof(pt)) == TB_ERR_VERIFY);
    TB_CHECK(tb_nts_request_write(&keys, hdr, uid, nonce, cookie, sizeof(cookie), 8, out,
                                  sizeof(out), &n) == TB_ERR_INVAL);
    TB_CHECK(tb_nts_request_write(&keys, hdr, uid, nonce, cookie, sizeof(cookie), 3, out, 300,
                                  &n) == TB_ERR_TOO_BIG);
}

static void test_reply(void)
{
    uint8_t uid[32] = {7, 7, 7}, other[32] = {7, 7, 8};
    static uint8_t p[2048];
    static tb_nts_cookie_jar jar;
    tb_nts_jar_clear(&jar);
    size_t n = server_reply(p, uid, 3, 0x7f7f0101, 1);
    TB_REQUIRE(n > 0);
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_OK);
    TB_CHECK_EQ(tb_nts_jar_count(&jar), 3);
    /* Every single flipped bit is caught, in the header or any field. */
    unsigned caught = 0;
    for (size_t bit = 0; bit < n * 8; bit++) {
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        caught += tb_nts_reply_check(&keys, uid, p, n, &jar) != TB_NTS_OK;
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    TB_CHECK_EQ(caught, n * 8);
    TB_CHECK_EQ(tb_nts_jar_count(&jar), 3);
    TB_CHECK(tb_nts_reply_check(&keys, other, p, n, &jar) == TB_NTS_REJ_UID);
    /* Trailing unauthenticated field. */
    n += ef(p + n, 0x7777, "abcdefghijkl", 12);
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_REJ_AFTER_AUTH);
    /* The jar keeps at most 8: a reply with 8 fills the 5 free slots. */
    n = server_reply(p, uid, 8, 0, 1);
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_OK);
    TB_CHECK_EQ(tb_nts_jar_count(&jar), 8);
    /* NAK: kiss NTSN with our identifier and no authenticator. */
    tb_ntp_packet h = {.version = 4, .mode = 4, .stratum = 0, .refid = 0x4e54534e};
    tb_ntp_packet_write(&h, p);
    n = 48 + ef(p + 48, TB_NTS_EF_UID, uid, 32);
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_NAK);
    TB_CHECK(tb_nts_reply_check(&keys, other, p, n, &jar) == TB_NTS_REJ_UID);
    p[15] = 'X'; /* not NTSN: a plain unauthenticated reply */
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_REJ_NO_AUTH);
    /* Lengths that lie. */
    n = server_reply(p, uid, 1, 0, 1);
    tb_put_be16(p + 48 + 36 + 6, 0xfff0); /* ciphertext length */
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_REJ_MALFORMED);
    n = server_reply(p, uid, 1, 0, 1);
    tb_put_be16(p + 48 + 2, 6); /* uid field length not a multiple of 4 */
    TB_CHECK(tb_nts_reply_check(&keys, uid, p, n, &jar) == TB_NTS_REJ_MALFORMED);
}

int main(void)
{
    TB_RUN(test_ke_request);
    TB_RUN(test_ke_response);
    TB_RUN(test_jar);
    TB_RUN(test_aead_vector);
    TB_RUN(test_request);
    TB_RUN(test_reply);
    return TB_DONE();
}
