/* Drives the PPS pulse logic with pulses and lock samples from the input: any stamps, sequence
 * numbers, lock offsets and errors, at every rate. Nothing may overflow (UBSan), and an
 * accepted sample must keep the promises of sources/pps.h: its offset within 0.4 of an
 * interval of the lock's, its bound at least the precision, its time the pulse's. */
#include <stdint.h>
#include <stdlib.h>

#include "common/bytes.h"
#include "sources/pps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC 45 /* seq 4, real 8, now − real 8, lock real 8, lock offset 8, error 8, flags 1 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    tb_pps_params pp = {
        .rate = 1 + tb_get_be16(data) % TB_PPS_MAX_RATE,
        .offset_ns = (int16_t)tb_get_be16(data + 2) * 1000,
        .width_ns = (int64_t)tb_get_be16(data + 4) * 10000,
        .precision_ns = data[6] * 100,
        .maxlockage = 1 + data[7] % 64,
    };
    tb_pps *p;
    if (tb_pps_create(&pp, &p) != 0)
        return 0;
    for (size_t at = 8; size - at >= REC; at += REC) {
        const uint8_t *r = data + at;
        tb_pps_pulse pulse = {.seq = tb_get_be32(r), .real_ns = (int64_t)tb_get_be64(r + 4)};
        int64_t now = (int64_t)((uint64_t)pulse.real_ns + tb_get_be64(r + 12));
        tb_pps_lock lock = {.real_ns = (int64_t)tb_get_be64(r + 20),
                            .offset_ns = (int64_t)tb_get_be64(r + 28),
                            .error_ns = (int64_t)tb_get_be64(r + 36)};
        /* small numbers near the pulse reach the interesting paths more often */
        if (r[44] & 1)
            lock.real_ns = (int64_t)((uint64_t)pulse.real_ns - tb_get_be32(r + 20) % 3000000000u);
        if (r[44] & 2)
            lock.offset_ns = (int32_t)tb_get_be32(r + 28);
        if (r[44] & 4)
            lock.error_ns = tb_get_be32(r + 36) % 100000000u;
        tb_pps_sample s;
        if (tb_pps_pulse_in(p, now, &pulse, r[44] & 8 ? NULL : &lock, &s) != TB_PPS_ACCEPTED)
            continue;
        if (s.real_ns != pulse.real_ns || s.error_ns < pp.precision_ns ||
            llabs(s.lock_diff_ns) * (int64_t)pp.rate > 400000000 + (int64_t)pp.rate ||
            s.lock_diff_ns != lock.offset_ns - s.offset_ns)
            abort();
    }
    tb_pps_free(p);
    return 0;
}
