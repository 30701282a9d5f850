/* libFuzzer target: tb_quic_addr_parse on arbitrary text (listen and peer addresses come from
 * config files and the command line). Whatever parses must format and parse back to the same
 * address. */
#include <stdlib.h>
#include <string.h>

#include "quic/endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256];
    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct sockaddr_storage a, b;
    socklen_t alen, blen;
    if (tb_quic_addr_parse(text, &a, &alen) != TB_OK)
        return 0;
    char back[TB_QUIC_ADDRSTR_MAX];
    tb_quic_addr_format((const struct sockaddr *)&a, back, sizeof(back));
    if (tb_quic_addr_parse(back, &b, &blen) != TB_OK || alen != blen || memcmp(&a, &b, alen) != 0)
        abort();
    return 0;
}
