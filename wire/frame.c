#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "wire/wire.h"

int tb_wire_frame_need(const uint8_t *p, size_t len, const tb_wire_limits *lim, size_t *need)
{
    size_t max = lim ? lim->max_msg_size : tb_wire_limits_default().max_msg_size;
    if (len < TB_WIRE_FRAME_HDR) {
        *need = TB_WIRE_FRAME_HDR;
        return TB_ERR_AGAIN;
    }
    uint32_t n = tb_get_be32(p);
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (n == 0)
        return TB_ERR_MALFORMED;
    *need = (size_t)n + TB_WIRE_FRAME_HDR;
    return 0;
}

void tb_wire_reader_init(tb_wire_reader *r, const tb_wire_limits *lim)
{
    memset(r, 0, sizeof(*r));
    r->max_msg_size = lim ? lim->max_msg_size : tb_wire_limits_default().max_msg_size;
}

/* Takes header bytes from (*p, *len); once all four are there, checks the length and allocates
 * the body. */
static int take_header(tb_wire_reader *r, const uint8_t **p, size_t *len)
{
    size_t k = TB_WIRE_FRAME_HDR - r->hdr_got;
    if (k > *len)
        k = *len;
    if (k > 0)
        memcpy(r->hdr + r->hdr_got, *p, k);
    r->hdr_got += k;
    *p += k;
    *len -= k;
    if (r->hdr_got < TB_WIRE_FRAME_HDR)
        return TB_ERR_AGAIN;
    tb_wire_limits lim = {.max_msg_size = r->max_msg_size};
    size_t need;
    int rc = tb_wire_frame_need(r->hdr, TB_WIRE_FRAME_HDR, &lim, &need);
    if (rc)
        return rc;
    r->body_len = need - TB_WIRE_FRAME_HDR;
    r->body = malloc(r->body_len);
    return r->body ? 0 : TB_ERR_NOMEM;
}

int tb_wire_reader_feed(tb_wire_reader *r, const uint8_t *p, size_t len)
{
    if (r->err)
        return r->err;
    if (!p && len > 0)
        return TB_ERR_INVAL;
    int rc = 0;
    if (!r->body)
        rc = take_header(r, &p, &len);
    if (!rc) {
        size_t k = r->body_len - r->body_got;
        if (len > k) {
            rc = TB_ERR_WIRE_TRAILING;
        } else {
            if (len > 0)
                memcpy(r->body + r->body_got, p, len);
            r->body_got += len;
            rc = r->body_got == r->body_len ? 0 : TB_ERR_AGAIN;
        }
    }
    if (rc && rc != TB_ERR_AGAIN)
        r->err = rc;
    return rc;
}

int tb_wire_reader_finish(tb_wire_reader *r, const uint8_t **msg, size_t *msg_len)
{
    if (r->err)
        return r->err;
    if (!r->body || r->body_got < r->body_len)
        return TB_ERR_TRUNCATED;
    *msg = r->body;
    *msg_len = r->body_len;
    return 0;
}

void tb_wire_reader_clear(tb_wire_reader *r)
{
    free(r->body);
    r->body = NULL;
    r->hdr_got = r->body_len = r->body_got = 0;
    r->err = 0;
}
