/* libFuzzer target: the one address parser (common/addr.h) on arbitrary text. Addresses come
 * from config files, the command line and other nodes: never crash, always say why, and what
 * is accepted formats to text that parses back to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const tb_addr_hostport *hp, int flags)
{
    char buf[TB_ADDR_TEXT_MAX];
    const char *why = NULL;
    tb_addr_hostport again;
    tb_addr_hostport_format(hp, buf, sizeof(buf));
    if (tb_addr_parse(buf, strlen(buf), flags, &again, &why) != TB_OK || again.kind != hp->kind ||
        again.port != hp->port || strcmp(again.host, hp->host) != 0)
        abort();
    tb_addr a, b;
    if (tb_addr_from_hostport(hp, &a) != TB_OK) {
        if (hp->kind != TB_ADDR_NAME)
            abort();
        return;
    }
    /* A numeric address formats to canonical text that parses to an equal socket address. */
    tb_addr_format(&a, buf, sizeof(buf));
    if (tb_addr_parse_numeric(buf, strlen(buf), flags, &b, &why) != TB_OK || !tb_addr_equal(&a, &b))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so that reading one byte past len is caught by ASan. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    tb_addr_hostport hp;
    const char *why = NULL;
    int flags = size && (data[0] & 1) ? TB_ADDR_PORT_ZERO_OK : 0;
    if (tb_addr_parse(s, size, flags, &hp, &why) == TB_OK)
        round_trip(&hp, flags);
    else if (!why)
        abort();
    why = NULL;
    if (tb_addr_parse_default(s, size, 123, flags, &hp, &why) == TB_OK) {
        /* A bare IPv6 literal gains its brackets: formatted, it needs a port. */
        round_trip(&hp, flags);
    } else if (!why) {
        abort();
    }
    free(s);
    return 0;
}
