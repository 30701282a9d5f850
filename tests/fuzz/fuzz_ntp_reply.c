/* Feeds arbitrary bytes to the NTP packet parser and to a client waiting for replies. Input:
 * a flag byte (bit 0: xleave), the TB_NTP_POLL_RND_LEN random bytes of the first poll (its
 * transmit timestamp first, so the fuzzer can reach the paths after the origin check), then
 * without xleave the reply; with xleave the first reply (48 bytes), the second poll's random
 * bytes (its cookie last) and the second reply, so the interleaved receive path is reached. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ntp/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t t1 = INT64_C(1795000000000000000);

/* An accepted sample is self-consistent, and re-checks as evidence from its own packets. */
static void check_sample(const tb_ntp_result *res)
{
    const tb_ntp_sample *s = res->sample;
    if (s->delay_ns < 0 || res->error_ns < s->delay_ns / 2)
        __builtin_trap();
    /* Far from the pivot the era chosen from T1 and from T4 may differ: only sane offsets. */
    if (llabs(s->offset_ns) > INT64_C(1000000000) * 86400 * 365)
        return;
    tb_ntp_packet rep;
    if (tb_ntp_exchange_check(s->request, sizeof(s->request), s->response, sizeof(s->response),
                              s->t4, s->offset_ns, s->delay_ns, &rep) != 0)
        __builtin_trap();
}

static void receive(tb_ntp_client *c, const uint8_t *p, size_t n, int64_t t4, uint64_t now)
{
    tb_ntp_result res;
    tb_ntp_reject r = tb_ntp_client_receive(c, p, n, t4, now, &res);
    if (r == TB_NTP_ACCEPTED && res.sample)
        check_sample(&res);
    (void)tb_ntp_reject_name(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_ntp_packet pkt;
    (void)tb_ntp_packet_parse(data, size, &pkt);
    if (size < 1 + TB_NTP_POLL_RND_LEN)
        return 0;
    bool xleave = data[0] & 1;
    data++;
    size--;

    tb_ntp_client_config cfg;
    tb_ntp_client_config_default(&cfg);
    cfg.xleave = xleave;
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    uint8_t req[TB_NTP_HEADER_LEN];
    if (tb_ntp_client_poll(&c, 0, t1, data, req) != 0)
        return 0;
    data += TB_NTP_POLL_RND_LEN;
    size -= TB_NTP_POLL_RND_LEN;
    size_t first = xleave && size > TB_NTP_HEADER_LEN ? TB_NTP_HEADER_LEN : size;
    receive(&c, data, first, t1 + 1000000, 1000000);
    data += first;
    size -= first;
    if (size < TB_NTP_POLL_RND_LEN)
        return 0;
    /* The second poll a second later; its reply may complete the first exchange. */
    const int64_t s = 1000000000;
    if (tb_ntp_client_poll(&c, (uint64_t)s, t1 + s, data, req) != 0)
        return 0;
    receive(&c, data + TB_NTP_POLL_RND_LEN, size - TB_NTP_POLL_RND_LEN, t1 + s + 1000000,
            (uint64_t)s + 1000000);
    return 0;
}
