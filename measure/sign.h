/* measure/sign: the node's one Ed25519 implementation, for measurements (measurement.h) and for
 * signed broadcasts (routing/broadcast.h, ADR 0010). A signed message is given as parts that
 * are signed as their concatenation; every user starts it with its own NUL-terminated context
 * ("tbnode measurement v1", "tbnode broadcast v1"), so a signature is useless in any other
 * protocol that signs with the same node key. The digest of the same parts names a signed
 * message (the broadcast duplicate cache keys on it).
 * Nothing here does I/O, reads a clock or keeps global state (libsodium's one-time init aside). */
#ifndef TB_MEASURE_SIGN_H
#define TB_MEASURE_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "measure/measurement.h"

/* Largest concatenation signed or verified (a broadcast of the largest wire payload fits). */
#define TB_MEASURE_SIGNED_MAX (128u * 1024u)
#define TB_MEASURE_DIGEST_LEN 16

typedef struct tb_measure_part {
    const uint8_t *data;
    size_t len;
} tb_measure_part;

/* Ed25519 over the concatenation of parts[0..n). TB_ERR_TOO_BIG over TB_MEASURE_SIGNED_MAX,
 * TB_ERR_NOMEM, TB_ERR_CRYPTO when libsodium fails. */
TB_WUR int tb_measure_sign_parts(const tb_measure_part *parts, size_t n,
                                 const uint8_t sk[TB_MEASURE_SK_LEN],
                                 uint8_t sig[TB_MEASURE_SIG_LEN]);

/* 0 when sig is pk's signature over the concatenation, TB_ERR_VERIFY otherwise (also when it is
 * over TB_MEASURE_SIGNED_MAX), TB_ERR_NOMEM. */
TB_WUR int tb_measure_verify_parts(const tb_measure_part *parts, size_t n,
                                   const uint8_t sig[TB_MEASURE_SIG_LEN],
                                   const uint8_t pk[TB_MEASURE_PK_LEN]);

/* The first TB_MEASURE_DIGEST_LEN bytes of SHA-256 over the concatenation. */
TB_WUR int tb_measure_digest(const tb_measure_part *parts, size_t n,
                             uint8_t out[TB_MEASURE_DIGEST_LEN]);

#endif
