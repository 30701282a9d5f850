/* Stream framing, both directions (see frame.h). */
#include "quic/frame.h"

#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

/* The first buffer of a message; later ones double, bounded by the announced length. */
#define RX_FIRST_CAP 4096

int tb_quic_frame_header(uint8_t out[TB_QUIC_FRAME_HDR], size_t len, size_t max)
{
    if (len == 0)
        return TB_ERR_INVAL;
    if (len > max || len > UINT32_MAX)
        return TB_ERR_TOO_BIG;
    tb_put_be32(out, (uint32_t)len);
    return TB_OK;
}

void tb_quic_frame_rx_init(tb_quic_frame_rx *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max == 0 ? 1 : max > UINT32_MAX ? UINT32_MAX : max;
}

static int fail(tb_quic_frame_rx *r, int err, const char *why)
{
    r->failed = 1;
    r->why = why;
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    return err;
}

/* Header bytes from (*p, *len); once all four are there, the length is judged. */
static int take_header(tb_quic_frame_rx *r, const uint8_t **p, size_t *len)
{
    size_t n = TB_QUIC_FRAME_HDR - r->hdrlen;
    if (n > *len)
        n = *len;
    memcpy(r->hdr + r->hdrlen, *p, n);
    r->hdrlen += n;
    *p += n;
    *len -= n;
    if (r->hdrlen < TB_QUIC_FRAME_HDR)
        return TB_OK;
    r->want = tb_get_be32(r->hdr);
    if (r->want > r->max)
        return fail(r, TB_ERR_TOO_BIG, "message over max_message_size");
    if (r->want == 0)
        return fail(r, TB_ERR_MALFORMED, "empty message");
    return TB_OK;
}

/* Room for n more body bytes: grows with what arrived, never past the announced length. */
static int reserve(tb_quic_frame_rx *r, size_t n)
{
    if (r->got + n <= r->cap)
        return TB_OK;
    size_t cap = r->cap ? r->cap * 2 : RX_FIRST_CAP;
    while (cap < r->got + n)
        cap *= 2;
    if (cap > r->want)
        cap = r->want;
    uint8_t *nb = realloc(r->buf, cap);
    if (!nb)
        return fail(r, TB_ERR_NOMEM, "out of memory");
    r->buf = nb;
    r->cap = cap;
    return TB_OK;
}

static int take(tb_quic_frame_rx *r, const uint8_t *p, size_t len)
{
    while (len > 0) {
        if (r->hdrlen < TB_QUIC_FRAME_HDR) {
            int rc = take_header(r, &p, &len);
            if (rc)
                return rc;
            continue;
        }
        if (r->done || r->got == r->want)
            return fail(r, TB_ERR_MALFORMED, "bytes after the announced length");
        size_t n = r->want - r->got < len ? r->want - r->got : len;
        int rc = reserve(r, n);
        if (rc)
            return rc;
        memcpy(r->buf + r->got, p, n);
        r->got += n;
        p += n;
        len -= n;
    }
    return TB_OK;
}

int tb_quic_frame_rx_feed(tb_quic_frame_rx *r, const uint8_t *p, size_t len, int fin, uint8_t **msg,
                          size_t *msg_len)
{
    *msg = NULL;
    *msg_len = 0;
    if (r->failed)
        return TB_OK;
    if (!p && len > 0)
        return fail(r, TB_ERR_INVAL, "no data");
    int rc = take(r, p, len);
    if (rc)
        return rc;
    if (!r->done && r->hdrlen == TB_QUIC_FRAME_HDR && r->got == r->want) {
        r->done = 1;
        *msg = r->buf;
        *msg_len = r->want;
        r->buf = NULL;
        r->cap = 0;
    }
    if (fin && !r->done)
        return fail(r, TB_ERR_TRUNCATED, "stream ended inside a message");
    return TB_OK;
}

const char *tb_quic_frame_rx_why(const tb_quic_frame_rx *r)
{
    return r->why ? r->why : "no error";
}

void tb_quic_frame_rx_clear(tb_quic_frame_rx *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

size_t tb_quic_frame_rx_buffered(const tb_quic_frame_rx *r)
{
    return r->cap;
}

int tb_quic_frame_rx_pending(const tb_quic_frame_rx *r)
{
    return !r->done && !r->failed;
}

void tb_quic_frame_rx_abort(tb_quic_frame_rx *r, const char *why)
{
    if (tb_quic_frame_rx_pending(r))
        (void)fail(r, TB_ERR_TIMEOUT, why);
}
