/* Roughtime Merkle tree: every leaf of every batch size 1..130 proves its way to the root with
 * the RFC's check algorithm, and nothing else does. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "roughtime/merkle.h"
#include "tb_test.h"

static void test_small_trees_by_hand(void)
{
    static tb_rt_merkle t;
    uint8_t a[5] = "leafa", b[5] = "leafb", la[32], lb[32], root[32], path[64];
    size_t plen;
    tb_rt_hash(la, 32, 0, a, 5, NULL, 0);
    tb_rt_hash(lb, 32, 0, b, 5, NULL, 0);
    TB_REQUIRE(tb_rt_merkle_init(&t, 32) == 0);
    TB_REQUIRE(tb_rt_merkle_add(&t, a, 5) == 0);
    TB_REQUIRE(tb_rt_merkle_build(&t) == 0);
    TB_CHECK_MEM(tb_rt_merkle_root(&t), la, 32); /* one leaf: the root is the leaf, PATH empty */
    TB_REQUIRE(tb_rt_merkle_path(&t, 0, path, sizeof(path), &plen) == 0);
    TB_CHECK_EQ(plen, 0);
    TB_REQUIRE(tb_rt_merkle_add(&t, b, 5) == 0);
    TB_REQUIRE(tb_rt_merkle_build(&t) == 0);
    tb_rt_hash(root, 32, 1, la, 32, lb, 32);
    TB_CHECK_MEM(tb_rt_merkle_root(&t), root, 32);
    /* INDX bit 0 = 0: h = H(1 ‖ h ‖ node); bit 0 = 1: h = H(1 ‖ node ‖ h). */
    TB_CHECK_EQ(tb_rt_merkle_verify(32, a, 5, 0, lb, 32, root), 0);
    TB_CHECK_EQ(tb_rt_merkle_verify(32, b, 5, 1, la, 32, root), 0);
    TB_CHECK_EQ(tb_rt_merkle_verify(32, a, 5, 1, lb, 32, root), TB_ERR_VERIFY);
    /* Left-over INDX bits must be zero. */
    TB_CHECK_EQ(tb_rt_merkle_verify(32, a, 5, 2, lb, 32, root), TB_ERR_VERIFY);
    TB_CHECK_EQ(tb_rt_merkle_verify(32, a, 5, 0, lb, 31, root), TB_ERR_MALFORMED);
    TB_CHECK_EQ(tb_rt_merkle_init(&t, 48), TB_ERR_INVAL);
    TB_REQUIRE(tb_rt_merkle_init(&t, 32) == 0);
    TB_CHECK_EQ(tb_rt_merkle_build(&t), TB_ERR_STATE);
}

static void check_size(unsigned hash_len, unsigned n, uint8_t (*data)[40])
{
    static tb_rt_merkle t;
    uint8_t path[32 * 64], bad[40];
    size_t plen;
    TB_REQUIRE(tb_rt_merkle_init(&t, hash_len) == 0);
    for (unsigned i = 0; i < n; i++)
        TB_REQUIRE(tb_rt_merkle_add(&t, data[i], 40) == 0);
    TB_REQUIRE(tb_rt_merkle_build(&t) == 0);
    unsigned height = 0;
    while ((1U << height) < n)
        height++;
    TB_CHECK_EQ(t.height, height);
    for (unsigned i = 0; i < n; i++) {
        TB_REQUIRE(tb_rt_merkle_path(&t, i, path, sizeof(path), &plen) == 0);
        TB_CHECK_EQ(plen, height * hash_len);
        int ok = tb_rt_merkle_verify(hash_len, data[i], 40, i, path, plen, tb_rt_merkle_root(&t));
        if (ok != 0)
            fprintf(stderr, "n=%u leaf %u does not verify\n", n, i);
        TB_CHECK_EQ(ok, 0);
        /* Another leaf's data, or this data at the wrong index, must not. */
        memcpy(bad, data[i], 40);
        bad[7] ^= 1;
        TB_CHECK_EQ(tb_rt_merkle_verify(hash_len, bad, 40, i, path, plen, tb_rt_merkle_root(&t)),
                    TB_ERR_VERIFY);
        if (n > 1) {
            unsigned other = (i + 1) % n;
            int rc = tb_rt_merkle_verify(hash_len, data[i], 40, other, path, plen,
                                         tb_rt_merkle_root(&t));
            /* The odd last node is paired with itself, so its neighbour index can be a twin. */
            if (!(n % 2 == 1 && i == n - 1))
                TB_CHECK_EQ(rc, TB_ERR_VERIFY);
        }
    }
}

static void test_batch_sizes_1_to_130(void)
{
    static uint8_t data[130][40];
    randombytes_buf(data, sizeof(data));
    for (unsigned n = 1; n <= 130; n++) {
        check_size(32, n, data);
        if (n % 17 == 0 || n < 10)
            check_size(64, n, data); /* Google-Roughtime's untruncated hashes */
    }
}

static void test_capacity(void)
{
    static tb_rt_merkle t;
    uint8_t d[4] = {0};
    TB_REQUIRE(tb_rt_merkle_init(&t, 32) == 0);
    for (unsigned i = 0; i < TB_RT_MERKLE_MAX_LEAVES; i++)
        TB_REQUIRE(tb_rt_merkle_add(&t, d, 4) == 0);
    TB_CHECK_EQ(tb_rt_merkle_add(&t, d, 4), TB_ERR_FULL);
    TB_REQUIRE(tb_rt_merkle_build(&t) == 0);
    uint8_t path[32 * 8];
    size_t plen;
    TB_CHECK_EQ(tb_rt_merkle_path(&t, 0, path, sizeof(path), &plen), TB_ERR_TOO_BIG);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    TB_RUN(test_small_trees_by_hand);
    TB_RUN(test_batch_sizes_1_to_130);
    TB_RUN(test_capacity);
    return TB_DONE();
}
