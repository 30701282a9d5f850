/* The field tables of every message (private to wire/). The decoder, the encoder and the
 * equality check all walk these tables, so a field is described once: its key, its kind and
 * where it lives in tb_wire_msg (or tb_wire_peer). Keys in a table are ascending. */
#ifndef TB_WIRE_SCHEMA_H
#define TB_WIRE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

/* Keys every message starts with. */
#define TB_WIRE_KEY_VERSION 0
#define TB_WIRE_KEY_TYPE 1

typedef enum tb_wire_kind {
    TB_WK_U8,      /* uint8_t */
    TB_WK_U32,     /* uint32_t */
    TB_WK_U64,     /* uint64_t */
    TB_WK_I64,     /* int64_t */
    TB_WK_TEXT,    /* const char *, msgpack str, 1..max_str_len bytes of UTF-8, no controls */
    TB_WK_PAYLOAD, /* tb_wire_bytes, msgpack bin, 0..max_payload_len */
    TB_WK_CERT,    /* tb_wire_bytes, msgpack bin, 0..max_cert_len */
    TB_WK_SIG,     /* uint8_t[TB_WIRE_SIG_LEN], msgpack bin of exactly that length */
    TB_WK_PEERS,   /* tb_wire_peers: array of peer maps, 0..max_peers */
    TB_WK_ADDRS,   /* const char *const * at off, size_t count at off_n: array of text,
                      0..max_addrs */
    TB_WK_NAMES,   /* the same, 1..max_certs */
    TB_WK_CERTS,   /* const tb_wire_bytes * at off, count at off_n: array of bin, 0..max_certs */
    TB_WK_MITEMS,  /* const tb_wire_mitem * at off, count at off_n: array of item maps,
                      1..max_batch */
    TB_WK_FLAG,    /* uint8_t, 0 or 1 */
    TB_WK_NODE,    /* tb_wire_node: a map (tb_wire_schema_node) */
    TB_WK_NODES,   /* tb_wire_nodes: array of node maps, 0..max_nodes */
    TB_WK_IDS,     /* tb_wire_ids: array of bin of exactly TB_WIRE_ID_LEN, 0..max_ids */
} tb_wire_kind;

typedef struct tb_wire_field {
    uint8_t key;
    uint8_t kind;
    uint16_t off;   /* offset of the value in its struct */
    uint16_t off_n; /* TB_WK_ADDRS: offset of the count */
    const char *name;
} tb_wire_field;

typedef struct tb_wire_schema {
    const tb_wire_field *fields;
    size_t n;
} tb_wire_schema;

/* The table of a message type, or NULL for an unknown type. */
const tb_wire_schema *tb_wire_schema_of(uint64_t type);
/* The table of an entry of a PEERS message. */
const tb_wire_schema *tb_wire_schema_peer(void);
/* The table of an item of a MEASUREMENTS message. */
const tb_wire_schema *tb_wire_schema_mitem(void);
/* The table of a mesh v2 node descriptor. */
const tb_wire_schema *tb_wire_schema_node(void);

/* True when (s, n) is text the format accepts: 1..n bytes of UTF-8, no control characters. */
bool tb_wire_text_ok(const uint8_t *s, size_t n);

#endif
