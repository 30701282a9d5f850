/* Roughtime client against the project's own server logic, in process (no sockets): every
 * version both speak, batches, flipped bits in each signed part, the server's drop rules, key
 * rotation, and a lying server caught by a chained measurement sequence. */
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "roughtime/codec.h"
#include "roughtime/server.h"
#include "roughtime/verify.h"
#include "tb_test.h"

#define NOW_NS ((int64_t)1795000000 * (int64_t)TB_NS_PER_SEC + 123456789)

typedef struct captured {
    unsigned n;
    uint64_t cookie[256];
    uint8_t resp[256][1024];
    size_t len[256];
} captured;

static void capture(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    captured *c = arg;
    if (c->n < 256) {
        c->cookie[c->n] = cookie;
        memcpy(c->resp[c->n], resp, len);
        c->len[c->n] = len;
        c->n++;
    }
}

static tb_rt_srv *new_server(unsigned max_batch, int64_t now)
{
    tb_rt_srv_config cfg;
    uint8_t pk[32];
    tb_rt_srv *s = NULL;
    tb_rt_srv_config_default(&cfg);
    cfg.max_batch = max_batch;
    crypto_sign_ed25519_keypair(pk, cfg.longterm_sk);
    if (tb_rt_srv_new(&cfg, NULL, now, &s) < 0)
        return NULL;
    return s;
}

static int make_query(tb_rt_query *q, const tb_rt_srv *s, const uint32_t *vers, unsigned n)
{
    uint8_t nonce[64];
    randombytes_buf(nonce, sizeof(nonce));
    return tb_rt_query_init(q, tb_rt_srv_pubkey(s), vers, n, nonce, NOW_NS - 1000000);
}

static void test_versions(void)
{
    static const struct {
        uint32_t vers[2];
        unsigned n;
        uint32_t expect;
    } cases[] = {{{TB_RT_VER_RFC}, 1, TB_RT_VER_RFC},
                 {{TB_RT_VER_DRAFT12}, 1, TB_RT_VER_DRAFT12},
                 {{TB_RT_VER_RFC, TB_RT_VER_DRAFT12}, 2, TB_RT_VER_RFC},
                 {{TB_RT_VER_DRAFT11, TB_RT_VER_DRAFT12}, 2, TB_RT_VER_DRAFT12}};
    static captured c;
    tb_rt_srv *s = new_server(64, NOW_NS);
    TB_REQUIRE(s);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        tb_rt_query q;
        tb_rt_reason why;
        TB_REQUIRE(make_query(&q, s, cases[k].vers, cases[k].n) == 0);
        TB_REQUIRE(tb_rt_srv_submit(s, q.request, q.request_len, 7) == 0);
        c.n = 0;
        TB_REQUIRE(tb_rt_srv_flush(s, NOW_NS, 3, capture, &c) == 1);
        TB_CHECK_EQ(c.cookie[0], 7);
        TB_CHECK(c.len[0] <= q.request_len);
        TB_CHECK_EQ(tb_rt_verify(&q, c.resp[0], c.len[0], NOW_NS + 1000000, &why), 0);
        TB_CHECK_EQ(why, TB_RT_OK);
        TB_CHECK_EQ(q.version, cases[k].expect);
        TB_CHECK_EQ(q.midp_us, 1795000000LL * 1000000);
        TB_CHECK_EQ(q.radi_us, 3000000);
        TB_CHECK_EQ(q.rtt_ns, 2000000);
        TB_CHECK_EQ(q.request_len, 1036);
    }
    tb_rt_srv_free(s);
}

static void test_batches(void)
{
    static const unsigned sizes[] = {1, 2, 3, 8, 64, 100, 128};
    static captured c;
    static tb_rt_query q[128];
    uint32_t v = TB_RT_VER_RFC;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned n = sizes[k];
        tb_rt_srv *s = new_server(64, NOW_NS);
        TB_REQUIRE(s);
        for (unsigned i = 0; i < n; i++) {
            TB_REQUIRE(make_query(&q[i], s, &v, 1) == 0);
            TB_REQUIRE(tb_rt_srv_submit(s, q[i].request, q[i].request_len, i) == 0);
        }
        TB_CHECK_EQ(tb_rt_srv_batch_full(s), n >= 64);
        c.n = 0;
        TB_CHECK_EQ(tb_rt_srv_flush(s, NOW_NS, 3, capture, &c), (int)n);
        /* One signature per batch of at most 64. */
        TB_CHECK_EQ(tb_rt_srv_stats_get(s)->batches, (n + 63) / 64);
        for (unsigned i = 0; i < c.n; i++) {
            tb_rt_reason why;
            tb_rt_query *mine = &q[c.cookie[i]];
            TB_CHECK_EQ(tb_rt_verify(mine, c.resp[i], c.len[i], NOW_NS, &why), 0);
            /* Someone else's response must not verify for me. */
            tb_rt_query *other = &q[(c.cookie[i] + 1) % n];
            if (n > 1) {
                tb_rt_query copy = *other;
                TB_CHECK_EQ(tb_rt_verify(&copy, c.resp[i], c.len[i], NOW_NS, &why), TB_ERR_VERIFY);
                TB_CHECK_EQ(why, TB_RT_BAD_NONCE);
            }
        }
        tb_rt_srv_free(s);
    }
}

/* Flips one bit in the middle of a field of a batch response and expects the named reason. */
static void flip(const tb_rt_query *q0, const uint8_t *resp, size_t len, const uint8_t *field,
                 size_t flen, tb_rt_reason expect)
{
    uint8_t buf[1024];
    tb_rt_query q = *q0;
    tb_rt_reason why = TB_RT_OK;
    memcpy(buf, resp, len);
    buf[(field - resp) + flen / 2] ^= 0x04;
    TB_CHECK(tb_rt_verify(&q, buf, len, NOW_NS, &why) < 0);
    if (why != expect)
        fprintf(stderr, "flip in field at %td: %s, want %s\n", field - resp, tb_rt_reason_name(why),
                tb_rt_reason_name(expect));
    TB_CHECK_EQ(why, expect);
}

static void test_flipped_bits(void)
{
    static captured c;
    static tb_rt_query q[5];
    uint32_t v = TB_RT_VER_RFC;
    tb_rt_srv *s = new_server(64, NOW_NS);
    TB_REQUIRE(s);
    for (unsigned i = 0; i < 5; i++) {
        TB_REQUIRE(make_query(&q[i], s, &v, 1) == 0);
        TB_REQUIRE(tb_rt_srv_submit(s, q[i].request, q[i].request_len, i) == 0);
    }
    c.n = 0;
    TB_REQUIRE(tb_rt_srv_flush(s, NOW_NS, 5, capture, &c) == 5);
    const uint8_t *resp = c.resp[2];
    size_t len = c.len[2];
    tb_rt_response r;
    TB_REQUIRE(tb_rt_response_parse(resp, len, TB_RT_VER_RFC, &r) == 0);
    TB_REQUIRE(r.path_len == 3 * 32);
    flip(&q[2], resp, len, r.sig, 64, TB_RT_BAD_SIG);
    flip(&q[2], resp, len, r.nonce, 32, TB_RT_BAD_NONCE);
    flip(&q[2], resp, len, r.path, 32, TB_RT_BAD_MERKLE);
    flip(&q[2], resp, len, r.path + 64, 32, TB_RT_BAD_MERKLE);
    flip(&q[2], resp, len, r.root, 32, TB_RT_BAD_MERKLE);  /* SREP */
    flip(&q[2], resp, len, r.srep + 44, 1, TB_RT_BAD_SIG); /* SREP.RADI */
    flip(&q[2], resp, len, r.cert_sig, 64, TB_RT_BAD_DELE_SIG);
    flip(&q[2], resp, len, r.pubk, 32, TB_RT_BAD_DELE_SIG);     /* DELE */
    flip(&q[2], resp, len, r.dele + 48, 1, TB_RT_BAD_DELE_SIG); /* DELE.MINT */
    /* INDX 2 -> 6: a bit above the path's height is left over. */
    const uint8_t *indx = resp + len - 4;
    TB_CHECK_EQ(tb_get_le32(indx), 2);
    flip(&q[2], resp, len, indx, 1, TB_RT_BAD_MERKLE);
    tb_rt_srv_free(s);
}

static void test_drops(void)
{
    static captured c;
    tb_rt_srv *s = new_server(4, NOW_NS), *other = new_server(4, NOW_NS);
    TB_REQUIRE(s && other);
    tb_rt_query q;
    uint32_t rfc = TB_RT_VER_RFC, d11 = TB_RT_VER_DRAFT11;
    /* SRV for another key. */
    TB_REQUIRE(make_query(&q, other, &rfc, 1) == 0);
    TB_CHECK(tb_rt_srv_submit(s, q.request, q.request_len, 0) < 0);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->drops[TB_RT_DROP_UNKNOWN_SRV], 1);
    /* No common version. */
    TB_REQUIRE(make_query(&q, s, &d11, 1) == 0);
    TB_CHECK(tb_rt_srv_submit(s, q.request, q.request_len, 0) < 0);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->drops[TB_RT_DROP_NO_VERSION], 1);
    /* Under 1024 bytes. */
    TB_REQUIRE(make_query(&q, s, &rfc, 1) == 0);
    TB_CHECK(tb_rt_srv_submit(s, q.request, 1000, 0) < 0);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->drops[TB_RT_DROP_TOO_SHORT], 1);
    /* Google-Roughtime (unframed) is not served. */
    uint32_t g = TB_RT_VER_GOOGLE;
    TB_REQUIRE(make_query(&q, s, &g, 1) == 0);
    TB_CHECK(tb_rt_srv_submit(s, q.request, q.request_len, 0) < 0);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->drops[TB_RT_DROP_FRAMING], 1);
    /* A request without SRV is answered with the only key. */
    uint8_t pkt[1100], nonce[32] = {1}, ver[4], type[4] = {0}, pad[1000] = {0};
    size_t len;
    tb_put_le32(ver, TB_RT_VER_RFC);
    tb_rt_builder b;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_VER, ver, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_NONC, nonce, 32);
    tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_ZZZZ, pad, sizeof(pad));
    TB_REQUIRE(tb_rt_builder_write(&b, 1, pkt, sizeof(pkt), &len) == 0);
    TB_CHECK_EQ(tb_rt_srv_submit(s, pkt, len, 0), 0);
    /* The queue (default cap 256 for max_batch 4 here) drops the newest when full. */
    TB_REQUIRE(make_query(&q, s, &rfc, 1) == 0);
    unsigned accepted = 1;
    while (tb_rt_srv_submit(s, q.request, q.request_len, 0) == 0)
        accepted++;
    TB_CHECK_EQ(accepted, 256);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->drops[TB_RT_DROP_QUEUE_FULL], 1);
    c.n = 0;
    TB_CHECK_EQ(tb_rt_srv_flush(s, NOW_NS, 3, capture, &c), 256);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->batches, 64);
    TB_CHECK_EQ(tb_rt_srv_pending(s), 0);
    tb_rt_srv_free(s);
    tb_rt_srv_free(other);
}

static void test_rotation(void)
{
    static captured c;
    tb_rt_srv *s = new_server(8, NOW_NS);
    TB_REQUIRE(s);
    uint32_t rfc = TB_RT_VER_RFC;
    int64_t next = tb_rt_srv_next_rotation(s);
    TB_CHECK_EQ(next, NOW_NS + 43200 * (int64_t)TB_NS_PER_SEC);
    tb_rt_query q;
    tb_rt_response r1, r2;
    TB_REQUIRE(make_query(&q, s, &rfc, 1) == 0);
    TB_REQUIRE(tb_rt_srv_submit(s, q.request, q.request_len, 0) == 0);
    c.n = 0;
    TB_REQUIRE(tb_rt_srv_flush(s, NOW_NS, 3, capture, &c) == 1);
    TB_REQUIRE(tb_rt_response_parse(c.resp[0], c.len[0], rfc, &r1) == 0);
    uint8_t pubk1[32];
    memcpy(pubk1, r1.pubk, 32);
    /* Rotating at the due time: a new online key, still verifying with the same long-term key. */
    TB_REQUIRE(tb_rt_srv_rotate(s, next) == 0);
    TB_REQUIRE(make_query(&q, s, &rfc, 1) == 0);
    TB_REQUIRE(tb_rt_srv_submit(s, q.request, q.request_len, 0) == 0);
    c.n = 0;
    TB_REQUIRE(tb_rt_srv_flush(s, next, 3, capture, &c) == 1);
    TB_REQUIRE(tb_rt_response_parse(c.resp[0], c.len[0], rfc, &r2) == 0);
    TB_CHECK(memcmp(pubk1, r2.pubk, 32) != 0);
    TB_CHECK(r2.mint > r1.mint);
    tb_rt_reason why;
    TB_CHECK_EQ(tb_rt_verify(&q, c.resp[0], c.len[0], next, &why), 0);
    TB_CHECK_EQ(tb_rt_srv_stats_get(s)->rotations, 2);
    tb_rt_srv_free(s);
}

static void test_radius(void)
{
    TB_CHECK_EQ(tb_rt_radius_s(0, 0, 0), 3);
    TB_CHECK_EQ(tb_rt_radius_s(0, 0, 7), 7);
    TB_CHECK_EQ(tb_rt_radius_s(1, 0, 7), 1);
    TB_CHECK_EQ(tb_rt_radius_s(1, 16000, 7), 1);
    TB_CHECK_EQ(tb_rt_radius_s(1, 600000, 7), 2);
    TB_CHECK_EQ(tb_rt_radius_s(1, 16000000, 7), 17);
}

/* Queries servers[0..n) twice in order with chained nonces, verifying each; the liar's clock is
 * shifted by its `now`. Returns the index of the causality violation pair or -1. */
static int run_sequence(tb_rt_srv **srv, const int64_t *shift_ns, unsigned n, tb_rt_query *q,
                        unsigned *bad_i, unsigned *bad_j)
{
    static captured c;
    const tb_rt_query *qs[16];
    uint32_t rfc = TB_RT_VER_RFC;
    int64_t now = NOW_NS;
    for (unsigned k = 0; k < 2 * n; k++) {
        tb_rt_srv *s = srv[k % n];
        uint8_t nonce[32], rnd[32];
        randombytes_buf(rnd, 32);
        if (k == 0)
            memcpy(nonce, rnd, 32);
        else
            tb_rt_chain_nonce(q[k - 1].response, q[k - 1].response_len, rnd, nonce, 32);
        if (tb_rt_query_init(&q[k], tb_rt_srv_pubkey(s), &rfc, 1, nonce, now) < 0)
            return -2;
        if (k > 0) {
            memcpy(q[k].rand, rnd, 32);
            q[k].has_rand = 1;
        }
        if (tb_rt_srv_submit(s, q[k].request, q[k].request_len, k) < 0)
            return -2;
        c.n = 0;
        if (tb_rt_srv_flush(s, now + shift_ns[k % n], 3, capture, &c) != 1)
            return -2;
        now += 50 * (int64_t)TB_NS_PER_MS;
        tb_rt_reason why;
        if (tb_rt_verify(&q[k], c.resp[0], c.len[0], now, &why) < 0)
            return -2;
        qs[k] = &q[k];
    }
    return tb_rt_causality_check(qs, 2 * n, bad_i, bad_j) < 0 ? 1 : -1;
}

static void test_liar_caught_by_sequence(void)
{
    static tb_rt_query q[6];
    tb_rt_srv *srv[3];
    for (int i = 0; i < 3; i++)
        TB_REQUIRE((srv[i] = new_server(8, NOW_NS)) != NULL);
    unsigned bi = 99, bj = 99;
    const int64_t honest[3] = {0, 0, 0};
    TB_CHECK_EQ(run_sequence(srv, honest, 3, q, &bi, &bj), -1);
    /* The second server runs 30 s ahead (beyond both radii of 3 s). */
    const int64_t liar[3] = {0, 30 * (int64_t)TB_NS_PER_SEC, 0};
    TB_CHECK_EQ(run_sequence(srv, liar, 3, q, &bi, &bj), 1);
    TB_CHECK_EQ(bi, 1);
    TB_CHECK_EQ(bj, 2);
    /* The chain holds: each nonce is H(previous response ‖ rand). */
    uint8_t nonce[32];
    tb_rt_chain_nonce(q[3].response, q[3].response_len, q[4].rand, nonce, 32);
    TB_CHECK_MEM(nonce, q[4].nonce, 32);
    const tb_rt_query *qs[6];
    for (int i = 0; i < 6; i++)
        qs[i] = &q[i];
    char *json = NULL;
    TB_REQUIRE(tb_rt_malfeasance_json(qs, 6, &json) == 0);
    TB_CHECK(strstr(json, "\"responses\"") != NULL);
    TB_CHECK(strstr(json, "\"request\": \"Uk9VR0hUSU0") != NULL); /* base64 of ROUGHTIM */
    free(json);
    /* Shifted by less than the radii: consistent. */
    const int64_t small[3] = {0, 2 * (int64_t)TB_NS_PER_SEC, 0};
    TB_CHECK_EQ(run_sequence(srv, small, 3, q, &bi, &bj), -1);
    for (int i = 0; i < 3; i++)
        tb_rt_srv_free(srv[i]);
}

typedef struct warnings {
    unsigned n;
    char all[2048];
} warnings;

static void warn(void *arg, const char *msg)
{
    warnings *w = arg;
    size_t used = strlen(w->all);
    w->n++;
    snprintf(w->all + used, sizeof(w->all) - used, "%s\n", msg);
}

static void test_server_list(void)
{
    /* draft-ietf-ntp-roughtime-19 Appendix A "Example Server List" (abridged to its fields). */
    static const char list[] =
        "{\"servers\":[{\"name\":\"example.com Roughtime server\",\"version\":1,"
        "\"publicKeyType\":\"ed25519\","
        "\"publicKey\":\"2O3mkkheDExCuhG+ZNIoWmO/IdCdLzADgUn8SnC4hME=\","
        "\"addresses\":[{\"protocol\":\"udp\",\"address\":\"roughtime.example.com:2002\"},"
        "{\"protocol\":\"tcp\",\"address\":\"roughtime.example.com:2002\"}]},"
        "{\"name\":\"A UDP-only server specified with IP addresses\",\"version\":1,"
        "\"publicKeyType\":\"ed25519\","
        "\"publicKey\":\"ZYfeGa94YuG1IZrV3kR9+8/nmZ2lX2XyHmiSb+wI0OY=\","
        "\"addresses\":[{\"protocol\":\"udp\",\"address\":\"192.0.2.33:2002\"},"
        "{\"protocol\":\"udp\",\"address\":\"[2001:db8::2:33]:2002\"}]}],"
        "\"sources\":[\"https://www.example.net/roughtime/ecosystem.json\"],"
        "\"reports\":\"https://www.example.net/roughtime/malfeasance\"}";
    static tb_rt_server_entry e[8];
    unsigned n = 0, skipped = 9;
    char err[200] = "";
    warnings w = {0};
    TB_REQUIRE(tb_rt_server_list_parse(list, strlen(list), e, 4, &n, &skipped, warn, &w, err,
                                       sizeof(err)) == 0);
    TB_CHECK_EQ(skipped, 0);
    TB_CHECK_EQ(w.n, 0);
    TB_CHECK_EQ(n, 2);
    TB_CHECK_EQ(e[0].naddr, 2);
    TB_CHECK_STR(e[0].address[0], "roughtime.example.com:2002");
    TB_CHECK_STR(e[0].address[1], "tcp://roughtime.example.com:2002");
    /* Every address is kept, in order, to fall back on. */
    TB_CHECK_EQ(e[1].naddr, 2);
    TB_CHECK_STR(e[1].address[0], "192.0.2.33:2002");
    TB_CHECK_STR(e[1].address[1], "[2001:db8::2:33]:2002");
    TB_CHECK_EQ(e[1].version, 1);
    TB_CHECK_EQ(e[0].pubkey[0], 0xd8);
    static const char dup[] = "{\"servers\":[],\"servers\":[]}";
    TB_CHECK(tb_rt_server_list_parse(dup, strlen(dup), e, 4, &n, &skipped, NULL, NULL, err,
                                     sizeof(err)) < 0);
    TB_CHECK(tb_rt_server_list_parse("[", 1, e, 4, &n, &skipped, NULL, NULL, err, sizeof(err)) < 0);
    static const char many[] = "{\"servers\":[{},{},{}]}";
    TB_CHECK_EQ(tb_rt_server_list_parse(many, strlen(many), e, 2, &n, &skipped, NULL, NULL, err,
                                        sizeof(err)),
                TB_ERR_TOO_BIG);
}

#define KEY "\"publicKey\":\"2O3mkkheDExCuhG+ZNIoWmO/IdCdLzADgUn8SnC4hME=\""
#define ED "\"publicKeyType\":\"ed25519\""
#define UDP(a) "\"addresses\":[{\"protocol\":\"udp\",\"address\":\"" a "\"}]"

/* The forms lists take in the wild: version as the draft's number, as Cloudflare's and
 * pyroughtime's names, or absent; and entries that cannot be used are skipped, each named. */
static void test_server_list_formats(void)
{
    static const char list[] =
        "{\"servers\":["
        /* 0: the draft's number for Google-Roughtime */
        "{\"name\":\"g-num\",\"version\":3000600613," ED "," KEY "," UDP(
            "127.0.0.1:1") "},"
                           /* 1: Cloudflare's names */
                           "{\"name\":\"g-name\",\"version\":\"Google-Roughtime\"," ED "," KEY
                           "," UDP(
                               "h:2") "},"
                                      "{\"name\":\"ietf\",\"version\":\"IETF-Roughtime\"," ED
                                      "," KEY "," UDP(
                                          "h:3") "},"
                                                 /* 3: none given: negotiate */
                                                 "{\"name\":\"none\"," ED "," KEY "," UDP(
                                                     "h:4") "},"
                                                            "{\"name\":\"draft12\",\"version\":"
                                                            "2147483660," ED "," KEY "," UDP(
                                                                "h:5") "},"
                                                                       /* the rest cannot be used */
                                                                       "{\"name\":\"bad-key\","
                                                                       "\"version\":1," ED
                                                                       ",\"publicKey\":"
                                                                       "\"AAAA\"," UDP(
                                                                           "h:6") "},"
                                                                                  "{\"name\":\"tcp-"
                                                                                  "only\","
                                                                                  "\"version\":"
                                                                                  "1," ED "," KEY
                                                                                  ",\"addresses\":"
                                                                                  "[{\"protocol\":"
                                                                                  "\"tcp\","
                                                                                  "\"address\":\"a:"
                                                                                  "1\"}]},"
                                                                                  "{\"name\":\"old-"
                                                                                  "num\","
                                                                                  "\"version\":"
                                                                                  "3006803621," ED
                                                                                  "," KEY "," UDP(
                                                                                      "h:7") "},"
                                                                                             "{\"na"
                                                                                             "me\":"
                                                                                             "\"vna"
                                                                                             "me\","
                                                                                             "\"ver"
                                                                                             "sion"
                                                                                             "\":"
                                                                                             "\"Rou"
                                                                                             "ghtim"
                                                                                             "e-"
                                                                                             "2\""
                                                                                             "," ED
                                                                                             "," KEY
                                                                                             "," UDP(
                                                                                                 "h"
                                                                                                 ":"
                                                                                                 "8") "},"
                                                                                                      "{\"name\":\"neg\",\"version\":-1," ED
                                                                                                      "," KEY
                                                                                                      "," UDP(
                                                                                                          "h:9") "},"
                                                                                                                 "{\"name\":\"rsa\",\"version\":1,\"publicKeyType\":\"rsa\"," KEY
                                                                                                                 "," UDP(
                                                                                                                     "h:10") "},"
                                                                                                                             "{\"version\":1," ED
                                                                                                                             "," KEY
                                                                                                                             "," UDP(
                                                                                                                                 "h:11") "},"
                                                                                                                                         "7"
                                                                                                                                         "]}";
    static tb_rt_server_entry e[16];
    unsigned n = 0, skipped = 0;
    char err[200] = "";
    warnings w = {0};
    TB_REQUIRE(tb_rt_server_list_parse(list, strlen(list), e, 16, &n, &skipped, warn, &w, err,
                                       sizeof(err)) == 0);
    TB_CHECK_EQ(n, 6);
    TB_CHECK_EQ(e[0].version, TB_RT_VER_GOOGLE);
    TB_CHECK_EQ(TB_RT_VER_GOOGLE, 3000600613U);
    TB_CHECK(tb_rt_profile_get(e[0].version) != NULL);
    TB_CHECK_STR(e[0].address[0], "127.0.0.1:1");
    TB_CHECK_EQ(e[1].version, TB_RT_VER_GOOGLE);
    TB_CHECK_EQ(e[2].version, 0);
    TB_CHECK_STR(e[3].name, "none");
    TB_CHECK_EQ(e[3].version, 0);
    TB_CHECK_EQ(e[4].version, TB_RT_VER_DRAFT12);
    TB_CHECK_EQ(skipped, 7);
    TB_CHECK_EQ(w.n, 7);
    TB_CHECK(strstr(w.all, "\"bad-key\" skipped: publicKey is not 32 bytes") != NULL);
    /* A TCP address is used, written as the node's and the query's tcp://HOST:PORT. */
    int tcp_seen = 0;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(e[i].name, "tcp-only") == 0) {
            tcp_seen = 1;
            TB_CHECK_EQ(e[i].naddr, 1);
            TB_CHECK_STR(e[i].address[0], "tcp://a:1");
        }
    TB_CHECK(tcp_seen);
    TB_CHECK(strstr(w.all, "tcp-only") == NULL);
    TB_CHECK(strstr(w.all, "\"old-num\" skipped: version 3006803621 not supported") != NULL);
    TB_CHECK(strstr(w.all, "\"vname\" skipped: version \"Roughtime-2\" not supported") != NULL);
    TB_CHECK(strstr(w.all, "\"neg\" skipped: \"version\" is not") != NULL);
    TB_CHECK(strstr(w.all, "\"rsa\" skipped: publicKeyType is not ed25519") != NULL);
    TB_CHECK(strstr(w.all, "servers[11] skipped: \"name\" missing") != NULL);
    TB_CHECK(strstr(w.all, "servers[12] skipped") != NULL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_versions);
    TB_RUN(test_batches);
    TB_RUN(test_flipped_bits);
    TB_RUN(test_drops);
    TB_RUN(test_rotation);
    TB_RUN(test_radius);
    TB_RUN(test_liar_caught_by_sequence);
    TB_RUN(test_server_list);
    TB_RUN(test_server_list_formats);
    return TB_DONE();
}
