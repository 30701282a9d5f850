/* Node and region names, the rule of the certificate profile (ADR 0004): what a certificate
 * carries and so what the config's `name`, a seed's "name@", a PEERS entry, a BROADCAST or
 * MESSAGE origin and a measurement's origin must be. One rule, so a name accepted in one place
 * is never refused (or, worse, matched differently) in another. */
#ifndef TB_COMMON_NAME_H
#define TB_COMMON_NAME_H

#include <stddef.h>

#define TB_NAME_MAX 63

/* 1 when p[0..len) is 1..TB_NAME_MAX of a-z, 0-9 and '-', not starting with '-'; else 0
 * (also for p NULL). Reads exactly len bytes: no terminator needed, a NUL inside is refused. */
int tb_name_valid(const char *p, size_t len);

#endif
