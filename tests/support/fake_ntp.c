#include "tests/support/fake_ntp.h"
#include "tests/support/udp.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "ntp/packet.h"

static void on_request(struct ev_loop *loop, ev_io *w, int revents)
{
    tb_fake_ntp *r = w->data;
    uint8_t req[256], rep[TB_NTP_HEADER_LEN];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(r->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &flen);
    if (n < TB_NTP_HEADER_LEN)
        return;
    if (r->n_requests < 64)
        r->req_mono[r->n_requests] = tb_clock_mono(tb_clock_system());
    r->n_requests++;
    if (r->mode == TB_FAKE_NTP_SILENT)
        return;
    int64_t now = tb_clock_real(tb_clock_system()) + r->offset_ns;
    tb_ntp_packet p = {.version = 4,
                       .mode = 4,
                       .stratum = 2,
                       .precision = -20,
                       .refid = 0x7f000001,
                       .poll = (int8_t)req[2]};
    p.origin_ts = tb_get_be64(req + 40) ^ (r->mode == TB_FAKE_NTP_BAD_ORIGIN ? 0x10000 : 0);
    p.reference_ts = tb_ntp_ts_from_unix_ns(now - INT64_C(1000000000));
    p.receive_ts = p.transmit_ts = tb_ntp_ts_from_unix_ns(now);
    if (r->mode == TB_FAKE_NTP_KOD_RATE || r->mode == TB_FAKE_NTP_KOD_DENY) {
        p.stratum = 0;
        p.refid = r->mode == TB_FAKE_NTP_KOD_RATE ? 0x52415445 : 0x44454e59; /* RATE, DENY */
    }
    tb_ntp_packet_write(&p, rep);
    (void)sendto(r->fd, rep, sizeof(rep), 0, (struct sockaddr *)&from, flen);
}

int tb_fake_ntp_start(struct ev_loop *loop, tb_fake_ntp *r, const char *ip, tb_fake_ntp_mode mode,
                      int64_t offset_ns)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->offset_ns = offset_ns;
    r->fd = tb_test_udp_bind(ip, r->addr, sizeof(r->addr));
    if (r->fd < 0)
        return -1;
    ev_io_init(&r->io, on_request, r->fd, EV_READ);
    r->io.data = r;
    ev_io_start(loop, &r->io);
    return 0;
}

void tb_fake_ntp_stop(struct ev_loop *loop, tb_fake_ntp *r)
{
    ev_io_stop(loop, &r->io);
    close(r->fd);
}
