#include "roughtime/verify.h"

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "roughtime/merkle.h"

const char *tb_rt_reason_name(tb_rt_reason r)
{
    static const char *const names[] = {
        "ok",
        "malformed response",
        "version not offered or downgraded",
        "bad TYPE",
        "nonce mismatch",
        "delegation signature invalid",
        "MIDP outside delegation MINT..MAXT",
        "Merkle path does not lead to ROOT",
        "response signature invalid",
        "RADI is zero",
        "server unsynchronised (RADI 0xffffffff)",
    };
    return (unsigned)r < TB_RT_REASON_COUNT ? names[r] : "unknown";
}

int tb_rt_query_init(tb_rt_query *q, const uint8_t pubkey[32], const uint32_t *versions, unsigned n,
                     const uint8_t *nonce, int64_t sent_ns)
{
    return tb_rt_query_init_flags(q, pubkey, versions, n, nonce, sent_ns, 0);
}

int tb_rt_query_init_flags(tb_rt_query *q, const uint8_t pubkey[32], const uint32_t *versions,
                           unsigned n, const uint8_t *nonce, int64_t sent_ns, unsigned flags)
{
    uint8_t ver[4 * 4], srv[32], type[4] = {0}, pad[TB_RT_MIN_REQUEST];
    memset(q, 0, sizeof(*q));
    if (n == 0 || n > 4)
        return TB_ERR_INVAL;
    int google = 0;
    for (unsigned i = 0; i < n; i++)
        google |= versions[i] == TB_RT_VER_GOOGLE;
    for (unsigned i = 0; i < n; i++) {
        if (!tb_rt_profile_get(versions[i]) || (google && n > 1) ||
            (i > 0 && versions[i] <= versions[i - 1]))
            return TB_ERR_INVAL;
        q->offered[i] = versions[i];
        tb_put_le32(ver + 4 * i, versions[i]);
    }
    q->noffered = n;
    memcpy(q->pubkey, pubkey, 32);
    q->nonce_len = google ? 64 : 32;
    memcpy(q->nonce, nonce, q->nonce_len);
    q->sent_ns = sent_ns;

    tb_rt_builder b;
    tb_rt_builder_init(&b);
    tb_rt_builder_add(&b, TB_RT_TAG_NONC, q->nonce, q->nonce_len);
    if (!google) {
        /* Servers ignore tags they do not know, so one request serves every IETF version. */
        tb_rt_hash(srv, 32, 0xff, pubkey, 32, NULL, 0);
        tb_rt_builder_add(&b, TB_RT_TAG_VER, ver, 4 * (size_t)n);
        if (!(flags & TB_RT_QUERY_NO_SRV))
            tb_rt_builder_add(&b, TB_RT_TAG_SRV, srv, 32);
        tb_rt_builder_add(&b, TB_RT_TAG_TYPE, type, 4);
    }
    /* The pad tag's own header entry takes 8 bytes: fill the message to exactly 1024. */
    size_t have = tb_rt_builder_size(&b) + 8;
    memset(pad, 0, sizeof(pad));
    tb_rt_builder_add(&b, google ? TB_RT_TAG_PAD : TB_RT_TAG_ZZZZ, pad, TB_RT_MIN_REQUEST - have);
    return tb_rt_builder_write(&b, !google, q->request, sizeof(q->request), &q->request_len);
}

int tb_rt_query_adopt(tb_rt_query *q, const uint8_t pubkey[32], const uint8_t *req, size_t len,
                      int64_t sent_ns)
{
    tb_rt_request r;
    tb_rt_req_error why;
    memset(q, 0, sizeof(*q));
    if (len > sizeof(q->request))
        return TB_ERR_TOO_BIG;
    int rc = tb_rt_request_parse(req, len, &r, &why);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < r.nversions; i++) {
        if (tb_rt_profile_get(r.versions[i]) && q->noffered < 4)
            q->offered[q->noffered++] = r.versions[i];
    }
    if (q->noffered == 0)
        return TB_ERR_UNSUPPORTED;
    memcpy(q->pubkey, pubkey, 32);
    memcpy(q->nonce, r.nonce, 32);
    q->nonce_len = 32;
    memcpy(q->request, req, len);
    q->request_len = len;
    q->sent_ns = sent_ns;
    return 0;
}

/* Higher is better; a server that knows a better version we offered must not pick a worse one. */
static int version_rank(uint32_t v)
{
    switch (v) {
    case TB_RT_VER_RFC:
        return 4;
    case TB_RT_VER_DRAFT12:
        return 3;
    case TB_RT_VER_DRAFT11:
        return 2;
    case TB_RT_VER_DRAFT08:
        return 1;
    default:
        return 0;
    }
}

static int offered(const tb_rt_query *q, uint32_t v)
{
    for (unsigned i = 0; i < q->noffered; i++) {
        if (q->offered[i] == v)
            return 1;
    }
    return 0;
}

static tb_rt_reason check_version(const tb_rt_query *q, const tb_rt_response *r)
{
    if (!offered(q, r->ver))
        return TB_RT_BAD_VERSION;
    if (!r->prof->ver_in_srep)
        return TB_RT_OK;
    int found = 0;
    for (unsigned i = 0; i < r->nvers; i++) {
        uint32_t v = tb_get_le32(r->vers + 4 * i);
        found |= v == r->ver;
        if (offered(q, v) && version_rank(v) > version_rank(r->ver))
            return TB_RT_BAD_VERSION;
    }
    return found ? TB_RT_OK : TB_RT_BAD_VERSION;
}

static int sig_ok(const uint8_t *sig, const char *ctx, size_t ctx_len, const uint8_t *msg,
                  size_t len, const uint8_t *pk)
{
    uint8_t buf[64 + TB_RT_RESPONSE_BUF];
    if (ctx_len + len > sizeof(buf))
        return 0;
    memcpy(buf, ctx, ctx_len);
    memcpy(buf + ctx_len, msg, len);
    return crypto_sign_ed25519_verify_detached(sig, buf, ctx_len + len, pk) == 0;
}

static tb_rt_reason check_response(const tb_rt_query *q, const tb_rt_response *r)
{
    const tb_rt_profile *prof = r->prof;
    tb_rt_reason why = check_version(q, r);
    if (why != TB_RT_OK)
        return why;
    if (r->has_type ? r->type != 1 : prof->type_required)
        return TB_RT_BAD_TYPE;
    if (r->nonce && sodium_memcmp(r->nonce, q->nonce, q->nonce_len) != 0)
        return TB_RT_BAD_NONCE;
    if (!sig_ok(r->cert_sig, prof->dele_context, prof->dele_context_len, r->dele, r->dele_len,
                q->pubkey))
        return TB_RT_BAD_DELE_SIG;
    if (r->midp < r->mint || r->midp > r->maxt)
        return TB_RT_BAD_DELE_RANGE;
    const uint8_t *leaf = prof->leaf_is_packet ? q->request : q->nonce;
    size_t leaf_len = prof->leaf_is_packet ? q->request_len : q->nonce_len;
    if (tb_rt_merkle_verify(prof->hash_len, leaf, leaf_len, r->indx, r->path, r->path_len,
                            r->root) < 0)
        return TB_RT_BAD_MERKLE;
    if (!sig_ok(r->sig, TB_RT_RESPONSE_CONTEXT, TB_RT_RESPONSE_CONTEXT_LEN, r->srep, r->srep_len,
                r->pubk))
        return TB_RT_BAD_SIG;
    if (r->radi == 0)
        return TB_RT_BAD_RADIUS;
    return TB_RT_OK;
}

int tb_rt_verify(tb_rt_query *q, const uint8_t *resp, size_t len, int64_t now_ns, tb_rt_reason *why)
{
    tb_rt_response r;
    uint32_t version;
    q->verified = 0;
    *why = TB_RT_BAD_FORMAT;
    if (len > sizeof(q->response))
        return TB_ERR_TOO_BIG;
    memcpy(q->response, resp, len);
    q->response_len = len;
    if (tb_rt_response_version(resp, len, &version) < 0)
        return TB_ERR_MALFORMED;
    if (!offered(q, version)) {
        *why = TB_RT_BAD_VERSION;
        return TB_ERR_VERIFY;
    }
    if (tb_rt_response_parse(resp, len, version, &r) < 0)
        return TB_ERR_MALFORMED;
    *why = check_response(q, &r);
    if (*why != TB_RT_OK)
        return TB_ERR_VERIFY;
    uint64_t scale = r.prof->micro ? 1 : 1000000;
    if (r.midp > (uint64_t)INT64_MAX / scale / 1000)
        return *why = TB_RT_BAD_FORMAT, TB_ERR_MALFORMED;
    q->version = version;
    q->midp_us = (int64_t)(r.midp * scale);
    q->radi_us = (uint64_t)r.radi * scale;
    q->rtt_ns = now_ns - q->sent_ns;
    q->offset_ns = q->midp_us * 1000 - (q->sent_ns + q->rtt_ns / 2);
    if (r.radi == TB_RT_RADI_UNSYNCED) {
        /* It would agree with every clock: never a measurement. */
        *why = TB_RT_UNSYNCED;
        return TB_ERR_VERIFY;
    }
    q->verified = 1;
    return 0;
}

void tb_rt_chain_nonce(const uint8_t *prev_resp, size_t prev_len, const uint8_t rand[32],
                       uint8_t *nonce, unsigned nonce_len)
{
    tb_rt_hash(nonce, nonce_len, -1, prev_resp, prev_len, rand, 32);
}

bool tb_rt_nonce_chained(const uint8_t *prev_resp, size_t prev_len, const uint8_t *req,
                         size_t req_len, const uint8_t rand[32])
{
    static const uint8_t no_key[32];
    tb_rt_query q;
    uint8_t want[64];
    if (tb_rt_query_adopt(&q, no_key, req, req_len, 0) != 0 || q.nonce_len > sizeof(want))
        return false;
    tb_rt_chain_nonce(prev_resp, prev_len, rand, want, q.nonce_len);
    return sodium_memcmp(want, q.nonce, q.nonce_len) == 0;
}

int tb_rt_causality_check(const tb_rt_query *const *qs, unsigned n, unsigned *bad_i,
                          unsigned *bad_j)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = i + 1; j < n; j++) {
            /* Signed arithmetic in microseconds: radii are far below 2^62. */
            int64_t lo_i = qs[i]->midp_us - (int64_t)qs[i]->radi_us;
            int64_t hi_j = qs[j]->midp_us + (int64_t)qs[j]->radi_us;
            if (lo_i > hi_j) {
                *bad_i = i;
                *bad_j = j;
                return TB_ERR_VERIFY;
            }
        }
    }
    return 0;
}

static json_t *b64(const uint8_t *p, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    sodium_bin2base64(s, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_string(s);
    free(s);
    return j;
}

int tb_rt_report_json(const tb_rt_report_entry *e, size_t n, unsigned flags, char **out)
{
    json_t *arr = json_array(), *root = json_object();
    int rc = TB_ERR_NOMEM;
    *out = NULL;
    if (!arr || !root)
        goto done;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) < 0)
            goto done;
        if ((e[i].rand && json_object_set_new(o, "rand", b64(e[i].rand, 32)) < 0) ||
            json_object_set_new(o, "publicKey", b64(e[i].pubkey, 32)) < 0 ||
            json_object_set_new(o, "request", b64(e[i].request, e[i].request_len)) < 0 ||
            json_object_set_new(o, "response", b64(e[i].response, e[i].response_len)) < 0)
            goto done;
    }
    if (json_object_set(root, "responses", arr) < 0)
        goto done;
    *out = json_dumps(root, (flags & TB_RT_REPORT_COMPACT ? JSON_COMPACT : JSON_INDENT(2)) |
                                JSON_PRESERVE_ORDER);
    rc = *out ? 0 : TB_ERR_NOMEM;
done:
    json_decref(arr);
    json_decref(root);
    return rc;
}

int tb_rt_malfeasance_json(const tb_rt_query *const *qs, unsigned n, char **out)
{
    tb_rt_report_entry *e = calloc(n ? n : 1, sizeof(*e));
    if (!e)
        return TB_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        e[i].rand = qs[i]->has_rand ? qs[i]->rand : NULL;
        e[i].pubkey = qs[i]->pubkey;
        e[i].request = qs[i]->request;
        e[i].request_len = qs[i]->request_len;
        e[i].response = qs[i]->response;
        e[i].response_len = qs[i]->response_len;
    }
    int rc = tb_rt_report_json(e, n, 0, out);
    free(e);
    return rc;
}

static int parse_version(json_t *ver, uint32_t *out)
{
    if (!ver) {
        *out = 0;
        return 0;
    }
    if (json_is_string(ver)) {
        if (strcmp(json_string_value(ver), "IETF-Roughtime") == 0)
            return *out = 0, 0;
        if (strcmp(json_string_value(ver), "Google-Roughtime") == 0)
            return *out = TB_RT_VER_GOOGLE, 0;
        return TB_ERR_UNSUPPORTED;
    }
    if (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
        json_integer_value(ver) > UINT32_MAX)
        return TB_ERR_MALFORMED;
    *out = (uint32_t)json_integer_value(ver);
    return tb_rt_profile_get(*out) ? 0 : TB_ERR_UNSUPPORTED;
}

static int parse_addresses(json_t *addrs, tb_rt_server_entry *e, char *err, size_t errlen)
{
    size_t i;
    json_t *a;
    if (!json_is_array(addrs))
        return snprintf(err, errlen, "\"addresses\" is not a list"), TB_ERR_MALFORMED;
    json_array_foreach(addrs, i, a)
    {
        json_t *proto = json_object_get(a, "protocol"), *addr = json_object_get(a, "address");
        if (!json_is_string(proto) || !json_is_string(addr))
            return snprintf(err, errlen, "addresses[%zu] malformed", i), TB_ERR_MALFORMED;
        const char *p = json_string_value(proto);
        bool tcp = strcmp(p, "tcp") == 0;
        if ((!tcp && strcmp(p, "udp") != 0) || e->naddr == TB_RT_LIST_ADDRS)
            continue;
        size_t room = sizeof(e->address[0]) - (tcp ? strlen(TB_RT_LIST_TCP) : 0);
        if (json_string_length(addr) == 0 || json_string_length(addr) >= room)
            return snprintf(err, errlen, "addresses[%zu] empty or too long", i), TB_ERR_MALFORMED;
        snprintf(e->address[e->naddr++], sizeof(e->address[0]), "%s%s", tcp ? TB_RT_LIST_TCP : "",
                 json_string_value(addr));
    }
    return e->naddr ? 0 : (snprintf(err, errlen, "no UDP or TCP address"), TB_ERR_NOTFOUND);
}

/* One entry; on failure err holds the reason (without the entry's name). */
static int parse_entry(json_t *s, tb_rt_server_entry *e, char *err, size_t errlen)
{
    json_t *name = json_object_get(s, "name"), *ver = json_object_get(s, "version");
    json_t *type = json_object_get(s, "publicKeyType"), *key = json_object_get(s, "publicKey");
    size_t klen;
    memset(e, 0, sizeof(*e));
    if (!json_is_string(name) || json_string_length(name) >= sizeof(e->name))
        return snprintf(err, errlen, "\"name\" missing or too long"), TB_ERR_MALFORMED;
    snprintf(e->name, sizeof(e->name), "%s", json_string_value(name));
    int rc = parse_version(ver, &e->version);
    if (rc == TB_ERR_UNSUPPORTED && json_is_string(ver))
        return snprintf(err, errlen, "version \"%.40s\" not supported", json_string_value(ver)), rc;
    if (rc == TB_ERR_UNSUPPORTED)
        return snprintf(err, errlen, "version %" JSON_INTEGER_FORMAT " not supported",
                        json_integer_value(ver)),
               rc;
    if (rc < 0)
        return snprintf(err, errlen, "\"version\" is not a uint32 or a version name"), rc;
    if (!json_is_string(type) || strcmp(json_string_value(type), "ed25519") != 0)
        return snprintf(err, errlen, "publicKeyType is not ed25519"), TB_ERR_UNSUPPORTED;
    if (!json_is_string(key) ||
        sodium_base642bin(e->pubkey, 32, json_string_value(key), json_string_length(key), NULL,
                          &klen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        klen != 32)
        return snprintf(err, errlen, "publicKey is not 32 bytes of base64"), TB_ERR_MALFORMED;
    return parse_addresses(json_object_get(s, "addresses"), e, err, errlen);
}

int tb_rt_server_list_parse(const char *json, size_t len, tb_rt_server_entry *out, unsigned cap,
                            unsigned *n, unsigned *skipped, tb_rt_list_warn warn, void *warn_arg,
                            char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    *n = 0;
    *skipped = 0;
    if (!root)
        return snprintf(err, errlen, "line %d: %s", je.line, je.text), TB_ERR_MALFORMED;
    json_t *servers = json_object_get(root, "servers"), *s;
    int rc = 0;
    size_t i;
    if (!json_is_array(servers)) {
        snprintf(err, errlen, "no \"servers\" list");
        rc = TB_ERR_MALFORMED;
    } else if (json_array_size(servers) > cap) {
        snprintf(err, errlen, "%zu servers, at most %u", json_array_size(servers), cap);
        rc = TB_ERR_TOO_BIG;
    } else {
        json_array_foreach(servers, i, s)
        {
            char why[200], msg[400];
            if (parse_entry(s, &out[*n], why, sizeof(why)) == 0) {
                (*n)++;
                continue;
            }
            (*skipped)++;
            if (out[*n].name[0])
                snprintf(msg, sizeof(msg), "servers[%zu] \"%s\" skipped: %s", i, out[*n].name, why);
            else
                snprintf(msg, sizeof(msg), "servers[%zu] skipped: %s", i, why);
            if (warn)
                warn(warn_arg, msg);
        }
    }
    json_decref(root);
    return rc;
}
