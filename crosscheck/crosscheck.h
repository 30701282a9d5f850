/* crosscheck/crosscheck: the cross-region cross-check (issue 6, adr/0008). Given the node's
 * view of the mesh (each peer's clock offset from PING/PONG) and the verified measurements of
 * every node, it decides per time source: ok, falseticker, inconsistent across regions,
 * unreachable or insufficient data, each with a reason and the measurements that prove it;
 * it computes the node's consensus estimate of its own clock offset; and it finds pairs of
 * Roughtime responses from one server that violate causality (malfeasance).
 *
 * Sign convention, everywhere: offset = source clock − clock of the node that measured, in ns.
 * A peer's offset is peer clock − local clock (the PING/PONG offset of adr/0003). So a peer's
 * measurement translates into the local frame as
 *     offset_local = offset_peer + peer_offset     ((S − P) + (P − L) = S − L)
 * and a time stamp of the peer's clock as t_local = t_peer − peer_offset. Uncertainties add:
 *     bound_local = bound_peer + peer_uncert + rate · |age| + drift · |t_local − peer_sampled|
 * where drift (config, the ceiling) covers the frequency error of a peer offset while it ages,
 * and rate is what the measurement's own series says of its frequency: when the origin's
 * series has a regression (crosscheck/stats.h) whose frequency uncertainty is below the
 * ceiling, the offset is predicted to now by its
 * frequency and rate is that frequency's uncertainty, clamped to [drift_floor, drift]; without
 * one, rate is the ceiling drift and the offset is taken as measured. The local node's own
 * measurements need no translation and get no peer term.
 *
 * Pure: no I/O, no clock (now is an argument), no global state. tb_xc_run() says in
 * next_run_ns when the result changes by the passing of time alone (a measurement going stale).
 */
#ifndef TB_CROSSCHECK_CROSSCHECK_H
#define TB_CROSSCHECK_CROSSCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "measure/measurement.h"

#define TB_XC_MAX_OBS 200000        /* observations in one run */
#define TB_XC_MAX_PEERS 1024        /* nodes, the local one included */
#define TB_XC_MAX_SOURCES 4096      /* distinct sources */
#define TB_XC_MAX_REFS 8            /* measurements cited by one verdict */
#define TB_XC_MAX_RT_PER_SERVER 512 /* newest responses per Roughtime key checked pairwise */
#define TB_XC_MAX_VIOLATIONS 64
#define TB_XC_LIVE_INTERVALS 3 /* a series is live this many of its own intervals */
#define TB_XC_MAX_FINDINGS 64  /* findings against members in one run */

typedef enum tb_xc_verdict_kind {
    TB_XC_OK = 0,
    TB_XC_FALSETICKER,    /* its interval misses the agreement of the others */
    TB_XC_INCONSISTENT,   /* nodes (normally in different regions) see disjoint intervals */
    TB_XC_UNREACHABLE,    /* no fresh measurement from any node */
    TB_XC_INSUFFICIENT,   /* fresh data, but no agreement to judge it against */
    TB_XC_WARMING_UP,     /* soon after start, not yet judged and not every region expected to
                             measure it has (crosscheck/warmup.c) */
    TB_XC_UNSYNCHRONISED, /* every fresh measurement says the source is unsynchronised (NTP
                             leap 3 or stratum 0/16, Roughtime RADI above max_radius_ns) */
} tb_xc_verdict_kind;

/* "ok", "falseticker", "inconsistent across regions", "unreachable", "insufficient data",
 * "warming_up", "unsynchronised". */
const char *tb_xc_verdict_name(int v);
/* The same as a stable identifier for machines (status JSON, metrics labels, the dashboard):
 * "ok", "falseticker", "inconsistent", "unreachable", "insufficient", "warming_up",
 * "unsynchronised"; never
 * changes once published. The verdicts are 0..TB_XC_VERDICT_COUNT - 1. */
const char *tb_xc_verdict_id(int v);
#define TB_XC_VERDICT_COUNT 7

typedef struct tb_xc_config {
    int64_t window_ns;        /* measurements older than this are ignored (default 600 s) */
    uint32_t drift_ppb;       /* frequency error allowed while data ages when nothing better is
                                 known: the ceiling (default 50000 = 50 ppm, at most 1000000) */
    uint32_t drift_floor_ppb; /* least frequency error allowed for a series whose regression
                                 says it knows its frequency better (default 1000 = 1 ppm,
                                 at most 1000000; above drift_ppb it yields to it) */
    unsigned min_agree;       /* sources that must agree (default 3, at least 1) */
    int64_t grace_ns;         /* after the start, a source not yet judged and not yet measured
                                 by every region with a corroborated node is warming up, for at
                                 most this long (default 30 s) */
    int64_t max_radius_ns;    /* a Roughtime response with a larger RADI is unsynchronised
                                 (default 10 s, at least 1 ms) */
    int64_t max_clock_off_ns; /* a node whose own sources agree its clock is further off, or
                                 whose view is shifted that much against this node's, is
                                 "member clock off" (default 1 s, at least 1 ms) */
    unsigned hold_runs;       /* consecutive runs a new verdict must hold before it shows (default
                                       2; crosscheck/hold.h applies it, tb_xc_run ignores it) */
    bool peers_vote;          /* mesh peers count as sources in the agreement (default false: the
                                          nodes usually follow the same sources, their votes are not
                                          independent) */
} tb_xc_config;

tb_xc_config tb_xc_config_default(void);

/* One node of the mesh as the local node sees it. The local node itself is listed too, with
 * offset 0 and uncert 0. Measurements from an origin not listed are ignored. */
typedef struct tb_xc_peer {
    const char *name;
    const char *region;
    int64_t offset_ns;  /* peer clock − local clock */
    int64_t uncert_ns;  /* half-width of that offset's uncertainty (delay/2 + the peer's own
                           error), >= 0 */
    int64_t sampled_ns; /* local real time of the PING/PONG sample */
    bool self;          /* the local node: its measurements need no translation */
} tb_xc_peer;

/* One verified measurement (measure/), as its origin reported it. */
typedef struct tb_xc_obs {
    const char *origin;
    uint64_t seq;
    tb_measure_kind kind;
    const char *source; /* configured name: what identifies the source across nodes */
    int64_t real_ns;    /* origin's real time when taken (origin's clock) */
    int64_t offset_ns;  /* source − origin */
    int64_t delay_ns;
    int64_t bound_ns;
    /* Roughtime only, filled by the caller from the re-verified response: */
    bool has_rt;
    uint8_t rt_pubkey[TB_MEASURE_RT_PK_LEN];
    int64_t rt_midp_ns, rt_radi_ns;
    /* From the regression over the origin's series (crosscheck/stats.h), when it is trusted:
     * offset_ns moves by freq_ppb per second of age, known to ± freq_unc_ppb (3 sd). */
    bool has_freq;
    int64_t freq_ppb, freq_unc_ppb;
    /* How often the origin's series delivers (mean spacing, 0 unknown): the measurement stays
     * fresh for max(window, TB_XC_LIVE_INTERVALS · interval_ns), so a source polled every
     * 1,024 s, releasing a sample every few polls, is not called unreachable between them. */
    int64_t interval_ns;
    /* NTP only: the reply's leap indicator and stratum (measure/measurement.h); leap 3 or
     * stratum 0 or above 15 mark the measurement unsynchronised: it never counts */
    uint8_t leap, stratum;
    bool rt_chained; /* the request's nonce claims to be chained (the measurement has rand) to the
                        origin's previous response of this key: the caller checks it on the packets
                        before it reports (the time node: node/tk_report.c) */
    /* The origin's series against its own history relative to the origin's agreement
     * (crosscheck/sourcestats.h, kept by crosscheck/window.h; all 0 when unknown): the state
     * (tb_xc_ss_state), the newest value's deviation from the baseline and its tolerance, when it
     * first left the tolerance and since when the baseline was learnt (the origin's clock). */
    uint8_t move_state;
    int64_t move_dev_ns, move_tol_ns, move_since_ns, move_base_ns;
} tb_xc_obs;

/* A configured source: listed so that one nobody can reach is reported unreachable. */
typedef struct tb_xc_source {
    tb_measure_kind kind;
    const char *name;
} tb_xc_source;

typedef struct tb_xc_input {
    const tb_xc_peer *peers;
    size_t n_peers;
    const tb_xc_obs *obs;
    size_t n_obs;
    const tb_xc_source *known;
    size_t n_known;
    int64_t now_ns;     /* local real time */
    int64_t started_ns; /* local real time the node started; 0: no warming up */
    const char *self;   /* the local node's name (one of peers), or NULL */
    /* The verdict hold (crosscheck/hold.h) the result will go through, or NULL: a source it
     * remembers as judged is never warming_up again. Only read. */
    const struct tb_xc_hold *hold;
} tb_xc_input;

typedef struct tb_xc_ref {
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t seq;
    size_t obs; /* index into tb_xc_input.obs */
} tb_xc_ref;

typedef struct tb_xc_verdict {
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1];
    tb_xc_verdict_kind verdict;
    char reason[256];
    bool has_interval; /* lo/hi hold its combined interval (consistent sources with data) */
    int64_t lo_ns, hi_ns;
    unsigned n_nodes, n_regions; /* fresh measurements considered, regions they came from */
    tb_xc_ref refs[TB_XC_MAX_REFS];
    size_t n_refs;
    /* Set by crosscheck/hold.h (tb_xc_run leaves them 0): when the shown verdict last changed,
     * and whether this run found otherwise but the evidence has not held long enough. */
    int64_t since_ns;
    bool held;
} tb_xc_verdict;

/* The node's estimate of its own clock: offset_ns = true time − local clock (same sign as a
 * measurement: positive means the local clock is behind), ± uncert_ns. */
typedef struct tb_xc_estimate {
    bool valid;
    int64_t offset_ns, uncert_ns;
    int64_t lo_ns, hi_ns; /* the agreement interval */
    unsigned n_agree;     /* voting sources whose interval meets it */
    unsigned n_voting;    /* consistent voting sources with fresh data */
    unsigned n_origins;   /* distinct nodes whose measurements the agreeing sources rest on */
} tb_xc_estimate;

/* Two responses of one Roughtime key measured by one node, `later` chained to `earlier` (its
 * request's nonce claims to be H(earlier's response ‖ rand): only the server can have signed
 * `later` after `earlier`), where MIDP_e − RADI_e > MIDP_l + RADI_l: proof of malfeasance once
 * the caller has checked the chain on the packets. Times claimed by the members never make a
 * violation: they could frame an honest server. */
typedef struct tb_xc_violation {
    uint8_t rt_pubkey[TB_MEASURE_RT_PK_LEN];
    char source[TB_MEASURE_MAX_TEXT + 1];
    tb_xc_ref earlier, later;
} tb_xc_violation;

/* What the cross-check found against a member (a node of the mesh) rather than a source. */
typedef enum tb_xc_finding_kind {
    /* its interval for a source is disjoint from the other members', and none of its
     * measurements agrees with another member's: its dissent is not counted against the source */
    TB_XC_MEMBER_UNCORROBORATED = 0,
    /* two of its own measurements of one Roughtime server contradict each other by the times it
     * claims, with nothing (no nonce chain) proving the server's part: evidence against the
     * member, not the server */
    TB_XC_MEMBER_INCONSISTENT,
    /* its own measurements agree its clock is more than max_clock_off_ns from their sources, or
     * (where a PING/PONG offset translates them) its view of every source it shares with this
     * node is shifted the same way beyond it: its measurements are not counted. Also found
     * against the local node, whose measurements keep counting. Source "every source". */
    TB_XC_MEMBER_CLOCK_OFF,
    /* its view of one source (NTP or Roughtime) is disjoint from every other node's, while
     * those agree among themselves and include a node of its own region and one of another
     * whose series held their views while its own held its value (crosscheck/members.c): its
     * view of that source is not counted. Cites its measurement and its region's. */
    TB_XC_MEMBER_CONTRADICTED,
} tb_xc_finding_kind;

#define TB_XC_FINDING_KINDS 4

/* "member uncorroborated", "member inconsistent", "member clock off", "member contradicted". */
const char *tb_xc_finding_name(int k);

typedef struct tb_xc_finding {
    tb_xc_finding_kind kind;
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
    tb_measure_kind source_kind;
    char source[TB_MEASURE_MAX_TEXT + 1];
    char reason[256];
    tb_xc_ref refs[2];
    size_t n_refs;
} tb_xc_finding;

typedef struct tb_xc_result {
    tb_xc_verdict *verdicts; /* sorted by (kind, source) */
    size_t n_verdicts;
    tb_xc_estimate estimate;
    tb_xc_violation *violations; /* at most one per Roughtime key and node */
    size_t n_violations;
    tb_xc_finding *findings; /* against members, at most TB_XC_MAX_FINDINGS */
    size_t n_findings;
    size_t n_stale, n_unknown_origin; /* observations ignored */
    int64_t next_run_ns; /* local real time when a measurement goes stale; INT64_MAX if none */
} tb_xc_result;

/* Fills *o from a verified measurement: every field but the Roughtime times (has_rt false; the
 * caller sets has_rt, rt_midp_ns, rt_radi_ns from the re-verified response). o points into m. */
void tb_xc_obs_from_measurement(const tb_measurement *m, tb_xc_obs *o);

/* Runs the cross-check. Returns 0 and fills *out (free with tb_xc_result_clear), or
 * TB_ERR_INVAL (bad config, NULL names), TB_ERR_TOO_BIG (over a TB_XC_MAX_ cap), TB_ERR_NOMEM;
 * on failure *out is empty. cfg NULL means the defaults. */
TB_WUR int tb_xc_run(const tb_xc_config *cfg, const tb_xc_input *in, tb_xc_result *out);

void tb_xc_result_clear(tb_xc_result *r);

/* One Roughtime exchange for a malfeasance report. */
typedef struct tb_xc_rt_exchange {
    const uint8_t *rand;                /* 32 bytes, or NULL (the first of a chain has none) */
    const uint8_t *pubkey;              /* the server's long-term key, 32 bytes */
    tb_measure_bytes request, response; /* whole packets */
} tb_xc_rt_exchange;

/* The exchange of a Roughtime measurement with evidence (pointing into m); TB_ERR_INVAL when m
 * is not Roughtime or carries no evidence. */
TB_WUR int tb_xc_exchange_from_measurement(const tb_measurement *m, tb_xc_rt_exchange *x);

/* Writes the RFC 10049 malfeasance report {"responses":[{"rand","publicKey","request",
 * "response"},...]} (values base64, in the given order) NUL-terminated into buf. Returns 0 and
 * the length without the NUL in *outlen, TB_ERR_TOO_BIG when it does not fit, TB_ERR_INVAL. */
TB_WUR int tb_xc_malfeasance_json(const tb_xc_rt_exchange *x, size_t n, char *buf, size_t cap,
                                  size_t *outlen);

#endif
