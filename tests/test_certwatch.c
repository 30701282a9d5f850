/* The certificate lifecycle of running nodes (node/certwatch.h), three tb_node in one process
 * and one loop: a certificate renewed with `tbcert renew` is taken from the file change alone
 * (no restart): its peers hold the new certificate and a new handshake presents it; a reload
 * with a key that does not belong is refused and the old credentials stay; a peer whose
 * certificate expires (issued with `tbcert issue --seconds`) is dropped by every node and not
 * let back in, and says so in its status; a certificate revoked with `tbcert revoke`, the list
 * given to one node only, is dropped by every node within 5 s. Needs tbcert (TB_TBCERT);
 * loopback 127.0.0.141-145 only. */
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certs/identity.h"
#include "node/node.h"
#include "quic/endpoint.h"
#include "tests/support/loop.h"
#include "tests/tb_fixture.h"
#include "tests/tb_test.h"

#define N 4 /* n0-n2 the mesh, n3 the short-lived one */
#define PORT 4617
#define SHORT_LIFE_S 9

typedef struct harness {
    struct ev_loop *loop;
    tb_log log[N];
    tb_node_config cfg[N];
    tb_node *node[N];
    int stopped;
} harness;

static harness h;
static char dir[64];

static int make_certs(void)
{
    if (tb_fx_tbcert("init-ca --dir %s/ca --name lifecycle", dir) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        if (tb_fx_tbcert("issue --ca %s/ca --name n%d --region r%d --out %s/n%d", dir, i, i, dir,
                         i) != 0)
            return -1;
    }
    return tb_fx_tbcert("issue --ca %s/ca --name probe --region r9 --out %s/probe", dir, dir);
}

static void on_stopped(void *arg)
{
    h.stopped++;
}

static void start(int i)
{
    tb_node_config *c = &h.cfg[i];
    tb_node_config_defaults(c);
    char text[1400];
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\";\n"
             "cert = \"%s/n%d/node.crt\"; key = \"%s/n%d/node.key\"; ca = \"%s/n%d/ca.crt\";\n"
             "state_dir = \"%s/s%d\";\n"
             "ping_interval_ms = 200;\n"
             "%s%s%s%s",
             141 + i, PORT, dir, i, dir, i, dir, i, dir, i,
             i ? "peers = ( \"127.0.0.141:4617\" );\n" : "", i == 0 ? "crl = \"" : "",
             i == 0 ? dir : "", i == 0 ? "/ca/revoked.crl\";\n" : "");
    char err[TB_NODE_ERR_MAX];
    TB_REQUIRE(tb_node_config_load_string(c, text, "lifecycle", err, sizeof(err)) == TB_OK);
    mkdir(c->state_dir, 0700);
    char who[16];
    snprintf(who, sizeof(who), "n%d", i);
    tb_log_init(&h.log[i], who, getenv("TB_TEST_VERBOSE") ? TB_LOG_INFO : TB_LOG_ERROR);
    tb_node_callbacks cb = {.on_stopped = on_stopped};
    TB_REQUIRE(tb_node_new(&h.node[i], h.loop, &h.log[i], tb_clock_system(), c, &cb) == TB_OK);
}

static void stop(int i)
{
    int before = h.stopped;
    tb_node_stop(h.node[i]);
    while (h.stopped == before)
        ev_run(h.loop, EVRUN_ONCE);
    tb_node_free(h.node[i]);
    tb_node_config_free(&h.cfg[i]);
    h.node[i] = NULL;
}

static int connected(int i, const char *name)
{
    tb_node_peer_status ps[8];
    size_t k = tb_node_peers(h.node[i], ps, 8);
    for (size_t j = 0; j < k && j < 8; j++) {
        if (strcmp(ps[j].name, name) == 0 && strcmp(ps[j].state, "connected") == 0)
            return 1;
    }
    return 0;
}

static int mesh_up(void *arg)
{
    return connected(0, "n1") && connected(0, "n2") && connected(1, "n2") && connected(1, "n0") &&
           connected(2, "n0") && connected(2, "n1");
}

static int file_fp(const char *node, uint8_t fp[32])
{
    char path[128], err[256];
    tb_cert_identity id;
    snprintf(path, sizeof(path), "%s/%s/node.crt", dir, node);
    if (tb_cert_identity_from_pem_file(path, &id, err, sizeof(err)) != TB_OK)
        return -1;
    memcpy(fp, id.fingerprint, 32);
    return 0;
}

/* 1 when node i holds, for `name`, the certificate with fingerprint fp. */
static int holds(int i, const char *name, const uint8_t fp[32])
{
    const uint8_t *der;
    size_t len;
    tb_cert_identity id;
    return tb_node_peer_cert(h.node[i], name, &der, &len) == TB_OK &&
           tb_cert_identity_from_der(der, len, &id) == TB_OK && memcmp(id.fingerprint, fp, 32) == 0;
}

static uint8_t renewed_fp[32];

/* The incarnation node i's member list holds for `name` (0: not a member). */
static uint64_t incarnation_of(int i, const char *name)
{
    tb_node_member mb[8];
    size_t k = tb_node_members(h.node[i], mb, 8);
    for (size_t j = 0; j < k && j < 8; j++)
        if (strcmp(mb[j].name, name) == 0 && strcmp(mb[j].state, "alive") == 0)
            return mb[j].incarnation;
    return 0;
}

static uint64_t n1_before; /* the incarnation the others held for n1 before its renewal */

static int peers_hold_renewed(void *arg)
{
    return holds(0, "n1", renewed_fp) && holds(2, "n1", renewed_fp) && holds(1, "n1", renewed_fp) &&
           incarnation_of(0, "n1") > n1_before && incarnation_of(2, "n1") > n1_before;
}

/* A client that dials one node and records the certificate it presents. */
typedef struct probe {
    tb_quic_endpoint *ep;
    int connected;
    uint8_t fp[32];
} probe;

static probe pr;

static void probe_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    memcpy(pr.fp, peer->fingerprint, 32);
    pr.connected = 1;
    tb_quic_close(c, TB_QUIC_APP_NO_ERROR);
}

static int probe_done(void *arg)
{
    return pr.connected;
}

static void probe_fingerprint(const char *addr, const char *name)
{
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof(cert), "%s/probe/node.crt", dir);
    snprintf(key, sizeof(key), "%s/probe/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/probe/ca.crt", dir);
    tb_quic_config qc = {.listen = "127.0.0.145:0",
                         .mode = TB_QUIC_MODE_CLIENT,
                         .cert_file = cert,
                         .key_file = key,
                         .ca_file = ca,
                         .node_name = "probe",
                         .retry = 0};
    tb_quic_callbacks cb = {.on_connected = probe_connected};
    tb_log log;
    tb_log_init(&log, "probe", TB_LOG_ERROR);
    memset(&pr, 0, sizeof(pr));
    TB_REQUIRE(tb_quic_endpoint_create(&pr.ep, h.loop, &log, tb_clock_system(), &qc, &cb) == TB_OK);
    tb_quic_conn *c;
    TB_REQUIRE(tb_quic_dial(pr.ep, addr, name, &c) == TB_OK);
    TB_CHECK(tb_test_run_until(h.loop, probe_done, NULL, 5));
    (void)tb_test_run_until(h.loop, tb_test_never, NULL, 0.2);
    tb_quic_endpoint_destroy(pr.ep);
}

static int status_has(int i, const char *req, const char *text)
{
    tb_control_buf b = {0};
    tb_node_control(h.node[i], req, &b);
    int found = b.p && strstr(b.p, text) != NULL;
    if (!found)
        fprintf(stderr, "status of n%d has no \"%s\":\n%s\n", i, text, b.p ? b.p : "(none)");
    free(b.p);
    return found;
}

static int copy_file(const char *from, const char *to)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "cp %s %s.new && mv %s.new %s", from, to, to, to);
    return system(cmd) == 0 ? 0 : -1;
}

/* `tbcert renew` rewrites n1/node.crt; the file watch alone reloads it. */
static void test_renewal(void)
{
    uint8_t old_fp[32];
    TB_REQUIRE(file_fp("n1", old_fp) == 0);
    TB_CHECK(holds(0, "n1", old_fp));
    /* A renewal is a new incarnation of n1 in every member list (SWIM's records of the old one
     * are stale): the others held n1's first one. */
    n1_before = incarnation_of(0, "n1");
    TB_CHECK(n1_before > 0);
    TB_REQUIRE(tb_fx_tbcert("renew --ca %s/ca --in %s/n1 --days 30", dir, dir) == 0);
    TB_REQUIRE(file_fp("n1", renewed_fp) == 0);
    TB_CHECK(memcmp(old_fp, renewed_fp, 32) != 0);
    TB_CHECK(tb_test_run_until(h.loop, peers_hold_renewed, NULL, 8));
    TB_CHECK(mesh_up(NULL)); /* the connections went on */
    TB_CHECK(status_has(1, "status", "reloads=1 failures=0"));
    probe_fingerprint("127.0.0.142:4617", "n1"); /* a new handshake presents the new one */
    TB_CHECK(pr.connected);
    TB_CHECK_MEM(pr.fp, renewed_fp, 32);
}

/* A key that does not belong to the certificate: refused, one clear line, the old ones stay. */
static void test_bad_reload(void)
{
    char from[128], to[128], keep[128];
    uint8_t fp[32];
    TB_REQUIRE(file_fp("n2", fp) == 0);
    snprintf(from, sizeof(from), "%s/n0/node.key", dir);
    snprintf(to, sizeof(to), "%s/n2/node.key", dir);
    snprintf(keep, sizeof(keep), "%s/n2/node.key.orig", dir);
    TB_REQUIRE(copy_file(to, keep) == 0);
    TB_REQUIRE(copy_file(from, to) == 0);
    TB_CHECK_EQ(tb_node_reload_certs(h.node[2]), TB_ERR_INVAL); /* as SIGHUP would */
    TB_CHECK(holds(2, "n2", fp));
    TB_CHECK(status_has(2, "status", "reloads=0 failures=1"));
    TB_REQUIRE(copy_file(keep, to) == 0);
    TB_CHECK_EQ(tb_node_reload_certs(h.node[2]), TB_OK);
    TB_CHECK(mesh_up(NULL));
}

static int64_t n3_not_after;

static int n3_in(void *arg)
{
    return connected(0, "n3") && connected(1, "n3") && connected(2, "n3");
}

static int n3_out(void *arg)
{
    return !connected(0, "n3") && !connected(1, "n3") && !connected(2, "n3");
}

static void test_expiry(void)
{
    TB_REQUIRE(tb_fx_tbcert("issue --ca %s/ca --name n3 --region r3 --out %s/n3 --seconds %d", dir,
                            dir, SHORT_LIFE_S) == 0);
    char path[128], err[256];
    tb_cert_identity id;
    snprintf(path, sizeof(path), "%s/n3/node.crt", dir);
    TB_REQUIRE(tb_cert_identity_from_pem_file(path, &id, err, sizeof(err)) == TB_OK);
    n3_not_after = id.not_after;
    start(3);
    TB_REQUIRE(tb_test_run_until(h.loop, n3_in, NULL, 6));
    TB_CHECK(status_has(3, "status", "warning certificate"));
    TB_CHECK(status_has(3, "status json", "\"expiry_warning\":true"));
    TB_CHECK(status_has(0, "status json", "\"expiry_warning\":false"));
    int64_t left = n3_not_after - tb_clock_real(tb_clock_system()) / (int64_t)TB_NS_PER_SEC;
    TB_CHECK(tb_test_run_until(h.loop, n3_out, NULL, (double)left + 3));
    int64_t now = tb_clock_real(tb_clock_system()) / (int64_t)TB_NS_PER_SEC;
    TB_CHECK(now >= n3_not_after); /* not before it expired */
    (void)tb_test_run_until(h.loop, tb_test_never, NULL, 2);
    TB_CHECK(n3_out(NULL)); /* its redials are refused */
    TB_CHECK(status_has(3, "status", "expired at"));
    stop(3);
}

static int n2_dropped(void *arg)
{
    return !connected(0, "n2") && !connected(1, "n2") && !connected(2, "n0") && !connected(2, "n1");
}

/* The list is written for n0 only (its `crl` file); n1 learns it from the mesh. */
static void test_revocation(void)
{
    TB_REQUIRE(mesh_up(NULL));
    TB_REQUIRE(tb_fx_tbcert("revoke --ca %s/ca --cert %s/n2/node.crt", dir, dir) == 0);
    uint64_t t0 = tb_clock_mono(tb_clock_system());
    TB_CHECK(tb_test_run_until(h.loop, n2_dropped, NULL, 5));
    double took = (double)(tb_clock_mono(tb_clock_system()) - t0) / 1e9;
    printf("revoked n2 dropped by n0 and n1 %.2f s after the list was written\n", took);
    TB_CHECK(took < 5);
    const uint8_t *der;
    size_t len;
    TB_REQUIRE(tb_node_peer_cert(h.node[2], "n2", &der, &len) == TB_OK);
    TB_CHECK(tb_node_cert_revoked(h.node[1], der, len));
    TB_CHECK(tb_node_cert_revoked(h.node[0], der, len));
    TB_CHECK(status_has(1, "status", "crl number=1 revoked=1"));
    (void)tb_test_run_until(h.loop, tb_test_never, NULL, 2);
    TB_CHECK(n2_dropped(NULL)); /* refused since */
    TB_CHECK(connected(0, "n1") && connected(1, "n0"));
}

static void test_lifecycle(void)
{
    h.loop = ev_loop_new(EVFLAG_AUTO);
    for (int i = 0; i < 3; i++)
        start(i);
    TB_REQUIRE(tb_test_run_until(h.loop, mesh_up, NULL, 15));
    test_renewal();
    test_bad_reload();
    test_expiry();
    test_revocation();
    for (int i = 0; i < 3; i++)
        stop(i);
    ev_loop_destroy(h.loop);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tbnode-certwatch.XXXXXX");
    if (tb_fx_setup(dir, make_certs) != 0)
        return 1;
    TB_RUN(test_lifecycle);
    return tb_fx_finish(dir, TB_DONE());
}
