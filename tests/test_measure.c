/* Tests of measure/ (adr/0008): the body codec against a hand-laid byte layout and every
 * rejection, the domain-separated signature (checked with OpenSSL as an independent verifier),
 * the PEM key conversion, and the receiver's checks with their counters. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "measure/keycache.h"
#include "measure/measurement.h"
#include "measure/replay.h"
#include "tests/tb_test.h"

static uint8_t req_bytes[1024], resp_bytes[400];

static tb_measurement sample_rt(void)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    strcpy(m.origin, "node-a");
    m.kind = TB_MEASURE_ROUGHTIME;
    strcpy(m.source_name, "rt.example.net");
    strcpy(m.source_addr, "192.0.2.7:2002");
    m.has_rt_pubkey = true;
    memset(m.rt_pubkey, 0xab, sizeof(m.rt_pubkey));
    m.seq = 0x0102030405060708ULL;
    m.real_ns = 1763700000123456789LL;
    m.mono_ns = 99;
    m.offset_ns = -1500000;
    m.delay_ns = 2000000;
    m.bound_ns = 1000000000LL;
    for (size_t i = 0; i < sizeof(req_bytes); i++)
        req_bytes[i] = (uint8_t)i;
    memset(resp_bytes, 0x5a, sizeof(resp_bytes));
    m.ev_request = (tb_measure_bytes){req_bytes, sizeof(req_bytes)};
    m.ev_response = (tb_measure_bytes){resp_bytes, sizeof(resp_bytes)};
    m.has_rand = true;
    memset(m.rand, 0x11, sizeof(m.rand));
    return m;
}

static tb_measurement sample_ntp(const char *origin, uint64_t seq)
{
    tb_measurement m;
    memset(&m, 0, sizeof(m));
    strcpy(m.origin, origin);
    m.kind = TB_MEASURE_NTP;
    strcpy(m.source_name, "ntp-a");
    m.seq = seq;
    m.real_ns = 1763700000000000000LL;
    m.offset_ns = 42;
    m.delay_ns = 7;
    m.bound_ns = 9;
    m.leap = 1;
    m.stratum = 2;
    return m;
}

static void same_measurement(const tb_measurement *a, const tb_measurement *b)
{
    TB_CHECK_STR(a->origin, b->origin);
    TB_CHECK_EQ(a->kind, b->kind);
    TB_CHECK_STR(a->source_name, b->source_name);
    TB_CHECK_STR(a->source_addr, b->source_addr);
    TB_CHECK_EQ(a->has_rt_pubkey, b->has_rt_pubkey);
    TB_CHECK_MEM(a->rt_pubkey, b->rt_pubkey, 32);
    TB_CHECK(a->seq == b->seq);
    TB_CHECK_EQ(a->real_ns, b->real_ns);
    TB_CHECK_EQ(a->offset_ns, b->offset_ns);
    TB_CHECK_EQ(a->delay_ns, b->delay_ns);
    TB_CHECK_EQ(a->bound_ns, b->bound_ns);
    TB_CHECK_EQ(a->leap, b->leap);
    TB_CHECK_EQ(a->stratum, b->stratum);
    TB_CHECK_EQ(a->ev_request.len, b->ev_request.len);
    TB_CHECK_EQ(a->ev_response.len, b->ev_response.len);
    if (a->ev_request.len == b->ev_request.len && a->ev_request.len)
        TB_CHECK_MEM(a->ev_request.data, b->ev_request.data, a->ev_request.len);
    if (a->ev_response.len == b->ev_response.len && a->ev_response.len)
        TB_CHECK_MEM(a->ev_response.data, b->ev_response.data, a->ev_response.len);
    TB_CHECK_EQ(a->has_rand, b->has_rand);
    TB_CHECK_MEM(a->rand, b->rand, 32);
}

static void test_round_trip(void)
{
    static uint8_t buf[TB_MEASURE_BODY_MAX];
    tb_measurement in[4] = {sample_rt(), sample_ntp("b", 1), sample_ntp("node-c", 0),
                            sample_ntp("node-d", 2)};
    in[2].kind = TB_MEASURE_PEER;
    strcpy(in[2].source_name, "node-a");
    in[2].offset_ns = INT64_MIN;
    in[2].bound_ns = INT64_MAX;
    in[2].leap = in[2].stratum = 0;
    /* a local reference clock: no packets, no leap or stratum */
    in[3].kind = TB_MEASURE_REFCLOCK;
    strcpy(in[3].source_name, "node-d:/run/gps.sock");
    in[3].source_addr[0] = 0;
    in[3].leap = in[3].stratum = 0;
    in[3].ev_request = in[3].ev_response = (tb_measure_bytes){0};
    TB_CHECK_STR(tb_measure_kind_name(TB_MEASURE_REFCLOCK), "refclock");
    for (int i = 0; i < 4; i++) {
        size_t n;
        tb_measurement out;
        TB_REQUIRE(tb_measure_encode(&in[i], buf, sizeof(buf), &n) == 0);
        TB_REQUIRE(tb_measure_parse(buf, n, &out, NULL) == 0);
        same_measurement(&in[i], &out);
        TB_CHECK_EQ(out.mono_ns, 0); /* local only: never encoded */
    }
}

/* The layout of adr/0008, written out byte by byte. */
static void test_layout(void)
{
    tb_measurement m = sample_ntp("b", 0x0a0b);
    strcpy(m.source_addr, "x");
    uint8_t want[] = {2, 1,   0, 1, 'b', 5, 'n', 't', 'p',  '-',  'a',
                      1, 'x', 0, 0, 0,   0, 0,   0,   0x0a, 0x0b, /* seq */
                      0, 0,   0, 0, 0,   0, 0,   0,               /* real_ns, patched below */
                      0, 0,   0, 0, 0,   0, 0,   42,              /* offset */
                      0, 0,   0, 0, 0,   0, 0,   7,               /* delay */
                      0, 0,   0, 0, 0,   0, 0,   9,               /* bound */
                      1, 2};                                      /* leap, stratum */
    tb_put_be64(want + 21, (uint64_t)m.real_ns);
    uint8_t buf[128];
    size_t n = 0;
    TB_REQUIRE(tb_measure_encode(&m, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(n, sizeof(want));
    TB_CHECK_MEM(buf, want, sizeof(want));
    /* too small a buffer is refused, whatever its size */
    for (size_t cap = 0; cap < sizeof(want); cap++)
        TB_CHECK_EQ(tb_measure_encode(&m, buf, cap, &n), TB_ERR_TOO_BIG);
}

/* The largest measurement encodes to exactly TB_MEASURE_BODY_MAX bytes. */
static void test_largest(void)
{
    static uint8_t ev[TB_MEASURE_MAX_EVIDENCE], buf[TB_MEASURE_BODY_MAX + 1];
    tb_measurement m = sample_rt(), out;
    memset(m.origin, 'o', TB_MEASURE_MAX_ORIGIN);
    m.origin[TB_MEASURE_MAX_ORIGIN] = 0;
    memset(m.source_name, 'n', TB_MEASURE_MAX_TEXT);
    memset(m.source_addr, 'a', TB_MEASURE_MAX_TEXT);
    m.ev_request = m.ev_response = (tb_measure_bytes){ev, sizeof(ev)};
    size_t n;
    TB_REQUIRE(tb_measure_encode(&m, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(n, TB_MEASURE_BODY_MAX);
    TB_CHECK_EQ(TB_MEASURE_BODY_MAX, 8881);
    TB_CHECK_EQ(tb_measure_parse(buf, n, &out, NULL), 0);
}

static void expect_parse(const uint8_t *p, size_t n, int err, const char *field)
{
    tb_measurement out;
    tb_measure_diag d = {0};
    int rc = tb_measure_parse(p, n, &out, &d);
    TB_CHECK_EQ(rc, err);
    if (field)
        TB_CHECK_STR(d.field, field);
    TB_CHECK_EQ(out.seq, 0); /* nothing half-filled */
}

static void test_rejections(void)
{
    static uint8_t buf[TB_MEASURE_BODY_MAX + 8], bad[TB_MEASURE_BODY_MAX + 8];
    tb_measurement m = sample_rt();
    size_t n;
    TB_REQUIRE(tb_measure_encode(&m, buf, sizeof(buf), &n) == 0);
    for (size_t cut = 0; cut < n; cut++) {
        tb_measurement out;
        TB_CHECK_EQ(tb_measure_parse(buf, cut, &out, NULL), TB_ERR_TRUNCATED);
    }
    memcpy(bad, buf, n);
    bad[n] = 0;
    expect_parse(bad, n + 1, TB_ERR_MALFORMED, "trailing bytes");
#define MUTATE(off, val, err, field)                                                               \
    do {                                                                                           \
        memcpy(bad, buf, n);                                                                       \
        bad[off] = (val);                                                                          \
        expect_parse(bad, n, err, field);                                                          \
    } while (0)
    MUTATE(0, 1, TB_ERR_UNSUPPORTED, "version"); /* version 1 had no leap and stratum */
    MUTATE(0, 3, TB_ERR_UNSUPPORTED, "version");
    MUTATE(1, 0, TB_ERR_MALFORMED, "kind");
    MUTATE(1, 5, TB_ERR_MALFORMED, "kind");
    MUTATE(1, TB_MEASURE_REFCLOCK, TB_ERR_MALFORMED, "rt_pubkey");
    MUTATE(1, TB_MEASURE_NTP, TB_ERR_MALFORMED, "rt_pubkey"); /* ntp with a Roughtime key */
    MUTATE(2, 0x0f, TB_ERR_MALFORMED, "flags");
    MUTATE(4, 'A', TB_ERR_MALFORMED, "origin"); /* node names are lower case */
    MUTATE(4, '-', TB_ERR_MALFORMED, "origin");
    MUTATE(3, 0, TB_ERR_MALFORMED, "origin");
    MUTATE(11, '\n', TB_ERR_MALFORMED, "source.name");
    MUTATE(11, 0x80, TB_ERR_MALFORMED, "source.name");
    size_t delay_at = 3 + 7 + 15 + 15 + 32 + 24;
    MUTATE(delay_at, 0x80, TB_ERR_MALFORMED, "delay");
    MUTATE(delay_at + 8, 0xff, TB_ERR_MALFORMED, "bound");
    MUTATE(delay_at + 16, 1, TB_ERR_MALFORMED, "leap"); /* only NTP has one */
    MUTATE(delay_at + 17, 1, TB_ERR_MALFORMED, "stratum");
    size_t ev_at = delay_at + 18;
    MUTATE(ev_at, 0x10, TB_ERR_TRUNCATED, "evidence.request"); /* 4096: fits, ends early */
    MUTATE(ev_at, 0x11, TB_ERR_TOO_BIG, "evidence.request");   /* 4352 */
    memcpy(bad, buf, n);
    bad[ev_at] = bad[ev_at + 1] = 0;
    expect_parse(bad, n, TB_ERR_MALFORMED, "evidence.request");
    /* Roughtime without its key: the flag cleared and the key removed */
    memcpy(bad, buf, 40);
    bad[2] &= (uint8_t)~1;
    memcpy(bad + 40, buf + 72, n - 72);
    expect_parse(bad, n - 32, TB_ERR_MALFORMED, "rt_pubkey");
    expect_parse(buf, TB_MEASURE_BODY_MAX + 1, TB_ERR_TOO_BIG, "body");
#undef MUTATE
}

static void test_encoder_refuses(void)
{
    uint8_t buf[TB_MEASURE_BODY_MAX];
    size_t n;
    tb_measurement m = sample_rt();
    m.has_rt_pubkey = false;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_rt();
    m.ev_response.len = 0;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_rt();
    m.ev_request.len = TB_MEASURE_MAX_EVIDENCE + 1;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    m = sample_ntp("a", 1);
    m.has_rand = true;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_ntp("Node", 1);
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_ntp("a", 1);
    m.source_name[0] = 0;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_ntp("a", 1);
    m.bound_ns = -1;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_ntp("a", 1);
    m.kind = 9;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_ntp("a", 1);
    m.leap = 4;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample_rt();
    m.stratum = 1;
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
    /* a reference clock has no packets a receiver could check: evidence is refused */
    m = sample_ntp("a", 1);
    m.kind = TB_MEASURE_REFCLOCK;
    m.leap = m.stratum = 0;
    static const uint8_t pkt[48];
    m.ev_request = m.ev_response = (tb_measure_bytes){pkt, sizeof(pkt)};
    TB_CHECK_EQ(tb_measure_encode(&m, buf, sizeof(buf), &n), TB_ERR_INVAL);
}

/* An OpenSSL Ed25519 key, its PEM, and the libsodium pair derived from it. */
typedef struct ossl_key {
    EVP_PKEY *pkey;
    uint8_t sk[64], pk[32];
} ossl_key;

static int ossl_key_new(ossl_key *k)
{
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k->pkey == NULL)
        return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long len = BIO_get_mem_data(bio, &pem);
    int rc = tb_measure_key_from_pem(pem, (size_t)len, k->sk, k->pk);
    BIO_free(bio);
    return rc;
}

static void test_pem_key_and_signature(void)
{
    ossl_key k;
    TB_REQUIRE(ossl_key_new(&k) == 0);
    uint8_t raw_pk[32];
    size_t pklen = sizeof(raw_pk);
    TB_REQUIRE(EVP_PKEY_get_raw_public_key(k.pkey, raw_pk, &pklen) == 1);
    TB_CHECK_MEM(raw_pk, k.pk, 32);

    static uint8_t body[TB_MEASURE_BODY_MAX];
    tb_measurement m = sample_rt();
    uint8_t sig[64];
    size_t n;
    TB_REQUIRE(tb_measure_seal(&m, k.sk, body, sizeof(body), &n, sig) == 0);
    TB_CHECK_EQ(tb_measure_verify(body, n, sig, k.pk), 0);

    /* OpenSSL, independently, verifies the signature over context NUL ‖ body */
    static uint8_t msg[sizeof(TB_MEASURE_SIGN_CONTEXT) + TB_MEASURE_BODY_MAX];
    memcpy(msg, "tbnode measurement v1", 22);
    TB_CHECK_EQ(msg[21], 0);
    memcpy(msg + 22, body, n);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    TB_REQUIRE(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k.pkey) == 1);
    TB_CHECK_EQ(EVP_DigestVerify(ctx, sig, 64, msg, 22 + n), 1);
    EVP_MD_CTX_free(ctx);

    /* any changed bit, another key, or a signature over the bare body fail */
    body[n / 2] ^= 1;
    TB_CHECK_EQ(tb_measure_verify(body, n, sig, k.pk), TB_ERR_VERIFY);
    body[n / 2] ^= 1;
    sig[5] ^= 0x80;
    TB_CHECK_EQ(tb_measure_verify(body, n, sig, k.pk), TB_ERR_VERIFY);
    sig[5] ^= 0x80;
    ossl_key other;
    TB_REQUIRE(ossl_key_new(&other) == 0);
    TB_CHECK_EQ(tb_measure_verify(body, n, sig, other.pk), TB_ERR_VERIFY);
    uint8_t bare[64];
    TB_REQUIRE(crypto_sign_detached(bare, NULL, body, n, k.sk) == 0);
    TB_CHECK_EQ(tb_measure_verify(body, n, bare, k.pk), TB_ERR_VERIFY);
    EVP_PKEY_free(k.pkey);
    EVP_PKEY_free(other.pkey);
}

static void test_pem_rejections(void)
{
    uint8_t sk[64], pk[32];
    const char junk[] = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n";
    TB_CHECK_EQ(tb_measure_key_from_pem(junk, sizeof(junk) - 1, sk, pk), TB_ERR_MALFORMED);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    TB_REQUIRE(ec != NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long len = BIO_get_mem_data(bio, &pem);
    TB_CHECK_EQ(tb_measure_key_from_pem(pem, (size_t)len, sk, pk), TB_ERR_UNSUPPORTED);
    BIO_free(bio);
    /* SEC1 ("EC PRIVATE KEY"), as `openssl ecparam -genkey` writes it: read, still not Ed25519. */
    bio = BIO_new(BIO_s_mem());
    TB_REQUIRE(PEM_write_bio_PrivateKey_traditional(bio, ec, NULL, NULL, 0, NULL, NULL) == 1);
    len = BIO_get_mem_data(bio, &pem);
    TB_REQUIRE(len > 0 && strstr(pem, "BEGIN EC PRIVATE KEY") != NULL);
    TB_CHECK_EQ(tb_measure_key_from_pem(pem, (size_t)len, sk, pk), TB_ERR_UNSUPPORTED);
    BIO_free(bio);
    EVP_PKEY_free(ec);
}

/* ---- receiver ---- */

typedef struct keyring {
    const char *names[4];
    tb_measure_origin_key keys[4];
    uint8_t sks[4][64];
    int n;
    int evidence_calls;
    int evidence_result;
} keyring;

static int ring_lookup(void *arg, const char *origin, tb_measure_origin_key *out)
{
    keyring *k = arg;
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->names[i], origin) == 0) {
            *out = k->keys[i];
            return 0;
        }
    return TB_ERR_NOTFOUND;
}

static int ring_evidence(void *arg, const tb_measurement *m)
{
    keyring *k = arg;
    k->evidence_calls++;
    return m->ev_request.len ? k->evidence_result : 0;
}

static const int64_t NOW = 1763700000LL * 1000000000LL;

static void ring_add(keyring *k, const char *name, int64_t nb, int64_t na)
{
    uint8_t seed[32];
    memset(seed, k->n + 1, sizeof(seed));
    k->names[k->n] = name;
    k->keys[k->n].not_before = nb;
    k->keys[k->n].not_after = na;
    TB_CHECK(tb_measure_key_from_seed(seed, k->sks[k->n], k->keys[k->n].ed25519_pub) == 0);
    k->n++;
}

typedef struct sealed {
    uint8_t body[TB_MEASURE_BODY_MAX + 1]; /* one more: room for an oversized one */
    size_t len;
    uint8_t sig[64];
} sealed;

static sealed seal_with(const tb_measurement *m, const uint8_t *sk)
{
    sealed s;
    if (tb_measure_seal(m, sk, s.body, sizeof(s.body), &s.len, s.sig) != 0)
        abort();
    return s;
}

static int deliver(tb_measure_replay *r, const char *origin, uint64_t seq, const sealed *s,
                   tb_measure_drop *why)
{
    tb_measurement out;
    return tb_measure_replay_accept(r, origin, seq, s->body, s->len, s->sig, NOW, &out, why);
}

static int send_seq(tb_measure_replay *r, keyring *k, uint64_t seq, tb_measure_drop *why)
{
    tb_measurement m = sample_ntp("node-a", seq);
    sealed s = seal_with(&m, k->sks[0]);
    return deliver(r, "node-a", seq, &s, why);
}

static tb_measure_replay *ring_replay(keyring *k, size_t max_origins)
{
    memset(k, 0, sizeof(*k));
    ring_add(k, "node-a", NOW / 1000000000LL - 10, NOW / 1000000000LL + 10);
    ring_add(k, "node-b", 0, NOW / 1000000000LL - 1);         /* expired */
    ring_add(k, "node-c", NOW / 1000000000LL + 1, INT64_MAX); /* not yet valid */
    ring_add(k, "node-d", 0, INT64_MAX);
    tb_measure_replay_config cfg = {max_origins, ring_lookup, ring_evidence, k, {0}};
    return tb_measure_replay_new(&cfg);
}

static void test_sequences(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    tb_measure_drop why = TB_MEASURE_DROP_COUNT;
    TB_CHECK_EQ(send_seq(r, &k, 1, &why), 0);
    TB_CHECK_EQ(send_seq(r, &k, 2, &why), 0);
    TB_CHECK_EQ(send_seq(r, &k, 5, &why), 0); /* gaps are fine */
    TB_CHECK_EQ(send_seq(r, &k, 5, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 2, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 3, &why), 0); /* late but unseen: taken */
    TB_CHECK_EQ(send_seq(r, &k, 3, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 1000, &why), 0);
    TB_CHECK_EQ(send_seq(r, &k, 5, &why), TB_ERR_EXISTS); /* 995 back: still in the window */
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 4, &why), 0);
    /* Moving up by 1000 (not a multiple of 64) keeps what was seen: 1000 is 1000 back now. */
    TB_CHECK_EQ(send_seq(r, &k, 2000, &why), 0);
    TB_CHECK_EQ(send_seq(r, &k, 1000, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 2000 - TB_MEASURE_REPLAY_WINDOW, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_OUT_OF_ORDER); /* beyond the window */
    TB_CHECK_EQ(send_seq(r, &k, 2000 - TB_MEASURE_REPLAY_WINDOW + 1, &why), 0);
    TB_CHECK_EQ(tb_measure_replay_accepted(r), 8);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_REPLAY), 5);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_OUT_OF_ORDER), 1);
    TB_CHECK_EQ(tb_measure_replay_origins(r), 1);
    tb_measure_replay_free(r);
}

/* A window's worth of sequences in a scrambled order (as batches over different paths bring
 * them) is taken whole; every one again is a replay; after a restart (seed) none is new. */
static void test_reordering(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    enum { W = TB_MEASURE_REPLAY_WINDOW };
    static uint64_t order[W];
    for (uint64_t i = 0; i < W; i++)
        order[i] = 100 + (i * 389) % W; /* 389 is prime to 1024: a permutation */
    tb_measure_drop why;
    int taken = 0, replays = 0;
    for (size_t i = 0; i < W; i++)
        taken += tb_measure_replay_check_seq(r, "node-a", order[i], &why) == 0;
    TB_CHECK_EQ(taken, W);
    for (size_t i = 0; i < W; i++)
        replays += tb_measure_replay_check_seq(r, "node-a", order[i], &why) == TB_ERR_EXISTS &&
                   why == TB_MEASURE_DROP_REPLAY;
    TB_CHECK_EQ(replays, W);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_OUT_OF_ORDER), 0);
    tb_measure_replay_free(r);

    r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    TB_CHECK_EQ(tb_measure_replay_seed(r, "node-a", 500), 0);
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "node-a", 499, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "node-a", 501, &why), 0);
    tb_measure_replay_free(r);
}

static void test_receiver_drops(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    tb_measure_drop why;
    tb_measurement m = sample_ntp("node-a", 10);
    sealed good = seal_with(&m, k.sks[0]);
    sealed forged = seal_with(&m, k.sks[3]); /* node-d's key claiming to be node-a */
    TB_CHECK_EQ(deliver(r, "node-a", 10, &forged, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_BAD_SIGNATURE);
    TB_CHECK_EQ(deliver(r, "node-a", 10, &good, &why), 0); /* the forgery blocked nothing */
    TB_CHECK_EQ(deliver(r, "node-x", 10, &good, &why), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_UNKNOWN_ORIGIN);

    tb_measurement mb = sample_ntp("node-b", 1), mc = sample_ntp("node-c", 1);
    sealed sb = seal_with(&mb, k.sks[1]), sc = seal_with(&mc, k.sks[2]);
    TB_CHECK_EQ(deliver(r, "node-b", 1, &sb, &why), TB_ERR_STATE);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_EXPIRED);
    TB_CHECK_EQ(deliver(r, "node-c", 1, &sc, &why), TB_ERR_STATE);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_EXPIRED);

    /* the envelope must match the signed body */
    m.seq = 11;
    sealed s11 = seal_with(&m, k.sks[0]);
    TB_CHECK_EQ(deliver(r, "node-a", 12, &s11, &why), TB_ERR_MALFORMED);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_MALFORMED);
    tb_measurement md = sample_ntp("node-a", 1);
    sealed sd = seal_with(&md, k.sks[3]);
    TB_CHECK_EQ(deliver(r, "node-d", 1, &sd, &why), TB_ERR_MALFORMED);
    /* a validly signed body that does not parse */
    sealed junk;
    memset(junk.body, 7, 20);
    junk.len = 20;
    TB_REQUIRE(tb_measure_sign(junk.body, junk.len, k.sks[0], junk.sig) == 0);
    TB_CHECK_EQ(deliver(r, "node-a", 13, &junk, &why), TB_ERR_UNSUPPORTED);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_MALFORMED);
    TB_CHECK_EQ(tb_measure_replay_accept(r, "node-a", 13, junk.body, TB_MEASURE_BODY_MAX + 1,
                                         junk.sig, NOW, &m, &why),
                TB_ERR_TOO_BIG);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_MALFORMED);

    /* evidence re-verification */
    tb_measurement rt = sample_rt();
    strcpy(rt.origin, "node-a");
    rt.seq = 20;
    sealed srt = seal_with(&rt, k.sks[0]);
    k.evidence_result = TB_ERR_VERIFY;
    TB_CHECK_EQ(deliver(r, "node-a", 20, &srt, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_BAD_EVIDENCE);
    k.evidence_result = 0;
    TB_CHECK_EQ(deliver(r, "node-a", 20, &srt, &why), 0);
    TB_CHECK_EQ(deliver(r, "node-a", 11, &s11, &why), 0); /* late, unseen: taken */

    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_BAD_SIGNATURE), 1);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_UNKNOWN_ORIGIN), 1);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_EXPIRED), 2);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_MALFORMED), 4);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_BAD_EVIDENCE), 1);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_OUT_OF_ORDER), 0);
    TB_CHECK_EQ(tb_measure_replay_accepted(r), 3);
    TB_CHECK_STR(tb_measure_drop_name(TB_MEASURE_DROP_BAD_SIGNATURE), "bad signature");
    tb_measure_replay_free(r);
}

/* Every number at its extremes: the encoder refuses what the format forbids (negative delay
 * or bound); the receiver drops everything else outside the ranges as "out of range" before
 * anyone computes with it (this runs under UBSan). */
static void test_ranges(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    static const int64_t wild[] = {INT64_MIN, INT64_MIN + 1, -1, INT64_MAX - 1, INT64_MAX};
    uint64_t seq = 1, expected = 0;
    for (int field = 0; field < 4; field++)
        for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
            tb_measurement m = sample_ntp("node-a", seq);
            int64_t *f[] = {&m.real_ns, &m.offset_ns, &m.delay_ns, &m.bound_ns};
            *f[field] = wild[i];
            if (field == 1 && wild[i] == -1)
                continue; /* a fine offset */
            uint8_t body[TB_MEASURE_BODY_MAX], sig[64];
            size_t len;
            if (tb_measure_seal(&m, k.sks[0], body, sizeof(body), &len, sig) != 0) {
                TB_CHECK(field >= 2 && wild[i] < 0); /* only negative delay/bound unencodable */
                continue;
            }
            TB_CHECK(tb_measure_range_error(&m) != NULL);
            tb_measurement out;
            tb_measure_drop why = TB_MEASURE_DROP_COUNT;
            TB_CHECK_EQ(tb_measure_replay_accept(r, "node-a", seq, body, len, sig, NOW, &out, &why),
                        TB_ERR_MALFORMED);
            TB_CHECK_EQ(why, TB_MEASURE_DROP_RANGE);
            expected++;
            seq++;
        }
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_RANGE), expected);
    TB_CHECK(expected >= 12);
    /* the edges themselves are fine, and the out-of-range ones consumed no sequence number */
    tb_measurement m = sample_ntp("node-a", 1);
    m.real_ns = TB_MEASURE_MAX_REAL_NS;
    m.offset_ns = -TB_MEASURE_MAX_OFFSET_NS;
    m.delay_ns = TB_MEASURE_MAX_DELAY_NS;
    m.bound_ns = TB_MEASURE_MAX_BOUND_NS;
    TB_CHECK(tb_measure_range_error(&m) == NULL);
    sealed s = seal_with(&m, k.sks[0]);
    tb_measure_drop why;
    TB_CHECK_EQ(deliver(r, "node-a", 1, &s, &why), 0);
    m.real_ns = m.delay_ns - 1; /* sent before 1970 */
    TB_CHECK_STR(tb_measure_range_error(&m), "real_ns");
    TB_CHECK_STR(tb_measure_drop_name(TB_MEASURE_DROP_RANGE), "out of range");
    tb_measure_replay_free(r);
}

/* One origin's allowance: evidence size, measurements a minute, bytes an hour; what exceeds it
 * is dropped by reason, and neither forgeries nor replays use up the real origin's allowance. */
static int send_d(tb_measure_replay *r, const keyring *k, uint64_t seq, int64_t now,
                  tb_measure_drop *why)
{
    tb_measurement m = sample_ntp("node-d", seq), out;
    sealed s = seal_with(&m, k->sks[3]);
    return tb_measure_replay_accept(r, "node-d", seq, s.body, s.len, s.sig, now, &out, why);
}

static void test_limits(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 0);
    TB_REQUIRE(r != NULL);
    tb_measure_limits lim = {.max_evidence = 1000, .rate_per_min = 5, .bytes_per_hour = 0};
    tb_measure_replay_set_limits(r, &lim);
    tb_measure_drop why;
    tb_measurement rt = sample_rt(); /* 1024 + 400 bytes of evidence */
    strcpy(rt.origin, "node-d");
    rt.seq = 1;
    sealed big = seal_with(&rt, k.sks[3]);
    TB_CHECK_EQ(deliver(r, "node-d", 1, &big, &why), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_EVIDENCE_SIZE);
    TB_CHECK_EQ(k.evidence_calls, 0); /* refused before the expensive check */
    for (uint64_t seq = 1; seq <= 5; seq++)
        TB_CHECK_EQ(send_d(r, &k, seq, NOW, &why), 0);
    /* forgeries and replays do not count against node-d */
    tb_measurement m6 = sample_ntp("node-d", 6);
    sealed forged = seal_with(&m6, k.sks[0]);
    TB_CHECK_EQ(deliver(r, "node-d", 6, &forged, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(send_d(r, &k, 6, NOW, &why), TB_ERR_FULL);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_RATE);
    TB_CHECK_EQ(send_d(r, &k, 5, NOW, &why), TB_ERR_EXISTS); /* a replay is still a replay */
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    /* another origin has its own allowance */
    TB_CHECK_EQ(send_seq(r, &k, 1, &why), 0);
    /* a minute later the window starts again; the refused seq 6 was not consumed */
    const int64_t min = 60 * 1000000000LL;
    TB_CHECK_EQ(send_d(r, &k, 6, NOW + min, &why), 0);
    /* bytes: room for one more of these bodies this hour (6 are in it) */
    sealed s6 = seal_with(&m6, k.sks[3]);
    lim = (tb_measure_limits){.bytes_per_hour = 7 * (s6.len + 64)};
    tb_measure_replay_set_limits(r, &lim);
    TB_CHECK_EQ(send_d(r, &k, 7, NOW + 2 * min, &why), 0);
    TB_CHECK_EQ(send_d(r, &k, 8, NOW + 2 * min, &why), TB_ERR_FULL);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_QUOTA);
    TB_CHECK_EQ(send_d(r, &k, 8, NOW + 60 * min, &why), 0);
    /* a clock stepped back starts a new window rather than blocking the origin for an hour */
    TB_CHECK_EQ(send_d(r, &k, 9, NOW, &why), 0);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_RATE), 1);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_QUOTA), 1);
    TB_CHECK_EQ(tb_measure_replay_dropped(r, TB_MEASURE_DROP_EVIDENCE_SIZE), 1);
    tb_measure_replay_free(r);
}

static void test_table_bound_and_seed(void)
{
    keyring k;
    tb_measure_replay *r = ring_replay(&k, 2);
    TB_REQUIRE(r != NULL);
    tb_measure_drop why;
    TB_CHECK_EQ(tb_measure_replay_seed(r, "node-a", 500), 0);
    TB_CHECK_EQ(send_seq(r, &k, 500, &why), TB_ERR_EXISTS); /* restored state refuses old ones */
    TB_CHECK_EQ(why, TB_MEASURE_DROP_REPLAY);
    TB_CHECK_EQ(send_seq(r, &k, 501, &why), 0);
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "zed", 1, &why), 0);
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "abc", 1, &why), TB_ERR_FULL);
    TB_CHECK_EQ(why, TB_MEASURE_DROP_TABLE_FULL);
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "zed", 2, &why), 0); /* known ones go on */
    TB_CHECK_EQ(tb_measure_replay_check_seq(r, "zed", 2, &why), TB_ERR_EXISTS);
    TB_CHECK_EQ(tb_measure_replay_origins(r), 2);
    tb_measure_replay_free(r);
}

static tb_measure_origin_key cache_key(uint8_t fill, int64_t nb, int64_t na)
{
    tb_measure_origin_key k = {.not_before = nb, .not_after = na};
    memset(k.ed25519_pub, fill, sizeof(k.ed25519_pub));
    return k;
}

/* The verified-key cache: hits only for the same certificate and origin while in date, the
 * expired entry dropped, the least recently used one evicted when full. */
static void test_keycache(void)
{
    TB_CHECK(tb_measure_keycache_new(0) == NULL);
    tb_measure_keycache *c = tb_measure_keycache_new(2);
    TB_REQUIRE(c != NULL);
    uint8_t fa[TB_MEASURE_FP_LEN], fb[TB_MEASURE_FP_LEN], fc[TB_MEASURE_FP_LEN];
    memset(fa, 1, sizeof(fa));
    memset(fb, 2, sizeof(fb));
    memset(fc, 3, sizeof(fc));
    tb_measure_origin_key ka = cache_key(0xaa, 100, 200), kb = cache_key(0xbb, 100, 300), got;
    TB_CHECK_EQ(tb_measure_keycache_put(c, fa, "node-a", 50, &ka), TB_ERR_STATE);  /* not yet */
    TB_CHECK_EQ(tb_measure_keycache_put(c, fa, "node-a", 201, &ka), TB_ERR_STATE); /* expired */
    TB_CHECK_EQ(tb_measure_keycache_get(c, fa, "node-a", 150, &got), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_measure_keycache_put(c, fa, "node-a", 150, &ka), 0);
    TB_CHECK_EQ(tb_measure_keycache_get(c, fa, "node-a", 150, &got), 0);
    TB_CHECK_MEM(got.ed25519_pub, ka.ed25519_pub, TB_MEASURE_PK_LEN);
    TB_CHECK_EQ(got.not_after, 200);
    /* the same certificate presented for another origin is checked afresh */
    TB_CHECK_EQ(tb_measure_keycache_get(c, fa, "node-b", 150, &got), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_measure_keycache_put(c, fb, "node-b", 150, &kb), 0);
    TB_CHECK_EQ(tb_measure_keycache_get(c, fa, "node-a", 160, &got), 0); /* a is newest now */
    TB_CHECK_EQ(tb_measure_keycache_put(c, fc, "node-c", 160, &kb), 0);  /* evicts b */
    TB_CHECK_EQ(tb_measure_keycache_size(c), 2);
    TB_CHECK_EQ(tb_measure_keycache_get(c, fb, "node-b", 160, &got), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_measure_keycache_get(c, fc, "node-c", 160, &got), 0);
    TB_CHECK_MEM(got.ed25519_pub, kb.ed25519_pub, TB_MEASURE_PK_LEN);
    /* a's certificate expires: the entry goes */
    TB_CHECK_EQ(tb_measure_keycache_get(c, fa, "node-a", 201, &got), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_measure_keycache_size(c), 1);
    TB_CHECK_EQ(tb_measure_keycache_put(c, fa, "", 150, &ka), TB_ERR_INVAL);
    tb_measure_keycache_free(c);
}

int main(void)
{
    TB_RUN(test_round_trip);
    TB_RUN(test_layout);
    TB_RUN(test_largest);
    TB_RUN(test_rejections);
    TB_RUN(test_encoder_refuses);
    TB_RUN(test_pem_key_and_signature);
    TB_RUN(test_pem_rejections);
    TB_RUN(test_sequences);
    TB_RUN(test_reordering);
    TB_RUN(test_receiver_drops);
    TB_RUN(test_ranges);
    TB_RUN(test_limits);
    TB_RUN(test_table_bound_and_seed);
    TB_RUN(test_keycache);
    return TB_DONE();
}
