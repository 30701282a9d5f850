#include "discovery/members.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/rand.h"

#define QUEUE_MAX 1024
#define PROBES_MAX 64 /* indirect and direct probes under way */

typedef struct member {
    char name[TB_NAME_MAX + 1];
    uint8_t state; /* tb_mb_state; 0 = free slot */
    uint64_t inc;
    uint64_t heard;    /* last direct contact (0 = never) */
    uint64_t deadline; /* suspect: dead at; dead: forgotten at */
    int32_t next;      /* hash chain */
    uint32_t gen;      /* bumped when the slot is reused, so old timers miss it */
} member;

/* A suspect's or dead member's deadline, in a min-heap; entries made stale by a later change
 * (revival, reuse of the slot) are skipped when they come up. */
typedef struct timer {
    uint64_t at;
    uint32_t slot, gen;
} timer;

/* INDIRECT: our link to target was lost, helpers asked. DIRECT: target is dead to us, asked
 * itself. RELAY: a peer asked us about target and we had not heard from it: we ask target. */
enum { P_INDIRECT, P_DIRECT, P_RELAY };

typedef struct probe {
    char target[TB_NAME_MAX + 1];
    char helpers[TB_MB_HELPERS_MAX][TB_NAME_MAX + 1]; /* RELAY: [0] is who asked us */
    uint8_t answered[TB_MB_HELPERS_MAX];
    size_t n_helpers, n_no;
    uint64_t id, deadline;
    uint64_t asker_id; /* RELAY: the asker's probe id */
    int kind;
} probe;

struct tb_mb {
    tb_mb_config cfg;
    char self[TB_NAME_MAX + 1];
    uint64_t inc;
    uint64_t rng, hash_key;
    member *m;
    size_t n_slots, cap, n_used;
    int32_t free_head;
    int32_t *buckets;
    size_t bucket_mask;
    probe probes[PROBES_MAX];
    size_t n_probes;
    uint64_t next_probe_id;
    uint64_t next_reconnect;
    timer *timers;
    size_t n_timers, cap_timers;
    size_t n_dead; /* as of the last count */
    tb_mb_action *queue;
    size_t q_head, q_len, q_cap;
    tb_mb_stats stats;
};

void tb_mb_config_default(tb_mb_config *cfg)
{
    *cfg = (tb_mb_config){
        .probe_timeout_ns = TB_NS_PER_SEC,
        .probe_helpers = 3,
        .heard_window_ns = 2 * TB_NS_PER_SEC,
        .suspicion_timeout_ns = 3 * TB_NS_PER_SEC,
        .reconnect_interval_ns = TB_NS_PER_SEC,
        .dead_keep_ns = 3600 * TB_NS_PER_SEC,
        .max_members = 4096,
    };
}

static bool name_ok(const char *s)
{
    return s && tb_name_valid(s, strnlen(s, TB_NAME_MAX + 1));
}

int tb_mb_new(const tb_mb_config *cfg, const char *self, uint64_t incarnation, uint64_t seed,
              tb_mb **out)
{
    *out = NULL;
    if (!name_ok(self) || cfg->probe_timeout_ns == 0 || cfg->probe_helpers == 0 ||
        cfg->probe_helpers > TB_MB_HELPERS_MAX || cfg->suspicion_timeout_ns == 0 ||
        cfg->reconnect_interval_ns == 0 || cfg->max_members == 0 ||
        cfg->max_members > TB_MB_MEMBERS_MAX || incarnation == UINT64_MAX)
        return TB_ERR_INVAL;
    tb_mb *mb = calloc(1, sizeof(*mb));
    if (!mb)
        return TB_ERR_NOMEM;
    mb->cfg = *cfg;
    memcpy(mb->self, self, strlen(self) + 1); /* name_ok bounded it to fit */
    mb->inc = incarnation;
    mb->rng = seed;
    mb->hash_key = tb_rand_next(&mb->rng);
    size_t nb = 16;
    while (nb < cfg->max_members)
        nb <<= 1;
    mb->bucket_mask = nb - 1;
    mb->buckets = malloc(nb * sizeof(*mb->buckets));
    if (!mb->buckets) {
        free(mb);
        return TB_ERR_NOMEM;
    }
    for (size_t i = 0; i < nb; i++)
        mb->buckets[i] = -1;
    mb->free_head = -1;
    mb->next_probe_id = tb_rand_next(&mb->rng);
    *out = mb;
    return 0;
}

void tb_mb_free(tb_mb *mb)
{
    if (!mb)
        return;
    free(mb->m);
    free(mb->timers);
    free(mb->buckets);
    free(mb->queue);
    free(mb);
}

/* ------------------------------------------------------------------ actions */

static tb_mb_action *push(tb_mb *mb, tb_mb_act_type type, const char *peer, const char *target)
{
    if (mb->q_len == mb->q_cap) {
        size_t cap = mb->q_cap ? mb->q_cap * 2 : 8;
        tb_mb_action *q = cap <= QUEUE_MAX ? malloc(cap * sizeof(*q)) : NULL;
        if (!q) {
            mb->stats.queue_full++;
            return NULL;
        }
        for (size_t i = 0; i < mb->q_len; i++)
            q[i] = mb->queue[(mb->q_head + i) % mb->q_cap];
        free(mb->queue);
        mb->queue = q;
        mb->q_cap = cap;
        mb->q_head = 0;
    }
    tb_mb_action *a = &mb->queue[(mb->q_head + mb->q_len++) % mb->q_cap];
    memset(a, 0, sizeof(*a));
    a->type = type;
    if (peer)
        memcpy(a->peer, peer, strnlen(peer, TB_NAME_MAX));
    if (target)
        memcpy(a->target, target, strnlen(target, TB_NAME_MAX));
    return a;
}

int tb_mb_next_action(tb_mb *mb, tb_mb_action *out)
{
    if (mb->q_len == 0)
        return TB_ERR_AGAIN;
    *out = mb->queue[mb->q_head];
    mb->q_head = (mb->q_head + 1) % mb->q_cap;
    mb->q_len--;
    return 0;
}

/* ------------------------------------------------------------------ the list */

static size_t bucket(const tb_mb *mb, const char *name)
{
    return (size_t)tb_rand_hash_str(name, mb->hash_key) & mb->bucket_mask;
}

static member *find(const tb_mb *mb, const char *name)
{
    for (int32_t i = mb->buckets[bucket(mb, name)]; i >= 0; i = mb->m[i].next)
        if (strcmp(mb->m[i].name, name) == 0)
            return &mb->m[i];
    return NULL;
}

static member *add(tb_mb *mb, const char *name)
{
    if (mb->n_used == mb->cfg.max_members) {
        mb->stats.full++;
        return NULL;
    }
    int32_t i = mb->free_head;
    if (i >= 0) {
        mb->free_head = mb->m[i].next;
    } else {
        if (mb->n_slots == mb->cap) {
            size_t cap = mb->cap ? mb->cap * 2 : 16;
            member *m = realloc(mb->m, cap * sizeof(*m));
            if (!m)
                return NULL;
            mb->m = m;
            mb->cap = cap;
        }
        i = (int32_t)mb->n_slots++;
    }
    member *m = &mb->m[i];
    uint32_t gen = m->gen + 1;
    memset(m, 0, sizeof(*m));
    m->gen = gen;
    memcpy(m->name, name, strlen(name));
    size_t b = bucket(mb, name);
    m->next = mb->buckets[b];
    mb->buckets[b] = i;
    mb->n_used++;
    return m;
}

static void forget(tb_mb *mb, member *m)
{
    int32_t idx = (int32_t)(m - mb->m);
    int32_t *link = &mb->buckets[bucket(mb, m->name)];
    while (*link != idx)
        link = &mb->m[*link].next;
    *link = m->next;
    m->state = 0;
    m->next = mb->free_head;
    mb->free_head = idx;
    mb->n_used--;
}

/* ------------------------------------------------------------------ timers heap */

static void timer_push(tb_mb *mb, const member *m)
{
    if (mb->n_timers == mb->cap_timers) {
        size_t cap = mb->cap_timers ? mb->cap_timers * 2 : 16;
        timer *t = realloc(mb->timers, cap * sizeof(*t));
        if (!t)
            return; /* the member stays in its state until the next change: counted below */
        mb->timers = t;
        mb->cap_timers = cap;
    }
    timer t = {m->deadline, (uint32_t)(m - mb->m), m->gen};
    size_t i = mb->n_timers++;
    while (i > 0 && t.at < mb->timers[(i - 1) / 2].at) {
        mb->timers[i] = mb->timers[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    mb->timers[i] = t;
}

static timer timer_pop(tb_mb *mb)
{
    timer top = mb->timers[0], last = mb->timers[--mb->n_timers];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= mb->n_timers)
            break;
        if (c + 1 < mb->n_timers && mb->timers[c + 1].at < mb->timers[c].at)
            c++;
        if (mb->timers[c].at >= last.at)
            break;
        mb->timers[i] = mb->timers[c];
        i = c;
    }
    if (mb->n_timers > 0)
        mb->timers[i] = last;
    return top;
}

/* ------------------------------------------------------------------ state changes */

/* fresh: a new incarnation to broadcast; to: a prober to send our ALIVE to as well. */
static void announce(tb_mb *mb, bool fresh, const char *to)
{
    if (fresh)
        mb->inc++;
    tb_mb_action *a = push(mb, TB_MB_ACT_ALIVE, to, mb->self);
    if (a) {
        a->incarnation = mb->inc;
        a->fresh = fresh;
    }
}

/* A SUSPECT (or a direct probe) names our current incarnation: a newer one says we live. */
static void refute(tb_mb *mb, const char *to)
{
    mb->stats.refuted++;
    announce(mb, true, to);
}

void tb_mb_renew(tb_mb *mb)
{
    mb->stats.renewed++;
    announce(mb, true, NULL);
}

static void make_suspect(tb_mb *mb, uint64_t now, member *m, uint64_t inc)
{
    if (m->state != TB_MB_SUSPECT) {
        m->deadline = now + mb->cfg.suspicion_timeout_ns;
        m->state = TB_MB_SUSPECT;
        timer_push(mb, m);
    }
    m->state = TB_MB_SUSPECT;
    m->inc = inc;
}

int tb_mb_alive(tb_mb *mb, uint64_t now, const char *name, uint64_t incarnation)
{
    if (!name_ok(name)) {
        mb->stats.refused++;
        return TB_ERR_INVAL;
    }
    if (strcmp(name, mb->self) == 0)
        return 0;
    member *m = find(mb, name);
    if (!m) {
        if (!(m = add(mb, name)))
            return TB_ERR_FULL;
        m->state = TB_MB_ALIVE;
        m->inc = incarnation;
        push(mb, TB_MB_ACT_UP, NULL, name);
        return 0;
    }
    if (incarnation <= m->inc)
        return 0;
    if (m->state == TB_MB_DEAD) {
        /* A dead member is back: a partition may have healed, and the other dead members are
         * probed sooner than one an interval (at most 8 an interval while revivals come in). */
        uint64_t soon = now + mb->cfg.reconnect_interval_ns / 8;
        if (soon < mb->next_reconnect)
            mb->next_reconnect = soon;
    }
    if (m->state != TB_MB_ALIVE) {
        mb->stats.revived++;
        push(mb, TB_MB_ACT_UP, NULL, name);
    }
    m->state = TB_MB_ALIVE;
    m->inc = incarnation;
    return 0;
}

int tb_mb_suspect(tb_mb *mb, uint64_t now, const char *name, uint64_t incarnation)
{
    if (!name_ok(name)) {
        mb->stats.refused++;
        return TB_ERR_INVAL;
    }
    if (strcmp(name, mb->self) == 0) {
        /* A newer incarnation than ours cannot have been announced: only we sign it. */
        if (incarnation == mb->inc)
            refute(mb, NULL);
        else if (incarnation > mb->inc)
            mb->stats.refused++;
        return 0;
    }
    member *m = find(mb, name);
    if (!m) {
        if (!(m = add(mb, name)))
            return TB_ERR_FULL;
        make_suspect(mb, now, m, incarnation);
        return 0;
    }
    if (incarnation < m->inc || m->state == TB_MB_DEAD)
        return 0;
    make_suspect(mb, now, m, incarnation);
    return 0;
}

static void raise_suspicion(tb_mb *mb, uint64_t now, member *m)
{
    if (m->state != TB_MB_ALIVE)
        return;
    mb->stats.suspected++;
    tb_mb_action *a = push(mb, TB_MB_ACT_SUSPECT, NULL, m->name);
    if (a)
        a->incarnation = m->inc;
    make_suspect(mb, now, m, m->inc);
}

static probe *find_probe(tb_mb *mb, const char *target, int kind)
{
    for (size_t i = 0; i < mb->n_probes; i++)
        if (mb->probes[i].kind == kind && strcmp(mb->probes[i].target, target) == 0)
            return &mb->probes[i];
    return NULL;
}

static probe *find_probe_id(tb_mb *mb, const char *target, uint64_t id)
{
    for (size_t i = 0; i < mb->n_probes; i++)
        if (mb->probes[i].id == id && strcmp(mb->probes[i].target, target) == 0)
            return &mb->probes[i];
    return NULL;
}

static void end_probe(tb_mb *mb, probe *p)
{
    *p = mb->probes[--mb->n_probes];
}

static probe *new_probe(tb_mb *mb, uint64_t now, const char *target, int kind)
{
    if (mb->n_probes == PROBES_MAX)
        return NULL;
    probe *p = &mb->probes[mb->n_probes++];
    memset(p, 0, sizeof(*p));
    memcpy(p->target, target, strlen(target));
    p->id = mb->next_probe_id++;
    /* A relay answers its asker before the asker's own timeout. */
    p->deadline = now + (kind == P_RELAY ? mb->cfg.probe_timeout_ns / 2 : mb->cfg.probe_timeout_ns);
    p->kind = kind;
    return p;
}

static void send_req(tb_mb *mb, const char *to, const char *target, uint64_t id, uint64_t inc,
                     bool suspect)
{
    tb_mb_action *a = push(mb, TB_MB_ACT_PROBE_REQ, to, target);
    if (a) {
        a->probe_id = id;
        a->incarnation = inc;
        a->suspect = suspect;
    }
}

static void send_ack(tb_mb *mb, const char *to, const char *target, uint64_t id, bool heard)
{
    tb_mb_action *a = push(mb, TB_MB_ACT_PROBE_ACK, to, target);
    if (a) {
        a->probe_id = id;
        a->heard = heard;
    }
}

int tb_mb_link_lost(tb_mb *mb, uint64_t now, const char *target, const char *const *helpers,
                    size_t n_helpers)
{
    if (!name_ok(target))
        return TB_ERR_INVAL;
    member *m = find(mb, target);
    if (!m || m->state != TB_MB_ALIVE || find_probe(mb, target, P_INDIRECT))
        return 0;
    /* Helpers in random order: a partial Fisher-Yates over indices of usable names. */
    size_t idx[TB_MB_HELPERS_MAX * 8], n = 0;
    for (size_t i = 0; i < n_helpers && n < sizeof(idx) / sizeof(idx[0]); i++)
        if (name_ok(helpers[i]) && strcmp(helpers[i], target) != 0 &&
            strcmp(helpers[i], mb->self) != 0)
            idx[n++] = i;
    probe *p = n > 0 ? new_probe(mb, now, target, P_INDIRECT) : NULL;
    if (!p) {
        raise_suspicion(mb, now, m);
        return 0;
    }
    mb->stats.probes++;
    for (size_t k = 0; k < mb->cfg.probe_helpers && n > 0; k++) {
        size_t j = (size_t)tb_rand_below(&mb->rng, n);
        const char *h = helpers[idx[j]];
        idx[j] = idx[--n];
        memcpy(p->helpers[p->n_helpers++], h, strlen(h));
        send_req(mb, h, target, p->id, m->inc, false);
    }
    return 0;
}

/* A member we hold dead or suspect is heard from directly (it asks us something, or a link to
 * it carries anything): it is up, and most likely does not know what we hold, as after a
 * partition, whose SUSPECTs went round the other side only. Ask it ourselves, as the periodic
 * reconnect would: it refutes with a new incarnation that every member takes, at the first
 * contact rather than at our own random probe of it. One probe at a time per member. */
static void probe_back(tb_mb *mb, uint64_t now, const char *from)
{
    const member *m = find(mb, from);
    if (!m || m->state == TB_MB_ALIVE || find_probe(mb, from, P_DIRECT))
        return;
    probe *p = new_probe(mb, now, from, P_DIRECT);
    if (p) {
        mb->stats.probed_back++;
        send_req(mb, from, from, p->id, m->inc, true);
    }
}

void tb_mb_heard(tb_mb *mb, uint64_t now, const char *name)
{
    member *m = name ? find(mb, name) : NULL;
    if (!m)
        return;
    m->heard = now;
    probe_back(mb, now, name);
}

int tb_mb_recv_probe_req(tb_mb *mb, uint64_t now, const char *from, uint64_t probe_id,
                         const char *target, uint64_t incarnation, bool suspect)
{
    if (!name_ok(from) || !name_ok(target)) {
        mb->stats.refused++;
        return TB_ERR_INVAL;
    }
    probe_back(mb, now, from);
    if (strcmp(target, mb->self) == 0) {
        /* Asked about ourselves: we are here. With `suspect`, the asker holds us dead or suspect
         * at `incarnation`: refute, or send it the ALIVE it missed. */
        if (suspect && incarnation == mb->inc)
            refute(mb, from);
        else if (suspect && incarnation < mb->inc)
            announce(mb, false, from);
        else if (suspect)
            mb->stats.refused++;
        send_ack(mb, from, target, probe_id, true);
        return 0;
    }
    const member *m = find(mb, target);
    if (m && m->heard && now - m->heard <= mb->cfg.heard_window_ns) {
        send_ack(mb, from, target, probe_id, true);
        return 0;
    }
    /* Not heard lately (no link to it, most likely): ask it ourselves, answer when it does. */
    probe *p = new_probe(mb, now, target, P_RELAY);
    if (!p) {
        send_ack(mb, from, target, probe_id, false);
        return 0;
    }
    memcpy(p->helpers[0], from, strlen(from));
    p->n_helpers = 1;
    p->asker_id = probe_id;
    send_req(mb, target, target, p->id, 0, false);
    return 0;
}

int tb_mb_recv_probe_ack(tb_mb *mb, uint64_t now, const char *from, uint64_t probe_id,
                         const char *target, bool heard)
{
    probe *p = name_ok(from) && name_ok(target) ? find_probe_id(mb, target, probe_id) : NULL;
    if (!p) {
        mb->stats.refused++;
        return TB_ERR_NOTFOUND;
    }
    if (p->kind != P_INDIRECT) {
        if (strcmp(from, target) != 0 || !heard) {
            mb->stats.refused++;
            return TB_ERR_NOTFOUND;
        }
        tb_mb_heard(mb, now, target);
        if (p->kind == P_RELAY)
            send_ack(mb, p->helpers[0], target, p->asker_id, true);
        else
            push(mb, TB_MB_ACT_REACHED, NULL, target);
        end_probe(mb, p);
        return 0;
    }
    size_t h = 0;
    while (h < p->n_helpers && strcmp(p->helpers[h], from) != 0)
        h++;
    if (h == p->n_helpers || p->answered[h]) {
        mb->stats.refused++;
        return TB_ERR_NOTFOUND;
    }
    p->answered[h] = 1;
    if (heard) {
        mb->stats.probes_ok++;
        end_probe(mb, p);
        return 0;
    }
    if (++p->n_no == p->n_helpers) {
        member *m = find(mb, target);
        end_probe(mb, p);
        if (m)
            raise_suspicion(mb, now, m);
    }
    return 0;
}

/* ------------------------------------------------------------------ timers */

static void probes_due(tb_mb *mb, uint64_t now)
{
    for (size_t i = 0; i < mb->n_probes;) {
        probe *p = &mb->probes[i];
        if (p->deadline > now) {
            i++;
            continue;
        }
        member *m = p->kind == P_INDIRECT ? find(mb, p->target) : NULL;
        if (p->kind == P_RELAY)
            send_ack(mb, p->helpers[0], p->target, p->asker_id, false);
        end_probe(mb, p);
        if (m)
            raise_suspicion(mb, now, m);
    }
}

static void members_due(tb_mb *mb, uint64_t now)
{
    while (mb->n_timers > 0 && mb->timers[0].at <= now) {
        timer t = timer_pop(mb);
        member *m = &mb->m[t.slot];
        if (m->gen != t.gen || m->deadline != t.at)
            continue;
        if (m->state == TB_MB_SUSPECT) {
            m->state = TB_MB_DEAD;
            m->deadline = now + mb->cfg.dead_keep_ns;
            timer_push(mb, m);
            mb->stats.declared_dead++;
            mb->n_dead++;
            push(mb, TB_MB_ACT_DEAD, NULL, m->name);
        } else if (m->state == TB_MB_DEAD) {
            forget(mb, m);
        }
    }
}

static void reconnect(tb_mb *mb, uint64_t now, size_t n_dead)
{
    if (now < mb->next_reconnect || n_dead == 0)
        return;
    mb->next_reconnect = now + mb->cfg.reconnect_interval_ns;
    /* Revivals since the last count make it high; recount, it is once per interval. */
    n_dead = 0;
    for (size_t i = 0; i < mb->n_slots; i++)
        n_dead += mb->m[i].state == TB_MB_DEAD;
    mb->n_dead = n_dead;
    if (n_dead == 0)
        return;
    size_t k = (size_t)tb_rand_below(&mb->rng, n_dead);
    for (size_t i = 0; i < mb->n_slots; i++) {
        member *m = &mb->m[i];
        if (m->state != TB_MB_DEAD || k-- > 0)
            continue;
        if (find_probe(mb, m->name, P_DIRECT))
            return;
        probe *p = new_probe(mb, now, m->name, P_DIRECT);
        if (p)
            send_req(mb, m->name, m->name, p->id, m->inc, true);
        return;
    }
}

void tb_mb_tick(tb_mb *mb, uint64_t now)
{
    probes_due(mb, now);
    members_due(mb, now);
    reconnect(mb, now, mb->n_dead);
}

uint64_t tb_mb_next_wake(const tb_mb *mb)
{
    uint64_t w = mb->n_timers > 0 ? mb->timers[0].at : UINT64_MAX;
    for (size_t i = 0; i < mb->n_probes; i++)
        if (mb->probes[i].deadline < w)
            w = mb->probes[i].deadline;
    if (mb->n_dead > 0 && mb->next_reconnect < w)
        w = mb->next_reconnect;
    return w;
}

int tb_mb_get(const tb_mb *mb, const char *name, tb_mb_state *state, uint64_t *incarnation)
{
    const member *m = name ? find(mb, name) : NULL;
    if (!m)
        return TB_ERR_NOTFOUND;
    if (state)
        *state = (tb_mb_state)m->state;
    if (incarnation)
        *incarnation = m->inc;
    return 0;
}

size_t tb_mb_count(const tb_mb *mb, tb_mb_state state)
{
    size_t n = 0;
    for (size_t i = 0; i < mb->n_slots; i++)
        n += mb->m[i].state == state;
    return n;
}

void tb_mb_each(const tb_mb *mb,
                void (*fn)(void *arg, const char *name, tb_mb_state state, uint64_t incarnation),
                void *arg)
{
    for (size_t i = 0; i < mb->n_slots; i++)
        if (mb->m[i].state)
            fn(arg, mb->m[i].name, (tb_mb_state)mb->m[i].state, mb->m[i].inc);
}

uint64_t tb_mb_incarnation(const tb_mb *mb)
{
    return mb->inc;
}

void tb_mb_get_stats(const tb_mb *mb, tb_mb_stats *out)
{
    *out = mb->stats;
}
