/* Tests of the mesh wire format (wire/wire.h, adr/0003): round trips of every message type,
 * every rejection the decoder promises, and the stream framing. Hand-made inputs are packed with
 * msgpack-c itself, so the decoder is checked against an independent encoder. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/wire_equal.h"
#include "tests/tb_test.h"
#include "wire/mpread.h"
#include "wire/wire.h"

/* ---- sample messages ---- */

static const uint8_t cert_a[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x00};
static const uint8_t payload[] = "hello mesh";
static const char *const addrs_a[] = {"127.0.0.10:4433", "[::1]:4433"};

static tb_wire_peer peers_sample[] = {
    {"node-a", "eu-west", addrs_a, 2, {cert_a, sizeof(cert_a)}},
    {"nöde-b", "us-east", NULL, 0, {NULL, 0}},
};

static const char *const names_a[] = {"node-a", "node-b"};
static const tb_wire_bytes certs_a[] = {{cert_a, sizeof(cert_a)}, {payload, sizeof(payload)}};
static tb_wire_mitem items_a[2];
static const tb_wire_node nodes_sample[] = {
    {"node-a", "eu-west", addrs_a, 2},
    {"node-b", "us-east", NULL, 0},
};
static const uint8_t ids_sample[3][TB_WIRE_ID_LEN] = {{1, 2, 3}, {0xff}, {[15] = 9}};

static tb_wire_msg sample(tb_wire_type t)
{
    tb_wire_msg m = {.type = t};
    switch (t) {
    case TB_WIRE_PING:
        m.ping = (tb_wire_ping){42, 1763700000123456789LL};
        break;
    case TB_WIRE_PONG:
        m.pong =
            (tb_wire_pong){42, 1763700000123456789LL, 1763700000123556789LL, 1763700000123566789LL};
        break;
    case TB_WIRE_DISCOVER:
        m.discover.max_peers = 32;
        break;
    case TB_WIRE_PEERS:
        m.peers = (tb_wire_peers){peers_sample, 2};
        break;
    case TB_WIRE_MESSAGE:
        m.message = (tb_wire_message){"node-b", "node-a", 7, {payload, sizeof(payload)}};
        break;
    case TB_WIRE_BROADCAST:
        m.broadcast = (tb_wire_broadcast){"node-a", 0x1122334455667788ULL,      8,
                                          3,        {payload, sizeof(payload)}, {0}};
        for (int i = 0; i < TB_WIRE_SIG_LEN; i++)
            m.broadcast.sig[i] = (uint8_t)(i * 5 + 2);
        break;
    case TB_WIRE_CERT_REQ:
        m.cert_req = (tb_wire_cert_req){names_a, 2};
        break;
    case TB_WIRE_CERT:
        m.cert = (tb_wire_cert){certs_a, 2};
        break;
    case TB_WIRE_ALIVE:
        m.alive = (tb_wire_alive){"node-a", "eu-west", addrs_a, 2, {cert_a, sizeof(cert_a)}, 77};
        break;
    case TB_WIRE_MEASUREMENTS:
        for (int k = 0; k < 2; k++) {
            items_a[k].seq = 1000 + (uint64_t)k;
            items_a[k].body = (tb_wire_bytes){payload, sizeof(payload) - (size_t)k};
            for (int i = 0; i < TB_WIRE_SIG_LEN; i++)
                items_a[k].sig[i] = (uint8_t)(i + k);
        }
        m.measurements = (tb_wire_measurements){"node-c", items_a, 2};
        break;
    case TB_WIRE_MEASUREMENT:
        m.measurement.origin = "node-c";
        m.measurement.seq = 1000;
        m.measurement.body = (tb_wire_bytes){payload, sizeof(payload)};
        for (int i = 0; i < TB_WIRE_SIG_LEN; i++)
            m.measurement.sig[i] = (uint8_t)(i * 3 + 1);
        break;
    case TB_WIRE_JOIN:
        m.join.node = nodes_sample[0];
        break;
    case TB_WIRE_FORWARD_JOIN:
        m.forward_join = (tb_wire_forward_join){nodes_sample[1], 6};
        break;
    case TB_WIRE_NEIGHBOR:
        m.neighbor = (tb_wire_neighbor){nodes_sample[0], 1};
        break;
    case TB_WIRE_NEIGHBOR_REPLY:
        m.neighbor_reply = (tb_wire_neighbor_reply){nodes_sample[0], 0};
        break;
    case TB_WIRE_DISCONNECT:
        m.disconnect.alive = 1;
        break;
    case TB_WIRE_SHUFFLE:
        m.shuffle = (tb_wire_shuffle){nodes_sample[0], 3, {nodes_sample, 2}};
        break;
    case TB_WIRE_SHUFFLE_REPLY:
        m.shuffle_reply.nodes = (tb_wire_nodes){nodes_sample, 2};
        break;
    case TB_WIRE_IHAVE:
        m.ihave.ids = (tb_wire_ids){ids_sample, 3};
        break;
    case TB_WIRE_GRAFT:
        m.graft.ids = (tb_wire_ids){ids_sample, 1};
        break;
    case TB_WIRE_PRUNE:
        m.prune.origin = "node-o";
        break;
    case TB_WIRE_PROBE_REQ:
        m.probe_req = (tb_wire_probe_req){0xabcdef0123ULL, "node-c", 17, 1};
        break;
    case TB_WIRE_PROBE_ACK:
        m.probe_ack = (tb_wire_probe_ack){0xabcdef0123ULL, "node-c", 1};
        break;
    }
    return m;
}

static const tb_wire_type all_types[] = {
    TB_WIRE_PING,         TB_WIRE_PONG,          TB_WIRE_DISCOVER,       TB_WIRE_PEERS,
    TB_WIRE_MESSAGE,      TB_WIRE_BROADCAST,     TB_WIRE_MEASUREMENT,    TB_WIRE_JOIN,
    TB_WIRE_FORWARD_JOIN, TB_WIRE_NEIGHBOR,      TB_WIRE_NEIGHBOR_REPLY, TB_WIRE_DISCONNECT,
    TB_WIRE_SHUFFLE,      TB_WIRE_SHUFFLE_REPLY, TB_WIRE_IHAVE,          TB_WIRE_GRAFT,
    TB_WIRE_PRUNE,        TB_WIRE_PROBE_REQ,     TB_WIRE_PROBE_ACK,      TB_WIRE_CERT_REQ,
    TB_WIRE_CERT,         TB_WIRE_ALIVE,         TB_WIRE_MEASUREMENTS};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static uint8_t buf[70000];

/* Decodes from an exact-size heap copy, so ASan sees any read past the end. */
static int decode_copy(const uint8_t *p, size_t len, const tb_wire_limits *lim, tb_wire_msg *out,
                       tb_wire_diag *diag)
{
    uint8_t *c = calloc(1, len ? len : 1);
    if (!c)
        return TB_ERR_NOMEM;
    if (len)
        memcpy(c, p, len);
    int rc = tb_wire_decode(c, len, lim, out, diag);
    /* the decoded message must not point into the input */
    memset(c, 0xAA, len);
    free(c);
    return rc;
}

/* Encodes m, decodes the result and checks it equals m. */
static int round_trip(const tb_wire_msg *m, const tb_wire_limits *lim, size_t *len)
{
    size_t n;
    tb_wire_msg d;
    int rc = tb_wire_encode(m, lim, buf, sizeof(buf), &n);
    if (rc)
        return rc;
    rc = decode_copy(buf, n, lim, &d, NULL);
    if (rc)
        return rc;
    int eq = tb_wire_msg_equal(m, &d);
    tb_wire_msg_clear(&d);
    if (len)
        *len = n;
    return eq ? 0 : 1;
}

/* ---- hand-made inputs, packed with msgpack-c from a short spec ----
 * Tokens, separated by spaces: mN map of N entries, aN array, uN unsigned, iN signed, s:TEXT
 * str, b:TEXT bin, BN bin of N zero bytes, SN str of N 'z', n nil, d double, f float, e ext,
 * hT/N a message map of N entries starting with version and type T. */

typedef struct mk {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mk;

static void mk_init(mk *k)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->pk, &k->sb, msgpack_sbuffer_write);
}

static int mk_blob(mk *k, char kind, const char *p, size_t n)
{
    if (kind == 's')
        return msgpack_pack_str_with_body(&k->pk, p, n);
    return msgpack_pack_bin_with_body(&k->pk, p, n);
}

static int mk_token(mk *k, const char *t, size_t len)
{
    static const char zeros[70000];
    static char zs[70000];
    if (!zs[0])
        memset(zs, 'z', sizeof(zs));
    msgpack_packer *pk = &k->pk;
    unsigned long long v = strtoull(t + 1, NULL, 0);
    switch (t[0]) {
    case 'm':
        return msgpack_pack_map(pk, v);
    case 'a':
        return msgpack_pack_array(pk, v);
    case 'u':
        return msgpack_pack_uint64(pk, v);
    case 'i':
        return msgpack_pack_int64(pk, strtoll(t + 1, NULL, 0));
    case 's':
    case 'b':
        return mk_blob(k, t[0], t + 2, len - 2);
    case 'B':
    case 'S':
        return mk_blob(k, t[0] == 'B' ? 'b' : 's', t[0] == 'B' ? zeros : zs, v);
    case 'n':
        return msgpack_pack_nil(pk);
    case 'd':
        return msgpack_pack_double(pk, 1.5);
    case 'f':
        return msgpack_pack_float(pk, 2.5f);
    case 'e':
        return msgpack_pack_ext_with_body(pk, "abcdefgh", 8, 5);
    case 'h': {
        const char *slash = strchr(t, '/');
        return msgpack_pack_map(pk, strtoull(slash + 1, NULL, 0)) || msgpack_pack_uint64(pk, 0) ||
               msgpack_pack_uint64(pk, TB_WIRE_VERSION) || msgpack_pack_uint64(pk, 1) ||
               msgpack_pack_uint64(pk, v);
    }
    }
    return -1;
}

/* Appends the tokens of spec to k. */
static void mk_spec(mk *k, const char *spec)
{
    while (*spec) {
        size_t len = strcspn(spec, " ");
        if (len > 0 && mk_token(k, spec, len) != 0) {
            fprintf(stderr, "bad spec token in \"%s\"\n", spec);
            TB_CHECK(0);
        }
        spec += len;
        spec += strspn(spec, " ");
    }
}

static int mk_decode(mk *k, const tb_wire_limits *lim, tb_wire_msg *out, tb_wire_diag *diag)
{
    int rc = decode_copy((const uint8_t *)k->sb.data, k->sb.size, lim, out, diag);
    msgpack_sbuffer_destroy(&k->sb);
    return rc;
}

static int spec_decode(const char *spec, tb_wire_msg *out, tb_wire_diag *diag)
{
    mk k;
    mk_init(&k);
    mk_spec(&k, spec);
    return mk_decode(&k, NULL, out, diag);
}

/* Decodes and expects failure `want` with the diag naming `field`. */
static void expect_fail_k(mk *k, int want, const char *field)
{
    tb_wire_msg m;
    tb_wire_diag diag = {NULL, 0};
    int rc = mk_decode(k, NULL, &m, &diag);
    if (rc != want || !diag.field || strcmp(diag.field, field) != 0)
        fprintf(stderr, "  got %d (%s) at %s, want %d (%s) at %s\n", rc, tb_wire_strerror(rc),
                diag.field ? diag.field : "?", want, tb_wire_strerror(want), field);
    TB_CHECK_EQ(rc, want);
    TB_CHECK_STR(diag.field, field);
    TB_CHECK(m.owned == NULL);
    tb_wire_msg_clear(&m);
}

static void expect_fail(const char *spec, int want, const char *field)
{
    mk k;
    mk_init(&k);
    mk_spec(&k, spec);
    expect_fail_k(&k, want, field);
}

/* ---- round trips ---- */

static void test_round_trip_every_type(void)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        tb_wire_msg m = sample(all_types[i]);
        size_t n;
        TB_CHECK_EQ(round_trip(&m, NULL, &n), 0);
        TB_CHECK(n > 4);
    }
}

static void test_round_trip_extremes(void)
{
    tb_wire_msg m = sample(TB_WIRE_PONG);
    m.pong = (tb_wire_pong){UINT64_MAX, INT64_MIN, INT64_MAX, -1};
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);
    m.pong = (tb_wire_pong){0, 0, -32, -33};
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);

    m = sample(TB_WIRE_BROADCAST);
    m.broadcast.hop_limit = 255;
    m.broadcast.app_type = UINT32_MAX;
    m.broadcast.msg_id = UINT64_MAX;
    m.broadcast.payload = (tb_wire_bytes){NULL, 0};
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);

    m = sample(TB_WIRE_DISCOVER);
    m.discover.max_peers = UINT32_MAX;
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);

    m = sample(TB_WIRE_PEERS); /* empty list */
    m.peers = (tb_wire_peers){NULL, 0};
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);

    m = sample(TB_WIRE_MEASUREMENT);
    m.measurement.body = (tb_wire_bytes){NULL, 0};
    memset(m.measurement.sig, 0xff, TB_WIRE_SIG_LEN);
    TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);
}

static void test_decoded_fields(void)
{
    tb_wire_msg m = sample(TB_WIRE_PEERS), d;
    size_t n;
    TB_REQUIRE(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n) == 0);
    TB_REQUIRE(decode_copy(buf, n, NULL, &d, NULL) == 0);
    TB_CHECK_EQ(d.type, TB_WIRE_PEERS);
    TB_REQUIRE(d.peers.n_peers == 2);
    TB_CHECK_STR(d.peers.peers[0].name, "node-a");
    TB_CHECK_STR(d.peers.peers[0].region, "eu-west");
    TB_REQUIRE(d.peers.peers[0].n_addrs == 2);
    TB_CHECK_STR(d.peers.peers[0].addrs[1], "[::1]:4433");
    TB_CHECK_EQ(d.peers.peers[0].cert.len, sizeof(cert_a));
    TB_CHECK_MEM(d.peers.peers[0].cert.data, cert_a, sizeof(cert_a));
    TB_CHECK_STR(d.peers.peers[1].name, "nöde-b");
    TB_CHECK_EQ(d.peers.peers[1].n_addrs, 0);
    TB_CHECK_EQ(d.peers.peers[1].cert.len, 0);
    tb_wire_msg_clear(&d);
    TB_CHECK(d.owned == NULL && d.type == 0);
    tb_wire_msg_clear(&d); /* twice is safe */

    /* equality really compares: change one field of each type and it differs */
    for (size_t i = 0; i < N_TYPES; i++) {
        tb_wire_msg a = sample(all_types[i]), b = sample(all_types[i]);
        TB_CHECK(tb_wire_msg_equal(&a, &b));
        switch (all_types[i]) {
        case TB_WIRE_PING:
            b.ping.t1++;
            break;
        case TB_WIRE_PONG:
            b.pong.t3++;
            break;
        case TB_WIRE_DISCOVER:
            b.discover.max_peers++;
            break;
        case TB_WIRE_PEERS:
            b.peers.n_peers = 1;
            break;
        case TB_WIRE_MESSAGE:
            b.message.from = "node-x";
            break;
        case TB_WIRE_BROADCAST:
            b.broadcast.hop_limit--;
            break;
        case TB_WIRE_MEASUREMENT:
            b.measurement.sig[63] ^= 1;
            break;
        case TB_WIRE_CERT_REQ:
            b.cert_req.n_names = 1;
            break;
        case TB_WIRE_CERT:
            b.cert.certs = certs_a + 1;
            b.cert.n_certs = 1;
            break;
        case TB_WIRE_ALIVE:
            b.alive.incarnation++;
            break;
        case TB_WIRE_MEASUREMENTS:
            b.measurements.items = items_a + 1;
            b.measurements.n_items = 1;
            break;
        case TB_WIRE_JOIN:
            b.join.node.n_addrs = 1;
            break;
        case TB_WIRE_FORWARD_JOIN:
            b.forward_join.ttl--;
            break;
        case TB_WIRE_NEIGHBOR:
            b.neighbor.high = 0;
            break;
        case TB_WIRE_NEIGHBOR_REPLY:
            b.neighbor_reply.node.region = "ap-south";
            break;
        case TB_WIRE_DISCONNECT:
            b.disconnect.alive = 0;
            break;
        case TB_WIRE_SHUFFLE:
            b.shuffle.nodes.n_nodes = 1;
            break;
        case TB_WIRE_SHUFFLE_REPLY:
            b.shuffle_reply.nodes.nodes = nodes_sample + 1;
            b.shuffle_reply.nodes.n_nodes = 1;
            break;
        case TB_WIRE_IHAVE:
            b.ihave.ids.ids = ids_sample + 1;
            b.ihave.ids.n_ids = 2;
            break;
        case TB_WIRE_GRAFT:
            b.graft.ids.ids = ids_sample + 2;
            break;
        case TB_WIRE_PRUNE:
            b.prune.origin = "node-p";
            break;
        case TB_WIRE_PROBE_REQ:
            b.probe_req.incarnation++;
            break;
        case TB_WIRE_PROBE_ACK:
            b.probe_ack.heard = 0;
            break;
        }
        TB_CHECK(!tb_wire_msg_equal(&a, &b));
    }
}

/* Mesh v2 messages: counts at their limits pass and one more fails, at encode and at decode;
 * ids of another length and flags other than 0/1 are refused; a node without its name is
 * incomplete. */
static void test_mesh_v2_bounds(void)
{
    tb_wire_limits lim = tb_wire_limits_default(), big = lim;
    big.max_ids = 1000;
    big.max_nodes = 100;
    static uint8_t ids[65][TB_WIRE_ID_LEN];
    static tb_wire_node nodes[9];
    for (size_t i = 0; i < 9; i++)
        nodes[i] = nodes_sample[i % 2];
    tb_wire_msg m = sample(TB_WIRE_IHAVE), d;
    tb_wire_diag diag = {NULL, 0};
    size_t n;
    m.ihave.ids = (tb_wire_ids){(const uint8_t(*)[TB_WIRE_ID_LEN])ids, 64};
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), 0);
    m.ihave.ids.n_ids = 65;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "ihave.ids");

    m = sample(TB_WIRE_SHUFFLE);
    m.shuffle.nodes = (tb_wire_nodes){nodes, 8};
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), 0);
    m.shuffle.nodes.n_nodes = 9;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);

    /* A 15-byte id: the encoder cannot write one, so build it by hand with msgpack-c. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TB_WIRE_GRAFT);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_bin(&pk, 15);
    msgpack_pack_bin_body(&pk, ids[0], 15);
    TB_CHECK_EQ(decode_copy((const uint8_t *)sb.data, sb.size, &lim, &d, &diag),
                TB_ERR_WIRE_FIELD_TYPE);
    TB_CHECK_STR(diag.field, "ids[]");
    msgpack_sbuffer_clear(&sb);

    /* A flag of 2. */
    msgpack_pack_map(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TB_WIRE_DISCONNECT);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 2);
    TB_CHECK_EQ(decode_copy((const uint8_t *)sb.data, sb.size, &lim, &d, &diag),
                TB_ERR_WIRE_FIELD_TYPE);
    TB_CHECK_STR(diag.field, "disconnect.alive");
    msgpack_sbuffer_clear(&sb);

    /* A node descriptor without its name. */
    msgpack_pack_map(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TB_WIRE_JOIN);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "eu", 2);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, 0);
    TB_CHECK_EQ(decode_copy((const uint8_t *)sb.data, sb.size, &lim, &d, &diag),
                TB_ERR_WIRE_MISSING);
    TB_CHECK_STR(diag.field, "node.name");
    msgpack_sbuffer_destroy(&sb);

    m = sample(TB_WIRE_NEIGHBOR);
    m.neighbor.high = 2;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample(TB_WIRE_PRUNE);
    m.prune.origin = NULL;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_INVAL);
}

/* Values at each limit pass; one more fails, at encode and at decode. */
static void test_limits_exact(void)
{
    tb_wire_limits lim = tb_wire_limits_default(), big = lim;
    static char name[300];
    memset(name, 'n', lim.max_str_len);
    name[lim.max_str_len] = '\0';
    tb_wire_msg m = sample(TB_WIRE_MESSAGE);
    m.message.to = name;
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), 0);
    name[lim.max_str_len] = 'n';
    name[lim.max_str_len + 1] = '\0';
    size_t n;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    big.max_str_len = 1000;
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    tb_wire_msg d;
    tb_wire_diag diag = {NULL, 0};
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "message.to");

    /* the payload cap */
    static uint8_t pl[65001];
    m = sample(TB_WIRE_BROADCAST);
    m.broadcast.payload = (tb_wire_bytes){pl, lim.max_payload_len};
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), 0);
    m.broadcast.payload.len++;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    big = lim;
    big.max_payload_len = sizeof(pl);
    big.max_msg_size = sizeof(buf);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(decode_copy(buf, n, &big, &d, NULL), 0);
    tb_wire_msg_clear(&d);
    lim.max_msg_size = sizeof(buf);
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "broadcast.payload");

    /* the message size cap, exactly */
    lim = tb_wire_limits_default();
    m = sample(TB_WIRE_PEERS);
    TB_REQUIRE(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n) == 0);
    lim.max_msg_size = n;
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), 0);
    lim.max_msg_size = n - 1;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    lim.max_msg_size = n;
    TB_REQUIRE(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n) == 0);
    lim.max_msg_size = n - 1;
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, NULL), TB_ERR_TOO_BIG);
}

/* A PEERS message full to every count limit, with certificates as big as allowed. */
static void test_limits_peers(void)
{
    tb_wire_limits lim = tb_wire_limits_default();
    lim.max_peers = 16;
    lim.max_addrs = 4;
    lim.max_cert_len = 3000;
    static uint8_t cert[3001];
    static char names[17][16];
    static tb_wire_peer p[17];
    static const char *const a4[] = {"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "10.0.0.4:4",
                                     "10.0.0.5:5"};
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof(names[i]), "node-%d", i);
        p[i] = (tb_wire_peer){names[i], "r", a4, 4, {cert, 3000}};
    }
    tb_wire_msg m = {.type = TB_WIRE_PEERS, .peers = {p, 16}}, d;
    size_t n;
    TB_CHECK_EQ(round_trip(&m, &lim, &n), 0);
    TB_CHECK(n > 16 * 3000);

    tb_wire_limits big = lim;
    big.max_peers = 17;
    big.max_addrs = 5;
    big.max_cert_len = 3001;
    m.peers.n_peers = 17;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    tb_wire_diag diag;
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "peers.peers");

    m.peers.n_peers = 16;
    p[3].n_addrs = 5;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "peers[].addresses");

    p[3].n_addrs = 4;
    p[5].cert.len = 3001;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_TOO_BIG);
    TB_REQUIRE(tb_wire_encode(&m, &big, buf, sizeof(buf), &n) == 0);
    TB_CHECK_EQ(decode_copy(buf, n, &lim, &d, &diag), TB_ERR_TOO_BIG);
    TB_CHECK_STR(diag.field, "peers[].cert");
}

/* ---- rejections ---- */

/* Every strict prefix of a valid message is rejected as truncated, never read past. */
static void test_truncation_every_offset(void)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        tb_wire_msg m = sample(all_types[i]), d;
        size_t n;
        TB_REQUIRE(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n) == 0);
        for (size_t k = 0; k < n; k++) {
            int rc = decode_copy(buf, k, NULL, &d, NULL);
            if (rc != TB_ERR_TRUNCATED)
                fprintf(stderr, "  %s cut at %zu of %zu: %d\n", tb_wire_type_name(m.type), k, n,
                        rc);
            TB_CHECK_EQ(rc, TB_ERR_TRUNCATED);
            TB_CHECK(d.owned == NULL);
        }
    }
}

static void test_trailing_bytes(void)
{
    tb_wire_msg m = sample(TB_WIRE_PING), d;
    size_t n;
    tb_wire_diag diag;
    TB_REQUIRE(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n) == 0);
    buf[n] = 0xc0; /* a whole msgpack nil after the message */
    TB_CHECK_EQ(decode_copy(buf, n + 1, NULL, &d, &diag), TB_ERR_WIRE_TRAILING);
    TB_CHECK_EQ(diag.offset, n);
    /* two valid messages back to back are not one message */
    memcpy(buf + n, buf, n);
    TB_CHECK_EQ(decode_copy(buf, 2 * n, NULL, &d, NULL), TB_ERR_WIRE_TRAILING);
}

static void test_version(void)
{
    expect_fail("m4 u0 u0 u1 u1 u2 u1 u3 u1", TB_ERR_WIRE_VERSION, "version");
    expect_fail("m4 u0 u3 u1 u1 u2 u1 u3 u1", TB_ERR_WIRE_VERSION, "version");
    expect_fail("m4 u0 u255 u1 u1 u2 u1 u3 u1", TB_ERR_WIRE_VERSION, "version");
    expect_fail("m4 u0 u0xffffffffffffffff u1 u1 u2 u1 u3 u1", TB_ERR_WIRE_VERSION, "version");
    /* another major with a type this version does not know still reports the version */
    expect_fail("m2 u0 u3 u1 u200", TB_ERR_WIRE_VERSION, "version");
    expect_fail("m2 u0 s:1 u1 u1", TB_ERR_WIRE_FIELD_TYPE, "version");
    expect_fail("m2 u0 i-1 u1 u1", TB_ERR_WIRE_FIELD_TYPE, "version");
}

static void test_unknown_type(void)
{
    expect_fail("h0/2", TB_ERR_WIRE_UNKNOWN_TYPE, "type");
    expect_fail("h200/2", TB_ERR_WIRE_UNKNOWN_TYPE, "type");
    expect_fail("h99/3 u2 u1", TB_ERR_WIRE_UNKNOWN_TYPE, "type");
    expect_fail("h0xffffffffffffffff/2", TB_ERR_WIRE_UNKNOWN_TYPE, "type");
    expect_fail("m2 u0 u2 u1 s:PING", TB_ERR_WIRE_FIELD_TYPE, "type");
    tb_wire_msg m = {.type = (tb_wire_type)99};
    size_t n;
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), TB_ERR_WIRE_UNKNOWN_TYPE);
}

static void test_missing_fields(void)
{
    expect_fail("m0", TB_ERR_WIRE_MISSING, "version");
    expect_fail("m1 u1 u1", TB_ERR_WIRE_MISSING, "version");
    expect_fail("m1 u0 u2", TB_ERR_WIRE_MISSING, "type");
    expect_fail("m2 u0 u2 u2 u1", TB_ERR_WIRE_MISSING, "type");
    expect_fail("h1/3 u2 u5", TB_ERR_WIRE_MISSING, "ping.t1");
    expect_fail("h1/3 u3 i5", TB_ERR_WIRE_MISSING, "ping.id");
    expect_fail("h2/5 u2 u1 u3 i1 u5 i3", TB_ERR_WIRE_MISSING, "pong.t2");
    expect_fail("h3/2", TB_ERR_WIRE_MISSING, "discover.max_peers");
    expect_fail("h4/2", TB_ERR_WIRE_MISSING, "peers.peers");
    expect_fail("h4/3 u2 a1 m3 u0 s:a u1 s:r u2 a0", TB_ERR_WIRE_MISSING, "peers[].cert");
    expect_fail("h4/3 u2 a1 m3 u1 s:r u2 a0 u3 b:c", TB_ERR_WIRE_MISSING, "peers[].name");
    expect_fail("h5/5 u2 s:a u3 s:b u5 b:", TB_ERR_WIRE_MISSING, "message.app_type");
    expect_fail("h6/6 u2 s:a u3 u1 u5 u1 u6 b:", TB_ERR_WIRE_MISSING, "broadcast.hop_limit");
    expect_fail("h7/5 u2 s:a u3 u1 u4 b:x", TB_ERR_WIRE_MISSING, "measurement.sig");
}

static void test_wrong_types(void)
{
    const char *ids[] = {"s:42", "i-1", "n", "d", "f", "b:x", "a1 u42", "m0", "e"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char spec[64];
        snprintf(spec, sizeof(spec), "h1/4 u2 %s u3 i5", ids[i]);
        expect_fail(spec, TB_ERR_WIRE_FIELD_TYPE, "ping.id");
    }
    expect_fail("h1/4 u2 u1 u3 u0x8000000000000000", TB_ERR_WIRE_FIELD_TYPE, "ping.t1");
    expect_fail("h6/7 u2 s:a u3 u1 u4 u256 u5 u1 u6 b:", TB_ERR_WIRE_FIELD_TYPE,
                "broadcast.hop_limit");
    expect_fail("h6/7 u2 s:a u3 u1 u4 i-1 u5 u1 u6 b:", TB_ERR_WIRE_FIELD_TYPE,
                "broadcast.hop_limit");
    expect_fail("h5/6 u2 s:a u3 s:b u4 u0x100000000 u5 b:", TB_ERR_WIRE_FIELD_TYPE,
                "message.app_type");
    expect_fail("h3/3 u2 u0x100000000", TB_ERR_WIRE_FIELD_TYPE, "discover.max_peers");
    expect_fail("h5/3 u2 b:a", TB_ERR_WIRE_FIELD_TYPE, "message.to");
    expect_fail("h5/6 u2 s:a u3 s:b u4 u1 u5 s:text", TB_ERR_WIRE_FIELD_TYPE, "message.payload");
    expect_fail("h7/6 u2 s:a u3 u1 u4 b: u5 B63", TB_ERR_WIRE_FIELD_TYPE, "measurement.sig");
    expect_fail("h7/6 u2 s:a u3 u1 u4 b: u5 B65", TB_ERR_WIRE_FIELD_TYPE, "measurement.sig");
    expect_fail("h7/6 u2 s:a u3 u1 u4 b: u5 S64", TB_ERR_WIRE_FIELD_TYPE, "measurement.sig");
    expect_fail("h4/3 u2 m0", TB_ERR_WIRE_FIELD_TYPE, "peers.peers");
    expect_fail("h4/3 u2 a1 s:peer", TB_ERR_WIRE_FIELD_TYPE, "peers[]");
    expect_fail("h4/3 u2 a1 m4 u0 s:a u1 s:r u2 s:127.0.0.1:1", TB_ERR_WIRE_FIELD_TYPE,
                "peers[].addresses");
    expect_fail("h4/3 u2 a1 m4 u0 s:a u1 s:r u2 a1 u1", TB_ERR_WIRE_FIELD_TYPE,
                "peers[].addresses");
    expect_fail("h4/3 u2 a1 m4 u0 s:a u1 s:r u2 a0 u3 s:c", TB_ERR_WIRE_FIELD_TYPE, "peers[].cert");
}

/* Integers in wider encodings than needed are the same values. */
/* The lists of the v2 types are bounded both ways; a BROADCAST without a signature is refused. */
static void test_v2_lists(void)
{
    tb_wire_limits lim = tb_wire_limits_default();
    size_t n;
    tb_wire_msg m = sample(TB_WIRE_CERT_REQ);
    m.cert_req.n_names = 0;
    TB_CHECK_EQ(tb_wire_encode(&m, &lim, buf, sizeof(buf), &n), TB_ERR_INVAL);
    expect_fail("h20/3 u2 a0", TB_ERR_WIRE_FIELD_TYPE, "cert_req.names");
    expect_fail("h23/4 u2 s:a u3 a0", TB_ERR_WIRE_FIELD_TYPE, "measurements.items");
    expect_fail("h23/4 u2 s:a u3 a1 m2 u0 u1 u1 b:x", TB_ERR_WIRE_MISSING, "items[].sig");
    expect_fail("h6/7 u2 s:a u3 u1 u4 u1 u5 u1 u6 b:", TB_ERR_WIRE_MISSING, "broadcast.sig");
    lim.max_batch = 1;
    m = sample(TB_WIRE_MEASUREMENTS);
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), TB_ERR_TOO_BIG);
    lim.max_certs = 1;
    m = sample(TB_WIRE_CERT);
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), TB_ERR_TOO_BIG);
    m = sample(TB_WIRE_CERT_REQ);
    TB_CHECK_EQ(round_trip(&m, &lim, NULL), TB_ERR_TOO_BIG);
    m = sample(TB_WIRE_MEASUREMENTS);
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), 0);
    TB_CHECK_EQ(tb_wire_decode(buf, n, &lim, &m, NULL), TB_ERR_TOO_BIG);
}

static void test_wide_integers(void)
{
    static const uint8_t ping[] = {
        0x84,                                                        /* map of 4 */
        0xcf, 0,    0,    0,    0,    0,    0,    0,    0,    0x02,  /* 0: 2 (key as uint64) */
        0x01, 0xd0, 0x01,                                            /* 1: 1 (as int8) */
        0x02, 0xcd, 0x00, 0x2a,                                      /* 2: 42 (uint16) */
        0x03, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}; /* 3: -2 (int64) */
    tb_wire_msg m;
    TB_REQUIRE(decode_copy(ping, sizeof(ping), NULL, &m, NULL) == 0);
    TB_CHECK_EQ(m.type, TB_WIRE_PING);
    TB_CHECK_EQ(m.ping.id, 42);
    TB_CHECK_EQ(m.ping.t1, -2);
    tb_wire_msg_clear(&m);
}

static void test_keys(void)
{
    expect_fail("h1/4 u3 i1 u2 u1", TB_ERR_MALFORMED, "key (not ascending)");
    expect_fail("h1/5 u2 u1 u2 u1 u3 i1", TB_ERR_MALFORMED, "key (not ascending)");
    expect_fail("h1/5 u2 u1 u3 i1 s:x u1", TB_ERR_MALFORMED, "key (not an unsigned integer)");
    expect_fail("h3/3 i-2 u1", TB_ERR_MALFORMED, "key (not an unsigned integer)");
    expect_fail("h3/3 u1 u1", TB_ERR_MALFORMED, "key (not ascending)");
    expect_fail("h4/3 u2 a1 m4 u1 s:r u0 s:a u2 a0 u3 b:c", TB_ERR_MALFORMED,
                "key (not ascending)");
    expect_fail("a2 u1 u1", TB_ERR_MALFORMED, "message");
    expect_fail("u1", TB_ERR_MALFORMED, "message");
    expect_fail("m2 u0 u2 u0 u1", TB_ERR_MALFORMED, "type");
    expect_fail("m2 s:v u1 u1 u1", TB_ERR_MALFORMED, "key (not an unsigned integer)");
}

/* Unknown keys carrying any kind of value are skipped: the message decodes as if they were not
 * there. */
static void test_unknown_keys_ignored(void)
{
    tb_wire_msg m;
    TB_REQUIRE(spec_decode("h3/8 u2 u9 u3 m2 s:a a3 u1 n d i-7 b:xyz u4 e u5 f u6 S300 "
                           "u1000000 a2 m1 u1 a0 B70",
                           &m, NULL) == 0);
    TB_CHECK_EQ(m.type, TB_WIRE_DISCOVER);
    TB_CHECK_EQ(m.discover.max_peers, 9);
    tb_wire_msg_clear(&m);

    /* an unknown key inside a peer entry, after the known ones */
    TB_REQUIRE(
        spec_decode("h4/3 u2 a1 m5 u0 s:a u1 s:r u2 a0 u3 b:c u4 a2 s:future u1", &m, NULL) == 0);
    TB_REQUIRE(m.peers.n_peers == 1);
    TB_CHECK_STR(m.peers.peers[0].name, "a");
    TB_CHECK_EQ(m.peers.peers[0].cert.len, 1);
    tb_wire_msg_clear(&m);

    /* an unknown value that is truncated, or uses the never-used byte 0xc1 */
    static const uint8_t cut[] = {0x84, 0, 2, 1, 3, 2, 5, 9, 0x92, 0x01};
    tb_wire_diag diag;
    TB_CHECK_EQ(decode_copy(cut, sizeof(cut), NULL, &m, &diag), TB_ERR_TRUNCATED);
    TB_CHECK_STR(diag.field, "unknown field");
    static const uint8_t c1[] = {0x84, 0, 2, 1, 3, 2, 5, 9, 0x92, 0x01, 0xc1};
    TB_CHECK_EQ(decode_copy(c1, sizeof(c1), NULL, &m, NULL), TB_ERR_MALFORMED);
}

static void test_lying_counts(void)
{
    tb_wire_limits huge = tb_wire_limits_default();
    huge.max_peers = SIZE_MAX;
    huge.max_addrs = SIZE_MAX;
    huge.max_str_len = SIZE_MAX;
    /* PEERS announcing 2^32-1 peers in a few bytes */
    static const uint8_t peers[] = {0x83, 0, 2, 1, 4, 2, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x80};
    tb_wire_msg m;
    TB_CHECK_EQ(decode_copy(peers, sizeof(peers), NULL, &m, NULL), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(decode_copy(peers, sizeof(peers), &huge, &m, NULL), TB_ERR_TRUNCATED);
    /* top-level map announcing 2^32-1 entries; a str32 of 4 GiB; an unknown array32 */
    static const uint8_t map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0, 2, 1, 1};
    TB_CHECK_EQ(decode_copy(map, sizeof(map), &huge, &m, NULL), TB_ERR_TRUNCATED);
    static const uint8_t str[] = {0x85, 0, 2, 1, 5, 2, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    TB_CHECK_EQ(decode_copy(str, sizeof(str), &huge, &m, NULL), TB_ERR_TRUNCATED);
    TB_CHECK_EQ(decode_copy(str, sizeof(str), NULL, &m, NULL), TB_ERR_TOO_BIG);
    static const uint8_t arr[] = {0x83, 0, 2, 1, 3, 9, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90};
    TB_CHECK_EQ(decode_copy(arr, sizeof(arr), NULL, &m, NULL), TB_ERR_TRUNCATED);
    /* the input itself larger than the message cap */
    static uint8_t big[65537];
    TB_CHECK_EQ(decode_copy(big, sizeof(big), NULL, &m, NULL), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_wire_decode(NULL, 0, NULL, &m, NULL), TB_ERR_TRUNCATED);
}

static void test_text_rules(void)
{
    const char *bad[] = {"a\nb",     "tab\there",        "\x7f",
                         "\xc3",     "\xc0\xaf",         "\xed\xa0\x80",
                         "\xc2\x85", "\xf5\x80\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mk k;
        mk_init(&k);
        mk_spec(&k, "h7/3 u2");
        TB_CHECK(msgpack_pack_str_with_body(&k.pk, bad[i], strlen(bad[i])) == 0);
        expect_fail_k(&k, TB_ERR_MALFORMED, "measurement.origin");
        tb_wire_msg m = sample(TB_WIRE_MEASUREMENT);
        size_t n;
        m.measurement.origin = bad[i];
        TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), TB_ERR_INVAL);
    }
    expect_fail("h7/3 u2 s:", TB_ERR_MALFORMED, "measurement.origin"); /* empty */
    mk k;                                                              /* an embedded NUL */
    mk_init(&k);
    mk_spec(&k, "h7/3 u2");
    TB_CHECK(msgpack_pack_str_with_body(&k.pk, "a\0b", 3) == 0);
    expect_fail_k(&k, TB_ERR_MALFORMED, "measurement.origin");

    const char *good[] = {"région-é", "東京-1", "\xf0\x9f\x95\x90 clock", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        tb_wire_msg m = sample(TB_WIRE_MEASUREMENT);
        m.measurement.origin = good[i];
        TB_CHECK_EQ(round_trip(&m, NULL, NULL), 0);
    }
}

static void test_encoder_checks(void)
{
    tb_wire_msg m = sample(TB_WIRE_MESSAGE);
    size_t n, full;
    TB_REQUIRE(tb_wire_encode(&m, NULL, buf, sizeof(buf), &full) == 0);
    for (size_t cap = 0; cap < full; cap++)
        TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, cap, &n), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, full, &n), 0);
    TB_CHECK_EQ(n, full);

    m.message.from = NULL;
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample(TB_WIRE_MESSAGE);
    m.message.payload.data = NULL; /* a length without data */
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), TB_ERR_INVAL);
    m = sample(TB_WIRE_PEERS);
    m.peers.peers = NULL;
    TB_CHECK_EQ(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n), TB_ERR_INVAL);
}

/* Our output is plain msgpack: msgpack-c's own unpacker reads it as the documented map. */
static void test_msgpack_c_reads_our_output(void)
{
    tb_wire_msg m = sample(TB_WIRE_BROADCAST);
    size_t n;
    TB_REQUIRE(tb_wire_encode(&m, NULL, buf, sizeof(buf), &n) == 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    TB_REQUIRE(msgpack_unpack_next(&u, (const char *)buf, n, &off) == MSGPACK_UNPACK_SUCCESS);
    TB_CHECK_EQ(off, n);
    msgpack_object o = u.data;
    TB_REQUIRE(o.type == MSGPACK_OBJECT_MAP && o.via.map.size == 8);
    msgpack_object_kv *kv = o.via.map.ptr;
    for (uint32_t i = 0; i < 7; i++) {
        TB_CHECK(kv[i].key.type == MSGPACK_OBJECT_POSITIVE_INTEGER);
        TB_CHECK_EQ(kv[i].key.via.u64, i);
    }
    TB_CHECK_EQ(kv[0].val.via.u64, TB_WIRE_VERSION);
    TB_CHECK_EQ(kv[1].val.via.u64, TB_WIRE_BROADCAST);
    TB_CHECK(kv[2].val.type == MSGPACK_OBJECT_STR && kv[2].val.via.str.size == 6);
    TB_CHECK_EQ(kv[3].val.via.u64, 0x1122334455667788ULL);
    TB_CHECK_EQ(kv[4].val.via.u64, 8);
    TB_CHECK(kv[6].val.type == MSGPACK_OBJECT_BIN && kv[6].val.via.bin.size == sizeof(payload));
    msgpack_unpacked_destroy(&u);
}

static void test_diag_offset(void)
{
    tb_wire_msg m;
    tb_wire_diag diag = {NULL, 0};
    TB_CHECK_EQ(spec_decode("h3/3 u2 s:x", &m, &diag), TB_ERR_WIRE_FIELD_TYPE);
    TB_CHECK_STR(diag.field, "discover.max_peers");
    TB_CHECK_EQ(diag.offset, 6); /* map, 0, 1, 1, 3, 2: the value starts at byte 6 */
}

static void test_names(void)
{
    TB_CHECK_STR(tb_wire_type_name(TB_WIRE_MEASUREMENT), "MEASUREMENT");
    TB_CHECK_STR(tb_wire_type_name(0), "unknown");
    TB_CHECK_STR(tb_wire_type_name(-5), "unknown");
    TB_CHECK_STR(tb_wire_type_name(TB_WIRE_PROBE_ACK), "PROBE_ACK");
    TB_CHECK_STR(tb_wire_type_name(200), "unknown");
    const int codes[] = {TB_ERR_WIRE_VERSION,    TB_ERR_WIRE_UNKNOWN_TYPE, TB_ERR_WIRE_MISSING,
                         TB_ERR_WIRE_FIELD_TYPE, TB_ERR_WIRE_TRAILING,     TB_ERR_TRUNCATED,
                         TB_ERR_TOO_BIG,         TB_ERR_MALFORMED};
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++)
            TB_CHECK(strcmp(tb_wire_strerror(codes[i]), tb_wire_strerror(codes[j])) != 0);
    TB_CHECK(tb_wire_datagram_ok(TB_WIRE_PING));
    TB_CHECK(tb_wire_datagram_ok(TB_WIRE_PONG));
    for (size_t i = 2; i < N_TYPES; i++)
        TB_CHECK(!tb_wire_datagram_ok(all_types[i]));
}

/* A map or array whose 16/32-bit count is cut off, alone, inside an array and as a map value:
 * the skipper reports the truncation and counts nothing for the header it could not read. */
static void test_skip_truncated_counts(void)
{
    static const uint8_t heads[] = {0xde, 0xdf, 0xdc, 0xdd}; /* map16, map32, array16, array32 */
    for (size_t h = 0; h < sizeof(heads); h++) {
        size_t count_len = (heads[h] & 1) ? 4 : 2;
        for (size_t cut = 0; cut < count_len; cut++) {
            for (int wrap = 0; wrap < 3; wrap++) {
                uint8_t in[8];
                size_t n = 0;
                if (wrap == 1)
                    in[n++] = 0x91; /* [ x ] */
                if (wrap == 2) {
                    in[n++] = 0x81; /* { 1: x } */
                    in[n++] = 0x01;
                }
                in[n++] = heads[h];
                memset(in + n, 0, cut);
                n += cut;
                tb_mpr r = {.p = in, .len = n};
                TB_CHECK_EQ(tb_mpr_skip(&r), TB_ERR_TRUNCATED);
                TB_CHECK(r.used < n); /* the cut header was not consumed */
            }
        }
        /* With the whole count present (zero elements) the same value skips. */
        uint8_t whole[5] = {heads[h], 0, 0, 0, 0};
        tb_mpr r = {.p = whole, .len = 1 + count_len};
        TB_CHECK_EQ(tb_mpr_skip(&r), 0);
        TB_CHECK_EQ(r.used, 1 + count_len);
    }
}

int main(void)
{
    TB_RUN(test_round_trip_every_type);
    TB_RUN(test_round_trip_extremes);
    TB_RUN(test_decoded_fields);
    TB_RUN(test_limits_exact);
    TB_RUN(test_mesh_v2_bounds);
    TB_RUN(test_limits_peers);
    TB_RUN(test_truncation_every_offset);
    TB_RUN(test_trailing_bytes);
    TB_RUN(test_version);
    TB_RUN(test_v2_lists);
    TB_RUN(test_unknown_type);
    TB_RUN(test_missing_fields);
    TB_RUN(test_wrong_types);
    TB_RUN(test_wide_integers);
    TB_RUN(test_keys);
    TB_RUN(test_unknown_keys_ignored);
    TB_RUN(test_lying_counts);
    TB_RUN(test_text_rules);
    TB_RUN(test_encoder_checks);
    TB_RUN(test_msgpack_c_reads_our_output);
    TB_RUN(test_diag_offset);
    TB_RUN(test_names);
    TB_RUN(test_skip_truncated_counts);
    return TB_DONE();
}
