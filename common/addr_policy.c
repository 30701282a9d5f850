/* The address policy of common/addr.h: which learned addresses a node may store and dial. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static int deny(const char **why, const char *text)
{
    if (why)
        *why = text;
    return TB_ERR_INVAL;
}

/* The address bytes of a (4 for IPv4 and IPv4-mapped IPv6, 16 for IPv6); 0 for another
 * family. */
static int ip_bytes(const tb_addr *a, uint8_t ip[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->ss.ss_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
        return 4;
    }
    if (a->ss.ss_family != AF_INET6)
        return 0;
    const uint8_t *v6 = ((const struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr;
    if (memcmp(v6, mapped, sizeof(mapped)) == 0) {
        memcpy(ip, v6 + 12, 4);
        return 4;
    }
    memcpy(ip, v6, 16);
    return 16;
}

static tb_addr_scope scope_v4(const uint8_t ip[4])
{
    if (ip[0] == 0)
        return TB_ADDR_SCOPE_UNSPECIFIED;
    if (ip[0] == 127)
        return TB_ADDR_SCOPE_LOOPBACK;
    if (ip[0] == 169 && ip[1] == 254)
        return TB_ADDR_SCOPE_LINK_LOCAL;
    if ((ip[0] & 0xf0) == 224)
        return TB_ADDR_SCOPE_MULTICAST;
    if ((ip[0] & 0xf0) == 240)
        return TB_ADDR_SCOPE_BROADCAST;
    return TB_ADDR_SCOPE_UNICAST;
}

static tb_addr_scope scope_v6(const uint8_t ip[16])
{
    static const uint8_t zero[15] = {0};
    if (memcmp(ip, zero, 15) == 0)
        return ip[15] == 1   ? TB_ADDR_SCOPE_LOOPBACK
               : ip[15] == 0 ? TB_ADDR_SCOPE_UNSPECIFIED
                             : TB_ADDR_SCOPE_UNICAST; /* deprecated IPv4-compatible: routed */
    if (ip[0] == 0xff)
        return TB_ADDR_SCOPE_MULTICAST;
    if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80)
        return TB_ADDR_SCOPE_LINK_LOCAL;
    return TB_ADDR_SCOPE_UNICAST;
}

tb_addr_scope tb_addr_scope_of(const tb_addr *a)
{
    uint8_t ip[16];
    int n = ip_bytes(a, ip);
    return n == 4 ? scope_v4(ip) : n == 16 ? scope_v6(ip) : TB_ADDR_SCOPE_UNSPECIFIED;
}

const char *tb_addr_scope_name(tb_addr_scope s)
{
    static const char *const names[] = {"unicast",    "loopback",  "unspecified",
                                        "link-local", "multicast", "broadcast or reserved"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int tb_addr_range_parse(const char *s, size_t len, tb_addr_range *out, const char **why)
{
    char text[64];
    memset(out, 0, sizeof(*out));
    if (!s || len == 0 || len >= sizeof(text) || memchr(s, '\0', len))
        return deny(why, "not an address range (ADDRESS/BITS)");
    memcpy(text, s, len);
    text[len] = '\0';
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, text, out->ip) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, text, out->ip) == 1)
        out->family = AF_INET6;
    else
        return deny(why, "not an IPv4 or IPv6 address before '/'");
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        const char *b = slash + 1;
        size_t blen = strlen(b);
        if (blen == 0 || blen > 3 || (blen > 1 && b[0] == '0'))
            return deny(why, "prefix length is not a number from 0 to 32 (IPv4) or 128 (IPv6)");
        unsigned v = 0;
        for (size_t i = 0; i < blen; i++) {
            if (b[i] < '0' || b[i] > '9')
                return deny(why, "prefix length is not a number");
            v = v * 10 + (unsigned)(b[i] - '0');
        }
        if (v > max)
            return deny(why, "prefix length over 32 (IPv4) or 128 (IPv6)");
        out->bits = v;
    }
    for (unsigned i = out->bits; i < max; i++) {
        if (out->ip[i / 8] & (0x80u >> (i % 8)))
            return deny(why, "address has bits set past the prefix length");
    }
    return TB_OK;
}

int tb_addr_range_contains(const tb_addr_range *r, const tb_addr *a)
{
    uint8_t ip[16];
    int n = ip_bytes(a, ip);
    if ((n == 4 && r->family != AF_INET) || (n == 16 && r->family != AF_INET6) || n == 0)
        return 0;
    size_t whole = r->bits / 8;
    unsigned rest = r->bits % 8;
    if (memcmp(ip, r->ip, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (ip[whole] & mask) == (r->ip[whole] & mask);
}

int tb_addr_policy_check(const tb_addr_policy *p, const tb_addr *a, const char **why)
{
    tb_addr_scope s = tb_addr_scope_of(a);
    if (a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6)
        return deny(why, "not an IPv4 or IPv6 address");
    if (p->family && a->ss.ss_family != p->family)
        return deny(why, p->family == AF_INET6 ? "not IPv6 (this node listens on IPv6)"
                                               : "not IPv4 (this node listens on IPv4)");
    switch (s) {
    case TB_ADDR_SCOPE_UNICAST:
        break;
    case TB_ADDR_SCOPE_LOOPBACK:
        if (!p->allow_loopback)
            return deny(why, "loopback address (this node does not listen on loopback)");
        break;
    case TB_ADDR_SCOPE_UNSPECIFIED:
        return deny(why, "unspecified address (0.0.0.0/8 or ::)");
    case TB_ADDR_SCOPE_LINK_LOCAL:
        return deny(why, "link-local address (169.254.0.0/16 or fe80::/10)");
    case TB_ADDR_SCOPE_MULTICAST:
        return deny(why, "multicast address");
    case TB_ADDR_SCOPE_BROADCAST:
        return deny(why, "broadcast or reserved address (240.0.0.0/4)");
    }
    if (p->nranges == 0)
        return TB_OK;
    for (size_t i = 0; i < p->nranges && i < TB_ADDR_RANGES_MAX; i++) {
        if (tb_addr_range_contains(&p->ranges[i], a))
            return TB_OK;
    }
    return deny(why, "outside mesh.allowed_ranges");
}

int tb_addr_policy_check_text(const tb_addr_policy *p, const char *s, size_t len, const char **why)
{
    tb_addr_hostport hp;
    tb_addr a;
    if (tb_addr_parse(s, len, 0, &hp, why) != TB_OK)
        return TB_ERR_INVAL;
    if (hp.kind == TB_ADDR_NAME)
        return p->allow_names ? TB_OK : deny(why, "a host name (mesh.allow_names is off)");
    if (tb_addr_from_hostport(&hp, &a) != TB_OK)
        return deny(why, "not a numeric IP address");
    return tb_addr_policy_check(p, &a, why);
}
