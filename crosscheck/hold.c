/* Hysteresis on verdicts (crosscheck/hold.h). */
#include "crosscheck/hold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hold_entry {
    tb_measure_kind kind;
    char source[TB_MEASURE_MAX_TEXT + 1];
    tb_xc_verdict_kind shown, candidate;
    unsigned count; /* consecutive runs the candidate has held */
    bool judged;    /* a run has given it a verdict other than warming_up */
    int64_t since_ns;
} hold_entry;

struct tb_xc_hold {
    hold_entry *e; /* sorted like the result's verdicts */
    size_t n;
};

tb_xc_hold *tb_xc_hold_new(void)
{
    return calloc(1, sizeof(tb_xc_hold));
}

void tb_xc_hold_free(tb_xc_hold *h)
{
    if (!h)
        return;
    free(h->e);
    free(h);
}

static int cmp_entry(const void *a, const void *b)
{
    const hold_entry *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->source, y->source);
}

static const hold_entry *find_source(const tb_xc_hold *h, tb_measure_kind kind, const char *source)
{
    hold_entry key = {.kind = kind};
    snprintf(key.source, sizeof(key.source), "%s", source);
    return h->n ? bsearch(&key, h->e, h->n, sizeof(*h->e), cmp_entry) : NULL;
}

static const hold_entry *find(const tb_xc_hold *h, const tb_xc_verdict *v)
{
    return find_source(h, v->kind, v->source);
}

bool tb_xc_hold_judged(const tb_xc_hold *h, tb_measure_kind kind, const char *source)
{
    const hold_entry *e = h && source ? find_source(h, kind, source) : NULL;
    return e && e->judged;
}

/* The run found `now_v`, the shown verdict stays: say both. */
static void explain_held(tb_xc_verdict *v, tb_xc_verdict_kind shown, unsigned left)
{
    char tmp[sizeof(v->reason) + 128];
    snprintf(tmp, sizeof(tmp), "held for %u more run(s); this run: %s: %s", left,
             tb_xc_verdict_name((int)v->verdict), v->reason);
    size_t n = strlen(tmp) < sizeof(v->reason) ? strlen(tmp) : sizeof(v->reason) - 1;
    memcpy(v->reason, tmp, n);
    v->reason[n] = '\0';
    v->verdict = shown;
    v->held = true;
}

/* The next state of one source from its previous one (NULL: new) and this run's verdict. */
static hold_entry step(const hold_entry *old, tb_xc_verdict *v, unsigned runs, int64_t now)
{
    hold_entry e = {.kind = v->kind,
                    .shown = v->verdict,
                    .candidate = v->verdict,
                    .since_ns = now,
                    .judged = (old && old->judged) || v->verdict != TB_XC_WARMING_UP};
    snprintf(e.source, sizeof(e.source), "%s", v->source);
    if (old && old->shown == v->verdict) {
        e.since_ns = old->since_ns;
    } else if (old) {
        e.count = old->candidate == v->verdict ? old->count + 1 : 1;
        if (e.count < runs) {
            e.shown = old->shown;
            e.since_ns = old->since_ns;
            explain_held(v, old->shown, runs - e.count);
        } else {
            e.count = 0;
        }
    }
    v->since_ns = e.since_ns;
    return e;
}

int tb_xc_hold_apply(tb_xc_hold *h, unsigned runs, int64_t now_ns, tb_xc_result *r)
{
    hold_entry *next = calloc(r->n_verdicts + 1, sizeof(*next));
    if (!next)
        return TB_ERR_NOMEM;
    for (size_t i = 0; i < r->n_verdicts; i++)
        next[i] = step(find(h, &r->verdicts[i]), &r->verdicts[i], runs, now_ns);
    /* the result's order is the entries' order; sorting again keeps bsearch honest if not */
    qsort(next, r->n_verdicts, sizeof(*next), cmp_entry);
    free(h->e);
    h->e = next;
    h->n = r->n_verdicts;
    return TB_OK;
}
