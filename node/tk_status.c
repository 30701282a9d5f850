/* The time node's part of `tbnode status` (text) and `tbnode status --json`: consensus,
 * sources, verdicts, measurement counters, malfeasance reports. The JSON members are a contract
 * with the acceptance test; see node/timekeeper.h. */
#include <string.h>

#include "node/tk_internal.h"

typedef struct src_view {
    const char *kind, *name, *address, *state, *reason;
    const tb_xc_obs *last; /* NULL when none */
} src_view;

static void src_json(tb_control_buf *b, const src_view *v, int first)
{
    tb_control_printf(b, "%s{\"kind\":\"%s\",\"name\":", first ? "" : ",", v->kind);
    tb_control_json_str(b, v->name);
    tb_control_printf(b, ",\"address\":");
    tb_control_json_str(b, v->address);
    tb_control_printf(b, ",\"state\":\"%s\",\"reason\":", v->state);
    tb_control_json_str(b, v->reason);
    if (v->last)
        tb_control_printf(b, ",\"offset_ns\":%lld,\"error_ns\":%lld}",
                          (long long)v->last->offset_ns, (long long)v->last->bound_ns);
    else
        tb_control_printf(b, ",\"offset_ns\":null,\"error_ns\":null}");
}

static void src_text(tb_control_buf *b, const src_view *v)
{
    tb_control_printf(b, "source %s %s addr=%s %s", v->kind, v->name,
                      v->address[0] ? v->address : "-", v->state);
    if (v->last)
        tb_control_printf(b, " offset_us=%.1f error_us=%.1f", (double)v->last->offset_ns / 1e3,
                          (double)v->last->bound_ns / 1e3);
    tb_control_printf(b, "%s%s\n", v->reason[0] ? " reason=" : "", v->reason);
}

static void show_source(tb_control_buf *b, const src_view *v, int json, int *first)
{
    if (json)
        src_json(b, v, *first);
    else
        src_text(b, v);
    *first = 0;
}

static void sources(const tb_timekeeper *tk, tb_control_buf *b, int json)
{
    int first = 1;
    for (size_t i = 0; tk->sources && i < tb_sources_count(tk->sources); i++) {
        const tb_source *s = tb_sources_get(tk->sources, i);
        const tb_source_id *id = tb_source_identity(s);
        tb_measure_kind mk =
            id->kind == TB_SOURCE_ROUGHTIME ? TB_MEASURE_ROUGHTIME : TB_MEASURE_NTP;
        tb_xc_obs last;
        src_view v = {tb_measure_kind_name((int)mk),
                      id->name,
                      id->address,
                      tb_source_state_name(tb_source_state_of(s)),
                      tb_source_reason(s) ? tb_source_reason(s) : "",
                      tb_xc_window_last_own(tk->win, mk, id->name, id->address, &last) == TB_OK
                          ? &last
                          : NULL};
        show_source(b, &v, json, &first);
    }
    tb_node_peer_status ps[TK_MAX_PEERS];
    size_t k = tb_node_peers(tk->node, ps, TK_MAX_PEERS);
    for (size_t i = 0; i < k && i < TK_MAX_PEERS; i++) {
        if (strcmp(ps[i].state, "connected") != 0)
            continue;
        tb_xc_obs last;
        src_view v = {"peer",
                      ps[i].name,
                      ps[i].addr,
                      ps[i].has_estimate ? "reachable" : "starting",
                      ps[i].has_estimate ? "" : "no PING/PONG estimate yet",
                      tb_xc_window_last_own(tk->win, TB_MEASURE_PEER, ps[i].name, NULL, &last) ==
                              TB_OK
                          ? &last
                          : NULL};
        show_source(b, &v, json, &first);
    }
}

static void verdicts(const tb_timekeeper *tk, tb_control_buf *b, int json)
{
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        const char *kind = tb_measure_kind_name((int)v->kind);
        const char *name = tb_xc_verdict_name((int)v->verdict);
        if (!json) {
            tb_control_printf(b, "verdict %s %s: %s (%s)", kind, v->source, name, v->reason);
            for (size_t r = 0; r < v->n_refs; r++)
                tb_control_printf(b, "%s%s:%llu", r ? "," : " evidence=", v->refs[r].origin,
                                  (unsigned long long)v->refs[r].seq);
            tb_control_printf(b, "\n");
            continue;
        }
        tb_control_printf(b, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", kind);
        tb_control_json_str(b, v->source);
        tb_control_printf(b, ",\"verdict\":\"%s\",\"reason\":", name);
        tb_control_json_str(b, v->reason);
        tb_control_printf(b, ",\"evidence\":[");
        for (size_t r = 0; r < v->n_refs; r++) {
            tb_control_printf(b, "%s{\"origin\":", r ? "," : "");
            tb_control_json_str(b, v->refs[r].origin);
            tb_control_printf(b, ",\"seq\":%llu}", (unsigned long long)v->refs[r].seq);
        }
        tb_control_printf(b, "]}");
    }
}

static const char *const drop_keys[TB_MEASURE_DROP_COUNT] = {
    "malformed",    "unknown_origin", "expired_certificate", "bad_signature",
    "bad_evidence", "replay",         "out_of_order",        "table_full"};

static void counters(const tb_timekeeper *tk, tb_control_buf *b, int json)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk, &st);
    if (json)
        tb_control_printf(b, ",\"measurements\":{\"sent\":%llu,\"accepted\":%llu,\"dropped\":{",
                          (unsigned long long)st.sent, (unsigned long long)st.accepted);
    else
        tb_control_printf(b, "measurements sent=%llu accepted=%llu", (unsigned long long)st.sent,
                          (unsigned long long)st.accepted);
    for (int i = 0; i < TB_MEASURE_DROP_COUNT; i++)
        tb_control_printf(b, json ? "%s\"%s\":%llu" : "%s%s=%llu", json && i ? "," : " ",
                          drop_keys[i], (unsigned long long)st.dropped[i]);
    if (json)
        tb_control_printf(b, "}},\"malfeasance_reports\":%llu",
                          (unsigned long long)st.malfeasance_reports);
    else
        tb_control_printf(b, "\nmalfeasance_reports %llu\n",
                          (unsigned long long)st.malfeasance_reports);
}

void tk_status(void *arg, tb_control_buf *b, int json)
{
    const tb_timekeeper *tk = arg;
    const tb_xc_estimate *e = &tk->result.estimate;
    if (json && e->valid)
        tb_control_printf(b,
                          ",\"consensus\":{\"offset_ns\":%lld,\"uncertainty_ns\":%lld,"
                          "\"agree\":%u,\"votes\":%u}",
                          (long long)e->offset_ns, (long long)e->uncert_ns, e->n_agree,
                          e->n_voting);
    else if (json)
        tb_control_printf(b, ",\"consensus\":null");
    else if (e->valid)
        tb_control_printf(b, "consensus offset_us=%.1f uncertainty_us=%.1f agree=%u votes=%u\n",
                          (double)e->offset_ns / 1e3, (double)e->uncert_ns / 1e3, e->n_agree,
                          e->n_voting);
    else
        tb_control_printf(b, "consensus none\n");
    if (json)
        tb_control_printf(b, ",\"sources\":[");
    sources(tk, b, json);
    if (json)
        tb_control_printf(b, "],\"verdicts\":[");
    verdicts(tk, b, json);
    if (json)
        tb_control_printf(b, "]");
    counters(tk, b, json);
}
