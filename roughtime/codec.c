#include "roughtime/codec.h"

#include <string.h>

#include "common/bytes.h"

static const char dele_new[] = "RoughTime v1 delegation signature";
static const char dele_old[] = "RoughTime v1 delegation signature--";

static const tb_rt_profile profiles[] = {
    {TB_RT_VER_RFC, "RFC 10049", 1, 32, 32, 1, 1, 1, 0, 1, dele_new, sizeof(dele_new)},
    {TB_RT_VER_DRAFT12, "draft-12..19", 1, 32, 32, 1, 1, 0, 0, 1, dele_new, sizeof(dele_new)},
    {TB_RT_VER_DRAFT11, "draft-11", 1, 32, 32, 0, 0, 0, 0, 1, dele_old, sizeof(dele_old)},
    {TB_RT_VER_DRAFT08, "draft-08", 1, 32, 32, 0, 0, 0, 0, 0, dele_old, sizeof(dele_old)},
    {TB_RT_VER_GOOGLE, "Google-Roughtime", 0, 64, 64, 0, 0, 0, 1, 0, dele_old, sizeof(dele_old)},
};

const tb_rt_profile *tb_rt_profile_get(uint32_t version)
{
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        if (profiles[i].version == version)
            return &profiles[i];
    }
    return NULL;
}

const char *tb_rt_version_name(uint32_t version)
{
    const tb_rt_profile *p = tb_rt_profile_get(version);
    return p ? p->name : "unknown";
}

int tb_rt_msg_parse(const uint8_t *p, size_t len, tb_rt_msg *out)
{
    out->n = 0;
    if (len < 4)
        return TB_ERR_TRUNCATED;
    if (len % 4 != 0)
        return TB_ERR_MALFORMED;
    uint32_t n = tb_get_le32(p);
    if (n == 0) {
        /* An empty message is only its count. */
        return len == 4 ? 0 : TB_ERR_MALFORMED;
    }
    if (n > TB_RT_MAX_TAGS)
        return TB_ERR_TOO_BIG;
    size_t hdr = 8 * (size_t)n;
    if (len < hdr)
        return TB_ERR_TRUNCATED;
    size_t vlen = len - hdr;
    const uint8_t *offs = p + 4, *tags = p + 4 + 4 * ((size_t)n - 1), *vals = p + hdr;
    uint32_t prev_off = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tag = tb_get_le32(tags + 4 * (size_t)i);
        if (i > 0 && tag <= out->tags[i - 1])
            return TB_ERR_MALFORMED;
        uint32_t end = i + 1 < n ? tb_get_le32(offs + 4 * (size_t)i) : (uint32_t)vlen;
        if (i + 1 == n && vlen > UINT32_MAX)
            return TB_ERR_TOO_BIG;
        if (end % 4 != 0 || end < prev_off || end > vlen)
            return TB_ERR_MALFORMED;
        out->tags[i] = tag;
        out->vals[i] = vals + prev_off;
        out->lens[i] = end - prev_off;
        prev_off = end;
    }
    out->n = n;
    return 0;
}

int tb_rt_msg_find(const tb_rt_msg *m, uint32_t tag, const uint8_t **val, size_t *len)
{
    for (unsigned i = 0; i < m->n; i++) {
        if (m->tags[i] == tag) {
            *val = m->vals[i];
            *len = m->lens[i];
            return 0;
        }
    }
    return TB_ERR_NOTFOUND;
}

int tb_rt_msg_fixed(const tb_rt_msg *m, uint32_t tag, size_t n, const uint8_t **val)
{
    size_t len;
    int rc = tb_rt_msg_find(m, tag, val, &len);
    if (rc < 0)
        return rc;
    return len == n ? 0 : TB_ERR_MALFORMED;
}

int tb_rt_msg_u32(const tb_rt_msg *m, uint32_t tag, uint32_t *out)
{
    const uint8_t *v;
    int rc = tb_rt_msg_fixed(m, tag, 4, &v);
    if (rc < 0)
        return rc;
    *out = tb_get_le32(v);
    return 0;
}

int tb_rt_msg_u64(const tb_rt_msg *m, uint32_t tag, uint64_t *out)
{
    const uint8_t *v;
    int rc = tb_rt_msg_fixed(m, tag, 8, &v);
    if (rc < 0)
        return rc;
    *out = tb_get_le64(v);
    return 0;
}

int tb_rt_frame_next(const uint8_t *p, size_t len, size_t max, size_t *pkt_len)
{
    *pkt_len = 0;
    size_t have = len < 8 ? len : 8;
    if (have > 0 && memcmp(p, "ROUGHTIM", have) != 0)
        return TB_ERR_MALFORMED;
    if (len < TB_RT_HEADER_LEN)
        return 0;
    uint64_t n = (uint64_t)tb_get_le32(p + 8) + TB_RT_HEADER_LEN; /* no overflow in 64 bits */
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (len >= n)
        *pkt_len = (size_t)n;
    return 0;
}

int tb_rt_packet_unwrap(const uint8_t *p, size_t len, const uint8_t **msg, size_t *msglen)
{
    if (len < TB_RT_HEADER_LEN)
        return TB_ERR_TRUNCATED;
    if (memcmp(p, "ROUGHTIM", 8) != 0)
        return TB_ERR_MALFORMED;
    uint32_t n = tb_get_le32(p + 8);
    if (n != len - TB_RT_HEADER_LEN)
        return len - TB_RT_HEADER_LEN < n ? TB_ERR_TRUNCATED : TB_ERR_MALFORMED;
    *msg = p + TB_RT_HEADER_LEN;
    *msglen = n;
    return 0;
}

void tb_rt_builder_init(tb_rt_builder *b)
{
    b->n = 0;
    b->err = 0;
}

void tb_rt_builder_add(tb_rt_builder *b, uint32_t tag, const void *val, size_t len)
{
    if (b->err)
        return;
    if (b->n == TB_RT_MAX_TAGS) {
        b->err = TB_ERR_TOO_BIG;
        return;
    }
    if (len % 4 != 0 || len > TB_RT_MAX_PACKET) {
        b->err = TB_ERR_INVAL;
        return;
    }
    for (unsigned i = 0; i < b->n; i++) {
        if (b->tags[i] == tag) {
            b->err = TB_ERR_EXISTS;
            return;
        }
    }
    /* Insertion keeps the entries sorted, so writing is a single pass. */
    unsigned i = b->n;
    while (i > 0 && b->tags[i - 1] > tag) {
        b->tags[i] = b->tags[i - 1];
        b->vals[i] = b->vals[i - 1];
        b->lens[i] = b->lens[i - 1];
        i--;
    }
    b->tags[i] = tag;
    b->vals[i] = val;
    b->lens[i] = (uint32_t)len;
    b->n++;
}

size_t tb_rt_builder_size(const tb_rt_builder *b)
{
    size_t s = b->n ? 8 * (size_t)b->n : 4;
    for (unsigned i = 0; i < b->n; i++)
        s += b->lens[i];
    return s;
}

int tb_rt_builder_write(const tb_rt_builder *b, int framed, uint8_t *out, size_t cap,
                        size_t *outlen)
{
    if (b->err)
        return b->err;
    size_t msg = tb_rt_builder_size(b);
    size_t total = msg + (framed ? TB_RT_HEADER_LEN : 0);
    if (total > cap || msg > UINT32_MAX)
        return TB_ERR_TOO_BIG;
    uint8_t *p = out;
    if (framed) {
        memcpy(p, "ROUGHTIM", 8); /* NOLINT(bugprone-not-null-terminated-result): wire magic */
        tb_put_le32(p + 8, (uint32_t)msg);
        p += TB_RT_HEADER_LEN;
    }
    tb_put_le32(p, b->n);
    uint8_t *offs = p + 4, *tags = p + 4 + 4 * (b->n ? b->n - 1 : 0);
    uint8_t *vals = p + (b->n ? 8 * (size_t)b->n : 4);
    uint32_t off = 0;
    for (unsigned i = 0; i < b->n; i++) {
        if (i > 0)
            tb_put_le32(offs + 4 * (i - 1), off);
        tb_put_le32(tags + 4 * i, b->tags[i]);
        if (b->lens[i])
            memcpy(vals + off, b->vals[i], b->lens[i]);
        off += b->lens[i];
    }
    *outlen = total;
    return 0;
}

/* VER in a request and VERS in a response: 1..32 versions, ascending, no repeats. */
static int parse_version_list(const uint8_t *v, size_t len, uint32_t *out, unsigned *n)
{
    if (len == 0 || len % 4 != 0 || len / 4 > TB_RT_MAX_VERSIONS)
        return TB_ERR_MALFORMED;
    *n = (unsigned)(len / 4);
    for (unsigned i = 0; i < *n; i++) {
        out[i] = tb_get_le32(v + 4 * i);
        if (i > 0 && out[i] <= out[i - 1])
            return TB_ERR_MALFORMED;
    }
    return 0;
}

int tb_rt_request_parse(const uint8_t *p, size_t len, tb_rt_request *out, tb_rt_req_error *why)
{
    const uint8_t *m, *v;
    size_t mlen, vlen;
    tb_rt_msg msg;
    memset(out, 0, sizeof(*out));
    *why = TB_RT_REQ_FRAMING;
    if (tb_rt_packet_unwrap(p, len, &m, &mlen) < 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_MESSAGE;
    if (tb_rt_msg_parse(m, mlen, &msg) < 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_NO_VER;
    if (tb_rt_msg_find(&msg, TB_RT_TAG_VER, &v, &vlen) < 0 ||
        parse_version_list(v, vlen, out->versions, &out->nversions) < 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_NO_NONC;
    if (tb_rt_msg_fixed(&msg, TB_RT_TAG_NONC, 32, &out->nonce) < 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_NO_TYPE;
    if (tb_rt_msg_u32(&msg, TB_RT_TAG_TYPE, &out->type) < 0 || out->type != 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_BAD_SRV;
    int rc = tb_rt_msg_fixed(&msg, TB_RT_TAG_SRV, 32, &out->srv);
    if (rc == TB_ERR_NOTFOUND)
        out->srv = NULL;
    else if (rc < 0)
        return TB_ERR_MALFORMED;
    *why = TB_RT_REQ_OK;
    return 0;
}

const char *tb_rt_req_error_name(tb_rt_req_error e)
{
    static const char *const names[] = {"ok",          "bad framing",  "malformed message",
                                        "missing VER", "missing NONC", "missing TYPE",
                                        "bad SRV"};
    return (unsigned)e < TB_RT_REQ_ERROR_COUNT ? names[e] : "unknown";
}

static int unwrap_any(const uint8_t *p, size_t len, int framed, const uint8_t **m, size_t *mlen)
{
    if (framed)
        return tb_rt_packet_unwrap(p, len, m, mlen);
    *m = p;
    *mlen = len;
    return 0;
}

int tb_rt_response_version(const uint8_t *p, size_t len, uint32_t *version)
{
    const uint8_t *m, *srep;
    size_t mlen, srep_len;
    tb_rt_msg msg, sm;
    if (len < 8 || memcmp(p, "ROUGHTIM", 8) != 0) {
        *version = TB_RT_VER_GOOGLE;
        return 0;
    }
    int rc = tb_rt_packet_unwrap(p, len, &m, &mlen);
    if (rc < 0 || (rc = tb_rt_msg_parse(m, mlen, &msg)) < 0)
        return rc;
    if (tb_rt_msg_u32(&msg, TB_RT_TAG_VER, version) == 0)
        return 0;
    if ((rc = tb_rt_msg_find(&msg, TB_RT_TAG_SREP, &srep, &srep_len)) < 0 ||
        (rc = tb_rt_msg_parse(srep, srep_len, &sm)) < 0)
        return rc;
    return tb_rt_msg_u32(&sm, TB_RT_TAG_VER, version);
}

static int parse_srep(tb_rt_response *r, const tb_rt_profile *prof)
{
    tb_rt_msg sm;
    const uint8_t *vers;
    size_t vlen;
    uint32_t list[TB_RT_MAX_VERSIONS];
    int rc;
    if ((rc = tb_rt_msg_parse(r->srep, r->srep_len, &sm)) < 0)
        return rc;
    if ((rc = tb_rt_msg_u32(&sm, TB_RT_TAG_RADI, &r->radi)) < 0 ||
        (rc = tb_rt_msg_u64(&sm, TB_RT_TAG_MIDP, &r->midp)) < 0 ||
        (rc = tb_rt_msg_fixed(&sm, TB_RT_TAG_ROOT, prof->hash_len, &r->root)) < 0)
        return rc;
    if (!prof->ver_in_srep)
        return 0;
    if ((rc = tb_rt_msg_u32(&sm, TB_RT_TAG_VER, &r->ver)) < 0 ||
        (rc = tb_rt_msg_find(&sm, TB_RT_TAG_VERS, &vers, &vlen)) < 0 ||
        (rc = parse_version_list(vers, vlen, list, &r->nvers)) < 0)
        return rc;
    r->vers = vers;
    return 0;
}

static int parse_cert(tb_rt_response *r, const uint8_t *cert, size_t cert_len)
{
    tb_rt_msg cm, dm;
    int rc;
    if ((rc = tb_rt_msg_parse(cert, cert_len, &cm)) < 0 ||
        (rc = tb_rt_msg_fixed(&cm, TB_RT_TAG_SIG, 64, &r->cert_sig)) < 0 ||
        (rc = tb_rt_msg_find(&cm, TB_RT_TAG_DELE, &r->dele, &r->dele_len)) < 0 ||
        (rc = tb_rt_msg_parse(r->dele, r->dele_len, &dm)) < 0 ||
        (rc = tb_rt_msg_fixed(&dm, TB_RT_TAG_PUBK, 32, &r->pubk)) < 0 ||
        (rc = tb_rt_msg_u64(&dm, TB_RT_TAG_MINT, &r->mint)) < 0 ||
        (rc = tb_rt_msg_u64(&dm, TB_RT_TAG_MAXT, &r->maxt)) < 0)
        return rc;
    return 0;
}

int tb_rt_response_parse(const uint8_t *p, size_t len, uint32_t version, tb_rt_response *r)
{
    const tb_rt_profile *prof = tb_rt_profile_get(version);
    const uint8_t *m, *cert;
    size_t mlen, cert_len;
    tb_rt_msg msg;
    int rc;
    memset(r, 0, sizeof(*r));
    if (!prof)
        return TB_ERR_UNSUPPORTED;
    r->prof = prof;
    if ((rc = unwrap_any(p, len, prof->framed, &m, &mlen)) < 0 ||
        (rc = tb_rt_msg_parse(m, mlen, &msg)) < 0)
        return rc;
    /* Google-Roughtime's reference server sends no NONC: only the Merkle path binds the nonce. */
    rc = tb_rt_msg_fixed(&msg, TB_RT_TAG_NONC, prof->nonce_len, &r->nonce);
    if (rc < 0 && (rc != TB_ERR_NOTFOUND || prof->framed))
        return rc;
    if ((rc = tb_rt_msg_fixed(&msg, TB_RT_TAG_SIG, 64, &r->sig)) < 0 ||
        (rc = tb_rt_msg_find(&msg, TB_RT_TAG_PATH, &r->path, &r->path_len)) < 0 ||
        (rc = tb_rt_msg_u32(&msg, TB_RT_TAG_INDX, &r->indx)) < 0 ||
        (rc = tb_rt_msg_find(&msg, TB_RT_TAG_SREP, &r->srep, &r->srep_len)) < 0 ||
        (rc = tb_rt_msg_find(&msg, TB_RT_TAG_CERT, &cert, &cert_len)) < 0)
        return rc;
    if (r->path_len % prof->hash_len != 0 || r->path_len / prof->hash_len > TB_RT_MAX_PATH)
        return TB_ERR_MALFORMED;
    rc = tb_rt_msg_u32(&msg, TB_RT_TAG_TYPE, &r->type);
    if (rc == 0)
        r->has_type = 1;
    else if (rc != TB_ERR_NOTFOUND || prof->type_required)
        return rc;
    if (prof->framed && !prof->ver_in_srep &&
        (rc = tb_rt_msg_u32(&msg, TB_RT_TAG_VER, &r->ver)) < 0)
        return rc;
    if (!prof->framed)
        r->ver = TB_RT_VER_GOOGLE;
    if ((rc = parse_srep(r, prof)) < 0)
        return rc;
    return parse_cert(r, cert, cert_len);
}
