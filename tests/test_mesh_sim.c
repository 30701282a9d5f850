/* Simulations of the mesh logic: N nodes in one process, joined by in-memory queues, no I/O.
 * 1. Broadcast flooding over line, ring, star, full and random connected topologies.
 * 2. Peer exchange: nodes started with one seed each learn the whole mesh from the verified
 *    peers the two ends of each new connection hand each other; every connected pair pings
 *    (each node's clock has its own offset); a killed node is noticed by missed pings and
 *    redialled with growing, capped delays. */
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "discovery/liveness.h"
#include "discovery/peers.h"
#include "routing/broadcast.h"
#include "tb_test.h"
#include "tests/support/bc_digest.h"

#define MAXN 10
#define S TB_NS_PER_SEC
#define MS TB_NS_PER_MS

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *const names[MAXN] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"};

static int name_index(const char *name)
{
    for (int i = 0; i < MAXN; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- broadcast flooding */

typedef enum { LINE, RING, STAR, FULL, RANDOM } topology;
static const char *const topo_names[] = {"line", "ring", "star", "full", "random"};

typedef struct graph {
    int n;
    int adj[MAXN][MAXN];
} graph;

static void make_graph(graph *g, int n, topology t)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    for (int i = 1; i < n; i++) {
        /* Every topology contains a spanning tree, so it is connected. */
        int parent = t == LINE || t == RING ? i - 1 : t == STAR ? 0 : (int)(rnd() % (uint64_t)i);
        g->adj[i][parent] = g->adj[parent][i] = 1;
    }
    if (t == RING && n > 2)
        g->adj[0][n - 1] = g->adj[n - 1][0] = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && (t == FULL || (t == RANDOM && rnd() % 4 == 0)))
                g->adj[i][j] = g->adj[j][i] = 1;
}

typedef struct bc_msg {
    int to, from, origin;
    uint64_t id;
    uint8_t hops;
} bc_msg;

#define QMAX 100000

typedef struct bc_sim {
    graph g;
    tb_bc *bc[MAXN];
    const char *nb[MAXN][MAXN];
    int nnb[MAXN];
    bc_msg *q;
    size_t qlen;
    /* deliveries[node][origin][k]: how often node got the k-th broadcast of origin */
    int deliveries[MAXN][MAXN][8];
    uint64_t ids[MAXN][8];
    size_t max_cache;
    size_t cache_cap;
    uint64_t sent;
} bc_sim;

static int bc_sim_init(bc_sim *s, int n, topology t, size_t cache_cap, uint8_t hop_limit)
{
    tb_bc_config cfg;
    memset(s, 0, sizeof(*s));
    make_graph(&s->g, n, t);
    s->q = calloc(QMAX, sizeof(*s->q));
    s->cache_cap = cache_cap;
    if (!s->q)
        return -1;
    for (int i = 0; i < n; i++) {
        tb_bc_config_default(&cfg, rnd());
        cfg.cache_capacity = cache_cap;
        cfg.hop_limit = hop_limit;
        if (tb_bc_new(&cfg, names[i], rnd() % 1000, &s->bc[i]) < 0)
            return -1;
        for (int j = 0; j < n; j++)
            if (s->g.adj[i][j])
                s->nb[i][s->nnb[i]++] = names[j];
    }
    return 0;
}

static void bc_sim_free(bc_sim *s)
{
    for (int i = 0; i < s->g.n; i++)
        tb_bc_free(s->bc[i]);
    free(s->q);
}

static int enqueue(bc_sim *s, int from, const tb_bc_decision *d, const size_t *fwd, int origin,
                   uint64_t id)
{
    for (size_t k = 0; k < d->nforward; k++) {
        if (s->qlen >= QMAX)
            return -1;
        bc_msg *m = &s->q[s->qlen++];
        m->to = name_index(s->nb[from][fwd[k]]);
        m->from = from;
        m->origin = origin;
        m->id = id;
        m->hops = d->hop_limit;
        s->sent++;
    }
    return 0;
}

static int originate(bc_sim *s, int origin, int k, uint64_t now)
{
    size_t fwd[MAXN];
    tb_bc_decision d;
    s->ids[origin][k] = tb_bc_next_id(s->bc[origin]);
    if (tb_bc_originate(s->bc[origin], now, D(names[origin], s->ids[origin][k]), s->nb[origin],
                        (size_t)s->nnb[origin], fwd, &d) < 0)
        return -1;
    return enqueue(s, origin, &d, fwd, origin, s->ids[origin][k]);
}

/* Delivers queued copies in random order (the mesh does not keep order across paths). */
static int run(bc_sim *s, uint64_t now)
{
    size_t fwd[MAXN];
    tb_bc_decision d;
    while (s->qlen) {
        size_t pick = (size_t)(rnd() % s->qlen);
        bc_msg m = s->q[pick];
        s->q[pick] = s->q[--s->qlen];
        if (tb_bc_receive(s->bc[m.to], now, names[m.origin], strlen(names[m.origin]),
                          D(names[m.origin], m.id), m.hops, names[m.from], s->nb[m.to],
                          (size_t)s->nnb[m.to], fwd, &d) < 0)
            return -1;
        if (d.deliver) {
            for (int k = 0; k < 8; k++)
                if (s->ids[m.origin][k] == m.id)
                    s->deliveries[m.to][m.origin][k]++;
        }
        if (tb_bc_cache_size(s->bc[m.to]) > s->max_cache)
            s->max_cache = tb_bc_cache_size(s->bc[m.to]);
        if (enqueue(s, m.to, &d, fwd, m.origin, m.id) < 0)
            return -1;
    }
    return 0;
}

static int edges(const graph *g)
{
    int e = 0;
    for (int i = 0; i < g->n; i++)
        for (int j = i + 1; j < g->n; j++)
            e += g->adj[i][j];
    return e;
}

/* Every node broadcasts 8 messages; every other node gets each exactly once, the origin never,
 * and each message crosses each link at most once per direction. */
static void flood_exactly_once(int n, topology t)
{
    bc_sim s;
    int bad = 0;
    tb_bc_stats st;
    uint64_t dups = 0;
    TB_REQUIRE(bc_sim_init(&s, n, t, 1024, 16) == 0);
    for (int k = 0; k < 8; k++) {
        for (int o = 0; o < n; o++)
            TB_REQUIRE(originate(&s, o, k, (uint64_t)k * MS) == 0);
        TB_REQUIRE(run(&s, (uint64_t)k * MS) == 0); /* interleaved by the random order */
    }
    for (int i = 0; i < n; i++)
        for (int o = 0; o < n; o++)
            for (int k = 0; k < 8; k++)
                bad += s.deliveries[i][o][k] != (i == o ? 0 : 1);
    if (bad)
        fprintf(stderr, "%s n=%d: %d wrong delivery counts\n", topo_names[t], n, bad);
    TB_CHECK_EQ(bad, 0);
    TB_CHECK(s.sent <= (uint64_t)(2 * edges(&s.g)) * (uint64_t)n * 8);
    for (int i = 0; i < n; i++) {
        tb_bc_get_stats(s.bc[i], &st);
        dups += st.duplicates;
    }
    /* Graphs with cycles must have met copies and dropped them. */
    if (edges(&s.g) > n - 1)
        TB_CHECK(dups > 0);
    else
        TB_CHECK_EQ(dups, 0);
    TB_CHECK(s.max_cache <= 1024);
    bc_sim_free(&s);
}

static void test_flood_all_topologies(void)
{
    static const int sizes[] = {3, 5, 10};
    for (int t = LINE; t <= RANDOM; t++)
        for (size_t k = 0; k < 3; k++)
            for (int rep = 0; rep < (t == RANDOM ? 5 : 1); rep++)
                flood_exactly_once(sizes[k], (topology)t);
}

/* On a line of 10 with hop limit 3, a broadcast from the end reaches exactly 3 nodes. */
static void test_hop_limit_stops(void)
{
    bc_sim s;
    TB_REQUIRE(bc_sim_init(&s, 10, LINE, 64, 3) == 0);
    TB_REQUIRE(originate(&s, 0, 0, 0) == 0);
    TB_REQUIRE(run(&s, 0) == 0);
    for (int i = 1; i < 10; i++)
        TB_CHECK_EQ(s.deliveries[i][0][0], i <= 3 ? 1 : 0);
    TB_CHECK_EQ(s.sent, 3);
    bc_sim_free(&s);
    /* From the middle (n4) it reaches n1..n7. */
    TB_REQUIRE(bc_sim_init(&s, 10, LINE, 64, 3) == 0);
    TB_REQUIRE(originate(&s, 4, 0, 0) == 0);
    TB_REQUIRE(run(&s, 0) == 0);
    for (int i = 0; i < 10; i++)
        TB_CHECK_EQ(s.deliveries[i][4][0], i != 4 && abs(i - 4) <= 3 ? 1 : 0);
    bc_sim_free(&s);
}

/* A cache far too small for the traffic: memory stays at its capacity, the hop limit still
 * ends every flood, and each node still gets every message at least once. */
static void test_tiny_cache_stays_bounded(void)
{
    bc_sim s;
    int missing = 0;
    TB_REQUIRE(bc_sim_init(&s, 10, FULL, 4, 3) == 0);
    for (int k = 0; k < 8; k++)
        for (int o = 0; o < 10; o++)
            TB_REQUIRE(originate(&s, o, k, 0) == 0);
    TB_REQUIRE(run(&s, 0) == 0);
    TB_CHECK(s.max_cache <= 4);
    for (int i = 0; i < 10; i++)
        for (int o = 0; o < 10; o++)
            for (int k = 0; k < 8; k++)
                missing += i != o && s.deliveries[i][o][k] == 0;
    TB_CHECK_EQ(missing, 0);
    bc_sim_free(&s);
}

/* ---------------------------------------------------------------- peer exchange */

typedef enum { EV_CONNECT_DONE, EV_PEERS_ARRIVES, EV_PONG_ARRIVES } ev_type;

typedef struct event {
    uint64_t at;
    ev_type type;
    int i, j; /* i acted towards j */
    uint32_t id;
    int live;
    uint64_t seq; /* EV_PONG_ARRIVES: the pong's fields */
    int64_t t1, t2, t3;
} event;

#define EVMAX 4096

typedef struct pex_sim {
    int n;
    uint64_t now;
    tb_peers *peers[MAXN];
    int alive[MAXN];
    int conn[MAXN][MAXN];
    char addr[MAXN][32];
    uint8_t cert[MAXN][4];
    tb_live live[MAXN][MAXN]; /* live[i][j]: i's bookkeeping of its pings to j */
    int64_t clock_off[MAXN];  /* node i's real clock = REAL0 + now + clock_off[i] */
    uint64_t lost_at[MAXN];   /* when node i last declared a peer lost */
    event ev[EVMAX];
    /* dial times from each node to the watched node */
    int watch;
    int client[MAXN]; /* does not listen: has no address, only dials */
    uint64_t dials_to_watch[MAXN][64];
    int ndials[MAXN];
} pex_sim;

static tb_peer_info self_info(pex_sim *s, int i)
{
    tb_peer_info in;
    memset(&in, 0, sizeof(in));
    in.name.p = names[i];
    in.name.len = strlen(names[i]);
    in.region.p = i % 2 ? "us" : "eu";
    in.region.len = 2;
    in.addrs[0].p = s->addr[i];
    in.addrs[0].len = strlen(s->addr[i]);
    in.naddrs = s->client[i] ? 0 : 1;
    in.cert = s->cert[i];
    in.cert_len = sizeof(s->cert[i]);
    return in;
}

static int start_node(pex_sim *s, int i, int seed)
{
    tb_peers_config cfg;
    tb_peer_info self = self_info(s, i);
    uint32_t id;
    tb_peers_config_default(&cfg, names[i], (uint64_t)i * 7919 + 1);
    if (tb_peers_new(&cfg, &s->peers[i]) < 0 || tb_peers_set_self(s->peers[i], &self) < 0 ||
        tb_peers_add_seed(s->peers[i], s->addr[seed], &id) < 0)
        return -1;
    s->alive[i] = 1;
    return 0;
}

static event *add_event(pex_sim *s, uint64_t at, ev_type type, int i, int j, uint32_t id)
{
    for (int k = 0; k < EVMAX; k++) {
        if (!s->ev[k].live) {
            event e = {at, type, i, j, id, 1, 0, 0, 0, 0};
            s->ev[k] = e;
            return &s->ev[k];
        }
    }
    return NULL;
}

#define REAL0 ((int64_t)1795000000 * (int64_t)S)

static int64_t real_at(const pex_sim *s, int i, uint64_t mono)
{
    return REAL0 + (int64_t)mono + s->clock_off[i];
}

static int addr_index(const pex_sim *s, const char *addr)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->addr[i], addr) == 0)
            return i;
    return -1;
}

static void cancel_dial(pex_sim *s, int i, uint32_t id)
{
    for (int k = 0; k < EVMAX; k++)
        if (s->ev[k].live && s->ev[k].type == EV_CONNECT_DONE && s->ev[k].i == i &&
            s->ev[k].id == id)
            s->ev[k].live = 0;
}

static int do_action(pex_sim *s, int i, const tb_peers_action *a)
{
    int j;
    switch (a->what) {
    case TB_PEERS_DO_DIAL:
        j = addr_index(s, a->addr);
        if (j < 0)
            return -1;
        if (j == s->watch && s->ndials[i] < 64)
            s->dials_to_watch[i][s->ndials[i]++] = s->now;
        /* A dead node does not answer: the connect deadline aborts the dial. */
        if (!s->alive[j])
            return 0;
        return add_event(s, s->now + 3 * MS, EV_CONNECT_DONE, i, j, a->id) ? 0 : -1;
    case TB_PEERS_DO_ABORT:
        cancel_dial(s, i, a->id);
        return 0;
    }
    return -1;
}

static uint32_t id_of(pex_sim *s, int i, int j)
{
    uint32_t id = 0;
    if (tb_peers_find(s->peers[i], names[j], &id) < 0)
        return 0;
    return id;
}

static int live_start(pex_sim *s, int i, int j)
{
    tb_live_config cfg;
    tb_live_config_default(&cfg);
    return tb_live_init(&s->live[i][j], &cfg, s->now, (uint64_t)(i * MAXN + j) << 32);
}

static void close_conn(pex_sim *s, int i, int j)
{
    s->conn[i][j] = s->conn[j][i] = 0;
    TB_CHECK_EQ(tb_peers_disconnected(s->peers[i], id_of(s, i, j), s->now), 0);
    if (s->alive[j])
        TB_CHECK_EQ(tb_peers_disconnected(s->peers[j], id_of(s, j, i), s->now), 0);
}

/* The PING reaches j 1 ms later, j holds it 10 us, the PONG takes 1 ms back. */
static int ping_peers(pex_sim *s, int i, uint64_t *wake)
{
    for (int j = 0; j < s->n; j++) {
        tb_live *l = &s->live[i][j];
        uint64_t seq;
        event *e;
        if (!s->conn[i][j])
            continue;
        if (tb_live_due(l, s->now)) {
            if (tb_live_ping_sent(l, s->now, real_at(s, i, s->now), &seq) < 0)
                return -1;
            if (tb_live_lost(l)) {
                s->lost_at[i] = s->now;
                close_conn(s, i, j);
                continue;
            }
            if (s->alive[j]) {
                e = add_event(s, s->now + 2 * MS + 10 * TB_NS_PER_US, EV_PONG_ARRIVES, i, j, 0);
                if (!e)
                    return -1;
                e->seq = seq;
                e->t1 = real_at(s, i, s->now);
                e->t2 = real_at(s, j, s->now + MS);
                e->t3 = e->t2 + 10 * (int64_t)TB_NS_PER_US;
            }
        }
        if (tb_live_next_wake(l) < *wake)
            *wake = tb_live_next_wake(l);
    }
    return 0;
}

static int pong_arrives(pex_sim *s, const event *e)
{
    if (!s->alive[e->i] || !s->conn[e->i][e->j])
        return 0;
    return tb_live_pong(&s->live[e->i][e->j], s->now, e->seq, e->t1, e->t2, e->t3,
                        real_at(s, e->i, s->now), NULL);
}

static int connect_done(pex_sim *s, const event *e)
{
    int i = e->i, j = e->j, rc;
    uint32_t got, in;
    if (!s->alive[i] || !s->alive[j])
        return 0;
    rc = tb_peers_connected(s->peers[i], e->id, names[j], j % 2 ? "us" : "eu", s->cert[j],
                            sizeof(s->cert[j]), s->now, &got);
    if (s->conn[i][j])
        return rc == TB_ERR_EXISTS ? 0 : -1; /* the second connection of a pair is closed */
    if (rc < 0)
        return -1;
    rc = tb_peers_inbound(s->peers[j], names[i], i % 2 ? "us" : "eu", s->cert[i],
                          sizeof(s->cert[i]), s->now, &in);
    if (rc < 0)
        return -1;
    s->conn[i][j] = s->conn[j][i] = 1;
    /* Each side tells the other where it listens (mesh v2's descriptors do), then hands it its
     * verified peers once (the table schedules no exchange). */
    tb_peer_info di = self_info(s, i), dj = self_info(s, j);
    if (tb_peers_learn(s->peers[i], &dj, NULL) < 0 || tb_peers_learn(s->peers[j], &di, NULL) < 0)
        return -1;
    if (!add_event(s, s->now + 2 * MS, EV_PEERS_ARRIVES, i, j, 0) ||
        !add_event(s, s->now + 2 * MS, EV_PEERS_ARRIVES, j, i, 0))
        return -1;
    return live_start(s, i, j) < 0 || live_start(s, j, i) < 0 ? -1 : 0;
}

/* i learns j's verified peers, as j exported them when the event fires. */
static int peers_arrive(pex_sim *s, const event *e)
{
    tb_peer_info out[MAXN + 1];
    size_t n;
    if (!s->alive[e->i] || !s->alive[e->j] || !s->conn[e->i][e->j])
        return 0;
    n = tb_peers_export(s->peers[e->j], names[e->i], out, MAXN + 1);
    for (size_t k = 0; k < n; k++)
        if (tb_peers_learn(s->peers[e->i], &out[k], NULL) < 0)
            return -1;
    return 0;
}

static int fire(pex_sim *s, const event *e)
{
    switch (e->type) {
    case EV_CONNECT_DONE:
        return connect_done(s, e);
    case EV_PEERS_ARRIVES:
        return peers_arrive(s, e);
    case EV_PONG_ARRIVES:
        return pong_arrives(s, e);
    }
    return -1;
}

/* The node vanishes without a word: its peers must notice by missed pings. */
static void kill_node(pex_sim *s, int k)
{
    s->alive[k] = 0;
    tb_peers_free(s->peers[k]);
    s->peers[k] = NULL;
}

/* Runs the mesh until `until`: polls every live node at its wake-up time and fires events. */
static int pex_run(pex_sim *s, uint64_t until)
{
    uint64_t wake[MAXN];
    tb_peers_action acts[16];
    size_t n;
    for (int i = 0; i < s->n; i++)
        wake[i] = s->now;
    while (s->now <= until) {
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < s->n; i++) {
            if (!s->alive[i] || wake[i] > s->now)
                continue;
            if (tb_peers_poll(s->peers[i], s->now, acts, 16, &n, &wake[i]) < 0)
                return -1;
            for (size_t k = 0; k < n; k++)
                if (do_action(s, i, &acts[k]) < 0)
                    return -1;
            if (ping_peers(s, i, &wake[i]) < 0)
                return -1;
        }
        for (int k = 0; k < EVMAX; k++) {
            event *e = &s->ev[k];
            if (!e->live || e->at > s->now)
                continue;
            e->live = 0;
            if (fire(s, e) < 0)
                return -1;
            /* Tables changed: poll both sides again now. */
            wake[e->i] = wake[e->j] = s->now;
        }
        for (int i = 0; i < s->n; i++)
            if (s->alive[i] && wake[i] < next)
                next = wake[i];
        for (int k = 0; k < EVMAX; k++)
            if (s->ev[k].live && s->ev[k].at < next)
                next = s->ev[k].at;
        if (next <= s->now)
            continue;
        if (next == UINT64_MAX || next > until)
            break;
        s->now = next;
    }
    s->now = until;
    return 0;
}

static int fully_connected(const pex_sim *s)
{
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++)
            if (i != j && s->alive[i] && s->alive[j] && !s->conn[i][j])
                return 0;
    return 1;
}

static int pex_init(pex_sim *s, int n, int star, int client)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->watch = -1;
    if (client >= 0)
        s->client[client] = 1;
    for (int i = 0; i < n; i++) {
        snprintf(s->addr[i], sizeof(s->addr[i]), "127.0.0.%d:4433", 10 + i);
        s->clock_off[i] = (i * 37 % 11 - 5) * (int64_t)MS;
        s->cert[i][0] = 0x30;
        s->cert[i][1] = 2;
        s->cert[i][2] = 0xc0;
        s->cert[i][3] = (uint8_t)i;
        if (s->client[i])
            s->addr[i][0] = '\0';
    }
    /* One seed each: a chain (node i knows only node i−1) or everyone knows node 0. */
    for (int i = 0; i < n; i++)
        if (start_node(s, i, i == 0 ? 1 : star ? 0 : i - 1) < 0)
            return -1;
    return 0;
}

static void pex_free(pex_sim *s)
{
    for (int i = 0; i < s->n; i++)
        tb_peers_free(s->peers[i]);
}

static void check_tables(const pex_sim *s)
{
    for (int i = 0; i < s->n; i++) {
        /* One entry per other node: every seed was merged into its named entry. */
        TB_CHECK_EQ(tb_peers_count(s->peers[i]), s->n - 1);
        TB_CHECK_EQ(tb_peers_count_state(s->peers[i], TB_PEER_CONNECTED), s->n - 1);
        for (int j = 0; j < s->n; j++) {
            tb_peer_view v;
            uint32_t id;
            if (i == j)
                continue;
            TB_REQUIRE(tb_peers_find(s->peers[i], names[j], &id) == 0);
            TB_REQUIRE(tb_peers_get(s->peers[i], id, &v) == 0);
            TB_CHECK(v.verified);
            TB_CHECK_EQ(v.cert[3], j);
            TB_CHECK_STR(v.region, j % 2 ? "us" : "eu");
            if (s->client[j]) {
                TB_CHECK_EQ(v.naddrs, 0);
            } else {
                TB_CHECK(v.naddrs >= 1);
                TB_CHECK_STR(v.addrs[0], s->addr[j]);
            }
        }
    }
}

/* Symmetric 1 ms paths: the minimum-delay sample gives the exact offset and a 2 ms RTT. */
static void check_offsets(pex_sim *s)
{
    int wrong = 0;
    for (int i = 0; i < s->n; i++) {
        for (int j = 0; j < s->n; j++) {
            tb_live_estimate est;
            if (i == j)
                continue;
            if (tb_live_get_estimate(&s->live[i][j], &est) < 0 || est.samples < 4 ||
                est.offset_ns != s->clock_off[j] - s->clock_off[i] ||
                est.rtt_ns != 2 * (int64_t)MS || tb_live_missed(&s->live[i][j]) > 1)
                wrong++;
        }
    }
    TB_CHECK_EQ(wrong, 0);
}

static void test_one_seed_learns_mesh(void)
{
    static const int sizes[] = {3, 5, 10};
    for (int star = 0; star < 2; star++) {
        for (size_t k = 0; k < 3; k++) {
            pex_sim *s = calloc(1, sizeof(*s));
            TB_REQUIRE(s);
            TB_REQUIRE(pex_init(s, sizes[k], star, -1) == 0);
            /* Step 10 ms at a time to see when the mesh completes; it must within 2 s. */
            while (s->now < 2 * S && !fully_connected(s))
                TB_REQUIRE(pex_run(s, s->now + 10 * MS) == 0);
            printf("peer exchange, %d nodes, %s seeds: full mesh after %llu ms\n", sizes[k],
                   star ? "star" : "chain", (unsigned long long)(s->now / MS));
            TB_CHECK(fully_connected(s));
            check_tables(s);
            /* A few seconds of pings later every pair knows its RTT and clock offset. */
            TB_REQUIRE(pex_run(s, s->now + 5 * S) == 0);
            check_offsets(s);
            pex_free(s);
            free(s);
        }
    }
}

/* Node 3 of 5 dies silently: the others notice by missed pings, redial it with growing, capped,
 * jittered delays (connect timeout + backoff between attempts), and reconnect once it is
 * back. */
static void test_killed_node_redialled(void)
{
    pex_sim *s = calloc(1, sizeof(*s));
    tb_peers_config cfg;
    TB_REQUIRE(s);
    tb_peers_config_default(&cfg, "x", 0);
    TB_REQUIRE(pex_init(s, 5, 0, -1) == 0);
    TB_REQUIRE(pex_run(s, 2 * S) == 0);
    TB_REQUIRE(fully_connected(s));
    s->watch = 3;
    kill_node(s, 3);
    /* Lost at the sixth ping without a pong (5 misses at 1 s intervals). */
    TB_REQUIRE(pex_run(s, 2 * S + 7 * S) == 0);
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            continue;
        TB_CHECK(s->lost_at[i] > 2 * S + 4 * S && s->lost_at[i] <= 2 * S + 6 * S);
        TB_CHECK(!s->conn[i][3]);
    }
    TB_REQUIRE(pex_run(s, 1200 * S) == 0);
    printf("killed n3: n0 redialled it %d times in 1200 s\n", s->ndials[0]);
    for (int i = 0; i < 5; i++) {
        uint32_t id;
        tb_peer_view v;
        if (i == 3)
            continue;
        TB_REQUIRE(tb_peers_find(s->peers[i], "n3", &id) == 0);
        TB_REQUIRE(tb_peers_get(s->peers[i], id, &v) == 0);
        TB_CHECK(v.state == TB_PEER_BACKOFF || v.state == TB_PEER_CONNECTING);
        /* 1200 s with delays growing to 60 s + 10 s timeout: about 20 dials. */
        TB_CHECK(s->ndials[i] >= 15 && s->ndials[i] <= 30);
        uint64_t prev = 0;
        for (int d = 1; d < s->ndials[i]; d++) {
            uint64_t gap = s->dials_to_watch[i][d] - s->dials_to_watch[i][d - 1];
            uint64_t backoff = gap - cfg.connect_timeout_ns;
            /* after the disconnect (failure 1) and d aborted dials */
            uint64_t nominal = tb_peers_backoff_delay(&cfg, (unsigned)d + 1, 0);
            TB_CHECK(gap > cfg.connect_timeout_ns);
            TB_CHECK(backoff <= nominal && backoff >= nominal - nominal / 5);
            if (nominal < cfg.backoff_max_ns)
                TB_CHECK(backoff > prev);
            TB_CHECK(backoff <= cfg.backoff_max_ns);
            prev = backoff;
        }
        /* The later delays sit at the cap. */
        TB_CHECK(prev >= cfg.backoff_max_ns - cfg.backoff_max_ns / 5);
    }
    /* n3 is dead: the others stay connected to each other. */
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            if (i != j && i != 3 && j != 3)
                TB_CHECK(s->conn[i][j]);
    /* n3 restarts knowing only n2; everyone is connected again within one capped delay. */
    TB_REQUIRE(start_node(s, 3, 2) == 0);
    TB_REQUIRE(pex_run(s, 1200 * S + cfg.backoff_max_ns + cfg.connect_timeout_ns) == 0);
    TB_CHECK(fully_connected(s));
    check_tables(s);
    pex_free(s);
    free(s);
}

/* n4 runs in client mode (no listening address) with n0 as its seed: it learns and dials every
 * other node, each of which knows it (and its certificate) with no address to dial back. */
static void test_client_mode_node_joins(void)
{
    pex_sim *s = calloc(1, sizeof(*s));
    TB_REQUIRE(s);
    TB_REQUIRE(pex_init(s, 5, 1, 4) == 0);
    TB_REQUIRE(pex_run(s, 2 * S) == 0);
    TB_CHECK(fully_connected(s));
    check_tables(s);
    /* Every node knows n4 and its certificate with no address; most heard of it through
     * PEERS (from n0) before n4 dialled them, which is how a non-listening node's certificate
     * reaches the nodes it never connects to. */
    for (int i = 0; i < 4; i++) {
        uint32_t id;
        tb_peer_view v;
        TB_REQUIRE(tb_peers_find(s->peers[i], "n4", &id) == 0);
        TB_REQUIRE(tb_peers_get(s->peers[i], id, &v) == 0);
        TB_CHECK(v.verified);
        TB_CHECK_EQ(v.state, TB_PEER_CONNECTED);
        TB_CHECK_EQ(v.naddrs, 0);
    }
    pex_free(s);
    free(s);
}

int main(void)
{
    rng_state = 20261121;
    TB_RUN(test_flood_all_topologies);
    TB_RUN(test_hop_limit_stops);
    TB_RUN(test_tiny_cache_stays_bounded);
    TB_RUN(test_one_seed_learns_mesh);
    TB_RUN(test_killed_node_redialled);
    TB_RUN(test_client_mode_node_joins);
    return TB_DONE();
}
