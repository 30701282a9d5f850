#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static int fail(const char **why, const char *text)
{
    if (why)
        *why = text;
    return TB_ERR_INVAL;
}

int tb_addr_port_parse(const char *s, size_t len, int flags, uint16_t *out, const char **why)
{
    const char *range = (flags & TB_ADDR_PORT_ZERO_OK) ? "port is not a number from 0 to 65535"
                                                       : "port is not a number from 1 to 65535";
    if (len == 0)
        return fail(why, "missing port after ':'");
    if (len > 5)
        return fail(why, range);
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(why, range);
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    /* One spelling per port, so that equal addresses compare equal as text. */
    if (len > 1 && s[0] == '0')
        return fail(why, "port has a leading zero");
    if (v > 65535 || (v == 0 && !(flags & TB_ADDR_PORT_ZERO_OK)))
        return fail(why, range);
    *out = (uint16_t)v;
    return TB_OK;
}

static int is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* RFC 1123 host name; a single trailing dot (fully qualified) is accepted. */
static int check_host_name(const char *s, size_t len, const char **why)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return fail(why, "host name has an empty label");
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

/* Looks like an attempt at an IPv4 address (RFC 1123 keeps such text from being a name). */
static int all_digits_and_dots(const char *s, size_t len)
{
    int digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            return 0;
        digits += s[i] != '.';
    }
    return digits > 0;
}

/* Copies s[0..len) into out when it is an IPv6 address (inet_pton needs the terminator). */
static int ipv6_text(const char *s, size_t len, char out[INET6_ADDRSTRLEN])
{
    struct in6_addr a6;
    if (len == 0 || len >= INET6_ADDRSTRLEN)
        return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return inet_pton(AF_INET6, out, &a6) == 1;
}

/* An unbracketed host: IPv4 address or name. */
static int set_host(const char *s, size_t len, int flags, tb_addr_hostport *hp, const char **why)
{
    if (len == 0)
        return fail(why, "missing host before ':'");
    if (len > TB_ADDR_HOST_MAX)
        return fail(why, "host name longer than 253 characters");
    memcpy(hp->host, s, len);
    hp->host[len] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, hp->host, &a4) == 1) {
        hp->kind = TB_ADDR_IPV4;
        return TB_OK;
    }
    if (all_digits_and_dots(s, len))
        return fail(why, "not an IPv4 address");
    if (flags & TB_ADDR_NUMERIC)
        return fail(why, "not a numeric IP address (a host name is not allowed here)");
    if (check_host_name(s, len, why) != TB_OK)
        return TB_ERR_INVAL;
    hp->kind = TB_ADDR_NAME;
    return TB_OK;
}

static int parse_bracketed(const char *s, size_t len, const uint16_t *default_port, int flags,
                           tb_addr_hostport *hp, const char **why)
{
    const char *close = memchr(s, ']', len);
    if (!close)
        return fail(why, "'[' without a closing ']'");
    size_t hlen = (size_t)(close - s) - 1;
    if (!ipv6_text(s + 1, hlen, hp->host))
        return fail(why, "not an IPv6 address inside [ ]");
    hp->kind = TB_ADDR_IPV6;
    size_t rest = len - hlen - 2;
    if (rest == 0 && default_port) {
        hp->port = *default_port;
        return TB_OK;
    }
    if (rest == 0 || close[1] != ':')
        return fail(why, "missing ':PORT' after ']'");
    return tb_addr_port_parse(close + 2, rest - 1, flags, &hp->port, why);
}

/* default_port NULL: the port is required. */
static int parse(const char *s, size_t len, const uint16_t *default_port, int flags,
                 tb_addr_hostport *out, const char **why)
{
    if (!s || len == 0)
        return fail(why, "empty address");
    if (memchr(s, '\0', len))
        return fail(why, "contains a NUL byte");
    tb_addr_hostport hp;
    memset(&hp, 0, sizeof(hp));
    if (s[0] == '[') {
        if (parse_bracketed(s, len, default_port, flags, &hp, why) != TB_OK)
            return TB_ERR_INVAL;
        *out = hp;
        return TB_OK;
    }
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (colon && memchr(colon + 1, ':', len - hlen - 1)) {
        if (!default_port || !ipv6_text(s, len, hp.host))
            return fail(why, "IPv6 addresses need brackets, as in [::1]:4433");
        hp.kind = TB_ADDR_IPV6;
        hp.port = *default_port;
        *out = hp;
        return TB_OK;
    }
    if (!colon && !default_port)
        return fail(why, "missing ':PORT' (as in 127.0.0.1:4433)");
    if (colon && tb_addr_port_parse(colon + 1, len - hlen - 1, flags, &hp.port, why) != TB_OK)
        return TB_ERR_INVAL;
    if (!colon)
        hp.port = *default_port;
    if (set_host(s, hlen, flags, &hp, why) != TB_OK)
        return TB_ERR_INVAL;
    *out = hp;
    return TB_OK;
}

int tb_addr_parse(const char *s, size_t len, int flags, tb_addr_hostport *out, const char **why)
{
    return parse(s, len, NULL, flags, out, why);
}

int tb_addr_parse_default(const char *s, size_t len, uint16_t default_port, int flags,
                          tb_addr_hostport *out, const char **why)
{
    return parse(s, len, &default_port, flags, out, why);
}

void tb_addr_hostport_format(const tb_addr_hostport *hp, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    if (hp->kind == TB_ADDR_IPV6)
        snprintf(buf, buflen, "[%s]:%u", hp->host, (unsigned)hp->port);
    else
        snprintf(buf, buflen, "%s:%u", hp->host, (unsigned)hp->port);
}

int tb_addr_numeric(const char *host, uint16_t port, tb_addr *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out->len = sizeof(*v4);
        return TB_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out->len = sizeof(*v6);
        return TB_OK;
    }
    memset(out, 0, sizeof(*out));
    return TB_ERR_NOTFOUND;
}

int tb_addr_from_hostport(const tb_addr_hostport *hp, tb_addr *out)
{
    if (hp->kind == TB_ADDR_NAME) {
        memset(out, 0, sizeof(*out));
        return TB_ERR_NOTFOUND;
    }
    return tb_addr_numeric(hp->host, hp->port, out);
}

int tb_addr_parse_numeric(const char *s, size_t len, int flags, tb_addr *out, const char **why)
{
    tb_addr_hostport hp;
    if (tb_addr_parse(s, len, flags | TB_ADDR_NUMERIC, &hp, why) != TB_OK)
        return TB_ERR_INVAL;
    if (tb_addr_from_hostport(&hp, out) != TB_OK)
        return fail(why, "not a numeric IP address");
    return TB_OK;
}

void tb_addr_format(const tb_addr *a, char *buf, size_t len)
{
    tb_addr_format_sockaddr((const struct sockaddr *)&a->ss, buf, len);
}

void tb_addr_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

int tb_addr_equal(const tb_addr *a, const tb_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}
