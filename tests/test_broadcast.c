#include "routing/broadcast.h"

#include <stdio.h>

#include "common/clock.h"
#include "tb_test.h"
#include "tests/support/bc_digest.h"

#define S TB_NS_PER_SEC

static tb_bc *make(const char *self, size_t cap, uint64_t ttl)
{
    tb_bc_config cfg;
    tb_bc *bc = NULL;
    tb_bc_config_default(&cfg, 99);
    cfg.cache_capacity = cap;
    if (ttl)
        cfg.cache_ttl_ns = ttl;
    if (tb_bc_new(&cfg, self, 1000, &bc) < 0)
        return NULL;
    return bc;
}

static void test_originate(void)
{
    tb_bc *bc = make("a", 16, 0);
    const char *nb[] = {"b", "c", "d"};
    size_t fwd[3];
    tb_bc_decision d;
    uint64_t id, id2;
    TB_REQUIRE(bc);
    id = tb_bc_next_id(bc);
    TB_CHECK_EQ(id, 1000);
    TB_CHECK_EQ(tb_bc_originate(bc, 0, D("a", id), nb, 3, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    TB_CHECK_EQ(d.hop_limit, 16);
    TB_CHECK_EQ(d.nforward, 3);
    TB_CHECK_EQ(fwd[0], 0);
    TB_CHECK_EQ(fwd[2], 2);
    id2 = tb_bc_next_id(bc);
    TB_CHECK_EQ(id2, 1001);
    TB_CHECK_EQ(tb_bc_originate(bc, 0, D("a", id2), nb, 3, fwd, &d), 0);
    /* Our own broadcast echoed back by a neighbour is dropped. */
    TB_CHECK_EQ(tb_bc_receive(bc, 1, "a", 1, D("a", id), 15, "b", nb, 3, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    TB_CHECK_EQ(d.nforward, 0);
    tb_bc_free(bc);
}

static void test_receive_forward_and_duplicate(void)
{
    tb_bc *bc = make("b", 16, 0);
    const char *nb[] = {"a", "c", "origin", "d"};
    size_t fwd[4];
    tb_bc_decision d;
    tb_bc_stats st;
    TB_REQUIRE(bc);
    TB_CHECK_EQ(tb_bc_receive(bc, 0, "origin", 6, D("origin", 7), 5, "a", nb, 4, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_CHECK_EQ(d.hop_limit, 4);
    /* Not back to "a" (sender) nor to "origin". */
    TB_REQUIRE(d.nforward == 2);
    TB_CHECK_EQ(fwd[0], 1);
    TB_CHECK_EQ(fwd[1], 3);
    /* The same message via another path: suppressed. */
    TB_CHECK_EQ(tb_bc_receive(bc, 1, "origin", 6, D("origin", 7), 9, "c", nb, 4, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    TB_CHECK_EQ(d.nforward, 0);
    /* Same id from another origin is another message. */
    TB_CHECK_EQ(tb_bc_receive(bc, 1, "other", 5, D("other", 7), 2, "c", nb, 4, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_CHECK_EQ(d.hop_limit, 1);
    TB_CHECK_EQ(d.nforward, 3);
    /* Hop limit 1: delivered here, goes no further. */
    TB_CHECK_EQ(tb_bc_receive(bc, 1, "origin", 6, D("origin", 8), 1, "a", nb, 4, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_CHECK_EQ(d.nforward, 0);
    tb_bc_get_stats(bc, &st);
    TB_CHECK_EQ(st.received, 4);
    TB_CHECK_EQ(st.delivered, 3);
    TB_CHECK_EQ(st.duplicates, 1);
    TB_CHECK_EQ(st.hop_ended, 1);
    TB_CHECK_EQ(st.forwarded, 5);
    tb_bc_free(bc);
}

static void test_malformed_and_hop_cap(void)
{
    tb_bc *bc = make("b", 16, 0);
    const char *nb[] = {"a", "c"};
    size_t fwd[2];
    tb_bc_decision d;
    tb_bc_stats st;
    TB_REQUIRE(bc);
    TB_CHECK_EQ(tb_bc_receive(bc, 0, "x", 1, D("x", 1), 0, "a", nb, 2, fwd, &d), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_bc_receive(bc, 0, "X!", 2, D("X!", 1), 3, "a", nb, 2, fwd, &d),
                TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_bc_receive(bc, 0, "", 0, D("", 1), 3, "a", nb, 2, fwd, &d), TB_ERR_MALFORMED);
    TB_CHECK_EQ(d.deliver, 0);
    TB_CHECK_EQ(d.nforward, 0);
    /* A peer cannot make a broadcast travel further than max_hop_limit (32). */
    TB_CHECK_EQ(tb_bc_receive(bc, 0, "x", 1, D("x", 1), 255, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.hop_limit, 31);
    tb_bc_get_stats(bc, &st);
    TB_CHECK_EQ(st.malformed, 3);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 1);
    tb_bc_free(bc);
}

static void test_check_then_commit(void)
{
    tb_bc *bc = make("b", 16, 0);
    const char *nb[] = {"a", "c"};
    size_t fwd[2];
    tb_bc_decision d;
    tb_bc_stats st;
    TB_REQUIRE(bc);
    /* a copy checked but refused by the application leaves no trace: the real one with the same
     * (origin, id) still gets through */
    TB_CHECK_EQ(tb_bc_check(bc, 0, "o", 1, D("o", 5), 3, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 0);
    TB_CHECK_EQ(tb_bc_check(bc, 0, "o", 1, D("o", 5), 3, "c", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_CHECK_EQ(d.nforward, 1);
    TB_CHECK_EQ(nb[fwd[0]][0], 'a');
    tb_bc_commit(bc, 0, D("o", 5), &d);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 1);
    TB_CHECK_EQ(tb_bc_check(bc, 0, "o", 1, D("o", 5), 3, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    tb_bc_commit(bc, 0, D("o", 5), &d); /* not a first copy: nothing */
    /* the last hop: delivered, not forwarded */
    TB_CHECK_EQ(tb_bc_check(bc, 0, "o", 1, D("o", 6), 1, "a", nb, 2, fwd, &d), 0);
    tb_bc_commit(bc, 0, D("o", 6), &d);
    tb_bc_get_stats(bc, &st);
    TB_CHECK_EQ(st.received, 4);
    TB_CHECK_EQ(st.delivered, 2);
    TB_CHECK_EQ(st.duplicates, 1);
    TB_CHECK_EQ(st.forwarded, 1);
    TB_CHECK_EQ(st.hop_ended, 1);
    tb_bc_free(bc);
}

/* A forged copy claims origin "o" and the id of o's next message: its signed bytes differ, so it
 * has another digest. Refused (bad signature), it is not remembered, and the real message with
 * the same origin and id is delivered and forwarded; then the forgery sent again is still not a
 * duplicate of anything (checked and refused again), and the real one is. */
static void test_forged_origin(void)
{
    tb_bc *bc = make("b", 16, 0);
    const char *nb[] = {"a", "c"};
    size_t fwd[2];
    tb_bc_decision d;
    tb_bc_stats st;
    TB_REQUIRE(bc);
    uint8_t real[TB_BC_DIGEST_LEN], forged[TB_BC_DIGEST_LEN];
    memcpy(real, D("o", 41), sizeof(real));
    memcpy(forged, D("o", 41), sizeof(forged));
    forged[15] ^= 1; /* other content under the same (origin, id) */
    TB_CHECK_EQ(tb_bc_check(bc, 0, "o", 1, forged, 5, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    tb_bc_refused(bc);
    TB_CHECK_EQ(tb_bc_check(bc, 1, "o", 1, real, 5, "c", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    TB_REQUIRE(d.nforward == 1);
    TB_CHECK_STR(nb[fwd[0]], "a");
    tb_bc_commit(bc, 1, real, &d);
    TB_CHECK_EQ(tb_bc_check(bc, 2, "o", 1, forged, 5, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    tb_bc_refused(bc);
    TB_CHECK_EQ(tb_bc_check(bc, 2, "o", 1, real, 5, "a", nb, 2, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    tb_bc_get_stats(bc, &st);
    TB_CHECK_EQ(st.refused, 2);
    TB_CHECK_EQ(st.delivered, 1);
    TB_CHECK_EQ(st.duplicates, 1);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 1);
    tb_bc_free(bc);
}

/* The signed header is laid out as ADR 0010 says; a bad origin or a short buffer is refused. */
static void test_signed_header(void)
{
    uint8_t buf[TB_BC_SIGNED_HEADER_MAX];
    size_t len = 0;
    TB_REQUIRE(tb_bc_signed_header("n1", 2, 0x0102030405060708ULL, 0xa0b0c0d0u, buf, sizeof(buf),
                                   &len) == 0);
    static const uint8_t want[] = "tbnode broadcast v1\0\x02n1\x01\x02\x03\x04\x05\x06\x07\x08"
                                  "\xa0\xb0\xc0\xd0";
    TB_CHECK_EQ(len, sizeof(want) - 1);
    TB_CHECK_MEM(buf, want, sizeof(want) - 1);
    TB_CHECK_EQ(tb_bc_signed_header("N!", 2, 1, 1, buf, sizeof(buf), &len), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_bc_signed_header("n1", 2, 1, 1, buf, 10, &len), TB_ERR_TOO_BIG);
}

static void test_capacity_evicts_oldest(void)
{
    tb_bc *bc = make("b", 8, 0);
    const char *nb[] = {"a"};
    size_t fwd[1];
    tb_bc_decision d;
    tb_bc_stats st;
    TB_REQUIRE(bc);
    /* 10000 distinct messages: the cache never holds more than 8. */
    for (uint64_t id = 0; id < 10000; id++) {
        TB_REQUIRE(tb_bc_receive(bc, id, "o", 1, D("o", id), 3, "a", nb, 1, fwd, &d) == 0);
        TB_REQUIRE(d.deliver == 1);
        TB_REQUIRE(tb_bc_cache_size(bc) <= 8);
    }
    TB_CHECK_EQ(tb_bc_cache_size(bc), 8);
    tb_bc_get_stats(bc, &st);
    TB_CHECK_EQ(st.evicted, 10000 - 8);
    /* The newest 8 are still known, the ninth newest was pushed out. */
    for (uint64_t id = 9992; id < 10000; id++) {
        TB_CHECK_EQ(tb_bc_receive(bc, 10000, "o", 1, D("o", id), 3, "a", nb, 1, fwd, &d), 0);
        TB_CHECK_EQ(d.deliver, 0);
    }
    TB_CHECK_EQ(tb_bc_receive(bc, 10000, "o", 1, D("o", 9991), 3, "a", nb, 1, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 1);
    tb_bc_free(bc);
}

static void test_ttl_expiry(void)
{
    tb_bc *bc = make("b", 64, 10 * S);
    const char *nb[] = {"a"};
    size_t fwd[1];
    tb_bc_decision d;
    TB_REQUIRE(bc);
    TB_REQUIRE(tb_bc_receive(bc, 0, "o", 1, D("o", 1), 3, "a", nb, 1, fwd, &d) == 0);
    TB_REQUIRE(tb_bc_receive(bc, 5 * S, "o", 1, D("o", 2), 3, "a", nb, 1, fwd, &d) == 0);
    TB_CHECK_EQ(tb_bc_expire(bc, 5 * S), 10 * S);
    TB_CHECK_EQ(tb_bc_receive(bc, 10 * S - 1, "o", 1, D("o", 1), 3, "a", nb, 1, fwd, &d), 0);
    TB_CHECK_EQ(d.deliver, 0);
    TB_CHECK_EQ(tb_bc_expire(bc, 10 * S), 15 * S);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 1);
    TB_CHECK_EQ(tb_bc_expire(bc, 15 * S), UINT64_MAX);
    TB_CHECK_EQ(tb_bc_cache_size(bc), 0);
    tb_bc_free(bc);
}

/* Many origins with clashing hashes would only lengthen chains: correctness must hold
 * whatever the key. */
static void test_many_origins(void)
{
    tb_bc *bc = make("b", 256, 0);
    const char *nb[] = {"a"};
    size_t fwd[1];
    tb_bc_decision d;
    char name[16];
    TB_REQUIRE(bc);
    for (int round = 0; round < 2; round++) {
        for (int o = 0; o < 200; o++) {
            snprintf(name, sizeof(name), "n%d", o);
            TB_REQUIRE(tb_bc_receive(bc, 0, name, strlen(name), D(name, (uint64_t)o % 3), 2, "a",
                                     nb, 1, fwd, &d) == 0);
            TB_CHECK_EQ(d.deliver, round == 0);
        }
    }
    tb_bc_free(bc);
}

static void test_bad_config(void)
{
    tb_bc_config cfg;
    tb_bc *bc = NULL;
    tb_bc_config_default(&cfg, 1);
    cfg.cache_capacity = 0;
    TB_CHECK_EQ(tb_bc_new(&cfg, "a", 0, &bc), TB_ERR_INVAL);
    tb_bc_config_default(&cfg, 1);
    cfg.hop_limit = 0;
    TB_CHECK_EQ(tb_bc_new(&cfg, "a", 0, &bc), TB_ERR_INVAL);
    tb_bc_config_default(&cfg, 1);
    TB_CHECK_EQ(tb_bc_new(&cfg, "Bad", 0, &bc), TB_ERR_INVAL);
    TB_CHECK(bc == NULL);
}

int main(void)
{
    TB_RUN(test_originate);
    TB_RUN(test_receive_forward_and_duplicate);
    TB_RUN(test_malformed_and_hop_cap);
    TB_RUN(test_check_then_commit);
    TB_RUN(test_forged_origin);
    TB_RUN(test_signed_header);
    TB_RUN(test_capacity_evicts_oldest);
    TB_RUN(test_ttl_expiry);
    TB_RUN(test_many_origins);
    TB_RUN(test_bad_config);
    return TB_DONE();
}
