/* Raw evidence re-checked from the packets (measure/evidence.h). */
#include "measure/evidence.h"

#include "common/clock.h"
#include "ntp/client.h"
#include "ntp/packet.h"
#include "roughtime/verify.h"

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return TB_ERR_VERIFY;
}

/* The request went out at real − delay: the offset is MIDP minus the midpoint of send and
 * receive; MIDP is rounded to microseconds, hence the 1 ms of slack. MIDP and RADI are the
 * server's numbers: checked arithmetic, no assumption on their size. */
static int rt_check(const tb_measurement *m, tb_measure_evidence *out, const char **why)
{
    if (!m->has_rt_pubkey)
        return fail(why, "no Roughtime key");
    tb_rt_query q;
    tb_rt_reason r = TB_RT_OK;
    int64_t sent = m->real_ns - m->delay_ns; /* in range: real_ns >= delay_ns >= 0 */
    if (tb_rt_query_adopt(&q, m->rt_pubkey, m->ev_request.data, m->ev_request.len, sent) != 0)
        return fail(why, "Roughtime request does not parse");
    if (tb_rt_verify(&q, m->ev_response.data, m->ev_response.len, m->real_ns, &r) != 0)
        return fail(why, tb_rt_reason_name(r));
    int64_t midp, radi, claimed, diff;
    if (q.radi_us > (uint64_t)(INT64_MAX / 1000) || __builtin_mul_overflow(q.midp_us, 1000, &midp))
        return fail(why, "MIDP or RADI out of range");
    radi = (int64_t)q.radi_us * 1000;
    if (__builtin_sub_overflow(midp, sent / 2 + m->real_ns / 2, &claimed) ||
        __builtin_sub_overflow(claimed, m->offset_ns, &diff))
        return fail(why, "MIDP out of range");
    out->has_offset = true;
    out->offset_ns = claimed;
    if (diff < -(int64_t)TB_NS_PER_MS || diff > (int64_t)TB_NS_PER_MS)
        return fail(why, "MIDP gives another offset than the claimed one");
    if (m->bound_ns < radi)
        return fail(why, "bound is below the response's RADI");
    out->has_rt = true;
    out->midp_ns = midp;
    out->radi_ns = radi;
    return 0;
}

/* offset = T3 − T4 + delay / 2 (tb_ntp_exchange_check says why), recomputed for display once
 * the check passed, so the arithmetic cannot overflow. */
static int ntp_check(const tb_measurement *m, tb_measure_evidence *out, const char **why)
{
    tb_ntp_packet reply;
    int rc =
        tb_ntp_exchange_check(m->ev_request.data, m->ev_request.len, m->ev_response.data,
                              m->ev_response.len, m->real_ns, m->offset_ns, m->delay_ns, &reply);
    if (rc == TB_ERR_MALFORMED)
        return fail(why, "NTP packets do not parse as a client request and a server reply");
    if (rc != 0)
        return fail(why, "NTP reply does not answer the request or give the claimed offset");
    if (reply.leap != m->leap || reply.stratum != m->stratum)
        return fail(why, "NTP reply's leap indicator or stratum differ from the body's");
    if (tb_ntp_reply_unsynchronised(reply.leap, reply.stratum)) {
        out->unsynchronised = true;
        return 0;
    }
    int64_t t3 = tb_ntp_ts_to_unix_ns(reply.transmit_ts, m->real_ns);
    out->has_offset = true;
    out->offset_ns = ((t3 - m->real_ns) * 2 + m->delay_ns) / 2;
    return 0;
}

int tb_measure_evidence_check(const tb_measurement *m, tb_measure_evidence *out, const char **why)
{
    *out = (tb_measure_evidence){0};
    if (m->kind == TB_MEASURE_PEER)
        return 0;
    if (tb_measure_range_error(m) != NULL)
        return fail(why, "a number out of range");
    if (!m->ev_request.len || !m->ev_response.len)
        return fail(why, "no raw evidence");
    return m->kind == TB_MEASURE_NTP ? ntp_check(m, out, why) : rt_check(m, out, why);
}
