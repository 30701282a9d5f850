/* For tests that run node/mesh.c as a broadcast tree only: the membership callbacks it takes
 * (node/mesh.h, tb_nmesh_io) with nothing to do, as no link closes and no member is judged. */
#ifndef TB_TESTS_SUPPORT_NMESH_QUIET_H
#define TB_TESTS_SUPPORT_NMESH_QUIET_H

#include <stdbool.h>
#include <stdint.h>

static inline void nmesh_quiet_close(void *arg, const char *peer)
{
    (void)arg;
    (void)peer;
}

static inline void nmesh_quiet_suspect(void *arg, const char *target, uint64_t incarnation)
{
    (void)arg;
    (void)target;
    (void)incarnation;
}

static inline void nmesh_quiet_alive(void *arg, uint64_t incarnation, bool fresh, const char *peer)
{
    (void)arg;
    (void)incarnation;
    (void)fresh;
    (void)peer;
}

#endif
