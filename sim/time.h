/* The time simulator (adr/0012, issue 12): nodes in regions run the time node's real logic on
 * virtual time, on the event core of sim/sim.h. Each node has its own clock (offset, frequency,
 * wander: nothing disciplines it), polls every source with the real NTP client and clock filter
 * (ntp/client.h, through the NTP driver's reply handling, sources/ntp_driver.h), turns what the
 * filter releases into the body the node signs (node/tk_logic.h), seals it with a real Ed25519
 * key (measure/) and sends it in batches to the observing nodes after the network delay. An
 * observer admits each measurement as the node does (tb_measure_replay_accept with the node's
 * evidence check), keeps it in the cross-check window (crosscheck/window.h) and runs the
 * cross-check with the verdict hold when the node would (node/tk_logic.h). Peers' PING/PONG
 * offsets are modelled: the true clock difference plus half the link's asymmetry, known to ±
 * half the round trip. No broadcast tree: every batch reaches every observer.
 *
 * Virtual NTP servers: honest, step liar, ramp liar, drifter (a ramp from a time, 1–100 ppm),
 * unsynchronised (stratum 16, leap 3), Kiss-o'-Death DENY. A lying member can run the
 * consensus-takeover attack (8 invented sources and one real source at +offset, all with
 * consistent packets from servers it controls) or the evidence flood (measurements with 4 KB of
 * evidence at a rate).
 *
 * Virtual Roughtime servers (sim/time_rt.c) sign real responses with the server of
 * roughtime/server.h (keys from the seed, MIDP from the virtual clock): honest, lying (a step,
 * which a chained sequence proves when it goes back far enough) and unsynchronised (RADI
 * 0xffffffff). Nodes measure them through the real client (roughtime/verify.h) by the source
 * driver's rules (sources/rt_driver.h: chained nonces, retries, polls). The framing attack: a
 * member takes two genuine responses 12 s apart and re-sends the second with a claimed local
 * time 20 s earlier, alternately after the first and before it with a false chain claim. Each
 * observer turns a violation into a malfeasance report only when the chain holds on the packets
 * (node/tk_report.c's rule). Not simulated: the broadcast tree, clock discipline.
 *
 * A scenario is a text file (sim/scenarios/), one directive per line, `#` comments:
 *   name TEXT            seed N              hours H | minutes M
 *   regions N            per_region N        observers N   (nodes that judge; 0 all)
 *   minpoll N            maxpoll N
 *   clock OFFSET_MS FREQ_PPM WANDER_PPB   (per node: uniform in ±, wander per 1,000 s step)
 *   network MIN_MS MAX_MS LOCAL_MS JITTER_MS ASYM LOSS
 *   server_root_us N     (root delay + dispersion an honest server reports)
 *   source NAME honest|unsync|kod
 *   source NAME step AT_S OFFSET_MS | ramp AT_S PPM | drift AT_S PPM
 *   roughtime NAME honest|unsync | roughtime NAME step AT_S OFFSET_MS
 *   attack takeover MEMBER AT_S SOURCE OFFSET_MS
 *   attack flood MEMBER AT_S UNTIL_S PER_S
 *   attack frame MEMBER AT_S UNTIL_S ROUGHTIME_SOURCE   (a pair every 15 min)
 *   hold_runs N          window_s N         min_interval_ms N
 * The parser reads only the repository's files but still treats them as untrusted: bounded
 * tokens and counts, checked numbers, errors naming the line. */
#ifndef TB_SIM_TIME_H
#define TB_SIM_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "crosscheck/crosscheck.h"

#define TB_SIMTIME_MAX_NODES 64
#define TB_SIMTIME_MAX_SOURCES 32 /* configured sources */
#define TB_SIMTIME_INVENTED 8     /* sources the takeover attack invents */
#define TB_SIMTIME_NAME_MAX 48

typedef enum tb_simtime_behaviour {
    TB_SIMTIME_HONEST = 0,
    TB_SIMTIME_STEP,         /* offset jumps by value_ns at at_ns */
    TB_SIMTIME_RAMP,         /* a liar: from at_ns, offset grows by value (ppb) */
    TB_SIMTIME_DRIFT,        /* a drifter: the same at 1–100 ppm */
    TB_SIMTIME_UNSYNC,       /* stratum 16, leap 3 */
    TB_SIMTIME_KOD,          /* Kiss-o'-Death DENY */
    TB_SIMTIME_INVENTED_SRC, /* exists only in the lying member's measurements */
} tb_simtime_behaviour;

typedef struct tb_simtime_source {
    char name[TB_SIMTIME_NAME_MAX];
    tb_simtime_behaviour behaviour;
    int64_t at_ns; /* when it starts to lie (step, ramp, drift) */
    int64_t value; /* step: ns; ramp, drift: ppb */
    unsigned region;
    bool roughtime; /* a Roughtime server (honest, step, unsync), else NTP */
} tb_simtime_source;

typedef enum tb_simtime_attack {
    TB_SIMTIME_NO_ATTACK = 0,
    TB_SIMTIME_TAKEOVER,
    TB_SIMTIME_FLOOD,
    TB_SIMTIME_FRAME,
} tb_simtime_attack;

typedef struct tb_simtime_scenario {
    char name[TB_SIMTIME_NAME_MAX];
    uint64_t seed;
    unsigned regions, per_region, observers;
    int64_t duration_ns;
    int minpoll, maxpoll;
    int64_t clock_offset_ns, clock_freq_ppb, clock_wander_ppb;
    int64_t delay_min_ns, delay_max_ns, delay_local_ns, jitter_ns;
    double asym, loss;
    int64_t server_root_ns;
    tb_simtime_source sources[TB_SIMTIME_MAX_SOURCES];
    unsigned n_sources;
    tb_simtime_attack attack;
    unsigned liar; /* the lying member's node index */
    int64_t attack_at_ns;
    int64_t attack_until_ns; /* flood, frame */
    unsigned flood_per_s;
    char attack_source[TB_SIMTIME_NAME_MAX]; /* takeover: the real source it lies about; frame:
                                                the Roughtime server it frames */
    int64_t attack_offset_ns;
    tb_xc_config xc;
    uint32_t min_interval_ms;
} tb_simtime_scenario;

/* The defaults: 3 regions × 1 node, 1 h, minpoll 6, maxpoll 10, clocks ±1 ms, ±0.05 ppm,
 * wander 5 ppb; network 5–60 ms between regions, 0.5 ms within, 1 ms jitter, asymmetry 0.2,
 * loss 1 %; honest servers report 200 µs root distance; the node's cross-check defaults. */
void tb_simtime_defaults(tb_simtime_scenario *s);

/* Parses a scenario over the defaults. Errors "LINE: what" into err; TB_ERR_INVAL. */
TB_WUR int tb_simtime_parse(const char *text, size_t len, tb_simtime_scenario *out, char *err,
                            size_t errlen);

/* What happened to one source, over all observers. */
typedef struct tb_simtime_source_result {
    char name[TB_SIMTIME_NAME_MAX];
    tb_simtime_behaviour behaviour;
    bool roughtime;
    unsigned observers;    /* observers that judged it */
    unsigned accused;      /* honest: observers that ever showed falseticker/inconsistent */
    uint64_t wrong_runs;   /* honest: runs an observer showed neither ok nor warming_up;
                              unsync: runs it showed anything but unsynchronised once judged */
    unsigned flagged;      /* liar/drifter: observers that flagged it after it began */
    unsigned late;         /* liar: observers that flagged it later than 3 polls (or never) */
    int64_t max_flag_ns;   /* liar/drifter: the slowest observer's time to flag */
    double max_flag_polls; /* the same in that observer's poll intervals at the start */
    int64_t max_offset_at_flag_ns; /* drifter, ramp: its true offset when flagged (worst) */
    unsigned unflagged;            /* flagged then shown otherwise again, summed over observers */
    unsigned max_changes;          /* shown verdict changes after first judged, worst observer */
    int final_verdict;             /* the first observer's last shown verdict */
    unsigned malfeasance;          /* Roughtime: observers that wrote a malfeasance report */
} tb_simtime_source_result;

typedef struct tb_simtime_result {
    tb_simtime_source_result sources[TB_SIMTIME_MAX_SOURCES + TB_SIMTIME_INVENTED];
    unsigned n_sources;
    unsigned nodes, observers;
    uint64_t polls, measurements, accepted, dropped, runs;
    uint64_t dropped_by[16];      /* by tb_measure_drop */
    int64_t consensus_max_err_ns; /* |estimate − true offset of the observer's clock| */
    double consensus_mean_err_ns;
    uint64_t consensus_runs, no_consensus_runs;
    unsigned liar_named;             /* observers that named the lying member (any finding) */
    int liar_finding;                /* the kind of the first finding against it, -1 none */
    uint64_t honest_member_findings; /* runs × findings naming an honest member */
    /* Roughtime */
    uint64_t rt_rejected;        /* responses the clients rejected (none expected) */
    unsigned frames;             /* framing pairs the member sent */
    unsigned malfeasance_true;   /* reports (over observers) against a server that did sign
                                    contradicting times */
    unsigned false_malfeasance;  /* reports against a server that never did */
    uint64_t member_false_chain; /* observers × violations whose claimed chain did not hold */
    /* accounting */
    unsigned false_accusations; /* honest sources × observers accused */
    unsigned missed_liars;      /* liars × observers not flagged within 3 polls */
    double cpu_s;
    double node_days;
} tb_simtime_result;

/* Runs a scenario. TB_ERR_INVAL for an impossible one, TB_ERR_NOMEM. */
TB_WUR int tb_simtime_run(const tb_simtime_scenario *s, tb_simtime_result *out);

/* The scenario's table (markdown) and summary. */
void tb_simtime_print(FILE *f, const tb_simtime_scenario *s, const tb_simtime_result *r);

const char *tb_simtime_behaviour_name(tb_simtime_behaviour b);

#endif
