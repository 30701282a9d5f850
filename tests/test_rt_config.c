/* The node's `roughtime` config group: values, defaults, every error naming FILE:LINE and key,
 * and a parsed config that loads its key and serves (loopback 127.0.0.68, ephemeral port). */
#include "roughtime/config.h"

#include <ev.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cfg.h"
#include "roughtime/keyfile.h"
#include "tb_test.h"

static int parse_text(const char *text, tb_rt_config *out, char *err, size_t errlen)
{
    config_t cfg;
    config_init(&cfg);
    int rc = TB_ERR_INVAL;
    if (tb_cfg_read_string(&cfg, text, "config", err, errlen) == TB_OK)
        rc = tb_rt_config_parse(config_lookup(&cfg, "roughtime"), out, err, errlen);
    config_destroy(&cfg);
    return rc;
}

static void test_all_keys(void)
{
    tb_rt_config c;
    char err[256] = "";
    const char *text = "roughtime = {\n"
                       "  listen = \"[::1]:2102\"; key = \"/etc/tbnode/rt.key\";\n"
                       "  max_batch = 32; queue = 100; flush_interval_us = 2500L; radius = 5;\n"
                       "  radius_from_kernel = false; key_lifetime = 3600; threads = 4;\n"
                       "  enabled = true;\n"
                       "};\n";
    TB_REQUIRE(parse_text(text, &c, err, sizeof(err)) == 0);
    TB_CHECK(c.enabled);
    TB_CHECK_STR(c.udp.listen, "[::1]:2102");
    TB_CHECK_STR(c.key_path, "/etc/tbnode/rt.key");
    TB_CHECK_EQ(c.srv.max_batch, 32);
    TB_CHECK_EQ(c.srv.queue_cap, 100);
    TB_CHECK_EQ(c.udp.flush_interval_ns, 2500000);
    TB_CHECK_EQ(c.udp.radius_s, 5);
    TB_CHECK_EQ(c.udp.radius_from_kernel, 0);
    TB_CHECK_EQ(c.srv.dele_lifetime_s, 3600);
    TB_CHECK_EQ(c.threads, 4);
    TB_CHECK_EQ(c.udp.reuseport, 1);
}

static void test_defaults(void)
{
    tb_rt_config c;
    char err[256] = "";
    TB_REQUIRE(parse_text("roughtime = { key = \"rt.key\"; };", &c, err, sizeof(err)) == 0);
    TB_CHECK(c.enabled);
    TB_CHECK_STR(c.udp.listen, "127.0.0.1:5319");             /* IANA's port */
    TB_CHECK_EQ(c.udp.stats_interval_ns, 60 * TB_NS_PER_SEC); /* tbnode logs counters too */
    TB_CHECK_STR(c.key_path, "rt.key"); /* no file behind the text: taken as given */
    TB_CHECK_EQ(c.srv.max_batch, 64);
    TB_CHECK_EQ(c.srv.queue_cap, 256);
    TB_CHECK_EQ(c.udp.flush_interval_ns, 1000000);
    TB_CHECK_EQ(c.udp.radius_s, 3);
    TB_CHECK_EQ(c.udp.radius_from_kernel, 1);
    TB_CHECK_EQ(c.srv.dele_lifetime_s, 86400);
    TB_CHECK_EQ(c.threads, 1);
    TB_CHECK_EQ(c.udp.reuseport, 0);
    /* The queue follows max_batch unless given, within the server's cap. */
    TB_REQUIRE(parse_text("roughtime = { key = \"k\"; max_batch = 128; };", &c, err, sizeof(err)) ==
               0);
    TB_CHECK_EQ(c.srv.queue_cap, 512);
}

static void test_absent_or_disabled(void)
{
    tb_rt_config c;
    char err[256] = "";
    TB_REQUIRE(parse_text("other = 1;", &c, err, sizeof(err)) == 0);
    TB_CHECK(!c.enabled);
    TB_REQUIRE(parse_text("roughtime = { enabled = false; };", &c, err, sizeof(err)) == 0);
    TB_CHECK(!c.enabled);
    TB_CHECK_STR(c.key_path, "");
}

static void expect_error(const char *text, const char *want)
{
    tb_rt_config c;
    char err[256] = "";
    TB_CHECK_EQ(parse_text(text, &c, err, sizeof(err)), TB_ERR_INVAL);
    if (!strstr(err, want))
        fprintf(stderr, "  for %s\n  got  \"%s\"\n  want \"%s\"\n", text, err, want);
    TB_CHECK(strstr(err, want) != NULL);
    TB_CHECK(!c.enabled); /* a failed parse leaves nothing half-set */
}

static void test_errors(void)
{
    expect_error("roughtime = 5;", "config:1: key 'roughtime': must be a group");
    expect_error("roughtime = {\n key = \"k\";\n lisen = \"127.0.0.1:1\";\n};",
                 "config:3: key 'roughtime.lisen': unknown key");
    expect_error("roughtime = { key = \"k\"; max_batch = \"64\"; };",
                 "key 'roughtime.max_batch': must be an integer");
    expect_error("roughtime = { key = \"k\"; max_batch = 0; };",
                 "key 'roughtime.max_batch': 0 is outside 1..128");
    expect_error("roughtime = { key = \"k\"; max_batch = 129; };",
                 "key 'roughtime.max_batch': 129 is outside 1..128");
    /* libconfig 1.5 alone would read these as 1 and 100 (and -4294967236 as 60). */
    expect_error("roughtime = { key = \"k\"; max_batch = 4294967297; };",
                 "config:1: key 'roughtime.max_batch': 4294967297 is outside 1..128");
    expect_error("roughtime = { key = \"k\"; radius = 4294967396; };",
                 "config:1: key 'roughtime.radius': 4294967396 is outside 1..86400");
    expect_error("roughtime = { key = \"k\"; key_lifetime = -4294967236; };",
                 "key 'roughtime.key_lifetime': -4294967236 is outside 60..31536000");
    expect_error("roughtime = { key = \"k\"; threads = -1; };",
                 "key 'roughtime.threads': -1 is outside 1..");
    expect_error("roughtime = { key = \"k\"; radius = 0; };",
                 "key 'roughtime.radius': 0 is outside");
    expect_error("roughtime = { key = \"k\"; threads = 65; };",
                 "key 'roughtime.threads': 65 is outside");
    expect_error("roughtime = { key = \"k\"; flush_interval_us = 20000000000L; };",
                 "key 'roughtime.flush_interval_us': 20000000000 is outside 1..10000000");
    expect_error("roughtime = { key = \"k\"; max_batch = 64; queue = 10; };",
                 "key 'roughtime.queue': 10 is below max_batch 64");
    expect_error("roughtime = { key = \"k\"; listen = \"localhost:2002\"; };",
                 "key 'roughtime.listen': \"localhost:2002\" is not a numeric ADDR:PORT");
    expect_error("roughtime = { key = \"k\"; listen = \"127.0.0.1\"; };",
                 "key 'roughtime.listen':");
    expect_error("roughtime = { key = \"k\"; listen = \"127.0.0.1:65536\"; };",
                 "key 'roughtime.listen':");
    expect_error("roughtime = { key = \"k\"; listen = \"[::1\"; };", "key 'roughtime.listen':");
    expect_error("roughtime = { key = \"k\"; listen = 2002; };",
                 "key 'roughtime.listen': must be a string");
    expect_error("roughtime = { key = \"\"; };", "key 'roughtime.key': must be 1..");
    expect_error("roughtime = {\n  max_batch = 8;\n};", "config:1: key 'roughtime.key': missing");
    expect_error("roughtime = { key = \"k\"; enabled = 1; };",
                 "key 'roughtime.enabled': must be true or false");
}

static void remove_tree(const char *dir, const char *const *files, int n)
{
    char p[512];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* From a file: the key path is relative to the file's folder, the key loads, the server runs. */
static void test_file_and_serve(void)
{
    char dir[] = "/tmp/test_rt_config.XXXXXX", path[512], keyp[512], err[256] = "";
    static const char *const files[] = {"node.conf", "rt.key"};
    TB_REQUIRE(mkdtemp(dir));
    snprintf(keyp, sizeof(keyp), "%s/rt.key", dir);
    snprintf(path, sizeof(path), "%s/node.conf", dir);
    uint8_t pk[32];
    FILE *f = fopen(path, "w");
    int ok = f && tb_rt_key_generate(keyp, pk, err, sizeof(err)) == 0;
    if (f) {
        fputs("# node\n\nroughtime = {\n  listen = \"127.0.0.68:0\";\n  key = \"rt.key\";\n"
              "  radius = 2;\n};\n",
              f);
        fclose(f);
    }
    config_t cfg;
    config_init(&cfg);
    tb_rt_config c;
    ok = ok && config_read_file(&cfg, path) == CONFIG_TRUE &&
         tb_rt_config_parse(config_lookup(&cfg, "roughtime"), &c, err, sizeof(err)) == 0;
    TB_CHECK(ok);
    if (ok) {
        TB_CHECK_STR(c.key_path, keyp);
        TB_CHECK(tb_rt_config_load_key(&c, 0, err, sizeof(err)) == 0);
        TB_CHECK_MEM(c.srv.longterm_sk + 32, pk, 32); /* libsodium sk = seed ‖ public key */
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        tb_log log;
        tb_log_init(&log, "test", TB_LOG_WARN);
        tb_rt_srv *srv = NULL;
        tb_rt_udp *udp = NULL;
        TB_CHECK(tb_rt_srv_new(&c.srv, &log, tb_clock_real(tb_clock_system()), &srv) == 0);
        TB_CHECK(srv && tb_rt_udp_new(loop, &log, tb_clock_system(), srv, &c.udp, &udp) == 0);
        TB_CHECK(srv && memcmp(tb_rt_srv_pubkey(srv), pk, 32) == 0);
        TB_CHECK(udp && tb_rt_udp_port(udp) != 0);
        tb_rt_udp_free(udp);
        tb_rt_srv_free(srv);
        ev_loop_destroy(loop);
        tb_rt_config_clear(&c);
        static const uint8_t zero[64];
        TB_CHECK_MEM(c.srv.longterm_sk, zero, 64);
    }
    /* An error names the file and the line. */
    f = fopen(path, "w");
    if (f) {
        fputs("roughtime = {\n  key = \"rt.key\";\n  radius = -1;\n};\n", f);
        fclose(f);
    }
    config_destroy(&cfg);
    config_init(&cfg);
    TB_CHECK(config_read_file(&cfg, path) == CONFIG_TRUE);
    TB_CHECK(tb_rt_config_parse(config_lookup(&cfg, "roughtime"), &c, err, sizeof(err)) < 0);
    char want[600];
    snprintf(want, sizeof(want), "%s:3: key 'roughtime.radius': -1 is outside 1..86400", path);
    TB_CHECK_STR(err, want);
    /* A key file others can read is refused, naming it. */
    chmod(keyp, 0644);
    snprintf(c.key_path, sizeof(c.key_path), "%s", keyp);
    TB_CHECK(tb_rt_config_load_key(&c, 0, err, sizeof(err)) < 0);
    TB_CHECK(strstr(err, keyp) != NULL);
    config_destroy(&cfg);
    remove_tree(dir, files, 2);
}

/* An offline delegation instead of the long-term key: cert and online_key go together and
 * exclude key; the loaded delegation serves under the long-term public key; an expired one is
 * refused at load, naming the file; cert_warn is read. */
static void test_delegation(void)
{
    char dir[] = "/tmp/test_rt_deleg.XXXXXX", lt[512], on[512], cert[512], text[2048];
    char err[512] = "";
    static const char *const files[] = {"lt.key", "on.key", "rt.cert"};
    TB_REQUIRE(mkdtemp(dir));
    snprintf(lt, sizeof(lt), "%s/lt.key", dir);
    snprintf(on, sizeof(on), "%s/on.key", dir);
    snprintf(cert, sizeof(cert), "%s/rt.cert", dir);
    uint8_t pk[32], opk[32], sk[64];
    tb_rt_delegation d;
    int64_t now_s = tb_clock_real(tb_clock_system()) / 1000000000;
    TB_REQUIRE(tb_rt_key_generate(lt, pk, err, sizeof(err)) == 0 &&
               tb_rt_key_generate(on, opk, err, sizeof(err)) == 0 &&
               tb_rt_key_load(lt, sk, err, sizeof(err)) == 0 &&
               tb_rt_key_load(on, d.online_sk, err, sizeof(err)) == 0);
    uint8_t osk[64];
    memcpy(osk, d.online_sk, 64);
    TB_REQUIRE(tb_rt_delegation_make(sk, osk, now_s - 60, now_s + 3600, &d) == 0);
    TB_REQUIRE(tb_rt_cert_write(cert, &d, err, sizeof(err)) == 0);
    TB_CHECK_EQ(tb_rt_cert_write(cert, &d, err, sizeof(err)), TB_ERR_EXISTS);
    snprintf(text, sizeof(text),
             "roughtime = { listen = \"127.0.0.68:0\"; cert = \"%s\"; online_key = \"%s\"; "
             "cert_warn = 7200; };\n",
             cert, on);
    tb_rt_config c;
    TB_REQUIRE(parse_text(text, &c, err, sizeof(err)) == 0);
    TB_CHECK_STR(c.cert_path, cert);
    TB_CHECK_STR(c.online_key_path, on);
    TB_CHECK_STR(c.key_path, "");
    TB_CHECK_EQ(c.udp.cert_warn_ns, 7200 * TB_NS_PER_SEC);
    TB_REQUIRE(tb_rt_config_load_key(&c, tb_clock_real(tb_clock_system()), err, sizeof(err)) == 0);
    TB_CHECK(c.srv.has_delegation);
    tb_log log;
    tb_log_init(&log, "test", TB_LOG_ERROR);
    tb_rt_srv *srv = NULL;
    TB_CHECK(tb_rt_srv_new(&c.srv, &log, tb_clock_real(tb_clock_system()), &srv) == 0);
    TB_CHECK(srv && memcmp(tb_rt_srv_pubkey(srv), pk, 32) == 0);
    TB_CHECK(srv && tb_rt_srv_delegation_expiry(srv) == (now_s + 3600) * 1000000000);
    TB_CHECK(srv && tb_rt_srv_rotate(srv, 0) == TB_ERR_STATE); /* no long-term key here */
    tb_rt_srv_free(srv);
    /* the server itself refuses it two hours later */
    TB_CHECK_EQ(tb_rt_srv_new(&c.srv, &log, (now_s + 7200) * 1000000000, &srv), TB_ERR_TIMEOUT);
    tb_rt_config_clear(&c);
    TB_REQUIRE(parse_text(text, &c, err, sizeof(err)) == 0);
    TB_CHECK_EQ(tb_rt_config_load_key(&c, (now_s + 7200) * 1000000000, err, sizeof(err)),
                TB_ERR_TIMEOUT);
    TB_CHECK(strstr(err, "rt.cert: the delegation expired at ") != NULL);
    /* the wrong online key */
    snprintf(c.online_key_path, sizeof(c.online_key_path), "%s", lt);
    TB_CHECK_EQ(tb_rt_config_load_key(&c, tb_clock_real(tb_clock_system()), err, sizeof(err)),
                TB_ERR_VERIFY);
    TB_CHECK(strstr(err, "does not delegate this online key") != NULL);
    expect_error("roughtime = { cert = \"c\"; };", "'roughtime.online_key': missing");
    expect_error("roughtime = { key = \"k\"; cert = \"c\"; online_key = \"o\"; };",
                 "give either key, or cert and online_key");
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(osk, sizeof(osk));
    remove_tree(dir, files, 3);
}

int main(void)
{
    TB_RUN(test_all_keys);
    TB_RUN(test_defaults);
    TB_RUN(test_absent_or_disabled);
    TB_RUN(test_errors);
    TB_RUN(test_file_and_serve);
    TB_RUN(test_delegation);
    return TB_DONE();
}
