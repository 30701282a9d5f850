#include "roughtime/merkle.h"

#include <sodium.h>
#include <string.h>

void tb_rt_hash(uint8_t *out, size_t out_len, int prefix, const uint8_t *a, size_t alen,
                const uint8_t *b, size_t blen)
{
    crypto_hash_sha512_state st;
    uint8_t full[crypto_hash_sha512_BYTES];
    uint8_t pre = (uint8_t)prefix;
    crypto_hash_sha512_init(&st);
    if (prefix >= 0)
        crypto_hash_sha512_update(&st, &pre, 1);
    crypto_hash_sha512_update(&st, a, alen);
    if (b)
        crypto_hash_sha512_update(&st, b, blen);
    crypto_hash_sha512_final(&st, full);
    memcpy(out, full, out_len);
}

int tb_rt_merkle_init(tb_rt_merkle *t, unsigned hash_len)
{
    if (hash_len != 32 && hash_len != 64)
        return TB_ERR_INVAL;
    t->hash_len = hash_len;
    t->leaves = 0;
    t->height = 0;
    return 0;
}

int tb_rt_merkle_add(tb_rt_merkle *t, const uint8_t *data, size_t len)
{
    if (t->leaves == TB_RT_MERKLE_MAX_LEAVES)
        return TB_ERR_FULL;
    tb_rt_hash(t->nodes[t->leaves], t->hash_len, 0, data, len, NULL, 0);
    t->leaves++;
    return 0;
}

int tb_rt_merkle_add_hash(tb_rt_merkle *t, const uint8_t *leaf_hash)
{
    if (t->leaves == TB_RT_MERKLE_MAX_LEAVES)
        return TB_ERR_FULL;
    memcpy(t->nodes[t->leaves], leaf_hash, t->hash_len);
    t->leaves++;
    return 0;
}

int tb_rt_merkle_build(tb_rt_merkle *t)
{
    if (t->leaves == 0)
        return TB_ERR_STATE;
    unsigned l = 0, off = 0, n = t->leaves;
    t->level_off[0] = 0;
    t->level_n[0] = n;
    while (n > 1) {
        unsigned next = off + n, m = (n + 1) / 2;
        for (unsigned i = 0; i < m; i++) {
            const uint8_t *left = t->nodes[off + 2 * i];
            const uint8_t *right = 2 * i + 1 < n ? t->nodes[off + 2 * i + 1] : left;
            tb_rt_hash(t->nodes[next + i], t->hash_len, 1, left, t->hash_len, right, t->hash_len);
        }
        l++;
        off = next;
        n = m;
        t->level_off[l] = off;
        t->level_n[l] = n;
    }
    t->height = l;
    return 0;
}

const uint8_t *tb_rt_merkle_root(const tb_rt_merkle *t)
{
    return t->nodes[t->level_off[t->height]];
}

int tb_rt_merkle_path(const tb_rt_merkle *t, unsigned i, uint8_t *out, size_t cap, size_t *outlen)
{
    if (i >= t->leaves)
        return TB_ERR_INVAL;
    if ((size_t)t->height * t->hash_len > cap)
        return TB_ERR_TOO_BIG;
    for (unsigned l = 0; l < t->height; l++) {
        unsigned sib = i ^ 1U;
        if (sib >= t->level_n[l])
            sib = i; /* the odd last node was paired with itself */
        memcpy(out + (size_t)l * t->hash_len, t->nodes[t->level_off[l] + sib], t->hash_len);
        i >>= 1;
    }
    *outlen = (size_t)t->height * t->hash_len;
    return 0;
}

int tb_rt_merkle_verify(unsigned hash_len, const uint8_t *data, size_t len, uint32_t indx,
                        const uint8_t *path, size_t path_len, const uint8_t *root)
{
    uint8_t h[TB_RT_HASH_MAX];
    if ((hash_len != 32 && hash_len != 64) || path_len % hash_len != 0 || path_len / hash_len > 32)
        return TB_ERR_MALFORMED;
    tb_rt_hash(h, hash_len, 0, data, len, NULL, 0);
    for (size_t off = 0; off < path_len; off += hash_len) {
        if (indx & 1)
            tb_rt_hash(h, hash_len, 1, path + off, hash_len, h, hash_len);
        else
            tb_rt_hash(h, hash_len, 1, h, hash_len, path + off, hash_len);
        indx >>= 1;
    }
    if (indx != 0)
        return TB_ERR_VERIFY;
    return sodium_memcmp(h, root, hash_len) == 0 ? 0 : TB_ERR_VERIFY;
}
