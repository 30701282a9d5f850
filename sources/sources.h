/* The node's set of time sources, built from the configuration and reloaded on SIGHUP:
 * tb_sources_apply starts what is new, stops what is gone and leaves unchanged sources (and
 * pools with their members) running with their state. One driver per kind; the NTP driver is
 * registered at creation, Roughtime and peer drivers by whoever links them. A kind without a
 * driver still appears, STOPPED with its reason. */
#ifndef TB_SOURCES_SOURCES_H
#define TB_SOURCES_SOURCES_H

#include "sources/config.h"
#include "sources/pool.h"
#include "sources/source.h"

typedef struct tb_sources tb_sources;

TB_WUR int tb_sources_create(const tb_source_env *env, tb_sources **out);
/* Replaces the driver for drv->kind; affects sources started afterwards. */
void tb_sources_set_driver(tb_sources *set, const tb_source_driver *drv);
/* Makes the running set match `list` (copied). Sources that fail to start stay listed with
 * their reason; the return value is an allocation failure only. */
TB_WUR int tb_sources_apply(tb_sources *set, const tb_source_config_list *list);
/* Every running source, pool members included, in configuration order. */
size_t tb_sources_count(const tb_sources *set);
tb_source *tb_sources_get(const tb_sources *set, size_t i);
/* The pool behind configuration entry i, or NULL. */
size_t tb_sources_entries(const tb_sources *set);
tb_pool *tb_sources_entry_pool(const tb_sources *set, size_t i);
void tb_sources_destroy(tb_sources *set);

#endif
