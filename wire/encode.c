#include <msgpack.h>
#include <string.h>

#include "wire/schema.h"
#include "wire/wire.h"

/* msgpack-c packs into whatever its write callback does: here a fixed buffer that refuses to
 * grow past cap, so encoding never allocates. */
typedef struct outbuf {
    uint8_t *p;
    size_t cap, len;
} outbuf;

static int out_write(void *data, const char *buf, size_t len)
{
    outbuf *o = data;
    if (o->cap - o->len < len)
        return -1;
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return 0;
}

typedef struct enc {
    msgpack_packer pk;
    const tb_wire_limits *lim;
} enc;

/* The packer's only failure is a full buffer. */
static int packed(int msgpack_rc)
{
    return msgpack_rc ? TB_ERR_TOO_BIG : 0;
}

static int put_text(enc *e, const char *s)
{
    if (!s)
        return TB_ERR_INVAL;
    size_t n = strnlen(s, e->lim->max_str_len + 1);
    if (n > e->lim->max_str_len)
        return TB_ERR_TOO_BIG;
    if (!tb_wire_text_ok((const uint8_t *)s, n))
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_str(&e->pk, n));
    return rc ? rc : packed(msgpack_pack_str_body(&e->pk, s, n));
}

static int put_bin(enc *e, const uint8_t *data, size_t n, size_t max)
{
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (!data && n > 0)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_bin(&e->pk, n));
    return rc || n == 0 ? rc : packed(msgpack_pack_bin_body(&e->pk, data, n));
}

static int put_fields(enc *e, const tb_wire_schema *s, const char *base);

/* An array of text at f (pointer at off, count at off_n), min..max entries. */
static int put_texts(enc *e, const tb_wire_field *f, const char *base, size_t min, size_t max)
{
    const char *const *a;
    size_t n;
    memcpy(&a, base + f->off, sizeof(a));
    memcpy(&n, base + f->off_n, sizeof(n));
    if (n > max)
        return TB_ERR_TOO_BIG;
    if ((!a && n > 0) || n < min)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_array(&e->pk, n));
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_text(e, a[i]);
    return rc;
}

static int put_certs(enc *e, const tb_wire_field *f, const char *base)
{
    const tb_wire_bytes *a;
    size_t n;
    memcpy(&a, base + f->off, sizeof(a));
    memcpy(&n, base + f->off_n, sizeof(n));
    if (n > e->lim->max_certs)
        return TB_ERR_TOO_BIG;
    if (!a && n > 0)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_array(&e->pk, n));
    for (size_t i = 0; !rc && i < n; i++)
        rc = put_bin(e, a[i].data, a[i].len, e->lim->max_cert_len);
    return rc;
}

/* An array of min..max maps of schema s, each elem bytes apart from p. */
static int put_maps(enc *e, const void *p, size_t n, size_t min, size_t max,
                    const tb_wire_schema *s, size_t elem)
{
    if (n > max)
        return TB_ERR_TOO_BIG;
    if ((!p && n > 0) || n < min)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_array(&e->pk, n));
    for (size_t i = 0; !rc && i < n; i++) {
        rc = packed(msgpack_pack_map(&e->pk, s->n));
        if (!rc)
            rc = put_fields(e, s, (const char *)p + i * elem);
    }
    return rc;
}

static int put_peers(enc *e, const tb_wire_peers *p)
{
    return put_maps(e, p->peers, p->n_peers, 0, e->lim->max_peers, tb_wire_schema_peer(),
                    sizeof(tb_wire_peer));
}

static int put_mitems(enc *e, const tb_wire_field *f, const char *base)
{
    const tb_wire_mitem *a;
    size_t n;
    memcpy(&a, base + f->off, sizeof(a));
    memcpy(&n, base + f->off_n, sizeof(n));
    return put_maps(e, a, n, 1, e->lim->max_batch, tb_wire_schema_mitem(), sizeof(*a));
}

static int put_node(enc *e, const tb_wire_node *n)
{
    const tb_wire_schema *ns = tb_wire_schema_node();
    int rc = packed(msgpack_pack_map(&e->pk, ns->n));
    return rc ? rc : put_fields(e, ns, (const char *)n);
}

static int put_nodes(enc *e, const tb_wire_nodes *v)
{
    if (v->n_nodes > e->lim->max_nodes)
        return TB_ERR_TOO_BIG;
    if (!v->nodes && v->n_nodes > 0)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_array(&e->pk, v->n_nodes));
    for (size_t i = 0; !rc && i < v->n_nodes; i++)
        rc = put_node(e, &v->nodes[i]);
    return rc;
}

static int put_ids(enc *e, const tb_wire_ids *v)
{
    if (v->n_ids > e->lim->max_ids)
        return TB_ERR_TOO_BIG;
    if (!v->ids && v->n_ids > 0)
        return TB_ERR_INVAL;
    int rc = packed(msgpack_pack_array(&e->pk, v->n_ids));
    for (size_t i = 0; !rc && i < v->n_ids; i++)
        rc = put_bin(e, v->ids[i], TB_WIRE_ID_LEN, TB_WIRE_ID_LEN);
    return rc;
}

static int put_value(enc *e, const tb_wire_field *f, const char *base)
{
    const void *at = base + f->off;
    const tb_wire_bytes *b = at;
    switch ((tb_wire_kind)f->kind) {
    case TB_WK_U8:
        return packed(msgpack_pack_uint8(&e->pk, *(const uint8_t *)at));
    case TB_WK_U32:
        return packed(msgpack_pack_uint32(&e->pk, *(const uint32_t *)at));
    case TB_WK_U64:
        return packed(msgpack_pack_uint64(&e->pk, *(const uint64_t *)at));
    case TB_WK_I64:
        return packed(msgpack_pack_int64(&e->pk, *(const int64_t *)at));
    case TB_WK_TEXT:
        return put_text(e, *(const char *const *)at);
    case TB_WK_PAYLOAD:
        return put_bin(e, b->data, b->len, e->lim->max_payload_len);
    case TB_WK_CERT:
        return put_bin(e, b->data, b->len, e->lim->max_cert_len);
    case TB_WK_SIG:
        return put_bin(e, at, TB_WIRE_SIG_LEN, TB_WIRE_SIG_LEN);
    case TB_WK_PEERS:
        return put_peers(e, at);
    case TB_WK_ADDRS:
        return put_texts(e, f, base, 0, e->lim->max_addrs);
    case TB_WK_NAMES:
        return put_texts(e, f, base, 1, e->lim->max_certs);
    case TB_WK_CERTS:
        return put_certs(e, f, base);
    case TB_WK_MITEMS:
        return put_mitems(e, f, base);
    case TB_WK_FLAG:
        if (*(const uint8_t *)at > 1)
            return TB_ERR_INVAL;
        return packed(msgpack_pack_uint8(&e->pk, *(const uint8_t *)at));
    case TB_WK_NODE:
        return put_node(e, at);
    case TB_WK_NODES:
        return put_nodes(e, at);
    case TB_WK_IDS:
        return put_ids(e, at);
    }
    return TB_ERR_INVAL;
}

/* The key/value pairs of s (the caller wrote the map header). */
static int put_fields(enc *e, const tb_wire_schema *s, const char *base)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < s->n; i++) {
        rc = packed(msgpack_pack_uint8(&e->pk, s->fields[i].key));
        if (!rc)
            rc = put_value(e, &s->fields[i], base);
    }
    return rc;
}

static int put_uint_pair(enc *e, uint64_t key, uint64_t v)
{
    int rc = packed(msgpack_pack_uint64(&e->pk, key));
    return rc ? rc : packed(msgpack_pack_uint64(&e->pk, v));
}

static int put_msg(enc *e, const tb_wire_schema *s, const tb_wire_msg *m)
{
    int rc = packed(msgpack_pack_map(&e->pk, 2 + s->n));
    if (!rc)
        rc = put_uint_pair(e, TB_WIRE_KEY_VERSION, TB_WIRE_VERSION);
    if (!rc)
        rc = put_uint_pair(e, TB_WIRE_KEY_TYPE, (uint64_t)m->type);
    return rc ? rc : put_fields(e, s, (const char *)m);
}

int tb_wire_encode(const tb_wire_msg *m, const tb_wire_limits *lim, uint8_t *buf, size_t cap,
                   size_t *outlen)
{
    tb_wire_limits def = tb_wire_limits_default();
    enc e = {.lim = lim ? lim : &def};
    if (!m || (!buf && cap > 0) || !outlen)
        return TB_ERR_INVAL;
    const tb_wire_schema *s = tb_wire_schema_of((uint64_t)m->type);
    if (!s)
        return TB_ERR_WIRE_UNKNOWN_TYPE;
    outbuf o = {buf, cap < e.lim->max_msg_size ? cap : e.lim->max_msg_size, 0};
    msgpack_packer_init(&e.pk, &o, out_write);
    int rc = put_msg(&e, s, m);
    if (rc)
        return rc;
    *outlen = o.len;
    return 0;
}
