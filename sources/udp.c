#include "sources/udp.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int tb_source_udp_open(const tb_addr *a, bool *kernel_ts, int *fd)
{
    *fd = -1;
    int s = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return TB_ERR_IO;
    int one = 1;
    *kernel_ts = setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) == 0;
    if (connect(s, (const struct sockaddr *)&a->ss, a->len) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return TB_ERR_IO;
    }
    *fd = s;
    return 0;
}

bool tb_source_udp_rx_time(const tb_clock *clk, struct msghdr *msg, int64_t *real, uint64_t *mono)
{
    *real = tb_clock_real(clk);
    *mono = tb_clock_mono(clk);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS ||
            c->cmsg_len < CMSG_LEN(sizeof(struct timespec)))
            continue;
        struct timespec k, now;
        memcpy(&k, CMSG_DATA(c), sizeof(k));
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t age = ((int64_t)now.tv_sec - k.tv_sec) * 1000000000 + (now.tv_nsec - k.tv_nsec);
        if (age >= 0 && age < 1000000000) {
            *real -= age;
            *mono -= (uint64_t)age;
            return true;
        }
    }
    return false;
}
