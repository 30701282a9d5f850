/* For tests that run mesh nodes in one process: a temporary directory holding a mesh CA and node
 * certificates issued by the tbcert this build made (its path in TB_TBCERT). */
#ifndef TB_TEST_FIXTURE_H
#define TB_TEST_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs `$TB_TBCERT ARGS >/dev/null`; 0 on success. */
__attribute__((format(printf, 1, 2))) static inline int tb_fx_tbcert(const char *fmt, ...)
{
    const char *tbcert = getenv("TB_TBCERT");
    char args[400], cmd[512];
    if (!tbcert)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null", tbcert, args);
    return system(cmd) == 0 ? 0 : -1;
}

/* Makes dir from its mkdtemp template and calls make_certs; on failure says why and removes the
 * directory again. */
static inline int tb_fx_setup(char *dir, int (*make_certs)(void))
{
    if (!mkdtemp(dir))
        return -1;
    if (make_certs() == 0)
        return 0;
    fprintf(stderr, "cannot issue certificates (TB_TBCERT=%s)\n", getenv("TB_TBCERT"));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return -1;
}

/* Removes dir and passes the test's exit code on. */
static inline int tb_fx_finish(const char *dir, int rc)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}

#endif
