/* Several tb_node in one process and one event loop (no globals): a 3-node mesh from one seed
 * comes up, pings give an RTT and an offset, a broadcast reaches every node exactly once, a
 * MESSAGE reaches the named node only, a peer sending malformed, misaddressed and oversized
 * messages is counted and survived (also on a link being closed), and a clean stop closes every
 * connection. Then seeds given as names: through a hosts file, and through a resolver that never
 * answers (the mesh goes on; the resolution is cancelled). Needs tbcert (its path in TB_TBCERT)
 * to issue the certificates; loopback 127.0.0.30-33 only. */
#include <ev.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "node/node.h"
#include "node/origins.h"
#include "quic/endpoint.h"
#include "resolve/hosts.h"
#include "resolve/resolver.h"
#include "tests/support/bc_forge.h"
#include "tests/tb_fixture.h"
#include "tests/support/loop.h"
#include "tests/tb_test.h"
#include "wire/wire.h"

#define N 3
#define PORT 4561

typedef struct harness {
    struct ev_loop *loop;
    tb_log log[N];
    tb_node_config cfg[N];
    tb_node *node[N];
    int bcasts[N];
    char last_bcast[N][64];
    int messages[N];
    char last_from[N][64];
    int stopped;
} harness;

static harness h;
static char dir[64];
static uint64_t tick_id; /* n2's broadcast "tick": its next id is one more */

static void on_bcast(void *arg, const char *origin, uint64_t id, uint32_t app_type,
                     const uint8_t *p, size_t len)
{
    int i = (int)(intptr_t)arg;
    h.bcasts[i]++;
    snprintf(h.last_bcast[i], sizeof(h.last_bcast[i]), "%s:%.*s", origin, (int)len,
             (const char *)p);
}

static void on_msg(void *arg, const char *from, uint32_t app_type, const uint8_t *p, size_t len)
{
    int i = (int)(intptr_t)arg;
    h.messages[i]++;
    snprintf(h.last_from[i], sizeof(h.last_from[i]), "%s", from);
}

static void on_stopped(void *arg)
{
    h.stopped++;
}

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name inproc", dir) != 0)
        return -1;
    for (int i = 0; i <= N; i++) { /* n3 is the misbehaving peer */
        if (tb_fx_tbcert("issue --ca %s/ca --name n%d --region r%d --ip 127.0.0.%d --out %s/n%d",
                         dir, i, i, 30 + i, dir, i) != 0)
            return -1;
    }
    return 0;
}

static void configure(int i)
{
    tb_node_config *c = &h.cfg[i];
    tb_node_config_defaults(c);
    char text[1024];
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\";\n"
             "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
             "state_dir = \"%s/s%d\";\n"
             "ping_interval_ms = 100;\n"
             "%s",
             30 + i, PORT, dir, i, dir, i, dir, i, dir, i,
             i ? "peers = ( \"127.0.0.30:4561\" );\n" : "");
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_load_string(c, text, "inproc", err, sizeof(err)) != TB_OK)
        fprintf(stderr, "%s\n", err);
    mkdir(c->state_dir, 0700);
    char who[16];
    snprintf(who, sizeof(who), "n%d", i);
    tb_log_init(&h.log[i], who, TB_LOG_WARN);
}

static int full_mesh_with_pings(void *arg)
{
    for (int i = 0; i < N; i++) {
        tb_node_peer_status ps[8];
        size_t k = tb_node_peers(h.node[i], ps, 8), ok = 0;
        for (size_t j = 0; j < k && j < 8; j++)
            ok += strcmp(ps[j].state, "connected") == 0 && ps[j].has_estimate;
        if (ok != N - 1)
            return 0;
    }
    return 1;
}

/* Every link has 3 ping samples: the first, taken while the handshakes and certificate checks
 * of three nodes share one loop, can be off by milliseconds; the minimum-delay filter then has
 * a better one. */
static int mesh_settled(void *arg)
{
    if (!full_mesh_with_pings(arg))
        return 0;
    for (int i = 0; i < N; i++) {
        tb_node_peer_status ps[8];
        size_t k = tb_node_peers(h.node[i], ps, 8);
        for (size_t j = 0; j < k && j < 8; j++)
            if (ps[j].samples < 3)
                return 0;
    }
    return 1;
}

static int all_got_broadcast(void *arg)
{
    for (int i = 0; i < N; i++) {
        if (h.bcasts[i] < 1)
            return 0;
    }
    return 1;
}

static int all_got_second_broadcast(void *arg)
{
    for (int i = 0; i < N; i++) {
        if (h.bcasts[i] < 2)
            return 0;
    }
    return 1;
}

static int message_arrived(void *arg)
{
    return h.messages[2] > 0;
}

static int all_stopped(void *arg)
{
    return h.stopped == N;
}

static void wait_a_little(void)
{
    uint64_t end = tb_clock_mono(tb_clock_system()) + 300 * TB_NS_PER_MS;
    while (tb_clock_mono(tb_clock_system()) < end)
        ev_run(h.loop, EVRUN_NOWAIT);
}

/* Stops every node (all must report on_stopped) and frees them. */
static void stop_all(void)
{
    for (int i = 0; i < N; i++)
        tb_node_stop(h.node[i]);
    TB_CHECK(tb_test_run_until(h.loop, all_stopped, NULL, 3));
    for (int i = 0; i < N; i++) {
        tb_node_free(h.node[i]);
        tb_node_config_free(&h.cfg[i]);
    }
}

/* A peer with a valid mesh certificate that sends what a node must drop. */
typedef struct evil {
    tb_quic_endpoint *ep;
    tb_quic_conn *conn;
    int connected, sent;
} evil;

static evil bad;

static void evil_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    bad.conn = c;
    bad.connected = 1;
}

static void evil_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                        const tb_quic_close_info *info)
{
    bad.connected = 0;
}

/* It answers pings, so n0 keeps the link while the test takes its time. */
static void evil_datagram(void *arg, tb_quic_conn *c, const uint8_t *data, size_t len,
                          uint64_t rx_mono_ns, int64_t rx_real_ns)
{
    tb_wire_msg m;
    if (tb_wire_decode(data, len, NULL, &m, NULL) != TB_OK)
        return;
    if (m.type == TB_WIRE_PING) {
        tb_wire_msg p = {.type = TB_WIRE_PONG};
        p.pong = (tb_wire_pong){m.ping.id, m.ping.t1, rx_real_ns, tb_clock_real(tb_clock_system())};
        uint8_t buf[128];
        size_t n;
        if (tb_wire_encode(&p, NULL, buf, sizeof(buf), &n) != TB_OK ||
            tb_quic_send_datagram(c, buf, n) != TB_OK)
            fprintf(stderr, "n3: PONG not sent\n");
    }
    tb_wire_msg_clear(&m);
}

static int evil_is_connected(void *arg)
{
    return bad.connected;
}

static int send_encoded(const tb_wire_msg *m, int datagram)
{
    uint8_t buf[512];
    size_t len;
    tb_wire_limits lim = tb_wire_limits_default();
    if (tb_wire_encode(m, &lim, buf, sizeof(buf), &len) != TB_OK)
        return -1;
    return datagram ? tb_quic_send_datagram(bad.conn, buf, len)
                    : tb_quic_send_stream(bad.conn, buf, len);
}

/* Returns how many of the sends were accepted by the evil endpoint. */
static int misbehave(void)
{
    int ok = 0;
    static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 'x', 'y'};
    ok += tb_quic_send_stream(bad.conn, garbage, sizeof(garbage)) == TB_OK; /* undecodable */
    ok += tb_quic_send_datagram(bad.conn, garbage, sizeof(garbage)) == TB_OK;
    tb_wire_msg m = {.type = TB_WIRE_PING};
    m.ping = (tb_wire_ping){7, 1};
    ok += send_encoded(&m, 0) == TB_OK; /* a PING on a stream */
    m = (tb_wire_msg){.type = TB_WIRE_DISCOVER};
    m.discover.max_peers = 4;
    ok += send_encoded(&m, 1) == TB_OK; /* a DISCOVER in a datagram */
    m = (tb_wire_msg){.type = TB_WIRE_PONG};
    m.pong = (tb_wire_pong){12345, 1, 2, 3};
    ok += send_encoded(&m, 1) == TB_OK; /* a PONG for no PING */
    m = (tb_wire_msg){.type = TB_WIRE_MESSAGE};
    m.message = (tb_wire_message){"n1", "n3", 1, {(const uint8_t *)"x", 1}};
    ok += send_encoded(&m, 0) == TB_OK; /* for another node: not relayed */
    m.message = (tb_wire_message){"n0", "n2", 1, {(const uint8_t *)"x", 1}};
    ok += send_encoded(&m, 0) == TB_OK; /* spoofed sender */
    uint8_t *big = calloc(1, 70000);
    ok += big && tb_quic_send_stream(bad.conn, big, 70000) == TB_OK; /* over n0's 64 KiB */
    free(big);
    return ok;
}

static int bad_counted(void *arg)
{
    tb_node_stats st;
    tb_node_get_stats(h.node[0], &st);
    return st.msgs_bad >= 4 && st.dgrams_bad >= 2 && st.pongs_bad >= 1 && st.oversized >= 1;
}

static int forgery_refused(void *arg)
{
    tb_node_stats st;
    tb_node_get_stats(h.node[0], &st);
    return st.bcast_refused >= 1;
}

static int all_got_real(void *arg)
{
    for (int i = 0; i < N; i++)
        if (strcmp(h.last_bcast[i], "n2:real") != 0)
            return 0;
    return 1;
}

/* n3 broadcasts as n2 with n2's next message id, signed with its own key (issue 11: this used
 * to block n2's gossip): n0 refuses it and passes nothing on; n2's real message with that id
 * then reaches every node once. */
static void test_forged_origin(void)
{
    char key[128];
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN], msg[512];
    snprintf(key, sizeof(key), "%s/n3/node.key", dir);
    TB_REQUIRE(tb_origins_load_key(&h.log[0], key, sk, pk) == TB_OK);
    TB_REQUIRE(bad.connected);
    size_t len = tb_test_forge_broadcast("n2", tick_id + 1, 7, (const uint8_t *)"fake", 4, sk, msg,
                                         sizeof(msg));
    TB_REQUIRE(len > 0);
    int before[N];
    for (int i = 0; i < N; i++)
        before[i] = h.bcasts[i];
    TB_REQUIRE(tb_quic_send_stream(bad.conn, msg, len) == TB_OK);
    TB_CHECK(tb_test_run_until(h.loop, forgery_refused, NULL, 5));
    wait_a_little();
    for (int i = 0; i < N; i++)
        TB_CHECK_EQ(h.bcasts[i], before[i]);
    uint64_t id;
    TB_CHECK(tb_node_broadcast(h.node[2], 7, (const uint8_t *)"real", 4, &id) == TB_OK);
    TB_CHECK_EQ(id, tick_id + 1);
    TB_CHECK(tb_test_run_until(h.loop, all_got_real, NULL, 5));
    wait_a_little();
    for (int i = 0; i < N; i++)
        TB_CHECK_EQ(h.bcasts[i], before[i] + 1);
}

static int retired_two(void *arg)
{
    tb_node_stats st;
    tb_node_get_stats(h.node[0], &st);
    return st.msgs_retired >= *(const uint64_t *)arg + 2;
}

/* Mesh v2 (ADR 0010) retires PEERS: one claiming a certificate that is no DER, one naming a
 * made-up member, are dropped and counted, nothing is learned, and n3 stays connected. */
static void test_peers_retired(void)
{
    tb_node_stats before, after;
    tb_node_get_stats(h.node[0], &before);
    static const char *addrs[] = {"127.0.0.33:4561"};
    tb_wire_peer self = {"n3", "r3", NULL, 0, {(const uint8_t *)"x", 1}};
    tb_wire_peer other = {"n9", "r9", addrs, 1, {(const uint8_t *)"\x30\x00", 2}};
    tb_wire_msg m = {.type = TB_WIRE_PEERS};
    m.peers = (tb_wire_peers){&self, 1};
    TB_CHECK(send_encoded(&m, 0) == TB_OK);
    m.peers = (tb_wire_peers){&other, 1};
    TB_CHECK(send_encoded(&m, 0) == TB_OK);
    TB_CHECK(tb_test_run_until(h.loop, retired_two, &before.msgs_retired, 5));
    tb_node_get_stats(h.node[0], &after);
    TB_CHECK_EQ(after.msgs_bad, before.msgs_bad);
    TB_CHECK(bad.connected);
    tb_node_peer_status ps[8];
    size_t k = tb_node_peers(h.node[0], ps, 8);
    for (size_t j = 0; j < k && j < 8; j++)
        TB_CHECK(strcmp(ps[j].name, "n9") != 0);
}

static void test_bad_peer(void)
{
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof(cert), "%s/n3/node.crt", dir);
    snprintf(key, sizeof(key), "%s/n3/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/n3/ca.crt", dir);
    tb_quic_config qc = {.listen = "127.0.0.33:0",
                         .mode = TB_QUIC_MODE_CLIENT,
                         .cert_file = cert,
                         .key_file = key,
                         .ca_file = ca,
                         .node_name = "n3",
                         .retry = 0,
                         .max_message_size = 1 << 20};
    tb_quic_callbacks cb = {
        .on_connected = evil_connected, .on_closed = evil_closed, .on_datagram = evil_datagram};
    tb_log log;
    tb_log_init(&log, "n3", TB_LOG_ERROR);
    TB_REQUIRE(tb_quic_endpoint_create(&bad.ep, h.loop, &log, tb_clock_system(), &qc, &cb) ==
               TB_OK);
    tb_quic_conn *c;
    TB_REQUIRE(tb_quic_dial(bad.ep, "127.0.0.30:4561", "n0", &c) == TB_OK);
    TB_REQUIRE(tb_test_run_until(h.loop, evil_is_connected, NULL, 10));
    TB_CHECK_EQ(misbehave(), 8);
    TB_CHECK(tb_test_run_until(h.loop, bad_counted, NULL, 5));
    tb_node_stats st;
    tb_node_get_stats(h.node[0], &st);
    TB_CHECK_EQ(st.msgs_bad, 4); /* garbage, PING on a stream, misaddressed, spoofed */
    TB_CHECK_EQ(st.dgrams_bad, 2);
    TB_CHECK_EQ(st.pongs_bad, 1);
    TB_CHECK_EQ(st.oversized, 1);
    TB_CHECK_EQ(st.messages_delivered, 0);
    /* n0 still serves the mesh. */
    int before = h.bcasts[1];
    TB_CHECK(tb_node_broadcast(h.node[0], 7, (const uint8_t *)"after", 5, NULL) == TB_OK);
    TB_CHECK(tb_test_run_until(h.loop, all_got_second_broadcast, NULL, 5));
    TB_CHECK_EQ(h.bcasts[1], before + 1);
    TB_CHECK_STR(h.last_bcast[1], "n0:after");
    test_forged_origin();
    test_peers_retired();
    tb_quic_endpoint_destroy(bad.ep);
}

static void test_mesh_in_one_process(void)
{
    h.loop = ev_loop_new(EVFLAG_AUTO);
    for (int i = 0; i < N; i++) {
        configure(i);
        tb_node_callbacks cb = {.on_broadcast = on_bcast,
                                .on_message = on_msg,
                                .on_stopped = on_stopped,
                                .arg = (void *)(intptr_t)i};
        TB_REQUIRE(tb_node_new(&h.node[i], h.loop, &h.log[i], tb_clock_system(), &h.cfg[i], &cb) ==
                   TB_OK);
    }
    TB_CHECK_STR(tb_node_name(h.node[2]), "n2");
    TB_REQUIRE(tb_test_run_until(h.loop, mesh_settled, NULL, 20));

    /* RTT on loopback is positive and well under 50 ms; one host, so |offset| < 10 ms. */
    tb_node_peer_status ps[8];
    size_t k = tb_node_peers(h.node[1], ps, 8);
    TB_REQUIRE(k == 2);
    for (size_t j = 0; j < k; j++) {
        TB_CHECK(ps[j].rtt_ns > 0 && ps[j].rtt_ns < 50 * (int64_t)TB_NS_PER_MS);
        TB_CHECK(llabs(ps[j].offset_ns) < 10 * (long long)TB_NS_PER_MS);
    }

    uint64_t id;
    TB_CHECK(tb_node_broadcast(h.node[2], 7, (const uint8_t *)"tick", 4, &id) == TB_OK);
    tick_id = id;
    TB_CHECK(tb_test_run_until(h.loop, all_got_broadcast, NULL, 5));
    wait_a_little(); /* forwarded copies come back as duplicates: none may be delivered */
    for (int i = 0; i < N; i++) {
        TB_CHECK_EQ(h.bcasts[i], 1);
        TB_CHECK_STR(h.last_bcast[i], "n2:tick");
    }

    TB_CHECK(tb_node_send(h.node[1], "n2", 9, (const uint8_t *)"hi", 2) == TB_OK);
    TB_CHECK(tb_test_run_until(h.loop, message_arrived, NULL, 5));
    TB_CHECK_EQ(h.messages[2], 1);
    TB_CHECK_STR(h.last_from[2], "n1");
    TB_CHECK_EQ(h.messages[0], 0);
    TB_CHECK_EQ(tb_node_send(h.node[1], "nobody", 9, (const uint8_t *)"x", 1), TB_ERR_NOTFOUND);

    test_bad_peer();

    stop_all();
    ev_loop_destroy(h.loop);
}

/* A resolver that never answers: it keeps the tickets it handed out until they are cancelled. */
typedef struct stall_resolver {
    tb_resolver r;
    uint64_t next, open[16];
    size_t nopen;
    int asked, cancelled;
    char host[64];
} stall_resolver;

static int stall_resolve(tb_resolver *r, const char *host, const char *port, tb_resolve_cb cb,
                         void *arg, uint64_t *ticket)
{
    stall_resolver *s = (stall_resolver *)r;
    if (s->nopen == 16)
        return TB_ERR_FULL;
    s->asked++;
    snprintf(s->host, sizeof(s->host), "%s", host);
    *ticket = s->open[s->nopen++] = ++s->next;
    return TB_OK;
}

static void stall_cancel(tb_resolver *r, uint64_t ticket)
{
    stall_resolver *s = (stall_resolver *)r;
    for (size_t i = 0; i < s->nopen; i++) {
        if (s->open[i] == ticket) {
            s->open[i] = s->open[--s->nopen];
            s->cancelled++;
            return;
        }
    }
}

static stall_resolver stall = {.r = {stall_resolve, stall_cancel}};

static void configure_named(int i, const char *peers)
{
    tb_node_config *c = &h.cfg[i];
    tb_node_config_defaults(c);
    char text[1024], err[TB_NODE_ERR_MAX];
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\";\n"
             "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
             "state_dir = \"%s/s%d\";\n"
             "ping_interval_ms = 100; connect_timeout_ms = 300;\n"
             "peers = ( %s );\n",
             30 + i, PORT + 1, dir, i, dir, i, dir, i, dir, i, peers);
    if (tb_node_config_load_string(c, text, "resolve", err, sizeof(err)) != TB_OK)
        fprintf(stderr, "%s\n", err);
}

static int named_mesh_up(void *arg)
{
    tb_node_stats st;
    tb_node_get_stats(h.node[2], &st);
    return full_mesh_with_pings(arg) && stall.cancelled >= 1 && st.pongs_received >= 10;
}

/* n1 knows its seed only as n0.test, which a hosts file (the time node's hosts_file) pins to
 * n0's address: it resolves on the loop and n1 connects. n2's other seed is a name the
 * resolver never answers: pings, DISCOVER and the mesh go on meanwhile, and the stuck
 * resolution is cancelled at the connect timeout and again at stop (none left open). */
static void test_named_seeds(void)
{
    memset(&h, 0, sizeof(h));
    h.loop = ev_loop_new(EVFLAG_AUTO);
    char hosts[128];
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    FILE *f = fopen(hosts, "w");
    TB_REQUIRE(f != NULL);
    fprintf(f, "# n0 for n1\n127.0.0.30 n0.test\n");
    fclose(f);
    tb_log rlog;
    tb_log_init(&rlog, "hosts", TB_LOG_WARN);
    tb_resolver *pinned = NULL;
    TB_REQUIRE(tb_resolver_hosts_create(h.loop, hosts, NULL, &rlog, &pinned) == TB_OK);
    char seeds[64];
    snprintf(seeds, sizeof(seeds), "\"n0.test:%d\"", PORT + 1);
    configure_named(0, "");
    configure_named(1, seeds);
    snprintf(seeds, sizeof(seeds), "\"127.0.0.30:%d\", \"stuck.test:%d\"", PORT + 1, PORT + 1);
    configure_named(2, seeds);
    tb_resolver *res[N] = {pinned, pinned, &stall.r};
    for (int i = 0; i < N; i++) {
        char who[16];
        snprintf(who, sizeof(who), "n%d", i);
        tb_log_init(&h.log[i], who, TB_LOG_ERROR);
        tb_node_callbacks cb = {
            .on_stopped = on_stopped, .arg = (void *)(intptr_t)i, .resolver = res[i]};
        TB_REQUIRE(tb_node_new(&h.node[i], h.loop, &h.log[i], tb_clock_system(), &h.cfg[i], &cb) ==
                   TB_OK);
    }
    TB_CHECK(tb_test_run_until(h.loop, named_mesh_up, NULL, 10));
    TB_CHECK_STR(stall.host, "stuck.test");
    TB_CHECK(stall.asked >= 1);
    tb_node_peer_status ps[8];
    size_t k = tb_node_peers(h.node[1], ps, 8);
    int via_name = 0;
    for (size_t j = 0; j < k && j < 8; j++)
        via_name |= strcmp(ps[j].name, "n0") == 0 && strcmp(ps[j].state, "connected") == 0;
    TB_CHECK(via_name);

    stop_all();
    TB_CHECK_EQ(stall.nopen, 0);
    TB_CHECK_EQ(stall.cancelled, stall.asked);
    tb_resolver_hosts_destroy(pinned);
    ev_loop_destroy(h.loop);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-inproc.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    TB_RUN(test_mesh_in_one_process);
    TB_RUN(test_named_seeds);
    return tb_fx_finish(dir, TB_DONE());
}
