/* Queries of the store that only tests ask: they read its database directly (through
 * store/internal.h, private to store/ and tests). */
#ifndef TB_TESTS_SUPPORT_STORE_QUERIES_H
#define TB_TESTS_SUPPORT_STORE_QUERIES_H

#include "common/error.h"
#include "store/store.h"

/* The newest measurement (by real_ns) per (kind, source) taken by origin (NULL: by anyone),
 * in (kind, source) order. */
TB_WUR int tb_store_latest_per_source(tb_store *s, const char *origin, tb_store_row_fn fn,
                                      void *arg);

typedef struct tb_store_verdict_row {
    tb_measure_kind kind;
    const char *source, *verdict, *reason, *refs;
    int64_t at_ns;
} tb_store_verdict_row;
typedef int (*tb_store_verdict_fn)(void *arg, const tb_store_verdict_row *row);

/* The newest verdict per (kind, source), in (kind, source) order. */
TB_WUR int tb_store_latest_verdicts(tb_store *s, tb_store_verdict_fn fn, void *arg);

/* PRAGMA integrity_check: 0 when "ok", TB_ERR_MALFORMED otherwise. */
TB_WUR int tb_store_check(tb_store *s);

#endif
