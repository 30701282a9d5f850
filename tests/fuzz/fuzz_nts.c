/* NTS-KE responses and the NTS extension fields of NTP replies, from a hostile server: the
 * first byte picks the parser. The reply check runs with fixed keys, so most inputs stop at
 * the authenticator; the seed corpus holds a validly sealed reply to reach the cookie walk. */
#include <stddef.h>
#include <stdint.h>

#include "ntp/nts_ef.h"
#include "ntp/nts_ke.h"

static tb_nts_ke_response resp;
static tb_nts_cookie_jar jar;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tb_nts_keys keys = {.c2s = {1, 2, 3}, .s2c = {4, 5, 6}};
    static const uint8_t uid[TB_NTS_UID_LEN] = {7, 7, 7};
    if (size < 1)
        return 0;
    const char *why;
    if (data[0] & 1) {
        (void)tb_nts_ke_response_parse(data + 1, size - 1, &resp, &why);
    } else {
        tb_nts_jar_clear(&jar);
        (void)tb_nts_reply_check(&keys, uid, data + 1, size - 1, &jar);
    }
    return 0;
}
