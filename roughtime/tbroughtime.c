/* tbroughtime: generate a long-term key, serve Roughtime, or query servers (one, or a server
 * list as a chained measurement sequence with a malfeasance report when causality fails). */
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "roughtime/keyfile.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"
#include "roughtime/verify.h"

static void usage(void)
{
    fprintf(stderr, "usage: tbroughtime keygen --out FILE\n"
                    "       tbroughtime serve --key FILE [--listen ADDR:PORT] [--max-batch N]\n"
                    "                   [--flush-interval-us N] [--radius S] [--threads N]\n"
                    "       tbroughtime query --server ADDR:PORT --pubkey BASE64 [--version V]\n"
                    "       tbroughtime query --servers FILE.json [--report FILE]\n"
                    "  V: 1, draft12, draft11, draft8, google, or all (default: all but google)\n");
}

/* Finds "--name" in argv and returns its value, or def. */
static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return def;
}

static int opt_uint(int argc, char **argv, const char *name, unsigned long def, unsigned long max,
                    unsigned long *out)
{
    const char *v = opt(argc, argv, name, NULL);
    char *end;
    if (!v) {
        *out = def;
        return 0;
    }
    errno = 0;
    *out = strtoul(v, &end, 10);
    if (*v == 0 || *end || errno || *out > max) {
        fprintf(stderr, "tbroughtime: %s \"%s\" is not a number up to %lu\n", name, v, max);
        return -1;
    }
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *out = opt(argc, argv, "--out", NULL);
    uint8_t pk[32];
    char err[256], b64[45];
    if (!out)
        return usage(), 64;
    if (tb_rt_key_generate(out, pk, err, sizeof(err)) < 0) {
        fprintf(stderr, "tbroughtime: %s\n", err);
        return 1;
    }
    tb_rt_key_b64(pk, b64);
    printf("%s\n", b64);
    return 0;
}

/* ---- serve ---- */

typedef struct worker {
    struct ev_loop *loop;
    ev_async stop;
    tb_rt_srv *srv;
    tb_rt_udp *udp;
    tb_log log;
    pthread_t thread;
} worker;

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    worker *wk = w->data;
    tb_rt_udp_drain(wk->udp);
    ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    ev_run(wk->loop, 0);
    return NULL;
}

typedef struct serve_state {
    worker *w;
    unsigned n;
} serve_state;

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    serve_state *st = s->data;
    for (unsigned i = 1; i < st->n; i++)
        ev_async_send(st->w[i].loop, &st->w[i].stop);
    tb_rt_udp_drain(st->w[0].udp);
    ev_break(loop, EVBREAK_ALL);
}

static void print_stats(const worker *w, unsigned n)
{
    tb_rt_srv_stats sum;
    memset(&sum, 0, sizeof(sum));
    for (unsigned i = 0; i < n; i++) {
        const tb_rt_srv_stats *s = tb_rt_srv_stats_get(w[i].srv);
        sum.received += s->received;
        sum.answered += s->answered;
        sum.batches += s->batches;
        for (int d = 0; d < TB_RT_DROP_COUNT; d++)
            sum.drops[d] += s->drops[d];
    }
    fprintf(stderr, "tbroughtime: received %llu answered %llu batches %llu\n",
            (unsigned long long)sum.received, (unsigned long long)sum.answered,
            (unsigned long long)sum.batches);
    for (int d = 0; d < TB_RT_DROP_COUNT; d++) {
        if (sum.drops[d])
            fprintf(stderr, "tbroughtime: dropped %llu: %s\n", (unsigned long long)sum.drops[d],
                    tb_rt_drop_name((tb_rt_drop)d));
    }
}

static int start_worker(worker *w, unsigned i, const tb_rt_srv_config *scfg,
                        const tb_rt_udp_config *ucfg)
{
    char who[32];
    snprintf(who, sizeof(who), "tbroughtime/%u", i);
    tb_log_init(&w->log, who, TB_LOG_INFO);
    w->loop = i == 0 ? ev_default_loop(0) : ev_loop_new(0);
    if (!w->loop || tb_rt_srv_new(scfg, &w->log, tb_clock_real(tb_clock_system()), &w->srv) < 0 ||
        tb_rt_udp_new(w->loop, &w->log, tb_clock_system(), w->srv, ucfg, &w->udp) < 0)
        return -1;
    ev_async_init(&w->stop, on_stop);
    w->stop.data = w;
    ev_async_start(w->loop, &w->stop);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *key = opt(argc, argv, "--key", NULL);
    char err[256];
    unsigned long batch, flush_us, radius, threads;
    tb_rt_srv_config scfg;
    tb_rt_udp_config ucfg;
    tb_rt_srv_config_default(&scfg);
    tb_rt_udp_config_default(&ucfg);
    if (!key)
        return usage(), 64;
    if (opt_uint(argc, argv, "--max-batch", 64, TB_RT_SRV_MAX_BATCH, &batch) < 0 ||
        opt_uint(argc, argv, "--flush-interval-us", 1000, 10000000, &flush_us) < 0 ||
        opt_uint(argc, argv, "--radius", 3, 86400, &radius) < 0 ||
        opt_uint(argc, argv, "--threads", 1, 64, &threads) < 0 || batch == 0 || threads == 0)
        return 64;
    if (tb_rt_key_load(key, scfg.longterm_sk, err, sizeof(err)) < 0) {
        fprintf(stderr, "tbroughtime: %s\n", err);
        return 1;
    }
    scfg.max_batch = (unsigned)batch;
    scfg.queue_cap = 4 * (unsigned)batch;
    snprintf(ucfg.listen, sizeof(ucfg.listen), "%s", opt(argc, argv, "--listen", ucfg.listen));
    ucfg.flush_interval_ns = flush_us * TB_NS_PER_US;
    ucfg.radius_s = radius ? (uint32_t)radius : 1;
    ucfg.reuseport = threads > 1;
    worker *w = calloc(threads, sizeof(*w));
    int rc = w ? 0 : 1;
    for (unsigned i = 0; i < threads && rc == 0; i++) {
        if (start_worker(&w[i], i, &scfg, &ucfg) < 0)
            rc = 1;
    }
    sodium_memzero(&scfg, sizeof(scfg));
    if (rc == 0) {
        uint8_t pk[32];
        char b64[45];
        memcpy(pk, tb_rt_srv_pubkey(w[0].srv), 32);
        tb_rt_key_b64(pk, b64);
        fprintf(stderr, "tbroughtime: public key %s, %lu thread(s), port %u\n", b64, threads,
                tb_rt_udp_port(w[0].udp));
        serve_state st = {w, (unsigned)threads};
        ev_signal sint, sterm;
        ev_signal_init(&sint, on_signal, SIGINT);
        ev_signal_init(&sterm, on_signal, SIGTERM);
        sint.data = sterm.data = &st;
        ev_signal_start(w[0].loop, &sint);
        ev_signal_start(w[0].loop, &sterm);
        for (unsigned i = 1; i < threads; i++)
            pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
        ev_run(w[0].loop, 0);
        for (unsigned i = 1; i < threads; i++)
            pthread_join(w[i].thread, NULL);
        print_stats(w, (unsigned)threads);
    }
    for (unsigned i = 0; w && i < threads; i++) {
        tb_rt_udp_free(w[i].udp);
        tb_rt_srv_free(w[i].srv);
        if (w[i].loop && i > 0)
            ev_loop_destroy(w[i].loop);
    }
    free(w);
    return rc;
}

/* ---- query ---- */

static int parse_versions(const char *v, uint32_t *out, unsigned *n)
{
    static const struct {
        const char *name;
        uint32_t ver;
    } names[] = {{"1", TB_RT_VER_RFC},
                 {"draft12", TB_RT_VER_DRAFT12},
                 {"draft11", TB_RT_VER_DRAFT11},
                 {"draft8", TB_RT_VER_DRAFT08},
                 {"google", TB_RT_VER_GOOGLE}};
    if (strcmp(v, "all") == 0) {
        out[0] = TB_RT_VER_RFC;
        out[1] = TB_RT_VER_DRAFT08;
        out[2] = TB_RT_VER_DRAFT11;
        out[3] = TB_RT_VER_DRAFT12;
        *n = 4;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(v, names[i].name) == 0) {
            out[0] = names[i].ver;
            *n = 1;
            return 0;
        }
    }
    char *end;
    unsigned long x = strtoul(v, &end, 0);
    if (*v && !*end && tb_rt_profile_get((uint32_t)x)) {
        out[0] = (uint32_t)x;
        *n = 1;
        return 0;
    }
    return -1;
}

static int connect_udp(const char *addr)
{
    char host[300];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends q's request and verifies the answer, retrying with the RFC's backoff (1 s, ×1.5). */
static int exchange(const char *addr, tb_rt_query *q, unsigned attempts, tb_rt_reason *why)
{
    const tb_clock *clk = tb_clock_system();
    uint8_t buf[TB_RT_RESPONSE_BUF];
    int fd = connect_udp(addr);
    double wait_ms = 1000;
    *why = TB_RT_OK;
    if (fd < 0) {
        fprintf(stderr, "tbroughtime: %s: cannot resolve or connect\n", addr);
        return TB_ERR_IO;
    }
    int rc = TB_ERR_TIMEOUT;
    for (unsigned a = 0; a < attempts && rc == TB_ERR_TIMEOUT; a++, wait_ms *= 1.5) {
        q->sent_ns = tb_clock_real(clk);
        if (send(fd, q->request, q->request_len, 0) < 0) {
            rc = TB_ERR_IO;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)wait_ms) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        int64_t now = tb_clock_real(clk);
        if (n < 0) {
            rc = TB_ERR_IO;
            break;
        }
        rc = tb_rt_verify(q, buf, (size_t)n, now, why);
    }
    close(fd);
    return rc;
}

static void print_result(const char *name, const tb_rt_query *q, int rc, tb_rt_reason why)
{
    char when[TB_CLOCK_RFC3339_LEN];
    if (rc < 0) {
        printf("%s: REJECTED: %s\n", name,
               rc == TB_ERR_TIMEOUT ? "no response"
               : why != TB_RT_OK    ? tb_rt_reason_name(why)
                                    : tb_strerror(rc));
        return;
    }
    tb_clock_format_rfc3339(q->midp_us * 1000, when, sizeof(when));
    printf("%s: midpoint %s (%lld) radius %.3f s rtt %.3f ms offset %+.3f s version %s "
           "(0x%08x) verdict valid\n",
           name, when, (long long)(q->midp_us / 1000000), (double)q->radi_us / 1e6,
           (double)q->rtt_ns / 1e6, (double)q->offset_ns / 1e9, tb_rt_version_name(q->version),
           q->version);
}

static int query_one(int argc, char **argv)
{
    const char *server = opt(argc, argv, "--server", NULL),
               *pub = opt(argc, argv, "--pubkey", NULL);
    uint32_t vers[4];
    unsigned nv;
    uint8_t pk[32], nonce[64];
    if (!server || !pub)
        return usage(), 64;
    if (tb_rt_key_from_b64(pub, pk) < 0) {
        fprintf(stderr, "tbroughtime: --pubkey is not a base64 32-byte key\n");
        return 64;
    }
    if (parse_versions(opt(argc, argv, "--version", "all"), vers, &nv) < 0) {
        fprintf(stderr, "tbroughtime: unknown --version\n");
        return 64;
    }
    static tb_rt_query q;
    tb_rt_reason why;
    randombytes_buf(nonce, sizeof(nonce));
    if (tb_rt_query_init(&q, pk, vers, nv, nonce, 0) < 0)
        return 64;
    int rc = exchange(server, &q, 3, &why);
    print_result(server, &q, rc, why);
    return rc < 0 ? 1 : 0;
}

static int write_report(const char *path, const tb_rt_query *const *qs, unsigned n)
{
    char *json = NULL;
    if (tb_rt_malfeasance_json(qs, n, &json) < 0)
        return -1;
    FILE *f = fopen(path, "w");
    int rc = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(json);
    if (rc < 0)
        fprintf(stderr, "tbroughtime: cannot write %s: %s\n", path, strerror(errno));
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f)
        return NULL;
    buf = malloc(1 << 20);
    if (buf) {
        *len = fread(buf, 1, (1 << 20) - 1, f);
        if (!feof(f)) { /* larger than any sane list */
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int query_list(int argc, char **argv)
{
    const char *path = opt(argc, argv, "--servers", NULL);
    const char *report = opt(argc, argv, "--report", "roughtime-malfeasance.json");
    static tb_rt_server_entry e[TB_RT_LIST_MAX];
    static tb_rt_query q[2 * TB_RT_LIST_MAX];
    const tb_rt_query *qs[2 * TB_RT_LIST_MAX];
    unsigned n = 0, skipped = 0;
    size_t len = 0;
    char err[300];
    char *json = read_file(path, &len);
    if (!json) {
        fprintf(stderr, "tbroughtime: %s: cannot read (or over 1 MiB)\n", path);
        return 1;
    }
    int rc = tb_rt_server_list_parse(json, len, e, TB_RT_LIST_MAX, &n, &skipped, err, sizeof(err));
    free(json);
    if (rc == 0 && skipped)
        fprintf(stderr, "tbroughtime: %s: skipped %u server(s), last: %s\n", path, skipped, err);
    if (rc < 0 || n == 0) {
        fprintf(stderr, "tbroughtime: %s: %s\n", path, rc < 0 ? err : "no servers");
        return 1;
    }
    if (n < 3)
        fprintf(stderr, "tbroughtime: warning: %u servers; the RFC asks for at least 3\n", n);
    /* The whole sequence twice in the same order, each nonce chained from the last response. */
    for (unsigned k = 0; k < 2 * n; k++) {
        const tb_rt_server_entry *s = &e[k % n];
        uint32_t ver = s->version; /* lists name Google-Roughtime 3000600613, our value too */
        uint8_t rnd[32], nonce[64];
        tb_rt_reason why;
        unsigned nl = ver == TB_RT_VER_GOOGLE ? 64 : 32;
        randombytes_buf(rnd, sizeof(rnd));
        if (k == 0)
            randombytes_buf(nonce, sizeof(nonce));
        else
            tb_rt_chain_nonce(q[k - 1].response, q[k - 1].response_len, rnd, nonce, nl);
        if (tb_rt_query_init(&q[k], s->pubkey, &ver, 1, nonce, 0) < 0) {
            fprintf(stderr, "tbroughtime: %s: version %u not supported\n", s->name, s->version);
            return 1;
        }
        if (k > 0) {
            memcpy(q[k].rand, rnd, 32);
            q[k].has_rand = 1;
        }
        rc = exchange(s->address, &q[k], 3, &why);
        print_result(s->name, &q[k], rc, why);
        if (rc < 0)
            return 1; /* never a malfeasance report on protocol errors */
        qs[k] = &q[k];
    }
    unsigned bi, bj;
    if (tb_rt_causality_check(qs, 2 * n, &bi, &bj) == 0) {
        printf("sequence: %u responses consistent with causal ordering\n", 2 * n);
        return 0;
    }
    printf("sequence: MALFEASANCE: response %u (%s) lower bound is after response %u (%s) upper "
           "bound; report in %s\n",
           bi, e[bi % n].name, bj, e[bj % n].name, report);
    return write_report(report, qs, 2 * n) < 0 ? 1 : 2;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc < 2)
        return usage(), 64;
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc, argv);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "query") == 0)
        return opt(argc, argv, "--servers", NULL) ? query_list(argc, argv) : query_one(argc, argv);
    usage();
    return 64;
}
