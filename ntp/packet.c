#include "ntp/packet.h"

#include <stdio.h>

#include "common/bytes.h"

/* After the header, RFC 7822: extension fields (type 16 bits, length 16 bits covering the
 * whole field, at least 16 bytes, a multiple of 4), then optionally a MAC of a 4-byte key id
 * and a 16- or 20-byte digest. A remainder of exactly a MAC's size is a MAC. */
static int walk_trailer(const uint8_t *p, size_t len, tb_ntp_packet *out)
{
    size_t used = 0;
    while (len - used > 24) {
        if (out->n_ext_fields >= TB_NTP_MAX_EXT_FIELDS)
            return TB_ERR_TOO_BIG;
        size_t flen = tb_get_be16(p + used + 2);
        if (flen < 16 || flen % 4 != 0)
            return TB_ERR_MALFORMED;
        if (len - used < flen)
            return TB_ERR_TRUNCATED;
        used += flen;
        out->n_ext_fields++;
    }
    size_t rest = len - used;
    if (rest == 20 || rest == 24) {
        out->has_mac = 1;
        return 0;
    }
    if (rest == 0)
        return 0;
    /* 16 bytes left: a last extension field of minimum size. */
    if (rest == 16 && tb_get_be16(p + used + 2) == 16 &&
        out->n_ext_fields < TB_NTP_MAX_EXT_FIELDS) {
        out->n_ext_fields++;
        return 0;
    }
    return TB_ERR_MALFORMED;
}

int tb_ntp_packet_parse(const uint8_t *p, size_t len, tb_ntp_packet *out)
{
    if (!p || !out)
        return TB_ERR_INVAL;
    if (len < TB_NTP_HEADER_LEN)
        return TB_ERR_TRUNCATED;
    *out = (tb_ntp_packet){0};
    out->leap = p[0] >> 6;
    out->version = (p[0] >> 3) & 7;
    out->mode = p[0] & 7;
    if (out->version != 3 && out->version != 4)
        return TB_ERR_UNSUPPORTED;
    out->stratum = p[1];
    out->poll = (int8_t)p[2];
    out->precision = (int8_t)p[3];
    out->root_delay = tb_get_be32(p + 4);
    out->root_dispersion = tb_get_be32(p + 8);
    out->refid = tb_get_be32(p + 12);
    out->reference_ts = tb_get_be64(p + 16);
    out->origin_ts = tb_get_be64(p + 24);
    out->receive_ts = tb_get_be64(p + 32);
    out->transmit_ts = tb_get_be64(p + 40);
    /* NTPv3 had no extension fields: anything after its header is a MAC we ignore. */
    if (out->version == 3) {
        out->has_mac = len > TB_NTP_HEADER_LEN;
        return 0;
    }
    return walk_trailer(p + TB_NTP_HEADER_LEN, len - TB_NTP_HEADER_LEN, out);
}

void tb_ntp_packet_write(const tb_ntp_packet *pkt, uint8_t out[TB_NTP_HEADER_LEN])
{
    out[0] = (uint8_t)((pkt->leap & 3) << 6 | (pkt->version & 7) << 3 | (pkt->mode & 7));
    out[1] = pkt->stratum;
    out[2] = (uint8_t)pkt->poll;
    out[3] = (uint8_t)pkt->precision;
    tb_put_be32(out + 4, pkt->root_delay);
    tb_put_be32(out + 8, pkt->root_dispersion);
    tb_put_be32(out + 12, pkt->refid);
    tb_put_be64(out + 16, pkt->reference_ts);
    tb_put_be64(out + 24, pkt->origin_ts);
    tb_put_be64(out + 32, pkt->receive_ts);
    tb_put_be64(out + 40, pkt->transmit_ts);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

uint64_t tb_ntp_ts_from_unix_ns(int64_t unix_ns)
{
    const int64_t ns_per_s = 1000000000;
    int64_t sec = floor_div(unix_ns, ns_per_s);
    int64_t rem = unix_ns - sec * ns_per_s; /* 0 .. 1e9-1 */
    uint64_t ntp_sec = (uint64_t)(sec + TB_NTP_UNIX_OFFSET) & 0xffffffffu;
    /* Round to nearest so that ns -> ts -> ns gives back the same nanosecond. */
    uint64_t frac = (((uint64_t)rem << 32) + (uint64_t)ns_per_s / 2) / (uint64_t)ns_per_s;
    if (frac > 0xffffffffu) {
        frac = 0;
        ntp_sec = (ntp_sec + 1) & 0xffffffffu;
    }
    return ntp_sec << 32 | frac;
}

int64_t tb_ntp_ts_to_unix_ns(uint64_t ts, int64_t pivot_unix_ns)
{
    const int64_t era = INT64_C(1) << 32;
    int64_t pivot_ntp = floor_div(pivot_unix_ns, 1000000000) + TB_NTP_UNIX_OFFSET;
    int64_t sec = (pivot_ntp & ~(era - 1)) + (int64_t)(ts >> 32);
    if (sec - pivot_ntp > era / 2)
        sec -= era;
    else if (pivot_ntp - sec > era / 2)
        sec += era;
    uint64_t frac_ns = ((ts & 0xffffffffu) * 1000000000u + (UINT64_C(1) << 31)) >> 32;
    return (sec - TB_NTP_UNIX_OFFSET) * 1000000000 + (int64_t)frac_ns;
}

int64_t tb_ntp_short_to_ns(uint32_t v)
{
    return (int64_t)(((uint64_t)v * 1000000000u + (1u << 15)) >> 16);
}

int64_t tb_ntp_log2_to_ns(int log2)
{
    if (log2 >= 33)
        return INT64_MAX;
    if (log2 >= 0)
        return (int64_t)1000000000 << log2;
    if (log2 <= -30)
        return 0;
    return (int64_t)1000000000 >> -log2;
}

void tb_ntp_refid_format(uint8_t stratum, uint32_t refid, char *buf, size_t buflen)
{
    char s[5];
    int printable = 1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)(refid >> (24 - 8 * i));
        /* Kiss codes and clock names are padded with NULs on the right. */
        printable = printable && ((c >= 0x20 && c < 0x7f) || (c == 0 && i > 0));
        s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
    }
    s[4] = 0;
    if (stratum == 0 || (stratum == 1 && printable)) {
        snprintf(buf, buflen, "%s", s);
        return;
    }
    snprintf(buf, buflen, "%u.%u.%u.%u", refid >> 24, (refid >> 16) & 255, (refid >> 8) & 255,
             refid & 255);
}

const char *tb_ntp_leap_name(unsigned leap)
{
    static const char *const names[] = {"none", "insert", "delete", "unsynchronised"};
    return leap < 4 ? names[leap] : "unknown";
}
