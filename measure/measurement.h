/* measure/measurement: the signed measurement (issue 6, adr/0008). Owns the body format that the
 * wire MEASUREMENT message carries as opaque bytes (wire/wire.h), its strict parser, and the
 * Ed25519 signature over it.
 *
 * Sign convention (used by every module that reads a measurement): offset_ns = source clock −
 * clock of the origin node, so a positive offset means the origin's clock is behind the source.
 * error_bound_ns is the half-width of the interval [offset − bound, offset + bound] in which the
 * origin claims the true offset lies.
 *
 * The body is a versioned, fixed-order, big-endian binary record (layout in adr/0008): it has
 * exactly one encoding for a given measurement, so the same measurement always gives the same
 * bytes and the parser can reject anything else (unknown version, flags, trailing bytes).
 * The signature covers "tbnode measurement v1\0" ‖ body with the origin's node-certificate key,
 * so a measurement verifies wherever it travels, and its signature is useless in any other
 * protocol that signs with the same key.
 *
 * Nothing here does I/O, reads a clock or keeps global state (libsodium's one-time init aside). */
#ifndef TB_MEASURE_MEASUREMENT_H
#define TB_MEASURE_MEASUREMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_MEASURE_BODY_VERSION 2
/* Signature context, including its final NUL (22 bytes signed before the body). */
#define TB_MEASURE_SIGN_CONTEXT "tbnode measurement v1"
#define TB_MEASURE_SIG_LEN 64
#define TB_MEASURE_PK_LEN 32
#define TB_MEASURE_SK_LEN 64 /* libsodium's Ed25519 secret key: seed ‖ public key */
#define TB_MEASURE_RT_PK_LEN 32
#define TB_MEASURE_RAND_LEN 32
#define TB_MEASURE_MAX_ORIGIN 63     /* a node name (certs: [a-z0-9-], 1-63) */
#define TB_MEASURE_MAX_TEXT 255      /* a source name or address */
#define TB_MEASURE_MAX_EVIDENCE 4096 /* each of the raw request and response */
/* Largest body the encoder writes and the parser accepts. */
#define TB_MEASURE_BODY_MAX                                                                        \
    (3 + (1 + TB_MEASURE_MAX_ORIGIN) + 2 * (1 + TB_MEASURE_MAX_TEXT) + TB_MEASURE_RT_PK_LEN + 40 + \
     2 + 2 * (2 + TB_MEASURE_MAX_EVIDENCE) + TB_MEASURE_RAND_LEN)

typedef enum tb_measure_kind {
    TB_MEASURE_NTP = 1,
    TB_MEASURE_ROUGHTIME = 2,
    TB_MEASURE_PEER = 3, /* another mesh node, measured by PING/PONG */
    /* A reference clock local to the origin (a SOCK refclock, sources/sock_driver.h): one-way,
     * no packets, so never evidence; source_name is "ORIGIN:NAME" (the origin's own clock, not
     * one any other node can read). Added to body version 2: every older body parses as
     * before; a node that predates it drops such a body as malformed. */
    TB_MEASURE_REFCLOCK = 4,
} tb_measure_kind;
#define TB_MEASURE_KIND_MAX TB_MEASURE_REFCLOCK

/* "ntp", "roughtime", "peer", "refclock"; "unknown" otherwise. */
const char *tb_measure_kind_name(int kind);

typedef struct tb_measure_bytes {
    const uint8_t *data;
    size_t len;
} tb_measure_bytes;

typedef struct tb_measurement {
    char origin[TB_MEASURE_MAX_ORIGIN + 1]; /* the node that measured and signs */
    tb_measure_kind kind;
    char source_name[TB_MEASURE_MAX_TEXT + 1]; /* configured name: what identifies the source
                                                  across regions */
    char source_addr[TB_MEASURE_MAX_TEXT + 1]; /* address it resolved to there ("" if none) */
    bool has_rt_pubkey;                        /* required for (and only for) Roughtime */
    uint8_t rt_pubkey[TB_MEASURE_RT_PK_LEN];
    uint64_t seq;      /* origin's sequence number, strictly increasing per origin */
    int64_t real_ns;   /* origin's real time (Unix ns) when the measurement completed */
    uint64_t mono_ns;  /* origin's monotonic time: local only, NOT encoded; 0 after parsing */
    int64_t offset_ns; /* source − origin clock */
    int64_t delay_ns;  /* round-trip delay, >= 0 */
    int64_t bound_ns;  /* error bound (half-width), >= 0 */
    /* NTP only (0 for other kinds): the reply's leap indicator (0 none, 1 a second is inserted
     * and 2 deleted at the end of the month, 3 the server is unsynchronised) and stratum (0
     * Kiss-o'-Death, 16 unsynchronised). With evidence, the receiver checks them against the
     * response packet. Body version 2. */
    uint8_t leap;
    uint8_t stratum;
    /* Raw evidence, both or neither (for Roughtime: the whole request and response packets).
     * After parsing they point INTO the parsed buffer: valid while it is. */
    tb_measure_bytes ev_request, ev_response;
    /* For a Roughtime measurement chained to a previous response (nonce = H(prev ‖ rand)); only
     * with evidence. Malfeasance reports carry it. */
    bool has_rand;
    uint8_t rand[TB_MEASURE_RAND_LEN];
} tb_measurement;

/* The ranges a measurement's numbers must lie in before anything computes with them (a
 * receiver drops one outside as "out of range"; the node does not sign one). Chosen so that
 * offset ± bound, real − delay and (real + send) / 2 cannot overflow: real time up to 2116,
 * offset and bound up to 73 years (a clock reset to 1970 still measures), delay up to 1 h. */
#define TB_MEASURE_MAX_REAL_NS (INT64_C(1) << 62)
#define TB_MEASURE_MAX_OFFSET_NS (INT64_C(1) << 61)
#define TB_MEASURE_MAX_BOUND_NS (INT64_C(1) << 61)
#define TB_MEASURE_MAX_DELAY_NS (INT64_C(3600) * 1000000000)

/* NULL when every number of m is in range, else the name of the first field that is not
 * ("real_ns", "offset_ns", "delay_ns", "bound_ns"). */
const char *tb_measure_range_error(const tb_measurement *m);

/* Where parsing failed, for the operator's log line. */
typedef struct tb_measure_diag {
    const char *field; /* static text: "version", "origin", "evidence.request" ... */
    size_t offset;
} tb_measure_diag;

/* Encodes m into buf[0..cap). Applies every check the parser applies (TB_ERR_INVAL for a bad
 * name, kind, negative delay/bound, pubkey/evidence/rand combination; TB_ERR_TOO_BIG over the
 * limits or cap). */
TB_WUR int tb_measure_encode(const tb_measurement *m, uint8_t *buf, size_t cap, size_t *outlen);

/* Parses exactly one body from (p, len). Returns 0 and fills *out (evidence pointing into p),
 * or TB_ERR_TRUNCATED, TB_ERR_UNSUPPORTED (another body version), TB_ERR_MALFORMED (bad kind,
 * flags, text, negative delay/bound, trailing bytes), TB_ERR_TOO_BIG. diag may be NULL. */
TB_WUR int tb_measure_parse(const uint8_t *p, size_t len, tb_measurement *out,
                            tb_measure_diag *diag);

/* Ed25519 over TB_MEASURE_SIGN_CONTEXT "\0" ‖ body. TB_ERR_TOO_BIG over TB_MEASURE_BODY_MAX,
 * TB_ERR_CRYPTO when libsodium fails. */
TB_WUR int tb_measure_sign(const uint8_t *body, size_t len, const uint8_t sk[TB_MEASURE_SK_LEN],
                           uint8_t sig[TB_MEASURE_SIG_LEN]);

/* 0 when sig is the origin's signature over body, TB_ERR_VERIFY otherwise. */
TB_WUR int tb_measure_verify(const uint8_t *body, size_t len, const uint8_t sig[TB_MEASURE_SIG_LEN],
                             const uint8_t pk[TB_MEASURE_PK_LEN]);

/* Encodes and signs in one step: body into buf, its length in *body_len, signature in sig. */
TB_WUR int tb_measure_seal(const tb_measurement *m, const uint8_t sk[TB_MEASURE_SK_LEN],
                           uint8_t *buf, size_t cap, size_t *body_len,
                           uint8_t sig[TB_MEASURE_SIG_LEN]);

/* The libsodium key pair from the 32-byte Ed25519 seed (what OpenSSL's
 * EVP_PKEY_get_raw_private_key returns for an Ed25519 key). */
TB_WUR int tb_measure_key_from_seed(const uint8_t seed[32], uint8_t sk[TB_MEASURE_SK_LEN],
                                    uint8_t pk[TB_MEASURE_PK_LEN]);

/* The same from an Ed25519 private key in PEM (PKCS#8, as tbcert writes node keys), held in
 * memory: TB_ERR_MALFORMED when it is not PEM, TB_ERR_UNSUPPORTED for another key type. */
TB_WUR int tb_measure_key_from_pem(const char *pem, size_t len, uint8_t sk[TB_MEASURE_SK_LEN],
                                   uint8_t pk[TB_MEASURE_PK_LEN]);

#endif
