#include "sources/ntp_driver.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "resolve/resolver.h"
#include "sources/nts_assoc.h"
#include "sources/udp.h"

typedef struct ntp_drv {
    tb_source *src;
    tb_ntp_client_config ccfg;
    tb_ntp_client client;
    bool have_client;
    tb_source_udp udp;
    tb_nts_assoc *nts;                  /* NULL for plain NTP */
    char ntp_where[TB_SOURCE_NAME_MAX]; /* NTS: where the last KE exchange sent us */
} ntp_drv;

static void drv_log(const ntp_drv *d, tb_log_level lvl, const char *what, const char *detail)
{
    const tb_source_id *id = tb_source_identity(d->src);
    tb_log_write(tb_source_env_of(d->src)->log, lvl, "%s %s%s%s: %s%s%s",
                 tb_source_kind_name(id->kind), id->name, id->address[0] ? " " : "", id->address,
                 what, detail ? ": " : "", detail ? detail : "");
}

static void begin(void *arg);
static void handle_reply(void *arg, const uint8_t *buf, size_t n, bool truncated, int64_t t4,
                         uint64_t mono);
static void nts_ready(void *arg, const char *ntp_where);

void tb_ntp_driver_client_config(const tb_source_config *cfg, tb_ntp_client_config *out)
{
    tb_ntp_client_config_default(out);
    out->minpoll = cfg->minpoll;
    out->maxpoll = cfg->maxpoll;
    out->unreach_after = cfg->unreach_after;
    out->xleave = cfg->xleave;
    /* The start-up burst is never slower than the configured minimum poll. */
    uint64_t minpoll_ns = (uint64_t)tb_ntp_log2_to_ns(cfg->minpoll);
    if (minpoll_ns < out->burst_interval_ns)
        out->burst_interval_ns = minpoll_ns;
}

static int ntp_create(tb_source *src, const tb_source_config *cfg, void **state)
{
    ntp_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return TB_ERR_NOMEM;
    d->src = src;
    tb_ntp_driver_client_config(cfg, &d->ccfg);
    const char *where =
        tb_source_identity(src)->address[0] ? tb_source_identity(src)->address : cfg->address;
    int err = tb_ntp_client_config_check(&d->ccfg);
    if (err == 0)
        err = tb_source_udp_init(&d->udp, src, where, 123,
                                 (uint64_t)tb_ntp_log2_to_ns(cfg->minpoll), begin, handle_reply, d);
    if (err == 0 && cfg->kind == TB_SOURCE_NTS)
        err = tb_nts_assoc_create(src, cfg, nts_ready, d, &d->nts);
    if (err < 0) {
        free(d);
        return err;
    }
    *state = d;
    return 0;
}

static void meas_of_sample(const tb_ntp_result *res, tb_source_meas *m)
{
    const tb_ntp_sample *s = res->sample;
    *m = (tb_source_meas){
        .mono_ns = s->mono_ns,
        .real_ns = s->t4,
        .sent_real_ns = s->t1,
        .offset_ns = s->offset_ns,
        .delay_ns = s->delay_ns,
        .error_ns = res->error_ns,
        .stratum = s->stratum,
        .refid = s->refid,
        .request = s->request,
        .request_len = sizeof(s->request),
        .response = s->response,
        .response_len = sizeof(s->response),
    };
}

/* An authentic reply (it echoed our request) from a server that says it is unsynchronised
 * (stratum 16, leap 3, a kiss code other than RATE, DENY, RSTR): delivered with its packets so
 * that the mesh can call the source unsynchronised; its numbers mean nothing and are 0. */
static void meas_unsynchronised(const tb_ntp_client *c, const uint8_t *buf, size_t n, int64_t t4,
                                uint64_t mono, tb_source_meas *m)
{
    *m = (tb_source_meas){
        .mono_ns = mono,
        .real_ns = t4,
        .sent_real_ns = c->t1,
        .delay_ns = t4 > c->t1 ? t4 - c->t1 : 0,
        .stratum = c->last_reply.stratum,
        .refid = c->last_reply.refid,
        .request = c->request,
        .request_len = sizeof(c->request),
        .response = buf,
        .response_len = n < TB_NTP_HEADER_LEN ? n : TB_NTP_HEADER_LEN,
    };
}

bool tb_ntp_driver_reply(tb_ntp_client *c, const uint8_t *buf, size_t n, int64_t t4, uint64_t mono,
                         tb_source_meas *out, tb_ntp_reject *why)
{
    tb_ntp_result res;
    tb_ntp_reject r = tb_ntp_client_receive(c, buf, n, t4, mono, &res);
    *why = r;
    if (r == TB_NTP_ACCEPTED && res.sample) {
        meas_of_sample(&res, out);
        return true;
    }
    if (r == TB_NTP_REJ_STRATUM || r == TB_NTP_REJ_LEAP || r == TB_NTP_REJ_KOD_OTHER) {
        meas_unsynchronised(c, buf, n, t4, mono, out);
        return true;
    }
    return false;
}

/* NTS: only an authenticated reply reaches the NTP client. One whose origin is not our
 * request's goes to the client unchecked, which rejects it without cancelling the request
 * (adr/0007), so a forgery costs no NTS work and cannot trigger a re-key. */
static bool nts_admits(ntp_drv *d, const uint8_t *buf, size_t n)
{
    if (n >= TB_NTP_HEADER_LEN && tb_get_be64(buf + 24) != d->client.xmt)
        return true;
    tb_nts_verdict v = tb_nts_assoc_check(d->nts, buf, n);
    if (v == TB_NTS_OK)
        return true;
    drv_log(d, v == TB_NTS_NAK ? TB_LOG_INFO : TB_LOG_DEBUG, "reply rejected",
            tb_nts_verdict_name(v));
    return false;
}

static void handle_reply(void *arg, const uint8_t *buf, size_t n, bool truncated, int64_t t4,
                         uint64_t mono)
{
    ntp_drv *d = arg;
    (void)truncated; /* a reply over TB_SOURCE_UDP_MAX fails the parser's bounds anyway */
    if (d->nts && !nts_admits(d, buf, n))
        return;
    tb_source_meas m;
    tb_ntp_reject r;
    bool got = tb_ntp_driver_reply(&d->client, buf, n, t4, mono, &m, &r);
    if (r == TB_NTP_ACCEPTED) {
        if (got)
            tb_source_deliver(d->src, &m);
        else if (tb_source_state_of(d->src) != TB_SOURCE_REACHABLE)
            tb_source_set_state(d->src, TB_SOURCE_REACHABLE, "measuring");
        return;
    }
    drv_log(d, r == TB_NTP_REJ_KOD_RATE ? TB_LOG_INFO : TB_LOG_DEBUG, "reply rejected",
            tb_ntp_reject_name(r));
    if (got) {
        tb_source_deliver(d->src, &m);
        tb_source_set_state(d->src, TB_SOURCE_REACHABLE,
                            "answers, but says it is unsynchronised (%s)", tb_ntp_reject_name(r));
    }
    if (d->client.state == TB_NTP_CLIENT_DEMOBILISED) {
        tb_source_udp_stop(&d->udp);
        tb_source_schedule(d->src, UINT64_MAX);
        tb_source_set_state(d->src, TB_SOURCE_DEMOBILISED, "kiss-o'-death %s from the server",
                            d->client.kiss);
    } else if (r == TB_NTP_REJ_KOD_RATE) {
        tb_source_schedule(d->src, tb_ntp_client_next_poll(&d->client));
    }
}

/* The address is known and the socket open: start polling now. */
static void begin(void *arg)
{
    ntp_drv *d = arg;
    uint64_t now = tb_clock_mono(tb_source_env_of(d->src)->clock);
    /* NTS re-keys keep the association's poll state and counters. */
    if (!d->nts || !d->have_client)
        tb_ntp_client_init(&d->client, &d->ccfg, now);
    d->have_client = true;
    tb_source_schedule(d->src, tb_ntp_client_next_poll(&d->client));
}

/* A KE exchange gave keys and cookies: open (or keep) the NTP socket and poll. */
static void nts_ready(void *arg, const char *ntp_where)
{
    ntp_drv *d = arg;
    if (d->udp.have_addr && strcmp(ntp_where, d->ntp_where) == 0) {
        begin(d);
        return;
    }
    snprintf(d->ntp_where, sizeof(d->ntp_where), "%s", ntp_where);
    tb_source_udp_stop(&d->udp);
    uint64_t retry = d->udp.retry_ns;
    if (tb_source_udp_init(&d->udp, d->src, ntp_where, TB_NTP_PORT, retry, begin, handle_reply, d) <
            0 ||
        tb_source_udp_start(&d->udp) < 0) {
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "cannot use the NTP server %s",
                            ntp_where);
        tb_source_schedule(d->src, tb_clock_mono(tb_source_env_of(d->src)->clock) + retry);
    }
}

static void resolve(ntp_drv *d)
{
    d->have_client = false;
    tb_source_udp_resolve(&d->udp);
}

static int ntp_start(tb_source *src, void *state)
{
    ntp_drv *d = state;
    d->have_client = false;
    if (d->nts) {
        tb_nts_assoc_rekey(d->nts);
        return 0;
    }
    return tb_source_udp_start(&d->udp);
}

static void ntp_stop(tb_source *src, void *state)
{
    ntp_drv *d = state;
    if (d->nts)
        tb_nts_assoc_stop(d->nts);
    tb_source_udp_stop(&d->udp);
}

static void note_unreachable(ntp_drv *d)
{
    const tb_ntp_client *c = &d->client;
    tb_nts_stats st = {.last = TB_NTS_OK};
    if (d->nts)
        tb_nts_assoc_stats(d->nts, &st);
    if (st.last != TB_NTS_OK)
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE,
                            "no valid reply to %u polls (last reply: %s)", c->missed,
                            tb_nts_verdict_name(st.last));
    else if (c->last_reject != TB_NTP_ACCEPTED && c->n_received > 0)
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE,
                            "no valid reply to %u polls (last reply: %s)", c->missed,
                            tb_ntp_reject_name(c->last_reject));
    else
        tb_source_set_state(d->src, TB_SOURCE_UNREACHABLE, "no reply to %u polls", c->missed);
}

static void ntp_poll(tb_source *src, void *state)
{
    ntp_drv *d = state;
    const tb_source_env *env = tb_source_env_of(src);
    /* NTS: no keys or no cookie left means a new KE exchange first; it schedules the poll. */
    if (d->nts && !tb_nts_assoc_ready(d->nts)) {
        tb_nts_assoc_rekey(d->nts);
        return;
    }
    if (!d->have_client) { /* NTS too: the server the KE exchange named failed to open */
        if (!d->udp.resolving)
            resolve(d);
        return;
    }
    uint8_t rnd[TB_NTP_POLL_RND_LEN + TB_NTS_UID_LEN + TB_NTS_NONCE_LEN];
    uint8_t req[TB_NTP_HEADER_LEN], wrapped[TB_NTS_REQUEST_MAX];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        drv_log(d, TB_LOG_ERROR, "getrandom failed", strerror(errno));
        tb_source_schedule(src, tb_clock_mono(env->clock) + TB_NS_PER_SEC);
        return;
    }
    uint64_t now = tb_clock_mono(env->clock);
    int64_t t1 = tb_clock_real(env->clock);
    if (tb_ntp_client_poll(&d->client, now, t1, rnd, req) < 0)
        return; /* demobilised */
    const uint8_t *out = req;
    size_t out_len = sizeof(req);
    if (d->nts && tb_nts_assoc_wrap(d->nts, req, rnd + TB_NTP_POLL_RND_LEN, wrapped,
                                    sizeof(wrapped), &out_len) < 0)
        out_len = 0; /* cannot happen once ready; the poll counts as missed */
    else if (d->nts)
        out = wrapped;
    if (d->nts) /* sealing took microseconds that belong to neither leg */
        tb_ntp_client_sent(&d->client, tb_clock_real(env->clock));
    if (out_len > 0 && tb_source_udp_send(&d->udp, out, out_len) < 0)
        drv_log(d, TB_LOG_DEBUG, "send failed", strerror(errno));
    if (d->client.state == TB_NTP_CLIENT_UNREACHABLE &&
        tb_source_state_of(src) != TB_SOURCE_UNREACHABLE) {
        note_unreachable(d);
        if (!d->udp.numeric && !d->nts) { /* perhaps the name points elsewhere now */
            resolve(d);
            return;
        }
    }
    tb_source_schedule(src, tb_ntp_client_next_poll(&d->client));
}

static void ntp_destroy(void *state)
{
    ntp_drv *d = state;
    tb_nts_assoc_destroy(d->nts);
    free(d);
}

static void ntp_describe(const void *state, char *buf, size_t len)
{
    const ntp_drv *d = state;
    if (!d->have_client) {
        snprintf(buf, len, "%s", tb_source_udp_status(&d->udp));
        return;
    }
    const tb_ntp_client *c = &d->client;
    uint64_t rejected = 0;
    for (int i = 1; i < TB_NTP_REJ_COUNT; i++)
        rejected += c->rejects[i];
    int n = snprintf(
        buf, len, "poll 2^%d s, reach %03o, sent %llu, accepted %llu, rejected %llu%s%s", c->poll,
        c->reach, (unsigned long long)c->n_sent, (unsigned long long)c->n_accepted,
        (unsigned long long)rejected, c->last_reject ? ", last: " : "",
        c->last_reject ? tb_ntp_reject_name(c->last_reject) : "");
    if (!d->nts || n < 0 || (size_t)n >= len)
        return;
    tb_nts_stats st;
    tb_nts_assoc_stats(d->nts, &st);
    uint64_t nts_rejected = 0;
    for (int i = 1; i < TB_NTS_VERDICT_COUNT; i++)
        nts_rejected += st.rejects[i];
    snprintf(buf + n, len - (size_t)n, "; NTS: %zu cookies, %llu KE, %llu NAK, %llu rejected%s%s",
             st.cookies, (unsigned long long)st.ke_ok, (unsigned long long)st.naks,
             (unsigned long long)nts_rejected, st.last != TB_NTS_OK ? ", last: " : "",
             st.last != TB_NTS_OK ? tb_nts_verdict_name(st.last) : "");
}

static const tb_source_driver ntp_driver = {
    .kind = TB_SOURCE_NTP,
    .create = ntp_create,
    .start = ntp_start,
    .stop = ntp_stop,
    .poll = ntp_poll,
    .destroy = ntp_destroy,
    .describe = ntp_describe,
};

/* The same driver: create sees the kind and adds the NTS association. */
static const tb_source_driver nts_driver = {
    .kind = TB_SOURCE_NTS,
    .create = ntp_create,
    .start = ntp_start,
    .stop = ntp_stop,
    .poll = ntp_poll,
    .destroy = ntp_destroy,
    .describe = ntp_describe,
};

const tb_source_driver *tb_ntp_driver(void)
{
    return &ntp_driver;
}

const tb_source_driver *tb_nts_driver(void)
{
    return &nts_driver;
}

const tb_nts_assoc *tb_ntp_driver_nts(const tb_source *s)
{
    const ntp_drv *d = tb_source_driver_state(s);
    return d ? d->nts : NULL;
}

const tb_ntp_client *tb_ntp_driver_client(const tb_source *s)
{
    const ntp_drv *d = tb_source_driver_state(s);
    return d && d->have_client ? &d->client : NULL;
}
