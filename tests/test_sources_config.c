#include "sources/config.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/cfg.h"
#include "tb_test.h"

/* 32 bytes 0x00..0x1f in base64. */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static int parse_text(const char *text, tb_source_config_list *out, char *err, size_t errlen)
{
    config_t cfg;
    config_init(&cfg);
    int rc = TB_ERR_INVAL;
    if (tb_cfg_read_string(&cfg, text, "config", err, errlen) == TB_OK)
        rc = tb_sources_config_parse(config_lookup(&cfg, "sources"), out, err, errlen);
    config_destroy(&cfg);
    return rc;
}

static void test_parse_all_kinds(void)
{
    const char *text = "sources = (\n"
                       "  { kind = \"ntp\"; address = \"127.0.0.71:11123\"; minpoll = 4;"
                       "    maxpoll = 8; unreachable_after = 3; },\n"
                       "  { kind = \"pool\"; name = \"pool.example\"; count = 3;"
                       "    resolve_interval = 600; },\n"
                       "  { kind = \"roughtime\"; address = \"rt.example:2002\";"
                       "    public_key = \"" KEY_B64 "\"; },\n"
                       "  { kind = \"ntp\"; address = \"[::1]:123\"; }\n"
                       ");\n";
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(parse_text(text, &l, err, sizeof(err)) == 0);
    TB_REQUIRE(l.n == 4);
    TB_CHECK_EQ(l.items[0].kind, TB_SOURCE_NTP);
    TB_CHECK_STR(l.items[0].address, "127.0.0.71:11123");
    TB_CHECK_EQ(l.items[0].minpoll, 4);
    TB_CHECK_EQ(l.items[0].maxpoll, 8);
    TB_CHECK_EQ(l.items[0].unreach_after, 3);
    TB_CHECK_EQ(l.items[0].line, 2);
    TB_CHECK_EQ(l.items[1].kind, TB_SOURCE_POOL);
    TB_CHECK_STR(l.items[1].name, "pool.example");
    TB_CHECK_EQ(l.items[1].count, 3);
    TB_CHECK_EQ(l.items[1].resolve_interval, 600);
    TB_CHECK_EQ(l.items[1].minpoll, 6); /* defaults */
    TB_CHECK_EQ(l.items[1].maxpoll, 10);
    TB_CHECK_EQ(l.items[2].kind, TB_SOURCE_ROUGHTIME);
    TB_CHECK(l.items[2].has_public_key);
    TB_CHECK_EQ(l.items[2].public_key[31], 31);
    TB_CHECK_EQ(l.items[3].unreach_after, 4);
    tb_sources_config_free(&l);
}

static void expect_error(const char *entry, const char *want)
{
    char text[512], err[256] = "";
    snprintf(text, sizeof(text), "sources = (\n%s\n);\n", entry);
    tb_source_config_list l;
    int rc = parse_text(text, &l, err, sizeof(err));
    TB_CHECK_EQ(rc, TB_ERR_INVAL);
    if (!strstr(err, want)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
        TB_CHECK(0);
    }
    TB_CHECK_EQ(l.n, 0);
}

static void test_errors_name_line_and_key(void)
{
    expect_error("{ kind = \"ntp\"; address = \"a:1\"; minpoll = 40; }",
                 "config:2: key 'sources.[0].minpoll': 40 is outside -6..17");
    expect_error("{ kind = \"ntp\"; adress = \"a:1\"; }", "key 'sources.[0].adress': unknown key");
    expect_error(
        "{ kind = \"sundial\"; address = \"a\"; }",
        "key 'sources.[0].kind': \"sundial\" is not ntp, nts, pool, roughtime, sock or pps");
    expect_error("{ kind = \"peer\"; address = \"a:1\"; }",
                 "key 'sources.[0].kind': mesh peers are not configured");
    expect_error("{ kind = \"ntp\"; address = \"a:1\"; name = \"n\"; }",
                 "key 'sources.[0].name': only pools take a name");
    expect_error("{ kind = \"pool\"; count = 2; }", "key 'sources.[0].name': a pool needs a name");
    expect_error("{ kind = \"pool\"; name = \"p\"; count = 99; }",
                 "key 'sources.[0].count': 99 is outside 1..16");
    /* libconfig 1.5 alone would read these as 1 and 100 (and -4294967236 as 60). */
    expect_error("{ kind = \"pool\"; name = \"p\"; count = 4294967297; }",
                 "config:2: key 'sources.[0].count': 4294967297 is outside 1..16");
    expect_error("{ kind = \"pool\"; name = \"p\"; resolve_interval = 4294967396; }",
                 "key 'sources.[0].resolve_interval': 4294967396 is outside 10..604800");
    expect_error("{ kind = \"pool\"; name = \"p\"; resolve_interval = -4294967236; }",
                 "key 'sources.[0].resolve_interval': -4294967236 is outside 10..604800");
    expect_error("{ kind = \"ntp\"; address = \"a\"; unreachable_after = -1; }",
                 "key 'sources.[0].unreachable_after': -1 is outside 1..64");
    expect_error("{ kind = \"ntp\"; }", "key 'sources.[0].address': a ntp source needs an address");
    expect_error("{ kind = \"ntp\"; address = \"a:99999\"; }",
                 "key 'sources.[0].address': \"a:99999\" is not host");
    expect_error("{ kind = \"roughtime\"; address = \"a:2002\"; }",
                 "public_key': a roughtime source needs");
    expect_error("{ kind = \"roughtime\"; address = \"a:2002\"; public_key = \"AAEC\"; }",
                 "public_key': must be the base64 of a 32-byte");
    expect_error("{ kind = \"ntp\"; address = \"a\"; public_key = \"" KEY_B64 "\"; }",
                 "only roughtime sources take a public key");
    expect_error("{ kind = \"ntp\"; address = \"a\"; minpoll = 9; maxpoll = 7; }",
                 "minpoll 9 is above maxpoll 7");
    expect_error("{ kind = \"ntp\"; address = \"a\"; minpoll = \"6\"; }",
                 "minpoll': must be an integer, not a string");
    expect_error("{ kind = \"ntp\"; address = \"a\"; },\n  { kind = 3; }",
                 "config:3: key 'sources.[1].kind': missing or not a string");
}

static void test_error_names_the_file(void)
{
    char path[] = "/tmp/tb_sources_cfg_XXXXXX";
    int fd = mkstemp(path);
    TB_REQUIRE(fd >= 0);
    const char *text =
        "# comment\nsources = (\n  { kind = \"pool\"; name = \"x\"; count = 0; }\n);\n";
    TB_REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    config_t cfg;
    config_init(&cfg);
    TB_REQUIRE(config_read_file(&cfg, path) == CONFIG_TRUE);
    tb_source_config_list l;
    char err[256], want[128];
    TB_CHECK_EQ(tb_sources_config_parse(config_lookup(&cfg, "sources"), &l, err, sizeof(err)),
                TB_ERR_INVAL);
    snprintf(want, sizeof(want), "%s:3: key 'sources.[0].count': 0 is outside", path);
    TB_CHECK(strstr(err, want) != NULL);
    config_destroy(&cfg);
    unlink(path);
}

/* A relative ca_file in a file is taken from the file's folder; an absolute one as written. */
static void test_ca_file_relative_to_the_file(void)
{
    char path[] = "/tmp/tb_sources_cfg_XXXXXX";
    int fd = mkstemp(path);
    TB_REQUIRE(fd >= 0);
    const char *text =
        "sources = (\n  { kind = \"nts\"; address = \"a\"; ca_file = \"ca.pem\"; },\n"
        "  { kind = \"nts\"; address = \"b\"; ca_file = \"/etc/ca.pem\"; }\n);\n";
    TB_REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    config_t cfg;
    config_init(&cfg);
    TB_REQUIRE(config_read_file(&cfg, path) == CONFIG_TRUE);
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(tb_sources_config_parse(config_lookup(&cfg, "sources"), &l, err, sizeof(err)) ==
               TB_OK);
    TB_CHECK_STR(l.items[0].ca_file, "/tmp/ca.pem");
    TB_CHECK_STR(l.items[1].ca_file, "/etc/ca.pem");
    tb_sources_config_free(&l);
    config_destroy(&cfg);
    unlink(path);
}

static tb_source_config ntp(const char *addr, int minpoll)
{
    tb_source_config c;
    tb_source_config_default(&c, TB_SOURCE_NTP);
    snprintf(c.address, sizeof(c.address), "%s", addr);
    c.minpoll = minpoll;
    return c;
}

static void test_reload_diff(void)
{
    tb_source_config old_items[] = {ntp("a", 6), ntp("b", 6), ntp("c", 6), ntp("a", 6)};
    tb_source_config new_items[] = {ntp("c", 7), ntp("a", 6), ntp("d", 6)};
    new_items[1].line = 99; /* moved in the file: still the same source */
    tb_source_config_list old = {old_items, 4}, nl = {new_items, 3};
    tb_sources_diff d;
    TB_REQUIRE(tb_sources_diff_compute(&old, &nl, &d) == 0);
    TB_CHECK_EQ(d.n_keep, 1);
    TB_CHECK_EQ(d.n_stop, 3);  /* b, c (minpoll changed), the duplicate a */
    TB_CHECK_EQ(d.n_start, 2); /* c with minpoll 7, d */
    TB_CHECK_EQ(d.old_to_new[0], 1);
    TB_CHECK_EQ(d.old_to_new[1], -1);
    TB_CHECK_EQ(d.old_to_new[2], -1);
    TB_CHECK_EQ(d.old_to_new[3], -1);
    TB_CHECK_EQ(d.new_from_old[0], -1);
    TB_CHECK_EQ(d.new_from_old[1], 0);
    TB_CHECK_EQ(d.new_from_old[2], -1);
    tb_sources_diff_free(&d);
    /* Identical lists keep everything; empty old starts everything. */
    TB_REQUIRE(tb_sources_diff_compute(&old, &old, &d) == 0);
    TB_CHECK_EQ(d.n_keep, 4);
    TB_CHECK_EQ(d.n_stop + d.n_start, 0);
    tb_sources_diff_free(&d);
    tb_source_config_list empty = {NULL, 0};
    TB_REQUIRE(tb_sources_diff_compute(&empty, &nl, &d) == 0);
    TB_CHECK_EQ(d.n_start, 3);
    tb_sources_diff_free(&d);
}

static void test_nts(void)
{
    const char *text = "sources = (\n"
                       "  { kind = \"nts\"; address = \"time.example\"; },\n"
                       "  { kind = \"nts\"; address = \"127.0.3.1:11123\"; ntsport = 14460;"
                       "    ca_file = \"/tmp/ca.pem\"; server_name = \"nts.test\"; }\n"
                       ");\n";
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(parse_text(text, &l, err, sizeof(err)) == 0);
    TB_REQUIRE(l.n == 2);
    TB_CHECK_EQ(l.items[0].kind, TB_SOURCE_NTS);
    TB_CHECK_EQ(l.items[0].ntsport, 4460);
    TB_CHECK_STR(l.items[0].ca_file, "");
    TB_CHECK_STR(l.items[0].server_name, "");
    TB_CHECK_EQ(l.items[1].ntsport, 14460);
    TB_CHECK_STR(l.items[1].ca_file, "/tmp/ca.pem");
    TB_CHECK_STR(l.items[1].server_name, "nts.test");
    /* A changed trust or name is a different source: a reload restarts it. */
    tb_source_config other = l.items[1];
    TB_CHECK(tb_source_config_equal(&other, &l.items[1]));
    snprintf(other.server_name, sizeof(other.server_name), "other.test");
    TB_CHECK(!tb_source_config_equal(&other, &l.items[1]));
    other = l.items[1];
    other.ntsport = 4460;
    TB_CHECK(!tb_source_config_equal(&other, &l.items[1]));
    tb_sources_config_free(&l);
    expect_error("{ kind = \"ntp\"; address = \"a\"; ntsport = 4460; }",
                 "key 'sources.[0].ntsport': only nts sources take ntsport");
    expect_error("{ kind = \"roughtime\"; address = \"a\"; public_key = \"" KEY_B64
                 "\"; ca_file = \"x\"; }",
                 "key 'sources.[0].ca_file': only nts sources take ca_file");
    expect_error("{ kind = \"nts\"; address = \"a\"; ntsport = 0; }", "key 'sources.[0].ntsport'");
    expect_error("{ kind = \"nts\"; }", "key 'sources.[0].address': a nts source needs an address");
    expect_error("{ kind = \"nts\"; address = \"a\"; server_name = 5; }",
                 "key 'sources.[0].server_name'");
}

static void test_sock(void)
{
    const char *text =
        "sources = (\n"
        "  { kind = \"sock\"; path = \"/run/tbnode/gps.sock\"; },\n"
        "  { kind = \"sock\"; path = \"/tmp/x.sock\"; precision = 200; delay = 50; }\n"
        ");\n";
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(parse_text(text, &l, err, sizeof(err)) == 0);
    TB_REQUIRE(l.n == 2);
    TB_CHECK_EQ(l.items[0].kind, TB_SOURCE_SOCK);
    TB_CHECK_STR(l.items[0].address, "/run/tbnode/gps.sock");
    TB_CHECK_EQ(l.items[0].precision_ns, 1000);
    TB_CHECK_EQ(l.items[0].delay_ns, 0);
    TB_CHECK_EQ(l.items[1].precision_ns, 200);
    TB_CHECK_EQ(l.items[1].delay_ns, 50);
    tb_source_config other = l.items[1];
    other.precision_ns = 201;
    TB_CHECK(!tb_source_config_equal(&other, &l.items[1]));
    tb_sources_config_free(&l);
    expect_error("{ kind = \"sock\"; }", "key 'sources.[0].path': a sock source needs the path");
    expect_error("{ kind = \"sock\"; path = \"rel.sock\"; }",
                 "key 'sources.[0].path': must be an absolute path");
    expect_error("{ kind = \"sock\"; path = \"/a\"; address = \"x\"; }",
                 "key 'sources.[0].address': sock sources take no address");
    expect_error("{ kind = \"sock\"; path = \"/a\"; precision = -1; }",
                 "key 'sources.[0].precision'");
    expect_error("{ kind = \"ntp\"; address = \"a\"; path = \"/a\"; }",
                 "key 'sources.[0].path': only sock sources take path");
}

/* xleave on ntp and pool sources (a changed xleave restarts the source); a Roughtime address
 * may be tcp://host:port; neither fits elsewhere. */
static void test_xleave_and_tcp(void)
{
    const char *text = "sources = (\n"
                       "  { kind = \"ntp\"; address = \"127.0.0.71:11123\"; xleave = true; },\n"
                       "  { kind = \"pool\"; name = \"pool.example\"; xleave = true; },\n"
                       "  { kind = \"ntp\"; address = \"127.0.0.71:11123\"; xleave = false; },\n"
                       "  { kind = \"roughtime\"; address = \"tcp://rt.example:2002\";"
                       "    public_key = \"" KEY_B64 "\"; }\n"
                       ");\n";
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(parse_text(text, &l, err, sizeof(err)) == 0);
    TB_REQUIRE(l.n == 4);
    TB_CHECK(l.items[0].xleave && l.items[1].xleave && !l.items[2].xleave);
    TB_CHECK(!tb_source_config_equal(&l.items[0], &l.items[2]));
    TB_CHECK_STR(l.items[3].address, "tcp://rt.example:2002");
    tb_sources_config_free(&l);
    expect_error("{ kind = \"ntp\"; address = \"a\"; xleave = 1; }", "sources.[0].xleave");
    expect_error("{ kind = \"roughtime\"; address = \"a\"; public_key = \"" KEY_B64
                 "\"; xleave = true; }",
                 "key 'sources.[0].xleave': only ntp and pool sources take xleave");
    expect_error("{ kind = \"nts\"; address = \"a\"; xleave = true; }",
                 "only ntp and pool sources take xleave");
    expect_error("{ kind = \"ntp\"; address = \"tcp://a:123\"; }", "key 'sources.[0].address'");
    expect_error("{ kind = \"roughtime\"; address = \"tcp://\"; public_key = \"" KEY_B64 "\"; }",
                 "key 'sources.[0].address'");
}

#define GPS "  { kind = \"sock\"; path = \"/run/gps.sock\"; },\n"

static void test_pps(void)
{
    const char *text = "sources = (\n" GPS
                       "  { kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\"; },\n"
                       "  { kind = \"pps\"; device = \"/dev/pps1\"; lock = \"pool.example\";\n"
                       "    edge = \"clear\"; rate = 10; offset = -4000; width = 20000000;\n"
                       "    maxlockage = 5; precision = 100; },\n"
                       "  { kind = \"pool\"; name = \"pool.example\"; }\n"
                       ");\n";
    tb_source_config_list l;
    char err[256] = "";
    TB_REQUIRE(parse_text(text, &l, err, sizeof(err)) == 0);
    TB_REQUIRE(l.n == 4);
    const tb_source_config *a = &l.items[1], *b = &l.items[2];
    TB_CHECK_EQ(a->kind, TB_SOURCE_PPS);
    TB_CHECK_STR(a->address, "/dev/pps0");
    TB_CHECK_STR(a->lock, "/run/gps.sock");
    TB_CHECK(!a->edge_clear);
    TB_CHECK_EQ(a->rate, 1);
    TB_CHECK_EQ(a->offset_ns, 0);
    TB_CHECK_EQ(a->width_ns, 0);
    TB_CHECK_EQ(a->maxlockage, 2);
    TB_CHECK_EQ(a->precision_ns, 1000);
    TB_CHECK(b->edge_clear);
    TB_CHECK_EQ(b->rate, 10);
    TB_CHECK_EQ(b->offset_ns, -4000);
    TB_CHECK_EQ(b->width_ns, 20000000);
    TB_CHECK_EQ(b->maxlockage, 5);
    TB_CHECK_EQ(b->precision_ns, 100);
    tb_source_config other = *b;
    other.maxlockage = 4;
    TB_CHECK(!tb_source_config_equal(&other, b));
    other = *b;
    snprintf(other.lock, sizeof(other.lock), "x");
    TB_CHECK(!tb_source_config_equal(&other, b));
    tb_sources_config_free(&l);

    expect_error(GPS "{ kind = \"pps\"; lock = \"/run/gps.sock\"; }",
                 "key 'sources.[1].device': a pps source needs its device");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; }",
                 "key 'sources.[1].lock': a pps source needs the source that names the second");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gsp.sock\"; }",
                 "config:3: key 'sources.[1].lock': no source in the list is named "
                 "\"/run/gsp.sock\"");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/dev/pps0\"; }",
                 "key 'sources.[1].lock': \"/dev/pps0\" is a pps source");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " edge = \"rising\"; }",
                 "key 'sources.[1].edge': \"rising\" is not \"assert\" or \"clear\"");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " rate = 0; }",
                 "key 'sources.[1].rate'");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " rate = 10; width = 100000000; }",
                 "key 'sources.[1].width'");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " offset = 500000000; }",
                 "key 'sources.[1].offset'");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " maxlockage = 0; }",
                 "key 'sources.[1].maxlockage'");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " delay = 5; }",
                 "key 'sources.[1].delay': only sock sources take delay");
    expect_error(GPS "{ kind = \"pps\"; device = \"/dev/pps0\"; lock = \"/run/gps.sock\";"
                     " address = \"a\"; }",
                 "key 'sources.[1].address': pps sources take no address");
    expect_error(GPS "{ kind = \"sock\"; path = \"/a\"; lock = \"/run/gps.sock\"; }",
                 "key 'sources.[1].lock': only pps sources take lock");
    expect_error("{ kind = \"ntp\"; address = \"a\"; precision = 5; }",
                 "key 'sources.[0].precision': only sock and pps sources take precision");
}

int main(void)
{
    TB_RUN(test_parse_all_kinds);
    TB_RUN(test_pps);
    TB_RUN(test_nts);
    TB_RUN(test_sock);
    TB_RUN(test_errors_name_line_and_key);
    TB_RUN(test_error_names_the_file);
    TB_RUN(test_ca_file_relative_to_the_file);
    TB_RUN(test_reload_diff);
    TB_RUN(test_xleave_and_tcp);
    return TB_DONE();
}
