/* The certificate lifecycle of a running node (certwatch.h). */
#include "node/certwatch.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/ca.h"
#include "certs/crl.h"
#include "node/node_internal.h"

#define TICK_S 1.0
/* File changes come in bursts (a new key, then a new certificate): read once it settles. */
#define SETTLE_S 0.3
/* ev_stat polls at this interval where inotify cannot see a change. */
#define STAT_POLL_S 2.0
#define DAY_S 86400
/* Lists from the mesh that are refused are logged at most this often. */
#define REFUSED_LOG_S 60

struct tb_certwatch {
    tb_node *n;
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    const tb_node_config *cfg;
    tb_ca *ca;
    tb_cert_pair own; /* as last taken; its key PEM rebuilds the credentials for a new list */
    tb_crl *crl;      /* the list in use, NULL when none */
    char crl_from[TB_NODE_PATH_MAX + 16];
    ev_stat w_cert, w_key, w_crl;
    ev_timer settle, tick;
    int64_t next_warn; /* real seconds of the next expiry warning in the log */
    int64_t next_refused_log;
    /* The last refusal logged for the own files and for the crl file: the same one again (a
     * file watch and a SIGHUP for one change) is logged at debug level only. */
    char own_error[TB_NODE_ERR_MAX + 64], crl_error[TB_NODE_ERR_MAX + 64];
    uint64_t reloads, reload_failures, crls_refused;
    int started, crl_missing_logged;
};

static int64_t now_s(const tb_certwatch *cw)
{
    return tb_clock_real(cw->clock) / (int64_t)TB_NS_PER_SEC;
}

static void format_time(int64_t t, char *buf, size_t len)
{
    tb_clock_format_rfc3339(t * (int64_t)TB_NS_PER_SEC, buf, (unsigned)len);
}

/* Logs a refusal at error level unless it is the one logged last for this file. */
static void refused(tb_certwatch *cw, char *last, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refused(tb_certwatch *cw, char *last, size_t cap, const char *fmt, ...)
{
    char line[TB_NODE_ERR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cw->reload_failures++;
    if (strcmp(line, last) == 0) {
        tb_log_debug(cw->log, "%s", line);
        return;
    }
    snprintf(last, cap, "%s", line);
    tb_log_error(cw->log, "%s", line);
}

static int set_credentials(tb_certwatch *cw, const tb_cert_pair *own, const tb_crl *crl)
{
    tb_quic_credentials c = {.cert_pem = (const uint8_t *)own->cert_pem,
                             .cert_len = own->cert_len,
                             .key_pem = (const uint8_t *)own->key_pem,
                             .key_len = own->key_len};
    if (crl)
        c.crl_der = tb_crl_der(crl, &c.crl_len);
    return tb_quic_endpoint_set_credentials(tb_node_endpoint(cw->n), &c);
}

/* --- the own certificate and key --- */

/* Why a freshly read pair may not replace the running one, or NULL. */
static const char *refuse_own(tb_certwatch *cw, const tb_cert_pair *p, char *buf, size_t len)
{
    tb_cert_verdict v;
    if (strcmp(p->id.name, cw->own.id.name) != 0) {
        snprintf(buf, len, "names node '%s', this node is '%s' (a new name takes a restart)",
                 p->id.name, cw->own.id.name);
        return buf;
    }
    if (strcmp(p->id.key_type, cw->own.id.key_type) != 0) {
        snprintf(buf, len, "key type %s, the running key is %s", p->id.key_type,
                 cw->own.id.key_type);
        return buf;
    }
    if (tb_ca_verify_der(cw->ca, p->der, p->der_len, now_s(cw), &v, NULL) != TB_OK) {
        snprintf(buf, len, "%s (checked against %.160s)", tb_cert_verdict_str(v), cw->cfg->ca);
        return buf;
    }
    if (tb_crl_lists(cw->crl, p->id.serial, p->id.serial_len))
        return "it is on the revocation list";
    return NULL;
}

static int reload_own(tb_certwatch *cw)
{
    tb_cert_pair p;
    char err[TB_NODE_ERR_MAX], why[256];
    if (tb_cert_pair_load(cw->cfg->cert, cw->cfg->key, &p, err, sizeof(err)) != TB_OK) {
        refused(cw, cw->own_error, sizeof(cw->own_error),
                "certificate reload: %s; the running certificate stays", err);
        return TB_ERR_INVAL;
    }
    if (memcmp(p.id.fingerprint, cw->own.id.fingerprint, sizeof(p.id.fingerprint)) == 0 &&
        p.key_len == cw->own.key_len && memcmp(p.key_pem, cw->own.key_pem, p.key_len) == 0) {
        tb_cert_pair_clear(&p);
        cw->own_error[0] = '\0';
        return TB_OK; /* unchanged */
    }
    const char *bad = refuse_own(cw, &p, why, sizeof(why));
    if (bad || set_credentials(cw, &p, cw->crl) != TB_OK) {
        refused(cw, cw->own_error, sizeof(cw->own_error),
                "certificate reload: %s: %s; the running certificate stays", cw->cfg->cert,
                bad ? bad : "not taken by the QUIC endpoint");
        tb_cert_pair_clear(&p);
        return TB_ERR_INVAL;
    }
    tb_cert_pair_clear(&cw->own);
    cw->own = p;
    cw->own_error[0] = '\0';
    cw->reloads++;
    cw->next_warn = 0; /* a renewal that is still close to expiry warns again at once */
    char until[32];
    format_time(p.id.not_after, until, sizeof(until));
    tb_log_info(cw->log, "certificate %s reloaded: valid until %s; new connections use it",
                cw->cfg->cert, until);
    /* The key first: the ALIVE announcing the new certificate is signed with it. */
    tb_node_notify_certs(cw->n, cw->own.key_pem, cw->own.key_len);
    tb_node_own_cert_changed(cw->n, &cw->own.id, cw->own.der, cw->own.der_len);
    return TB_OK;
}

/* --- the revocation list --- */

static const char *judge_revoked(void *arg, const tb_node_link_view *v)
{
    const tb_certwatch *cw = arg;
    return tb_crl_lists_cert(cw->crl, v->der, v->len) ? "certificate revoked" : NULL;
}

/* Takes crl (newer than the one in use, checked) and drops every peer it lists. */
static int apply_crl(tb_certwatch *cw, tb_crl *crl, const char *from)
{
    if (cw->started && set_credentials(cw, &cw->own, crl) != TB_OK) {
        tb_log_error(cw->log, "revocation list %llu from %s not taken by the QUIC endpoint",
                     (unsigned long long)tb_crl_number(crl), from);
        tb_crl_free(crl);
        return TB_ERR_INVAL;
    }
    tb_crl_free(cw->crl);
    cw->crl = crl;
    snprintf(cw->crl_from, sizeof(cw->crl_from), "%s", from);
    tb_log_info(cw->log, "revocation list %llu from %s: %zu certificate(s) revoked",
                (unsigned long long)tb_crl_number(crl), from, tb_crl_count(crl));
    if (tb_crl_lists(crl, cw->own.id.serial, cw->own.id.serial_len))
        tb_log_error(cw->log, "this node's own certificate %s is revoked: peers will refuse it",
                     cw->cfg->cert);
    if (cw->started) {
        tb_node_drop_peers(cw->n, judge_revoked, cw);
        tb_node_notify_certs(cw->n, NULL, 0);
    }
    return TB_OK;
}

static int newer_than_current(const tb_certwatch *cw, const tb_crl *crl)
{
    return !cw->crl || tb_crl_number(crl) > tb_crl_number(cw->crl);
}

static int reload_crl(tb_certwatch *cw)
{
    if (!cw->cfg->crl[0])
        return TB_OK;
    tb_crl *crl = NULL;
    char err[TB_NODE_ERR_MAX];
    int rc = tb_crl_from_file(cw->ca, cw->cfg->crl, &crl, err, sizeof(err));
    if (rc == TB_ERR_NOTFOUND) {
        /* Not written yet: the watch takes it when it appears. */
        if (!cw->crl_missing_logged)
            tb_log_info(cw->log, "revocation list %s: no such file (yet)", cw->cfg->crl);
        cw->crl_missing_logged = 1;
        return TB_OK;
    }
    if (rc != TB_OK) {
        refused(cw, cw->crl_error, sizeof(cw->crl_error),
                "revocation list: %s; the list in use stays", err);
        return TB_ERR_INVAL;
    }
    cw->crl_error[0] = '\0';
    if (!newer_than_current(cw, crl)) {
        if (tb_crl_number(crl) < tb_crl_number(cw->crl))
            tb_log_warn(cw->log,
                        "revocation list %s: number %llu is older than the %llu in use "
                        "(from %s); ignored",
                        cw->cfg->crl, (unsigned long long)tb_crl_number(crl),
                        (unsigned long long)tb_crl_number(cw->crl), cw->crl_from);
        tb_crl_free(crl);
        return TB_OK;
    }
    char from[sizeof(cw->crl_from)];
    snprintf(from, sizeof(from), "file %s", cw->cfg->crl);
    if (apply_crl(cw, crl, from) != TB_OK)
        return TB_ERR_INVAL;
    if (cw->started) {
        size_t len;
        const uint8_t *der = tb_crl_der(cw->crl, &len);
        if (tb_node_broadcast(cw->n, TB_NODE_APP_CRL, der, len, NULL) != TB_OK)
            tb_log_warn(cw->log, "revocation list %llu: not broadcast to the mesh",
                        (unsigned long long)tb_crl_number(cw->crl));
    }
    return TB_OK;
}

int tb_certwatch_take_crl(tb_certwatch *cw, const uint8_t *der, size_t len, const char *from)
{
    tb_crl *crl = NULL;
    const char *why = NULL;
    int rc = tb_crl_from_der(cw->ca, der, len, &crl, &why);
    if (rc == TB_OK && newer_than_current(cw, crl)) {
        char src[96];
        snprintf(src, sizeof(src), "the mesh (%s)", from);
        return apply_crl(cw, crl, src) == TB_OK ? 0 : 1;
    }
    tb_crl_free(crl);
    if (rc == TB_OK)
        return 1; /* one we have, or older: not passed on */
    cw->crls_refused++;
    int64_t now = now_s(cw);
    if (now >= cw->next_refused_log) {
        cw->next_refused_log = now + REFUSED_LOG_S;
        tb_log_warn(cw->log, "revocation list from %s refused: %s (%llu refused so far)", from,
                    why ? why : tb_strerror(rc), (unsigned long long)cw->crls_refused);
    }
    return 1;
}

void tb_certwatch_peer_connected(tb_certwatch *cw, const char *peer)
{
    if (!cw->crl)
        return;
    size_t len;
    const uint8_t *der = tb_crl_der(cw->crl, &len);
    if (tb_node_send(cw->n, peer, TB_NODE_APP_CRL, der, len) != TB_OK)
        tb_log_debug(cw->log, "peer %s: revocation list not sent", peer);
}

int tb_certwatch_revoked(const tb_certwatch *cw, const uint8_t *der, size_t len)
{
    return tb_crl_lists_cert(cw->crl, der, len);
}

int tb_certwatch_newer(tb_certwatch *cw, const char *name, int from_itself, const uint8_t *cur,
                       size_t cur_len, const uint8_t *cand, size_t cand_len)
{
    tb_cert_identity old, id;
    tb_cert_verdict v;
    if (cur_len == cand_len && memcmp(cur, cand, cur_len) == 0)
        return 0;
    if (tb_cert_identity_from_der(cur, cur_len, &old) != TB_OK)
        old.not_before = INT64_MIN; /* anything verified beats an unreadable one */
    return tb_ca_verify_der(cw->ca, cand, cand_len, now_s(cw), &v, &id) == TB_OK &&
           strcmp(id.name, name) == 0 && (from_itself || id.not_before > old.not_before) &&
           !tb_crl_lists(cw->crl, id.serial, id.serial_len);
}

/* --- timers and watches --- */

static const char *judge_expired(void *arg, const tb_node_link_view *v)
{
    const int64_t *now = arg;
    return v->not_after <= *now ? "certificate expired" : NULL;
}

static void warn_own_expiry(tb_certwatch *cw, int64_t now)
{
    int64_t left = cw->own.id.not_after - now;
    if (left > (int64_t)TB_CW_WARN_DAYS * DAY_S || now < cw->next_warn)
        return;
    cw->next_warn = now + DAY_S;
    char until[32];
    format_time(cw->own.id.not_after, until, sizeof(until));
    if (left <= 0)
        tb_log_error(cw->log,
                     "certificate %s expired at %s: peers refuse this node; renew it "
                     "(tbcert renew) and send SIGHUP",
                     cw->cfg->cert, until);
    else
        tb_log_warn(cw->log,
                    "certificate %s expires at %s (in %.1f days): renew it "
                    "(tbcert renew); SIGHUP or the file change reloads it",
                    cw->cfg->cert, until, (double)left / DAY_S);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_certwatch *cw = w->data;
    int64_t now = now_s(cw);
    tb_node_drop_peers(cw->n, judge_expired, &now);
    warn_own_expiry(cw, now);
}

static void on_settled(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)!tb_certwatch_reload(w->data); /* a refusal is logged; the old credentials stay */
}

static void on_file(struct ev_loop *loop, ev_stat *w, int revents)
{
    tb_certwatch *cw = w->data;
    ev_timer_stop(loop, &cw->settle);
    ev_timer_set(&cw->settle, SETTLE_S, 0.);
    ev_timer_start(loop, &cw->settle);
}

int tb_certwatch_reload(tb_certwatch *cw)
{
    int a = reload_crl(cw), b = reload_own(cw);
    return a == TB_OK && b == TB_OK ? TB_OK : TB_ERR_INVAL;
}

int tb_certwatch_new(tb_certwatch **out, tb_node *n, struct ev_loop *loop, const tb_log *log,
                     const tb_clock *clock, const tb_node_config *cfg)
{
    tb_certwatch *cw = calloc(1, sizeof(*cw));
    if (!cw)
        return TB_ERR_NOMEM;
    *cw = (tb_certwatch){.n = n, .loop = loop, .log = log, .clock = clock, .cfg = cfg};
    char err[TB_NODE_ERR_MAX];
    int rc = tb_ca_load_file(cfg->ca, &cw->ca, err, sizeof(err));
    if (rc == TB_OK)
        rc = tb_cert_pair_load(cfg->cert, cfg->key, &cw->own, err, sizeof(err));
    if (rc != TB_OK) {
        tb_log_error(log, "%s", err);
        tb_certwatch_free(cw);
        return rc;
    }
    if (cfg->crl[0] && reload_crl(cw) != TB_OK) {
        tb_certwatch_free(cw);
        return TB_ERR_INVAL;
    }
    ev_timer_init(&cw->settle, on_settled, SETTLE_S, 0.);
    ev_timer_init(&cw->tick, on_tick, 0., TICK_S);
    ev_stat_init(&cw->w_cert, on_file, cfg->cert, STAT_POLL_S);
    ev_stat_init(&cw->w_key, on_file, cfg->key, STAT_POLL_S);
    ev_stat_init(&cw->w_crl, on_file, cfg->crl, STAT_POLL_S);
    cw->settle.data = cw->tick.data = cw->w_cert.data = cw->w_key.data = cw->w_crl.data = cw;
    *out = cw;
    return TB_OK;
}

void tb_certwatch_start(tb_certwatch *cw)
{
    cw->started = 1;
    if (cw->crl && set_credentials(cw, &cw->own, cw->crl) != TB_OK)
        tb_log_error(cw->log, "revocation list %s: not taken by the QUIC endpoint", cw->cfg->crl);
    ev_stat_start(cw->loop, &cw->w_cert);
    ev_stat_start(cw->loop, &cw->w_key);
    if (cw->cfg->crl[0])
        ev_stat_start(cw->loop, &cw->w_crl);
    ev_timer_start(cw->loop, &cw->tick);
}

void tb_certwatch_stop(tb_certwatch *cw)
{
    if (!cw)
        return;
    ev_stat_stop(cw->loop, &cw->w_cert);
    ev_stat_stop(cw->loop, &cw->w_key);
    ev_stat_stop(cw->loop, &cw->w_crl);
    ev_timer_stop(cw->loop, &cw->settle);
    ev_timer_stop(cw->loop, &cw->tick);
    cw->started = 0;
}

void tb_certwatch_free(tb_certwatch *cw)
{
    if (!cw)
        return;
    if (cw->loop)
        tb_certwatch_stop(cw);
    tb_cert_pair_clear(&cw->own);
    tb_crl_free(cw->crl);
    tb_ca_free(cw->ca);
    free(cw);
}

/* --- status --- */

static int64_t days_left(const tb_certwatch *cw)
{
    int64_t left = cw->own.id.not_after - now_s(cw);
    return left >= 0 ? left / DAY_S : -1 - (-left - 1) / DAY_S;
}

static int warning(const tb_certwatch *cw)
{
    return cw->own.id.not_after - now_s(cw) <= (int64_t)TB_CW_WARN_DAYS * DAY_S;
}

void tb_certwatch_status_text(const tb_certwatch *cw, tb_control_buf *b)
{
    char until[32];
    format_time(cw->own.id.not_after, until, sizeof(until));
    tb_control_printf(b, "certificate not_after=%s days_left=%lld reloads=%llu failures=%llu\n",
                      until, (long long)days_left(cw), (unsigned long long)cw->reloads,
                      (unsigned long long)cw->reload_failures);
    if (warning(cw))
        tb_control_printf(b, "warning certificate %s %s: renew it (tbcert renew) and send SIGHUP\n",
                          cw->own.id.not_after <= now_s(cw) ? "expired at" : "expires at", until);
    if (cw->crl)
        tb_control_printf(b, "crl number=%llu revoked=%zu from=%s\n",
                          (unsigned long long)tb_crl_number(cw->crl), tb_crl_count(cw->crl),
                          cw->crl_from);
}

json_t *tb_certwatch_status_json(const tb_certwatch *cw)
{
    char until[32];
    format_time(cw->own.id.not_after, until, sizeof(until));
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad =
        json_object_set_new(o, "not_after", tb_control_json_string(until)) |
        json_object_set_new(o, "days_left", json_integer(days_left(cw))) |
        json_object_set_new(o, "expiry_warning", json_boolean(warning(cw))) |
        json_object_set_new(o, "reloads", json_integer((json_int_t)cw->reloads)) |
        json_object_set_new(o, "reload_failures", json_integer((json_int_t)cw->reload_failures));
    if (cw->crl)
        bad |=
            json_object_set_new(o, "crl_number", json_integer((json_int_t)tb_crl_number(cw->crl))) |
            json_object_set_new(o, "crl_revoked", json_integer((json_int_t)tb_crl_count(cw->crl)));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
