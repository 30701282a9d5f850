#include "resolve/resolver.h"

#include <ev.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req req;
typedef struct shared shared;

struct req {
    req *next;
    shared *sh;
    uint64_t ticket;
    char host[256];
    char port[8];
    tb_resolve_cb cb;
    void *cb_arg;
    bool done, cancelled, orphan;
    int err;
    char why[96];
    tb_addr addrs[TB_RESOLVE_MAX_ADDRS];
    size_t n;
};

/* Shared between the loop and the worker threads; freed by whoever drops the last ref. */
struct shared {
    tb_resolver pub; /* first: the tb_resolver * is the shared * */
    pthread_mutex_t mu;
    int refs;
    struct ev_loop *loop;
    ev_async async;
    req *list; /* every request not yet called back */
    uint64_t next_ticket;
};

static void unref_locked(shared *sh, bool *free_it)
{
    *free_it = --sh->refs == 0;
}

static void *worker(void *arg)
{
    req *r = arg;
    shared *sh = r->sh;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(r->host, r->port, &hints, &res);
    size_t n = 0;
    for (struct addrinfo *ai = gai == 0 ? res : NULL; ai && n < TB_RESOLVE_MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(r->addrs[n].ss))
            continue;
        memcpy(&r->addrs[n].ss, ai->ai_addr, ai->ai_addrlen);
        r->addrs[n].len = ai->ai_addrlen;
        n++;
    }
    if (res)
        freeaddrinfo(res);
    r->n = n;
    r->err = n ? 0 : TB_ERR_NOTFOUND;
    snprintf(r->why, sizeof(r->why), "%s", gai ? gai_strerror(gai) : "no usable address");

    bool free_sh;
    pthread_mutex_lock(&sh->mu);
    if (r->orphan) {
        free(r);
    } else {
        r->done = true;
        ev_async_send(sh->loop, &sh->async);
    }
    unref_locked(sh, &free_sh);
    pthread_mutex_unlock(&sh->mu);
    if (free_sh) {
        pthread_mutex_destroy(&sh->mu);
        free(sh);
    }
    return NULL;
}

static req *take_done(shared *sh)
{
    req *found = NULL;
    pthread_mutex_lock(&sh->mu);
    for (req **pp = &sh->list; *pp; pp = &(*pp)->next) {
        if ((*pp)->done) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return found;
}

/* One request at a time, outside the lock: a callback may start new requests or cancel the
 * ones still listed. */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    shared *sh = w->data;
    (void)loop;
    (void)revents;
    req *r;
    while ((r = take_done(sh)) != NULL) {
        if (!r->cancelled)
            r->cb(r->cb_arg, r->err, r->why, r->addrs, r->n);
        free(r);
    }
}

static int thread_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                          void *cb_arg, uint64_t *ticket)
{
    shared *sh = (shared *)pub;
    req *r = calloc(1, sizeof(*r));
    if (!r)
        return TB_ERR_NOMEM;
    if (snprintf(r->host, sizeof(r->host), "%s", host) >= (int)sizeof(r->host) ||
        snprintf(r->port, sizeof(r->port), "%s", port) >= (int)sizeof(r->port)) {
        free(r);
        return TB_ERR_INVAL;
    }
    r->sh = sh;
    r->cb = cb;
    r->cb_arg = cb_arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&sh->mu);
    r->ticket = ++sh->next_ticket;
    *ticket = r->ticket;
    r->next = sh->list;
    sh->list = r;
    sh->refs++;
    pthread_t th;
    int rc = pthread_create(&th, &attr, worker, r);
    if (rc != 0) {
        sh->list = r->next;
        sh->refs--;
        free(r);
    }
    pthread_mutex_unlock(&sh->mu);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : TB_ERR_IO;
}

static void thread_cancel(tb_resolver *pub, uint64_t ticket)
{
    shared *sh = (shared *)pub;
    pthread_mutex_lock(&sh->mu);
    for (req *r = sh->list; r; r = r->next)
        if (r->ticket == ticket)
            r->cancelled = true;
    pthread_mutex_unlock(&sh->mu);
}

int tb_resolver_thread_create(struct ev_loop *loop, tb_resolver **out)
{
    shared *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return TB_ERR_NOMEM;
    if (pthread_mutex_init(&sh->mu, NULL) != 0) {
        free(sh);
        return TB_ERR_IO;
    }
    sh->pub.resolve = thread_resolve;
    sh->pub.cancel = thread_cancel;
    sh->refs = 1;
    sh->loop = loop;
    ev_async_init(&sh->async, async_cb);
    sh->async.data = sh;
    ev_async_start(loop, &sh->async);
    *out = &sh->pub;
    return 0;
}

void tb_resolver_thread_destroy(tb_resolver *pub)
{
    if (!pub)
        return;
    shared *sh = (shared *)pub;
    bool free_sh;
    pthread_mutex_lock(&sh->mu);
    ev_async_stop(sh->loop, &sh->async);
    for (req *r = sh->list, *next; r; r = next) {
        next = r->next;
        if (r->done)
            free(r);
        else
            r->orphan = true; /* its worker frees it */
    }
    sh->list = NULL;
    unref_locked(sh, &free_sh);
    pthread_mutex_unlock(&sh->mu);
    if (free_sh) {
        pthread_mutex_destroy(&sh->mu);
        free(sh);
    }
}
