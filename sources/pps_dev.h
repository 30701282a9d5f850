/* The PPS device seam: the only code that talks to /dev/ppsN. The PPS driver
 * (sources/pps_driver.h) opens a device, then fetches the newest pulse of one edge on a timer
 * and hands it to the pure logic (sources/pps.h). The kernel's implementation uses the Linux
 * PPS ioctls (linux/pps.h: PPS_GETCAP, PPS_GETPARAMS/PPS_SETPARAMS, and PPS_FETCH with a zero
 * timeout, so a fetch never waits); tests put their own behind the same table
 * (tb_source_env.pps_dev) to run the node without PPS hardware. */
#ifndef TB_SOURCES_PPS_DEV_H
#define TB_SOURCES_PPS_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct tb_pps_dev_ops {
    /* Opens path and captures the assert edge, or the clear edge when clear. On failure a
     * negative error code and why ("/dev/pps0: not a PPS device"). */
    TB_WUR int (*open)(void *arg, const char *path, bool clear, void **dev, char *why,
                       size_t whylen);
    /* The newest pulse of the opened edge: the device's sequence number and its time, the
     * system's CLOCK_REALTIME in ns. TB_ERR_AGAIN when there has been none; TB_ERR_IO (why
     * filled) when the device failed. */
    TB_WUR int (*fetch)(void *arg, void *dev, uint32_t *seq, int64_t *real_ns, char *why,
                        size_t whylen);
    void (*close)(void *arg, void *dev);
    void *arg;
} tb_pps_dev_ops;

/* The kernel's PPS devices. */
const tb_pps_dev_ops *tb_pps_dev_kernel(void);

#endif
