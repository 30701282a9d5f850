/* Address strings as operators write them: "127.0.0.1:4433", "[::1]:4433", "host.name:4433".
 * Parsing is pure (no resolver, no I/O): host names are kept as names and resolved at dial
 * time, so a peer whose name does not resolve yet does not stop the node from starting. */
#ifndef TB_NODE_ADDR_H
#define TB_NODE_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* RFC 1035: a full host name is at most 253 characters. */
#define TB_ADDR_HOST_MAX 253

typedef enum tb_addr_kind {
    TB_ADDR_IPV4 = 4,
    TB_ADDR_IPV6 = 6,
    TB_ADDR_NAME = 1,
} tb_addr_kind;

typedef struct tb_hostport {
    tb_addr_kind kind;
    char host[TB_ADDR_HOST_MAX + 1]; /* without brackets for IPv6 */
    uint16_t port;
} tb_hostport;

enum {
    TB_ADDR_PORT_REQUIRED = 0, /* port 1..65535 */
    TB_ADDR_PORT_ZERO_OK = 1,  /* port 0 allowed: "any free port" for a listening socket */
};

/* Parses s[0..len). On failure returns TB_ERR_INVAL and, when why is not NULL, points it at a
 * static phrase saying what is wrong ("missing ':PORT'", ...). */
TB_WUR int tb_addr_parse(const char *s, size_t len, int flags, tb_hostport *out, const char **why);

/* Writes "host:port" or "[v6]:port" into buf (always NUL-terminated). */
void tb_hostport_format(const tb_hostport *hp, char *buf, size_t buflen);

#endif
