/* A resolver that answers from a hosts(5)-format file and passes every other name on to a
 * fallback resolver. It lets an operator (or a test) pin a source's name to an address per
 * node: the same configured name answering differently in different regions is exactly the
 * GeoDNS case the cross-check must catch, and a hosts file per node reproduces it on loopback.
 *
 * File format (hosts(5)): one entry per line, an IPv4 or IPv6 address followed by one or more
 * names separated by blanks; '#' starts a comment that runs to the end of the line. Names
 * are matched without regard to case and a trailing dot. A name listed on several lines
 * resolves to all of its addresses in file order (at most TB_RESOLVE_MAX_ADDRS). A bad line
 * (address that does not parse, scoped IPv6, no name, invalid name, line too long, NUL byte,
 * too many names or entries) is reported with its line number and skipped; the rest of the
 * file still counts.
 *
 * The file is read at creation (failure to read it fails creation, naming the file) and read
 * again at the next resolve() after its modification time, size or inode changed. If a
 * re-read fails, the previous entries stay in use and the failure is logged once. */
#ifndef TB_RESOLVE_HOSTS_H
#define TB_RESOLVE_HOSTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/log.h"
#include "resolve/resolver.h"

struct ev_loop;

#define TB_HOSTS_LINE_MAX 1024          /* bytes per line, without the newline */
#define TB_HOSTS_NAMES_PER_LINE 32      /* names after one address */
#define TB_HOSTS_MAX_ENTRIES 4096       /* (address, name) pairs in one file */
#define TB_HOSTS_FILE_MAX (1024 * 1024) /* bytes read from the file */
#define TB_HOSTS_NAME_MAX 253

/* The parsed table (pure: no I/O). */
typedef struct tb_hosts tb_hosts;

/* Called once per skipped line: 1-based line number and what was wrong. */
typedef void (*tb_hosts_bad_line_cb)(void *arg, size_t line, const char *why);

/* Parses a hosts file held in memory. Bad lines go to `bad` (may be NULL) and are skipped;
 * only allocation failure is an error (TB_ERR_NOMEM). */
TB_WUR int tb_hosts_parse(const uint8_t *p, size_t len, tb_hosts_bad_line_cb bad, void *arg,
                          tb_hosts **out);
void tb_hosts_free(tb_hosts *h);

/* (address, name) pairs kept. */
size_t tb_hosts_count(const tb_hosts *h);

/* The addresses of `name` with UDP port `port` (1..65535), in file order, up to max.
 * Returns how many were written (0: the name is not listed). */
size_t tb_hosts_lookup(const tb_hosts *h, const char *name, uint16_t port, tb_addr *out,
                       size_t max);

/* The resolver over the file at `path`. Numeric addresses are answered directly; names the
 * file does not list go to `fallback` (which must outlive this resolver), or with fallback
 * NULL fail with TB_ERR_NOTFOUND through the callback. Answers from the file are delivered on
 * the loop, never inside resolve(). Bad lines are logged as "PATH:LINE: why; line skipped". */
TB_WUR int tb_resolver_hosts_create(struct ev_loop *loop, const char *path, tb_resolver *fallback,
                                    const tb_log *log, tb_resolver **out);
/* Nothing is called back after this, also for requests passed to the fallback. Safe to call
 * from inside one of its own callbacks. NULL is fine. */
void tb_resolver_hosts_destroy(tb_resolver *r);

#endif
