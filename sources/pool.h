/* A pool source: one name that resolves to many servers. The pool keeps `count` of them as
 * individual NTP sources (identity: kind ntp, name = the pool name, address = the member's
 * address), replaces a member that becomes unreachable or is demobilised by an unused address
 * from the last resolution (re-resolving when none is left), and re-resolves every
 * resolve_interval seconds to fill up. Resolution goes through env->resolver, so a test
 * injects the answers. */
#ifndef TB_SOURCES_POOL_H
#define TB_SOURCES_POOL_H

#include <stddef.h>

#include "sources/source.h"

#define TB_POOL_MAX_MEMBERS 16

typedef struct tb_pool tb_pool;

/* cfg->kind must be TB_SOURCE_POOL; member_driver is the NTP driver (or a test double). */
TB_WUR int tb_pool_create(const tb_source_env *env, const tb_source_driver *member_driver,
                          const tb_source_config *cfg, tb_pool **out);
TB_WUR int tb_pool_start(tb_pool *p);
void tb_pool_stop(tb_pool *p);
void tb_pool_destroy(tb_pool *p);

size_t tb_pool_size(const tb_pool *p);
tb_source *tb_pool_member(const tb_pool *p, size_t i);
/* "resolving", "3 of 3 members, 2 spare", "cannot resolve pool.example: ..." */
const char *tb_pool_status(const tb_pool *p);
/* Members replaced so far (for status and tests). */
unsigned long tb_pool_replacements(const tb_pool *p);

#endif
