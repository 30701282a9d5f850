/* libFuzzer target for the receive path of message streams, exactly as quic/streams.c runs it:
 * tb_quic_frame_rx_feed on pieces of arbitrary sizes (empty ones too), FIN with the last piece
 * or on an empty piece after it, as ngtcp2's recv_stream_data hands them over.
 *
 * Input: [flags][nsizes][nsizes piece sizes][payload]. flags bit 0: the payload is a message
 * the framer (tb_quic_frame_header) writes, else raw stream bytes from a hostile peer; bit 1:
 * FIN on an empty piece; bits 2..7: max message size (0: 65536, else n*5).
 *
 * Checked against a whole-stream oracle: the error (or none) is the one the stream deserves,
 * it comes once, an oversized length is refused at its 4th byte with nothing buffered, the
 * buffer never exceeds the announced length (what streams.c counts against a connection's
 * budget: nothing once the message is out or refused), and a message handed out (at most one) is
 * the one the framer wrote, byte for byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "quic/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_MAX 65536

static uint8_t stream[TB_QUIC_FRAME_HDR + 70000];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_quic_frame: %s\n", #cond);                                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What the whole stream deserves; *trailing when the fault is bytes after the message. */
static int oracle(const uint8_t *s, size_t len, size_t max, int *trailing)
{
    *trailing = 0;
    if (len < TB_QUIC_FRAME_HDR)
        return TB_ERR_TRUNCATED;
    size_t n = tb_get_be32(s);
    if (n > max)
        return TB_ERR_TOO_BIG;
    if (n == 0)
        return TB_ERR_MALFORMED;
    if (len < TB_QUIC_FRAME_HDR + n)
        return TB_ERR_TRUNCATED;
    if (len > TB_QUIC_FRAME_HDR + n) {
        *trailing = 1;
        return TB_ERR_MALFORMED;
    }
    return TB_OK;
}

static void run(const uint8_t *s, size_t len, size_t max, const uint8_t *sizes, size_t nsizes,
                int fin_apart)
{
    int trailing;
    int want = oracle(s, len, max, &trailing);
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, max);
    int err = TB_OK, handed = 0;
    size_t at = 0, i = 0;
    for (int last = 0; !last; i++) {
        size_t k = nsizes ? sizes[i % nsizes] : len;
        /* Every size zero still ends: after one round the rest goes as one piece. */
        if (i >= nsizes && k == 0)
            k = len - at;
        if (k > len - at)
            k = len - at;
        last = at + k == len;
        uint8_t *msg;
        size_t mlen;
        int rv = tb_quic_frame_rx_feed(&r, k ? s + at : NULL, k, last && !fin_apart, &msg, &mlen);
        if (rv < 0) {
            CHECK(err == TB_OK); /* once */
            err = rv;
            if (rv == TB_ERR_TOO_BIG) /* at the piece carrying the 4th byte */
                CHECK(at < TB_QUIC_FRAME_HDR && at + k >= TB_QUIC_FRAME_HDR && r.buf == NULL);
        }
        if (err != TB_OK && rv == TB_OK)
            CHECK(msg == NULL);
        CHECK(r.cap <= r.want);
        /* What streams.c counts against the connection's budget: at most max, and nothing
         * once the message is handed out or refused. */
        CHECK(tb_quic_frame_rx_buffered(&r) <= max);
        if (err != TB_OK || handed || msg)
            CHECK(!tb_quic_frame_rx_pending(&r) && tb_quic_frame_rx_buffered(&r) == 0);
        if (msg) {
            CHECK(rv == TB_OK && handed == 0);
            handed = 1;
            CHECK(mlen == tb_get_be32(s) && TB_QUIC_FRAME_HDR + mlen <= len);
            CHECK(memcmp(msg, s + TB_QUIC_FRAME_HDR, mlen) == 0);
            free(msg);
        }
        at += k;
    }
    if (fin_apart) {
        uint8_t *msg;
        size_t mlen;
        int rv = tb_quic_frame_rx_feed(&r, NULL, 0, 1, &msg, &mlen);
        CHECK(msg == NULL);
        if (rv < 0) {
            CHECK(err == TB_OK);
            err = rv;
        }
    }
    tb_quic_frame_rx_clear(&r);
    CHECK(err == want);
    if (want == TB_OK)
        CHECK(handed);
    else if (!trailing)
        CHECK(!handed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int framed = data[0] & 1, fin_apart = (data[0] >> 1) & 1;
    size_t max = (data[0] >> 2) ? (size_t)(data[0] >> 2) * 5 : DEFAULT_MAX;
    size_t nsizes = data[1];
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *payload = sizes + nsizes;
    size_t plen = size - 2 - nsizes;
    if (plen > sizeof(stream) - TB_QUIC_FRAME_HDR)
        return 0;
    size_t len = plen;
    if (framed) {
        /* What the framer writes; what it refuses (empty, over max) is sent with the length a
         * lying peer would write, and must be refused by the receiver too. */
        if (tb_quic_frame_header(stream, plen, max) != TB_OK)
            tb_put_be32(stream, (uint32_t)plen);
        memcpy(stream + TB_QUIC_FRAME_HDR, payload, plen);
        len = TB_QUIC_FRAME_HDR + plen;
        int trailing;
        int want = oracle(stream, len, max, &trailing);
        CHECK(want == (plen == 0 ? TB_ERR_MALFORMED : plen > max ? TB_ERR_TOO_BIG : TB_OK));
    } else {
        memcpy(stream, payload, plen);
    }
    run(stream, len, max, sizes, nsizes, fin_apart);
    return 0;
}
