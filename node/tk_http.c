/* The time node's HTTP routes, served by the HTTP/1.1 edge (http/http.h) and to operators over
 * HTTP/3 on the mesh port (http/h3.h), both calling route() below (adr/0013): /metrics
 * (node/tk_metrics.c), /status.json (the very answer of `tbnode status --json`, node/node_status.c
 * and tk_status.c), /history.json (a source's offsets from the store, bounded) and the dashboard's
 * static files. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/h3.h"
#include "http/http.h"
#include "node/node_internal.h"
#include "node/tk_internal.h"

#ifndef TB_DASHBOARD_DIR
#define TB_DASHBOARD_DIR ""
#endif

#define HISTORY_DEFAULT_S 900
#define HISTORY_DEFAULT_POINTS 2000
#define HISTORY_MAX_POINTS 5000

/* Hands a reply buffer over as the body; a truncated one is an error, never half an answer. */
static int reply_buf(tb_control_buf *b, const char *type, tb_http_reply *out)
{
    if (b->truncated || !b->p) {
        free(b->p);
        return TB_ERR_NOMEM;
    }
    *out = (tb_http_reply){200, type, b->p, b->len};
    return TB_OK;
}

static int reply_text(unsigned status, const char *text, tb_http_reply *out)
{
    char *body = strdup(text);
    if (!body)
        return TB_ERR_NOMEM;
    *out = (tb_http_reply){status, "text/plain; charset=utf-8", body, strlen(body)};
    return TB_OK;
}

/* A decimal query argument in lo..hi, or def when absent; -1 when malformed. */
static int64_t arg_int(const tb_http_request *r, const char *key, int64_t lo, int64_t hi,
                       int64_t def)
{
    const char *s = tb_http_request_arg(r, key);
    if (!s)
        return def;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

static int kind_of(const char *s, tb_measure_kind *out)
{
    for (int k = TB_MEASURE_NTP; k <= TB_MEASURE_PEER && s; k++)
        if (strcmp(s, tb_measure_kind_name(k)) == 0) {
            *out = (tb_measure_kind)k;
            return TB_OK;
        }
    return TB_ERR_INVAL;
}

typedef struct history_ctx {
    const tb_timekeeper *tk;
    const tk_view *view;
    json_t *points;
} history_ctx;

static int history_row(void *arg, const tb_store_row *row)
{
    history_ctx *c = arg;
    const char *region = "";
    for (size_t i = 0; i < c->view->n_xp; i++)
        if (strcmp(c->view->xp[i].name, row->origin) == 0)
            region = c->view->xp[i].region;
    json_t *p =
        json_pack("{s:o, s:o, s:I, s:I, s:I}", "origin", tb_control_json_string(row->origin),
                  "region", tb_control_json_string(region), "t_ns", (json_int_t)row->real_ns,
                  "offset_ns", (json_int_t)row->offset_ns, "error_ns", (json_int_t)row->bound_ns);
    return p && json_array_append_new(c->points, p) == 0 ? 0 : TB_ERR_NOMEM;
}

/* /history.json?kind=ntp&source=NAME[&seconds=900][&points=2000]: the newest points measurements
 * of the source, every origin's, as each origin measured it (its own frame), oldest first. */
static int history(const tb_timekeeper *tk, const tb_http_request *r, tb_http_reply *out)
{
    tb_measure_kind kind;
    const char *source = tb_http_request_arg(r, "source");
    int64_t max_s = tk->tc.retention_s;
    int64_t secs =
        arg_int(r, "seconds", 1, max_s, HISTORY_DEFAULT_S < max_s ? HISTORY_DEFAULT_S : max_s);
    int64_t points = arg_int(r, "points", 1, HISTORY_MAX_POINTS, HISTORY_DEFAULT_POINTS);
    if (kind_of(tb_http_request_arg(r, "kind"), &kind) != TB_OK || !source || !source[0] ||
        strlen(source) > TB_MEASURE_MAX_TEXT || secs < 0 || points < 0)
        return reply_text(400,
                          "usage: /history.json?kind=ntp|roughtime|peer&source=NAME"
                          "[&seconds=1..retention][&points=1..5000]\n",
                          out);
    tk_view view;
    if (tk_view_open(tk, &view) != TB_OK)
        return TB_ERR_NOMEM;
    int64_t since = view.now_ns - secs * (int64_t)TB_NS_PER_SEC;
    history_ctx c = {tk, &view, json_array()};
    int rc = c.points ? tb_store_history(tk->store, kind, source, since, (unsigned)points,
                                         history_row, &c)
                      : TB_ERR_NOMEM;
    tk_view_close(&view);
    json_t *o = rc == TB_OK ? json_pack("{s:s, s:o, s:I, s:o}", "kind", tb_measure_kind_name(kind),
                                        "source", tb_control_json_string(source), "since_ns",
                                        (json_int_t)since, "points", c.points)
                            : (json_decref(c.points), NULL);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return rc == TB_OK ? TB_ERR_NOMEM : rc;
    *out = (tb_http_reply){200, "application/json", s, strlen(s)};
    return TB_OK;
}

static int route(void *arg, const tb_http_request *r, tb_http_reply *out)
{
    tb_timekeeper *tk = arg;
    const char *path = tb_http_request_path(r);
    tb_control_buf b = {0};
    if (strcmp(path, "/metrics") == 0) {
        tk_metrics(tk, &b);
        return reply_buf(&b, "text/plain; version=0.0.4; charset=utf-8", out);
    }
    if (strcmp(path, "/status.json") == 0) {
        tb_node_control(tk->node, "status json", &b);
        return reply_buf(&b, "application/json", out);
    }
    if (strcmp(path, "/status") == 0) { /* the text of `tbnode status`, for --remote */
        tb_node_control(tk->node, "status", &b);
        return reply_buf(&b, "text/plain; charset=utf-8", out);
    }
    if (strcmp(path, "/history.json") == 0)
        return history(tk, r, out);
    return TB_ERR_NOTFOUND;
}

/* HTTP/3 for operators beside the mesh on its own port: the endpoint accepts ALPN h3 from
 * operator certificates only (quic/app.h). */
static int h3_open(tb_timekeeper *tk)
{
    tb_quic_endpoint *ep = tb_node_endpoint(tk->node);
    if (!ep)
        return TB_OK;
    int rc = tb_h3_new(&tk->h3, tk->log, tk->clock, route, tk);
    if (rc == TB_OK)
        tb_quic_endpoint_set_app(ep, tb_h3_ops(tk->h3));
    return rc;
}

int tk_http_open(tb_timekeeper *tk)
{
    char err[TB_NODE_ERR_MAX];
    int h3 = h3_open(tk);
    if (h3 != TB_OK)
        return h3;
    tb_http_config hc;
    int rc = tb_http_config_parse(tb_node_config_section(tk->cfg, "http"), TB_DASHBOARD_DIR, &hc,
                                  err, sizeof(err));
    if (rc != TB_OK) {
        tb_log_error(tk->log, "%s", err);
        return rc;
    }
    if (!hc.enabled)
        return TB_OK;
    return tb_http_new(&tk->http, tk->loop, tk->log, &hc, route, tk);
}
