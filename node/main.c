/* tbnode: the time mesh daemon. This file owns the process: arguments, signals, the event
 * loop. Everything it wires together takes the loop, the clock and the log explicitly. */
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define TB_VERSION "0.1.0"

enum { EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tbnode [--mode hybrid|server|client] [--log-level error|warn|info|debug]\n"
            "\n"
            "tbnode joins a QUIC time mesh, measures time sources and cross-checks them across\n"
            "regions. It runs until SIGINT or SIGTERM.\n"
            "\n"
            "  --mode M         hybrid (accept and dial, default), server (accept only),\n"
            "                   client (dial only)\n"
            "  --log-level L    error, warn, info (default) or debug\n"
            "  --version        print the version and exit\n"
            "  --help           print this help and exit\n");
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    tb_log *log = w->data;
    tb_log_info(log, "signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *mode = "hybrid";
    tb_log log;
    tb_log_init(&log, "tbnode", TB_LOG_INFO);

    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (strcmp(optarg, "hybrid") && strcmp(optarg, "server") && strcmp(optarg, "client")) {
                fprintf(stderr, "tbnode: --mode: '%s' is not hybrid, server or client\n", optarg);
                return EXIT_USAGE;
            }
            mode = optarg;
            break;
        case 'l':
            if (tb_log_level_parse(optarg, &log.level) != TB_OK) {
                fprintf(stderr, "tbnode: --log-level: '%s' is not error, warn, info or debug\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'V':
            printf("tbnode %s\n", TB_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tbnode: unexpected argument '%s' (see --help)\n", argv[optind]);
        return EXIT_USAGE;
    }

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        fprintf(stderr, "tbnode: cannot start the event loop (libev)\n");
        return 1;
    }
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    sigint.data = sigterm.data = &log;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);

    tb_log_info(&log, "tbnode %s starting in %s mode; Ctrl-C stops it", TB_VERSION, mode);
    ev_run(loop, 0);
    tb_log_info(&log, "stopped");
    return 0;
}
