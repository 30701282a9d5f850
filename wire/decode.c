#include <stdlib.h>
#include <string.h>

#include "wire/mpread.h"
#include "wire/schema.h"
#include "wire/wire.h"

/* Storage a decoded message owns: a list of blocks freed by tb_wire_msg_clear(). Every block
 * holds something read from at least one input byte, so their number is bounded by len. */
struct tb_wire_chunk {
    struct tb_wire_chunk *next;
    max_align_t data[];
};

typedef struct dec {
    tb_mpr r;
    const tb_wire_limits *lim;
    tb_wire_msg *m;
    tb_wire_diag *diag;
    int failed; /* the innermost failure names the field; outer levels keep it */
} dec;

static int fail(dec *d, int err, const char *field, size_t offset)
{
    if (d->diag && !d->failed) {
        d->failed = 1;
        d->diag->field = field;
        d->diag->offset = offset;
    }
    return err;
}

static void *own(dec *d, size_t n)
{
    struct tb_wire_chunk *c = calloc(1, sizeof(*c) + n);
    if (!c)
        return NULL;
    c->next = d->m->owned;
    d->m->owned = c;
    return c->data;
}

static int copy_bytes(dec *d, const uint8_t *data, size_t n, tb_wire_bytes *out)
{
    *out = (tb_wire_bytes){NULL, 0};
    if (n == 0)
        return 0;
    uint8_t *c = own(d, n);
    if (!c)
        return TB_ERR_NOMEM;
    memcpy(c, data, n);
    *out = (tb_wire_bytes){c, n};
    return 0;
}

static int read_text(dec *d, const char **out)
{
    const uint8_t *s;
    size_t n;
    int rc = tb_mpr_str(&d->r, d->lim->max_str_len, &s, &n);
    if (rc)
        return rc;
    if (!tb_wire_text_ok(s, n))
        return TB_ERR_MALFORMED;
    char *c = own(d, n + 1);
    if (!c)
        return TB_ERR_NOMEM;
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return 0;
}

static int read_uint_max(dec *d, uint64_t max, uint64_t *v)
{
    int rc = tb_mpr_uint(&d->r, v);
    if (!rc && *v > max)
        rc = TB_ERR_WIRE_FIELD_TYPE;
    return rc;
}

static int read_bin(dec *d, size_t max, tb_wire_bytes *out)
{
    const uint8_t *b;
    size_t n;
    int rc = tb_mpr_bin(&d->r, max, &b, &n);
    return rc ? rc : copy_bytes(d, b, n, out);
}

static int read_sig(dec *d, uint8_t *sig)
{
    const uint8_t *b;
    size_t n;
    int rc = tb_mpr_bin(&d->r, SIZE_MAX, &b, &n);
    if (rc)
        return rc;
    if (n != TB_WIRE_SIG_LEN)
        return TB_ERR_WIRE_FIELD_TYPE;
    memcpy(sig, b, n);
    return 0;
}

/* An array of text at f (pointer at off, count at off_n), min..max entries. */
static int read_texts(dec *d, const tb_wire_field *f, char *base, size_t min, size_t max)
{
    size_t n;
    int rc = tb_mpr_array(&d->r, max, &n);
    if (rc)
        return rc;
    if (n < min)
        return TB_ERR_WIRE_FIELD_TYPE;
    const char **a = NULL;
    if (n > 0 && !(a = own(d, n * sizeof(*a))))
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t at = d->r.used;
        if ((rc = read_text(d, &a[i])))
            return fail(d, rc, f->name, at);
    }
    memcpy(base + f->off, &a, sizeof(a));
    memcpy(base + f->off_n, &n, sizeof(n));
    return 0;
}

/* An array of certificates (bin) at f. */
static int read_certs(dec *d, const tb_wire_field *f, char *base)
{
    size_t n;
    int rc = tb_mpr_array(&d->r, d->lim->max_certs, &n);
    if (rc)
        return rc;
    tb_wire_bytes *a = NULL;
    if (n > 0 && !(a = own(d, n * sizeof(*a))))
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t at = d->r.used;
        if ((rc = read_bin(d, d->lim->max_cert_len, &a[i])))
            return fail(d, rc, f->name, at);
    }
    memcpy(base + f->off, &a, sizeof(a));
    memcpy(base + f->off_n, &n, sizeof(n));
    return 0;
}

static int read_fields(dec *d, size_t n, uint64_t min_key, const tb_wire_schema *s, char *base);

/* An array of min..max maps of schema s, each elem bytes, into *out and *count. */
static int read_maps(dec *d, size_t min, size_t max, const tb_wire_schema *s, size_t elem,
                     const char *name, void **out, size_t *count)
{
    size_t n;
    int rc = tb_mpr_array(&d->r, max, &n);
    if (rc)
        return rc;
    if (n < min)
        return TB_ERR_WIRE_FIELD_TYPE;
    char *p = NULL;
    if (n > 0 && !(p = own(d, n * elem)))
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t at = d->r.used, entries;
        if ((rc = tb_mpr_map(&d->r, SIZE_MAX, &entries)))
            return fail(d, rc, name, at);
        if ((rc = read_fields(d, entries, 0, s, p + i * elem)))
            return rc;
    }
    *out = p;
    *count = n;
    return 0;
}

static int read_peers(dec *d, tb_wire_peers *out)
{
    void *p;
    size_t n;
    int rc = read_maps(d, 0, d->lim->max_peers, tb_wire_schema_peer(), sizeof(tb_wire_peer),
                       "peers[]", &p, &n);
    if (!rc)
        *out = (tb_wire_peers){p, n};
    return rc;
}

static int read_mitems(dec *d, const tb_wire_field *f, char *base)
{
    void *p;
    size_t n;
    int rc = read_maps(d, 1, d->lim->max_batch, tb_wire_schema_mitem(), sizeof(tb_wire_mitem),
                       "items[]", &p, &n);
    if (rc)
        return rc;
    memcpy(base + f->off, &p, sizeof(p));
    memcpy(base + f->off_n, &n, sizeof(n));
    return 0;
}

static int read_node(dec *d, tb_wire_node *out)
{
    size_t at = d->r.used, entries;
    int rc = tb_mpr_map(&d->r, SIZE_MAX, &entries);
    if (rc)
        return fail(d, rc, "node", at);
    return read_fields(d, entries, 0, tb_wire_schema_node(), (char *)out);
}

static int read_nodes(dec *d, tb_wire_nodes *out)
{
    size_t n;
    int rc = tb_mpr_array(&d->r, d->lim->max_nodes, &n);
    if (rc)
        return rc;
    tb_wire_node *v = NULL;
    if (n > 0 && !(v = own(d, n * sizeof(*v))))
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if ((rc = read_node(d, &v[i])))
            return rc;
    *out = (tb_wire_nodes){v, n};
    return 0;
}

static int read_ids(dec *d, tb_wire_ids *out)
{
    size_t n;
    int rc = tb_mpr_array(&d->r, d->lim->max_ids, &n);
    if (rc)
        return rc;
    uint8_t(*v)[TB_WIRE_ID_LEN] = NULL;
    if (n > 0 && !(v = own(d, n * TB_WIRE_ID_LEN)))
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b;
        size_t len, at = d->r.used;
        if ((rc = tb_mpr_bin(&d->r, SIZE_MAX, &b, &len)))
            return fail(d, rc, "ids[]", at);
        if (len != TB_WIRE_ID_LEN)
            return fail(d, TB_ERR_WIRE_FIELD_TYPE, "ids[]", at);
        memcpy(v[i], b, TB_WIRE_ID_LEN);
    }
    *out = (tb_wire_ids){(const uint8_t(*)[TB_WIRE_ID_LEN])v, n};
    return 0;
}

/* Reads the value of field f into base + f->off. */
static int read_value(dec *d, const tb_wire_field *f, char *base)
{
    void *at = base + f->off;
    uint64_t u;
    int rc;
    switch ((tb_wire_kind)f->kind) {
    case TB_WK_U8:
        if (!(rc = read_uint_max(d, UINT8_MAX, &u)))
            *(uint8_t *)at = (uint8_t)u;
        return rc;
    case TB_WK_U32:
        if (!(rc = read_uint_max(d, UINT32_MAX, &u)))
            *(uint32_t *)at = (uint32_t)u;
        return rc;
    case TB_WK_U64:
        return tb_mpr_uint(&d->r, at);
    case TB_WK_I64:
        return tb_mpr_int64(&d->r, at);
    case TB_WK_TEXT:
        return read_text(d, at);
    case TB_WK_PAYLOAD:
        return read_bin(d, d->lim->max_payload_len, at);
    case TB_WK_CERT:
        return read_bin(d, d->lim->max_cert_len, at);
    case TB_WK_SIG:
        return read_sig(d, at);
    case TB_WK_PEERS:
        return read_peers(d, at);
    case TB_WK_ADDRS:
        return read_texts(d, f, base, 0, d->lim->max_addrs);
    case TB_WK_NAMES:
        return read_texts(d, f, base, 1, d->lim->max_certs);
    case TB_WK_CERTS:
        return read_certs(d, f, base);
    case TB_WK_MITEMS:
        return read_mitems(d, f, base);
    case TB_WK_FLAG:
        if (!(rc = read_uint_max(d, 1, &u)))
            *(uint8_t *)at = (uint8_t)u;
        return rc;
    case TB_WK_NODE:
        return read_node(d, at);
    case TB_WK_NODES:
        return read_nodes(d, at);
    case TB_WK_IDS:
        return read_ids(d, at);
    }
    return TB_ERR_MALFORMED;
}

static const tb_wire_field *find_field(const tb_wire_schema *s, uint64_t key, size_t *idx)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->fields[i].key == key) {
            *idx = i;
            return &s->fields[i];
        }
    }
    return NULL;
}

/* Reads one key: an unsigned integer, at least min_key and above the previous one. */
static int read_key(dec *d, uint64_t min_key, const uint64_t *prev, uint64_t *key)
{
    size_t at = d->r.used;
    int rc = tb_mpr_uint(&d->r, key);
    if (rc == TB_ERR_WIRE_FIELD_TYPE)
        return fail(d, TB_ERR_MALFORMED, "key (not an unsigned integer)", at);
    if (rc)
        return fail(d, rc, "key", at);
    if (*key < min_key || (prev && *key <= *prev))
        return fail(d, TB_ERR_MALFORMED, "key (not ascending)", at);
    return 0;
}

/* Reads n map entries against schema s into base; unknown keys are skipped, every field of s is
 * required. */
static int read_fields(dec *d, size_t n, uint64_t min_key, const tb_wire_schema *s, char *base)
{
    uint32_t seen = 0;
    uint64_t key = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t prev = key;
        int rc = read_key(d, min_key, i > 0 ? &prev : NULL, &key);
        if (rc)
            return rc;
        size_t at = d->r.used, idx;
        const tb_wire_field *f = find_field(s, key, &idx);
        rc = f ? read_value(d, f, base) : tb_mpr_skip(&d->r);
        if (rc)
            return fail(d, rc, f ? f->name : "unknown field", at);
        if (f)
            seen |= 1u << idx;
    }
    for (size_t i = 0; i < s->n; i++)
        if (!(seen & (1u << i)))
            return fail(d, TB_ERR_WIRE_MISSING, s->fields[i].name, d->r.used);
    return 0;
}

/* Reads key `want` (0 = version, 1 = type) and its unsigned value. */
static int read_head_field(dec *d, uint64_t want, const char *name, uint64_t *v)
{
    size_t at = d->r.used;
    uint64_t key;
    int rc = tb_mpr_uint(&d->r, &key);
    if (rc == TB_ERR_WIRE_FIELD_TYPE)
        return fail(d, TB_ERR_MALFORMED, "key (not an unsigned integer)", at);
    if (rc)
        return fail(d, rc, "key", at);
    if (key != want)
        return fail(d, key < want ? TB_ERR_MALFORMED : TB_ERR_WIRE_MISSING, name, at);
    at = d->r.used;
    rc = tb_mpr_uint(&d->r, v);
    return rc ? fail(d, rc, name, at) : 0;
}

static int decode_msg(dec *d)
{
    size_t n;
    uint64_t version, type;
    int rc = tb_mpr_map(&d->r, SIZE_MAX, &n);
    if (rc)
        return fail(d, rc == TB_ERR_WIRE_FIELD_TYPE ? TB_ERR_MALFORMED : rc, "message", 0);
    if (n < 1)
        return fail(d, TB_ERR_WIRE_MISSING, "version", d->r.used);
    size_t at = d->r.used;
    if ((rc = read_head_field(d, TB_WIRE_KEY_VERSION, "version", &version)))
        return rc;
    if (version != TB_WIRE_VERSION)
        return fail(d, TB_ERR_WIRE_VERSION, "version", at);
    if (n < 2)
        return fail(d, TB_ERR_WIRE_MISSING, "type", d->r.used);
    if ((rc = read_head_field(d, TB_WIRE_KEY_TYPE, "type", &type)))
        return rc;
    const tb_wire_schema *s = tb_wire_schema_of(type);
    if (!s)
        return fail(d, TB_ERR_WIRE_UNKNOWN_TYPE, "type", d->r.used);
    d->m->type = (tb_wire_type)type;
    if ((rc = read_fields(d, n - 2, TB_WIRE_KEY_TYPE + 1, s, (char *)d->m)))
        return rc;
    if (d->r.used != d->r.len)
        return fail(d, TB_ERR_WIRE_TRAILING, "message", d->r.used);
    return 0;
}

int tb_wire_decode(const uint8_t *p, size_t len, const tb_wire_limits *lim, tb_wire_msg *out,
                   tb_wire_diag *diag)
{
    tb_wire_limits def = tb_wire_limits_default();
    dec d = {{p, len, 0}, lim ? lim : &def, out, diag, 0};
    memset(out, 0, sizeof(*out));
    if (!p && len > 0)
        return fail(&d, TB_ERR_INVAL, "message", 0);
    if (len > d.lim->max_msg_size)
        return fail(&d, TB_ERR_TOO_BIG, "message", 0);
    int rc = decode_msg(&d);
    if (rc)
        tb_wire_msg_clear(out);
    return rc;
}

void tb_wire_msg_clear(tb_wire_msg *m)
{
    struct tb_wire_chunk *c = m->owned;
    while (c) {
        struct tb_wire_chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(m, 0, sizeof(*m));
}
