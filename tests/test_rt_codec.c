/* Roughtime codec, Merkle verification and response verification against the example packets
 * of draft-ietf-ntp-roughtime-19 Appendix B (RFC 10049), plus codec rejection cases. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "roughtime/codec.h"
#include "roughtime/merkle.h"
#include "roughtime/verify.h"
#include "rt_appendix_b.h"
#include "tb_test.h"

static const uint8_t *const vec_req[3] = {rt_b0_request, rt_b1_request, rt_b2_request};
static const uint8_t *const vec_resp[3] = {rt_b0_response, rt_b1_response, rt_b2_response};
static const uint8_t *const vec_pk[3] = {rt_b0_pubkey, rt_b1_pubkey, rt_b2_pubkey};

static void test_vector_requests_parse(void)
{
    for (int i = 0; i < 3; i++) {
        tb_rt_request r;
        tb_rt_req_error why;
        TB_REQUIRE(tb_rt_request_parse(vec_req[i], 1036, &r, &why) == 0);
        TB_CHECK_EQ(why, TB_RT_REQ_OK);
        TB_CHECK_EQ(r.nversions, 1);
        TB_CHECK_EQ(r.versions[0], TB_RT_VER_RFC);
        TB_REQUIRE(r.srv != NULL);
        uint8_t srv[32];
        tb_rt_hash(srv, 32, 0xff, vec_pk[i], 32, NULL, 0);
        TB_CHECK_MEM(srv, r.srv, 32);
    }
}

static void test_vector_responses_parse(void)
{
    /* Appendix B: MIDP 1773685571 (first server, a day ahead), then 1773599171 twice; RADI 3. */
    static const uint64_t midp[3] = {1773685571, 1773599171, 1773599171};
    static const uint64_t mint[3] = {1773080680, 1773080705, 1773080724};
    for (int i = 0; i < 3; i++) {
        tb_rt_response r;
        uint32_t v;
        TB_REQUIRE(tb_rt_response_version(vec_resp[i], 416, &v) == 0);
        TB_CHECK_EQ(v, TB_RT_VER_RFC);
        TB_REQUIRE(tb_rt_response_parse(vec_resp[i], 416, v, &r) == 0);
        TB_CHECK(r.midp == midp[i]);
        TB_CHECK(r.mint == mint[i]);
        TB_CHECK(r.maxt == mint[i] + 3193200);
        TB_CHECK_EQ(r.radi, 3);
        TB_CHECK_EQ(r.has_type, 1);
        TB_CHECK_EQ(r.type, 1);
        TB_CHECK_EQ(r.indx, 0);
        TB_CHECK_EQ(r.path_len, 0);
        TB_CHECK_EQ(r.nvers, 1);
    }
}

static void test_vector_verify(void)
{
    for (int i = 0; i < 3; i++) {
        tb_rt_query q;
        tb_rt_reason why;
        TB_REQUIRE(tb_rt_query_adopt(&q, vec_pk[i], vec_req[i], 1036, 0) == 0);
        TB_CHECK_EQ(tb_rt_verify(&q, vec_resp[i], 416, 0, &why), 0);
        TB_CHECK_EQ(why, TB_RT_OK);
        TB_CHECK_EQ(q.version, TB_RT_VER_RFC);
        TB_CHECK_EQ(q.radi_us, 3000000);
        /* The wrong server's key must not verify. */
        TB_REQUIRE(tb_rt_query_adopt(&q, vec_pk[(i + 1) % 3], vec_req[i], 1036, 0) == 0);
        TB_CHECK_EQ(tb_rt_verify(&q, vec_resp[i], 416, 0, &why), TB_ERR_VERIFY);
        TB_CHECK_EQ(why, TB_RT_BAD_DELE_SIG);
    }
}

static void test_vector_chain_and_causality(void)
{
    uint8_t nonce[32];
    tb_rt_chain_nonce(rt_b0_response, 416, rt_b1_rand, nonce, 32);
    TB_CHECK_MEM(nonce, rt_b1_request + 1036 - 912 - 4 - 32, 32);
    tb_rt_chain_nonce(rt_b1_response, 416, rt_b2_rand, nonce, 32);
    tb_rt_query q[3];
    const tb_rt_query *qs[3];
    for (int i = 0; i < 3; i++) {
        tb_rt_reason why;
        TB_REQUIRE(tb_rt_query_adopt(&q[i], vec_pk[i], vec_req[i], 1036, 0) == 0);
        TB_REQUIRE(tb_rt_verify(&q[i], vec_resp[i], 416, 0, &why) == 0);
        qs[i] = &q[i];
    }
    TB_CHECK_MEM(nonce, q[2].nonce, 32);
    unsigned bi = 9, bj = 9;
    TB_CHECK_EQ(tb_rt_causality_check(qs, 3, &bi, &bj), TB_ERR_VERIFY);
    TB_CHECK_EQ(bi, 0);
    TB_CHECK_EQ(bj, 1);
    TB_CHECK_EQ(tb_rt_causality_check(qs + 1, 2, &bi, &bj), 0);

    memcpy(q[1].rand, rt_b1_rand, 32);
    q[1].has_rand = 1;
    memcpy(q[2].rand, rt_b2_rand, 32);
    q[2].has_rand = 1;
    char *json = NULL;
    TB_REQUIRE(tb_rt_malfeasance_json(qs, 3, &json) == 0);
    /* Appendix B's values, base64 as the draft prints them. */
    TB_CHECK(strstr(json, "\"publicKey\": \"lRhHag6fn2wZQ6idy10ChgpRgks3gvdMM2hWNeJNgXg=\""));
    TB_CHECK(strstr(json, "\"rand\": \"v/DirVBRQLGtictYD7mN3px02UlMT4J3haTRomt1NNM=\""));
    TB_CHECK(strstr(json, "\"response\": \"Uk9VR0hUSU2UAQAABwAAAEAAAABgAAAAZAAAAGQAAADAAAAAWAE"));
    TB_CHECK(strstr(json, "\"rand\"") == strstr(json, "\"rand\": \"v/Dir")); /* none on the first */
    free(json);
}

/* Flipping one bit anywhere in a signed or checked part must fail with that part's reason. */
static void flip_case(const uint8_t *field, size_t len, tb_rt_reason expect)
{
    uint8_t buf[416];
    memcpy(buf, rt_b0_response, 416);
    size_t off = (size_t)(field - rt_b0_response) + len / 2;
    buf[off] ^= 0x10;
    tb_rt_query q;
    tb_rt_reason why = TB_RT_OK;
    TB_REQUIRE(tb_rt_query_adopt(&q, rt_b0_pubkey, rt_b0_request, 1036, 0) == 0);
    TB_CHECK(tb_rt_verify(&q, buf, 416, 0, &why) < 0);
    if (why != expect)
        fprintf(stderr, "flip at %zu: got %s, want %s\n", off, tb_rt_reason_name(why),
                tb_rt_reason_name(expect));
    TB_CHECK_EQ(why, expect);
}

static void test_vector_flipped_bits(void)
{
    tb_rt_response r;
    TB_REQUIRE(tb_rt_response_parse(rt_b0_response, 416, TB_RT_VER_RFC, &r) == 0);
    flip_case(r.sig, 64, TB_RT_BAD_SIG);
    flip_case(r.nonce, 32, TB_RT_BAD_NONCE);
    flip_case(r.cert_sig, 64, TB_RT_BAD_DELE_SIG);
    flip_case(r.pubk, 32, TB_RT_BAD_DELE_SIG); /* inside DELE */
    flip_case(r.root, 32, TB_RT_BAD_MERKLE);   /* inside SREP */
    tb_rt_msg sm;
    const uint8_t *radi, *midp;
    TB_REQUIRE(tb_rt_msg_parse(r.srep, r.srep_len, &sm) == 0);
    TB_REQUIRE(tb_rt_msg_fixed(&sm, TB_RT_TAG_RADI, 4, &radi) == 0);
    TB_REQUIRE(tb_rt_msg_fixed(&sm, TB_RT_TAG_MIDP, 8, &midp) == 0);
    flip_case(radi, 1, TB_RT_BAD_SIG);            /* RADI 3 -> 19: signed, so SIG fails */
    flip_case(midp + 4, 2, TB_RT_BAD_DELE_RANGE); /* MIDP + 2^44 s: beyond MAXT */
    flip_case(midp, 1, TB_RT_BAD_SIG);            /* MIDP + 16 s: inside MINT..MAXT */
    /* INDX: any non-zero bit is left over after an empty PATH. */
    uint8_t buf[416];
    memcpy(buf, rt_b0_response, 416);
    size_t indx_off = 416 - 4;
    TB_CHECK_EQ(tb_get_le32(buf + indx_off), 0);
    buf[indx_off] ^= 1;
    tb_rt_query q;
    tb_rt_reason why;
    TB_REQUIRE(tb_rt_query_adopt(&q, rt_b0_pubkey, rt_b0_request, 1036, 0) == 0);
    TB_CHECK_EQ(tb_rt_verify(&q, buf, 416, 0, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(why, TB_RT_BAD_MERKLE);
    /* The request is the leaf: a flipped padding bit in our own copy breaks the path. */
    uint8_t req[1036];
    memcpy(req, rt_b0_request, 1036);
    req[1000] ^= 1;
    TB_REQUIRE(tb_rt_query_adopt(&q, rt_b0_pubkey, req, 1036, 0) == 0);
    TB_CHECK_EQ(tb_rt_verify(&q, rt_b0_response, 416, 0, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(why, TB_RT_BAD_MERKLE);
    /* TYPE 1 -> 0x11. */
    flip_case(rt_b0_response + 12 + 56 + 64 + 32, 1, TB_RT_BAD_TYPE);
}

static void test_builder_round_trip(void)
{
    tb_rt_builder b;
    uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c[4] = {9, 9, 9, 9}, out[128];
    size_t len;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_NONC, a, 8);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, c, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_PATH, NULL, 0);
    TB_REQUIRE(tb_rt_builder_write(&b, 1, out, sizeof(out), &len) == 0);
    TB_CHECK_EQ(len, 12 + 24 + 12);
    const uint8_t *m;
    size_t mlen;
    tb_rt_msg msg;
    TB_REQUIRE(tb_rt_packet_unwrap(out, len, &m, &mlen) == 0);
    TB_REQUIRE(tb_rt_msg_parse(m, mlen, &msg) == 0);
    TB_CHECK_EQ(msg.n, 3);
    TB_CHECK_EQ(msg.tags[0], TB_RT_TAG_SIG); /* sorted by the uint32 value */
    TB_CHECK_EQ(msg.tags[1], TB_RT_TAG_NONC);
    TB_CHECK_EQ(msg.tags[2], TB_RT_TAG_PATH);
    uint64_t v;
    TB_REQUIRE(tb_rt_msg_u64(&msg, TB_RT_TAG_NONC, &v) == 0);
    TB_CHECK(v == 0x0807060504030201ULL);
    const uint8_t *val;
    TB_CHECK_EQ(tb_rt_msg_fixed(&msg, TB_RT_TAG_PATH, 0, &val), 0);
    TB_CHECK_EQ(tb_rt_msg_fixed(&msg, TB_RT_TAG_SIG, 8, &val), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_rt_msg_fixed(&msg, TB_RT_TAG_ROOT, 8, &val), TB_ERR_NOTFOUND);
    /* Builder errors: odd length, duplicate tag, too small a buffer. */
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, a, 3);
    TB_CHECK_EQ(tb_rt_builder_write(&b, 0, out, sizeof(out), &len), TB_ERR_INVAL);
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, a, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, a, 4);
    TB_CHECK_EQ(tb_rt_builder_write(&b, 0, out, sizeof(out), &len), TB_ERR_EXISTS);
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, a, 8);
    TB_CHECK_EQ(tb_rt_builder_write(&b, 1, out, 12, &len), TB_ERR_TOO_BIG);
}

static int parse_words(const uint32_t *w, size_t n)
{
    uint8_t buf[256];
    tb_rt_msg m;
    for (size_t i = 0; i < n; i++)
        tb_put_le32(buf + 4 * i, w[i]);
    return tb_rt_msg_parse(buf, 4 * n, &m);
}

static void test_message_rejections(void)
{
    uint8_t buf[64] = {0};
    tb_rt_msg m;
    const uint32_t A = TB_RT_TAG_SIG, B = TB_RT_TAG_NONC;
    /* The good shape first, so each rejection below is due to its one change. */
    const uint32_t good[] = {2, 4, A, B, 0x11111111, 0x22222222};
    TB_CHECK_EQ(parse_words(good, 6), 0);
    const uint32_t unaligned[] = {2, 2, A, B, 0x11111111, 0x22222222};
    TB_CHECK_EQ(parse_words(unaligned, 6), TB_ERR_MALFORMED);
    const uint32_t beyond[] = {2, 12, A, B, 0x11111111, 0x22222222};
    TB_CHECK_EQ(parse_words(beyond, 6), TB_ERR_MALFORMED);
    const uint32_t decreasing[] = {3, 8, 4, A, B, TB_RT_TAG_PATH, 1, 2, 3};
    TB_CHECK_EQ(parse_words(decreasing, 9), TB_ERR_MALFORMED);
    const uint32_t unsorted[] = {2, 4, B, A, 0x11111111, 0x22222222};
    TB_CHECK_EQ(parse_words(unsorted, 6), TB_ERR_MALFORMED);
    const uint32_t repeated[] = {2, 4, A, A, 0x11111111, 0x22222222};
    TB_CHECK_EQ(parse_words(repeated, 6), TB_ERR_MALFORMED);
    const uint32_t huge_count[] = {0xffffffff, 0, 0, 0};
    TB_CHECK_EQ(parse_words(huge_count, 4), TB_ERR_TOO_BIG);
    const uint32_t short_header[] = {3, 4, 8, A};
    TB_CHECK_EQ(parse_words(short_header, 4), TB_ERR_TRUNCATED);
    const uint32_t empty_with_junk[] = {0, 7};
    TB_CHECK_EQ(parse_words(empty_with_junk, 2), TB_ERR_MALFORMED);
    const uint32_t empty[] = {0};
    TB_CHECK_EQ(parse_words(empty, 1), 0);
    TB_CHECK_EQ(tb_rt_msg_parse(buf, 3, &m), TB_ERR_TRUNCATED);
    TB_CHECK_EQ(tb_rt_msg_parse(buf, 6, &m), TB_ERR_MALFORMED);
    const uint32_t over_cap[] = {TB_RT_MAX_TAGS + 1};
    TB_CHECK_EQ(parse_words(over_cap, 1), TB_ERR_TOO_BIG);
}

static void test_packet_rejections(void)
{
    const uint8_t *m;
    size_t mlen;
    uint8_t p[1036];
    memcpy(p, rt_b0_request, 1036);
    TB_CHECK_EQ(tb_rt_packet_unwrap(p, 1036, &m, &mlen), 0);
    TB_CHECK_EQ(tb_rt_packet_unwrap(p, 1035, &m, &mlen), TB_ERR_TRUNCATED);
    TB_CHECK_EQ(tb_rt_packet_unwrap(p, 11, &m, &mlen), TB_ERR_TRUNCATED);
    p[0] = 'r';
    TB_CHECK_EQ(tb_rt_packet_unwrap(p, 1036, &m, &mlen), TB_ERR_MALFORMED);
    p[0] = 'R';
    tb_put_le32(p + 8, 1000);
    TB_CHECK_EQ(tb_rt_packet_unwrap(p, 1036, &m, &mlen), TB_ERR_MALFORMED);

    /* Requests missing each mandatory tag are named by reason. */
    static const struct {
        uint32_t drop;
        tb_rt_req_error why;
    } cases[] = {{TB_RT_TAG_VER, TB_RT_REQ_NO_VER},
                 {TB_RT_TAG_NONC, TB_RT_REQ_NO_NONC},
                 {TB_RT_TAG_TYPE, TB_RT_REQ_NO_TYPE}};
    uint8_t ver[4], nonce[32] = {0}, type[4] = {0}, pad[900] = {0}, out[1100];
    tb_put_le32(ver, TB_RT_VER_RFC);
    for (size_t i = 0; i < 3; i++) {
        tb_rt_builder b;
        size_t len;
        tb_rt_request r;
        tb_rt_req_error why;
        tb_rt_builder_init(&b);
        if (cases[i].drop != TB_RT_TAG_VER)
            tb_rt_builder_add(&b, TB_RT_TAG_VER, ver, 4);
        if (cases[i].drop != TB_RT_TAG_NONC)
            tb_rt_builder_add(&b, TB_RT_TAG_NONC, nonce, 32);
        if (cases[i].drop != TB_RT_TAG_TYPE)
            tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
        tb_rt_builder_add(&b, TB_RT_TAG_ZZZZ, pad, sizeof(pad));
        TB_REQUIRE(tb_rt_builder_write(&b, 1, out, sizeof(out), &len) == 0);
        TB_CHECK_EQ(tb_rt_request_parse(out, len, &r, &why), TB_ERR_MALFORMED);
        TB_CHECK_EQ(why, cases[i].why);
    }
    /* VER unsorted, and TYPE 1 (a response type). */
    uint8_t vers[8];
    tb_put_le32(vers, TB_RT_VER_DRAFT12);
    tb_put_le32(vers + 4, TB_RT_VER_RFC);
    tb_rt_builder b;
    size_t len;
    tb_rt_request r;
    tb_rt_req_error why;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_VER, vers, 8);
    tb_rt_builder_add(&b, TB_RT_TAG_NONC, nonce, 32);
    tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
    TB_REQUIRE(tb_rt_builder_write(&b, 1, out, sizeof(out), &len) == 0);
    TB_CHECK_EQ(tb_rt_request_parse(out, len, &r, &why), TB_ERR_MALFORMED);
    TB_CHECK_EQ(why, TB_RT_REQ_NO_VER);
    type[0] = 1;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_VER, ver, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_NONC, nonce, 32);
    tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
    TB_REQUIRE(tb_rt_builder_write(&b, 1, out, sizeof(out), &len) == 0);
    TB_CHECK_EQ(tb_rt_request_parse(out, len, &r, &why), TB_ERR_MALFORMED);
    TB_CHECK_EQ(why, TB_RT_REQ_NO_TYPE);
}

static void test_truncated_responses(void)
{
    /* Every prefix of a valid response is rejected without reading past it. */
    for (size_t n = 0; n < 416; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, rt_b0_response, n);
        tb_rt_response r;
        TB_CHECK(tb_rt_response_parse(copy, n, TB_RT_VER_RFC, &r) < 0);
        free(copy);
    }
}

static void test_request_build(void)
{
    uint8_t nonce[64], pk[32];
    randombytes_buf(nonce, sizeof(nonce));
    randombytes_buf(pk, sizeof(pk));
    uint32_t vers[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT08, TB_RT_VER_DRAFT11, TB_RT_VER_DRAFT12};
    tb_rt_query q;
    TB_REQUIRE(tb_rt_query_init(&q, pk, vers, 4, nonce, 0) == 0);
    TB_CHECK_EQ(q.request_len, 1036);
    tb_rt_request r;
    tb_rt_req_error why;
    TB_REQUIRE(tb_rt_request_parse(q.request, q.request_len, &r, &why) == 0);
    TB_CHECK_EQ(r.nversions, 4);
    TB_CHECK_MEM(r.nonce, nonce, 32);
    uint32_t google = TB_RT_VER_GOOGLE;
    TB_REQUIRE(tb_rt_query_init(&q, pk, &google, 1, nonce, 0) == 0);
    TB_CHECK_EQ(q.request_len, 1024);
    tb_rt_msg m;
    const uint8_t *v;
    TB_REQUIRE(tb_rt_msg_parse(q.request, q.request_len, &m) == 0);
    TB_CHECK_EQ(tb_rt_msg_fixed(&m, TB_RT_TAG_NONC, 64, &v), 0);
    TB_CHECK_MEM(v, nonce, 64);
    uint32_t bad[] = {TB_RT_VER_DRAFT12, TB_RT_VER_RFC};
    TB_CHECK_EQ(tb_rt_query_init(&q, pk, bad, 2, nonce, 0), TB_ERR_INVAL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_vector_requests_parse);
    TB_RUN(test_vector_responses_parse);
    TB_RUN(test_vector_verify);
    TB_RUN(test_vector_chain_and_causality);
    TB_RUN(test_vector_flipped_bits);
    TB_RUN(test_builder_round_trip);
    TB_RUN(test_message_rejections);
    TB_RUN(test_packet_rejections);
    TB_RUN(test_truncated_responses);
    TB_RUN(test_request_build);
    return TB_DONE();
}
