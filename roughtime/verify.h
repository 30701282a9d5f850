/* Roughtime client logic: builds requests, verifies responses completely, chains measurement
 * sequences, checks causality, writes malfeasance reports and reads server lists (RFC 10049
 * JSON formats). Pure: no sockets, no clock; times come in as arguments. Each query keeps the
 * raw request and response bytes, which are the evidence a measurement carries. */
#ifndef TB_ROUGHTIME_VERIFY_H
#define TB_ROUGHTIME_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "roughtime/codec.h"

#define TB_RT_REQUEST_BUF 1100
#define TB_RT_RESPONSE_BUF 2048

/* Why a response was rejected; each check has its own reason. */
typedef enum tb_rt_reason {
    TB_RT_OK = 0,
    TB_RT_BAD_FORMAT,     /* framing, message, missing tag or wrong field length */
    TB_RT_BAD_VERSION,    /* chosen version not offered, or VERS inconsistent */
    TB_RT_BAD_TYPE,       /* TYPE present and not 1, or required and absent */
    TB_RT_BAD_NONCE,      /* NONC differs from ours */
    TB_RT_BAD_DELE_SIG,   /* CERT.SIG does not verify with the long-term key */
    TB_RT_BAD_DELE_RANGE, /* MIDP outside [MINT, MAXT] */
    TB_RT_BAD_MERKLE,     /* PATH/INDX do not lead to ROOT */
    TB_RT_BAD_SIG,        /* SIG over SREP does not verify with DELE.PUBK */
    TB_RT_BAD_RADIUS,     /* RADI is 0 */
    TB_RT_UNSYNCED,       /* authentic, but RADI 0xffffffff: the server's clock is not
                             synchronised, so its time is no measurement */
    TB_RT_REASON_COUNT
} tb_rt_reason;

const char *tb_rt_reason_name(tb_rt_reason r);

/* One query: what was sent, and (after tb_rt_verify) what came back and what it means. */
typedef struct tb_rt_query {
    uint8_t pubkey[32];
    uint32_t offered[4]; /* versions offered, ascending (Google: only TB_RT_VER_GOOGLE) */
    unsigned noffered;
    uint8_t nonce[64];
    unsigned nonce_len;
    uint8_t rand[32]; /* chaining input (rand in the malfeasance report) */
    unsigned has_rand;
    uint8_t request[TB_RT_REQUEST_BUF];
    size_t request_len;
    uint8_t response[TB_RT_RESPONSE_BUF];
    size_t response_len;
    int64_t sent_ns; /* local real time of sending */
    /* Results, valid when verified: */
    unsigned verified;
    uint32_t version;
    int64_t midp_us; /* MIDP in microseconds since the epoch */
    uint64_t radi_us;
    int64_t rtt_ns;
    int64_t offset_ns; /* MIDP minus the local midpoint of send and receive */
} tb_rt_query;

/* Builds a request offering versions[n] (ascending, all one family: framed IETF versions, or only
 * TB_RT_VER_GOOGLE). nonce has the version's nonce length (32, Google 64). A framed request
 * carries VER, NONC, SRV and TYPE (servers ignore tags they do not know) and is padded with ZZZZ
 * (Google: PAD) to a 1024-byte message. */
TB_WUR int tb_rt_query_init(tb_rt_query *q, const uint8_t pubkey[32], const uint32_t *versions,
                            unsigned n, const uint8_t *nonce, int64_t sent_ns);

/* As tb_rt_query_init; flags TB_RT_QUERY_NO_SRV leaves SRV out (a server holding one key then
 * answers with it, whichever key we expect: how a client tells a wrong key from silence). */
#define TB_RT_QUERY_NO_SRV 1U
TB_WUR int tb_rt_query_init_flags(tb_rt_query *q, const uint8_t pubkey[32],
                                  const uint32_t *versions, unsigned n, const uint8_t *nonce,
                                  int64_t sent_ns, unsigned flags);

/* Takes an already built framed request packet (from a stored measurement or a test vector):
 * reads its offered versions and nonce from it. */
TB_WUR int tb_rt_query_adopt(tb_rt_query *q, const uint8_t pubkey[32], const uint8_t *req,
                             size_t len, int64_t sent_ns);

/* Verifies resp[len] as the answer to q, received at now_ns. Returns 0 and fills the results,
 * or TB_ERR_VERIFY / TB_ERR_MALFORMED with *why set. The response bytes are kept in q. An
 * authentic response with RADI 0xffffffff (server unsynchronised) fails with TB_ERR_VERIFY and
 * TB_RT_UNSYNCED, its results filled but verified left 0: it measures nothing, but it is
 * authentic (every signature and the Merkle path checked), so a client may report it. */
TB_WUR int tb_rt_verify(tb_rt_query *q, const uint8_t *resp, size_t len, int64_t now_ns,
                        tb_rt_reason *why);

/* The radius, in ns, with which evidence checks report an authentic unsynchronised response
 * (RADI 0xffffffff in any version's unit): above every sensible max_radius, and far from
 * overflowing int64 when added to a MIDP. */
#define TB_RT_UNSYNCED_RADI_NS ((int64_t)TB_RT_RADI_UNSYNCED * 1000000000)

/* The chained nonce H(prev_response ‖ rand), nonce_len bytes (the RFC's measurement sequence). */
void tb_rt_chain_nonce(const uint8_t *prev_resp, size_t prev_len, const uint8_t rand[32],
                       uint8_t *nonce, unsigned nonce_len);

/* Whether the request packet req[req_len] (a framed request, as a measurement carries it) has
 * the nonce H(prev_resp ‖ rand): then the server signed its answer after it had signed
 * prev_resp, whatever anyone claims about the times. The one check of a claimed chain (the time
 * node before a malfeasance report, the simulator). */
bool tb_rt_nonce_chained(const uint8_t *prev_resp, size_t prev_len, const uint8_t *req,
                         size_t req_len, const uint8_t rand[32]);

/* Causality over verified queries in the order received: for i < j,
 * MIDP_i − RADI_i ≤ MIDP_j + RADI_j. Returns 0, or TB_ERR_VERIFY with the first bad pair. */
TB_WUR int tb_rt_causality_check(const tb_rt_query *const *qs, unsigned n, unsigned *bad_i,
                                 unsigned *bad_j);

/* One exchange of a malfeasance report. */
typedef struct tb_rt_report_entry {
    const uint8_t *rand;   /* 32 bytes, or NULL (the first of a chain has none) */
    const uint8_t *pubkey; /* 32 bytes */
    const uint8_t *request, *response;
    size_t request_len, response_len;
} tb_rt_report_entry;

/* The RFC's malfeasance report ({"responses":[{"rand","publicKey","request","response"}...]},
 * values base64, in the given order) as a malloc'd NUL-terminated JSON string in *out: indented
 * by 2, or with TB_RT_REPORT_COMPACT on one line without spaces. The one writer of it. */
#define TB_RT_REPORT_COMPACT 1U
TB_WUR int tb_rt_report_json(const tb_rt_report_entry *e, size_t n, unsigned flags, char **out);

/* The report over queries (indented). */
TB_WUR int tb_rt_malfeasance_json(const tb_rt_query *const *qs, unsigned n, char **out);

/* One server from a server list. */
#define TB_RT_LIST_MAX 64
#define TB_RT_LIST_ADDRS 8      /* addresses kept per server, tried in the list's order */
#define TB_RT_LIST_TCP "tcp://" /* what a "tcp" address is written with in address[] */
typedef struct tb_rt_server_entry {
    char name[128];
    uint32_t version; /* TB_RT_VER_*, or 0: not given (or "IETF-Roughtime"), negotiate */
    uint8_t pubkey[32];
    char address[TB_RT_LIST_ADDRS][300]; /* "udp": host:port; "tcp": tcp://host:port */
    unsigned naddr;
} tb_rt_server_entry;

/* Receives one line per entry skipped by the list parser, naming the entry and the reason. */
typedef void (*tb_rt_list_warn)(void *arg, const char *msg);

/* Parses a server list (RFC JSON, and the lists published by Cloudflare and pyroughtime):
 * "version" is a uint32, "IETF-Roughtime", "Google-Roughtime" or absent. An entry that cannot be
 * used (malformed, not ed25519, an unsupported version, no UDP or TCP address) is skipped:
 * counted in
 * *skipped and passed to warn (may be NULL). Fails (err says why) only when the file is not JSON,
 * has no "servers" list, or lists more than cap servers. */
TB_WUR int tb_rt_server_list_parse(const char *json, size_t len, tb_rt_server_entry *out,
                                   unsigned cap, unsigned *n, unsigned *skipped,
                                   tb_rt_list_warn warn, void *warn_arg, char *err, size_t errlen);

#endif
