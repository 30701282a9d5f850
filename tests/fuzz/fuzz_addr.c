/* libFuzzer target: the one address parser (common/addr.h) on arbitrary text. Addresses come
 * from config files, the command line and other nodes: never crash, always say why, and what
 * is accepted formats to text that parses back to the same value. The same text as a CIDR
 * range and through the address policy for learned addresses: an address the policy accepts
 * is never unspecified, link-local, multicast or broadcast. */
#include <netinet/in.h>
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

static void policy(const char *s, size_t size)
{
    tb_addr_range r;
    const char *why = NULL;
    if (tb_addr_range_parse(s, size, &r, &why) == TB_OK) {
        unsigned max = r.family == AF_INET ? 32 : 128;
        if (r.bits > max)
            abort();
    } else if (!why) {
        abort();
    }
    tb_addr_policy p = {.allow_loopback = size & 1, .allow_names = (size >> 1) & 1};
    if (tb_addr_range_parse("10.0.0.0/8", 10, &p.ranges[0], &why) != TB_OK)
        abort();
    p.nranges = (size >> 2) & 1;
    why = NULL;
    if (tb_addr_policy_check_text(&p, s, size, &why) != TB_OK) {
        if (!why)
            abort();
        return;
    }
    tb_addr_hostport hp;
    tb_addr a;
    if (tb_addr_parse(s, size, 0, &hp, &why) != TB_OK)
        abort();
    if (tb_addr_from_hostport(&hp, &a) != TB_OK)
        return; /* a name, allowed */
    tb_addr_scope sc = tb_addr_scope_of(&a);
    if (sc != TB_ADDR_SCOPE_UNICAST && sc != TB_ADDR_SCOPE_LOOPBACK)
        abort();
    if ((sc == TB_ADDR_SCOPE_LOOPBACK && !p.allow_loopback) ||
        (p.nranges && !tb_addr_range_contains(&p.ranges[0], &a)))
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
    policy(s, size);
    free(s);
    return 0;
}
