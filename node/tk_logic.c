/* The time node's pure decisions: see node/tk_logic.h. */
#include "node/tk_logic.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "measure/evidence.h"
#include "ntp/client.h"

int tb_tk_evidence_check(const tb_measurement *m, tb_tk_evidence *ev)
{
    *ev = (tb_tk_evidence){0};
    tb_measure_evidence chk;
    int rc = tb_measure_evidence_check(m, &chk, NULL);
    if (rc == TB_OK && chk.has_rt)
        *ev = (tb_tk_evidence){.has_rt = true, .midp_ns = chk.midp_ns, .radi_ns = chk.radi_ns};
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

void tb_tk_source_key(const tb_source_id *id, const char *origin, tb_measure_kind *kind, char *name,
                      size_t cap)
{
    *kind = id->kind == TB_SOURCE_ROUGHTIME                           ? TB_MEASURE_ROUGHTIME
            : id->kind == TB_SOURCE_PEER                              ? TB_MEASURE_PEER
            : id->kind == TB_SOURCE_SOCK || id->kind == TB_SOURCE_PPS ? TB_MEASURE_REFCLOCK
                                                                      : TB_MEASURE_NTP;
    char full[TB_MEASURE_MAX_ORIGIN + 2 + TB_SOURCE_NAME_MAX];
    if (*kind == TB_MEASURE_REFCLOCK)
        snprintf(full, sizeof(full), "%s:%s", origin, id->name);
    else
        snprintf(full, sizeof(full), "%s", id->name);
    tb_tk_set_text(name, cap, full);
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
    *m = (tb_measurement){.real_ns = sm->real_ns,
                          .offset_ns = sm->offset_ns,
                          .delay_ns = sm->delay_ns > 0 ? sm->delay_ns : 0,
                          .bound_ns = sm->error_ns > 0 ? sm->error_ns : 0};
    tb_tk_set_text(m->origin, sizeof(m->origin), origin);
    tb_tk_source_key(sm->source, origin, &m->kind, m->source_name, sizeof(m->source_name));
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
