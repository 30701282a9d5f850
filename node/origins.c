/* Certificates of origins and the broadcasts waiting for them. See node/origins.h. Tables are
 * arrays scanned linearly: one entry per mesh node, and each scan costs far less than the
 * signature check it serves. */
#include "node/origins.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/identity.h"
#include "measure/keycache.h"
#include "node/config.h"

#define ASKS 256

typedef struct cert_entry {
    char name[64];
    uint8_t *der;
    size_t len;
    uint8_t fp[TB_MEASURE_FP_LEN];
    int64_t not_before;
    uint64_t incarnation;
    uint64_t used;
} cert_entry;

typedef struct held {
    char from[64], origin[64];
    uint8_t *msg;
    size_t len;
    int tries;
    uint64_t at;
} held;

typedef struct ask {
    char origin[64], from[64];
    uint64_t at;
} ask;

struct tb_origins {
    const tb_log *log;
    tb_ca *ca;
    tb_measure_keycache *keys;
    cert_entry *certs;
    size_t ncerts;
    uint64_t use_clock;
    held *held; /* oldest first */
    size_t nheld, held_bytes;
    ask asks[ASKS];
    size_t next_ask;
    tb_origins_stats st;
};

int tb_origins_load_key(const tb_log *log, const char *path, uint8_t sk[TB_MEASURE_SK_LEN],
                        uint8_t pk[TB_MEASURE_PK_LEN])
{
    FILE *f = fopen(path, "r");
    char pem[16384];
    size_t n = f ? fread(pem, 1, sizeof(pem), f) : 0;
    int err = errno;
    if (f)
        fclose(f);
    if (!f || n == 0 || n == sizeof(pem)) {
        sodium_memzero(pem, sizeof(pem));
        tb_log_error(log, "key '%s': cannot read the node key: %s", path,
                     f ? "empty or too large" : strerror(err));
        return TB_ERR_IO;
    }
    int rc = tb_measure_key_from_pem(pem, n, sk, pk);
    sodium_memzero(pem, sizeof(pem));
    if (rc == TB_ERR_UNSUPPORTED)
        tb_log_error(log,
                     "key '%s': the node key is not Ed25519; broadcasts and measurements are "
                     "signed with Ed25519 (issue the node certificate with an ed25519 key)",
                     path);
    else if (rc != TB_OK)
        tb_log_error(log, "key '%s': not a PEM private key (%s)", path, tb_strerror(rc));
    return rc;
}

static int load_ca(const tb_log *log, const char *ca_file, const char *state_dir, tb_ca **out)
{
    char path[TB_NODE_PATH_MAX], dir[TB_NODE_PATH_MAX + 16], err[512];
    snprintf(path, sizeof(path), "%s", ca_file);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strcmp(base, TB_CA_CERT_FILE) == 0) {
        snprintf(dir, sizeof(dir), "%s", dirname(path));
    } else {
        char abs[PATH_MAX], link[TB_NODE_PATH_MAX + 32];
        snprintf(dir, sizeof(dir), "%s/meshca", state_dir);
        snprintf(link, sizeof(link), "%s/" TB_CA_CERT_FILE, dir);
        (void)mkdir(dir, 0700);
        (void)unlink(link);
        if (!realpath(ca_file, abs) || symlink(abs, link) != 0) {
            tb_log_error(log, "ca '%s': %s", ca_file, strerror(errno));
            return TB_ERR_IO;
        }
    }
    int rc = tb_ca_load(dir, 0, NULL, out, err, sizeof(err));
    if (rc != TB_OK)
        tb_log_error(log, "ca '%s': %s", ca_file, err);
    return rc;
}

int tb_origins_new(const tb_log *log, const char *ca_file, const char *state_dir, tb_origins **out)
{
    *out = NULL;
    tb_origins *o = calloc(1, sizeof(*o));
    if (!o)
        return TB_ERR_NOMEM;
    o->log = log;
    o->keys = tb_measure_keycache_new(TB_ORIGINS_MAX);
    o->certs = calloc(TB_ORIGINS_MAX, sizeof(*o->certs));
    o->held = calloc(TB_ORIGINS_HOLD_MAX, sizeof(*o->held));
    int rc =
        o->keys && o->certs && o->held ? load_ca(log, ca_file, state_dir, &o->ca) : TB_ERR_NOMEM;
    if (rc != TB_OK) {
        tb_origins_free(o);
        return rc;
    }
    *out = o;
    return TB_OK;
}

void tb_origins_free(tb_origins *o)
{
    if (!o)
        return;
    for (size_t i = 0; o->certs && i < o->ncerts; i++)
        free(o->certs[i].der);
    for (size_t i = 0; o->held && i < o->nheld; i++)
        free(o->held[i].msg);
    free(o->certs);
    free(o->held);
    tb_measure_keycache_free(o->keys);
    tb_ca_free(o->ca);
    free(o);
}

static cert_entry *find_cert(const tb_origins *o, const char *name)
{
    for (size_t i = 0; i < o->ncerts; i++)
        if (strcmp(o->certs[i].name, name) == 0)
            return &o->certs[i];
    return NULL;
}

static cert_entry *new_slot(tb_origins *o)
{
    if (o->ncerts < TB_ORIGINS_MAX)
        return &o->certs[o->ncerts++];
    cert_entry *lru = &o->certs[0];
    for (size_t i = 1; i < o->ncerts; i++)
        if (o->certs[i].used < lru->used)
            lru = &o->certs[i];
    free(lru->der);
    memset(lru, 0, sizeof(*lru));
    return lru;
}

/* An ALIVE's incarnation orders the announcements of one node; where one side has none
 * (handshake, CERT) the later notBefore is the newer certificate. 1: replace, 0: keep,
 * -1: the same certificate. */
static int is_newer(const cert_entry *e, const tb_cert_identity *id, uint64_t incarnation)
{
    if (memcmp(e->fp, id->fingerprint, TB_MEASURE_FP_LEN) == 0)
        return -1;
    if (incarnation && e->incarnation)
        return incarnation > e->incarnation;
    return id->not_before > e->not_before;
}

/* Chains to the CA, in date, Ed25519, names expect (when given); counts a refusal. */
static int verify_der(tb_origins *o, const uint8_t *der, size_t len, const char *expect,
                      int64_t now_s, tb_cert_identity *id)
{
    tb_cert_verdict v;
    if (len == 0 || tb_ca_verify_der(o->ca, der, len, now_s, &v, id) != TB_OK ||
        (expect && strcmp(expect, id->name) != 0) || strcmp(id->key_type, "ed25519") != 0) {
        o->st.refused++;
        return TB_ERR_VERIFY;
    }
    return TB_OK;
}

int tb_origins_check(tb_origins *o, const uint8_t *der, size_t len, const char *expect,
                     int64_t now_s, tb_measure_origin_key *key, char name[64])
{
    tb_cert_identity id;
    if (verify_der(o, der, len, expect, now_s, &id) != TB_OK)
        return TB_ERR_VERIFY;
    if (key) {
        memcpy(key->ed25519_pub, id.ed25519_pub, TB_MEASURE_PK_LEN);
        key->not_before = id.not_before;
        key->not_after = id.not_after;
    }
    if (name)
        snprintf(name, 64, "%s", id.name);
    return TB_OK;
}

/* The entry holding exactly this certificate, found without the CA check. */
static cert_entry *find_fp(const tb_origins *o, const uint8_t *der, size_t len)
{
    uint8_t fp[TB_MEASURE_FP_LEN];
    crypto_hash_sha256(fp, der, len);
    for (size_t i = 0; i < o->ncerts; i++)
        if (memcmp(o->certs[i].fp, fp, TB_MEASURE_FP_LEN) == 0)
            return &o->certs[i];
    return NULL;
}

int tb_origins_learn(tb_origins *o, const uint8_t *der, size_t len, const char *expect,
                     uint64_t incarnation, int64_t now_s, char name[64])
{
    cert_entry *known = len ? find_fp(o, der, len) : NULL;
    if (known && (!expect || strcmp(expect, known->name) == 0)) {
        if (name)
            snprintf(name, 64, "%s", known->name);
        if (incarnation > known->incarnation)
            known->incarnation = incarnation;
        return TB_ERR_EXISTS;
    }
    tb_cert_identity id;
    if (verify_der(o, der, len, expect, now_s, &id) != TB_OK)
        return TB_ERR_VERIFY;
    if (name)
        snprintf(name, 64, "%s", id.name);
    cert_entry *e = find_cert(o, id.name);
    int newer = e ? is_newer(e, &id, incarnation) : 1;
    if (newer <= 0) {
        if (newer < 0 && incarnation > e->incarnation)
            e->incarnation = incarnation;
        return TB_ERR_EXISTS;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return TB_ERR_NOMEM;
    memcpy(copy, der, len);
    uint64_t inc = e && e->incarnation > incarnation ? e->incarnation : incarnation;
    if (!e)
        e = new_slot(o);
    free(e->der);
    snprintf(e->name, sizeof(e->name), "%s", id.name);
    e->der = copy;
    e->len = len;
    memcpy(e->fp, id.fingerprint, TB_MEASURE_FP_LEN);
    e->not_before = id.not_before;
    e->incarnation = inc;
    e->used = ++o->use_clock;
    tb_measure_origin_key key = {.not_before = id.not_before, .not_after = id.not_after};
    memcpy(key.ed25519_pub, id.ed25519_pub, TB_MEASURE_PK_LEN);
    if (tb_measure_keycache_put(o->keys, e->fp, id.name, now_s, &key) != TB_OK)
        tb_log_debug(o->log, "origin %s: key not cached", id.name);
    o->st.learned++;
    return TB_OK;
}

int tb_origins_key(tb_origins *o, const char *origin, int64_t now_s, tb_measure_origin_key *out)
{
    cert_entry *e = find_cert(o, origin);
    if (!e)
        return TB_ERR_NOTFOUND;
    e->used = ++o->use_clock;
    if (tb_measure_keycache_get(o->keys, e->fp, origin, now_s, out) == TB_OK)
        return TB_OK;
    /* Out of date now (or pushed out of the key cache): the dates say which. */
    tb_cert_identity id;
    tb_cert_verdict v;
    int rc = tb_ca_verify_der(o->ca, e->der, e->len, now_s, &v, &id);
    int verified = rc == TB_OK;
    if (rc != TB_OK && (v == TB_CERT_EXPIRED || v == TB_CERT_NOT_YET_VALID))
        rc = tb_cert_identity_from_der(e->der, e->len, &id);
    if (rc != TB_OK || strcmp(id.name, origin) != 0 || strcmp(id.key_type, "ed25519") != 0)
        return TB_ERR_NOTFOUND;
    memcpy(out->ed25519_pub, id.ed25519_pub, TB_MEASURE_PK_LEN);
    out->not_before = id.not_before;
    out->not_after = id.not_after;
    if (verified && tb_measure_keycache_put(o->keys, e->fp, origin, now_s, out) != TB_OK)
        tb_log_debug(o->log, "origin %s: key not cached", origin);
    return TB_OK;
}

int tb_origins_der(const tb_origins *o, const char *origin, const uint8_t **der, size_t *len)
{
    const cert_entry *e = find_cert(o, origin);
    if (!e)
        return TB_ERR_NOTFOUND;
    *der = e->der;
    *len = e->len;
    return TB_OK;
}

int tb_origins_should_ask(tb_origins *o, const char *origin, const char *from, uint64_t now)
{
    for (size_t i = 0; i < ASKS; i++) {
        const ask *a = &o->asks[i];
        if (a->at && strcmp(a->origin, origin) == 0 && strcmp(a->from, from) == 0 && now >= a->at &&
            now - a->at < TB_ORIGINS_ASK_NS)
            return 0;
    }
    ask *a = &o->asks[o->next_ask];
    o->next_ask = (o->next_ask + 1) % ASKS;
    snprintf(a->origin, sizeof(a->origin), "%s", origin);
    snprintf(a->from, sizeof(a->from), "%s", from);
    a->at = now ? now : 1;
    return 1;
}

int tb_origins_hold(tb_origins *o, const char *from, const char *origin, const uint8_t *msg,
                    size_t len, int tries, uint64_t now)
{
    size_t mine = 0;
    for (size_t i = 0; i < o->nheld; i++)
        mine += strcmp(o->held[i].from, from) == 0;
    uint8_t *copy = NULL;
    if (mine >= TB_ORIGINS_HOLD_PER_PEER || o->nheld >= TB_ORIGINS_HOLD_MAX ||
        len > TB_ORIGINS_HOLD_BYTES - o->held_bytes || !(copy = malloc(len ? len : 1))) {
        o->st.hold_full++;
        return TB_ERR_FULL;
    }
    memcpy(copy, msg, len);
    held *h = &o->held[o->nheld++];
    snprintf(h->from, sizeof(h->from), "%s", from);
    snprintf(h->origin, sizeof(h->origin), "%s", origin);
    h->msg = copy;
    h->len = len;
    h->tries = tries;
    h->at = now;
    o->held_bytes += len;
    o->st.held++;
    return TB_OK;
}

/* Removes entry i keeping the order (oldest first); its message is the caller's. */
static void unhold(tb_origins *o, size_t i)
{
    o->held_bytes -= o->held[i].len;
    memmove(&o->held[i], &o->held[i + 1], (o->nheld - i - 1) * sizeof(*o->held));
    o->nheld--;
}

void tb_origins_release(tb_origins *o, const char *origin, tb_origins_release_fn fn, void *arg)
{
    held *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < o->nheld;) {
        if (strcmp(o->held[i].origin, origin) != 0) {
            i++;
            continue;
        }
        held *grown = realloc(out, (n + 1) * sizeof(*out));
        if (!grown)
            break; /* left held: it expires */
        out = grown;
        out[n++] = o->held[i];
        unhold(o, i);
    }
    /* Detached first: fn may hold them again. */
    for (size_t i = 0; i < n; i++) {
        o->st.released++;
        fn(arg, out[i].from, out[i].msg, out[i].len, out[i].tries);
        free(out[i].msg);
    }
    free(out);
}

uint64_t tb_origins_expire(tb_origins *o, uint64_t now)
{
    while (o->nheld && (now < o->held[0].at || now - o->held[0].at >= TB_ORIGINS_HOLD_NS)) {
        tb_log_debug(o->log, "broadcast from %s via %s dropped: no certificate came in time",
                     o->held[0].origin, o->held[0].from);
        free(o->held[0].msg);
        unhold(o, 0);
        o->st.hold_expired++;
    }
    return o->nheld ? o->held[0].at + TB_ORIGINS_HOLD_NS : UINT64_MAX;
}

size_t tb_origins_count(const tb_origins *o)
{
    return o->ncerts;
}

size_t tb_origins_held(const tb_origins *o)
{
    return o->nheld;
}

void tb_origins_get_stats(const tb_origins *o, tb_origins_stats *out)
{
    *out = o->st;
}
