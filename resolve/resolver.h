/* Asynchronous name resolution, for the mesh node and the time sources (ADR 0009). The resolver is
 * an interface so that tests (and simulations) inject their own answers; the one for real use runs
 * getaddrinfo in a detached worker thread per request and hands the answer back on the loop through
 * an ev_async, so the loop never blocks on DNS. */
#ifndef TB_RESOLVE_RESOLVER_H
#define TB_RESOLVE_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/error.h"

struct ev_loop;

#define TB_RESOLVE_MAX_ADDRS 16

/* Called on the loop, never from inside resolve(). err is 0 (n >= 1 addresses) or
 * TB_ERR_NOTFOUND with the resolver's message in `why`. */
typedef void (*tb_resolve_cb)(void *arg, int err, const char *why, const tb_addr *addrs, size_t n);

typedef struct tb_resolver {
    /* Starts resolving host (a name or a numeric address, as tb_addr_parse accepts them) for
     * UDP port `port` (decimal 1..65535); *ticket identifies the request for cancel. */
    TB_WUR int (*resolve)(struct tb_resolver *r, const char *host, const char *port,
                          tb_resolve_cb cb, void *cb_arg, uint64_t *ticket);
    /* After cancel the callback of that ticket is never called. Unknown tickets are ignored. */
    void (*cancel)(struct tb_resolver *r, uint64_t ticket);
} tb_resolver;

/* The getaddrinfo-in-a-thread resolver. Destroying it with requests in flight is fine: their
 * threads finish on their own and nothing is called back. */
TB_WUR int tb_resolver_thread_create(struct ev_loop *loop, tb_resolver **out);
void tb_resolver_thread_destroy(tb_resolver *r);

#endif
