/* Roughtime codec: packets (ROUGHTIM header + length), tag-value messages, requests and
 * responses for every version tbnode speaks. Owns the wire format only: no clock, no I/O, no
 * signatures (verify.h and server.h check those). Every parser takes (p, len), never reads past
 * len and answers TB_ERR_* on any violation; parsed values point into the caller's buffer. */
#ifndef TB_ROUGHTIME_CODEC_H
#define TB_ROUGHTIME_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TB_RT_TAG(a, b, c, d)                                                                      \
    ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 |         \
     (uint32_t)(uint8_t)(d) << 24)

enum {
    TB_RT_TAG_SIG = TB_RT_TAG('S', 'I', 'G', 0),
    TB_RT_TAG_VER = TB_RT_TAG('V', 'E', 'R', 0),
    TB_RT_TAG_SRV = TB_RT_TAG('S', 'R', 'V', 0),
    TB_RT_TAG_NONC = TB_RT_TAG('N', 'O', 'N', 'C'),
    TB_RT_TAG_DELE = TB_RT_TAG('D', 'E', 'L', 'E'),
    TB_RT_TAG_TYPE = TB_RT_TAG('T', 'Y', 'P', 'E'),
    TB_RT_TAG_PATH = TB_RT_TAG('P', 'A', 'T', 'H'),
    TB_RT_TAG_RADI = TB_RT_TAG('R', 'A', 'D', 'I'),
    TB_RT_TAG_PUBK = TB_RT_TAG('P', 'U', 'B', 'K'),
    TB_RT_TAG_MIDP = TB_RT_TAG('M', 'I', 'D', 'P'),
    TB_RT_TAG_SREP = TB_RT_TAG('S', 'R', 'E', 'P'),
    TB_RT_TAG_VERS = TB_RT_TAG('V', 'E', 'R', 'S'),
    TB_RT_TAG_MINT = TB_RT_TAG('M', 'I', 'N', 'T'),
    TB_RT_TAG_ROOT = TB_RT_TAG('R', 'O', 'O', 'T'),
    TB_RT_TAG_CERT = TB_RT_TAG('C', 'E', 'R', 'T'),
    TB_RT_TAG_MAXT = TB_RT_TAG('M', 'A', 'X', 'T'),
    TB_RT_TAG_INDX = TB_RT_TAG('I', 'N', 'D', 'X'),
    TB_RT_TAG_ZZZZ = TB_RT_TAG('Z', 'Z', 'Z', 'Z'),
    /* Google-Roughtime's padding tag ends in 0xff, not 0. */
    TB_RT_TAG_PAD = TB_RT_TAG('P', 'A', 'D', 0xff),
};

/* Version numbers (VER). TB_RT_VER_GOOGLE is ours: Google-Roughtime has no VER tag at all. */
#define TB_RT_VER_RFC 0x00000001U
#define TB_RT_VER_DRAFT12 0x8000000cU
#define TB_RT_VER_DRAFT11 0x8000000bU
#define TB_RT_VER_DRAFT08 0x80000008U
#define TB_RT_VER_GOOGLE 0xb2d98825U /* 3000600613, the number server lists give it */

/* How a version lays out packets; one table drives parser, builder and verifier. */
typedef struct tb_rt_profile {
    uint32_t version;
    const char *name;
    unsigned framed;         /* ROUGHTIM header (all but Google) */
    unsigned nonce_len;      /* 32, or 64 for Google */
    unsigned hash_len;       /* Merkle hash size: 32, or 64 (untruncated SHA-512) for Google */
    unsigned leaf_is_packet; /* leaf = H(0 ‖ request packet) (drafts ≥ 12) else H(0 ‖ nonce) */
    unsigned ver_in_srep;    /* VER/VERS inside SREP (≥ 12) else VER at the top level (8, 11) */
    unsigned type_required;  /* TYPE mandatory in the response (RFC; drafts 12-13 lacked it) */
    unsigned micro;          /* MIDP, RADI, MINT, MAXT in microseconds (Google) */
    unsigned srv;            /* the request carries SRV (≥ 11) */
    const char *dele_context; /* CERT.SIG context, including its final 0 byte */
    size_t dele_context_len;
} tb_rt_profile;

/* The profile for a version, or NULL when tbnode does not speak it. */
const tb_rt_profile *tb_rt_profile_get(uint32_t version);
/* "RFC 10049", "draft-12..19", ... for output. */
const char *tb_rt_version_name(uint32_t version);

#define TB_RT_RESPONSE_CONTEXT "RoughTime v1 response signature"
#define TB_RT_RESPONSE_CONTEXT_LEN sizeof(TB_RT_RESPONSE_CONTEXT) /* with the 0 */
#define TB_RT_RADI_UNSYNCED 0xffffffffU /* RADI of a server whose clock is not synchronised */
#define TB_RT_HEADER_LEN 12
#define TB_RT_MIN_REQUEST 1024
#define TB_RT_MAX_TAGS 32      /* cap on pairs per message, far above any real message */
#define TB_RT_MAX_VERSIONS 32  /* cap from the RFC for VER and VERS */
#define TB_RT_MAX_PATH 32      /* hashes in PATH (RFC) */
#define TB_RT_MAX_PACKET 65535 /* a UDP payload */

/* One parsed tag-value message; values point into the parsed buffer. */
typedef struct tb_rt_msg {
    unsigned n;
    uint32_t tags[TB_RT_MAX_TAGS];
    const uint8_t *vals[TB_RT_MAX_TAGS];
    uint32_t lens[TB_RT_MAX_TAGS];
} tb_rt_msg;

/* Parses a message: tag count (1..TB_RT_MAX_TAGS), offsets multiples of 4, non-decreasing and
 * inside the message, tags strictly increasing, total length a multiple of 4. */
TB_WUR int tb_rt_msg_parse(const uint8_t *p, size_t len, tb_rt_msg *out);
/* The value of tag, or TB_ERR_NOTFOUND. */
TB_WUR int tb_rt_msg_find(const tb_rt_msg *m, uint32_t tag, const uint8_t **val, size_t *len);
/* A value of exactly n bytes, else TB_ERR_NOTFOUND or TB_ERR_MALFORMED. */
TB_WUR int tb_rt_msg_fixed(const tb_rt_msg *m, uint32_t tag, size_t n, const uint8_t **val);
TB_WUR int tb_rt_msg_u32(const tb_rt_msg *m, uint32_t tag, uint32_t *out);
TB_WUR int tb_rt_msg_u64(const tb_rt_msg *m, uint32_t tag, uint64_t *out);

/* TCP carries packets back to back, each with its ROUGHTIM header (RFC 10049's framing). Of
 * the stream bytes p[0..len) received so far: 0 with *pkt_len 0 while the first packet is
 * incomplete, 0 with *pkt_len its whole length (header included) once it is there;
 * TB_ERR_MALFORMED when the bytes do not start with ROUGHTIM, TB_ERR_TOO_BIG when the packet
 * would be longer than max (the reader should then close the stream). */
TB_WUR int tb_rt_frame_next(const uint8_t *p, size_t len, size_t max, size_t *pkt_len);

/* Strips the ROUGHTIM header; the length field must match the rest of the packet exactly. */
TB_WUR int tb_rt_packet_unwrap(const uint8_t *p, size_t len, const uint8_t **msg, size_t *msglen);

/* The builder: add values in any order, then write them sorted by tag. Values are borrowed until
 * tb_rt_builder_write; each length must be a multiple of 4. */
typedef struct tb_rt_builder {
    unsigned n;
    int err;
    uint32_t tags[TB_RT_MAX_TAGS];
    const uint8_t *vals[TB_RT_MAX_TAGS];
    uint32_t lens[TB_RT_MAX_TAGS];
} tb_rt_builder;

void tb_rt_builder_init(tb_rt_builder *b);
/* Errors are remembered and returned by tb_rt_builder_write. */
void tb_rt_builder_add(tb_rt_builder *b, uint32_t tag, const void *val, size_t len);
/* Size of the message (without packet header). */
size_t tb_rt_builder_size(const tb_rt_builder *b);
/* Writes the message, or with framed != 0 the whole packet, into out[cap]. */
TB_WUR int tb_rt_builder_write(const tb_rt_builder *b, int framed, uint8_t *out, size_t cap,
                               size_t *outlen);

/* A request as a server sees it (framed versions only). */
typedef struct tb_rt_request {
    uint32_t versions[TB_RT_MAX_VERSIONS];
    unsigned nversions;
    const uint8_t *nonce; /* 32 bytes */
    const uint8_t *srv;   /* 32 bytes or NULL */
    uint32_t type;
} tb_rt_request;

/* Why a request was not parsed (the server counts each). */
typedef enum tb_rt_req_error {
    TB_RT_REQ_OK = 0,
    TB_RT_REQ_FRAMING, /* no ROUGHTIM header or length mismatch */
    TB_RT_REQ_MESSAGE, /* the tag-value message is malformed */
    TB_RT_REQ_NO_VER,  /* VER missing or malformed (empty, > 32, unsorted, repeats) */
    TB_RT_REQ_NO_NONC, /* NONC missing or not 32 bytes */
    TB_RT_REQ_NO_TYPE, /* TYPE missing or not 0 */
    TB_RT_REQ_BAD_SRV, /* SRV present but not 32 bytes */
    TB_RT_REQ_ERROR_COUNT
} tb_rt_req_error;

/* Parses a request packet; *why says which rule it broke. */
TB_WUR int tb_rt_request_parse(const uint8_t *p, size_t len, tb_rt_request *out,
                               tb_rt_req_error *why);
const char *tb_rt_req_error_name(tb_rt_req_error e);

/* A response with its nested SREP, CERT and DELE, checked for shape against a profile (lengths
 * of every field); signatures are not checked here. */
typedef struct tb_rt_response {
    const tb_rt_profile *prof;
    const uint8_t *sig;   /* 64 */
    const uint8_t *nonce; /* nonce_len; NULL when a Google-Roughtime reply has none */
    uint32_t type;        /* 1 or absent (has_type = 0) */
    unsigned has_type;
    const uint8_t *path; /* path_len bytes, a multiple of hash_len */
    size_t path_len;
    uint32_t indx;
    const uint8_t *srep; /* the signed SREP value */
    size_t srep_len;
    uint32_t ver;        /* the chosen version */
    const uint8_t *vers; /* VERS list (≥ 12), nvers entries */
    unsigned nvers;
    uint32_t radi;
    uint64_t midp;
    const uint8_t *root; /* hash_len */
    const uint8_t *cert_sig;
    const uint8_t *dele; /* the signed DELE value */
    size_t dele_len;
    const uint8_t *pubk; /* 32 */
    uint64_t mint, maxt;
} tb_rt_response;

/* Parses a response packet as the given version expects it. */
TB_WUR int tb_rt_response_parse(const uint8_t *p, size_t len, uint32_t version,
                                tb_rt_response *out);

/* Reads the version a response claims (top-level VER, SREP VER, or Google when unframed). */
TB_WUR int tb_rt_response_version(const uint8_t *p, size_t len, uint32_t *version);

#endif
