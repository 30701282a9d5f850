/* tbnode: the time mesh daemon. This file owns the process: arguments, signals, the state
 * directory and the event loop. Everything it wires together takes the loop, the clock and
 * the log explicitly (node/node.h), so tests can run several nodes in one process. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "node/config.h"

#define TB_VERSION "0.1.0"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Signals are delivered once: the first starts a clean stop, the timer bounds it. */
#define STOP_DEADLINE_S 1.5

typedef struct proc {
    tb_log log;
    struct ev_loop *loop;
    ev_signal sigint, sigterm;
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
    ev_timer_start(loop, &p->deadline);
    ev_break(loop, EVBREAK_ALL);
}

/* The state directory holds keys' neighbours and the control socket: owner only. */
static int make_state_dir(const tb_log *log, const char *dir)
{
    if (mkdir(dir, 0700) == 0) {
        tb_log_info(log, "created state directory %s", dir);
        return TB_OK;
    }
    if (errno != EEXIST) {
        tb_log_error(log, "state_dir '%s': cannot create: %s", dir, strerror(errno));
        return TB_ERR_IO;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tb_log_error(log, "state_dir '%s': exists and is not a directory", dir);
        return TB_ERR_IO;
    }
    if (st.st_mode & 077)
        tb_log_warn(log, "state_dir '%s': readable by others (mode %03o); 0700 is expected", dir,
                    (unsigned)(st.st_mode & 0777));
    return TB_OK;
}

static int run(proc *p, const tb_node_config *cfg)
{
    if (make_state_dir(&p->log, cfg->state_dir) != TB_OK)
        return EXIT_RUNTIME;
    p->loop = ev_default_loop(EVFLAG_AUTO);
    if (!p->loop) {
        tb_log_error(&p->log, "cannot start the event loop (libev)");
        return EXIT_RUNTIME;
    }
    ev_signal_init(&p->sigint, on_signal, SIGINT);
    ev_signal_init(&p->sigterm, on_signal, SIGTERM);
    ev_timer_init(&p->deadline, on_deadline, STOP_DEADLINE_S, 0);
    p->sigint.data = p->sigterm.data = p->deadline.data = p;
    ev_signal_start(p->loop, &p->sigint);
    ev_signal_start(p->loop, &p->sigterm);

    char listen[TB_ADDR_HOST_MAX + 16];
    tb_addr_format(&cfg->listen, listen, sizeof(listen));
    tb_log_info(&p->log, "tbnode %s starting: mode %s, listen %s, %zu seed peer(s), state %s",
                TB_VERSION, tb_node_mode_name(cfg->mode),
                cfg->mode == TB_NODE_CLIENT ? "(none)" : listen, cfg->npeers, cfg->state_dir);
    ev_run(p->loop, 0);
    tb_log_info(&p->log, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
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
        printf("tbnode %s\n", TB_VERSION);
    } else {
        p.log.level = cfg.log_level;
        rc = run(&p, &cfg);
    }
    tb_node_config_free(&cfg);
    return rc;
}
