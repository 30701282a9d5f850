#include "common/bytes.h"
#include "common/error.h"
#include "tb_test.h"

static void test_round_trip(void)
{
    uint8_t b[8];
    tb_put_be64(b, 0x0102030405060708ULL);
    TB_CHECK_EQ(b[0], 1);
    TB_CHECK_EQ(b[7], 8);
    TB_CHECK(tb_get_be64(b) == 0x0102030405060708ULL);
    TB_CHECK_EQ(tb_get_be16(b), 0x0102);
    tb_put_le64(b, 0x4d49544847554f52ULL);
    TB_CHECK_MEM(b, "ROUGHTIM", 8);
    TB_CHECK(tb_get_le64(b) == 0x4d49544847554f52ULL);
    tb_put_le32(b, 0x8000000cU);
    TB_CHECK_EQ(b[3], 0x80);
    TB_CHECK_EQ(tb_get_le32(b), 0x8000000cU);
    tb_put_be32(b, 0xdeadbeefU);
    TB_CHECK_EQ(tb_get_be32(b), 0xdeadbeefU);
}

static void test_strerror(void)
{
    TB_CHECK_STR(tb_strerror(TB_ERR_TRUNCATED), "truncated input");
    TB_CHECK_STR(tb_strerror(-999), "unknown error");
}

int main(void)
{
    TB_RUN(test_round_trip);
    TB_RUN(test_strerror);
    return TB_DONE();
}
