/* Child processes in tests (chronyd, tbroughtime serve): starting one, its clock shifted by
 * libfaketime if asked, and stopping it for good. Header-only, like tb_test.h. */
#ifndef TB_CHILD_H
#define TB_CHILD_H

#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* SIGTERM, up to 2 s to exit, then SIGKILL; removes what libfaketime leaves in /dev/shm when
 * its process is killed (a later faketime that gets the same PID would fail with "sem_open:
 * File exists"). */
static inline void tb_child_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int status;
    for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char shm[64];
    snprintf(shm, sizeof(shm), "/dev/shm/faketime_shm_%d", (int)pid);
    unlink(shm);
    snprintf(shm, sizeof(shm), "/dev/shm/sem.faketime_sem_%d", (int)pid);
    unlink(shm);
}

/* The path of libfaketime.so.1 (Debian package faketime), or -1. */
static inline int tb_find_libfaketime(char *out, size_t len)
{
    glob_t g;
    int rc = -1;
    if (glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        snprintf(out, len, "%s", g.gl_pathv[0]);
        rc = 0;
    }
    globfree(&g);
    return rc;
}

/* Runs argv (argv[0] searched in PATH) with stdout and stderr in the file log. faketime, when
 * not NULL, is a FAKETIME spec ("+5s") for libfaketime, preloaded directly: the `faketime`
 * wrapper forks and would not pass our SIGTERM on. The child dies with the test (PDEATHSIG).
 * Returns its pid, or -1. */
static inline pid_t tb_child_spawn(const char *log, const char *faketime, char *const argv[])
{
    char preload[256];
    if (faketime && tb_find_libfaketime(preload, sizeof(preload)) < 0) {
        fprintf(stderr, "libfaketime not found (Debian package faketime)\n");
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL); /* the child must not flush our buffered output a second time */
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || !freopen(log, "w", stdout) || !freopen(log, "a", stderr))
        _exit(127);
    if (faketime) {
        setenv("LD_PRELOAD", preload, 1);
        setenv("FAKETIME", faketime, 1);
        setenv("DONT_FAKE_MONOTONIC", "1", 1);
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1); /* preloaded ahead of ASan */
    }
    execvp(argv[0], argv);
    _exit(127);
}

#endif
