#include "ntp/client.h"

#include "common/bytes.h"
#include <stdlib.h>

#include "tb_test.h"

#define S INT64_C(1000000000)
#define MS INT64_C(1000000)

static const int64_t base_real = INT64_C(1795000000) * S;

/* A scripted server: answers request `req` received at real time t2 (server clock) and sent
 * at t3, with the fields a test wants to spoil. */
typedef struct fake_reply {
    uint8_t leap, version, mode, stratum;
    int8_t poll;
    uint32_t refid, root_delay, root_disp;
    int64_t t2, t3;
    int bad_origin;
} fake_reply;

static fake_reply good(int64_t t2, int64_t t3)
{
    return (fake_reply){
        .version = 4, .mode = 4, .stratum = 1, .refid = 0x4c4f434c, .t2 = t2, .t3 = t3};
}

static void build_reply(const uint8_t *req, const fake_reply *f, uint8_t out[TB_NTP_HEADER_LEN])
{
    tb_ntp_packet p = {.leap = f->leap,
                       .version = f->version,
                       .mode = f->mode,
                       .stratum = f->stratum,
                       .poll = f->poll,
                       .precision = -20,
                       .root_delay = f->root_delay,
                       .root_dispersion = f->root_disp,
                       .refid = f->refid};
    p.origin_ts = tb_get_be64(req + 40) ^ (f->bad_origin ? 1 : 0);
    p.reference_ts = tb_ntp_ts_from_unix_ns(f->t2 - 10 * S);
    p.receive_ts = tb_ntp_ts_from_unix_ns(f->t2);
    p.transmit_ts = tb_ntp_ts_from_unix_ns(f->t3);
    tb_ntp_packet_write(&p, out);
}

static tb_ntp_client_config fast_config(void)
{
    tb_ntp_client_config cfg;
    tb_ntp_client_config_default(&cfg);
    cfg.minpoll = 0;
    cfg.maxpoll = 4;
    cfg.burst = 2;
    cfg.burst_interval_ns = 100 * MS;
    cfg.unreach_after = 3;
    cfg.good_to_raise = 2;
    return cfg;
}

static uint8_t rnd_state = 1;
static void next_rnd(uint8_t r[TB_NTP_POLL_RND_LEN])
{
    for (int i = 0; i < TB_NTP_POLL_RND_LEN; i++)
        r[i] = rnd_state = (uint8_t)(rnd_state * 73 + 41);
}

/* One exchange: poll at mono `now`, the server answers with `f` made relative to t1. */
static tb_ntp_reject exchange(tb_ntp_client *c, uint64_t now, int64_t t1, int64_t owd,
                              int64_t offset, fake_reply f, int64_t proc, tb_ntp_result *res,
                              uint8_t *req_out)
{
    uint8_t req[TB_NTP_HEADER_LEN], rep[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN];
    next_rnd(r);
    if (tb_ntp_client_poll(c, now, t1, r, req) != 0)
        return TB_NTP_REJ_COUNT;
    if (req_out)
        memcpy(req_out, req, sizeof(req));
    f.t2 = t1 + owd + offset;
    f.t3 = f.t2 + proc;
    build_reply(req, &f, rep);
    int64_t t4 = t1 + 2 * owd + proc;
    return tb_ntp_client_receive(c, rep, sizeof(rep), t4, now + (uint64_t)(2 * owd + proc), res);
}

static void test_request_is_random_and_valid(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 1000);
    TB_CHECK_EQ(tb_ntp_client_next_poll(&c), 1000);
    uint8_t req[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
    TB_REQUIRE(tb_ntp_client_poll(&c, 1000, base_real, r, req) == 0);
    tb_ntp_packet p;
    TB_REQUIRE(tb_ntp_packet_parse(req, sizeof(req), &p) == 0);
    TB_CHECK_EQ(p.version, 4);
    TB_CHECK_EQ(p.mode, 3);
    TB_CHECK_EQ(p.transmit_ts, 0x0102030405060708ULL);
    /* Nothing of our clock leaks: the other timestamps are zero. */
    TB_CHECK_EQ(p.origin_ts, 0);
    TB_CHECK_EQ(p.receive_ts, 0);
    TB_CHECK_EQ(p.reference_ts, 0);
    /* Burst: the next poll comes after burst_interval, not 2^minpoll. */
    TB_CHECK_EQ(tb_ntp_client_next_poll(&c), 1000 + 100 * MS);
}

static void test_offset_and_delay(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    /* Server 5 s ahead, one-way delay 3 ms, server processing 1 ms. */
    tb_ntp_reject r = exchange(&c, 0, base_real, 3 * MS, 5 * S, good(0, 0), 1 * MS, &res, NULL);
    TB_REQUIRE(r == TB_NTP_ACCEPTED);
    TB_REQUIRE(res.sample != NULL);
    /* Timestamps pass through 32.32 fixed point: allow a nanosecond of rounding. */
    TB_CHECK(llabs(res.sample->offset_ns - 5 * S) <= 1);
    TB_CHECK(llabs(res.sample->delay_ns - 6 * MS) <= 2);
    TB_CHECK_EQ(res.sample->stratum, 1);
    /* error = delay/2 + dispersion (precisions + 15 ppm of 7 ms) + root terms (0). */
    int64_t disp = 954 + 1000 + 7 * 15;
    TB_CHECK(llabs(res.error_ns - (res.sample->delay_ns / 2 + disp)) <= 2);
    TB_CHECK_EQ(c.n_accepted, 1);
    TB_CHECK_EQ(c.reach & 1, 1);
    /* Root delay and dispersion join the error bound (synchronisation distance). */
    fake_reply f = good(0, 0);
    f.root_delay = 0x00000800; /* 31.25 ms */
    f.root_disp = 0x00000400;  /* 15.625 ms */
    r = exchange(&c, 200 * MS, base_real + S, 1 * MS, -2 * S, f, 0, &res, NULL);
    TB_REQUIRE(r == TB_NTP_ACCEPTED);
    TB_REQUIRE(res.sample != NULL); /* smaller delay: the new sample is the best */
    TB_CHECK(llabs(res.sample->offset_ns + 2 * S) <= 1);
    int64_t want = res.sample->delay_ns / 2 + res.sample->dispersion_ns + 15625000 + 15625000;
    TB_CHECK(llabs(res.error_ns - want) <= 2);
}

/* What a receiver re-checks of an exchange another node reports: the sample's own packets and
 * numbers pass; a changed offset, delay, reply or request does not; an unsynchronised reply's
 * numbers are not checked. */
static void test_exchange_check(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    TB_REQUIRE(exchange(&c, 0, base_real, 3 * MS, 5 * S, good(0, 0), 1 * MS, &res, NULL) ==
               TB_NTP_ACCEPTED);
    const tb_ntp_sample *s = res.sample;
    TB_REQUIRE(s != NULL);
    tb_ntp_packet rep;
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, s->offset_ns,
                                      s->delay_ns, &rep),
                0);
    TB_CHECK_EQ(rep.stratum, 1);
    TB_CHECK_EQ(rep.leap, 0);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, s->offset_ns + 3,
                                      s->delay_ns, &rep),
                TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, s->offset_ns,
                                      s->delay_ns + 10, &rep),
                TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4 + 1000, s->offset_ns,
                                      s->delay_ns, &rep),
                TB_ERR_VERIFY);
    uint8_t bad[48];
    memcpy(bad, s->response, 48);
    bad[43] ^= 1; /* the reply's transmit timestamp, one second off */
    TB_CHECK_EQ(
        tb_ntp_exchange_check(s->request, 48, bad, 48, s->t4, s->offset_ns, s->delay_ns, &rep),
        TB_ERR_VERIFY);
    memcpy(bad, s->request, 48);
    bad[47] ^= 1; /* another request's transmit timestamp */
    TB_CHECK_EQ(
        tb_ntp_exchange_check(bad, 48, s->response, 48, s->t4, s->offset_ns, s->delay_ns, &rep),
        TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->response, 48, s->response, 48, s->t4, s->offset_ns,
                                      s->delay_ns, &rep),
                TB_ERR_MALFORMED); /* a reply as the request */
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 47, s->response, 48, s->t4, s->offset_ns,
                                      s->delay_ns, &rep),
                TB_ERR_MALFORMED);
    /* leap 3: whatever the numbers, the reply only says it is unsynchronised */
    memcpy(bad, s->response, 48);
    bad[0] = (uint8_t)(bad[0] | 0xc0);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, bad, 48, s->t4, 0, 0, &rep), 0);
    TB_CHECK(tb_ntp_reply_unsynchronised(rep.leap, rep.stratum));
    TB_CHECK(tb_ntp_reply_unsynchronised(0, 16) && tb_ntp_reply_unsynchronised(0, 0));
    TB_CHECK(!tb_ntp_reply_unsynchronised(1, 15) && !tb_ntp_reply_unsynchronised(2, 1));
    TB_CHECK_EQ(
        tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, INT64_MIN, INT64_MAX, &rep),
        TB_ERR_VERIFY);
}

/* A T1 corrected after poll (the request was sealed first) is the one the offset uses. */
static void test_sent_corrects_t1(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    uint8_t rnd[TB_NTP_POLL_RND_LEN] = {1, 2, 3, 4, 5, 6, 7, 8}, req[TB_NTP_HEADER_LEN],
            rep[TB_NTP_HEADER_LEN];
    TB_REQUIRE(tb_ntp_client_poll(&c, 0, base_real, rnd, req) == 0);
    /* Sent 20 us after poll; the server (same clock) receives 100 us later and answers at once;
     * the reply arrives 100 us after that. */
    int64_t sent = base_real + 20000, t2 = sent + 100000;
    tb_ntp_client_sent(&c, sent);
    build_reply(req, &(fake_reply){.version = 4, .mode = 4, .stratum = 1, .t2 = t2, .t3 = t2}, rep);
    tb_ntp_result res;
    TB_REQUIRE(tb_ntp_client_receive(&c, rep, sizeof(rep), t2 + 100000, 1000, &res) ==
               TB_NTP_ACCEPTED);
    TB_REQUIRE(res.sample != NULL);
    TB_CHECK_EQ(res.sample->t1, sent);
    TB_CHECK(llabs(res.sample->offset_ns) <= 1);
    TB_CHECK(llabs(res.sample->delay_ns - 200000) <= 2);
    /* No request outstanding: nothing to correct. */
    tb_ntp_client_sent(&c, 0);
    TB_CHECK_EQ(c.t1, sent);
}

static void test_filter_keeps_min_delay(void)
{
    tb_ntp_client_config cfg = fast_config();
    cfg.maxpoll = 0;
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    uint64_t now = 0;
    /* Delays 10, 2, 8 ms: the 2 ms sample stays the best and is released once. */
    int64_t owds[] = {5 * MS, 1 * MS, 4 * MS};
    int released = 0;
    for (int i = 0; i < 3; i++) {
        now += S;
        TB_REQUIRE(exchange(&c, now, base_real + (int64_t)now, owds[i], i * MS, good(0, 0), 0, &res,
                            NULL) == TB_NTP_ACCEPTED);
        if (res.sample) {
            released++;
            TB_CHECK(llabs(res.sample->offset_ns - i * MS) <= 1);
        }
    }
    TB_CHECK_EQ(released, 2); /* the first sample, then the 2 ms one; the 8 ms one is held */
    /* Eight worse samples push the 2 ms one out of the window; the best of those is released. */
    int64_t best_owd = 3 * MS;
    for (int i = 0; i < TB_NTP_FILTER_LEN; i++) {
        now += S;
        int64_t owd = i == 5 ? best_owd : 6 * MS;
        TB_REQUIRE(exchange(&c, now, base_real + (int64_t)now, owd, 42 * MS, good(0, 0), 0, &res,
                            NULL) == TB_NTP_ACCEPTED);
    }
    TB_CHECK_EQ(c.n_filter, TB_NTP_FILTER_LEN);
    TB_CHECK(res.sample == NULL); /* the last sample (12 ms) did not beat the 6 ms one */
    const tb_ntp_sample *best = NULL;
    for (unsigned i = 0; i < c.n_filter; i++)
        if (!best || c.filter[i].delay_ns < best->delay_ns)
            best = &c.filter[i];
    TB_CHECK(llabs(best->delay_ns - 2 * best_owd) <= 2);
}

/* A sample the filter holds back is still released when its offset moved further from the
 * best's than half their difference in delay explains (TB_NTP_NEWS_MIN_NS): a source that starts
 * to drift is heard of at the next poll, not polls later. */
static void test_filter_releases_movement(void)
{
    tb_ntp_client_config cfg = fast_config();
    cfg.maxpoll = 0;
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    uint64_t now = 0;
    /* one-way delay, offset, released? */
    static const struct {
        int64_t owd, off;
        bool released;
    } steps[] = {
        {1 * MS, 0, true},       /* the first, and the best */
        {5 * MS, 3 * MS, false}, /* 3 ms off with 8 ms more delay: the delay may explain it */
        {2 * MS, 0, false},      /* worse than the best, where it was */
        {2 * MS, 2 * MS, true},  /* 2 ms off with 2 ms more delay: it moved */
        {2 * MS, 2100000, true}, /* still moved from the best */
        {1 * MS, 400000, true},  /* as good as the best and newer: the filter's own release */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        now += S;
        TB_REQUIRE(exchange(&c, now, base_real + (int64_t)now, steps[i].owd, steps[i].off,
                            good(0, 0), 0, &res, NULL) == TB_NTP_ACCEPTED);
        TB_CHECK_EQ(res.sample != NULL, steps[i].released);
        if (res.sample)
            TB_CHECK(llabs(res.sample->offset_ns - steps[i].off) <= 1);
    }
}

static void test_rejections_counted(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    uint64_t now = 0;
    fake_reply f;
#define CASE(field_stmt, want_reason)                                                              \
    do {                                                                                           \
        now += S;                                                                                  \
        f = good(0, 0);                                                                            \
        field_stmt;                                                                                \
        TB_CHECK_EQ(exchange(&c, now, base_real + (int64_t)now, MS, 0, f, 0, &res, NULL),          \
                    want_reason);                                                                  \
        TB_CHECK(res.sample == NULL);                                                              \
    } while (0)
    CASE(f.bad_origin = 1, TB_NTP_REJ_ORIGIN);
    CASE(f.mode = 5, TB_NTP_REJ_MODE);
    CASE(f.version = 2, TB_NTP_REJ_VERSION);
    CASE(f.stratum = 16, TB_NTP_REJ_STRATUM);
    CASE(f.leap = 3, TB_NTP_REJ_LEAP);
    CASE(f.root_delay = 4u << 16, TB_NTP_REJ_ROOT_DELAY);
    CASE(f.root_disp = 4u << 16, TB_NTP_REJ_ROOT_DISP);
    CASE(f.refid = 0x58585858; f.stratum = 0, TB_NTP_REJ_KOD_OTHER);
#undef CASE
    TB_CHECK_EQ(c.rejects[TB_NTP_REJ_ORIGIN], 1);
    TB_CHECK_EQ(c.rejects[TB_NTP_REJ_STRATUM], 1);
    TB_CHECK_EQ(c.rejects[TB_NTP_REJ_KOD_OTHER], 1);
    TB_CHECK_STR(c.kiss, "XXXX");
    TB_CHECK_EQ(c.n_accepted, 0);

    /* Server transmit before its receive; and a round trip far beyond the bound. */
    uint8_t req[TB_NTP_HEADER_LEN], rep[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN] = {9};
    now += S;
    TB_REQUIRE(tb_ntp_client_poll(&c, now, base_real, r, req) == 0);
    f = good(base_real + 10 * MS, base_real + 5 * MS);
    build_reply(req, &f, rep);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 20 * MS, now, &res),
                TB_NTP_REJ_TIMESTAMPS);
    /* A second copy of a reply: nothing outstanding any more. */
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 20 * MS, now, &res),
                TB_NTP_REJ_UNEXPECTED);
    r[0] = 10;
    TB_REQUIRE(tb_ntp_client_poll(&c, now, base_real, r, req) == 0);
    f = good(base_real + S, base_real + S);
    build_reply(req, &f, rep);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 5 * S, now, &res),
                TB_NTP_REJ_DELAY);
    /* A forged origin does not cancel the request: the real reply still counts. */
    r[0] = 11;
    TB_REQUIRE(tb_ntp_client_poll(&c, now, base_real, r, req) == 0);
    f = good(base_real + MS, base_real + MS);
    f.bad_origin = 1;
    build_reply(req, &f, rep);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 2 * MS, now, &res),
                TB_NTP_REJ_ORIGIN);
    f.bad_origin = 0;
    build_reply(req, &f, rep);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 2 * MS, now, &res),
                TB_NTP_ACCEPTED);
    TB_CHECK(res.sample != NULL);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, 47, base_real, now, &res), TB_NTP_REJ_MALFORMED);
    TB_CHECK_STR(tb_ntp_reject_name(TB_NTP_REJ_ORIGIN),
                 "origin timestamp does not match our request");
}

static void test_kod_rate_backs_off(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    fake_reply f = good(0, 0);
    f.stratum = 0;
    f.refid = 0x52415445; /* RATE */
    TB_CHECK_EQ(exchange(&c, 0, base_real, MS, 0, f, 0, &res, NULL), TB_NTP_REJ_KOD_RATE);
    TB_CHECK_EQ(c.poll, 1);
    TB_CHECK_EQ(c.burst_left, 0); /* the burst is over */
    TB_CHECK_EQ(tb_ntp_client_next_poll(&c), 2 * MS + 2 * S);
    /* A server asking for a longer poll gets it, within maxpoll. */
    f.poll = 3;
    TB_CHECK_EQ(exchange(&c, 2 * S, base_real, MS, 0, f, 0, &res, NULL), TB_NTP_REJ_KOD_RATE);
    TB_CHECK_EQ(c.poll, 3);
    f.poll = 12;
    TB_CHECK_EQ(exchange(&c, 10 * S, base_real, MS, 0, f, 0, &res, NULL), TB_NTP_REJ_KOD_RATE);
    TB_CHECK_EQ(c.poll, 4);
    TB_CHECK_STR(c.kiss, "RATE");
    TB_CHECK(c.state != TB_NTP_CLIENT_DEMOBILISED);
}

static void test_kod_deny_and_rstr_demobilise(void)
{
    uint32_t codes[] = {0x44454e59, 0x52535452};
    tb_ntp_reject want[] = {TB_NTP_REJ_KOD_DENY, TB_NTP_REJ_KOD_RSTR};
    for (int i = 0; i < 2; i++) {
        tb_ntp_client_config cfg = fast_config();
        tb_ntp_client c;
        tb_ntp_client_init(&c, &cfg, 0);
        tb_ntp_result res;
        fake_reply f = good(0, 0);
        f.stratum = 0;
        f.refid = codes[i];
        TB_CHECK_EQ(exchange(&c, 0, base_real, MS, 0, f, 0, &res, NULL), want[i]);
        TB_CHECK_EQ(c.state, TB_NTP_CLIENT_DEMOBILISED);
        TB_CHECK_EQ(tb_ntp_client_next_poll(&c), UINT64_MAX);
        uint8_t req[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN] = {0};
        TB_CHECK_EQ(tb_ntp_client_poll(&c, S, base_real, r, req), TB_ERR_STATE);
    }
}

static void test_unreachable_after_misses_and_recovery(void)
{
    tb_ntp_client_config cfg = fast_config();
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    uint8_t req[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN] = {0};
    uint64_t now = 0;
    /* unreach_after = 3: the 4th poll notices the 3rd miss. */
    for (int i = 0; i < 3; i++) {
        TB_REQUIRE(tb_ntp_client_poll(&c, now, base_real, r, req) == 0);
        TB_CHECK_EQ(c.state, TB_NTP_CLIENT_ACTIVE);
        now = tb_ntp_client_next_poll(&c);
    }
    TB_REQUIRE(tb_ntp_client_poll(&c, now, base_real, r, req) == 0);
    TB_CHECK_EQ(c.state, TB_NTP_CLIENT_UNREACHABLE);
    TB_CHECK_EQ(c.missed, 3);
    TB_CHECK_EQ(c.reach, 0);
    /* One good sample makes it reachable again. */
    tb_ntp_result res;
    now = tb_ntp_client_next_poll(&c);
    TB_CHECK_EQ(exchange(&c, now, base_real, MS, 0, good(0, 0), 0, &res, NULL), TB_NTP_ACCEPTED);
    TB_CHECK_EQ(c.state, TB_NTP_CLIENT_ACTIVE);
    TB_CHECK_EQ(c.missed, 0);
}

static void test_poll_rises_then_caps(void)
{
    tb_ntp_client_config cfg = fast_config(); /* burst 2, good_to_raise 2, polls 0..4 */
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    tb_ntp_result res;
    uint64_t now = 0;
    for (int i = 0; i < 20; i++) {
        TB_REQUIRE(exchange(&c, now, base_real + (int64_t)now, MS, 0, good(0, 0), 0, &res, NULL) ==
                   TB_NTP_ACCEPTED);
        now = tb_ntp_client_next_poll(&c);
    }
    TB_CHECK_EQ(c.poll, 4);
    TB_CHECK(c.poll <= cfg.maxpoll);
    tb_ntp_client_config bad = cfg;
    bad.minpoll = 5;
    TB_CHECK_EQ(tb_ntp_client_config_check(&bad), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_ntp_client_config_check(&cfg), 0);
}

/* An interleaved server as the draft describes it: it stamps a reply before sending, but the
 * reply leaves `late` later; it remembers the true send time under its receive timestamp and
 * tells it in the next reply when the request's origin names that receive timestamp. */
typedef struct xl_server {
    int64_t offset, owd, proc, late;
    uint64_t saved_rx; /* receive timestamp of the last request, as on the wire */
    int64_t saved_tx;  /* when that reply really left (server clock) */
    bool forget;       /* answer in basic mode whatever the request says */
} xl_server;

/* One poll at client real time t1 (monotonic now): the request, the server's reply, its
 * reception. Returns the verdict; *req_out the request as sent. */
static tb_ntp_reject xl_exchange(tb_ntp_client *c, xl_server *sv, uint64_t now, int64_t t1,
                                 tb_ntp_result *res, tb_ntp_packet *req_out)
{
    uint8_t req[TB_NTP_HEADER_LEN], rep[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN];
    next_rnd(r);
    if (tb_ntp_client_poll(c, now, t1, r, req) != 0)
        return TB_NTP_REJ_COUNT;
    tb_ntp_packet q;
    if (tb_ntp_packet_parse(req, sizeof(req), &q) != 0)
        return TB_NTP_REJ_COUNT;
    *req_out = q;
    int64_t t2 = t1 + sv->owd + sv->offset, stamped = t2 + sv->proc;
    tb_ntp_packet p = {.version = 4, .mode = 4, .stratum = 1, .precision = -20};
    p.reference_ts = tb_ntp_ts_from_unix_ns(t2 - 10 * S);
    p.receive_ts = tb_ntp_ts_from_unix_ns(t2);
    bool il = !sv->forget && q.origin_ts != 0 && q.origin_ts == sv->saved_rx &&
              q.receive_ts != q.transmit_ts;
    p.origin_ts = il ? q.receive_ts : q.transmit_ts;
    p.transmit_ts = tb_ntp_ts_from_unix_ns(il ? sv->saved_tx : stamped);
    tb_ntp_packet_write(&p, rep);
    sv->saved_rx = p.receive_ts;
    sv->saved_tx = stamped + sv->late;
    int64_t rtt = 2 * sv->owd + sv->proc + sv->late;
    return tb_ntp_client_receive(c, rep, sizeof(rep), t1 + rtt, now + (uint64_t)rtt, res);
}

/* The timestamp bookkeeping of interleaved mode: the first exchange is basic and its offset
 * leans by half the server's late send; the second request names the first reply's receive
 * timestamp and a cookie, and the interleaved reply gives the first exchange's exact numbers;
 * the packets re-check as evidence. */
static void test_xleave_bookkeeping(void)
{
    tb_ntp_client_config cfg = fast_config();
    cfg.xleave = true;
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    xl_server sv = {.offset = 2 * MS, .owd = 3 * MS, .proc = MS / 10, .late = MS / 2};
    tb_ntp_result res;
    tb_ntp_packet q1, q2;
    TB_REQUIRE(xl_exchange(&c, &sv, 0, base_real, &res, &q1) == TB_NTP_ACCEPTED);
    TB_CHECK_EQ(q1.origin_ts, 0); /* nothing to refer to yet: a basic request */
    TB_CHECK_EQ(q1.receive_ts, 0);
    TB_REQUIRE(res.sample != NULL);
    TB_CHECK(!res.sample->interleaved);
    TB_CHECK(llabs(res.sample->offset_ns - (2 * MS - MS / 4)) <= 1);
    TB_CHECK(llabs(res.sample->delay_ns - (6 * MS + MS / 2)) <= 2);
    uint64_t rx1 = sv.saved_rx;
    uint64_t mono1 = res.sample->mono_ns;
    int64_t t4_1 = res.sample->t4;

    uint64_t now = 200 * MS;
    TB_REQUIRE(xl_exchange(&c, &sv, now, base_real + (int64_t)now, &res, &q2) == TB_NTP_ACCEPTED);
    TB_CHECK_EQ(q2.origin_ts, rx1);
    TB_CHECK(q2.receive_ts != 0 && q2.receive_ts != q2.transmit_ts);
    TB_REQUIRE(res.sample != NULL); /* smaller delay than the basic sample */
    const tb_ntp_sample *s = res.sample;
    TB_CHECK(s->interleaved);
    TB_CHECK_EQ(c.n_interleaved, 1);
    /* The first exchange, measured right: T1, T4 and the monotonic time are its own. */
    TB_CHECK_EQ(s->t1, base_real);
    TB_CHECK_EQ(s->t4, t4_1);
    TB_CHECK_EQ(s->mono_ns, mono1);
    TB_CHECK(llabs(s->offset_ns - 2 * MS) <= 1);
    TB_CHECK(llabs(s->delay_ns - 6 * MS) <= 2);
    tb_ntp_packet rep;
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, s->offset_ns,
                                      s->delay_ns, &rep),
                0);
    TB_CHECK_EQ(rep.origin_ts, q2.receive_ts);
    TB_CHECK_EQ(tb_ntp_exchange_check(s->request, 48, s->response, 48, s->t4, s->offset_ns + 5,
                                      s->delay_ns, &rep),
                TB_ERR_VERIFY);
    uint8_t bad[48];
    memcpy(bad, s->request, 48);
    bad[39] ^= 1; /* another cookie: the reply no longer answers this request */
    TB_CHECK_EQ(
        tb_ntp_exchange_check(bad, 48, s->response, 48, s->t4, s->offset_ns, s->delay_ns, &rep),
        TB_ERR_VERIFY);
    memcpy(bad, s->request, 48);
    bad[27] ^= 1; /* T2 of the previous exchange one second off */
    TB_CHECK_EQ(
        tb_ntp_exchange_check(bad, 48, s->response, 48, s->t4, s->offset_ns, s->delay_ns, &rep),
        TB_ERR_VERIFY);
}

/* A server that forgets answers an interleaved request in basic mode: a basic sample of this
 * exchange. A reply echoing neither the transmit timestamp nor the cookie is rejected and the
 * request stays outstanding. After TB_NTP_XLEAVE_MAX_MISSED polls without a reply the client
 * starts over in basic mode; without xleave it never asks. */
static void test_xleave_fallbacks(void)
{
    tb_ntp_client_config cfg = fast_config();
    cfg.xleave = true;
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    xl_server sv = {.offset = -MS, .owd = MS, .late = MS / 10};
    tb_ntp_result res;
    tb_ntp_packet q;
    TB_REQUIRE(xl_exchange(&c, &sv, 0, base_real, &res, &q) == TB_NTP_ACCEPTED);
    sv.forget = true;
    TB_REQUIRE(xl_exchange(&c, &sv, S, base_real + S, &res, &q) == TB_NTP_ACCEPTED);
    TB_CHECK(q.origin_ts != 0); /* asked for interleaved mode */
    TB_CHECK_EQ(c.n_interleaved, 0);
    TB_CHECK_EQ(c.n_accepted, 2);

    /* Forged: the origin is our previous T2, neither cookie nor transmit timestamp. */
    uint8_t req[TB_NTP_HEADER_LEN], rep[TB_NTP_HEADER_LEN], r[TB_NTP_POLL_RND_LEN];
    next_rnd(r);
    TB_REQUIRE(tb_ntp_client_poll(&c, 2 * S, base_real + 2 * S, r, req) == 0);
    tb_ntp_packet p = {.version = 4, .mode = 4, .stratum = 1};
    p.origin_ts = tb_get_be64(req + 24);
    p.receive_ts = p.transmit_ts = tb_ntp_ts_from_unix_ns(base_real + 2 * S);
    tb_ntp_packet_write(&p, rep);
    TB_CHECK_EQ(tb_ntp_client_receive(&c, rep, sizeof(rep), base_real + 2 * S + MS,
                                      2 * S + (uint64_t)MS, &res),
                TB_NTP_REJ_ORIGIN);
    TB_CHECK(c.pending);

    /* Unanswered polls: interleaved requests go on for a while, then basic again. */
    unsigned interleaved = 0;
    for (int i = 0; i < 6; i++) {
        TB_REQUIRE(tb_ntp_client_poll(&c, (uint64_t)(3 + i) * S, base_real + (3 + i) * S, r, req) ==
                   0);
        interleaved += tb_get_be64(req + 24) != 0;
    }
    TB_CHECK_EQ(interleaved, TB_NTP_XLEAVE_MAX_MISSED - 1);
    TB_CHECK_EQ(tb_get_be64(req + 24), 0);
    TB_CHECK_EQ(tb_get_be64(req + 32), 0);

    cfg.xleave = false;
    tb_ntp_client_init(&c, &cfg, 0);
    sv.forget = false;
    for (int i = 0; i < 3; i++) {
        TB_REQUIRE(xl_exchange(&c, &sv, (uint64_t)i * S, base_real + i * S, &res, &q) ==
                   TB_NTP_ACCEPTED);
        TB_CHECK(q.origin_ts == 0 && q.receive_ts == 0);
    }
    TB_CHECK_EQ(c.n_interleaved, 0);
}

int main(void)
{
    TB_RUN(test_request_is_random_and_valid);
    TB_RUN(test_offset_and_delay);
    TB_RUN(test_exchange_check);
    TB_RUN(test_sent_corrects_t1);
    TB_RUN(test_filter_keeps_min_delay);
    TB_RUN(test_filter_releases_movement);
    TB_RUN(test_rejections_counted);
    TB_RUN(test_kod_rate_backs_off);
    TB_RUN(test_kod_deny_and_rstr_demobilise);
    TB_RUN(test_unreachable_after_misses_and_recovery);
    TB_RUN(test_poll_rises_then_caps);
    TB_RUN(test_xleave_bookkeeping);
    TB_RUN(test_xleave_fallbacks);
    return TB_DONE();
}
