/* Node benchmarks (issue 3), reported, never gated on timing. In one process and one loop, on
 * loopback 127.0.0.34-37:
 *   1. PING/PONG round trip over the mesh (QUIC DATAGRAM, msgpack, a tb_node answering) versus a
 *      plain UDP echo through the same event loop: p50 and p99, and their ratio (target <= 2);
 *   2. BROADCAST messages per second through a 3-node line (origin -> relay -> last).
 * Needs tbcert (TB_TBCERT) for the certificates. Usage: bench_node [pings] [broadcasts] */
#include <arpa/inet.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/node.h"
#include "quic/endpoint.h"
#include "wire/wire.h"
#include "tests/support/loop.h"

static struct ev_loop *loop;
static char dir[64];
static const tb_clock *clk;

static uint64_t now_ns(void)
{
    return tb_clock_mono(clk);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[(size_t)(p * (double)(n - 1))];
}

static int issue(const char *name, int ip)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "%s issue --ca %s/ca --name %s --region bench --ip 127.0.0.%d --out %s/%s "
             ">/dev/null",
             getenv("TB_TBCERT"), dir, name, ip, dir, name);
    return system(cmd);
}

static int start_node(tb_node **out, tb_node_config *cfg, tb_log *log, const char *name, int ip,
                      int port, const char *extra)
{
    char text[1024], err[TB_NODE_ERR_MAX];
    snprintf(text, sizeof(text),
             "listen = \"127.0.0.%d:%d\"; cert = \"%s/%s/node.crt\"; key = \"%s/%s/node.key\";"
             "ca = \"%s/%s/ca.crt\"; state_dir = \"%s/%s/state\"; log_level = \"error\"; %s",
             ip, port, dir, name, dir, name, dir, name, dir, name, extra);
    tb_node_config_defaults(cfg);
    if (tb_node_config_load_string(cfg, text, name, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    mkdir(cfg->state_dir, 0700);
    tb_log_init(log, name, TB_LOG_ERROR);
    return tb_node_new(out, loop, log, clk, cfg, NULL);
}

/* ---- 1. ping over the mesh versus a UDP echo ------------------------------------------- */

static tb_quic_conn *pinger;
static int pong_seen;
static uint64_t pong_id;

static void p_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    pinger = c;
}

static void p_datagram(void *arg, tb_quic_conn *c, const uint8_t *d, size_t len, uint64_t rx_mono,
                       int64_t rx_real)
{
    tb_wire_msg m;
    if (tb_wire_decode(d, len, NULL, &m, NULL) == TB_OK && m.type == TB_WIRE_PONG &&
        m.pong.id == pong_id)
        pong_seen = 1;
    tb_wire_msg_clear(&m);
}

static int have_pinger(void *arg)
{
    return pinger != NULL;
}

static int have_pong(void *arg)
{
    return pong_seen;
}

static int bench_ping(size_t n, uint64_t *mesh)
{
    tb_quic_config qc = {.listen = "127.0.0.35:0", .mode = TB_QUIC_MODE_CLIENT, .retry = 0};
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof(cert), "%s/pinger/node.crt", dir);
    snprintf(key, sizeof(key), "%s/pinger/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/pinger/ca.crt", dir);
    qc.cert_file = cert;
    qc.key_file = key;
    qc.ca_file = ca;
    qc.node_name = "pinger";
    tb_quic_callbacks cb = {.on_connected = p_connected, .on_datagram = p_datagram};
    tb_log log;
    tb_log_init(&log, "pinger", TB_LOG_ERROR);
    tb_quic_endpoint *ep;
    tb_quic_conn *c;
    tb_quic_stats st0 = {0};
    if (tb_quic_endpoint_create(&ep, loop, &log, clk, &qc, &cb) != TB_OK ||
        tb_quic_dial(ep, "127.0.0.34:4570", "target", &c) != TB_OK ||
        !tb_test_run_until(loop, have_pinger, NULL, 10))
        return -1;
    for (size_t i = 0; i < n + 50; i++) {
        tb_wire_msg m = {.type = TB_WIRE_PING};
        m.ping = (tb_wire_ping){1000 + i, tb_clock_real(clk)};
        uint8_t buf[64];
        size_t len;
        if (tb_wire_encode(&m, NULL, buf, sizeof(buf), &len) != TB_OK)
            return -1;
        pong_seen = 0;
        pong_id = m.ping.id;
        uint64_t t0 = now_ns();
        if (tb_quic_send_datagram(pinger, buf, len) != TB_OK ||
            !tb_test_run_until(loop, have_pong, NULL, 2))
            return -1;
        if (i >= 50) /* the first ones warm up caches and congestion control */
            mesh[i - 50] = now_ns() - t0;
        if (i == 49)
            st0 = *tb_quic_endpoint_stats(ep);
    }
    /* More than one packet each way per exchange means extra sendmsg/recvmsg on the RTT path
     * (an ACK-only packet beside the PONG, for example). */
    const tb_quic_stats *st = tb_quic_endpoint_stats(ep);
    printf("UDP packets per ping exchange: %.2f out, %.2f in\n",
           (double)(st->packets_out - st0.packets_out) / (double)n,
           (double)(st->packets_in - st0.packets_in) / (double)n);
    tb_quic_endpoint_destroy(ep);
    return 0;
}

static int echo_fd, client_fd, echo_back;

static void on_echo(struct ev_loop *l, ev_io *w, int revents)
{
    uint8_t buf[256];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t k = recvfrom(echo_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (k > 0 && sendto(echo_fd, buf, (size_t)k, 0, (struct sockaddr *)&from, fl) < 0)
        perror("sendto");
}

static void on_client(struct ev_loop *l, ev_io *w, int revents)
{
    uint8_t buf[256];
    if (recv(client_fd, buf, sizeof(buf), 0) > 0)
        echo_back = 1;
}

static int have_echo(void *arg)
{
    return echo_back;
}

static int udp_socket(const char *ip, int port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa->sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0)
        return -1;
    return fd;
}

static int bench_udp(size_t n, uint64_t *udp)
{
    struct sockaddr_in srv, cli;
    echo_fd = udp_socket("127.0.0.34", 4571, &srv);
    client_fd = udp_socket("127.0.0.35", 0, &cli);
    if (echo_fd < 0 || client_fd < 0 || connect(client_fd, (struct sockaddr *)&srv, sizeof(srv)))
        return -1;
    ev_io e, c;
    ev_io_init(&e, on_echo, echo_fd, EV_READ);
    ev_io_init(&c, on_client, client_fd, EV_READ);
    ev_io_start(loop, &e);
    ev_io_start(loop, &c);
    uint8_t probe[40] = {0}; /* about the size of an encoded PING in its QUIC packet payload */
    for (size_t i = 0; i < n + 50; i++) {
        echo_back = 0;
        uint64_t t0 = now_ns();
        if (send(client_fd, probe, sizeof(probe), 0) < 0 ||
            !tb_test_run_until(loop, have_echo, NULL, 2))
            return -1;
        if (i >= 50)
            udp[i - 50] = now_ns() - t0;
    }
    ev_io_stop(loop, &e);
    ev_io_stop(loop, &c);
    close(echo_fd);
    close(client_fd);
    return 0;
}

/* ---- 2. broadcasts through a line ------------------------------------------------------ */

static tb_node *line[3];

static int line_up(void *arg)
{
    return tb_node_connected_count(line[0]) == 1 && tb_node_connected_count(line[1]) == 2 &&
           tb_node_connected_count(line[2]) == 1;
}

static int bench_line(size_t n, double *rate)
{
    static tb_node_config cfg[3];
    static tb_log log[3];
    static const char *names[3] = {"origin", "relay", "last"};
    /* origin and last hold one peer each: the relay is their only neighbour. */
    static const char *extra[3] = {"max_peers = 1; peers = ( \"127.0.0.36:4572\" );",
                                   "max_peers = 8;",
                                   "max_peers = 1; peers = ( \"127.0.0.36:4572\" );"};
    for (int i = 0; i < 3; i++) {
        if (start_node(&line[i], &cfg[i], &log[i], names[i], 35 + i, 4572, extra[i]) != TB_OK)
            return -1;
    }
    if (!tb_test_run_until(loop, line_up, NULL, 10))
        return -1;
    /* The last node's own counter says what arrived. */
    uint8_t payload[100];
    memset(payload, 'b', sizeof(payload));
    tb_node_stats st0;
    tb_node_get_stats(line[2], &st0);
    uint64_t t0 = now_ns(), got = 0, last_progress = t0;
    size_t sent = 0;
    /* At most 256 in flight (the endpoint's send queue is bounded); give up after 5 s without
     * progress. */
    while (got < n && now_ns() - last_progress < 5 * TB_NS_PER_SEC) {
        for (; sent < n && sent - got < 256; sent++) {
            if (tb_node_broadcast(line[0], 1, payload, sizeof(payload), NULL) != TB_OK)
                return -1;
        }
        ev_run(loop, EVRUN_ONCE);
        tb_node_stats st;
        tb_node_get_stats(line[2], &st);
        if (st.bcast_delivered - st0.bcast_delivered > got) {
            got = st.bcast_delivered - st0.bcast_delivered;
            last_progress = now_ns();
        }
    }
    *rate = (double)got / ((double)(now_ns() - t0) / 1e9);
    if (got < n)
        fprintf(stderr, "only %llu of %zu broadcasts arrived\n", (unsigned long long)got, n);
    for (int i = 0; i < 3; i++) {
        tb_node_free(line[i]);
        tb_node_config_free(&cfg[i]);
    }
    return got == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    size_t npings = argc > 1 ? (size_t)atol(argv[1]) : 2000;
    size_t nbcast = argc > 2 ? (size_t)atol(argv[2]) : 20000;
    clk = tb_clock_system();
    loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(dir, sizeof(dir), "/tmp/tbnode-bench.XXXXXX");
    if (!getenv("TB_TBCERT") || !mkdtemp(dir) || npings < 10)
        return 2;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s init-ca --dir %s/ca --name bench >/dev/null",
             getenv("TB_TBCERT"), dir);
    int rc = system(cmd) || issue("target", 34) || issue("pinger", 35) || issue("origin", 35) ||
             issue("relay", 36) || issue("last", 37);
    static tb_node_config cfg;
    tb_log log;
    tb_node *target = NULL;
    uint64_t *mesh = calloc(npings, sizeof(*mesh)), *udp = calloc(npings, sizeof(*udp));
    if (!rc && mesh && udp && (rc = start_node(&target, &cfg, &log, "target", 34, 4570, "")) == 0 &&
        (rc = bench_ping(npings, mesh)) == 0 && (rc = bench_udp(npings, udp)) == 0) {
        uint64_t m50 = pct(mesh, npings, .5), m99 = pct(mesh, npings, .99);
        uint64_t u50 = pct(udp, npings, .5), u99 = pct(udp, npings, .99);
        printf("ping RTT over the mesh (%zu): p50 %.1f us, p99 %.1f us\n", npings, m50 / 1e3,
               m99 / 1e3);
        printf("UDP echo RTT, same loop (%zu): p50 %.1f us, p99 %.1f us\n", npings, u50 / 1e3,
               u99 / 1e3);
        printf("ratio mesh/UDP: p50 %.2f, p99 %.2f (target <= 2)\n", (double)m50 / (double)u50,
               (double)m99 / (double)u99);
    }
    if (target)
        tb_node_free(target);
    tb_node_config_free(&cfg);
    double rate = 0;
    if (!rc && (rc = bench_line(nbcast, &rate)) == 0)
        printf("broadcasts through a 3-node line (%zu x 100 bytes): %.0f msg/s\n", nbcast, rate);
    free(mesh);
    free(udp);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    ev_loop_destroy(loop);
    return rc ? 1 : 0;
}
