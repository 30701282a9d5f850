#include "node/privilege.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tb_priv_init(tb_priv *p, const char *user, const tb_log *log)
{
    memset(p, 0, sizeof(*p));
    p->uid = geteuid();
    p->gid = getegid();
    if (!user[0])
        return TB_OK;
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        tb_log_error(log, "user '%s': %s", user, errno ? strerror(errno) : "no such user");
        return TB_ERR_NOTFOUND;
    }
    if (pw->pw_uid == p->uid)
        return TB_OK; /* already that user */
    if (p->uid != 0) {
        tb_log_error(log, "user '%s': only root can switch to another user (running as uid %u)",
                     user, (unsigned)p->uid);
        return TB_ERR_INVAL;
    }
    p->drop = 1;
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    snprintf(p->user, sizeof(p->user), "%s", user);
    return TB_OK;
}

static const char *who(const tb_priv *p, char *buf, size_t len)
{
    if (p->user[0])
        snprintf(buf, len, "user %s (uid %u)", p->user, (unsigned)p->uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)p->uid);
    return buf;
}

static int check_dir(const tb_priv *p, const char *dir, const struct stat *st, const tb_log *log)
{
    char w[64];
    if (S_ISLNK(st->st_mode)) {
        tb_log_error(log, "state_dir '%s': is a symbolic link; give the directory itself", dir);
        return TB_ERR_IO;
    }
    if (!S_ISDIR(st->st_mode)) {
        tb_log_error(log, "state_dir '%s': exists and is not a directory", dir);
        return TB_ERR_IO;
    }
    if (st->st_uid != p->uid) {
        tb_log_error(log, "state_dir '%s': owned by uid %u, but tbnode runs as %s: chown it", dir,
                     (unsigned)st->st_uid, who(p, w, sizeof(w)));
        return TB_ERR_INVAL;
    }
    unsigned mode = (unsigned)(st->st_mode & 07777);
    if (mode & 022) {
        tb_log_error(log, "state_dir '%s': writable by others (mode %04o): chmod 700 '%s'", dir,
                     mode, dir);
        return TB_ERR_INVAL;
    }
    if (mode & 077)
        tb_log_warn(log, "state_dir '%s': readable by others (mode %04o); 0700 is expected", dir,
                    mode);
    return TB_OK;
}

int tb_priv_state_dir(const tb_priv *p, const char *dir, const tb_log *log)
{
    if (mkdir(dir, 0700) == 0) {
        if (p->drop && chown(dir, p->uid, p->gid) != 0) {
            tb_log_error(log, "state_dir '%s': cannot hand it to user %s: %s", dir, p->user,
                         strerror(errno));
            return TB_ERR_IO;
        }
        tb_log_info(log, "created state directory %s", dir);
        return TB_OK;
    }
    if (errno != EEXIST) {
        tb_log_error(log, "state_dir '%s': cannot create: %s", dir, strerror(errno));
        return TB_ERR_IO;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        tb_log_error(log, "state_dir '%s': %s", dir, strerror(errno));
        return TB_ERR_IO;
    }
    return check_dir(p, dir, &st, log);
}

int tb_priv_key_file(const tb_priv *p, const char *path, const tb_log *log)
{
    struct stat st;
    char w[64];
    if (!path[0])
        return TB_OK; /* no key: tbnode says so when it needs one */
    if (stat(path, &st) != 0) {
        tb_log_error(log, "key '%s': %s", path, strerror(errno));
        return TB_ERR_IO;
    }
    if (st.st_uid != p->uid && st.st_uid != 0) {
        tb_log_error(log, "key '%s': owned by uid %u, neither root nor %s that tbnode runs as",
                     path, (unsigned)st.st_uid, who(p, w, sizeof(w)));
        return TB_ERR_INVAL;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (mode & 077) {
        tb_log_error(log,
                     "key '%s': mode %04o lets others read or change the private key: "
                     "chmod 600 '%s'",
                     path, mode, path);
        return TB_ERR_INVAL;
    }
    return TB_OK;
}

int tb_priv_drop(const tb_priv *p, const tb_log *log)
{
    if (!p->drop)
        return TB_OK;
    /* Supplementary groups first, then the group, then the user: each needs root. */
    if (setgroups(1, &p->gid) != 0 || setgid(p->gid) != 0 || setuid(p->uid) != 0) {
        tb_log_error(log, "cannot switch to user %s (uid %u, gid %u): %s", p->user,
                     (unsigned)p->uid, (unsigned)p->gid, strerror(errno));
        return TB_ERR_IO;
    }
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != p->uid || geteuid() != p->uid ||
        getgid() != p->gid || getegid() != p->gid) {
        tb_log_error(log, "switched to user %s, but root can still be regained; stopping", p->user);
        return TB_ERR_INVAL;
    }
    tb_log_info(log, "running as user %s (uid %u, gid %u)", p->user, (unsigned)p->uid,
                (unsigned)p->gid);
    return TB_OK;
}
