/* The source framework and NTP driver against small responders on loopback (127.0.0.80-89)
 * that this test controls: honest, Kiss-o'-Death RATE and DENY, wrong origin, silent; a pool
 * whose name an injected resolver maps to loopback responders; and a reload. */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/bytes.h"
#include "ntp/packet.h"
#include "sources/ntp_driver.h"
#include "resolve/resolver.h"
#include "sources/sources.h"
#include "tests/support/fake_ntp.h"
#include "tests/support/loop.h"
#include "tb_test.h"

#define MS INT64_C(1000000)

/* --- a resolver the test controls --- */

typedef struct stub_answer {
    ev_timer t;
    struct stub_resolver *owner;
    uint64_t ticket;
    tb_resolve_cb cb;
    void *arg;
    int cancelled;
} stub_answer;

typedef struct stub_resolver {
    tb_resolver pub;
    struct ev_loop *loop;
    const char *name;
    tb_addr addrs[8];
    size_t n;
    int calls;
    uint64_t next;
    stub_answer pending[8];
} stub_resolver;

static void stub_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    stub_answer *a = w->data;
    (void)loop;
    (void)revents;
    a->ticket = 0;
    if (!a->cancelled)
        a->cb(a->arg, 0, "", a->owner->addrs, a->owner->n);
}

static int stub_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                        void *arg, uint64_t *ticket)
{
    stub_resolver *s = (stub_resolver *)pub;
    (void)port;
    s->calls++;
    if (strcmp(host, s->name) != 0 && strcmp(host, "srv.test") != 0)
        return TB_ERR_NOTFOUND;
    for (int i = 0; i < 8; i++) {
        stub_answer *a = &s->pending[i];
        if (a->ticket)
            continue;
        *a = (stub_answer){.owner = s, .ticket = ++s->next, .cb = cb, .arg = arg};
        *ticket = a->ticket;
        ev_timer_init(&a->t, stub_fire, 0.001, 0.0); /* answer later, as a real resolver */
        a->t.data = a;
        ev_timer_start(s->loop, &a->t);
        return 0;
    }
    return TB_ERR_FULL;
}

static void stub_cancel(tb_resolver *pub, uint64_t ticket)
{
    stub_resolver *s = (stub_resolver *)pub;
    for (int i = 0; i < 8; i++)
        if (s->pending[i].ticket == ticket)
            s->pending[i].cancelled = 1;
}

static void stub_add(stub_resolver *s, const char *hostport)
{
    if (tb_addr_parse_numeric(hostport, strlen(hostport), 0, &s->addrs[s->n], NULL) == TB_OK)
        s->n++;
}

/* --- harness --- */

typedef struct harness {
    struct ev_loop *loop;
    tb_log log;
    tb_source_env env;
    stub_resolver stub;
    int n_meas;
    tb_source_meas last;
    uint8_t last_req[TB_NTP_HEADER_LEN], last_rep[TB_NTP_HEADER_LEN];
    char seen_addr[8][64];
    int n_seen;
} harness;

static void on_measurement(void *arg, const tb_source_meas *m)
{
    harness *h = arg;
    h->n_meas++;
    h->last = *m;
    if (m->request_len == TB_NTP_HEADER_LEN && m->response_len == TB_NTP_HEADER_LEN) {
        memcpy(h->last_req, m->request, TB_NTP_HEADER_LEN);
        memcpy(h->last_rep, m->response, TB_NTP_HEADER_LEN);
    }
    for (int i = 0; i < h->n_seen; i++)
        if (strcmp(h->seen_addr[i], m->source->address) == 0)
            return;
    if (h->n_seen < 8)
        snprintf(h->seen_addr[h->n_seen++], 64, "%s", m->source->address);
}

static void harness_init(harness *h)
{
    memset(h, 0, sizeof(*h));
    h->loop = ev_loop_new(EVFLAG_AUTO);
    tb_log_init(&h->log, "test", TB_LOG_WARN);
    h->stub.pub.resolve = stub_resolve;
    h->stub.pub.cancel = stub_cancel;
    h->stub.loop = h->loop;
    h->stub.name = "pool.test";
    h->env = (tb_source_env){.loop = h->loop,
                             .log = &h->log,
                             .clock = tb_clock_system(),
                             .resolver = &h->stub.pub,
                             .on_measurement = on_measurement,
                             .measurement_arg = h};
}

static void harness_done(harness *h)
{
    for (int i = 0; i < 8; i++)
        if (h->stub.pending[i].ticket)
            ev_timer_stop(h->loop, &h->stub.pending[i].t);
    ev_loop_destroy(h->loop);
}

typedef struct state_wait {
    tb_source *s;
    tb_source_state st;
} state_wait;

static int has_state(void *arg)
{
    state_wait *w = arg;
    return tb_source_state_of(w->s) == w->st;
}

static int has_meas(void *arg)
{
    return ((harness *)arg)->n_meas > 0;
}

static tb_source *make_source(harness *h, const char *addr, int minpoll, int maxpoll)
{
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    snprintf(cfg.address, sizeof(cfg.address), "%s", addr);
    cfg.minpoll = minpoll;
    cfg.maxpoll = maxpoll;
    cfg.unreach_after = 3;
    tb_source *s = NULL;
    if (tb_source_create(&h->env, tb_ntp_driver(), &cfg, NULL, &s) < 0 || tb_source_start(s) < 0)
        return NULL;
    return s;
}

/* --- tests --- */

static void test_honest_measurement_with_evidence(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.80", TB_FAKE_NTP_HONEST, 0) == 0);
    r.offset_ns = 250 * MS;
    tb_source *s = make_source(&h, r.addr, -3, 0);
    TB_REQUIRE(s != NULL);
    TB_CHECK(tb_test_run_until(h.loop, has_meas, &h, 3.0));
    TB_CHECK_EQ(tb_source_state_of(s), TB_SOURCE_REACHABLE);
    TB_CHECK(llabs(h.last.offset_ns - 250 * MS) < 1 * MS);
    TB_CHECK(h.last.delay_ns >= 0 && h.last.delay_ns < 50 * MS);
    TB_CHECK(h.last.error_ns >= h.last.delay_ns / 2);
    TB_CHECK_EQ(h.last.stratum, 2);
    TB_CHECK_EQ(h.last.source->kind, TB_SOURCE_NTP);
    TB_CHECK_STR(h.last.source->address, r.addr);
    /* The evidence: our request's transmit timestamp comes back as the origin. */
    TB_CHECK_MEM(h.last_req + 40, h.last_rep + 24, 8);
    TB_CHECK_EQ(h.last_rep[0] & 7, 4);
    /* T1 and T4 are reported too: offset and delay recompute from them and the reply. */
    tb_ntp_packet rp;
    TB_REQUIRE(tb_ntp_packet_parse(h.last_rep, sizeof(h.last_rep), &rp) == 0);
    int64_t t1 = h.last.sent_real_ns, t4 = h.last.real_ns;
    int64_t t2 = tb_ntp_ts_to_unix_ns(rp.receive_ts, t1),
            t3 = tb_ntp_ts_to_unix_ns(rp.transmit_ts, t1);
    TB_CHECK(t1 > 0 && t4 >= t1);
    TB_CHECK_EQ(((t2 - t1) + (t3 - t4)) / 2, h.last.offset_ns);
    /* Kernel receive timestamps were used on this Linux host. */
    const tb_ntp_client *c = tb_ntp_driver_client(s);
    TB_REQUIRE(c != NULL);
    TB_CHECK_EQ(c->rejects[TB_NTP_REJ_ORIGIN], 0);
    char line[512];
    tb_source_describe(s, line, sizeof(line));
    TB_CHECK(strstr(line, "reachable") != NULL);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static void test_ipv6_server(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "::1", TB_FAKE_NTP_HONEST, 0) == 0);
    r.offset_ns = -40 * MS;
    tb_source *s = make_source(&h, r.addr, -3, 0); /* "[::1]:port" */
    TB_REQUIRE(s != NULL);
    TB_CHECK(tb_test_run_until(h.loop, has_meas, &h, 3.0));
    TB_CHECK(llabs(h.last.offset_ns + 40 * MS) < 1 * MS);
    TB_CHECK(strncmp(h.last.source->address, "[::1]:", 6) == 0);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static void test_kod_rate_backs_off(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.81", TB_FAKE_NTP_KOD_RATE, 0) == 0);
    tb_source *s = make_source(&h, r.addr, -4, 0); /* 62.5 ms, at most 1 s */
    TB_REQUIRE(s != NULL);
    tb_test_run_until(h.loop, tb_test_never, NULL, 1.5);
    const tb_ntp_client *c = tb_ntp_driver_client(s);
    TB_REQUIRE(c != NULL);
    TB_CHECK(c->rejects[TB_NTP_REJ_KOD_RATE] >= 2);
    TB_CHECK(c->poll > -4);
    /* Without the back-off the burst alone would have sent 4 requests in 190 ms and then
     * polled every 62.5 ms (over 20 requests in 1.5 s); each RATE doubles the interval:
     * requests at 0, 0.125, 0.375, 0.875 s, then every second. */
    TB_CHECK(r.n_requests <= 6);
    TB_CHECK(r.n_requests >= 3);
    if (r.n_requests >= 3) {
        uint64_t gap1 = r.req_mono[1] - r.req_mono[0], gap2 = r.req_mono[2] - r.req_mono[1];
        TB_CHECK(gap2 > gap1);
        TB_CHECK(gap1 >= 120 * (uint64_t)MS); /* 2^-3 s after the first RATE */
    }
    TB_CHECK(tb_source_state_of(s) != TB_SOURCE_DEMOBILISED);
    TB_CHECK_EQ(h.n_meas, 0);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static void test_kod_deny_demobilises(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.82", TB_FAKE_NTP_KOD_DENY, 0) == 0);
    tb_source *s = make_source(&h, r.addr, -4, 0);
    TB_REQUIRE(s != NULL);
    state_wait w = {s, TB_SOURCE_DEMOBILISED};
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 2.0));
    TB_CHECK(strstr(tb_source_reason(s), "DENY") != NULL);
    int seen = r.n_requests;
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.5);
    TB_CHECK_EQ(r.n_requests, seen); /* no more polls */
    TB_CHECK_EQ(seen, 1);
    TB_CHECK_EQ(h.n_meas, 0);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static void test_wrong_origin_rejected(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.83", TB_FAKE_NTP_BAD_ORIGIN, 0) == 0);
    tb_source *s = make_source(&h, r.addr, -4, 0);
    TB_REQUIRE(s != NULL);
    state_wait w = {s, TB_SOURCE_UNREACHABLE};
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 3.0));
    const tb_ntp_client *c = tb_ntp_driver_client(s);
    TB_REQUIRE(c != NULL);
    TB_CHECK(c->rejects[TB_NTP_REJ_ORIGIN] >= 3);
    TB_CHECK_EQ(c->n_accepted, 0);
    TB_CHECK_EQ(h.n_meas, 0);
    TB_CHECK(strstr(tb_source_reason(s), "origin timestamp does not match") != NULL);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static int unreach_polls;
static void note_state(void *arg, tb_source *s)
{
    (void)arg;
    if (tb_source_state_of(s) == TB_SOURCE_UNREACHABLE && !unreach_polls)
        unreach_polls = (int)tb_ntp_driver_client(s)->n_sent;
}

static void test_silent_server_becomes_unreachable(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.84", TB_FAKE_NTP_SILENT, 0) == 0);
    tb_source *s = make_source(&h, r.addr, -4, 0);
    TB_REQUIRE(s != NULL);
    unreach_polls = 0;
    tb_source_set_state_hook(s, note_state, NULL);
    state_wait w = {s, TB_SOURCE_UNREACHABLE};
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 3.0));
    /* unreachable_after = 3: three unanswered polls, noticed as the fourth goes out. */
    TB_CHECK_EQ(unreach_polls, 4);
    TB_CHECK(strstr(tb_source_reason(s), "no reply to 3 polls") != NULL);
    /* Once the server answers again the source comes back. */
    r.mode = TB_FAKE_NTP_HONEST;
    w.st = TB_SOURCE_REACHABLE;
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 3.0));
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static int pool_full(void *arg)
{
    harness *h = arg;
    return h->n_seen >= 3;
}

typedef struct pool_wait {
    tb_pool *p;
    unsigned long replacements;
    harness *h;
} pool_wait;

static int pool_replaced(void *arg)
{
    pool_wait *w = arg;
    if (tb_pool_replacements(w->p) < w->replacements || tb_pool_size(w->p) != 3)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (tb_source_state_of(tb_pool_member(w->p, i)) != TB_SOURCE_REACHABLE)
            return 0;
    return 1;
}

static void test_pool_three_sources_and_replacement(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r[4];
    const char *ips[] = {"127.0.0.85", "127.0.0.86", "127.0.0.87", "127.0.0.88"};
    tb_fake_ntp_mode modes[] = {TB_FAKE_NTP_HONEST, TB_FAKE_NTP_KOD_DENY, TB_FAKE_NTP_HONEST,
                                TB_FAKE_NTP_HONEST};
    for (int i = 0; i < 4; i++) {
        TB_REQUIRE(tb_fake_ntp_start(h.loop, &r[i], ips[i], modes[i], 0) == 0);
        r[i].offset_ns = (i + 1) * 10 * MS;
    }
    for (int i = 0; i < 3; i++)
        stub_add(&h.stub, r[i].addr);

    tb_sources *set;
    TB_REQUIRE(tb_sources_create(&h.env, &set) == 0);
    tb_source_config pc;
    tb_source_config_default(&pc, TB_SOURCE_POOL);
    snprintf(pc.name, sizeof(pc.name), "pool.test");
    pc.count = 3;
    pc.minpoll = -4;
    pc.maxpoll = 0;
    pc.unreach_after = 3;
    tb_source_config_list list = {&pc, 1};
    TB_REQUIRE(tb_sources_apply(set, &list) == 0);
    tb_pool *pool = tb_sources_entry_pool(set, 0);
    TB_REQUIRE(pool != NULL);
    /* Three addresses, three sources; two measure, the DENY one is replaced, but the
     * resolver has nothing else yet. */
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.3);
    TB_CHECK_EQ(h.stub.calls >= 1, 1);
    TB_CHECK_EQ(tb_pool_replacements(pool), 1);
    TB_CHECK_EQ(tb_sources_count(set), 2);
    TB_CHECK_EQ(h.n_seen, 2);
    /* The name now also resolves to a fourth server: the pool fills up to three again. */
    stub_add(&h.stub, r[3].addr);
    pool_wait pw = {pool, 1, &h};
    TB_CHECK(tb_test_run_until(h.loop, pool_replaced, &pw, 4.0));
    TB_CHECK(tb_test_run_until(h.loop, pool_full, &h, 2.0));
    TB_CHECK_EQ(tb_sources_count(set), 3);
    int members_ok = 0;
    for (size_t i = 0; i < tb_sources_count(set); i++) {
        const tb_source_id *id = tb_source_identity(tb_sources_get(set, i));
        TB_CHECK_STR(id->name, "pool.test");
        TB_CHECK_EQ(id->kind, TB_SOURCE_NTP);
        members_ok += strcmp(id->address, r[1].addr) != 0;
    }
    TB_CHECK_EQ(members_ok, 3); /* the DENY server is not among them */
    TB_CHECK_EQ(r[1].n_requests, 1);
    tb_sources_destroy(set);
    for (int i = 0; i < 4; i++)
        tb_fake_ntp_stop(h.loop, &r[i]);
    harness_done(&h);
}

static void test_pool_of_three_loopback_addresses(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r[3];
    const char *ips[] = {"127.0.0.89", "127.0.0.90", "127.0.0.91"};
    for (int i = 0; i < 3; i++) {
        TB_REQUIRE(tb_fake_ntp_start(h.loop, &r[i], ips[i], TB_FAKE_NTP_HONEST, 0) == 0);
        stub_add(&h.stub, r[i].addr);
    }
    tb_sources *set;
    TB_REQUIRE(tb_sources_create(&h.env, &set) == 0);
    tb_source_config pc;
    tb_source_config_default(&pc, TB_SOURCE_POOL);
    snprintf(pc.name, sizeof(pc.name), "pool.test");
    pc.count = 4; /* more wanted than there are: three sources */
    pc.minpoll = -3;
    tb_source_config_list list = {&pc, 1};
    TB_REQUIRE(tb_sources_apply(set, &list) == 0);
    TB_CHECK(tb_test_run_until(h.loop, pool_full, &h, 3.0));
    TB_CHECK_EQ(tb_sources_count(set), 3);
    TB_CHECK_EQ(h.n_seen, 3);
    for (int i = 0; i < 3; i++)
        TB_CHECK(r[i].n_requests >= 1);
    tb_sources_destroy(set);
    for (int i = 0; i < 3; i++)
        tb_fake_ntp_stop(h.loop, &r[i]);
    harness_done(&h);
}

static void test_reload_keeps_unchanged_sources(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r[3];
    const char *ips[] = {"127.0.0.92", "127.0.0.93", "127.0.0.94"};
    tb_source_config cfg[3];
    for (int i = 0; i < 3; i++) {
        TB_REQUIRE(tb_fake_ntp_start(h.loop, &r[i], ips[i], TB_FAKE_NTP_HONEST, 0) == 0);
        tb_source_config_default(&cfg[i], TB_SOURCE_NTP);
        snprintf(cfg[i].address, sizeof(cfg[i].address), "%s", r[i].addr);
        cfg[i].minpoll = -3;
        cfg[i].maxpoll = -3;
    }
    tb_sources *set;
    TB_REQUIRE(tb_sources_create(&h.env, &set) == 0);
    tb_source_config first[2] = {cfg[0], cfg[1]};
    tb_source_config_list l1 = {first, 2};
    TB_REQUIRE(tb_sources_apply(set, &l1) == 0);
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.4);
    tb_source *a = tb_sources_get(set, 0);
    uint64_t a_meas = tb_source_measurements(a);
    TB_CHECK(a_meas >= 1);
    int b_requests = r[1].n_requests;
    TB_CHECK(b_requests >= 1);

    tb_source_config second[2] = {cfg[2], cfg[0]};
    tb_source_config_list l2 = {second, 2};
    TB_REQUIRE(tb_sources_apply(set, &l2) == 0);
    TB_CHECK(tb_sources_get(set, 1) == a); /* same object: its state and counters kept */
    TB_CHECK(tb_source_measurements(a) == a_meas);
    uint64_t a_accepted = tb_ntp_driver_client(a)->n_accepted;
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.4);
    /* Still polling with the same client (the filter releases only better samples, so count
     * accepted replies rather than measurements). */
    TB_CHECK(tb_ntp_driver_client(a)->n_accepted > a_accepted);
    TB_CHECK_EQ(r[1].n_requests, b_requests); /* removed: polls no more */
    TB_CHECK(r[2].n_requests >= 1);           /* added: started */
    TB_CHECK_EQ(tb_source_state_of(tb_sources_get(set, 0)), TB_SOURCE_REACHABLE);

    /* A kind without a driver yet is listed, stopped, with its reason. */
    tb_source_config rt;
    tb_source_config_default(&rt, TB_SOURCE_ROUGHTIME);
    snprintf(rt.address, sizeof(rt.address), "127.0.0.99:2002");
    rt.has_public_key = true;
    tb_source_config third[2] = {cfg[0], rt};
    tb_source_config_list l3 = {third, 2};
    TB_REQUIRE(tb_sources_apply(set, &l3) == 0);
    TB_CHECK(tb_sources_get(set, 0) == a);
    tb_source *rs = tb_sources_get(set, 1);
    TB_REQUIRE(rs != NULL);
    TB_CHECK_EQ(tb_source_state_of(rs), TB_SOURCE_STOPPED);
    TB_CHECK(strstr(tb_source_reason(rs), "no driver") != NULL);
    tb_sources_destroy(set);
    for (int i = 0; i < 3; i++)
        tb_fake_ntp_stop(h.loop, &r[i]);
    harness_done(&h);
}

static int calls_at_least(void *arg)
{
    harness *h = arg;
    return h->stub.calls >= 3;
}

static void test_pool_re_resolves_on_schedule(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp r;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &r, "127.0.0.95", TB_FAKE_NTP_HONEST, 0) == 0);
    stub_add(&h.stub, r.addr);
    tb_source_config pc;
    tb_source_config_default(&pc, TB_SOURCE_POOL);
    snprintf(pc.name, sizeof(pc.name), "pool.test");
    pc.count = 1; /* full: only the schedule makes it resolve again */
    pc.minpoll = -3;
    pc.resolve_interval = 1;
    tb_pool *p;
    TB_REQUIRE(tb_pool_create(&h.env, tb_ntp_driver(), &pc, &p) == 0);
    TB_REQUIRE(tb_pool_start(p) == 0);
    uint64_t t0 = tb_clock_mono(tb_clock_system());
    TB_CHECK(tb_test_run_until(h.loop, calls_at_least, &h, 4.0));
    uint64_t took = tb_clock_mono(tb_clock_system()) - t0;
    TB_CHECK(took >= 1900 * (uint64_t)MS); /* at 0, 1 and 2 s, not sooner */
    TB_CHECK_EQ(tb_pool_size(p), 1);
    TB_CHECK_EQ(tb_pool_replacements(p), 0);
    tb_pool_destroy(p);
    tb_fake_ntp_stop(h.loop, &r);
    harness_done(&h);
}

static void test_named_server_re_resolves_when_unreachable(void)
{
    harness h;
    harness_init(&h);
    tb_fake_ntp silent, honest;
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &silent, "127.0.0.96", TB_FAKE_NTP_SILENT, 0) == 0);
    TB_REQUIRE(tb_fake_ntp_start(h.loop, &honest, "127.0.0.97", TB_FAKE_NTP_HONEST, 0) == 0);
    stub_add(&h.stub, silent.addr); /* srv.test first points at a dead server */
    tb_source *s = make_source(&h, "srv.test:123", -4, 0);
    TB_REQUIRE(s != NULL);
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.05);
    TB_CHECK_EQ(h.stub.calls, 1);
    TB_CHECK_STR(tb_source_identity(s)->address, silent.addr);
    /* The name moves; the source notices only when the old address stops answering. */
    h.stub.n = 0;
    stub_add(&h.stub, honest.addr);
    state_wait w = {s, TB_SOURCE_UNREACHABLE};
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 3.0));
    TB_CHECK_EQ(h.stub.calls, 2); /* re-resolving started at the transition */
    w.st = TB_SOURCE_REACHABLE;
    TB_CHECK(tb_test_run_until(h.loop, has_state, &w, 3.0));
    TB_CHECK(h.stub.calls >= 2);
    TB_CHECK_STR(tb_source_identity(s)->address, honest.addr);
    TB_CHECK_STR(tb_source_identity(s)->name, "srv.test:123");
    TB_CHECK(h.n_meas >= 1);
    tb_source_destroy(s);
    tb_fake_ntp_stop(h.loop, &silent);
    tb_fake_ntp_stop(h.loop, &honest);
    harness_done(&h);
}

static int resolved_done;
static size_t resolved_n;
static char resolved_first[64];
static void on_resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    (void)arg;
    (void)why;
    resolved_done = err == 0 ? 1 : -1;
    resolved_n = n;
    if (n)
        tb_addr_format(&addrs[0], resolved_first, sizeof(resolved_first));
}

static int is_resolved(void *arg)
{
    (void)arg;
    return resolved_done != 0;
}

static void test_thread_resolver(void)
{
    harness h;
    harness_init(&h);
    tb_resolver *res;
    TB_REQUIRE(tb_resolver_thread_create(h.loop, &res) == 0);
    uint64_t ticket;
    /* A numeric host needs no DNS: getaddrinfo answers locally. */
    TB_REQUIRE(res->resolve(res, "127.0.0.98", "123", on_resolved, NULL, &ticket) == 0);
    TB_CHECK_EQ(resolved_done, 0); /* tb_test_never called back from inside resolve() */
    TB_CHECK(tb_test_run_until(h.loop, is_resolved, NULL, 3.0));
    TB_CHECK_EQ(resolved_done, 1);
    TB_CHECK(resolved_n >= 1);
    TB_CHECK_STR(resolved_first, "127.0.0.98:123");
    /* A cancelled request is tb_test_never called back, and destroying with one in flight is safe.
     */
    resolved_done = 0;
    TB_REQUIRE(res->resolve(res, "127.0.0.97", "123", on_resolved, NULL, &ticket) == 0);
    res->cancel(res, ticket);
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.2);
    TB_CHECK_EQ(resolved_done, 0);
    TB_REQUIRE(res->resolve(res, "127.0.0.98", "123", on_resolved, NULL, &ticket) == 0);
    tb_resolver_thread_destroy(res);
    tb_test_run_until(h.loop, tb_test_never, NULL, 0.1);
    TB_CHECK_EQ(resolved_done, 0);
    harness_done(&h);
}

int main(void)
{
    TB_RUN(test_honest_measurement_with_evidence);
    TB_RUN(test_ipv6_server);
    TB_RUN(test_kod_rate_backs_off);
    TB_RUN(test_kod_deny_demobilises);
    TB_RUN(test_wrong_origin_rejected);
    TB_RUN(test_silent_server_becomes_unreachable);
    TB_RUN(test_pool_three_sources_and_replacement);
    TB_RUN(test_pool_of_three_loopback_addresses);
    TB_RUN(test_reload_keeps_unchanged_sources);
    TB_RUN(test_pool_re_resolves_on_schedule);
    TB_RUN(test_named_server_re_resolves_when_unreachable);
    TB_RUN(test_thread_resolver);
    return TB_DONE();
}
