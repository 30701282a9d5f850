/* Gossip over more than one hop, and what the hop in the middle refuses to pass on (issue 6: "a
 * receiver verifies before it uses or forwards"). Time nodes in a line, in one process and one
 * loop, on loopback 127.0.0.43-49 with port 0 everywhere:
 *
 *   ln-a (client) ──► ln-b (server) ◄── ln-c (client)
 *                        ▲
 *               ln-mallory (client, plain mesh node with a valid certificate)
 *
 * Client-mode nodes advertise no address and accept nothing, so peer exchange cannot join A and
 * C: the test checks they stay apart. Then:
 *  1. A's signed NTP measurements reach C through B and C accepts them, with A's certificate
 *     learned from A's ALIVE and verified against the CA (C never had a handshake with A);
 *  2. mallory, next to A's side of B, broadcasts three batches B must refuse (mesh v2: every
 *     broadcast is signed by its origin, mallory here, and a batch must be its origin's own):
 *     one claiming to be ln-a's, a replay of a genuine batch of A, and one of its own whose
 *     measurement is signed with another key. B counts each; C sees nothing of them: its drop
 *     counters stay at zero and every broadcast C delivered is accounted for by A's batches
 *     plus one harmless marker mallory sends after the forgeries (which proves the path
 *     mallory → B → C is open), with no duplicates. A node that forwarded and let C deduplicate
 *     or drop would fail here.
 * Needs tbcert (TB_TBCERT); TB_LINE_VERBOSE=1 prints the counters of the forgery phase. */
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "measure/measurement.h"
#include "node/timekeeper.h"
#include "store/store.h"
#include "tests/support/tk_batch.h"
#include "tests/tb_fixture.h"
#include "tests/support/loop.h"
#include "tests/tb_test.h"
/* Only the NTP responder of the harness is used here, not its resolver. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/tk_harness.h"
#pragma GCC diagnostic pop
#include "wire/wire.h"

enum { A, B, C, MALLORY, NNODES };
static const char *const names[NNODES] = {"ln-a", "ln-b", "ln-c", "ln-mallory"};
static const int ips[NNODES] = {47, 46, 48, 49}; /* 127.0.0.x; the NTP responder on .43 */
#define MARKER_APP 0x6c6e0001u

static char dir[64];
static struct ev_loop *loop;
static tb_fake_ntp ntp;
static tb_log logs[NNODES];
static tb_node_config cfg[NNODES];
static tb_timekeeper *tk[C + 1];
static tb_node *mallory;
static int stopped;

/* The newest genuine measurement of A that mallory saw (B forwards valid ones to it). */
static uint8_t captured[TB_MEASURE_BODY_MAX + 512];
static size_t captured_len;

static void on_stopped(void *arg)
{
    (void)arg;
    stopped++;
}

static void mallory_heard(void *arg, const char *origin, uint64_t id, uint32_t app_type,
                          const uint8_t *payload, size_t len)
{
    (void)arg;
    (void)id;
    if (app_type == TB_TK_APP_MEASUREMENTS && strcmp(origin, names[A]) == 0 &&
        len <= sizeof(captured)) {
        memcpy(captured, payload, len);
        captured_len = len;
    }
}

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name lnmesh", dir) != 0)
        return -1;
    for (int i = 0; i < NNODES; i++) {
        if (tb_fx_tbcert("issue --ca %s/ca --name %s --region r%d --ip 127.0.0.%d --out %s/n%d",
                         dir, names[i], i, ips[i], dir, i) != 0)
            return -1;
    }
    return 0;
}

/* B listens (port 0); the others are clients whose only seed is B. No node measures its mesh
 * peers within the test (peer_interval 3600 s), so A's NTP measurements are the only gossip. */
static int node_text(int i, int with_source, char *text, size_t cap)
{
    char mode[160] = "mode = \"server\";\n", src[512] = "";
    if (i != B)
        snprintf(mode, sizeof(mode), "mode = \"client\";\npeers = ( \"ln-b@127.0.0.%d:%u\" );\n",
                 ips[B], tb_node_port(tb_timekeeper_node(tk[B])));
    if (with_source)
        snprintf(src, sizeof(src),
                 "sources = ( { kind = \"ntp\"; address = \"%s\"; minpoll = 0; maxpoll = 0; } );\n",
                 ntp.addr);
    int n =
        snprintf(text, cap,
                 "%slisten = \"127.0.0.%d:0\";\n"
                 "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
                 "state_dir = \"%s/s%d\";\nping_interval_ms = 100;\n"
                 "crosscheck = { min_interval_ms = 200; peer_interval = 3600; };\n%s",
                 mode, ips[i], dir, i, dir, i, dir, i, dir, i, src);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int configure(int i)
{
    char text[4096], err[TB_NODE_ERR_MAX];
    tb_node_config_defaults(&cfg[i]);
    if (node_text(i, 0, text, sizeof(text)) != 0 ||
        tb_node_config_load_string(&cfg[i], text, names[i], err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "config %s: %s\n", names[i], err);
        return -1;
    }
    mkdir(cfg[i].state_dir, 0700);
    tb_log_init(&logs[i], names[i], TB_LOG_WARN);
    return 0;
}

static int start(int i)
{
    if (configure(i) != 0)
        return -1;
    if (i == MALLORY) {
        tb_node_callbacks cb = {.on_broadcast = mallory_heard, .on_stopped = on_stopped};
        return tb_node_new(&mallory, loop, &logs[i], tb_clock_system(), &cfg[i], &cb);
    }
    tb_tk_options opt = {.on_stopped = on_stopped};
    return tb_timekeeper_new(&tk[i], loop, &logs[i], tb_clock_system(), &cfg[i], &opt);
}

static tb_node *node(int i)
{
    return i == MALLORY ? mallory : tb_timekeeper_node(tk[i]);
}

static tb_tk_stats tstats(int i)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[i], &st);
    return st;
}

static tb_node_stats nstats(int i)
{
    tb_node_stats st;
    tb_node_get_stats(node(i), &st);
    return st;
}

static uint64_t drops(int i)
{
    tb_tk_stats st = tstats(i);
    uint64_t n = 0;
    for (int d = 0; d < TB_MEASURE_DROP_COUNT; d++)
        n += st.dropped[d];
    return n;
}

/* What node i's peer table shows for `name`, or NULL when it does not know it. */
static const tb_node_peer_status *peer(int i, const char *name)
{
    static tb_node_peer_status ps[16];
    size_t n = tb_node_peers(node(i), ps, 16);
    for (size_t k = 0; k < n && k < 16; k++) {
        if (strcmp(ps[k].name, name) == 0)
            return &ps[k];
    }
    return NULL;
}

static const char *peer_state(int i, const char *name)
{
    const tb_node_peer_status *p = peer(i, name);
    return p ? p->state : NULL;
}

static int c_connected(void *arg)
{
    return tb_node_connected_count(node(C)) == 1 && tb_node_connected_count(node(B)) == 1;
}

static int c_knows_a(void *arg)
{
    const uint8_t *der;
    size_t len;
    return tb_node_connected_count(node(A)) == 1 &&
           tb_node_peer_cert(node(C), names[A], &der, &len) == TB_OK;
}

static int c_accepted_three(void *arg)
{
    return tstats(C).accepted >= 3 && tstats(A).sent >= 3;
}

static int mallory_ready(void *arg)
{
    return tb_node_connected_count(mallory) == 1 && captured_len > 0;
}

/* A measurement claiming `origin`, sealed with sk, in a batch claiming batch_origin, broadcast
 * (and signed) by mallory. */
static int forge(const char *batch_origin, const char *origin, uint64_t seq, const uint8_t *sk)
{
    tb_measurement m = {.kind = TB_MEASURE_NTP, .seq = seq, .offset_ns = 5000000000LL};
    m.real_ns = tb_clock_real(tb_clock_system());
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    snprintf(m.source_name, sizeof(m.source_name), "%s", ntp.addr);
    return tb_test_send_batch(mallory, batch_origin, &m, sk);
}

static int mallory_key(uint8_t *sk)
{
    char path[128], pem[16384];
    uint8_t pk[TB_MEASURE_PK_LEN];
    snprintf(path, sizeof(path), "%s/n%d/node.key", dir, MALLORY);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(pem, 1, sizeof(pem), f) : 0;
    if (f)
        fclose(f);
    return n ? tb_measure_key_from_pem(pem, n, sk, pk) : -1;
}

static int b_refused_three(void *arg)
{
    tb_tk_stats st = tstats(B);
    return st.dropped[TB_MEASURE_DROP_BAD_SIGNATURE] >= 1 &&
           st.dropped[TB_MEASURE_DROP_MALFORMED] >= 2;
}

/* C's deliveries before the forgeries, and A's batches then: the marker is the one more. */
static uint64_t c_delivered0, a_batches0;
static int c_got_marker(void *arg)
{
    return nstats(C).bcast_delivered >= c_delivered0 + (tstats(A).batches_sent - a_batches0) + 1;
}

static int expected_stops;
static int all_stopped(void *arg)
{
    return stopped >= expected_stops;
}

/* A and C have never had a connection, and neither can dial the other. */
static void check_apart(void)
{
    TB_CHECK_EQ(tb_node_connected_count(node(A)), 1);
    TB_CHECK_EQ(tb_node_connected_count(node(C)), 1);
    TB_CHECK_STR(peer_state(A, names[B]), "connected");
    TB_CHECK_STR(peer_state(C, names[B]), "connected");
    /* C knows A only from A's ALIVE, without an address (a client advertises none): nothing
     * to dial. The same holds the other way round. */
    const tb_node_peer_status *ca = peer(C, names[A]), *ac = peer(A, names[C]);
    TB_CHECK(!ca || (strcmp(ca->state, "idle") == 0 && strcmp(ca->addr, "-") == 0));
    TB_CHECK(!ac || (strcmp(ac->state, "idle") == 0 && strcmp(ac->addr, "-") == 0));
}

/* 1: A's measurements cross B; A starts measuring only once C holds A's certificate (from
 * its ALIVE), so not even the first one may be dropped at C. */
static void phase_gossip(void)
{
    TB_REQUIRE(start(C) == 0);
    TB_REQUIRE(tb_test_run_until(loop, c_connected, NULL, 10));
    TB_REQUIRE(start(A) == 0);
    TB_REQUIRE(tb_test_run_until(loop, c_knows_a, NULL, 10));
    char text[4096], err[TB_NODE_ERR_MAX];
    tb_node_config with;
    tb_node_config_defaults(&with);
    TB_REQUIRE(node_text(A, 1, text, sizeof(text)) == 0);
    TB_REQUIRE(tb_node_config_load_string(&with, text, names[A], err, sizeof(err)) == TB_OK);
    int rc = tb_timekeeper_reload(tk[A], &with, err, sizeof(err));
    tb_node_config_free(&with);
    TB_REQUIRE(rc == TB_OK);
    TB_CHECK(tb_test_run_until(loop, c_accepted_three, NULL, 15));
    check_apart();
    TB_CHECK(tstats(B).accepted >= tstats(C).accepted);
    for (int i = A; i <= C; i++)
        TB_CHECK_EQ(drops(i), 0);
    /* C has one neighbour: nothing could reach it twice. */
    TB_CHECK_EQ(nstats(C).bcast_duplicates, 0);
    TB_CHECK(nstats(B).bcast_forwarded >= 1);
}

/* 2: what mallory injects stops at B. */
static void phase_forgeries(void)
{
    TB_REQUIRE(start(MALLORY) == 0);
    TB_REQUIRE(tb_test_run_until(loop, mallory_ready, NULL, 10));
    uint8_t own[TB_MEASURE_SK_LEN], rnd[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN], seed[32];
    TB_REQUIRE(mallory_key(own) == TB_OK);
    memset(seed, 0x5a, sizeof(seed));
    TB_REQUIRE(tb_measure_key_from_seed(seed, rnd, pk) == TB_OK);

    tb_tk_stats b0 = tstats(B), c0 = tstats(C);
    tb_node_stats nb0 = nstats(B), nc0 = nstats(C);
    TB_CHECK_EQ(drops(C), 0);
    c_delivered0 = nc0.bcast_delivered;
    a_batches0 = tstats(A).batches_sent;

    TB_REQUIRE(forge(names[A], names[A], tstats(A).last_seq + 1000, own) == TB_OK);
    TB_REQUIRE(tb_node_broadcast(mallory, TB_TK_APP_MEASUREMENTS, captured, captured_len, NULL) ==
               TB_OK);
    TB_REQUIRE(forge(names[MALLORY], names[MALLORY], 1, rnd) == TB_OK);
    TB_CHECK(tb_test_run_until(loop, b_refused_three, NULL, 5));
    TB_REQUIRE(tb_node_broadcast(mallory, MARKER_APP, (const uint8_t *)"mark", 4, NULL) == TB_OK);
    TB_CHECK(tb_test_run_until(loop, c_got_marker, NULL, 5));
    (void)tb_test_run_until(loop, tb_test_never, NULL,
                            1.0); /* a forwarded forgery would have had time to arrive */

    tb_tk_stats b1 = tstats(B), c1 = tstats(C);
    tb_node_stats nb1 = nstats(B), nc1 = nstats(C);
    TB_CHECK_EQ(
        b1.dropped[TB_MEASURE_DROP_BAD_SIGNATURE] - b0.dropped[TB_MEASURE_DROP_BAD_SIGNATURE], 1);
    TB_CHECK_EQ(b1.dropped[TB_MEASURE_DROP_MALFORMED] - b0.dropped[TB_MEASURE_DROP_MALFORMED], 2);
    TB_CHECK_EQ(nb1.bcast_refused - nb0.bcast_refused, 3);
    for (int d = 0; d < TB_MEASURE_DROP_COUNT; d++)
        TB_CHECK_EQ(c1.dropped[d], 0);
    /* C delivered A's new batches and the marker, nothing else (the newest batch of A may still
     * be on its way), and no second copies. */
    uint64_t a_batches = tstats(A).batches_sent - a_batches0;
    TB_CHECK(nc1.bcast_delivered - nc0.bcast_delivered <= a_batches + 1);
    TB_CHECK(nc1.bcast_delivered - nc0.bcast_delivered >= a_batches);
    TB_CHECK(c1.accepted >= c0.accepted);
    TB_CHECK_EQ(nc1.bcast_duplicates, 0);
    TB_CHECK_EQ(nc1.msgs_bad, 0);
    check_apart();
    TB_CHECK_EQ(tb_node_connected_count(mallory), 1);
    if (getenv("TB_LINE_VERBOSE"))
        fprintf(stderr,
                "B: accepted %llu dropped bad_sig/unknown/malformed %llu/%llu/%llu; C: accepted "
                "%llu->%llu delivered %llu->%llu duplicates %llu; B: bcast delivered +%llu "
                "forwarded +%llu\n",
                (unsigned long long)b1.accepted,
                (unsigned long long)b1.dropped[TB_MEASURE_DROP_BAD_SIGNATURE],
                (unsigned long long)b1.dropped[TB_MEASURE_DROP_UNKNOWN_ORIGIN],
                (unsigned long long)b1.dropped[TB_MEASURE_DROP_MALFORMED],
                (unsigned long long)c0.accepted, (unsigned long long)c1.accepted,
                (unsigned long long)nc0.bcast_delivered, (unsigned long long)nc1.bcast_delivered,
                (unsigned long long)nc1.bcast_duplicates,
                (unsigned long long)(nb1.bcast_delivered - nb0.bcast_delivered),
                (unsigned long long)(nb1.bcast_forwarded - nb0.bcast_forwarded));
}

typedef struct origin_seqs {
    uint64_t a, others;
} origin_seqs;

static int seq_cb(void *arg, const char *origin, uint64_t seq)
{
    origin_seqs *o = arg;
    if (strcmp(origin, names[A]) == 0)
        o->a = seq;
    else
        o->others++;
    return 0;
}

static void test_line(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    TB_REQUIRE(tb_fake_ntp_start(loop, &ntp, "127.0.0.43", TB_FAKE_NTP_HONEST, 0) == 0);
    TB_REQUIRE(start(B) == 0);
    phase_gossip();
    if (!tb_test_failures_in_case)
        phase_forgeries();
    uint64_t a_last = tk[A] ? tstats(A).last_seq : 0;

    int running = 0;
    stopped = 0;
    for (int i = A; i <= C; i++) {
        if (tk[i]) {
            tb_timekeeper_stop(tk[i]);
            running++;
        }
    }
    if (mallory) {
        tb_node_stop(mallory);
        running++;
    }
    expected_stops = running;
    TB_CHECK(tb_test_run_until(loop, all_stopped, NULL, 5));
    for (int i = A; i <= C; i++)
        tb_timekeeper_free(tk[i]);
    tb_node_free(mallory);
    tb_fake_ntp_stop(loop, &ntp);

    /* C's history holds A's measurements (verified through B) and nobody else's: none of the
     * forgeries, no ghost. */
    tb_store *s;
    char err[256];
    tb_store_config sc = {.dir = cfg[C].state_dir};
    if (tk[C] && tb_store_open(&sc, &s, err, sizeof(err)) == TB_OK) {
        origin_seqs o = {0, 0};
        TB_CHECK(tb_store_max_seqs(s, seq_cb, &o) == TB_OK);
        TB_CHECK(o.a > 0 && o.a <= a_last);
        TB_CHECK_EQ(o.others, 0);
        tb_store_close(s);
    }
    for (int i = 0; i < NNODES; i++)
        tb_node_config_free(&cfg[i]);
    ev_loop_destroy(loop);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-line.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    TB_RUN(test_line);
    return tb_fx_finish(dir, TB_DONE());
}
