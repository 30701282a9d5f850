#include "tests/support/udp.h"

#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"

int tb_test_udp_bind(const char *ip, char *addr, size_t addrlen)
{
    tb_addr a;
    if (tb_addr_numeric(ip, 0, &a) < 0)
        return -1;
    int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0 ||
        getsockname(fd, (struct sockaddr *)&a.ss, &a.len) != 0) {
        close(fd);
        return -1;
    }
    tb_addr_format(&a, addr, addrlen);
    return fd;
}
