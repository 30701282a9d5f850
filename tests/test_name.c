/* common/name.h: the node and region name rule shared by certs, node config, discovery,
 * routing and measurements. */
#include "common/name.h"

#include <string.h>

#include "tests/tb_test.h"

static int valid(const char *s)
{
    return tb_name_valid(s, strlen(s));
}

static void test_accepted(void)
{
    TB_CHECK(valid("a"));
    TB_CHECK(valid("0"));
    TB_CHECK(valid("node-1"));
    TB_CHECK(valid("eu-west-1"));
    TB_CHECK(valid("0eu-west-")); /* a trailing '-' is allowed: the profile only fixes the first */
    char max[TB_NAME_MAX + 1];
    memset(max, 'x', TB_NAME_MAX);
    TB_CHECK(tb_name_valid(max, TB_NAME_MAX));
}

static void test_refused(void)
{
    /* discovery/peers.c used to take these for a PEERS entry; no certificate can carry them. */
    TB_CHECK(!valid("-a"));
    TB_CHECK(!valid("-"));
    TB_CHECK(!valid("--"));
    TB_CHECK(!valid(""));
    TB_CHECK(!tb_name_valid(NULL, 0));
    TB_CHECK(!tb_name_valid(NULL, 3));
    TB_CHECK(!valid("Node"));
    TB_CHECK(!valid("a_b"));
    TB_CHECK(!valid("a.b"));
    TB_CHECK(!valid("a b"));
    TB_CHECK(!valid("a\x80"));
    char over[TB_NAME_MAX + 2];
    memset(over, 'x', sizeof(over));
    TB_CHECK(!tb_name_valid(over, TB_NAME_MAX + 1));
}

static void test_length_is_explicit(void)
{
    /* Exactly len bytes are judged: a NUL inside is refused, bytes past len are not read. */
    TB_CHECK(!tb_name_valid("a\0b", 3));
    TB_CHECK(tb_name_valid("ab-!", 3));
    TB_CHECK(!tb_name_valid("ab-!", 4));
}

int main(void)
{
    TB_RUN(test_accepted);
    TB_RUN(test_refused);
    TB_RUN(test_length_is_explicit);
    return TB_DONE();
}
