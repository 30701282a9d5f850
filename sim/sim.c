#include "sim/sim.h"

#include <stdlib.h>

#include "common/rand.h"

typedef struct event {
    uint64_t at, seq;
    tb_sim_fn fn;
    void *ctx, *arg;
    tb_sim_drop_fn drop;
} event;

struct tb_sim {
    uint64_t now, seq, rng, ran;
    event *heap;
    size_t n, cap;
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
    for (size_t i = 0; i < s->n; i++)
        if (s->heap[i].drop)
            s->heap[i].drop(s->heap[i].arg);
    free(s->heap);
    free(s);
}

uint64_t tb_sim_now(const tb_sim *s)
{
    return s->now;
}

static bool before(const event *a, const event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

int tb_sim_at(tb_sim *s, uint64_t when, tb_sim_fn fn, void *ctx, void *arg, tb_sim_drop_fn drop)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        event *h = realloc(s->heap, cap * sizeof(*h));
        if (!h)
            return TB_ERR_NOMEM;
        s->heap = h;
        s->cap = cap;
    }
    event e = {when < s->now ? s->now : when, s->seq++, fn, ctx, arg, drop};
    size_t i = s->n++;
    while (i > 0 && before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
    return 0;
}

static event pop(tb_sim *s)
{
    event top = s->heap[0], last = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n)
            break;
        if (c + 1 < s->n && before(&s->heap[c + 1], &s->heap[c]))
            c++;
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
        event e = pop(s);
        s->now = e.at;
        s->ran++;
        e.fn(s, e.ctx, e.arg);
    }
    if (until > s->now)
        s->now = until;
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
