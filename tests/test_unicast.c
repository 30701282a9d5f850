#include "routing/unicast.h"

#include "tb_test.h"

static const char *const nb[] = {"alpha", "beta", "gamma"};

static void test_route_to(void)
{
    tb_uc_route r;
    TB_CHECK_EQ(tb_uc_route_to("self", "beta", 4, nb, 3, &r), 0);
    TB_CHECK_EQ(r.action, TB_UC_SEND);
    TB_CHECK_EQ(r.neighbour, 1);
    TB_CHECK_EQ(tb_uc_route_to("self", "gamma", 5, nb, 3, &r), 0);
    TB_CHECK_EQ(r.neighbour, 2);
    TB_CHECK_EQ(tb_uc_route_to("self", "self", 4, nb, 3, &r), 0);
    TB_CHECK_EQ(r.action, TB_UC_LOCAL);
    TB_CHECK_EQ(tb_uc_route_to("self", "delta", 5, nb, 3, &r), TB_ERR_NOTFOUND);
    /* A prefix of a neighbour's name is another name. */
    TB_CHECK_EQ(tb_uc_route_to("self", "alph", 4, nb, 3, &r), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_uc_route_to("self", "alphabet", 5, nb, 3, &r), 0);
    TB_CHECK_EQ(r.neighbour, 0);
    TB_CHECK_EQ(tb_uc_route_to("self", "Alpha", 5, nb, 3, &r), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_uc_route_to("self", "", 0, nb, 3, &r), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_uc_route_to("self", "beta", 4, nb, 0, &r), TB_ERR_NOTFOUND);
}

static void test_accept(void)
{
    TB_CHECK_EQ(tb_uc_accept("self", "self", 4), 0);
    TB_CHECK_EQ(tb_uc_accept("self", "selfie", 6), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_uc_accept("self", "sel", 3), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_uc_accept("self", "beta", 4), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_uc_accept("self", "se\0f", 4), TB_ERR_MALFORMED);
}

int main(void)
{
    TB_RUN(test_route_to);
    TB_RUN(test_accept);
    return TB_DONE();
}
