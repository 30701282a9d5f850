/* The NTP client state machine for one server association (RFC 5905 client mode). Pure
 * logic: no sockets, no clock. The caller passes `now` (monotonic ns), the local real-time
 * stamps of sending (T1) and receiving (T4), random bytes for the transmit timestamp, and
 * the reply bytes; the client says when it next wants to poll.
 *
 * The transmit timestamp of a request is random (it is not our clock reading): a reply is
 * accepted only if its origin timestamp echoes it, which defeats off-path spoofing and leaks
 * nothing about the local clock. T1 is kept locally.
 *
 * Interleaved mode (config xleave; draft-ietf-ntp-interleaved-modes, as chrony's `xleave`): a
 * server that timestamps its replies after they left can only tell that time in its next reply.
 * Once an exchange has been answered, the next request carries that reply's receive timestamp
 * (T2 of the previous exchange) as its origin, and a second 64 random bits in its receive field
 * where the draft puts our receive time (the server only echoes it, so it need not leak our
 * clock). A server that remembers the previous exchange answers in interleaved mode: origin =
 * our receive field, transmit = the precise send time of its previous reply. The sample is then
 * the previous exchange's (T1, T2 and T4 of the previous exchange, T3 from this reply). A server
 * that does not answers in basic mode (origin = our transmit timestamp): a basic sample. Any
 * other origin is rejected, so both modes stay proof against off-path spoofing. */
#ifndef TB_NTP_CLIENT_H
#define TB_NTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "ntp/packet.h"

#define TB_NTP_FILTER_LEN 8
/* The newest sample is released although the filter holds a better one when its offset differs
 * from the best's by more than half their difference in delay plus TB_NTP_NEWS_MIN_NS plus
 * TB_NTP_NEWS_PPB of the time between them (our clock's drift): the source or our clock moved. */
#define TB_NTP_NEWS_MIN_NS 500000
#define TB_NTP_NEWS_PPB 100
/* Poll exponents (log2 seconds) accepted in a configuration. Below 0 only makes sense in
 * tests and on a LAN. */
#define TB_NTP_POLL_MIN (-6)
#define TB_NTP_POLL_MAX 17
/* Our clock reading error by default (tb_ntp_client_config.local_precision_ns). */
#define TB_NTP_LOCAL_PRECISION_NS 1000
/* Random bytes a poll takes: the transmit timestamp, then the interleaved-mode cookie. */
#define TB_NTP_POLL_RND_LEN 16
/* Interleaved requests continue across at most this many polls without a reply (the server
 * still remembers the exchange they refer to); after that the client starts over in basic
 * mode. */
#define TB_NTP_XLEAVE_MAX_MISSED 4

/* Why a reply was not used. TB_NTP_ACCEPTED is not a rejection. */
typedef enum tb_ntp_reject {
    TB_NTP_ACCEPTED = 0,
    TB_NTP_REJ_MALFORMED,  /* truncated or malformed packet */
    TB_NTP_REJ_VERSION,    /* not NTPv3 or NTPv4 */
    TB_NTP_REJ_MODE,       /* not mode 4 (server) */
    TB_NTP_REJ_UNEXPECTED, /* no request outstanding (duplicate or late reply) */
    TB_NTP_REJ_ORIGIN,     /* origin timestamp does not echo our transmit timestamp */
    TB_NTP_REJ_KOD_RATE,   /* Kiss-o'-Death RATE: we back off */
    TB_NTP_REJ_KOD_DENY,   /* Kiss-o'-Death DENY: demobilised */
    TB_NTP_REJ_KOD_RSTR,   /* Kiss-o'-Death RSTR: demobilised */
    TB_NTP_REJ_KOD_OTHER,  /* stratum 0 with another kiss code */
    TB_NTP_REJ_STRATUM,    /* stratum 16 or more: server unsynchronised */
    TB_NTP_REJ_LEAP,       /* leap indicator 3: server unsynchronised */
    TB_NTP_REJ_ROOT_DELAY, /* root delay above the configured bound */
    TB_NTP_REJ_ROOT_DISP,  /* root dispersion above the configured bound */
    TB_NTP_REJ_TIMESTAMPS, /* zero receive/transmit time, transmit before receive, or a
                              reference time after the transmit time */
    TB_NTP_REJ_DELAY,      /* negative or excessive round-trip delay */
    TB_NTP_REJ_COUNT
} tb_ntp_reject;

const char *tb_ntp_reject_name(tb_ntp_reject r);

typedef struct tb_ntp_client_config {
    int minpoll;                /* log2 seconds, default 6 (64 s) */
    int maxpoll;                /* log2 seconds, default 10 (1024 s) */
    unsigned burst;             /* polls at burst_interval_ns at start, default 4 */
    uint64_t burst_interval_ns; /* default 2 s */
    unsigned unreach_after;     /* consecutive polls without a valid sample, default 4 */
    unsigned good_to_raise;     /* consecutive valid samples before the poll rises, default 4 */
    int64_t max_root_delay_ns;  /* default 3 s */
    int64_t max_root_disp_ns;   /* default 3 s */
    int64_t max_delay_ns;       /* round trip, default 3 s */
    int64_t local_precision_ns; /* our clock reading error, default TB_NTP_LOCAL_PRECISION_NS */
    bool xleave;                /* ask for interleaved mode (default off) */
} tb_ntp_client_config;

void tb_ntp_client_config_default(tb_ntp_client_config *cfg);
/* Checks limits; TB_ERR_INVAL naming nothing (the config parser names the key). */
TB_WUR int tb_ntp_client_config_check(const tb_ntp_client_config *cfg);

/* One sample from one exchange; times in ns. */
typedef struct tb_ntp_sample {
    int64_t t1, t2, t3, t4; /* Unix ns: our send, server receive, server send, our receive */
    uint64_t mono_ns;       /* monotonic time at T4 */
    uint64_t seq;           /* 1, 2, ... in the order samples were taken */
    int64_t offset_ns;      /* server clock minus ours */
    int64_t delay_ns;       /* round trip minus server processing */
    int64_t dispersion_ns;  /* precisions + frequency tolerance over the exchange */
    int64_t root_delay_ns;
    int64_t root_disp_ns;
    uint8_t stratum;
    uint32_t refid;
    bool interleaved; /* from an interleaved reply: t1, t2, t4 are the previous exchange's */
    /* The packets of the exchange. Interleaved: this poll's request (its origin is T2) and
     * reply (its transmit is T3), tb_ntp_exchange_check says how they link. */
    uint8_t request[TB_NTP_HEADER_LEN];
    uint8_t response[TB_NTP_HEADER_LEN];
} tb_ntp_sample;

/* The measurement the client releases from its clock filter. */
typedef struct tb_ntp_result {
    const tb_ntp_sample *sample; /* the minimum-delay sample of the filter, or the newest when
                                    it moved (TB_NTP_NEWS_MIN_NS); valid until the next call
                                    that changes the client */
    int64_t error_ns;            /* delay/2 + dispersion (aged) + root delay/2 + root dispersion */
} tb_ntp_result;

typedef enum tb_ntp_client_state {
    TB_NTP_CLIENT_ACTIVE = 0,
    TB_NTP_CLIENT_UNREACHABLE, /* unreach_after polls in a row gave no valid sample */
    TB_NTP_CLIENT_DEMOBILISED, /* told to stop (KoD DENY/RSTR); never polls again */
} tb_ntp_client_state;

typedef struct tb_ntp_client {
    tb_ntp_client_config cfg;
    tb_ntp_client_state state;
    int poll;            /* current log2 poll interval */
    unsigned burst_left; /* quick polls still to do */
    unsigned missed;     /* consecutive polls without a valid sample */
    unsigned good;       /* consecutive valid samples at this poll */
    uint8_t reach;       /* RFC 5905 reachability register: bit 0 = last poll */
    bool pending;
    bool sample_in_poll; /* the last poll produced a valid sample */
    uint64_t next_poll;  /* monotonic ns */
    uint64_t xmt;        /* the random transmit timestamp we sent */
    uint64_t xmt_il;     /* the cookie in our receive field (interleaved request), else 0 */
    int64_t t1;
    /* The last exchange answered (in either mode), which an interleaved reply completes. */
    bool have_prev;
    unsigned prev_age;   /* polls sent since */
    uint64_t prev_rx_ts; /* the server's receive timestamp (T2), as on the wire */
    int64_t prev_t1, prev_t4;
    uint64_t prev_mono; /* monotonic time at prev_t4 */
    uint8_t request[TB_NTP_HEADER_LEN];
    tb_ntp_sample filter[TB_NTP_FILTER_LEN];
    unsigned n_filter;      /* samples held, up to TB_NTP_FILTER_LEN */
    unsigned filter_next;   /* slot of the next sample */
    uint64_t last_released; /* seq of the last sample released (0 = none) */
    tb_ntp_reject last_reject;
    char kiss[5]; /* last kiss code received */
    tb_ntp_packet last_reply;
    uint64_t n_sent, n_received, n_accepted;
    uint64_t n_interleaved; /* accepted samples from interleaved replies */
    uint64_t rejects[TB_NTP_REJ_COUNT];
} tb_ntp_client;

/* Starts an association: the first poll is due at now. */
void tb_ntp_client_init(tb_ntp_client *c, const tb_ntp_client_config *cfg, uint64_t now);

/* When the next poll is due (monotonic ns). UINT64_MAX once demobilised. */
uint64_t tb_ntp_client_next_poll(const tb_ntp_client *c);

/* Builds the request for a poll due now and schedules the next one. t1 is the local real time
 * the caller is about to send at; rnd gives TB_NTP_POLL_RND_LEN random bytes: the transmit
 * timestamp, then the interleaved cookie (used only by an interleaved request). A poll whose
 * predecessor got no valid sample counts as missed. TB_ERR_STATE once demobilised. */
TB_WUR int tb_ntp_client_poll(tb_ntp_client *c, uint64_t now, int64_t t1,
                              const uint8_t rnd[TB_NTP_POLL_RND_LEN],
                              uint8_t out[TB_NTP_HEADER_LEN]);

/* Corrects T1 of the request just built to t1, when the caller did more work between poll
 * and send (NTS seals the request): T1 must be as close to the send as T4 is to the receive,
 * or the offset leans by the difference. No effect without a request outstanding. */
void tb_ntp_client_sent(tb_ntp_client *c, int64_t t1);

/* Judges a reply received at local real time t4 (monotonic `now`). Returns TB_NTP_ACCEPTED and
 * fills *res when the clock filter releases a new sample; TB_NTP_ACCEPTED with res->sample
 * NULL when the sample was valid but the filter kept an older, better one; otherwise the
 * rejection, which is also counted. */
tb_ntp_reject tb_ntp_client_receive(tb_ntp_client *c, const uint8_t *p, size_t len, int64_t t4,
                                    uint64_t now, tb_ntp_result *res);

/* Re-checks an exchange another node reports (the evidence of an NTP measurement, adr/0008):
 * req and resp are the packets as sent and received, t4 the reporter's real time of reception,
 * offset and delay what it claims. The reply must be a server's answer to that very request
 * (its origin timestamp echoes the request's transmit timestamp, or, interleaved, the request's
 * non-zero receive field; T2 is then the request's origin, the previous exchange's, and t4 that
 * exchange's reception); when it says it is
 * synchronised (leap < 3, stratum 1..15) its timestamps must be in order and give the claimed
 * numbers: with T1 = T4 − delay − (T3 − T2) (T1 is not on the wire, the transmit timestamp is
 * random), offset = ((T2 − T1) + (T3 − T4)) / 2 = T3 − T4 + delay / 2, within 1 ns of rounding.
 * An unsynchronised reply's numbers mean nothing and are not checked. Fills *reply. Returns 0,
 * TB_ERR_MALFORMED or TB_ERR_VERIFY. */
TB_WUR int tb_ntp_exchange_check(const uint8_t *req, size_t req_len, const uint8_t *resp,
                                 size_t resp_len, int64_t t4, int64_t offset_ns, int64_t delay_ns,
                                 tb_ntp_packet *reply);

/* Whether a reply says its server is unsynchronised: stratum 0 (Kiss-o'-Death) or 16 and
 * above, or leap indicator 3. */
bool tb_ntp_reply_unsynchronised(uint8_t leap, uint8_t stratum);

/* Error bound of a sample seen at `now`: delay/2 + dispersion grown by 15 ppm of its age +
 * root delay/2 + root dispersion (RFC 5905's root synchronisation distance). */
int64_t tb_ntp_sample_error(const tb_ntp_sample *s, uint64_t now);

#endif
