/* The client's legacy versions (Google-Roughtime, drafts 8 and 11) against replies built here,
 * independently of roughtime/'s encoder and Merkle code: a small test-only message writer, tree
 * and signer written from the protocol texts.
 * - Google-Roughtime (roughtime.googlesource.com PROTOCOL.md): no framing, no VER, 64-byte
 *   nonce, PAD\xff padding; the reply is SIG, PATH, SREP, CERT, INDX and carries NO NONC; MIDP,
 *   RADI, MINT, MAXT in microseconds; untruncated SHA-512 (64-byte ROOT and PATH entries); leaf
 *   H(0 ‖ nonce); the reference server signs DELE with "RoughTime v1 delegation signature--\0".
 * - Drafts 8 and 11: ROUGHTIM framing; a reply carries SIG, VER (one version, top level), NONC,
 *   PATH, SREP (ROOT, MIDP, RADI only), CERT, INDX; no TYPE; seconds; H = SHA-512 cut to 32
 *   bytes; leaf H(0 ‖ nonce); node H(1 ‖ left ‖ right), leaves indexed left to right; the same
 *   "--" delegation context. The request of draft 11 has SRV, draft 8 has none.
 * The trees here pad an odd level with the level's first node, as the deployed servers do (ours
 * pairs the last node with itself): the client must not care. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "roughtime/codec.h"
#include "roughtime/verify.h"
#include "tb_test.h"

#define NOW_S 1795000000LL
#define NOW_NS (NOW_S * (int64_t)TB_NS_PER_SEC + 250000000)
#define MAXLEAVES 128

/* A tag from its four wire bytes (three-letter tags end in 0, Google's PAD in 0xff). */
static uint32_t tag(const char *s)
{
    return tb_get_le32((const uint8_t *)s);
}

/* ---- test-only message writer: count, N-1 offsets, N tags, values (all little-endian) ---- */

typedef struct field {
    uint32_t tag;
    const uint8_t *val;
    size_t len;
    size_t at; /* where the value landed in the written message */
} field;

static size_t msg_put(uint8_t *out, field *f, unsigned n)
{
    /* Tags must be ascending by numeric value: sort by insertion. */
    for (unsigned i = 1; i < n; i++) {
        for (unsigned j = i; j > 0 && f[j - 1].tag > f[j].tag; j--) {
            field t = f[j];
            f[j] = f[j - 1];
            f[j - 1] = t;
        }
    }
    size_t hdr = 8 * (size_t)n, off = 0;
    tb_put_le32(out, n);
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            tb_put_le32(out + 4 * i, (uint32_t)off);
        tb_put_le32(out + 4 * n + 4 * i, f[i].tag);
        memcpy(out + hdr + off, f[i].val, f[i].len);
        f[i].at = hdr + off;
        off += f[i].len;
    }
    return hdr + off;
}

static size_t at_of(const field *f, unsigned n, const char *t)
{
    for (unsigned i = 0; i < n; i++) {
        if (f[i].tag == tag(t))
            return f[i].at;
    }
    abort();
}

/* ---- test-only Merkle tree: SHA-512, cut to hlen ---- */

static void hash(uint8_t *out, unsigned hlen, uint8_t prefix, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    crypto_hash_sha512_state st;
    uint8_t full[64];
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, &prefix, 1);
    crypto_hash_sha512_update(&st, a, alen);
    crypto_hash_sha512_update(&st, b, blen);
    crypto_hash_sha512_final(&st, full);
    memcpy(out, full, hlen);
}

/* Root and path of leaf idx over nonces[n]; an odd level is evened with its first node. */
static void tree(const uint8_t (*nonces)[64], unsigned nonce_len, unsigned n, unsigned idx,
                 unsigned hlen, uint8_t root[64], uint8_t *path, size_t *path_len)
{
    static uint8_t lvl[MAXLEAVES + 1][64], next[MAXLEAVES + 1][64];
    for (unsigned i = 0; i < n; i++)
        hash(lvl[i], hlen, 0, nonces[i], nonce_len, NULL, 0);
    *path_len = 0;
    while (n > 1) {
        if (n % 2)
            memcpy(lvl[n++], lvl[0], hlen);
        memcpy(path + *path_len, lvl[idx ^ 1U], hlen);
        *path_len += hlen;
        for (unsigned i = 0; i < n / 2; i++)
            hash(next[i], hlen, 1, lvl[2 * i], hlen, lvl[2 * i + 1], hlen);
        n /= 2;
        idx /= 2;
        memcpy(lvl, next, sizeof(next));
    }
    memcpy(root, lvl[0], hlen);
}

/* ---- a legacy server's reply ---- */

enum kind { GOOGLE, DRAFT08, DRAFT11 };

typedef struct legacy {
    enum kind kind;
    uint8_t lt_pk[32], lt_sk[64], on_pk[32], on_sk[64];
    uint64_t mint, maxt, midp; /* in the version's unit */
    uint32_t radi;
    uint32_t ver;   /* top-level VER written (drafts) */
    int with_nonc;  /* Google: the reference server sends none; some servers add it */
    unsigned batch; /* requests in the tree */
    unsigned idx;   /* our position */
} legacy;

/* Where each part of the reply sits, for flipping bits. */
typedef struct span {
    size_t off, len;
} span;

typedef struct reply {
    uint8_t buf[4096];
    size_t len;
    span sig, nonc, path, srep, cert_sig, dele, indx, midp;
} reply;

static void legacy_init(legacy *l, enum kind kind, unsigned batch, unsigned idx)
{
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    crypto_sign_ed25519_keypair(l->lt_pk, l->lt_sk);
    crypto_sign_ed25519_keypair(l->on_pk, l->on_sk);
    uint64_t unit = kind == GOOGLE ? 1000000 : 1;
    l->midp = (uint64_t)NOW_S * unit;
    l->mint = l->midp - 3600 * unit;
    l->maxt = l->midp + 3600 * unit;
    l->radi = (uint32_t)(kind == GOOGLE ? 1000000 : 3);
    l->ver = kind == DRAFT08 ? 0x80000008U : 0x8000000bU;
    l->batch = batch;
    l->idx = idx;
}

static void sign_ctx(uint8_t sig[64], const char *ctx, const uint8_t *m, size_t len,
                     const uint8_t sk[64])
{
    static uint8_t buf[4096];
    size_t cl = strlen(ctx) + 1; /* the context includes its final 0 byte */
    memcpy(buf, ctx, cl);
    memcpy(buf + cl, m, len);
    crypto_sign_ed25519_detached(sig, NULL, buf, cl + len, sk);
}

/* Builds the reply to our nonce (placed at l->idx among random others). */
static void legacy_reply(const legacy *l, const uint8_t *nonce, unsigned nonce_len, reply *r)
{
    static uint8_t nonces[MAXLEAVES][64];
    uint8_t mint[8], maxt[8], midp[8], radi[4], ver[4], indx[4], root[64], path[32 * 64];
    uint8_t dele[256], dsig[64], cert[512], srep[256], sig[64];
    size_t path_len;
    unsigned hlen = l->kind == GOOGLE ? 64 : 32;

    randombytes_buf(nonces, sizeof(nonces));
    memcpy(nonces[l->idx], nonce, nonce_len);
    tree((const uint8_t(*)[64])nonces, nonce_len, l->batch, l->idx, hlen, root, path, &path_len);

    tb_put_le64(mint, l->mint);
    tb_put_le64(maxt, l->maxt);
    field df[] = {
        {tag("PUBK"), l->on_pk, 32, 0}, {tag("MINT"), mint, 8, 0}, {tag("MAXT"), maxt, 8, 0}};
    size_t dele_len = msg_put(dele, df, 3);
    sign_ctx(dsig, "RoughTime v1 delegation signature--", dele, dele_len, l->lt_sk);
    field cf[] = {{tag("SIG"), dsig, 64, 0}, {tag("DELE"), dele, dele_len, 0}};
    size_t cert_len = msg_put(cert, cf, 2);

    tb_put_le64(midp, l->midp);
    tb_put_le32(radi, l->radi);
    field sf[] = {
        {tag("ROOT"), root, hlen, 0}, {tag("MIDP"), midp, 8, 0}, {tag("RADI"), radi, 4, 0}};
    size_t srep_len = msg_put(srep, sf, 3);
    sign_ctx(sig, "RoughTime v1 response signature", srep, srep_len, l->on_sk);

    tb_put_le32(indx, l->idx);
    tb_put_le32(ver, l->ver);
    field tf[8] = {{tag("SIG"), sig, 64, 0},
                   {tag("PATH"), path, path_len, 0},
                   {tag("SREP"), srep, srep_len, 0},
                   {tag("CERT"), cert, cert_len, 0},
                   {tag("INDX"), indx, 4, 0}};
    unsigned n = 5;
    if (l->kind != GOOGLE)
        tf[n++] = (field){tag("VER"), ver, 4, 0};
    if (l->kind != GOOGLE || l->with_nonc)
        tf[n++] = (field){tag("NONC"), nonce, nonce_len, 0};
    size_t hdr = l->kind == GOOGLE ? 0 : 12;
    size_t mlen = msg_put(r->buf + hdr, tf, n);
    if (hdr) {
        memcpy(r->buf, "ROUGHTIM", 8);
        tb_put_le32(r->buf + 8, (uint32_t)mlen);
    }
    r->len = hdr + mlen;
    size_t cert_at = hdr + at_of(tf, n, "CERT"), srep_at = hdr + at_of(tf, n, "SREP");
    r->sig = (span){hdr + at_of(tf, n, "SIG"), 64};
    r->nonc = l->kind != GOOGLE || l->with_nonc ? (span){hdr + at_of(tf, n, "NONC"), nonce_len}
                                                : (span){0, 0};
    r->path = (span){hdr + at_of(tf, n, "PATH"), path_len};
    r->srep = (span){srep_at, srep_len};
    r->midp = (span){srep_at + at_of(sf, 3, "MIDP"), 8};
    r->indx = (span){hdr + at_of(tf, n, "INDX"), 4};
    r->cert_sig = (span){cert_at + at_of(cf, 2, "SIG"), 64};
    r->dele = (span){cert_at + at_of(cf, 2, "DELE"), dele_len};
}

/* ---- the client side ---- */

static const uint32_t offer_google[] = {TB_RT_VER_GOOGLE};
/* Everything the client speaks in one framed request, as tbroughtime offers it. */
static const uint32_t offer_all[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT08, TB_RT_VER_DRAFT11,
                                     TB_RT_VER_DRAFT12};

static int new_query(tb_rt_query *q, const legacy *l, const uint32_t *offer, unsigned n)
{
    uint8_t nonce[64];
    randombytes_buf(nonce, sizeof(nonce));
    return tb_rt_query_init(q, l->lt_pk, offer, n, nonce, NOW_NS - 20000000);
}

static int query_for(tb_rt_query *q, const legacy *l)
{
    if (l->kind == GOOGLE)
        return new_query(q, l, offer_google, 1);
    return new_query(q, l, offer_all, 4);
}

static tb_rt_reason verify(const tb_rt_query *q0, const uint8_t *buf, size_t len)
{
    static tb_rt_query q;
    tb_rt_reason why = TB_RT_OK;
    q = *q0;
    int rc = tb_rt_verify(&q, buf, len, NOW_NS, &why);
    if (rc == 0 && why != TB_RT_OK)
        return TB_RT_REASON_COUNT; /* success must say ok */
    if (rc < 0 && why == TB_RT_OK)
        return TB_RT_REASON_COUNT; /* failure must give a reason */
    return why;
}

static const char *kind_name(enum kind k)
{
    return k == GOOGLE ? "Google" : k == DRAFT08 ? "draft-08" : "draft-11";
}

/* The client's request, read with the test's own reader: the shape the version's text asks. */
static const uint8_t *find(const uint8_t *m, size_t len, const char *t, size_t *vlen)
{
    uint32_t n = tb_get_le32(m);
    size_t hdr = 8 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        if (tb_get_le32(m + 4 * n + 4 * i) != tag(t))
            continue;
        size_t s = i ? tb_get_le32(m + 4 * i) : 0;
        size_t e = i + 1 < n ? tb_get_le32(m + 4 * (i + 1)) : len - hdr;
        *vlen = e - s;
        return m + hdr + s;
    }
    return NULL;
}

static void test_request_shapes(void)
{
    static tb_rt_query q;
    legacy l;
    size_t vlen;
    legacy_init(&l, GOOGLE, 1, 0);
    TB_REQUIRE(query_for(&q, &l) == 0);
    /* Google: unframed, exactly 1024 bytes, NONC of 64 and PAD\xff, nothing else. */
    TB_CHECK_EQ(q.request_len, 1024);
    TB_CHECK(memcmp(q.request, "ROUGHTIM", 8) != 0);
    TB_CHECK_EQ(tb_get_le32(q.request), 2);
    TB_CHECK(find(q.request, q.request_len, "NONC", &vlen) && vlen == 64);
    TB_CHECK(find(q.request, q.request_len, "PAD\xff", &vlen) != NULL);

    legacy_init(&l, DRAFT11, 1, 0);
    TB_REQUIRE(query_for(&q, &l) == 0);
    const uint8_t *m = q.request + 12, *v;
    size_t mlen = q.request_len - 12;
    TB_CHECK(memcmp(q.request, "ROUGHTIM", 8) == 0);
    TB_CHECK_EQ(tb_get_le32(q.request + 8), mlen);
    TB_CHECK(mlen >= 1024);
    TB_CHECK(find(m, mlen, "NONC", &vlen) && vlen == 32);
    /* Draft 11 asks SRV = H(0xff ‖ long-term key) cut to 32 bytes. */
    uint8_t srv[64];
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, (const uint8_t *)"\xff", 1);
    crypto_hash_sha512_update(&st, l.lt_pk, 32);
    crypto_hash_sha512_final(&st, srv);
    TB_CHECK((v = find(m, mlen, "SRV", &vlen)) && vlen == 32 && memcmp(v, srv, 32) == 0);
    TB_REQUIRE((v = find(m, mlen, "VER", &vlen)) && vlen == 16);
    TB_CHECK_EQ(tb_get_le32(v + 4), 0x80000008U);
    TB_CHECK_EQ(tb_get_le32(v + 8), 0x8000000bU);
}

/* Accepted, with the version, midpoint and radius the server signed. */
static void check_ok(enum kind kind, unsigned batch, unsigned idx, int with_nonc)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    legacy_init(&l, kind, batch, idx);
    l.with_nonc = with_nonc;
    TB_REQUIRE(query_for(&q, &l) == 0);
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    tb_rt_reason why = TB_RT_BAD_FORMAT;
    int rc = tb_rt_verify(&q, r.buf, r.len, NOW_NS, &why);
    if (rc != 0)
        fprintf(stderr, "%s batch %u idx %u nonc %d: %s\n", kind_name(kind), batch, idx, with_nonc,
                tb_rt_reason_name(why));
    TB_REQUIRE(rc == 0);
    uint64_t unit = kind == GOOGLE ? 1 : 1000000;
    TB_CHECK_EQ(q.version, kind == GOOGLE ? TB_RT_VER_GOOGLE : l.ver);
    TB_CHECK_EQ(q.midp_us, (int64_t)(l.midp * unit));
    TB_CHECK_EQ(q.radi_us, (uint64_t)l.radi * unit);
    TB_CHECK_EQ(q.rtt_ns, 20000000);
    TB_CHECK(q.verified);
}

static void test_accepts(void)
{
    static const struct {
        unsigned batch, idx;
    } cases[] = {{1, 0}, {2, 1}, {3, 2}, {5, 4}, {8, 5}, {64, 37}, {65, 64}, {128, 127}};
    for (enum kind k = GOOGLE; k <= DRAFT11; k++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            check_ok(k, cases[i].batch, cases[i].idx, 0);
    }
    /* Some Google-Roughtime servers echo the nonce; the reference server does not. */
    check_ok(GOOGLE, 5, 3, 1);
}

/* Every bit of a span flipped in turn: each copy must be rejected with one of the reasons. */
static void flip_all(const tb_rt_query *q, const reply *r, span s, const char *what,
                     const tb_rt_reason *ok_reasons, unsigned nok)
{
    static uint8_t buf[4096];
    unsigned bad = 0;
    TB_REQUIRE(s.len > 0);
    for (size_t bit = 0; bit < 8 * s.len; bit++) {
        memcpy(buf, r->buf, r->len);
        buf[s.off + bit / 8] ^= (uint8_t)(1U << (bit % 8));
        tb_rt_reason why = verify(q, buf, r->len);
        int listed = 0;
        for (unsigned i = 0; i < nok; i++)
            listed |= why == ok_reasons[i];
        if (!listed && bad++ < 3)
            fprintf(stderr, "%s bit %zu: %s\n", what, bit, tb_rt_reason_name(why));
    }
    TB_CHECK_EQ(bad, 0);
}

#define FLIP(q, r, field, what, ...)                                                               \
    do {                                                                                           \
        static const tb_rt_reason ok_[] = {__VA_ARGS__};                                           \
        flip_all(q, r, (r)->field, what, ok_, sizeof(ok_) / sizeof(ok_[0]));                       \
    } while (0)

static void test_flipped_bits(void)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    for (enum kind k = GOOGLE; k <= DRAFT11; k++) {
        legacy_init(&l, k, 6, 3); /* three path hashes */
        l.with_nonc = 1;
        TB_REQUIRE(query_for(&q, &l) == 0);
        legacy_reply(&l, q.nonce, q.nonce_len, &r);
        TB_REQUIRE(verify(&q, r.buf, r.len) == TB_RT_OK);
        /* A flipped header byte of a nested message may fail parsing before any signature. */
        FLIP(&q, &r, dele, "DELE", TB_RT_BAD_DELE_SIG, TB_RT_BAD_FORMAT);
        FLIP(&q, &r, cert_sig, "CERT.SIG", TB_RT_BAD_DELE_SIG);
        FLIP(&q, &r, srep, "SREP", TB_RT_BAD_SIG, TB_RT_BAD_MERKLE, TB_RT_BAD_DELE_RANGE,
             TB_RT_BAD_FORMAT);
        FLIP(&q, &r, sig, "SIG", TB_RT_BAD_SIG);
        FLIP(&q, &r, path, "PATH", TB_RT_BAD_MERKLE);
        FLIP(&q, &r, indx, "INDX", TB_RT_BAD_MERKLE);
        FLIP(&q, &r, nonc, "NONC", TB_RT_BAD_NONCE);
    }
}

static void test_wrong_nonce(void)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    uint8_t other[64];
    for (enum kind k = GOOGLE; k <= DRAFT11; k++) {
        legacy_init(&l, k, 4, 1);
        l.with_nonc = 1;
        TB_REQUIRE(query_for(&q, &l) == 0);
        /* A reply to someone else's request. */
        randombytes_buf(other, sizeof(other));
        legacy_reply(&l, other, q.nonce_len, &r);
        TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_NONCE);
        /* The echoed NONC is ours but the tree holds another nonce. */
        memcpy(r.buf + r.nonc.off, q.nonce, q.nonce_len);
        TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_MERKLE);
        /* Google without NONC: only the Merkle path binds the nonce. */
        if (k == GOOGLE) {
            l.with_nonc = 0;
            legacy_reply(&l, other, q.nonce_len, &r);
            TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_MERKLE);
        }
    }
}

static void test_delegation_range(void)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    static const struct {
        int64_t midp_delta; /* from MINT (<= 0) or MAXT (> 0) */
        int at_max;
        tb_rt_reason want;
    } cases[] = {{0, 0, TB_RT_OK},
                 {-1, 0, TB_RT_BAD_DELE_RANGE},
                 {0, 1, TB_RT_OK},
                 {1, 1, TB_RT_BAD_DELE_RANGE}};
    for (enum kind k = GOOGLE; k <= DRAFT11; k++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            legacy_init(&l, k, 3, 1);
            l.midp = (uint64_t)((int64_t)(cases[i].at_max ? l.maxt : l.mint) + cases[i].midp_delta);
            TB_REQUIRE(query_for(&q, &l) == 0);
            legacy_reply(&l, q.nonce, q.nonce_len, &r);
            TB_CHECK_EQ(verify(&q, r.buf, r.len), cases[i].want);
        }
        legacy_init(&l, k, 3, 1);
        l.radi = 0;
        TB_REQUIRE(query_for(&q, &l) == 0);
        legacy_reply(&l, q.nonce, q.nonce_len, &r);
        TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_RADIUS);
    }
}

/* A reply in a version the client did not offer is rejected before anything else. */
static void test_versions_not_offered(void)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    static const uint32_t ietf_new[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT12};
    static const uint32_t only8[] = {TB_RT_VER_DRAFT08};
    static const uint32_t only11[] = {TB_RT_VER_DRAFT11};

    /* A client that offered only RFC and drafts 12-19 gets a draft-11 (or 8) reply. */
    for (enum kind k = DRAFT08; k <= DRAFT11; k++) {
        legacy_init(&l, k, 2, 0);
        TB_REQUIRE(new_query(&q, &l, ietf_new, 2) == 0);
        legacy_reply(&l, q.nonce, q.nonce_len, &r);
        TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_VERSION);
    }
    /* Offered draft 8 only, the reply says 11; offered 11 only, the reply says 8. */
    legacy_init(&l, DRAFT11, 2, 1);
    TB_REQUIRE(new_query(&q, &l, only8, 1) == 0);
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_VERSION);
    legacy_init(&l, DRAFT08, 2, 1);
    TB_REQUIRE(new_query(&q, &l, only11, 1) == 0);
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_VERSION);
    /* The offered one is accepted and reported as such. */
    TB_REQUIRE(new_query(&q, &l, only8, 1) == 0);
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_OK);

    /* Unframed Google reply to a framed request, and a framed reply to a Google request. */
    legacy_init(&l, GOOGLE, 2, 0);
    TB_REQUIRE(new_query(&q, &l, offer_all, 4) == 0);
    legacy_reply(&l, q.nonce, 64, &r); /* the first 32 bytes are ours, the rest whatever */
    TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_VERSION);
    legacy_init(&l, DRAFT08, 2, 0);
    TB_REQUIRE(new_query(&q, &l, offer_google, 1) == 0);
    legacy_reply(&l, q.nonce, 32, &r);
    TB_CHECK_EQ(verify(&q, r.buf, r.len), TB_RT_BAD_VERSION);
}

/* The RFC's CERT context on a legacy reply (or the legacy one where the RFC's is due) fails: the
 * version cannot be switched by relabelling the unsigned top-level VER. */
static void test_relabelled_version(void)
{
    static tb_rt_query q;
    static reply r;
    legacy l;
    legacy_init(&l, DRAFT11, 4, 2);
    l.ver = TB_RT_VER_DRAFT12; /* claims 12-19 at the top level, carries a draft-11 body */
    TB_REQUIRE(query_for(&q, &l) == 0);
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    tb_rt_reason why = verify(&q, r.buf, r.len);
    TB_CHECK(why != TB_RT_OK && why != TB_RT_REASON_COUNT);
    l.ver = TB_RT_VER_RFC;
    legacy_reply(&l, q.nonce, q.nonce_len, &r);
    why = verify(&q, r.buf, r.len);
    TB_CHECK(why != TB_RT_OK && why != TB_RT_REASON_COUNT);
}

/* Google-Roughtime cannot share a framed request: it has no VER and another nonce size. */
static void test_google_alone(void)
{
    static tb_rt_query q;
    uint8_t pk[32] = {0}, nonce[64] = {0};
    static const uint32_t mixed[] = {TB_RT_VER_RFC, TB_RT_VER_GOOGLE};
    TB_CHECK(tb_rt_query_init(&q, pk, mixed, 2, nonce, 0) < 0);
    TB_CHECK(tb_rt_query_init(&q, pk, offer_google, 1, nonce, 0) == 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_request_shapes);
    TB_RUN(test_accepts);
    TB_RUN(test_flipped_bits);
    TB_RUN(test_wrong_nonce);
    TB_RUN(test_delegation_range);
    TB_RUN(test_versions_not_offered);
    TB_RUN(test_relabelled_version);
    TB_RUN(test_google_alone);
    return TB_DONE();
}
