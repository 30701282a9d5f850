/* Helpers shared by tests/test_timekeeper.c and bench/timekeeper: in-process NTP responders on
 * loopback and a resolver that answers one name differently per node. Static functions in a
 * header: each program includes it once. */
#ifndef TB_TESTS_TK_HARNESS_H
#define TB_TESTS_TK_HARNESS_H

#include <ev.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "ntp/packet.h"
#include "resolve/resolver.h"

/* --- NTP responders: answer every request with the clock shifted by shift_ns --- */

typedef struct responder {
    int fd;
    ev_io io;
    int64_t shift_ns;
    char addr[64];
} responder;

static void responder_cb(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l;
    (void)revents;
    responder *r = w->data;
    uint8_t req[256], rep[TB_NTP_HEADER_LEN];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(r->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &flen);
    if (n < TB_NTP_HEADER_LEN)
        return;
    int64_t now = tb_clock_real(tb_clock_system()) + r->shift_ns;
    tb_ntp_packet p = {.version = 4, .mode = 4, .stratum = 2, .precision = -20};
    p.refid = 0x7f000001;
    p.origin_ts = tb_get_be64(req + 40);
    p.reference_ts = tb_ntp_ts_from_unix_ns(now - 1000000000LL);
    p.receive_ts = p.transmit_ts = tb_ntp_ts_from_unix_ns(now);
    tb_ntp_packet_write(&p, rep);
    (void)sendto(r->fd, rep, sizeof(rep), 0, (struct sockaddr *)&from, flen);
}

static int responder_start(struct ev_loop *loop, responder *r, const char *ip, int64_t shift)
{
    memset(r, 0, sizeof(*r));
    r->shift_ns = shift;
    tb_addr a;
    if (tb_addr_numeric(ip, 0, &a) < 0)
        return -1;
    r->fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a.ss, a.len) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&a.ss, &a.len) != 0)
        return -1;
    tb_addr_format(&a, r->addr, sizeof(r->addr));
    ev_io_init(&r->io, responder_cb, r->fd, EV_READ);
    r->io.data = r;
    ev_io_start(loop, &r->io);
    return 0;
}

/* --- a resolver per node: "split.test" answers what `target` is for that node (GeoDNS) --- */

typedef struct answer {
    ev_timer t;
    uint64_t ticket;
    tb_resolve_cb cb;
    void *arg;
    tb_addr addr;
} answer;

typedef struct geo_resolver {
    tb_resolver pub;
    struct ev_loop *loop;
    const responder *target; /* what split.test is here */
    uint64_t next;
    answer pending[16];
} geo_resolver;

static void answer_fire(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)revents;
    answer *a = w->data;
    a->ticket = 0;
    a->cb(a->arg, 0, "", &a->addr, 1);
}

static int geo_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                       void *arg, uint64_t *ticket)
{
    geo_resolver *g = (geo_resolver *)pub;
    (void)port;
    tb_addr target;
    if (strcmp(host, "split.test") != 0 ||
        tb_addr_parse_numeric(g->target->addr, strlen(g->target->addr), 0, &target, NULL) != TB_OK)
        return TB_ERR_NOTFOUND;
    for (int i = 0; i < 16; i++) {
        answer *a = &g->pending[i];
        if (a->ticket)
            continue;
        *a = (answer){.ticket = ++g->next, .cb = cb, .arg = arg};
        a->addr = target;
        *ticket = a->ticket;
        ev_timer_init(&a->t, answer_fire, 0.001, 0.);
        a->t.data = a;
        ev_timer_start(g->loop, &a->t);
        return TB_OK;
    }
    return TB_ERR_FULL;
}

static void geo_cancel(tb_resolver *pub, uint64_t ticket)
{
    geo_resolver *g = (geo_resolver *)pub;
    for (int i = 0; i < 16; i++) {
        if (g->pending[i].ticket == ticket && ticket) {
            ev_timer_stop(g->loop, &g->pending[i].t);
            g->pending[i].ticket = 0;
        }
    }
}

static void responder_stop(struct ev_loop *loop, responder *r)
{
    ev_io_stop(loop, &r->io);
    close(r->fd);
}

static void geo_init(geo_resolver *g, struct ev_loop *loop, const responder *target)
{
    memset(g, 0, sizeof(*g));
    g->pub = (tb_resolver){geo_resolve, geo_cancel};
    g->loop = loop;
    g->target = target;
}

#endif
