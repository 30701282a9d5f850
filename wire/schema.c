#include "wire/schema.h"

#include <string.h>

#define F(k, kind, type, member, name)                                                             \
    {                                                                                              \
        k, kind, offsetof(type, member), 0, name                                                   \
    }
#define M(k, kind, member, name) F(k, kind, tb_wire_msg, member, name)

static const tb_wire_field ping_f[] = {
    M(2, TB_WK_U64, ping.id, "ping.id"),
    M(3, TB_WK_I64, ping.t1, "ping.t1"),
};

static const tb_wire_field pong_f[] = {
    M(2, TB_WK_U64, pong.id, "pong.id"),
    M(3, TB_WK_I64, pong.t1, "pong.t1"),
    M(4, TB_WK_I64, pong.t2, "pong.t2"),
    M(5, TB_WK_I64, pong.t3, "pong.t3"),
};

static const tb_wire_field discover_f[] = {
    M(2, TB_WK_U32, discover.max_peers, "discover.max_peers"),
};

static const tb_wire_field peers_f[] = {
    M(2, TB_WK_PEERS, peers, "peers.peers"),
};

static const tb_wire_field message_f[] = {
    M(2, TB_WK_TEXT, message.to, "message.to"),
    M(3, TB_WK_TEXT, message.from, "message.from"),
    M(4, TB_WK_U32, message.app_type, "message.app_type"),
    M(5, TB_WK_PAYLOAD, message.payload, "message.payload"),
};

static const tb_wire_field broadcast_f[] = {
    M(2, TB_WK_TEXT, broadcast.origin, "broadcast.origin"),
    M(3, TB_WK_U64, broadcast.msg_id, "broadcast.msg_id"),
    M(4, TB_WK_U8, broadcast.hop_limit, "broadcast.hop_limit"),
    M(5, TB_WK_U32, broadcast.app_type, "broadcast.app_type"),
    M(6, TB_WK_PAYLOAD, broadcast.payload, "broadcast.payload"),
    M(7, TB_WK_SIG, broadcast.sig, "broadcast.sig"),
};

#define LIST(k, kind, member, n_member, name)                                                      \
    {                                                                                              \
        k, kind, offsetof(tb_wire_msg, member), offsetof(tb_wire_msg, n_member), name              \
    }

static const tb_wire_field cert_req_f[] = {
    LIST(2, TB_WK_NAMES, cert_req.names, cert_req.n_names, "cert_req.names"),
};

static const tb_wire_field cert_f[] = {
    LIST(2, TB_WK_CERTS, cert.certs, cert.n_certs, "cert.certs"),
};

static const tb_wire_field alive_f[] = {
    M(2, TB_WK_TEXT, alive.name, "alive.name"),
    M(3, TB_WK_TEXT, alive.region, "alive.region"),
    LIST(4, TB_WK_ADDRS, alive.addrs, alive.n_addrs, "alive.addresses"),
    M(5, TB_WK_CERT, alive.cert, "alive.cert"),
    M(6, TB_WK_U64, alive.incarnation, "alive.incarnation"),
};

static const tb_wire_field measurements_f[] = {
    M(2, TB_WK_TEXT, measurements.origin, "measurements.origin"),
    LIST(3, TB_WK_MITEMS, measurements.items, measurements.n_items, "measurements.items"),
};

static const tb_wire_field mitem_f[] = {
    F(0, TB_WK_U64, tb_wire_mitem, seq, "items[].seq"),
    F(1, TB_WK_PAYLOAD, tb_wire_mitem, body, "items[].body"),
    F(2, TB_WK_SIG, tb_wire_mitem, sig, "items[].sig"),
};

static const tb_wire_field measurement_f[] = {
    M(2, TB_WK_TEXT, measurement.origin, "measurement.origin"),
    M(3, TB_WK_U64, measurement.seq, "measurement.seq"),
    M(4, TB_WK_PAYLOAD, measurement.body, "measurement.body"),
    M(5, TB_WK_SIG, measurement.sig, "measurement.sig"),
};

static const tb_wire_field join_f[] = {
    M(2, TB_WK_NODE, join.node, "join.node"),
};

static const tb_wire_field forward_join_f[] = {
    M(2, TB_WK_NODE, forward_join.node, "forward_join.node"),
    M(3, TB_WK_U8, forward_join.ttl, "forward_join.ttl"),
};

static const tb_wire_field neighbor_f[] = {
    M(2, TB_WK_NODE, neighbor.node, "neighbor.node"),
    M(3, TB_WK_FLAG, neighbor.high, "neighbor.high"),
};

static const tb_wire_field neighbor_reply_f[] = {
    M(2, TB_WK_NODE, neighbor_reply.node, "neighbor_reply.node"),
    M(3, TB_WK_FLAG, neighbor_reply.accepted, "neighbor_reply.accepted"),
};

static const tb_wire_field disconnect_f[] = {
    M(2, TB_WK_FLAG, disconnect.alive, "disconnect.alive"),
};

static const tb_wire_field shuffle_f[] = {
    M(2, TB_WK_NODE, shuffle.node, "shuffle.node"),
    M(3, TB_WK_U8, shuffle.ttl, "shuffle.ttl"),
    M(4, TB_WK_NODES, shuffle.nodes, "shuffle.nodes"),
};

static const tb_wire_field shuffle_reply_f[] = {
    M(2, TB_WK_NODES, shuffle_reply.nodes, "shuffle_reply.nodes"),
};

static const tb_wire_field ihave_f[] = {
    M(2, TB_WK_IDS, ihave.ids, "ihave.ids"),
};

static const tb_wire_field graft_f[] = {
    M(2, TB_WK_IDS, graft.ids, "graft.ids"),
};

static const tb_wire_field prune_f[] = {
    M(2, TB_WK_TEXT, prune.origin, "prune.origin"),
};

static const tb_wire_field probe_req_f[] = {
    M(2, TB_WK_U64, probe_req.probe_id, "probe_req.probe_id"),
    M(3, TB_WK_TEXT, probe_req.target, "probe_req.target"),
    M(4, TB_WK_U64, probe_req.incarnation, "probe_req.incarnation"),
    M(5, TB_WK_FLAG, probe_req.suspect, "probe_req.suspect"),
};

static const tb_wire_field probe_ack_f[] = {
    M(2, TB_WK_U64, probe_ack.probe_id, "probe_ack.probe_id"),
    M(3, TB_WK_TEXT, probe_ack.target, "probe_ack.target"),
    M(4, TB_WK_FLAG, probe_ack.heard, "probe_ack.heard"),
};

static const tb_wire_field node_f[] = {
    F(0, TB_WK_TEXT, tb_wire_node, name, "node.name"),
    F(1, TB_WK_TEXT, tb_wire_node, region, "node.region"),
    {2, TB_WK_ADDRS, offsetof(tb_wire_node, addrs), offsetof(tb_wire_node, n_addrs),
     "node.addresses"},
};

static const tb_wire_field peer_f[] = {
    F(0, TB_WK_TEXT, tb_wire_peer, name, "peers[].name"),
    F(1, TB_WK_TEXT, tb_wire_peer, region, "peers[].region"),
    {2, TB_WK_ADDRS, offsetof(tb_wire_peer, addrs), offsetof(tb_wire_peer, n_addrs),
     "peers[].addresses"},
    F(3, TB_WK_CERT, tb_wire_peer, cert, "peers[].cert"),
};

#define SCHEMA(a)                                                                                  \
    {                                                                                              \
        a, sizeof(a) / sizeof((a)[0])                                                              \
    }

static const tb_wire_schema schemas[] = {
    [TB_WIRE_PING] = SCHEMA(ping_f),
    [TB_WIRE_PONG] = SCHEMA(pong_f),
    [TB_WIRE_DISCOVER] = SCHEMA(discover_f),
    [TB_WIRE_PEERS] = SCHEMA(peers_f),
    [TB_WIRE_MESSAGE] = SCHEMA(message_f),
    [TB_WIRE_BROADCAST] = SCHEMA(broadcast_f),
    [TB_WIRE_MEASUREMENT] = SCHEMA(measurement_f),
    [TB_WIRE_CERT_REQ] = SCHEMA(cert_req_f),
    [TB_WIRE_CERT] = SCHEMA(cert_f),
    [TB_WIRE_ALIVE] = SCHEMA(alive_f),
    [TB_WIRE_JOIN] = SCHEMA(join_f),
    [TB_WIRE_FORWARD_JOIN] = SCHEMA(forward_join_f),
    [TB_WIRE_NEIGHBOR] = SCHEMA(neighbor_f),
    [TB_WIRE_NEIGHBOR_REPLY] = SCHEMA(neighbor_reply_f),
    [TB_WIRE_DISCONNECT] = SCHEMA(disconnect_f),
    [TB_WIRE_SHUFFLE] = SCHEMA(shuffle_f),
    [TB_WIRE_SHUFFLE_REPLY] = SCHEMA(shuffle_reply_f),
    [TB_WIRE_IHAVE] = SCHEMA(ihave_f),
    [TB_WIRE_GRAFT] = SCHEMA(graft_f),
    [TB_WIRE_PRUNE] = SCHEMA(prune_f),
    [TB_WIRE_PROBE_REQ] = SCHEMA(probe_req_f),
    [TB_WIRE_PROBE_ACK] = SCHEMA(probe_ack_f),
    [TB_WIRE_MEASUREMENTS] = SCHEMA(measurements_f),
};

static const tb_wire_schema peer_schema = SCHEMA(peer_f);
static const tb_wire_schema mitem_schema = SCHEMA(mitem_f);
static const tb_wire_schema node_schema = SCHEMA(node_f);

const tb_wire_schema *tb_wire_schema_of(uint64_t type)
{
    if (type >= sizeof(schemas) / sizeof(schemas[0]) || !schemas[type].fields)
        return NULL;
    return &schemas[type];
}

const tb_wire_schema *tb_wire_schema_node(void)
{
    return &node_schema;
}

const tb_wire_schema *tb_wire_schema_peer(void)
{
    return &peer_schema;
}

const tb_wire_schema *tb_wire_schema_mitem(void)
{
    return &mitem_schema;
}

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when it is not well-formed, is a
 * surrogate or overlong, or is a C1 control character. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        if (b == 0xc2)
            lo = 0xa0; /* U+0080..U+009F are C1 controls */
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

bool tb_wire_text_ok(const uint8_t *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

tb_wire_limits tb_wire_limits_default(void)
{
    return (tb_wire_limits){
        .max_msg_size = 65536,
        .max_peers = 64,
        .max_addrs = 8,
        .max_str_len = 255,
        .max_payload_len = 65000,
        .max_cert_len = 4096,
        .max_certs = 16,
        .max_batch = 256,
        .max_nodes = 8,
        .max_ids = 64,
    };
}

const char *tb_wire_type_name(int type)
{
    static const char *const names[] = {
        [TB_WIRE_PING] = "PING",
        [TB_WIRE_PONG] = "PONG",
        [TB_WIRE_DISCOVER] = "DISCOVER",
        [TB_WIRE_PEERS] = "PEERS",
        [TB_WIRE_MESSAGE] = "MESSAGE",
        [TB_WIRE_BROADCAST] = "BROADCAST",
        [TB_WIRE_MEASUREMENT] = "MEASUREMENT",
        [TB_WIRE_CERT_REQ] = "CERT_REQ",
        [TB_WIRE_CERT] = "CERT",
        [TB_WIRE_ALIVE] = "ALIVE",
        [TB_WIRE_MEASUREMENTS] = "MEASUREMENTS",
        [TB_WIRE_JOIN] = "JOIN",
        [TB_WIRE_FORWARD_JOIN] = "FORWARD_JOIN",
        [TB_WIRE_NEIGHBOR] = "NEIGHBOR",
        [TB_WIRE_NEIGHBOR_REPLY] = "NEIGHBOR_REPLY",
        [TB_WIRE_DISCONNECT] = "DISCONNECT",
        [TB_WIRE_SHUFFLE] = "SHUFFLE",
        [TB_WIRE_SHUFFLE_REPLY] = "SHUFFLE_REPLY",
        [TB_WIRE_IHAVE] = "IHAVE",
        [TB_WIRE_GRAFT] = "GRAFT",
        [TB_WIRE_PRUNE] = "PRUNE",
        [TB_WIRE_PROBE_REQ] = "PROBE_REQ",
        [TB_WIRE_PROBE_ACK] = "PROBE_ACK",
    };
    if (type < 0 || (size_t)type >= sizeof(names) / sizeof(names[0]) || !names[type])
        return "unknown";
    return names[type];
}

const char *tb_wire_strerror(int err)
{
    switch (err) {
    case TB_ERR_WIRE_VERSION:
        return "other wire format version";
    case TB_ERR_WIRE_UNKNOWN_TYPE:
        return "unknown message type";
    case TB_ERR_WIRE_MISSING:
        return "required field missing";
    case TB_ERR_WIRE_FIELD_TYPE:
        return "field of wrong type or out of range";
    case TB_ERR_WIRE_TRAILING:
        return "bytes after the message";
    default:
        return tb_strerror(err);
    }
}

bool tb_wire_datagram_ok(tb_wire_type type)
{
    return type == TB_WIRE_PING || type == TB_WIRE_PONG;
}
