#include "tests/support/chrony.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "tests/tb_child.h"

int tb_test_free_port(const char *ip, int type)
{
    tb_addr a;
    if (tb_addr_numeric(ip, 0, &a) < 0)
        return -1;
    int fd = socket(a.ss.ss_family, type, 0);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a.ss, a.len) == 0 &&
        getsockname(fd, (struct sockaddr *)&a.ss, &a.len) == 0)
        port = a.ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* extra with every %DIR% replaced by dir. */
static void put_extra(FILE *f, const char *extra, const char *dir)
{
    for (const char *p = extra; *p;) {
        if (strncmp(p, "%DIR%", 5) == 0) {
            fputs(dir, f);
            p += 5;
        } else {
            fputc(*p++, f);
        }
    }
    fputc('\n', f);
}

static int spawn(tb_chrony *c, const char *ip, int port, const char *shift, const char *extra)
{
    snprintf(c->dir, sizeof(c->dir), "/tmp/tb_chrony_XXXXXX");
    if (!mkdtemp(c->dir))
        return -1;
    c->port = port > 0 ? port : tb_test_free_port(ip, SOCK_DGRAM);
    if (c->port < 0)
        return -1;
    snprintf(c->addr, sizeof(c->addr), "%s:%d", ip, c->port);
    char conf[128], log[128];
    snprintf(conf, sizeof(conf), "%s/chrony.conf", c->dir);
    snprintf(log, sizeof(log), "%s/chronyd.log", c->dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "port %d\nbindaddress %s\nlocal stratum 1\nallow 127.0.0.0/8\ncmdport 0\n"
            "pidfile %s/chronyd.pid\n",
            c->port, ip, c->dir);
    if (extra)
        put_extra(f, extra, c->dir);
    fclose(f);
    char *argv[] = {"chronyd", "-x", "-d", "-u", "root", "-f", conf, NULL};
    c->pid = tb_child_spawn(log, shift, argv);
    return c->pid > 0 ? 0 : -1;
}

int tb_chrony_start(tb_chrony *c, const char *ip, int port, const char *shift, const char *extra)
{
    memset(c, 0, sizeof(*c));
    int rc = spawn(c, ip, port, shift, extra);
    if (rc < 0)
        tb_chrony_stop(c); /* removes what was made before the failure */
    return rc;
}

void tb_chrony_stop(tb_chrony *c)
{
    tb_child_stop(c->pid);
    c->pid = 0;
    if (!c->dir[0])
        return;
    /* chronyd's files and whatever the test put there (keys, certificates, NTS dumps). */
    DIR *d = opendir(c->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[sizeof(c->dir) + 260];
        snprintf(p, sizeof(p), "%s/%s", c->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(c->dir);
    c->dir[0] = 0;
}
