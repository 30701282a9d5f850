/* Signed broadcasts: originate, verify, hold for a certificate, forward. See node/bcast.h. */
#include "node/bcast.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "measure/sign.h"
#include "node/origins.h"
#include "common/name.h"

#define ALIVE_MAX 8192 /* an encoded ALIVE: certificate (max 4096) and a few names */

struct tb_nbc {
    tb_nbc_config cfg;
    tb_nbc_io io;
    char self[64], region[64], addr[TB_NBC_ADDR_MAX];
    uint8_t *self_der;
    size_t self_der_len;
    uint8_t sk[TB_MEASURE_SK_LEN], pk[TB_MEASURE_PK_LEN];
    tb_wire_limits lim;
    uint64_t next_id;
    tb_origins *origins;
    uint64_t incarnation;
    uint8_t *last_alive; /* the encoded BROADCAST of the last ALIVE, for tb_nbc_send_alive */
    size_t last_alive_len;
    uint64_t next_alive;  /* 0: not announced yet (waits for the first link) */
    unsigned alive_round; /* ALIVEs sent: the first few come sooner (alive_delay) */
    tb_nbc_stats st;
};

static int is_mesh_app(uint32_t app_type)
{
    return (app_type & 0xffff0000u) == TB_NBC_APP_MESH;
}

int tb_nbc_new(const tb_nbc_config *cfg, const tb_nbc_io *io, tb_nbc **out)
{
    *out = NULL;
    tb_nbc *b = calloc(1, sizeof(*b));
    if (!b)
        return TB_ERR_NOMEM;
    b->cfg = *cfg;
    b->io = *io;
    b->lim = *cfg->lim;
    b->incarnation = cfg->incarnation;
    b->next_id = cfg->first_id;
    snprintf(b->self, sizeof(b->self), "%s", cfg->self);
    snprintf(b->region, sizeof(b->region), "%s", cfg->region);
    b->self_der = malloc(cfg->self_der_len ? cfg->self_der_len : 1);
    int rc = b->self_der ? TB_OK : TB_ERR_NOMEM;
    if (rc == TB_OK) {
        memcpy(b->self_der, cfg->self_der, cfg->self_der_len);
        b->self_der_len = cfg->self_der_len;
    }
    if (rc == TB_OK)
        rc = tb_origins_load_key(cfg->log, cfg->key_file, b->sk, b->pk);
    if (rc == TB_OK)
        rc = tb_origins_new(cfg->log, cfg->ca_file, cfg->state_dir, &b->origins);
    /* Its own certificate too: a copy claiming this node is checked like any other. */
    if (rc == TB_OK && tb_origins_learn(b->origins, b->self_der, b->self_der_len, b->self, 0,
                                        cfg->now_s, NULL) != TB_OK)
        tb_log_warn(cfg->log, "this node's own certificate does not verify against the CA %s",
                    cfg->ca_file);
    if (rc != TB_OK) {
        tb_nbc_free(b);
        return rc;
    }
    *out = b;
    return TB_OK;
}

void tb_nbc_free(tb_nbc *b)
{
    if (!b)
        return;
    free(b->last_alive);
    tb_origins_free(b->origins);
    sodium_memzero(b->sk, sizeof(b->sk));
    free(b->self_der);
    free(b);
}

void tb_nbc_set_addr(tb_nbc *b, const char *addr)
{
    snprintf(b->addr, sizeof(b->addr), "%s", addr ? addr : "");
}

/* The signed bytes of m as parts (header in hdr): origin, id and app type, then the payload. */
static int signed_parts(const tb_wire_broadcast *m, uint8_t hdr[TB_BC_SIGNED_HEADER_MAX],
                        tb_measure_part parts[2])
{
    size_t hlen;
    int rc = tb_bc_signed_header(m->origin, strlen(m->origin), m->msg_id, m->app_type, hdr,
                                 TB_BC_SIGNED_HEADER_MAX, &hlen);
    parts[0] = (tb_measure_part){hdr, hlen};
    parts[1] = (tb_measure_part){m->payload.data, m->payload.len};
    return rc;
}

/* m encoded as sent (the tree rewrites the hop limit per copy); free *out. */
static int encode(tb_nbc *b, const tb_wire_broadcast *m, uint8_t **out, size_t *len)
{
    tb_wire_msg w = {.type = TB_WIRE_BROADCAST};
    w.broadcast = *m;
    /* The envelope around payload and origin takes under 160 bytes (integer keys, signature). */
    size_t cap = m->payload.len + strlen(m->origin) + 160;
    cap = cap < b->lim.max_msg_size ? cap : b->lim.max_msg_size;
    *out = malloc(cap);
    int rc = *out ? tb_wire_encode(&w, &b->lim, *out, cap, len) : TB_ERR_NOMEM;
    if (rc != TB_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static void deliver(tb_nbc *b, const tb_wire_broadcast *m)
{
    if (!is_mesh_app(m->app_type) && b->io.deliver)
        b->io.deliver(b->io.arg, m);
}

/* Keeps the encoded ALIVE for tb_nbc_send_alive. */
static void keep_alive(tb_nbc *b, uint8_t *raw, size_t len)
{
    free(b->last_alive);
    b->last_alive = raw;
    b->last_alive_len = len;
}

int tb_nbc_originate(tb_nbc *b, uint64_t now, uint32_t app_type, const uint8_t *payload, size_t len,
                     uint64_t *id)
{
    tb_wire_broadcast m = {.origin = b->self, .app_type = app_type, .payload = {payload, len}};
    m.msg_id = b->next_id++;
    m.hop_limit = 1;
    uint8_t hdr[TB_BC_SIGNED_HEADER_MAX], dg[TB_BC_DIGEST_LEN], *raw = NULL;
    size_t raw_len = 0;
    tb_measure_part parts[2];
    int rc = signed_parts(&m, hdr, parts);
    if (rc == TB_OK)
        rc = tb_measure_sign_parts(parts, 2, b->sk, m.sig);
    if (rc == TB_OK)
        rc = tb_measure_digest(parts, 2, dg);
    if (rc == TB_OK)
        rc = encode(b, &m, &raw, &raw_len);
    if (rc == TB_OK)
        rc = b->io.tree(b->io.arg, NULL, m.origin, dg, m.hop_limit, raw, raw_len, NULL);
    if (rc == TB_OK) {
        b->st.originated++;
        deliver(b, &m);
        if (id)
            *id = m.msg_id;
    }
    if (rc == TB_OK && app_type == TB_NODE_APP_ALIVE)
        keep_alive(b, raw, raw_len);
    else
        free(raw);
    return rc;
}

void tb_nbc_send_alive(tb_nbc *b, const char *to)
{
    if (b->last_alive && b->io.send(b->io.arg, to, b->last_alive, b->last_alive_len) == TB_OK)
        b->st.alives_sent++;
}

static void send_cert_req(tb_nbc *b, uint64_t now, const char *from, const char *origin)
{
    if (!tb_origins_should_ask(b->origins, origin, from, now))
        return;
    const char *names[1] = {origin};
    tb_wire_msg w = {.type = TB_WIRE_CERT_REQ};
    w.cert_req = (tb_wire_cert_req){names, 1};
    uint8_t buf[512];
    size_t len;
    if (tb_wire_encode(&w, &b->lim, buf, sizeof(buf), &len) == TB_OK &&
        b->io.send(b->io.arg, from, buf, len) == TB_OK)
        b->st.cert_reqs_sent++;
}

/* Keeps the copy until origin's certificate comes, asking `from` for it. */
static int hold(tb_nbc *b, uint64_t now, const char *from, const tb_wire_broadcast *m,
                const uint8_t *raw, size_t len, int tries)
{
    if (tb_origins_hold(b->origins, from, m->origin, raw, len, tries, now) != TB_OK) {
        b->st.hold_dropped++;
        tb_log_debug(b->cfg.log,
                     "peer %s: broadcast from %s dropped: too many wait for a "
                     "certificate",
                     from, m->origin);
        return 0;
    }
    b->st.held++;
    send_cert_req(b, now, from, m->origin);
    return 0;
}

/* An ALIVE verifies with the certificate it carries, which must be the origin's. */
static int alive_key(tb_nbc *b, const tb_wire_broadcast *m, int64_t now_s, tb_wire_msg *alive,
                     tb_measure_origin_key *key)
{
    if (tb_wire_decode(m->payload.data, m->payload.len, &b->lim, alive, NULL) != TB_OK)
        return TB_ERR_MALFORMED;
    if (alive->type != TB_WIRE_ALIVE || strcmp(alive->alive.name, m->origin) != 0)
        return TB_ERR_MALFORMED;
    return tb_origins_check(b->origins, alive->alive.cert.data, alive->alive.cert.len, m->origin,
                            now_s, key, NULL) == TB_OK
               ? TB_OK
               : TB_ERR_VERIFY;
}

/* 0: verified; TB_ERR_AGAIN: held for a certificate; TB_ERR_VERIFY: the signature (or an
 * ALIVE's certificate) fails against what the origin is known by, which every node checks
 * before it forwards: the neighbour's fault; TB_ERR_NOTFOUND: no usable certificate (the one
 * that came does not verify, or is out of its dates here); TB_ERR_MALFORMED. */
static int authenticate(tb_nbc *b, uint64_t now, int64_t now_s, const char *from,
                        const tb_wire_broadcast *m, const tb_measure_part *parts,
                        const uint8_t *raw, size_t len, int tries, tb_wire_msg *alive)
{
    tb_measure_origin_key key;
    int rc;
    if (m->app_type == TB_NODE_APP_ALIVE) {
        if ((rc = alive_key(b, m, now_s, alive, &key)) != TB_OK)
            return rc;
    } else if (tb_origins_key(b->origins, m->origin, now_s, &key) != TB_OK) {
        if (tries > 0) /* released once its certificate came, which did not verify */
            return TB_ERR_NOTFOUND;
        hold(b, now, from, m, raw, len, tries);
        return TB_ERR_AGAIN;
    }
    if (now_s < key.not_before || now_s > key.not_after)
        return TB_ERR_NOTFOUND; /* clocks differ: not the neighbour's fault */
    /* A renewed certificate is announced (ALIVE) before anything is signed with its key, on
     * the same paths: a signature that fails here is refused, not held. */
    return tb_measure_verify_parts(parts, 2, m->sig, key.ed25519_pub);
}

static void release(tb_nbc *b, uint64_t now, int64_t now_s, const char *origin);

/* What a verified ALIVE tells: the origin's certificate (and its waiting broadcasts go on). */
static void take_alive(tb_nbc *b, uint64_t now, int64_t now_s, const tb_wire_alive *a)
{
    int rc = tb_origins_learn(b->origins, a->cert.data, a->cert.len, a->name, a->incarnation, now_s,
                              NULL);
    if (rc == TB_OK)
        b->st.certs_learned++;
    release(b, now, now_s, a->name);
}

static int receive(tb_nbc *b, uint64_t now, int64_t now_s, const char *from,
                   const tb_wire_broadcast *m, const uint8_t *raw, size_t len, int tries)
{
    uint8_t hdr[TB_BC_SIGNED_HEADER_MAX], dg[TB_BC_DIGEST_LEN];
    tb_measure_part parts[2];
    int rc = signed_parts(m, hdr, parts);
    if (rc == TB_OK)
        rc = tb_measure_digest(parts, 2, dg);
    if (rc != TB_OK) {
        b->st.malformed++;
        return TB_ERR_MALFORMED;
    }
    /* A known digest is content verified before: the tree counts it and prunes its sender. */
    if (b->io.seen(b->io.arg, dg)) {
        b->st.duplicates++;
        return b->io.tree(b->io.arg, from, m->origin, dg, m->hop_limit, raw, len, NULL) == TB_OK
                   ? TB_OK
                   : TB_ERR_MALFORMED;
    }
    /* Ours but unknown: from before a restart (or forged); neither taken nor passed on. */
    if (strcmp(m->origin, b->self) == 0) {
        b->st.duplicates++;
        return TB_OK;
    }
    tb_wire_msg alive = {0};
    rc = authenticate(b, now, now_s, from, m, parts, raw, len, tries, &alive);
    if (rc == TB_OK && !is_mesh_app(m->app_type) && b->io.accept && b->io.accept(b->io.arg, m))
        rc = TB_ERR_STATE; /* the application's refusal: not the neighbour's fault */
    bool is_new = false;
    if (rc == TB_OK &&
        b->io.tree(b->io.arg, from, m->origin, dg, m->hop_limit, raw, len, &is_new) != TB_OK)
        rc = TB_ERR_MALFORMED;
    if (rc == TB_OK && is_new) {
        if (m->app_type == TB_NODE_APP_ALIVE)
            b->st.alives_received++;
        else if (!is_mesh_app(m->app_type))
            b->st.delivered++;
        deliver(b, m);
        if (m->app_type == TB_NODE_APP_ALIVE)
            take_alive(b, now, now_s, &alive.alive);
        if (is_mesh_app(m->app_type) && b->io.mesh)
            b->io.mesh(b->io.arg, m);
    } else if (rc == TB_OK) {
        b->st.duplicates++;
    } else if (rc != TB_ERR_AGAIN) {
        b->st.refused++;
        tb_log_debug(b->cfg.log, "peer %s: broadcast %s/%llu refused: %s", from, m->origin,
                     (unsigned long long)m->msg_id, tb_strerror(rc));
    }
    tb_wire_msg_clear(&alive);
    return rc == TB_ERR_VERIFY || rc == TB_ERR_MALFORMED ? rc : TB_OK;
}

int tb_nbc_receive(tb_nbc *b, uint64_t now, int64_t now_s, const char *from,
                   const tb_wire_broadcast *m, const uint8_t *raw, size_t len)
{
    return receive(b, now, now_s, from, m, raw, len, 0);
}

typedef struct release_ctx {
    tb_nbc *b;
    uint64_t now;
    int64_t now_s;
} release_ctx;

static void on_release(void *arg, const char *from, const uint8_t *msg, size_t len, int tries)
{
    release_ctx *c = arg;
    tb_wire_msg m;
    if (tb_wire_decode(msg, len, &c->b->lim, &m, NULL) != TB_OK)
        return;
    /* Delivered, refused (counted there), or held again until it expires. */
    if (m.type == TB_WIRE_BROADCAST)
        (void)receive(c->b, c->now, c->now_s, from, &m.broadcast, msg, len, tries + 1);
    tb_wire_msg_clear(&m);
}

static void release(tb_nbc *b, uint64_t now, int64_t now_s, const char *origin)
{
    release_ctx c = {b, now, now_s};
    tb_origins_release(b->origins, origin, on_release, &c);
}

void tb_nbc_on_cert_req(tb_nbc *b, const char *from, const tb_wire_cert_req *m)
{
    tb_wire_bytes *certs = calloc(m->n_names ? m->n_names : 1, sizeof(*certs));
    size_t k = 0;
    for (size_t i = 0; certs && i < m->n_names; i++) {
        const uint8_t *der;
        size_t len;
        if (tb_nbc_origin_der(b, m->names[i], &der, &len) == TB_OK)
            certs[k++] = (tb_wire_bytes){der, len};
    }
    uint8_t *buf = k ? malloc(b->lim.max_msg_size) : NULL;
    tb_wire_msg w = {.type = TB_WIRE_CERT};
    w.cert = (tb_wire_cert){certs, k};
    size_t len;
    if (buf && tb_wire_encode(&w, &b->lim, buf, b->lim.max_msg_size, &len) == TB_OK &&
        b->io.send(b->io.arg, from, buf, len) == TB_OK)
        b->st.certs_sent += k;
    free(buf);
    free(certs);
}

void tb_nbc_on_cert(tb_nbc *b, uint64_t now, int64_t now_s, const char *from, const tb_wire_cert *m)
{
    for (size_t i = 0; i < m->n_certs; i++) {
        char name[64];
        int rc =
            tb_origins_learn(b->origins, m->certs[i].data, m->certs[i].len, NULL, 0, now_s, name);
        if (rc == TB_OK)
            b->st.certs_learned++;
        if (rc == TB_OK || rc == TB_ERR_EXISTS)
            release(b, now, now_s, name);
        else
            tb_log_debug(b->cfg.log, "peer %s: certificate %zu of its CERT refused", from, i);
    }
}

int tb_nbc_learn(tb_nbc *b, int64_t now_s, const char *name, const uint8_t *der, size_t len)
{
    int rc = tb_origins_learn(b->origins, der, len, name, 0, now_s, NULL);
    if (rc == TB_OK)
        b->st.certs_learned++;
    return rc == TB_OK || rc == TB_ERR_EXISTS;
}

static int announce(tb_nbc *b, uint64_t now);

void tb_nbc_link_up(tb_nbc *b, uint64_t now, int64_t now_s, const char *peer, const uint8_t *der,
                    size_t len)
{
    if (der && tb_origins_learn(b->origins, der, len, peer, 0, now_s, NULL) == TB_OK)
        b->st.certs_learned++;
    release(b, now, now_s, peer);
    if (b->next_alive == 0 && announce(b, now) != TB_OK)
        tb_log_warn(b->cfg.log, "cannot announce this node (ALIVE)");
}

/* A broadcast reaches the nodes of the tree as it is when sent: the ALIVE sent at the first link
 * misses who joins in the next seconds (their member lists and passive views would lack this
 * node, and two parts of a mesh started at once may stay apart). It is repeated after 5, 20
 * and 60 s, then every TB_NBC_ALIVE_NS. */
static uint64_t alive_delay(unsigned round)
{
    static const uint64_t early[] = {5, 20, 60};
    return round < 3 ? early[round] * 1000000000ULL : TB_NBC_ALIVE_NS;
}

static int announce(tb_nbc *b, uint64_t now)
{
    const char *addrs[1] = {b->addr};
    tb_wire_msg w = {.type = TB_WIRE_ALIVE};
    w.alive = (tb_wire_alive){
        b->self,       b->region, addrs, b->addr[0] ? 1 : 0, {b->self_der, b->self_der_len},
        b->incarnation};
    uint8_t buf[ALIVE_MAX];
    size_t wlen;
    int rc = tb_wire_encode(&w, &b->lim, buf, sizeof(buf), &wlen);
    if (rc == TB_OK)
        rc = tb_nbc_originate(b, now, TB_NODE_APP_ALIVE, buf, wlen, NULL);
    if (rc == TB_OK) {
        b->st.alives_sent++;
        b->next_alive = now + alive_delay(b->alive_round++);
    }
    return rc;
}

int tb_nbc_set_cert(tb_nbc *b, const uint8_t *der, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return TB_ERR_NOMEM;
    memcpy(copy, der, len);
    free(b->self_der);
    b->self_der = copy;
    b->self_der_len = len;
    return TB_OK;
}

int tb_nbc_announce_as(tb_nbc *b, uint64_t now, uint64_t incarnation)
{
    if (incarnation > b->incarnation)
        b->incarnation = incarnation;
    return announce(b, now);
}

uint64_t tb_nbc_incarnation(const tb_nbc *b)
{
    return b->incarnation;
}

uint64_t tb_nbc_poll(tb_nbc *b, uint64_t now)
{
    tb_origins_stats before, after;
    tb_origins_get_stats(b->origins, &before);
    uint64_t wake = tb_origins_expire(b->origins, now);
    tb_origins_get_stats(b->origins, &after);
    b->st.hold_dropped += after.hold_expired - before.hold_expired;
    /* The same incarnation: nothing changed, the ALIVE is repeated for newcomers. */
    if (b->next_alive && now >= b->next_alive && announce(b, now) != TB_OK)
        b->next_alive = now + TB_NBC_ALIVE_NS / 10; /* try again sooner */
    if (b->next_alive && b->next_alive < wake)
        wake = b->next_alive;
    return wake;
}

void tb_nbc_set_key(tb_nbc *b, const uint8_t sk[TB_MEASURE_SK_LEN],
                    const uint8_t pk[TB_MEASURE_PK_LEN])
{
    memcpy(b->sk, sk, TB_MEASURE_SK_LEN);
    memcpy(b->pk, pk, TB_MEASURE_PK_LEN);
}

int tb_nbc_origin_key(tb_nbc *b, const char *origin, int64_t now_s, tb_measure_origin_key *out)
{
    return tb_origins_key(b->origins, origin, now_s, out);
}

int tb_nbc_origin_der(const tb_nbc *b, const char *origin, const uint8_t **der, size_t *len)
{
    if (strcmp(origin, b->self) == 0) {
        *der = b->self_der;
        *len = b->self_der_len;
        return TB_OK;
    }
    return tb_origins_der(b->origins, origin, der, len);
}

void tb_nbc_get_stats(const tb_nbc *b, tb_nbc_stats *out)
{
    *out = b->st;
    tb_origins_stats os;
    tb_origins_get_stats(b->origins, &os);
    out->certs_refused = os.refused;
}
