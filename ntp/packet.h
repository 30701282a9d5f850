/* NTP packet codec (RFC 5905 header, 48 bytes) and timestamp conversion. Owns the wire format
 * only: no I/O, no clock. Replies of version 3 and 4 are accepted; extension fields and a MAC
 * after the header are walked with bounds and otherwise ignored. */
#ifndef TB_NTP_PACKET_H
#define TB_NTP_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_NTP_HEADER_LEN 48
#define TB_NTP_PORT 123
/* Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01). */
#define TB_NTP_UNIX_OFFSET 2208988800LL
/* At most this many extension fields are walked before a packet counts as malformed. */
#define TB_NTP_MAX_EXT_FIELDS 8

enum {
    TB_NTP_MODE_CLIENT = 3,
    TB_NTP_MODE_SERVER = 4,
    TB_NTP_LEAP_UNSYNC = 3,
    TB_NTP_MAX_STRATUM = 15,
};

typedef struct tb_ntp_packet {
    uint8_t leap;    /* 0..3; 3 = clock unsynchronised */
    uint8_t version; /* 3 or 4 after a successful parse */
    uint8_t mode;
    uint8_t stratum; /* 0 = Kiss-o'-Death, 16+ = unsynchronised */
    int8_t poll;
    int8_t precision;
    uint32_t root_delay;      /* NTP short format, 16.16 seconds */
    uint32_t root_dispersion; /* NTP short format, 16.16 seconds */
    uint32_t refid;           /* for stratum 0, the kiss code in ASCII */
    uint64_t reference_ts;    /* NTP timestamps, 32.32 seconds since the era start */
    uint64_t origin_ts;
    uint64_t receive_ts;
    uint64_t transmit_ts;
    uint8_t n_ext_fields; /* extension fields seen (ignored) */
    uint8_t has_mac;      /* a MAC follows the header or the extension fields (ignored) */
} tb_ntp_packet;

/* Parses a packet of len bytes. TB_ERR_TRUNCATED if shorter than the header,
 * TB_ERR_UNSUPPORTED for versions other than 3 and 4, TB_ERR_MALFORMED when what follows the
 * header is neither extension fields nor a MAC. */
TB_WUR int tb_ntp_packet_parse(const uint8_t *p, size_t len, tb_ntp_packet *out);

/* Writes the 48-byte header (no extension fields, no MAC). */
void tb_ntp_packet_write(const tb_ntp_packet *pkt, uint8_t out[TB_NTP_HEADER_LEN]);

/* The leap indicator as text: "none", "insert" (a leap second is added at the end of the
 * month), "delete", "unsynchronised"; "unknown" above 3. */
const char *tb_ntp_leap_name(unsigned leap);

/* Unix nanoseconds to an NTP timestamp (the era is dropped, as on the wire). */
uint64_t tb_ntp_ts_from_unix_ns(int64_t unix_ns);

/* NTP timestamp to Unix nanoseconds, choosing the era (136-year wrap, the first in 2036) that
 * puts the result within 68 years of pivot_unix_ns, usually the local clock's time. */
int64_t tb_ntp_ts_to_unix_ns(uint64_t ts, int64_t pivot_unix_ns);

/* NTP short format (16.16 seconds) to nanoseconds. */
int64_t tb_ntp_short_to_ns(uint32_t v);

/* 2^log2 seconds as nanoseconds, for the poll and precision fields (log2 in -63..63). */
int64_t tb_ntp_log2_to_ns(int log2);

/* The reference id as text: four ASCII characters for a kiss code (stratum 0) or a reference
 * clock name (stratum 1, when printable), dotted IPv4 otherwise. buf >= 16 bytes. */
void tb_ntp_refid_format(uint8_t stratum, uint32_t refid, char *buf, size_t buflen);

#endif
