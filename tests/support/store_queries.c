#include <sqlite3.h>
#include <string.h>

#include "store/internal.h"
#include "tests/support/store_queries.h"

typedef struct row_ctx {
    tb_store *s;
    tb_store_row_fn fn;
    void *arg;
} row_ctx;

/* The row itself comes from the store's own lookup, so it is read the way the node reads it. */
static int one_latest(sqlite3_stmt *st, void *arg)
{
    row_ctx *c = arg;
    return tb_store_get_measurement(c->s, (const char *)sqlite3_column_text(st, 1),
                                    (uint64_t)sqlite3_column_int64(st, 2), c->fn, c->arg);
}

int tb_store_latest_per_source(tb_store *s, const char *origin, tb_store_row_fn fn, void *arg)
{
    /* SQLite fills the bare columns from the row where max() is found */
    sqlite3_stmt *st;
    if (tb_store_prepare(
            s,
            "SELECT max(real_ns), origin, seq FROM measurements "
            "WHERE ?1 IS NULL OR origin = ?1 GROUP BY kind, source ORDER BY kind, source",
            &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    row_ctx c = {s, fn, arg};
    return tb_store_step_all(st, one_latest, &c);
}

typedef struct verdict_ctx {
    tb_store_verdict_fn fn;
    void *arg;
} verdict_ctx;

static int one_verdict(sqlite3_stmt *st, void *arg)
{
    verdict_ctx *c = arg;
    tb_store_verdict_row r = {
        .at_ns = sqlite3_column_int64(st, 0),
        .kind = (tb_measure_kind)sqlite3_column_int(st, 1),
        .source = (const char *)sqlite3_column_text(st, 2),
        .verdict = (const char *)sqlite3_column_text(st, 3),
        .reason = (const char *)sqlite3_column_text(st, 4),
        .refs = (const char *)sqlite3_column_text(st, 5),
    };
    return c->fn(c->arg, &r);
}

int tb_store_latest_verdicts(tb_store *s, tb_store_verdict_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (tb_store_prepare(s,
                         "SELECT max(at_ns), kind, source, verdict, reason, refs FROM verdicts "
                         "GROUP BY kind, source ORDER BY kind, source",
                         &st) != 0)
        return TB_ERR_IO;
    verdict_ctx c = {fn, arg};
    return tb_store_step_all(st, one_verdict, &c);
}

int tb_store_check(tb_store *s)
{
    sqlite3_stmt *st;
    if (tb_store_prepare(s, "PRAGMA integrity_check", &st) != 0)
        return TB_ERR_IO;
    const char *first =
        sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = first != NULL && strcmp(first, "ok") == 0;
    sqlite3_finalize(st);
    return ok ? 0 : TB_ERR_MALFORMED;
}
