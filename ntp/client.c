#include "ntp/client.h"

#include <string.h>

#include "common/bytes.h"

#define NS_PER_S INT64_C(1000000000)
/* RFC 5905 frequency tolerance PHI: 15 ppm. */
#define PHI_PPM 15

static const char *const reject_names[TB_NTP_REJ_COUNT] = {
    [TB_NTP_ACCEPTED] = "accepted",
    [TB_NTP_REJ_MALFORMED] = "malformed packet",
    [TB_NTP_REJ_VERSION] = "unsupported version",
    [TB_NTP_REJ_MODE] = "not a server reply (mode)",
    [TB_NTP_REJ_UNEXPECTED] = "no request outstanding (duplicate or late reply)",
    [TB_NTP_REJ_ORIGIN] = "origin timestamp does not match our request",
    [TB_NTP_REJ_KOD_RATE] = "kiss-o'-death RATE (backing off)",
    [TB_NTP_REJ_KOD_DENY] = "kiss-o'-death DENY (demobilised)",
    [TB_NTP_REJ_KOD_RSTR] = "kiss-o'-death RSTR (demobilised)",
    [TB_NTP_REJ_KOD_OTHER] = "kiss-o'-death (other code)",
    [TB_NTP_REJ_STRATUM] = "stratum 16 or more (server unsynchronised)",
    [TB_NTP_REJ_LEAP] = "leap indicator unsynchronised",
    [TB_NTP_REJ_ROOT_DELAY] = "root delay too large",
    [TB_NTP_REJ_ROOT_DISP] = "root dispersion too large",
    [TB_NTP_REJ_TIMESTAMPS] = "insane server timestamps",
    [TB_NTP_REJ_DELAY] = "negative or excessive round-trip delay",
};

const char *tb_ntp_reject_name(tb_ntp_reject r)
{
    if ((unsigned)r >= TB_NTP_REJ_COUNT)
        return "unknown";
    return reject_names[r];
}

void tb_ntp_client_config_default(tb_ntp_client_config *cfg)
{
    *cfg = (tb_ntp_client_config){
        .minpoll = 6,
        .maxpoll = 10,
        .burst = 4,
        .burst_interval_ns = 2 * (uint64_t)NS_PER_S,
        .unreach_after = 4,
        .good_to_raise = 4,
        .max_root_delay_ns = 3 * NS_PER_S,
        .max_root_disp_ns = 3 * NS_PER_S,
        .max_delay_ns = 3 * NS_PER_S,
        .local_precision_ns = TB_NTP_LOCAL_PRECISION_NS,
    };
}

int tb_ntp_client_config_check(const tb_ntp_client_config *cfg)
{
    if (cfg->minpoll < TB_NTP_POLL_MIN || cfg->maxpoll > TB_NTP_POLL_MAX ||
        cfg->minpoll > cfg->maxpoll)
        return TB_ERR_INVAL;
    if (cfg->unreach_after < 1 || cfg->unreach_after > 64 || cfg->burst > 16)
        return TB_ERR_INVAL;
    if (cfg->burst_interval_ns == 0 || cfg->max_delay_ns <= 0 || cfg->max_root_delay_ns < 0 ||
        cfg->max_root_disp_ns < 0 || cfg->local_precision_ns < 0)
        return TB_ERR_INVAL;
    return 0;
}

void tb_ntp_client_init(tb_ntp_client *c, const tb_ntp_client_config *cfg, uint64_t now)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    c->poll = cfg->minpoll;
    c->burst_left = cfg->burst;
    c->next_poll = now;
}

uint64_t tb_ntp_client_next_poll(const tb_ntp_client *c)
{
    return c->state == TB_NTP_CLIENT_DEMOBILISED ? UINT64_MAX : c->next_poll;
}

static void note_poll_outcome(tb_ntp_client *c)
{
    if (c->n_sent == 0 || c->sample_in_poll)
        return;
    c->missed++;
    c->good = 0;
    if (c->missed >= c->cfg.unreach_after && c->state == TB_NTP_CLIENT_ACTIVE) {
        c->state = TB_NTP_CLIENT_UNREACHABLE;
        /* Come back quickly once the server answers again. */
        c->poll = c->cfg.minpoll;
    }
}

/* The cookie an interleaved request carries in its receive field: distinct from the transmit
 * timestamp (a server tells the modes apart by it) and from zero (no cookie). */
static uint64_t xleave_cookie(uint64_t rnd, uint64_t xmt)
{
    if (rnd == xmt)
        rnd ^= 1;
    return rnd ? rnd : ~xmt;
}

int tb_ntp_client_poll(tb_ntp_client *c, uint64_t now, int64_t t1,
                       const uint8_t rnd[TB_NTP_POLL_RND_LEN], uint8_t out[TB_NTP_HEADER_LEN])
{
    if (c->state == TB_NTP_CLIENT_DEMOBILISED)
        return TB_ERR_STATE;
    note_poll_outcome(c);
    c->reach = (uint8_t)(c->reach << 1);
    c->sample_in_poll = false;

    tb_ntp_packet req = {.version = 4, .mode = TB_NTP_MODE_CLIENT, .poll = (int8_t)c->poll};
    req.transmit_ts = tb_get_be64(rnd);
    c->xmt_il = 0;
    if (c->cfg.xleave && c->have_prev && c->prev_age < TB_NTP_XLEAVE_MAX_MISSED) {
        req.origin_ts = c->prev_rx_ts;
        req.receive_ts = xleave_cookie(tb_get_be64(rnd + 8), req.transmit_ts);
        c->xmt_il = req.receive_ts;
    }
    c->prev_age++;
    tb_ntp_packet_write(&req, out);
    memcpy(c->request, out, TB_NTP_HEADER_LEN);
    c->xmt = req.transmit_ts;
    c->t1 = t1;
    c->pending = true;
    c->n_sent++;

    if (c->burst_left > 0) {
        c->burst_left--;
        c->next_poll = now + c->cfg.burst_interval_ns;
    } else {
        c->next_poll = now + (uint64_t)tb_ntp_log2_to_ns(c->poll);
    }
    return 0;
}

void tb_ntp_client_sent(tb_ntp_client *c, int64_t t1)
{
    if (c->pending)
        c->t1 = t1;
}

static tb_ntp_reject handle_kiss(tb_ntp_client *c, const tb_ntp_packet *pkt, uint64_t now)
{
    for (int i = 0; i < 4; i++) {
        unsigned char ch = (unsigned char)(pkt->refid >> (24 - 8 * i));
        c->kiss[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '.';
    }
    c->kiss[4] = 0;
    if (strcmp(c->kiss, "DENY") == 0 || strcmp(c->kiss, "RSTR") == 0) {
        c->state = TB_NTP_CLIENT_DEMOBILISED;
        c->next_poll = UINT64_MAX;
        return c->kiss[0] == 'D' ? TB_NTP_REJ_KOD_DENY : TB_NTP_REJ_KOD_RSTR;
    }
    if (strcmp(c->kiss, "RATE") == 0) {
        /* Back off: one step up at least, and no faster than the server asked. */
        int want = c->poll + 1;
        if (pkt->poll > want)
            want = pkt->poll;
        c->poll = want > c->cfg.maxpoll ? c->cfg.maxpoll : want;
        c->burst_left = 0;
        c->good = 0;
        c->next_poll = now + (uint64_t)tb_ntp_log2_to_ns(c->poll);
        return TB_NTP_REJ_KOD_RATE;
    }
    return TB_NTP_REJ_KOD_OTHER;
}

static tb_ntp_reject check_server(const tb_ntp_client *c, const tb_ntp_packet *pkt)
{
    if (pkt->stratum > TB_NTP_MAX_STRATUM)
        return TB_NTP_REJ_STRATUM;
    if (pkt->leap == TB_NTP_LEAP_UNSYNC)
        return TB_NTP_REJ_LEAP;
    if (tb_ntp_short_to_ns(pkt->root_delay) > c->cfg.max_root_delay_ns)
        return TB_NTP_REJ_ROOT_DELAY;
    if (tb_ntp_short_to_ns(pkt->root_dispersion) > c->cfg.max_root_disp_ns)
        return TB_NTP_REJ_ROOT_DISP;
    if (pkt->receive_ts == 0 || pkt->transmit_ts == 0)
        return TB_NTP_REJ_TIMESTAMPS;
    return TB_NTP_ACCEPTED;
}

/* The four timestamps of one exchange (t2_ts, t3_ts as on the wire): basic mode T1..T4 of this
 * poll; interleaved the previous exchange's, with T3 from this reply. */
typedef struct exchange {
    int64_t t1, t4;
    uint64_t t2_ts, t3_ts;
    bool interleaved;
} exchange;

/* Checks the server's state, then computes the sample; *s is filled on success. */
static tb_ntp_reject make_sample(const tb_ntp_client *c, const tb_ntp_packet *pkt,
                                 const exchange *x, tb_ntp_sample *s)
{
    tb_ntp_reject r = check_server(c, pkt);
    if (r != TB_NTP_ACCEPTED)
        return r;
    int64_t t1 = x->t1, t4 = x->t4;
    if (x->t2_ts == 0)
        return TB_NTP_REJ_TIMESTAMPS;
    int64_t t2 = tb_ntp_ts_to_unix_ns(x->t2_ts, t1);
    int64_t t3 = tb_ntp_ts_to_unix_ns(x->t3_ts, t1);
    if (t3 < t2)
        return TB_NTP_REJ_TIMESTAMPS;
    /* Interleaved, T3 is older than the reply, whose reference time may well be newer. */
    if (!x->interleaved && pkt->reference_ts != 0 &&
        tb_ntp_ts_to_unix_ns(pkt->reference_ts, t1) > t3)
        return TB_NTP_REJ_TIMESTAMPS;
    if (t4 < t1)
        return TB_NTP_REJ_DELAY;
    /* A claimed precision worse than a second is nonsense; cap it rather than overflow. */
    int64_t precision =
        tb_ntp_log2_to_ns(pkt->precision > 0 ? 0 : pkt->precision) + c->cfg.local_precision_ns;
    int64_t delay = (t4 - t1) - (t3 - t2);
    /* Two clocks each read with finite precision can make a tiny round trip look negative. */
    if (delay < -precision || delay > c->cfg.max_delay_ns)
        return TB_NTP_REJ_DELAY;
    if (delay < 0)
        delay = 0;

    memset(s, 0, sizeof(*s));
    s->t1 = t1;
    s->t2 = t2;
    s->t3 = t3;
    s->t4 = t4;
    s->offset_ns = ((t2 - t1) + (t3 - t4)) / 2;
    s->delay_ns = delay;
    s->dispersion_ns = precision + (t4 - t1) / 1000000 * PHI_PPM;
    s->root_delay_ns = tb_ntp_short_to_ns(pkt->root_delay);
    s->root_disp_ns = tb_ntp_short_to_ns(pkt->root_dispersion);
    s->stratum = pkt->stratum;
    s->refid = pkt->refid;
    s->interleaved = x->interleaved;
    return TB_NTP_ACCEPTED;
}

/* Which exchange a reply completes, from its origin: false when it answers neither our
 * transmit timestamp nor our interleaved cookie. */
static bool exchange_of(const tb_ntp_client *c, const tb_ntp_packet *pkt, int64_t t4, uint64_t now,
                        exchange *x, uint64_t *mono)
{
    if (pkt->origin_ts == c->xmt) {
        *x = (exchange){c->t1, t4, pkt->receive_ts, pkt->transmit_ts, false};
        *mono = now;
        return true;
    }
    if (c->xmt_il == 0 || pkt->origin_ts != c->xmt_il)
        return false;
    *x = (exchange){c->prev_t1, c->prev_t4, c->prev_rx_ts, pkt->transmit_ts, true};
    *mono = c->prev_mono;
    return true;
}

/* An answered exchange is what the next interleaved request refers to, whatever became of its
 * sample; a kiss or a reply without a receive timestamp leaves nothing to refer to. */
static void remember_exchange(tb_ntp_client *c, const tb_ntp_packet *pkt, int64_t t4, uint64_t now)
{
    c->have_prev = pkt->stratum != 0 && pkt->receive_ts != 0;
    c->prev_age = 0;
    c->prev_rx_ts = pkt->receive_ts;
    c->prev_t1 = c->t1;
    c->prev_t4 = t4;
    c->prev_mono = now;
}

static void adapt_poll_on_sample(tb_ntp_client *c)
{
    c->missed = 0;
    c->reach |= 1;
    c->sample_in_poll = true;
    c->state = TB_NTP_CLIENT_ACTIVE;
    if (c->burst_left > 0)
        return;
    if (++c->good >= c->cfg.good_to_raise && c->poll < c->cfg.maxpoll) {
        c->poll++;
        c->good = 0;
    }
}

static const tb_ntp_sample *filter_best(const tb_ntp_client *c)
{
    const tb_ntp_sample *best = NULL;
    for (unsigned i = 0; i < c->n_filter; i++) {
        const tb_ntp_sample *s = &c->filter[i];
        if (!best || s->delay_ns < best->delay_ns ||
            (s->delay_ns == best->delay_ns && s->seq > best->seq))
            best = s;
    }
    return best;
}

int64_t tb_ntp_sample_error(const tb_ntp_sample *s, uint64_t now)
{
    uint64_t age = now > s->mono_ns ? now - s->mono_ns : 0;
    int64_t aged = s->dispersion_ns + (int64_t)(age / 1000000 * PHI_PPM);
    return s->delay_ns / 2 + aged + s->root_delay_ns / 2 + s->root_disp_ns;
}

/* Whether the newest sample differs from the filter's best by more than its extra delay can
 * explain (the excess may all be on one leg) plus the clocks' drift since: the source or our
 * clock moved, which the cross-check must hear of now, not when this sample becomes the best of
 * eight, polls later (adr/0008, "the drifter bound"). */
static bool moved_beyond_delay(const tb_ntp_sample *newest, const tb_ntp_sample *best)
{
    if (newest == best)
        return false;
    int64_t diff = newest->offset_ns - best->offset_ns;
    uint64_t span = newest->mono_ns > best->mono_ns ? newest->mono_ns - best->mono_ns : 0;
    int64_t explained = (newest->delay_ns - best->delay_ns) / 2 + TB_NTP_NEWS_MIN_NS +
                        (int64_t)(span / 1000000 * TB_NTP_NEWS_PPB / 1000);
    return diff > explained || diff < -explained;
}

static tb_ntp_reject reject(tb_ntp_client *c, tb_ntp_reject r)
{
    c->rejects[r]++;
    c->last_reject = r;
    return r;
}

tb_ntp_reject tb_ntp_client_receive(tb_ntp_client *c, const uint8_t *p, size_t len, int64_t t4,
                                    uint64_t now, tb_ntp_result *res)
{
    tb_ntp_packet pkt;
    res->sample = NULL;
    res->error_ns = 0;
    c->n_received++;
    int err = tb_ntp_packet_parse(p, len, &pkt);
    if (err == TB_ERR_UNSUPPORTED)
        return reject(c, TB_NTP_REJ_VERSION);
    if (err < 0)
        return reject(c, TB_NTP_REJ_MALFORMED);
    if (pkt.mode != TB_NTP_MODE_SERVER)
        return reject(c, TB_NTP_REJ_MODE);
    if (!c->pending || c->state == TB_NTP_CLIENT_DEMOBILISED)
        return reject(c, TB_NTP_REJ_UNEXPECTED);
    /* A forged reply must not cancel the real one still in flight: stay pending. */
    exchange x;
    uint64_t mono;
    if (!exchange_of(c, &pkt, t4, now, &x, &mono))
        return reject(c, TB_NTP_REJ_ORIGIN);
    c->pending = false;
    c->last_reply = pkt;
    remember_exchange(c, &pkt, t4, now);
    if (pkt.stratum == 0)
        return reject(c, handle_kiss(c, &pkt, now));

    tb_ntp_sample s;
    tb_ntp_reject r = make_sample(c, &pkt, &x, &s);
    if (r != TB_NTP_ACCEPTED)
        return reject(c, r);
    s.mono_ns = mono;
    s.seq = c->n_accepted + 1;
    memcpy(s.request, c->request, TB_NTP_HEADER_LEN);
    memcpy(s.response, p, TB_NTP_HEADER_LEN);
    c->filter[c->filter_next] = s;
    c->filter_next = (c->filter_next + 1) % TB_NTP_FILTER_LEN;
    if (c->n_filter < TB_NTP_FILTER_LEN)
        c->n_filter++;
    c->n_accepted++;
    c->n_interleaved += x.interleaved;
    c->last_reject = TB_NTP_ACCEPTED;
    adapt_poll_on_sample(c);

    /* Release a sample only once (RFC 5905 clock filter): an older best is not news. */
    const tb_ntp_sample *best = filter_best(c);
    const tb_ntp_sample *newest =
        &c->filter[(c->filter_next + TB_NTP_FILTER_LEN - 1) % TB_NTP_FILTER_LEN];
    if (best->seq <= c->last_released && moved_beyond_delay(newest, best))
        best = newest;
    if (best->seq > c->last_released) {
        c->last_released = best->seq;
        res->sample = best;
        res->error_ns = tb_ntp_sample_error(best, now);
    }
    return TB_NTP_ACCEPTED;
}

bool tb_ntp_reply_unsynchronised(uint8_t leap, uint8_t stratum)
{
    return leap == TB_NTP_LEAP_UNSYNC || stratum == 0 || stratum > TB_NTP_MAX_STRATUM;
}

int tb_ntp_exchange_check(const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
                          int64_t t4, int64_t offset_ns, int64_t delay_ns, tb_ntp_packet *reply)
{
    tb_ntp_packet q;
    if (tb_ntp_packet_parse(req, req_len, &q) != 0 ||
        tb_ntp_packet_parse(resp, resp_len, reply) != 0 || q.mode != TB_NTP_MODE_CLIENT ||
        reply->mode != TB_NTP_MODE_SERVER)
        return TB_ERR_MALFORMED;
    /* Interleaved: the reply echoes the request's receive field and completes the previous
     * exchange, whose T2 the request carries as its origin. */
    uint64_t t2_ts = reply->receive_ts;
    if (reply->origin_ts != q.transmit_ts) {
        if (q.receive_ts == 0 || reply->origin_ts != q.receive_ts)
            return TB_ERR_VERIFY;
        t2_ts = q.origin_ts;
    }
    if (tb_ntp_reply_unsynchronised(reply->leap, reply->stratum))
        return 0;
    if (t2_ts == 0 || reply->receive_ts == 0 || reply->transmit_ts == 0 || delay_ns < 0)
        return TB_ERR_VERIFY;
    int64_t t2 = tb_ntp_ts_to_unix_ns(t2_ts, t4);
    int64_t t3 = tb_ntp_ts_to_unix_ns(reply->transmit_ts, t4);
    int64_t d, twice, sum;
    if (t3 < t2 || __builtin_sub_overflow(t3, t4, &d) || __builtin_mul_overflow(d, 2, &twice) ||
        __builtin_add_overflow(twice, delay_ns, &sum))
        return TB_ERR_VERIFY;
    /* a round trip the clocks' precision made slightly negative was reported as 0: the offset
     * then differs by up to half of it (make_sample) */
    int64_t slack = 1;
    if (delay_ns == 0)
        slack += (tb_ntp_log2_to_ns(reply->precision > 0 ? 0 : reply->precision) +
                  TB_NTP_LOCAL_PRECISION_NS) /
                 2;
    int64_t diff;
    if (__builtin_sub_overflow(sum / 2, offset_ns, &diff))
        return TB_ERR_VERIFY;
    return diff >= -slack && diff <= slack ? 0 : TB_ERR_VERIFY;
}
