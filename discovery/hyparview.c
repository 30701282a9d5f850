#include "discovery/hyparview.h"

#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/rand.h"

#define QUEUE_MAX 256 /* pending actions; beyond this the caller is not draining */

struct tb_hv {
    tb_hv_config cfg;
    tb_hv_desc self;
    uint64_t rng;
    tb_hv_desc active[TB_HV_ACTIVE_MAX];
    size_t n_active;
    tb_hv_desc *passive;
    size_t n_passive;
    /* Keyed hashes of the views' names, compared before the names: a look-up then reads a few
     * cache lines, not one per descriptor (every member learned is offered to the passive view). */
    uint64_t akeys[TB_HV_ACTIVE_MAX], *pkeys, name_key;
    /* The one NEIGHBOR request under way (repair or urgent), answered by NEIGHBOR_REPLY. */
    bool pending;
    uint8_t pending_high; /* its priority, for a copy sent again (tb_hv_link_replaced) */
    tb_hv_desc pending_peer;
    uint64_t pending_deadline;
    uint64_t next_repair;
    uint64_t next_shuffle;
    uint64_t next_urgent;
    /* Our last SHUFFLE: its sample is what we evict first when the reply comes. */
    bool shuffle_open;
    uint64_t shuffle_deadline;
    tb_hv_desc sent[TB_HV_SHUFFLE_MAX];
    size_t n_sent;
    tb_hv_action *queue;
    size_t q_head, q_len, q_cap;
    tb_hv_stats stats;
};

void tb_hv_config_default(tb_hv_config *cfg)
{
    *cfg = (tb_hv_config){
        .active_size = 8,
        .passive_size = 64,
        .arwl = 6,
        .prwl = 3,
        .shuffle_active = 3,
        .shuffle_passive = 4,
        .shuffle_interval_ns = 30 * TB_NS_PER_SEC,
        .repair_interval_ns = TB_NS_PER_SEC,
        .neighbor_timeout_ns = 5 * TB_NS_PER_SEC,
        .urgent_interval_ns = 10 * TB_NS_PER_SEC,
    };
}

static bool config_ok(const tb_hv_config *c)
{
    return c->active_size >= 1 && c->active_size <= TB_HV_ACTIVE_MAX && c->passive_size >= 1 &&
           c->passive_size <= TB_HV_PASSIVE_MAX && c->arwl >= 1 && c->arwl <= TB_HV_TTL_MAX &&
           c->prwl < c->arwl && c->shuffle_active + c->shuffle_passive + 1 <= TB_HV_SHUFFLE_MAX &&
           c->shuffle_interval_ns > 0 && c->repair_interval_ns > 0 && c->neighbor_timeout_ns > 0;
}

static bool str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap + 1) != NULL;
}

int tb_hv_desc_check(const tb_hv_config *cfg, tb_hv_desc *d)
{
    if (!str_ok(d->name, TB_NAME_MAX) || !tb_name_valid(d->name, strlen(d->name)) ||
        !str_ok(d->region, TB_NAME_MAX) || !tb_name_valid(d->region, strlen(d->region)))
        return TB_ERR_INVAL;
    size_t kept = 0, n = d->n_addrs < TB_HV_ADDRS_MAX ? d->n_addrs : TB_HV_ADDRS_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *a = d->addrs[i];
        tb_addr_hostport hp;
        if (!str_ok(a, TB_HV_ADDR_MAX) || tb_addr_parse(a, strlen(a), 0, &hp, NULL) != TB_OK)
            continue;
        if (cfg->addr_ok && !cfg->addr_ok(cfg->addr_ctx, a))
            continue;
        if (kept != i)
            memcpy(d->addrs[kept], a, sizeof(d->addrs[kept]));
        kept++;
    }
    for (size_t i = kept; i < TB_HV_ADDRS_MAX; i++)
        memset(d->addrs[i], 0, sizeof(d->addrs[i]));
    d->n_addrs = (uint8_t)kept;
    return kept > 0 ? 0 : TB_ERR_INVAL;
}

int tb_hv_new(const tb_hv_config *cfg, const tb_hv_desc *self, uint64_t seed, uint64_t now,
              tb_hv **out)
{
    *out = NULL;
    if (!config_ok(cfg))
        return TB_ERR_INVAL;
    tb_hv *hv = calloc(1, sizeof(*hv));
    if (!hv)
        return TB_ERR_NOMEM;
    hv->cfg = *cfg;
    hv->self = *self;
    hv->rng = seed;
    hv->passive = calloc(cfg->passive_size, sizeof(*hv->passive));
    hv->pkeys = calloc(cfg->passive_size, sizeof(*hv->pkeys));
    hv->name_key = tb_rand_next(&hv->rng);
    int rc = !hv->passive || !hv->pkeys ? TB_ERR_NOMEM : tb_hv_desc_check(cfg, &hv->self);
    if (rc) {
        tb_hv_free(hv);
        return rc;
    }
    hv->next_repair = now;
    /* Spread first shuffles so a mesh started at once does not shuffle in step. */
    hv->next_shuffle = now + tb_rand_below(&hv->rng, cfg->shuffle_interval_ns) + 1;
    *out = hv;
    return 0;
}

void tb_hv_free(tb_hv *hv)
{
    if (!hv)
        return;
    free(hv->passive);
    free(hv->pkeys);
    free(hv->queue);
    free(hv);
}

/* ------------------------------------------------------------------ actions */

static tb_hv_action *push(tb_hv *hv, tb_hv_act_type type, const tb_hv_desc *peer)
{
    if (hv->q_len == hv->q_cap) {
        size_t cap = hv->q_cap ? hv->q_cap * 2 : 8;
        tb_hv_action *q = cap <= QUEUE_MAX ? malloc(cap * sizeof(*q)) : NULL;
        if (!q) {
            hv->stats.queue_full++;
            return NULL;
        }
        for (size_t i = 0; i < hv->q_len; i++)
            q[i] = hv->queue[(hv->q_head + i) % hv->q_cap];
        free(hv->queue);
        hv->queue = q;
        hv->q_cap = cap;
        hv->q_head = 0;
    }
    tb_hv_action *a = &hv->queue[(hv->q_head + hv->q_len++) % hv->q_cap];
    memset(a, 0, sizeof(*a));
    a->type = type;
    a->peer = *peer;
    return a;
}

int tb_hv_next_action(tb_hv *hv, tb_hv_action *out)
{
    if (hv->q_len == 0)
        return TB_ERR_AGAIN;
    *out = hv->queue[hv->q_head];
    hv->q_head = (hv->q_head + 1) % hv->q_cap;
    hv->q_len--;
    return 0;
}

static tb_hv_msg *send_msg(tb_hv *hv, const tb_hv_desc *to, tb_hv_type type)
{
    tb_hv_action *a = push(hv, TB_HV_ACT_SEND, to);
    if (!a)
        return NULL;
    a->msg.type = type;
    return &a->msg;
}

static void send_simple(tb_hv *hv, const tb_hv_desc *to, tb_hv_type type, uint8_t ttl, uint8_t flag,
                        const tb_hv_desc *node)
{
    tb_hv_msg *m = send_msg(hv, to, type);
    if (!m)
        return;
    m->ttl = ttl;
    m->flag = flag;
    if (node)
        m->node = *node;
}

/* ------------------------------------------------------------------ views */

/* One of the two views: descriptors and the keys of their names. */
typedef struct view {
    tb_hv_desc *d;
    uint64_t *key;
    size_t *n;
} view;

static view active_view(tb_hv *hv)
{
    return (view){hv->active, hv->akeys, &hv->n_active};
}

static view passive_view(tb_hv *hv)
{
    return (view){hv->passive, hv->pkeys, &hv->n_passive};
}

static ptrdiff_t find_in(const tb_hv *hv, const tb_hv_desc *d, const uint64_t *keys, size_t n,
                         const char *name)
{
    uint64_t k = tb_rand_hash_str(name, hv->name_key);
    for (size_t i = 0; i < n; i++)
        if (keys[i] == k && strcmp(d[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static ptrdiff_t find_active(const tb_hv *hv, const char *name)
{
    return find_in(hv, hv->active, hv->akeys, hv->n_active, name);
}

static ptrdiff_t find_passive(const tb_hv *hv, const char *name)
{
    return find_in(hv, hv->passive, hv->pkeys, hv->n_passive, name);
}

static void remove_at(view v, size_t i)
{
    size_t last = --*v.n;
    v.d[i] = v.d[last];
    v.key[i] = v.key[last];
}

static void put_at(const tb_hv *hv, view v, size_t i, const tb_hv_desc *d)
{
    v.d[i] = *d;
    v.key[i] = tb_rand_hash_str(d->name, hv->name_key);
}

static void append(const tb_hv *hv, view v, const tb_hv_desc *d)
{
    put_at(hv, v, (*v.n)++, d);
}

static void passive_remove(tb_hv *hv, const char *name)
{
    ptrdiff_t i = find_passive(hv, name);
    if (i >= 0)
        remove_at(passive_view(hv), (size_t)i);
}

/* Adds d (validated) unless it is us, active or known; a full view first drops an entry of
 * `prefer` (what we just gave away in a shuffle), else a random one. */
static void passive_add(tb_hv *hv, const tb_hv_desc *d, const tb_hv_desc *prefer, size_t n_prefer)
{
    if (strcmp(d->name, hv->self.name) == 0 || find_active(hv, d->name) >= 0)
        return;
    ptrdiff_t have = find_passive(hv, d->name);
    if (have >= 0) {
        hv->passive[have] = *d; /* newer addresses */
        return;
    }
    if (hv->n_passive == hv->cfg.passive_size) {
        ptrdiff_t victim = -1;
        for (size_t i = 0; i < n_prefer && victim < 0; i++)
            victim = find_passive(hv, prefer[i].name);
        if (victim < 0)
            victim = (ptrdiff_t)tb_rand_below(&hv->rng, hv->n_passive);
        remove_at(passive_view(hv), (size_t)victim);
    }
    append(hv, passive_view(hv), d);
}

static void active_drop(tb_hv *hv, size_t i, bool tell, bool keep_passive)
{
    tb_hv_desc d = hv->active[i];
    remove_at(active_view(hv), i);
    if (tell)
        send_simple(hv, &d, TB_HV_DISCONNECT, 0, 1, NULL);
    push(hv, TB_HV_ACT_CLOSE, &d);
    push(hv, TB_HV_ACT_DOWN, &d);
    if (keep_passive)
        passive_add(hv, &d, NULL, 0);
    /* A short view repairs at once rather than at the next repair interval. */
    hv->next_repair = 0;
}

static void active_add(tb_hv *hv, const tb_hv_desc *d)
{
    if (strcmp(d->name, hv->self.name) == 0)
        return;
    ptrdiff_t have = find_active(hv, d->name);
    if (have >= 0) {
        hv->active[have] = *d;
        return;
    }
    passive_remove(hv, d->name);
    if (hv->pending && strcmp(hv->pending_peer.name, d->name) == 0)
        hv->pending = false;
    if (hv->n_active == hv->cfg.active_size) {
        hv->stats.evictions++;
        active_drop(hv, (size_t)tb_rand_below(&hv->rng, hv->n_active), true, true);
    }
    append(hv, active_view(hv), d);
    push(hv, TB_HV_ACT_UP, d);
}

/* A random active peer other than the two names given (either may be NULL); NULL if none. */
static const tb_hv_desc *random_active_except(tb_hv *hv, const char *a, const char *b)
{
    const tb_hv_desc *cand[TB_HV_ACTIVE_MAX];
    size_t n = 0;
    for (size_t i = 0; i < hv->n_active; i++) {
        const char *nm = hv->active[i].name;
        if ((a && strcmp(nm, a) == 0) || (b && strcmp(nm, b) == 0))
            continue;
        cand[n++] = &hv->active[i];
    }
    return n ? cand[tb_rand_below(&hv->rng, n)] : NULL;
}

/* ------------------------------------------------------------------ protocol */

int tb_hv_join(tb_hv *hv, uint64_t now, const tb_hv_desc *contact)
{
    tb_hv_desc d = *contact;
    if (tb_hv_desc_check(&hv->cfg, &d) || strcmp(d.name, hv->self.name) == 0)
        return TB_ERR_INVAL;
    send_simple(hv, &d, TB_HV_JOIN, 0, 0, &hv->self);
    active_add(hv, &d);
    return 0;
}

static void on_join(tb_hv *hv, const tb_hv_desc *x)
{
    /* Walks start at every other active peer, so the newcomer lands in several views. */
    for (size_t i = 0; i < hv->n_active; i++)
        if (strcmp(hv->active[i].name, x->name) != 0)
            send_simple(hv, &hv->active[i], TB_HV_FORWARD_JOIN, (uint8_t)hv->cfg.arwl, 0, x);
    active_add(hv, x);
}

static void on_forward_join(tb_hv *hv, const char *from, uint8_t ttl, const tb_hv_desc *x)
{
    if (strcmp(x->name, hv->self.name) == 0 || find_active(hv, x->name) >= 0)
        return;
    if (ttl > hv->cfg.arwl)
        ttl = (uint8_t)hv->cfg.arwl;
    const tb_hv_desc *next =
        ttl == 0 || hv->n_active <= 1 ? NULL : random_active_except(hv, from, x->name);
    if (!next) {
        /* The walk ends here: X becomes our neighbour and must take us (high priority). */
        send_simple(hv, x, TB_HV_NEIGHBOR, 0, 1, &hv->self);
        active_add(hv, x);
        return;
    }
    passive_add(hv, x, NULL, 0);
    send_simple(hv, next, TB_HV_FORWARD_JOIN, (uint8_t)(ttl - 1), 0, x);
}

static void on_neighbor(tb_hv *hv, const tb_hv_desc *x, bool high)
{
    bool accept = high || hv->n_active < hv->cfg.active_size || find_active(hv, x->name) >= 0;
    send_simple(hv, x, TB_HV_NEIGHBOR_REPLY, 0, accept, &hv->self);
    if (accept) {
        active_add(hv, x);
    } else {
        passive_add(hv, x, NULL, 0);
        push(hv, TB_HV_ACT_CLOSE, x);
    }
}

static void on_neighbor_reply(tb_hv *hv, uint64_t now, const tb_hv_desc *x, bool accepted)
{
    bool asked = hv->pending && strcmp(hv->pending_peer.name, x->name) == 0;
    bool active = find_active(hv, x->name) >= 0;
    if (!asked) {
        if (accepted && !active) {
            /* It took us without our asking (or after we gave up): undo its half. */
            hv->stats.unexpected++;
            send_simple(hv, x, TB_HV_DISCONNECT, 0, 1, NULL);
            push(hv, TB_HV_ACT_CLOSE, x);
        }
        return;
    }
    hv->pending = false;
    if (accepted) {
        hv->stats.repairs++;
        active_add(hv, x);
    } else {
        /* Asked again it would refuse again (it is full), and a short view asks every repair
         * interval: a shuffle names it again later. */
        passive_remove(hv, x->name);
        push(hv, TB_HV_ACT_CLOSE, x);
        hv->next_repair = now + hv->cfg.repair_interval_ns;
    }
}

static void on_disconnect(tb_hv *hv, const char *from, bool alive)
{
    ptrdiff_t i = find_active(hv, from);
    if (i >= 0)
        active_drop(hv, (size_t)i, false, alive);
}

/* Validated copies of the received descriptors. */
static size_t clean_descs(tb_hv *hv, const tb_hv_msg *m, tb_hv_desc *out)
{
    size_t n = 0, cnt = m->n_descs < TB_HV_SHUFFLE_MAX ? m->n_descs : TB_HV_SHUFFLE_MAX;
    for (size_t i = 0; i < cnt; i++) {
        out[n] = m->descs[i];
        if (tb_hv_desc_check(&hv->cfg, &out[n]))
            hv->stats.bad_descs++;
        else
            n++;
    }
    return n;
}

static size_t sample_passive(tb_hv *hv, size_t want, tb_hv_desc *out, size_t n_out)
{
    size_t idx[TB_HV_PASSIVE_MAX], n = hv->n_passive, k = 0;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    while (k < want && n > 0 && n_out < TB_HV_SHUFFLE_MAX) {
        size_t j = (size_t)tb_rand_below(&hv->rng, n);
        out[n_out++] = hv->passive[idx[j]];
        idx[j] = idx[--n];
        k++;
    }
    return n_out;
}

static void on_shuffle(tb_hv *hv, const char *from, const tb_hv_msg *m)
{
    if (strcmp(m->node.name, hv->self.name) == 0)
        return;
    uint8_t ttl = m->ttl > hv->cfg.arwl ? (uint8_t)hv->cfg.arwl : m->ttl;
    const tb_hv_desc *next =
        ttl > 1 && hv->n_active > 1 ? random_active_except(hv, from, m->node.name) : NULL;
    if (next) {
        tb_hv_msg *f = send_msg(hv, next, TB_HV_SHUFFLE);
        if (f) {
            *f = *m;
            f->ttl = (uint8_t)(ttl - 1);
        }
        return;
    }
    tb_hv_desc got[TB_HV_SHUFFLE_MAX];
    size_t n_got = clean_descs(hv, m, got);
    tb_hv_msg *r = send_msg(hv, &m->node, TB_HV_SHUFFLE_REPLY);
    if (r)
        r->n_descs = (uint8_t)sample_passive(hv, n_got, r->descs, 0);
    if (find_active(hv, m->node.name) < 0)
        push(hv, TB_HV_ACT_CLOSE, &m->node);
    for (size_t i = 0; i < n_got; i++)
        passive_add(hv, &got[i], r ? r->descs : NULL, r ? r->n_descs : 0);
    passive_add(hv, &m->node, NULL, 0);
}

static void on_shuffle_reply(tb_hv *hv, uint64_t now, const char *from, const tb_hv_msg *m)
{
    if (!hv->shuffle_open || now > hv->shuffle_deadline) {
        hv->stats.unexpected++;
        return;
    }
    hv->shuffle_open = false;
    tb_hv_desc got[TB_HV_SHUFFLE_MAX];
    size_t n_got = clean_descs(hv, m, got);
    for (size_t i = 0; i < n_got; i++)
        passive_add(hv, &got[i], hv->sent, hv->n_sent);
    tb_hv_desc peer = {0};
    memcpy(peer.name, from, strnlen(from, TB_NAME_MAX));
    if (find_active(hv, from) < 0)
        push(hv, TB_HV_ACT_CLOSE, &peer);
}

/* The node descriptor of a message must be valid, and for JOIN/NEIGHBOR/NEIGHBOR_REPLY it must
 * be the sender itself (a peer speaks for itself only). */
static bool node_ok(tb_hv *hv, const char *from, tb_hv_type t, tb_hv_desc *node)
{
    if (t == TB_HV_DISCONNECT || t == TB_HV_SHUFFLE_REPLY)
        return true;
    if (tb_hv_desc_check(&hv->cfg, node))
        return false;
    if (t == TB_HV_JOIN || t == TB_HV_NEIGHBOR || t == TB_HV_NEIGHBOR_REPLY)
        return strcmp(node->name, from) == 0;
    return true;
}

int tb_hv_recv(tb_hv *hv, uint64_t now, const char *from, const tb_hv_msg *m)
{
    if (!from || !tb_name_valid(from, strnlen(from, TB_NAME_MAX + 1)) ||
        strcmp(from, hv->self.name) == 0)
        return TB_ERR_MALFORMED;
    tb_hv_desc node = m->node;
    if (!node_ok(hv, from, m->type, &node)) {
        hv->stats.bad_descs++;
        return TB_ERR_MALFORMED;
    }
    switch (m->type) {
    case TB_HV_JOIN:
        on_join(hv, &node);
        return 0;
    case TB_HV_FORWARD_JOIN:
        on_forward_join(hv, from, m->ttl, &node);
        return 0;
    case TB_HV_NEIGHBOR:
        on_neighbor(hv, &node, m->flag != 0);
        return 0;
    case TB_HV_NEIGHBOR_REPLY:
        on_neighbor_reply(hv, now, &node, m->flag != 0);
        return 0;
    case TB_HV_DISCONNECT:
        on_disconnect(hv, from, m->flag != 0);
        return 0;
    case TB_HV_SHUFFLE: {
        tb_hv_msg copy = *m;
        copy.node = node;
        on_shuffle(hv, from, &copy);
        return 0;
    }
    case TB_HV_SHUFFLE_REPLY:
        on_shuffle_reply(hv, now, from, m);
        return 0;
    }
    return TB_ERR_MALFORMED;
}

/* No link to peer any more: an active peer is replaced (kept passive if alive), a NEIGHBOR
 * under way to it gets no answer. */
static void link_gone(tb_hv *hv, uint64_t now, const char *peer, bool alive)
{
    ptrdiff_t i = find_active(hv, peer);
    if (i >= 0)
        active_drop(hv, (size_t)i, false, alive);
    if (hv->pending && strcmp(hv->pending_peer.name, peer) == 0) {
        hv->pending = false;
        hv->next_repair = now;
    }
}

void tb_hv_link_down(tb_hv *hv, uint64_t now, const char *peer)
{
    link_gone(hv, now, peer, false);
    passive_remove(hv, peer);
}

void tb_hv_link_closed(tb_hv *hv, uint64_t now, const char *peer)
{
    link_gone(hv, now, peer, true);
}

/* The one NEIGHBOR request under way; its answer (or the timeout) ends it. */
static void ask_neighbor(tb_hv *hv, uint64_t now, const tb_hv_desc *d, uint8_t high)
{
    send_simple(hv, d, TB_HV_NEIGHBOR, 0, high, &hv->self);
    hv->pending = true;
    hv->pending_high = high;
    hv->pending_peer = *d;
    hv->pending_deadline = now + hv->cfg.neighbor_timeout_ns;
}

/* What went on the closed connection may never have been read: the request under way goes
 * again, and an active peer is asked once more with high priority, which it grants whether or
 * not it took us already (it took us, or had to: a JOIN, a walk's end, a NEIGHBOR we granted). */
void tb_hv_link_replaced(tb_hv *hv, uint64_t now, const char *peer)
{
    if (hv->pending && strcmp(hv->pending_peer.name, peer) == 0) {
        tb_hv_desc d = hv->pending_peer;
        ask_neighbor(hv, now, &d, hv->pending_high);
        return;
    }
    ptrdiff_t i = find_active(hv, peer);
    if (i >= 0)
        send_simple(hv, &hv->active[i], TB_HV_NEIGHBOR, 0, 1, &hv->self);
}

int tb_hv_add_passive(tb_hv *hv, uint64_t now, const tb_hv_desc *d, bool urgent)
{
    tb_hv_desc c = *d;
    if (tb_hv_desc_check(&hv->cfg, &c))
        return TB_ERR_INVAL;
    if (strcmp(c.name, hv->self.name) == 0 || find_active(hv, c.name) >= 0)
        return 0;
    passive_add(hv, &c, NULL, 0);
    if (urgent && !hv->pending && now >= hv->next_urgent) {
        hv->next_urgent = now + hv->cfg.urgent_interval_ns;
        ask_neighbor(hv, now, &c, 1);
    }
    return 0;
}

static void repair(tb_hv *hv, uint64_t now)
{
    if (hv->pending || hv->n_active >= hv->cfg.active_size || hv->n_passive == 0 ||
        now < hv->next_repair)
        return;
    hv->next_repair = now + hv->cfg.repair_interval_ns;
    tb_hv_desc d = hv->passive[tb_rand_below(&hv->rng, hv->n_passive)];
    ask_neighbor(hv, now, &d, hv->n_active == 0);
}

static void shuffle(tb_hv *hv, uint64_t now)
{
    if (now < hv->next_shuffle)
        return;
    hv->next_shuffle = now + hv->cfg.shuffle_interval_ns;
    const tb_hv_desc *to = random_active_except(hv, NULL, NULL);
    if (!to)
        return;
    tb_hv_msg *m = send_msg(hv, to, TB_HV_SHUFFLE);
    if (!m)
        return;
    m->node = hv->self;
    m->ttl = (uint8_t)hv->cfg.prwl;
    size_t n = 0, idx[TB_HV_ACTIVE_MAX], na = hv->n_active;
    for (size_t i = 0; i < na; i++)
        idx[i] = i;
    for (size_t k = 0; k < hv->cfg.shuffle_active && na > 0; k++) {
        size_t j = (size_t)tb_rand_below(&hv->rng, na);
        m->descs[n++] = hv->active[idx[j]];
        idx[j] = idx[--na];
    }
    n = sample_passive(hv, hv->cfg.shuffle_passive, m->descs, n);
    m->n_descs = (uint8_t)n;
    memcpy(hv->sent, m->descs, n * sizeof(*hv->sent));
    hv->n_sent = n;
    hv->shuffle_open = true;
    hv->shuffle_deadline = now + hv->cfg.shuffle_interval_ns;
}

void tb_hv_tick(tb_hv *hv, uint64_t now)
{
    if (hv->pending && now >= hv->pending_deadline) {
        hv->pending = false;
        passive_remove(hv, hv->pending_peer.name);
        push(hv, TB_HV_ACT_CLOSE, &hv->pending_peer);
        hv->next_repair = now;
    }
    repair(hv, now);
    shuffle(hv, now);
}

uint64_t tb_hv_next_wake(const tb_hv *hv)
{
    uint64_t w = hv->next_shuffle;
    if (hv->pending && hv->pending_deadline < w)
        w = hv->pending_deadline;
    if (!hv->pending && hv->n_active < hv->cfg.active_size && hv->n_passive > 0 &&
        hv->next_repair < w)
        w = hv->next_repair;
    return w;
}

size_t tb_hv_active_count(const tb_hv *hv)
{
    return hv->n_active;
}

const char *tb_hv_active_name(const tb_hv *hv, size_t i)
{
    return i < hv->n_active ? hv->active[i].name : NULL;
}

size_t tb_hv_passive_count(const tb_hv *hv)
{
    return hv->n_passive;
}

bool tb_hv_is_active(const tb_hv *hv, const char *name)
{
    return find_active(hv, name) >= 0;
}

bool tb_hv_is_passive(const tb_hv *hv, const char *name)
{
    return find_passive(hv, name) >= 0;
}

void tb_hv_get_stats(const tb_hv *hv, tb_hv_stats *out)
{
    *out = hv->stats;
}
