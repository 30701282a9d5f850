#include "ntp/nts_ke.h"

#include <string.h>

#include "common/bytes.h"

#define CRITICAL 0x8000u

static int put_record(uint8_t *out, size_t cap, size_t *used, uint16_t type, const uint8_t *body,
                      uint16_t blen)
{
    if (cap - *used < 4u + blen)
        return TB_ERR_TOO_BIG;
    tb_put_be16(out + *used, type);
    tb_put_be16(out + *used + 2, blen);
    if (blen)
        memcpy(out + *used + 4, body, blen);
    *used += 4u + blen;
    return 0;
}

int tb_nts_ke_request_write(uint8_t *out, size_t cap, size_t *len)
{
    uint8_t proto[2], aead[2];
    tb_put_be16(proto, TB_NTS_PROTO_NTPV4);
    tb_put_be16(aead, TB_NTS_AEAD_AES_SIV_CMAC_256);
    size_t used = 0;
    int err = put_record(out, cap, &used, CRITICAL | TB_NTS_KE_NEXT_PROTO, proto, 2);
    if (err == 0)
        err = put_record(out, cap, &used, TB_NTS_KE_AEAD, aead, 2);
    if (err == 0)
        err = put_record(out, cap, &used, CRITICAL | TB_NTS_KE_END, NULL, 0);
    if (err == 0)
        *len = used;
    return err;
}

const char *tb_nts_ke_error_name(int code)
{
    switch (code) {
    case 0:
        return "unrecognized critical record";
    case 1:
        return "bad request";
    case 2:
        return "internal server error";
    default:
        return "unknown error";
    }
}

typedef struct parse_state {
    tb_nts_ke_response *out;
    bool seen_proto, seen_aead;
    const char **why;
} parse_state;

static int fail(parse_state *st, int err, const char *why)
{
    *st->why = why;
    return err;
}

static int on_proto(parse_state *st, const uint8_t *b, size_t n)
{
    /* The server answers with exactly one protocol, one we offered. */
    if (st->seen_proto)
        return fail(st, TB_ERR_MALFORMED, "next protocol record repeated");
    st->seen_proto = true;
    if (n != 2)
        return fail(st, TB_ERR_UNSUPPORTED, "server chose no protocol, or several");
    if (tb_get_be16(b) != TB_NTS_PROTO_NTPV4)
        return fail(st, TB_ERR_UNSUPPORTED, "server chose a protocol other than NTPv4");
    return 0;
}

static int on_aead(parse_state *st, const uint8_t *b, size_t n)
{
    if (st->seen_aead)
        return fail(st, TB_ERR_MALFORMED, "AEAD record repeated");
    st->seen_aead = true;
    if (n != 2 || tb_get_be16(b) != TB_NTS_AEAD_AES_SIV_CMAC_256)
        return fail(st, TB_ERR_UNSUPPORTED, "server chose an AEAD other than AES-SIV-CMAC-256");
    st->out->aead = TB_NTS_AEAD_AES_SIV_CMAC_256;
    return 0;
}

static int on_server(parse_state *st, const uint8_t *b, size_t n)
{
    if (st->out->has_server)
        return fail(st, TB_ERR_MALFORMED, "server negotiation repeated");
    if (n == 0 || n > TB_NTS_KE_SERVER_MAX)
        return fail(st, TB_ERR_MALFORMED, "server name empty or too long");
    /* A host name or an address literal: letters, digits, '.', '-', ':' (IPv6), nothing else,
     * so the name can go into logs and the resolver as it is. */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':';
        if (!ok)
            return fail(st, TB_ERR_MALFORMED, "server name has a character not allowed in a host");
    }
    memcpy(st->out->server, b, n);
    st->out->server[n] = 0;
    st->out->has_server = true;
    return 0;
}

static int on_record(parse_state *st, uint16_t type, bool critical, const uint8_t *b, size_t n)
{
    tb_nts_ke_response *out = st->out;
    switch (type) {
    case TB_NTS_KE_NEXT_PROTO:
        return on_proto(st, b, n);
    case TB_NTS_KE_AEAD:
        return on_aead(st, b, n);
    case TB_NTS_KE_ERROR:
        out->error = n == 2 ? tb_get_be16(b) : 0xffff;
        return fail(st, TB_ERR_VERIFY, "server sent an error record");
    case TB_NTS_KE_WARNING:
        return 0; /* RFC 8915 defines none: nothing to act on */
    case TB_NTS_KE_COOKIE:
        if (tb_nts_jar_put(&out->cookies, b, n) < 0)
            out->n_cookies_dropped++;
        return 0;
    case TB_NTS_KE_SERVER:
        return on_server(st, b, n);
    case TB_NTS_KE_PORT_REC:
        if (out->has_port || n != 2 || tb_get_be16(b) == 0)
            return fail(st, TB_ERR_MALFORMED, "port negotiation repeated or not one port");
        out->has_port = true;
        out->port = tb_get_be16(b);
        return 0;
    default:
        if (critical)
            return fail(st, TB_ERR_UNSUPPORTED, "unknown critical record");
        return 0;
    }
}

int tb_nts_ke_response_parse(const uint8_t *p, size_t len, tb_nts_ke_response *out,
                             const char **why)
{
    static const char *none;
    parse_state st = {.out = out, .why = why ? why : &none};
    memset(out, 0, sizeof(*out));
    out->error = -1;
    *st.why = "";
    if (len > TB_NTS_KE_RESPONSE_MAX)
        return fail(&st, TB_ERR_TOO_BIG, "response too long");
    size_t used = 0;
    for (unsigned i = 0;; i++) {
        if (len - used < 4)
            return fail(&st, TB_ERR_TRUNCATED, "no end of message yet");
        if (i >= TB_NTS_KE_RECORDS_MAX)
            return fail(&st, TB_ERR_TOO_BIG, "too many records");
        uint16_t word = tb_get_be16(p + used);
        size_t blen = tb_get_be16(p + used + 2);
        used += 4;
        if (len - used < blen)
            return fail(&st, TB_ERR_TRUNCATED, "record body not complete yet");
        const uint8_t *body = p + used;
        used += blen;
        uint16_t type = word & 0x7fff;
        if (type == TB_NTS_KE_END) {
            if (blen != 0 || used != len)
                return fail(&st, TB_ERR_MALFORMED, "data after the end of message");
            break;
        }
        int err = on_record(&st, type, (word & CRITICAL) != 0, body, blen);
        if (err < 0)
            return err;
    }
    if (!st.seen_proto)
        return fail(&st, TB_ERR_MALFORMED, "no next protocol record");
    if (!st.seen_aead)
        return fail(&st, TB_ERR_MALFORMED, "no AEAD record");
    if (tb_nts_jar_count(&out->cookies) == 0)
        return fail(&st, TB_ERR_MALFORMED, "no usable cookie");
    return 0;
}
