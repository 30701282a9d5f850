/* tool_attack: a test-only attacker for tests/test_attack.sh (issue 11). It speaks the mesh
 * protocol directly on its own QUIC endpoint (quic/ with the test hooks of quic/testing.h), as a
 * member with a valid mesh certificate or as an outsider without one, so it can send what a
 * tbnode never would:
 *
 *   forged-origin   broadcasts claiming the origins given with --claim (text, as `tbnode
 *                   broadcast` sends), signed by nobody: a receiver must not deliver them
 *   id-poison       watches the broadcasts it is forwarded, then sends forged copies claiming
 *                   each origin seen with its next --count message ids (the duplicate cache
 *                   must not let them suppress the real ones)
 *   bcast-flood     broadcasts of its own origin at --rate per second
 *   measure-flood   validly signed measurements of its own origin at --rate per second
 *   peers-bad       made-up members at addresses nobody should dial (link-local, multicast,
 *                   broadcast, unspecified, outside the ranges, names): in SHUFFLEs (mesh v2),
 *                   and PEERS (retired, dropped) within and over the entry cap
 *   peers-fake      --count PEERS within the entry cap, each of 63 made-up members at
 *                   addresses the targets allow (127.9.K.J:4433, where nobody answers)
 *   handshake-flood as an outsider from --sources addresses 127.1.K.1 (K = 1..N): --count
 *                   handshakes each that pass Retry and stall; meanwhile, as a member, 5 fresh
 *                   connections to the first target, each must be admitted
 *   handshake-flood-wide
 *                   the same, but each source keeps its --count handshakes under way for the
 *                   whole attack (a new one when one ends, each given up after 3.5 s), so that
 *                   no prefix holds more than a newcomer's would; 5 fresh connections as the
 *                   member from --bind (a peer the target has in its config) and 5 from
 *                   --stranger IP (one it does not): admitted=K/5, stranger_admitted=K/5
 *   stall-streams   --count streams each announcing 65,536 bytes, sending 65,000, never ending
 *   junk            --count messages that are not mesh messages (bad msgpack, unknown types,
 *                   frames lying about their length)
 *
 *   tool_attack --attack NAME --ca F [--cert F --key F] --bind IP --target ADDR:PORT [...]
 *               [--claim NAME ...] [--rate N] [--count N] [--duration S] [--sources N]
 *               [--stranger IP]
 *
 * Runs for at most --duration seconds (default 20) and prints "key=value" result lines:
 * connected=, sent=, closed_by_peer= (1 when every target closed the connection with
 * MISBEHAVING), closed_by_first= (1 when the first target did), closed_after_ms=,
 * redial_refused= (1 when a new connection to each target that closed it was refused
 * afterwards: the ban), and per attack what it measured (admitted=K/5 for the real
 * peer during a handshake flood). Exit 0 when the attack ran, 1 when it could not connect,
 * 2 on bad arguments. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/identity.h"
#include "common/clock.h"
#include "measure/measurement.h"
#include "node/timekeeper.h"
#include "quic/endpoint.h"
#include "quic/testing.h"
#include "tests/support/bc_forge.h"
#include "wire/wire.h"

#define MAX_TARGETS 8
#define MAX_CLAIMS 8
#define MAX_ORIGINS 16
#define MAX_SOURCES 64
#define WIDE_HOLD_NS (3500 * 1000000ULL) /* an outsider's handshake, given up */
#define REAL_TRIES 5

typedef struct target {
    const char *addr;
    tb_quic_conn *conn;
    int connected, closed, misbehaving;
    uint64_t closed_at;
} target;

typedef struct origin_seen {
    char name[TB_QUIC_NAME_MAX];
    uint64_t max_id, first_poison;
} origin_seen;

typedef struct attack attack;

/* One outsider address of the handshake flood: its endpoint and handshakes under way. */
typedef struct flooder {
    attack *a;
    tb_quic_endpoint *ep;
    unsigned live;
} flooder;

struct attack {
    struct ev_loop *loop;
    const char *name;
    const char *cert, *key, *ca, *bind;
    target targets[MAX_TARGETS];
    size_t ntargets;
    const char *claims[MAX_CLAIMS];
    size_t nclaims;
    unsigned rate, count, sources;
    double duration;
    tb_log log;
    tb_quic_endpoint *ep; /* the member (or, for the flood, the real peer) */
    flooder flood[MAX_SOURCES];
    int refill; /* handshake-flood-wide: keep every source's handshakes under way */
    const char *stranger_bind;
    tb_quic_endpoint *stranger;
    char self[TB_QUIC_NAME_MAX];
    uint8_t der[4096];
    size_t der_len;
    uint8_t sk[TB_MEASURE_SK_LEN];
    uint64_t sent, refused_local, start, next_id, seq;
    origin_seen seen[MAX_ORIGINS];
    size_t nseen;
    /* the handshake flood's real peer */
    tb_quic_conn *probe;
    int probe_done, probe_ok;
    unsigned probes, admitted, stranger_admitted;
    /* re-dial after the attack: refused = banned */
    int redialling;
    unsigned redial_refused, redial_connected;
    uint64_t echoed; /* forged broadcasts an honest node delivered and forwarded back to us */
};

static uint64_t now_ns(void)
{
    return tb_clock_mono(tb_clock_system());
}

static void on_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    attack *a = arg;
    (void)peer;
    if (c == a->probe) {
        a->probe_ok = 1;
        a->probe_done = 1;
        tb_quic_close(c, TB_QUIC_APP_NO_ERROR);
        return;
    }
    for (size_t i = 0; i < a->ntargets; i++) {
        if (a->targets[i].conn == c) {
            if (a->redialling)
                a->redial_connected++;
            a->targets[i].connected = 1;
        }
    }
}

static void on_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info)
{
    attack *a = arg;
    (void)peer;
    if (c == a->probe) {
        a->probe_done = 1;
        a->probe = NULL;
        return;
    }
    for (size_t i = 0; i < a->ntargets; i++) {
        target *t = &a->targets[i];
        if (t->conn != c)
            continue;
        t->conn = NULL;
        if (a->redialling) {
            a->redial_refused += !info->was_connected;
            continue;
        }
        t->closed = 1;
        t->closed_at = now_ns();
        t->misbehaving = info->reason == TB_QUIC_CLOSED_PEER && info->app &&
                         info->code == TB_QUIC_APP_MISBEHAVING;
    }
}

static void on_refused(void *arg, const struct sockaddr *addr, socklen_t len, tb_quic_refusal r,
                       const char *detail)
{
    (void)arg, (void)addr, (void)len, (void)r, (void)detail;
}

/* What the honest nodes forward us: the newest message id per origin (for id-poison). A new
 * link is lazy for the origins its node knows already (routing/plumtree.h): their messages are
 * announced (IHAVE), and GRAFTed here as any neighbour would, to see them whole. */
static void on_message(void *arg, tb_quic_conn *c, const uint8_t *msg, size_t len)
{
    attack *a = arg;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, NULL, &m, NULL) != TB_OK)
        return;
    if (m.type == TB_WIRE_IHAVE && m.ihave.ids.n_ids > 0) {
        tb_wire_msg g = {.type = TB_WIRE_GRAFT};
        g.graft.ids = m.ihave.ids;
        uint8_t buf[2048];
        size_t glen;
        if (tb_wire_encode(&g, NULL, buf, sizeof(buf), &glen) == TB_OK)
            (void)!tb_quic_send_stream(c, buf, glen);
    }
    if (m.type == TB_WIRE_BROADCAST && m.broadcast.payload.len >= 10 &&
        memcmp(m.broadcast.payload.data, "forged-by-", 10) == 0)
        a->echoed++;
    if (m.type == TB_WIRE_BROADCAST && strcmp(m.broadcast.origin, a->self) != 0) {
        size_t i = 0;
        while (i < a->nseen && strcmp(a->seen[i].name, m.broadcast.origin) != 0)
            i++;
        if (i == a->nseen && a->nseen < MAX_ORIGINS)
            snprintf(a->seen[a->nseen++].name, TB_QUIC_NAME_MAX, "%s", m.broadcast.origin);
        if (i < a->nseen && m.broadcast.msg_id > a->seen[i].max_id)
            a->seen[i].max_id = m.broadcast.msg_id;
    }
    tb_wire_msg_clear(&m);
}

/* PONGs for the honest nodes' PINGs: without them they drop us as lost within a second. */
static void on_datagram(void *arg, tb_quic_conn *c, const uint8_t *d, size_t len, uint64_t rx_mono,
                        int64_t rx_real)
{
    (void)arg, (void)rx_mono;
    tb_wire_msg m;
    if (tb_wire_decode(d, len, NULL, &m, NULL) != TB_OK)
        return;
    if (m.type == TB_WIRE_PING) {
        tb_wire_msg p = {.type = TB_WIRE_PONG};
        p.pong.id = m.ping.id;
        p.pong.t1 = m.ping.t1;
        p.pong.t2 = rx_real;
        p.pong.t3 = tb_clock_real(tb_clock_system());
        uint8_t buf[128];
        size_t n;
        if (tb_wire_encode(&p, NULL, buf, sizeof(buf), &n) == TB_OK &&
            tb_quic_send_datagram(c, buf, n) != TB_OK)
            fprintf(stderr, "tool_attack: PONG not sent\n");
    }
    tb_wire_msg_clear(&m);
}

static void on_shutdown(void *arg)
{
    (void)arg;
}

static tb_quic_endpoint *endpoint(attack *a, const char *listen, int member)
{
    tb_quic_config qc = {.listen = listen,
                         .mode = TB_QUIC_MODE_CLIENT,
                         .cert_file = member ? a->cert : NULL,
                         .key_file = member ? a->key : NULL,
                         .ca_file = a->ca,
                         .node_name = member ? a->self : "outsider",
                         .connect_timeout_ns = 10 * TB_NS_PER_SEC};
    tb_quic_callbacks cb = {on_connected, on_closed,   on_refused, on_message,
                            on_datagram,  on_shutdown, a};
    tb_quic_endpoint *ep = NULL;
    if (tb_quic_endpoint_create(&ep, a->loop, &a->log, tb_clock_system(), &qc, &cb) != TB_OK)
        return NULL;
    return ep;
}

static void on_flooder_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                              const tb_quic_close_info *info)
{
    flooder *f = arg;
    (void)c, (void)peer, (void)info;
    f->live--;
}

static void on_flooder_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    (void)arg, (void)peer;
    tb_quic_close(c, TB_QUIC_APP_NO_ERROR); /* never: it stalls every handshake */
}

static int flooder_open(attack *a, unsigned i)
{
    char listen[32];
    snprintf(listen, sizeof(listen), "127.1.%u.1:0", i + 1);
    tb_quic_config qc = {.listen = listen,
                         .mode = TB_QUIC_MODE_CLIENT,
                         .ca_file = a->ca,
                         .node_name = "outsider",
                         .connect_timeout_ns = a->refill ? WIDE_HOLD_NS : 10 * TB_NS_PER_SEC};
    flooder *f = &a->flood[i];
    f->a = a;
    tb_quic_callbacks cb = {on_flooder_connected, on_flooder_closed, on_refused, on_message,
                            on_datagram,          on_shutdown,       f};
    if (tb_quic_endpoint_create(&f->ep, a->loop, &a->log, tb_clock_system(), &qc, &cb) != TB_OK)
        return -1;
    tb_quic_endpoint_stall_handshakes(f->ep);
    return 0;
}

/* Every source back to --count handshakes under way. */
static void flood_refill(attack *a)
{
    for (unsigned i = 0; i < MAX_SOURCES; i++) {
        flooder *f = &a->flood[i];
        while (f->ep && f->live < a->count &&
               tb_quic_dial(f->ep, a->targets[0].addr, NULL, NULL) == TB_OK) {
            f->live++;
            a->sent++;
        }
    }
}

/* Runs the loop until cond holds or `secs` pass. */
typedef int (*cond_fn)(attack *a);

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents;
}

static void run_until(attack *a, cond_fn cond, double secs)
{
    uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
    ev_timer t;
    ev_timer_init(&t, on_wake, 0.005, 0.005);
    ev_timer_start(a->loop, &t);
    while (now_ns() < end && !(cond && cond(a))) {
        if (a->refill)
            flood_refill(a);
        ev_run(a->loop, EVRUN_ONCE);
    }
    ev_timer_stop(a->loop, &t);
}

static int all_connected(attack *a)
{
    for (size_t i = 0; i < a->ntargets; i++) {
        if (!a->targets[i].connected)
            return 0;
    }
    return 1;
}

static int all_closed(attack *a)
{
    for (size_t i = 0; i < a->ntargets; i++) {
        if (!a->targets[i].closed)
            return 0;
    }
    return 1;
}

static int any_open(attack *a)
{
    for (size_t i = 0; i < a->ntargets; i++) {
        if (a->targets[i].conn && !a->targets[i].closed)
            return 1;
    }
    return 0;
}

/* Queues one message to every target still open; a full stream window is not an error. */
static void send_all(attack *a, const uint8_t *buf, size_t len, int raw)
{
    for (size_t i = 0; i < a->ntargets; i++) {
        target *t = &a->targets[i];
        if (!t->conn || t->closed)
            continue;
        int rc = raw ? tb_quic_send_stream_raw(t->conn, buf, len)
                     : tb_quic_send_stream(t->conn, buf, len);
        if (rc == TB_OK)
            a->sent++;
        else
            a->refused_local++;
    }
}

static void send_wire(attack *a, const tb_wire_msg *m)
{
    static uint8_t buf[70000];
    tb_wire_limits lim = tb_wire_limits_default();
    lim.max_peers = 1024;
    size_t len;
    if (tb_wire_encode(m, &lim, buf, sizeof(buf), &len) == TB_OK)
        send_all(a, buf, len, 0);
}

/* Signed with the attacker's own key (mesh v2): its own broadcasts verify, others' are forged. */
static void send_broadcast(attack *a, const char *origin, uint64_t id, uint32_t app_type,
                           const uint8_t *payload, size_t len)
{
    static uint8_t buf[70000];
    size_t n = tb_test_forge_broadcast(origin, id, app_type, payload, len, a->sk, buf, sizeof(buf));
    if (n)
        send_all(a, buf, n, 0);
}

/* Paces `step` at a->rate per second for the duration (or until every target closed). */
typedef void (*step_fn)(attack *a, uint64_t k);

static void paced(attack *a, step_fn step, uint64_t max_steps)
{
    uint64_t end = a->start + (uint64_t)(a->duration * 1e9), k = 0;
    double gap = 1e9 / (a->rate ? a->rate : 1);
    while (now_ns() < end && k < max_steps && any_open(a)) {
        uint64_t due = a->start + (uint64_t)(gap * (double)k);
        if (now_ns() >= due)
            step(a, k++);
        else
            ev_run(a->loop, EVRUN_NOWAIT);
        if (now_ns() < due)
            usleep(200);
    }
}

/* Through the first target only: if it delivers a forgery it forwards it to the other honest
 * nodes, which forward it to us over our other connections (echoed). */
static void step_forged(attack *a, uint64_t k)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "forged-by-%s-%llu", a->self, (unsigned long long)k);
    const char *claim = a->claims[k % a->nclaims];
    uint64_t id = randombytes_random() | ((uint64_t)randombytes_random() << 32);
    uint8_t buf[512];
    size_t len = tb_test_forge_broadcast(claim, id, 0, (const uint8_t *)text, (size_t)n, a->sk, buf,
                                         sizeof(buf));
    target *t = &a->targets[0];
    if (len && t->conn && tb_quic_send_stream(t->conn, buf, len) == TB_OK)
        a->sent++;
}

static void step_poison(attack *a, uint64_t k)
{
    size_t o = (size_t)(k % a->nseen);
    /* A few ids of lead: the real ones must not overtake the forgeries in the queues. */
    uint64_t id = a->seen[o].first_poison + k / a->nseen;
    const char text[] = "poison";
    send_broadcast(a, a->seen[o].name, id, 0, (const uint8_t *)text, sizeof(text) - 1);
}

static void step_flood(attack *a, uint64_t k)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "flood-%llu", (unsigned long long)k);
    send_broadcast(a, a->self, a->next_id++, 0, (const uint8_t *)text, (size_t)n);
}

static void step_measure(attack *a, uint64_t k)
{
    (void)k;
    tb_measurement m = {.kind = TB_MEASURE_NTP,
                        .seq = ++a->seq,
                        .real_ns = (int64_t)time(NULL) * 1000000000LL,
                        .offset_ns = 1000,
                        .delay_ns = 100000,
                        .bound_ns = 50000};
    snprintf(m.origin, sizeof(m.origin), "%s", a->self);
    snprintf(m.source_name, sizeof(m.source_name), "flood.test:123");
    snprintf(m.source_addr, sizeof(m.source_addr), "127.0.0.1:123");
    static uint8_t body[TB_MEASURE_BODY_MAX], wire[TB_MEASURE_BODY_MAX + 512];
    tb_wire_mitem item = {.seq = m.seq};
    size_t len, wlen;
    if (tb_measure_seal(&m, a->sk, body, sizeof(body), &len, item.sig) != TB_OK)
        return;
    item.body = (tb_wire_bytes){body, len};
    tb_wire_msg w = {.type = TB_WIRE_MEASUREMENTS};
    w.measurements = (tb_wire_measurements){a->self, &item, 1};
    if (tb_wire_encode(&w, NULL, wire, sizeof(wire), &wlen) == TB_OK)
        send_broadcast(a, a->self, a->next_id++, TB_TK_APP_MEASUREMENTS, wire, wlen);
}

static const char *const bad_addrs[] = {
    "169.254.169.254:80", "224.0.0.251:5353", "255.255.255.255:4433",
    "0.0.0.0:4433",       "0.1.2.3:4433",     "10.99.0.1:4433",
    "192.0.2.7:22",       "[fe80::1]:4433",   "metadata.google.internal:80"};

/* A SHUFFLE that ends its walk at the target (TTL 0) with made-up members at bad addresses. */
static void step_shuffle(attack *a, uint64_t k)
{
    size_t nbad = sizeof(bad_addrs) / sizeof(bad_addrs[0]);
    char names[8][32], self_addr[64];
    tb_wire_node nodes[8];
    snprintf(self_addr, sizeof(self_addr), "%s:4433", a->bind);
    const char *self_addrs[1] = {self_addr};
    for (size_t i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "fake-%llu-s%zu", (unsigned long long)k, i);
        nodes[i] = (tb_wire_node){names[i], "nowhere", &bad_addrs[(k + i) % nbad], 1};
    }
    tb_wire_msg m = {.type = TB_WIRE_SHUFFLE};
    m.shuffle = (tb_wire_shuffle){{a->self, "nowhere", self_addrs, 1}, 0, {nodes, 8}};
    send_wire(a, &m);
}

/* Made-up members at addresses nobody should dial; every other PEERS is over the entry cap. */
static void step_peers(attack *a, uint64_t k)
{
    static const uint8_t fake_cert[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    const char *const *bad = bad_addrs;
    size_t nbad = sizeof(bad_addrs) / sizeof(bad_addrs[0]);
    if (k % 4 == 2) {
        step_shuffle(a, k);
        return;
    }
    size_t n = k % 2 ? 200 : 64;
    tb_wire_peer *p = calloc(n, sizeof(*p));
    char(*names)[32] = calloc(n, 32);
    const char **addrs = calloc(n, sizeof(*addrs));
    if (!p || !names || !addrs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 32, "fake-%llu-%zu", (unsigned long long)k, i);
        addrs[i] = bad[i % nbad];
        /* Made-up members carry a token certificate (a DER SEQUENCE is all a hint needs), so
         * 200 of them fit in one message. */
        p[i] = (tb_wire_peer){i ? names[i] : a->self, "nowhere", &addrs[i], i ? 1 : 0,
                              i ? (tb_wire_bytes){fake_cert, sizeof(fake_cert)}
                                : (tb_wire_bytes){a->der, a->der_len}};
    }
    tb_wire_msg m = {.type = TB_WIRE_PEERS};
    m.peers = (tb_wire_peers){p, n};
    send_wire(a, &m);
out:
    free(p);
    free(names);
    free(addrs);
}

/* Made-up members at addresses a target allows and would dial: each costs it a dial. */
static void step_peers_fake(attack *a, uint64_t k)
{
    static const uint8_t fake_cert[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    enum { N = 64 };
    tb_wire_peer p[N];
    char names[N][32], addrs[N][32];
    const char *addr_ptrs[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], 32, "fake-%llu-%zu", (unsigned long long)k, i);
        snprintf(addrs[i], 32, "127.9.%u.%zu:4433", (unsigned)(k % 250), i + 1);
        addr_ptrs[i] = addrs[i];
        p[i] = (tb_wire_peer){i ? names[i] : a->self, "nowhere", &addr_ptrs[i], i ? 1 : 0,
                              i ? (tb_wire_bytes){fake_cert, sizeof(fake_cert)}
                                : (tb_wire_bytes){a->der, a->der_len}};
    }
    tb_wire_msg m = {.type = TB_WIRE_PEERS};
    m.peers = (tb_wire_peers){p, N};
    send_wire(a, &m);
}

static void step_junk(attack *a, uint64_t k)
{
    static const uint8_t junk[][12] = {
        {0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1},                /* msgpack's never-used byte */
        {0, 0, 0, 3, 0x82, 0x00, 0x01},                      /* a map cut short */
        {0, 0, 0, 0},                                        /* an empty frame */
        {0, 0, 0, 9, 0x82, 0x00, 0x01, 0x01, 0x63, 0, 0, 0}, /* frame longer than its bytes */
        {0, 0, 0, 5, 0x82, 0x00, 0x01, 0x01, 0x01},          /* a PING on a stream */
    };
    static const size_t lens[] = {8, 7, 4, 12, 9};
    size_t i = (size_t)(k % 5);
    send_all(a, junk[i], lens[i], 1);
}

static void stall_streams(attack *a)
{
    static uint8_t part[4 + 65000];
    part[1] = 1; /* 65,536 announced */
    for (unsigned i = 0; i < a->count; i++) {
        for (size_t t = 0; t < a->ntargets; t++) {
            if (a->targets[t].conn && !a->targets[t].closed &&
                tb_quic_send_stream_unfinished(a->targets[t].conn, part, sizeof(part)) == TB_OK)
                a->sent++;
        }
        ev_run(a->loop, EVRUN_NOWAIT);
    }
}

static int probe_done(attack *a)
{
    return a->probe_done;
}

/* Five fresh connections from ep to the first target: how many were admitted. */
static unsigned probe(attack *a, tb_quic_endpoint *ep)
{
    unsigned admitted = 0;
    for (unsigned i = 0; i < REAL_TRIES; i++) {
        a->probe_done = a->probe_ok = 0;
        if (tb_quic_dial(ep, a->targets[0].addr, NULL, &a->probe) != TB_OK)
            continue;
        run_until(a, probe_done, 5.0);
        admitted += a->probe_ok;
        run_until(a, NULL, 0.3);
    }
    return admitted;
}

/* The outsiders' handshakes from many addresses, then a real member's 5 fresh connections
 * (and, in the wide flood, a stranger's 5 first). */
static int handshake_flood(attack *a)
{
    unsigned n = a->sources < MAX_SOURCES ? a->sources : MAX_SOURCES;
    for (unsigned i = 0; i < n; i++) {
        if (flooder_open(a, i) != 0)
            return -1;
    }
    flood_refill(a);
    run_until(a, NULL, a->refill ? 4.0 : 1.0);
    if (a->stranger) {
        a->stranger_admitted = probe(a, a->stranger);
        printf("stranger_admitted=%u/%u\n", a->stranger_admitted, REAL_TRIES);
    }
    a->probes = REAL_TRIES;
    a->admitted = probe(a, a->ep);
    printf("admitted=%u/%u\n", a->admitted, a->probes);
    printf("sent=%llu\n", (unsigned long long)a->sent);
    return 0;
}

static int load_member(attack *a)
{
    char err[256], pem[16384];
    tb_cert_identity id;
    if (tb_cert_identity_from_pem_file(a->cert, &id, err, sizeof(err)) != TB_OK ||
        tb_cert_read_pem_file(a->cert, a->der, sizeof(a->der), &a->der_len, err, sizeof(err)) !=
            TB_OK) {
        fprintf(stderr, "tool_attack: %s\n", err);
        return -1;
    }
    snprintf(a->self, sizeof(a->self), "%s", id.name);
    FILE *f = fopen(a->key, "r");
    size_t len = f ? fread(pem, 1, sizeof(pem), f) : 0;
    if (f)
        fclose(f);
    uint8_t pk[TB_MEASURE_PK_LEN];
    if (tb_measure_key_from_pem(pem, len, a->sk, pk) != TB_OK) {
        fprintf(stderr, "tool_attack: %s: not an Ed25519 key\n", a->key);
        return -1;
    }
    return 0;
}

static int connect_all(attack *a)
{
    for (size_t i = 0; i < a->ntargets; i++) {
        if (tb_quic_dial(a->ep, a->targets[i].addr, NULL, &a->targets[i].conn) != TB_OK)
            return -1;
    }
    run_until(a, all_connected, 10.0);
    size_t k = 0;
    for (size_t i = 0; i < a->ntargets; i++)
        k += a->targets[i].connected;
    printf("connected=%zu/%zu\n", k, a->ntargets);
    return k == a->ntargets ? 0 : -1;
}

/* After the attack: every target closed us for misbehaving? Refused when we come back? */
static void verdict(attack *a)
{
    /* The peer may act at a deadline (a stalled stream's, 10 s): wait out the duration. */
    double left = a->duration - (double)(now_ns() - a->start) / 1e9;
    run_until(a, all_closed, left > 3.0 ? left : 3.0);
    int all_misbehaving = 1;
    unsigned k = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < a->ntargets; i++) {
        target *t = &a->targets[i];
        all_misbehaving &= t->closed && t->misbehaving;
        k += t->closed && t->misbehaving;
        if (t->closed && t->closed_at > last)
            last = t->closed_at;
    }
    printf("sent=%llu\nnot_queued=%llu\n", (unsigned long long)a->sent,
           (unsigned long long)a->refused_local);
    printf("closed_by_peer=%d\n", all_misbehaving);
    printf("closed_by_first=%d\n", a->targets[0].closed && a->targets[0].misbehaving);
    if (k)
        printf("closed_after_ms=%llu\n", (unsigned long long)((last - a->start) / 1000000));
    if (!k)
        return;
    a->redialling = 1;
    for (size_t i = 0; i < a->ntargets; i++) {
        target *t = &a->targets[i];
        int again = t->closed && t->misbehaving;
        t->connected = 0;
        if (again && tb_quic_dial(a->ep, t->addr, NULL, &t->conn) != TB_OK)
            t->conn = NULL;
    }
    run_until(a, NULL, 4.0);
    printf("redial_refused=%d\n", a->redial_refused == k && !a->redial_connected);
}

static void usage(void)
{
    fprintf(stderr, "usage: tool_attack --attack NAME --ca F [--cert F --key F] --bind IP "
                    "--target ADDR:PORT [...] [--claim NAME ...] [--rate N] [--count N] "
                    "[--duration S] [--sources N]\n");
    exit(2);
}

static void parse_args(attack *a, int argc, char **argv)
{
    static const struct option opts[] = {{"attack", 1, 0, 'A'},
                                         {"cert", 1, 0, 'c'},
                                         {"key", 1, 0, 'k'},
                                         {"ca", 1, 0, 'a'},
                                         {"bind", 1, 0, 'b'},
                                         {"target", 1, 0, 't'},
                                         {"claim", 1, 0, 'o'},
                                         {"rate", 1, 0, 'r'},
                                         {"count", 1, 0, 'n'},
                                         {"duration", 1, 0, 'd'},
                                         {"sources", 1, 0, 's'},
                                         {"stranger", 1, 0, 'S'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'A':
            a->name = optarg;
            break;
        case 'c':
            a->cert = optarg;
            break;
        case 'k':
            a->key = optarg;
            break;
        case 'a':
            a->ca = optarg;
            break;
        case 'b':
            a->bind = optarg;
            break;
        case 't':
            if (a->ntargets == MAX_TARGETS)
                usage();
            a->targets[a->ntargets++].addr = optarg;
            break;
        case 'o':
            if (a->nclaims == MAX_CLAIMS)
                usage();
            a->claims[a->nclaims++] = optarg;
            break;
        case 'r':
            a->rate = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            a->count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            a->duration = strtod(optarg, NULL);
            break;
        case 's':
            a->sources = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            a->stranger_bind = optarg;
            break;
        default:
            usage();
        }
    }
    if (!a->name || !a->ca || !a->cert || !a->key || !a->bind || !a->ntargets || a->duration <= 0 ||
        a->duration > 60)
        usage();
}

static int run_attack(attack *a)
{
    const char *n = a->name;
    a->start = now_ns();
    if (!strcmp(n, "forged-origin")) {
        if (!a->nclaims)
            usage();
        paced(a, step_forged, a->count);
        run_until(a, NULL, 2.0); /* echoes on their way */
        printf("forged_echoed=%llu\n", (unsigned long long)a->echoed);
    } else if (!strcmp(n, "id-poison")) {
        run_until(a, NULL, 4.0); /* learn the ids in flight */
        if (!a->nseen) {
            fprintf(stderr, "tool_attack: no broadcast seen to learn ids from\n");
            return 1;
        }
        for (size_t i = 0; i < a->nseen; i++) {
            a->seen[i].first_poison = a->seen[i].max_id + 8;
            printf("poisoned_origin=%s from_id=%llu\n", a->seen[i].name,
                   (unsigned long long)a->seen[i].first_poison);
        }
        a->start = now_ns();
        paced(a, step_poison, (uint64_t)a->count * a->nseen);
    } else if (!strcmp(n, "bcast-flood")) {
        paced(a, step_flood, UINT64_MAX);
    } else if (!strcmp(n, "measure-flood")) {
        paced(a, step_measure, UINT64_MAX);
    } else if (!strcmp(n, "peers-bad")) {
        paced(a, step_peers, a->count);
    } else if (!strcmp(n, "peers-fake")) {
        paced(a, step_peers_fake, a->count);
    } else if (!strcmp(n, "junk")) {
        paced(a, step_junk, a->count);
    } else if (!strcmp(n, "stall-streams")) {
        stall_streams(a);
    } else {
        usage();
    }
    return 0;
}

int main(int argc, char **argv)
{
    attack *a = calloc(1, sizeof(*a));
    if (!a)
        return 2;
    a->rate = 200;
    a->count = 200;
    a->sources = 8;
    a->duration = 20;
    parse_args(a, argc, argv);
    if (sodium_init() < 0 || load_member(a) != 0)
        return 2;
    tb_log_init(&a->log, "tool_attack", TB_LOG_ERROR);
    a->loop = ev_loop_new(EVFLAG_AUTO);
    char listen[64];
    snprintf(listen, sizeof(listen), "%s:0", a->bind);
    a->ep = endpoint(a, listen, 1);
    if (!a->ep) {
        fprintf(stderr, "tool_attack: cannot open the endpoint on %s\n", listen);
        return 2;
    }
    a->next_id = (uint64_t)time(NULL) << 20;
    int rc;
    if (!strcmp(a->name, "handshake-flood") || !strcmp(a->name, "handshake-flood-wide")) {
        a->start = now_ns();
        a->refill = !strcmp(a->name, "handshake-flood-wide");
        if (a->stranger_bind) {
            snprintf(listen, sizeof(listen), "%s:0", a->stranger_bind);
            a->stranger = endpoint(a, listen, 1);
        }
        rc = handshake_flood(a) == 0 ? 0 : 1;
        a->refill = 0;
    } else if (connect_all(a) != 0) {
        rc = 1;
    } else {
        rc = run_attack(a);
        if (rc == 0)
            verdict(a);
    }
    fflush(stdout);
    for (size_t i = 0; i < a->ntargets; i++) {
        if (a->targets[i].conn)
            tb_quic_close(a->targets[i].conn, TB_QUIC_APP_NO_ERROR);
    }
    run_until(a, NULL, 0.3); /* the closes on the wire */
    for (unsigned i = 0; i < MAX_SOURCES; i++)
        tb_quic_endpoint_destroy(a->flood[i].ep);
    tb_quic_endpoint_destroy(a->stranger);
    tb_quic_endpoint_destroy(a->ep);
    ev_loop_destroy(a->loop);
    free(a);
    return rc;
}
