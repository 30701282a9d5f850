/* Roughtime Merkle tree over one batch of requests: H = SHA-512 truncated to hash_len (32, or 64
 * for Google-Roughtime), leaf = H(0x00 ‖ leaf data), node = H(0x01 ‖ left ‖ right). A level
 * with an odd count pairs its last node with itself. INDX bit i (from the least significant)
 * says whether the node at height i is a right child (1) or a left child (0). Pure: no I/O. */
#ifndef TB_ROUGHTIME_MERKLE_H
#define TB_ROUGHTIME_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_RT_MERKLE_MAX_LEAVES 512
#define TB_RT_HASH_MAX 64

/* H(prefix ‖ a ‖ b) truncated to out_len (≤ 64); b may be NULL. */
void tb_rt_hash(uint8_t *out, size_t out_len, int prefix, const uint8_t *a, size_t alen,
                const uint8_t *b, size_t blen);

typedef struct tb_rt_merkle {
    unsigned hash_len;
    unsigned leaves;
    unsigned height; /* levels above the leaves */
    /* All levels, leaves first; level l starts at level_off[l]. */
    unsigned level_off[12];
    unsigned level_n[12];
    uint8_t nodes[2 * TB_RT_MERKLE_MAX_LEAVES + 16][TB_RT_HASH_MAX];
} tb_rt_merkle;

/* Starts a tree of hash_len-byte hashes (32 or 64). */
TB_WUR int tb_rt_merkle_init(tb_rt_merkle *t, unsigned hash_len);
/* Adds H(0 ‖ data) as the next leaf. */
TB_WUR int tb_rt_merkle_add(tb_rt_merkle *t, const uint8_t *data, size_t len);
/* Adds a leaf hash computed earlier (hash_len bytes). */
TB_WUR int tb_rt_merkle_add_hash(tb_rt_merkle *t, const uint8_t *leaf_hash);
/* Computes the inner nodes; the root is then tb_rt_merkle_root. */
TB_WUR int tb_rt_merkle_build(tb_rt_merkle *t);
const uint8_t *tb_rt_merkle_root(const tb_rt_merkle *t);
/* Writes the path of leaf i (height * hash_len bytes) into out[cap]. */
TB_WUR int tb_rt_merkle_path(const tb_rt_merkle *t, unsigned i, uint8_t *out, size_t cap,
                             size_t *outlen);

/* Checks that leaf data with INDX and PATH hashes to root (RFC "root value validity check"). */
TB_WUR int tb_rt_merkle_verify(unsigned hash_len, const uint8_t *data, size_t len, uint32_t indx,
                               const uint8_t *path, size_t path_len, const uint8_t *root);

#endif
