/* Address strings come from config files and the command line: must never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_hostport hp;
    const char *why = NULL;
    /* Copy so that reading one byte past len is caught by ASan. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    if (tb_addr_parse(s, size, TB_ADDR_PORT_ZERO_OK, &hp, &why) == TB_OK) {
        char buf[TB_ADDR_HOST_MAX + 16];
        tb_hostport_format(&hp, buf, sizeof(buf));
        tb_hostport again;
        if (tb_addr_parse(buf, strlen(buf), TB_ADDR_PORT_ZERO_OK, &again, &why) != TB_OK ||
            again.port != hp.port || strcmp(again.host, hp.host) != 0)
            abort(); /* formatting must round-trip */
    } else if (!why) {
        abort();
    }
    free(s);
    return 0;
}
