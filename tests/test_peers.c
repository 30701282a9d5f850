#include "discovery/peers.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "tb_test.h"

#define S TB_NS_PER_SEC

static const uint8_t cert_a[] = {0x30, 0x03, 0x01, 0x02, 0x03};
static const uint8_t cert_b[] = {0x30, 0x02, 0xaa, 0xbb};

static tb_peers *make(const char *self, size_t max_peers)
{
    tb_peers_config cfg;
    tb_peers *t = NULL;
    tb_peers_config_default(&cfg, self, 42);
    cfg.max_peers = max_peers;
    if (tb_peers_new(&cfg, &t) < 0)
        return NULL;
    return t;
}

/* For tests of the backoff itself: no limit on learned dials, nothing forgotten. */
static tb_peers *make_unlimited(const char *self, size_t max_peers)
{
    tb_peers_config cfg;
    tb_peers *t = NULL;
    tb_peers_config_default(&cfg, self, 42);
    cfg.max_peers = max_peers;
    cfg.learned_dials_per_min = 0;
    cfg.forget_after_failures = 0;
    if (tb_peers_new(&cfg, &t) < 0)
        return NULL;
    return t;
}

static tb_peers_str str(const char *s)
{
    tb_peers_str r = {s, strlen(s)};
    return r;
}

static tb_peer_info info(const char *name, const char *region, const char *addr)
{
    tb_peer_info i;
    memset(&i, 0, sizeof(i));
    i.name = str(name);
    i.region = str(region);
    i.addrs[0] = str(addr);
    i.naddrs = 1;
    i.cert = cert_a;
    i.cert_len = sizeof(cert_a);
    return i;
}

static size_t poll_at(tb_peers *t, uint64_t now, tb_peers_action *acts, size_t max, uint64_t *wake)
{
    size_t n = 0;
    TB_CHECK_EQ(tb_peers_poll(t, now, acts, max, &n, wake), 0);
    return n;
}

static void test_addr_syntax(void)
{
    static const char *good[] = {"127.0.0.1:4433",  "[::1]:4433",       "node-1.example.org:1",
                                 "localhost:65535", "[2001:db8::5]:80", "a:9",
                                 "x.org.:4433"};
    static const char *bad[] = {
        "127.0.0.1",       "127.0.0.1:", ":4433",         "127.0.0.1:0",     "127.0.0.1:65536",
        "127.0.0.1:04433", "::1:4433",   "[::1]4433",     "[::1:4433",       "[zz::1]:4433",
        "256.1.1.1:4433",  "1.2.3:4433", "-bad.org:4433", "bad-.org:4433",   "a..b:4433",
        "a b:4433",        "host:44a3",  "[]:4433",       "[::1%eth0]:4433", "host:+443"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!tb_peers_addr_valid(good[i], strlen(good[i])))
            TB_CHECK(!good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tb_peers_addr_valid(bad[i], strlen(bad[i])))
            TB_CHECK(!bad[i]);
    /* Length is explicit: a NUL inside or a prefix is judged by the bytes given. */
    TB_CHECK(!tb_peers_addr_valid("a:9\0", 4));
    /* Found by fuzz_peers_learn: inet_pton stopped at the NUL and accepted the rest. */
    TB_CHECK(!tb_peers_addr_valid("[::1\0zz]:4433", 13));
    TB_CHECK(!tb_peers_addr_valid("1.2.3.4\0:4433", 13));
    TB_CHECK(tb_peers_addr_valid("a:99999", 3));
    char big[300];
    memset(big, 'a', sizeof(big));
    memcpy(big + 250, ":4433", 5);
    TB_CHECK(!tb_peers_addr_valid(big, 255)); /* a 250-char label is over 63 */
}

static void test_seed_dial_connect_discover(void)
{
    tb_peers *t = make("self", 8);
    tb_peers_action acts[4];
    tb_peer_view v;
    uint64_t wake;
    uint32_t id, id2, got;
    TB_REQUIRE(t);
    TB_CHECK_EQ(tb_peers_add_seed(t, "127.0.0.11:4433", &id), 0);
    TB_CHECK_EQ(tb_peers_add_seed(t, "127.0.0.11:4433", &id2), 0);
    TB_CHECK_EQ(id, id2);
    TB_CHECK_EQ(tb_peers_add_seed(t, "not an address", &id2), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_peers_count(t), 1);

    TB_REQUIRE(poll_at(t, 100, acts, 4, &wake) == 1);
    TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_DIAL);
    TB_CHECK_EQ(acts[0].id, id);
    TB_CHECK_STR(acts[0].addr, "127.0.0.11:4433");
    TB_CHECK_EQ(wake, 100 + 10 * S);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_CONNECTING);
    TB_CHECK_STR(v.name, "");
    /* Nothing more to do until the deadline. */
    TB_CHECK_EQ(poll_at(t, 200, acts, 4, &wake), 0);

    TB_CHECK_EQ(tb_peers_connected(t, id, "alpha", "eu", cert_b, sizeof(cert_b), 300, &got), 0);
    TB_CHECK_EQ(got, id);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_CONNECTED);
    TB_CHECK_STR(v.name, "alpha");
    TB_CHECK_STR(v.region, "eu");
    TB_CHECK(v.verified);
    TB_CHECK_EQ(v.cert_len, sizeof(cert_b));
    TB_CHECK_EQ(tb_peers_find(t, "alpha", &got), 0);
    TB_CHECK_EQ(got, id);

    /* Connected: nothing is due for it, ever (mesh v2 asks no peer for its peers). */
    TB_CHECK_EQ(poll_at(t, 300, acts, 4, &wake), 0);
    TB_CHECK_EQ(wake, UINT64_MAX);
    TB_CHECK_EQ(poll_at(t, 300 + 3600 * S, acts, 4, &wake), 0);
    TB_CHECK_EQ(wake, UINT64_MAX);
    tb_peers_free(t);
}

static void test_backoff_formula(void)
{
    tb_peers_config cfg;
    tb_peers_config_default(&cfg, "self", 1);
    cfg.jitter_permille = 0;
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 1, 12345), 1 * S);
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 2, 12345), 2 * S);
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 6, 12345), 32 * S);
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 7, 12345), 60 * S);
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 4000000000u, 12345), 60 * S);
    cfg.jitter_permille = 200;
    /* Jitter only shortens, by at most 20 %; rnd picks where in that range. */
    TB_CHECK_EQ(tb_peers_backoff_delay(&cfg, 1, 0), 1 * S);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t r = 0; r < 2000; r++) {
        uint64_t d = tb_peers_backoff_delay(&cfg, 3, r * 0x9e3779b97f4a7c15ULL);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    TB_CHECK(lo >= 4 * S - 4 * S / 5 && hi <= 4 * S);
    TB_CHECK(hi - lo > 4 * S / 10); /* the jitter really spreads */
}

/* A dial that never completes: abort at the deadline, then redial after growing, capped,
 * jittered delays, rotating through the peer's addresses. */
/* The delay after the attempt-th failure in a row (from 0): 1 s doubling to the 60 s cap, less
 * up to 20 % jitter, growing until the cap. */
static void check_delay(unsigned attempt, uint64_t delay, uint64_t *prev)
{
    uint64_t nominal = (1ULL << (attempt < 6 ? attempt : 6)) * S;
    nominal = nominal > 60 * S ? 60 * S : nominal;
    TB_CHECK(delay <= nominal && delay >= nominal - nominal / 5);
    if (attempt < 6)
        TB_CHECK(delay > *prev);
    *prev = delay;
}

static void test_timeout_backoff_growth(void)
{
    tb_peers *t = make_unlimited("self", 8);
    tb_peers_action acts[4];
    tb_peer_info i = info("beta", "us", "127.0.0.12:4433");
    uint64_t now = 0, wake, prev_delay = 0;
    uint32_t id;
    TB_REQUIRE(t);
    i.addrs[1] = str("[::1]:4433");
    i.naddrs = 2;
    TB_REQUIRE(tb_peers_learn(t, &i, &id) == 0);
    for (unsigned attempt = 0; attempt < 12; attempt++) {
        TB_REQUIRE(poll_at(t, now, acts, 4, &wake) == 1);
        TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_DIAL);
        TB_CHECK_STR(acts[0].addr, attempt % 2 ? "[::1]:4433" : "127.0.0.12:4433");
        now = wake; /* the connect deadline */
        TB_REQUIRE(poll_at(t, now, acts, 4, &wake) == 1);
        TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_ABORT);
        check_delay(attempt, wake - now, &prev_delay);
        /* Not a moment early. */
        TB_CHECK_EQ(poll_at(t, wake - 1, acts, 4, &wake), 0);
        now = wake;
    }
    tb_peers_free(t);
}

/* Issue 10: a peer that accepts the handshake and then closes at once (its table is full, at
 * 65 nodes) used to be redialled every second for ever. A connection that closes sooner than
 * stable_ns counts as a failed dial: the delays double up to the cap; one that lasted starts
 * the count afresh. */
static void test_refusal_backoff_growth(void)
{
    tb_peers *t = make_unlimited("self", 8);
    tb_peers_action acts[4];
    tb_peer_info i = info("beta", "us", "127.0.0.12:4433");
    uint64_t now = 0, wake, prev_delay = 0;
    uint32_t id, got;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_learn(t, &i, &id) == 0);
    for (unsigned attempt = 0; attempt < 8; attempt++) {
        TB_REQUIRE(poll_at(t, now, acts, 4, &wake) >= 1);
        TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_DIAL);
        TB_REQUIRE(tb_peers_connected(t, id, "beta", "us", cert_a, sizeof(cert_a), now, &got) == 0);
        now += S / 10; /* refused right after the handshake */
        TB_REQUIRE(tb_peers_disconnected(t, id, now) == 0);
        tb_peer_view v;
        TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
        TB_CHECK_EQ(v.failures, attempt + 1);
        (void)poll_at(t, now, acts, 4, &wake);
        check_delay(attempt, wake - now, &prev_delay);
        now = wake;
    }
    /* Closed for the pair's other connection (a duplicate): no failure, the first step. */
    TB_REQUIRE(poll_at(t, now, acts, 4, &wake) >= 1);
    TB_REQUIRE(tb_peers_connected(t, id, "beta", "us", cert_a, sizeof(cert_a), now, &got) == 0);
    TB_REQUIRE(tb_peers_superseded(t, id, now + 1) == 0);
    (void)poll_at(t, now + 1, acts, 4, &wake);
    TB_CHECK(wake - (now + 1) <= S);
    now = wake;
    /* A connection that lasts 30 s: the next close redials after the first step again. */
    TB_REQUIRE(poll_at(t, now, acts, 4, &wake) >= 1);
    TB_REQUIRE(tb_peers_connected(t, id, "beta", "us", cert_a, sizeof(cert_a), now, &got) == 0);
    now += 30 * S;
    TB_REQUIRE(tb_peers_disconnected(t, id, now) == 0);
    (void)poll_at(t, now, acts, 4, &wake);
    TB_CHECK(wake - now <= S);
    tb_peers_free(t);
}

static void test_jitter_deterministic(void)
{
    uint64_t wakes[2][6];
    for (int run = 0; run < 2; run++) {
        tb_peers *t = make("self", 4);
        tb_peers_action acts[2];
        uint64_t now = 0, wake;
        uint32_t id;
        TB_REQUIRE(t);
        TB_REQUIRE(tb_peers_add_seed(t, "10.0.0.1:1", &id) == 0);
        for (int k = 0; k < 6; k++) {
            TB_REQUIRE(poll_at(t, now, acts, 2, &wake) == 1);
            TB_REQUIRE(tb_peers_dial_failed(t, id, now) == 0);
            TB_REQUIRE(poll_at(t, now, acts, 2, &wake) == 0);
            wakes[run][k] = wake - now;
            now = wake;
        }
        tb_peers_free(t);
    }
    TB_CHECK_MEM(wakes[0], wakes[1], sizeof(wakes[0]));
}

static void test_learn_validation(void)
{
    tb_peers *t = make("self", 8);
    tb_peer_info i;
    uint32_t id;
    static uint8_t big_cert[TB_PEERS_CERT_MAX + 1];
    TB_REQUIRE(t);
    i = info("Bad", "eu", "1.2.3.4:5");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    /* A name no certificate can carry (tb_name_valid) is refused, as the certificate is. */
    i = info("-ok", "eu", "1.2.3.4:5");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    i = info("ok", "-eu", "1.2.3.4:5");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    i = info("ok", "", "1.2.3.4:5");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    i = info("ok", "eu", "1.2.3.4");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    i = info("ok", "eu", "1.2.3.4:5");
    i.naddrs = TB_PEERS_MAX_ADDRS + 1;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_TOO_BIG);
    i = info("ok", "eu", "1.2.3.4:5");
    big_cert[0] = 0x30;
    i.cert = big_cert;
    i.cert_len = sizeof(big_cert);
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_TOO_BIG);
    i.cert_len = 0;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    i.cert = cert_a + 1; /* not a DER SEQUENCE */
    i.cert_len = 3;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_peers_count(t), 0);
    /* This node itself is ignored. */
    i = info("self", "eu", "1.2.3.4:5");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_CHECK_EQ(id, 0);
    TB_CHECK_EQ(tb_peers_count(t), 0);
    tb_peers_free(t);
}

/* A node that does not listen: known for its certificate, never dialled. */
static void test_learn_without_address(void)
{
    tb_peers *t = make("self", 8);
    tb_peer_info i = info("client", "eu", "1.2.3.4:5");
    tb_peers_action acts[2];
    tb_peer_view v;
    uint64_t wake;
    uint32_t id;
    TB_REQUIRE(t);
    i.naddrs = 0;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.naddrs, 0);
    TB_CHECK_EQ(v.cert_len, sizeof(cert_a));
    TB_CHECK_EQ(poll_at(t, 0, acts, 2, &wake), 0);
    TB_CHECK_EQ(wake, UINT64_MAX);
    /* It may be learned again later with an address: then it is dialled. */
    i.naddrs = 1;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_CHECK_EQ(poll_at(t, 0, acts, 2, &wake), 1);
    TB_CHECK_STR(acts[0].addr, "1.2.3.4:5");
    tb_peers_free(t);
}

static void test_learn_merge(void)
{
    tb_peers *t = make("self", 8);
    tb_peer_info i = info("gamma", "ap", "10.0.0.1:4433");
    tb_peer_view v;
    uint32_t id, id2;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_learn(t, &i, &id) == 0);
    i = info("gamma", "zz", "10.0.0.2:4433");
    i.addrs[1] = str("10.0.0.1:4433");
    i.addrs[2] = str("10.0.0.3:4433");
    i.addrs[3] = str("10.0.0.4:4433");
    i.naddrs = 4;
    i.cert = cert_b;
    i.cert_len = sizeof(cert_b);
    TB_REQUIRE(tb_peers_learn(t, &i, &id2) == 0);
    TB_CHECK_EQ(id, id2);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    /* Addresses merge up to the cap, the first region and certificate stay. */
    TB_CHECK_EQ(v.naddrs, TB_PEERS_MAX_ADDRS);
    TB_CHECK_STR(v.addrs[0], "10.0.0.1:4433");
    TB_CHECK_STR(v.addrs[1], "10.0.0.2:4433");
    TB_CHECK_STR(v.addrs[3], "10.0.0.4:4433");
    TB_CHECK_STR(v.region, "ap");
    TB_CHECK_EQ(v.cert_len, sizeof(cert_a));
    TB_CHECK(!v.verified);
    TB_CHECK_EQ(v.source, TB_PEER_LEARNED);
    tb_peers_free(t);
}

static void test_learned_name_mismatch(void)
{
    tb_peers *t = make("self", 8);
    tb_peer_info i = info("delta", "eu", "10.0.0.1:4433");
    tb_peers_action acts[2];
    tb_peer_view v;
    uint64_t wake;
    uint32_t id, got;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_learn(t, &i, &id) == 0);
    TB_REQUIRE(poll_at(t, 0, acts, 2, &wake) == 1);
    TB_CHECK_EQ(tb_peers_connected(t, id, "mallory", "eu", cert_b, sizeof(cert_b), 5, &got),
                TB_ERR_VERIFY);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_BACKOFF);
    TB_CHECK(!v.verified);
    TB_CHECK_EQ(tb_peers_find(t, "mallory", &got), TB_ERR_NOTFOUND);
    /* A certificate naming this node itself: the seed was us. */
    TB_REQUIRE(tb_peers_add_seed(t, "127.0.0.1:4433", &id) == 0);
    TB_CHECK_EQ(tb_peers_connected(t, id, "self", "eu", cert_b, sizeof(cert_b), 5, &got),
                TB_ERR_INVAL);
    TB_CHECK_EQ(tb_peers_get(t, id, &v), TB_ERR_NOTFOUND);
    /* Garbage identities are refused. */
    TB_REQUIRE(tb_peers_add_seed(t, "127.0.0.2:4433", &id) == 0);
    TB_CHECK_EQ(tb_peers_connected(t, id, "UPPER", "eu", cert_b, sizeof(cert_b), 5, &got),
                TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_peers_connected(t, id, "ok", "eu", cert_b, 0, 5, &got), TB_ERR_MALFORMED);
    tb_peers_free(t);
}

/* A seed whose name turns out to be a peer that already connected to us: one entry, one
 * connection, the seed address kept. */
static void test_seed_merges_into_inbound(void)
{
    tb_peers *t = make("self", 8);
    tb_peers_action acts[4];
    tb_peer_view v;
    uint64_t wake;
    uint32_t seed, in, got;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_add_seed(t, "127.0.0.13:4433", &seed) == 0);
    TB_REQUIRE(poll_at(t, 0, acts, 4, &wake) == 1);
    TB_CHECK_EQ(tb_peers_inbound(t, "eps", "eu", cert_a, sizeof(cert_a), 1, &in), 0);
    TB_CHECK(in != seed);
    TB_CHECK_EQ(tb_peers_inbound(t, "eps", "eu", cert_a, sizeof(cert_a), 1, &got), TB_ERR_EXISTS);
    TB_CHECK_EQ(tb_peers_connected(t, seed, "eps", "eu", cert_a, sizeof(cert_a), 2, &got),
                TB_ERR_EXISTS);
    TB_CHECK_EQ(got, in);
    TB_CHECK_EQ(tb_peers_count(t), 1);
    TB_REQUIRE(tb_peers_get(t, in, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_CONNECTED);
    TB_CHECK_EQ(v.source, TB_PEER_SEED);
    TB_CHECK_EQ(v.naddrs, 1);
    TB_CHECK_STR(v.addrs[0], "127.0.0.13:4433");
    /* The kept connection closes: redial after the first backoff step (≤ 1 s). */
    TB_CHECK_EQ(tb_peers_disconnected(t, in, 10), 0);
    TB_CHECK_EQ(tb_peers_disconnected(t, in, 10), TB_ERR_STATE);
    TB_REQUIRE(tb_peers_get(t, in, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_BACKOFF);
    TB_CHECK(v.next_time > 10 && v.next_time <= 10 + S);
    TB_CHECK_EQ(tb_peers_dial_failed(t, in, 20), TB_ERR_STATE);
    tb_peers_free(t);
}

static void test_inbound_without_address_goes_idle(void)
{
    tb_peers *t = make("self", 8);
    tb_peers_action acts[4];
    tb_peer_view v;
    uint64_t wake;
    uint32_t id;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_inbound(t, "zeta", "eu", cert_a, sizeof(cert_a), 0, &id) == 0);
    TB_REQUIRE(tb_peers_disconnected(t, id, 5) == 0);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.state, TB_PEER_IDLE);
    TB_CHECK_EQ(poll_at(t, 100 * S, acts, 4, &wake), 0);
    TB_CHECK_EQ(wake, UINT64_MAX);
    tb_peers_free(t);
}

static void test_export(void)
{
    tb_peers *t = make("self", 8);
    tb_peer_info out[8], self = info("self", "eu", "127.0.0.10:4433");
    tb_peer_info learned = info("unverified", "eu", "10.9.9.9:1");
    tb_peers_action acts[4];
    uint64_t wake;
    uint32_t a, b, seed;
    size_t n;
    TB_REQUIRE(t);
    n = tb_peers_export(t, NULL, out, 8);
    TB_CHECK_EQ(n, 0);
    TB_REQUIRE(tb_peers_set_self(t, &self) == 0);
    TB_REQUIRE(tb_peers_learn(t, &learned, &a) == 0);
    TB_REQUIRE(tb_peers_add_seed(t, "127.0.0.14:4433", &seed) == 0);
    TB_REQUIRE(poll_at(t, 0, acts, 4, &wake) == 2);
    TB_REQUIRE(tb_peers_connected(t, seed, "eta", "us", cert_b, sizeof(cert_b), 1, &b) == 0);
    TB_REQUIRE(tb_peers_inbound(t, "theta", "ap", cert_a, sizeof(cert_a), 1, &b) == 0);
    /* self, eta, theta (verified, no address known); not the unverified entry. */
    n = tb_peers_export(t, NULL, out, 8);
    TB_REQUIRE(n == 3);
    TB_CHECK_EQ(out[0].name.len, 4);
    TB_CHECK_MEM(out[0].name.p, "self", 4);
    TB_CHECK_EQ(out[1].name.len, 3);
    TB_CHECK_MEM(out[1].name.p, "eta", 3);
    TB_CHECK_EQ(out[1].naddrs, 1);
    TB_CHECK_MEM(out[1].addrs[0].p, "127.0.0.14:4433", 15);
    TB_CHECK_EQ(out[1].cert_len, sizeof(cert_b));
    TB_CHECK_EQ(out[1].cert[1], cert_b[1]);
    TB_CHECK_EQ(out[2].naddrs, 0);
    TB_CHECK_MEM(out[2].name.p, "theta", 5);
    /* Not back to the requester, and never more than asked for. */
    TB_CHECK_EQ(tb_peers_export(t, "eta", out, 8), 2);
    TB_CHECK_EQ(tb_peers_export(t, NULL, out, 1), 1);
    /* set_self refuses another node's name. */
    self = info("other", "eu", "127.0.0.10:4433");
    TB_CHECK_EQ(tb_peers_set_self(t, &self), TB_ERR_INVAL);
    tb_peers_free(t);
}

static void test_caps_and_eviction(void)
{
    tb_peers *t = make("self", 3);
    tb_peers_action acts[8];
    tb_peer_info i;
    uint64_t wake, now = 0;
    uint32_t id, junk[3];
    char name[16];
    TB_REQUIRE(t);
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof(name), "junk%d", k);
        i = info(name, "eu", "10.0.0.1:1");
        TB_REQUIRE(tb_peers_learn(t, &i, &junk[k]) == 0);
    }
    i = info("fresh", "eu", "10.0.0.2:1");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_FULL);
    TB_CHECK_EQ(tb_peers_count(t), 3);
    /* A verified inbound peer displaces an unverified learned one. */
    TB_CHECK_EQ(tb_peers_inbound(t, "real", "eu", cert_a, sizeof(cert_a), 0, &id), 0);
    TB_CHECK_EQ(tb_peers_count(t), 3);
    TB_CHECK_EQ(tb_peers_find(t, "real", &id), 0);
    /* Learned entries that failed forget_after_failures (8) dials in a row make room. */
    for (int k = 0; k < 8; k++) {
        size_t n = poll_at(t, now, acts, 8, &wake);
        for (size_t a = 0; a < n; a++)
            if (acts[a].what == TB_PEERS_DO_DIAL)
                TB_CHECK_EQ(tb_peers_dial_failed(t, acts[a].id, now), 0);
        now += 61 * S;
    }
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_CHECK_EQ(tb_peers_find(t, "fresh", &id), 0);
    TB_CHECK_EQ(tb_peers_find(t, "real", &id), 0);
    TB_CHECK_EQ(tb_peers_count(t), 3);
    tb_peers_free(t);
}

/* A member makes up 40 members at 10 addresses the policy allows, where nobody answers; an
 * honest peer tells of one real node, and three more come with certificates the CA vouches
 * for. Over 30 minutes: the made-up ones cost at most 4 dials at once and 6 a minute, never
 * two at once to one address; the real ones are dialled at once; the made-up ones are
 * forgotten. */
static void test_learned_dials_bounded(void)
{
    tb_peers *t = make("self", 64);
    TB_REQUIRE(t);
    char name[32], addr[10][32];
    for (int k = 0; k < 10; k++)
        snprintf(addr[k], sizeof(addr[k]), "10.9.0.%d:4433", k + 1);
    for (int k = 0; k < 40; k++) {
        snprintf(name, sizeof(name), "fake-%d", k);
        tb_peer_info i = info(name, "nowhere", addr[k % 10]);
        TB_REQUIRE(tb_peers_learn_from(t, &i, "mallory", NULL) == 0);
    }
    tb_peer_info real = info("real", "eu", "10.8.0.1:4433");
    uint32_t real_id, vouched[3];
    TB_REQUIRE(tb_peers_learn_from(t, &real, "honest", &real_id) == 0);
    static const char *const vnames[3] = {"v0", "v1", "v2"},
                             *vaddrs[3] = {"10.7.0.1:4433", "10.7.0.2:4433", "10.7.0.3:4433"};
    for (int k = 0; k < 3; k++) {
        tb_peer_info v = info(vnames[k], "eu", vaddrs[k]);
        TB_REQUIRE(tb_peers_learn(t, &v, &vouched[k]) == 0);
    }
    unsigned vouched_at_once = 0;
    tb_peers_action acts[64];
    uint64_t wake, real_dialled_at = UINT64_MAX;
    unsigned fake_dials = 0, most = 0;
    int busy[10] = {0};
    uint64_t busy_until[10] = {0};
    for (uint64_t now = 0; now < 1800 * S; now += S / 10) {
        for (int k = 0; k < 10; k++)
            busy[k] = busy_until[k] > now;
        size_t n = poll_at(t, now, acts, 64, &wake);
        for (size_t a = 0; a < n; a++) {
            if (acts[a].what != TB_PEERS_DO_DIAL)
                continue;
            if (acts[a].id == real_id) {
                if (real_dialled_at == UINT64_MAX)
                    real_dialled_at = now;
                uint32_t got;
                TB_CHECK_EQ(
                    tb_peers_connected(t, real_id, "real", "eu", cert_a, sizeof(cert_a), now, &got),
                    0);
                continue;
            }
            int v = -1;
            for (int k = 0; k < 3; k++)
                v = acts[a].id == vouched[k] ? k : v;
            if (v >= 0) {
                vouched_at_once += now == 0;
                uint32_t got;
                TB_CHECK_EQ(tb_peers_connected(t, vouched[v], vnames[v], "eu", cert_a,
                                               sizeof(cert_a), now, &got),
                            0);
                continue;
            }
            fake_dials++;
            for (int k = 0; k < 10; k++) {
                if (strcmp(acts[a].addr, addr[k]) == 0) {
                    TB_CHECK(!busy[k]); /* never two at once to one address */
                    busy[k] = 1;
                    busy_until[k] = now + 10 * S; /* the connect deadline: ABORT then */
                }
            }
        }
        /* At most 4 at once and 6 a minute since. */
        unsigned bound = 4 + (unsigned)(6 * now / (60 * S)) + 1;
        TB_CHECK(fake_dials <= bound);
        most = fake_dials > most ? fake_dials : most;
    }
    TB_CHECK_EQ(real_dialled_at, 0);
    TB_CHECK_EQ(vouched_at_once, 3);
    tb_peers_stats st;
    tb_peers_get_stats(t, &st);
    TB_CHECK(st.learned_dials >= fake_dials);
    TB_CHECK(fake_dials >= 20); /* the limit, not something else, held them */
    TB_CHECK_EQ(st.learned_forgotten, 40);
    TB_CHECK_EQ(tb_peers_count(t), 4);
    fprintf(stderr, "40 made-up members: %u dials in 30 min, all forgotten\n", fake_dials);
    tb_peers_free(t);
}

/* A partition healed (node.c: a member held dead answered): entries in backoff are dialled at
 * once, a dial under way is left alone, and a failure afterwards backs off further, not afresh. */
static void test_retry_now(void)
{
    tb_peers *t = make_unlimited("self", 8);
    tb_peers_action acts[4];
    tb_peer_info b = info("beta", "us", "127.0.0.12:4433"),
                 g = info("gamma", "eu", "127.0.0.13:4433");
    uint64_t now = 0, wake;
    uint32_t bid, gid;
    TB_REQUIRE(t);
    TB_REQUIRE(tb_peers_learn(t, &b, &bid) == 0);
    for (unsigned attempt = 0; attempt < 6; attempt++) { /* dialled, timed out: 6 failures */
        size_t n;
        while ((n = poll_at(t, now, acts, 4, &wake)) == 0) /* the entry's, then its address's */
            now = wake;
        TB_REQUIRE(n == 1);
        TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_DIAL);
        now = wake;
        TB_REQUIRE(poll_at(t, now, acts, 4, &wake) == 1);
        TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_ABORT);
        if (attempt < 5)
            now = wake;
    }
    uint64_t before = wake - now; /* the 6th delay: about 32 s */
    TB_CHECK(before > 20 * S);
    TB_REQUIRE(tb_peers_learn(t, &g, &gid) == 0);
    TB_REQUIRE(poll_at(t, now, acts, 4, &wake) == 1); /* gamma's dial starts */
    TB_CHECK_EQ(acts[0].id, gid);
    TB_CHECK_EQ(tb_peers_retry_now(t, now + S), 1u); /* beta only: gamma is being dialled */
    TB_REQUIRE(poll_at(t, now + S, acts, 4, &wake) == 1);
    TB_CHECK_EQ(acts[0].what, TB_PEERS_DO_DIAL);
    TB_CHECK_EQ(acts[0].id, bid);
    TB_CHECK_EQ(tb_peers_retry_now(t, now + S), 0u); /* nothing in backoff now */
    TB_CHECK_EQ(tb_peers_dial_failed(t, bid, now + 2 * S), 0);
    tb_peer_view v;
    TB_REQUIRE(tb_peers_get(t, bid, &v) == 0);
    TB_CHECK_EQ(v.failures, 7u);
    TB_CHECK_EQ(v.state, TB_PEER_BACKOFF);
    tb_peers_free(t);
}

static void test_max_connecting_and_small_out(void)
{
    tb_peers_config cfg;
    tb_peers *t = NULL;
    tb_peers_action acts[8];
    uint64_t wake;
    uint32_t id;
    char addr[32];
    size_t n;
    tb_peers_config_default(&cfg, "self", 7);
    cfg.max_connecting = 2;
    TB_REQUIRE(tb_peers_new(&cfg, &t) == 0);
    for (int k = 0; k < 5; k++) {
        snprintf(addr, sizeof(addr), "10.0.0.%d:1", k + 1);
        TB_REQUIRE(tb_peers_add_seed(t, addr, &id) == 0);
    }
    TB_CHECK_EQ(poll_at(t, 0, acts, 8, &wake), 2);
    TB_CHECK_EQ(tb_peers_count_state(t, TB_PEER_CONNECTING), 2);
    TB_CHECK_EQ(tb_peers_dial_failed(t, acts[0].id, 1), 0);
    TB_CHECK_EQ(poll_at(t, 1, acts, 8, &wake), 1);
    TB_CHECK_EQ(tb_peers_count_state(t, TB_PEER_CONNECTING), 2);
    tb_peers_free(t);

    cfg.max_connecting = 0;
    TB_REQUIRE(tb_peers_new(&cfg, &t) == 0);
    for (int k = 0; k < 5; k++) {
        snprintf(addr, sizeof(addr), "10.0.0.%d:1", k + 1);
        TB_REQUIRE(tb_peers_add_seed(t, addr, &id) == 0);
    }
    /* An output array too small: the rest is due at once. */
    n = poll_at(t, 0, acts, 3, &wake);
    TB_CHECK_EQ(n, 3);
    TB_CHECK_EQ(wake, 0);
    TB_CHECK_EQ(poll_at(t, 0, acts, 3, &wake), 2);
    TB_CHECK_EQ(wake, 10 * S);
    tb_peers_free(t);
}

static void test_keep_dialled(void)
{
    /* Both ends must pick the same connection. */
    TB_CHECK_EQ(tb_peers_keep_dialled("alpha", "beta"), 1);
    TB_CHECK_EQ(tb_peers_keep_dialled("beta", "alpha"), 0);
    TB_CHECK_EQ(tb_peers_keep_dialled("n1", "n10"), 1);
    TB_CHECK_EQ(tb_peers_keep_dialled("n10", "n1"), 0);
}

static void test_bad_config(void)
{
    tb_peers_config cfg;
    tb_peers *t = NULL;
    tb_peers_config_default(&cfg, "self", 1);
    cfg.max_peers = 0;
    TB_CHECK_EQ(tb_peers_new(&cfg, &t), TB_ERR_INVAL);
    tb_peers_config_default(&cfg, "Not valid", 1);
    TB_CHECK_EQ(tb_peers_new(&cfg, &t), TB_ERR_INVAL);
    tb_peers_config_default(&cfg, "self", 1);
    cfg.backoff_max_ns = cfg.backoff_initial_ns - 1;
    TB_CHECK_EQ(tb_peers_new(&cfg, &t), TB_ERR_INVAL);
    TB_CHECK(t == NULL);
}

/* Learned addresses pass the address policy; seeds do not need to. */
static void test_learn_address_policy(void)
{
    tb_peers_config cfg;
    tb_peers *t = NULL;
    tb_addr_policy pol = {.family = AF_INET};
    tb_peers_config_default(&cfg, "self", 42);
    cfg.max_peers = 8;
    cfg.addr_policy = &pol;
    TB_REQUIRE(tb_peers_new(&cfg, &t) == 0);
    pol.allow_names = 1; /* copied at tb_peers_new: a change afterwards has no effect */
    uint32_t id;
    tb_peer_view v;
    static const char *const refused[] = {
        "169.254.169.254:80", "224.0.0.1:4433",    "0.0.0.0:4433",      "255.255.255.255:4433",
        "127.0.0.1:4433",     "name.example:4433", "[2001:db8::1]:4433"};
    for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
        char name[16];
        snprintf(name, sizeof(name), "bad%zu", k);
        tb_peer_info i = info(name, "eu", refused[k]);
        TB_CHECK_EQ(tb_peers_learn(t, &i, &id), TB_ERR_INVAL);
        TB_CHECK_EQ(tb_peers_find(t, name, &id), TB_ERR_NOTFOUND);
    }
    TB_CHECK_EQ(tb_peers_addrs_refused(t), sizeof(refused) / sizeof(refused[0]));
    TB_CHECK_EQ(tb_peers_count(t), 0);
    /* A mixed entry keeps its good addresses only. */
    tb_peer_info i = info("good", "eu", "169.254.169.254:4433");
    i.addrs[1] = str("10.1.2.3:4433");
    i.addrs[2] = str("239.1.1.1:4433");
    i.naddrs = 3;
    TB_REQUIRE(tb_peers_learn(t, &i, &id) == 0);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.naddrs, 1);
    TB_CHECK_STR(v.addrs[0], "10.1.2.3:4433");
    /* A known entry gains nothing from a refused address; one without any is still kept. */
    i = info("good", "eu", "127.0.0.9:4433");
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_REQUIRE(tb_peers_get(t, id, &v) == 0);
    TB_CHECK_EQ(v.naddrs, 1);
    i = info("client", "eu", "x");
    i.naddrs = 0;
    TB_CHECK_EQ(tb_peers_learn(t, &i, &id), 0);
    TB_CHECK_EQ(tb_peers_addrs_refused(t), sizeof(refused) / sizeof(refused[0]) + 3);
    /* The operator's seeds are taken as given. */
    TB_CHECK_EQ(tb_peers_add_seed(t, "127.0.0.1:4433", &id), 0);
    tb_peers_free(t);
}

int main(void)
{
    TB_RUN(test_addr_syntax);
    TB_RUN(test_seed_dial_connect_discover);
    TB_RUN(test_backoff_formula);
    TB_RUN(test_timeout_backoff_growth);
    TB_RUN(test_refusal_backoff_growth);
    TB_RUN(test_jitter_deterministic);
    TB_RUN(test_learn_validation);
    TB_RUN(test_learn_without_address);
    TB_RUN(test_learn_merge);
    TB_RUN(test_learn_address_policy);
    TB_RUN(test_learned_name_mismatch);
    TB_RUN(test_seed_merges_into_inbound);
    TB_RUN(test_inbound_without_address_goes_idle);
    TB_RUN(test_export);
    TB_RUN(test_caps_and_eviction);
    TB_RUN(test_max_connecting_and_small_out);
    TB_RUN(test_learned_dials_bounded);
    TB_RUN(test_retry_now);
    TB_RUN(test_keep_dialled);
    TB_RUN(test_bad_config);
    return TB_DONE();
}
