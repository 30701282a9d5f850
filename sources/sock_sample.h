/* The sample a SOCK reference clock (gpsd, and any writer for chrony's and ntpd-rs's SOCK
 * refclock) sends as one Unix datagram: chrony's struct sock_sample as a 64-bit build lays it
 * out, native byte order — tv_sec i64 @0, tv_usec i64 @8, offset f64 @16 (seconds, true time
 * minus system time), pulse i32 @24, leap i32 @28, padding i32 @32, magic i32 @36 = "SOCK"
 * (0x534f434b). The 32-bit layout with a 32-bit time_t (24 bytes) is not accepted. Pure: no
 * I/O, no clock. */
#ifndef TB_SOURCES_SOCK_SAMPLE_H
#define TB_SOURCES_SOCK_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_SOCK_SAMPLE_LEN 40
#define TB_SOCK_MAGIC 0x534f434bu
/* Offsets further than this are a broken writer, not a clock (chrony refuses such too). */
#define TB_SOCK_MAX_OFFSET_S 1e6

typedef struct tb_sock_sample {
    int64_t real_ns;   /* system (local real) time the sample refers to, Unix epoch */
    int64_t offset_ns; /* source − local (adr/0008), rounded to the nearest ns */
    int pulse;         /* non-zero: only the fraction of a second is known (PPS) */
    int leap;          /* 0 none, 1 insert, 2 delete */
} tb_sock_sample;

/* TB_ERR_MALFORMED for a wrong length, a wrong magic, a tv outside 1970..2^33 s or a tv_usec
 * outside 0..999999, an offset that is NaN, infinite or beyond TB_SOCK_MAX_OFFSET_S, a leap
 * other than 0..2. */
TB_WUR int tb_sock_sample_parse(const uint8_t *p, size_t len, tb_sock_sample *out);

#endif
