/* The mesh node's answers on the control socket (tb_node_control, node/node.h): `status` as
 * text lines, `status json` as one JSON object written with jansson (node/control.h), `status
 * broadcasts` (the last broadcasts delivered), and
 * `broadcast TEXT`. It reads the node through node.h and node_internal.h only. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "node/certwatch.h"
#include "node/node.h"
#include "node/node_internal.h"

#define STATUS_PEERS_MAX 128
#define STATUS_MEMBERS_MAX 1024

/* `status broadcasts`: the last broadcasts delivered, one "bcast ORIGIN ID TEXT" line each
 * (kept out of `status`, which is for people). */
static void broadcasts_text(tb_node *n, tb_control_buf *b)
{
    tb_node_recent r[TB_NODE_RECENT_MAX];
    size_t nr = tb_node_recent_bcasts(n, r, TB_NODE_RECENT_MAX);
    for (size_t i = 0; i < nr; i++)
        tb_control_printf(b, "bcast %s %llu %s\n", r[i].origin, (unsigned long long)r[i].id,
                          r[i].text[0] ? r[i].text : "-");
}

static void status_text(tb_node *n, tb_control_buf *b, const tb_node_peer_status *ps, size_t k)
{
    tb_control_printf(b, "node %s region %s mode %s addr %s connected %zu\n", tb_node_name(n),
                      tb_node_region(n), tb_node_mode_name(tb_node_mode_of(n)),
                      tb_node_advertised(n), tb_node_connected_count(n));
    for (size_t i = 0; i < k; i++) {
        tb_control_printf(b, "peer %s %s addr=%s region=%s", ps[i].name, ps[i].state, ps[i].addr,
                          ps[i].region);
        if (ps[i].has_estimate)
            tb_control_printf(b, " rtt_us=%.1f offset_us=%.1f samples=%u",
                              (double)ps[i].rtt_ns / 1e3, (double)ps[i].offset_ns / 1e3,
                              ps[i].samples);
        tb_control_printf(b, "\n");
    }
    size_t active, passive;
    tb_node_views(n, &active, &passive);
    tb_control_printf(b, "mesh active=%zu passive=%zu\n", active, passive);
    tb_node_member *mb = calloc(STATUS_MEMBERS_MAX, sizeof(*mb));
    size_t nm = mb ? tb_node_members(n, mb, STATUS_MEMBERS_MAX) : 0;
    for (size_t i = 0; i < nm && i < STATUS_MEMBERS_MAX; i++)
        tb_control_printf(b, "member %s %s incarnation=%llu\n", mb[i].name, mb[i].state,
                          (unsigned long long)mb[i].incarnation);
    free(mb);
    tb_node_stats st;
    tb_node_get_stats(n, &st);
    tb_control_printf(b,
                      "stats bcast_delivered=%llu bcast_dup=%llu bcast_forwarded=%llu "
                      "msgs_bad=%llu oversized=%llu dgrams_bad=%llu pings_sent=%llu "
                      "pongs_received=%llu pongs_bad=%llu messages_delivered=%llu\n",
                      (unsigned long long)st.bcast_delivered,
                      (unsigned long long)st.bcast_duplicates,
                      (unsigned long long)st.bcast_forwarded, (unsigned long long)st.msgs_bad,
                      (unsigned long long)st.oversized, (unsigned long long)st.dgrams_bad,
                      (unsigned long long)st.pings_sent, (unsigned long long)st.pongs_received,
                      (unsigned long long)st.pongs_bad, (unsigned long long)st.messages_delivered);
    tb_control_printf(b, "budget over_budget=%llu penalties=%llu banned=%llu addrs_refused=%llu\n",
                      (unsigned long long)st.over_budget, (unsigned long long)st.penalties,
                      (unsigned long long)st.peers_banned, (unsigned long long)st.addrs_refused);
    tb_certwatch_status_text(tb_node_certwatch(n), b);
    tb_node_status_ext(n, b, 0);
}

/* Sets obj[key]; a failed allocation leaves the member out and is reported by the caller. */
static int set(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

static json_t *peer_json(const tb_node_peer_status *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set(o, "name", tb_control_json_string(p->name)) |
              set(o, "region", tb_control_json_string(p->region)) |
              set(o, "state", tb_control_json_string(p->state)) |
              set(o, "addr", tb_control_json_string(p->addr));
    if (p->has_estimate)
        bad |= set(o, "rtt_ns", json_integer(p->rtt_ns)) |
               set(o, "offset_ns", json_integer(p->offset_ns)) |
               set(o, "samples", json_integer(p->samples));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *budget_json(const tb_node_stats *st)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "over_budget",
                     (json_int_t)st->over_budget, "penalties", (json_int_t)st->penalties, "banned",
                     (json_int_t)st->peers_banned, "addrs_refused", (json_int_t)st->addrs_refused,
                     "handshakes_refused", (json_int_t)st->handshakes_refused, "room_for_peers",
                     (json_int_t)st->room_for_peers, "learned_dials", (json_int_t)st->learned_dials,
                     "learned_forgotten", (json_int_t)st->learned_forgotten);
}

/* "members" (the failure detector's list) and "mesh" (the views' sizes): mesh v2. */
static int members_json(tb_node *n, json_t *o)
{
    json_t *a = json_array();
    tb_node_member *mb = calloc(STATUS_MEMBERS_MAX, sizeof(*mb));
    size_t nm = mb ? tb_node_members(n, mb, STATUS_MEMBERS_MAX) : 0, active, passive;
    int bad = !a || !mb;
    for (size_t i = 0; !bad && i < nm && i < STATUS_MEMBERS_MAX; i++)
        bad = json_array_append_new(
                  a, json_pack("{s:o,s:s,s:I}", "name", tb_control_json_string(mb[i].name), "state",
                               mb[i].state, "incarnation", (json_int_t)mb[i].incarnation)) != 0;
    free(mb);
    tb_node_views(n, &active, &passive);
    if (bad) {
        json_decref(a);
        return -1;
    }
    return set(o, "members", a) | set(o, "mesh",
                                      json_pack("{s:I,s:I}", "active", (json_int_t)active,
                                                "passive", (json_int_t)passive));
}

static json_t *node_json(tb_node *n, const tb_node_peer_status *ps, size_t k)
{
    json_t *o = json_object(), *peers = json_array();
    int bad = !o || !peers;
    if (!bad)
        bad = set(o, "node", tb_control_json_string(tb_node_name(n))) |
              set(o, "region", tb_control_json_string(tb_node_region(n))) |
              set(o, "mode", tb_control_json_string(tb_node_mode_name(tb_node_mode_of(n)))) |
              set(o, "addr", tb_control_json_string(tb_node_advertised(n)));
    for (size_t i = 0; i < k && !bad; i++)
        bad = json_array_append_new(peers, peer_json(&ps[i])) != 0;
    if (!bad) {
        bad = set(o, "peers", peers);
        peers = NULL;
    }
    tb_node_stats st;
    tb_node_get_stats(n, &st);
    if (!bad)
        bad = set(o, "broadcasts_delivered", json_integer((json_int_t)st.bcast_delivered)) |
              set(o, "messages_dropped", json_integer((json_int_t)st.msgs_bad)) |
              set(o, "budget", budget_json(&st)) |
              set(o, "certificate", tb_certwatch_status_json(tb_node_certwatch(n))) |
              members_json(n, o);
    json_decref(peers);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The object as jansson writes it, with the status_ext members spliced in before its '}'. */
static void status_json(tb_node *n, tb_control_buf *b, const tb_node_peer_status *ps, size_t k)
{
    json_t *o = node_json(n, ps, k);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        tb_control_printf(b, "error: out of memory\n");
        return;
    }
    size_t len = strlen(s);
    tb_control_printf(b, "%.*s", (int)(len - 1), s);
    free(s);
    tb_node_status_ext(n, b, 1);
    tb_control_printf(b, "}\n");
}

void tb_node_control(void *node, const char *line, tb_control_buf *out)
{
    tb_node *n = node;
    if (strcmp(line, "status") == 0 || strcmp(line, "status json") == 0) {
        tb_node_peer_status ps[STATUS_PEERS_MAX];
        size_t k = tb_node_peers(n, ps, STATUS_PEERS_MAX);
        k = k < STATUS_PEERS_MAX ? k : STATUS_PEERS_MAX;
        if (line[6])
            status_json(n, out, ps, k);
        else
            status_text(n, out, ps, k);
    } else if (strcmp(line, "status broadcasts") == 0) {
        broadcasts_text(n, out);
    } else if (strncmp(line, "broadcast ", 10) == 0) {
        uint64_t id;
        const char *text = line + 10;
        if (tb_node_broadcast(n, 0, (const uint8_t *)text, strlen(text), &id) == TB_OK)
            tb_control_printf(out, "ok %s %llu\n", tb_node_name(n), (unsigned long long)id);
        else
            tb_control_printf(out, "error: broadcast failed\n");
    } else if (!tb_node_control_ext(n, line, out)) {
        tb_control_printf(
            out,
            "error: unknown request (status, status json, status broadcasts, broadcast TEXT)\n");
    }
}
