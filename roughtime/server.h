/* Roughtime server logic, without sockets or clock: holds the long-term key, delegates and
 * rotates the online key, validates requests (dropping and counting the invalid ones), collects
 * them into one batch per negotiated version and signs each batch once (one Merkle tree, one
 * signature). The UDP edge (udp.h) feeds it packets and `now`, and sends what it emits. */
#ifndef TB_ROUGHTIME_SERVER_H
#define TB_ROUGHTIME_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/log.h"

#define TB_RT_SRV_MAX_BATCH 128
#define TB_RT_SRV_MAX_QUEUE 4096

typedef struct tb_rt_srv tb_rt_srv;

/* A delegation made offline (`tbroughtime delegate`): the online key and its CERT (SIG by the
 * long-term key over DELE(PUBK, MINT, MAXT)), so the serving host never holds the long-term
 * key. */
typedef struct tb_rt_delegation {
    uint8_t longterm_pk[32];
    uint8_t online_sk[64];
    uint8_t cert[160];
    size_t cert_len;
    int64_t mint_s, maxt_s; /* filled by tb_rt_delegation_make and _check */
} tb_rt_delegation;

/* Builds the CERT delegating online_sk's key for [mint_s, maxt_s]: the one writer of a CERT
 * (the server's own rotation uses it too). */
TB_WUR int tb_rt_delegation_make(const uint8_t longterm_sk[64], const uint8_t online_sk[64],
                                 int64_t mint_s, int64_t maxt_s, tb_rt_delegation *out);
/* Checks a loaded delegation: the CERT parses, its SIG verifies with longterm_pk, its PUBK is
 * online_sk's public key, MINT <= MAXT; fills mint_s, maxt_s. TB_ERR_MALFORMED or
 * TB_ERR_VERIFY. */
TB_WUR int tb_rt_delegation_check(tb_rt_delegation *d);

typedef struct tb_rt_srv_config {
    uint8_t longterm_sk[64];  /* libsodium Ed25519 secret key (seed ‖ public key) */
    unsigned max_batch;       /* requests per signature, 1..128 (default 64) */
    unsigned queue_cap;       /* pending requests across batches, ≥ max_batch (default 4*max) */
    uint64_t dele_lifetime_s; /* online key validity MAXT − now (default 86400, at least 2);
                                 rotated at half of it */
    /* With has_delegation: serve with this delegation, longterm_sk unused (may be zero); no
     * rotation; tb_rt_srv_new refuses one that has expired (TB_ERR_TIMEOUT) or does not
     * verify. */
    int has_delegation;
    tb_rt_delegation delegation;
} tb_rt_srv_config;

void tb_rt_srv_config_default(tb_rt_srv_config *cfg);

/* Why a request was dropped. Requests are never answered with an error. */
typedef enum tb_rt_drop {
    TB_RT_DROP_FRAMING = 0, /* no ROUGHTIM header, length mismatch, or truncated datagram */
    TB_RT_DROP_MESSAGE,     /* malformed tag-value message */
    TB_RT_DROP_NO_VER,
    TB_RT_DROP_NO_NONC,
    TB_RT_DROP_NO_TYPE,
    TB_RT_DROP_BAD_SRV,
    TB_RT_DROP_TOO_SHORT,   /* packet under 1024 bytes */
    TB_RT_DROP_UNKNOWN_SRV, /* SRV names a key we do not hold */
    TB_RT_DROP_NO_VERSION,  /* no version in common */
    TB_RT_DROP_QUEUE_FULL,  /* newest request dropped: the queue was full */
    TB_RT_DROP_TOO_BIG,     /* the response would be larger than the request */
    TB_RT_DROP_COUNT
} tb_rt_drop;

const char *tb_rt_drop_name(tb_rt_drop d);

typedef struct tb_rt_srv_stats {
    uint64_t received;
    uint64_t answered;
    uint64_t batches;
    uint64_t rotations;
    uint64_t drops[TB_RT_DROP_COUNT];
} tb_rt_srv_stats;

/* Logs (info) what happened since the last report, or since the server was created: requests
 * received and answered, batches, and drops by reason. The edge calls it once a minute. */
void tb_rt_srv_report(tb_rt_srv *s, int64_t now_ns);

/* Creates a server and delegates its first online key valid from now. */
TB_WUR int tb_rt_srv_new(const tb_rt_srv_config *cfg, const tb_log *log, int64_t now_ns,
                         tb_rt_srv **out);
void tb_rt_srv_free(tb_rt_srv *s);

/* The long-term public key (what clients configure). */
const uint8_t *tb_rt_srv_pubkey(const tb_rt_srv *s);
const tb_rt_srv_stats *tb_rt_srv_stats_get(const tb_rt_srv *s);

/* When the online key must next be replaced (real time, ns), and the replacement itself: a new
 * online key and DELE, signed with the long-term key; pending batches keep their old DELE. */
int64_t tb_rt_srv_next_rotation(const tb_rt_srv *s);
/* MAXT of an offline delegation (real time, ns), INT64_MAX when the server rotates its own. */
int64_t tb_rt_srv_delegation_expiry(const tb_rt_srv *s);
TB_WUR int tb_rt_srv_rotate(tb_rt_srv *s, int64_t now_ns);

/* Validates one request packet and queues it; cookie comes back with its response. Returns 0,
 * or a negative code after counting the drop (the caller just forgets the packet). */
TB_WUR int tb_rt_srv_submit(tb_rt_srv *s, const uint8_t *pkt, size_t len, uint64_t cookie);

/* Counts a drop the edge decided on (a datagram truncated by the socket, for one). */
void tb_rt_srv_count_drop(tb_rt_srv *s, tb_rt_drop why);

/* Requests waiting; and whether some batch has reached max_batch. */
unsigned tb_rt_srv_pending(const tb_rt_srv *s);
int tb_rt_srv_batch_full(const tb_rt_srv *s);

/* Receives each response: write it to the peer named by cookie. */
typedef void (*tb_rt_srv_emit)(void *arg, uint64_t cookie, const uint8_t *resp, size_t len);

/* Signs every pending batch with MIDP = now and RADI = radius_s, emitting one response per
 * request. Returns the number of responses emitted or a negative code. */
TB_WUR int tb_rt_srv_flush(tb_rt_srv *s, int64_t now_ns, uint32_t radius_s, tb_rt_srv_emit emit,
                           void *arg);

/* RADI in seconds: from the kernel's maximum error when the clock is synchronised, else the
 * configured value; never below 1 s (configured 0 means the default, 3 s). */
uint32_t tb_rt_radius_s(int synced, uint64_t maxerror_us, uint32_t configured_s);

/* The SRV value a client sends for this public key: H(0xff ‖ pubkey). */
void tb_rt_srv_id(const uint8_t pubkey[32], uint8_t out[32]);

#endif
