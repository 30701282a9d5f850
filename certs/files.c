/* Careful file I/O for keys and certificates: bounded reads, and writes that never leave a key
 * readable by others or a half-written file in place. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>

#include "certs/internal.h"

int tb_cert_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int tb_cert_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return TB_ERR_TOO_BIG;
    return TB_OK;
}

int tb_cert_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int tb_cert_mkdir(const char *dir, unsigned mode, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, (mode_t)mode) == 0)
        return TB_OK;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return TB_OK;
    if (errno == EEXIST)
        return tb_cert_fail(TB_ERR_EXISTS, err, errlen, "%s: exists and is not a directory", dir);
    return tb_cert_fail(TB_ERR_IO, err, errlen, "%s: cannot create directory: %s", dir,
                        strerror(errno));
}

static int read_all(int fd, char *buf, size_t cap, size_t *len)
{
    size_t used = 0;
    for (;;) {
        if (used == cap)
            return TB_ERR_TOO_BIG;
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TB_ERR_IO;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *len = used;
    return TB_OK;
}

int tb_cert_file_read(const char *path, size_t cap, char **out, size_t *len, char *err,
                      size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return tb_cert_fail(errno == ENOENT ? TB_ERR_NOTFOUND : TB_ERR_IO, err, errlen, "%s: %s",
                            path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tb_cert_fail(TB_ERR_IO, err, errlen, "%s: not a regular file", path);
    }
    /* One spare byte: a file of exactly cap bytes reads fine, a longer one hits the cap. */
    char *buf = malloc(cap + 2);
    if (!buf) {
        close(fd);
        return tb_cert_fail(TB_ERR_NOMEM, err, errlen, "%s: out of memory", path);
    }
    size_t n = 0;
    int rc = read_all(fd, buf, cap + 1, &n);
    int saved = errno;
    close(fd);
    if (rc == TB_OK && n > cap)
        rc = TB_ERR_TOO_BIG;
    if (rc != TB_OK) {
        tb_cert_file_free(buf, cap + 1);
        if (rc == TB_ERR_TOO_BIG)
            return tb_cert_fail(rc, err, errlen, "%s: larger than %zu bytes", path, cap);
        return tb_cert_fail(rc, err, errlen, "%s: %s", path, strerror(saved));
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TB_OK;
}

void tb_cert_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}

void tb_cert_file_free(char *buf, size_t len)
{
    if (!buf)
        return;
    tb_cert_wipe(buf, len + 1);
    free(buf);
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return TB_ERR_IO;
        p += n;
        len -= (size_t)n;
    }
    return TB_OK;
}

static void fsync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Creates a fresh temporary file beside path, already with its final mode. */
static int open_temp(const char *path, unsigned mode, char *tmp, size_t cap)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r)) != 0)
            return -1;
        int n = snprintf(tmp, cap, "%s.tmp-%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2], r[3],
                         r[4], r[5]);
        if (n < 0 || (size_t)n >= cap)
            return -1;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int tb_cert_file_write(const char *path, const void *data, size_t len, unsigned mode, int replace,
                       char *err, size_t errlen)
{
    char tmp[4200];
    int fd = open_temp(path, mode, tmp, sizeof(tmp));
    if (fd < 0)
        return tb_cert_fail(TB_ERR_IO, err, errlen, "%s: cannot create: %s", path, strerror(errno));
    int rc = write_all(fd, data, len);
    if (rc == TB_OK && fsync(fd) != 0)
        rc = TB_ERR_IO;
    int saved = errno;
    if (close(fd) != 0 && rc == TB_OK) {
        rc = TB_ERR_IO;
        saved = errno;
    }
    if (rc != TB_OK) {
        unlink(tmp);
        return tb_cert_fail(rc, err, errlen, "%s: cannot write: %s", path, strerror(saved));
    }
    int moved = replace ? rename(tmp, path) : link(tmp, path);
    saved = errno;
    if (!replace || moved != 0)
        unlink(tmp);
    if (moved != 0) {
        if (saved == EEXIST)
            return tb_cert_fail(TB_ERR_EXISTS, err, errlen, "%s: exists (use --force to overwrite)",
                                path);
        return tb_cert_fail(TB_ERR_IO, err, errlen, "%s: cannot write: %s", path, strerror(saved));
    }
    fsync_parent(path);
    return TB_OK;
}
