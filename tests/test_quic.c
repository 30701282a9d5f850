/* tb_quic over loopback: real handshakes between endpoints in one process and one libev loop,
 * certificates made with certtool (the mesh profile: CN + DNS SAN + urn:tbmesh URIs), every
 * refusal asserted by its reason, a third-party client (gtlsclient), and the transport features.
 * Every wait is bounded by a libev timer; a wait that runs out fails the test. */
#include <errno.h>
#include "common/addr.h"
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>

#include <ev.h>

#include "quic/endpoint.h"
#include "quic/testing.h"
#include "tests/tb_test.h"

static char dir[64];
static struct ev_loop *loop;

/* ------------------------------------------------------------------ certificates */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rv = system(cmd);
    if (rv != 0)
        fprintf(stderr, "command failed (%d): %s\n", rv, cmd);
    return rv;
}

static int write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int make_ca(const char *name)
{
    char t[256];
    /* signing_key: the CA's own certificate can then sign a handshake, as an attacker's would. */
    snprintf(t, sizeof(t), "cn = \"%s\"\nca\ncert_signing_key\nsigning_key\nexpiration_days = 30\n",
             name);
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%s.tmpl", name);
    if (write_file(tmpl, t) != 0)
        return -1;
    return run("cd %s && certtool --generate-privkey --key-type=ed25519 --outfile %s.key "
               ">/dev/null 2>&1 && certtool --generate-self-signed --load-privkey %s.key "
               "--template %s.tmpl --outfile %s.pem >/dev/null 2>&1",
               dir, name, name, name, name);
}

/* extra: template lines replacing the default purposes and validity. */
static int make_node(const char *file, const char *ca, const char *node, const char *region,
                     const char *extra)
{
    char t[1024];
    snprintf(t, sizeof(t),
             "cn = \"%s\"\ndns_name = \"%s\"\nuri = \"urn:tbmesh:node:%s\"\n"
             "uri = \"urn:tbmesh:region:%s\"\nsigning_key\n%s",
             node, node, node, region,
             extra ? extra : "tls_www_server\ntls_www_client\nexpiration_days = 30\n");
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%s.tmpl", file);
    if (write_file(tmpl, t) != 0)
        return -1;
    return run("cd %s && certtool --generate-privkey --key-type=ed25519 --outfile %s.key "
               ">/dev/null 2>&1 && certtool --generate-certificate --load-privkey %s.key "
               "--load-ca-certificate %s.pem --load-ca-privkey %s.key --template %s.tmpl "
               "--outfile %s.pem >/dev/null 2>&1",
               dir, file, file, ca, ca, file, file);
}

static void cleanup(void)
{
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = '\0';
    }
}

static int make_certs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tb_quic_test.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    const char *expired = "tls_www_server\ntls_www_client\n"
                          "activation_date = \"2020-01-01 00:00:00 UTC\"\n"
                          "expiration_date = \"2020-06-01 00:00:00 UTC\"\n";
    const char *server_only = "tls_www_server\nexpiration_days = 30\n";
    /* A CA certificate signed by the mesh CA, with every purpose a node has. */
    const char *sub_ca = "ca\ncert_signing_key\ntls_www_server\ntls_www_client\n"
                         "expiration_days = 30\n";
    if (make_ca("ca") || make_ca("foreignca") || make_node("alpha", "ca", "alpha", "eu", NULL) ||
        make_node("bravo", "ca", "bravo", "us", NULL) ||
        make_node("charlie", "ca", "charlie", "ap", NULL) ||
        make_node("foreign", "foreignca", "delta", "eu", NULL) ||
        make_node("expired", "ca", "echo", "eu", expired) ||
        make_node("noclient", "ca", "foxtrot", "eu", server_only) ||
        make_node("subca", "ca", "golfca", "eu", sub_ca))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ a test node */

typedef struct node {
    tb_quic_endpoint *ep;
    tb_log log;
    char name[32];
    int connected, closed, refused, shutdown_done;
    int live; /* connected and not yet closed */
    int destroy_on_shutdown;
    tb_quic_conn *conn; /* last connected */
    tb_quic_peer peer;  /* last connected peer */
    tb_quic_close_info last_close;
    tb_quic_refusal last_refusal;
    int msgs, dgrams;
    uint8_t msg[4096];
    size_t msglen;
    uint64_t dgram_rx_mono;
    int nlines; /* every line logged, also those past loglines' end */
    char loglines[8192];
} node;

static void log_sink(void *arg, tb_log_level level, const char *line)
{
    node *n = arg;
    n->nlines++;
    size_t used = strlen(n->loglines);
    if (used + strlen(line) + 2 < sizeof(n->loglines))
        snprintf(n->loglines + used, sizeof(n->loglines) - used, "%s\n", line);
    if (getenv("TB_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", line);
}

static void on_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    node *n = arg;
    n->connected++;
    n->live++;
    n->conn = c;
    n->peer = *peer;
}

static void on_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info)
{
    node *n = arg;
    n->closed++;
    n->live -= info->was_connected;
    n->last_close = *info;
    if (n->conn == c)
        n->conn = NULL;
}

static void on_refused(void *arg, const struct sockaddr *sa, socklen_t len, tb_quic_refusal r,
                       const char *detail)
{
    node *n = arg;
    n->refused++;
    n->last_refusal = r;
}

static void on_msg(void *arg, tb_quic_conn *c, const uint8_t *msg, size_t len)
{
    node *n = arg;
    n->msgs++;
    n->msglen = len < sizeof(n->msg) ? len : sizeof(n->msg);
    memcpy(n->msg, msg, n->msglen);
}

static void on_dgram(void *arg, tb_quic_conn *c, const uint8_t *d, size_t len, uint64_t mono,
                     int64_t real)
{
    node *n = arg;
    n->dgrams++;
    n->dgram_rx_mono = mono;
    n->msglen = len < sizeof(n->msg) ? len : sizeof(n->msg);
    memcpy(n->msg, d, n->msglen);
}

static void on_shutdown(void *arg)
{
    node *n = arg;
    n->shutdown_done = 1;
    if (n->destroy_on_shutdown) {
        tb_quic_endpoint_destroy(n->ep);
        n->ep = NULL;
    }
}

typedef struct opts {
    const char *listen;
    tb_quic_mode mode;
    const char *cert; /* file stem in dir; "" for none */
    const char *ca;
    int retry;
    uint64_t idle_ns, keep_alive_ns, connect_timeout_ns;
    size_t max_msg;
    size_t sockbuf;
    const uint8_t *secret;
    const char *name;
    size_t max_conns, max_half_open, per_addr, per_prefix, max_buffered;
    uint64_t half_open_ns, stream_timeout_ns, ban_ns, ban_max_ns;
    unsigned max_penalties;
} opts;

static int node_start(node *n, const opts *o)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", o->name ? o->name : o->cert);
    tb_log_init(&n->log, n->name, TB_LOG_DEBUG);
    n->log.sink = log_sink;
    n->log.sink_arg = n;
    char cert[256], key[256], ca[256];
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, o->cert);
    snprintf(key, sizeof(key), "%s/%s.key", dir, o->cert);
    snprintf(ca, sizeof(ca), "%s/%s.pem", dir, o->ca ? o->ca : "ca");
    tb_quic_config cfg = {
        .listen = o->listen,
        .mode = o->mode ? o->mode : TB_QUIC_MODE_HYBRID,
        .cert_file = o->cert[0] ? cert : NULL,
        .key_file = o->cert[0] ? key : NULL,
        .ca_file = ca,
        .node_name = n->name,
        .retry = o->retry,
        .idle_timeout_ns = o->idle_ns,
        .keep_alive_ns = o->keep_alive_ns,
        .connect_timeout_ns = o->connect_timeout_ns,
        .max_message_size = o->max_msg,
        .socket_buffer = o->sockbuf,
        .static_secret = o->secret,
        .max_connections = o->max_conns,
        .max_half_open = o->max_half_open,
        .max_half_open_per_addr = o->per_addr,
        .max_half_open_per_prefix = o->per_prefix,
        .half_open_timeout_ns = o->half_open_ns,
        .max_buffered = o->max_buffered,
        .stream_timeout_ns = o->stream_timeout_ns,
        .max_penalties = o->max_penalties,
        .ban_ns = o->ban_ns,
        .ban_max_ns = o->ban_max_ns,
    };
    tb_quic_callbacks cb = {on_connected, on_closed, on_refused, on_msg, on_dgram, on_shutdown, n};
    return tb_quic_endpoint_create(&n->ep, loop, &n->log, tb_clock_system(), &cfg, &cb);
}

static void node_stop(node *n)
{
    tb_quic_endpoint_destroy(n->ep);
    n->ep = NULL;
}

static void addr_of(node *n, char *buf, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    if (tb_quic_endpoint_local_addr(n->ep, &sa, &salen) == TB_OK)
        tb_addr_format_sockaddr((struct sockaddr *)&sa, buf, len);
}

/* Starts a and b and has b dial a, expecting the name `expected`; addr gets a's address. */
static int pair_dial(node *a, const opts *oa, node *b, const opts *ob, const char *expected,
                     char *addr)
{
    if (node_start(a, oa) != TB_OK || node_start(b, ob) != TB_OK)
        return TB_ERR_STATE;
    addr_of(a, addr, TB_QUIC_ADDRSTR_MAX);
    return tb_quic_dial(b->ep, addr, expected, NULL);
}

static int expired_flag;
static void on_deadline(struct ev_loop *l, ev_timer *w, int revents)
{
    expired_flag = 1;
}

/* Runs the loop until cond holds; false (and a failed check) when secs pass first. */
#define WAIT(cond, secs)                                                                           \
    do {                                                                                           \
        ev_timer dl_;                                                                              \
        expired_flag = 0;                                                                          \
        ev_timer_init(&dl_, on_deadline, (secs), 0.);                                              \
        ev_timer_start(loop, &dl_);                                                                \
        while (!(cond) && !expired_flag)                                                           \
            ev_run(loop, EVRUN_ONCE);                                                              \
        ev_timer_stop(loop, &dl_);                                                                 \
        if (!(cond))                                                                               \
            fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);       \
        TB_CHECK(cond);                                                                            \
    } while (0)

/* Lets the loop run for secs whatever happens. */
static void settle(double secs)
{
    ev_timer dl;
    expired_flag = 0;
    ev_timer_init(&dl, on_deadline, secs, 0.);
    ev_timer_start(loop, &dl);
    while (!expired_flag)
        ev_run(loop, EVRUN_ONCE);
}

/* ------------------------------------------------------------------ tests */

static void exchange(node *a, node *b)
{
    const char *hello = "hello over a stream";
    int msgs = a->msgs;
    TB_CHECK_EQ(tb_quic_send_stream_to(b->ep, a->name, (const uint8_t *)hello, strlen(hello)),
                TB_OK);
    WAIT(a->msgs == msgs + 1, 5);
    TB_CHECK_EQ(a->msglen, strlen(hello));
    TB_CHECK_MEM(a->msg, hello, strlen(hello));

    const char *ping = "datagram";
    int dgrams = b->dgrams;
    uint64_t before = tb_clock_mono(tb_clock_system());
    TB_CHECK_EQ(tb_quic_send_datagram_to(a->ep, b->name, (const uint8_t *)ping, strlen(ping)),
                TB_OK);
    WAIT(b->dgrams == dgrams + 1, 5);
    TB_CHECK_EQ(b->msglen, strlen(ping));
    TB_CHECK_MEM(b->msg, ping, strlen(ping));
    TB_CHECK(b->dgram_rx_mono >= before);
}

static void connect_pair(const char *la, const char *lb, int retry)
{
    node a, b;
    opts oa = {.listen = la, .cert = "alpha", .retry = retry};
    opts ob = {.listen = lb, .cert = "bravo", .retry = retry};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    TB_CHECK_STR(b.peer.name, "alpha");
    TB_CHECK_STR(b.peer.region, "eu");
    TB_CHECK_STR(a.peer.name, "bravo");
    TB_CHECK_STR(a.peer.region, "us");
    TB_CHECK_EQ(b.peer.dialled, 1);
    TB_CHECK_EQ(a.peer.dialled, 0);
    TB_CHECK(a.peer.not_after > 0);
    if (retry)
        TB_CHECK(tb_quic_endpoint_stats(a.ep)->retries_sent >= 1);
    else
        TB_CHECK_EQ(tb_quic_endpoint_stats(a.ep)->retries_sent, 0);
    exchange(&a, &b);
    exchange(&b, &a);

    /* Clean stop: the peer sees our CONNECTION_CLOSE with the shutdown code; on_closed comes
     * before on_shutdown, which may destroy the endpoint. */
    a.destroy_on_shutdown = 1;
    tb_quic_endpoint_shutdown(a.ep);
    TB_CHECK_EQ(a.closed, 0); /* reported from the loop, not from inside the call */
    WAIT(a.shutdown_done && b.closed == 1, 5);
    TB_CHECK(a.ep == NULL);
    TB_CHECK_EQ(a.closed, 1);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_PEER);
    TB_CHECK_EQ(b.last_close.app, 1);
    TB_CHECK_EQ(b.last_close.code, TB_QUIC_APP_SHUTDOWN);
    TB_CHECK_EQ(b.last_close.was_connected, 1);
    TB_CHECK_EQ(a.last_close.reason, TB_QUIC_CLOSED_LOCAL);
    node_stop(&a);
    node_stop(&b);
}

static void test_connect_ipv4_retry(void)
{
    connect_pair("127.0.0.11:0", "127.0.0.12:0", -1);
}

static void test_connect_ipv6_no_retry(void)
{
    connect_pair("[::1]:0", "[::1]:0", 0);
}

/* A client that the server refuses: the server reports the reason, the client sees a refusal. */
static void refused_client(const char *cert, const char *ca, tb_quic_refusal want,
                           const char *logged)
{
    node a, c;
    opts oa = {.listen = "127.0.0.13:0", .cert = "alpha"};
    opts oc = {.listen = "127.0.0.14:0",
               .cert = cert,
               .ca = ca,
               .name = "client",
               .mode = TB_QUIC_MODE_CLIENT};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &c, &oc, "alpha", addr) == TB_OK);
    WAIT(a.refused == 1 && c.closed == 1, 10);
    TB_CHECK_EQ(a.last_refusal, want);
    TB_CHECK_EQ(tb_quic_endpoint_stats(a.ep)->refused[want], 1);
    TB_CHECK(strstr(a.loglines, logged) != NULL);
    TB_CHECK(strstr(a.loglines, "127.0.0.14:") != NULL);
    TB_CHECK_EQ(a.connected, 0);
    TB_CHECK_EQ(c.connected, 0);
    TB_CHECK_EQ(c.last_close.reason, TB_QUIC_CLOSED_REFUSED);
    TB_CHECK_EQ(c.last_close.refusal, TB_QUIC_REFUSE_BY_PEER);
    TB_CHECK_EQ(c.last_close.code & ~0xffULL, 0x100);
    node_stop(&a);
    node_stop(&c);
}

static void test_refuse_no_client_cert(void)
{
    refused_client("", NULL, TB_QUIC_REFUSE_NO_CERT, "refused peer 127.0.0.14");
}

static void test_refuse_foreign_ca(void)
{
    /* The client trusts the mesh CA, but its own certificate comes from another one. */
    refused_client("foreign", "ca", TB_QUIC_REFUSE_UNTRUSTED, "untrusted certificate");
}

static void test_refuse_expired(void)
{
    refused_client("expired", "ca", TB_QUIC_REFUSE_EXPIRED, "expired certificate");
}

static void test_refuse_missing_client_auth(void)
{
    refused_client("noclient", "ca", TB_QUIC_REFUSE_PURPOSE, "wrong key purpose");
}

static void test_refuse_ca_as_leaf(void)
{
    /* The mesh CA's own certificate (and key) presented as a node's: the reason is named. */
    refused_client("ca", "ca", TB_QUIC_REFUSE_IDENTITY, "peer certificate refused: it is a CA");
    refused_client("subca", "ca", TB_QUIC_REFUSE_IDENTITY, "peer certificate refused: it is a CA");
}

/* The dialling side refuses: the server's name is not the one dialled, or its CA is foreign. */
static void refused_server(const char *server_cert, const char *expected, tb_quic_refusal want)
{
    node a, b;
    opts oa = {.listen = "127.0.0.15:0", .cert = server_cert, .name = "srv"};
    opts ob = {.listen = "127.0.0.16:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, expected, addr) == TB_OK);
    WAIT(b.refused == 1 && a.closed == 1, 10);
    TB_CHECK_EQ(b.last_refusal, want);
    TB_CHECK_EQ(tb_quic_endpoint_stats(b.ep)->refused[want], 1);
    TB_CHECK(strstr(b.loglines, tb_quic_refusal_name(want)) != NULL);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_REFUSED);
    TB_CHECK_EQ(a.last_close.reason, TB_QUIC_CLOSED_REFUSED);
    TB_CHECK_EQ(a.last_close.refusal, TB_QUIC_REFUSE_BY_PEER);
    TB_CHECK_EQ(a.connected + b.connected, 0);
    node_stop(&a);
    node_stop(&b);
}

static void test_refuse_name_mismatch(void)
{
    refused_server("charlie", "alpha", TB_QUIC_REFUSE_NAME);
}

static void test_refuse_foreign_server(void)
{
    refused_server("foreign", NULL, TB_QUIC_REFUSE_UNTRUSTED);
}

static pid_t spawn_gtlsclient(const char *host, const char *port, const char *out)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("gtlsclient", "gtlsclient", "--exit-on-all-streams-close", host, port,
               "https://localhost/", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int child_done(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

/* A third-party QUIC client offering only h3 is refused; the mesh connection keeps working. */
static void test_gtlsclient_refused(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.17:0", .cert = "alpha", .retry = 0};
    opts ob = {.listen = "127.0.0.18:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);

    char out[256];
    snprintf(out, sizeof(out), "%s/gtlsclient.out", dir);
    const char *port = strrchr(addr, ':') + 1;
    pid_t pid = spawn_gtlsclient("127.0.0.17", port, out);
    TB_REQUIRE(pid > 0);
    int status = 0, done = 0;
    WAIT(a.refused == 1, 10);
    /* It lingers in its draining period; it need not exit by itself. */
    ev_timer dl;
    expired_flag = 0;
    ev_timer_init(&dl, on_deadline, 3., 0.);
    ev_timer_start(loop, &dl);
    while (!(done = child_done(pid, &status)) && !expired_flag)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &dl);
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    TB_CHECK_EQ(a.last_refusal, TB_QUIC_REFUSE_ALPN);
    TB_CHECK(strstr(a.loglines, "wrong ALPN") != NULL);
    /* gtlsclient exits 0 even on failure: its output must show the close, not a handshake. */
    char text[8192] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    TB_CHECK(strstr(text, "Negotiated ALPN") == NULL);
    TB_CHECK(strstr(text, "CONNECTION_CLOSE") != NULL && strstr(text, "0x178") != NULL);
    if (getenv("TB_TEST_VERBOSE"))
        fprintf(stderr, "gtlsclient said:\n%s\n", text);
    TB_CHECK_EQ(a.connected, 1);
    exchange(&a, &b);
    node_stop(&a);
    node_stop(&b);
}

/* Both dial at once: both keep the connection alpha dialled (alpha sorts first). */
static void test_simultaneous_dial(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.19:0", .cert = "alpha", .retry = 0};
    opts ob = {.listen = "127.0.0.20:0", .cert = "bravo", .retry = 0};
    TB_REQUIRE(node_start(&a, &oa) == TB_OK);
    TB_REQUIRE(node_start(&b, &ob) == TB_OK);
    char aa[TB_QUIC_ADDRSTR_MAX], ba[TB_QUIC_ADDRSTR_MAX];
    addr_of(&a, aa, sizeof(aa));
    addr_of(&b, ba, sizeof(ba));
    TB_CHECK_EQ(tb_quic_dial(a.ep, ba, "bravo", NULL), TB_OK);
    TB_CHECK_EQ(tb_quic_dial(b.ep, aa, "alpha", NULL), TB_OK);
    WAIT(a.closed >= 1 && b.closed >= 1, 10);
    settle(0.5);
    tb_quic_conn *ca = tb_quic_find_peer(a.ep, "bravo");
    tb_quic_conn *cb = tb_quic_find_peer(b.ep, "alpha");
    TB_REQUIRE(ca && cb);
    TB_CHECK_EQ(tb_quic_conn_peer(ca)->dialled, 1);
    TB_CHECK_EQ(tb_quic_conn_peer(cb)->dialled, 0);
    /* Exactly one live connection on each side. */
    TB_CHECK_EQ(a.live, 1);
    TB_CHECK_EQ(b.live, 1);
    TB_CHECK_EQ(a.last_close.reason, TB_QUIC_CLOSED_DUPLICATE);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_DUPLICATE);
    exchange(&a, &b);
    exchange(&b, &a);
    node_stop(&a);
    node_stop(&b);
}

/* Issue 10: a peer stopped (SIGSTOP) and resumed. Its old connection, which the lower name
 * (alpha) dialled, is dead but not yet timed out at bravo when bravo dials the peer again: the
 * fresh connection is kept, not the one the lower name dialled. */
static void test_stale_duplicate(void)
{
    node a, b, a2;
    opts oa = {.listen = "127.0.0.19:0", .cert = "alpha", .retry = 0};
    opts ob = {.listen = "127.0.0.20:0", .cert = "bravo", .retry = 0};
    opts oa2 = {.listen = "127.0.0.21:0", .cert = "alpha", .retry = 0};
    char addr[TB_QUIC_ADDRSTR_MAX], addr2[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&b, &ob, &a, &oa, "bravo", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    node_stop(&a); /* silent, like a stopped process */
    settle(2.5);
    TB_REQUIRE(node_start(&a2, &oa2) == TB_OK);
    addr_of(&a2, addr2, sizeof(addr2));
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr2, "alpha", NULL), TB_OK);
    WAIT(b.connected == 2 && b.closed == 1, 10);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_DUPLICATE);
    TB_CHECK_EQ(b.live, 1);
    tb_quic_conn *cb = tb_quic_find_peer(b.ep, "alpha");
    TB_REQUIRE(cb);
    TB_CHECK_EQ(tb_quic_conn_peer(cb)->dialled, 1); /* the fresh one */
    exchange(&a2, &b);
    node_stop(&a2);
    node_stop(&b);
}

static void test_oversized_message_dropped(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.21:0", .cert = "alpha", .max_msg = 1000};
    opts ob = {.listen = "127.0.0.22:0", .cert = "bravo", .max_msg = 100000};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    static uint8_t big[50000];
    memset(big, 0xab, sizeof(big));
    TB_CHECK_EQ(tb_quic_send_stream_to(b.ep, "alpha", big, sizeof(big)), TB_OK);
    WAIT(tb_quic_endpoint_stats(a.ep)->msgs_dropped_oversized == 1, 5);
    TB_CHECK_EQ(a.msgs, 0);
    /* Exactly at the limit still passes, and the connection is unharmed. */
    TB_CHECK_EQ(tb_quic_send_stream_to(b.ep, "alpha", big, 1000), TB_OK);
    WAIT(a.msgs == 1, 5);
    TB_CHECK_EQ(a.msglen, 1000);
    /* The sender enforces its own limit too. */
    TB_CHECK_EQ(tb_quic_send_stream_to(a.ep, "bravo", big, 1001), TB_ERR_TOO_BIG);
    exchange(&a, &b);
    node_stop(&a);
    node_stop(&b);
}

/* Far more messages than the peer's stream limit, over time, on one connection: every stream
 * must be closed and its credit returned (ngtcp2 0.12.1 never closes remote unidirectional
 * streams, which once stalled a connection after 128 messages). */
static void test_many_messages_one_connection(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.23:0", .cert = "alpha"};
    opts ob = {.listen = "127.0.0.24:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    const uint8_t msg[] = "tick";
    for (int i = 1; i <= 1000; i++) {
        TB_CHECK_EQ(tb_quic_send_stream_to(b.ep, "alpha", msg, sizeof(msg)), TB_OK);
        TB_CHECK_EQ(tb_quic_send_stream_to(a.ep, "bravo", msg, sizeof(msg)), TB_OK);
        if (i % 50 == 0) {
            WAIT(a.msgs == i && b.msgs == i, 5);
            if (a.msgs != i || b.msgs != i)
                break;
        }
    }
    TB_CHECK_EQ(a.msgs, 1000);
    TB_CHECK_EQ(b.msgs, 1000);
    TB_CHECK_EQ(tb_quic_endpoint_stats(a.ep)->msgs_dropped_malformed, 0);
    node_stop(&a);
    node_stop(&b);
}

/* b dials a ("alpha") and both are connected: b's connection to a, or NULL. */
static tb_quic_conn *connected_pair(node *a, const opts *oa, node *b, const opts *ob, char *addr)
{
    if (pair_dial(a, oa, b, ob, "alpha", addr) != TB_OK)
        return NULL;
    WAIT(a->connected == 1 && b->connected == 1, 10);
    return tb_quic_find_peer(b->ep, "alpha");
}

/* Frames that lie about their length are dropped and counted; the connection stays. */
static void test_malformed_frames_dropped(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.35:0", .cert = "alpha", .max_msg = 1000};
    opts ob = {.listen = "127.0.0.36:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    tb_quic_conn *cb = connected_pair(&a, &oa, &b, &ob, addr);
    TB_REQUIRE(cb);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    /* Bytes after the announced length. */
    const uint8_t trailing[] = {0, 0, 0, 2, 'o', 'k', 'x'};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, trailing, sizeof(trailing)), TB_OK);
    WAIT(st->msgs_dropped_malformed == 1, 5);
    /* FIN before the announced length. */
    const uint8_t short_body[] = {0, 0, 0, 9, 'a', 'b'};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, short_body, sizeof(short_body)), TB_OK);
    WAIT(st->msgs_dropped_malformed == 2, 5);
    /* An empty message, and a header cut short. */
    const uint8_t empty[] = {0, 0, 0, 0};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, empty, sizeof(empty)), TB_OK);
    WAIT(st->msgs_dropped_malformed == 3, 5);
    const uint8_t cut[] = {0, 0};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, cut, sizeof(cut)), TB_OK);
    WAIT(st->msgs_dropped_malformed == 4, 5);
    /* A huge announced length is refused at its header, before any body arrives. */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 1};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, huge, sizeof(huge)), TB_OK);
    WAIT(st->msgs_dropped_oversized == 1, 5);
    TB_CHECK_EQ(a.msgs, 0);
    /* A well-formed raw frame is a message like any other. */
    const uint8_t good[] = {0, 0, 0, 2, 'o', 'k'};
    TB_CHECK_EQ(tb_quic_send_stream_raw(cb, good, sizeof(good)), TB_OK);
    WAIT(a.msgs == 1, 5);
    TB_CHECK_EQ(a.msglen, 2);
    TB_CHECK_EQ(a.closed + b.closed, 0);
    exchange(&a, &b);
    node_stop(&a);
    node_stop(&b);
}

static int count_lines(const node *n, const char *what)
{
    int k = 0;
    for (const char *p = n->loglines; (p = strstr(p, what)) != NULL; p++)
        k++;
    return k;
}

/* 300 outsiders without a certificate pass Retry and stall, from five addresses in two /24s.
 * The half-open limits hold, the established peer stays, a new peer from elsewhere gets in,
 * the stalled handshakes are dropped at their deadline, and the log stays short. */
static void test_handshake_flood(void)
{
    node a, b, c, x[5];
    opts oa = {.listen = "127.0.1.1:0",
               .cert = "alpha",
               .retry = 1,
               .max_conns = 128,
               .max_half_open = 32,
               .per_addr = 8,
               .per_prefix = 12,
               .half_open_ns = 2 * 1000000000ULL};
    opts ob = {.listen = "127.0.2.1:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    static const char *const sources[5] = {"127.0.0.51:0", "127.0.0.52:0", "127.0.0.53:0",
                                           "127.0.4.51:0", "127.0.4.52:0"};
    for (int i = 0; i < 5; i++) {
        opts ox = {.listen = sources[i],
                   .cert = "",
                   .name = "outsider",
                   .mode = TB_QUIC_MODE_CLIENT,
                   .connect_timeout_ns = 30 * 1000000000ULL};
        TB_REQUIRE(node_start(&x[i], &ox) == TB_OK);
        tb_quic_endpoint_stall_handshakes(x[i].ep);
        for (int k = 0; k < 60; k++)
            TB_CHECK_EQ(tb_quic_dial(x[i].ep, addr, NULL, NULL), TB_OK);
    }
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    WAIT(st->admission[TB_QUIC_ADMIT_PER_ADDR] > 0 && st->admission[TB_QUIC_ADMIT_PER_PREFIX] > 0,
         5);
    opts oc = {.listen = "127.0.3.1:0", .cert = "charlie"};
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(c.connected == 1, 10);
    settle(2.5); /* past the half-open deadline, while the outsiders retransmit */
    TB_CHECK(st->half_open_timeouts > 0);
    TB_CHECK(st->half_open_peak >= 12);
    TB_CHECK(st->half_open_peak <= 2 * 12 + 1); /* two outsider /24s, and charlie */
    TB_CHECK_EQ(b.live, 1);
    TB_CHECK_EQ(c.live, 1);
    exchange(&a, &b);
    exchange(&a, &c);
    uint64_t refused = 0;
    for (int i = 0; i < TB_QUIC_ADMIT_COUNT; i++)
        refused += st->admission[i];
    /* Hundreds of refusals and dropped handshakes, a few dozen lines. */
    TB_CHECK(refused + st->half_open_timeouts > 100);
    TB_CHECK(a.nlines < 60);
    fprintf(stderr, "flood: %llu refused, %llu half-open dropped, peak %llu, %d log lines\n",
            (unsigned long long)refused, (unsigned long long)st->half_open_timeouts,
            (unsigned long long)st->half_open_peak, a.nlines);
    for (int i = 0; i < 5; i++)
        node_stop(&x[i]);
    node_stop(&c);
    node_stop(&b);
    node_stop(&a);
}

/* Outsiders from six /24s, each under its per-address and per-prefix share, together fill
 * the half-open table: a new peer still gets in, in the slot of the oldest handshake of the
 * prefix holding the most. */
static void test_handshake_flood_many_prefixes(void)
{
    node a, c, x[6];
    opts oa = {.listen = "127.0.20.1:0",
               .cert = "alpha",
               .retry = 1,
               .max_conns = 64,
               .max_half_open = 8,
               .per_addr = 2,
               .per_prefix = 4,
               .half_open_ns = 3 * 1000000000ULL};
    TB_REQUIRE(node_start(&a, &oa) == TB_OK);
    char addr[TB_QUIC_ADDRSTR_MAX];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    TB_REQUIRE(tb_quic_endpoint_local_addr(a.ep, &ss, &sl) == TB_OK);
    tb_addr_format_sockaddr((const struct sockaddr *)&ss, addr, sizeof(addr));
    for (int i = 0; i < 6; i++) {
        char listen[32];
        snprintf(listen, sizeof(listen), "127.0.%d.1:0", 21 + i);
        opts ox = {.listen = listen,
                   .cert = "",
                   .name = "outsider",
                   .mode = TB_QUIC_MODE_CLIENT,
                   .connect_timeout_ns = 30 * 1000000000ULL};
        TB_REQUIRE(node_start(&x[i], &ox) == TB_OK);
        tb_quic_endpoint_stall_handshakes(x[i].ep);
        for (int k = 0; k < 10; k++)
            TB_CHECK_EQ(tb_quic_dial(x[i].ep, addr, NULL, NULL), TB_OK);
    }
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    WAIT(st->half_open == 8, 5);
    opts oc = {.listen = "127.0.27.1:0", .cert = "charlie"};
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(c.connected == 1, 5);
    TB_CHECK(st->half_open_evicted >= 1);
    TB_CHECK(st->half_open_peak <= 8);
    fprintf(stderr, "flood from 6 prefixes: %llu half-open evicted for the newcomer\n",
            (unsigned long long)st->half_open_evicted);
    for (int i = 0; i < 6; i++)
        node_stop(&x[i]);
    node_stop(&c);
    node_stop(&a);
}

/* Starts n outsiders at 127.0.BASE+i.1, each stalling `per` handshakes with addr. */
static void outsiders_flood(node *x, int n, int base, int per, const char *addr)
{
    for (int i = 0; i < n; i++) {
        char listen[32];
        snprintf(listen, sizeof(listen), "127.0.%d.1:0", base + i);
        opts ox = {.listen = listen,
                   .cert = "",
                   .name = "outsider",
                   .mode = TB_QUIC_MODE_CLIENT,
                   .connect_timeout_ns = 30 * 1000000000ULL};
        TB_REQUIRE(node_start(&x[i], &ox) == TB_OK);
        tb_quic_endpoint_stall_handshakes(x[i].ep);
        for (int k = 0; k < per; k++)
            TB_CHECK_EQ(tb_quic_dial(x[i].ep, addr, NULL, NULL), TB_OK);
    }
}

/* alpha under a flood: its tables, and handshakes kept past the test's length. */
static opts flood_target(const char *listen, size_t max_conns, size_t max_half_open)
{
    return (opts){.listen = listen,
                  .cert = "alpha",
                  .retry = 1,
                  .max_conns = max_conns,
                  .max_half_open = max_half_open,
                  .per_addr = 2,
                  .per_prefix = 4,
                  .half_open_ns = 20 * 1000000000ULL,
                  .connect_timeout_ns = 20 * 1000000000ULL};
}

/* Outsiders from eight /24s, one handshake each, fill the half-open table so that no prefix
 * holds more than a stranger's would: a stranger is refused, but a peer that was connected
 * before and a configured peer each get in, in the slot of an outsider's handshake. */
static void test_handshake_flood_configured_peer(void)
{
    node a, b, c, x[9];
    opts oa = flood_target("127.0.30.1:0", 64, 8);
    opts ob = {.listen = "127.0.41.1:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    tb_quic_close(b.conn, TB_QUIC_APP_NO_ERROR);
    WAIT(a.closed == 1 && b.closed == 1, 5);
    outsiders_flood(x, 8, 31, 1, addr);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    WAIT(st->half_open == 8, 5);
    opts oc = {.listen = "127.0.40.1:0", .cert = "charlie"};
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(c.closed == 1, 5);
    TB_CHECK_EQ(c.connected, 0);
    TB_CHECK(st->admission[TB_QUIC_ADMIT_HALF_OPEN_FULL] >= 1);
    /* bravo was connected a moment ago: it has room. */
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr, "alpha", NULL), TB_OK);
    WAIT(b.connected == 2, 5);
    outsiders_flood(&x[8], 1, 39, 1, addr); /* the table full again */
    WAIT(st->half_open == 8, 5);
    /* charlie becomes a configured peer: it has room too. */
    TB_CHECK_EQ(tb_quic_endpoint_prefer(a.ep, "127.0.40.1:4433"), TB_OK);
    TB_CHECK_EQ(tb_quic_endpoint_prefer(a.ep, "peer.example:4433"), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(c.connected == 1, 5);
    TB_CHECK(st->preferred_room >= 2);
    TB_CHECK(st->half_open_peak <= 8);
    exchange(&a, &c);
    fprintf(stderr, "flood from 8 prefixes: stranger refused, %llu configured/known peers let in\n",
            (unsigned long long)st->preferred_room);
    for (int i = 0; i < 9; i++)
        node_stop(&x[i]);
    node_stop(&c);
    node_stop(&b);
    node_stop(&a);
}

/* A connection table of 4: with the configured peer charlie not connected, one slot is kept
 * for it, so an established peer and outsiders' handshakes never fill the table. */
static void test_table_keeps_room_for_configured(void)
{
    node a, b, c, x[3];
    opts oa = flood_target("127.0.50.1:0", 4, 3);
    opts ob = {.listen = "127.0.51.1:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    TB_CHECK_EQ(tb_quic_endpoint_prefer(a.ep, "127.0.55.1:0"), TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    outsiders_flood(x, 3, 52, 1, addr);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    WAIT(st->admission[TB_QUIC_ADMIT_TABLE_FULL] >= 1, 5);
    TB_CHECK_EQ(st->half_open, 2);
    opts oc = {.listen = "127.0.55.1:0", .cert = "charlie"};
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(c.connected == 1, 5);
    TB_CHECK_EQ(b.live, 1);
    exchange(&a, &c);
    for (int i = 0; i < 3; i++)
        node_stop(&x[i]);
    node_stop(&c);
    node_stop(&b);
    node_stop(&a);
}

/* Penalties decay, one per interval: a peer with a fault every two minutes is never
 * disconnected, one with 16 in a minute is. A repeat offender's ban doubles up to the cap. */
static void test_penalty_decay_and_ban_backoff(void)
{
    const uint64_t s = 1000000000ULL, min = 60 * s;
    uint64_t since = 0;
    TB_CHECK_EQ(tb_quic_penalty_decay(5, &since, min, 150 * s), 3);
    TB_CHECK_EQ(since, 120 * s);
    TB_CHECK_EQ(tb_quic_penalty_decay(3, &since, min, 170 * s), 3); /* within the interval */
    TB_CHECK_EQ(tb_quic_penalty_decay(3, &since, min, 100 * min), 0);
    TB_CHECK_EQ(since, 100 * min);
    TB_CHECK_EQ(tb_quic_penalty_decay(2, &since, min, 10 * s), 2); /* clock went back */
    TB_CHECK_EQ(since, 10 * s);
    /* A day of one fault per two minutes, as tb_quic_conn_penalize counts them. */
    unsigned p = 0, most = 0;
    since = 0;
    for (uint64_t t = 0; t < 24 * 60 * min; t += 2 * min) {
        p = tb_quic_penalty_decay(p, &since, min, t) + 1;
        most = p > most ? p : most;
    }
    TB_CHECK(most < 16);
    /* 16 in a minute add up. */
    p = 0, since = 0;
    for (uint64_t k = 0; k < 16; k++)
        p = tb_quic_penalty_decay(p, &since, min, k * 3 * s) + 1;
    TB_CHECK_EQ(p, 16);
    const uint64_t ban = 10 * min, cap = 6 * 60 * min;
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 1), ban);
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 2), 2 * ban);
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 3), 4 * ban);
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 6), 320 * min);
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 7), cap);
    TB_CHECK_EQ(tb_quic_ban_length(ban, cap, 64), cap);
    TB_CHECK_EQ(tb_quic_ban_length(UINT64_MAX / 2 + 1, UINT64_MAX, 3), UINT64_MAX);
}

/* Banned for 1 s, back with junk again: banned for 2 s (refused still at 1.5 s). */
static void test_repeat_offender_ban_doubles(void)
{
    node a, b;
    opts oa = {.listen = "127.0.60.1:0",
               .cert = "alpha",
               .max_penalties = 4,
               .ban_ns = 1000000000ULL,
               .ban_max_ns = 60 * 1000000000ULL};
    opts ob = {.listen = "127.0.60.2:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    tb_quic_conn *cb = connected_pair(&a, &oa, &b, &ob, addr);
    TB_REQUIRE(cb);
    const uint8_t empty[] = {0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        TB_CHECK_EQ(tb_quic_send_stream_raw(cb, empty, sizeof(empty)), TB_OK);
    WAIT(b.closed == 1, 10);
    TB_CHECK_EQ(count_lines(&a, "refusing it for 1 s"), 1);
    settle(1.2);
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr, "alpha", NULL), TB_OK);
    WAIT(b.connected == 2, 5);
    for (int i = 0; i < 8; i++)
        TB_CHECK_EQ(tb_quic_send_stream_raw(b.conn, empty, sizeof(empty)), TB_OK);
    WAIT(b.closed == 2, 10);
    TB_CHECK_EQ(count_lines(&a, "refusing it for 2 s"), 1);
    settle(1.5);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    uint64_t banned = st->admission[TB_QUIC_ADMIT_BANNED];
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr, "alpha", NULL), TB_OK);
    WAIT(b.closed == 3, 5);
    TB_CHECK_EQ(st->admission[TB_QUIC_ADMIT_BANNED], banned + 1);
    TB_CHECK_EQ(b.connected, 2);
    node_stop(&a);
    node_stop(&b);
}

/* 200 messages announcing 65,536 bytes, 65,000 sent, never finished: at most max_streams_in
 * are open at once, each is reset at its deadline, and the peer is disconnected and banned. */
static void test_unfinished_streams(void)
{
    node a, b;
    opts oa = {.listen = "127.0.5.1:0",
               .cert = "alpha",
               .stream_timeout_ns = 1000000000ULL,
               .max_penalties = 16};
    opts ob = {.listen = "127.0.5.2:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    tb_quic_conn *cb = connected_pair(&a, &oa, &b, &ob, addr);
    TB_REQUIRE(cb);
    static uint8_t part[4 + 65000];
    part[0] = 0, part[1] = 1, part[2] = 0, part[3] = 0; /* 65,536 announced */
    for (int i = 0; i < 200; i++)
        TB_CHECK_EQ(tb_quic_send_stream_unfinished(cb, part, sizeof(part)), TB_OK);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    WAIT(a.closed == 1 && b.closed == 1, 10);
    TB_CHECK(st->buffered_peak <= 16 * 65536);
    fprintf(stderr, "unfinished: peak %llu bytes buffered, %llu streams reset\n",
            (unsigned long long)st->buffered_peak, (unsigned long long)st->streams_stalled);
    TB_CHECK(st->streams_stalled >= 1);
    TB_CHECK_EQ(st->peers_banned, 1);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_PEER);
    TB_CHECK_EQ(b.last_close.code, TB_QUIC_APP_MISBEHAVING);
    node_stop(&a);
    node_stop(&b);
}

/* 140 junk frames: the connection is closed at max_penalties, the log stays short, and the
 * peer is refused when it comes back, by address and by certificate. */
static void test_junk_close_and_ban(void)
{
    node a, b;
    opts oa = {.listen = "127.0.6.1:0", .cert = "alpha", .max_penalties = 16};
    opts ob = {.listen = "127.0.6.2:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    tb_quic_conn *cb = connected_pair(&a, &oa, &b, &ob, addr);
    TB_REQUIRE(cb);
    const uint8_t empty[] = {0, 0, 0, 0};
    for (int i = 0; i < 140; i++)
        TB_CHECK_EQ(tb_quic_send_stream_raw(cb, empty, sizeof(empty)), TB_OK);
    WAIT(a.closed == 1 && b.closed == 1, 10);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    TB_CHECK(st->msgs_dropped_malformed >= 16);
    TB_CHECK(st->msgs_dropped_malformed < 140);
    TB_CHECK_EQ(b.last_close.code, TB_QUIC_APP_MISBEHAVING);
    TB_CHECK(count_lines(&a, "dropped message") <= 5);
    TB_CHECK_EQ(count_lines(&a, "refusing it for 600 s"), 1);
    /* Back from the same address: refused before any handshake. */
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr, "alpha", NULL), TB_OK);
    WAIT(b.closed == 2, 10);
    TB_CHECK_EQ(st->admission[TB_QUIC_ADMIT_BANNED], 1);
    TB_CHECK_EQ(a.connected, 1);
    /* Back from another address with the same certificate: refused at the handshake. */
    node b2;
    opts ob2 = {.listen = "127.0.7.2:0", .cert = "bravo"};
    TB_REQUIRE(node_start(&b2, &ob2) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial(b2.ep, addr, "alpha", NULL), TB_OK);
    WAIT(b2.closed == 1, 10);
    TB_CHECK_EQ(st->refused[TB_QUIC_REFUSE_BANNED], 1);
    TB_CHECK_EQ(a.connected, 1);
    node_stop(&b2);
    node_stop(&a);
    node_stop(&b);
}

/* Runs the loop until the raw socket fd has a datagram (3 s at most); its length or -1. */
static ssize_t recv_raw(int fd, uint8_t *buf, size_t len)
{
    ssize_t n;
    ev_timer dl;
    expired_flag = 0;
    ev_timer_init(&dl, on_deadline, 3., 0.);
    ev_timer_start(loop, &dl);
    while ((n = recv(fd, buf, len, 0)) < 0 && !expired_flag)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &dl);
    return n;
}

/* A long-header packet of an unknown version, as a client of another QUIC version sends it:
 * a server answers with Version Negotiation listing v1; a short one gets nothing. */
static void test_version_negotiation(void)
{
    node a;
    opts oa = {.listen = "127.0.0.40:0", .cert = "alpha"};
    TB_REQUIRE(node_start(&a, &oa) == TB_OK);
    struct sockaddr_storage sa;
    socklen_t salen;
    TB_REQUIRE(tb_quic_endpoint_local_addr(a.ep, &sa, &salen) == TB_OK);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    TB_REQUIRE(fd >= 0);
    uint8_t pkt[1200] = {0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 1, 2, 3, 4, 5, 6, 7, 8, 4, 9, 9, 9, 9};
    TB_CHECK(sendto(fd, pkt, 100, 0, (struct sockaddr *)&sa, salen) == 100);
    TB_CHECK(sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sa, salen) == sizeof(pkt));
    uint8_t in[1500];
    ssize_t n = recv_raw(fd, in, sizeof(in));
    /* Version 0, our CIDs swapped back, then the supported version list: v1 only. */
    TB_REQUIRE(n == 1 + 4 + 1 + 4 + 1 + 8 + 4);
    TB_CHECK(in[0] & 0x80);
    TB_CHECK_EQ(in[1] | in[2] | in[3] | in[4], 0);
    TB_CHECK_EQ(in[5], 4);
    TB_CHECK_MEM(in + 6, pkt + 15, 4);
    TB_CHECK_EQ(in[10], 8);
    TB_CHECK_MEM(in + 11, pkt + 6, 8);
    TB_CHECK_EQ(in[19] << 24 | in[20] << 16 | in[21] << 8 | in[22], 1);
    /* Only one answer: the 100-byte packet got none. */
    settle(0.2);
    TB_CHECK(recv(fd, in, sizeof(in), 0) < 0);
    close(fd);
    node_stop(&a);
}

/* An Initial carrying a forged Retry token is refused with INVALID_TOKEN and counted. */
static void test_forged_retry_token(void)
{
    node a;
    opts oa = {.listen = "127.0.0.41:0", .cert = "alpha", .retry = 1};
    TB_REQUIRE(node_start(&a, &oa) == TB_OK);
    struct sockaddr_storage sa;
    socklen_t salen;
    TB_REQUIRE(tb_quic_endpoint_local_addr(a.ep, &sa, &salen) == TB_OK);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    TB_REQUIRE(fd >= 0);
    /* Initial v1: DCID 8, SCID 8, a 40-byte token with the Retry magic, length 1134. */
    uint8_t pkt[1200] = {0xc3, 0, 0,  0,  1,  8,  1,  2,  3,  4,  5,  6,   7,
                         8,    8, 11, 12, 13, 14, 15, 16, 17, 18, 40, 0xb6};
    memset(pkt + 25, 0x77, 39);
    pkt[64] = 0x44;
    pkt[65] = 0x6e;
    TB_CHECK(sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sa, salen) == sizeof(pkt));
    WAIT(tb_quic_endpoint_stats(a.ep)->retry_tokens_bad == 1, 3);
    uint8_t in[1500];
    ssize_t n = recv_raw(fd, in, sizeof(in));
    /* A long-header Initial v1 back to our SCID (the CONNECTION_CLOSE is encrypted). */
    TB_REQUIRE(n > 23);
    TB_CHECK_EQ(in[0] & 0xb0, 0x80);
    TB_CHECK_EQ(in[1] | in[2] | in[3], 0);
    TB_CHECK_EQ(in[4], 1);
    TB_CHECK_EQ(in[5], 8);
    TB_CHECK_MEM(in + 6, pkt + 15, 8);
    TB_CHECK_EQ(a.connected + a.closed, 0);
    TB_CHECK_EQ(tb_quic_endpoint_stats(a.ep)->accepted, 0);
    close(fd);
    node_stop(&a);
}

/* Modes and API misuse. */
static void test_modes(void)
{
    node s, c, h;
    uint64_t ms = 1000000;
    opts os = {.listen = "127.0.0.37:0", .cert = "alpha", .mode = TB_QUIC_MODE_SERVER};
    opts oc = {.listen = "127.0.0.38:0", .cert = "bravo", .mode = TB_QUIC_MODE_CLIENT};
    opts oh = {.listen = "127.0.0.39:0", .cert = "charlie", .connect_timeout_ns = 500 * ms};
    TB_REQUIRE(node_start(&s, &os) == TB_OK);
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    TB_REQUIRE(node_start(&h, &oh) == TB_OK);
    char sa[TB_QUIC_ADDRSTR_MAX], ca[TB_QUIC_ADDRSTR_MAX];
    addr_of(&s, sa, sizeof(sa));
    addr_of(&c, ca, sizeof(ca));
    /* A server does not dial; a client does not accept (the dial times out). */
    TB_CHECK_EQ(tb_quic_dial(s.ep, ca, NULL, NULL), TB_ERR_STATE);
    TB_CHECK_EQ(tb_quic_dial(h.ep, ca, "bravo", NULL), TB_OK);
    WAIT(h.closed == 1, 5);
    TB_CHECK_EQ(h.last_close.reason, TB_QUIC_CLOSED_CONNECT_TIMEOUT);
    TB_CHECK_EQ(c.connected + c.closed, 0);
    TB_CHECK_EQ(tb_quic_dial(c.ep, "[::1]:1", NULL, NULL), TB_ERR_INVAL); /* other family */
    TB_CHECK_EQ(tb_quic_dial(c.ep, "nonsense", NULL, NULL), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_quic_dial(c.ep, sa, "alpha", NULL), TB_OK);
    WAIT(s.connected == 1 && c.connected == 1, 10);
    /* Nothing to send before a connection exists or to an unknown peer; datagrams too big for
     * one packet are refused, not split. */
    TB_CHECK_EQ(tb_quic_send_stream_to(c.ep, "nobody", (const uint8_t *)"x", 1), TB_ERR_NOTFOUND);
    TB_CHECK_EQ(tb_quic_send_stream_to(c.ep, "alpha", (const uint8_t *)"x", 0), TB_ERR_INVAL);
    static uint8_t big[4000];
    TB_CHECK_EQ(tb_quic_send_datagram_to(c.ep, "alpha", big, sizeof(big)), TB_ERR_TOO_BIG);
    memset(big, 0x5a, 1100);
    TB_CHECK_EQ(tb_quic_send_datagram_to(c.ep, "alpha", big, 1100), TB_OK);
    WAIT(s.dgrams == 1, 5);
    TB_CHECK_EQ(s.msglen, 1100);
    TB_CHECK_MEM(s.msg, big, 1100);
    exchange(&s, &c);
    exchange(&c, &s);
    node_stop(&s);
    node_stop(&c);
    node_stop(&h);
}

/* The client's source port changes (NAT rebinding): the server keeps the same connection. */
static void test_migration(void)
{
    node a, b;
    opts oa = {.listen = "127.0.0.23:0", .cert = "alpha"};
    opts ob = {.listen = "127.0.0.24:0", .cert = "bravo", .mode = TB_QUIC_MODE_CLIENT};
    char addr[TB_QUIC_ADDRSTR_MAX], before[TB_QUIC_ADDRSTR_MAX], after[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    tb_quic_conn *ca = tb_quic_find_peer(a.ep, "bravo");
    TB_REQUIRE(ca);
    tb_addr_format_sockaddr((const struct sockaddr *)&tb_quic_conn_peer(ca)->addr, before,
                            sizeof(before));
    TB_CHECK_EQ(tb_quic_endpoint_rebind(b.ep), TB_OK);
    exchange(&a, &b);
    WAIT(tb_quic_endpoint_stats(a.ep)->migrations == 1, 5);
    TB_CHECK(tb_quic_find_peer(a.ep, "bravo") == ca);
    tb_addr_format_sockaddr((const struct sockaddr *)&tb_quic_conn_peer(ca)->addr, after,
                            sizeof(after));
    TB_CHECK(strcmp(before, after) != 0);
    char now[TB_QUIC_ADDRSTR_MAX];
    addr_of(&b, now, sizeof(now));
    TB_CHECK_STR(after, now);
    TB_CHECK_EQ(a.closed + b.closed, 0);
    exchange(&a, &b);
    node_stop(&a);
    node_stop(&b);
}

/* A restarted node (same address, same static secret) resets its old peers' connections. */
static void test_stateless_reset(void)
{
    static const uint8_t secret[TB_QUIC_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    node a, b;
    opts oa = {.listen = "127.0.0.25:0", .cert = "alpha", .secret = secret};
    opts ob = {.listen = "127.0.0.26:0", .cert = "bravo"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "alpha", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    node_stop(&a); /* a crash: no CONNECTION_CLOSE */
    opts oa2 = {.listen = addr, .cert = "alpha", .secret = secret};
    TB_REQUIRE(node_start(&a, &oa2) == TB_OK);
    const char *m = "anyone there?";
    TB_CHECK_EQ(tb_quic_send_stream_to(b.ep, "alpha", (const uint8_t *)m, strlen(m)), TB_OK);
    WAIT(b.closed == 1, 5);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_RESET);
    TB_CHECK(tb_quic_endpoint_stats(a.ep)->stateless_resets_sent >= 1);
    TB_CHECK_EQ(tb_quic_endpoint_stats(b.ep)->stateless_resets_received, 1);
    node_stop(&a);
    node_stop(&b);
}

static void test_idle_timeout_and_keep_alive(void)
{
    node a, b, c;
    uint64_t ms = 1000000;
    opts oa = {.listen = "127.0.0.27:0",
               .cert = "alpha",
               .idle_ns = 400 * ms,
               .keep_alive_ns = UINT64_MAX};
    opts ob = {.listen = "127.0.0.28:0",
               .cert = "bravo",
               .idle_ns = 400 * ms,
               .keep_alive_ns = UINT64_MAX};
    opts oc = {.listen = "127.0.0.29:0",
               .cert = "charlie",
               .idle_ns = 400 * ms,
               .keep_alive_ns = 100 * ms};
    TB_REQUIRE(node_start(&a, &oa) == TB_OK);
    TB_REQUIRE(node_start(&b, &ob) == TB_OK);
    TB_REQUIRE(node_start(&c, &oc) == TB_OK);
    char addr[TB_QUIC_ADDRSTR_MAX];
    addr_of(&a, addr, sizeof(addr));
    TB_CHECK_EQ(tb_quic_dial(b.ep, addr, "alpha", NULL), TB_OK);
    TB_CHECK_EQ(tb_quic_dial(c.ep, addr, "alpha", NULL), TB_OK);
    WAIT(a.connected == 2 && b.connected == 1 && c.connected == 1, 10);
    /* bravo stays silent and times out; charlie's keep-alives hold its connection open. */
    WAIT(b.closed == 1, 5);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_IDLE);
    settle(1.0);
    TB_CHECK_EQ(c.closed, 0);
    TB_CHECK(tb_quic_find_peer(a.ep, "charlie") != NULL);
    TB_CHECK(tb_quic_find_peer(a.ep, "bravo") == NULL);
    node_stop(&a);
    node_stop(&b);
    node_stop(&c);
}

static void test_connect_timeout(void)
{
    /* A bound socket that never answers. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f00001e)};
    TB_REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    socklen_t len = sizeof(sin);
    TB_REQUIRE(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    node b;
    opts ob = {.listen = "127.0.0.31:0", .cert = "bravo", .connect_timeout_ns = 600000000ULL};
    TB_REQUIRE(node_start(&b, &ob) == TB_OK);
    TB_CHECK_EQ(tb_quic_dial_sa(b.ep, (struct sockaddr *)&sin, len, "alpha", NULL), TB_OK);
    WAIT(b.closed == 1, 5);
    TB_CHECK_EQ(b.last_close.reason, TB_QUIC_CLOSED_CONNECT_TIMEOUT);
    node_stop(&b);
    close(fd);
}

static void test_bad_config(void)
{
    node a;
    opts o = {.listen = "127.0.0.32", .cert = "alpha"};
    TB_CHECK_EQ(node_start(&a, &o), TB_ERR_INVAL);
    TB_CHECK(strstr(a.loglines, "127.0.0.32") != NULL);
    opts o2 = {.listen = "127.0.0.32:0", .cert = "missing"};
    TB_CHECK_EQ(node_start(&a, &o2), TB_ERR_INVAL);
    TB_CHECK(strstr(a.loglines, "missing.pem") != NULL);
    opts o3 = {.listen = "127.0.0.32:0", .cert = "", .mode = TB_QUIC_MODE_SERVER};
    TB_CHECK_EQ(node_start(&a, &o3), TB_ERR_INVAL);
}

/* Whether this process may pass net.core.rmem_max (CAP_NET_ADMIN in the initial namespace). */
static int may_force_buffers(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), bytes = 4 * 1024 * 1024;
    int ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The socket buffers are asked for explicitly: the kernel grants at least what was asked up to
 * net.core.rmem_max, and past it with CAP_NET_ADMIN; a rebound socket gets them too. */
static void test_socket_buffers(void)
{
    node a;
    opts o = {.listen = "127.0.0.35:0", .cert = "alpha", .sockbuf = 100000};
    TB_REQUIRE(node_start(&a, &o) == TB_OK);
    const tb_quic_stats *st = tb_quic_endpoint_stats(a.ep);
    TB_CHECK(st->socket_rcvbuf >= 100000);
    TB_CHECK(st->socket_sndbuf >= 100000);
    TB_CHECK(strstr(a.loglines, "receive buffer") != NULL);
    TB_CHECK_EQ(tb_quic_endpoint_rebind(a.ep), TB_OK);
    TB_CHECK(st->socket_rcvbuf >= 100000);
    node_stop(&a);

    opts d = {.listen = "127.0.0.35:0", .cert = "alpha"}; /* default 4 MiB */
    TB_REQUIRE(node_start(&a, &d) == TB_OK);
    st = tb_quic_endpoint_stats(a.ep);
    if (may_force_buffers())
        TB_CHECK(st->socket_rcvbuf >= 4u * 1024 * 1024);
    else
        TB_CHECK(st->socket_rcvbuf > 0);
    node_stop(&a);

    opts big = {.listen = "127.0.0.35:0", .cert = "alpha", .sockbuf = (size_t)2 << 30};
    TB_CHECK_EQ(node_start(&a, &big), TB_ERR_INVAL);
    TB_CHECK(strstr(a.loglines, "socket_buffer") != NULL);
}

/* Certificates from tbcert itself (Ed25519 and P-256) work for both ends. */
static const char *tbcert_path;
static void test_tbcert_certificates(void)
{
    TB_REQUIRE(tbcert_path);
    TB_REQUIRE(run("cd %s && %s init-ca --dir tbca --name testmesh >/dev/null && "
                   "%s issue --ca tbca --name golf --region eu --out golf >/dev/null && "
                   "%s issue --ca tbca --name hotel --region us --key-type p256 --out hotel "
                   ">/dev/null && cp golf/node.crt golf.pem && cp golf/node.key golf.key && "
                   "cp hotel/node.crt hotel.pem && cp hotel/node.key hotel.key && "
                   "cp tbca/ca.crt tbca.pem",
                   dir, tbcert_path, tbcert_path, tbcert_path) == 0);
    node a, b;
    opts oa = {.listen = "127.0.0.33:0", .cert = "golf", .ca = "tbca"};
    opts ob = {.listen = "127.0.0.34:0", .cert = "hotel", .ca = "tbca"};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &b, &ob, "golf", addr) == TB_OK);
    WAIT(a.connected == 1 && b.connected == 1, 10);
    TB_CHECK_STR(a.peer.name, "hotel");
    TB_CHECK_STR(a.peer.region, "us");
    TB_CHECK_STR(b.peer.name, "golf");
    exchange(&a, &b);
    node_stop(&a);
    node_stop(&b);
}

/* An operator certificate (tbcert issue --role operator, for HTTP/3 queries) is refused as a
 * mesh member: the endpoint has no h3 here, and the ALPN is tbmesh/1 anyway. Runs after
 * test_tbcert_certificates, which made the CA. */
static void test_refuse_operator_as_member(void)
{
    TB_REQUIRE(tbcert_path);
    TB_REQUIRE(
        run("cd %s && %s issue --ca tbca --role operator --name india --out india "
            ">/dev/null && cp india/operator.crt india.pem && cp india/operator.key india.key",
            dir, tbcert_path) == 0);
    node a, c;
    opts oa = {.listen = "127.0.0.35:0", .cert = "golf", .ca = "tbca"};
    opts oc = {.listen = "127.0.0.36:0",
               .cert = "india",
               .ca = "tbca",
               .name = "client",
               .mode = TB_QUIC_MODE_CLIENT};
    char addr[TB_QUIC_ADDRSTR_MAX];
    TB_REQUIRE(pair_dial(&a, &oa, &c, &oc, "golf", addr) == TB_OK);
    WAIT(a.refused == 1 && c.closed == 1, 10);
    TB_CHECK_EQ(a.last_refusal, TB_QUIC_REFUSE_IDENTITY);
    TB_CHECK(strstr(a.loglines, "an operator certificate, not a node's") != NULL);
    TB_CHECK_EQ(a.connected + c.connected, 0);
    TB_CHECK_EQ(c.last_close.refusal, TB_QUIC_REFUSE_BY_PEER);
    node_stop(&a);
    node_stop(&c);
}

int main(int argc, char **argv)
{
    tbcert_path = argc > 1 ? argv[1] : NULL;
    signal(SIGPIPE, SIG_IGN);
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop || make_certs() != 0) {
        fprintf(stderr, "setup failed (is certtool from gnutls-bin installed?)\n");
        return 1;
    }
    TB_RUN(test_bad_config);
    TB_RUN(test_connect_ipv4_retry);
    TB_RUN(test_connect_ipv6_no_retry);
    TB_RUN(test_refuse_no_client_cert);
    TB_RUN(test_refuse_foreign_ca);
    TB_RUN(test_refuse_expired);
    TB_RUN(test_refuse_missing_client_auth);
    TB_RUN(test_refuse_ca_as_leaf);
    TB_RUN(test_refuse_name_mismatch);
    TB_RUN(test_refuse_foreign_server);
    TB_RUN(test_gtlsclient_refused);
    TB_RUN(test_simultaneous_dial);
    TB_RUN(test_stale_duplicate);
    TB_RUN(test_oversized_message_dropped);
    TB_RUN(test_many_messages_one_connection);
    TB_RUN(test_malformed_frames_dropped);
    TB_RUN(test_handshake_flood);
    TB_RUN(test_handshake_flood_many_prefixes);
    TB_RUN(test_handshake_flood_configured_peer);
    TB_RUN(test_table_keeps_room_for_configured);
    TB_RUN(test_penalty_decay_and_ban_backoff);
    TB_RUN(test_repeat_offender_ban_doubles);
    TB_RUN(test_unfinished_streams);
    TB_RUN(test_junk_close_and_ban);
    TB_RUN(test_modes);
    TB_RUN(test_version_negotiation);
    TB_RUN(test_forged_retry_token);
    TB_RUN(test_migration);
    TB_RUN(test_stateless_reset);
    TB_RUN(test_idle_timeout_and_keep_alive);
    TB_RUN(test_connect_timeout);
    TB_RUN(test_socket_buffers);
    TB_RUN(test_tbcert_certificates);
    TB_RUN(test_refuse_operator_as_member);
    ev_loop_destroy(loop);
    cleanup();
    return TB_DONE();
}
