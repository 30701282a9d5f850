/* Roughtime over loopback UDP (127.0.0.53-56, port 0): the client against the server edge for
 * every version both speak, batching, a junk flood, draining on shutdown, and a server with a
 * shifted clock caught by a chained measurement sequence. Each server runs its own libev loop in
 * its own thread, as tbnode's workers do. */
#include <ev.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/log.h"
#include "roughtime/codec.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"
#include "roughtime/verify.h"
#include "tb_test.h"

typedef struct shifted_clock {
    tb_clock clock;
    int64_t shift_ns;
} shifted_clock;

static uint64_t shifted_mono(void *arg)
{
    return tb_clock_mono(tb_clock_system());
}

static int64_t shifted_real(void *arg)
{
    const shifted_clock *c = arg;
    return tb_clock_real(tb_clock_system()) + c->shift_ns;
}

typedef struct server {
    struct ev_loop *loop;
    ev_async stop;
    tb_log log;
    shifted_clock clock;
    tb_rt_srv *srv;
    tb_rt_udp *udp;
    pthread_t thread;
    char addr[64];
    tb_rt_srv_stats final; /* the server's counters, kept after it is freed */
} server;

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    server *s = w->data;
    tb_rt_udp_drain(s->udp);
    ev_break(loop, EVBREAK_ALL);
}

static void *run(void *arg)
{
    server *s = arg;
    ev_run(s->loop, 0);
    return NULL;
}

/* Options for the next server_start only (then back to the defaults). */
static struct {
    uint32_t radius_s;
    uint64_t stats_ns;
    int tcp;
    tb_log_sink sink;
    void *sink_arg;
} next_opts;

static int server_start_lifetime(server *s, const char *ip, int64_t shift_s, unsigned max_batch,
                                 uint64_t flush_ns, uint64_t lifetime_s)
{
    tb_rt_srv_config scfg;
    tb_rt_udp_config ucfg;
    uint8_t pk[32];
    memset(s, 0, sizeof(*s));
    tb_log_init(&s->log, ip, TB_LOG_WARN);
    s->clock.clock.mono_ns = shifted_mono;
    s->clock.clock.real_ns = shifted_real;
    s->clock.clock.arg = &s->clock;
    s->clock.shift_ns = shift_s * (int64_t)TB_NS_PER_SEC;
    tb_rt_srv_config_default(&scfg);
    scfg.max_batch = max_batch;
    if (lifetime_s)
        scfg.dele_lifetime_s = lifetime_s;
    crypto_sign_ed25519_keypair(pk, scfg.longterm_sk);
    tb_rt_udp_config_default(&ucfg);
    snprintf(ucfg.listen, sizeof(ucfg.listen), "%s:0", ip);
    ucfg.flush_interval_ns = flush_ns;
    ucfg.radius_from_kernel = 0; /* RADI 3 s whatever this machine's clock state */
    if (next_opts.radius_s)
        ucfg.radius_s = next_opts.radius_s;
    if (next_opts.stats_ns)
        ucfg.stats_interval_ns = next_opts.stats_ns;
    ucfg.tcp = next_opts.tcp;
    if (next_opts.sink) {
        s->log.level = TB_LOG_INFO;
        s->log.sink = next_opts.sink;
        s->log.sink_arg = next_opts.sink_arg;
    }
    memset(&next_opts, 0, sizeof(next_opts));
    s->loop = ev_loop_new(0);
    if (!s->loop || tb_rt_srv_new(&scfg, &s->log, tb_clock_real(&s->clock.clock), &s->srv) < 0 ||
        tb_rt_udp_new(s->loop, &s->log, &s->clock.clock, s->srv, &ucfg, &s->udp) < 0)
        return -1;
    snprintf(s->addr, sizeof(s->addr), "%s:%u", ip, tb_rt_udp_port(s->udp));
    ev_async_init(&s->stop, on_stop);
    s->stop.data = s;
    ev_async_start(s->loop, &s->stop);
    return pthread_create(&s->thread, NULL, run, s) == 0 ? 0 : -1;
}

static int server_start(server *s, const char *ip, int64_t shift_s, unsigned max_batch,
                        uint64_t flush_ns)
{
    return server_start_lifetime(s, ip, shift_s, max_batch, flush_ns, 0);
}

static void server_stop(server *s)
{
    ev_async_send(s->loop, &s->stop);
    pthread_join(s->thread, NULL);
    tb_rt_udp_free(s->udp);
    s->final = *tb_rt_srv_stats_get(s->srv);
    tb_rt_srv_free(s->srv);
    s->srv = NULL;
    ev_loop_destroy(s->loop);
}

static int client_socket_type(const char *addr, int type)
{
    tb_addr a;
    if (tb_addr_parse_numeric(addr, strlen(addr), 0, &a, NULL) != TB_OK)
        return -1;
    int fd = socket(a.ss.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int client_socket(const char *addr)
{
    return client_socket_type(addr, SOCK_DGRAM);
}

/* Sends the query (up to 5 tries, 500 ms each) and verifies the first answer. */
static int ask(const server *s, tb_rt_query *q, tb_rt_reason *why)
{
    uint8_t buf[2048];
    int fd = client_socket(s->addr), rc = TB_ERR_TIMEOUT;
    if (fd < 0)
        return TB_ERR_IO;
    for (int attempt = 0; attempt < 5 && rc == TB_ERR_TIMEOUT; attempt++) {
        q->sent_ns = tb_clock_real(tb_clock_system());
        if (send(fd, q->request, q->request_len, 0) < 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
            rc = tb_rt_verify(q, buf, (size_t)n, tb_clock_real(tb_clock_system()), why);
    }
    close(fd);
    return rc;
}

static int new_query(tb_rt_query *q, const server *s, const uint32_t *v, unsigned n)
{
    uint8_t nonce[64];
    randombytes_buf(nonce, sizeof(nonce));
    return tb_rt_query_init(q, tb_rt_srv_pubkey(s->srv), v, n, nonce, 0);
}

static void test_versions_over_loopback(void)
{
    static server s;
    TB_REQUIRE(server_start(&s, "127.0.0.53", 0, 64, TB_NS_PER_MS) == 0);
    static const uint32_t sets[][2] = {
        {TB_RT_VER_RFC, 0}, {TB_RT_VER_DRAFT12, 0}, {TB_RT_VER_RFC, TB_RT_VER_DRAFT12}};
    static const unsigned nsets[] = {1, 1, 2};
    static const uint32_t expect[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT12, TB_RT_VER_RFC};
    for (int i = 0; i < 3; i++) {
        tb_rt_query q;
        tb_rt_reason why = TB_RT_OK;
        TB_REQUIRE(new_query(&q, &s, sets[i], nsets[i]) == 0);
        TB_CHECK_EQ(ask(&s, &q, &why), 0);
        TB_CHECK_EQ(q.version, expect[i]);
        TB_CHECK(q.response_len <= q.request_len);
        int64_t off = q.offset_ns < 0 ? -q.offset_ns : q.offset_ns;
        TB_CHECK(off < 1000 * (int64_t)TB_NS_PER_MS); /* same clock, MIDP rounded to a second */
    }
    /* A version the server does not speak gets no answer at all. */
    uint32_t d11 = TB_RT_VER_DRAFT11;
    tb_rt_query q;
    TB_REQUIRE(new_query(&q, &s, &d11, 1) == 0);
    int fd = client_socket(s.addr);
    TB_REQUIRE(fd >= 0);
    TB_CHECK(send(fd, q.request, q.request_len, 0) == (ssize_t)q.request_len);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    TB_CHECK_EQ(poll(&p, 1, 300), 0);
    close(fd);
    server_stop(&s);
    TB_CHECK_EQ(s.final.drops[TB_RT_DROP_NO_VERSION], 1);
    TB_CHECK_EQ(s.final.answered, 3);
}

static void test_batched_burst(void)
{
    static server s;
    static tb_rt_query q[100];
    uint8_t buf[2048];
    uint32_t v = TB_RT_VER_RFC;
    /* Long flush interval: batches form by size (8) and the rest by the timer. */
    TB_REQUIRE(server_start(&s, "127.0.0.54", 0, 8, 20 * TB_NS_PER_MS) == 0);
    int fd = client_socket(s.addr);
    TB_REQUIRE(fd >= 0);
    for (int i = 0; i < 100; i++) {
        TB_REQUIRE(new_query(&q[i], &s, &v, 1) == 0);
        TB_CHECK(send(fd, q[i].request, q[i].request_len, 0) > 0);
    }
    int ok = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (ok < 100 && poll(&p, 1, 1000) > 0) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        tb_rt_response r;
        if (n <= 0 || tb_rt_response_parse(buf, (size_t)n, v, &r) < 0) {
            fprintf(stderr, "burst: unparsable response (%zd bytes)\n", n);
            break;
        }
        for (int i = 0; i < 100; i++) {
            tb_rt_reason why;
            if (memcmp(r.nonce, q[i].nonce, 32) == 0 &&
                tb_rt_verify(&q[i], buf, (size_t)n, 0, &why) == 0)
                ok++;
        }
    }
    close(fd);
    server_stop(&s);
    const tb_rt_srv_stats *st = &s.final;
    fprintf(stderr, "burst: %d verified, server answered %llu in %llu batches\n", ok,
            (unsigned long long)st->answered, (unsigned long long)st->batches);
    TB_CHECK_EQ(ok, 100);
    TB_CHECK_EQ(st->answered, 100);
    TB_CHECK(st->batches >= 13 && st->batches < 100);
}

static void test_junk_flood(void)
{
    static server s;
    static uint8_t junk[1500];
    TB_REQUIRE(server_start(&s, "127.0.0.55", 0, 64, TB_NS_PER_MS) == 0);
    int fd = client_socket(s.addr);
    TB_REQUIRE(fd >= 0);
    uint32_t v = TB_RT_VER_RFC;
    int answered = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1000; i++) {
            uint16_t len16;
            randombytes_buf(junk, sizeof(junk));
            randombytes_buf(&len16, sizeof(len16));
            size_t len = len16 % sizeof(junk);
            if (i % 3 == 0 && len >= 12) { /* plausible framing, random message */
                memcpy(junk, "ROUGHTIM", 8);
                tb_put_le32(junk + 8, (uint32_t)(len - 12));
            }
            (void)send(fd, junk, len, MSG_DONTWAIT);
        }
        tb_rt_query q;
        tb_rt_reason why;
        TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
        if (ask(&s, &q, &why) == 0)
            answered++;
    }
    close(fd);
    server_stop(&s);
    TB_CHECK_EQ(answered, 20);
    const tb_rt_srv_stats *st = &s.final;
    uint64_t dropped = 0;
    for (int d = 0; d < TB_RT_DROP_COUNT; d++)
        dropped += st->drops[d];
    fprintf(stderr, "junk flood: received %llu, dropped %llu, answered %llu\n",
            (unsigned long long)st->received, (unsigned long long)dropped,
            (unsigned long long)st->answered);
    TB_CHECK(dropped > 1000);
    TB_CHECK(st->drops[TB_RT_DROP_TOO_SHORT] > 0);
    TB_CHECK_EQ(st->answered, 20);
}

static void test_drain_on_shutdown(void)
{
    static server s;
    uint8_t buf[2048];
    uint32_t v = TB_RT_VER_RFC;
    /* A 60 s flush interval: only the drain at shutdown can answer. */
    TB_REQUIRE(server_start(&s, "127.0.0.56", 0, 64, 60 * TB_NS_PER_SEC) == 0);
    int fd = client_socket(s.addr);
    TB_REQUIRE(fd >= 0);
    tb_rt_query q;
    TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
    TB_REQUIRE(send(fd, q.request, q.request_len, 0) > 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    TB_CHECK_EQ(poll(&p, 1, 200), 0);
    server_stop(&s);
    TB_REQUIRE(poll(&p, 1, 1000) == 1);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    tb_rt_reason why;
    TB_CHECK(n > 0 && tb_rt_verify(&q, buf, (size_t)n, 0, &why) == 0);
    close(fd);
}

static void test_shifted_server_caught(void)
{
    static server s[3];
    static tb_rt_query q[6];
    const tb_rt_query *qs[6];
    uint32_t v = TB_RT_VER_RFC;
    TB_REQUIRE(server_start(&s[0], "127.0.0.57", 0, 64, TB_NS_PER_MS) == 0);
    TB_REQUIRE(server_start(&s[1], "127.0.0.58", 0, 64, TB_NS_PER_MS) == 0);
    TB_REQUIRE(server_start(&s[2], "127.0.0.59", 30, 64, TB_NS_PER_MS) == 0); /* 30 s ahead */
    for (int k = 0; k < 6; k++) {
        uint8_t rnd[32], nonce[32];
        tb_rt_reason why;
        randombytes_buf(rnd, 32);
        if (k == 0)
            memcpy(nonce, rnd, 32);
        else
            tb_rt_chain_nonce(q[k - 1].response, q[k - 1].response_len, rnd, nonce, 32);
        TB_REQUIRE(tb_rt_query_init(&q[k], tb_rt_srv_pubkey(s[k % 3].srv), &v, 1, nonce, 0) == 0);
        memcpy(q[k].rand, rnd, 32);
        q[k].has_rand = k > 0;
        TB_CHECK_EQ(ask(&s[k % 3], &q[k], &why), 0);
        qs[k] = &q[k];
    }
    unsigned bi, bj;
    TB_CHECK_EQ(tb_rt_causality_check(qs, 6, &bi, &bj), TB_ERR_VERIFY);
    TB_CHECK_EQ(bi, 2); /* the liar's first answer is after the honest second round */
    TB_CHECK_EQ(bj, 3);
    /* Honest pairs alone are consistent. */
    const tb_rt_query *honest[4] = {qs[0], qs[1], qs[3], qs[4]};
    TB_CHECK_EQ(tb_rt_causality_check(honest, 4, &bi, &bj), 0);
    for (int i = 0; i < 3; i++)
        server_stop(&s[i]);
}

static void test_rotation_without_restart(void)
{
    static server s;
    uint32_t v = TB_RT_VER_RFC;
    tb_rt_query q;
    tb_rt_reason why;
    tb_rt_response r;
    uint8_t first[32];
    /* A 2 s delegation is replaced after 1 s by the edge's own timer. */
    TB_REQUIRE(server_start_lifetime(&s, "127.0.0.53", 0, 8, TB_NS_PER_MS, 2) == 0);
    TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
    TB_REQUIRE(ask(&s, &q, &why) == 0);
    TB_REQUIRE(tb_rt_response_parse(q.response, q.response_len, v, &r) == 0);
    memcpy(first, r.pubk, 32);
    usleep(1300 * 1000);
    TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
    TB_CHECK_EQ(ask(&s, &q, &why), 0);
    TB_REQUIRE(tb_rt_response_parse(q.response, q.response_len, v, &r) == 0);
    TB_CHECK(memcmp(first, r.pubk, 32) != 0);
    server_stop(&s);
    TB_CHECK(s.final.rotations >= 2);
}

typedef struct captured {
    pthread_mutex_t mu;
    char text[8192];
} captured;

static void capture(void *arg, tb_log_level level, const char *line)
{
    captured *c = arg;
    pthread_mutex_lock(&c->mu);
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof(c->text) - used, "%s\n", line);
    pthread_mutex_unlock(&c->mu);
}

static int captured_has(captured *c, const char *what)
{
    pthread_mutex_lock(&c->mu);
    int found = strstr(c->text, what) != NULL;
    pthread_mutex_unlock(&c->mu);
    return found;
}

/* The edge's timer has the server log its counters (here every 200 ms instead of a minute):
 * what was answered and what was dropped, by reason, since the last line. */
static void test_stats_logged(void)
{
    static server s;
    static captured c = {PTHREAD_MUTEX_INITIALIZER, ""};
    uint32_t v = TB_RT_VER_RFC;
    next_opts.stats_ns = 200 * TB_NS_PER_MS;
    next_opts.sink = capture;
    next_opts.sink_arg = &c;
    TB_REQUIRE(server_start(&s, "127.0.0.57", 0, 64, TB_NS_PER_MS) == 0);
    for (int i = 0; i < 2; i++) {
        tb_rt_query q;
        tb_rt_reason why;
        TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
        TB_CHECK_EQ(ask(&s, &q, &why), 0);
    }
    int fd = client_socket(s.addr);
    TB_REQUIRE(fd >= 0);
    for (int i = 0; i < 3; i++)
        TB_CHECK(send(fd, "ROUGHTIM", 8, 0) == 8);
    close(fd);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(20000);
        ok = captured_has(&c,
                          "received 5, answered 2 in 2 batches, dropped 3, under 1024 bytes 3") &&
             captured_has(&c, "received 0, answered 0 in 0 batches, dropped 0\n");
    }
    if (!ok)
        fprintf(stderr, "log:\n%s", c.text);
    TB_CHECK(ok);
    TB_CHECK(captured_has(&c, "roughtime: last 0 s:"));
    server_stop(&s);
}

/* A server whose clock is unsynchronised says so with RADI 0xffffffff; the client reports that
 * and takes no time from it (it would agree with every clock). */
static void test_unsynced_server(void)
{
    static server s;
    uint32_t v = TB_RT_VER_RFC;
    next_opts.radius_s = TB_RT_RADI_UNSYNCED;
    TB_REQUIRE(server_start(&s, "127.0.0.58", 0, 64, TB_NS_PER_MS) == 0);
    tb_rt_query q;
    tb_rt_reason why = TB_RT_OK;
    TB_REQUIRE(new_query(&q, &s, &v, 1) == 0);
    TB_CHECK_EQ(ask(&s, &q, &why), TB_ERR_VERIFY);
    TB_CHECK_EQ(why, TB_RT_UNSYNCED);
    TB_CHECK_EQ(q.verified, 0);
    TB_CHECK_STR(tb_rt_reason_name(why), "server unsynchronised (RADI 0xffffffff)");
    server_stop(&s);
}

/* Reads whole packets off a TCP stream (the RFC's framing) until n are there or 2 s pass. */
static int read_packets(int fd, uint8_t (*pkt)[2048], size_t *len, int n)
{
    static uint8_t buf[8192];
    size_t have = 0;
    int got = 0;
    while (got < n) {
        size_t pl;
        if (tb_rt_frame_next(buf, have, 2048, &pl) < 0)
            return -1;
        if (pl > 0) {
            memcpy(pkt[got], buf, pl);
            len[got++] = pl;
            memmove(buf, buf + pl, have - pl);
            have -= pl;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            return got;
        ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (r <= 0)
            return got;
        have += (size_t)r;
    }
    return got;
}

/* TCP beside UDP on the same port: three requests on one connection, the first two in one
 * write and the third split over two writes 50 ms apart, are answered in one stream of
 * packets, each verifying; UDP still answers; a connection that sends something other than a
 * ROUGHTIM packet is closed without an answer and counted as bad framing. */
static void test_tcp(void)
{
    static server s;
    static tb_rt_query q[3];
    static uint8_t pkt[3][2048], both[4096];
    size_t len[3];
    uint32_t v = TB_RT_VER_RFC;
    tb_rt_reason why;
    next_opts.tcp = 1;
    TB_REQUIRE(server_start(&s, "127.0.0.53", 0, 64, TB_NS_PER_MS) == 0);
    int fd = client_socket_type(s.addr, SOCK_STREAM);
    TB_REQUIRE(fd >= 0);
    for (int i = 0; i < 3; i++)
        TB_REQUIRE(new_query(&q[i], &s, &v, 1) == 0);
    memcpy(both, q[0].request, q[0].request_len);
    memcpy(both + q[0].request_len, q[1].request, q[1].request_len);
    TB_REQUIRE(send(fd, both, q[0].request_len + q[1].request_len, 0) > 0);
    TB_REQUIRE(send(fd, q[2].request, 7, 0) == 7);
    usleep(50000);
    TB_REQUIRE(send(fd, q[2].request + 7, q[2].request_len - 7, 0) > 0);
    TB_CHECK_EQ(read_packets(fd, pkt, len, 3), 3);
    /* batches may answer in any order: match each response to its query */
    int verified = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            verified +=
                tb_rt_verify(&q[k], pkt[i], len[i], tb_clock_real(tb_clock_system()), &why) == 0;
    TB_CHECK_EQ(verified, 3);
    close(fd);
    tb_rt_query u;
    TB_REQUIRE(new_query(&u, &s, &v, 1) == 0);
    TB_CHECK_EQ(ask(&s, &u, &why), 0);
    /* junk on a connection: closed (EOF), nothing answered */
    fd = client_socket_type(s.addr, SOCK_STREAM);
    TB_REQUIRE(fd >= 0);
    TB_REQUIRE(send(fd, "XOUGHTIM\x04\0\0\0abcd", 16, 0) == 16);
    uint8_t b[64];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    TB_REQUIRE(poll(&p, 1, 2000) == 1);
    TB_CHECK_EQ(recv(fd, b, sizeof(b), 0), 0);
    close(fd);
    server_stop(&s);
    TB_CHECK(s.final.drops[TB_RT_DROP_FRAMING] >= 1);
    TB_CHECK(s.final.answered >= 4);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_versions_over_loopback);
    TB_RUN(test_batched_burst);
    TB_RUN(test_junk_flood);
    TB_RUN(test_drain_on_shutdown);
    TB_RUN(test_shifted_server_caught);
    TB_RUN(test_rotation_without_restart);
    TB_RUN(test_stats_logged);
    TB_RUN(test_tcp);
    TB_RUN(test_unsynced_server);
    return TB_DONE();
}
