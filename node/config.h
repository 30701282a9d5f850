/* The tbnode configuration: defaults, the libconfig file (adr/0005) and the command-line
 * flags that override it. Owns the validated values; keeps the parsed file open so the groups
 * reserved for other modules (`sources`, `roughtime`) can be read by their owners, with the
 * same FILE:LINE error style. Every error text has the form
 *   "FILE:LINE: key 'listen': <what is wrong>"   (from the file)
 *   "--listen: <what is wrong>"                  (from a flag)
 * and the caller prints it after "tbnode: " and exits 2. */
#ifndef TB_NODE_CONFIG_H
#define TB_NODE_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/log.h"
#include "common/addr.h"
#include "common/cfg.h"
#include "node/budget.h"

#define TB_NODE_PATH_MAX 1024
#define TB_NODE_NAME_MAX 63
#define TB_NODE_USER_MAX 32
#define TB_NODE_MAX_SEEDS 32
#define TB_NODE_ERR_MAX 512

#define TB_NODE_DEFAULT_LISTEN "0.0.0.0:4433"
#define TB_NODE_DEFAULT_STATE_DIR "./tbnode-state"

typedef enum tb_node_mode {
    TB_NODE_HYBRID = 0, /* accepts and dials from one socket */
    TB_NODE_SERVER = 1, /* accepts only */
    TB_NODE_CLIENT = 2, /* dials only, no listening socket */
} tb_node_mode;

typedef struct tb_node_config {
    tb_node_mode mode;
    tb_addr_hostport listen;
    size_t npeers;
    tb_addr_hostport peers[TB_NODE_MAX_SEEDS]; /* seeds; names resolved at dial time */
    char peer_names[TB_NODE_MAX_SEEDS][TB_NODE_NAME_MAX + 1]; /* "name@": expected; "" = any */
    char cert[TB_NODE_PATH_MAX];                              /* "" when not given */
    char key[TB_NODE_PATH_MAX];
    char ca[TB_NODE_PATH_MAX];
    char crl[TB_NODE_PATH_MAX]; /* the mesh's revocation list (tbcert revoke); "" when none */
    char state_dir[TB_NODE_PATH_MAX];
    tb_log_level log_level;
    char name[TB_NODE_NAME_MAX + 1]; /* "" means: the name in the certificate */
    char user[TB_NODE_USER_MAX + 1]; /* switch to this user after start; "" = stay */
    bool retry;                      /* QUIC Retry tokens on accepted connections */
    uint32_t idle_timeout_ms;
    uint32_t keepalive_ms; /* 0 disables keep-alive */
    uint32_t connect_timeout_ms;
    uint32_t max_message_size;
    uint32_t ping_interval_ms;
    uint32_t max_peers;
    /* The `mesh` group (ADR 0010): */
    uint32_t socket_buffer; /* mesh.socket_buffer: UDP send and receive buffer, bytes; 0: quic's
                               default (4 MiB) */
    /* Group `mesh`: the address policy for learned peer addresses (common/addr.h). */
    size_t nallowed_ranges; /* mesh.allowed_ranges: 0 = any unicast address */
    tb_addr_range allowed_ranges[TB_ADDR_RANGES_MAX];
    bool allow_names; /* mesh.allow_names: learned host names (default false) */
    /* HyParView (ADR 0010): peers kept connected (a mesh of up to active_view + 1 nodes is
     * fully connected) and known in reserve. */
    uint32_t active_view;  /* mesh.active_view, 1..64 (default 8) */
    uint32_t passive_view; /* mesh.passive_view, 1..1024 (default 64) */
    /* Group `mesh`: per-peer budgets and bans (node/budget.h, quic/endpoint.h); 0 everywhere
     * means the built-in default. */
    tb_budget_config budget;   /* mesh.budget_*: the rates set; bursts are 3 s of each (4 s of
                                  bytes) */
    uint32_t penalties_to_ban; /* mesh.penalties_to_ban */
    uint32_t penalty_decay_s;  /* mesh.penalty_decay_s */
    uint32_t ban_s, ban_max_s; /* mesh.ban_s, mesh.ban_max_s */

    char file[TB_NODE_PATH_MAX]; /* the config file read, "" when none */
    config_t *lc;                /* that file, parsed; NULL when none */
} tb_node_config;

/* The keys other modules own: present in the file, parsed by their owner, never rejected. */
extern const char *const tb_node_config_reserved[];

void tb_node_config_defaults(tb_node_config *cfg);
void tb_node_config_free(tb_node_config *cfg);

/* Reads and validates FILE over cfg (which holds defaults or earlier values). Relative paths
 * in the file (cert, key, ca, state_dir) are taken relative to the file's directory. */
TB_WUR int tb_node_config_load_file(tb_node_config *cfg, const char *path, char *err,
                                    size_t errlen);

/* `tbnode check-config`: tb_node_config_load_file reporting every error of the file's own keys
 * through say (each "FILE:LINE: key 'K': what"), not only the first: the setting at fault is set
 * aside and the rest read again (tb_cfg_each_error). cfg gets the good keys and the tree, less
 * what was set aside, for the sections' readers. Returns the number of errors (a file that
 * cannot be read or parsed is one, and cfg->lc stays NULL). */
unsigned tb_node_config_load_each(tb_node_config *cfg, const char *path, tb_cfg_say say, void *arg);

/* Same from a string (tests, fuzzing); `name` stands for the file name in errors and relative
 * paths are kept as written. */
TB_WUR int tb_node_config_load_string(tb_node_config *cfg, const char *text, const char *name,
                                      char *err, size_t errlen);

/* A reserved group or list from the file (`sources`, `roughtime`), or NULL when absent. */
const config_setting_t *tb_node_config_section(const tb_node_config *cfg, const char *key);

typedef enum tb_node_action {
    TB_NODE_RUN = 0,
    TB_NODE_HELP = 1,
    TB_NODE_VERSION = 2,
} tb_node_action;

/* Parses `tbnode` arguments: defaults, then --config FILE, then every other flag on top.
 * Uses getopt_long (resets optind itself). */
TB_WUR int tb_node_config_from_args(tb_node_config *cfg, int argc, char **argv,
                                    tb_node_action *action, char *err, size_t errlen);

/* Checks that hold across keys once every source is applied (cert/key/ca given together,
 * keep-alive shorter than the idle timeout). */
TB_WUR int tb_node_config_check(const tb_node_config *cfg, char *err, size_t errlen);

const char *tb_node_mode_name(tb_node_mode mode);

/* The --help text, with the defaults. */
void tb_node_config_usage(FILE *out);

#endif
