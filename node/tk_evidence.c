/* The evidence behind verdicts, as a bundle an auditor checks offline (measure/bundle.h): the
 * signed measurements from the store, their origins' certificates as this node verified them
 * (node/origins.h), and the mesh CA. Answers the control request `evidence ...` (what `tbnode
 * evidence export` sends) and is what any other route that serves evidence calls. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/identity.h"
#include "measure/bundle.h"
#include "node/timekeeper.h"
#include "node/tk_internal.h"

typedef struct ev_row {
    uint8_t *body;
    size_t len;
    uint8_t sig[TB_MEASURE_SIG_LEN];
    char origin[TB_MEASURE_MAX_ORIGIN + 1];
} ev_row;

typedef struct ev_build {
    ev_row rows[TB_MEASURE_BUNDLE_MAX_REFS];
    size_t n;
    const uint8_t *cert[TB_MEASURE_BUNDLE_MAX_CERTS];
    size_t cert_len[TB_MEASURE_BUNDLE_MAX_CERTS];
    size_t n_certs;
} ev_build;

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int copy_row(void *arg, const tb_store_row *row)
{
    ev_row *r = arg;
    r->body = malloc(row->body_len);
    if (!r->body)
        return TB_ERR_NOMEM;
    memcpy(r->body, row->body, row->body_len);
    r->len = row->body_len;
    memcpy(r->sig, row->sig, TB_MEASURE_SIG_LEN);
    snprintf(r->origin, sizeof(r->origin), "%s", row->origin);
    return 0;
}

/* Each origin's certificate once, as the node holds it (its own included). */
static int add_cert(tb_timekeeper *tk, ev_build *b, char *err, size_t errlen)
{
    const char *origin = b->rows[b->n - 1].origin;
    for (size_t i = 0; i + 1 < b->n; i++)
        if (strcmp(b->rows[i].origin, origin) == 0)
            return 0;
    const uint8_t *der;
    size_t len;
    if (tb_node_origin_der(tk->node, origin, &der, &len) != TB_OK)
        return fail(err, errlen, TB_ERR_NOTFOUND, "no certificate known for origin %s", origin);
    if (b->n_certs == TB_MEASURE_BUNDLE_MAX_CERTS)
        return fail(err, errlen, TB_ERR_TOO_BIG, "more than %d origins",
                    TB_MEASURE_BUNDLE_MAX_CERTS);
    b->cert[b->n_certs] = der;
    b->cert_len[b->n_certs++] = len;
    return 0;
}

static int collect(tb_timekeeper *tk, ev_build *b, const tb_measure_bundle_ref *refs, size_t n,
                   char *err, size_t errlen)
{
    if (n == 0 || n > TB_MEASURE_BUNDLE_MAX_REFS)
        return fail(err, errlen, TB_ERR_INVAL, "1 to %d measurements", TB_MEASURE_BUNDLE_MAX_REFS);
    for (size_t i = 0; i < n; i++) {
        int rc = tb_store_get_measurement(tk->store, refs[i].origin, refs[i].seq, copy_row,
                                          &b->rows[b->n]);
        if (rc == TB_ERR_NOTFOUND)
            return fail(err, errlen, rc, "%s:%llu: not in the store (never received, or pruned)",
                        refs[i].origin, (unsigned long long)refs[i].seq);
        if (rc != TB_OK)
            return fail(err, errlen, rc, "%s:%llu: cannot read the store", refs[i].origin,
                        (unsigned long long)refs[i].seq);
        b->n++;
        if ((rc = add_cert(tk, b, err, errlen)) != TB_OK)
            return rc;
    }
    return TB_OK;
}

static int write_bundle(tb_timekeeper *tk, ev_build *b, const tb_measure_bundle_verdict *v,
                        char **out, size_t *len, char *err, size_t errlen)
{
    uint8_t ca[TB_CERT_MAX_DER];
    size_t ca_len;
    char why[512];
    if (tb_cert_read_pem_file(tk->cfg->ca, ca, sizeof(ca), &ca_len, why, sizeof(why)) != TB_OK)
        return fail(err, errlen, TB_ERR_IO, "%s", why);
    tb_measure_bundle_item items[TB_MEASURE_BUNDLE_MAX_REFS];
    for (size_t i = 0; i < b->n; i++)
        items[i] = (tb_measure_bundle_item){b->rows[i].body, b->rows[i].len, b->rows[i].sig};
    const uint8_t *const *certs = b->cert;
    tb_measure_bundle_in in = {.exported_by = tb_node_name(tk->node),
                               .created_ns = tk_real_now(tk),
                               .ca_der = ca,
                               .ca_len = ca_len,
                               .cert_der = certs,
                               .cert_len = b->cert_len,
                               .n_certs = b->n_certs,
                               .items = items,
                               .n_items = b->n,
                               .verdict = v};
    int rc = tb_measure_bundle_write(&in, out, len);
    return rc == TB_OK ? rc : fail(err, errlen, rc, "cannot write the bundle");
}

static void build_free(ev_build *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->rows[i].body);
    free(b);
}

static int export(tb_timekeeper *tk, const tb_measure_bundle_ref *refs, size_t n,
                  const tb_measure_bundle_verdict *v, char **out, size_t *len, char *err,
                  size_t errlen)
{
    ev_build *b = calloc(1, sizeof(*b));
    if (!b)
        return fail(err, errlen, TB_ERR_NOMEM, "out of memory");
    int rc = collect(tk, b, refs, n, err, errlen);
    if (rc == TB_OK)
        rc = write_bundle(tk, b, v, out, len, err, errlen);
    build_free(b);
    return rc;
}

int tb_timekeeper_evidence(tb_timekeeper *tk, const tb_measure_bundle_ref *refs, size_t n,
                           char **out, size_t *len, char *err, size_t errlen)
{
    return export(tk, refs, n, NULL, out, len, err, errlen);
}

/* source: "NAME" or "KIND/NAME" (a name used by two kinds needs the kind). */
static int find_verdict(const tb_timekeeper *tk, const char *source, const tb_xc_verdict **out,
                        char *err, size_t errlen)
{
    const char *slash = strchr(source, '/');
    const char *name = slash ? slash + 1 : source;
    size_t found = 0;
    for (size_t i = 0; i < tk->result.n_verdicts; i++) {
        const tb_xc_verdict *v = &tk->result.verdicts[i];
        const char *kind = tb_measure_kind_name((int)v->kind);
        if (strcmp(v->source, name) != 0 ||
            (slash && (strlen(kind) != (size_t)(slash - source) ||
                       strncmp(kind, source, (size_t)(slash - source)) != 0)))
            continue;
        *out = v;
        found++;
    }
    if (found == 1)
        return TB_OK;
    return found ? fail(err, errlen, TB_ERR_INVAL, "%s: a source of several kinds; say KIND/%s",
                        source, name)
                 : fail(err, errlen, TB_ERR_NOTFOUND, "%s: no current verdict on this source",
                        source);
}

int tb_timekeeper_evidence_verdict(tb_timekeeper *tk, const char *source, char **out, size_t *len,
                                   char *err, size_t errlen)
{
    const tb_xc_verdict *v = NULL;
    int rc = find_verdict(tk, source, &v, err, errlen);
    if (rc != TB_OK)
        return rc;
    if (!v) /* find_verdict sets it with TB_OK; said again for the analyser */
        return TB_ERR_NOTFOUND;
    if (v->n_refs == 0)
        return fail(err, errlen, TB_ERR_NOTFOUND, "%s: the verdict (%s) cites no measurement",
                    source, tb_xc_verdict_id((int)v->verdict));
    tb_measure_bundle_ref refs[TB_XC_MAX_REFS];
    for (size_t i = 0; i < v->n_refs; i++) {
        snprintf(refs[i].origin, sizeof(refs[i].origin), "%s", v->refs[i].origin);
        refs[i].seq = v->refs[i].seq;
    }
    tb_measure_bundle_verdict bv = {.kind = tb_measure_kind_name((int)v->kind),
                                    .source = v->source,
                                    .verdict = tb_xc_verdict_id((int)v->verdict),
                                    .reason = v->reason,
                                    .since_ns = v->since_ns,
                                    .refs = refs,
                                    .n_refs = v->n_refs};
    return export(tk, refs, v->n_refs, &bv, out, len, err, errlen);
}

void tk_evidence_command(const tb_timekeeper *tk, const tb_xc_verdict *v, char *buf, size_t cap)
{
    bool dflt = strcmp(tk->cfg->state_dir, TB_NODE_DEFAULT_STATE_DIR) == 0;
    snprintf(buf, cap, "tbnode evidence export%s%s --verdict %s/%s", dflt ? "" : " --state-dir ",
             dflt ? "" : tk->cfg->state_dir, tb_measure_kind_name((int)v->kind), v->source);
}

/* "ORIGIN:SEQ" words into refs. */
static int parse_refs(const char *s, tb_measure_bundle_ref *refs, size_t *n, char *err,
                      size_t errlen)
{
    *n = 0;
    for (size_t w; *s; s += w) {
        if ((w = strcspn(s, " ")) == 0) {
            w = 1;
            continue;
        }
        if (*n == TB_MEASURE_BUNDLE_MAX_REFS)
            return fail(err, errlen, TB_ERR_TOO_BIG, "more than %d measurements",
                        TB_MEASURE_BUNDLE_MAX_REFS);
        if (tb_measure_bundle_ref_parse(s, w, &refs[*n]) != TB_OK)
            return fail(err, errlen, TB_ERR_INVAL, "%.*s: not ORIGIN:SEQ", (int)(w > 80 ? 80 : w),
                        s);
        (*n)++;
    }
    return TB_OK;
}

/* Control requests "evidence verdict SOURCE" and "evidence ORIGIN:SEQ ...": the bundle, or one
 * line "error: ...". */
int tk_evidence_control(void *arg, const char *line, tb_control_buf *b)
{
    if (strncmp(line, "evidence ", 9) != 0)
        return 0;
    tb_timekeeper *tk = arg;
    char err[512], *json = NULL;
    size_t len = 0;
    tb_measure_bundle_ref refs[TB_MEASURE_BUNDLE_MAX_REFS];
    size_t n;
    int rc;
    if (strncmp(line + 9, "verdict ", 8) == 0)
        rc = tb_timekeeper_evidence_verdict(tk, line + 17, &json, &len, err, sizeof(err));
    else if ((rc = parse_refs(line + 9, refs, &n, err, sizeof(err))) == TB_OK)
        rc = tb_timekeeper_evidence(tk, refs, n, &json, &len, err, sizeof(err));
    if (rc == TB_OK && len + 2 > TB_CONTROL_REPLY_MAX)
        rc = fail(err, sizeof(err), TB_ERR_TOO_BIG,
                  "the bundle (%zu bytes) is more than one answer carries: ask for fewer", len);
    if (rc == TB_OK)
        tb_control_printf(b, "%s\n", json);
    else
        tb_control_printf(b, "error: %s\n", err);
    free(json);
    return 1;
}
