/* An in-process NTP server on loopback for tests and benchmarks: answers each request on the
 * test's loop with the system clock shifted by offset_ns, or misbehaves as `mode` says. */
#ifndef TB_TESTS_SUPPORT_FAKE_NTP_H
#define TB_TESTS_SUPPORT_FAKE_NTP_H

#include <ev.h>
#include <stdint.h>

typedef enum tb_fake_ntp_mode {
    TB_FAKE_NTP_HONEST,
    TB_FAKE_NTP_KOD_RATE,   /* kiss-o'-death RATE */
    TB_FAKE_NTP_KOD_DENY,   /* kiss-o'-death DENY */
    TB_FAKE_NTP_BAD_ORIGIN, /* origin timestamp not the request's */
    TB_FAKE_NTP_SILENT,     /* counts requests, never answers */
} tb_fake_ntp_mode;

/* Fields the test may read (addr, n_requests, req_mono) and change (mode, offset_ns). */
typedef struct tb_fake_ntp {
    int fd;
    ev_io io;
    tb_fake_ntp_mode mode;
    int64_t offset_ns;
    char addr[64];         /* "ip:port", the port chosen by the kernel */
    int n_requests;        /* every request, answered or not */
    uint64_t req_mono[64]; /* monotonic arrival time of the first 64 */
} tb_fake_ntp;

/* Binds ip (port 0) and starts answering on loop: 0, or -1 when the socket fails. */
int tb_fake_ntp_start(struct ev_loop *loop, tb_fake_ntp *r, const char *ip, tb_fake_ntp_mode mode,
                      int64_t offset_ns);
void tb_fake_ntp_stop(struct ev_loop *loop, tb_fake_ntp *r);

#endif
