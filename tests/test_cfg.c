/* common/cfg: whole integer literals despite libconfig 1.5's 32-bit reading, the one error
 * format, and the typed, range-checked getters. */
#include <stdio.h>
#include <stdlib.h>
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

int main(void)
{
    config_init(&lc);
    TB_RUN(test_whole_literals);
    TB_RUN(test_file_and_include);
    TB_RUN(test_syntax_error);
    TB_RUN(test_getters);
    TB_RUN(test_keys_and_fail);
    config_destroy(&lc);
    return TB_DONE();
}
