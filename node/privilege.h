/* Who tbnode runs as, and what it trusts on disk. Started as root with `user` set, it binds its
 * sockets and opens its state as root, then switches to that user for good (setgroups,
 * setgid, setuid, and a check that root cannot be regained). Whoever it runs as, it refuses a
 * state directory that user does not own or that others can write, and a private key file that
 * others can read. Blocking (getpwnam, stat): called before the loop runs. */
#ifndef TB_NODE_PRIVILEGE_H
#define TB_NODE_PRIVILEGE_H

#include <sys/types.h>

#include "common/error.h"
#include "common/log.h"
#include "node/config.h"

typedef struct tb_priv {
    int drop;  /* switch to uid/gid in tb_priv_drop */
    uid_t uid; /* who the node runs as once started */
    gid_t gid;
    char user[TB_NODE_USER_MAX + 1]; /* "" when it stays who it was started as */
} tb_priv;

/* Looks `user` up ("" = stay). TB_ERR_NOTFOUND for an unknown user, TB_ERR_INVAL when not root
 * and asked to become someone else; logged. */
TB_WUR int tb_priv_init(tb_priv *p, const char *user, const tb_log *log);
/* Creates dir (0700, owned by the runtime user) or checks the one there: a directory, not a
 * symbolic link, owned by the runtime user, not writable by group or others. */
TB_WUR int tb_priv_state_dir(const tb_priv *p, const char *dir, const tb_log *log);
/* A private key: owned by the runtime user or root, no access for group or others. */
TB_WUR int tb_priv_key_file(const tb_priv *p, const char *path, const tb_log *log);
/* Switches to the user for good; nothing to do when p->drop is 0. */
TB_WUR int tb_priv_drop(const tb_priv *p, const tb_log *log);

#endif
