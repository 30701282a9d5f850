/* The tbnode configuration: defaults, every key of the file, flags over the file, and the
 * error text for each bad value (file, line and key named). */
#include <stdlib.h>

#include "node/config.h"
#include "tests/tb_test.h"

static char err[TB_NODE_ERR_MAX];
static tb_node_config cfg;

static int load(const char *text)
{
    tb_node_config_free(&cfg);
    tb_node_config_defaults(&cfg);
    err[0] = '\0';
    return tb_node_config_load_string(&cfg, text, "t.conf", err, sizeof(err));
}

/* getopt wants writable strings (it may permute them): hand it copies. */
static int args(int argc, const char *const *argv, tb_node_action *action)
{
    tb_node_config_free(&cfg);
    tb_node_config_defaults(&cfg);
    err[0] = '\0';
    char *v[32];
    for (int i = 0; i < argc && i < 31; i++)
        v[i] = strdup(argv[i]);
    v[argc] = NULL;
    int rc = tb_node_config_from_args(&cfg, argc, v, action, err, sizeof(err));
    for (int i = 0; i < argc; i++)
        free(v[i]);
    return rc;
}

static void test_defaults(void)
{
    tb_node_config_free(&cfg);
    tb_node_config_defaults(&cfg);
    TB_CHECK_EQ(cfg.mode, TB_NODE_HYBRID);
    TB_CHECK_STR(cfg.listen.host, "0.0.0.0");
    TB_CHECK_EQ(cfg.listen.port, 4433);
    TB_CHECK_EQ(cfg.npeers, 0);
    TB_CHECK_STR(cfg.cert, "");
    TB_CHECK_STR(cfg.state_dir, "./tbnode-state");
    TB_CHECK_EQ(cfg.log_level, TB_LOG_INFO);
    TB_CHECK_STR(cfg.name, "");
    TB_CHECK(cfg.retry);
    TB_CHECK_EQ(cfg.idle_timeout_ms, 30000);
    TB_CHECK_EQ(cfg.keepalive_ms, 10000);
    TB_CHECK_EQ(cfg.connect_timeout_ms, 5000);
    TB_CHECK_EQ(cfg.max_message_size, 65536);
    TB_CHECK_EQ(cfg.ping_interval_ms, 1000);
    TB_CHECK_EQ(cfg.max_peers, 64);
    /* An empty file changes nothing. */
    TB_REQUIRE(load("# nothing\n") == TB_OK);
    TB_CHECK_EQ(cfg.listen.port, 4433);
    TB_CHECK(cfg.retry);
}

static void test_example_file(void)
{
    tb_node_config_free(&cfg);
    tb_node_config_defaults(&cfg);
    const char *path = TB_SOURCE_DIR "/node/tbnode.conf.example";
    int rc = tb_node_config_load_file(&cfg, path, err, sizeof(err));
    if (rc != TB_OK)
        fprintf(stderr, "%s\n", err);
    TB_REQUIRE(rc == TB_OK);
    TB_CHECK_EQ(cfg.mode, TB_NODE_HYBRID);
    TB_CHECK_STR(cfg.listen.host, "127.0.0.10");
    TB_REQUIRE(cfg.npeers == 3);
    TB_CHECK_EQ(cfg.peers[0].kind, TB_ADDR_IPV4);
    TB_CHECK_EQ(cfg.peers[1].kind, TB_ADDR_IPV6);
    TB_CHECK_EQ(cfg.peers[1].port, 4434);
    TB_CHECK_EQ(cfg.peers[2].kind, TB_ADDR_NAME);
    TB_CHECK_STR(cfg.peers[2].host, "node-b.example.net");
    TB_CHECK_STR(cfg.peer_names[2], "node-b");
    /* Relative paths are anchored at the file's directory. */
    TB_CHECK_STR(cfg.cert, TB_SOURCE_DIR "/node/certs/node.crt");
    TB_CHECK_STR(cfg.key, TB_SOURCE_DIR "/node/certs/node.key");
    TB_CHECK_STR(cfg.ca, TB_SOURCE_DIR "/node/certs/ca.crt");
    TB_CHECK_STR(cfg.state_dir, TB_SOURCE_DIR "/node/tbnode-state");
    TB_CHECK_STR(cfg.name, "node-a");
    TB_CHECK_STR(cfg.file, path);
}

static void test_every_key(void)
{
    int rc = load("mode = \"client\";\n"
                  "listen = \"[::1]:0\";\n"
                  "peers = [ \"a.example:1\", \"node-b@10.0.0.1:2\" ];\n"
                  "cert = \"/c\"; key = \"k\"; ca = \"/x/ca\";\n"
                  "state_dir = \"/tmp/st\";\n"
                  "log_level = \"debug\";\n"
                  "name = \"eu-1\";\n"
                  "user = \"_tbnode\";\n"
                  "retry = false;\n"
                  "idle_timeout_ms = 60000;\n"
                  "keepalive_ms = 0;\n"
                  "connect_timeout_ms = 100;\n"
                  "max_message_size = 16777216;\n"
                  "ping_interval_ms = 250;\n"
                  "max_peers = 1024;\n"
                  "mesh = { allowed_ranges = [\"10.0.0.0/8\", \"2001:db8::/32\"]; "
                  "allow_names = true; socket_buffer = 8388608; active_view = 4;\n"
                  "  passive_view = 32;\n"
                  "  budget_msgs_per_s = 500; budget_bytes_per_s = 2097152;\n"
                  "  budget_broadcasts_per_s = 40;\n"
                  "  penalties_to_ban = 8; penalty_decay_s = 30;\n"
                  "  ban_s = 60; ban_max_s = 3600; };\n");
    if (rc != TB_OK)
        fprintf(stderr, "%s\n", err);
    TB_REQUIRE(rc == TB_OK);
    TB_CHECK_EQ(cfg.mode, TB_NODE_CLIENT);
    TB_CHECK_EQ(cfg.listen.kind, TB_ADDR_IPV6);
    TB_CHECK_EQ(cfg.listen.port, 0);
    TB_CHECK_EQ(cfg.npeers, 2);
    TB_CHECK_STR(cfg.peers[1].host, "10.0.0.1");
    TB_CHECK_STR(cfg.peer_names[0], "");
    TB_CHECK_STR(cfg.peer_names[1], "node-b"); /* must be node-b's certificate */
    TB_CHECK_STR(cfg.cert, "/c");
    TB_CHECK_STR(cfg.key, "k"); /* from a string: kept as written */
    TB_CHECK_STR(cfg.state_dir, "/tmp/st");
    TB_CHECK_EQ(cfg.log_level, TB_LOG_DEBUG);
    TB_CHECK_STR(cfg.name, "eu-1");
    TB_CHECK_STR(cfg.user, "_tbnode");
    TB_CHECK(!cfg.retry);
    TB_CHECK_EQ(cfg.idle_timeout_ms, 60000);
    TB_CHECK_EQ(cfg.keepalive_ms, 0);
    TB_CHECK_EQ(cfg.connect_timeout_ms, 100);
    TB_CHECK_EQ(cfg.max_message_size, 16777216);
    TB_CHECK_EQ(cfg.ping_interval_ms, 250);
    TB_CHECK_EQ(cfg.max_peers, 1024);
    TB_CHECK_EQ(cfg.nallowed_ranges, 2);
    TB_CHECK_EQ(cfg.allowed_ranges[0].bits, 8);
    TB_CHECK_EQ(cfg.allowed_ranges[1].bits, 32);
    TB_CHECK(cfg.allow_names);
    TB_CHECK_EQ(cfg.socket_buffer, 8388608);
    TB_CHECK_EQ(cfg.active_view, 4);
    TB_CHECK_EQ(cfg.passive_view, 32);
    TB_CHECK_EQ(cfg.budget.msgs_per_s, 500);
    TB_CHECK_EQ(cfg.budget.bytes_per_s, 2097152);
    TB_CHECK_EQ(cfg.budget.own_bcasts_per_s, 40);
    TB_CHECK_EQ(cfg.penalties_to_ban, 8);
    TB_CHECK_EQ(cfg.penalty_decay_s, 30);
    TB_CHECK_EQ(cfg.ban_s, 60);
    TB_CHECK_EQ(cfg.ban_max_s, 3600);
}

static void test_errors_name_file_line_key(void)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"mode = \"peer\";", "t.conf:1: key 'mode': 'peer' is not hybrid, server or client"},
        {"\n\nmode = 3;", "t.conf:3: key 'mode': must be a string, not an integer"},
        {"listen = \"::1:4433\";",
         "t.conf:1: key 'listen': '::1:4433': IPv6 addresses need brackets, as in [::1]:4433"},
        {"listen = \"1.2.3.4\";",
         "t.conf:1: key 'listen': '1.2.3.4': missing ':PORT' (as in 127.0.0.1:4433)"},
        {"peers = \"a:1\";", "t.conf:1: key 'peers': must be a list of \"host:port\" strings, "
                             "not a string"},
        {"peers = (\n \"a:1\",\n \"b:0\" );",
         "t.conf:3: key 'peers': 'b:0': port is not a number from 1 to 65535"},
        {"peers = ( \"Node@a:1\" );", "t.conf:1: key 'peers': 'Node@a:1': the name before '@' "
                                      "is not 1 to 63 of a-z, 0-9 and '-'"},
        {"peers = ( \"@a:1\" );", "t.conf:1: key 'peers': '@a:1': the name before '@' is not 1 "
                                  "to 63 of a-z, 0-9 and '-'"},
        {"peers = ( \"n@a\" );",
         "t.conf:1: key 'peers': 'a': missing ':PORT' (as in 127.0.0.1:4433)"},
        {"peers = ( \"a:1\", 5 );",
         "t.conf:1: key 'peers': element 2 is an integer, not a \"host:port\" string"},
        {"cert = \"\";", "t.conf:1: key 'cert': empty path"},
        {"key = 1;", "t.conf:1: key 'key': must be a string, not an integer"},
        {"ca = true;", "t.conf:1: key 'ca': must be a string, not a boolean"},
        {"state_dir = { };", "t.conf:1: key 'state_dir': must be a string, not a group"},
        {"log_level = \"loud\";",
         "t.conf:1: key 'log_level': 'loud' is not error, warn, info or debug"},
        {"name = \"a b\";",
         "t.conf:1: key 'name': 'a b': only a-z, 0-9 and '-' (not first) are allowed"},
        {"name = \"Node\";",
         "t.conf:1: key 'name': 'Node': only a-z, 0-9 and '-' (not first) are allowed"},
        {"name = \"-n\";",
         "t.conf:1: key 'name': '-n': only a-z, 0-9 and '-' (not first) are allowed"},
        {"name = \"\";", "t.conf:1: key 'name': must be 1 to 63 characters"},
        {"user = \"-r\";", "t.conf:1: key 'user': '-r' is not a user name"},
        {"user = \"a/b\";", "t.conf:1: key 'user': 'a/b' is not a user name"},
        {"user = \"\";", "t.conf:1: key 'user': must be 1 to 32 characters"},
        {"retry = \"yes\";", "t.conf:1: key 'retry': must be true or false, not a string"},
        {"idle_timeout_ms = 999;", "t.conf:1: key 'idle_timeout_ms': 999 is outside 1000..3600000"},
        {"keepalive_ms = -1;", "t.conf:1: key 'keepalive_ms': -1 is outside 0..3600000"},
        {"connect_timeout_ms = 1.5;",
         "t.conf:1: key 'connect_timeout_ms': must be an integer, not a float"},
        {"max_message_size = 99999999999L;",
         "t.conf:1: key 'max_message_size': 99999999999 is outside 1024..16777216"},
        {"ping_interval_ms = 0;", "t.conf:1: key 'ping_interval_ms': 0 is outside 100..3600000"},
        {"max_peers = 0;", "t.conf:1: key 'max_peers': 0 is outside 1..1024"},
        /* libconfig 1.5 alone would read these as 1, 100 and 60: in range, silently. */
        {"max_peers = 4294967297;", "t.conf:1: key 'max_peers': 4294967297 is outside 1..1024"},
        {"ping_interval_ms = 4294967396;",
         "t.conf:1: key 'ping_interval_ms': 4294967396 is outside 100..3600000"},
        {"max_peers = -4294967236;", "t.conf:1: key 'max_peers': -4294967236 is outside 1..1024"},
        {"max_peers = 0x100000001;", "t.conf:1: key 'max_peers': 4294967297 is outside 1..1024"},
        {"max_peers = -1;", "t.conf:1: key 'max_peers': -1 is outside 1..1024"},
        {"idle_timeout_ms = -4294967296;",
         "t.conf:1: key 'idle_timeout_ms': -4294967296 is outside 1000..3600000"},
        {"# c\nlisten = \"1.2.3.4:1\";\nbogus = 1;",
         "t.conf:3: key 'bogus': unknown key (see node/tbnode.conf.example)"},
        {"idle_timeout_ms = 5000;\nkeepalive_ms = 5000;",
         "t.conf:2: key 'keepalive_ms': keepalive_ms (5000) must be below idle_timeout_ms "
         "(5000), or 0"},
        {"\nidle_timeout_ms = 5000;",
         "t.conf:2: key 'idle_timeout_ms': keepalive_ms (10000) must be below idle_timeout_ms "
         "(5000), or 0"},
        {"mode = \"hybrid\"\nlisten = ;", "t.conf:2: syntax error"},
        {"mesh = { socket_buffer = 2147483648; };",
         "t.conf:1: key 'mesh.socket_buffer': 2147483648 is outside 0..1073741824"},
        {"mesh = { active_view = 0; };", "t.conf:1: key 'mesh.active_view': 0 is outside 1..64"},
        {"mesh = { passive_view = 2000; };",
         "t.conf:1: key 'mesh.passive_view': 2000 is outside 1..1024"},
        {"mesh = {\n sockbuf = 1; };", "t.conf:2: key 'mesh.sockbuf': unknown key"},
        {"mesh = {\n budget_msgs_per_s = 0; };",
         "t.conf:2: key 'mesh.budget_msgs_per_s': 0 is outside 1..1000000"},
        {"mesh = { budget_bytes_per_s = 100; };",
         "t.conf:1: key 'mesh.budget_bytes_per_s': 100 is outside 1024..1073741824"},
        {"mesh = { budget_broadcasts_per_s = \"20\"; };",
         "t.conf:1: key 'mesh.budget_broadcasts_per_s': must be an integer, not a string"},
        {"mesh = { penalties_to_ban = 0; };",
         "t.conf:1: key 'mesh.penalties_to_ban': 0 is outside 1..10000"},
        {"mesh = { ban_s = 600;\n ban_max_s = 300; };",
         "t.conf:2: key 'mesh.ban_max_s': 300 s is shorter than ban_s (600 s): the longest ban "
         "cannot be shorter than the first"},
        {"mesh = {\n ban_s = 86400; };",
         "t.conf:2: key 'mesh.ban_max_s': 21600 s is shorter than ban_s (86400 s): the longest "
         "ban cannot be shorter than the first"},
        {"mesh = 3;", "t.conf:1: key 'mesh': must be a group { ... }"},
        {"mesh = 1;", "t.conf:1: key 'mesh': must be a group { ... }"},
        {"mesh = {\n bogus = 1; };", "t.conf:2: key 'mesh.bogus': unknown key"},
        {"mesh = { allow_names = 1; };",
         "t.conf:1: key 'mesh.allow_names': must be true or false, not an integer"},
        {"mesh = { allowed_ranges = \"10.0.0.0/8\"; };",
         "t.conf:1: key 'mesh.allowed_ranges': must be a list of \"ADDRESS/BITS\" strings, not a "
         "string"},
        {"mesh = { allowed_ranges = [\"10.0.0.1/8\"]; };",
         "t.conf:1: key 'mesh.allowed_ranges': '10.0.0.1/8': address has bits set past the "
         "prefix length"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = load(cases[i].text);
        if (rc == TB_OK || strcmp(err, cases[i].err) != 0)
            fprintf(stderr, "case %zu: rc %d\n  got  %s\n  want %s\n", i, rc, err, cases[i].err);
        TB_CHECK(rc != TB_OK);
        TB_CHECK_STR(err, cases[i].err);
    }
}

static void test_too_many_peers(void)
{
    char text[4096] = "peers = (";
    for (int i = 0; i <= TB_NODE_MAX_SEEDS; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%s\"h%d:1\"", i ? "," : "", i);
        strcat(text, one);
    }
    strcat(text, ");");
    TB_CHECK(load(text) == TB_ERR_INVAL);
    TB_CHECK_STR(err, "t.conf:1: key 'peers': more than 32 seed peers");
}

static void test_bad_file_leaves_config(void)
{
    TB_REQUIRE(load("listen = \"127.0.0.20:9\";") == TB_OK);
    err[0] = '\0';
    TB_CHECK(tb_node_config_load_string(&cfg, "listen = \"127.0.0.21:9\"; max_peers = 0;", "u", err,
                                        sizeof(err)) == TB_ERR_INVAL);
    TB_CHECK_STR(cfg.listen.host, "127.0.0.20");
    TB_CHECK_STR(cfg.file, "t.conf");
}

static void test_reserved_sections(void)
{
    TB_REQUIRE(load("sources = ( { type = \"ntp\"; server = \"127.0.0.70:123\"; } );\n"
                    "roughtime = { listen = \"127.0.0.50:2002\"; };\n"
                    "mode = \"server\";") == TB_OK);
    const config_setting_t *s = tb_node_config_section(&cfg, "sources");
    TB_REQUIRE(s != NULL);
    TB_CHECK_EQ(config_setting_length(s), 1);
    const config_setting_t *r = tb_node_config_section(&cfg, "roughtime");
    TB_REQUIRE(r != NULL);
    const char *listen = NULL;
    TB_CHECK(config_setting_lookup_string(r, "listen", &listen) == CONFIG_TRUE);
    TB_CHECK_STR(listen, "127.0.0.50:2002");
    TB_CHECK_EQ(config_setting_source_line(r), 2);
    /* Only reserved keys are handed out. */
    TB_CHECK(tb_node_config_section(&cfg, "mode") == NULL);
    TB_REQUIRE(load("mode = \"server\";") == TB_OK);
    TB_CHECK(tb_node_config_section(&cfg, "sources") == NULL);
}

static void test_missing_file(void)
{
    tb_node_config_free(&cfg);
    tb_node_config_defaults(&cfg);
    TB_CHECK(tb_node_config_load_file(&cfg, "/nonexistent/tb.conf", err, sizeof(err)) == TB_ERR_IO);
    TB_CHECK_STR(err, "/nonexistent/tb.conf: cannot read the config file: No such file or "
                      "directory");
    TB_CHECK(tb_node_config_load_file(&cfg, "/", err, sizeof(err)) != TB_OK);
}

static void test_flags_override_file(void)
{
    const char *argv[] = {"tbnode",       "--config",    TB_SOURCE_DIR "/node/tbnode.conf.example",
                          "--listen",     "[::1]:5000",  "--peer",
                          "127.0.0.12:1", "--peer",      "seed.example:2",
                          "--log-level",  "debug",       "--mode",
                          "server",       "--state-dir", "rel/dir",
                          "--cert",       "a.crt",       "--key",
                          "a.key",        "--ca",        "ca.crt",
                          "--name",       "other"};
    tb_node_action action;
    int rc = args((int)(sizeof(argv) / sizeof(argv[0])), argv, &action);
    if (rc != TB_OK)
        fprintf(stderr, "%s\n", err);
    TB_REQUIRE(rc == TB_OK);
    TB_CHECK_EQ(action, TB_NODE_RUN);
    TB_CHECK_EQ(cfg.mode, TB_NODE_SERVER);
    TB_CHECK_STR(cfg.listen.host, "::1");
    TB_CHECK_EQ(cfg.listen.port, 5000);
    /* --peer replaces the file's list. */
    TB_REQUIRE(cfg.npeers == 2);
    TB_CHECK_STR(cfg.peers[0].host, "127.0.0.12");
    TB_CHECK_STR(cfg.peers[1].host, "seed.example");
    TB_CHECK_EQ(cfg.log_level, TB_LOG_DEBUG);
    TB_CHECK_STR(cfg.state_dir, "rel/dir"); /* flags: relative to the working directory */
    TB_CHECK_STR(cfg.cert, "a.crt");
    TB_CHECK_STR(cfg.name, "other");
    /* Keys no flag touched keep the file's value. */
    TB_CHECK_EQ(cfg.ping_interval_ms, 1000);
    TB_CHECK_STR(cfg.file, TB_SOURCE_DIR "/node/tbnode.conf.example");

    /* Without --peer the file's seeds stay. */
    const char *argv2[] = {"tbnode", "--config", TB_SOURCE_DIR "/node/tbnode.conf.example"};
    TB_REQUIRE(args(3, argv2, &action) == TB_OK);
    TB_CHECK_EQ(cfg.npeers, 3);
}

static void test_flag_errors(void)
{
    static const struct {
        int argc;
        const char *argv[4];
        const char *err;
    } cases[] = {
        {2, {"tbnode", "--bogus"}, "unknown option '--bogus' (see tbnode --help)"},
        {2, {"tbnode", "-x"}, "unknown option '-x' (see tbnode --help)"},
        {2, {"tbnode", "--listen"}, "option '--listen' needs a value (see tbnode --help)"},
        {2, {"tbnode", "--lsten=1.2.3.4:5"}, "unknown option '--lsten' (see tbnode --help)"},
        {2, {"tbnode", "extra"}, "unexpected argument 'extra' (see tbnode --help)"},
        {3, {"tbnode", "--mode", "both"}, "--mode: 'both' is not hybrid, server or client"},
        {3, {"tbnode", "--listen", "x"}, "--listen: 'x': missing ':PORT' (as in 127.0.0.1:4433)"},
        {3,
         {"tbnode", "--peer", "[::1]:99999"},
         "--peer: '[::1]:99999': port is not a number from 1 to 65535"},
        {3, {"tbnode", "--log-level", "x"}, "--log-level: 'x' is not error, warn, info or debug"},
        {3, {"tbnode", "--user", "a b"}, "--user: 'a b' is not a user name"},
        {3,
         {"tbnode", "--cert", "a"},
         "cert, key and ca go together: give all three (--cert F --key F --ca F, or in the "
         "config file)"},
        {3,
         {"tbnode", "--mode", "client"},
         "client mode dials only: give at least one --peer (or peers)"},
        {3,
         {"tbnode", "--config", "/nonexistent.conf"},
         "/nonexistent.conf: cannot read the config file: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tb_node_action action;
        int rc = args(cases[i].argc, cases[i].argv, &action);
        if (rc == TB_OK || strcmp(err, cases[i].err) != 0)
            fprintf(stderr, "case %zu: rc %d\n  got  %s\n  want %s\n", i, rc, err, cases[i].err);
        TB_CHECK(rc != TB_OK);
        TB_CHECK_STR(err, cases[i].err);
    }
}

static void test_help_version(void)
{
    tb_node_action action;
    const char *h[] = {"tbnode", "--listen", "bad", "--help"};
    TB_CHECK(args(4, h, &action) == TB_OK);
    TB_CHECK_EQ(action, TB_NODE_HELP);
    const char *v[] = {"tbnode", "--version"};
    TB_CHECK(args(2, v, &action) == TB_OK);
    TB_CHECK_EQ(action, TB_NODE_VERSION);
}

int main(void)
{
    TB_RUN(test_defaults);
    TB_RUN(test_example_file);
    TB_RUN(test_every_key);
    TB_RUN(test_errors_name_file_line_key);
    TB_RUN(test_too_many_peers);
    TB_RUN(test_bad_file_leaves_config);
    TB_RUN(test_reserved_sections);
    TB_RUN(test_missing_file);
    TB_RUN(test_flags_override_file);
    TB_RUN(test_flag_errors);
    TB_RUN(test_help_version);
    tb_node_config_free(&cfg);
    return TB_DONE();
}
