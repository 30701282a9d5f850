/* common/cfg: whole integer literals despite libconfig 1.5's 32-bit reading, the one error
 * format, and the typed, range-checked getters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "tests/tb_test.h"

static config_t lc;
static char err[512];

static int load(const char *text)
{
    config_destroy(&lc);
    config_init(&lc);
    err[0] = '\0';
    return tb_cfg_read_string(&lc, text, "t.conf", err, sizeof(err));
}

static long long int64_of(const char *path)
{
    const config_setting_t *s = config_lookup(&lc, path);
    return s ? config_setting_get_int64(s) : -12345;
}

static void test_whole_literals(void)
{
    TB_REQUIRE(load("a = 4294967297; b = 4294967396;\nc = -4294967236; d = 99999999999;\n"
                    "e = 0x100000001; f = 2147483648; g = -2147483649; h = 4294967297L;\n"
                    "i = 7; j = -7; k = 0xFF; m = 1.5; n = 1e3;\n"
                    "# 4294967297 in a comment\n/* 4294967297 */ s = \"4294967297\";\n"
                    "grp = { x-2 = [ 4294967297, 3 ]; y = ( 5, 4294967298 ); };") == TB_OK);
    TB_CHECK_EQ(int64_of("a"), 4294967297LL);
    TB_CHECK_EQ(int64_of("b"), 4294967396LL);
    TB_CHECK_EQ(int64_of("c"), -4294967236LL);
    TB_CHECK_EQ(int64_of("d"), 99999999999LL);
    TB_CHECK_EQ(int64_of("e"), 0x100000001LL);
    TB_CHECK_EQ(int64_of("f"), 2147483648LL);
    TB_CHECK_EQ(int64_of("g"), -2147483649LL);
    TB_CHECK_EQ(int64_of("h"), 4294967297LL);
    TB_CHECK_EQ(int64_of("i"), 7);
    TB_CHECK_EQ(int64_of("j"), -7);
    TB_CHECK_EQ(int64_of("k"), 255);
    TB_CHECK_EQ(int64_of("grp.x-2.[0]"), 4294967297LL);
    TB_CHECK_EQ(int64_of("grp.x-2.[1]"), 3);
    TB_CHECK_EQ(int64_of("grp.y.[0]"), 5);
    TB_CHECK_EQ(int64_of("grp.y.[1]"), 4294967298LL);
    TB_CHECK_EQ(config_setting_type(config_lookup(&lc, "i")), CONFIG_TYPE_INT);
    const char *str = NULL;
    TB_CHECK(config_lookup_string(&lc, "s", &str) == CONFIG_TRUE);
    TB_CHECK_STR(str, "4294967297");
}

/* The same through a file, and through a file it includes. */
static void test_file_and_include(void)
{
    char dir[] = "/tmp/tb_test_cfg.XXXXXX", main_path[64], inc_path[64];
    TB_REQUIRE(mkdtemp(dir) != NULL);
    snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
    snprintf(inc_path, sizeof(inc_path), "%s/inc.conf", dir);
    FILE *f = fopen(inc_path, "w");
    TB_REQUIRE(f != NULL);
    fputs("b = 4294967396;\n", f);
    fclose(f);
    f = fopen(main_path, "w");
    TB_REQUIRE(f != NULL);
    fputs("a = 4294967297;\n@include \"inc.conf\"\nc = 3;\n", f);
    fclose(f);
    config_destroy(&lc);
    config_init(&lc);
    config_set_include_dir(&lc, dir);
    TB_CHECK_EQ(tb_cfg_read_file(&lc, main_path, err, sizeof(err)), TB_OK);
    TB_CHECK_EQ(int64_of("a"), 4294967297LL);
    TB_CHECK_EQ(int64_of("b"), 4294967396LL);
    TB_CHECK_EQ(int64_of("c"), 3);
    unlink(inc_path);
    unlink(main_path);
    rmdir(dir);
    TB_CHECK_EQ(tb_cfg_read_file(&lc, main_path, err, sizeof(err)), TB_ERR_INVAL);
}

static void test_syntax_error(void)
{
    TB_CHECK_EQ(load("a = 1;\nb = ;"), TB_ERR_INVAL);
    TB_CHECK_STR(err, "t.conf:2: syntax error");
}

static void test_getters(void)
{
    TB_REQUIRE(load("g = { n = 5; big = 4294967297; neg = -1; f = 1.5; s = \"abc\"; e = \"\";\n"
                    "  b = true; bi = 1; };") == TB_OK);
    const config_setting_t *g = config_lookup(&lc, "g");
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, sizeof(err), "x.conf", "grp");
    int64_t v = 42;
    TB_CHECK_EQ(tb_cfg_get_i64(&c, g, "absent", 0, 10, &v), TB_OK);
    TB_CHECK_EQ(v, 42);
    TB_CHECK_EQ(tb_cfg_get_i64(&c, g, "n", 0, 10, &v), TB_OK);
    TB_CHECK_EQ(v, 5);
    TB_CHECK_EQ(tb_cfg_get_i64(&c, g, "n", 6, 10, &v), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.n': 5 is outside 6..10"); /* a string: the ctx's name */
    uint32_t u = 9;
    TB_CHECK_EQ(tb_cfg_get_u32(&c, g, "big", 0, UINT32_MAX, &u), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.big': 4294967297 is outside 0..4294967295");
    TB_CHECK_EQ(u, 9);
    TB_CHECK_EQ(tb_cfg_get_u32(&c, g, "neg", 0, 100, &u), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.neg': -1 is outside 0..100");
    int i = 0;
    TB_CHECK_EQ(tb_cfg_get_int(&c, g, "neg", -1, 1, &i), TB_OK);
    TB_CHECK_EQ(i, -1);
    TB_CHECK_EQ(tb_cfg_get_int(&c, g, "f", 0, 1, &i), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.f': must be an integer, not a float");
    char buf[4];
    bool present = false;
    TB_CHECK_EQ(tb_cfg_get_str(&c, g, "s", buf, sizeof(buf), &present), TB_OK);
    TB_CHECK(present);
    TB_CHECK_STR(buf, "abc");
    TB_CHECK_EQ(tb_cfg_get_str(&c, g, "s", buf, 3, &present), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.s': must be 1..2 characters");
    TB_CHECK_EQ(tb_cfg_get_str(&c, g, "e", buf, sizeof(buf), &present), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_cfg_get_str(&c, g, "n", buf, sizeof(buf), &present), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:1: key 'grp.n': must be a string, not an integer");
    TB_CHECK_EQ(tb_cfg_get_str(&c, g, "absent", buf, sizeof(buf), &present), TB_OK);
    TB_CHECK(!present);
    bool b = false;
    TB_CHECK_EQ(tb_cfg_get_bool(&c, g, "b", &b), TB_OK);
    TB_CHECK(b);
    TB_CHECK_EQ(tb_cfg_get_bool(&c, g, "bi", &b), TB_ERR_INVAL);
    TB_CHECK_STR(err, "x.conf:2: key 'grp.bi': must be true or false, not an integer");
}

static void test_keys_and_fail(void)
{
    TB_REQUIRE(load("g = { a = 1;\n zz = 2; };") == TB_OK);
    const config_setting_t *g = config_lookup(&lc, "g");
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, err, sizeof(err), NULL, "%s", "");
    static const char *const keys[] = {"a", "b"};
    TB_CHECK_EQ(tb_cfg_check_keys(&c, g, keys, 2), TB_ERR_INVAL);
    TB_CHECK_STR(err, "config:2: key 'zz': unknown key");
    TB_CHECK_EQ(tb_cfg_check_keys(&c, g, keys, 1), TB_ERR_INVAL);
    tb_cfg_ctx_init(&c, err, sizeof(err), "f.conf", "sources.[%u]", 3u);
    TB_CHECK_EQ(tb_cfg_fail(&c, NULL, NULL, "what %d", 1), TB_ERR_INVAL);
    TB_CHECK_STR(err, "f.conf: key 'sources.[3]': what 1");
    TB_CHECK_EQ(tb_cfg_fail(&c, g, "k", "x"), TB_ERR_INVAL);
    TB_CHECK_STR(err, "f.conf:1: key 'sources.[3].k': x");
}

/* A reader that stops at its first error, as every section reader does: g = { a; b; list; }
 * with a and b integers in 1..9 (a required when arg is not NULL) and list a list of strings. */
static int read_g(void *arg, char *e, size_t elen)
{
    static const char *const keys[] = {"a", "b", "list"};
    tb_cfg_ctx c;
    tb_cfg_ctx_init(&c, e, elen, "t.conf", "g");
    const config_setting_t *g = config_lookup(&lc, "g");
    int64_t v = 0;
    if (!g)
        return tb_cfg_fail(&c, NULL, NULL, "missing");
    int rc = tb_cfg_check_keys(&c, g, keys, 3);
    if (rc == 0 && arg && !config_setting_get_member(g, "a"))
        rc = tb_cfg_fail(&c, g, "a", "missing");
    if (rc == 0)
        rc = tb_cfg_get_i64(&c, g, "a", 1, 9, &v);
    if (rc == 0)
        rc = tb_cfg_get_i64(&c, g, "b", 1, 9, &v);
    const config_setting_t *l = config_setting_get_member(g, "list");
    for (int i = 0; rc == 0 && l && i < config_setting_length(l); i++)
        if (!config_setting_get_string_elem(l, i))
            rc = tb_cfg_fail(&c, l, "list", "element %d is not a string", i);
    return rc;
}

typedef struct said {
    char text[8][200];
    int n;
} said;

static void say(void *arg, const char *text)
{
    said *s = arg;
    if (s->n < 8)
        snprintf(s->text[s->n], sizeof(s->text[0]), "%s", text);
    s->n++;
}

/* tb_cfg_each_error: every error once, in order; an error that only follows from a setting set
 * aside ("missing") is not repeated; a bad list element sets the list aside, not the element. */
static void test_each_error(void)
{
    said s = {0};
    TB_REQUIRE(load("g = { a = 0; b = 10; c = 1;\n list = (\"x\", 1, 2); };\n") == TB_OK);
    TB_CHECK_EQ(tb_cfg_each_error(&lc, NULL, read_g, NULL, say, &s), 4u);
    TB_CHECK_EQ(s.n, 4);
    TB_CHECK(strcmp(s.text[0], "t.conf:1: key 'g.c': unknown key") == 0);
    TB_CHECK(strcmp(s.text[1], "t.conf:1: key 'g.a': 0 is outside 1..9") == 0);
    TB_CHECK(strcmp(s.text[2], "t.conf:1: key 'g.b': 10 is outside 1..9") == 0);
    TB_CHECK(strcmp(s.text[3], "t.conf:2: key 'g.list': element 1 is not a string") == 0);
    TB_CHECK(config_lookup(&lc, "g.list") == NULL && config_lookup(&lc, "g") != NULL);
    /* a required key at fault ends its group: "missing" is not said, the group goes */
    s.n = 0;
    TB_REQUIRE(load("g = { a = 0; b = 10; };\n") == TB_OK);
    TB_CHECK_EQ(tb_cfg_each_error(&lc, NULL, read_g, &s, say, &s), 1u);
    TB_CHECK(config_lookup(&lc, "g") == NULL);
    /* keep: nothing that holds it is set aside, the run stops there */
    s.n = 0;
    TB_REQUIRE(load("g = { a = 0; b = 10; };\n") == TB_OK);
    TB_CHECK_EQ(tb_cfg_each_error(&lc, config_lookup(&lc, "g"), read_g, &s, say, &s), 1u);
    TB_CHECK(config_lookup(&lc, "g") != NULL);
    /* a good file: nothing said */
    s.n = 0;
    TB_REQUIRE(load("g = { a = 1; b = 2; };\n") == TB_OK);
    TB_CHECK_EQ(tb_cfg_each_error(&lc, NULL, read_g, NULL, say, &s), 0u);
    TB_CHECK_EQ(s.n, 0);
}

int main(void)
{
    config_init(&lc);
    TB_RUN(test_whole_literals);
    TB_RUN(test_file_and_include);
    TB_RUN(test_syntax_error);
    TB_RUN(test_getters);
    TB_RUN(test_keys_and_fail);
    TB_RUN(test_each_error);
    config_destroy(&lc);
    return TB_DONE();
}
