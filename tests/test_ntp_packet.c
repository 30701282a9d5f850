#include "ntp/packet.h"

#include "common/bytes.h"
#include "tb_test.h"

#define S INT64_C(1000000000)

static void fill_reply(uint8_t *b, int version)
{
    tb_ntp_packet p = {.leap = 0,
                       .version = (uint8_t)version,
                       .mode = 4,
                       .stratum = 2,
                       .poll = 6,
                       .precision = -20,
                       .root_delay = 0x00010000,
                       .root_dispersion = 0x00008000,
                       .refid = 0x7f000001,
                       .reference_ts = 1,
                       .origin_ts = 2,
                       .receive_ts = 3,
                       .transmit_ts = 4};
    tb_ntp_packet_write(&p, b);
}

static void test_roundtrip(void)
{
    uint8_t b[TB_NTP_HEADER_LEN];
    fill_reply(b, 4);
    TB_CHECK_EQ(b[0], 0x24);
    tb_ntp_packet p;
    TB_REQUIRE(tb_ntp_packet_parse(b, sizeof(b), &p) == 0);
    TB_CHECK_EQ(p.version, 4);
    TB_CHECK_EQ(p.mode, 4);
    TB_CHECK_EQ(p.stratum, 2);
    TB_CHECK_EQ(p.poll, 6);
    TB_CHECK_EQ(p.precision, -20);
    TB_CHECK_EQ(p.root_delay, 0x00010000);
    TB_CHECK_EQ(p.refid, 0x7f000001);
    TB_CHECK_EQ(p.origin_ts, 2);
    TB_CHECK_EQ(p.receive_ts, 3);
    TB_CHECK_EQ(p.transmit_ts, 4);
    TB_CHECK_EQ(p.n_ext_fields, 0);
    TB_CHECK_EQ(p.has_mac, 0);
    TB_CHECK_EQ(tb_ntp_short_to_ns(p.root_delay), S);
    TB_CHECK_EQ(tb_ntp_short_to_ns(p.root_dispersion), S / 2);
}

static void test_versions_and_length(void)
{
    uint8_t b[TB_NTP_HEADER_LEN + 64] = {0};
    tb_ntp_packet p;
    fill_reply(b, 3);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN, &p), 0);
    TB_CHECK_EQ(p.version, 3);
    /* A v3 packet with trailing bytes: a MAC, ignored. */
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 20, &p), 0);
    TB_CHECK_EQ(p.has_mac, 1);
    fill_reply(b, 2);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN, &p), TB_ERR_UNSUPPORTED);
    fill_reply(b, 5);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN, &p), TB_ERR_UNSUPPORTED);
    fill_reply(b, 4);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN - 1, &p), TB_ERR_TRUNCATED);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, 0, &p), TB_ERR_TRUNCATED);
}

static void test_extension_fields_and_mac(void)
{
    uint8_t b[TB_NTP_HEADER_LEN + 200] = {0};
    tb_ntp_packet p;
    fill_reply(b, 4);
    /* MAC only: key id + 16-byte digest, or + 20-byte digest. */
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 20, &p), 0);
    TB_CHECK_EQ(p.has_mac, 1);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 24, &p), 0);
    TB_CHECK_EQ(p.has_mac, 1);
    /* Two extension fields (32 and 16 bytes) and a MAC. */
    uint8_t *e = b + TB_NTP_HEADER_LEN;
    tb_put_be16(e, 0x0104);
    tb_put_be16(e + 2, 32);
    tb_put_be16(e + 32, 0x0204);
    tb_put_be16(e + 34, 16);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 48 + 24, &p), 0);
    TB_CHECK_EQ(p.n_ext_fields, 2);
    TB_CHECK_EQ(p.has_mac, 1);
    /* The same without the MAC. */
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 48, &p), 0);
    TB_CHECK_EQ(p.n_ext_fields, 2);
    TB_CHECK_EQ(p.has_mac, 0);
    /* A field claiming more than is there. */
    tb_put_be16(e + 2, 200);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 48, &p), TB_ERR_TRUNCATED);
    /* Length not a multiple of 4, or below 16. */
    tb_put_be16(e + 2, 30);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 48, &p), TB_ERR_MALFORMED);
    tb_put_be16(e + 2, 8);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 48, &p), TB_ERR_MALFORMED);
    /* Odd trailing bytes. */
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 3, &p), TB_ERR_MALFORMED);
    /* More fields than the cap. */
    for (int i = 0; i < 10; i++)
        tb_put_be16(e + 16 * i + 2, 16);
    TB_CHECK_EQ(tb_ntp_packet_parse(b, TB_NTP_HEADER_LEN + 160, &p), TB_ERR_TOO_BIG);
}

static void test_timestamp_conversion(void)
{
    int64_t now = INT64_C(1795000000) * S + 123456789; /* 2026-11 */
    uint64_t ts = tb_ntp_ts_from_unix_ns(now);
    TB_CHECK_EQ(ts >> 32, (uint64_t)(1795000000 + TB_NTP_UNIX_OFFSET));
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(ts, now), now);
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(tb_ntp_ts_from_unix_ns(0), now), 0);
    /* Nanosecond round trip over a range of fractions. */
    for (int64_t ns = 0; ns < S; ns += 999983)
        TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(tb_ntp_ts_from_unix_ns(now + ns), now), now + ns);
    /* Half a second is 0x80000000. */
    TB_CHECK_EQ(tb_ntp_ts_from_unix_ns(S / 2) & 0xffffffffu, 0x80000000u);
}

static void test_era_2036(void)
{
    /* Era 1 starts at 2036-02-07T06:28:16Z = Unix 2085978496. */
    const int64_t era1 = INT64_C(2085978496);
    uint64_t just_after = (uint64_t)16 << 32; /* 16 s into era 1 */
    uint64_t just_before = (uint64_t)0xfffffff0u << 32;
    /* Seen from just before the wrap and just after it, both resolve to the nearby time. */
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(just_after, (era1 - 5) * S), (era1 + 16) * S);
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(just_before, (era1 + 5) * S), (era1 - 16) * S);
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(just_before, INT64_C(1795000000) * S), (era1 - 16) * S);
    TB_CHECK_EQ(tb_ntp_ts_from_unix_ns((era1 + 16) * S), just_after);
    /* Far in era 1 (2100). */
    int64_t y2100 = INT64_C(4102444800) * S;
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(tb_ntp_ts_from_unix_ns(y2100), y2100 - 1000 * S), y2100);
    /* Before 1970 still works with a matching pivot. */
    TB_CHECK_EQ(tb_ntp_ts_to_unix_ns(tb_ntp_ts_from_unix_ns(-S), 0), -S);
}

static void test_log2_and_refid(void)
{
    TB_CHECK_EQ(tb_ntp_log2_to_ns(0), S);
    TB_CHECK_EQ(tb_ntp_log2_to_ns(6), 64 * S);
    TB_CHECK_EQ(tb_ntp_log2_to_ns(-1), S / 2);
    TB_CHECK_EQ(tb_ntp_log2_to_ns(-20), 953);
    char buf[16];
    tb_ntp_refid_format(0, 0x52415445, buf, sizeof(buf));
    TB_CHECK_STR(buf, "RATE");
    tb_ntp_refid_format(1, 0x47505300, buf, sizeof(buf));
    TB_CHECK_STR(buf, "GPS.");
    tb_ntp_refid_format(1, 0x7f7f0101, buf, sizeof(buf)); /* chrony's local reference */
    TB_CHECK_STR(buf, "127.127.1.1");
    tb_ntp_refid_format(2, 0xc0a80001, buf, sizeof(buf));
    TB_CHECK_STR(buf, "192.168.0.1");
}

static void test_leap_names(void)
{
    TB_CHECK_STR(tb_ntp_leap_name(0), "none");
    TB_CHECK_STR(tb_ntp_leap_name(1), "insert");
    TB_CHECK_STR(tb_ntp_leap_name(2), "delete");
    TB_CHECK_STR(tb_ntp_leap_name(3), "unsynchronised");
    TB_CHECK_STR(tb_ntp_leap_name(4), "unknown");
}

int main(void)
{
    TB_RUN(test_leap_names);
    TB_RUN(test_roundtrip);
    TB_RUN(test_versions_and_length);
    TB_RUN(test_extension_fields_and_mac);
    TB_RUN(test_timestamp_conversion);
    TB_RUN(test_era_2036);
    TB_RUN(test_log2_and_refid);
    return TB_DONE();
}
