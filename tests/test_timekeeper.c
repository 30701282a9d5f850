/* Several time nodes (node/timekeeper.h) in one process and one loop, loopback 127.0.0.40-49:
 * three nodes in three regions measure in-process NTP responders (three honest, one shifted by
 * 2 s for everyone, one name that resolves to an honest responder for one node and to a shifted
 * one for the others) and a Roughtime server run by the first node. Their measurements are
 * signed, gossiped, verified, stored and cross-checked: every node marks the shifted source
 * falseticker, the split name inconsistent across regions, and no honest source. A mesh node
 * that forges a measurement (wrong key, unknown origin) is refused and counted by every node
 * and its forgery is not forwarded; one that lies with its own key about 8 invented sources and
 * one real one moves neither the consensus nor a verdict and is named; a restarted node
 * continues its sequence numbers; once a node's certificate is revoked, every node drops it and
 * has no key for its signatures; a node key
 * that is not Ed25519 is refused. Needs tbcert (TB_TBCERT). */
#include <ev.h>
#include <glob.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "measure/measurement.h"
#include "node/timekeeper.h"
#include "ntp/packet.h"
#include "roughtime/keyfile.h"
#include "resolve/resolver.h"
#include "store/store.h"
#include "tests/tb_fixture.h"
#include "tests/support/loop.h"
#include "tests/tb_test.h"
#include "tests/support/tk_batch.h"
#include "tests/tk_harness.h"
#include "wire/wire.h"

#define N 3
#define MESH_PORT 4571
#define RT_PORT 4572
#define SHIFT_NS (2 * 1000000000LL)

static char dir[64];
static struct ev_loop *loop;

enum { H1, H2, H3, LIAR, SPLIT_SHIFTED, NRESP };
static tb_fake_ntp resp[NRESP]; /* on 127.0.0.44, 46-49 */
static geo_resolver geo[N];

/* --- nodes --- */

static tb_log logs[N + 2];
static tb_node_config cfg[N + 2];
static tb_timekeeper *tk[N];
static tb_node *rogue; /* index N: a plain mesh node with a valid certificate */
static int stopped;
static char rt_pub_b64[45];

/* The clock the Roughtime server stamps MIDP with: the system's, shifted at will. */
static int64_t rt_shift_ns;
static uint64_t rt_mono(void *arg)
{
    (void)arg;
    return tb_clock_mono(tb_clock_system());
}
static int64_t rt_real(void *arg)
{
    (void)arg;
    return tb_clock_real(tb_clock_system()) + rt_shift_ns;
}
static const tb_clock rt_clock = {rt_mono, rt_real, NULL};

static void on_stopped(void *arg)
{
    (void)arg;
    stopped++;
}

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name tkmesh", dir) != 0)
        return -1;
    for (int i = 0; i <= N + 1; i++) { /* N: rogue; N + 1: a P-256 node */
        if (tb_fx_tbcert(
                "issue --ca %s/ca --name tk-%d --region r%d --ip 127.0.0.%d --out %s/n%d%s", dir, i,
                i, 40 + i, dir, i, i == N + 1 ? " --key-type p256" : "") != 0)
            return -1;
    }
    char err[512], key[128];
    uint8_t pk[32];
    snprintf(key, sizeof(key), "%s/rt.key", dir);
    if (tb_rt_key_generate(key, pk, err, sizeof(err)) != 0)
        return -1;
    tb_rt_key_b64(pk, rt_pub_b64);
    return 0;
}

static int configure(int i, const char *extra)
{
    tb_node_config *c = &cfg[i];
    tb_node_config_defaults(c);
    char text[4096], rt[256] = "", sources[2048] = "";
    if (i == 0)
        snprintf(rt, sizeof(rt),
                 "roughtime = { listen = \"127.0.0.45:%d\"; key = \"%s/rt.key\"; };\n", RT_PORT,
                 dir);
    if (i < N)
        snprintf(sources, sizeof(sources),
                 "sources = (\n"
                 "  { kind = \"ntp\"; address = \"%s\"; minpoll = 0; maxpoll = 0; },\n"
                 "  { kind = \"ntp\"; address = \"%s\"; minpoll = 0; maxpoll = 0; },\n"
                 "  { kind = \"ntp\"; address = \"%s\"; minpoll = 0; maxpoll = 0; },\n"
                 "  { kind = \"ntp\"; address = \"%s\"; minpoll = 0; maxpoll = 0; },\n"
                 "  { kind = \"ntp\"; address = \"split.test:%s\"; minpoll = 0; maxpoll = 0; },\n"
                 "  { kind = \"roughtime\"; address = \"127.0.0.45:%d\"; public_key = \"%s\";\n"
                 "    minpoll = 0; maxpoll = 0; }\n"
                 ");\n"
                 "crosscheck = { min_interval_ms = 200; peer_interval = 1; };\n",
                 resp[H1].addr, resp[H2].addr, resp[H3].addr, resp[LIAR].addr,
                 strrchr(resp[SPLIT_SHIFTED].addr, ':') + 1, RT_PORT, rt_pub_b64);
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\";\n"
             "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
             "state_dir = \"%s/s%d\";\nping_interval_ms = 100;\n%s%s%s%s",
             40 + i, MESH_PORT, dir, i, dir, i, dir, i, dir, i,
             i ? "peers = ( \"127.0.0.40:4571\" );\n" : "", rt, sources, extra);
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_load_string(c, text, "tk-test", err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "config %d: %s\n", i, err);
        return -1;
    }
    mkdir(c->state_dir, 0700);
    char who[16];
    snprintf(who, sizeof(who), "tk-%d", i);
    tb_log_init(&logs[i], who, TB_LOG_WARN);
    return 0;
}

static int start_node(int i)
{
    tb_tk_options opt = {.resolver = &geo[i].pub, .rt_clock = &rt_clock, .on_stopped = on_stopped};
    return tb_timekeeper_new(&tk[i], loop, &logs[i], tb_clock_system(), &cfg[i], &opt);
}

static const tb_xc_verdict *verdict(int i, const char *source)
{
    const tb_xc_result *r = tb_timekeeper_result(tk[i]);
    for (size_t k = 0; k < r->n_verdicts; k++) {
        if (strcmp(r->verdicts[k].source, source) == 0)
            return &r->verdicts[k];
    }
    return NULL;
}

static int is(int i, const char *source, tb_xc_verdict_kind v)
{
    const tb_xc_verdict *x = verdict(i, source);
    return x && x->verdict == v;
}

static char rt_name[64], split_name[64];

static int verdicts_formed(void *arg)
{
    for (int i = 0; i < N; i++) {
        if (!is(i, resp[LIAR].addr, TB_XC_FALSETICKER) || !is(i, split_name, TB_XC_INCONSISTENT) ||
            !is(i, resp[H1].addr, TB_XC_OK) || !is(i, resp[H2].addr, TB_XC_OK) ||
            !is(i, resp[H3].addr, TB_XC_OK) || !is(i, rt_name, TB_XC_OK))
            return 0;
    }
    return 1;
}

static int rogue_connected(void *arg)
{
    return tb_node_connected_count(rogue) == N;
}

static uint64_t dropped(int i, tb_measure_drop why)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[i], &st);
    return st.dropped[why];
}

static int forgeries_counted(void *arg)
{
    for (int i = 0; i < N; i++) {
        if (dropped(i, TB_MEASURE_DROP_BAD_SIGNATURE) < 1 ||
            dropped(i, TB_MEASURE_DROP_MALFORMED) < 1)
            return 0;
    }
    return 1;
}

/* A measurement of the rogue's batch claiming `origin`, signed with a key that is not origin's,
 * in a batch claiming batch_origin. */
static void forge(const char *batch_origin, const char *origin)
{
    uint8_t seed[32], sk[64], pk[32];
    memset(seed, 7, sizeof(seed));
    TB_REQUIRE(tb_measure_key_from_seed(seed, sk, pk) == 0);
    tb_measurement m = {.kind = TB_MEASURE_NTP, .seq = 999999, .offset_ns = 5, .bound_ns = 1};
    m.real_ns = tb_clock_real(tb_clock_system());
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    snprintf(m.source_name, sizeof(m.source_name), "%s", resp[H1].addr);
    TB_REQUIRE(tb_test_send_batch(rogue, batch_origin, &m, sk) == 0);
}

/* Packets an NTP measurement must carry, made up to match m's numbers (NTP is unauthenticated:
 * a member can invent a consistent exchange, the receivers' check only holds it to it). */
static void make_up_packets(tb_measurement *m, uint8_t req[TB_NTP_HEADER_LEN],
                            uint8_t rep[TB_NTP_HEADER_LEN])
{
    tb_ntp_packet q = {.version = 4, .mode = TB_NTP_MODE_CLIENT, .transmit_ts = m->seq * 7919};
    int64_t t3 = m->real_ns + m->offset_ns - m->delay_ns / 2;
    tb_ntp_packet r = {.version = 4,
                       .mode = TB_NTP_MODE_SERVER,
                       .stratum = 1,
                       .precision = -20,
                       .origin_ts = q.transmit_ts,
                       .receive_ts = tb_ntp_ts_from_unix_ns(t3),
                       .transmit_ts = tb_ntp_ts_from_unix_ns(t3)};
    tb_ntp_packet_write(&q, req);
    tb_ntp_packet_write(&r, rep);
    /* the body says what the packets say, to the nanosecond the timestamps can carry */
    int64_t t3_back = tb_ntp_ts_to_unix_ns(r.transmit_ts, m->real_ns);
    m->offset_ns = t3_back - m->real_ns + m->delay_ns / 2;
    m->stratum = 1;
    m->ev_request = (tb_measure_bytes){req, TB_NTP_HEADER_LEN};
    m->ev_response = (tb_measure_bytes){rep, TB_NTP_HEADER_LEN};
}

/* Node `who`'s real signing key, read from its key file. */
static void node_key(int who, uint8_t sk[64])
{
    char path[TB_NODE_PATH_MAX + 32], pem[8192];
    snprintf(path, sizeof(path), "%s/n%d/node.key", dir, who);
    FILE *f = fopen(path, "r");
    TB_REQUIRE(f != NULL);
    size_t n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    uint8_t pk[32];
    TB_REQUIRE(tb_measure_key_from_pem(pem, n, sk, pk) == 0);
}

/* The rogue broadcasts m signed with sk, in a batch of its own. */
static void rogue_send(const uint8_t sk[64], tb_measurement *m)
{
    uint8_t req[48], rep[48];
    m->real_ns = tb_clock_real(tb_clock_system());
    if (m->kind == TB_MEASURE_NTP)
        make_up_packets(m, req, rep);
    TB_REQUIRE(tb_test_send_batch(rogue, m->origin, m, sk) == 0);
}

/* The rogue signs with its own (valid) key: 8 sources nobody else measures and H1, all 5 s
 * ahead, each with made-up packets that match. */
static void lie_as_member(void)
{
    uint8_t sk[64];
    node_key(N, sk);
    for (uint64_t seq = 1; seq <= 9; seq++) {
        tb_measurement m = {.kind = TB_MEASURE_NTP,
                            .seq = seq,
                            .offset_ns = 5000000000LL,
                            .delay_ns = 1000000,
                            .bound_ns = 1000000};
        snprintf(m.origin, sizeof(m.origin), "tk-%d", N);
        if (seq <= 8)
            snprintf(m.source_name, sizeof(m.source_name), "invented-%llu.test:123",
                     (unsigned long long)seq);
        else
            snprintf(m.source_name, sizeof(m.source_name), "%s", resp[H1].addr);
        rogue_send(sk, &m);
    }
}

/* No node but tk-2 itself has a key for tk-2's signatures (its measurements are dropped as of
 * an unknown origin). */
static int revoked_keyless(void *arg)
{
    (void)arg;
    tb_measure_origin_key k;
    for (int i = 0; i < N - 1; i++) {
        if (tb_node_origin_key(tb_timekeeper_node(tk[i]), "tk-2", &k) == TB_OK)
            return 0;
    }
    return 1;
}

static int revoked_gone(void *arg)
{
    return tb_node_connected_count(tb_timekeeper_node(tk[N - 1])) == 0;
}

/* tk-2's certificate is revoked (the list written for tk-0 only, which passes it on): every
 * node knows tk-2's key before, drops tk-2 and has no key for its signatures after. Batches
 * travel only in their origin's own signed broadcast, so no member can pass tk-2's on. */
static void test_revoked_origin(void)
{
    tb_measure_origin_key k;
    for (int i = 0; i < N - 1; i++)
        TB_CHECK_EQ(tb_node_origin_key(tb_timekeeper_node(tk[i]), "tk-2", &k), 0);
    TB_REQUIRE(tb_fx_tbcert("revoke --ca %s/ca --cert %s/n%d/node.crt", dir, dir, N - 1) == 0);
    TB_CHECK(tb_test_run_until(loop, revoked_gone, NULL, 5));
    TB_CHECK(tb_test_run_until(loop, revoked_keyless, NULL, 5));
}

/* Every node has judged the rogue's word on H1 and named it. */
static int lie_judged(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        const tb_xc_result *r = tb_timekeeper_result(tk[i]);
        int named = 0;
        for (size_t k = 0; k < r->n_findings; k++)
            named |= r->findings[k].kind == TB_XC_MEMBER_UNCORROBORATED &&
                     strcmp(r->findings[k].origin, "tk-3") == 0; /* tk-N */
        if (!named || !verdict(i, "invented-8.test:123"))
            return 0;
    }
    return 1;
}

static uint64_t seq_before;

static int restarted_node_sent(void *arg)
{
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[N - 1], &st);
    return st.sent >= 2;
}

static int peers_accept_restarted(void *arg)
{
    /* every other node's newest accepted verdict inputs include the new sequence numbers */
    for (int i = 0; i < N - 1; i++) {
        const tb_xc_result *r = tb_timekeeper_result(tk[i]);
        int seen = 0;
        for (size_t k = 0; k < r->n_verdicts; k++)
            for (size_t j = 0; j < r->verdicts[k].n_refs; j++)
                seen |= strcmp(r->verdicts[k].refs[j].origin, "tk-2") == 0 &&
                        r->verdicts[k].refs[j].seq > seq_before;
        if (!seen)
            return 0;
    }
    return 1;
}

static int rt_falseticker(void *arg)
{
    for (int i = 0; i < N; i++) {
        if (!is(i, rt_name, TB_XC_FALSETICKER))
            return 0;
    }
    return 1;
}

static int malfeasance_reported(void *arg)
{
    for (int i = 0; i < N; i++) {
        tb_tk_stats st;
        tb_timekeeper_get_stats(tk[i], &st);
        if (st.malfeasance_reports < 1)
            return 0;
    }
    return 1;
}

/* The report file in state_dir/malfeasance: the RFC's JSON with the two responses of one node,
 * the second's nonce chained to the first response (it carries rand). */
static int report_file_ok(int i)
{
    char pattern[TB_NODE_PATH_MAX + 32], text[65536];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/malfeasance/*.json", cfg[i].state_dir);
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    FILE *f = g.gl_pathc == 1 ? fopen(g.gl_pathv[0], "r") : NULL;
    globfree(&g);
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    const char *second = strstr(text, "},{\"rand\":\"");
    return strncmp(text, "{\"responses\":[{\"", 15) == 0 && second &&
           strstr(second, "\"publicKey\":\"") && strstr(second, "\"request\":\"") &&
           strstr(second, "\"response\":\"") && strstr(text, "\"}]}") != NULL;
}

/* The Roughtime server runs 20 s ahead, then goes back to the right time: each node's chained
 * answers contradict causality, and the chain proves the order. */
static void test_malfeasance(void)
{
    rt_shift_ns = 20 * 1000000000LL;
    TB_CHECK(tb_test_run_until(loop, rt_falseticker, NULL, 20));
    rt_shift_ns = 0;
    TB_CHECK(tb_test_run_until(loop, malfeasance_reported, NULL, 20));
    for (int i = 0; i < N; i++)
        TB_CHECK(report_file_ok(i));
}

static int all_stopped(void *arg)
{
    return stopped >= N + 1;
}

typedef struct origin_seq {
    char origin[64];
    uint64_t seq;
} origin_seq;

static int max_seq_cb(void *arg, const char *origin, uint64_t seq)
{
    origin_seq *o = arg;
    if (strcmp(origin, o->origin) == 0)
        o->seq = seq;
    return 0;
}

static void test_time_nodes(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    const char *ips[NRESP] = {"127.0.0.44", "127.0.0.46", "127.0.0.47", "127.0.0.48", "127.0.0.49"};
    for (int i = 0; i < NRESP; i++)
        TB_REQUIRE(tb_fake_ntp_start(loop, &resp[i], ips[i], TB_FAKE_NTP_HONEST,
                                     i == LIAR || i == SPLIT_SHIFTED ? SHIFT_NS : 0) == 0);
    for (int i = 0; i < N; i++) {
        /* split.test: H1 for region r0, the shifted responder for the others. */
        geo_init(&geo[i], loop, i == 0 ? &resp[H1] : &resp[SPLIT_SHIFTED]);
    }
    /* The name carries SPLIT_SHIFTED's port; geo_resolve answers the target's own address
     * (port included), so the responders need not share a port. */
    snprintf(rt_name, sizeof(rt_name), "127.0.0.45:%d", RT_PORT);
    snprintf(split_name, sizeof(split_name), "split.test:%s",
             strrchr(resp[SPLIT_SHIFTED].addr, ':') + 1);
    for (int i = 0; i < N; i++) {
        char crl[TB_NODE_PATH_MAX] = "";
        if (i == 0)
            snprintf(crl, sizeof(crl), "crl = \"%s/ca/revoked.crl\";\n", dir);
        TB_REQUIRE(configure(i, crl) == 0);
        TB_REQUIRE(start_node(i) == TB_OK);
    }
    TB_CHECK_EQ(tb_timekeeper_rt_port(tk[0]), RT_PORT);

    /* A P-256 node key cannot sign measurements: refused at start. */
    TB_REQUIRE(configure(N + 1, "") == 0);
    tb_timekeeper *p256 = NULL;
    TB_CHECK(tb_timekeeper_new(&p256, loop, &logs[N + 1], tb_clock_system(), &cfg[N + 1], NULL) ==
             TB_ERR_UNSUPPORTED);

    /* Within 30 s: the liar is a falseticker everywhere, the split name inconsistent across
     * regions, every honest source (and the Roughtime server) ok. */
    int formed = tb_test_run_until(loop, verdicts_formed, NULL, 30);
    TB_CHECK(formed);
    for (int i = 0; i < N && !formed; i++) {
        const tb_xc_result *r = tb_timekeeper_result(tk[i]);
        for (size_t k = 0; k < r->n_verdicts; k++)
            fprintf(stderr, "node %d: %s: %s (%s)\n", i, r->verdicts[k].source,
                    tb_xc_verdict_name((int)r->verdicts[k].verdict), r->verdicts[k].reason);
    }
    for (int i = 0; i < N; i++) {
        tb_tk_stats st;
        tb_timekeeper_get_stats(tk[i], &st);
        TB_CHECK(st.sent > 0);
        TB_CHECK(st.accepted > 0);
        TB_CHECK(tb_timekeeper_result(tk[i])->estimate.valid);
        /* The verdict on the split source cites measurements of different nodes. */
        const tb_xc_verdict *v = verdict(i, split_name);
        TB_CHECK(v && v->n_refs >= 2 && strcmp(v->refs[0].origin, v->refs[1].origin) != 0);
        for (int d = 0; d < TB_MEASURE_DROP_COUNT; d++)
            TB_CHECK_EQ(st.dropped[d], 0);
    }

    /* A mesh node forges measurements: a batch that claims to be tk-0's (its broadcast is the
     * rogue's own: refused whole as malformed), and one in its own batch that claims tk-0 and is
     * signed with another key (a bad signature). Neither is passed on: each node counts one. */
    TB_REQUIRE(configure(N, "") == 0);
    tb_node_callbacks cb = {.on_stopped = on_stopped};
    TB_REQUIRE(tb_node_new(&rogue, loop, &logs[N], tb_clock_system(), &cfg[N], &cb) == TB_OK);
    TB_CHECK(tb_test_run_until(loop, rogue_connected, NULL, 10));
    tb_node_stats before[N];
    for (int i = 0; i < N; i++)
        tb_node_get_stats(tb_timekeeper_node(tk[i]), &before[i]);
    forge("tk-0", "tk-0");
    forge("tk-3", "tk-3");
    TB_CHECK(tb_test_run_until(loop, forgeries_counted, NULL, 5));
    for (int i = 0; i < N; i++) {
        TB_CHECK_EQ(dropped(i, TB_MEASURE_DROP_BAD_SIGNATURE), 1);
        TB_CHECK_EQ(dropped(i, TB_MEASURE_DROP_MALFORMED), 1);
    }

    /* The rogue, a member with a valid certificate, lies with its own key about 8 invented
     * sources and one real one: nothing moves (the consensus stays within 100 ms of before,
     * every real verdict stays) and every node names it. */
    int64_t consensus_before[N];
    for (int i = 0; i < N; i++)
        consensus_before[i] = tb_timekeeper_result(tk[i])->estimate.offset_ns;
    lie_as_member();
    TB_CHECK(tb_test_run_until(loop, lie_judged, NULL, 10));
    TB_CHECK(verdicts_formed(NULL));
    for (int i = 0; i < N; i++) {
        const tb_xc_estimate *e = &tb_timekeeper_result(tk[i])->estimate;
        TB_CHECK(e->valid);
        TB_CHECK(llabs(e->offset_ns - consensus_before[i]) < 100000000LL);
        TB_CHECK(e->n_voting <= 6); /* the invented sources do not vote */
        tb_tk_stats st;
        tb_timekeeper_get_stats(tk[i], &st);
        TB_CHECK(st.member_findings[TB_XC_MEMBER_UNCORROBORATED] >= 1);
    }

    /* Restart (clean stop) of tk-2: its sequence continues, the others accept it. */
    tb_tk_stats st;
    tb_timekeeper_get_stats(tk[N - 1], &st);
    seq_before = st.last_seq;
    TB_CHECK(seq_before > 0);
    tb_timekeeper_stop(tk[N - 1]);
    stopped = 0;
    while (stopped < 1)
        ev_run(loop, EVRUN_ONCE);
    tb_timekeeper_free(tk[N - 1]);
    TB_REQUIRE(start_node(N - 1) == TB_OK);
    TB_CHECK(tb_test_run_until(loop, restarted_node_sent, NULL, 10));
    tb_timekeeper_get_stats(tk[N - 1], &st);
    TB_CHECK(st.last_seq > seq_before);
    TB_CHECK(tb_test_run_until(loop, peers_accept_restarted, NULL, 15));
    for (int i = 0; i < N - 1; i++) {
        TB_CHECK_EQ(dropped(i, TB_MEASURE_DROP_REPLAY), 0);
        TB_CHECK_EQ(dropped(i, TB_MEASURE_DROP_OUT_OF_ORDER), 0);
    }

    /* status --json through the control socket handler carries the time node's members. */
    tb_control_buf b = {0};
    tb_node_control(tb_timekeeper_node(tk[1]), "status json", &b);
    TB_REQUIRE(b.p);
    if (getenv("TB_TK_VERBOSE"))
        fprintf(stderr, "%s", b.p);
    TB_CHECK(strstr(b.p, "\"consensus\":{\"offset_ns\":") != NULL);
    TB_CHECK(strstr(b.p, "\"verdict\":\"inconsistent\",\"verdict_text\":\"inconsistent across "
                         "regions\"") != NULL);
    TB_CHECK(
        strstr(b.p,
               "\"verdict\":\"falseticker\",\"verdict_text\":\"falseticker\",\"since\":\"20") !=
        NULL);
    TB_CHECK(strstr(b.p, "\"bad_signature\":1,") != NULL);
    TB_CHECK(strstr(b.p, "\"kind\":\"peer\"") != NULL);
    TB_CHECK(strstr(b.p, "\"leap\":\"none\",\"stratum\":") != NULL); /* NTP sources */
    TB_CHECK(strstr(b.p, "\"malfeasance_reports\":0}") != NULL);
    /* the node's members and the time node's together are one valid JSON object */
    json_error_t jerr;
    json_t *j = json_loads(b.p, 0, &jerr);
    TB_REQUIRE(j != NULL);
    TB_CHECK(json_is_array(json_object_get(j, "sources")));
    TB_CHECK(json_array_size(json_object_get(j, "verdicts")) > 0);
    TB_CHECK(json_integer_value(json_object_get(json_object_get(j, "measurements"), "sent")) > 0);
    json_decref(j);
    free(b.p);
    memset(&b, 0, sizeof(b));
    tb_node_control(tb_timekeeper_node(tk[1]), "status", &b);
    TB_REQUIRE(b.p);
    TB_CHECK(strstr(b.p, "\nconsensus offset_us=") != NULL);
    TB_CHECK(strstr(b.p, ": falseticker since 20") != NULL);
    TB_CHECK(strstr(b.p, "\nsource roughtime ") != NULL);
    TB_CHECK(strstr(b.p, " leap=none stratum=") != NULL);
    TB_CHECK(strstr(b.p, "malformed=1 unknown_origin=0 expired_certificate=0 bad_signature=1 ") !=
             NULL);
    free(b.p);
    test_malfeasance();
    test_revoked_origin();

    for (int i = 0; i < N; i++)
        tb_timekeeper_stop(tk[i]);
    tb_node_stop(rogue);
    stopped = 0;
    TB_CHECK(tb_test_run_until(loop, all_stopped, NULL, 5));
    for (int i = 0; i < N; i++)
        tb_timekeeper_free(tk[i]);
    tb_node_free(rogue);

    /* The history: tk-0 stored tk-2's measurements, also those after its restart. */
    tb_store *s;
    char err[256];
    tb_store_config sc = {.dir = cfg[0].state_dir};
    TB_REQUIRE(tb_store_open(&sc, &s, err, sizeof(err)) == 0);
    origin_seq o = {"tk-2", 0};
    TB_CHECK(tb_store_max_seqs(s, max_seq_cb, &o) == 0);
    TB_CHECK(o.seq > seq_before);
    uint64_t nm, nv, nr;
    TB_CHECK(tb_store_counts(s, &nm, &nv, &nr) == 0);
    TB_CHECK(nm > 20 && nv >= 6 && nr == 1);
    tb_store_close(s);

    for (int i = 0; i < NRESP; i++)
        tb_fake_ntp_stop(loop, &resp[i]);
    for (int i = 0; i < N + 2; i++)
        tb_node_config_free(&cfg[i]);
    ev_loop_destroy(loop);
}

/* The time node's keys: the example file's values, defaults, and errors naming FILE:LINE. */
static void test_config(void)
{
    tb_node_config c;
    tb_tk_config t;
    char err[TB_NODE_ERR_MAX];
    tb_node_config_defaults(&c);
    TB_REQUIRE(tb_node_config_load_file(&c, TB_SOURCE_DIR "/node/tbnode.conf.example", err,
                                        sizeof(err)) == TB_OK);
    int prc = tb_tk_config_parse(&c, &t, err, sizeof(err));
    if (prc != TB_OK)
        fprintf(stderr, "%s\n", err);
    TB_REQUIRE(prc == TB_OK);
    TB_CHECK_EQ(t.xc.window_ns, 600 * 1000000000LL);
    TB_CHECK_EQ(t.xc.min_agree, 3);
    TB_CHECK_EQ(t.xc.drift_ppb, 50000);
    TB_CHECK_EQ(t.xc.drift_floor_ppb, 1000);
    TB_CHECK_EQ(t.xc.hold_runs, 2);
    TB_CHECK_EQ(t.xc.grace_ns, 30 * 1000000000LL);
    TB_CHECK_EQ(t.xc.max_radius_ns, 10 * 1000000000LL);
    TB_CHECK_EQ(t.xc.max_clock_off_ns, 1000000000LL);
    TB_CHECK_EQ(t.peer_interval_s, 16);
    TB_CHECK_STR(t.hosts_file, "");
    TB_CHECK_EQ(t.limits.max_evidence, 4096);
    TB_CHECK_EQ(t.limits.rate_per_min, 600);
    TB_CHECK_EQ(t.limits.bytes_per_hour, 16777216);
    TB_CHECK_EQ(t.batch_interval_ms, 1000);
    TB_CHECK_EQ(t.store_origin_bytes, 64 << 20);
    TB_CHECK_EQ(t.store_bytes, 1 << 30);
    tb_node_config_free(&c);

    static const struct {
        const char *text, *err;
    } cases[] = {
        {"hosts_file = \"h\";\ncrosscheck = { window = 30; min_agree = 2; peers_vote = true; "
         "drift_ppm = 0; drift_floor_ppb = 5; hold_runs = 1; grace = 0; min_interval_ms = 10; "
         "max_radius = 1500; max_clock_off = 250; "
         "peer_interval = 1; retention = 60;\n"
         "max_evidence = 2048; origin_rate = 30; origin_bytes = 1048576;\n"
         "batch_interval_ms = 250; store_origin_bytes = 1048576; store_bytes = 2097152; };",
         NULL},
        {"crosscheck = { batch_interval_ms = 5; };",
         "t.conf:1: key 'crosscheck.batch_interval_ms': 5 is outside 10..60000"},
        {"crosscheck = { store_bytes = 1000; };",
         "t.conf:1: key 'crosscheck.store_bytes': 1000 is outside 1048576..4398046511104"},
        {"crosscheck = { origin_rate = 0; };",
         "t.conf:1: key 'crosscheck.origin_rate': 0 is outside 1..1000000"},
        {"crosscheck = { max_evidence = 100000; };",
         "t.conf:1: key 'crosscheck.max_evidence': 100000 is outside 1024..8192"},
        {"\ncrosscheck = { window = 5; };", "t.conf:2: key 'crosscheck.window': 5 is outside "
                                            "10..86400"},
        {"crosscheck = {\n wndow = 50; };", "t.conf:2: key 'crosscheck.wndow': unknown key"},
        {"crosscheck = { peers_vote = 1; };",
         "t.conf:1: key 'crosscheck.peers_vote': must be true or false, not an integer"},
        {"crosscheck = { min_agree = \"3\"; };",
         "t.conf:1: key 'crosscheck.min_agree': must be an integer, not a string"},
        /* libconfig 1.5 alone would read these as 100 and 1. */
        {"crosscheck = { window = 4294967396; };",
         "t.conf:1: key 'crosscheck.window': 4294967396 is outside 10..86400"},
        {"crosscheck = { min_agree = 4294967297; };",
         "t.conf:1: key 'crosscheck.min_agree': 4294967297 is outside 1..64"},
        {"crosscheck = { retention = -4294967236; };",
         "t.conf:1: key 'crosscheck.retention': -4294967236 is outside 60..315360000"},
        {"crosscheck = { drift_ppm = -1; };",
         "t.conf:1: key 'crosscheck.drift_ppm': -1 is outside 0..1000"},
        {"crosscheck = 3;", "t.conf:1: key 'crosscheck': must be a group { ... }"},
        {"hosts_file = \"\";", "t.conf:1: key 'hosts_file': must be a non-empty string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tb_node_config_defaults(&c);
        TB_REQUIRE(tb_node_config_load_string(&c, cases[i].text, "t.conf", err, sizeof(err)) ==
                   TB_OK);
        err[0] = '\0';
        int rc = tb_tk_config_parse(&c, &t, err, sizeof(err));
        if (!cases[i].err) {
            TB_CHECK_EQ(rc, TB_OK);
            TB_CHECK_STR(t.hosts_file, "h");
            TB_CHECK(t.xc.peers_vote && t.xc.min_agree == 2 && t.xc.drift_ppb == 0 &&
                     t.xc.drift_floor_ppb == 5 && t.xc.hold_runs == 1 && t.xc.grace_ns == 0 &&
                     t.xc.max_radius_ns == 1500000000LL && t.xc.max_clock_off_ns == 250000000LL);
            TB_CHECK(t.retention_s == 60 && t.min_interval_ms == 10);
            TB_CHECK(t.limits.max_evidence == 2048 && t.limits.rate_per_min == 30 &&
                     t.limits.bytes_per_hour == 1048576);
            TB_CHECK(t.batch_interval_ms == 250 && t.store_origin_bytes == 1048576 &&
                     t.store_bytes == 2097152);
        } else {
            TB_CHECK_EQ(rc, TB_ERR_INVAL);
            TB_CHECK_STR(err, cases[i].err);
        }
        tb_node_config_free(&c);
    }
}

int main(void)
{
    TB_RUN(test_config);
    snprintf(dir, sizeof(dir), "/tmp/tbnode-tk.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    TB_RUN(test_time_nodes);
    return tb_fx_finish(dir, TB_DONE());
}
