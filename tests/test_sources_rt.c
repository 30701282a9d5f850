/* The Roughtime source driver against the project's own Roughtime server (roughtime/udp.h, in
 * this process on the same loop, its clock shifted at will), a relay that tampers with the
 * exchange, a silent socket, and `tbroughtime serve` as a child under libfaketime; loopback
 * 127.0.0.63-69 (and ::1, and localhost for the resolver), ephemeral ports. */
#include <arpa/inet.h>
#include <ev.h>
#include <libconfig.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crosscheck/crosscheck.h"
#include "measure/measurement.h"
#include "roughtime/keyfile.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"
#include "roughtime/verify.h"
#include "resolve/resolver.h"
#include "sources/rt_driver.h"
#include "sources/sources.h"
#include "tb_child.h"
#include "tests/support/loop.h"
#include "tests/support/udp.h"
#include "tb_test.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* --- the server: the project's own, with a clock shifted by `shift` whose readings we keep --- */

typedef struct shifted_clock {
    tb_clock clock;
    int64_t shift;
    int64_t last_real; /* the server's last reading: the MIDP it signed came from it */
} shifted_clock;

static uint64_t sc_mono(void *arg)
{
    (void)arg;
    return tb_clock_mono(tb_clock_system());
}

static int64_t sc_real(void *arg)
{
    shifted_clock *c = arg;
    c->last_real = tb_clock_real(tb_clock_system()) + c->shift;
    return c->last_real;
}

typedef struct server {
    shifted_clock clk;
    tb_rt_srv *srv;
    tb_rt_udp *udp;
    uint8_t pk[32];
    char addr[80];
} server;

static uint32_t next_radius; /* RADI of the next server started (0: 3 s) */
static int next_tcp;         /* the next server started also serves TCP */

static int server_start(struct ev_loop *loop, const tb_log *log, server *s, const char *ip,
                        int64_t shift)
{
    tb_rt_srv_config scfg;
    tb_rt_udp_config ucfg;
    memset(s, 0, sizeof(*s));
    s->clk = (shifted_clock){.clock = {sc_mono, sc_real, &s->clk}, .shift = shift};
    tb_rt_srv_config_default(&scfg);
    tb_rt_udp_config_default(&ucfg);
    crypto_sign_keypair(s->pk, scfg.longterm_sk);
    ucfg.radius_from_kernel = 0;
    ucfg.radius_s = next_radius ? next_radius : 3;
    next_radius = 0;
    ucfg.tcp = next_tcp;
    next_tcp = 0;
    int v6 = strchr(ip, ':') != NULL;
    snprintf(ucfg.listen, sizeof(ucfg.listen), v6 ? "[%s]:0" : "%s:0", ip);
    if (tb_rt_srv_new(&scfg, log, tb_clock_real(&s->clk.clock), &s->srv) < 0 ||
        tb_rt_udp_new(loop, log, &s->clk.clock, s->srv, &ucfg, &s->udp) < 0)
        return -1;
    snprintf(s->addr, sizeof(s->addr), v6 ? "[%s]:%u" : "%s:%u", ip, tb_rt_udp_port(s->udp));
    return 0;
}

static void server_stop(server *s)
{
    tb_rt_udp_free(s->udp);
    tb_rt_srv_free(s->srv);
}

/* --- a relay between the driver and the server that tampers with the exchange --- */

typedef enum relay_mode {
    REKEY,   /* rewrites SRV to the server's key: a server that ignores SRV answers with its own */
    FLIPSIG, /* flips a bit of the response's top-level SIG */
    REPLAY,  /* answers every request with one valid response to someone else's request */
    SILENT,  /* tb_test_never answers */
} relay_mode;

typedef struct relay {
    relay_mode mode;
    int fd, up; /* facing the driver; connected to the server */
    ev_io io, up_io;
    tb_addr client;
    uint8_t server_pk[32];
    uint8_t prev[TB_RT_RESPONSE_BUF];
    size_t prev_len;
    int n_requests;
    uint64_t req_mono[32];
    char addr[64];
} relay;

static void relay_down(struct ev_loop *loop, ev_io *w, int revents)
{
    relay *r = w->data;
    uint8_t buf[TB_RT_RESPONSE_BUF];
    tb_addr from = {.len = sizeof(from.ss)};
    ssize_t n = recvfrom(r->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from.ss, &from.len);
    if (n <= 0)
        return;
    if (r->n_requests < 32)
        r->req_mono[r->n_requests] = tb_clock_mono(tb_clock_system());
    r->n_requests++;
    r->client = from;
    tb_rt_request req;
    tb_rt_req_error why;
    if (r->mode == SILENT || tb_rt_request_parse(buf, (size_t)n, &req, &why) < 0)
        return;
    if (r->mode == REPLAY) {
        if (r->prev_len)
            (void)sendto(r->fd, r->prev, r->prev_len, 0, (struct sockaddr *)&from.ss, from.len);
        return;
    }
    if (r->mode == REKEY && req.srv)
        tb_rt_srv_id(r->server_pk, buf + (req.srv - buf));
    (void)send(r->up, buf, (size_t)n, 0);
}

static void relay_up(struct ev_loop *loop, ev_io *w, int revents)
{
    relay *r = w->data;
    uint8_t buf[TB_RT_RESPONSE_BUF];
    ssize_t n = recv(r->up, buf, sizeof(buf), 0);
    if (n <= 0)
        return;
    const uint8_t *out = buf;
    size_t len = (size_t)n;
    if (r->mode == FLIPSIG) {
        tb_rt_response resp;
        if (tb_rt_response_parse(buf, len, TB_RT_VER_RFC, &resp) == 0)
            buf[resp.sig - buf] ^= 0x10;
    } else if (r->mode == REPLAY) {
        memcpy(r->prev, buf, len); /* the answer to the relay's own request */
        r->prev_len = len;
        return;
    }
    if (len)
        (void)sendto(r->fd, out, len, 0, (struct sockaddr *)&r->client.ss, r->client.len);
}

static int relay_start(struct ev_loop *loop, relay *r, const char *ip, const server *s,
                       relay_mode mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->up = -1;
    tb_addr up;
    if (s && tb_addr_parse_numeric(s->addr, strlen(s->addr), 0, &up, NULL) != TB_OK)
        return -1;
    r->fd = tb_test_udp_bind(ip, r->addr, sizeof(r->addr));
    if (r->fd < 0)
        return -1;
    ev_io_init(&r->io, relay_down, r->fd, EV_READ);
    r->io.data = r;
    ev_io_start(loop, &r->io);
    if (!s)
        return 0;
    memcpy(r->server_pk, s->pk, 32);
    r->up = socket(up.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (r->up < 0 || connect(r->up, (struct sockaddr *)&up.ss, up.len) != 0)
        return -1;
    ev_io_init(&r->up_io, relay_up, r->up, EV_READ);
    r->up_io.data = r;
    ev_io_start(loop, &r->up_io);
    if (mode == REPLAY) {
        static tb_rt_query q;
        uint8_t nonce[32];
        randombytes_buf(nonce, sizeof(nonce));
        if (tb_rt_query_init(&q, s->pk, tb_rt_driver_versions, TB_RT_DRIVER_NVERSIONS, nonce, 0) <
                0 ||
            send(r->up, q.request, q.request_len, 0) < 0)
            return -1;
    }
    return 0;
}

static void relay_stop(struct ev_loop *loop, relay *r)
{
    ev_io_stop(loop, &r->io);
    close(r->fd);
    if (r->up >= 0) {
        ev_io_stop(loop, &r->up_io);
        close(r->up);
    }
}

/* --- harness --- */

#define MAX_MEAS 8

typedef struct meas {
    tb_source_meas m;
    tb_source_id id;
    uint8_t req[TB_RT_REQUEST_BUF], resp[TB_RT_RESPONSE_BUF];
    int64_t server_real; /* the server clock's reading behind this response's MIDP */
} meas;

typedef struct harness {
    struct ev_loop *loop;
    tb_log log;
    tb_source_env env;
    const shifted_clock *server_clock;
    int n_meas;
    meas ms[MAX_MEAS];
} harness;

static void on_measurement(void *arg, const tb_source_meas *m)
{
    harness *h = arg;
    if (h->n_meas < MAX_MEAS && m->request_len <= TB_RT_REQUEST_BUF &&
        m->response_len <= TB_RT_RESPONSE_BUF) {
        meas *x = &h->ms[h->n_meas];
        x->m = *m;
        x->id = *m->source;
        memcpy(x->req, m->request, m->request_len);
        memcpy(x->resp, m->response, m->response_len);
        x->server_real = h->server_clock ? h->server_clock->last_real : 0;
    }
    h->n_meas++;
}

static void harness_init(harness *h)
{
    memset(h, 0, sizeof(*h));
    h->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&h->log, "test", TB_LOG_WARN);
    h->env = (tb_source_env){.loop = h->loop,
                             .log = &h->log,
                             .clock = tb_clock_system(),
                             .on_measurement = on_measurement,
                             .measurement_arg = h};
}

static int three_meas(void *arg)
{
    return ((harness *)arg)->n_meas >= 3;
}

static int six_meas(void *arg)
{
    return ((harness *)arg)->n_meas >= 6;
}

static int is_unreachable(void *arg)
{
    return tb_source_state_of(arg) == TB_SOURCE_UNREACHABLE;
}

static tb_source *make_source(harness *h, const char *addr, const uint8_t pk[32], int minpoll,
                              int maxpoll, unsigned unreach)
{
    tb_source_config cfg;
    tb_source *src = NULL;
    tb_source_config_default(&cfg, TB_SOURCE_ROUGHTIME);
    snprintf(cfg.address, sizeof(cfg.address), "%s", addr);
    cfg.has_public_key = true;
    memcpy(cfg.public_key, pk, 32);
    cfg.minpoll = minpoll;
    cfg.maxpoll = maxpoll;
    cfg.unreach_after = unreach;
    if (tb_source_create(&h->env, tb_rt_driver(), &cfg, NULL, &src) < 0)
        return NULL;
    if (tb_source_start(src) < 0) {
        tb_source_destroy(src);
        return NULL;
    }
    return src;
}

/* Every number of a delivered measurement, checked against the evidence it carries and against
 * the server clock's reading (which the test knows): MIDP is whole seconds, so offset = shift +
 * (MIDP − reading) + the true error, and the true error is within delay/2 on one host. */
static int64_t check_meas(const meas *x, const uint8_t pk[32], int64_t shift)
{
    const tb_source_meas *m = &x->m;
    TB_CHECK_EQ(x->id.kind, TB_SOURCE_ROUGHTIME);
    TB_CHECK(x->id.has_public_key);
    TB_CHECK_MEM(x->id.public_key, pk, 32);
    TB_CHECK_EQ(m->stratum, -1);
    TB_CHECK(m->delay_ns >= 0 && m->delay_ns < 200 * MS);
    TB_CHECK(m->real_ns - m->sent_real_ns >= 0 && m->real_ns - m->sent_real_ns < 200 * MS);
    TB_CHECK(m->request_len >= 1024 && m->response_len <= m->request_len);

    /* The evidence verifies on its own, as a receiver of the gossip would check it. */
    static tb_rt_query q;
    tb_rt_reason why;
    if (tb_rt_query_adopt(&q, pk, x->req, m->request_len, m->sent_real_ns) < 0 ||
        tb_rt_verify(&q, x->resp, m->response_len, m->real_ns, &why) < 0) {
        TB_CHECK(!"the evidence verifies");
        return INT64_MAX;
    }
    TB_CHECK_EQ(q.version, TB_RT_VER_RFC);
    TB_CHECK_EQ(q.radi_us, 3000000);
    /* offset = MIDP − (T1 + T4)/2; error = RADI + delay/2 */
    TB_CHECK_EQ(m->offset_ns, q.midp_us * 1000 - (m->sent_real_ns + m->delay_ns / 2));
    TB_CHECK_EQ(m->error_ns, 3 * SEC + (m->delay_ns + 1) / 2);

    int64_t rounding = q.midp_us * 1000 - x->server_real; /* the protocol's own, |.| <= 0.5 s */
    int64_t true_err = m->offset_ns - rounding - shift;
    TB_CHECK(rounding >= -SEC / 2 && rounding <= SEC / 2);
    TB_CHECK(true_err >= -(m->delay_ns / 2 + 1000) && true_err <= m->delay_ns / 2 + 1000);
    TB_CHECK(m->offset_ns - m->error_ns <= shift && shift <= m->offset_ns + m->error_ns);
    fprintf(stderr,
            "  offset %+.6f s = shift %+.3f s + MIDP rounding %+.6f s + error %+.3f ms; delay %.3f "
            "ms, bound %.6f s\n",
            (double)m->offset_ns / 1e9, (double)shift / 1e9, (double)rounding / 1e9,
            (double)true_err / 1e6, (double)m->delay_ns / 1e6, (double)m->error_ns / 1e9);
    return true_err < 0 ? -true_err : true_err;
}

/* What the node does with a delivered measurement: the signed record of measure/, whose
 * evidence a receiver re-verifies and the cross-check turns into a malfeasance exchange. */
static void check_as_measurement(const meas *x, const uint8_t pk[32])
{
    const tb_source_meas *m = &x->m;
    tb_measurement rec = {.kind = TB_MEASURE_ROUGHTIME,
                          .seq = 1,
                          .real_ns = m->real_ns,
                          .offset_ns = m->offset_ns,
                          .delay_ns = m->delay_ns,
                          .bound_ns = m->error_ns,
                          .has_rt_pubkey = x->id.has_public_key,
                          .ev_request = {x->req, m->request_len},
                          .ev_response = {x->resp, m->response_len}};
    snprintf(rec.origin, sizeof(rec.origin), "node-a");
    snprintf(rec.source_name, sizeof(rec.source_name), "%s", x->id.name);
    snprintf(rec.source_addr, sizeof(rec.source_addr), "%s", x->id.address);
    memcpy(rec.rt_pubkey, x->id.public_key, 32);
    static uint8_t body[TB_MEASURE_BODY_MAX];
    size_t len = 0;
    tb_measurement back;
    TB_REQUIRE(tb_measure_encode(&rec, body, sizeof(body), &len) == 0);
    TB_REQUIRE(tb_measure_parse(body, len, &back, NULL) == 0);
    TB_CHECK_EQ(back.offset_ns, m->offset_ns);
    TB_CHECK_EQ(back.bound_ns, m->error_ns);
    tb_xc_rt_exchange ex;
    TB_REQUIRE(tb_xc_exchange_from_measurement(&back, &ex) == 0);
    TB_CHECK_MEM(ex.pubkey, pk, 32);
    TB_CHECK(ex.rand == NULL); /* random nonces: nothing chained */
    static tb_rt_query q;
    tb_rt_reason why;
    TB_CHECK(tb_rt_query_adopt(&q, ex.pubkey, ex.request.data, ex.request.len, 0) == 0 &&
             tb_rt_verify(&q, ex.response.data, ex.response.len, 0, &why) == 0);
}

static void measure_against(const char *ip, int64_t shift)
{
    harness h;
    server s;
    harness_init(&h);
    TB_REQUIRE(server_start(h.loop, &h.log, &s, ip, shift) == 0);
    h.server_clock = &s.clk;
    tb_source *src = make_source(&h, s.addr, s.pk, -3, -3, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, three_meas, &h, 5.0));
    TB_CHECK_EQ(tb_source_state_of(src), TB_SOURCE_REACHABLE);
    /* The best of three is within a few ms, however loaded the machine. */
    int64_t best = INT64_MAX;
    for (int i = 0; i < h.n_meas && i < 3; i++) {
        int64_t e = check_meas(&h.ms[i], s.pk, shift);
        best = e < best ? e : best;
    }
    TB_CHECK(best < 5 * MS);
    if (h.n_meas >= 1)
        check_as_measurement(&h.ms[0], s.pk);
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK_EQ(st.version, TB_RT_VER_RFC);
    TB_CHECK(st.accepted >= 3 && st.sent >= st.accepted);
    TB_CHECK(st.kernel_ts > 0); /* loopback gives SO_TIMESTAMPNS */
    char line[512];
    tb_source_describe(src, line, sizeof(line));
    TB_CHECK(strstr(line, "roughtime") && strstr(line, "reachable") && strstr(line, "RFC"));
    tb_source_destroy(src);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

static void test_honest_server(void)
{
    measure_against("127.0.0.63", 0);
}

/* Four valid polls in a row double the interval, up to maxpoll. */
static void test_poll_adapts(void)
{
    harness h;
    server s;
    harness_init(&h);
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.63", 0) == 0);
    tb_source *src = make_source(&h, s.addr, s.pk, -3, -2, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, six_meas, &h, 5.0));
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK_EQ(st.poll, -2);
    double early = (double)(h.ms[2].m.mono_ns - h.ms[1].m.mono_ns) / 1e6;
    double late = (double)(h.ms[5].m.mono_ns - h.ms[4].m.mono_ns) / 1e6;
    TB_CHECK(early > 110 && early < 175); /* 2^-3 s */
    TB_CHECK(late > 235 && late < 310);   /* 2^-2 s */
    tb_source_destroy(src);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

static void test_shifted_server(void)
{
    measure_against("127.0.0.63", 7 * SEC + 250 * MS);
    measure_against("127.0.0.63", -(3 * SEC + 600 * MS));
}

/* Over TCP (address tcp://host:port): the project's server with TCP on, measured by a
 * connection per poll, each measurement checked as over UDP (evidence, offset, bound). */
static void test_tcp_server(void)
{
    harness h;
    server s;
    harness_init(&h);
    next_tcp = 1;
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.66", 0) == 0);
    h.server_clock = &s.clk;
    char addr[100];
    snprintf(addr, sizeof(addr), "tcp://%s", s.addr);
    tb_source *src = make_source(&h, addr, s.pk, -3, -3, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, three_meas, &h, 5.0));
    TB_CHECK_EQ(tb_source_state_of(src), TB_SOURCE_REACHABLE);
    int64_t best = INT64_MAX;
    for (int i = 0; i < h.n_meas && i < 3; i++) {
        int64_t e = check_meas(&h.ms[i], s.pk, 0);
        best = e < best ? e : best;
        TB_CHECK_STR(h.ms[i].id.name, addr);
        printf("tcp: offset %+lld ns, delay %lld ns, bound %lld ns\n",
               (long long)h.ms[i].m.offset_ns, (long long)h.ms[i].m.delay_ns,
               (long long)h.ms[i].m.error_ns);
    }
    TB_CHECK(best < 5 * MS);
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK(st.tcp);
    TB_CHECK(st.accepted >= 3 && st.tcp_connects >= st.accepted);
    TB_CHECK_EQ(st.kernel_ts + st.clock_ts, 0); /* nothing came by UDP */
    char line[512];
    tb_source_describe(src, line, sizeof(line));
    TB_CHECK(strstr(line, "reachable") && strstr(line, "TCP: ") && strstr(line, "RFC"));
    printf("%s\n", line);
    tb_source_destroy(src);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

/* A TCP listener that answers every connection with `reply` (len bytes) and leaves it open. */
typedef struct tcp_liar {
    int fd;
    ev_io io;
    const uint8_t *reply;
    size_t len;
    int conns[16];
    int n;
    char addr[64];
} tcp_liar;

static void liar_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    tcp_liar *l = w->data;
    int c = accept(l->fd, NULL, NULL);
    if (c < 0)
        return;
    if (l->n >= 16) {
        close(c);
        return;
    }
    l->conns[l->n++] = c;
    if (l->len)
        (void)send(c, l->reply, l->len, MSG_NOSIGNAL);
}

static int liar_start(struct ev_loop *loop, tcp_liar *l, const char *ip, const uint8_t *reply,
                      size_t len)
{
    memset(l, 0, sizeof(*l));
    l->reply = reply;
    l->len = len;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(l->fd, 16) != 0 || getsockname(l->fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    snprintf(l->addr, sizeof(l->addr), "tcp://%s:%u", ip, ntohs(sa.sin_port));
    ev_io_init(&l->io, liar_accept, l->fd, EV_READ);
    l->io.data = l;
    ev_io_start(loop, &l->io);
    return 0;
}

static void liar_stop(struct ev_loop *loop, tcp_liar *l)
{
    ev_io_stop(loop, &l->io);
    close(l->fd);
    for (int i = 0; i < l->n; i++)
        close(l->conns[i]);
}

/* TCP failures end the source unreachable with the reason, never with a measurement: a stream
 * that announces a packet longer than the reader's buffer (closed before anything is awaited or
 * allocated), one that is not Roughtime, a server that never answers (the attempt's timeout
 * closes it), and a port with nothing listening. */
static void tcp_fails(const uint8_t *reply, size_t len, bool listening, const char *want)
{
    harness h;
    tcp_liar l;
    uint8_t pk[32], sk[64];
    harness_init(&h);
    crypto_sign_keypair(pk, sk);
    TB_REQUIRE(liar_start(h.loop, &l, "127.0.0.67", reply, len) == 0);
    if (!listening) {
        ev_io_stop(h.loop, &l.io);
        close(l.fd); /* the port is free again: connections are refused */
        l.fd = -1;
    }
    tb_source *src = make_source(&h, l.addr, pk, -2, -2, 2);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, is_unreachable, src, 5.0));
    TB_CHECK_EQ(h.n_meas, 0);
    fprintf(stderr, "  %s\n", tb_source_reason(src));
    TB_CHECK(strstr(tb_source_reason(src), want) != NULL);
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK(st.tcp_failed >= 2 && st.tcp_connects >= st.tcp_failed);
    tb_source_destroy(src);
    if (listening)
        liar_stop(h.loop, &l);
    else
        for (int i = 0; i < l.n; i++)
            close(l.conns[i]);
    ev_loop_destroy(h.loop);
}

static void test_tcp_failures(void)
{
    uint8_t huge[12] = {'R', 'O', 'U', 'G', 'H', 'T', 'I', 'M', 0xff, 0xff, 0xff, 0x7f};
    tcp_fails(huge, sizeof(huge), true, "announced a packet longer than we read");
    static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    tcp_fails(http, sizeof(http) - 1, true, "not Roughtime packets");
    tcp_fails(NULL, 0, true, "no answer in time");
    tcp_fails(NULL, 0, false, "Connection refused");
}

static void test_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) {
        fprintf(stderr, "no IPv6: skipped\n");
        return;
    }
    close(fd);
    measure_against("::1", 2 * SEC);
}

/* The server only answers for the key the request's SRV names: a wrong key gets silence. */
static void test_wrong_key_silence(void)
{
    harness h;
    server s;
    uint8_t other[32], sk[64];
    harness_init(&h);
    crypto_sign_keypair(other, sk);
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.63", 0) == 0);
    tb_source *src = make_source(&h, s.addr, other, -3, -3, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, is_unreachable, src, 5.0));
    TB_CHECK_EQ(h.n_meas, 0);
    TB_CHECK(tb_rt_srv_stats_get(s.srv)->drops[TB_RT_DROP_UNKNOWN_SRV] >= 3);
    TB_CHECK_STR(tb_source_reason(src), "no response to 3 polls");
    tb_source_destroy(src);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

/* A server that answers RADI 0xffffffff (clock unsynchronised): its answers are authentic but
 * carry no time. Each is delivered as an unsynchronised measurement (offset and bound 0, the
 * packets as evidence that verifies as authentic and unsynchronised, chained like any other),
 * each poll stops after the answer (no retries: the backoff resets), and the source is
 * reachable with a reason that says what the server said. */
static void test_unsynced_server(void)
{
    harness h;
    server s;
    harness_init(&h);
    next_radius = TB_RT_RADI_UNSYNCED;
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.63", 0) == 0);
    tb_source *src = make_source(&h, s.addr, s.pk, -3, -3, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, three_meas, &h, 5.0));
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK(st.unsynced >= 3);
    TB_CHECK_EQ(st.accepted, 0);
    TB_CHECK(st.sent <= st.unsynced + 1); /* one request per poll (the last may be in flight) */
    TB_CHECK_EQ(st.failures, 0);
    TB_CHECK_EQ(st.last_reject, TB_RT_UNSYNCED);
    TB_CHECK_EQ(tb_source_state_of(src), TB_SOURCE_REACHABLE);
    TB_CHECK_STR(tb_source_reason(src), "answers, but says it is unsynchronised (RADI 0xffffffff)");
    for (int i = 0; i < 3 && i < MAX_MEAS; i++) {
        const tb_source_meas *m = &h.ms[i].m;
        TB_CHECK_EQ(m->offset_ns, 0);
        TB_CHECK_EQ(m->error_ns, 0);
        TB_CHECK(m->delay_ns >= 0 && m->delay_ns < 200 * MS);
        TB_CHECK_EQ(m->rand != NULL, i > 0); /* chained after the first */
        static tb_rt_query q;
        tb_rt_reason why = TB_RT_OK;
        TB_CHECK(tb_rt_query_adopt(&q, s.pk, h.ms[i].req, m->request_len, m->sent_real_ns) == 0);
        TB_CHECK_EQ(tb_rt_verify(&q, h.ms[i].resp, m->response_len, m->real_ns, &why),
                    TB_ERR_VERIFY);
        TB_CHECK_EQ(why, TB_RT_UNSYNCED);
        TB_CHECK_EQ(q.radi_us, (uint64_t)TB_RT_RADI_UNSYNCED * 1000000);
    }
    tb_source_destroy(src);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

static int primed(void *arg)
{
    return ((relay *)arg)->prev_len > 0;
}

static void tampered(relay_mode mode, const uint8_t *key, tb_rt_reason want)
{
    harness h;
    server s;
    relay r;
    harness_init(&h);
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.63", 0) == 0);
    TB_REQUIRE(relay_start(h.loop, &r, "127.0.0.64", &s, mode) == 0);
    if (mode == REPLAY)
        TB_REQUIRE(tb_test_run_until(h.loop, primed, &r, 2.0));
    tb_source *src = make_source(&h, r.addr, key ? key : s.pk, -3, -3, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, is_unreachable, src, 5.0));
    TB_CHECK_EQ(h.n_meas, 0);
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK(st.rejects[want] >= 2);
    TB_CHECK_EQ(st.accepted, 0);
    TB_CHECK_EQ(st.last_reject, want);
    char expect[200];
    snprintf(expect, sizeof(expect), "no valid response to 3 polls (last response: %s)",
             tb_rt_reason_name(want));
    TB_CHECK_STR(tb_source_reason(src), expect);
    /* The replaying relay asked once itself; the others passed every request on. */
    TB_CHECK(tb_rt_srv_stats_get(s.srv)->answered >= (mode == REPLAY ? 1u : 3u));
    tb_source_destroy(src);
    relay_stop(h.loop, &r);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

/* A server that ignores SRV and answers with its own key: the delegation does not verify. */
static void test_wrong_key_rejected(void)
{
    uint8_t other[32], sk[64];
    crypto_sign_keypair(other, sk);
    tampered(REKEY, other, TB_RT_BAD_DELE_SIG);
}

static void test_bad_signature(void)
{
    tampered(FLIPSIG, NULL, TB_RT_BAD_SIG);
}

static void test_replayed_response(void)
{
    tampered(REPLAY, NULL, TB_RT_BAD_NONCE);
}

/* Silence: retries back off by 1.5 within and across polls, and the source becomes
 * unreachable after the configured number of polls, not before. */
static void test_silent_server(void)
{
    harness h;
    relay r;
    uint8_t pk[32], sk[64];
    harness_init(&h);
    crypto_sign_keypair(pk, sk);
    TB_REQUIRE(relay_start(h.loop, &r, "127.0.0.65", NULL, SILENT) == 0);
    uint64_t t0 = tb_clock_mono(tb_clock_system());
    /* polls of 2^-1 s; retries from 2^-1/4 = 125 ms, at most 2^1 s apart */
    tb_source *src = make_source(&h, r.addr, pk, -1, 1, 3);
    TB_REQUIRE(src);
    TB_CHECK(tb_test_run_until(h.loop, is_unreachable, src, 5.0));
    uint64_t took = tb_clock_mono(tb_clock_system()) - t0;
    TB_CHECK(took >= 3 * 500 * (uint64_t)MS - 20 * (uint64_t)MS); /* three whole polls */
    TB_CHECK(took < 3 * 500 * (uint64_t)MS + 300 * (uint64_t)MS);
    TB_CHECK_STR(tb_source_reason(src), "no response to 3 polls");
    TB_CHECK_EQ(h.n_meas, 0);
    /* Requests at 0, 125, 312, 594, 1016 ms, ...: each gap 1.5 times the last. */
    TB_REQUIRE(r.n_requests >= 5);
    double g0 = (double)(r.req_mono[1] - r.req_mono[0]) / 1e6;
    TB_CHECK(g0 > 115 && g0 < 160);
    for (int i = 1; i + 1 < r.n_requests && i < 4; i++) {
        double a = (double)(r.req_mono[i] - r.req_mono[i - 1]);
        double b = (double)(r.req_mono[i + 1] - r.req_mono[i]);
        TB_CHECK(b / a > 1.25 && b / a < 1.75); /* 1.5, give or take timer latency */
    }
    tb_rt_driver_stats st;
    TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
    TB_CHECK_EQ(st.sent, (uint64_t)r.n_requests);
    TB_CHECK_EQ(st.received, 0);
    tb_source_destroy(src);
    relay_stop(h.loop, &r);
    ev_loop_destroy(h.loop);
}

static int is_reachable(void *arg)
{
    return tb_source_state_of(arg) == TB_SOURCE_REACHABLE;
}

/* A name, through the real resolver: "localhost" (127.0.0.1 here; an ephemeral port keeps it
 * apart from everything else). When the server goes quiet the source becomes unreachable and
 * resolves the name again; when it is back the source recovers. */
/* The real resolver, counting the lookups it is asked for. */
typedef struct counting_resolver {
    tb_resolver pub;
    tb_resolver *real;
    int calls;
} counting_resolver;

static int counting_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                            void *arg, uint64_t *ticket)
{
    counting_resolver *c = (counting_resolver *)pub;
    c->calls++;
    return c->real->resolve(c->real, host, port, cb, arg, ticket);
}

static void counting_cancel(tb_resolver *pub, uint64_t ticket)
{
    counting_resolver *c = (counting_resolver *)pub;
    c->real->cancel(c->real, ticket);
}

static void test_name_and_recovery(void)
{
    counting_resolver res = {.pub = {counting_resolve, counting_cancel}};
    harness h;
    server s;
    harness_init(&h);
    TB_REQUIRE(tb_resolver_thread_create(h.loop, &res.real) == 0);
    h.env.resolver = &res.pub;
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.1", 0) == 0);
    uint16_t port = tb_rt_udp_port(s.udp);
    char name[64], numeric[64];
    snprintf(name, sizeof(name), "localhost:%u", port);
    snprintf(numeric, sizeof(numeric), "127.0.0.1:%u", port);
    tb_source *src = make_source(&h, name, s.pk, -3, -2, 3);
    TB_REQUIRE(src);
    if (!tb_test_run_until(h.loop, is_reachable, src, 5.0)) {
        /* localhost may be ::1 first on another machine: not this test's subject */
        fprintf(stderr, "localhost did not lead to 127.0.0.1 (%s): skipped\n",
                tb_source_identity(src)->address);
    } else {
        TB_CHECK_STR(tb_source_identity(src)->name, name);
        TB_CHECK_STR(tb_source_identity(src)->address, numeric);
        TB_CHECK_EQ(res.calls, 1);
        tb_rt_udp_free(s.udp); /* quiet */
        s.udp = NULL;
        TB_CHECK(tb_test_run_until(h.loop, is_unreachable, src, 5.0));
        TB_CHECK_STR(tb_source_reason(src), "no response to 3 polls");
        TB_CHECK_EQ(res.calls, 2); /* perhaps the name points elsewhere now */
        tb_rt_udp_config ucfg;
        tb_rt_udp_config_default(&ucfg);
        ucfg.radius_from_kernel = 0;
        snprintf(ucfg.listen, sizeof(ucfg.listen), "%s", numeric);
        TB_REQUIRE(tb_rt_udp_new(h.loop, &h.log, &s.clk.clock, s.srv, &ucfg, &s.udp) == 0);
        int before = h.n_meas;
        TB_CHECK(tb_test_run_until(h.loop, is_reachable, src, 5.0));
        TB_CHECK(h.n_meas > before);
        tb_rt_driver_stats st;
        TB_REQUIRE(tb_rt_driver_stats_get(src, &st) == 0);
        TB_CHECK_EQ(st.failures, 0); /* a signed response resets the backoff */
        TB_CHECK_EQ(st.missed, 0);
    }
    tb_source_destroy(src);
    server_stop(&s);
    tb_resolver_thread_destroy(res.real);
    ev_loop_destroy(h.loop);
}

/* --- tbroughtime serve as a child process, its clock shifted by libfaketime --- */

typedef struct child {
    pid_t pid;
    char dir[64];
    char addr[64];
    uint8_t pk[32];
} child;

static void child_stop(child *c)
{
    tb_child_stop(c->pid);
    c->pid = 0;
    if (c->dir[0]) {
        char p[128];
        snprintf(p, sizeof(p), "%s/rt.key", c->dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/serve.log", c->dir);
        unlink(p);
        rmdir(c->dir);
        c->dir[0] = 0;
    }
}

/* The port the server printed ("tbroughtime: public key ..., port N"), or 0. */
static unsigned served_port(const char *log)
{
    char line[512];
    unsigned port = 0;
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, ", port ");
        if (p && strstr(line, "public key"))
            port = (unsigned)strtoul(p + 7, NULL, 10);
    }
    if (f)
        fclose(f);
    return port;
}

static int child_spawn(child *c, const char *ip, const char *shift)
{
    char key[128], log[128], listen[64], err[256];
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/tb_rtsrc_XXXXXX");
    if (!mkdtemp(c->dir)) {
        c->dir[0] = 0;
        return -1;
    }
    snprintf(key, sizeof(key), "%s/rt.key", c->dir);
    snprintf(log, sizeof(log), "%s/serve.log", c->dir);
    snprintf(listen, sizeof(listen), "%s:0", ip);
    if (tb_rt_key_generate(key, c->pk, err, sizeof(err)) < 0)
        return -1;
    char *argv[] = {TBROUGHTIME_PATH, "serve", "--key", key, "--listen", listen, NULL};
    c->pid = tb_child_spawn(log, shift, argv);
    if (c->pid < 0)
        return -1;
    for (int i = 0; i < 500; i++) {
        unsigned port = served_port(log);
        if (port) {
            snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, port);
            return 0;
        }
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
            c->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

/* A separate process, the real tbroughtime, its clock 5 s ahead. */
static void test_tbroughtime_child_faketime(void)
{
    harness h;
    child c;
    harness_init(&h);
    int up = child_spawn(&c, "127.0.0.67", "+5s") == 0;
    TB_CHECK(up);
    tb_source *src = up ? make_source(&h, c.addr, c.pk, -3, -3, 3) : NULL;
    TB_CHECK(!up || src);
    if (src) {
        TB_CHECK(tb_test_run_until(h.loop, three_meas, &h, 10.0));
        for (int i = 0; i < h.n_meas && i < 3; i++) {
            const tb_source_meas *m = &h.ms[i].m;
            static tb_rt_query q;
            tb_rt_reason why;
            if (tb_rt_query_adopt(&q, c.pk, h.ms[i].req, m->request_len, 0) < 0 ||
                tb_rt_verify(&q, h.ms[i].resp, m->response_len, 0, &why) < 0) {
                TB_CHECK(!"the evidence verifies");
                continue;
            }
            /* MIDP is whole seconds: the offset is 5 s within half a second and delay/2. */
            int64_t d = m->offset_ns - 5 * SEC;
            TB_CHECK(d >= -(SEC / 2 + m->delay_ns / 2 + MS) && d <= SEC / 2 + m->delay_ns / 2 + MS);
            TB_CHECK_EQ(m->error_ns, (int64_t)q.radi_us * 1000 + (m->delay_ns + 1) / 2);
            TB_CHECK(m->offset_ns - m->error_ns <= 5 * SEC &&
                     5 * SEC <= m->offset_ns + m->error_ns);
            fprintf(stderr, "  tbroughtime under faketime +5s: offset %+.6f s, bound %.6f s\n",
                    (double)m->offset_ns / 1e9, (double)m->error_ns / 1e9);
        }
        TB_CHECK_EQ(tb_source_state_of(src), TB_SOURCE_REACHABLE);
        tb_source_destroy(src);
    }
    child_stop(&c);
    ev_loop_destroy(h.loop);
}

/* The node's path: a libconfig `sources` list with kind = "roughtime", applied to a set. */
static void test_config_apply(void)
{
    harness h;
    server s;
    harness_init(&h);
    TB_REQUIRE(server_start(h.loop, &h.log, &s, "127.0.0.66", 0) == 0);
    h.server_clock = &s.clk;
    char b64[45], text[512], err[256];
    tb_rt_key_b64(s.pk, b64);
    snprintf(text, sizeof(text),
             "sources = ( { kind = \"roughtime\"; address = \"%s\"; public_key = \"%s\";\n"
             "              minpoll = -3; maxpoll = -2; } );\n",
             s.addr, b64);
    config_t cfg;
    config_init(&cfg);
    TB_REQUIRE(config_read_string(&cfg, text) == CONFIG_TRUE);
    tb_source_config_list list;
    TB_REQUIRE(tb_sources_config_parse(config_lookup(&cfg, "sources"), &list, err, sizeof(err)) ==
               0);
    config_destroy(&cfg);

    /* Without the driver the source is listed, inert. */
    tb_sources *bare;
    TB_REQUIRE(tb_sources_create(&h.env, &bare) == 0);
    TB_REQUIRE(tb_sources_apply(bare, &list) == 0);
    TB_REQUIRE(tb_sources_count(bare) == 1);
    TB_CHECK_EQ(tb_source_state_of(tb_sources_get(bare, 0)), TB_SOURCE_STOPPED);
    tb_sources_destroy(bare);

    tb_sources *set;
    TB_REQUIRE(tb_sources_create(&h.env, &set) == 0);
    tb_sources_set_driver(set, tb_rt_driver());
    TB_REQUIRE(tb_sources_apply(set, &list) == 0);
    TB_REQUIRE(tb_sources_count(set) == 1);
    tb_source *src = tb_sources_get(set, 0);
    TB_CHECK(tb_test_run_until(h.loop, three_meas, &h, 5.0));
    TB_CHECK_EQ(tb_source_state_of(src), TB_SOURCE_REACHABLE);
    if (h.n_meas >= 1)
        TB_CHECK(check_meas(&h.ms[0], s.pk, 0) < 50 * MS);
    /* Reloading the same list keeps the running source. */
    TB_REQUIRE(tb_sources_apply(set, &list) == 0);
    TB_CHECK(tb_sources_get(set, 0) == src);
    tb_sources_config_free(&list);
    tb_sources_destroy(set);
    server_stop(&s);
    ev_loop_destroy(h.loop);
}

static void test_create_needs_key(void)
{
    harness h;
    tb_source_config cfg;
    tb_source *src = NULL;
    harness_init(&h);
    tb_source_config_default(&cfg, TB_SOURCE_ROUGHTIME);
    snprintf(cfg.address, sizeof(cfg.address), "127.0.0.67:2002");
    TB_CHECK_EQ(tb_source_create(&h.env, tb_rt_driver(), &cfg, NULL, &src), TB_ERR_INVAL);
    TB_CHECK(src == NULL);
    ev_loop_destroy(h.loop);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_honest_server);
    TB_RUN(test_poll_adapts);
    TB_RUN(test_shifted_server);
    TB_RUN(test_ipv6);
    TB_RUN(test_tcp_server);
    TB_RUN(test_tcp_failures);
    TB_RUN(test_wrong_key_silence);
    TB_RUN(test_wrong_key_rejected);
    TB_RUN(test_unsynced_server);
    TB_RUN(test_bad_signature);
    TB_RUN(test_replayed_response);
    TB_RUN(test_silent_server);
    TB_RUN(test_name_and_recovery);
    TB_RUN(test_tbroughtime_child_faketime);
    TB_RUN(test_config_apply);
    TB_RUN(test_create_needs_key);
    return TB_DONE();
}
