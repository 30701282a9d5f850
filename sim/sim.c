#include "sim/sim.h"

#include <stdlib.h>

#include "common/rand.h"

/* The heap holds 16-byte keys (time, then scheduling order and the slot of the event's
 * callback) so a sift moves little memory: millions of events go by in a 1,000-node run and the
 * queue was a tenth of its time. The callbacks sit in slots reused through a free list. */
#define SLOT_BITS 24
#define SLOTS_MAX ((uint64_t)1 << SLOT_BITS)
#define SEQ_MAX ((uint64_t)1 << (64 - SLOT_BITS))
#define ARITY 4 /* shallower than binary: fewer levels, the children share a cache line or two */

typedef struct key {
    uint64_t at;
    uint64_t order; /* seq << SLOT_BITS | slot: seq is unique, so the slot never decides */
} key;

typedef struct slot {
    tb_sim_fn fn;
    void *ctx, *arg;
    tb_sim_drop_fn drop;
    uint64_t data;
} slot;

struct tb_sim {
    uint64_t now, seq, rng, ran, data;
    key *heap;
    size_t n, cap;
    slot *slots;
    uint32_t *free; /* unused slot numbers: [0, n_free) */
    size_t n_free, n_slots;
};

int tb_sim_new(uint64_t seed, tb_sim **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return TB_ERR_NOMEM;
    (*out)->rng = seed;
    return 0;
}

void tb_sim_free(tb_sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        const slot *e = &s->slots[s->heap[i].order & (SLOTS_MAX - 1)];
        if (e->drop)
            e->drop(e->arg);
    }
    free(s->heap);
    free(s->slots);
    free(s->free);
    free(s);
}

uint64_t tb_sim_now(const tb_sim *s)
{
    return s->now;
}

static bool before(const key *a, const key *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

/* Room for one more event: heap, slots and free list grow together (same capacity). */
static int grow(tb_sim *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 1024;
    if (cap > SLOTS_MAX)
        return TB_ERR_FULL;
    key *h = realloc(s->heap, cap * sizeof(*h));
    if (h)
        s->heap = h;
    slot *sl = realloc(s->slots, cap * sizeof(*sl));
    if (sl)
        s->slots = sl;
    uint32_t *f = realloc(s->free, cap * sizeof(*f));
    if (f)
        s->free = f;
    if (!h || !sl || !f)
        return TB_ERR_NOMEM;
    s->cap = cap;
    return 0;
}

int tb_sim_at(tb_sim *s, uint64_t when, tb_sim_fn fn, void *ctx, void *arg, tb_sim_drop_fn drop)
{
    return tb_sim_at_data(s, when, fn, ctx, arg, drop, 0);
}

int tb_sim_at_data(tb_sim *s, uint64_t when, tb_sim_fn fn, void *ctx, void *arg,
                   tb_sim_drop_fn drop, uint64_t data)
{
    if (s->seq == SEQ_MAX)
        return TB_ERR_FULL;
    int rc = grow(s);
    if (rc)
        return rc;
    uint32_t sl = s->n_free > 0 ? s->free[--s->n_free] : (uint32_t)s->n_slots++;
    s->slots[sl] = (slot){fn, ctx, arg, drop, data};
    key e = {when < s->now ? s->now : when, s->seq++ << SLOT_BITS | sl};
    size_t i = s->n++;
    while (i > 0 && before(&e, &s->heap[(i - 1) / ARITY])) {
        s->heap[i] = s->heap[(i - 1) / ARITY];
        i = (i - 1) / ARITY;
    }
    s->heap[i] = e;
    return 0;
}

/* Removes the earliest key; its slot is the caller's to free. */
static key pop(tb_sim *s)
{
    key top = s->heap[0], last = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t c = ARITY * i + 1;
        if (c >= s->n)
            break;
        size_t end = c + ARITY < s->n ? c + ARITY : s->n;
        for (size_t k = c + 1; k < end; k++)
            if (before(&s->heap[k], &s->heap[c]))
                c = k;
        if (!before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n > 0)
        s->heap[i] = last;
    return top;
}

void tb_sim_run_until(tb_sim *s, uint64_t until)
{
    while (s->n > 0 && s->heap[0].at <= until) {
        key k = pop(s);
        uint32_t sl = (uint32_t)(k.order & (SLOTS_MAX - 1));
        slot e = s->slots[sl];
        s->free[s->n_free++] = sl;
        /* The next event's slot was written long ago: fetch it while this one runs. */
        if (s->n > 0)
            __builtin_prefetch(&s->slots[s->heap[0].order & (SLOTS_MAX - 1)]);
        s->now = k.at;
        s->data = e.data;
        s->ran++;
        e.fn(s, e.ctx, e.arg);
        /* ... and, its slot fetched by now, the message or node it names. */
        if (s->n > 0 && s->slots[s->heap[0].order & (SLOTS_MAX - 1)].arg)
            __builtin_prefetch(s->slots[s->heap[0].order & (SLOTS_MAX - 1)].arg);
    }
    if (until > s->now)
        s->now = until;
}

uint64_t tb_sim_data(const tb_sim *s)
{
    return s->data;
}

size_t tb_sim_pending(const tb_sim *s)
{
    return s->n;
}

uint64_t tb_sim_events_run(const tb_sim *s)
{
    return s->ran;
}

uint64_t tb_sim_rand(tb_sim *s)
{
    return tb_rand_next(&s->rng);
}

uint64_t tb_sim_rand_below(tb_sim *s, uint64_t n)
{
    return tb_rand_below(&s->rng, n);
}

double tb_sim_rand_unit(tb_sim *s)
{
    return (double)(tb_rand_next(&s->rng) >> 11) / 9007199254740992.0;
}
