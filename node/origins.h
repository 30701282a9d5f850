/* node/origins: the certificates of the origins whose signatures this node checks (signed
 * broadcasts and measurements, ADR 0010), and the broadcasts waiting for one. Private to node/.
 *
 * Certificates come from the handshakes of connected peers, from ALIVE announcements, from CERT
 * answers and from PEERS; every one is verified against the mesh CA before it is kept, and its
 * key is cached by fingerprint (measure/keycache.h), so the chain is checked once per
 * certificate. One certificate is kept per origin name: a newer one (later notBefore, or a
 * higher ALIVE incarnation) replaces it. The table is bounded; the entry used longest ago gives
 * way.
 *
 * A broadcast whose origin has no known certificate waits in a bounded queue per neighbour
 * (default 64 messages, 5 s) while the certificate is fetched (CERT_REQ to the neighbour that
 * forwarded it); the excess and the expired are dropped and counted.
 *
 * Also here, as node/ is the one place that reads them: the mesh CA and the node's Ed25519 key
 * from their files (the time node signs with the same key). No clock: times are arguments. */
#ifndef TB_NODE_ORIGINS_H
#define TB_NODE_ORIGINS_H

#include <stddef.h>
#include <stdint.h>

#include "certs/ca.h"
#include "common/error.h"
#include "common/log.h"
#include "measure/measurement.h"
#include "measure/replay.h"

#define TB_ORIGINS_MAX 1024              /* origins whose certificates are kept */
#define TB_ORIGINS_HOLD_PER_PEER 64      /* broadcasts waiting, per neighbour */
#define TB_ORIGINS_HOLD_MAX 1024         /* broadcasts waiting, in all */
#define TB_ORIGINS_HOLD_BYTES (8u << 20) /* their bytes, in all */
#define TB_ORIGINS_HOLD_NS (5ULL * 1000000000ULL)
#define TB_ORIGINS_ASK_NS 1000000000ULL /* one CERT_REQ per origin and neighbour this often */

/* Reads the node's Ed25519 key (PEM, PKCS#8) from path; errors are logged naming the file. */
TB_WUR int tb_origins_load_key(const tb_log *log, const char *path, uint8_t sk[TB_MEASURE_SK_LEN],
                               uint8_t pk[TB_MEASURE_PK_LEN]);

typedef struct tb_origins tb_origins;

typedef struct tb_origins_stats {
    uint64_t learned; /* certificates verified and kept */
    uint64_t refused; /* certificates that failed the CA check or named another node */
    uint64_t held, released, hold_full, hold_expired;
} tb_origins_stats;

/* Loads the mesh CA from ca_file (certs/ loads "ca.crt" from a folder: a file of another name is
 * reached through a link in state_dir/meshca). */
TB_WUR int tb_origins_new(const tb_log *log, const char *ca_file, const char *state_dir,
                          tb_origins **out);
void tb_origins_free(tb_origins *o);

/* Verifies der against the CA at now_s and keeps it as the certificate of the node it names
 * (*name, optional, gets that name; expect, when not NULL, must be it). incarnation: the ALIVE's
 * that carried it (0 otherwise). TB_ERR_VERIFY when refused (counted), TB_ERR_EXISTS when an
 * equal or newer one is kept already (not an error for callers that learn opportunistically),
 * TB_ERR_NOMEM. */
TB_WUR int tb_origins_learn(tb_origins *o, const uint8_t *der, size_t len, const char *expect,
                            uint64_t incarnation, int64_t now_s, char name[64]);

/* Verifies der against the CA at now_s (and, when expect is not NULL, that it names expect)
 * without keeping it; fills *key and name (both optional). TB_ERR_VERIFY when refused. */
TB_WUR int tb_origins_check(tb_origins *o, const uint8_t *der, size_t len, const char *expect,
                            int64_t now_s, tb_measure_origin_key *key, char name[64]);

/* The key of origin's certificate for checking its signatures at now_s: from a certificate
 * that passed the CA check (or, once expired, with its dates, so the caller can say
 * "expired"). TB_ERR_NOTFOUND when none is known. */
TB_WUR int tb_origins_key(tb_origins *o, const char *origin, int64_t now_s,
                          tb_measure_origin_key *out);

/* The certificate kept for origin (valid until the table changes). TB_ERR_NOTFOUND. */
TB_WUR int tb_origins_der(const tb_origins *o, const char *origin, const uint8_t **der,
                          size_t *len);

/* Whether to send a CERT_REQ for origin to neighbour `from` now (not asked within
 * TB_ORIGINS_ASK_NS); remembers that it was asked. */
int tb_origins_should_ask(tb_origins *o, const char *origin, const char *from, uint64_t now);

/* Keeps a copy of an encoded BROADCAST from neighbour `from` until origin's certificate is known.
 * tries: how often it was checked already. TB_ERR_FULL (counted) when from's queue or the
 * whole queue (messages or bytes) is full. */
TB_WUR int tb_origins_hold(tb_origins *o, const char *from, const char *origin, const uint8_t *msg,
                           size_t len, int tries, uint64_t now);

typedef void (*tb_origins_release_fn)(void *arg, const char *from, const uint8_t *msg, size_t len,
                                      int tries);

/* Hands every message held for origin to fn (oldest first) and forgets them; fn may hold a
 * message again. */
void tb_origins_release(tb_origins *o, const char *origin, tb_origins_release_fn fn, void *arg);

/* Drops held messages older than TB_ORIGINS_HOLD_NS; returns when the next one expires
 * (UINT64_MAX: none held). */
uint64_t tb_origins_expire(tb_origins *o, uint64_t now);

size_t tb_origins_count(const tb_origins *o);
size_t tb_origins_held(const tb_origins *o);
void tb_origins_get_stats(const tb_origins *o, tb_origins_stats *out);

#endif
