/* tbnode: the time mesh daemon. This file owns the process: arguments, signals, the state
 * directory and the event loop. Everything it wires together takes the loop, the clock and
 * the log explicitly (node/node.h), so tests can run several nodes in one process. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/opt.h"
#include "http/h3.h"
#include "node/config.h"
#include "node/control.h"
#include "node/evidence_cli.h"
#include "node/history.h"
#include "node/node.h"
#include "node/privilege.h"
#include "node/service.h"
#include "node/timekeeper.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = TB_OPT_EXIT_USAGE };

/* Signals are delivered once: the first starts a clean stop, the timer bounds it. */
#define STOP_DEADLINE_S 1.5

typedef struct proc {
    tb_log log;
    struct ev_loop *loop;
    tb_timekeeper *tk;
    tb_service *service;
    const tb_node_config *cfg;
    ev_signal sigint, sigterm, sighup;
    ev_timer deadline;
    int stopping;
} proc;

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    proc *p = w->data;
    tb_log_warn(&p->log, "stop took longer than %.1f s; leaving anyway", STOP_DEADLINE_S);
    ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    proc *p = w->data;
    if (p->stopping)
        return;
    p->stopping = 1;
    tb_log_info(&p->log, "signal %d: closing connections and stopping", w->signum);
    tb_service_stopping(p->service);
    ev_timer_start(loop, &p->deadline);
    if (p->tk) {
        tb_timekeeper_stop(p->tk); /* on_stopped ends the loop once the closes are sent */
        return;
    }
    ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: read the certificate, key and revocation list again, then the config file and apply
 * its sources; on any error what runs stays and the log names the file (line and key). */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    proc *p = w->data;
    /* A refused file is logged by the node, naming it; the running one stays. */
    if (p->tk)
        (void)!tb_node_reload_certs(tb_timekeeper_node(p->tk));
    if (!p->cfg->file[0]) {
        tb_log_info(&p->log, "SIGHUP: certificates checked; no config file to reload (started "
                             "without --config)");
        return;
    }
    tb_node_config *fresh = calloc(1, sizeof(*fresh));
    char err[TB_NODE_ERR_MAX];
    if (!fresh)
        return;
    tb_node_config_defaults(fresh);
    int rc = tb_node_config_load_file(fresh, p->cfg->file, err, sizeof(err));
    if (rc == TB_OK && p->tk)
        rc = tb_timekeeper_reload(p->tk, fresh, err, sizeof(err));
    if (rc == TB_OK)
        tb_log_info(&p->log, "SIGHUP: %s reloaded", p->cfg->file);
    else
        tb_log_error(&p->log, "SIGHUP: %s; not applied, the running configuration stays", err);
    tb_node_config_free(fresh);
    free(fresh);
}

static void on_stopped(void *arg)
{
    proc *p = arg;
    ev_break(p->loop, EVBREAK_ALL);
}

static int run(proc *p, const tb_node_config *cfg)
{
    tb_priv priv;
    if (tb_priv_init(&priv, cfg->user, &p->log) != TB_OK ||
        tb_priv_state_dir(&priv, cfg->state_dir, &p->log) != TB_OK ||
        tb_priv_key_file(&priv, cfg->key, &p->log) != TB_OK)
        return EXIT_RUNTIME;
    p->loop = ev_default_loop(EVFLAG_AUTO);
    if (!p->loop) {
        tb_log_error(&p->log, "cannot start the event loop (libev)");
        return EXIT_RUNTIME;
    }
    ev_signal_init(&p->sigint, on_signal, SIGINT);
    ev_signal_init(&p->sigterm, on_signal, SIGTERM);
    ev_signal_init(&p->sighup, on_hup, SIGHUP);
    ev_timer_init(&p->deadline, on_deadline, STOP_DEADLINE_S, 0);
    p->sigint.data = p->sigterm.data = p->sighup.data = p->deadline.data = p;
    p->cfg = cfg;
    ev_signal_start(p->loop, &p->sigint);
    ev_signal_start(p->loop, &p->sigterm);
    ev_signal_start(p->loop, &p->sighup);

    char listen[TB_ADDR_HOST_MAX + 16];
    tb_addr_hostport_format(&cfg->listen, listen, sizeof(listen));
    tb_log_info(&p->log, "tbnode %s starting: mode %s, listen %s, %zu seed peer(s), state %s",
                TB_VERSION, tb_node_mode_name(cfg->mode),
                cfg->mode == TB_NODE_CLIENT ? "(none)" : listen, cfg->npeers, cfg->state_dir);
    tb_tk_options opt = {.on_stopped = on_stopped, .arg = p};
    if (tb_timekeeper_new(&p->tk, p->loop, &p->log, tb_clock_system(), cfg, &opt) != TB_OK)
        return EXIT_RUNTIME;
    /* Sockets bound, state opened: root is no longer needed. */
    if (tb_priv_drop(&priv, &p->log) != TB_OK || tb_service_new(&p->service, p->loop, &p->log)) {
        tb_timekeeper_free(p->tk);
        return EXIT_RUNTIME;
    }
    tb_service_ready(p->service, p->tk);
    ev_run(p->loop, 0);
    tb_service_free(p->service);
    p->service = NULL;
    tb_timekeeper_free(p->tk);
    p->tk = NULL;
    tb_log_info(&p->log, "stopped");
    return 0;
}

static const char control_usage[] =
    "usage: tbnode status [--state-dir DIR] [--json | --broadcasts]\n"
    "       tbnode status --remote HOST:PORT --ca F [--cert F --key F] [--json]\n"
    "       tbnode broadcast [--state-dir DIR] TEXT (one line, < 512 bytes)\n"
    "--remote asks the node listening on the mesh port HOST:PORT over HTTP/3, presenting an\n"
    "operator certificate of the mesh (tbcert issue --role operator): /status or /status.json.\n";

/* Where `tbnode status --remote` goes and what it presents. */
typedef struct remote_args {
    const char *addr, *cert, *key, *ca;
} remote_args;

static int control_usage_error(const char *what)
{
    fprintf(stderr, "tbnode: %s\n%s", what, control_usage);
    return EXIT_USAGE;
}

/* The request line for `tbnode status|broadcast`, or an exit code (0 after --help). */
static int control_args(int argc, char **argv, const char **dir, char *line, size_t len,
                        remote_args *ra)
{
    static const struct option opts[] = {
        {"remote", required_argument, NULL, 'r'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"ca", required_argument, NULL, 'a'},
        {"state-dir", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"broadcasts", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int status = strcmp(argv[0], "status") == 0, json = 0, bcasts = 0, c;
    char err[256];
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(control_usage, stdout);
            return 0;
        }
        if (c == 's') {
            *dir = optarg;
        } else if (c == 'r' || c == 'c' || c == 'k' || c == 'a') {
            if (!status)
                return control_usage_error("--remote, --cert, --key, --ca go with status only");
            *(c == 'r' ? &ra->addr : c == 'c' ? &ra->cert : c == 'k' ? &ra->key : &ra->ca) = optarg;
        } else if (c == 'j' || c == 'b') {
            if (!status)
                return control_usage_error("--json and --broadcasts go with status only");
            *(c == 'j' ? &json : &bcasts) = 1;
        } else {
            tb_opt_bad_option(c, argv, "tbnode --help", err, sizeof(err));
            return control_usage_error(err);
        }
    }
    if (status && json && bcasts)
        return control_usage_error("--json or --broadcasts, not both");
    if ((ra->cert || ra->key || ra->ca) && !ra->addr)
        return control_usage_error("--cert, --key and --ca go with --remote");
    if (ra->addr && (!ra->ca || !ra->cert != !ra->key || bcasts))
        return control_usage_error(
            "--remote needs --ca, --cert and --key together, no --broadcasts");
    if (status && optind == argc) {
        snprintf(line, len, "status%s", json ? " json" : bcasts ? " broadcasts" : "");
        return -1;
    }
    const char *text = optind < argc ? argv[optind] : "";
    if (status || optind != argc - 1 || !text[0] || strpbrk(text, "\n\r") || strlen(text) >= 512)
        return control_usage_error(status ? "status takes no arguments"
                                          : "broadcast takes one line of text, < 512 bytes");
    snprintf(line, len, "broadcast %s", text);
    return -1;
}

/* `tbnode status --remote`: the node's answer over HTTP/3 (http/h3.h), the same text or JSON
 * as its control socket gives. */
static int remote_status(const remote_args *ra, int json)
{
    tb_log log;
    tb_log_init(&log, "tbnode", TB_LOG_WARN);
    tb_h3_get_config cfg = {.addr = ra->addr,
                            .cert = ra->cert,
                            .key = ra->key,
                            .ca = ra->ca,
                            .path = json ? "/status.json" : "/status",
                            .log = &log};
    tb_h3_result res;
    if (tb_h3_get(&cfg, &res) != TB_OK) {
        fprintf(stderr, "tbnode: %s: %s\n", ra->addr, res.err);
        return EXIT_RUNTIME;
    }
    int ok = res.status == 200;
    if (!ok)
        fprintf(stderr, "tbnode: %s answered %u: ", ra->addr, res.status);
    fwrite(res.body ? res.body : "", 1, res.len, ok ? stdout : stderr);
    free(res.body);
    return ok ? 0 : EXIT_RUNTIME;
}

/* `tbnode status|broadcast [--state-dir DIR] ...`: asks a running node over its control
 * socket. */
static int control_cmd(int argc, char **argv)
{
    const char *dir = TB_NODE_DEFAULT_STATE_DIR;
    char line[TB_CONTROL_LINE_MAX];
    remote_args ra = {0};
    int rc = control_args(argc - 1, argv + 1, &dir, line, sizeof(line), &ra);
    if (rc >= 0)
        return rc;
    if (ra.addr)
        return remote_status(&ra, strcmp(line, "status json") == 0);
    char err[TB_NODE_ERR_MAX];
    if (tb_control_request(dir, line, 3000, stdout, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "tbnode: %s\n", err);
        return EXIT_RUNTIME;
    }
    return 0;
}

typedef struct check_out {
    tb_log *log; /* NULL: print to stderr as `tbnode check-config` does */
} check_out;

static void check_say(void *arg, int is_error, const char *text)
{
    check_out *o = arg;
    if (o->log)
        tb_log_write(o->log, is_error ? TB_LOG_ERROR : TB_LOG_WARN, "%s", text);
    else
        fprintf(stderr, "tbnode: %s%s\n", is_error ? "" : "warning: ", text);
}

static void check_say_error(void *arg, const char *text)
{
    check_say(arg, 1, text);
}

static const char check_usage[] =
    "usage: tbnode check-config FILE\n"
    "Checks the whole file (mesh keys, sources, crosscheck, roughtime) as tbnode would read it,\n"
    "opening nothing; prints every error as FILE:LINE: key 'K': what, and warnings (a source\n"
    "listed twice, a file this user cannot read). Exit 0 and a summary line when the file is\n"
    "good, 2 otherwise.\n";

/* `tbnode check-config FILE` */
static int check_config_cmd(int argc, char **argv)
{
    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(check_usage, stdout);
        return 0;
    }
    if (argc != 3 || argv[2][0] == '-') {
        fprintf(stderr, "tbnode: check-config takes one config file\n%s", check_usage);
        return EXIT_USAGE;
    }
    static tb_node_config cfg;
    tb_node_config_defaults(&cfg);
    char summary[512];
    check_out o = {NULL};
    unsigned errors = tb_node_config_load_each(&cfg, argv[2], check_say_error, &o);
    if (!cfg.lc)
        return EXIT_USAGE;
    errors += tb_tk_config_check(&cfg, TB_TK_CHECK_FILES | TB_TK_CHECK_ALL, check_say, &o, summary,
                                 sizeof(summary));
    if (errors == 0)
        printf("%s: good: %s\n", argv[2], summary);
    tb_node_config_free(&cfg);
    return errors ? EXIT_USAGE : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "broadcast") == 0))
        return control_cmd(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "history") == 0)
        return tb_history_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "evidence") == 0)
        return tb_evidence_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check-config") == 0)
        return check_config_cmd(argc, argv);
    static proc p;
    tb_log_init(&p.log, "tbnode", TB_LOG_INFO);
    static tb_node_config cfg;
    tb_node_config_defaults(&cfg);
    tb_node_action action;
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_from_args(&cfg, argc, argv, &action, err, sizeof(err)) != TB_OK) {
        fprintf(stderr, "tbnode: %s\n", err);
        tb_node_config_free(&cfg);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (action == TB_NODE_HELP) {
        tb_node_config_usage(stdout);
    } else if (action == TB_NODE_VERSION) {
        tb_opt_print_version("tbnode");
    } else {
        p.log.level = cfg.log_level;
        /* The whole file before anything opens: a bad source fails the start, not the reload. */
        check_out o = {&p.log};
        rc = tb_tk_config_check(&cfg, 0, check_say, &o, NULL, 0) ? EXIT_USAGE : run(&p, &cfg);
    }
    tb_node_config_free(&cfg);
    return rc;
}
