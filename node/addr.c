#include "node/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int fail(const char **why, const char *text)
{
    if (why)
        *why = text;
    return TB_ERR_INVAL;
}

static int parse_port(const char *s, size_t len, int flags, uint16_t *out, const char **why)
{
    if (len == 0)
        return fail(why, "missing port after ':'");
    if (len > 5)
        return fail(why, "port is not a number from 1 to 65535");
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(why, "port is not a number from 1 to 65535");
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (v == 0 && !(flags & TB_ADDR_PORT_ZERO_OK)))
        return fail(why, "port is not a number from 1 to 65535");
    *out = (uint16_t)v;
    return TB_OK;
}

static int is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-', 1..63 characters each,
 * not starting or ending with '-'. A single trailing dot (fully qualified) is accepted. */
static int check_host_name(const char *s, size_t len, const char **why)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return fail(why, "missing host before ':'");
    if (len > TB_ADDR_HOST_MAX)
        return fail(why, "host name longer than 253 characters");
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0)
                return fail(why, "host name has an empty label");
            if (label > 63)
                return fail(why, "host name label longer than 63 characters");
            if (s[i - 1] == '-' || s[i - label] == '-')
                return fail(why, "host name label starts or ends with '-'");
            label = 0;
            continue;
        }
        if (!is_label_char(s[i]))
            return fail(why, "host is not an IPv4 address, a [bracketed] IPv6 address or a name");
        label++;
    }
    return TB_OK;
}

static int all_digits_and_dots(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return 1;
}

static int parse_bracketed(const char *s, size_t len, int flags, tb_hostport *out, const char **why)
{
    const char *close = memchr(s, ']', len);
    if (!close)
        return fail(why, "'[' without a closing ']'");
    size_t hlen = (size_t)(close - s) - 1;
    if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
        return fail(why, "not an IPv6 address inside [ ]");
    char host[INET6_ADDRSTRLEN];
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';
    struct in6_addr a6;
    if (strlen(host) != hlen || inet_pton(AF_INET6, host, &a6) != 1)
        return fail(why, "not an IPv6 address inside [ ]");
    size_t rest = len - (size_t)(close - s) - 1;
    if (rest == 0 || close[1] != ':')
        return fail(why, "missing ':PORT' after ']'");
    if (parse_port(close + 2, rest - 1, flags, &out->port, why) != TB_OK)
        return TB_ERR_INVAL;
    out->kind = TB_ADDR_IPV6;
    memcpy(out->host, host, hlen + 1);
    return TB_OK;
}

int tb_addr_parse(const char *s, size_t len, int flags, tb_hostport *out, const char **why)
{
    if (!s || len == 0)
        return fail(why, "empty address");
    if (memchr(s, '\0', len))
        return fail(why, "contains a NUL byte");
    tb_hostport hp;
    memset(&hp, 0, sizeof(hp));
    if (s[0] == '[') {
        if (parse_bracketed(s, len, flags, &hp, why) != TB_OK)
            return TB_ERR_INVAL;
        *out = hp;
        return TB_OK;
    }
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return fail(why, "missing ':PORT' (as in 127.0.0.1:4433)");
    size_t hlen = (size_t)(colon - s);
    if (memchr(colon + 1, ':', len - hlen - 1))
        return fail(why, "IPv6 addresses need brackets, as in [::1]:4433");
    if (parse_port(colon + 1, len - hlen - 1, flags, &hp.port, why) != TB_OK)
        return TB_ERR_INVAL;
    if (hlen == 0)
        return fail(why, "missing host before ':'");
    if (hlen > TB_ADDR_HOST_MAX)
        return fail(why, "host name longer than 253 characters");
    memcpy(hp.host, s, hlen);
    hp.host[hlen] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, hp.host, &a4) == 1) {
        hp.kind = TB_ADDR_IPV4;
    } else if (all_digits_and_dots(s, hlen)) {
        return fail(why, "not an IPv4 address");
    } else {
        if (check_host_name(s, hlen, why) != TB_OK)
            return TB_ERR_INVAL;
        hp.kind = TB_ADDR_NAME;
    }
    *out = hp;
    return TB_OK;
}

void tb_hostport_format(const tb_hostport *hp, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    if (hp->kind == TB_ADDR_IPV6)
        snprintf(buf, buflen, "[%s]:%u", hp->host, (unsigned)hp->port);
    else
        snprintf(buf, buflen, "%s:%u", hp->host, (unsigned)hp->port);
}
