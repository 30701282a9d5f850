/* The Roughtime source driver: measures one Roughtime server (RFC 10049, drafts 12-19, and the
 * older drafts 11 and 8) as a time source of the framework in sources/source.h. Register it with
 * tb_sources_set_driver(set, tb_rt_driver()); it lives in its own library (tb_sources_rt) so the
 * framework does not depend on roughtime/.
 *
 * Each poll builds a 1024-byte request (roughtime/verify.h) with a fresh nonce offering
 * every framed version tbnode speaks, sends it over a connected non-blocking UDP socket (IPv4 or
 * IPv6; names resolved through the environment's resolver), stamps T1 at send and T4 from the
 * kernel (SO_TIMESTAMPNS, sources/udp.h) — or, for an address "tcp://host:port", over a TCP
 * connection per attempt (sources/rt_tcp.h: T1 when the request is written after the
 * handshake, T4 when the whole response is read) — verifies the response completely against the
 * configured long-term public key, and delivers:
 *   offset = MIDP − (T1 + T4)/2   (the source's clock minus ours: positive = we are behind)
 *   delay  = T4 − T1              (monotonic, so a step of the real clock does not skew it)
 *   error  = RADI + delay/2       (MIDP is within RADI of the true time at some instant in
 *                                  [T1, T4], whose distance to the midpoint is at most delay/2)
 *   request/response = the raw packets (the evidence gossip carries), stratum −1, refid 0.
 * The public key is in the measurement's source identity. The first nonce is random; every later
 * one is chained to the last verified response, nonce = H(response ‖ rand) with a fresh random
 * `rand` that the measurement carries (RFC 10049's measurement sequence): two consecutive
 * responses that contradict causality then prove the server lied, whoever looks at them.
 *
 * Retries follow the RFC: without a valid response, the request is repeated (each attempt with a
 * fresh nonce and its own T1) after 1 s × 1.5^(n−1) for the n-th failure, and that interval is not
 * reset until a properly signed response arrives, even across polls. The interval never exceeds
 * 2^maxpoll s (the RFC's 24 h cap would hide a returning server for a day), and its start is
 * 2^minpoll/4 s when that is under 1 s (sub-second test polls). A poll that ends without a valid
 * response is missed; `unreachable_after` missed polls in a row make the source unreachable, with
 * the last rejection in the reason. Rejected responses (each counted by tb_rt_reason) never stop
 * the source: anyone on the path can send garbage, and the RFC's grease sends invalid responses
 * on purpose. A server that answers RADI 0xffffffff (clock unsynchronised) is reachable and
 * delivers measurements with offset and bound 0 and the packets as evidence, which the cross-check
 * calls unsynchronised and never counts (adr/0006). The poll interval starts at 2^minpoll and
 * doubles after 4 valid polls in a row up to 2^maxpoll; it returns to 2^minpoll when the source
 * becomes unreachable. */
#ifndef TB_SOURCES_RT_DRIVER_H
#define TB_SOURCES_RT_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "roughtime/verify.h"
#include "sources/source.h"

const tb_source_driver *tb_rt_driver(void);

/* The versions a request offers (ascending): RFC 10049, drafts 8, 11 and 12-19. */
#define TB_RT_DRIVER_NVERSIONS 4
extern const uint32_t tb_rt_driver_versions[TB_RT_DRIVER_NVERSIONS];

typedef struct tb_rt_driver_stats {
    uint64_t sent;     /* requests sent (attempts, retries included) */
    uint64_t received; /* datagrams from the server */
    uint64_t accepted; /* valid responses delivered as measurements */
    uint64_t late;     /* responses after the poll had its measurement (not verified) */
    uint64_t unsynced; /* authentic responses with RADI 0xffffffff: delivered as unsynchronised */
    uint64_t rejects[TB_RT_REASON_COUNT]; /* by reason; [TB_RT_OK] unused */
    tb_rt_reason last_reject;             /* TB_RT_OK when none yet */
    unsigned missed;                      /* polls in a row without a valid response */
    unsigned failures;                    /* attempts in a row without one (the backoff's n) */
    int poll;                             /* current poll interval, log2 s */
    uint32_t version;                     /* version of the last valid response, 0 before */
    uint64_t kernel_ts, clock_ts;         /* receive times from the kernel / the clock */
    bool tcp;                             /* over TCP (address tcp://host:port) */
    uint64_t tcp_connects, tcp_failed;    /* TCP: connections, and those without a packet */
} tb_rt_driver_stats;

/* The driver's rules without its socket and timers, so the time simulator (sim/time_rt.c)
 * measures as it does: */
/* How long to wait after an attempt when `failures` attempts in a row went unanswered before
 * it (RFC 10049 §5, capped at 2^maxpoll s, starting at 2^minpoll/4 s when that is under 1 s). */
uint64_t tb_rt_driver_backoff_ns(int minpoll, int maxpoll, unsigned failures);
/* The poll interval (log2 s) after a valid response: doubled after 4 in a row up to maxpoll;
 * an unsynchronised one ends the streak. *streak counts the valid responses. */
int tb_rt_driver_poll_after(int poll, int maxpoll, bool unsynced, unsigned *streak);
/* The numbers of the measurement of q (verified: TB_RT_OK, or TB_RT_UNSYNCED with unsynced),
 * sent at sent_real_ns with the round trip delay_ns, as the header describes; the packets of q
 * as evidence. source, mono_ns, real_ns and rand are the caller's and left as they are. */
void tb_rt_driver_result(const tb_rt_query *q, int64_t sent_real_ns, int64_t delay_ns,
                         bool unsynced, tb_source_meas *m);

/* Counters of a source run by this driver. TB_ERR_INVAL when s is not a Roughtime source of
 * this driver. */
TB_WUR int tb_rt_driver_stats_get(const tb_source *s, tb_rt_driver_stats *out);

#endif
