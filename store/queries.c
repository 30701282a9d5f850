/* Verdicts, reports, retention and the read side of the store. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

int tb_store_prepare(tb_store *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(tb_store_db(s), sql, -1, st, NULL) == SQLITE_OK ? 0 : TB_ERR_IO;
}

/* Steps a statement with no result rows to its end and finalizes it. */
static int run_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : TB_ERR_IO;
}

static void refs_text(const tb_xc_verdict *v, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < v->n_refs && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s:%llu", i ? "," : "", v->refs[i].origin,
                         (unsigned long long)v->refs[i].seq);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int tb_store_put_verdict(tb_store *s, const tb_xc_verdict *v, int64_t at_ns)
{
    char refs[TB_XC_MAX_REFS * (TB_MEASURE_MAX_ORIGIN + 24)];
    refs_text(v, refs, sizeof(refs));
    sqlite3_stmt *st;
    if (tb_store_prepare(s,
                         "INSERT INTO verdicts(at_ns, kind, source, verdict, reason, refs) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_int64(st, 1, at_ns);
    sqlite3_bind_int(st, 2, (int)v->kind);
    sqlite3_bind_text(st, 3, v->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, tb_xc_verdict_name(v->verdict), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, v->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, refs, -1, SQLITE_STATIC);
    return run_done(st);
}

int tb_store_put_malfeasance(tb_store *s, const char *source,
                             const uint8_t pubkey[TB_MEASURE_RT_PK_LEN], const char *json,
                             int64_t at_ns)
{
    sqlite3_stmt *st;
    if (source == NULL || json == NULL)
        return TB_ERR_INVAL;
    if (tb_store_prepare(
            s, "INSERT INTO malfeasance(at_ns, source, rt_pubkey, report) VALUES (?, ?, ?, ?)",
            &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_int64(st, 1, at_ns);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, pubkey, TB_MEASURE_RT_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, json, -1, SQLITE_STATIC);
    return run_done(st);
}

int tb_store_prune(tb_store *s, int64_t now_ns, int64_t keep_ns, uint64_t *deleted)
{
    static const char *const sql[] = {
        "DELETE FROM measurements WHERE received_ns < ?",
        "DELETE FROM verdicts WHERE at_ns < ?",
        "DELETE FROM malfeasance WHERE at_ns < ?",
    };
    if (keep_ns < 0)
        return TB_ERR_INVAL;
    int64_t cutoff = now_ns - keep_ns;
    if (keep_ns > 0 && now_ns < INT64_MIN + keep_ns)
        cutoff = INT64_MIN;
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st;
        if (tb_store_prepare(s, sql[i], &st) != 0)
            return TB_ERR_IO;
        sqlite3_bind_int64(st, 1, cutoff);
        if (run_done(st) != 0)
            return TB_ERR_IO;
        n += (uint64_t)sqlite3_changes(tb_store_db(s));
    }
    if (deleted)
        *deleted = n;
    return 0;
}

/* The id of the newest row among the oldest (by id: the order they were stored in) of `origin`
 * (NULL: of all) whose bytes add up to at least `excess`. */
static int trim_cutoff(tb_store *s, const char *origin, uint64_t excess, int64_t *cutoff)
{
    sqlite3_stmt *st;
    const char *sql = origin ? "SELECT id, " TB_STORE_ROW_BYTES_SQL
                               " FROM measurements WHERE origin = ? ORDER BY id"
                             : "SELECT id, " TB_STORE_ROW_BYTES_SQL
                               " FROM measurements ORDER BY id";
    if (tb_store_prepare(s, sql, &st) != 0)
        return TB_ERR_IO;
    if (origin)
        sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    uint64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && sum < excess) {
        *cutoff = sqlite3_column_int64(st, 0);
        sum += (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : TB_ERR_IO;
}

/* Deletes the oldest rows of origin (NULL: of all) worth at least excess bytes. */
static int trim_oldest(tb_store *s, const char *origin, uint64_t excess, uint64_t *deleted)
{
    int64_t cutoff = -1;
    sqlite3_stmt *st;
    if (trim_cutoff(s, origin, excess, &cutoff) != 0)
        return TB_ERR_IO;
    if (cutoff < 0)
        return 0;
    if (tb_store_prepare(s,
                         origin ? "DELETE FROM measurements WHERE origin = ?1 AND id <= ?2"
                                : "DELETE FROM measurements WHERE id <= ?2",
                         &st) != 0)
        return TB_ERR_IO;
    if (origin)
        sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cutoff);
    if (run_done(st) != 0)
        return TB_ERR_IO;
    *deleted += (uint64_t)sqlite3_changes(tb_store_db(s));
    return 0;
}

typedef struct over {
    char (*origins)[TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t *excess;
    size_t n, cap;
    uint64_t limit;
} over;

static int collect_over(sqlite3_stmt *st, void *arg)
{
    over *o = arg;
    uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 1);
    if (o->n == o->cap)
        return 1; /* the rest waits for the next trim */
    snprintf(o->origins[o->n], sizeof(o->origins[0]), "%s",
             (const char *)sqlite3_column_text(st, 0));
    o->excess[o->n++] = bytes - o->limit;
    return 0;
}

int tb_store_trim(tb_store *s, uint64_t origin_bytes, uint64_t total_bytes, uint64_t *deleted)
{
    enum { MAX_OVER = 64 };
    char origins[MAX_OVER][TB_MEASURE_MAX_ORIGIN + 1];
    uint64_t excess[MAX_OVER], n = 0;
    over o = {origins, excess, 0, MAX_OVER, origin_bytes};
    sqlite3_stmt *st;
    if (origin_bytes && tb_store_prepare(s,
                                         "SELECT origin, SUM(" TB_STORE_ROW_BYTES_SQL
                                         ") AS b FROM measurements GROUP BY origin HAVING b > ?",
                                         &st) != 0)
        return TB_ERR_IO;
    if (origin_bytes) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)origin_bytes);
        int rc = tb_store_step_all(st, collect_over, &o);
        if (rc != 0 && rc != 1)
            return TB_ERR_IO;
    }
    for (size_t i = 0; i < o.n; i++)
        if (trim_oldest(s, origins[i], excess[i], &n) != 0)
            return TB_ERR_IO;
    if (total_bytes) {
        if (tb_store_prepare(s, "SELECT SUM(" TB_STORE_ROW_BYTES_SQL ") FROM measurements", &st) !=
            0)
            return TB_ERR_IO;
        uint64_t total = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (total > total_bytes && trim_oldest(s, NULL, total - total_bytes, &n) != 0)
            return TB_ERR_IO;
    }
    if (deleted)
        *deleted = n;
    return 0;
}

#define ROW_COLUMNS                                                                                \
    "origin, seq, own, kind, source, address, real_ns, offset_ns, delay_ns, bound_ns, "            \
    "received_ns, body, sig"
#define ROW_VERDICT 13 /* tb_store_query's extra column */

static void read_row(sqlite3_stmt *st, int c, tb_store_row *r)
{
    r->origin = (const char *)sqlite3_column_text(st, c + 0);
    r->seq = (uint64_t)sqlite3_column_int64(st, c + 1);
    r->own = sqlite3_column_int(st, c + 2) != 0;
    r->kind = (tb_measure_kind)sqlite3_column_int(st, c + 3);
    r->source = (const char *)sqlite3_column_text(st, c + 4);
    r->address = (const char *)sqlite3_column_text(st, c + 5);
    r->real_ns = sqlite3_column_int64(st, c + 6);
    r->offset_ns = sqlite3_column_int64(st, c + 7);
    r->delay_ns = sqlite3_column_int64(st, c + 8);
    r->bound_ns = sqlite3_column_int64(st, c + 9);
    r->received_ns = sqlite3_column_int64(st, c + 10);
    r->body = sqlite3_column_blob(st, c + 11);
    r->body_len = (size_t)sqlite3_column_bytes(st, c + 11);
    r->sig = sqlite3_column_blob(st, c + 12);
    r->verdict = NULL;
}

int tb_store_step_all(sqlite3_stmt *st, tb_store_stmt_row_fn one, void *arg)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (out = one(st, arg)) == 0)
        ;
    if (out == 0 && rc != SQLITE_DONE)
        out = TB_ERR_IO;
    sqlite3_finalize(st);
    return out;
}

typedef struct row_ctx {
    int col; /* first measurement column */
    tb_store_row_fn fn;
    void *arg;
} row_ctx;

static int one_measurement(sqlite3_stmt *st, void *arg)
{
    row_ctx *c = arg;
    tb_store_row r;
    read_row(st, c->col, &r);
    if (c->col == 0 && sqlite3_column_count(st) > ROW_VERDICT)
        r.verdict = (const char *)sqlite3_column_text(st, ROW_VERDICT);
    if (sqlite3_column_bytes(st, c->col + 12) != TB_MEASURE_SIG_LEN || r.origin == NULL ||
        r.source == NULL || r.address == NULL)
        return TB_ERR_MALFORMED;
    return c->fn(c->arg, &r);
}

int tb_store_each_since(tb_store *s, int64_t since_ns, tb_store_row_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (tb_store_prepare(s,
                         "SELECT " ROW_COLUMNS " FROM measurements WHERE received_ns >= ? "
                         "ORDER BY received_ns, id",
                         &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_int64(st, 1, since_ns);
    row_ctx c = {0, fn, arg};
    return tb_store_step_all(st, one_measurement, &c);
}

/* How long after a measurement arrived a verdict citing it is looked for: bounds the scan of
 * verdicts_by_source per row (a verdict cites what it was made from, within rounds). */
#define VERDICT_WINDOW_NS "600000000000"

int tb_store_query(tb_store *s, const tb_store_filter *q, tb_store_row_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (q->limit == 0 || q->limit > TB_STORE_HISTORY_MAX)
        return TB_ERR_INVAL;
    /* The newest `limit` by the origin's time, handed out oldest first. Only the filters
     * given are in the SQL, so that SQLite walks measurements_by_source (kind and source
     * given) or measurements_by_real instead of sorting the table; the verdict is an indexed
     * range per row (verdicts_by_source). */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT * FROM (SELECT " ROW_COLUMNS ", (SELECT v.verdict FROM verdicts v "
             "WHERE v.kind = m.kind AND v.source = m.source AND v.at_ns BETWEEN m.received_ns "
             "AND m.received_ns + " VERDICT_WINDOW_NS " AND instr(',' || v.refs || ',', ',' || "
             "m.origin || ':' || m.seq || ',') ORDER BY v.at_ns LIMIT 1), m.id AS id "
             "FROM measurements m WHERE %s%s real_ns BETWEEN ?3 AND ?4 "
             "ORDER BY real_ns DESC, id DESC LIMIT ?5) ORDER BY real_ns, id",
             q->kind ? "kind = ?1 AND" : "", q->source ? " source = ?2 AND" : "");
    if (tb_store_prepare(s, sql, &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_int(st, 1, q->kind);
    if (q->source)
        sqlite3_bind_text(st, 2, q->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->since_ns);
    sqlite3_bind_int64(st, 4, q->until_ns);
    sqlite3_bind_int(st, 5, (int)q->limit);
    row_ctx c = {0, fn, arg};
    return tb_store_step_all(st, one_measurement, &c);
}

int tb_store_history(tb_store *s, tb_measure_kind kind, const char *source, int64_t since_ns,
                     unsigned limit, tb_store_row_fn fn, void *arg)
{
    if (source == NULL || kind == 0)
        return TB_ERR_INVAL;
    tb_store_filter q = {(int)kind, source, since_ns, INT64_MAX, limit};
    return tb_store_query(s, &q, fn, arg);
}

/* One row looked up by key: notes that it was found. */
typedef struct found_ctx {
    row_ctx row;
    bool found;
} found_ctx;

static int one_found(sqlite3_stmt *st, void *arg)
{
    found_ctx *c = arg;
    c->found = true;
    return one_measurement(st, &c->row);
}

int tb_store_get_measurement(tb_store *s, const char *origin, uint64_t seq, tb_store_row_fn fn,
                             void *arg)
{
    sqlite3_stmt *st;
    if (origin == NULL || seq > (uint64_t)INT64_MAX)
        return TB_ERR_INVAL;
    if (tb_store_prepare(s, "SELECT " ROW_COLUMNS " FROM measurements WHERE origin = ? AND seq = ?",
                         &st) != 0)
        return TB_ERR_IO;
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    found_ctx c = {{0, fn, arg}, false};
    int rc = tb_store_step_all(st, one_found, &c);
    return rc == 0 && !c.found ? TB_ERR_NOTFOUND : rc;
}

typedef struct seq_ctx {
    tb_store_seq_fn fn;
    void *arg;
} seq_ctx;

static int one_seq(sqlite3_stmt *st, void *arg)
{
    seq_ctx *c = arg;
    return c->fn(c->arg, (const char *)sqlite3_column_text(st, 0),
                 (uint64_t)sqlite3_column_int64(st, 1));
}

int tb_store_max_seqs(tb_store *s, tb_store_seq_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (tb_store_prepare(
            s, "SELECT origin, max(seq) FROM measurements GROUP BY origin ORDER BY origin", &st) !=
        0)
        return TB_ERR_IO;
    seq_ctx c = {fn, arg};
    return tb_store_step_all(st, one_seq, &c);
}

static int count(tb_store *s, const char *table, uint64_t *n)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st;
    if (tb_store_prepare(s, sql, &st) != 0)
        return TB_ERR_IO;
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : TB_ERR_IO;
}

int tb_store_counts(tb_store *s, uint64_t *measurements, uint64_t *verdicts, uint64_t *reports)
{
    int rc = count(s, "measurements", measurements);
    if (rc == 0)
        rc = count(s, "verdicts", verdicts);
    if (rc == 0)
        rc = count(s, "malfeasance", reports);
    return rc;
}
