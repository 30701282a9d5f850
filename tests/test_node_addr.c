/* Address strings: IPv4, bracketed IPv6, host names (kept unresolved), and every rejection. */
#include "node/addr.h"
#include "tests/tb_test.h"

static int parse(const char *s, int flags, tb_hostport *hp, const char **why)
{
    return tb_addr_parse(s, strlen(s), flags, hp, why);
}

static void test_ipv4(void)
{
    tb_hostport hp;
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
    tb_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(parse("[::1]:4433", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_IPV6);
    TB_CHECK_STR(hp.host, "::1");
    TB_CHECK_EQ(hp.port, 4433);
    TB_REQUIRE(parse("[2001:db8::5:1]:1", 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "2001:db8::5:1");
    char buf[80];
    tb_hostport_format(&hp, buf, sizeof(buf));
    TB_CHECK_STR(buf, "[2001:db8::5:1]:1");
}

static void test_names(void)
{
    tb_hostport hp;
    const char *why = NULL;
    TB_REQUIRE(parse("host.name:4433", 0, &hp, &why) == TB_OK);
    TB_CHECK_EQ(hp.kind, TB_ADDR_NAME);
    TB_CHECK_STR(hp.host, "host.name");
    TB_REQUIRE(parse("localhost:1", 0, &hp, &why) == TB_OK);
    TB_CHECK_STR(hp.host, "localhost");
    TB_REQUIRE(parse("node-1.eu-west.example.:9", 0, &hp, &why) == TB_OK);
    char buf[300];
    tb_hostport_format(&hp, buf, sizeof(buf));
    TB_CHECK_STR(buf, "node-1.eu-west.example.:9");
    /* A name that does not exist still parses: resolution happens at dial time. */
    TB_CHECK(parse("does-not-exist.invalid:4433", 0, &hp, &why) == TB_OK);
}

static void test_port_zero(void)
{
    tb_hostport hp;
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
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tb_hostport hp;
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
    tb_hostport hp;
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

int main(void)
{
    TB_RUN(test_ipv4);
    TB_RUN(test_ipv6);
    TB_RUN(test_names);
    TB_RUN(test_port_zero);
    TB_RUN(test_rejections);
    TB_RUN(test_lengths);
    return TB_DONE();
}
