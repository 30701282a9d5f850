/* Feeds arbitrary bytes to the NTP packet parser and to a client waiting for a reply. The
 * first 8 bytes of the input become the request's random transmit timestamp and the rest the
 * reply, so the fuzzer can reach the paths after the origin check. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ntp/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_ntp_packet pkt;
    (void)tb_ntp_packet_parse(data, size, &pkt);
    if (size < 8)
        return 0;

    tb_ntp_client_config cfg;
    tb_ntp_client_config_default(&cfg);
    tb_ntp_client c;
    tb_ntp_client_init(&c, &cfg, 0);
    uint8_t req[TB_NTP_HEADER_LEN];
    const int64_t t1 = INT64_C(1795000000000000000);
    if (tb_ntp_client_poll(&c, 0, t1, data, req) != 0)
        return 0;
    tb_ntp_result res;
    tb_ntp_reject r = tb_ntp_client_receive(&c, data + 8, size - 8, t1 + 1000000, 1000000, &res);
    if (r == TB_NTP_ACCEPTED && res.sample) {
        /* An accepted sample is self-consistent. */
        if (res.sample->delay_ns < 0 || res.error_ns < res.sample->delay_ns / 2)
            __builtin_trap();
    }
    (void)tb_ntp_reject_name(r);
    return 0;
}
