/* tool_forge: a test-only attacker for the acceptance test (tests/test_acceptance.sh). It joins
 * the mesh as an ordinary client-mode node with a valid mesh certificate of its own (say
 * "mallory"), connects to every node given, and broadcasts two forged measurements. Mesh v2
 * signs every broadcast by its origin (mallory here), so what it can forge is the content:
 *   1. a batch claiming to be CLAIM's (a real node, e.g. "eu") with a measurement of CLAIM
 *      signed with its own key: a batch must be its broadcast origin's own, so a receiver drops
 *      it as malformed;
 *   2. a batch of its own with a measurement claiming origin "ghost-<pid>" signed with a fresh
 *      random key: the measurement must be signed by the batch's origin, so a receiver drops it
 *      as a bad signature.
 * Receivers never forward what they drop, so the tool connects to every node itself, and stays
 * connected for LINGER_S after: PlumTree pushes a broadcast in full only on its origin's tree
 * (a link that comes up after the origin is known starts lazy, a duplicate copy prunes its
 * sender) and announces it to the other neighbours (IHAVE), which ask for it (GRAFT) a second
 * later.
 *
 *   tool_forge --cert F --key F --ca F --state-dir D --claim NAME --seq N --source NAME
 *              --peer ADDR:PORT [--peer ...] [--timeout S]
 * Both forgeries claim an NTP source of that configured NAME is 5 s ahead.
 * Prints one line per forged measurement; exit 0 when both were sent to every peer, 1 when it
 * could not connect to all of them in time, 2 on bad arguments. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "measure/measurement.h"
#include "node/node.h"
#include "node/timekeeper.h"
#include "tests/support/tk_batch.h"
#include "wire/wire.h"

#define MAX_PEERS 8
/* IHAVE after 100 ms, GRAFT 1 s after that (routing/plumtree.c's defaults), with room for a
 * loaded machine. */
#define LINGER_S 3.0

typedef struct forge {
    struct ev_loop *loop;
    tb_node *node;
    size_t want_peers;
    int stopped;
} forge;

static void on_stopped(void *arg)
{
    forge *f = arg;
    f->stopped = 1;
    ev_break(f->loop, EVBREAK_ALL);
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    forge *f = w->data;
    (void)revents;
    if (f->node && tb_node_connected_count(f->node) >= f->want_peers)
        ev_break(loop, EVBREAK_ONE);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    *len = fread(buf, 1, cap, fp);
    fclose(fp);
    return *len > 0 && *len < cap ? 0 : -1;
}

/* Signs a measurement of an NTP source named like the mesh's own, claiming `origin`, with sk,
 * and broadcasts it as the time nodes do, in a batch claiming batch_origin (the broadcast itself
 * is this node's, signed by it as mesh v2 requires). */
static int send_forged(forge *f, const char *batch_origin, const char *origin, uint64_t seq,
                       const char *source, const uint8_t *sk)
{
    tb_measurement m = {.kind = TB_MEASURE_NTP,
                        .seq = seq,
                        .real_ns = (int64_t)time(NULL) * 1000000000LL,
                        .offset_ns = 5000000000LL, /* a lie worth telling: +5 s */
                        .delay_ns = 100000,
                        .bound_ns = 50000};
    snprintf(m.origin, sizeof(m.origin), "%s", origin);
    snprintf(m.source_name, sizeof(m.source_name), "%s", source);
    snprintf(m.source_addr, sizeof(m.source_addr), "127.0.0.1:123");
    int rc = tb_test_send_batch(f->node, batch_origin, &m, sk);
    if (rc != TB_OK)
        fprintf(stderr, "tool_forge: broadcast: %s\n", tb_strerror(rc));
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: tool_forge --cert F --key F --ca F --state-dir D --claim NAME "
                    "--seq N --source NAME --peer ADDR:PORT [--peer ...] [--timeout S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *ca = NULL, *state = NULL, *claim = NULL;
    const char *source = NULL;
    const char *peers[MAX_PEERS];
    size_t npeers = 0;
    unsigned long long seq = 0;
    int timeout = 20;
    static const struct option opts[] = {
        {"cert", 1, 0, 'c'},   {"key", 1, 0, 'k'}, {"ca", 1, 0, 'a'},   {"state-dir", 1, 0, 's'},
        {"claim", 1, 0, 'o'},  {"seq", 1, 0, 'q'}, {"peer", 1, 0, 'p'}, {"timeout", 1, 0, 't'},
        {"source", 1, 0, 'n'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'a':
            ca = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'o':
            claim = optarg;
            break;
        case 'n':
            source = optarg;
            break;
        case 'q':
            seq = strtoull(optarg, NULL, 10);
            break;
        case 't':
            timeout = atoi(optarg);
            break;
        case 'p':
            if (npeers == MAX_PEERS)
                usage();
            peers[npeers++] = optarg;
            break;
        default:
            usage();
        }
    }
    if (!cert || !key || !ca || !state || !claim || !source || !seq || !npeers || timeout <= 0)
        usage();
    if (sodium_init() < 0)
        return 2;

    /* The mesh node comes from tbnode's own argument parser, so it is configured as any
     * client-mode tbnode would be. */
    char *nargv[32 + 2 * MAX_PEERS];
    int nargc = 0;
    nargv[nargc++] = "tool_forge";
    const char *fixed[] = {"--mode", "client", "--cert",      cert,  "--key",       key,
                           "--ca",   ca,       "--state-dir", state, "--log-level", "warn"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        nargv[nargc++] = (char *)(uintptr_t)fixed[i];
    for (size_t i = 0; i < npeers; i++) {
        nargv[nargc++] = "--peer";
        nargv[nargc++] = (char *)(uintptr_t)peers[i];
    }
    nargv[nargc] = NULL;
    tb_node_config cfg;
    tb_node_config_defaults(&cfg);
    tb_node_action action;
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_from_args(&cfg, nargc, nargv, &action, err, sizeof(err)) != TB_OK ||
        tb_node_config_check(&cfg, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "tool_forge: %s\n", err);
        return 2;
    }
    if (mkdir(state, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "tool_forge: %s: %s\n", state, strerror(errno));
        return 2;
    }

    /* Both signing keys: our own node key (valid in the mesh, but not CLAIM's), and one nobody
     * knows. */
    uint8_t own_sk[TB_MEASURE_SK_LEN], own_pk[TB_MEASURE_PK_LEN];
    uint8_t rnd_sk[TB_MEASURE_SK_LEN], rnd_pk[TB_MEASURE_PK_LEN], seed[32];
    char pem[16384];
    size_t pemlen;
    if (read_file(key, pem, sizeof(pem), &pemlen) != 0 ||
        tb_measure_key_from_pem(pem, pemlen, own_sk, own_pk) != TB_OK) {
        fprintf(stderr, "tool_forge: %s: not an Ed25519 PEM key\n", key);
        return 2;
    }
    randombytes_buf(seed, sizeof(seed));
    if (tb_measure_key_from_seed(seed, rnd_sk, rnd_pk) != TB_OK)
        return 2;

    forge f = {.loop = ev_loop_new(EVFLAG_AUTO), .want_peers = npeers};
    tb_log log;
    tb_log_init(&log, "tool_forge", TB_LOG_WARN);
    tb_node_callbacks cb = {.on_stopped = on_stopped, .arg = &f};
    if (tb_node_new(&f.node, f.loop, &log, tb_clock_system(), &cfg, &cb) != TB_OK) {
        fprintf(stderr, "tool_forge: cannot start the mesh node\n");
        return 2;
    }
    ev_timer t, deadline;
    ev_timer_init(&t, tick, 0.05, 0.05);
    t.data = &f;
    ev_timer_start(f.loop, &t);
    ev_timer_init(&deadline, on_deadline, timeout, 0.);
    deadline.data = &f;
    ev_timer_start(f.loop, &deadline);
    ev_run(f.loop, 0);
    int rc = 0;
    size_t got = tb_node_connected_count(f.node);
    if (got < npeers) {
        fprintf(stderr, "tool_forge: connected to %zu of %zu peers in %d s\n", got, npeers,
                timeout);
        rc = 1;
    } else {
        char ghost[32];
        snprintf(ghost, sizeof(ghost), "ghost-%d", (int)getpid());
        if (send_forged(&f, claim, claim, seq, source, own_sk) != TB_OK ||
            send_forged(&f, tb_node_name(f.node), ghost, seq, source, rnd_sk) != TB_OK) {
            rc = 1;
        } else {
            printf("forged: batch of %s, seq %llu signed with %s's key, sent to %zu peers\n", claim,
                   seq, tb_node_name(f.node), npeers);
            printf("forged: origin %s seq %llu signed with a random key in a batch of %s, sent "
                   "to %zu peers\n",
                   ghost, seq, tb_node_name(f.node), npeers);
        }
        /* Let the streams go out, and the lazy peers GRAFT, before the CONNECTION_CLOSEs. */
        ev_timer_stop(f.loop, &t);
        ev_timer_stop(f.loop, &deadline);
        ev_timer_init(&deadline, on_deadline, LINGER_S, 0.);
        ev_timer_start(f.loop, &deadline);
        while (ev_is_active(&deadline))
            ev_run(f.loop, EVRUN_ONCE);
    }
    ev_timer_stop(f.loop, &t);
    ev_timer_stop(f.loop, &deadline);
    tb_node_stop(f.node);
    ev_timer_init(&deadline, on_deadline, 2.0, 0.); /* bounded: on_stopped ends it earlier */
    ev_timer_start(f.loop, &deadline);
    while (!f.stopped && ev_is_active(&deadline))
        ev_run(f.loop, EVRUN_ONCE);
    tb_node_free(f.node);
    tb_node_config_free(&cfg);
    ev_loop_destroy(f.loop);
    fflush(stdout);
    return rc;
}
