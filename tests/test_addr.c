/* common/addr.h, the one address parser: IPv4, bracketed IPv6, host names (kept unresolved),
 * default ports, every rejection (the cases of the five parsers it replaced), conversion to
 * socket addresses, formatting and equality. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "tests/tb_test.h"

static int parse(const char *s, int flags, tb_addr_hostport *hp, const char **why)
{
    return tb_addr_parse(s, strlen(s), flags, hp, why);
}

static void test_ipv4(void)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(parse("127.0.0.1:4433", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_IPV4);
    TB_CHECK_STR(hp.host, "127.0.0.1");
    TB_CHECK_EQ(hp.port, 4433);
    TB_REQUIRE(parse("0.0.0.0:65535", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.port, 65535);
}

static void test_ipv6(void)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(parse("[::1]:4433", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_IPV6);
    TB_CHECK_STR(hp.host, "::1");
    TB_CHECK_EQ(hp.port, 4433);
    TB_REQUIRE(parse("[2001:db8::5:1]:1", 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "2001:db8::5:1");
    char buf[80];
    tb_addr_hostport_format(&hp, buf, sizeof(buf));
    TB_CHECK_STR(buf, "[2001:db8::5:1]:1");
}

static void test_names(void)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(parse("host.name:4433", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_NAME);
    TB_CHECK_STR(hp.host, "host.name");
    TB_REQUIRE(parse("localhost:1", 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "localhost");
    TB_REQUIRE(parse("node-1.eu-west.example.:9", 0, &hp, &why) == TB_OK);
    char buf[300];
    tb_addr_hostport_format(&hp, buf, sizeof(buf));
    TB_CHECK_STR(buf, "node-1.eu-west.example.:9");
    /* A name that does not exist still parses: resolution happens at dial time. */
    TB_CHECK(parse("does-not-exist.invalid:4433", 0, &hp, &why) == TB_OK);
}

static void test_port_zero(void)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    TB_CHECK(parse("127.0.0.1:0", 0, &hp, &why) == TB_ERR_INVAL);
    TB_CHECK_STR(why, "port is not a number from 1 to 65535");
    TB_REQUIRE(parse("127.0.0.1:0", TB_ADDR_PORT_ZERO_OK, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.port, 0);
}

static void test_rejections(void)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"", "empty address"},
        {"127.0.0.1", "missing ':PORT' (as in 127.0.0.1:4433)"},
        {"127.0.0.1:", "missing port after ':'"},
        {"127.0.0.1:65536", "port is not a number from 1 to 65535"},
        {"127.0.0.1:123456", "port is not a number from 1 to 65535"},
        {"127.0.0.1:44a", "port is not a number from 1 to 65535"},
        {"127.0.0.1:-1", "port is not a number from 1 to 65535"},
        {":4433", "missing host before ':'"},
        {"::1:4433", "IPv6 addresses need brackets, as in [::1]:4433"},
        {"[::1]4433", "missing ':PORT' after ']'"},
        {"[::1]", "missing ':PORT' after ']'"},
        {"[::1:4433", "'[' without a closing ']'"},
        {"[]:4433", "not an IPv6 address inside [ ]"},
        {"[127.0.0.1]:4433", "not an IPv6 address inside [ ]"},
        {"[zz::1]:4433", "not an IPv6 address inside [ ]"},
        {"256.0.0.1:4433", "not an IPv4 address"},
        {"1.2.3:4433", "not an IPv4 address"},
        {"host_name:4433", "host is not an IPv4 address, a [bracketed] IPv6 address or a name"},
        {"a..b:4433", "host name has an empty label"},
        {"-a.b:4433", "host name label starts or ends with '-'"},
        {"a-.b:4433", "host name label starts or ends with '-'"},
        {"a b:4433", "host is not an IPv4 address, a [bracketed] IPv6 address or a name"},
        /* What roughtime/udp.c's and quic/endpoint.c's parsers let through. */
        {"1.2.3.4: 80", "port is not a number from 1 to 65535"},
        {"1.2.3.4:-0", "port is not a number from 1 to 65535"},
        {"1.2.3.4:+443", "port is not a number from 1 to 65535"},
        {" 1.2.3.4:80", "host is not an IPv4 address, a [bracketed] IPv6 address or a name"},
        {"1.2.3.4:80 ", "port is not a number from 1 to 65535"},
        {"[::1]:80x", "port is not a number from 1 to 65535"},
        /* discovery/peers.c's rules for learned addresses. */
        {"127.0.0.1:04433", "port has a leading zero"},
        {"127.0.0.1:00", "port has a leading zero"},
        {"[::1%eth0]:4433", "not an IPv6 address inside [ ]"},
        {"bad-.org:4433", "host name label starts or ends with '-'"},
        {".:4433", "host name has an empty label"},
        {"a.:b:4433", "IPv6 addresses need brackets, as in [::1]:4433"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tb_addr_hostport hp;
        const char *why = NULL;
        int rc = parse(cases[i].in, 0, &hp, &why);
        if (rc != TB_ERR_INVAL || !why || strcmp(why, cases[i].why) != 0)
            fprintf(stderr, "case '%s': rc %d why '%s'\n", cases[i].in, rc, why ? why : "");
        TB_CHECK_EQ(rc, TB_ERR_INVAL);
        TB_CHECK_STR(why, cases[i].why);
    }
}

static void test_lengths(void)
{
    char s[400];
    tb_addr_hostport hp;
    const char *why = NULL;
    /* 63-character label: accepted; 64: rejected. */
    memset(s, 'a', 63);
    memcpy(s + 63, ":1", 3);
    TB_CHECK(parse(s, 0, &hp, &why) == TB_OK);
    memset(s, 'a', 64);
    memcpy(s + 64, ":1", 3);
    TB_CHECK(parse(s, 0, &hp, &why) == TB_ERR_INVAL);
    TB_CHECK_STR(why, "host name label longer than 63 characters");
    /* 254-character host: too long, however it is split into labels. */
    for (int i = 0; i < 254; i++)
        s[i] = (i % 50 == 49) ? '.' : 'b';
    memcpy(s + 254, ":1", 3);
    TB_CHECK(parse(s, 0, &hp, &why) == TB_ERR_INVAL);
    TB_CHECK_STR(why, "host name longer than 253 characters");
    /* Length is taken from len, not from a terminator: an embedded NUL is refused. */
    TB_CHECK(tb_addr_parse("a\0b:1", 5, 0, &hp, &why) == TB_ERR_INVAL);
    TB_CHECK_STR(why, "contains a NUL byte");
    /* And only len bytes are read. */
    TB_REQUIRE(tb_addr_parse("10.0.0.1:4433garbage", 13, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.port, 4433);
}

static void test_default_port(void)
{
    tb_addr_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(tb_addr_parse_default("127.0.0.71:11123", 16, 123, 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "127.0.0.71");
    TB_CHECK_EQ(hp.port, 11123);
    TB_REQUIRE(tb_addr_parse_default("pool.example", 12, 123, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_NAME);
    TB_CHECK_STR(hp.host, "pool.example");
    TB_CHECK_EQ(hp.port, 123);
    TB_REQUIRE(tb_addr_parse_default("[::1]:9", 7, 123, 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "::1");
    TB_CHECK_EQ(hp.port, 9);
    TB_REQUIRE(tb_addr_parse_default("[::1]", 5, 123, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.port, 123);
    /* A bare IPv6 literal is an address, not host "fe80" and port ":1". */
    TB_REQUIRE(tb_addr_parse_default("fe80::1", 7, 123, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_IPV6);
    TB_CHECK_STR(hp.host, "fe80::1");
    TB_CHECK_EQ(hp.port, 123);
    TB_REQUIRE(tb_addr_parse_default("10.0.0.1", 8, 2002, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_IPV4);
    TB_CHECK_EQ(hp.port, 2002);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "empty address"},
        {"a:0", "port is not a number from 1 to 65535"},
        {"a:x", "port is not a number from 1 to 65535"},
        {"a:", "missing port after ':'"},
        {"[::1", "'[' without a closing ']'"},
        {"[::1]x", "missing ':PORT' after ']'"},
        {"fe80::zz", "IPv6 addresses need brackets, as in [::1]:4433"},
        {"a_b", "host is not an IPv4 address, a [bracketed] IPv6 address or a name"},
        {" a", "host is not an IPv4 address, a [bracketed] IPv6 address or a name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        TB_CHECK_EQ(tb_addr_parse_default(bad[i].in, strlen(bad[i].in), 123, 0, &hp, &why),
                    TB_ERR_INVAL);
        TB_CHECK_STR(why, bad[i].why);
    }
}

static void test_port_alone(void)
{
    uint16_t port = 7;
    const char *why = NULL;
    TB_REQUIRE(tb_addr_port_parse("65535", 5, 0, &port, &why) == TB_OK);
    TB_CHECK_EQ(port, 65535);
    TB_REQUIRE(tb_addr_port_parse("0", 1, TB_ADDR_PORT_ZERO_OK, &port, &why) == TB_OK);
    TB_CHECK_EQ(port, 0);
    port = 7;
    TB_CHECK_EQ(tb_addr_port_parse("0", 1, 0, &port, &why), TB_ERR_INVAL);
    TB_CHECK_STR(why, "port is not a number from 1 to 65535");
    TB_CHECK_EQ(tb_addr_port_parse("65536", 5, TB_ADDR_PORT_ZERO_OK, &port, &why), TB_ERR_INVAL);
    TB_CHECK_STR(why, "port is not a number from 0 to 65535");
    TB_CHECK_EQ(tb_addr_port_parse("-0", 2, TB_ADDR_PORT_ZERO_OK, &port, &why), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_addr_port_parse(" 80", 3, 0, &port, &why), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_addr_port_parse("", 0, 0, &port, &why), TB_ERR_INVAL);
    TB_CHECK_STR(why, "missing port after ':'");
    TB_CHECK_EQ(port, 7); /* failures leave the output alone */
}

static void test_numeric(void)
{
    tb_addr a, b;
    char text[64];
    const char *why = NULL;
    TB_REQUIRE(tb_addr_numeric("::1", 123, &a) == TB_OK);
    TB_CHECK_EQ(a.ss.ss_family, AF_INET6);
    TB_CHECK_EQ(a.len, sizeof(struct sockaddr_in6));
    tb_addr_format(&a, text, sizeof(text));
    TB_CHECK_STR(text, "[::1]:123");
    TB_CHECK_EQ(tb_addr_numeric("pool.example", 123, &a), TB_ERR_NOTFOUND);

    TB_REQUIRE(tb_addr_parse_numeric("127.0.0.1:80", 12, 0, &a, &why) == TB_OK);
    TB_CHECK_EQ(a.ss.ss_family, AF_INET);
    TB_CHECK_EQ(a.len, sizeof(struct sockaddr_in));
    TB_CHECK_EQ(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 80);
    tb_addr_format(&a, text, sizeof(text));
    TB_CHECK_STR(text, "127.0.0.1:80");
    TB_REQUIRE(tb_addr_parse_numeric("127.0.0.1:0", 11, TB_ADDR_PORT_ZERO_OK, &b, &why) == TB_OK);
    TB_CHECK(!tb_addr_equal(&a, &b)); /* port differs */
    TB_REQUIRE(tb_addr_parse_numeric("127.0.0.1:80", 12, 0, &b, &why) == TB_OK);
    TB_CHECK(tb_addr_equal(&a, &b));
    TB_REQUIRE(tb_addr_parse_numeric("[::ffff:127.0.0.1]:80", 21, 0, &b, &why) == TB_OK);
    TB_CHECK(!tb_addr_equal(&a, &b)); /* a mapped address is another family */
    TB_REQUIRE(tb_addr_parse_numeric("[2001:db8::1]:443", 17, 0, &a, &why) == TB_OK);
    TB_REQUIRE(tb_addr_parse_numeric("[2001:DB8:0::1]:443", 19, 0, &b, &why) == TB_OK);
    TB_CHECK(tb_addr_equal(&a, &b)); /* compared as addresses, not as text */
    tb_addr_format(&b, text, sizeof(text));
    TB_CHECK_STR(text, "[2001:db8::1]:443");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4433)};
    sin.sin_addr.s_addr = htonl(0x7f00000a);
    tb_addr_format_sockaddr((const struct sockaddr *)&sin, text, sizeof(text));
    TB_CHECK_STR(text, "127.0.0.10:4433");

    TB_CHECK_EQ(tb_addr_parse_numeric("localhost:2002", 14, 0, &a, &why), TB_ERR_INVAL);
    TB_CHECK_STR(why, "not a numeric IP address (a host name is not allowed here)");
    TB_CHECK_EQ(tb_addr_parse_numeric("127.0.0.1", 9, 0, &a, &why), TB_ERR_INVAL);
    TB_CHECK_STR(why, "missing ':PORT' (as in 127.0.0.1:4433)");
    TB_CHECK_EQ(tb_addr_parse_numeric("::1:443", 7, 0, &a, &why), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_addr_parse_numeric("1.2.3.4:65536", 13, 0, &a, &why), TB_ERR_INVAL);

    tb_addr_hostport hp;
    TB_REQUIRE(tb_addr_parse("name.example:1", 14, 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(tb_addr_from_hostport(&hp, &a), TB_ERR_NOTFOUND);
    TB_REQUIRE(tb_addr_parse("[::2]:7", 7, 0, &hp, &why) == TB_OK);
    TB_REQUIRE(tb_addr_from_hostport(&hp, &a) == TB_OK);
    tb_addr_format(&a, text, sizeof(text));
    TB_CHECK_STR(text, "[::2]:7");
    memset(&a, 0, sizeof(a));
    tb_addr_format(&a, text, sizeof(text));
    TB_CHECK_STR(text, "?");
    TB_CHECK(!tb_addr_equal(&a, &a)); /* no family: equal to nothing */
}

static int text_ok(const tb_addr_policy *p, const char *s)
{
    const char *why = NULL;
    return tb_addr_policy_check_text(p, s, strlen(s), &why) == TB_OK;
}

static tb_addr_scope scope(const char *host)
{
    tb_addr a;
    if (tb_addr_numeric(host, 1, &a) != TB_OK)
        return (tb_addr_scope)-1;
    return tb_addr_scope_of(&a);
}

static void test_scopes(void)
{
    TB_CHECK_EQ(scope("10.1.2.3"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("192.0.2.1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("223.255.255.255"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("127.0.0.1"), TB_ADDR_SCOPE_LOOPBACK);
    TB_CHECK_EQ(scope("127.255.0.9"), TB_ADDR_SCOPE_LOOPBACK);
    TB_CHECK_EQ(scope("0.0.0.0"), TB_ADDR_SCOPE_UNSPECIFIED);
    TB_CHECK_EQ(scope("0.1.2.3"), TB_ADDR_SCOPE_UNSPECIFIED);
    TB_CHECK_EQ(scope("169.254.169.254"), TB_ADDR_SCOPE_LINK_LOCAL);
    TB_CHECK_EQ(scope("169.253.0.1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("224.0.0.1"), TB_ADDR_SCOPE_MULTICAST);
    TB_CHECK_EQ(scope("239.255.255.250"), TB_ADDR_SCOPE_MULTICAST);
    TB_CHECK_EQ(scope("240.0.0.1"), TB_ADDR_SCOPE_BROADCAST);
    TB_CHECK_EQ(scope("255.255.255.255"), TB_ADDR_SCOPE_BROADCAST);
    TB_CHECK_EQ(scope("2001:db8::1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("fd00::1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("::1"), TB_ADDR_SCOPE_LOOPBACK);
    TB_CHECK_EQ(scope("::"), TB_ADDR_SCOPE_UNSPECIFIED);
    TB_CHECK_EQ(scope("fe80::1"), TB_ADDR_SCOPE_LINK_LOCAL);
    TB_CHECK_EQ(scope("febf::1"), TB_ADDR_SCOPE_LINK_LOCAL);
    TB_CHECK_EQ(scope("fec0::1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_EQ(scope("ff02::1"), TB_ADDR_SCOPE_MULTICAST);
    /* An IPv4-mapped address is what it maps to. */
    TB_CHECK_EQ(scope("::ffff:169.254.169.254"), TB_ADDR_SCOPE_LINK_LOCAL);
    TB_CHECK_EQ(scope("::ffff:127.0.0.1"), TB_ADDR_SCOPE_LOOPBACK);
    TB_CHECK_EQ(scope("::ffff:10.0.0.1"), TB_ADDR_SCOPE_UNICAST);
    TB_CHECK_STR(tb_addr_scope_name(TB_ADDR_SCOPE_LINK_LOCAL), "link-local");
}

static void test_ranges(void)
{
    tb_addr_range r;
    const char *why = NULL;
    tb_addr a;
    TB_REQUIRE(tb_addr_range_parse("10.0.0.0/8", 10, &r, &why) == TB_OK);
    TB_CHECK_EQ(r.family, AF_INET);
    TB_CHECK_EQ(r.bits, 8);
    TB_REQUIRE(tb_addr_numeric("10.200.1.1", 1, &a) == TB_OK);
    TB_CHECK(tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_numeric("11.0.0.1", 1, &a) == TB_OK);
    TB_CHECK(!tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_numeric("::ffff:10.0.0.1", 1, &a) == TB_OK);
    TB_CHECK(tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_range_parse("192.168.4.0/22", 14, &r, &why) == TB_OK);
    TB_REQUIRE(tb_addr_numeric("192.168.7.255", 1, &a) == TB_OK);
    TB_CHECK(tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_numeric("192.168.8.0", 1, &a) == TB_OK);
    TB_CHECK(!tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_range_parse("2001:db8::/32", 13, &r, &why) == TB_OK);
    TB_REQUIRE(tb_addr_numeric("2001:db8:ffff::1", 1, &a) == TB_OK);
    TB_CHECK(tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_numeric("10.0.0.1", 1, &a) == TB_OK);
    TB_CHECK(!tb_addr_range_contains(&r, &a)); /* other family */
    TB_REQUIRE(tb_addr_range_parse("0.0.0.0/0", 9, &r, &why) == TB_OK);
    TB_CHECK(tb_addr_range_contains(&r, &a));
    TB_REQUIRE(tb_addr_range_parse("10.1.2.3", 8, &r, &why) == TB_OK);
    TB_CHECK_EQ(r.bits, 32);
    static const char *const bad[] = {
        "",       "10.0.0.0/", "10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/08", "10.0.0.0/-1",
        "host/8", "::/129",    "10.0.0.0/8 ", "10.0.0.0/1x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        TB_CHECK(tb_addr_range_parse(bad[i], strlen(bad[i]), &r, &why) == TB_ERR_INVAL);
        TB_CHECK(why != NULL);
    }
}

static void test_policy(void)
{
    tb_addr_policy p = {.family = AF_INET};
    TB_CHECK(text_ok(&p, "10.1.2.3:4433"));
    TB_CHECK(text_ok(&p, "203.0.113.9:4433"));
    TB_CHECK(!text_ok(&p, "127.0.0.1:4433"));
    TB_CHECK(!text_ok(&p, "169.254.169.254:80"));
    TB_CHECK(!text_ok(&p, "224.0.0.251:5353"));
    TB_CHECK(!text_ok(&p, "255.255.255.255:4433"));
    TB_CHECK(!text_ok(&p, "0.0.0.0:4433"));
    TB_CHECK(!text_ok(&p, "0.10.0.1:4433"));
    TB_CHECK(!text_ok(&p, "[2001:db8::1]:4433")); /* this node speaks IPv4 */
    TB_CHECK(!text_ok(&p, "node.example:4433"));  /* names are off by default */
    TB_CHECK(!text_ok(&p, "10.1.2.3"));           /* syntax: the port is required */
    const char *why = NULL;
    TB_CHECK(tb_addr_policy_check_text(&p, "169.254.169.254:80", 18, &why) == TB_ERR_INVAL);
    TB_CHECK(why && strstr(why, "link-local"));

    p.allow_loopback = 1;
    p.allow_names = 1;
    TB_CHECK(text_ok(&p, "127.0.0.5:4433"));
    TB_CHECK(text_ok(&p, "node.example:4433"));
    TB_CHECK(!text_ok(&p, "169.254.1.1:4433")); /* link-local stays out whatever is allowed */

    TB_REQUIRE(tb_addr_range_parse("10.0.0.0/8", 10, &p.ranges[0], &why) == TB_OK);
    TB_REQUIRE(tb_addr_range_parse("127.0.0.0/8", 11, &p.ranges[1], &why) == TB_OK);
    p.nranges = 2;
    TB_CHECK(text_ok(&p, "10.9.9.9:1"));
    TB_CHECK(text_ok(&p, "127.0.0.9:1"));
    why = NULL;
    TB_CHECK(tb_addr_policy_check_text(&p, "192.168.1.1:1", 13, &why) == TB_ERR_INVAL);
    TB_CHECK(why && strstr(why, "allowed_ranges"));
    /* A range cannot let in what is never allowed. */
    TB_REQUIRE(tb_addr_range_parse("0.0.0.0/0", 9, &p.ranges[2], &why) == TB_OK);
    p.nranges = 3;
    TB_CHECK(!text_ok(&p, "224.0.0.1:1"));
    TB_CHECK(!text_ok(&p, "169.254.169.254:80"));

    tb_addr_policy v6 = {.family = AF_INET6};
    TB_CHECK(text_ok(&v6, "[2001:db8::1]:4433"));
    TB_CHECK(!text_ok(&v6, "[fe80::1]:4433"));
    TB_CHECK(!text_ok(&v6, "[ff02::1]:4433"));
    TB_CHECK(!text_ok(&v6, "[::]:4433"));
    TB_CHECK(!text_ok(&v6, "[::1]:4433"));
    TB_CHECK(!text_ok(&v6, "[::ffff:169.254.169.254]:80"));
    TB_CHECK(!text_ok(&v6, "10.0.0.1:4433"));
    tb_addr_policy any = {0};
    TB_CHECK(text_ok(&any, "10.0.0.1:4433"));
    TB_CHECK(text_ok(&any, "[2001:db8::1]:4433"));
}

int main(void)
{
    TB_RUN(test_ipv4);
    TB_RUN(test_ipv6);
    TB_RUN(test_names);
    TB_RUN(test_port_zero);
    TB_RUN(test_rejections);
    TB_RUN(test_lengths);
    TB_RUN(test_default_port);
    TB_RUN(test_port_alone);
    TB_RUN(test_numeric);
    TB_RUN(test_scopes);
    TB_RUN(test_ranges);
    TB_RUN(test_policy);
    return TB_DONE();
}
