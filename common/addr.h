/* Network addresses, the one parser of them: text as operators and peers write it ("host:port",
 * "[v6]:port", a bare host with a default port) and socket addresses (tb_addr). Pure: no I/O,
 * no DNS. A host name stays a name here; resolve/ turns it into addresses without blocking.
 *
 * The rules, the same for every caller (config files, the command line, learned peer
 * addresses, time sources):
 * - the text is exactly len bytes: no NUL inside, no blanks, nothing before or after;
 * - host: a dotted-quad IPv4 address, an IPv6 address in brackets (bare only where a default
 *   port is allowed, since "::1:4433" is itself an IPv6 address), or an RFC 1123 host name:
 *   labels of 1..63 letters, digits and '-', not starting or ending with '-', 253 characters
 *   at most, one trailing '.' allowed. Scoped IPv6 ("%eth0") is refused;
 * - port: decimal digits without sign or leading zero, 1..65535 (0 only with
 *   TB_ADDR_PORT_ZERO_OK: "any free port" for a listening socket). */
#ifndef TB_COMMON_ADDR_H
#define TB_COMMON_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/error.h"

#define TB_ADDR_HOST_MAX 253 /* RFC 1035: a full host name */
/* Enough for any formatted address: "[" host "]:65535" and the NUL. */
#define TB_ADDR_TEXT_MAX (TB_ADDR_HOST_MAX + 9)

typedef enum tb_addr_kind {
    TB_ADDR_NAME = 1,
    TB_ADDR_IPV4 = 4,
    TB_ADDR_IPV6 = 6,
} tb_addr_kind;

/* An address as text, checked: host without brackets for IPv6. */
typedef struct tb_addr_hostport {
    tb_addr_kind kind;
    char host[TB_ADDR_HOST_MAX + 1];
    uint16_t port;
} tb_addr_hostport;

/* A socket address (IPv4 or IPv6). */
typedef struct tb_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} tb_addr;

/* Flags for the parsers (or-ed). */
enum {
    TB_ADDR_PORT_REQUIRED = 0, /* port 1..65535 */
    TB_ADDR_PORT_ZERO_OK = 1,  /* port 0 allowed too */
    TB_ADDR_NUMERIC = 2,       /* the host must be an IP address, not a name */
};

/* Parses "host:port" or "[v6]:port" in s[0..len). On failure returns TB_ERR_INVAL and, when
 * why is not NULL, points it at a static phrase saying what is wrong ("missing ':PORT' ...",
 * "port is not a number from 1 to 65535", ...). */
TB_WUR int tb_addr_parse(const char *s, size_t len, int flags, tb_addr_hostport *out,
                         const char **why);
/* The same, but the port may be left out: "host", "1.2.3.4", "[v6]" and a bare IPv6 literal
 * then get default_port. */
TB_WUR int tb_addr_parse_default(const char *s, size_t len, uint16_t default_port, int flags,
                                 tb_addr_hostport *out, const char **why);
/* A port alone, s[0..len) (flags: TB_ADDR_PORT_ZERO_OK or not). */
TB_WUR int tb_addr_port_parse(const char *s, size_t len, int flags, uint16_t *out,
                              const char **why);

/* Writes "host:port" or "[v6]:port" into buf (always NUL-terminated; TB_ADDR_TEXT_MAX fits
 * any). tb_addr_parse reads it back to the same value. */
void tb_addr_hostport_format(const tb_addr_hostport *hp, char *buf, size_t buflen);

/* The socket address of a numeric hp; TB_ERR_NOTFOUND when hp holds a name. */
TB_WUR int tb_addr_from_hostport(const tb_addr_hostport *hp, tb_addr *out);
/* The socket address of host (a NUL-terminated IPv4 or IPv6 address, no brackets) and port;
 * TB_ERR_NOTFOUND when host is not numeric (a name, to be resolved). */
TB_WUR int tb_addr_numeric(const char *host, uint16_t port, tb_addr *out);
/* tb_addr_parse with TB_ADDR_NUMERIC, then tb_addr_from_hostport: "ADDR:PORT" or "[V6]:PORT"
 * straight to a socket address. */
TB_WUR int tb_addr_parse_numeric(const char *s, size_t len, int flags, tb_addr *out,
                                 const char **why);

/* "127.0.0.1:123" or "[::1]:123" ("?" for another family). buf >= 64 bytes. */
void tb_addr_format(const tb_addr *a, char *buf, size_t len);
/* The same for a socket address held elsewhere (a sockaddr_in or sockaddr_in6 by family). */
void tb_addr_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
/* Same family, address and port. */
int tb_addr_equal(const tb_addr *a, const tb_addr *b);

/* Address policy for addresses other nodes tell us (PEERS entries, membership descriptors):
 * what may be stored and dialled. One classification for every caller; operators' own
 * addresses (seeds, listen, sources) do not go through it. */
typedef enum tb_addr_scope {
    TB_ADDR_SCOPE_UNICAST = 0, /* global or private unicast */
    TB_ADDR_SCOPE_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    TB_ADDR_SCOPE_UNSPECIFIED, /* 0.0.0.0/8 ("this network"), :: */
    TB_ADDR_SCOPE_LINK_LOCAL,  /* 169.254.0.0/16, fe80::/10 */
    TB_ADDR_SCOPE_MULTICAST,   /* 224.0.0.0/4, ff00::/8 */
    TB_ADDR_SCOPE_BROADCAST,   /* 255.255.255.255 and the rest of the reserved 240.0.0.0/4 */
} tb_addr_scope;

/* The scope of a socket address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by
 * its IPv4 address. Another family is TB_ADDR_SCOPE_UNSPECIFIED. */
tb_addr_scope tb_addr_scope_of(const tb_addr *a);
const char *tb_addr_scope_name(tb_addr_scope s);

/* A CIDR range ("10.0.0.0/8", "2001:db8::/32"); a bare address is a range of one. */
typedef struct tb_addr_range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t ip[16];
    unsigned bits;
} tb_addr_range;

#define TB_ADDR_RANGES_MAX 32

/* Parses a range from s[0..len). Bits set past the prefix length are refused (a typo more
 * often than an intent). why as for tb_addr_parse. */
TB_WUR int tb_addr_range_parse(const char *s, size_t len, tb_addr_range *out, const char **why);
int tb_addr_range_contains(const tb_addr_range *r, const tb_addr *a);

typedef struct tb_addr_policy {
    int family;         /* AF_INET or AF_INET6: the family this node can dial; 0: either */
    int allow_loopback; /* only for a node that itself listens on loopback */
    int allow_names;    /* host names (resolved at dial time, their addresses checked again) */
    size_t nranges;     /* 0: any unicast address; else it must be inside one of these */
    tb_addr_range ranges[TB_ADDR_RANGES_MAX];
} tb_addr_policy;

/* TB_OK when the socket address a may be dialled under p; else TB_ERR_INVAL and *why (when
 * not NULL) says why ("link-local address", "outside mesh.allowed_ranges", ...). Never
 * unspecified, link-local, multicast or broadcast, whatever the ranges say. */
TB_WUR int tb_addr_policy_check(const tb_addr_policy *p, const tb_addr *a, const char **why);
/* The same for learned "host:port" text s[0..len): syntax as tb_addr_parse, then a name only
 * with allow_names, a numeric address by tb_addr_policy_check. */
TB_WUR int tb_addr_policy_check_text(const tb_addr_policy *p, const char *s, size_t len,
                                     const char **why);

#endif
