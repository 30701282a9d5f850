/* quic/frame: the stream frame of adr/0003, written and reassembled from pieces the way ngtcp2
 * hands them over (any sizes, empty ones, FIN on the last or on an empty piece). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quic/frame.h"
#include "tests/tb_test.h"

#define MAX 65536

/* A frame of n bytes (header + body i*7+1), in buf; returns its length. */
static size_t make_frame(uint8_t *buf, size_t n)
{
    if (tb_quic_frame_header(buf, n, MAX) != TB_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[TB_QUIC_FRAME_HDR + i] = (uint8_t)(i * 7 + 1);
    return TB_QUIC_FRAME_HDR + n;
}

static void test_header(void)
{
    uint8_t h[TB_QUIC_FRAME_HDR];
    TB_CHECK_EQ(tb_quic_frame_header(h, 0, MAX), TB_ERR_INVAL);
    TB_CHECK_EQ(tb_quic_frame_header(h, MAX + 1, MAX), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_quic_frame_header(h, (size_t)UINT32_MAX + 1, SIZE_MAX), TB_ERR_TOO_BIG);
    TB_CHECK_EQ(tb_quic_frame_header(h, MAX, MAX), TB_OK);
    static const uint8_t want[] = {0, 1, 0, 0};
    TB_CHECK_MEM(h, want, 4);
    TB_CHECK_EQ(tb_quic_frame_header(h, 0x01020304, UINT32_MAX), TB_OK);
    static const uint8_t want2[] = {1, 2, 3, 4};
    TB_CHECK_MEM(h, want2, 4);
}

/* Feeds frame in pieces of step bytes, FIN with the last piece or (fin_apart) on an empty one
 * after it. */
static void feed_pieces(const uint8_t *frame, size_t len, size_t step, int fin_apart)
{
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, MAX);
    uint8_t *msg = NULL, *got = NULL;
    size_t mlen = 0, gotlen = 0;
    int handed = 0;
    for (size_t at = 0; at < len; at += step) {
        size_t k = len - at < step ? len - at : step;
        int fin = !fin_apart && at + k == len;
        TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame + at, k, fin, &msg, &mlen), TB_OK);
        if (msg) {
            handed++;
            TB_CHECK_EQ(at + k, len); /* not before its last byte */
            got = msg;
            gotlen = mlen;
        }
    }
    if (fin_apart) {
        TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, NULL, 0, 1, &msg, &mlen), TB_OK);
        TB_CHECK(msg == NULL);
    }
    TB_CHECK_EQ(handed, 1);
    TB_REQUIRE(got != NULL);
    TB_CHECK_EQ(gotlen, len - TB_QUIC_FRAME_HDR);
    TB_CHECK_MEM(got, frame + TB_QUIC_FRAME_HDR, gotlen);
    free(got);
    tb_quic_frame_rx_clear(&r);
}

static void test_pieces(void)
{
    static uint8_t frame[TB_QUIC_FRAME_HDR + 9000];
    size_t sizes[] = {1, 3, 4096, 4097, 9000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = make_frame(frame, sizes[i]);
        TB_REQUIRE(len > 0);
        size_t steps[] = {1, 3, 4, 5, 1000, len};
        for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
            feed_pieces(frame, len, steps[j], 0);
            feed_pieces(frame, len, steps[j], 1);
        }
    }
}

/* An empty piece changes nothing. */
static void test_empty_pieces(void)
{
    uint8_t frame[16], *msg;
    size_t len = make_frame(frame, 5), mlen;
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, NULL, 0, 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame, 2, 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame + 2, 0, 0, &msg, &mlen), TB_OK);
    TB_CHECK(msg == NULL);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame + 2, len - 2, 1, &msg, &mlen), TB_OK);
    TB_REQUIRE(msg != NULL);
    TB_CHECK_EQ(mlen, 5);
    free(msg);
    tb_quic_frame_rx_clear(&r);
}

/* An oversized length is refused at its fourth byte, before anything is buffered; the error
 * comes once and the rest of the stream is ignored. */
static void test_too_big(void)
{
    static const uint8_t big[] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
    tb_quic_frame_rx r;
    uint8_t *msg;
    size_t mlen;
    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, big, 3, 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, big + 3, 1, 0, &msg, &mlen), TB_ERR_TOO_BIG);
    TB_CHECK(r.buf == NULL);
    TB_CHECK_STR(tb_quic_frame_rx_why(&r), "message over max_message_size");
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, big + 4, 3, 1, &msg, &mlen), TB_OK);
    TB_CHECK(msg == NULL);
    tb_quic_frame_rx_clear(&r);

    /* the configured limit, exactly */
    static const uint8_t l101[] = {0, 0, 0, 101};
    tb_quic_frame_rx_init(&r, 100);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, l101, 4, 0, &msg, &mlen), TB_ERR_TOO_BIG);
    tb_quic_frame_rx_clear(&r);
    static const uint8_t l100[] = {0, 0, 0, 100};
    tb_quic_frame_rx_init(&r, 100);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, l100, 4, 0, &msg, &mlen), TB_OK);
    tb_quic_frame_rx_clear(&r);
}

static void test_empty_message(void)
{
    static const uint8_t zero[] = {0, 0, 0, 0};
    tb_quic_frame_rx r;
    uint8_t *msg;
    size_t mlen;
    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, zero, 4, 1, &msg, &mlen), TB_ERR_MALFORMED);
    TB_CHECK_STR(tb_quic_frame_rx_why(&r), "empty message");
    tb_quic_frame_rx_clear(&r);
}

/* One message per stream: a byte after the frame in the same piece refuses the message; in a
 * later piece the message was already handed out, and the stream is refused then. */
static void test_trailing(void)
{
    uint8_t frame[32], *msg;
    size_t len = make_frame(frame, 10), mlen;
    frame[len] = 0;
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame, len + 1, 1, &msg, &mlen), TB_ERR_MALFORMED);
    TB_CHECK(msg == NULL);
    TB_CHECK_STR(tb_quic_frame_rx_why(&r), "bytes after the announced length");
    tb_quic_frame_rx_clear(&r);

    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame, len, 0, &msg, &mlen), TB_OK);
    TB_REQUIRE(msg != NULL);
    free(msg);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame + len, 1, 1, &msg, &mlen), TB_ERR_MALFORMED);
    TB_CHECK(msg == NULL);
    tb_quic_frame_rx_clear(&r);
}

/* FIN inside the header or the body. */
static void test_truncated(void)
{
    uint8_t frame[32], *msg;
    size_t len = make_frame(frame, 10), mlen;
    size_t cuts[] = {0, 2, 4, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        tb_quic_frame_rx r;
        tb_quic_frame_rx_init(&r, MAX);
        TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, frame, cuts[i], 1, &msg, &mlen), TB_ERR_TRUNCATED);
        TB_CHECK(msg == NULL);
        TB_CHECK_STR(tb_quic_frame_rx_why(&r), "stream ended inside a message");
        tb_quic_frame_rx_clear(&r);
    }
}

/* The buffer follows the bytes that arrive, not the length a peer announces. */
static void test_growth(void)
{
    static const uint8_t hdr[] = {0, 0, 0xea, 0x60}; /* 60000 */
    uint8_t body[5000] = {0}, *msg;
    size_t mlen;
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, MAX);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, hdr, 4, 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(r.cap, 0);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, body, 10, 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(r.cap, 4096);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, body, sizeof(body), 0, &msg, &mlen), TB_OK);
    TB_CHECK_EQ(r.cap, 8192);
    tb_quic_frame_rx_clear(&r);
    TB_CHECK(r.buf == NULL);
}

static void test_bad_args(void)
{
    tb_quic_frame_rx r;
    uint8_t *msg;
    size_t mlen;
    tb_quic_frame_rx_init(&r, 0); /* clamped to 1 */
    TB_CHECK_EQ(r.max, 1);
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, NULL, 1, 0, &msg, &mlen), TB_ERR_INVAL);
    tb_quic_frame_rx_clear(&r);
    tb_quic_frame_rx_init(&r, SIZE_MAX);
    TB_CHECK_EQ(r.max, UINT32_MAX);
}

/* What streams.c accounts and the deadline it enforces: the bytes held, and giving up. */
static void test_buffered_and_abort(void)
{
    tb_quic_frame_rx r;
    tb_quic_frame_rx_init(&r, 100000);
    uint8_t part[4 + 5000] = {0, 1, 0, 0}; /* 65,536 announced, 5,000 sent */
    uint8_t *msg;
    size_t len;
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, part, sizeof(part), 0, &msg, &len), TB_OK);
    TB_CHECK(msg == NULL);
    TB_CHECK(tb_quic_frame_rx_pending(&r));
    TB_CHECK(tb_quic_frame_rx_buffered(&r) >= 5000);
    TB_CHECK(tb_quic_frame_rx_buffered(&r) <= 65536);
    tb_quic_frame_rx_abort(&r, "deadline");
    TB_CHECK(!tb_quic_frame_rx_pending(&r));
    TB_CHECK_EQ(tb_quic_frame_rx_buffered(&r), 0);
    TB_CHECK_STR(tb_quic_frame_rx_why(&r), "deadline");
    /* The rest of the stream is ignored, not an error again. */
    TB_CHECK_EQ(tb_quic_frame_rx_feed(&r, part + 4, 100, 1, &msg, &len), TB_OK);
    TB_CHECK(msg == NULL);
    TB_CHECK_EQ(tb_quic_frame_rx_buffered(&r), 0);
    tb_quic_frame_rx_clear(&r);
}

int main(void)
{
    TB_RUN(test_header);
    TB_RUN(test_pieces);
    TB_RUN(test_empty_pieces);
    TB_RUN(test_too_big);
    TB_RUN(test_empty_message);
    TB_RUN(test_trailing);
    TB_RUN(test_truncated);
    TB_RUN(test_growth);
    TB_RUN(test_bad_args);
    TB_RUN(test_buffered_and_abort);
    return TB_DONE();
}
