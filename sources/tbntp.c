/* tbntp query HOST[:PORT] [--nts ...]: measures one NTP server once through the same source
 * framework and driver the node uses (with NTS: the nts driver, KE exchange first), and prints
 * offset, delay, error bound, stratum and reference id, or why the reply was rejected. Exit 0
 * measured, 1 could not start, 2 bad arguments, 3 no reply, 4 rejected. */
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/opt.h"
#include "ntp/packet.h"
#include "sources/ntp_driver.h"
#include "resolve/resolver.h"
#include "sources/source.h"

enum { EXIT_START = 1, EXIT_NO_REPLY = 3, EXIT_REJECTED = 4 };

#define TIMEOUT_MIN_S 0.01
#define TIMEOUT_MAX_S 3600.0

typedef struct query {
    struct ev_loop *loop;
    tb_source *src;
    int rc;
    uint64_t seen_received;
} query;

static void print_server(const tb_source_id *id)
{
    if (id->address[0] && strcmp(id->address, id->name) != 0)
        printf("server   %s (%s)\n", id->name, id->address);
    else
        printf("server   %s\n", id->name);
}

static void print_measurement(void *arg, const tb_source_meas *m)
{
    query *q = arg;
    const tb_ntp_client *c = tb_ntp_driver_client(q->src);
    char refid[16];
    tb_ntp_refid_format((uint8_t)m->stratum, m->refid, refid, sizeof(refid));
    print_server(m->source);
    printf("offset   %+.9f s\n", (double)m->offset_ns / 1e9);
    printf("delay    %.9f s\n", (double)m->delay_ns / 1e9);
    printf("error    %.9f s\n", (double)m->error_ns / 1e9);
    printf("stratum  %d\n", m->stratum);
    printf("refid    %s\n", refid);
    const tb_nts_assoc *nts = tb_ntp_driver_nts(q->src);
    if (nts) {
        tb_nts_stats st;
        tb_nts_assoc_stats(nts, &st);
        printf("auth     NTS (AEAD_AES_SIV_CMAC_256), %zu cookies left\n", st.cookies);
    }
    if (c)
        printf("leap %u, version %u, root delay %.6f s, root dispersion %.6f s\n",
               c->last_reply.leap, c->last_reply.version,
               (double)tb_ntp_short_to_ns(c->last_reply.root_delay) / 1e9,
               (double)tb_ntp_short_to_ns(c->last_reply.root_dispersion) / 1e9);
    q->rc = 0;
    ev_break(q->loop, EVBREAK_ALL);
}

/* After each loop iteration: a reply that came back rejected ends the query. */
static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    query *q = w->data;
    (void)revents;
    const tb_ntp_client *c = q->src ? tb_ntp_driver_client(q->src) : NULL;
    if (!c || c->n_received == q->seen_received)
        return;
    q->seen_received = c->n_received;
    if (c->last_reject != TB_NTP_ACCEPTED && q->rc != 0) {
        print_server(tb_source_identity(q->src));
        printf("rejected %s\n", tb_ntp_reject_name(c->last_reject));
        if (c->kiss[0])
            printf("kiss     %s\n", c->kiss);
        printf("stratum  %u\n", c->last_reply.stratum);
        q->rc = EXIT_REJECTED;
        ev_break(loop, EVBREAK_ALL);
    }
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static const char usage_text[] =
    "usage: tbntp query HOST[:PORT] [--timeout SECONDS] [--debug]\n"
    "                   [--nts [--ntsport PORT] [--ca-file FILE] [--server-name NAME]]\n"
    "       tbntp --help | --version\n"
    "\n"
    "Measures one NTP server once, as the node's NTP source does, and prints offset, delay,\n"
    "error bound, stratum and reference id, or why the reply was rejected.\n"
    "  --timeout S   how long to wait for a valid reply, 0.01-3600 s (default 6)\n"
    "  --debug       log the source's state changes on stderr\n"
    "  --nts         authenticate with NTS (RFC 8915): HOST is the NTS-KE server, PORT the NTP\n"
    "                port used unless the KE server names one\n"
    "  --ntsport P   the NTS-KE port (default 4460)\n"
    "  --ca-file F   trust the CAs in this PEM file instead of the system store\n"
    "  --server-name N  the name the KE server's certificate must carry (default HOST)\n"
    "\n"
    "Exit codes: 0 measured, 1 could not start, 2 bad arguments, 3 no reply, 4 rejected.\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "tbntp: %s\n", what);
    return TB_OPT_EXIT_USAGE;
}

/* Returns -1 to go on and measure, else the exit code (0 after --help or --version). */
static int parse_args(int argc, char **argv, const char **host, double *timeout, tb_log *log,
                      tb_source_config *cfg)
{
    static const struct option opts[] = {
        {"nts", no_argument, NULL, 'n'},
        {"ntsport", required_argument, NULL, 'p'},
        {"ca-file", required_argument, NULL, 'c'},
        {"server-name", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    char err[256];
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            tb_opt_print_version("tbntp");
            return 0;
        case 't':
            if (tb_opt_parse_double("--timeout", optarg, TIMEOUT_MIN_S, TIMEOUT_MAX_S, timeout, err,
                                    sizeof(err)) != TB_OK)
                return usage_error(err);
            break;
        case 'd':
            log->level = TB_LOG_DEBUG;
            break;
        case 'n':
            cfg->kind = TB_SOURCE_NTS;
            break;
        case 'p':
            if (tb_addr_port_parse(optarg, strlen(optarg), 0, &cfg->ntsport, NULL) != TB_OK)
                return usage_error("--ntsport takes a port from 1 to 65535");
            break;
        case 'c':
        case 's': {
            char *dst = c == 'c' ? cfg->ca_file : cfg->server_name;
            if (snprintf(dst, TB_SOURCE_NAME_MAX, "%s", optarg) >= TB_SOURCE_NAME_MAX)
                return usage_error(c == 'c' ? "--ca-file: path too long"
                                            : "--server-name: name too long");
            break;
        }
        default:
            tb_opt_bad_option(c, argv, "tbntp --help", err, sizeof(err));
            return usage_error(err);
        }
    }
    if (optind == argc || strcmp(argv[optind], "query") != 0)
        return usage_error(optind == argc ? "a command is needed: query HOST[:PORT] (see tbntp "
                                            "--help)"
                                          : "the only command is query (see tbntp --help)");
    if (argc - optind != 2)
        return usage_error("query takes exactly one HOST[:PORT] (see tbntp --help)");
    if (cfg->kind != TB_SOURCE_NTS && (cfg->ca_file[0] || cfg->server_name[0]))
        return usage_error("--ca-file and --server-name need --nts");
    *host = argv[optind + 1];
    return -1;
}

int main(int argc, char **argv)
{
    double timeout = 6.0;
    const char *host = NULL;
    tb_log log;
    tb_log_init(&log, "tbntp", TB_LOG_ERROR);
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    int rc = parse_args(argc, argv, &host, &timeout, &log, &cfg);
    if (rc >= 0)
        return rc;
    query q = {.loop = ev_default_loop(0), .rc = EXIT_NO_REPLY};
    tb_resolver *resolver;
    if (tb_resolver_thread_create(q.loop, &resolver) < 0)
        return EXIT_START;
    tb_source_env env = {.loop = q.loop,
                         .log = &log,
                         .clock = tb_clock_system(),
                         .resolver = resolver,
                         .on_measurement = print_measurement,
                         .measurement_arg = &q};
    const tb_source_driver *drv = cfg.kind == TB_SOURCE_NTS ? tb_nts_driver() : tb_ntp_driver();
    int err = TB_ERR_INVAL;
    if (snprintf(cfg.address, sizeof(cfg.address), "%s", host) >= (int)sizeof(cfg.address) ||
        (err = tb_source_create(&env, drv, &cfg, NULL, &q.src)) < 0) {
        tb_resolver_thread_destroy(resolver);
        if (err == TB_ERR_NOTFOUND) /* the trust store; the log line said which */
            return EXIT_START;
        fprintf(stderr, "tbntp: \"%s\" is not HOST[:PORT]\n", host);
        return TB_OPT_EXIT_USAGE;
    }
    ev_check check;
    ev_check_init(&check, check_cb);
    check.data = &q;
    ev_check_start(q.loop, &check);
    ev_timer deadline;
    ev_timer_init(&deadline, timeout_cb, timeout, 0.0);
    ev_timer_start(q.loop, &deadline);
    if (tb_source_start(q.src) == 0)
        ev_run(q.loop, 0);
    if (q.rc == EXIT_NO_REPLY)
        fprintf(stderr, "tbntp: no valid reply from %s within %.1f s (%s: %s)\n", host, timeout,
                tb_source_state_name(tb_source_state_of(q.src)), tb_source_reason(q.src));
    tb_source_destroy(q.src);
    tb_resolver_thread_destroy(resolver);
    return q.rc;
}
