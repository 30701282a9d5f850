/* The offline verifier of an evidence bundle (measure/bundle.h): the CA, each certificate, each
 * measurement, the verdict, in that order, each reported ok or failed with the reason. */
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/identity.h"
#include "common/clock.h"
#include "measure/bundle.h"
#include "measure/bundle_internal.h"
#include "measure/evidence.h"

typedef struct vctx {
    const tb_measure_bundle *b;
    const tb_ca *ca;
    const tb_crl *crl;
    tb_measure_bundle_say say;
    void *arg;
    size_t failed;
    bool *cert_ok, *item_ok;
    tb_cert_identity *ids;
} vctx;

static bool report(vctx *v, const char *item, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool report(vctx *v, const char *item, bool ok, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!ok)
        v->failed++;
    if (v->say)
        v->say(v->arg, item, ok, detail);
    return ok;
}

static int64_t seconds(int64_t ns)
{
    return ns / 1000000000 - (ns % 1000000000 < 0);
}

static void verify_ca(vctx *v)
{
    uint8_t der[TB_CERT_MAX_DER];
    size_t len = 0;
    if (tb_ca_cert_der(v->ca, der, sizeof(der), &len) != 0)
        len = 0;
    bool same = len == v->b->ca_len && len > 0 && memcmp(der, v->b->ca, len) == 0;
    tb_cert_identity id;
    const char *mesh = tb_cert_identity_from_der(v->b->ca, v->b->ca_len, &id) == 0 && id.is_ca
                           ? id.name
                           : "(not a CA certificate)";
    if (same)
        report(v, "ca", true, "the bundle's CA is the trusted CA (mesh %s)", tb_ca_mesh(v->ca));
    else
        report(v, "ca", false, "the bundle's CA (mesh %s) is not the trusted CA (mesh %s)", mesh,
               tb_ca_mesh(v->ca));
}

/* When the certificate is checked on its own: at the first measurement it signs (a
 * certificate that expired since still proves what it signed while valid). */
static int64_t cert_time(const vctx *v, const tb_cert_identity *id)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < v->b->n_items; i++)
        if (strcmp(v->b->items[i].origin, id->name) == 0 && v->b->items[i].real_ns < t)
            t = v->b->items[i].real_ns;
    return t == INT64_MAX ? id->not_before : seconds(t);
}

static void verify_cert(vctx *v, size_t i)
{
    const bundle_cert *c = &v->b->certs[i];
    tb_cert_identity *id = &v->ids[i];
    char item[TB_MEASURE_MAX_ORIGIN + 16];
    snprintf(item, sizeof(item), "certificate %s", c->origin);
    if (tb_cert_identity_from_der(c->der, c->len, id) != 0 || id->is_ca) {
        report(v, item, false, "not a node certificate of the profile (adr/0004)");
        return;
    }
    if (strcmp(id->name, c->origin) != 0) {
        report(v, item, false, "names node %s, not %s", id->name, c->origin);
        return;
    }
    if (v->crl && tb_crl_lists_cert(v->crl, c->der, c->len)) {
        report(v, item, false, "revoked (on the CRL number %" PRIu64 ")", tb_crl_number(v->crl));
        return;
    }
    int64_t t = cert_time(v, id);
    tb_cert_verdict cv = TB_CERT_REJECTED;
    char when[40];
    /* t may come from the bundle's own (unchecked) claims: keep the product in range */
    int64_t lim = INT64_MAX / 1000000000;
    tb_clock_format_rfc3339((t > lim ? lim : t < -lim ? -lim : t) * 1000000000, when, sizeof(when));
    if (tb_ca_verify_der(v->ca, c->der, c->len, t, &cv, NULL) != 0) {
        report(v, item, false, "does not chain to the trusted CA at %s: %s", when,
               tb_cert_verdict_str(cv));
        return;
    }
    if (strcmp(id->key_type, "ed25519") != 0) {
        report(v, item, false, "its key is %s, measurements are signed with Ed25519", id->key_type);
        return;
    }
    v->cert_ok[i] = report(v, item, true, "node %s, region %s, chains to the CA at %s", id->name,
                           id->region, when);
}

/* The numbers the bundle states beside the body are what a reader without tbnode sees: they
 * must be the signed ones. */
static const char *claims_differ(const bundle_item *it, const tb_measurement *m)
{
    if (strcmp(it->origin, m->origin) != 0)
        return "origin";
    if (it->seq != m->seq)
        return "seq";
    if (strcmp(it->kind, tb_measure_kind_name((int)m->kind)) != 0)
        return "kind";
    if (strcmp(it->source, m->source_name) != 0)
        return "source";
    if (it->real_ns != m->real_ns)
        return "real_ns";
    if (it->offset_ns != m->offset_ns)
        return "offset_ns";
    if (it->delay_ns != m->delay_ns)
        return "delay_ns";
    if (it->bound_ns != m->bound_ns)
        return "bound_ns";
    return NULL;
}

static bool same_bytes(const uint8_t *a, size_t alen, const tb_measure_bytes *b)
{
    return alen == b->len && (alen == 0 || memcmp(a, b->data, alen) == 0);
}

/* Finds a certificate of m's origin that passed, is valid when m was taken and whose key made
 * the signature; *why says what failed otherwise. */
static bool signed_by_origin(vctx *v, const bundle_item *it, const tb_measurement *m,
                             const char **why)
{
    *why = "no verified certificate of its origin in the bundle";
    tb_cert_verdict cv = TB_CERT_OK;
    for (size_t i = 0; i < v->b->n_certs; i++) {
        if (!v->cert_ok[i] || strcmp(v->ids[i].name, m->origin) != 0)
            continue;
        if (tb_ca_verify_der(v->ca, v->b->certs[i].der, v->b->certs[i].len, seconds(m->real_ns),
                             &cv, NULL) != 0) {
            *why = cv == TB_CERT_EXPIRED ? "its origin's certificate had expired when it was taken"
                   : cv == TB_CERT_NOT_YET_VALID
                       ? "its origin's certificate was not yet valid when it was taken"
                       : "its origin's certificate does not chain at the time it was taken";
            continue;
        }
        if (tb_measure_verify(it->body, it->body_len, it->sig, v->ids[i].ed25519_pub) == 0)
            return true;
        *why = "the signature does not verify with its origin's certificate key";
    }
    return false;
}

static void ms(char *buf, size_t cap, int64_t ns)
{
    snprintf(buf, cap, "%+.6f ms", (double)ns / 1e6);
}

static bool item_evidence(vctx *v, const char *item, const tb_measurement *m)
{
    tb_measure_evidence ev;
    const char *why = "";
    if (tb_measure_evidence_check(m, &ev, &why) != 0)
        return report(v, item, false, "signature ok; the %s evidence fails: %s",
                      tb_measure_kind_name((int)m->kind), why);
    char rec[40], claim[40], bound[40];
    ms(rec, sizeof(rec), ev.offset_ns);
    ms(claim, sizeof(claim), m->offset_ns);
    snprintf(bound, sizeof(bound), "%.6f ms", (double)m->bound_ns / 1e6);
    if (m->kind == TB_MEASURE_PEER)
        return report(v, item, true, "signature ok; peer %s offset %s (no raw evidence)",
                      m->source_name, claim);
    if (ev.unsynchronised)
        return report(v, item, true,
                      "signature ok; NTP reply answers the request, server unsynchronised "
                      "(nothing to recompute)");
    if (m->kind == TB_MEASURE_NTP)
        return report(v, item, true,
                      "signature ok; NTP packets re-checked: offset %s recomputed, %s claimed, "
                      "bound %s",
                      rec, claim, bound);
    char radi[40];
    snprintf(radi, sizeof(radi), "%.6f ms", (double)ev.radi_ns / 1e6);
    return report(v, item, true,
                  "signature ok; Roughtime response verified for the server's key: offset %s "
                  "recomputed from MIDP, %s claimed, RADI %s within bound %s",
                  rec, claim, radi, bound);
}

static void verify_item(vctx *v, size_t i)
{
    const bundle_item *it = &v->b->items[i];
    char item[TB_MEASURE_MAX_ORIGIN + 40];
    snprintf(item, sizeof(item), "measurement %s:%" PRIu64, it->origin, it->seq);
    tb_measurement m;
    tb_measure_diag d = {"", 0};
    const char *why, *field;
    if (tb_measure_parse(it->body, it->body_len, &m, &d) != 0) {
        report(v, item, false, "the signed body does not parse (%s at byte %zu)", d.field,
               d.offset);
        return;
    }
    if ((field = claims_differ(it, &m)) != NULL) {
        report(v, item, false, "the bundle's %s is not the signed body's", field);
        return;
    }
    if ((field = tb_measure_range_error(&m)) != NULL) {
        report(v, item, false, "%s out of range", field);
        return;
    }
    if (!signed_by_origin(v, it, &m, &why)) {
        report(v, item, false, "%s", why);
        return;
    }
    if ((it->req && !same_bytes(it->req, it->req_len, &m.ev_request)) ||
        (it->resp && !same_bytes(it->resp, it->resp_len, &m.ev_response))) {
        report(v, item, false,
               "signature ok; the request or response beside the body is not "
               "the signed evidence");
        return;
    }
    v->item_ok[i] = item_evidence(v, item, &m);
}

static void verify_verdict(vctx *v)
{
    const tb_measure_bundle *b = v->b;
    char item[TB_MEASURE_MAX_TEXT + 32];
    snprintf(item, sizeof(item), "verdict %s %s", b->v_kind, b->v_source);
    for (size_t r = 0; r < b->n_refs; r++) {
        size_t i = 0;
        while (i < b->n_items && (b->items[i].seq != b->refs[r].seq ||
                                  strcmp(b->items[i].origin, b->refs[r].origin) != 0))
            i++;
        if (i == b->n_items || !v->item_ok[i]) {
            report(v, item, false, "cites %s:%" PRIu64 ", which the bundle %s", b->refs[r].origin,
                   b->refs[r].seq, i == b->n_items ? "does not hold" : "holds but fails");
            return;
        }
    }
    report(v, item, true, "%s (%s), resting on %zu verified measurement(s)", b->v_verdict,
           b->v_reason, b->n_refs);
}

size_t tb_measure_bundle_verify(const tb_measure_bundle *b, const tb_ca *ca, const tb_crl *crl,
                                tb_measure_bundle_say say, void *arg)
{
    vctx v = {b, ca, crl, say, arg, 0, NULL, NULL, NULL};
    v.cert_ok = calloc(b->n_certs + 1, sizeof(bool));
    v.item_ok = calloc(b->n_items + 1, sizeof(bool));
    v.ids = calloc(b->n_certs + 1, sizeof(*v.ids));
    if (!v.cert_ok || !v.item_ok || !v.ids || sodium_init() < 0) {
        report(&v, "bundle", false, "out of memory");
    } else {
        verify_ca(&v);
        for (size_t i = 0; i < b->n_certs; i++)
            verify_cert(&v, i);
        for (size_t i = 0; i < b->n_items; i++)
            verify_item(&v, i);
        if (b->has_verdict)
            verify_verdict(&v);
        if (b->n_items == 0)
            report(&v, "bundle", false, "holds no measurement");
    }
    free(v.cert_ok);
    free(v.item_ok);
    free(v.ids);
    return v.failed;
}
