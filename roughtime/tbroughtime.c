/* tbroughtime: generate a long-term key, serve Roughtime, or query servers (one, or a server
 * list as a chained measurement sequence with a malfeasance report when causality fails). */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/opt.h"
#include "roughtime/keyfile.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"
#include "roughtime/verify.h"

/* Exit codes: 0 fine, 1 failed, 2 bad usage (as getopt tools do), 2 also for malfeasance found
 * by `query --servers` (it has no usage errors left once the list is read). */
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: tbroughtime keygen --out FILE\n"
    "       tbroughtime delegate --key FILE --online-key OUT --cert OUT [--valid-for S]\n"
    "                   [--not-before UNIX_S]\n"
    "       tbroughtime serve (--key FILE | --cert FILE --online-key FILE [--cert-warn S])\n"
    "                   [--listen ADDR:PORT] [--max-batch N]\n"
    "                   [--flush-interval-us N] [--radius S] [--threads N]\n"
    "                   [--stats-interval S] [--tcp]\n"
    "       tbroughtime query --server [tcp://]HOST:PORT --pubkey BASE64 [--version V]\n"
    "       tbroughtime query --servers FILE.json [--report FILE]\n"
    "       tbroughtime --help | --version\n"
    "  listen defaults to 127.0.0.1:" TB_RT_PORT_STR " (IANA's Roughtime port; 2002 is common)\n"
    "  V: 1, draft12, draft11, draft8, google, or all (default: all but google)\n";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tbroughtime %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(tbroughtime --help for usage)\n");
    return EXIT_USAGE;
}

/* getopt_long over argv[1..] (the subcommand's options). Returns the option, -1 at the end, or
 * '?' after printing why (unknown option, missing value, stray argument). */
static int next_opt(int argc, char **argv, const struct option *opts, const char *cmd)
{
    int c = getopt_long(argc, argv, ":h", opts, NULL);
    if (c == '?') {
        if (optopt)
            usage_error(cmd, "unknown option -%c", optopt);
        else
            usage_error(cmd, "unknown option %s", argv[optind - 1]);
        return '?';
    }
    if (c == ':') {
        usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        return '?';
    }
    if (c == -1 && optind < argc) {
        usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
        return '?';
    }
    return c;
}

/* A decimal number in [min, max]: no sign, no space, nothing after it. */
static int parse_num(const char *cmd, const char *name, const char *v, unsigned long min,
                     unsigned long max, unsigned long *out)
{
    char opt[64], err[160];
    uint64_t x;
    snprintf(opt, sizeof(opt), "--%s", name);
    if (tb_opt_parse_u64(opt, v, min, max, &x, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "tbroughtime %s: %s\n", cmd, err);
        return -1;
    }
    *out = (unsigned long)x;
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *out = NULL;
    uint8_t pk[32];
    char err[256], b64[45];
    int c;
    while ((c = next_opt(argc, argv, opts, "keygen")) != -1) {
        if (c == 'o')
            out = optarg;
        else if (c == 'h')
            return fputs(usage_text, stdout), 0;
        else
            return EXIT_USAGE;
    }
    if (!out)
        return usage_error("keygen", "%s is required", "--out");
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

/* ---- delegate: on the offline machine that holds the long-term key ---- */

static int cmd_delegate(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"online-key", required_argument, NULL, 'O'},
                                         {"cert", required_argument, NULL, 'C'},
                                         {"not-before", required_argument, NULL, 'n'},
                                         {"valid-for", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *key = NULL, *online = NULL, *cert = NULL;
    unsigned long valid = 7 * 86400, from = 0;
    int c, bad = 0, has_from = 0;
    while (!bad && (c = next_opt(argc, argv, opts, "delegate")) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'O':
            online = optarg;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'n':
            bad = parse_num("delegate", "not-before", optarg, 0, 1UL << 40, &from);
            has_from = 1;
            break;
        case 'v':
            bad = parse_num("delegate", "valid-for", optarg, 60, 10 * 31536000UL, &valid);
            break;
        case 'h':
            return fputs(usage_text, stdout), 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (bad)
        return EXIT_USAGE;
    if (!key || !online || !cert)
        return usage_error("delegate", "--key, --online-key and --cert are required");
    char err[256];
    uint8_t longterm[64], online_pk[32];
    tb_rt_delegation d;
    /* A minute of slack, as the server's own delegations have. */
    int64_t mint =
        has_from ? (int64_t)from : tb_clock_real(tb_clock_system()) / (int64_t)TB_NS_PER_SEC - 60;
    int rc = tb_rt_key_load(key, longterm, err, sizeof(err));
    if (rc == 0 && (rc = tb_rt_key_generate(online, online_pk, err, sizeof(err))) == 0 &&
        (rc = tb_rt_key_load(online, d.online_sk, err, sizeof(err))) == 0) {
        uint8_t osk[64];
        memcpy(osk, d.online_sk, sizeof(osk));
        rc = tb_rt_delegation_make(longterm, osk, mint, mint + (int64_t)valid, &d);
        sodium_memzero(osk, sizeof(osk));
        if (rc == 0)
            rc = tb_rt_cert_write(cert, &d, err, sizeof(err));
        else
            snprintf(err, sizeof(err), "cannot build the CERT: %s", tb_strerror(rc));
    }
    sodium_memzero(longterm, sizeof(longterm));
    sodium_memzero(&d, sizeof(d));
    if (rc < 0) {
        fprintf(stderr, "tbroughtime: %s\n", err);
        return 1;
    }
    char when[TB_CLOCK_RFC3339_LEN];
    tb_clock_format_rfc3339((mint + (int64_t)valid) * (int64_t)TB_NS_PER_SEC, when, sizeof(when));
    printf("%s: delegation valid until %s; copy it and %s to the server\n", cert, when, online);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"max-batch", required_argument, NULL, 'b'},
                                         {"flush-interval-us", required_argument, NULL, 'f'},
                                         {"radius", required_argument, NULL, 'r'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"stats-interval", required_argument, NULL, 's'},
                                         {"tcp", no_argument, NULL, 'T'},
                                         {"cert", required_argument, NULL, 'C'},
                                         {"online-key", required_argument, NULL, 'O'},
                                         {"cert-warn", required_argument, NULL, 'W'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *key = NULL, *listen = NULL, *cert = NULL, *online = NULL;
    char err[256];
    unsigned long batch = 64, flush_us = 1000, radius = 3, threads = 1, stats_s = 60,
                  warn_s = 86400;
    tb_rt_srv_config scfg;
    tb_rt_udp_config ucfg;
    int c, bad = 0, tcp = 0;
    while (!bad && (c = next_opt(argc, argv, opts, "serve")) != -1) {
        switch (c) {
        case 'T':
            tcp = 1;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'O':
            online = optarg;
            break;
        case 'W':
            bad = parse_num("serve", "cert-warn", optarg, 0, 31536000, &warn_s);
            break;
        case 'k':
            key = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'b':
            bad = parse_num("serve", "max-batch", optarg, 1, TB_RT_SRV_MAX_BATCH, &batch);
            break;
        case 'f':
            bad = parse_num("serve", "flush-interval-us", optarg, 1, 10000000, &flush_us);
            break;
        case 'r':
            bad = parse_num("serve", "radius", optarg, 1, 86400, &radius);
            break;
        case 't':
            bad = parse_num("serve", "threads", optarg, 1, 64, &threads);
            break;
        case 's':
            bad = parse_num("serve", "stats-interval", optarg, 0, 86400, &stats_s);
            break;
        case 'h':
            return fputs(usage_text, stdout), 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (bad)
        return EXIT_USAGE;
    if (!key == !cert || !cert != !online)
        return usage_error("serve", "give either --key, or --cert and --online-key");
    tb_rt_srv_config_default(&scfg);
    tb_rt_udp_config_default(&ucfg);
    if (listen && strlen(listen) >= sizeof(ucfg.listen))
        return usage_error("serve", "--listen \"%s\" is too long", listen);
    if (key ? tb_rt_key_load(key, scfg.longterm_sk, err, sizeof(err)) < 0
            : tb_rt_delegation_load(cert, online,
                                    tb_clock_real(tb_clock_system()) / (int64_t)TB_NS_PER_SEC,
                                    &scfg.delegation, err, sizeof(err)) < 0) {
        fprintf(stderr, "tbroughtime: %s\n", err);
        return 1;
    }
    scfg.has_delegation = cert != NULL;
    ucfg.cert_warn_ns = warn_s * TB_NS_PER_SEC;
    scfg.max_batch = (unsigned)batch;
    scfg.queue_cap = 4 * (unsigned)batch;
    if (listen)
        snprintf(ucfg.listen, sizeof(ucfg.listen), "%s", listen);
    ucfg.flush_interval_ns = flush_us * TB_NS_PER_US;
    ucfg.radius_s = (uint32_t)radius;
    ucfg.stats_interval_ns = stats_s * TB_NS_PER_SEC;
    ucfg.reuseport = threads > 1;
    ucfg.tcp = tcp;
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
    errno = 0;
    unsigned long x = v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 0) : 0;
    if (v[0] >= '0' && v[0] <= '9' && !*end && !errno && x <= UINT32_MAX &&
        tb_rt_profile_get((uint32_t)x)) {
        out[0] = (uint32_t)x;
        *n = 1;
        return 0;
    }
    return -1;
}

/* What came of one exchange, for the line that reports it. */
typedef struct outcome {
    int rc;
    tb_rt_reason why; /* when the server answered and the answer failed verification */
    int answered;     /* something came back (so another address would not help) */
    char detail[300]; /* transport failures: what exactly */
} outcome;

/* A connected socket (SOCK_DGRAM or SOCK_STREAM) to addr ("host:port", "[v6]:port"). UDP: a
 * refused port then shows up as ECONNREFUSED on send or receive (the ICMP error is reported to
 * connected sockets only); TCP: connect fails with it, after at most TCP_WAIT_MS. */
#define TCP_WAIT_MS 6000
static int connect_to(const char *addr, int type, outcome *o)
{
    char host[300];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon[1] == 0 || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(o->detail, sizeof(o->detail), "\"%.200s\" is not HOST:PORT", addr);
        return o->rc = TB_ERR_INVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct addrinfo hints = {.ai_socktype = type, .ai_flags = AI_NUMERICSERV}, *res;
    int g = getaddrinfo(host, colon + 1, &hints, &res);
    if (g != 0) {
        snprintf(o->detail, sizeof(o->detail), "cannot resolve \"%.200s\": %s", host,
                 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return o->rc = TB_ERR_NOTFOUND;
    }
    int fd = socket(res->ai_family, type | SOCK_CLOEXEC, 0);
    struct timeval tv = {TCP_WAIT_MS / 1000, 0};
    if (fd >= 0 && type == SOCK_STREAM)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect */
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        if (type == SOCK_STREAM && errno == ECONNREFUSED)
            snprintf(o->detail, sizeof(o->detail), "nothing listening there (connection refused)");
        else
            snprintf(o->detail, sizeof(o->detail), "cannot connect a %s socket: %s",
                     type == SOCK_STREAM ? "TCP" : "UDP", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
        o->rc = TB_ERR_IO;
    }
    freeaddrinfo(res);
    return fd;
}

static void refused(outcome *o, int err)
{
    o->rc = TB_ERR_IO;
    if (err == ECONNREFUSED)
        snprintf(o->detail, sizeof(o->detail), "nothing listening there (connection refused)");
    else
        snprintf(o->detail, sizeof(o->detail), "%s", strerror(err));
}

/* Sends q's request over fd and verifies the answer, retrying with the RFC's backoff (1 s,
 * ×1.5). */
static void exchange_fd(int fd, tb_rt_query *q, unsigned attempts, outcome *o)
{
    const tb_clock *clk = tb_clock_system();
    uint8_t buf[TB_RT_RESPONSE_BUF];
    double wait_ms = 1000;
    o->rc = TB_ERR_TIMEOUT;
    for (unsigned a = 0; a < attempts && o->rc == TB_ERR_TIMEOUT; a++, wait_ms *= 1.5) {
        q->sent_ns = tb_clock_real(clk);
        if (send(fd, q->request, q->request_len, 0) < 0)
            return refused(o, errno);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)wait_ms) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        int64_t now = tb_clock_real(clk);
        if (n < 0)
            return refused(o, errno);
        o->answered = 1;
        o->rc = tb_rt_verify(q, buf, (size_t)n, now, &o->why);
    }
}

/* After silence: ask once without SRV. A server holding one key answers with it; if that
 * answer is not signed by the key we were given, the key is wrong (a server MUST stay silent
 * when SRV names a key it does not hold, so silence alone cannot tell). */
static void probe_key(int fd, const tb_rt_query *q, outcome *o)
{
    static tb_rt_query probe;
    uint8_t nonce[64];
    outcome p = {0};
    randombytes_buf(nonce, sizeof(nonce));
    if (q->nonce_len != 32 || tb_rt_query_init_flags(&probe, q->pubkey, q->offered, q->noffered,
                                                     nonce, 0, TB_RT_QUERY_NO_SRV) < 0)
        return;
    exchange_fd(fd, &probe, 1, &p);
    if (p.answered && p.why == TB_RT_BAD_DELE_SIG)
        snprintf(o->detail, sizeof(o->detail),
                 "wrong public key: the server answers, but not with this key");
    else if (p.answered)
        snprintf(o->detail, sizeof(o->detail),
                 "no response to requests naming this key (SRV), though the server answers "
                 "others");
}

/* TCP (RFC 10049 framing): the request as it is, then the stream up to one whole packet. */
static void exchange_tcp(int fd, tb_rt_query *q, outcome *o)
{
    const tb_clock *clk = tb_clock_system();
    uint8_t buf[TB_RT_RESPONSE_BUF];
    size_t have = 0, pl = 0;
    q->sent_ns = tb_clock_real(clk);
    if (send(fd, q->request, q->request_len, MSG_NOSIGNAL) != (ssize_t)q->request_len)
        return refused(o, errno);
    o->rc = TB_ERR_TIMEOUT;
    while (pl == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TCP_WAIT_MS) <= 0)
            return;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n < 0)
            return refused(o, errno);
        if (n == 0) {
            snprintf(o->detail, sizeof(o->detail), "the server closed the connection");
            o->rc = TB_ERR_IO;
            return;
        }
        have += (size_t)n;
        if (tb_rt_frame_next(buf, have, sizeof(buf), &pl) < 0) {
            o->answered = 1;
            o->rc = TB_ERR_MALFORMED;
            o->why = TB_RT_BAD_FORMAT;
            return;
        }
    }
    o->answered = 1;
    o->rc = tb_rt_verify(q, buf, pl, tb_clock_real(clk), &o->why);
}

static void exchange(const char *addr, tb_rt_query *q, unsigned attempts, outcome *o)
{
    memset(o, 0, sizeof(*o));
    if (strncmp(addr, "tcp://", 6) == 0) {
        int fd = connect_to(addr + 6, SOCK_STREAM, o);
        if (fd < 0)
            return;
        exchange_tcp(fd, q, o);
        if (o->rc == TB_ERR_TIMEOUT)
            snprintf(o->detail, sizeof(o->detail), "no response");
        close(fd);
        return;
    }
    int fd = connect_to(addr, SOCK_DGRAM, o);
    if (fd < 0)
        return;
    exchange_fd(fd, q, attempts, o);
    if (o->rc == TB_ERR_TIMEOUT) {
        snprintf(o->detail, sizeof(o->detail), "no response");
        probe_key(fd, q, o);
    }
    close(fd);
}

static void print_result(const char *name, const tb_rt_query *q, const outcome *o)
{
    char when[TB_CLOCK_RFC3339_LEN];
    if (o->rc < 0 && o->why == TB_RT_UNSYNCED) {
        printf("%s: UNSYNCHRONISED: the server's clock is not synchronised (RADI 0xffffffff); "
               "no time taken\n",
               name);
        return;
    }
    if (o->rc < 0) {
        const char *hint = o->why == TB_RT_BAD_DELE_SIG ? " (wrong public key?)" : "";
        printf("%s: REJECTED: %s%s\n", name,
               o->answered && o->why != TB_RT_OK ? tb_rt_reason_name(o->why)
               : o->detail[0]                    ? o->detail
                                                 : tb_strerror(o->rc),
               hint);
        return;
    }
    tb_clock_format_rfc3339(q->midp_us * 1000, when, sizeof(when));
    printf("%s: midpoint %s (%lld) radius %.3f s rtt %.3f ms offset %+.3f s version %s "
           "(0x%08x) verdict valid\n",
           name, when, (long long)(q->midp_us / 1000000), (double)q->radi_us / 1e6,
           (double)q->rtt_ns / 1e6, (double)q->offset_ns / 1e9, tb_rt_version_name(q->version),
           q->version);
}

static int query_one(const char *server, const char *pub, const char *version)
{
    uint32_t vers[4];
    unsigned nv;
    uint8_t pk[32], nonce[64];
    if (!server || !pub)
        return usage_error("query", "%s", "needs --server and --pubkey, or --servers");
    if (tb_rt_key_from_b64(pub, pk) < 0)
        return usage_error("query", "--pubkey \"%s\" is not a base64 32-byte key", pub);
    if (parse_versions(version ? version : "all", vers, &nv) < 0)
        return usage_error("query", "unknown --version \"%s\"", version);
    static tb_rt_query q;
    outcome o;
    randombytes_buf(nonce, sizeof(nonce));
    if (tb_rt_query_init(&q, pk, vers, nv, nonce, 0) < 0)
        return 1;
    exchange(server, &q, 3, &o);
    print_result(server, &q, &o);
    return o.rc < 0 ? 1 : 0;
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

static void list_warning(void *arg, const char *msg)
{
    fprintf(stderr, "tbroughtime: %s: warning: %s\n", *(const char **)arg, msg);
}

/* Queries one server of a list, each of its addresses in turn until one answers. */
static void query_entry(const tb_rt_server_entry *s, tb_rt_query *q, outcome *o)
{
    for (unsigned a = 0; a < s->naddr; a++) {
        exchange(s->address[a], q, 3, o);
        if (o->rc == 0 || o->answered)
            return;
        if (a + 1 < s->naddr)
            fprintf(stderr, "tbroughtime: %s: %s: %s; trying %s\n", s->name, s->address[a],
                    o->detail, s->address[a + 1]);
    }
}

/* The versions a list entry is asked for: its own, or (none given) every framed one. */
static unsigned entry_versions(const tb_rt_server_entry *s, uint32_t *v)
{
    if (s->version)
        return v[0] = s->version, 1;
    v[0] = TB_RT_VER_RFC;
    v[1] = TB_RT_VER_DRAFT08;
    v[2] = TB_RT_VER_DRAFT11;
    v[3] = TB_RT_VER_DRAFT12;
    return 4;
}

static int query_list(const char *path, const char *report)
{
    static tb_rt_server_entry e[TB_RT_LIST_MAX];
    static tb_rt_query q[2 * TB_RT_LIST_MAX];
    const tb_rt_query *qs[2 * TB_RT_LIST_MAX];
    unsigned qi[2 * TB_RT_LIST_MAX]; /* which entry each answered query asked */
    unsigned n = 0, skipped = 0, ok = 0, failed[TB_RT_LIST_MAX] = {0};
    size_t len = 0;
    char err[300];
    char *json = read_file(path, &len);
    if (!json) {
        fprintf(stderr, "tbroughtime: %s: cannot read (or over 1 MiB)\n", path);
        return 1;
    }
    int rc = tb_rt_server_list_parse(json, len, e, TB_RT_LIST_MAX, &n, &skipped, list_warning,
                                     &path, err, sizeof(err));
    free(json);
    if (rc < 0 || n == 0) {
        fprintf(stderr, "tbroughtime: %s: %s\n", path, rc < 0 ? err : "no usable servers");
        return 1;
    }
    if (n < 3)
        fprintf(stderr, "tbroughtime: warning: %u servers; the RFC asks for at least 3\n", n);
    /* The whole list twice in the same order, each nonce chained from the last response that
     * verified; a server that does not answer (or not validly) is left out of the chain. */
    for (unsigned k = 0; k < 2 * n; k++) {
        const tb_rt_server_entry *s = &e[k % n];
        uint32_t vers[4];
        uint8_t rnd[32], nonce[64];
        unsigned nv = entry_versions(s, vers), nl = s->version == TB_RT_VER_GOOGLE ? 64 : 32;
        outcome o;
        randombytes_buf(rnd, sizeof(rnd));
        if (ok == 0)
            randombytes_buf(nonce, sizeof(nonce));
        else
            tb_rt_chain_nonce(qs[ok - 1]->response, qs[ok - 1]->response_len, rnd, nonce, nl);
        if (tb_rt_query_init(&q[k], s->pubkey, vers, nv, nonce, 0) < 0) {
            fprintf(stderr, "tbroughtime: %s: cannot build a request\n", s->name);
            return 1;
        }
        if (ok > 0) {
            memcpy(q[k].rand, rnd, 32);
            q[k].has_rand = 1;
        }
        query_entry(s, &q[k], &o);
        print_result(s->name, &q[k], &o);
        if (o.rc < 0) { /* never a malfeasance report on protocol errors */
            failed[k % n]++;
            continue;
        }
        qi[ok] = k % n;
        qs[ok++] = &q[k];
    }
    unsigned bi, bj, nfailed = 0;
    for (unsigned i = 0; i < n; i++) {
        if (failed[i]) {
            printf("unanswered: %s (%u of 2 queries)\n", e[i].name, failed[i]);
            nfailed++;
        }
    }
    if (tb_rt_causality_check(qs, ok, &bi, &bj) == 0) {
        printf("sequence: %u responses consistent with causal ordering%s\n", ok,
               nfailed ? "; some servers did not answer" : "");
        return nfailed ? 1 : 0;
    }
    printf("sequence: MALFEASANCE: response %u (%s) lower bound is after response %u (%s) upper "
           "bound; report in %s\n",
           bi, e[qi[bi]].name, bj, e[qi[bj]].name, report);
    return write_report(report, qs, ok) < 0 ? 1 : 2;
}

static int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                         {"pubkey", required_argument, NULL, 'p'},
                                         {"version", required_argument, NULL, 'v'},
                                         {"servers", required_argument, NULL, 'l'},
                                         {"report", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *server = NULL, *pub = NULL, *version = NULL, *list = NULL, *report = NULL;
    int c;
    while ((c = next_opt(argc, argv, opts, "query")) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'p':
            pub = optarg;
            break;
        case 'v':
            version = optarg;
            break;
        case 'l':
            list = optarg;
            break;
        case 'r':
            report = optarg;
            break;
        case 'h':
            return fputs(usage_text, stdout), 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (list && (server || pub || version))
        return usage_error("query", "%s", "--servers goes without --server, --pubkey, --version");
    if (!list && report)
        return usage_error("query", "%s", "--report goes with --servers");
    if (list)
        return query_list(list, report ? report : "roughtime-malfeasance.json");
    return query_one(server, pub, version);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return fputs(usage_text, stdout), 0;
    if (strcmp(argv[1], "--version") == 0)
        return tb_opt_print_version("tbroughtime"), 0;
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "delegate") == 0)
        return cmd_delegate(argc - 1, argv + 1);
    if (strcmp(argv[1], "query") == 0)
        return cmd_query(argc - 1, argv + 1);
    return usage_error("-", "unknown command \"%s\"", argv[1]);
}
