/* Private to store/. */
#ifndef TB_STORE_INTERNAL_H
#define TB_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

sqlite3 *tb_store_db(tb_store *s);

/* The bytes of a measurements row against the budgets (store.h, TB_STORE_ROW_OVERHEAD). */
#define TB_STORE_STR(x) #x
#define TB_STORE_XSTR(x) TB_STORE_STR(x)
#define TB_STORE_ROW_BYTES_SQL                                                                     \
    "(length(body) + length(sig) + " TB_STORE_XSTR(TB_STORE_ROW_OVERHEAD) ")"

/* sqlite3_prepare_v2 on the store's database: 0 or TB_ERR_IO. */
TB_WUR int tb_store_prepare(tb_store *s, const char *sql, sqlite3_stmt **st);

/* Steps st to its end, calling one(st, arg) per row until it returns non-zero (which it then
 * returns); finalizes st. */
typedef int (*tb_store_stmt_row_fn)(sqlite3_stmt *st, void *arg);
TB_WUR int tb_store_step_all(sqlite3_stmt *st, tb_store_stmt_row_fn one, void *arg);

#endif
