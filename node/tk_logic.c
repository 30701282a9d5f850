/* The time node's pure decisions: see node/tk_logic.h. */
#include "node/tk_logic.h"

#include <string.h>

#include "common/clock.h"
#include "ntp/client.h"
#include "roughtime/verify.h"

int tb_tk_rt_evidence(const tb_measurement *m, int64_t *midp_ns, int64_t *radi_ns)
{
    if (!m->has_rt_pubkey || !m->ev_request.len || !m->ev_response.len ||
        tb_measure_range_error(m) != NULL)
        return TB_ERR_VERIFY;
    tb_rt_query q;
    tb_rt_reason why;
    int64_t sent = m->real_ns - m->delay_ns; /* in range: real_ns >= delay_ns >= 0 */
    if (tb_rt_query_adopt(&q, m->rt_pubkey, m->ev_request.data, m->ev_request.len, sent) != 0 ||
        tb_rt_verify(&q, m->ev_response.data, m->ev_response.len, m->real_ns, &why) != 0)
        return TB_ERR_VERIFY;
    /* MIDP and RADI are the server's numbers: checked arithmetic, no assumption on their size */
    int64_t midp, radi, claimed, diff;
    if (q.radi_us > (uint64_t)(INT64_MAX / 1000) || __builtin_mul_overflow(q.midp_us, 1000, &midp))
        return TB_ERR_VERIFY;
    radi = (int64_t)q.radi_us * 1000;
    if (__builtin_sub_overflow(midp, sent / 2 + m->real_ns / 2, &claimed) ||
        __builtin_sub_overflow(claimed, m->offset_ns, &diff))
        return TB_ERR_VERIFY;
    if (diff < -(int64_t)TB_NS_PER_MS || diff > (int64_t)TB_NS_PER_MS || m->bound_ns < radi)
        return TB_ERR_VERIFY;
    *midp_ns = midp;
    *radi_ns = radi;
    return TB_OK;
}

/* NTP evidence (the packets of the very exchange, adr/0007) checked again: the reply answers
 * that request, its leap indicator and stratum are the ones the body claims, and a
 * synchronised reply gives the claimed offset and delay. */
static int ntp_evidence(const tb_measurement *m)
{
    tb_ntp_packet reply;
    if (!m->ev_request.len || !m->ev_response.len ||
        tb_ntp_exchange_check(m->ev_request.data, m->ev_request.len, m->ev_response.data,
                              m->ev_response.len, m->real_ns, m->offset_ns, m->delay_ns,
                              &reply) != 0 ||
        reply.leap != m->leap || reply.stratum != m->stratum)
        return TB_ERR_VERIFY;
    return TB_OK;
}

int tb_tk_evidence_check(const tb_measurement *m, tb_tk_evidence *ev)
{
    *ev = (tb_tk_evidence){0};
    if (m->kind == TB_MEASURE_NTP)
        return ntp_evidence(m);
    if (m->kind != TB_MEASURE_ROUGHTIME)
        return TB_OK;
    int rc = tb_tk_rt_evidence(m, &ev->midp_ns, &ev->radi_ns);
    ev->has_rt = rc == TB_OK;
    return rc;
}

bool tb_tk_drop_discredits(tb_measure_drop why)
{
    return why == TB_MEASURE_DROP_MALFORMED || why == TB_MEASURE_DROP_UNKNOWN_ORIGIN ||
           why == TB_MEASURE_DROP_EXPIRED || why == TB_MEASURE_DROP_BAD_SIGNATURE ||
           why == TB_MEASURE_DROP_BAD_EVIDENCE || why == TB_MEASURE_DROP_RANGE;
}

tb_measure_limits tb_tk_limits_default(void)
{
    return (tb_measure_limits){
        .max_evidence = 4096, .rate_per_min = 600, .bytes_per_hour = 16 * 1024 * 1024};
}

tb_measure_kind tb_tk_measure_kind(tb_source_kind k)
{
    return k == TB_SOURCE_ROUGHTIME ? TB_MEASURE_ROUGHTIME
           : k == TB_SOURCE_PEER    ? TB_MEASURE_PEER
                                    : TB_MEASURE_NTP;
}

void tb_tk_set_text(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (; src[k] && k + 1 < cap; k++)
        dst[k] = src[k] >= 0x20 && src[k] < 0x7f ? src[k] : '?';
    dst[k] = '\0';
}

/* The packets travel with an NTP measurement, and the reply's leap indicator and stratum; an
 * unsynchronised reply's numbers mean nothing and are sent as 0. */
static int ntp_fill(tb_measurement *m, const tb_source_meas *sm)
{
    tb_ntp_packet reply;
    if (!sm->request_len || !sm->response_len || sm->request_len > TB_MEASURE_MAX_EVIDENCE ||
        sm->response_len > TB_MEASURE_MAX_EVIDENCE ||
        tb_ntp_packet_parse(sm->response, sm->response_len, &reply) != 0)
        return TB_ERR_MALFORMED;
    m->ev_request = (tb_measure_bytes){sm->request, sm->request_len};
    m->ev_response = (tb_measure_bytes){sm->response, sm->response_len};
    m->leap = reply.leap;
    m->stratum = reply.stratum;
    if (tb_ntp_reply_unsynchronised(reply.leap, reply.stratum))
        m->offset_ns = m->bound_ns = 0;
    return TB_OK;
}

static int rt_fill(tb_measurement *m, const tb_source_meas *sm)
{
    if (!sm->source->has_public_key || !sm->request_len || !sm->response_len ||
        sm->request_len > TB_MEASURE_MAX_EVIDENCE || sm->response_len > TB_MEASURE_MAX_EVIDENCE)
        return TB_ERR_MALFORMED;
    m->has_rt_pubkey = true;
    memcpy(m->rt_pubkey, sm->source->public_key, TB_MEASURE_RT_PK_LEN);
    m->ev_request = (tb_measure_bytes){sm->request, sm->request_len};
    m->ev_response = (tb_measure_bytes){sm->response, sm->response_len};
    m->has_rand = sm->rand != NULL;
    if (m->has_rand)
        memcpy(m->rand, sm->rand, TB_MEASURE_RAND_LEN);
    return TB_OK;
}

int tb_tk_measurement_of(const tb_source_meas *sm, const char *origin, tb_measurement *m)
{
    *m = (tb_measurement){.kind = tb_tk_measure_kind(sm->source->kind),
                          .real_ns = sm->real_ns,
                          .offset_ns = sm->offset_ns,
                          .delay_ns = sm->delay_ns > 0 ? sm->delay_ns : 0,
                          .bound_ns = sm->error_ns > 0 ? sm->error_ns : 0};
    tb_tk_set_text(m->origin, sizeof(m->origin), origin);
    tb_tk_set_text(m->source_name, sizeof(m->source_name), sm->source->name);
    tb_tk_set_text(m->source_addr, sizeof(m->source_addr), sm->source->address);
    if (m->kind == TB_MEASURE_NTP)
        return ntp_fill(m, sm);
    if (m->kind == TB_MEASURE_ROUGHTIME)
        return rt_fill(m, sm);
    return TB_OK;
}

int tb_tk_xc_step(const tb_xc_config *cfg, tb_xc_hold *hold, const tb_xc_input *in,
                  tb_xc_result *out)
{
    int rc = tb_xc_run(cfg, in, out);
    if (rc == TB_OK && (rc = tb_xc_hold_apply(hold, cfg->hold_runs, in->now_ns, out)) != TB_OK)
        tb_xc_result_clear(out);
    return rc;
}

double tb_tk_xc_next_s(const tb_xc_config *cfg, uint32_t min_interval_ms, const tb_xc_result *r,
                       int64_t now_ns)
{
    double next = (double)cfg->window_ns / 10e9;
    if (r->next_run_ns != INT64_MAX) {
        double stale = (double)(r->next_run_ns - now_ns) / 1e9;
        next = stale < next ? stale : next;
    }
    double min = min_interval_ms / 1e3;
    return next > min ? next : min;
}

double tb_tk_xc_kick_s(uint32_t min_interval_ms, double since_last_s)
{
    double wait = min_interval_ms / 1e3 - since_last_s;
    return wait > 0.01 ? wait : 0.01;
}
