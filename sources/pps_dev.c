#include "sources/pps_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/pps.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct kdev {
    int fd;
    bool clear;
} kdev;

static int fail(int fd, char *why, size_t whylen, const char *path, const char *what)
{
    snprintf(why, whylen, "%s: %s: %s", path, what,
             errno == ENOTTY ? "not a PPS device" : strerror(errno));
    if (fd >= 0)
        close(fd);
    return TB_ERR_IO;
}

/* Captures only the configured edge, as chrony does: the other edge's stamps would be
 * fetched by nobody. */
static int k_open(void *arg, const char *path, bool clear, void **dev, char *why, size_t whylen)
{
    (void)arg;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(-1, why, whylen, path, "open");
    int caps = 0;
    if (ioctl(fd, PPS_GETCAP, &caps) != 0)
        return fail(fd, why, whylen, path, "PPS_GETCAP");
    int want = clear ? PPS_CAPTURECLEAR : PPS_CAPTUREASSERT;
    if (!(caps & want) || !(caps & PPS_TSFMT_TSPEC)) {
        snprintf(why, whylen, "%s: cannot capture the %s edge in timespec format", path,
                 clear ? "clear" : "assert");
        close(fd);
        return TB_ERR_UNSUPPORTED;
    }
    struct pps_kparams params;
    memset(&params, 0, sizeof(params));
    if (ioctl(fd, PPS_GETPARAMS, &params) != 0)
        return fail(fd, why, whylen, path, "PPS_GETPARAMS");
    params.api_version = PPS_API_VERS;
    params.mode = (params.mode & ~PPS_CAPTUREBOTH) | want | PPS_TSFMT_TSPEC;
    if (ioctl(fd, PPS_SETPARAMS, &params) != 0)
        return fail(fd, why, whylen, path, "PPS_SETPARAMS");
    kdev *k = calloc(1, sizeof(*k));
    if (!k) {
        close(fd);
        return TB_ERR_NOMEM;
    }
    k->fd = fd;
    k->clear = clear;
    *dev = k;
    return 0;
}

static int k_fetch(void *arg, void *dev, uint32_t *seq, int64_t *real_ns, char *why, size_t whylen)
{
    (void)arg;
    const kdev *k = dev;
    struct pps_fdata fd;
    memset(&fd, 0, sizeof(fd)); /* a valid zero timeout: return at once */
    if (ioctl(k->fd, PPS_FETCH, &fd) != 0) {
        snprintf(why, whylen, "PPS_FETCH: %s", strerror(errno));
        return TB_ERR_IO;
    }
    const struct pps_ktime *t = k->clear ? &fd.info.clear_tu : &fd.info.assert_tu;
    *seq = k->clear ? fd.info.clear_sequence : fd.info.assert_sequence;
    if ((t->sec == 0 && t->nsec == 0) || t->nsec < 0 || t->nsec >= 1000000000 || t->sec < 0 ||
        t->sec > INT64_MAX / 1000000000 - 1)
        return TB_ERR_AGAIN;
    *real_ns = t->sec * 1000000000 + t->nsec;
    return 0;
}

static void k_close(void *arg, void *dev)
{
    (void)arg;
    kdev *k = dev;
    if (!k)
        return;
    close(k->fd);
    free(k);
}

static const tb_pps_dev_ops kernel_ops = {
    .open = k_open, .fetch = k_fetch, .close = k_close, .arg = NULL};

const tb_pps_dev_ops *tb_pps_dev_kernel(void)
{
    return &kernel_ops;
}
