/* /metrics: the Prometheus text exposition format (version 0.0.4) of what the node knows.
 * Every name starts with tbnode_, carries its unit (_seconds) and, for counters, _total; every
 * family has HELP and TYPE; label values are escaped (\\, \", \n) and bytes that are not ASCII
 * become '?', since names and sources come from peers. */
#include <stdio.h>
#include <string.h>

#include "certs/identity.h"
#include "http/http.h"
#include "node/node_internal.h"
#include "node/tk_internal.h"
#include "quic/endpoint.h"

static void family(tb_control_buf *b, const char *name, const char *type, const char *help)
{
    tb_control_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(tb_control_buf *b, const char *v)
{
    char out[2 * (TB_MEASURE_MAX_TEXT + 1)];
    size_t n = 0;
    for (; *v && n + 2 < sizeof(out); v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '\\' || c == '"') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
        }
    }
    tb_control_printf(b, "%.*s", (int)n, out);
}

/* name{k1="v1",...} value: kv holds key, value pairs, NULL-terminated. */
static void series(tb_control_buf *b, const char *name, const char *const *kv, const char *value)
{
    tb_control_printf(b, "%s", name);
    for (size_t i = 0; kv && kv[i]; i += 2) {
        tb_control_printf(b, "%s%s=\"", i ? "," : "{", kv[i]);
        label_value(b, kv[i + 1]);
        tb_control_printf(b, "\"");
    }
    tb_control_printf(b, "%s %s\n", kv && kv[0] ? "}" : "", value);
}

static void series_u(tb_control_buf *b, const char *name, const char *const *kv, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    series(b, name, kv, t);
}

static void series_s(tb_control_buf *b, const char *name, const char *const *kv, int64_t ns)
{
    char t[40];
    snprintf(t, sizeof(t), "%.9f", (double)ns / 1e9);
    series(b, name, kv, t);
}

/* A reason name as a label value: "bad framing" -> "bad_framing". */
static const char *snake(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        buf[n++] = (*s >= 'A' && *s <= 'Z')                                 ? (char)(*s - 'A' + 'a')
                   : ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')) ? *s
                                                                            : '_';
    buf[n] = 0;
    return buf;
}

static void node_info(const tb_timekeeper *tk, tb_control_buf *b)
{
    family(b, "tbnode_info", "gauge", "The node: its name, region and version (always 1).");
    const char *kv[] = {
        "node", tb_node_name(tk->node), "region", tb_node_region(tk->node), "version", TB_VERSION,
        NULL};
    series(b, "tbnode_info", kv, "1");
    family(b, "tbnode_uptime_seconds", "gauge", "Seconds since the node started.");
    series_s(b, "tbnode_uptime_seconds", NULL,
             (int64_t)(tb_clock_mono(tk->clock) - tk->start_mono_ns));
    const tb_xc_estimate *e = &tk->result.estimate;
    family(b, "tbnode_consensus_offset_seconds", "gauge",
           "The cross-check's estimate of true time minus this node's clock.");
    family(b, "tbnode_consensus_uncertainty_seconds", "gauge",
           "Half-width of the consensus estimate's uncertainty.");
    if (e->valid) {
        series_s(b, "tbnode_consensus_offset_seconds", NULL, e->offset_ns);
        series_s(b, "tbnode_consensus_uncertainty_seconds", NULL, e->uncert_ns);
    }
}

static void verdicts(const tb_timekeeper *tk, tb_control_buf *b)
{
    family(b, "tbnode_source_verdict", "gauge",
           "The cross-check's verdict on a source: one series per state, 1 for the current.");
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        for (int k = 0; k < TB_XC_VERDICT_COUNT; k++) {
            const char *kv[] = {"kind",    tb_measure_kind_name((int)v->kind),
                                "source",  v->source,
                                "verdict", tb_xc_verdict_id(k),
                                NULL};
            series(b, "tbnode_source_verdict", kv, (int)v->verdict == k ? "1" : "0");
        }
    }
    /* The link to the evidence: the export command is stable per source (the cited
     * measurements change every run, and would make a new series each time). */
    family(b, "tbnode_source_verdict_evidence_info", "gauge",
           "How to export the signed evidence behind the source's verdict (always 1).");
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        char cmd[TB_NODE_PATH_MAX + TB_MEASURE_MAX_TEXT + 80];
        tk_evidence_command(tk, v, cmd, sizeof(cmd));
        const char *kv[] = {
            "kind", tb_measure_kind_name((int)v->kind), "source", v->source, "export", cmd, NULL};
        series(b, "tbnode_source_verdict_evidence_info", kv, "1");
    }
    family(b, "tbnode_source_verdict_change_time_seconds", "gauge",
           "When the source's shown verdict last changed, Unix time.");
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        const char *kv[] = {"kind", tb_measure_kind_name((int)v->kind), "source", v->source, NULL};
        series_s(b, "tbnode_source_verdict_change_time_seconds", kv, v->since_ns);
    }
}

static void regions(const tb_timekeeper *tk, tb_control_buf *b)
{
    tk_view view;
    if (tk_view_open(tk, &view) != TB_OK) {
        b->truncated = 1;
        return;
    }
    static const char *const names[] = {"tbnode_source_offset_seconds",
                                        "tbnode_source_error_bound_seconds"};
    family(b, names[0], "gauge",
           "A source's offset (source minus this node's clock) by the newest fresh measurement "
           "from the region, in this node's frame.");
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            family(b, names[1], "gauge", "Half-width of that measurement's error bound.");
        for (size_t i = 0; i < tk->result.n_verdicts; i++) {
            const tb_xc_verdict *v = &tk->result.verdicts[i];
            tk_region_obs r[TK_REGIONS_MAX];
            size_t n = tk_view_regions(tk, &view, v->kind, v->source, r, TK_REGIONS_MAX);
            for (size_t j = 0; j < n; j++) {
                const char *kv[] = {"kind",   tb_measure_kind_name((int)v->kind),
                                    "source", v->source,
                                    "region", r[j].region,
                                    NULL};
                series_s(b, names[pass], kv, pass ? r[j].bound_ns : r[j].offset_ns);
            }
        }
    }
    tk_view_close(&view);
}

static void peers(const tb_timekeeper *tk, tb_control_buf *b)
{
    tb_node_peer_status ps[TK_MAX_PEERS];
    size_t n = tb_node_peers(tk->node, ps, TK_MAX_PEERS);
    n = n < TK_MAX_PEERS ? n : TK_MAX_PEERS;
    family(b, "tbnode_peer_connected", "gauge", "1 while the mesh peer is connected.");
    for (size_t i = 0; i < n; i++) {
        const char *kv[] = {"peer", ps[i].name, "region", ps[i].region, NULL};
        series(b, "tbnode_peer_connected", kv, strcmp(ps[i].state, "connected") == 0 ? "1" : "0");
    }
    static const char *const names[] = {"tbnode_peer_rtt_seconds", "tbnode_peer_offset_seconds"};
    static const char *const help[] = {
        "Round-trip time to the peer (PING/PONG, minimum-delay sample).",
        "The peer's clock minus this node's clock (PING/PONG)."};
    for (int pass = 0; pass < 2; pass++) {
        family(b, names[pass], "gauge", help[pass]);
        for (size_t i = 0; i < n; i++) {
            const char *kv[] = {"peer", ps[i].name, "region", ps[i].region, NULL};
            if (ps[i].has_estimate)
                series_s(b, names[pass], kv, pass ? ps[i].offset_ns : ps[i].rtt_ns);
        }
    }
}

static void measurements(const tb_timekeeper *tk, tb_control_buf *b)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk, &st);
    family(b, "tbnode_measurements_sent_total", "counter",
           "Own measurements signed and broadcast.");
    series_u(b, "tbnode_measurements_sent_total", NULL, st.sent);
    family(b, "tbnode_measurements_accepted_total", "counter",
           "Peers' measurements verified and taken.");
    series_u(b, "tbnode_measurements_accepted_total", NULL, st.accepted);
    family(b, "tbnode_measurements_dropped_total", "counter",
           "Peers' measurements dropped, by reason.");
    for (int i = 0; i < TB_MEASURE_DROP_COUNT; i++) {
        const char *kv[] = {"reason", tk_drop_keys[i], NULL};
        series_u(b, "tbnode_measurements_dropped_total", kv, st.dropped[i]);
    }
    family(b, "tbnode_malfeasance_reports_total", "counter",
           "Roughtime malfeasance reports written.");
    series_u(b, "tbnode_malfeasance_reports_total", NULL, st.malfeasance_reports);
    family(b, "tbnode_crosscheck_runs_total", "counter", "Cross-check runs.");
    series_u(b, "tbnode_crosscheck_runs_total", NULL, st.xc_runs);
}

static void mesh(const tb_timekeeper *tk, tb_control_buf *b)
{
    tb_node_stats ns;
    tb_node_get_stats(tk->node, &ns);
    family(b, "tbnode_broadcasts_total", "counter",
           "BROADCASTs: delivered here, forwarded on, dropped as duplicates.");
    const char *d[] = {"result", "delivered", NULL}, *f[] = {"result", "forwarded", NULL},
               *u[] = {"result", "duplicate", NULL};
    series_u(b, "tbnode_broadcasts_total", d, ns.bcast_delivered);
    series_u(b, "tbnode_broadcasts_total", f, ns.bcast_forwarded);
    series_u(b, "tbnode_broadcasts_total", u, ns.bcast_duplicates);
    size_t st[3];
    tb_node_member_counts(tk->node, &st[0], &st[1], &st[2]);
    family(b, "tbnode_mesh_members", "gauge",
           "Members this node knows (its failure detector's, and origins of verified broadcasts "
           "heard lately), by state.");
    static const char *const states[3] = {"alive", "suspect", "dead"};
    for (int i = 0; i < 3; i++) {
        const char *kv[] = {"state", states[i], NULL};
        series_u(b, "tbnode_mesh_members", kv, st[i]);
    }
    const tb_quic_stats *q = tb_node_quic_stats(tk->node);
    char buf[48];
    family(b, "tbnode_handshakes_refused_total", "counter",
           "QUIC handshakes refused (certificate, name, ALPN, TLS), by reason.");
    for (int i = 1; i < TB_QUIC_REFUSE_COUNT; i++) {
        const char *kv[] = {
            "reason", snake(tb_quic_refusal_name((tb_quic_refusal)i), buf, sizeof(buf)), NULL};
        series_u(b, "tbnode_handshakes_refused_total", kv, q->refused[i]);
    }
    family(b, "tbnode_connections_not_admitted_total", "counter",
           "Incoming connections not admitted (limits, bans), by reason.");
    for (int i = 1; i < TB_QUIC_ADMIT_COUNT; i++) {
        const char *kv[] = {"reason", snake(tb_quic_admit_name((tb_quic_admit)i), buf, sizeof(buf)),
                            NULL};
        series_u(b, "tbnode_connections_not_admitted_total", kv, q->admission[i]);
    }
}

static void roughtime(const tb_timekeeper *tk, tb_control_buf *b)
{
    if (!tk->rt_srv)
        return;
    const tb_rt_srv_stats *s = tb_rt_srv_stats_get(tk->rt_srv);
    family(b, "tbnode_roughtime_requests_total", "counter",
           "Roughtime requests received by this node's server.");
    series_u(b, "tbnode_roughtime_requests_total", NULL, s->received);
    family(b, "tbnode_roughtime_answers_total", "counter", "Roughtime requests answered.");
    series_u(b, "tbnode_roughtime_answers_total", NULL, s->answered);
    family(b, "tbnode_roughtime_dropped_total", "counter",
           "Roughtime requests dropped, by reason.");
    char buf[48];
    for (int i = 0; i < TB_RT_DROP_COUNT; i++) {
        const char *kv[] = {"reason", snake(tb_rt_drop_name((tb_rt_drop)i), buf, sizeof(buf)),
                            NULL};
        series_u(b, "tbnode_roughtime_dropped_total", kv, s->drops[i]);
    }
}

/* This node's certificate and every connected peer's: when each stops being valid. */
static void certificates(const tb_timekeeper *tk, tb_control_buf *b)
{
    family(b, "tbnode_certificate_expiry_time_seconds", "gauge",
           "notAfter of a mesh node's certificate (this node's and connected peers'), Unix "
           "time.");
    tb_node_peer_status ps[TK_MAX_PEERS];
    size_t n = tb_node_peers(tk->node, ps, TK_MAX_PEERS);
    n = n < TK_MAX_PEERS ? n : TK_MAX_PEERS;
    for (size_t i = 0; i <= n; i++) {
        const char *name = i == n ? tb_node_name(tk->node) : ps[i].name;
        if (i < n && strcmp(ps[i].state, "connected") != 0)
            continue;
        const uint8_t *der;
        size_t len;
        tb_cert_identity id;
        if (tb_node_peer_cert(tk->node, name, &der, &len) != TB_OK ||
            tb_cert_identity_from_der(der, len, &id) != TB_OK)
            continue;
        const char *kv[] = {"node", name, NULL};
        char t[24];
        snprintf(t, sizeof(t), "%lld", (long long)id.not_after);
        series(b, "tbnode_certificate_expiry_time_seconds", kv, t);
    }
}

static void http(const tb_timekeeper *tk, tb_control_buf *b)
{
    tb_http_stats st;
    tb_http_get_stats(tk->http, &st);
    family(b, "tbnode_http_requests_total", "counter",
           "Requests to this endpoint: answered, not found, refused (method, body, URL).");
    const char *ok[] = {"result", "ok", NULL}, *nf[] = {"result", "not_found", NULL},
               *rf[] = {"result", "refused", NULL};
    series_u(b, "tbnode_http_requests_total", ok, st.ok);
    series_u(b, "tbnode_http_requests_total", nf, st.not_found);
    series_u(b, "tbnode_http_requests_total", rf, st.refused);
}

void tk_metrics(const tb_timekeeper *tk, tb_control_buf *b)
{
    node_info(tk, b);
    verdicts(tk, b);
    regions(tk, b);
    peers(tk, b);
    measurements(tk, b);
    mesh(tk, b);
    roughtime(tk, b);
    certificates(tk, b);
    if (tk->http)
        http(tk, b);
}
