/* The measurement body codec (layout in adr/0008). Parser and encoder share the field checks, so
 * the encoder never writes what the parser would refuse. */
#include "measure/measurement.h"

#include <string.h>

#include "common/bytes.h"
#include "common/name.h"

enum {
    FLAG_RT_PUBKEY = 1,
    FLAG_EVIDENCE = 2,
    FLAG_RAND = 4,
    FLAGS_KNOWN = FLAG_RT_PUBKEY | FLAG_EVIDENCE | FLAG_RAND,
};

const char *tb_measure_kind_name(int kind)
{
    switch (kind) {
    case TB_MEASURE_NTP:
        return "ntp";
    case TB_MEASURE_ROUGHTIME:
        return "roughtime";
    case TB_MEASURE_PEER:
        return "peer";
    case TB_MEASURE_REFCLOCK:
        return "refclock";
    }
    return "unknown";
}

static bool kind_valid(unsigned k)
{
    return k >= TB_MEASURE_NTP && k <= TB_MEASURE_KIND_MAX;
}

/* Source names and addresses end up in logs, SQL rows and JSON: printable ASCII only. */
static bool text_valid(const uint8_t *s, size_t n, size_t min)
{
    if (n < min || n > TB_MEASURE_MAX_TEXT)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

/* The checks that do not depend on the byte layout, shared by parse and encode. */
static const char *semantic_error(const tb_measurement *m)
{
    if (!kind_valid(m->kind))
        return "kind";
    if (m->has_rt_pubkey != (m->kind == TB_MEASURE_ROUGHTIME))
        return "rt_pubkey";
    if (m->delay_ns < 0)
        return "delay";
    if (m->bound_ns < 0)
        return "bound";
    bool has_ev = m->ev_request.len > 0;
    if (has_ev != (m->ev_response.len > 0))
        return "evidence";
    if (m->has_rand && !has_ev)
        return "rand";
    if (has_ev && m->kind == TB_MEASURE_REFCLOCK)
        return "evidence";
    if (m->leap > 3 || (m->kind != TB_MEASURE_NTP && m->leap != 0))
        return "leap";
    if (m->kind != TB_MEASURE_NTP && m->stratum != 0)
        return "stratum";
    return NULL;
}

const char *tb_measure_range_error(const tb_measurement *m)
{
    if (m->delay_ns < 0 || m->delay_ns > TB_MEASURE_MAX_DELAY_NS)
        return "delay_ns";
    /* the request went out at real − delay, which must be a time too */
    if (m->real_ns < m->delay_ns || m->real_ns > TB_MEASURE_MAX_REAL_NS)
        return "real_ns";
    if (m->offset_ns < -TB_MEASURE_MAX_OFFSET_NS || m->offset_ns > TB_MEASURE_MAX_OFFSET_NS)
        return "offset_ns";
    if (m->bound_ns < 0 || m->bound_ns > TB_MEASURE_MAX_BOUND_NS)
        return "bound_ns";
    return NULL;
}

/* ---- parser ---- */

typedef struct cursor {
    const uint8_t *p;
    size_t len, used;
    tb_measure_diag *diag;
} cursor;

static int fail(cursor *c, int err, const char *field)
{
    if (c->diag) {
        c->diag->field = field;
        c->diag->offset = c->used;
    }
    return err;
}

static int take(cursor *c, size_t n, const char *field, const uint8_t **out)
{
    if (c->len - c->used < n)
        return fail(c, TB_ERR_TRUNCATED, field);
    *out = c->p + c->used;
    c->used += n;
    return 0;
}

static int take_u8(cursor *c, const char *field, unsigned *v)
{
    const uint8_t *q;
    int rc = take(c, 1, field, &q);
    if (rc != 0)
        return rc;
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): take() set q, as it returned 0 */
    *v = q[0];
    return 0;
}

static int take_i64(cursor *c, const char *field, int64_t *v)
{
    const uint8_t *q;
    int rc = take(c, 8, field, &q);
    if (rc == 0)
        *v = (int64_t)tb_get_be64(q);
    return rc;
}

/* A length-prefixed (u8) text copied NUL-terminated into dst (cap >= 256). */
static int take_text(cursor *c, const char *field, bool origin, size_t min, char *dst)
{
    unsigned n;
    const uint8_t *q;
    int rc = take_u8(c, field, &n);
    if (rc == 0)
        rc = take(c, n, field, &q);
    if (rc != 0)
        return rc;
    if (origin ? !tb_name_valid((const char *)q, n) : !text_valid(q, n, min)) {
        c->used -= n;
        return fail(c, TB_ERR_MALFORMED, field);
    }
    memcpy(dst, q, n);
    dst[n] = 0;
    return 0;
}

static int take_blob(cursor *c, const char *field, tb_measure_bytes *b)
{
    const uint8_t *q;
    int rc = take(c, 2, field, &q);
    if (rc != 0)
        return rc;
    size_t n = tb_get_be16(q);
    if (n == 0) {
        c->used -= 2;
        return fail(c, TB_ERR_MALFORMED, field);
    }
    if (n > TB_MEASURE_MAX_EVIDENCE) {
        c->used -= 2;
        return fail(c, TB_ERR_TOO_BIG, field);
    }
    rc = take(c, n, field, &b->data);
    b->len = n;
    return rc;
}

static int parse_header(cursor *c, tb_measurement *m, unsigned *flags)
{
    unsigned v, kind;
    int rc = take_u8(c, "version", &v);
    if (rc != 0)
        return rc;
    if (v != TB_MEASURE_BODY_VERSION)
        return fail(c, TB_ERR_UNSUPPORTED, "version");
    if ((rc = take_u8(c, "kind", &kind)) != 0)
        return rc;
    if (!kind_valid(kind))
        return fail(c, TB_ERR_MALFORMED, "kind");
    m->kind = (tb_measure_kind)kind;
    if ((rc = take_u8(c, "flags", flags)) != 0)
        return rc;
    if (*flags & ~(unsigned)FLAGS_KNOWN)
        return fail(c, TB_ERR_MALFORMED, "flags");
    return 0;
}

static int parse_fields(cursor *c, tb_measurement *m)
{
    unsigned flags;
    const uint8_t *q;
    int64_t seq;
    int rc;
    if ((rc = parse_header(c, m, &flags)) != 0 ||
        (rc = take_text(c, "origin", true, 1, m->origin)) != 0 ||
        (rc = take_text(c, "source.name", false, 1, m->source_name)) != 0 ||
        (rc = take_text(c, "source.address", false, 0, m->source_addr)) != 0)
        return rc;
    m->has_rt_pubkey = flags & FLAG_RT_PUBKEY;
    if (m->has_rt_pubkey) {
        if ((rc = take(c, TB_MEASURE_RT_PK_LEN, "source.rt_pubkey", &q)) != 0)
            return rc;
        memcpy(m->rt_pubkey, q, TB_MEASURE_RT_PK_LEN);
    }
    if ((rc = take_i64(c, "seq", &seq)) != 0 || (rc = take_i64(c, "real_ns", &m->real_ns)) != 0 ||
        (rc = take_i64(c, "offset_ns", &m->offset_ns)) != 0 ||
        (rc = take_i64(c, "delay_ns", &m->delay_ns)) != 0 ||
        (rc = take_i64(c, "bound_ns", &m->bound_ns)) != 0)
        return rc;
    m->seq = (uint64_t)seq;
    unsigned leap, stratum;
    if ((rc = take_u8(c, "leap", &leap)) != 0 || (rc = take_u8(c, "stratum", &stratum)) != 0)
        return rc;
    m->leap = (uint8_t)leap;
    m->stratum = (uint8_t)stratum;
    if (flags & FLAG_EVIDENCE) {
        if ((rc = take_blob(c, "evidence.request", &m->ev_request)) != 0 ||
            (rc = take_blob(c, "evidence.response", &m->ev_response)) != 0)
            return rc;
    }
    m->has_rand = flags & FLAG_RAND;
    if (m->has_rand) {
        if ((rc = take(c, TB_MEASURE_RAND_LEN, "evidence.rand", &q)) != 0)
            return rc;
        memcpy(m->rand, q, TB_MEASURE_RAND_LEN);
    }
    return 0;
}

int tb_measure_parse(const uint8_t *p, size_t len, tb_measurement *out, tb_measure_diag *diag)
{
    cursor c = {p, len, 0, diag};
    memset(out, 0, sizeof(*out));
    if (len > TB_MEASURE_BODY_MAX)
        return fail(&c, TB_ERR_TOO_BIG, "body");
    int rc = parse_fields(&c, out);
    if (rc == 0 && c.used != len)
        rc = fail(&c, TB_ERR_MALFORMED, "trailing bytes");
    const char *bad = rc == 0 ? semantic_error(out) : NULL;
    if (bad != NULL)
        rc = fail(&c, TB_ERR_MALFORMED, bad);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- encoder ---- */

typedef struct writer {
    uint8_t *p;
    size_t cap, used;
    bool over;
} writer;

static void put(writer *w, const void *src, size_t n)
{
    if (w->over || w->cap - w->used < n) {
        w->over = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->used, src, n);
    w->used += n;
}

static void put_u8(writer *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put_i64(writer *w, int64_t v)
{
    uint8_t b[8];
    tb_put_be64(b, (uint64_t)v);
    put(w, b, 8);
}

static void put_text(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_u8(w, (unsigned)n);
    put(w, s, n);
}

static void put_blob(writer *w, const tb_measure_bytes *b)
{
    uint8_t h[2];
    tb_put_be16(h, (uint16_t)b->len);
    put(w, h, 2);
    put(w, b->data, b->len);
}

static int encode_check(const tb_measurement *m)
{
    size_t no = strnlen(m->origin, sizeof(m->origin));
    size_t nn = strnlen(m->source_name, sizeof(m->source_name));
    size_t na = strnlen(m->source_addr, sizeof(m->source_addr));
    if (no == sizeof(m->origin) || nn == sizeof(m->source_name) || na == sizeof(m->source_addr))
        return TB_ERR_INVAL;
    if (!tb_name_valid(m->origin, no) || !text_valid((const uint8_t *)m->source_name, nn, 1) ||
        !text_valid((const uint8_t *)m->source_addr, na, 0) || semantic_error(m) != NULL)
        return TB_ERR_INVAL;
    if (m->ev_request.len > TB_MEASURE_MAX_EVIDENCE || m->ev_response.len > TB_MEASURE_MAX_EVIDENCE)
        return TB_ERR_TOO_BIG;
    if ((m->ev_request.len && !m->ev_request.data) || (m->ev_response.len && !m->ev_response.data))
        return TB_ERR_INVAL;
    return 0;
}

int tb_measure_encode(const tb_measurement *m, uint8_t *buf, size_t cap, size_t *outlen)
{
    int rc = encode_check(m);
    if (rc != 0)
        return rc;
    bool has_ev = m->ev_request.len > 0;
    unsigned flags = (m->has_rt_pubkey ? FLAG_RT_PUBKEY : 0) | (has_ev ? FLAG_EVIDENCE : 0) |
                     (m->has_rand ? FLAG_RAND : 0);
    writer w = {buf, cap, 0, false};
    put_u8(&w, TB_MEASURE_BODY_VERSION);
    put_u8(&w, (unsigned)m->kind);
    put_u8(&w, flags);
    put_text(&w, m->origin);
    put_text(&w, m->source_name);
    put_text(&w, m->source_addr);
    if (m->has_rt_pubkey)
        put(&w, m->rt_pubkey, TB_MEASURE_RT_PK_LEN);
    put_i64(&w, (int64_t)m->seq);
    put_i64(&w, m->real_ns);
    put_i64(&w, m->offset_ns);
    put_i64(&w, m->delay_ns);
    put_i64(&w, m->bound_ns);
    put_u8(&w, m->leap);
    put_u8(&w, m->stratum);
    if (has_ev) {
        put_blob(&w, &m->ev_request);
        put_blob(&w, &m->ev_response);
    }
    if (m->has_rand)
        put(&w, m->rand, TB_MEASURE_RAND_LEN);
    if (w.over)
        return TB_ERR_TOO_BIG;
    *outlen = w.used;
    return 0;
}
