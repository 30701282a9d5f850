#include "roughtime/server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "roughtime/codec.h"
#include "roughtime/merkle.h"

/* What this server speaks, ascending (the VERS list), and the preference when several match. */
static const uint32_t served[] = {TB_RT_VER_RFC, TB_RT_VER_DRAFT12};
#define NSERVED (sizeof(served) / sizeof(served[0]))

typedef struct pending {
    uint8_t leaf[32];
    uint8_t nonce[32];
    uint64_t cookie;
    size_t req_len;
    unsigned ver_idx;
} pending;

struct tb_rt_srv {
    tb_rt_srv_config cfg;
    const tb_log *log;
    uint8_t pk[32];
    uint8_t srv_id[32];
    uint8_t online_sk[64];
    uint8_t cert[160]; /* CERT: SIG + DELE(PUBK, MINT, MAXT) */
    size_t cert_len;
    int64_t mint_s, maxt_s;
    int64_t next_rotation_ns;
    pending *queue;
    unsigned nqueue;
    unsigned per_ver[NSERVED];
    tb_rt_merkle tree;
    tb_rt_srv_stats stats;
    tb_rt_srv_stats reported; /* stats at the last tb_rt_srv_report */
    int64_t reported_ns;
};

void tb_rt_srv_config_default(tb_rt_srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_batch = 64;
    cfg->queue_cap = 256;
    cfg->dele_lifetime_s = 86400;
}

const char *tb_rt_drop_name(tb_rt_drop d)
{
    static const char *const names[] = {
        "bad framing",       "malformed message", "missing VER",      "missing NONC",
        "missing TYPE",      "bad SRV",           "under 1024 bytes", "unknown SRV",
        "no common version", "queue full",        "response too big",
    };
    return (unsigned)d < TB_RT_DROP_COUNT ? names[d] : "unknown";
}

void tb_rt_srv_report(tb_rt_srv *s, int64_t now_ns)
{
    const tb_rt_srv_stats *c = &s->stats, *p = &s->reported;
    char drops[512] = "";
    size_t used = 0;
    uint64_t dropped = 0;
    for (int d = 0; d < TB_RT_DROP_COUNT; d++) {
        uint64_t n = c->drops[d] - p->drops[d];
        dropped += n;
        if (n && used < sizeof(drops))
            used += (size_t)snprintf(drops + used, sizeof(drops) - used, ", %s %llu",
                                     tb_rt_drop_name((tb_rt_drop)d), (unsigned long long)n);
    }
    tb_log_info(s->log,
                "roughtime: last %lld s: received %llu, answered %llu in %llu batches, "
                "dropped %llu%s",
                (long long)((now_ns - s->reported_ns + (int64_t)TB_NS_PER_SEC / 2) /
                            (int64_t)TB_NS_PER_SEC),
                (unsigned long long)(c->received - p->received),
                (unsigned long long)(c->answered - p->answered),
                (unsigned long long)(c->batches - p->batches), (unsigned long long)dropped, drops);
    s->reported = *c;
    s->reported_ns = now_ns;
}

void tb_rt_srv_id(const uint8_t pubkey[32], uint8_t out[32])
{
    tb_rt_hash(out, 32, 0xff, pubkey, 32, NULL, 0);
}

uint32_t tb_rt_radius_s(int synced, uint64_t maxerror_us, uint32_t configured_s)
{
    if (!synced)
        return configured_s ? configured_s : 3;
    /* MIDP is rounded to the second, which adds up to half a second of its own. */
    uint64_t s = (maxerror_us + 500000 + 999999) / 1000000;
    if (s < 1)
        s = 1;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static int64_t floor_s(int64_t ns)
{
    return ns >= 0 ? ns / (int64_t)TB_NS_PER_SEC
                   : -((-ns + (int64_t)TB_NS_PER_SEC - 1) / (int64_t)TB_NS_PER_SEC);
}

static const char dele_ctx[] = "RoughTime v1 delegation signature";

int tb_rt_delegation_make(const uint8_t longterm_sk[64], const uint8_t online_sk[64],
                          int64_t mint_s, int64_t maxt_s, tb_rt_delegation *out)
{
    uint8_t online_pk[32], mint[8], maxt[8], dele[128], sig[64];
    uint8_t signed_buf[sizeof(dele_ctx) + sizeof(dele)];
    size_t dele_len;
    crypto_sign_ed25519_sk_to_pk(online_pk, online_sk);
    tb_put_le64(mint, (uint64_t)mint_s);
    tb_put_le64(maxt, (uint64_t)maxt_s);
    tb_rt_builder b;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_PUBK, online_pk, 32);
    tb_rt_builder_add(&b, TB_RT_TAG_MINT, mint, 8);
    tb_rt_builder_add(&b, TB_RT_TAG_MAXT, maxt, 8);
    int rc = tb_rt_builder_write(&b, 0, dele, sizeof(dele), &dele_len);
    if (rc < 0)
        return rc;
    memcpy(signed_buf, dele_ctx, sizeof(dele_ctx));
    memcpy(signed_buf + sizeof(dele_ctx), dele, dele_len);
    crypto_sign_ed25519_detached(sig, NULL, signed_buf, sizeof(dele_ctx) + dele_len, longterm_sk);
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_SIG, sig, 64);
    tb_rt_builder_add(&b, TB_RT_TAG_DELE, dele, dele_len);
    if ((rc = tb_rt_builder_write(&b, 0, out->cert, sizeof(out->cert), &out->cert_len)) < 0)
        return rc;
    crypto_sign_ed25519_sk_to_pk(out->longterm_pk, longterm_sk);
    memcpy(out->online_sk, online_sk, 64);
    out->mint_s = mint_s;
    out->maxt_s = maxt_s;
    return 0;
}

int tb_rt_delegation_check(tb_rt_delegation *d)
{
    tb_rt_msg cert, dele;
    const uint8_t *sig, *dv, *pubk;
    size_t dlen;
    uint64_t mint, maxt;
    uint8_t online_pk[32], signed_buf[sizeof(dele_ctx) + 160];
    if (tb_rt_msg_parse(d->cert, d->cert_len, &cert) < 0 ||
        tb_rt_msg_fixed(&cert, TB_RT_TAG_SIG, 64, &sig) < 0 ||
        tb_rt_msg_find(&cert, TB_RT_TAG_DELE, &dv, &dlen) < 0 || dlen > 160 ||
        tb_rt_msg_parse(dv, dlen, &dele) < 0 ||
        tb_rt_msg_fixed(&dele, TB_RT_TAG_PUBK, 32, &pubk) < 0 ||
        tb_rt_msg_u64(&dele, TB_RT_TAG_MINT, &mint) < 0 ||
        tb_rt_msg_u64(&dele, TB_RT_TAG_MAXT, &maxt) < 0 || mint > maxt || maxt > INT64_MAX)
        return TB_ERR_MALFORMED;
    memcpy(signed_buf, dele_ctx, sizeof(dele_ctx));
    memcpy(signed_buf + sizeof(dele_ctx), dv, dlen);
    crypto_sign_ed25519_sk_to_pk(online_pk, d->online_sk);
    if (crypto_sign_ed25519_verify_detached(sig, signed_buf, sizeof(dele_ctx) + dlen,
                                            d->longterm_pk) != 0 ||
        sodium_memcmp(online_pk, pubk, 32) != 0)
        return TB_ERR_VERIFY;
    d->mint_s = (int64_t)mint;
    d->maxt_s = (int64_t)maxt;
    return 0;
}

static void adopt(tb_rt_srv *s, const tb_rt_delegation *d)
{
    memcpy(s->online_sk, d->online_sk, sizeof(s->online_sk));
    memcpy(s->cert, d->cert, d->cert_len);
    s->cert_len = d->cert_len;
    s->mint_s = d->mint_s;
    s->maxt_s = d->maxt_s;
}

int tb_rt_srv_rotate(tb_rt_srv *s, int64_t now_ns)
{
    if (s->cfg.has_delegation)
        return TB_ERR_STATE; /* no long-term key here: a new CERT comes from delegate */
    uint8_t online_pk[32], online_sk[64];
    tb_rt_delegation d;
    int64_t now_s = floor_s(now_ns);
    crypto_sign_ed25519_keypair(online_pk, online_sk);
    /* A minute of slack below now covers a peer whose clock is slightly behind ours. */
    int rc = tb_rt_delegation_make(s->cfg.longterm_sk, online_sk, now_s - 60,
                                   now_s + (int64_t)s->cfg.dele_lifetime_s, &d);
    sodium_memzero(online_sk, sizeof(online_sk));
    if (rc < 0)
        return rc;
    adopt(s, &d);
    sodium_memzero(&d, sizeof(d));
    s->next_rotation_ns = now_ns + (int64_t)(s->cfg.dele_lifetime_s / 2) * (int64_t)TB_NS_PER_SEC;
    s->stats.rotations++;
    if (s->log) {
        char from[TB_CLOCK_RFC3339_LEN], to[TB_CLOCK_RFC3339_LEN];
        tb_clock_format_rfc3339((int64_t)s->mint_s * (int64_t)TB_NS_PER_SEC, from, sizeof(from));
        tb_clock_format_rfc3339((int64_t)s->maxt_s * (int64_t)TB_NS_PER_SEC, to, sizeof(to));
        tb_log_info(s->log, "roughtime: online key rotated, valid %s to %s", from, to);
    }
    return 0;
}

int tb_rt_srv_new(const tb_rt_srv_config *cfg, const tb_log *log, int64_t now_ns, tb_rt_srv **out)
{
    if (cfg->max_batch < 1 || cfg->max_batch > TB_RT_SRV_MAX_BATCH ||
        cfg->queue_cap < cfg->max_batch || cfg->queue_cap > TB_RT_SRV_MAX_QUEUE ||
        cfg->dele_lifetime_s < 2)
        return TB_ERR_INVAL;
    tb_rt_srv *s = calloc(1, sizeof(*s));
    if (!s)
        return TB_ERR_NOMEM;
    s->queue = calloc(cfg->queue_cap, sizeof(*s->queue));
    if (!s->queue) {
        free(s);
        return TB_ERR_NOMEM;
    }
    s->cfg = *cfg;
    s->log = log;
    s->reported_ns = now_ns;
    int rc = 0;
    if (cfg->has_delegation) {
        s->cfg.delegation.cert_len = cfg->delegation.cert_len;
        if ((rc = tb_rt_delegation_check(&s->cfg.delegation)) == 0 &&
            floor_s(now_ns) > s->cfg.delegation.maxt_s)
            rc = TB_ERR_TIMEOUT;
        memcpy(s->pk, cfg->delegation.longterm_pk, 32);
        if (rc == 0)
            adopt(s, &s->cfg.delegation);
        s->next_rotation_ns = INT64_MAX;
    } else {
        crypto_sign_ed25519_sk_to_pk(s->pk, cfg->longterm_sk);
    }
    tb_rt_srv_id(s->pk, s->srv_id);
    if (rc == 0 && !cfg->has_delegation)
        rc = tb_rt_srv_rotate(s, now_ns);
    if (rc < 0) {
        tb_rt_srv_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void tb_rt_srv_free(tb_rt_srv *s)
{
    if (!s)
        return;
    sodium_memzero(s->online_sk, sizeof(s->online_sk));
    sodium_memzero(&s->cfg, sizeof(s->cfg));
    free(s->queue);
    free(s);
}

const uint8_t *tb_rt_srv_pubkey(const tb_rt_srv *s)
{
    return s->pk;
}

const tb_rt_srv_stats *tb_rt_srv_stats_get(const tb_rt_srv *s)
{
    return &s->stats;
}

int64_t tb_rt_srv_next_rotation(const tb_rt_srv *s)
{
    return s->next_rotation_ns;
}

int64_t tb_rt_srv_delegation_expiry(const tb_rt_srv *s)
{
    if (!s->cfg.has_delegation || s->maxt_s > INT64_MAX / (int64_t)TB_NS_PER_SEC)
        return INT64_MAX;
    return s->maxt_s * (int64_t)TB_NS_PER_SEC;
}

unsigned tb_rt_srv_pending(const tb_rt_srv *s)
{
    return s->nqueue;
}

int tb_rt_srv_batch_full(const tb_rt_srv *s)
{
    for (unsigned v = 0; v < NSERVED; v++) {
        if (s->per_ver[v] >= s->cfg.max_batch)
            return 1;
    }
    return 0;
}

static int drop(tb_rt_srv *s, tb_rt_drop why)
{
    s->stats.drops[why]++;
    return why == TB_RT_DROP_QUEUE_FULL ? TB_ERR_FULL : TB_ERR_MALFORMED;
}

void tb_rt_srv_count_drop(tb_rt_srv *s, tb_rt_drop why)
{
    if ((unsigned)why < TB_RT_DROP_COUNT) {
        s->stats.received++;
        s->stats.drops[why]++;
    }
}

/* The best version both sides speak: the first of ours (in preference order) the client lists. */
static int choose_version(const tb_rt_request *r)
{
    for (unsigned v = 0; v < NSERVED; v++) {
        for (unsigned i = 0; i < r->nversions; i++) {
            if (r->versions[i] == served[v])
                return (int)v;
        }
    }
    return -1;
}

/* H(0 ‖ request packet), the RFC's leaf, with libsodium's SHA-512. OpenSSL's takes about 2/3
 * of its time, but the node runs this server, and mapping libcrypto for it alone cost each
 * node ~3.7 MB of resident memory (bench/node/memory.sh). */
static void leaf_hash(uint8_t leaf[32], const uint8_t *pkt, size_t len)
{
    tb_rt_hash(leaf, 32, 0, pkt, len, NULL, 0);
}

int tb_rt_srv_submit(tb_rt_srv *s, const uint8_t *pkt, size_t len, uint64_t cookie)
{
    static const tb_rt_drop by_parse[] = {
        [TB_RT_REQ_FRAMING] = TB_RT_DROP_FRAMING, [TB_RT_REQ_MESSAGE] = TB_RT_DROP_MESSAGE,
        [TB_RT_REQ_NO_VER] = TB_RT_DROP_NO_VER,   [TB_RT_REQ_NO_NONC] = TB_RT_DROP_NO_NONC,
        [TB_RT_REQ_NO_TYPE] = TB_RT_DROP_NO_TYPE, [TB_RT_REQ_BAD_SRV] = TB_RT_DROP_BAD_SRV,
    };
    tb_rt_request r;
    tb_rt_req_error why;
    s->stats.received++;
    if (len < TB_RT_MIN_REQUEST)
        return drop(s, TB_RT_DROP_TOO_SHORT);
    if (tb_rt_request_parse(pkt, len, &r, &why) < 0)
        return drop(s, by_parse[why]);
    if (r.srv && sodium_memcmp(r.srv, s->srv_id, 32) != 0)
        return drop(s, TB_RT_DROP_UNKNOWN_SRV);
    int v = choose_version(&r);
    if (v < 0)
        return drop(s, TB_RT_DROP_NO_VERSION);
    if (s->nqueue == s->cfg.queue_cap)
        return drop(s, TB_RT_DROP_QUEUE_FULL);
    pending *p = &s->queue[s->nqueue++];
    leaf_hash(p->leaf, pkt, len);
    memcpy(p->nonce, r.nonce, 32);
    p->cookie = cookie;
    p->req_len = len;
    p->ver_idx = (unsigned)v;
    s->per_ver[v]++;
    return 0;
}

static int build_srep(tb_rt_srv *s, unsigned v, int64_t midp_s, uint32_t radius_s, uint8_t *out,
                      size_t cap, size_t *len)
{
    uint8_t ver[4], radi[4], midp[8], vers[4 * NSERVED];
    tb_put_le32(ver, served[v]);
    tb_put_le32(radi, radius_s);
    tb_put_le64(midp, (uint64_t)midp_s);
    for (unsigned i = 0; i < NSERVED; i++)
        tb_put_le32(vers + (size_t)4 * i, served[i]);
    tb_rt_builder b;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_VER, ver, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_RADI, radi, 4);
    tb_rt_builder_add(&b, TB_RT_TAG_MIDP, midp, 8);
    tb_rt_builder_add(&b, TB_RT_TAG_VERS, vers, sizeof(vers));
    tb_rt_builder_add(&b, TB_RT_TAG_ROOT, tb_rt_merkle_root(&s->tree), 32);
    return tb_rt_builder_write(&b, 0, out, cap, len);
}

/* Signs one batch: the entries idx[0..n) of version v. */
static int sign_batch(tb_rt_srv *s, const unsigned *idx, unsigned n, unsigned v, int64_t midp_s,
                      uint32_t radius_s, tb_rt_srv_emit emit, void *arg)
{
    static const char ctx[] = TB_RT_RESPONSE_CONTEXT;
    uint8_t srep[128], sig[64], tbs[sizeof(ctx) + sizeof(srep)], path[32 * 8], resp[1024];
    uint8_t type[4], indx[4];
    size_t srep_len, path_len, resp_len;
    int rc;
    if ((rc = tb_rt_merkle_init(&s->tree, 32)) < 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        if ((rc = tb_rt_merkle_add_hash(&s->tree, s->queue[idx[i]].leaf)) < 0)
            return rc;
    }
    if ((rc = tb_rt_merkle_build(&s->tree)) < 0 ||
        (rc = build_srep(s, v, midp_s, radius_s, srep, sizeof(srep), &srep_len)) < 0)
        return rc;
    memcpy(tbs, ctx, sizeof(ctx));
    memcpy(tbs + sizeof(ctx), srep, srep_len);
    crypto_sign_ed25519_detached(sig, NULL, tbs, sizeof(ctx) + srep_len, s->online_sk);
    s->stats.batches++;
    tb_put_le32(type, 1);
    int sent = 0;
    for (unsigned i = 0; i < n; i++) {
        const pending *p = &s->queue[idx[i]];
        if ((rc = tb_rt_merkle_path(&s->tree, i, path, sizeof(path), &path_len)) < 0)
            return rc;
        tb_put_le32(indx, i);
        tb_rt_builder b;
        tb_rt_builder_init(&b);
        tb_rt_builder_add(&b, TB_RT_TAG_SIG, sig, 64);
        tb_rt_builder_add(&b, TB_RT_TAG_NONC, p->nonce, 32);
        tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
        tb_rt_builder_add(&b, TB_RT_TAG_PATH, path, path_len);
        tb_rt_builder_add(&b, TB_RT_TAG_SREP, srep, srep_len);
        tb_rt_builder_add(&b, TB_RT_TAG_CERT, s->cert, s->cert_len);
        tb_rt_builder_add(&b, TB_RT_TAG_INDX, indx, 4);
        if ((rc = tb_rt_builder_write(&b, 1, resp, sizeof(resp), &resp_len)) < 0)
            return rc;
        if (resp_len > p->req_len) {
            s->stats.drops[TB_RT_DROP_TOO_BIG]++; /* never amplify */
            continue;
        }
        emit(arg, p->cookie, resp, resp_len);
        s->stats.answered++;
        sent++;
    }
    return sent;
}

int tb_rt_srv_flush(tb_rt_srv *s, int64_t now_ns, uint32_t radius_s, tb_rt_srv_emit emit, void *arg)
{
    unsigned idx[TB_RT_SRV_MAX_BATCH];
    int64_t midp_s = floor_s(now_ns + (int64_t)TB_NS_PER_SEC / 2);
    int total = 0, rc = 0;
    if (radius_s == 0)
        radius_s = 1;
    /* A clock that jumped outside the delegation needs a fresh one before anything is signed. */
    if ((midp_s < s->mint_s || midp_s > s->maxt_s) && (rc = tb_rt_srv_rotate(s, now_ns)) < 0)
        goto out;
    for (unsigned v = 0; v < NSERVED; v++) {
        unsigned n = 0;
        for (unsigned i = 0; i < s->nqueue; i++) {
            if (s->queue[i].ver_idx != v)
                continue;
            idx[n++] = i;
            if (n == s->cfg.max_batch) {
                if ((rc = sign_batch(s, idx, n, v, midp_s, radius_s, emit, arg)) < 0)
                    goto out;
                total += rc;
                n = 0;
            }
        }
        if (n > 0) {
            if ((rc = sign_batch(s, idx, n, v, midp_s, radius_s, emit, arg)) < 0)
                goto out;
            total += rc;
        }
    }
    rc = total;
out:
    /* Whatever happened, the queue is spent: a failed batch is dropped, not retried forever. */
    s->nqueue = 0;
    memset(s->per_ver, 0, sizeof(s->per_ver));
    return rc;
}
