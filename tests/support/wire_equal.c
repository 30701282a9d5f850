/* Message equality for tests: walks wire/'s field tables (wire/schema.h, private to wire/,
 * which tests may read), so a new field is compared without touching this file. */
#include <string.h>

#include "tests/support/wire_equal.h"
#include "wire/schema.h"

static bool bytes_equal(const tb_wire_bytes *a, const tb_wire_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool text_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool fields_equal(const tb_wire_schema *s, const char *a, const char *b);

/* The element arrays of list field f in a and b (pointer at off, count at off_n); false when
 * the counts differ. */
static bool lists(const tb_wire_field *f, const char *a, const char *b, const void **x,
                  const void **y, size_t *n)
{
    size_t ny;
    memcpy(x, a + f->off, sizeof(*x));
    memcpy(y, b + f->off, sizeof(*y));
    memcpy(n, a + f->off_n, sizeof(*n));
    memcpy(&ny, b + f->off_n, sizeof(ny));
    return *n == ny;
}

/* Element i of each list equal, by kind. */
static bool element_equal(tb_wire_kind kind, const void *x, const void *y, size_t i)
{
    switch (kind) {
    case TB_WK_CERTS:
        return bytes_equal((const tb_wire_bytes *)x + i, (const tb_wire_bytes *)y + i);
    case TB_WK_MITEMS:
        return fields_equal(tb_wire_schema_mitem(), (const char *)((const tb_wire_mitem *)x + i),
                            (const char *)((const tb_wire_mitem *)y + i));
    default: /* arrays of text */
        return text_equal(((const char *const *)x)[i], ((const char *const *)y)[i]);
    }
}

static bool list_equal(const tb_wire_field *f, const char *a, const char *b)
{
    const void *x, *y;
    size_t n;
    if (!lists(f, a, b, &x, &y, &n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!element_equal((tb_wire_kind)f->kind, x, y, i))
            return false;
    return true;
}

static bool peers_equal(const tb_wire_peers *a, const tb_wire_peers *b)
{
    if (a->n_peers != b->n_peers)
        return false;
    for (size_t i = 0; i < a->n_peers; i++)
        if (!fields_equal(tb_wire_schema_peer(), (const char *)&a->peers[i],
                          (const char *)&b->peers[i]))
            return false;
    return true;
}

static bool nodes_equal(const tb_wire_nodes *a, const tb_wire_nodes *b)
{
    if (a->n_nodes != b->n_nodes)
        return false;
    for (size_t i = 0; i < a->n_nodes; i++)
        if (!fields_equal(tb_wire_schema_node(), (const char *)&a->nodes[i],
                          (const char *)&b->nodes[i]))
            return false;
    return true;
}

static bool ids_equal(const tb_wire_ids *a, const tb_wire_ids *b)
{
    return a->n_ids == b->n_ids &&
           (a->n_ids == 0 || memcmp(a->ids, b->ids, a->n_ids * TB_WIRE_ID_LEN) == 0);
}

static bool value_equal(const tb_wire_field *f, const char *a, const char *b)
{
    const void *x = a + f->off, *y = b + f->off;
    switch ((tb_wire_kind)f->kind) {
    case TB_WK_U8:
    case TB_WK_FLAG:
        return *(const uint8_t *)x == *(const uint8_t *)y;
    case TB_WK_U32:
        return *(const uint32_t *)x == *(const uint32_t *)y;
    case TB_WK_U64:
        return *(const uint64_t *)x == *(const uint64_t *)y;
    case TB_WK_I64:
        return *(const int64_t *)x == *(const int64_t *)y;
    case TB_WK_TEXT:
        return text_equal(*(const char *const *)x, *(const char *const *)y);
    case TB_WK_PAYLOAD:
    case TB_WK_CERT:
        return bytes_equal(x, y);
    case TB_WK_SIG:
        return memcmp(x, y, TB_WIRE_SIG_LEN) == 0;
    case TB_WK_PEERS:
        return peers_equal(x, y);
    case TB_WK_ADDRS:
    case TB_WK_NAMES:
    case TB_WK_CERTS:
    case TB_WK_MITEMS:
        return list_equal(f, a, b);
    case TB_WK_NODE:
        return fields_equal(tb_wire_schema_node(), x, y);
    case TB_WK_NODES:
        return nodes_equal(x, y);
    case TB_WK_IDS:
        return ids_equal(x, y);
    }
    return false;
}

static bool fields_equal(const tb_wire_schema *s, const char *a, const char *b)
{
    for (size_t i = 0; i < s->n; i++)
        if (!value_equal(&s->fields[i], a, b))
            return false;
    return true;
}

bool tb_wire_msg_equal(const tb_wire_msg *a, const tb_wire_msg *b)
{
    if (a->type != b->type)
        return false;
    const tb_wire_schema *s = tb_wire_schema_of((uint64_t)a->type);
    return s && fields_equal(s, (const char *)a, (const char *)b);
}
