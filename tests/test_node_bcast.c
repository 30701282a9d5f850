/* node/bcast: signed broadcasts between nodes wired by hand (no sockets, virtual time; the tree
 * is node/mesh.c's, each link a neighbour, as in node.c): a line
 * a - b - c plus mallory (m) next to b. ALIVE teaches b and c a's certificate; c, joining later,
 * fetches it with CERT_REQ from b while a's broadcast waits; a broadcast claiming origin a but
 * signed by m is refused at b, does not travel on, and does not stop a's real message with the
 * same id; a forged ALIVE is refused; broadcasts of an origin nobody knows wait in a bounded
 * queue and expire, counted. Needs tbcert (TB_TBCERT). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/bcast.h"
#include "node/origins.h"
#include "node/mesh.h"
#include "node/pace.h"
#include "tests/support/bc_forge.h"
#include "tests/support/nmesh_quiet.h"
#include "tests/tb_fixture.h"
#include "tests/tb_test.h"
#include "wire/wire.h"

#define SEC 1000000000ULL

enum { A, B, C, M, NN };
static const char *const names[NN] = {"a", "b", "c", "m"};
static char dir[64];

typedef struct qmsg {
    int from, to;
    uint8_t *p;
    size_t len;
} qmsg;

typedef struct node {
    tb_nbc *nbc;
    tb_nmesh *mesh;
    int links[NN];
    int delivered;
    char last[64];
    uint8_t der[4096];
    size_t der_len;
    uint8_t sk[TB_MEASURE_SK_LEN];
} node;

static node nodes[NN];
static qmsg queue[4096];
static size_t qlen;
static uint64_t now = 1000 * SEC;
static int64_t now_s;
static tb_wire_limits lim;
static tb_log logs[NN];
static int last_rc; /* of the last tb_nbc_receive */

static int idx(const char *name)
{
    for (int i = 0; i < NN; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int io_send(void *arg, const char *to, const uint8_t *msg, size_t len)
{
    node *n = arg;
    int t = idx(to);
    if (t < 0 || !n->links[t] || qlen == sizeof(queue) / sizeof(queue[0]))
        return TB_ERR_NOTFOUND;
    queue[qlen].p = malloc(len);
    memcpy(queue[qlen].p, msg, len);
    queue[qlen].len = len;
    queue[qlen].from = (int)(n - nodes);
    queue[qlen++].to = t;
    return TB_OK;
}

static bool io_seen(void *arg, const uint8_t dg[TB_BC_DIGEST_LEN])
{
    return tb_nmesh_seen(((node *)arg)->mesh, dg);
}

static int io_tree(void *arg, const char *from, const char *origin,
                   const uint8_t dg[TB_BC_DIGEST_LEN], uint8_t hop_limit, const uint8_t *raw,
                   size_t len, bool *is_new)
{
    node *n = arg;
    return from ? tb_nmesh_gossip(n->mesh, now, from, origin, dg, hop_limit, raw, len, is_new)
                : tb_nmesh_originate(n->mesh, now, dg, raw, len);
}

static int mesh_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                     size_t len)
{
    (void)dial;
    return io_send(arg, peer, msg, len);
}

static void io_deliver(void *arg, const tb_wire_broadcast *b)
{
    node *n = arg;
    n->delivered++;
    snprintf(n->last, sizeof(n->last), "%s:%.*s", b->origin, (int)b->payload.len,
             (const char *)b->payload.data);
}

/* Hands one message to its receiver as node.c's dispatch does. */
static void dispatch(int from, int to, const uint8_t *p, size_t len)
{
    tb_wire_msg m;
    if (tb_wire_decode(p, len, &lim, &m, NULL) != TB_OK)
        return;
    tb_nbc *b = nodes[to].nbc;
    if (m.type == TB_WIRE_BROADCAST)
        last_rc = tb_nbc_receive(b, now, now_s, names[from], &m.broadcast, p, len);
    else if (m.type == TB_WIRE_CERT_REQ)
        tb_nbc_on_cert_req(b, names[from], &m.cert_req);
    else if (m.type == TB_WIRE_CERT)
        tb_nbc_on_cert(b, now, now_s, names[from], &m.cert);
    else if (tb_nmesh_handles(m.type))
        (void)!tb_nmesh_recv(nodes[to].mesh, now, names[from], &m);
    tb_wire_msg_clear(&m);
}

/* Delivers everything queued; while the trees have timers due within 2 s (IHAVE batches, a
 * GRAFT of an announced message), the clock moves on to them. */
static void pump(void)
{
    for (int round = 0; round < 64; round++) {
        while (qlen) {
            qmsg q = queue[0];
            memmove(queue, queue + 1, (qlen - 1) * sizeof(*queue));
            qlen--;
            dispatch(q.from, q.to, q.p, q.len);
            free(q.p);
        }
        uint64_t wake = UINT64_MAX;
        for (int i = 0; i < NN; i++) {
            uint64_t w = tb_nmesh_next_wake(nodes[i].mesh);
            wake = w < wake ? w : wake;
        }
        if (wake > now + 2 * SEC)
            return;
        now = wake > now ? wake : now;
        for (int i = 0; i < NN; i++)
            if (tb_nmesh_next_wake(nodes[i].mesh) <= now)
                tb_nmesh_tick(nodes[i].mesh, now);
    }
}

static void link_up(int i, int j)
{
    nodes[i].links[j] = nodes[j].links[i] = 1;
    tb_nmesh_link_up(nodes[i].mesh, now, names[j]);
    tb_nmesh_link_up(nodes[j].mesh, now, names[i]);
    tb_nbc_link_up(nodes[i].nbc, now, now_s, names[j], nodes[j].der, nodes[j].der_len);
    tb_nbc_link_up(nodes[j].nbc, now, now_s, names[i], nodes[i].der, nodes[i].der_len);
}

static tb_nbc_stats stats(int i)
{
    tb_nbc_stats st;
    tb_nbc_get_stats(nodes[i].nbc, &st);
    return st;
}

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name bcmesh", dir) != 0)
        return -1;
    for (int i = 0; i < NN; i++)
        if (tb_fx_tbcert("issue --ca %s/ca --name %s --region r%d --ip 127.0.0.%d --out %s/%s", dir,
                         names[i], i, 60 + i, dir, names[i]) != 0)
            return -1;
    return 0;
}

static int read_der(const char *path, uint8_t *der, size_t cap, size_t *len)
{
    char err[256];
    return tb_cert_read_pem_file(path, der, cap, len, err, sizeof(err));
}

static int start(int i)
{
    char cert[128], key[128], ca[128], state[128];
    snprintf(cert, sizeof(cert), "%s/%s/node.crt", dir, names[i]);
    snprintf(key, sizeof(key), "%s/%s/node.key", dir, names[i]);
    snprintf(ca, sizeof(ca), "%s/%s/ca.crt", dir, names[i]);
    snprintf(state, sizeof(state), "%s/%s", dir, names[i]);
    node *n = &nodes[i];
    uint8_t pk[TB_MEASURE_PK_LEN];
    tb_log_init(&logs[i], names[i], TB_LOG_ERROR);
    if (read_der(cert, n->der, sizeof(n->der), &n->der_len) != TB_OK ||
        tb_origins_load_key(&logs[i], key, n->sk, pk) != TB_OK)
        return -1;
    tb_nbc_config c = {.log = &logs[i],
                       .self = names[i],
                       .region = "r",
                       .self_der = n->der,
                       .self_der_len = n->der_len,
                       .key_file = key,
                       .ca_file = ca,
                       .state_dir = state,
                       .lim = &lim,
                       .first_id = 100,
                       .incarnation = 1,
                       .now_s = now_s};
    tb_nbc_io io = {n, io_send, io_seen, io_tree, NULL, io_deliver, NULL};
    tb_nmesh_config m = {.active_view = 8,
                         .passive_view = 64,
                         .incarnation = 1,
                         .seed = (uint64_t)i + 1,
                         .lim = &lim};
    snprintf(m.self.name, sizeof(m.self.name), "%s", names[i]);
    snprintf(m.self.region, sizeof(m.self.region), "r");
    snprintf(m.self.addrs[0], sizeof(m.self.addrs[0]), "127.0.0.%d:4433", 60 + i);
    m.self.n_addrs = 1;
    tb_nmesh_io mio = {n,    mesh_send, nmesh_quiet_close, nmesh_quiet_suspect, nmesh_quiet_alive,
                       NULL, NULL};
    if (tb_nmesh_new(&m, &mio, now, &n->mesh) != 0)
        return -1;
    return tb_nbc_new(&c, &io, &n->nbc);
}

typedef struct listing {
    const char *name;
    int found;
    tb_nmesh_member state;
    uint64_t incarnation;
    size_t n;
} listing;

static void list_one(void *arg, const char *name, tb_nmesh_member state, uint64_t incarnation)
{
    listing *l = arg;
    l->n++;
    if (l->name && strcmp(name, l->name) == 0) {
        l->found++;
        l->state = state;
        l->incarnation = incarnation;
    }
}

/* How often mesh lists `name` as a member (0 or 1), and how many members it lists. */
static listing members_of(const tb_nmesh *mesh, const char *name)
{
    listing l = {.name = name};
    tb_nmesh_members(mesh, list_one, &l);
    return l;
}

static void test_alive_and_fetch(void)
{
    /* a and b connect: a's first link sends its ALIVE; b learns a's certificate from it. */
    link_up(A, B);
    pump();
    TB_CHECK_EQ(stats(A).alives_sent, 1);
    TB_CHECK_EQ(stats(B).alives_received, 1);
    tb_measure_origin_key k;
    TB_CHECK_EQ(tb_nbc_origin_key(nodes[B].nbc, "a", now_s, &k), TB_OK);
    /* c joins b later: a's ALIVE has passed. a's broadcast waits at c while c asks b for a's
     * certificate, then is delivered. */
    link_up(B, C);
    pump();
    TB_CHECK_EQ(tb_nbc_origin_key(nodes[C].nbc, "a", now_s, &k), TB_ERR_NOTFOUND);
    uint64_t id;
    TB_CHECK_EQ(tb_nbc_originate(nodes[A].nbc, now, 7, (const uint8_t *)"tick", 4, &id), TB_OK);
    pump();
    TB_CHECK_EQ(nodes[B].delivered, 1);
    TB_CHECK_EQ(nodes[C].delivered, 1);
    TB_CHECK_STR(nodes[C].last, "a:tick");
    /* c knows a from its broadcasts alone (no ALIVE reaches c's member list here): listed. */
    listing l = members_of(nodes[C].mesh, "a");
    TB_CHECK_EQ(l.found, 1);
    TB_CHECK_EQ(l.state, TB_NMESH_ALIVE);
    TB_CHECK_EQ(l.incarnation, 0);
    TB_CHECK_EQ(tb_nmesh_member_count(nodes[C].mesh, TB_NMESH_ALIVE), l.n);
    TB_CHECK_EQ(stats(C).held, 1);
    TB_CHECK_EQ(stats(C).cert_reqs_sent, 1);
    TB_CHECK_EQ(stats(B).certs_sent, 1);
    TB_CHECK(stats(C).certs_learned >= 2); /* b's from the handshake, a's from CERT */
    TB_CHECK_EQ(tb_nbc_origin_key(nodes[C].nbc, "a", now_s, &k), TB_OK);
}

/* m claims a's next message id with its own key: b refuses it and passes nothing on; a's real
 * message with that id is delivered everywhere. A forged ALIVE for a is refused too. */
static void test_forged_origin(void)
{
    link_up(M, B);
    pump();
    int b0 = nodes[B].delivered, c0 = nodes[C].delivered;
    uint64_t refused0 = stats(B).refused;
    uint64_t next = 100 + stats(A).originated; /* a's ids start at 100 */
    static uint8_t msg[8192];
    size_t len = tb_test_forge_broadcast("a", next, 7, (const uint8_t *)"fake", 4, nodes[M].sk, msg,
                                         sizeof(msg));
    TB_REQUIRE(len > 0);
    dispatch(M, B, msg, len);
    TB_CHECK_EQ(last_rc, TB_ERR_VERIFY); /* a's certificate is known: m's fault (penalised) */
    pump();
    TB_CHECK_EQ(stats(B).refused, refused0 + 1);
    TB_CHECK_EQ(nodes[B].delivered, b0);
    TB_CHECK_EQ(nodes[C].delivered, c0);
    uint64_t id;
    TB_CHECK_EQ(tb_nbc_originate(nodes[A].nbc, now, 7, (const uint8_t *)"real", 4, &id), TB_OK);
    TB_CHECK_EQ(id, next);
    pump();
    TB_CHECK_EQ(nodes[B].delivered, b0 + 1);
    TB_CHECK_EQ(nodes[C].delivered, c0 + 1);
    TB_CHECK_STR(nodes[C].last, "a:real");

    /* An ALIVE claiming a, carrying a's certificate, signed by m. */
    const char *addrs[1] = {"127.0.0.60:4433"};
    tb_wire_msg w = {.type = TB_WIRE_ALIVE};
    w.alive = (tb_wire_alive){"a", "r", addrs, 1, {nodes[A].der, nodes[A].der_len}, 999};
    uint8_t alive[8192];
    size_t alen;
    TB_REQUIRE(tb_wire_encode(&w, &lim, alive, sizeof(alive), &alen) == TB_OK);
    len = tb_test_forge_broadcast("a", 1, TB_NODE_APP_ALIVE, alive, alen, nodes[M].sk, msg,
                                  sizeof(msg));
    TB_REQUIRE(len > 0);
    uint64_t alives0 = stats(B).alives_received;
    dispatch(M, B, msg, len);
    pump();
    TB_CHECK_EQ(stats(B).refused, refused0 + 2);
    TB_CHECK_EQ(stats(B).alives_received, alives0);
}

/* Broadcasts of an origin nobody knows: 64 wait at b (one CERT_REQ goes to m, which has no
 * answer), the rest are dropped; after 5 s the waiting ones expire. All counted. */
static void test_unknown_origin_bounded(void)
{
    tb_nbc_stats s0 = stats(B);
    static uint8_t msg[8192];
    for (uint64_t i = 0; i < TB_ORIGINS_HOLD_PER_PEER + 6; i++) {
        size_t len = tb_test_forge_broadcast("ghost", i, 7, (const uint8_t *)"boo", 3, nodes[M].sk,
                                             msg, sizeof(msg));
        TB_REQUIRE(len > 0);
        dispatch(M, B, msg, len);
        TB_CHECK_EQ(last_rc, TB_OK); /* waiting for a certificate: no fault of m's */
    }
    pump();
    tb_nbc_stats s1 = stats(B);
    TB_CHECK_EQ(s1.held - s0.held, TB_ORIGINS_HOLD_PER_PEER);
    TB_CHECK_EQ(s1.hold_dropped - s0.hold_dropped, 6);
    TB_CHECK_EQ(s1.cert_reqs_sent - s0.cert_reqs_sent, 1);
    TB_CHECK_EQ(s1.delivered, s0.delivered);
    TB_CHECK_EQ(members_of(nodes[B].mesh, "ghost").found, 0); /* never verified: not listed */
    now += TB_ORIGINS_HOLD_NS;
    (void)tb_nbc_poll(nodes[B].nbc, now);
    TB_CHECK_EQ(stats(B).hold_dropped - s0.hold_dropped, 6 + TB_ORIGINS_HOLD_PER_PEER);
    /* b still serves: a's next broadcast gets through. */
    int c0 = nodes[C].delivered;
    TB_CHECK_EQ(tb_nbc_originate(nodes[A].nbc, now, 7, (const uint8_t *)"on", 2, NULL), TB_OK);
    pump();
    TB_CHECK_EQ(nodes[C].delivered, c0 + 1);
}

/* The first ALIVEs are repeated 5, 20 and 60 s after the first link (for who joins meanwhile);
 * then every 10 minutes an ALIVE again; duplicates of it are dropped by digest. */
static void test_alive_refresh(void)
{
    uint64_t early0 = stats(A).alives_sent;
    for (int i = 0; i < 3; i++) {
        now += 60 * SEC;
        (void)tb_nbc_poll(nodes[A].nbc, now);
        pump();
    }
    TB_CHECK(stats(A).alives_sent > early0);
    uint64_t sent0 = stats(A).alives_sent, recv0 = stats(C).alives_received;
    TB_CHECK(tb_nbc_poll(nodes[A].nbc, now) <= now + TB_NBC_ALIVE_NS);
    now += TB_NBC_ALIVE_NS;
    (void)tb_nbc_poll(nodes[A].nbc, now);
    pump();
    TB_CHECK_EQ(stats(A).alives_sent, sent0 + 1);
    TB_CHECK_EQ(stats(C).alives_received, recv0 + 1);
}

/* Origins known from broadcasts alone: a bounded table (the stalest gives way), each listed
 * while heard from within TB_NMESH_HEARD_KEEP_NS, and not beside the member list's own entry. */
static int no_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                   size_t len)
{
    return TB_OK; /* x, the one neighbour, sent every copy: nothing goes back */
}

static void test_heard_bounded(void)
{
    tb_nmesh_config c = {.active_view = 8, .passive_view = 64, .incarnation = 1, .lim = &lim};
    snprintf(c.self.name, sizeof(c.self.name), "h");
    tb_nmesh_io io = {NULL, no_send, nmesh_quiet_close, nmesh_quiet_suspect, nmesh_quiet_alive,
                      NULL, NULL};
    tb_nmesh *nm;
    uint64_t t = now;
    TB_REQUIRE(tb_nmesh_new(&c, &io, t, &nm) == 0); /* a leaf: no views, a tree all the same */
    tb_nmesh_link_up(nm, t, "x");
    const uint8_t raw[4] = {1, 2, 3, 4};
    for (unsigned i = 0; i < TB_NMESH_HEARD_MAX + 10; i++) {
        char origin[16];
        uint8_t dg[TB_NMESH_ID_LEN] = {0};
        snprintf(origin, sizeof(origin), "o%u", i);
        memcpy(dg, &i, sizeof(i));
        bool is_new = false;
        TB_CHECK_EQ(tb_nmesh_gossip(nm, ++t, "x", origin, dg, TB_NMESH_MAX_HOPS - 1, raw,
                                    sizeof(raw), &is_new),
                    0);
        TB_CHECK(is_new);
    }
    TB_CHECK_EQ(members_of(nm, NULL).n, TB_NMESH_HEARD_MAX);
    TB_CHECK_EQ(members_of(nm, "o9").found, 0); /* the ten heard first gave way */
    TB_CHECK_EQ(members_of(nm, "o10").found, 1);
    TB_CHECK_EQ(members_of(nm, "o1033").found, 1);
    /* A member the failure detector holds (a SUSPECT named it) is listed once, as it holds it. */
    uint8_t p[256];
    size_t len;
    TB_REQUIRE(tb_nmesh_suspect_payload(&lim, "o500", 7, p, sizeof(p), &len) == 0);
    TB_CHECK_EQ(tb_nmesh_mesh_bcast(nm, t, "x", TB_NODE_APP_SUSPECT, p, len), 0);
    listing l = members_of(nm, "o500");
    TB_CHECK_EQ(l.found, 1);
    TB_CHECK_EQ(l.state, TB_NMESH_SUSPECT);
    TB_CHECK_EQ(l.incarnation, 7);
    TB_CHECK_EQ(l.n, TB_NMESH_HEARD_MAX);
    /* Not heard from for TB_NMESH_HEARD_KEEP_NS: no longer listed. */
    tb_nmesh_tick(nm, t + TB_NMESH_HEARD_KEEP_NS);
    TB_CHECK_EQ(members_of(nm, "o1033").found, 0);
    TB_CHECK_EQ(tb_nmesh_member_count(nm, TB_NMESH_ALIVE), 0);
    tb_nmesh_free(nm);
}

/* A split overlay: a member heard from once, alive in the member list and silent for three
 * broadcast intervals (16 s in a small mesh) while no neighbour, is sent a high-priority NEIGHBOR
 * (once per retry period); a silent member held dead is not, nor is one that keeps broadcasting. */
static unsigned split_neighbors; /* high-priority NEIGHBORs sent by split_send */
static char split_to[16];

static int split_send(void *arg, const char *peer, const tb_hv_desc *dial, const uint8_t *msg,
                      size_t len)
{
    (void)arg;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, &lim, &m, NULL) != TB_OK)
        return TB_OK;
    if (m.type == TB_WIRE_NEIGHBOR && m.neighbor.high && dial && dial->n_addrs > 0) {
        split_neighbors++;
        snprintf(split_to, sizeof(split_to), "%s", peer);
    }
    tb_wire_msg_clear(&m);
    return TB_OK;
}

static void heard(tb_nmesh *nm, uint64_t t, const char *origin, uint32_t k)
{
    const uint8_t raw[4] = {1, 2, 3, 4};
    uint8_t dg[TB_NMESH_ID_LEN] = {0};
    memcpy(dg, &k, sizeof(k));
    memcpy(dg + 8, origin, strlen(origin) < 8 ? strlen(origin) : 8);
    bool is_new = false;
    TB_CHECK_EQ(
        tb_nmesh_gossip(nm, t, "x", origin, dg, TB_NMESH_MAX_HOPS - 1, raw, sizeof(raw), &is_new),
        0);
}

static void alive(tb_nmesh *nm, uint64_t t, const char *name, const char *addr)
{
    const char *addrs[1] = {addr};
    tb_wire_msg w = {.type = TB_WIRE_ALIVE};
    w.alive = (tb_wire_alive){name, "r", addrs, 1, {NULL, 0}, 5};
    uint8_t p[512];
    size_t len;
    TB_REQUIRE(tb_wire_encode(&w, &lim, p, sizeof(p), &len) == TB_OK);
    TB_CHECK_EQ(tb_nmesh_mesh_bcast(nm, t, name, TB_NODE_APP_ALIVE, p, len), 0);
}

/* Node h with one neighbour, x, in the only active slot: a full view, so HyParView's own repair
 * stays quiet (with none it would ask at high priority itself). */
static tb_nmesh *split_mesh(uint64_t t)
{
    tb_nmesh_config c = {
        .active_view = 4, .passive_view = 16, .incarnation = 1, .seed = 3, .lim = &lim};
    snprintf(c.self.name, sizeof(c.self.name), "h");
    snprintf(c.self.region, sizeof(c.self.region), "r");
    snprintf(c.self.addrs[0], sizeof(c.self.addrs[0]), "127.0.0.70:4433");
    c.self.n_addrs = 1;
    tb_nmesh_io io = {NULL, split_send, nmesh_quiet_close, nmesh_quiet_suspect, nmesh_quiet_alive,
                      NULL, NULL};
    tb_nmesh *nm;
    if (tb_nmesh_new(&c, &io, t, &nm) != 0)
        return NULL;
    const char *xaddr[1] = {"127.0.0.74:4433"};
    tb_wire_msg w = {.type = TB_WIRE_NEIGHBOR};
    w.neighbor = (tb_wire_neighbor){{"x", "r", xaddr, 1}, 1};
    tb_nmesh_link_up(nm, t, "x");
    TB_CHECK_EQ(tb_nmesh_recv(nm, t, "x", &w), 0);
    TB_CHECK(tb_nmesh_is_active(nm, "x"));
    return nm;
}

static void test_split_repair(void)
{
    uint64_t t = now;
    tb_nmesh *nm = split_mesh(t);
    TB_REQUIRE(nm);
    alive(nm, t, "far", "127.0.0.71:4433");  /* the other part of a split */
    alive(nm, t, "near", "127.0.0.72:4433"); /* keeps broadcasting */
    alive(nm, t, "gone", "127.0.0.73:4433"); /* will be held dead */
    heard(nm, t, "far", 1);
    heard(nm, t, "near", 1);
    heard(nm, t, "gone", 1);
    uint8_t p[256];
    size_t len;
    TB_REQUIRE(tb_nmesh_suspect_payload(&lim, "gone", 5, p, sizeof(p), &len) == 0);
    TB_CHECK_EQ(tb_nmesh_mesh_bcast(nm, t, "x", TB_NODE_APP_SUSPECT, p, len), 0);
    split_neighbors = 0;
    uint64_t silent = 3 * TB_NMESH_BCAST_EVERY_NS;
    uint64_t end = t + silent + 10 * SEC;
    for (uint32_t k = 2; t < end; k++) { /* "near" broadcasts every 16 s; ticks every second */
        t += SEC;
        if (k % 16 == 0)
            heard(nm, t, "near", k);
        tb_nmesh_tick(nm, t);
        if (t < now + silent)
            TB_CHECK_EQ(split_neighbors, 0u); /* not silent long enough yet */
    }
    TB_CHECK_EQ(split_neighbors, 1u); /* "gone" is dead by now (no refutation), "near" heard */
    TB_CHECK_STR(split_to, "far");
    for (uint32_t k = 100; k < 160; k++) { /* asked once per retry period, not every check */
        t += SEC;
        if (k % 16 == 0)
            heard(nm, t, "near", k);
        tb_nmesh_tick(nm, t);
    }
    TB_CHECK_EQ(split_neighbors, 1u);
    tb_nmesh_free(nm);
}

/* In a mesh of 60 each node broadcasts once per pace gap (node/pace.h, 54 s at a 16 s base), so
 * silence is three of those, not three times the base: nobody is asked before (split_asks: the
 * NEIGHBOR itself may wait for HyParView's own request under way). every_ns: the base set after
 * the start, as a reload of peer_interval does (0: the default, 16 s). */
static uint64_t split_asks(const tb_nmesh *nm)
{
    tb_nmesh_stats st;
    tb_nmesh_get_stats(nm, &st);
    return st.split_asks;
}

static void paced_silence(uint64_t every_ns)
{
    uint64_t t = now;
    tb_nmesh *nm = split_mesh(t);
    TB_REQUIRE(nm);
    if (every_ns)
        tb_nmesh_set_bcast_every(nm, every_ns);
    for (int i = 0; i < 58; i++) {
        char name[8], addr[32];
        snprintf(name, sizeof(name), "m%d", i);
        snprintf(addr, sizeof(addr), "127.0.1.%d:4433", i + 1);
        alive(nm, t, name, addr);
        heard(nm, t, name, 1);
    }
    TB_CHECK_EQ(tb_nmesh_size(nm), 60u);
    uint64_t silent = 3 * tb_pace_every_ns(every_ns ? every_ns : TB_NMESH_BCAST_EVERY_NS, 60);
    for (uint64_t end = now + silent + 10 * SEC; t < end;) {
        t += SEC;
        tb_nmesh_tick(nm, t);
        if (t < now + silent)
            TB_CHECK_EQ(split_asks(nm), 0u);
    }
    TB_CHECK(split_asks(nm) >= 1u);
    tb_nmesh_free(nm);
}

static void test_split_repair_paced(void)
{
    TB_CHECK(3 * tb_pace_every_ns(TB_NMESH_BCAST_EVERY_NS, 60) > 160 * SEC);
    paced_silence(0);
    TB_CHECK(3 * tb_pace_every_ns(2 * SEC, 60) < 21 * SEC);
    paced_silence(2 * SEC); /* asked after ~20 s, not 163 */
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-nbc.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    lim = tb_wire_limits_default();
    now_s = (int64_t)time(NULL);
    int ok = 1;
    for (int i = 0; i < NN; i++)
        ok &= start(i) == TB_OK;
    if (ok) {
        TB_RUN(test_alive_and_fetch);
        TB_RUN(test_forged_origin);
        TB_RUN(test_unknown_origin_bounded);
        TB_RUN(test_alive_refresh);
        TB_RUN(test_heard_bounded);
        TB_RUN(test_split_repair);
        TB_RUN(test_split_repair_paced);
    } else {
        fprintf(stderr, "cannot start the nodes\n");
    }
    for (int i = 0; i < NN; i++) {
        tb_nbc_free(nodes[i].nbc);
        tb_nmesh_free(nodes[i].mesh);
    }
    return tb_fx_finish(dir, ok ? TB_DONE() : 1);
}
