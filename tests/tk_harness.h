/* Helpers shared by tests/test_timekeeper.c and bench/timekeeper: a resolver that answers one
 * name differently per node (each name an in-process NTP server, tests/support/fake_ntp.h). Static
 * functions in a header: each program includes it once. */
#ifndef TB_TESTS_TK_HARNESS_H
#define TB_TESTS_TK_HARNESS_H

#include <ev.h>
#include <string.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "ntp/packet.h"
#include "resolve/resolver.h"
#include "tests/support/fake_ntp.h"

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
    const tb_fake_ntp *target; /* what split.test is here */
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

static void geo_init(geo_resolver *g, struct ev_loop *loop, const tb_fake_ntp *target)
{
    memset(g, 0, sizeof(*g));
    g->pub = (tb_resolver){geo_resolve, geo_cancel};
    g->loop = loop;
    g->target = target;
}

#endif
