/* GnuTLS backend of quic/tls.h: the only file that talks to GnuTLS for the handshake. */
#include "quic/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "certs/identity.h"
#include "quic/app.h"

#define PRIORITY                                                                                   \
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"           \
    "+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"      \
    "+GROUP-SECP384R1"

#define TLS_ALERT_CERTIFICATE_REQUIRED 116
#define TLS_ALERT_NO_APPLICATION_PROTOCOL 120

/* GnuTLS keeps a pointer to the credentials in every session it was given to: each session
 * holds a reference, so new credentials (a renewed certificate, a new revocation list) can
 * replace the endpoint's while handshakes under way finish with the old ones. */
typedef struct tls_cred {
    gnutls_certificate_credentials_t cred;
    unsigned refs;
} tls_cred;

struct tb_quic_tls_ctx {
    tls_cred *cur;
    gnutls_priority_t priority; /* parsed once, shared by every session */
    gnutls_datum_t ca;          /* the CA file as read at creation, for every new credential */
    const tb_log *log;
};

struct tb_quic_tls {
    /* gnutls_session_get_ptr must yield an ngtcp2_crypto_conn_ref: this one forwards to the
     * connection's and lets our callbacks find their tb_quic_tls through user_data. */
    ngtcp2_crypto_conn_ref ref;
    ngtcp2_crypto_conn_ref *outer;
    gnutls_session_t session;
    tls_cred *cred;
    int server;
    int h3; /* client: offers h3; server: accepts it (then is_h3 once chosen) */
    int is_h3;
    char expected[TB_QUIC_NAME_MAX];
    tb_quic_refusal refusal;
    char detail[160];
    tb_quic_peer id;
    int have_id;
    uint8_t *der; /* the verified peer certificate, for on_connected */
    size_t der_len;
};

static ngtcp2_conn *forward_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    tb_quic_tls *t = ref->user_data;
    return t->outer->get_conn(t->outer);
}

static tb_quic_tls *tls_of(gnutls_session_t s)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
    return ref->user_data;
}

static int refuse(tb_quic_tls *t, tb_quic_refusal r, const char *detail)
{
    if (t->refusal == TB_QUIC_REFUSE_NONE) {
        t->refusal = r;
        snprintf(t->detail, sizeof(t->detail), "%s", detail);
    }
    return -1;
}

static void cred_unref(tls_cred *c)
{
    if (c && --c->refs == 0) {
        gnutls_certificate_free_credentials(c->cred);
        free(c);
    }
}

/* A credential with the mesh CA as its only trust anchor: the system store is never loaded. */
static int cred_new(tb_quic_tls_ctx *ctx, tls_cred **out)
{
    tls_cred *c = calloc(1, sizeof(*c));
    if (!c || gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        free(c);
        return TB_ERR_NOMEM;
    }
    c->refs = 1;
    int rv = gnutls_certificate_set_x509_trust_mem(c->cred, &ctx->ca, GNUTLS_X509_FMT_PEM);
    if (rv <= 0) {
        cred_unref(c);
        return TB_ERR_INVAL;
    }
    *out = c;
    return TB_OK;
}

static void cred_set(tb_quic_tls_ctx *ctx, tls_cred *c)
{
    cred_unref(ctx->cur);
    ctx->cur = c;
}

int tb_quic_tls_ctx_create(tb_quic_tls_ctx **out, const char *cert_file, const char *key_file,
                           const char *ca_file, const tb_log *log)
{
    if (!ca_file || !cert_file != !key_file) {
        tb_log_error(log, "quic: the CA file is required, and cert and key files go together");
        return TB_ERR_INVAL;
    }
    tb_quic_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return TB_ERR_NOMEM;
    ctx->log = log;
    int rv = gnutls_load_file(ca_file, &ctx->ca);
    tls_cred *c = NULL;
    if (rv == 0 && (rv = cred_new(ctx, &c)) == TB_ERR_NOMEM) {
        tb_quic_tls_ctx_free(ctx);
        return rv;
    }
    if (rv != 0) {
        tb_log_error(log, "quic: cannot load CA file %s: %s", ca_file,
                     rv < 0 && rv != TB_ERR_INVAL ? gnutls_strerror(rv) : "no certificate in it");
        tb_quic_tls_ctx_free(ctx);
        return TB_ERR_INVAL;
    }
    cred_set(ctx, c);
    if (cert_file)
        rv =
            gnutls_certificate_set_x509_key_file(c->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        tb_log_error(log, "quic: cannot load certificate %s with key %s: %s", cert_file, key_file,
                     gnutls_strerror(rv));
        tb_quic_tls_ctx_free(ctx);
        return TB_ERR_INVAL;
    }
    rv = gnutls_priority_init(&ctx->priority, PRIORITY, NULL);
    if (rv < 0) {
        tb_log_error(log, "quic: TLS priority string rejected: %s", gnutls_strerror(rv));
        tb_quic_tls_ctx_free(ctx);
        return TB_ERR_CRYPTO;
    }
    *out = ctx;
    return TB_OK;
}

int tb_quic_tls_ctx_set(tb_quic_tls_ctx *ctx, const tb_quic_credentials *in)
{
    tls_cred *c = NULL;
    int rc = cred_new(ctx, &c);
    if (rc != TB_OK)
        return rc;
    gnutls_datum_t cert = {(unsigned char *)(uintptr_t)in->cert_pem, (unsigned)in->cert_len};
    gnutls_datum_t key = {(unsigned char *)(uintptr_t)in->key_pem, (unsigned)in->key_len};
    int rv = gnutls_certificate_set_x509_key_mem(c->cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        tb_log_error(ctx->log, "quic: new certificate and key not taken: %s", gnutls_strerror(rv));
        cred_unref(c);
        return TB_ERR_INVAL;
    }
    /* The caller checked the list against the CA; GnuTLS then refuses every certificate it
     * lists (GNUTLS_CERT_REVOKED), whatever its dates. */
    gnutls_datum_t crl = {(unsigned char *)(uintptr_t)in->crl_der, (unsigned)in->crl_len};
    if (in->crl_der &&
        (rv = gnutls_certificate_set_x509_crl_mem(c->cred, &crl, GNUTLS_X509_FMT_DER)) != 1) {
        tb_log_error(ctx->log, "quic: revocation list not taken: %s",
                     rv < 0 ? gnutls_strerror(rv) : "no CRL in it");
        cred_unref(c);
        return TB_ERR_INVAL;
    }
    cred_set(ctx, c);
    return TB_OK;
}

void tb_quic_tls_ctx_free(tb_quic_tls_ctx *ctx)
{
    if (!ctx)
        return;
    cred_unref(ctx->cur);
    if (ctx->priority)
        gnutls_priority_deinit(ctx->priority);
    gnutls_free(ctx->ca.data);
    free(ctx);
}

static int has_purpose(gnutls_x509_crt_t crt, const char *oid)
{
    for (unsigned i = 0; i < 32; i++) {
        char buf[128];
        size_t size = sizeof(buf);
        int rv = gnutls_x509_crt_get_key_purpose_oid(crt, i, buf, &size, NULL);
        if (rv < 0)
            return 0;
        if (strcmp(buf, oid) == 0)
            return 1;
    }
    return 0;
}

/* The key purpose for this direction, then the identity by the mesh profile (certs/, adr/0004).
 * The certificate is already verified against the mesh CA. */
static int read_identity(tb_quic_tls *t, const gnutls_datum_t *der, const char *purpose)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return refuse(t, TB_QUIC_REFUSE_TLS, "out of memory");
    int ok = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0;
    /* A CA certificate (the mesh CA's own, or one it signed) is no node, whatever it carries. */
    int is_ca = ok && gnutls_x509_crt_get_ca_status(crt, NULL) > 0;
    ok = ok && has_purpose(crt, purpose);
    gnutls_x509_crt_deinit(crt);
    if (is_ca)
        return refuse(t, TB_QUIC_REFUSE_IDENTITY,
                      "peer certificate refused: it is a CA certificate");
    /* GnuTLS accepts a certificate with no EKU for any purpose; the mesh profile always has
     * one, so its absence is refused too. */
    if (!ok)
        return refuse(t, TB_QUIC_REFUSE_PURPOSE,
                      t->server ? "certificate lacks clientAuth" : "certificate lacks serverAuth");
    tb_cert_identity id;
    /* An operator may query a node over h3 (adr/0013), never join the mesh. */
    if (tb_cert_operator_der(der->data, der->size, &id, NULL) == TB_OK)
        return refuse(t, TB_QUIC_REFUSE_IDENTITY,
                      "peer certificate refused: an operator certificate, not a node's");
    int rv = tb_cert_identity_from_der(der->data, der->size, &id);
    if (rv != TB_OK || id.is_ca) {
        char detail[160];
        snprintf(detail, sizeof(detail), "certificate breaks the node profile: %s",
                 rv != TB_OK ? tb_strerror(rv) : "it is a CA");
        return refuse(t, TB_QUIC_REFUSE_IDENTITY, detail);
    }
    memset(&t->id, 0, sizeof(t->id));
    snprintf(t->id.name, sizeof(t->id.name), "%s", id.name);
    snprintf(t->id.region, sizeof(t->id.region), "%s", id.region);
    memcpy(t->id.fingerprint, id.fingerprint, sizeof(t->id.fingerprint));
    t->id.not_after = id.not_after;
    free(t->der);
    t->der = malloc(der->size);
    if (!t->der)
        return refuse(t, TB_QUIC_REFUSE_TLS, "out of memory");
    memcpy(t->der, der->data, der->size);
    t->der_len = der->size;
    t->have_id = 1;
    return 0;
}

/* An h3 client must hold an operator certificate of the mesh (adr/0004): a node certificate,
 * however valid, is refused here, as an operator certificate is refused as a mesh peer. */
static int read_operator(tb_quic_tls *t, const gnutls_datum_t *der)
{
    tb_cert_identity id;
    const char *why = NULL;
    if (tb_cert_operator_der(der->data, der->size, &id, &why) != TB_OK) {
        char detail[160];
        snprintf(detail, sizeof(detail), "h3 needs an operator certificate: %s",
                 why ? why : "unreadable");
        return refuse(t, TB_QUIC_REFUSE_IDENTITY, detail);
    }
    memset(&t->id, 0, sizeof(t->id));
    snprintf(t->id.name, sizeof(t->id.name), "%s", id.name);
    memcpy(t->id.fingerprint, id.fingerprint, sizeof(t->id.fingerprint));
    t->id.not_after = id.not_after;
    t->have_id = 1;
    return 0;
}

static tb_quic_refusal status_refusal(unsigned status)
{
    if (status & GNUTLS_CERT_REVOKED)
        return TB_QUIC_REFUSE_REVOKED;
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
        return TB_QUIC_REFUSE_UNTRUSTED;
    if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
        return TB_QUIC_REFUSE_EXPIRED;
    if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
        return TB_QUIC_REFUSE_PURPOSE;
    return TB_QUIC_REFUSE_UNTRUSTED;
}

/* "peer certificate refused: " and GnuTLS's own words for the verification status. */
static void status_text(unsigned status, char *out, size_t outlen)
{
    gnutls_datum_t txt = {0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0) {
        snprintf(out, outlen, "peer certificate refused: %s", (const char *)txt.data);
        gnutls_free(txt.data);
    } else {
        snprintf(out, outlen, "peer certificate refused (status 0x%x)", status);
    }
}

/* Runs where gnutls_session_set_verify_cert2 would: the same verification (the mesh CA, the key
 * purpose), plus the node identity and the expected name, recording why a peer is refused. */
static int verify_peer(gnutls_session_t s)
{
    tb_quic_tls *t = tls_of(s);
    const char *purpose = t->server ? GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER;
    gnutls_typed_vdata_st vd = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                .data = (unsigned char *)(uintptr_t)purpose};
    unsigned status = 0;
    int rv = gnutls_certificate_verify_peers(s, &vd, 1, &status);
    if (rv == GNUTLS_E_NO_CERTIFICATE_FOUND)
        return refuse(t, TB_QUIC_REFUSE_NO_CERT, "peer sent no certificate");
    if (rv < 0)
        return refuse(t, TB_QUIC_REFUSE_TLS, gnutls_strerror(rv));
    if (status) {
        char detail[160];
        status_text(status, detail, sizeof(detail));
        return refuse(t, status_refusal(status), detail);
    }
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0)
        return refuse(t, TB_QUIC_REFUSE_NO_CERT, "peer sent no certificate");
    if (t->server && t->is_h3)
        return read_operator(t, &certs[0]);
    if (read_identity(t, &certs[0], purpose) < 0)
        return -1;
    if (t->expected[0] && strcmp(t->expected, t->id.name) != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "peer is \"%s\", expected \"%s\"", t->id.name,
                 t->expected);
        return refuse(t, TB_QUIC_REFUSE_NAME, detail);
    }
    return 0;
}

static int is_alpn(const gnutls_datum_t *sel, const char *proto)
{
    return sel->size == strlen(proto) && memcmp(sel->data, proto, sel->size) == 0;
}

static int alpn_hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
                     const gnutls_datum_t *msg)
{
    tb_quic_tls *t = tls_of(s);
    gnutls_datum_t sel;
    int chosen = gnutls_alpn_get_selected_protocol(s, &sel) == 0;
    if (chosen && is_alpn(&sel, TB_QUIC_ALPN))
        return 0;
    if (chosen && t->h3 && is_alpn(&sel, TB_QUIC_ALPN_H3)) {
        t->is_h3 = 1;
        if (tb_quic_tls_chose_h3(t->outer) == 0)
            return 0;
        refuse(t, TB_QUIC_REFUSE_TLS, "cannot set up h3");
        return GNUTLS_E_INTERNAL_ERROR;
    }
    refuse(t, TB_QUIC_REFUSE_ALPN, "client did not offer ALPN " TB_QUIC_ALPN);
    return GNUTLS_E_NO_APPLICATION_PROTOCOL;
}

static int session_setup(tb_quic_tls *t, tb_quic_tls_ctx *ctx)
{
    gnutls_session_t s = t->session;
    if (gnutls_priority_set(s, ctx->priority) < 0)
        return TB_ERR_CRYPTO;
    int rv = t->server ? ngtcp2_crypto_gnutls_configure_server_session(s)
                       : ngtcp2_crypto_gnutls_configure_client_session(s);
    if (rv != 0)
        return TB_ERR_CRYPTO;
    gnutls_session_set_ptr(s, &t->ref);
    t->cred = ctx->cur;
    t->cred->refs++;
    if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred->cred) < 0)
        return TB_ERR_CRYPTO;
    const char *mine = !t->server && t->h3 ? TB_QUIC_ALPN_H3 : TB_QUIC_ALPN;
    gnutls_datum_t alpn[2] = {
        {.data = (unsigned char *)(uintptr_t)mine, .size = (unsigned)strlen(mine)},
        {.data = (unsigned char *)(uintptr_t)TB_QUIC_ALPN_H3,
         .size = (unsigned)strlen(TB_QUIC_ALPN_H3)},
    };
    unsigned nalpn = t->server && t->h3 ? 2 : 1;
    if (gnutls_alpn_set_protocols(s, alpn, nalpn, t->server ? 0 : GNUTLS_ALPN_MANDATORY) < 0)
        return TB_ERR_CRYPTO;
    gnutls_session_set_verify_function(s, verify_peer);
    if (t->server) {
        /* Not mandatory in GnuTLS so the hook sees a missing ALPN and can say so. */
        gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST,
                                           alpn_hook);
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        /* Without CA names a client with a foreign-CA certificate still sends it, so the
         * refusal names the real problem instead of "no certificate". */
        gnutls_certificate_send_x509_rdn_sequence(s, 1);
    } else if (t->expected[0]) {
        if (gnutls_server_name_set(s, GNUTLS_NAME_DNS, t->expected, strlen(t->expected)) < 0)
            return TB_ERR_CRYPTO;
    }
    return TB_OK;
}

int tb_quic_tls_new(tb_quic_tls **out, tb_quic_tls_ctx *ctx, int server,
                    ngtcp2_crypto_conn_ref *ref, const char *expected_name, int h3)
{
    if (expected_name && strlen(expected_name) >= TB_QUIC_NAME_MAX)
        return TB_ERR_INVAL;
    tb_quic_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return TB_ERR_NOMEM;
    t->ref.get_conn = forward_get_conn;
    t->ref.user_data = t;
    t->outer = ref;
    t->server = server;
    t->h3 = h3;
    t->is_h3 = h3 && !server;
    if (expected_name)
        snprintf(t->expected, sizeof(t->expected), "%s", expected_name);
    /* No tickets: a resumed session would skip the certificate and with it the identity. */
    unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS;
    if (gnutls_init(&t->session, flags) < 0) {
        free(t);
        return TB_ERR_NOMEM;
    }
    int rv = session_setup(t, ctx);
    if (rv < 0) {
        tb_log_error(ctx->log, "quic: TLS session setup failed");
        tb_quic_tls_free(t);
        return rv;
    }
    *out = t;
    return TB_OK;
}

void tb_quic_tls_free(tb_quic_tls *t)
{
    if (!t)
        return;
    if (t->session)
        gnutls_deinit(t->session);
    cred_unref(t->cred);
    free(t->der);
    free(t);
}

int tb_quic_tls_is_h3(const tb_quic_tls *t)
{
    return t->is_h3;
}

void *tb_quic_tls_native(tb_quic_tls *t)
{
    return t->session;
}

/* GnuTLS can fail the handshake before our verify function runs (a CA certificate used to
 * sign, a key usage it rejects: alert 80, internal error). When the peer did send a
 * certificate, say what is wrong with it rather than repeat the alert. */
static tb_quic_refusal explain_peer_cert(const tb_quic_tls *t, char *detail, size_t detaillen)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = t->session ? gnutls_certificate_get_peers(t->session, &n) : NULL;
    if (!certs || n == 0)
        return TB_QUIC_REFUSE_NONE;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return TB_QUIC_REFUSE_NONE;
    int is_ca = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
                gnutls_x509_crt_get_ca_status(crt, NULL) > 0;
    gnutls_x509_crt_deinit(crt);
    if (is_ca) {
        snprintf(detail, detaillen, "peer certificate refused: it is a CA certificate");
        return TB_QUIC_REFUSE_IDENTITY;
    }
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(t->session, &status) < 0 || status == 0)
        return TB_QUIC_REFUSE_NONE;
    status_text(status, detail, detaillen);
    return status_refusal(status);
}

tb_quic_refusal tb_quic_tls_refusal(const tb_quic_tls *t, uint8_t alert, char *detail,
                                    size_t detaillen)
{
    if (t && t->refusal != TB_QUIC_REFUSE_NONE) {
        snprintf(detail, detaillen, "%s", t->detail);
        return t->refusal;
    }
    tb_quic_refusal r = t ? explain_peer_cert(t, detail, detaillen) : TB_QUIC_REFUSE_NONE;
    if (r != TB_QUIC_REFUSE_NONE)
        return r;
    const char *name = gnutls_alert_get_strname((gnutls_alert_description_t)alert);
    snprintf(detail, detaillen, "TLS alert %u (%s)", alert, name ? name : "?");
    if (alert == TLS_ALERT_CERTIFICATE_REQUIRED)
        return TB_QUIC_REFUSE_NO_CERT;
    if (alert == TLS_ALERT_NO_APPLICATION_PROTOCOL)
        return TB_QUIC_REFUSE_ALPN;
    return TB_QUIC_REFUSE_TLS;
}

int tb_quic_tls_peer_identity(const tb_quic_tls *t, tb_quic_peer *peer)
{
    if (!t->have_id)
        return TB_ERR_STATE;
    memcpy(peer->name, t->id.name, sizeof(peer->name));
    memcpy(peer->region, t->id.region, sizeof(peer->region));
    memcpy(peer->fingerprint, t->id.fingerprint, sizeof(peer->fingerprint));
    peer->not_after = t->id.not_after;
    peer->cert = t->der;
    peer->cert_len = t->der_len;
    return TB_OK;
}

int tb_quic_tls_random(uint8_t *buf, size_t len)
{
    return gnutls_rnd(GNUTLS_RND_RANDOM, buf, len) == 0 ? TB_OK : TB_ERR_CRYPTO;
}
