/* libFuzzer target for evidence as the time node reads it back from its store (node/tk_report.c
 * for malfeasance reports, the receive path's re-checks): the input is split at its first two
 * bytes (a big-endian length) into two stored bodies, "earlier" and "later". Each is parsed;
 * NTP evidence is re-checked against its packets (tb_ntp_exchange_check), Roughtime evidence
 * re-verified and the nonce chain between the two checked as the report does, and the two
 * exchanges written as the RFC's report JSON into a bounded buffer. Nothing may crash or read
 * out of bounds, and the JSON, when written, ends where the length says. */
#include <stdlib.h>
#include <string.h>

#include "crosscheck/crosscheck.h"
#include "measure/measurement.h"
#include "ntp/client.h"
#include "roughtime/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char json[65536];

static void recheck(const tb_measurement *m)
{
    if (m->kind == TB_MEASURE_NTP && m->ev_request.len) {
        tb_ntp_packet reply;
        (void)tb_ntp_exchange_check(m->ev_request.data, m->ev_request.len, m->ev_response.data,
                                    m->ev_response.len, m->real_ns, m->offset_ns, m->delay_ns,
                                    &reply);
    }
    if (m->kind == TB_MEASURE_ROUGHTIME && m->ev_request.len) {
        tb_rt_query q;
        tb_rt_reason why;
        if (tb_rt_query_adopt(&q, m->rt_pubkey, m->ev_request.data, m->ev_request.len,
                              m->real_ns / 2) == 0)
            (void)tb_rt_verify(&q, m->ev_response.data, m->ev_response.len, m->real_ns, &why);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n1 = (size_t)data[0] << 8 | data[1];
    if (n1 > size - 2)
        n1 = size - 2;
    const uint8_t *b1 = data + 2, *b2 = b1 + n1;
    size_t n2 = size - 2 - n1;
    tb_measurement m[2];
    int ok1 = tb_measure_parse(b1, n1, &m[0], NULL) == 0;
    int ok2 = tb_measure_parse(b2, n2, &m[1], NULL) == 0;
    if (ok1)
        recheck(&m[0]);
    if (ok2)
        recheck(&m[1]);
    if (!ok1 || !ok2)
        return 0;
    tb_xc_rt_exchange x[2];
    if (tb_xc_exchange_from_measurement(&m[0], &x[0]) != 0 ||
        tb_xc_exchange_from_measurement(&m[1], &x[1]) != 0)
        return 0;
    tb_rt_query q;
    uint8_t want[64];
    if (m[1].has_rand &&
        tb_rt_query_adopt(&q, m[1].rt_pubkey, m[1].ev_request.data, m[1].ev_request.len, 0) == 0 &&
        q.nonce_len <= sizeof(want))
        tb_rt_chain_nonce(m[0].ev_response.data, m[0].ev_response.len, m[1].rand, want,
                          q.nonce_len);
    size_t len = 0;
    if (tb_xc_malfeasance_json(x, 2, json, sizeof(json), &len) == 0 &&
        (len >= sizeof(json) || json[len] != '\0' || strlen(json) != len))
        abort();
    return 0;
}
