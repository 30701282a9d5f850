/* chronyd as a real peer in tests: started in the foreground (-d) with -x (never touches the
 * clock) and -u root (no switch to the _chrony user), as this process's child so it dies with
 * the test, in a fresh directory of its own under /tmp. */
#ifndef TB_TESTS_SUPPORT_CHRONY_H
#define TB_TESTS_SUPPORT_CHRONY_H

#include <sys/types.h>

typedef struct tb_chrony {
    pid_t pid;
    char dir[64];
    char addr[64]; /* "ip:port" it serves NTP on */
    int port;
} tb_chrony;

/* A port free on ip right now, for SOCK_DGRAM or SOCK_STREAM; -1 on failure. */
int tb_test_free_port(const char *ip, int type);

/* Serves NTP with `local stratum 1` on ip (port: 0 picks a free one). shift: NULL, or a
 * FAKETIME spec ("+5s") for libfaketime. extra: more chrony.conf lines, or NULL; "%DIR%" in it
 * stands for the instance's directory. -1 on failure (nothing left behind). */
int tb_chrony_start(tb_chrony *c, const char *ip, int port, const char *shift, const char *extra);
/* Stops it and removes its directory. */
void tb_chrony_stop(tb_chrony *c);

#endif
