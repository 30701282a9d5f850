#include "sources/nts_session.h"

#include <errno.h>
#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "resolve/resolver.h"

#define EXPORTER_LABEL "EXPORTER-network-time-security"

struct tb_nts_trust {
    gnutls_certificate_credentials_t creds;
};

int tb_nts_trust_create(const char *ca_file, tb_nts_trust **out, char *err, size_t errlen)
{
    tb_nts_trust *t = calloc(1, sizeof(*t));
    if (!t)
        return TB_ERR_NOMEM;
    if (gnutls_certificate_allocate_credentials(&t->creds) < 0) {
        free(t);
        return TB_ERR_NOMEM;
    }
    bool system = !ca_file || !ca_file[0];
    int n = system ? gnutls_certificate_set_x509_system_trust(t->creds)
                   : gnutls_certificate_set_x509_trust_file(t->creds, ca_file, GNUTLS_X509_FMT_PEM);
    if (n <= 0) {
        snprintf(err, errlen, "%s: %s", system ? "system trust store" : ca_file,
                 n < 0 ? gnutls_strerror(n) : "no certificate in it");
        tb_nts_trust_destroy(t);
        return TB_ERR_NOTFOUND;
    }
    *out = t;
    return 0;
}

void tb_nts_trust_destroy(tb_nts_trust *t)
{
    if (!t)
        return;
    gnutls_certificate_free_credentials(t->creds);
    free(t);
}

typedef enum phase { RESOLVING, CONNECTING, HANDSHAKE, SENDING, READING, DONE } phase;

struct tb_nts_session {
    struct ev_loop *loop;
    tb_resolver *resolver;
    uint64_t ticket;
    tb_nts_session_params p;
    char host[TB_SOURCE_NAME_MAX];
    char name[TB_SOURCE_NAME_MAX];
    char where[TB_ADDR_TEXT_MAX];
    phase ph;
    int fd;
    gnutls_session_t tls;
    ev_io io;
    ev_timer timer;
    uint8_t req[64];
    size_t req_len;
    uint8_t resp[TB_NTS_KE_RESPONSE_MAX];
    size_t resp_len;
    tb_nts_session_cb cb;
    void *arg;
};

static void stop_io(tb_nts_session *s)
{
    ev_io_stop(s->loop, &s->io);
    ev_timer_stop(s->loop, &s->timer);
    if (s->ph == RESOLVING && s->resolver)
        s->resolver->cancel(s->resolver, s->ticket);
    if (s->tls) {
        gnutls_deinit(s->tls);
        s->tls = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void finish(tb_nts_session *s, int err, const char *why, const tb_nts_ke_response *resp,
                   const tb_nts_keys *keys)
{
    stop_io(s);
    s->ph = DONE;
    char msg[TB_ADDR_TEXT_MAX + 512];
    snprintf(msg, sizeof(msg), "NTS-KE with %s: %.480s", s->where, why);
    s->cb(s->arg, err, err < 0 ? msg : "", resp, keys);
}

static void wait_for(tb_nts_session *s, int events)
{
    ev_io_stop(s->loop, &s->io);
    ev_io_set(&s->io, s->fd, events);
    ev_io_start(s->loop, &s->io);
}

static void wait_tls(tb_nts_session *s)
{
    wait_for(s, gnutls_record_get_direction(s->tls) ? EV_WRITE : EV_READ);
}

static int export_keys(tb_nts_session *s, tb_nts_keys *k)
{
    /* RFC 8915 §5.1: context = protocol id ‖ AEAD id ‖ 0 (client to server) or 1. */
    uint8_t ctx[5] = {0, TB_NTS_PROTO_NTPV4, 0, TB_NTS_AEAD_AES_SIV_CMAC_256, 0};
    int rc = gnutls_prf_rfc5705(s->tls, strlen(EXPORTER_LABEL), EXPORTER_LABEL, sizeof(ctx),
                                (const char *)ctx, sizeof(k->c2s), (char *)k->c2s);
    ctx[4] = 1;
    if (rc == 0)
        rc = gnutls_prf_rfc5705(s->tls, strlen(EXPORTER_LABEL), EXPORTER_LABEL, sizeof(ctx),
                                (const char *)ctx, sizeof(k->s2c), (char *)k->s2c);
    return rc < 0 ? TB_ERR_CRYPTO : 0;
}

/* Returns false to read more; true once finished (the callback may have freed s). */
static bool got_response(tb_nts_session *s)
{
    tb_nts_ke_response *resp = malloc(sizeof(*resp));
    if (!resp) {
        finish(s, TB_ERR_NOMEM, "out of memory", NULL, NULL);
        return true;
    }
    const char *why = "";
    int err = tb_nts_ke_response_parse(s->resp, s->resp_len, resp, &why);
    bool done = err != TB_ERR_TRUNCATED;
    if (!done)
        goto out;
    char msg[160];
    tb_nts_keys keys;
    if (err == TB_ERR_VERIFY) {
        snprintf(msg, sizeof(msg), "server error %d (%s)", resp->error,
                 tb_nts_ke_error_name(resp->error));
        finish(s, err, msg, NULL, NULL);
    } else if (err < 0) {
        snprintf(msg, sizeof(msg), "bad response: %s", why);
        finish(s, err, msg, NULL, NULL);
    } else if (export_keys(s, &keys) < 0) {
        finish(s, TB_ERR_CRYPTO, "cannot export the NTP keys", NULL, NULL);
    } else {
        /* Best effort close_notify; the socket is closed right after either way. */
        (void)gnutls_bye(s->tls, GNUTLS_SHUT_WR);
        finish(s, 0, "", resp, &keys);
        sodium_memzero(&keys, sizeof(keys));
    }
out:
    sodium_memzero(resp, sizeof(*resp));
    free(resp);
    return done;
}

static void do_read(tb_nts_session *s)
{
    for (;;) {
        if (s->resp_len == sizeof(s->resp)) {
            finish(s, TB_ERR_TOO_BIG, "response longer than 16 KiB", NULL, NULL);
            return;
        }
        ssize_t n =
            gnutls_record_recv(s->tls, s->resp + s->resp_len, sizeof(s->resp) - s->resp_len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            wait_tls(s);
            return;
        }
        if (n == 0) {
            finish(s, TB_ERR_TRUNCATED, "server closed before the end of its response", NULL, NULL);
            return;
        }
        if (n < 0) {
            finish(s, TB_ERR_IO, gnutls_strerror((int)n), NULL, NULL);
            return;
        }
        s->resp_len += (size_t)n;
        if (got_response(s))
            return; /* the session may be gone */
    }
}

static void do_send(tb_nts_session *s)
{
    s->ph = SENDING;
    ssize_t n = gnutls_record_send(s->tls, s->req, s->req_len);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        wait_tls(s);
        return;
    }
    if (n != (ssize_t)s->req_len) {
        finish(s, TB_ERR_IO, n < 0 ? gnutls_strerror((int)n) : "short write", NULL, NULL);
        return;
    }
    s->ph = READING;
    do_read(s);
}

/* The verification status in a few words (GnuTLS's own text does not fit a status line). */
static void cert_problem(unsigned status, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *text;
    } why[] = {
        {GNUTLS_CERT_UNEXPECTED_OWNER, "name does not match"},
        {GNUTLS_CERT_EXPIRED, "expired"},
        {GNUTLS_CERT_NOT_ACTIVATED, "not yet valid"},
        {GNUTLS_CERT_SIGNER_NOT_FOUND, "issuer unknown"},
        {GNUTLS_CERT_SIGNER_NOT_CA, "issuer is not a CA"},
        {GNUTLS_CERT_REVOKED, "revoked"},
        {GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature"},
        {GNUTLS_CERT_INSECURE_ALGORITHM, "insecure algorithm"},
        {GNUTLS_CERT_PURPOSE_MISMATCH, "not for TLS servers"},
    };
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof(why) / sizeof(why[0]) && used < len; i++) {
        if (!(status & why[i].bit))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", why[i].text);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, len, "not trusted (status 0x%x)", status);
}

static void handshake_failed(tb_nts_session *s, int rc)
{
    char msg[TB_SOURCE_NAME_MAX + 256], problem[160];
    if (rc != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        snprintf(msg, sizeof(msg), "TLS handshake: %s", gnutls_strerror(rc));
        finish(s, TB_ERR_IO, msg, NULL, NULL);
        return;
    }
    cert_problem(gnutls_session_get_verify_cert_status(s->tls), problem, sizeof(problem));
    snprintf(msg, sizeof(msg), "certificate for %s refused: %s", s->name, problem);
    finish(s, TB_ERR_VERIFY, msg, NULL, NULL);
}

static void do_handshake(tb_nts_session *s)
{
    int rc = gnutls_handshake(s->tls);
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        wait_tls(s);
        return;
    }
    if (rc < 0) {
        handshake_failed(s, rc);
        return;
    }
    gnutls_datum_t alpn;
    if (gnutls_protocol_get_version(s->tls) != GNUTLS_TLS1_3) {
        finish(s, TB_ERR_UNSUPPORTED, "server did not speak TLS 1.3", NULL, NULL);
        return;
    }
    if (gnutls_alpn_get_selected_protocol(s->tls, &alpn) < 0 ||
        alpn.size != strlen(TB_NTS_KE_ALPN) || memcmp(alpn.data, TB_NTS_KE_ALPN, alpn.size) != 0) {
        finish(s, TB_ERR_UNSUPPORTED, "server did not select ALPN ntske/1", NULL, NULL);
        return;
    }
    do_send(s);
}

static int setup_tls(tb_nts_session *s)
{
    gnutls_datum_t alpn = {.data = (unsigned char *)(uintptr_t)TB_NTS_KE_ALPN,
                           .size = (unsigned)strlen(TB_NTS_KE_ALPN)};
    tb_addr probe;
    bool literal = tb_addr_numeric(s->name, 0, &probe) == 0;
    if (gnutls_init(&s->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0)
        return TB_ERR_NOMEM;
    if (gnutls_priority_set_direct(s->tls, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) < 0 ||
        gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, s->p.trust->creds) < 0 ||
        gnutls_alpn_set_protocols(s->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
        return TB_ERR_CRYPTO;
    /* SNI carries names only (RFC 6066); an address is still checked against the IP SANs. */
    if (!literal && gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, s->name, strlen(s->name)) < 0)
        return TB_ERR_CRYPTO;
    gnutls_session_set_verify_cert(s->tls, s->name, 0);
    gnutls_transport_set_int(s->tls, s->fd);
    return 0;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_nts_session *s = w->data;
    (void)loop;
    (void)revents;
    if (s->ph == CONNECTING) {
        int e = 0;
        socklen_t elen = sizeof(e);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
            e = errno;
        if (e != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "connect: %s", strerror(e));
            finish(s, TB_ERR_IO, msg, NULL, NULL);
            return;
        }
        if (setup_tls(s) < 0) {
            finish(s, TB_ERR_CRYPTO, "cannot set up TLS", NULL, NULL);
            return;
        }
        s->ph = HANDSHAKE;
    }
    switch (s->ph) {
    case HANDSHAKE:
        do_handshake(s);
        break;
    case SENDING:
        do_send(s);
        break;
    case READING:
        do_read(s);
        break;
    default:
        break;
    }
}

static void connect_to(tb_nts_session *s, const tb_addr *a)
{
    tb_addr_format(a, s->where, sizeof(s->where));
    s->ph = CONNECTING;
    s->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0 ||
        (connect(s->fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
        finish(s, TB_ERR_IO, msg, NULL, NULL);
        return;
    }
    wait_for(s, EV_WRITE);
}

static void resolved(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    tb_nts_session *s = arg;
    s->ph = CONNECTING; /* nothing to cancel any more */
    if (err < 0 || n == 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "cannot resolve: %s", why ? why : tb_strerror(err));
        finish(s, err < 0 ? err : TB_ERR_NOTFOUND, msg, NULL, NULL);
        return;
    }
    connect_to(s, &addrs[0]);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_nts_session *s = w->data;
    (void)loop;
    (void)revents;
    static const char *const what[] = {"resolving", "connecting",           "in the TLS handshake",
                                       "sending",   "reading the response", "done"};
    char msg[96];
    snprintf(msg, sizeof(msg), "timed out %s", what[s->ph]);
    finish(s, TB_ERR_TIMEOUT, msg, NULL, NULL);
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents);

int tb_nts_session_start(const tb_source_env *env, const tb_nts_session_params *p,
                         tb_nts_session_cb cb, void *arg, tb_nts_session **out)
{
    if (!p->host || !p->trust || p->port == 0)
        return TB_ERR_INVAL;
    tb_nts_session *s = calloc(1, sizeof(*s));
    if (!s)
        return TB_ERR_NOMEM;
    s->loop = env->loop;
    s->resolver = env->resolver;
    s->p = *p;
    s->fd = -1;
    s->cb = cb;
    s->arg = arg;
    snprintf(s->host, sizeof(s->host), "%s", p->host);
    snprintf(s->name, sizeof(s->name), "%s",
             p->server_name && p->server_name[0] ? p->server_name : p->host);
    snprintf(s->where, sizeof(s->where), "%s:%u", p->host, (unsigned)p->port);
    int err = tb_nts_ke_request_write(s->req, sizeof(s->req), &s->req_len);
    if (err < 0) {
        free(s);
        return err;
    }
    ev_io_init(&s->io, io_cb, -1, 0);
    s->io.data = s;
    /* The timer first fires at once to begin outside start (so cb never runs inside it),
     * then serves as the deadline. */
    ev_timer_init(&s->timer, kick_cb, 0.0, 0.0);
    s->timer.data = s;
    ev_timer_start(s->loop, &s->timer);
    s->ph = RESOLVING;
    *out = s;
    return 0;
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    tb_nts_session *s = w->data;
    (void)revents;
    ev_timer_stop(loop, w);
    ev_timer_init(w, timeout_cb, (double)s->p.timeout_ns / 1e9, 0.0);
    ev_timer_start(loop, w);
    tb_addr a;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)s->p.port);
    if (tb_addr_numeric(s->host, s->p.port, &a) == 0) {
        s->ph = CONNECTING;
        connect_to(s, &a);
        return;
    }
    if (!s->resolver ||
        s->resolver->resolve(s->resolver, s->host, port, resolved, s, &s->ticket) < 0) {
        s->ph = CONNECTING;
        finish(s, TB_ERR_NOTFOUND, "a name and no resolver to resolve it", NULL, NULL);
    }
}

void tb_nts_session_destroy(tb_nts_session *s)
{
    if (!s)
        return;
    if (s->ph != DONE)
        stop_io(s);
    sodium_memzero(s->resp, sizeof(s->resp));
    free(s);
}
