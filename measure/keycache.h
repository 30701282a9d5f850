/* measure/keycache: origin keys already taken from verified certificates, so that a receiver
 * runs the certificate chain check once per certificate rather than once per measurement.
 * Entries are keyed by the certificate's fingerprint (the caller's SHA-256 of its DER) and the
 * origin name the certificate was checked for: a certificate that changes (renewed, or another
 * node claiming the name) has another fingerprint and is checked again. Only certificates that
 * passed the full check and are in date may be put; an entry is dropped once its certificate
 * expires (the lookup then misses and the caller's full check says why). The table is bounded:
 * when full, the entry used longest ago gives way. Pure: no I/O, no clock (now is an argument). */
#ifndef TB_MEASURE_KEYCACHE_H
#define TB_MEASURE_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "measure/replay.h"

#define TB_MEASURE_FP_LEN 32 /* SHA-256 */
#define TB_MEASURE_KEYCACHE_MAX 65536

typedef struct tb_measure_keycache tb_measure_keycache;

/* capacity: entries kept, 1..TB_MEASURE_KEYCACHE_MAX. NULL when out of memory or out of range. */
tb_measure_keycache *tb_measure_keycache_new(size_t capacity);
void tb_measure_keycache_free(tb_measure_keycache *c);

/* The key cached for (fp, origin) when its certificate is valid at now_s (Unix seconds).
 * TB_ERR_NOTFOUND otherwise (an expired entry is dropped). A hit makes the entry the newest. */
TB_WUR int tb_measure_keycache_get(tb_measure_keycache *c, const uint8_t fp[TB_MEASURE_FP_LEN],
                                   const char *origin, int64_t now_s, tb_measure_origin_key *out);

/* Remembers a key from a certificate the caller verified (chain, name, key type) and found
 * valid at now_s; replaces an entry with the same (fp, origin). TB_ERR_STATE when the key is not
 * valid at now_s (nothing is cached), TB_ERR_INVAL for an origin name that is too long. */
TB_WUR int tb_measure_keycache_put(tb_measure_keycache *c, const uint8_t fp[TB_MEASURE_FP_LEN],
                                   const char *origin, int64_t now_s,
                                   const tb_measure_origin_key *key);

size_t tb_measure_keycache_size(const tb_measure_keycache *c);

/* Forgets every entry: a new revocation list may have revoked a certificate checked before. */
void tb_measure_keycache_clear(tb_measure_keycache *c);

#endif
