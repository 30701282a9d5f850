#include "sources/rt_driver.h"

#include <errno.h>
#include <ev.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roughtime/codec.h"
#include "resolve/resolver.h"
#include "sources/rt_tcp.h"
#include "sources/udp.h"

const uint32_t tb_rt_driver_versions[TB_RT_DRIVER_NVERSIONS] = {
    TB_RT_VER_RFC, TB_RT_VER_DRAFT08, TB_RT_VER_DRAFT11, TB_RT_VER_DRAFT12};

#define RT_MAX_ATTEMPTS 16 /* per poll; the backoff allows ~9 in a 64 s poll */
#define RT_MAGIC 0x52544452U

/* What identifies one attempt: its request is rebuilt from the nonce when needed. */
typedef struct rt_attempt {
    uint8_t nonce[32];
    uint8_t rand[32]; /* with has_rand: nonce = H(previous response ‖ rand) */
    bool has_rand;
    int64_t sent_real;
    uint64_t sent_mono;
} rt_attempt;

typedef struct rt_drv {
    uint32_t magic;
    tb_source *src;
    uint8_t pubkey[32];
    int minpoll, maxpoll;
    unsigned unreach_after;
    tb_source_udp udp; /* with tcp: resolution only */
    bool tcp;          /* the address was tcp://host:port */
    tb_rt_tcp conn;
    /* The current poll ("round"). */
    bool round_active, round_done;
    uint64_t round_end; /* monotonic: the next poll */
    rt_attempt att[RT_MAX_ATTEMPTS];
    unsigned natt;
    bool outstanding;   /* the last attempt has no valid response yet */
    uint64_t next_send; /* monotonic: earliest retry */
    unsigned good_streak;
    tb_rt_driver_stats st;
    tb_rt_query q; /* scratch, rebuilt per attempt */
    /* The last verified response: the next nonce is chained to it (RFC 10049's measurement
     * sequence), so two of our responses that contradict causality prove the server lied. */
    uint8_t prev[TB_RT_RESPONSE_BUF];
    size_t prev_len;
} rt_drv;

static void drv_log(const rt_drv *d, tb_log_level lvl, const char *what, const char *detail)
{
    const tb_source_id *id = tb_source_identity(d->src);
    tb_log_write(tb_source_env_of(d->src)->log, lvl, "roughtime %s%s%s: %s%s%s", id->name,
                 id->address[0] ? " " : "", id->address, what, detail ? ": " : "",
                 detail ? detail : "");
}

static uint64_t log2_ns(int e)
{
    return e >= 0 ? TB_NS_PER_SEC << e : TB_NS_PER_SEC >> -e;
}

uint64_t tb_rt_driver_backoff_ns(int minpoll, int maxpoll, unsigned failures)
{
    uint64_t base = log2_ns(minpoll) / 4;
    if (base > TB_NS_PER_SEC)
        base = TB_NS_PER_SEC;
    uint64_t cap = log2_ns(maxpoll);
    double w = (double)base;
    for (unsigned i = 0; i < failures && w < (double)cap; i++)
        w *= 1.5;
    return w < (double)cap ? (uint64_t)w : cap;
}

/* RFC 10049 §5: wait 1 s × 1.5^(n−1) after the n-th failure; here n = failures + 1, because
 * the attempt just sent fails if this wait passes without a valid response. */
static uint64_t backoff_ns(const rt_drv *d)
{
    return tb_rt_driver_backoff_ns(d->minpoll, d->maxpoll, d->st.failures);
}

int tb_rt_driver_poll_after(int poll, int maxpoll, bool unsynced, unsigned *streak)
{
    if (unsynced) {
        *streak = 0;
        return poll;
    }
    if (++*streak >= 4 && poll < maxpoll) {
        *streak = 0;
        return poll + 1;
    }
    return poll;
}

void tb_rt_driver_result(const tb_rt_query *q, int64_t sent_real_ns, int64_t delay_ns,
                         bool unsynced, tb_source_meas *m)
{
    m->sent_real_ns = sent_real_ns;
    m->offset_ns = unsynced ? 0 : q->midp_us * 1000 - (sent_real_ns + delay_ns / 2);
    m->delay_ns = delay_ns;
    m->error_ns = unsynced ? 0 : (int64_t)q->radi_us * 1000 + delay_ns / 2 + delay_ns % 2;
    m->stratum = -1;
    m->refid = 0;
    m->request = q->request;
    m->request_len = q->request_len;
    m->response = q->response;
    m->response_len = q->response_len;
}

static void begin(void *arg);
static void handle_response(void *arg, const uint8_t *buf, size_t n, bool truncated, int64_t t4,
                            uint64_t mono);
static void tcp_sent(void *arg, int64_t real, uint64_t mono);
static void tcp_response(void *arg, const uint8_t *p, size_t n, int64_t real, uint64_t mono);

static int rt_create(tb_source *src, const tb_source_config *cfg, void **state)
{
    if (!cfg->has_public_key)
        return TB_ERR_INVAL;
    rt_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return TB_ERR_NOMEM;
    d->magic = RT_MAGIC;
    d->src = src;
    memcpy(d->pubkey, cfg->public_key, sizeof(d->pubkey));
    d->minpoll = cfg->minpoll;
    d->maxpoll = cfg->maxpoll < cfg->minpoll ? cfg->minpoll : cfg->maxpoll;
    d->unreach_after = cfg->unreach_after ? cfg->unreach_after : 1;
    d->st.poll = d->minpoll;
    const char *where =
        tb_source_identity(src)->address[0] ? tb_source_identity(src)->address : cfg->address;
    d->tcp = strncmp(cfg->address, TB_RT_TCP_PREFIX, strlen(TB_RT_TCP_PREFIX)) == 0;
    if (d->tcp && where == cfg->address)
        where += strlen(TB_RT_TCP_PREFIX);
    tb_rt_tcp_init(&d->conn, src, tcp_sent, tcp_response, d);
    int err = tb_source_udp_init(&d->udp, src, where, 2002, log2_ns(d->minpoll), begin,
                                 handle_response, d);
    d->udp.addr_only = d->tcp;
    if (err < 0) {
        free(d);
        return err;
    }
    *state = d;
    return 0;
}

/* An authentic response with RADI 0xffffffff (unsynced) says the server's clock is not
 * synchronised: it is delivered with its packets so that the mesh can call the source
 * unsynchronised, with offset and bound 0 (its time means nothing; adr/0006). */
static void deliver(rt_drv *d, const rt_attempt *a, int64_t t4, uint64_t mono, bool unsynced)
{
    const tb_rt_query *q = &d->q;
    int64_t delay = mono > a->sent_mono ? (int64_t)(mono - a->sent_mono) : 0;
    tb_source_meas m = {.mono_ns = mono, .real_ns = t4, .rand = a->has_rand ? a->rand : NULL};
    tb_rt_driver_result(q, a->sent_real, delay, unsynced, &m);
    if (q->response_len <= sizeof(d->prev)) {
        memcpy(d->prev, q->response, q->response_len);
        d->prev_len = q->response_len;
    }
    tb_source_deliver(d->src, &m);
}

/* Verifies a response against the attempts of this poll, newest first (a retry's response
 * usually answers the newest). Returns the attempt it answers (*why TB_RT_OK, or TB_RT_UNSYNCED
 * for an authentic response without a time), or NULL with *why set. */
static const rt_attempt *match(rt_drv *d, const uint8_t *buf, size_t n, int64_t t4,
                               tb_rt_reason *why)
{
    *why = TB_RT_BAD_NONCE;
    for (unsigned i = d->natt; i-- > 0;) {
        const rt_attempt *a = &d->att[i];
        if (tb_rt_query_init(&d->q, d->pubkey, tb_rt_driver_versions, TB_RT_DRIVER_NVERSIONS,
                             a->nonce, a->sent_real) < 0)
            return NULL;
        if (tb_rt_verify(&d->q, buf, n, t4, why) == 0 || *why == TB_RT_UNSYNCED)
            return a;
        if (*why != TB_RT_BAD_NONCE)
            return NULL; /* it answered this attempt (or none): a real rejection */
    }
    return NULL;
}

static void reject(rt_drv *d, tb_rt_reason why)
{
    d->st.rejects[why]++;
    d->st.last_reject = why;
    drv_log(d, TB_LOG_DEBUG, "response rejected", tb_rt_reason_name(why));
    if (tb_source_state_of(d->src) == TB_SOURCE_STARTING)
        tb_source_set_state(d->src, TB_SOURCE_STARTING, "response rejected: %s",
                            tb_rt_reason_name(why));
}

static void handle_response(void *arg, const uint8_t *buf, size_t n, bool truncated, int64_t t4,
                            uint64_t mono)
{
    rt_drv *d = arg;
    d->st.received++;
    if (!d->round_active || d->natt == 0 || d->round_done) {
        d->st.late++;
        return;
    }
    tb_rt_reason why = TB_RT_BAD_FORMAT;
    const rt_attempt *a = truncated ? NULL : match(d, buf, n, t4, &why);
    if (!a) {
        reject(d, why);
        return;
    }
    d->st.failures = 0; /* the RFC resets the backoff only on a properly signed response */
    d->st.missed = 0;
    d->outstanding = false;
    d->round_done = true;
    bool unsynced = why == TB_RT_UNSYNCED;
    if (unsynced) {
        d->st.unsynced++;
        d->st.last_reject = TB_RT_UNSYNCED;
        drv_log(d, TB_LOG_INFO, "server clock unsynchronised", "RADI 0xffffffff");
    } else {
        d->st.accepted++;
        d->st.version = d->q.version;
    }
    d->st.poll = tb_rt_driver_poll_after(d->st.poll, d->maxpoll, unsynced, &d->good_streak);
    deliver(d, a, t4, mono, unsynced);
    tb_source_set_state(d->src, TB_SOURCE_REACHABLE, "%s",
                        unsynced ? "answers, but says it is unsynchronised (RADI 0xffffffff)"
                                 : "measuring");
    tb_source_schedule(d->src, d->round_end);
}

/* TCP: the request went out only now (after the connection was set up), and the newest attempt
 * is the one on the connection: its T1 is now, so the delay holds no handshake. */
static void tcp_sent(void *arg, int64_t real, uint64_t mono)
{
    rt_drv *d = arg;
    if (d->natt == 0)
        return;
    d->att[d->natt - 1].sent_real = real;
    d->att[d->natt - 1].sent_mono = mono;
}

static void tcp_response(void *arg, const uint8_t *p, size_t n, int64_t real, uint64_t mono)
{
    handle_response(arg, p, n, false, real, mono);
}

/* The address is known and the socket open: poll now. */
static void begin(void *arg)
{
    rt_drv *d = arg;
    d->round_active = false;
    tb_source_schedule(d->src, tb_clock_mono(tb_source_env_of(d->src)->clock));
}

static int rt_start(tb_source *src, void *state)
{
    rt_drv *d = state;
    d->round_active = false;
    return tb_source_udp_start(&d->udp);
}

static void rt_stop(tb_source *src, void *state)
{
    rt_drv *d = state;
    d->round_active = false;
    tb_rt_tcp_close(&d->conn);
    tb_source_udp_stop(&d->udp);
}

/* The poll ended without a valid response. Returns false when the driver went to resolve the
 * name again (the poll is then driven by the resolution). */
static bool missed_poll(rt_drv *d)
{
    d->st.missed++;
    d->good_streak = 0;
    if (d->st.missed < d->unreach_after || tb_source_state_of(d->src) == TB_SOURCE_UNREACHABLE)
        return true;
    d->st.poll = d->minpoll;
    if (d->st.last_reject != TB_RT_OK && d->st.received > 0)
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE,
                            "no valid response to %u polls (last response: %s)", d->st.missed,
                            tb_rt_reason_name(d->st.last_reject));
    else if (d->tcp && d->conn.last_error[0])
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "no response to %u polls (last: %s)",
                            d->st.missed, d->conn.last_error);
    else
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "no response to %u polls", d->st.missed);
    if (d->udp.numeric)
        return true;
    tb_source_udp_resolve(&d->udp); /* perhaps the name points elsewhere now */
    return false;
}

static void send_attempt(rt_drv *d, uint64_t now)
{
    const tb_source_env *env = tb_source_env_of(d->src);
    if (d->outstanding)
        d->st.failures++;
    rt_attempt *a = &d->att[d->natt];
    a->has_rand = d->prev_len > 0;
    if (a->has_rand) {
        randombytes_buf(a->rand, sizeof(a->rand));
        tb_rt_chain_nonce(d->prev, d->prev_len, a->rand, a->nonce, sizeof(a->nonce));
    } else {
        randombytes_buf(a->nonce, sizeof(a->nonce));
    }
    a->sent_real = tb_clock_real(env->clock);
    a->sent_mono = tb_clock_mono(env->clock);
    if (tb_rt_query_init(&d->q, d->pubkey, tb_rt_driver_versions, TB_RT_DRIVER_NVERSIONS, a->nonce,
                         a->sent_real) < 0) {
        drv_log(d, TB_LOG_ERROR, "cannot build a request", NULL);
        return;
    }
    d->natt++;
    d->outstanding = true;
    d->st.sent++;
    d->next_send = now + backoff_ns(d);
    int err = d->tcp ? tb_rt_tcp_request(&d->conn, &d->udp.addr, d->q.request, d->q.request_len,
                                         d->next_send - now)
                     : tb_source_udp_send(&d->udp, d->q.request, d->q.request_len);
    if (err < 0)
        drv_log(d, TB_LOG_DEBUG, "send failed", strerror(errno));
}

static void rt_poll(tb_source *src, void *state)
{
    rt_drv *d = state;
    if (!d->udp.have_addr) {
        if (!d->udp.resolving)
            tb_source_udp_resolve(&d->udp);
        return;
    }
    uint64_t now = tb_clock_mono(tb_source_env_of(src)->clock);
    if (!d->round_active || now >= d->round_end) {
        if (d->round_active && !d->round_done && !missed_poll(d))
            return;
        d->round_active = true;
        d->round_done = false;
        d->natt = 0;
        d->round_end = now + log2_ns(d->st.poll);
    }
    bool sending = !d->round_done && d->natt < RT_MAX_ATTEMPTS;
    if (sending && now >= d->next_send)
        send_attempt(d, now);
    uint64_t at = d->round_end;
    if (sending && d->natt < RT_MAX_ATTEMPTS && d->next_send < at)
        at = d->next_send;
    tb_source_schedule(src, at);
}

static void rt_destroy(void *state)
{
    rt_drv *d = state;
    sodium_memzero(&d->q, sizeof(d->q));
    free(d);
}

static void rt_describe(const void *state, char *buf, size_t len)
{
    const rt_drv *d = state;
    if (!d->udp.have_addr) {
        snprintf(buf, len, "%s", tb_source_udp_status(&d->udp));
        return;
    }
    uint64_t rejected = 0;
    for (int i = 1; i < TB_RT_REASON_COUNT; i++)
        rejected += d->st.rejects[i];
    int n = snprintf(buf, len, "poll 2^%d s, sent %llu, accepted %llu, rejected %llu%s%s%s%s",
                     d->st.poll, (unsigned long long)d->st.sent, (unsigned long long)d->st.accepted,
                     (unsigned long long)rejected, d->st.last_reject ? ", last: " : "",
                     d->st.last_reject ? tb_rt_reason_name(d->st.last_reject) : "",
                     d->st.version ? ", version " : "",
                     d->st.version ? tb_rt_version_name(d->st.version) : "");
    if (d->tcp && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "; TCP: %llu connections, %llu failed%s%s",
                 (unsigned long long)d->conn.n_connects, (unsigned long long)d->conn.n_failed,
                 d->conn.last_error[0] ? ", last: " : "", d->conn.last_error);
}

static const tb_source_driver rt_driver = {
    .kind = TB_SOURCE_ROUGHTIME,
    .create = rt_create,
    .start = rt_start,
    .stop = rt_stop,
    .poll = rt_poll,
    .destroy = rt_destroy,
    .describe = rt_describe,
};

const tb_source_driver *tb_rt_driver(void)
{
    return &rt_driver;
}

int tb_rt_driver_stats_get(const tb_source *s, tb_rt_driver_stats *out)
{
    const rt_drv *d = tb_source_driver_state(s);
    if (tb_source_identity(s)->kind != TB_SOURCE_ROUGHTIME || !d || d->magic != RT_MAGIC)
        return TB_ERR_INVAL;
    *out = d->st;
    out->kernel_ts = d->udp.n_kernel_ts;
    out->clock_ts = d->udp.n_clock_ts;
    out->tcp = d->tcp;
    out->tcp_connects = d->conn.n_connects;
    out->tcp_failed = d->conn.n_failed;
    return 0;
}
