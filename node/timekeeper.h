/* The time node: what makes tbnode more than a mesh (issues 4, 5, 6). A layer on top of tb_node
 * (which stays the mesh): it owns the node's time sources (sources/, reloaded on SIGHUP), the
 * Roughtime server when the `roughtime` group is configured, the signing of every measurement
 * with the node key, its storage (store/) and its gossip over the mesh, the verification of the
 * measurements other nodes gossip (measure/replay.h, before tb_node forwards them), the periodic
 * cross-check (crosscheck/) with its verdicts and malfeasance reports, the time part of
 * `tbnode status`, and the operators' HTTP endpoint (/metrics, /status.json, /history.json and
 * the dashboard; node/tk_http.c on http/) when the `http` group is configured. No globals: a test
 * runs several time nodes in one process and one loop.
 *
 * Sources are identified across the mesh by kind + configured name, never by the address a name
 * resolved to: a name resolving differently per region is what the cross-check must see as one
 * source answering regions differently (adr/0008, "Source identity"). */
#ifndef TB_NODE_TIMEKEEPER_H
#define TB_NODE_TIMEKEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "crosscheck/crosscheck.h"
#include "measure/bundle.h"
#include "measure/replay.h"
#include "node/config.h"
#include "node/node.h"

struct ev_loop;
struct tb_resolver;
struct tb_pps_dev_ops;

/* The BROADCAST app_type whose payload is one wire MEASUREMENTS message (wire/wire.h): a batch
 * of its origin's own signed measurements. */
#define TB_TK_APP_MEASUREMENTS 0x746b0002u

/* The keys of the configuration the time node reads (besides `sources` and `roughtime`):
 *   hosts_file = "hosts";            names listed there resolve from it first (hosts(5) format)
 *   crosscheck = {
 *     window = 600;                  seconds a measurement counts (10..86400)
 *     min_agree = 3;                 sources that must agree (1..64)
 *     drift_ppm = 50;                frequency error allowed while data ages (0..1000)
 *     peers_vote = false;            mesh peers count in the agreement
 *     min_interval_ms = 1000;        at most one run per this, new data or not (10..600000)
 *     peer_interval = 16;            seconds between PEER measurements of each mesh peer (1..3600),
 *                                    stretched in a mesh of more than 9 (node/pace.h)
 *     retention = 604800;            seconds of history kept in the store (60..315360000)
 *     batch_interval_ms = 1000;      own new measurements go out together this often (10..60000)
 *     store_origin_bytes = 67108864; stored bytes per origin, oldest dropped first (65536..2^40)
 *     store_bytes = 1073741824;      stored bytes in all, oldest dropped first (1 MiB..2^42)
 *   };
 */
typedef struct tb_tk_config {
    char hosts_file[TB_NODE_PATH_MAX]; /* "" when none */
    tb_xc_config xc;
    uint32_t min_interval_ms;
    uint32_t peer_interval_s;
    uint32_t retention_s;
    uint32_t batch_interval_ms;
    uint64_t store_origin_bytes, store_bytes; /* the store's budget besides retention */
    tb_measure_limits limits; /* what one origin may make this node verify and store */
} tb_tk_config;

void tb_tk_config_default(tb_tk_config *c);
/* Reads hosts_file and the crosscheck group from cfg's file (relative hosts_file from the file's
 * folder). Errors "FILE:LINE: crosscheck.KEY: what" into err, TB_ERR_INVAL. */
TB_WUR int tb_tk_config_parse(const tb_node_config *cfg, tb_tk_config *out, char *err,
                              size_t errlen);

/* `tbnode check-config` and the start of tbnode: every part of cfg's file (its mesh keys are
 * already loaded into cfg) checked as the node would read it, opening nothing (no socket, no
 * key, no store): hosts_file and crosscheck, sources, roughtime. Each error ("FILE:LINE: key
 * 'K': what") goes to say(arg, 1, text), each warning to say(arg, 0, text): a source listed
 * twice and, with TB_TK_CHECK_FILES, a certificate, key, CA, Roughtime key or hosts file this
 * user cannot read (the running node opens those itself and says so once). Returns the number
 * of errors; when 0 and summary is not NULL, writes a one-line account of what the node would
 * run into it. */
#define TB_TK_CHECK_FILES 1
/* Every error of each section, not only its first: settings at fault are set aside (removed
 * from cfg->lc, tb_cfg_each_error) so the rest is read again; cfg is for checking only then. */
#define TB_TK_CHECK_ALL 2
typedef void (*tb_tk_check_say)(void *arg, int is_error, const char *text);
unsigned tb_tk_config_check(const tb_node_config *cfg, unsigned flags, tb_tk_check_say say,
                            void *arg, char *summary, size_t summary_len);

typedef struct tb_tk_options {
    /* Optional: replaces the resolver of the sources (tests inject one that answers names
     * differently per node); owned by the caller, must outlive the time node. */
    struct tb_resolver *resolver;
    /* Optional: the PPS devices' I/O (sources/pps_dev.h); NULL: the kernel's. Tests run pps
     * sources without hardware through it; must outlive the time node. */
    const struct tb_pps_dev_ops *pps_dev;
    /* Optional: the clock Roughtime responses are stamped with (tests make a liar). */
    const tb_clock *rt_clock;
    void (*on_stopped)(void *arg); /* the mesh stopped (tb_node_callbacks.on_stopped) */
    void *arg;
} tb_tk_options;

typedef struct tb_timekeeper tb_timekeeper;

/* Starts the mesh node (tb_node_new), the store in cfg->state_dir, the sources of the config,
 * and the Roughtime server when configured. Refuses, with a log line naming the file, a node key
 * that is not Ed25519, a CA that does not load, and any config error. cfg must outlive it. */
TB_WUR int tb_timekeeper_new(tb_timekeeper **out, struct ev_loop *loop, const tb_log *log,
                             const tb_clock *clock, const tb_node_config *cfg,
                             const tb_tk_options *opt);
/* Drains the Roughtime server, stops the sources and timers, then tb_node_stop. */
void tb_timekeeper_stop(tb_timekeeper *tk);
void tb_timekeeper_free(tb_timekeeper *tk);

tb_node *tb_timekeeper_node(tb_timekeeper *tk);

/* SIGHUP: applies the `sources` list and the crosscheck keys of newcfg (the config file read
 * again): added sources start, removed ones stop, unchanged ones keep their state. On an error
 * nothing changes and err says "FILE:LINE: key: what". newcfg need not outlive the call. */
TB_WUR int tb_timekeeper_reload(tb_timekeeper *tk, const tb_node_config *newcfg, char *err,
                                size_t errlen);

typedef struct tb_tk_stats {
    uint64_t sent;                           /* own measurements signed and broadcast */
    uint64_t accepted;                       /* peers' measurements verified and taken */
    uint64_t dropped[TB_MEASURE_DROP_COUNT]; /* by reason (measure/replay.h) */
    uint64_t malfeasance_reports;            /* written by this node (files and store) */
    /* findings against members (crosscheck.h tb_xc_finding_kind), each counted when it first
     * appears in a run */
    uint64_t member_findings[TB_XC_FINDING_KINDS];
    uint64_t xc_runs;
    uint64_t last_seq; /* the newest own sequence number, 0 before the first */
    /* Own measurements and their signed bytes (body and signature), by tb_measure_kind (1..
     * TB_MEASURE_KIND_MAX). */
    uint64_t sent_kind[TB_MEASURE_KIND_MAX + 1], wire_bytes_kind[TB_MEASURE_KIND_MAX + 1];
    /* Batches of own measurements broadcast, and their MEASUREMENTS bytes (the payload). */
    uint64_t batches_sent, batch_bytes;
    /* How often PEER measurements are taken now: peer_interval paced for the mesh's size
     * (node/pace.h). */
    uint64_t peer_every_ns;
    uint64_t store_trimmed; /* measurements dropped from the store for its byte budget */
} tb_tk_stats;

void tb_timekeeper_get_stats(const tb_timekeeper *tk, tb_tk_stats *out);

/* The newest cross-check result (empty before the first run). Valid until the loop runs. */
const tb_xc_result *tb_timekeeper_result(const tb_timekeeper *tk);

/* The evidence bundle (measure/bundle.h, store/evidence.md) of the measurements refs[0..n) (at
 * most TB_MEASURE_BUNDLE_MAX_REFS), read from the store, with their origins' certificates as
 * this node verified them and the mesh CA: a fresh malloc JSON text in *out (*len bytes).
 * TB_ERR_NOTFOUND when a measurement is not stored or an origin's certificate is unknown; err
 * says which. What `tbnode evidence export` gets over the control socket. */
TB_WUR int tb_timekeeper_evidence(tb_timekeeper *tk, const tb_measure_bundle_ref *refs, size_t n,
                                  char **out, size_t *len, char *err, size_t errlen);
/* The same for the measurements the current verdict on source ("NAME" or "KIND/NAME") rests
 * on, the verdict included. TB_ERR_NOTFOUND when there is no such verdict. */
TB_WUR int tb_timekeeper_evidence_verdict(tb_timekeeper *tk, const char *source, char **out,
                                          size_t *len, char *err, size_t errlen);

/* The Roughtime server's port (0 when none runs). */
uint16_t tb_timekeeper_rt_port(const tb_timekeeper *tk);
/* The HTTP endpoint's port (0 when the `http` group is absent; http/http.h, adr/0013). */
uint16_t tb_timekeeper_http_port(const tb_timekeeper *tk);

#endif
