#include "node/service.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "crosscheck/crosscheck.h"
#include "node/node.h"

/* Verdict kinds counted in STATUS (crosscheck.h: the last one is TB_XC_UNSYNCHRONISED). */
#define VERDICT_KINDS (TB_XC_UNSYNCHRONISED + 1)

struct tb_service {
    struct ev_loop *loop;
    const tb_log *log;
    tb_timekeeper *tk;
    ev_timer timer;
    int active; /* NOTIFY_SOCKET is set */
    char last[TB_SERVICE_STATUS_MAX];
};

/* Appends to buf at *used, never past len; a cut line still ends in '\0'. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    if (*used >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = (size_t)n >= len - *used ? len : *used + (size_t)n;
}

void tb_service_status_text(tb_timekeeper *tk, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    const tb_node *node = tb_timekeeper_node(tk);
    size_t known = tb_node_peers(node, NULL, 0);
    append(buf, len, &used, "%zu/%zu peers connected", tb_node_connected_count(node), known);
    const tb_xc_result *r = tb_timekeeper_result(tk);
    size_t count[VERDICT_KINDS] = {0};
    for (size_t i = 0; i < r->n_verdicts; i++) {
        if ((unsigned)r->verdicts[i].verdict < VERDICT_KINDS)
            count[r->verdicts[i].verdict]++;
    }
    append(buf, len, &used, "; %zu sources", r->n_verdicts);
    const char *sep = ": ";
    for (int v = TB_XC_OK; v < VERDICT_KINDS; v++) {
        if (count[v]) {
            append(buf, len, &used, "%s%zu %s", sep, count[v], tb_xc_verdict_name(v));
            sep = ", ";
        }
    }
    /* The sources that need a look, by name, as far as the line allows (warming up is not
     * a finding yet). */
    sep = "; not ok: ";
    for (size_t i = 0; i < r->n_verdicts; i++) {
        const tb_xc_verdict *v = &r->verdicts[i];
        if (v->verdict == TB_XC_OK || v->verdict == TB_XC_WARMING_UP)
            continue;
        append(buf, len, &used, "%s%.64s (%s)", sep, v->source, tb_xc_verdict_name(v->verdict));
        sep = ", ";
    }
}

static void send_status(tb_service *s)
{
    char line[TB_SERVICE_STATUS_MAX];
    tb_service_status_text(s->tk, line, sizeof(line));
    if (strcmp(line, s->last) == 0)
        return;
    memcpy(s->last, line, sizeof(line));
    /* Names come from the config and from peers: one line, no '\n' that would start a new
     * assignment in the notify message. */
    for (char *c = line; *c; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    if (sd_notifyf(0, "STATUS=%s", line) < 0)
        tb_log_debug(s->log, "sd_notify STATUS failed");
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    send_status(w->data);
}

int tb_service_new(tb_service **out, struct ev_loop *loop, const tb_log *log)
{
    tb_service *s = calloc(1, sizeof(*s));
    if (!s)
        return TB_ERR_NOMEM;
    s->loop = loop;
    s->log = log;
    const char *sock = getenv("NOTIFY_SOCKET");
    s->active = sock && sock[0];
    ev_timer_init(&s->timer, on_timer, TB_SERVICE_STATUS_INTERVAL_S, TB_SERVICE_STATUS_INTERVAL_S);
    s->timer.data = s;
    *out = s;
    return TB_OK;
}

void tb_service_ready(tb_service *s, tb_timekeeper *tk)
{
    if (!s->active)
        return;
    s->tk = tk;
    int rc = sd_notify(0, "READY=1");
    if (rc < 0)
        tb_log_warn(s->log, "cannot tell systemd the node is ready (NOTIFY_SOCKET): %s",
                    strerror(-rc));
    send_status(s);
    ev_timer_start(s->loop, &s->timer);
}

void tb_service_stopping(tb_service *s)
{
    if (!s->active)
        return;
    ev_timer_stop(s->loop, &s->timer);
    s->tk = NULL;
    if (sd_notify(0, "STOPPING=1\nSTATUS=stopping") < 0)
        tb_log_debug(s->log, "sd_notify STOPPING failed");
}

void tb_service_free(tb_service *s)
{
    if (!s)
        return;
    ev_timer_stop(s->loop, &s->timer);
    free(s);
}
