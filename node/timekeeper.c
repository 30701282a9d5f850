/* The time node: sources → signed measurements → store + gossip; gossip → verify → store; the
 * periodic cross-check. See node/timekeeper.h. */
#include "node/timekeeper.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/h3.h"
#include "http/http.h"
#include "measure/evidence.h"
#include "node/origins.h"
#include "node/tk_internal.h"
#include "node/tk_logic.h"
#include "ntp/client.h"
#include "roughtime/verify.h"
#include "resolve/resolver.h"
#include "sources/rt_driver.h"
#include "wire/wire.h"
#include "resolve/hosts.h"

int64_t tk_real_now(const tb_timekeeper *tk)
{
    return tb_clock_real(tk->clock);
}

/* --- the in-memory view of verified measurements (crosscheck/window.h) --- */

/* The replay check calls this before it accepts a peer's measurement; the re-verified MIDP and
 * RADI are kept in tk->ev for the window, so the response is verified once. */
static int evidence_cb(void *arg, const tb_measurement *m)
{
    tb_timekeeper *tk = arg;
    return tb_tk_evidence_check(m, &tk->ev);
}

/* Takes a verified measurement into the window; its evidence stays in the store. */
static void obs_add(tb_timekeeper *tk, const tb_measurement *m, bool own, const tb_tk_evidence *ev)
{
    tb_xc_window_add(tk->win, m, own, ev->has_rt, ev->midp_ns, ev->radi_ns);
}

/* Own measurements and the history read at start: verified here, as nothing else did. */
static void obs_verify_add(tb_timekeeper *tk, const tb_measurement *m, bool own)
{
    tb_tk_evidence ev = {0};
    tb_measure_evidence chk;
    if (m->kind == TB_MEASURE_ROUGHTIME && tb_measure_evidence_check(m, &chk, NULL) == TB_OK)
        ev = (tb_tk_evidence){.has_rt = true, .midp_ns = chk.midp_ns, .radi_ns = chk.radi_ns};
    obs_add(tk, m, own, &ev);
}

/* --- cross-check --- */

static void xc_kick(tb_timekeeper *tk);

static size_t known_sources(const tb_timekeeper *tk, tb_xc_source *out,
                            char (*names)[TB_MEASURE_MAX_TEXT + 1], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; tk->sources && i < tb_sources_count(tk->sources) && n < max; i++) {
        const tb_source_id *id = tb_source_identity(tb_sources_get(tk->sources, i));
        tb_xc_source s = {TB_MEASURE_NTP, names[n]};
        tb_tk_source_key(id, tb_node_name(tk->node), &s.kind, names[n], sizeof(names[n]));
        size_t j = 0;
        while (j < n && !(out[j].kind == s.kind && strcmp(out[j].name, s.name) == 0))
            j++;
        if (j == n)
            out[n++] = s;
    }
    return n;
}

static void store_verdicts(tb_timekeeper *tk, int64_t now)
{
    tk_last_verdict *lv = calloc(tk->result.n_verdicts + 1, sizeof(*lv));
    if (!lv)
        return;
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        bool same = false;
        for (size_t j = 0; j < tk->n_last_verdicts && !same; j++)
            same = tk->last_verdicts[j].kind == v->kind &&
                   tk->last_verdicts[j].verdict == v->verdict &&
                   strcmp(tk->last_verdicts[j].source, v->source) == 0;
        if (!same) {
            tb_log_info(tk->log, "%s %s: %s (%s)", tb_measure_kind_name((int)v->kind), v->source,
                        tb_xc_verdict_name((int)v->verdict), v->reason);
            if (tb_store_put_verdict(tk->store, v, now) != TB_OK)
                tb_log_warn(tk->log, "verdict for %s not stored", v->source);
        }
        lv[i] = (tk_last_verdict){.kind = v->kind, .verdict = v->verdict};
        snprintf(lv[i].source, sizeof(lv[i].source), "%s", v->source);
    }
    free(tk->last_verdicts);
    tk->last_verdicts = lv;
    tk->n_last_verdicts = tk->result.n_verdicts;
}

/* Logs and counts the findings against members that the previous run did not have. */
static void count_findings(tb_timekeeper *tk, const tb_xc_result *r)
{
    for (size_t i = 0; i < r->n_findings; i++) {
        const tb_xc_finding *f = &r->findings[i];
        bool seen = false;
        for (size_t j = 0; j < tk->result.n_findings && !seen; j++) {
            const tb_xc_finding *g = &tk->result.findings[j];
            seen = g->kind == f->kind && g->source_kind == f->source_kind &&
                   strcmp(g->origin, f->origin) == 0 && strcmp(g->source, f->source) == 0;
        }
        if (seen || (unsigned)f->kind >= TB_XC_FINDING_KINDS)
            continue;
        tk->st.member_findings[f->kind]++;
        tb_log_warn(tk->log, "member %s: %s on %s %s (%s)", f->origin,
                    tb_xc_finding_name((int)f->kind), tb_measure_kind_name((int)f->source_kind),
                    f->source, f->reason);
    }
}

static void xc_run(tb_timekeeper *tk)
{
    int64_t now = tk_real_now(tk);
    tb_node_peer_status *ps = calloc(TK_MAX_PEERS, sizeof(*ps));
    tb_xc_peer *xp = calloc(TK_MAX_PEERS + 1, sizeof(*xp));
    tb_xc_source *known = calloc(TB_SOURCES_MAX * 4 + 1, sizeof(*known));
    char(*names)[TB_MEASURE_MAX_TEXT + 1] = calloc(TB_SOURCES_MAX * 4 + 1, sizeof(*names));
    tb_xc_obs *xo = NULL;
    size_t no = 0;
    if (!ps || !xp || !known || !names || tb_xc_window_inputs(tk->win, &xo, &no) != TB_OK)
        goto out;
    tb_xc_input in = {.peers = xp,
                      .n_peers = tk_peers_xc(tk, ps, xp, now),
                      .obs = xo,
                      .n_obs = no,
                      .known = known,
                      .n_known = known_sources(tk, known, names, TB_SOURCES_MAX * 4),
                      .now_ns = now,
                      .started_ns = tk->started_ns,
                      .self = tb_node_name(tk->node),
                      .hold = tk->hold};
    tb_xc_result r;
    int rc = tb_tk_xc_step(&tk->tc.xc, tk->hold, &in, &r);
    if (rc != TB_OK) {
        tb_log_warn(tk->log, "cross-check failed: %s", tb_strerror(rc));
        goto out;
    }
    count_findings(tk, &r);
    tb_xc_result_clear(&tk->result);
    tk->result = r;
    tk->st.xc_runs++;
    store_verdicts(tk, now);
    tk_report_violations(tk, now);
out:
    free(ps);
    free(xp);
    free(xo);
    free(known);
    free(names);
}

static void on_xc_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tb_timekeeper *tk = w->data;
    tk->xc_last_ns = (int64_t)tb_clock_mono(tk->clock);
    xc_run(tk);
    ev_timer_set(
        w, tb_tk_xc_next_s(&tk->tc.xc, tk->tc.min_interval_ms, &tk->result, tk_real_now(tk)), 0.);
    ev_timer_start(tk->loop, w);
}

/* New data: run soon, but not more often than min_interval. */
static void xc_kick(tb_timekeeper *tk)
{
    if (tk->stopping)
        return;
    double since = ((double)tb_clock_mono(tk->clock) - (double)tk->xc_last_ns) / 1e9;
    double wait = tb_tk_xc_kick_s(tk->tc.min_interval_ms, since);
    if (ev_is_active(&tk->xc_timer) && ev_timer_remaining(tk->loop, &tk->xc_timer) <= wait)
        return;
    ev_timer_stop(tk->loop, &tk->xc_timer);
    ev_timer_set(&tk->xc_timer, wait, 0.);
    ev_timer_start(tk->loop, &tk->xc_timer);
}

/* --- own measurements: sign, store, broadcast --- */

void tk_publish(tb_timekeeper *tk, tb_measurement *m)
{
    const char *bad = tb_measure_range_error(m);
    if (bad) {
        tb_log_warn(tk->log, "measurement of %s not sent: %s out of range", m->source_name, bad);
        return;
    }
    if (tb_store_next_seq(tk->store, &m->seq) != TB_OK) {
        tb_log_error(tk->log, "no sequence number (store): measurement of %s dropped",
                     m->source_name);
        return;
    }
    uint8_t *body = malloc(TB_MEASURE_BODY_MAX);
    uint8_t sig[TB_MEASURE_SIG_LEN];
    size_t len;
    int rc = body ? tb_measure_seal(m, tk->sk, body, TB_MEASURE_BODY_MAX, &len, sig) : TB_ERR_NOMEM;
    if (rc != TB_OK) {
        tb_log_warn(tk->log, "measurement of %s not sealed: %s", m->source_name, tb_strerror(rc));
        free(body);
        return;
    }
    tk->st.last_seq = m->seq;
    tk->st.sent++;
    tk->st.sent_kind[m->kind]++; /* encoded: a valid kind */
    tk->st.wire_bytes_kind[m->kind] += len + TB_MEASURE_SIG_LEN;
    if (tb_store_put_measurement(tk->store, m, true, body, len, sig, tk_real_now(tk)) != TB_OK)
        tb_log_warn(tk->log, "own measurement %llu not stored", (unsigned long long)m->seq);
    /* Echoes of our own measurement that come back through the mesh are replays. */
    tb_measure_drop why;
    if (tb_measure_replay_check_seq(tk->replay, m->origin, m->seq, &why) != TB_OK)
        tb_log_debug(tk->log, "own sequence %llu not tracked", (unsigned long long)m->seq);
    obs_verify_add(tk, m, true);
    tk_gossip_add(tk, m->seq, body, len, sig);
    xc_kick(tk);
    free(body);
}

/* A peer's measurement that passed the replay checks (tk->ev holds its evidence check). */
void tk_take(tb_timekeeper *tk, const tb_measurement *m)
{
    obs_add(tk, m, false, &tk->ev);
    xc_kick(tk);
}

static void on_source_measurement(void *arg, const tb_source_meas *sm)
{
    tb_timekeeper *tk = arg;
    if (tk->stopping)
        return;
    tb_measurement m;
    if (tb_tk_measurement_of(sm, tb_node_name(tk->node), &m) != TB_OK)
        return;
    tk_publish(tk, &m);
}

/* --- peers' measurements: verify before use or forwarding --- */

/* The origin's key, from a certificate the mesh node verified against the CA (node/bcast.h:
 * learned from handshakes, ALIVE announcements and CERT answers). */
static int lookup_cb(void *arg, const char *origin, tb_measure_origin_key *out)
{
    tb_timekeeper *tk = arg;
    return tb_node_origin_key(tk->node, origin, out);
}

static int accept_broadcast(void *arg, const char *origin, uint32_t app_type,
                            const uint8_t *payload, size_t len)
{
    tb_timekeeper *tk = arg;
    if (app_type != TB_TK_APP_MEASUREMENTS)
        return 0;
    return tk_gossip_accept(tk, origin, payload, len);
}

/* The node reloaded its certificate and key (key_pem set: measurements are signed with the new
 * key from now on) or took a newer revocation list (key_pem NULL). Either way keys cached
 * from certificates are checked again. The node checked that the key belongs to the new
 * certificate and is of the same type as the running one (Ed25519). */
static void on_certs(void *arg, const char *key_pem, size_t key_len)
{
    tb_timekeeper *tk = arg;
    if (!key_pem)
        return;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    if (tb_measure_key_from_pem(key_pem, key_len, sk, pk) != TB_OK) {
        tb_log_error(tk->log,
                     "key '%s': the reloaded key is not an Ed25519 PEM key; "
                     "measurements stay signed with the old key",
                     tk->cfg->key);
        return;
    }
    memcpy(tk->sk, sk, sizeof(sk));
    memcpy(tk->pk, pk, sizeof(pk));
    sodium_memzero(sk, sizeof(sk));
}

static void on_node_stopped(void *arg)
{
    tb_timekeeper *tk = arg;
    if (tk->opt.on_stopped)
        tk->opt.on_stopped(tk->opt.arg);
}

/* --- set-up --- */

static int load_key(tb_timekeeper *tk)
{
    return tb_origins_load_key(tk->log, tk->cfg->key, tk->sk, tk->pk);
}

static int seed_replay(void *arg, const char *origin, uint64_t seq)
{
    tb_timekeeper *tk = arg;
    if (tb_measure_replay_seed(tk->replay, origin, seq) != TB_OK)
        tb_log_warn(tk->log, "origin %s: sequence %llu not restored (origin table full)", origin,
                    (unsigned long long)seq);
    return 0;
}

static int reload_row(void *arg, const tb_store_row *row)
{
    tb_measurement m;
    if (tb_measure_parse(row->body, row->body_len, &m, NULL) == TB_OK &&
        tb_measure_range_error(&m) == NULL)
        obs_verify_add(arg, &m, row->own);
    return 0;
}

static int open_store(tb_timekeeper *tk)
{
    char err[512];
    tb_store_config sc = {.dir = tk->cfg->state_dir, .seq_block = 1024};
    int rc = tb_store_open(&sc, &tk->store, err, sizeof(err));
    if (rc != TB_OK) {
        tb_log_error(tk->log, "%s", err);
        return rc;
    }
    tb_measure_replay_config rc_cfg = {.max_origins = 1024,
                                       .limits = tk->tc.limits,
                                       .lookup = lookup_cb,
                                       .evidence = evidence_cb,
                                       .arg = tk};
    tk->replay = tb_measure_replay_new(&rc_cfg);
    tk->win = tb_xc_window_new();
    tk->hold = tb_xc_hold_new();
    if (!tk->replay || !tk->win || !tk->hold)
        return TB_ERR_NOMEM;
    uint64_t nm, nv, nr;
    if (tb_store_max_seqs(tk->store, seed_replay, tk) != TB_OK ||
        tb_store_each_since(tk->store, tk_real_now(tk) - tk->tc.xc.window_ns, reload_row, tk) !=
            TB_OK ||
        tb_store_counts(tk->store, &nm, &nv, &nr) != TB_OK) {
        tb_log_error(tk->log, "%s/%s: cannot read the history", tk->cfg->state_dir, TB_STORE_FILE);
        return TB_ERR_IO;
    }
    tk->st.malfeasance_reports = nr;
    tb_log_info(tk->log, "history: %llu measurements, %llu verdicts, %llu reports",
                (unsigned long long)nm, (unsigned long long)nv, (unsigned long long)nr);
    return TB_OK;
}

static int open_resolver(tb_timekeeper *tk)
{
    if (tk->opt.resolver) {
        tk->resolver = tk->opt.resolver;
        return TB_OK;
    }
    int rc = tb_resolver_thread_create(tk->loop, &tk->thread_resolver);
    if (rc != TB_OK)
        return rc;
    tk->resolver = tk->thread_resolver;
    if (!tk->tc.hosts_file[0])
        return TB_OK;
    rc = tb_resolver_hosts_create(tk->loop, tk->tc.hosts_file, tk->thread_resolver, tk->log,
                                  &tk->own_resolver);
    if (rc == TB_OK)
        tk->resolver = tk->own_resolver;
    else
        tb_log_error(tk->log, "hosts_file '%s': %s", tk->tc.hosts_file, tb_strerror(rc));
    return rc;
}

/* A window shorter than a source's longest poll would once have called it unreachable between
 * polls; now each series stays fresh for TB_XC_LIVE_INTERVALS of its own intervals, so this is
 * corrected, not refused, and said once per source at load (adr/0008, amendment). */
static void warn_window(const tb_timekeeper *tk, const tb_node_config *cfg, int64_t window_ns,
                        const tb_source_config_list *list)
{
    int64_t window_s = window_ns / (int64_t)TB_NS_PER_SEC;
    for (size_t i = 0; i < list->n; i++) {
        const tb_source_config *sc = &list->items[i];
        if (sc->kind == TB_SOURCE_SOCK || sc->kind == TB_SOURCE_PPS)
            continue; /* never polled: samples come as the writer or the pulses send them */
        int64_t poll_s = (int64_t)1 << (sc->maxpoll < 0 ? 0 : sc->maxpoll > 30 ? 30 : sc->maxpoll);
        if (poll_s > window_s)
            tb_log_warn(tk->log,
                        "%s:%d: source %s polls up to every %lld s (maxpoll %d), longer than "
                        "crosscheck.window %lld s: its measurements stay fresh for %d of its own "
                        "intervals instead",
                        cfg->file[0] ? cfg->file : "config", sc->line,
                        sc->address[0] ? sc->address : sc->name, (long long)poll_s, sc->maxpoll,
                        (long long)window_s, TB_XC_LIVE_INTERVALS);
    }
}

static int apply_sources(tb_timekeeper *tk, const tb_node_config *cfg, char *err, size_t errlen)
{
    tb_source_config_list list = {0};
    const config_setting_t *s = tb_node_config_section(cfg, "sources");
    if (s && tb_sources_config_parse(s, &list, err, errlen) != TB_OK)
        return TB_ERR_INVAL;
    warn_window(tk, cfg, tk->tc.xc.window_ns, &list);
    int rc = tb_sources_apply(tk->sources, &list);
    tb_sources_config_free(&list);
    if (rc != TB_OK)
        snprintf(err, errlen, "sources: %s", tb_strerror(rc));
    return rc;
}

static int open_sources(tb_timekeeper *tk)
{
    char err[TB_NODE_ERR_MAX];
    tk->env = (tb_source_env){.loop = tk->loop,
                              .log = tk->log,
                              .clock = tk->clock,
                              .resolver = tk->resolver,
                              .on_measurement = on_source_measurement,
                              .measurement_arg = tk,
                              .pps_dev = tk->opt.pps_dev};
    int rc = tb_sources_create(&tk->env, &tk->sources);
    if (rc != TB_OK)
        return rc;
    tb_sources_set_driver(tk->sources, tb_rt_driver());
    rc = apply_sources(tk, tk->cfg, err, sizeof(err));
    if (rc != TB_OK)
        tb_log_error(tk->log, "%s", err);
    return rc;
}

static int open_roughtime(tb_timekeeper *tk)
{
    char err[TB_NODE_ERR_MAX];
    tb_rt_config_default(&tk->rtc);
    int rc = tb_rt_config_parse(tb_node_config_section(tk->cfg, "roughtime"), &tk->rtc, err,
                                sizeof(err));
    if (rc == TB_OK && !tk->rtc.enabled)
        return TB_OK;
    if (rc == TB_OK)
        rc = tb_rt_config_load_key(&tk->rtc, tb_clock_real(tk->clock), err, sizeof(err));
    if (rc != TB_OK) {
        tb_log_error(tk->log, "%s", err);
        return rc;
    }
    if (tk->rtc.threads > 1)
        tb_log_warn(tk->log,
                    "roughtime.threads = %u: inside tbnode the server runs on the node's "
                    "loop (one edge)",
                    tk->rtc.threads);
    const tb_clock *clk = tk->opt.rt_clock ? tk->opt.rt_clock : tk->clock;
    rc = tb_rt_srv_new(&tk->rtc.srv, tk->log, tb_clock_real(clk), &tk->rt_srv);
    if (rc == TB_OK)
        rc = tb_rt_udp_new(tk->loop, tk->log, clk, tk->rt_srv, &tk->rtc.udp, &tk->rt_udp);
    if (rc != TB_OK) {
        tb_log_error(tk->log, "roughtime: cannot serve on %s: %s", tk->rtc.udp.listen,
                     tb_strerror(rc));
        return rc;
    }
    tb_log_info(tk->log, "roughtime: serving on %s", tk->rtc.udp.listen);
    return TB_OK;
}

static int start(tb_timekeeper *tk)
{
    char err[TB_NODE_ERR_MAX];
    tk->started_ns = tk_real_now(tk);
    int rc = tb_tk_config_parse(tk->cfg, &tk->tc, err, sizeof(err));
    if (rc != TB_OK) {
        tb_log_error(tk->log, "%s", err);
        return rc;
    }
    tb_node_callbacks cb = {.on_stopped = on_node_stopped,
                            .arg = tk,
                            .accept_broadcast = accept_broadcast,
                            .on_certs = on_certs,
                            .status_ext = tk_status,
                            .control_ext = tk_evidence_control,
                            .bcast_every_ns = tk_peers_base_ns(tk)};
    if ((rc = load_key(tk)) != TB_OK || (rc = open_store(tk)) != TB_OK ||
        (rc = open_resolver(tk)) != TB_OK)
        return rc;
    /* The mesh dials peer names through the same resolver (and hosts_file) as the sources. */
    cb.resolver = tk->resolver;
    if ((rc = tb_node_new(&tk->node, tk->loop, tk->log, tk->clock, tk->cfg, &cb)) != TB_OK ||
        (rc = open_roughtime(tk)) != TB_OK || (rc = open_sources(tk)) != TB_OK ||
        (rc = tk_http_open(tk)) != TB_OK)
        return rc;
    tk_peers_start(tk);
    ev_timer_start(tk->loop, &tk->prune_timer);
    xc_kick(tk);
    return TB_OK;
}

static void on_prune_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tb_timekeeper *tk = w->data;
    uint64_t n = 0;
    int64_t keep = (int64_t)tk->tc.retention_s * (int64_t)TB_NS_PER_SEC;
    if (tb_store_prune(tk->store, tk_real_now(tk), keep, &n) != TB_OK)
        tb_log_warn(tk->log, "%s/%s: pruning failed", tk->cfg->state_dir, TB_STORE_FILE);
    else if (n)
        tb_log_info(tk->log, "history: %llu old rows pruned", (unsigned long long)n);
    if (tb_store_trim(tk->store, tk->tc.store_origin_bytes, tk->tc.store_bytes, &n) != TB_OK) {
        tb_log_warn(tk->log, "%s/%s: trimming to the byte budget failed", tk->cfg->state_dir,
                    TB_STORE_FILE);
    } else if (n) {
        tk->st.store_trimmed += n;
        tb_log_info(tk->log, "history: %llu oldest measurements dropped for the byte budget",
                    (unsigned long long)n);
    }
}

int tb_timekeeper_new(tb_timekeeper **out, struct ev_loop *loop, const tb_log *log,
                      const tb_clock *clock, const tb_node_config *cfg, const tb_tk_options *opt)
{
    tb_timekeeper *tk = calloc(1, sizeof(*tk));
    if (!tk)
        return TB_ERR_NOMEM;
    tk->loop = loop;
    tk->log = log;
    tk->clock = clock;
    tk->cfg = cfg;
    if (opt)
        tk->opt = *opt;
    ev_timer_init(&tk->xc_timer, on_xc_timer, 0., 0.);
    tk_peers_init(tk);
    tk_gossip_init(tk);
    ev_timer_init(&tk->prune_timer, on_prune_timer, 60., 600.);
    tk->xc_timer.data = tk->prune_timer.data = tk;
    tk->xc_last_ns = -(int64_t)TB_NS_PER_SEC * 3600;
    tk->start_mono_ns = tb_clock_mono(clock);
    int rc = start(tk);
    if (rc != TB_OK) {
        tb_timekeeper_free(tk);
        return rc;
    }
    *out = tk;
    return TB_OK;
}

int tb_timekeeper_reload(tb_timekeeper *tk, const tb_node_config *newcfg, char *err, size_t errlen)
{
    tb_tk_config tc;
    int rc = tb_tk_config_parse(newcfg, &tc, err, errlen);
    if (rc != TB_OK)
        return rc;
    tb_source_config_list list = {0};
    const config_setting_t *s = tb_node_config_section(newcfg, "sources");
    if (s && (rc = tb_sources_config_parse(s, &list, err, errlen)) != TB_OK)
        return rc;
    warn_window(tk, newcfg, tc.xc.window_ns, &list);
    rc = tb_sources_apply(tk->sources, &list);
    tb_sources_config_free(&list);
    if (rc != TB_OK) {
        snprintf(err, errlen, "sources: %s", tb_strerror(rc));
        return rc;
    }
    /* The resolver stays: a changed hosts_file takes a restart. */
    snprintf(tc.hosts_file, sizeof(tc.hosts_file), "%s", tk->tc.hosts_file);
    tk->tc = tc;
    tb_measure_replay_set_limits(tk->replay, &tk->tc.limits);
    tk_peers_start(tk); /* peer_interval may have changed */
    tb_node_set_bcast_every(tk->node, tk_peers_base_ns(tk));
    xc_kick(tk);
    return TB_OK;
}

void tb_timekeeper_stop(tb_timekeeper *tk)
{
    if (tk->stopping)
        return;
    tk->stopping = 1;
    ev_timer_stop(tk->loop, &tk->xc_timer);
    ev_timer_stop(tk->loop, &tk->peer_timer);
    ev_timer_stop(tk->loop, &tk->prune_timer);
    if (tk->rt_udp)
        tb_rt_udp_drain(tk->rt_udp);
    if (tk->sources) {
        for (size_t i = 0; i < tb_sources_count(tk->sources); i++)
            tb_source_stop(tb_sources_get(tk->sources, i));
    }
    tk_gossip_flush(tk); /* what waits for the next batch goes out before the mesh stops */
    ev_timer_stop(tk->loop, &tk->batch_timer);
    tb_node_stop(tk->node);
}

void tb_timekeeper_free(tb_timekeeper *tk)
{
    if (!tk)
        return;
    ev_timer_stop(tk->loop, &tk->xc_timer);
    ev_timer_stop(tk->loop, &tk->peer_timer);
    ev_timer_stop(tk->loop, &tk->prune_timer);
    tb_http_free(tk->http);
    tk_gossip_free(tk);
    tb_sources_destroy(tk->sources);
    tb_rt_udp_free(tk->rt_udp);
    tb_rt_srv_free(tk->rt_srv);
    tb_rt_config_clear(&tk->rtc);
    tb_node_free(tk->node); /* cancels its resolutions: before the resolver goes */
    tb_h3_free(tk->h3);     /* after the endpoint whose h3 connections used it */
    if (tk->own_resolver)
        tb_resolver_hosts_destroy(tk->own_resolver);
    if (tk->thread_resolver)
        tb_resolver_thread_destroy(tk->thread_resolver);
    tb_measure_replay_free(tk->replay);
    tb_store_close(tk->store);
    tb_xc_window_free(tk->win);
    tb_xc_hold_free(tk->hold);
    tb_xc_result_clear(&tk->result);
    free(tk->last_verdicts);
    sodium_memzero(tk->sk, sizeof(tk->sk));
    free(tk);
}

tb_node *tb_timekeeper_node(tb_timekeeper *tk)
{
    return tk->node;
}

void tb_timekeeper_get_stats(const tb_timekeeper *tk, tb_tk_stats *out)
{
    *out = tk->st;
    out->accepted = tb_measure_replay_accepted(tk->replay);
    for (int i = 0; i < TB_MEASURE_DROP_COUNT; i++)
        out->dropped[i] = tb_measure_replay_dropped(tk->replay, (tb_measure_drop)i);
    out->dropped[TB_MEASURE_DROP_MALFORMED] += tk->malformed;
    out->peer_every_ns = tk_peers_every_ns(tk);
}

const tb_xc_result *tb_timekeeper_result(const tb_timekeeper *tk)
{
    return &tk->result;
}

uint16_t tb_timekeeper_rt_port(const tb_timekeeper *tk)
{
    return tk->rt_udp ? tb_rt_udp_port(tk->rt_udp) : 0;
}

uint16_t tb_timekeeper_http_port(const tb_timekeeper *tk)
{
    return tk->http ? tb_http_port(tk->http) : 0;
}
