/* common/opt: option numbers with full error and range checks, and the bad-option message. */
#include <getopt.h>
#include <math.h>

#include "common/opt.h"
#include "tests/tb_test.h"

static char err[256];

static void test_double(void)
{
    double v = -1;
    TB_CHECK_EQ(tb_opt_parse_double("--timeout", "2.5", 0.001, 3600, &v, err, sizeof(err)), TB_OK);
    TB_CHECK(v == 2.5);
    TB_CHECK_EQ(tb_opt_parse_double("--timeout", "1e1", 0.001, 3600, &v, err, sizeof(err)), TB_OK);
    TB_CHECK(v == 10);
    static const char *const bad[] = {"", "abc", "1x", " 1", "1 ", "nan", "inf", "1e999", "0x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        TB_CHECK_EQ(tb_opt_parse_double("--timeout", bad[i], 0, 1e300, &v, err, sizeof(err)),
                    TB_ERR_INVAL);
        TB_CHECK(v == 7);
    }
    TB_CHECK_EQ(tb_opt_parse_double("--timeout", "abc", 0, 1, &v, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK_STR(err, "--timeout: 'abc' is not a number");
    TB_CHECK_EQ(tb_opt_parse_double("--timeout", "-1", 0.001, 3600, &v, err, sizeof(err)),
                TB_ERR_INVAL);
    TB_CHECK_STR(err, "--timeout: -1 is outside 0.001..3600");
}

static void test_u64(void)
{
    uint64_t v = 0;
    TB_CHECK_EQ(tb_opt_parse_u64("--days", "36500", 1, 36500, &v, err, sizeof(err)), TB_OK);
    TB_CHECK_EQ(v, 36500);
    TB_CHECK_EQ(
        tb_opt_parse_u64("--n", "18446744073709551615", 0, UINT64_MAX, &v, err, sizeof(err)),
        TB_OK);
    TB_CHECK(v == UINT64_MAX);
    static const char *const bad[] = {"", "x", "1.5", "-1", "+1", " 1", "1 ", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        TB_CHECK_EQ(tb_opt_parse_u64("--days", bad[i], 0, UINT64_MAX, &v, err, sizeof(err)),
                    TB_ERR_INVAL);
        TB_CHECK_EQ(v, 7);
    }
    TB_CHECK_EQ(tb_opt_parse_u64("--days", "-1", 1, 36500, &v, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK_STR(err, "--days: '-1' is not a whole number");
    TB_CHECK_EQ(tb_opt_parse_u64("--days", "18446744073709551616", 1, 36500, &v, err, sizeof(err)),
                TB_ERR_INVAL);
    TB_CHECK_STR(err, "--days: 18446744073709551616 is outside 1..36500");
    TB_CHECK_EQ(tb_opt_parse_u64("--days", "0", 1, 36500, &v, err, sizeof(err)), TB_ERR_INVAL);
    TB_CHECK_STR(err, "--days: 0 is outside 1..36500");
}

static int parse(int argc, char **argv)
{
    static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                         {"debug", no_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d", opts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            tb_opt_bad_option(c, argv, "prog --help", err, sizeof(err));
            return c;
        }
    }
    return 0;
}

static void test_bad_option(void)
{
    char *a1[] = {"prog", "--debug", "--tiemout=3", NULL};
    TB_CHECK_EQ(parse(3, a1), '?');
    TB_CHECK_STR(err, "unknown option '--tiemout' (see prog --help)");
    char *a2[] = {"prog", "-x", NULL};
    TB_CHECK_EQ(parse(2, a2), '?');
    TB_CHECK_STR(err, "unknown option '-x' (see prog --help)");
    char *a3[] = {"prog", "--timeout", NULL};
    TB_CHECK_EQ(parse(2, a3), ':');
    TB_CHECK_STR(err, "option '--timeout' needs a value (see prog --help)");
    char *a4[] = {"prog", "--debug", "--timeout", "1", NULL};
    TB_CHECK_EQ(parse(4, a4), 0);
}

int main(void)
{
    TB_RUN(test_double);
    TB_RUN(test_u64);
    TB_RUN(test_bad_option);
    return TB_DONE();
}
