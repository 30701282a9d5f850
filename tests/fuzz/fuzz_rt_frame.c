/* libFuzzer target for the Roughtime TCP framing (tb_rt_frame_next) as the server's TCP edge
 * reads a connection: the input arrives in chunks whose sizes the first byte picks, is
 * appended to a connection-sized buffer, and every complete packet is cut off the front. A
 * packet handed out must start with ROUGHTIM, be at least a header long, no longer than the
 * limit, and carry exactly its length field's bytes; an error must end the stream. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "roughtime/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[MAX];
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1, have = 0;
    data++;
    size--;
    while (size > 0) {
        size_t n = size < chunk ? size : chunk;
        if (n > MAX - have)
            n = MAX - have;
        memcpy(buf + have, data, n);
        have += n;
        data += n;
        size -= n;
        for (;;) {
            size_t pl;
            if (tb_rt_frame_next(buf, have, MAX, &pl) < 0)
                return 0; /* the edge closes the connection */
            if (pl == 0)
                break;
            if (pl < TB_RT_HEADER_LEN || pl > MAX || pl > have || memcmp(buf, "ROUGHTIM", 8) != 0 ||
                tb_get_le32(buf + 8) != pl - TB_RT_HEADER_LEN)
                abort();
            memmove(buf, buf + pl, have - pl);
            have -= pl;
        }
        if (have == MAX)
            abort(); /* a full buffer must hold a packet or be an error */
    }
    return 0;
}
