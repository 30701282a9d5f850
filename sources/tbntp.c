/* tbntp query HOST[:PORT]: measures one NTP server once through the same source framework
 * and driver the node uses, and prints offset, delay, error bound, stratum and reference id,
 * or why the reply was rejected. Exit 0 measured, 1 usage, 2 rejected, 3 no reply. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntp/packet.h"
#include "sources/ntp_driver.h"
#include "resolve/resolver.h"
#include "sources/source.h"

typedef struct query {
    struct ev_loop *loop;
    tb_source *src;
    int rc;
    uint64_t seen_received;
} query;

static void print_server(const tb_source_id *id)
{
    if (id->address[0] && strcmp(id->address, id->name) != 0)
        printf("server   %s (%s)\n", id->name, id->address);
    else
        printf("server   %s\n", id->name);
}

static void print_measurement(void *arg, const tb_source_meas *m)
{
    query *q = arg;
    const tb_ntp_client *c = tb_ntp_driver_client(q->src);
    char refid[16];
    tb_ntp_refid_format((uint8_t)m->stratum, m->refid, refid, sizeof(refid));
    print_server(m->source);
    printf("offset   %+.9f s\n", (double)m->offset_ns / 1e9);
    printf("delay    %.9f s\n", (double)m->delay_ns / 1e9);
    printf("error    %.9f s\n", (double)m->error_ns / 1e9);
    printf("stratum  %d\n", m->stratum);
    printf("refid    %s\n", refid);
    if (c)
        printf("leap %u, version %u, root delay %.6f s, root dispersion %.6f s\n",
               c->last_reply.leap, c->last_reply.version,
               (double)tb_ntp_short_to_ns(c->last_reply.root_delay) / 1e9,
               (double)tb_ntp_short_to_ns(c->last_reply.root_dispersion) / 1e9);
    q->rc = 0;
    ev_break(q->loop, EVBREAK_ALL);
}

/* After each loop iteration: a reply that came back rejected ends the query. */
static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    query *q = w->data;
    (void)revents;
    const tb_ntp_client *c = q->src ? tb_ntp_driver_client(q->src) : NULL;
    if (!c || c->n_received == q->seen_received)
        return;
    q->seen_received = c->n_received;
    if (c->last_reject != TB_NTP_ACCEPTED && q->rc != 0) {
        print_server(tb_source_identity(q->src));
        printf("rejected %s\n", tb_ntp_reject_name(c->last_reject));
        if (c->kiss[0])
            printf("kiss     %s\n", c->kiss);
        printf("stratum  %u\n", c->last_reply.stratum);
        q->rc = 2;
        ev_break(loop, EVBREAK_ALL);
    }
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int usage(void)
{
    fprintf(stderr, "usage: tbntp query HOST[:PORT] [--timeout SECONDS] [--debug]\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "query") != 0)
        return usage();
    double timeout = 6.0;
    tb_log log;
    tb_log_init(&log, "tbntp", TB_LOG_ERROR);
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atof(argv[++i]);
        else if (strcmp(argv[i], "--debug") == 0)
            log.level = TB_LOG_DEBUG;
        else
            return usage();
    }
    query q = {.loop = ev_default_loop(0), .rc = 3};
    tb_resolver *resolver;
    if (tb_resolver_thread_create(q.loop, &resolver) < 0)
        return 1;
    tb_source_env env = {.loop = q.loop,
                         .log = &log,
                         .clock = tb_clock_system(),
                         .resolver = resolver,
                         .on_measurement = print_measurement,
                         .measurement_arg = &q};
    tb_source_config cfg;
    tb_source_config_default(&cfg, TB_SOURCE_NTP);
    if (snprintf(cfg.address, sizeof(cfg.address), "%s", argv[2]) >= (int)sizeof(cfg.address) ||
        tb_source_create(&env, tb_ntp_driver(), &cfg, NULL, &q.src) < 0) {
        fprintf(stderr, "tbntp: \"%s\" is not HOST[:PORT]\n", argv[2]);
        tb_resolver_thread_destroy(resolver);
        return 1;
    }
    ev_check check;
    ev_check_init(&check, check_cb);
    check.data = &q;
    ev_check_start(q.loop, &check);
    ev_timer deadline;
    ev_timer_init(&deadline, timeout_cb, timeout, 0.0);
    ev_timer_start(q.loop, &deadline);
    if (tb_source_start(q.src) == 0)
        ev_run(q.loop, 0);
    if (q.rc == 3)
        fprintf(stderr, "tbntp: no valid reply from %s within %.1f s (%s: %s)\n", argv[2], timeout,
                tb_source_state_name(tb_source_state_of(q.src)), tb_source_reason(q.src));
    tb_source_destroy(q.src);
    tb_resolver_thread_destroy(resolver);
    return q.rc;
}
