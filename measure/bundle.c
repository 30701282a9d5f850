/* The evidence bundle's JSON writer and its parser (measure/bundle.h, store/evidence.md). */
#include "measure/bundle.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/identity.h"
#include "common/clock.h"
#include "common/name.h"
#include "measure/bundle_internal.h"

/* ---- writer ---- */

static json_t *b64(const uint8_t *p, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    sodium_bin2base64(s, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *v = json_string(s);
    free(s);
    return v;
}

static json_t *utc(int64_t ns)
{
    char buf[40];
    tb_clock_format_rfc3339(ns, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *item_json(const tb_measure_bundle_item *it)
{
    tb_measurement m;
    if (tb_measure_parse(it->body, it->body_len, &m, NULL) != 0 || m.seq > INT64_MAX)
        return NULL;
    json_t *o =
        json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:o}", "origin",
                  m.origin, "seq", (json_int_t)m.seq, "kind", tb_measure_kind_name((int)m.kind),
                  "source", m.source_name, "address", m.source_addr, "real", utc(m.real_ns),
                  "real_ns", (json_int_t)m.real_ns, "offset_ns", (json_int_t)m.offset_ns,
                  "delay_ns", (json_int_t)m.delay_ns, "bound_ns", (json_int_t)m.bound_ns, "body",
                  b64(it->body, it->body_len), "sig", b64(it->sig, TB_MEASURE_SIG_LEN));
    if (o && m.ev_request.len &&
        (json_object_set_new(o, "request", b64(m.ev_request.data, m.ev_request.len)) != 0 ||
         json_object_set_new(o, "response", b64(m.ev_response.data, m.ev_response.len)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *verdict_json(const tb_measure_bundle_verdict *v)
{
    json_t *refs = json_array();
    for (size_t i = 0; refs && i < v->n_refs; i++) {
        char r[TB_MEASURE_MAX_ORIGIN + 24];
        snprintf(r, sizeof(r), "%s:%llu", v->refs[i].origin, (unsigned long long)v->refs[i].seq);
        if (json_array_append_new(refs, json_string(r)) != 0) {
            json_decref(refs);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:o}", "kind", v->kind, "source", v->source,
                     "verdict", v->verdict, "reason", v->reason, "since", utc(v->since_ns),
                     "since_ns", (json_int_t)v->since_ns, "refs", refs);
}

static json_t *certs_json(const tb_measure_bundle_in *in)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < in->n_certs; i++) {
        tb_cert_identity id;
        json_t *c = NULL;
        if (tb_cert_identity_from_der(in->cert_der[i], in->cert_len[i], &id) == 0)
            c = json_pack("{s:s, s:s, s:o}", "origin", id.name, "region", id.region, "der",
                          b64(in->cert_der[i], in->cert_len[i]));
        if (json_array_append_new(a, c) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *bundle_json(const tb_measure_bundle_in *in)
{
    json_t *items = json_array();
    for (size_t i = 0; items && i < in->n_items; i++)
        if (json_array_append_new(items, item_json(&in->items[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    json_t *o = json_pack(
        "{s:s, s:i, s:s, s:o, s:I, s:o, s:o, s:o}", "format", TB_MEASURE_BUNDLE_FORMAT, "version",
        TB_MEASURE_BUNDLE_VERSION, "exported_by", in->exported_by ? in->exported_by : "", "created",
        utc(in->created_ns), "created_ns", (json_int_t)in->created_ns, "ca",
        b64(in->ca_der, in->ca_len), "certificates", certs_json(in), "measurements", items);
    if (o && in->verdict && json_object_set_new(o, "verdict", verdict_json(in->verdict)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int tb_measure_bundle_write(const tb_measure_bundle_in *in, char **out, size_t *len)
{
    if (in->n_certs > TB_MEASURE_BUNDLE_MAX_CERTS || in->n_items > TB_MEASURE_BUNDLE_MAX_ITEMS ||
        (in->verdict && in->verdict->n_refs > TB_MEASURE_BUNDLE_MAX_REFS) || !in->ca_der ||
        in->ca_len == 0 || in->ca_len > TB_CERT_MAX_DER)
        return TB_ERR_INVAL;
    if (sodium_init() < 0)
        return TB_ERR_CRYPTO;
    /* json_pack fails as a whole when a part (a body that does not parse) is NULL */
    json_t *o = bundle_json(in);
    if (!o)
        return TB_ERR_INVAL;
    char *s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return TB_ERR_NOMEM;
    *out = s;
    *len = strlen(s);
    return 0;
}

/* ---- parser ---- */

typedef struct pctx {
    char *err;
    size_t errlen;
} pctx;

static int bad(pctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(pctx *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->errlen)
        vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* A string member of at most max bytes, copied NUL-terminated into dst (cap > max). */
static int get_text(pctx *c, const json_t *o, const char *where, const char *key, size_t max,
                    char *dst)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: missing or not a string", where, *where ? "." : "",
                   key);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (!s || n > max || memchr(s, 0, n))
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: longer than %zu bytes or holds a NUL", where,
                   *where ? "." : "", key, max);
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static int get_int(pctx *c, const json_t *o, const char *where, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: missing or not an integer", where,
                   *where ? "." : "", key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Base64 of 1..max bytes into a fresh buffer (exact: exactly `max` bytes). The encoded length
 * is checked before anything is decoded. */
static int get_b64(pctx *c, const json_t *o, const char *where, const char *key, size_t max,
                   bool exact, bool optional, uint8_t **out, size_t *len)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    *len = 0;
    if (!v && optional)
        return 0;
    if (!json_is_string(v))
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: missing or not a string", where, *where ? "." : "",
                   key);
    size_t n = json_string_length(v);
    if (n == 0 || n > sodium_base64_ENCODED_LEN(max, sodium_base64_VARIANT_ORIGINAL))
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: empty or over %zu bytes", where, *where ? "." : "",
                   key, max);
    uint8_t *b = malloc(max);
    if (!b)
        return TB_ERR_NOMEM;
    size_t got = 0;
    if (sodium_base642bin(b, max, json_string_value(v), n, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got == 0 || (exact && got != max)) {
        free(b);
        return bad(c, TB_ERR_MALFORMED, "%s%s%s: not %s%zu bytes of base64", where,
                   *where ? "." : "", key, exact ? "" : "1 to ", max);
    }
    *out = b;
    *len = got;
    return 0;
}

static int get_array(pctx *c, const json_t *o, const char *key, size_t max, const json_t **out)
{
    const json_t *a = json_object_get(o, key);
    if (!json_is_array(a))
        return bad(c, TB_ERR_MALFORMED, "%s: missing or not an array", key);
    if (json_array_size(a) > max)
        return bad(c, TB_ERR_TOO_BIG, "%s: more than %zu entries", key, max);
    *out = a;
    return 0;
}

static int parse_cert(pctx *c, const json_t *o, size_t i, bundle_cert *out)
{
    char where[32];
    snprintf(where, sizeof(where), "certificates[%zu]", i);
    if (!json_is_object(o))
        return bad(c, TB_ERR_MALFORMED, "%s: not an object", where);
    int rc = get_text(c, o, where, "origin", TB_MEASURE_MAX_ORIGIN, out->origin);
    if (rc == 0)
        rc = get_b64(c, o, where, "der", TB_CERT_MAX_DER, false, false, &out->der, &out->len);
    return rc;
}

static int parse_claims(pctx *c, const json_t *o, const char *where, bundle_item *it)
{
    int64_t seq = 0;
    int rc;
    if ((rc = get_text(c, o, where, "origin", TB_MEASURE_MAX_ORIGIN, it->origin)) != 0 ||
        (rc = get_int(c, o, where, "seq", &seq)) != 0 ||
        (rc = get_text(c, o, where, "kind", sizeof(it->kind) - 1, it->kind)) != 0 ||
        (rc = get_text(c, o, where, "source", TB_MEASURE_MAX_TEXT, it->source)) != 0 ||
        (rc = get_int(c, o, where, "real_ns", &it->real_ns)) != 0 ||
        (rc = get_int(c, o, where, "offset_ns", &it->offset_ns)) != 0 ||
        (rc = get_int(c, o, where, "delay_ns", &it->delay_ns)) != 0 ||
        (rc = get_int(c, o, where, "bound_ns", &it->bound_ns)) != 0)
        return rc;
    it->seq = (uint64_t)seq;
    return 0;
}

static int parse_item(pctx *c, const json_t *o, size_t i, bundle_item *it)
{
    char where[32];
    snprintf(where, sizeof(where), "measurements[%zu]", i);
    if (!json_is_object(o))
        return bad(c, TB_ERR_MALFORMED, "%s: not an object", where);
    uint8_t *sig = NULL;
    size_t n;
    int rc = parse_claims(c, o, where, it);
    if (rc == 0)
        rc = get_b64(c, o, where, "body", TB_MEASURE_BODY_MAX, false, false, &it->body,
                     &it->body_len);
    if (rc == 0 &&
        (rc = get_b64(c, o, where, "sig", TB_MEASURE_SIG_LEN, true, false, &sig, &n)) == 0 && sig) {
        memcpy(it->sig, sig, TB_MEASURE_SIG_LEN);
        free(sig);
    }
    if (rc == 0)
        rc = get_b64(c, o, where, "request", TB_MEASURE_MAX_EVIDENCE, false, true, &it->req,
                     &it->req_len);
    if (rc == 0)
        rc = get_b64(c, o, where, "response", TB_MEASURE_MAX_EVIDENCE, false, true, &it->resp,
                     &it->resp_len);
    return rc;
}

int tb_measure_bundle_ref_parse(const char *s, size_t len, tb_measure_bundle_ref *out)
{
    const char *colon = len ? memchr(s, ':', len) : NULL;
    if (!colon || !tb_name_valid(s, (size_t)(colon - s)))
        return TB_ERR_MALFORMED;
    size_t digits = len - (size_t)(colon - s) - 1;
    uint64_t seq = 0;
    if (digits == 0 || digits > 19)
        return TB_ERR_MALFORMED;
    for (size_t i = 1; i <= digits; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            return TB_ERR_MALFORMED;
        seq = seq * 10 + (uint64_t)(colon[i] - '0'); /* 19 digits fit in 64 bits */
    }
    if (seq > INT64_MAX)
        return TB_ERR_MALFORMED;
    memcpy(out->origin, s, (size_t)(colon - s));
    out->origin[colon - s] = 0;
    out->seq = seq;
    return 0;
}

static int parse_verdict(pctx *c, const json_t *o, tb_measure_bundle *b)
{
    if (!json_is_object(o))
        return bad(c, TB_ERR_MALFORMED, "verdict: not an object");
    const json_t *refs = NULL;
    int rc;
    if ((rc = get_text(c, o, "verdict", "kind", sizeof(b->v_kind) - 1, b->v_kind)) != 0 ||
        (rc = get_text(c, o, "verdict", "source", TB_MEASURE_MAX_TEXT, b->v_source)) != 0 ||
        (rc = get_text(c, o, "verdict", "verdict", sizeof(b->v_verdict) - 1, b->v_verdict)) != 0 ||
        (rc = get_text(c, o, "verdict", "reason", BUNDLE_REASON_MAX - 1, b->v_reason)) != 0 ||
        (rc = get_array(c, o, "refs", TB_MEASURE_BUNDLE_MAX_REFS, &refs)) != 0)
        return rc;
    for (size_t i = 0; i < json_array_size(refs); i++) {
        const json_t *r = json_array_get(refs, i);
        if (!json_is_string(r) ||
            tb_measure_bundle_ref_parse(json_string_value(r), json_string_length(r), &b->refs[i]) !=
                0)
            return bad(c, TB_ERR_MALFORMED, "verdict.refs[%zu]: not ORIGIN:SEQ", i);
    }
    b->n_refs = json_array_size(refs);
    b->has_verdict = true;
    return 0;
}

static int parse_top(pctx *c, const json_t *root, tb_measure_bundle *b)
{
    if (!json_is_object(root))
        return bad(c, TB_ERR_MALFORMED, "not a JSON object");
    const json_t *f = json_object_get(root, "format"), *v = json_object_get(root, "version");
    if (!json_is_string(f) || strcmp(json_string_value(f), TB_MEASURE_BUNDLE_FORMAT) != 0)
        return bad(c, TB_ERR_UNSUPPORTED, "format: not \"%s\"", TB_MEASURE_BUNDLE_FORMAT);
    if (!json_is_integer(v) || json_integer_value(v) != TB_MEASURE_BUNDLE_VERSION)
        return bad(c, TB_ERR_UNSUPPORTED, "version: not %d", TB_MEASURE_BUNDLE_VERSION);
    const json_t *certs = NULL, *items = NULL;
    int rc = get_b64(c, root, "", "ca", TB_CERT_MAX_DER, false, false, &b->ca, &b->ca_len);
    if (rc == 0)
        rc = get_array(c, root, "certificates", TB_MEASURE_BUNDLE_MAX_CERTS, &certs);
    if (rc == 0)
        rc = get_array(c, root, "measurements", TB_MEASURE_BUNDLE_MAX_ITEMS, &items);
    if (rc != 0)
        return rc;
    for (; rc == 0 && b->n_certs < json_array_size(certs); b->n_certs++)
        rc = parse_cert(c, json_array_get(certs, b->n_certs), b->n_certs, &b->certs[b->n_certs]);
    if (rc == 0 && json_array_size(items) > 0 &&
        !(b->items = calloc(json_array_size(items), sizeof(*b->items))))
        return TB_ERR_NOMEM;
    if (b->items)
        b->items_cap = json_array_size(items);
    for (; rc == 0 && b->items && b->n_items < json_array_size(items); b->n_items++)
        rc = parse_item(c, json_array_get(items, b->n_items), b->n_items, &b->items[b->n_items]);
    const json_t *verdict = json_object_get(root, "verdict");
    if (rc == 0 && verdict)
        rc = parse_verdict(c, verdict, b);
    return rc;
}

int tb_measure_bundle_parse(const uint8_t *p, size_t len, tb_measure_bundle **out, char *err,
                            size_t errlen)
{
    pctx c = {err, errlen};
    if (len > TB_MEASURE_BUNDLE_MAX_BYTES)
        return bad(&c, TB_ERR_TOO_BIG, "over %u bytes", TB_MEASURE_BUNDLE_MAX_BYTES);
    if (sodium_init() < 0)
        return TB_ERR_CRYPTO;
    json_error_t je;
    json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return bad(&c, TB_ERR_MALFORMED, "not JSON: line %d: %s", je.line, je.text);
    tb_measure_bundle *b = calloc(1, sizeof(*b));
    int rc = b ? parse_top(&c, root, b) : TB_ERR_NOMEM;
    json_decref(root);
    if (rc != 0) {
        tb_measure_bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void tb_measure_bundle_free(tb_measure_bundle *b)
{
    if (!b)
        return;
    free(b->ca);
    for (size_t i = 0; i < TB_MEASURE_BUNDLE_MAX_CERTS; i++)
        free(b->certs[i].der);
    for (size_t i = 0; i < b->items_cap; i++) {
        free(b->items[i].body);
        free(b->items[i].req);
        free(b->items[i].resp);
    }
    free(b->items);
    free(b);
}

const uint8_t *tb_measure_bundle_ca(const tb_measure_bundle *b, size_t *len)
{
    *len = b->ca_len;
    return b->ca;
}

size_t tb_measure_bundle_count(const tb_measure_bundle *b)
{
    return b->n_items;
}
