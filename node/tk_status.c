/* The time node's part of `tbnode status` (text) and `tbnode status --json`: consensus,
 * sources, verdicts, measurement counters, malfeasance reports. The JSON is a contract:
 * node/status.schema.json describes it, the tests validate answers against it, and the HTTP
 * endpoint serves the same object as /status.json. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "node/tk_internal.h"
#include "ntp/packet.h"

/* A JSON string of s. Names come from peers: bytes that are not UTF-8 become '?' rather than
 * making the whole answer invalid. */
static json_t *jtext(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *c = strdup(s);
    if (!c)
        return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(c);
    free(c);
    return j;
}

static json_t *jint(int64_t v)
{
    return json_integer((json_int_t)v);
}

typedef struct src_view {
    const char *kind, *name, *address, *state, *reason;
    const tb_xc_obs *last; /* NULL when none */
} src_view;

/* The newest own measurement when it is NTP's (it has a leap indicator and stratum), or NULL. */
static const tb_xc_obs *ntp_last(const src_view *v)
{
    return v->last && v->last->kind == TB_MEASURE_NTP ? v->last : NULL;
}

/* NTP: the newest reply's leap indicator (a leap second announced shows as "insert" or
 * "delete") and stratum. */
static json_t *src_json(const src_view *v)
{
    json_t *j =
        json_pack("{s:s, s:o, s:o, s:s, s:o, s:o, s:o}", "kind", v->kind, "name", jtext(v->name),
                  "address", jtext(v->address), "state", v->state, "reason", jtext(v->reason),
                  "offset_ns", v->last ? jint(v->last->offset_ns) : json_null(), "error_ns",
                  v->last ? jint(v->last->bound_ns) : json_null());
    const tb_xc_obs *ntp = ntp_last(v);
    if (j && ntp) {
        json_object_set_new(j, "leap", json_string(tb_ntp_leap_name(ntp->leap)));
        json_object_set_new(j, "stratum", jint(ntp->stratum));
    }
    return j;
}

static void src_text(tb_control_buf *b, const src_view *v)
{
    tb_control_printf(b, "source %s %s addr=%s %s", v->kind, v->name,
                      v->address[0] ? v->address : "-", v->state);
    if (v->last)
        tb_control_printf(b, " offset_us=%.1f error_us=%.1f", (double)v->last->offset_ns / 1e3,
                          (double)v->last->bound_ns / 1e3);
    const tb_xc_obs *ntp = ntp_last(v);
    if (ntp)
        tb_control_printf(b, " leap=%s stratum=%u", tb_ntp_leap_name(ntp->leap), ntp->stratum);
    tb_control_printf(b, "%s%s\n", v->reason[0] ? " reason=" : "", v->reason);
}

/* Text lines into b, or (arr not NULL) JSON objects into arr. */
static void show_source(tb_control_buf *b, json_t *arr, const src_view *v)
{
    if (arr)
        json_array_append_new(arr, src_json(v));
    else
        src_text(b, v);
}

static void sources(const tb_timekeeper *tk, tb_control_buf *b, json_t *arr)
{
    for (size_t i = 0; tk->sources && i < tb_sources_count(tk->sources); i++) {
        const tb_source *s = tb_sources_get(tk->sources, i);
        const tb_source_id *id = tb_source_identity(s);
        tb_measure_kind mk;
        char key[TB_MEASURE_MAX_TEXT + 1];
        tb_tk_source_key(id, tb_node_name(tk->node), &mk, key, sizeof(key));
        tb_xc_obs last;
        src_view v = {tb_measure_kind_name((int)mk),
                      id->name,
                      id->address,
                      tb_source_state_name(tb_source_state_of(s)),
                      tb_source_reason(s) ? tb_source_reason(s) : "",
                      tb_xc_window_last_own(tk->win, mk, key, id->address, &last) == TB_OK ? &last
                                                                                           : NULL};
        show_source(b, arr, &v);
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
        show_source(b, arr, &v);
    }
}

static json_t *regions_json(const tb_timekeeper *tk, const tk_view *view, const tb_xc_verdict *v)
{
    tk_region_obs r[TK_REGIONS_MAX];
    size_t n = view ? tk_view_regions(tk, view, v->kind, v->source, r, TK_REGIONS_MAX) : 0;
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(
            a, json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "region", jtext(r[i].region), "origin",
                         jtext(r[i].origin), "offset_ns", jint(r[i].offset_ns), "error_ns",
                         jint(r[i].bound_ns), "age_ms", (json_int_t)(r[i].age_ns / 1000000),
                         "agrees", r[i].agrees < 0 ? json_null() : json_boolean(r[i].agrees)));
    return a;
}

static json_t *verdict_json(const tb_timekeeper *tk, const tk_view *view, const tb_xc_verdict *v)
{
    json_t *ev = json_array();
    for (size_t r = 0; ev && r < v->n_refs; r++)
        json_array_append_new(ev, json_pack("{s:o, s:I}", "origin", jtext(v->refs[r].origin), "seq",
                                            (json_int_t)v->refs[r].seq));
    char since[40];
    tb_clock_format_rfc3339(v->since_ns, since, sizeof(since));
    json_t *o = json_pack(
        "{s:s, s:o, s:s, s:s, s:s, s:I, s:b, s:o, s:o}", "kind", tb_measure_kind_name((int)v->kind),
        "name", jtext(v->source), "verdict", tb_xc_verdict_id((int)v->verdict), "verdict_text",
        tb_xc_verdict_name((int)v->verdict), "since", since, "since_ns", (json_int_t)v->since_ns,
        "held", v->held, "reason", jtext(v->reason), "evidence", ev);
    char cmd[TB_NODE_PATH_MAX + TB_MEASURE_MAX_TEXT + 80];
    tk_evidence_command(tk, v, cmd, sizeof(cmd));
    if (o) {
        json_object_set_new(o, "regions", regions_json(tk, view, v));
        json_object_set_new(o, "evidence_export", jtext(cmd));
    }
    return o;
}

static void verdicts_text(const tb_timekeeper *tk, tb_control_buf *b)
{
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        char since[40];
        tb_clock_format_rfc3339(v->since_ns, since, sizeof(since));
        tb_control_printf(b, "verdict %s %s: %s since %s (%s)", tb_measure_kind_name((int)v->kind),
                          v->source, tb_xc_verdict_name((int)v->verdict), since, v->reason);
        for (size_t r = 0; r < v->n_refs; r++)
            tb_control_printf(b, "%s%s:%llu", r ? "," : " evidence=", v->refs[r].origin,
                              (unsigned long long)v->refs[r].seq);
        tb_control_printf(b, "\n");
    }
}

static json_t *finding_json(const tb_xc_finding *f)
{
    json_t *ev = json_array();
    for (size_t r = 0; ev && r < f->n_refs; r++)
        json_array_append_new(ev, json_pack("{s:o, s:I}", "origin", jtext(f->refs[r].origin), "seq",
                                            (json_int_t)f->refs[r].seq));
    return json_pack("{s:o, s:s, s:s, s:o, s:o, s:o}", "member", jtext(f->origin), "finding",
                     tb_xc_finding_name((int)f->kind), "kind",
                     tb_measure_kind_name((int)f->source_kind), "source", jtext(f->source),
                     "reason", jtext(f->reason), "evidence", ev);
}

static void findings_text(const tb_timekeeper *tk, tb_control_buf *b)
{
    for (size_t i = 0; i < tk->result.n_findings; i++) {
        const tb_xc_finding *f = &tk->result.findings[i];
        tb_control_printf(b, "member %s: %s on %s %s (%s)", f->origin,
                          tb_xc_finding_name((int)f->kind),
                          tb_measure_kind_name((int)f->source_kind), f->source, f->reason);
        for (size_t r = 0; r < f->n_refs; r++)
            tb_control_printf(b, "%s%s:%llu", r ? "," : " evidence=", f->refs[r].origin,
                              (unsigned long long)f->refs[r].seq);
        tb_control_printf(b, "\n");
    }
}

const char *const tk_drop_keys[TB_MEASURE_DROP_COUNT] = {
    "malformed",    "unknown_origin", "expired_certificate", "bad_signature", "bad_evidence",
    "replay",       "out_of_order",   "table_full",          "out_of_range",  "evidence_too_large",
    "rate_limited", "over_quota"};

static void counters_text(const tb_tk_stats *st, tb_control_buf *b)
{
    tb_control_printf(b, "measurements sent=%llu accepted=%llu", (unsigned long long)st->sent,
                      (unsigned long long)st->accepted);
    for (int i = 0; i < TB_MEASURE_DROP_COUNT; i++)
        tb_control_printf(b, " %s=%llu", tk_drop_keys[i], (unsigned long long)st->dropped[i]);
    tb_control_printf(b, "\nmalfeasance_reports %llu\n",
                      (unsigned long long)st->malfeasance_reports);
    tb_control_printf(
        b,
        "member_findings uncorroborated=%llu inconsistent=%llu clock_off=%llu contradicted=%llu\n",
        (unsigned long long)st->member_findings[TB_XC_MEMBER_UNCORROBORATED],
        (unsigned long long)st->member_findings[TB_XC_MEMBER_INCONSISTENT],
        (unsigned long long)st->member_findings[TB_XC_MEMBER_CLOCK_OFF],
        (unsigned long long)st->member_findings[TB_XC_MEMBER_CONTRADICTED]);
    tb_control_printf(b,
                      "gossip batches=%llu batch_bytes=%llu peer_every_s=%.1f store_trimmed=%llu\n",
                      (unsigned long long)st->batches_sent, (unsigned long long)st->batch_bytes,
                      (double)st->peer_every_ns / 1e9, (unsigned long long)st->store_trimmed);
}

static json_t *counters_json(const tb_tk_stats *st)
{
    json_t *dropped = json_object();
    for (int i = 0; dropped && i < TB_MEASURE_DROP_COUNT; i++)
        json_object_set_new(dropped, tk_drop_keys[i], json_integer((json_int_t)st->dropped[i]));
    return json_pack(
        "{s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:f, s:I}", "sent", (json_int_t)st->sent,
        "accepted", (json_int_t)st->accepted, "dropped", dropped, "member_findings",
        "uncorroborated", (json_int_t)st->member_findings[TB_XC_MEMBER_UNCORROBORATED],
        "inconsistent", (json_int_t)st->member_findings[TB_XC_MEMBER_INCONSISTENT], "clock_off",
        (json_int_t)st->member_findings[TB_XC_MEMBER_CLOCK_OFF], "contradicted",
        (json_int_t)st->member_findings[TB_XC_MEMBER_CONTRADICTED], "batches",
        (json_int_t)st->batches_sent, "batch_bytes", (json_int_t)st->batch_bytes, "peer_every_s",
        (double)st->peer_every_ns / 1e9, "store_trimmed", (json_int_t)st->store_trimmed);
}

static json_t *consensus_json(const tb_xc_estimate *e)
{
    if (!e->valid)
        return json_null();
    return json_pack("{s:o, s:o, s:I, s:I}", "offset_ns", jint(e->offset_ns), "uncertainty_ns",
                     jint(e->uncert_ns), "agree", (json_int_t)e->n_agree, "votes",
                     (json_int_t)e->n_voting);
}

static int64_t uptime_s(const tb_timekeeper *tk)
{
    return (int64_t)((tb_clock_mono(tk->clock) - tk->start_mono_ns) / TB_NS_PER_SEC);
}

static void status_text(const tb_timekeeper *tk, tb_control_buf *b, const tb_tk_stats *st)
{
    const tb_xc_estimate *e = &tk->result.estimate;
    tb_control_printf(b, "version %s uptime_s %lld\n", TB_VERSION, (long long)uptime_s(tk));
    if (e->valid)
        tb_control_printf(b, "consensus offset_us=%.1f uncertainty_us=%.1f agree=%u votes=%u\n",
                          (double)e->offset_ns / 1e3, (double)e->uncert_ns / 1e3, e->n_agree,
                          e->n_voting);
    else
        tb_control_printf(b, "consensus none\n");
    sources(tk, b, NULL);
    verdicts_text(tk, b);
    findings_text(tk, b);
    counters_text(st, b);
}

/* Every node's newest signed PEER measurement of every other (gossiped, verified): who sees whom
 * with what RTT and offset, as each measured it. */
static json_t *peer_matrix_json(const tk_view *view)
{
    json_t *a = json_array();
    for (size_t i = 0; a && view && i < view->n_obs; i++) {
        const tb_xc_obs *o = &view->obs[i];
        int64_t age;
        if (o->kind != TB_MEASURE_PEER || __builtin_sub_overflow(view->now_ns, o->real_ns, &age))
            continue;
        json_array_append_new(a,
                              json_pack("{s:o, s:o, s:I, s:I, s:I}", "from", jtext(o->origin), "to",
                                        jtext(o->source), "rtt_ns", (json_int_t)o->delay_ns,
                                        "offset_ns", (json_int_t)o->offset_ns, "age_ms",
                                        (json_int_t)(age > 0 ? age / 1000000 : 0)));
    }
    return a;
}

/* The members are appended to the node's object, so each is written as ,"key":value. */
static void status_json(const tb_timekeeper *tk, tb_control_buf *b, const tb_tk_stats *st)
{
    json_t *src = json_array(), *ver = json_array(), *fnd = json_array();
    tk_view view;
    int have_view = tk_view_open(tk, &view) == TB_OK;
    for (size_t i = 0; ver && i < tk->result.n_verdicts; i++)
        json_array_append_new(ver,
                              verdict_json(tk, have_view ? &view : NULL, &tk->result.verdicts[i]));
    json_t *pm = peer_matrix_json(have_view ? &view : NULL);
    if (have_view)
        tk_view_close(&view);
    for (size_t i = 0; fnd && i < tk->result.n_findings; i++)
        json_array_append_new(fnd, finding_json(&tk->result.findings[i]));
    if (src)
        sources(tk, b, src);
    json_t *o = json_pack(
        "{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "version", TB_VERSION, "uptime_s",
        (json_int_t)uptime_s(tk), "consensus", consensus_json(&tk->result.estimate), "sources", src,
        "verdicts", ver, "peer_matrix", pm, "member_findings", fnd, "measurements",
        counters_json(st), "malfeasance_reports", (json_int_t)st->malfeasance_reports);
    if (!o) {
        b->truncated = 1; /* out of memory: the answer says it is incomplete */
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (d)
            tb_control_printf(b, ",\"%s\":%s", key, d);
        else
            b->truncated = 1;
        free(d);
    }
    json_decref(o);
}

void tk_status(void *arg, tb_control_buf *b, int json)
{
    const tb_timekeeper *tk = arg;
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk, &st);
    if (json)
        status_json(tk, b, &st);
    else
        status_text(tk, b, &st);
}
