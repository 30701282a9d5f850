/* Connection-level numbers for tb_quic on loopback, reported, never gated:
 *  - mutual-TLS handshakes: sequential dial -> confirmed, with Retry off and on;
 *  - DATAGRAM echo round trip over a connection versus a plain UDP echo in the same loop.
 * Usage: bench_quic CERTDIR [N]   (CERTDIR holds ca.crt and NAME.crt/NAME.key for a, b and
 * p0..p31; run.sh makes them with tbcert). */
#include <netinet/in.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "quic/endpoint.h"

static struct ev_loop *loop;
static const tb_clock *clk;

typedef struct side {
    tb_quic_endpoint *ep;
    tb_log log;
    int connected, closed, dgrams;
    tb_quic_conn *conn;
    int echo;
} side;

static void on_connected(void *arg, tb_quic_conn *c, const tb_quic_peer *peer)
{
    side *s = arg;
    s->connected++;
    s->conn = c;
}

static void on_closed(void *arg, tb_quic_conn *c, const tb_quic_peer *peer,
                      const tb_quic_close_info *info)
{
    side *s = arg;
    s->closed++;
    if (s->conn == c)
        s->conn = NULL;
}

static void on_dgram(void *arg, tb_quic_conn *c, const uint8_t *d, size_t len, uint64_t mono,
                     int64_t real)
{
    side *s = arg;
    s->dgrams++;
    if (s->echo && tb_quic_send_datagram(c, d, len) != TB_OK)
        fprintf(stderr, "echo failed\n");
}

static int start(side *s, const char *dir, const char *who, const char *listen, int retry)
{
    memset(s, 0, sizeof(*s));
    tb_log_init(&s->log, who, getenv("TB_BENCH_LOG") ? TB_LOG_INFO : TB_LOG_ERROR);
    char cert[512], key[512], ca[512];
    snprintf(cert, sizeof(cert), "%s/%s.crt", dir, who);
    snprintf(key, sizeof(key), "%s/%s.key", dir, who);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    tb_quic_config cfg = {.listen = listen,
                          .mode = TB_QUIC_MODE_HYBRID,
                          .cert_file = cert,
                          .key_file = key,
                          .ca_file = ca,
                          .node_name = who,
                          .retry = retry};
    tb_quic_callbacks cb = {
        .on_connected = on_connected, .on_closed = on_closed, .on_datagram = on_dgram, .arg = s};
    return tb_quic_endpoint_create(&s->ep, loop, &s->log, clk, &cfg, &cb);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, int n, double total_s)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
    printf("%-34s n=%-5d p50=%8.1f us  p99=%8.1f us  rate=%8.0f /s\n", what, n,
           (double)ns[n / 2] / 1e3, (double)ns[(n * 99) / 100] / 1e3, n / total_s);
}

static int run_until(int *flag, int want, double secs)
{
    uint64_t deadline = tb_clock_mono(clk) + (uint64_t)(secs * 1e9);
    while (*flag < want && tb_clock_mono(clk) < deadline)
        ev_run(loop, EVRUN_ONCE);
    return *flag >= want;
}

static int handshakes(const char *dir, int retry, int n, double *p50_out)
{
    side a, b;
    if (start(&a, dir, "a", "127.0.0.40:0", retry) || start(&b, dir, "b", "127.0.0.41:0", 0))
        return -1;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (tb_quic_endpoint_local_addr(a.ep, &sa, &salen) != TB_OK)
        return -1;
    uint64_t *ns = calloc((size_t)n, sizeof(*ns));
    uint64_t t0 = tb_clock_mono(clk);
    int done = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = tb_clock_mono(clk);
        if (tb_quic_dial_sa(b.ep, (struct sockaddr *)&sa, salen, "a", NULL) != TB_OK ||
            !run_until(&b.connected, i + 1, 5) || !run_until(&a.connected, i + 1, 5))
            break;
        ns[i] = tb_clock_mono(clk) - s;
        tb_quic_close(b.conn, TB_QUIC_APP_NO_ERROR);
        if (!run_until(&a.closed, i + 1, 5))
            break;
        done++;
    }
    double total = (double)(tb_clock_mono(clk) - t0) / 1e9;
    char what[64];
    snprintf(what, sizeof(what), "mTLS handshake, Retry %s", retry ? "on" : "off");
    if (done)
        report(what, ns, done, total);
    if (p50_out)
        *p50_out = done ? (double)ns[done / 2] : 0;
    free(ns);
    tb_quic_endpoint_destroy(a.ep);
    tb_quic_endpoint_destroy(b.ep);
    return done == n ? 0 : -1;
}

static double quic_echo(const char *dir, int n)
{
    side a, b;
    if (start(&a, dir, "a", "127.0.0.42:0", 0) || start(&b, dir, "b", "127.0.0.43:0", 0))
        return -1;
    a.echo = 1;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (tb_quic_endpoint_local_addr(a.ep, &sa, &salen) != TB_OK ||
        tb_quic_dial_sa(b.ep, (struct sockaddr *)&sa, salen, "a", NULL) != TB_OK ||
        !run_until(&b.connected, 1, 5) || !run_until(&a.connected, 1, 5))
        return -1;
    uint64_t *ns = calloc((size_t)n, sizeof(*ns));
    uint8_t probe[48] = {1};
    uint64_t t0 = tb_clock_mono(clk);
    int done = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = tb_clock_mono(clk);
        if (tb_quic_send_datagram(b.conn, probe, sizeof(probe)) != TB_OK ||
            !run_until(&b.dgrams, i + 1, 2))
            break;
        ns[i] = tb_clock_mono(clk) - s;
        done++;
    }
    double total = (double)(tb_clock_mono(clk) - t0) / 1e9, p50 = 0;
    if (done) {
        report("QUIC DATAGRAM echo (48 B)", ns, done, total);
        p50 = (double)ns[done / 2];
    }
    free(ns);
    tb_quic_endpoint_destroy(a.ep);
    tb_quic_endpoint_destroy(b.ep);
    return done == n ? p50 : -1;
}

/* The baseline: the same 48-byte echo over two plain UDP sockets, driven by the same loop. */
typedef struct udp_echo {
    int srv, cli, got;
} udp_echo;

static void on_srv(struct ev_loop *l, ev_io *w, int revents)
{
    uint8_t buf[64];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(w->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (n > 0 && sendto(w->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) < 0)
        perror("sendto");
}

static void on_cli(struct ev_loop *l, ev_io *w, int revents)
{
    udp_echo *u = w->data;
    uint8_t buf[64];
    if (recv(w->fd, buf, sizeof(buf), 0) > 0)
        u->got++;
}

static double udp_baseline(int n)
{
    udp_echo u = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f00002c)};
    socklen_t len = sizeof(sa);
    u.srv = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    u.cli = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (u.srv < 0 || u.cli < 0 || bind(u.srv, (struct sockaddr *)&sa, len) != 0 ||
        getsockname(u.srv, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    ev_io ws, wc;
    ev_io_init(&ws, on_srv, u.srv, EV_READ);
    ev_io_init(&wc, on_cli, u.cli, EV_READ);
    wc.data = &u;
    ev_io_start(loop, &ws);
    ev_io_start(loop, &wc);
    uint64_t *ns = calloc((size_t)n, sizeof(*ns));
    uint8_t probe[48] = {1};
    uint64_t t0 = tb_clock_mono(clk);
    int done = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = tb_clock_mono(clk);
        if (sendto(u.cli, probe, sizeof(probe), 0, (struct sockaddr *)&sa, len) < 0 ||
            !run_until(&u.got, i + 1, 2))
            break;
        ns[i] = tb_clock_mono(clk) - s;
        done++;
    }
    double total = (double)(tb_clock_mono(clk) - t0) / 1e9, p50 = 0;
    if (done) {
        report("plain UDP echo (48 B, baseline)", ns, done, total);
        p50 = (double)ns[done / 2];
    }
    ev_io_stop(loop, &ws);
    ev_io_stop(loop, &wc);
    close(u.srv);
    close(u.cli);
    free(ns);
    return done == n ? p50 : -1;
}

/* field: "VmRSS" (all resident pages, library code included) or "RssAnon" (heap, stacks). */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    }
    if (f)
        fclose(f);
    return kb;
}

/* The 32 peers live in a child process, so the parent's RSS delta is one node's endpoint with
 * 32 confirmed connections. */
static void peers_child(const char *dir, const struct sockaddr_storage *sa, socklen_t salen)
{
    enum { N = 32 };
    static side c[N];
    static char names[N][8];
    loop = ev_loop_new(EVFLAG_AUTO);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        if (start(&c[i], dir, names[i], "127.0.0.45:0", 0) ||
            tb_quic_dial_sa(c[i].ep, (const struct sockaddr *)sa, salen, "a", NULL) != TB_OK)
            _exit(1);
    }
    int never = 0;
    run_until(&never, 1, 30); /* until the parent is done and kills us */
    _exit(0);
}

static int memory_32(const char *dir)
{
    enum { N = 32 };
    side a;
    long rss0 = status_kb("VmRSS"), anon0 = status_kb("RssAnon");
    size_t heap0 = mallinfo2().uordblks;
    if (start(&a, dir, "a", "127.0.0.44:0", 1))
        return -1;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (tb_quic_endpoint_local_addr(a.ep, &sa, &salen) != TB_OK)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        peers_child(dir, &sa, salen);
    int ok = pid > 0 && run_until(&a.connected, N, 15);
    if (ok) {
        long rss = status_kb("VmRSS") - rss0, anon = status_kb("RssAnon") - anon0;
        size_t heap = (mallinfo2().uordblks - heap0) / 1024;
        printf("one endpoint, %d connected peers: process VmRSS %ld kB (+%ld kB, library code "
               "included), anonymous +%ld kB, heap in use +%zu kB (%zu kB per connection)\n",
               N, rss0 + rss, rss, anon, heap, heap / N);
    } else {
        fprintf(stderr, "bench_quic: %d of %d peers connected\n", a.connected, N);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    tb_quic_endpoint_destroy(a.ep);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_quic CERTDIR [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 200;
    if (n < 10 || n > 100000) {
        fprintf(stderr, "bench_quic: N must be 10..100000\n");
        return 2;
    }
    loop = ev_loop_new(EVFLAG_AUTO);
    clk = tb_clock_system();
    /* First, while the heap is fresh, so the RSS delta is what the connections take. */
    if (memory_32(argv[1]) != 0)
        fprintf(stderr, "bench_quic: the 32-connection run did not complete\n");
    double hs_off = 0, hs_on = 0;
    int rv = handshakes(argv[1], 0, n, &hs_off) | handshakes(argv[1], 1, n, &hs_on);
    double q = quic_echo(argv[1], n * 10), u = udp_baseline(n * 10);
    if (rv || q <= 0 || u <= 0) {
        fprintf(stderr, "bench_quic: a run did not complete\n");
        return 1;
    }
    printf("ratio Retry on/off handshake p50: %.2f\n", hs_on / hs_off);
    printf("ratio QUIC/UDP echo p50: %.2f\n", q / u);
    ev_loop_destroy(loop);
    return 0;
}
