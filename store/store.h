/* store/store: the node's history in SQLite (issue 6, adr/0008): own and verified peers'
 * measurements (the signed body, evidence included, and the signature, so every row can be
 * verified again), verdicts, malfeasance reports, and the node's own measurement sequence,
 * which never repeats, also after kill -9.
 *
 * One database file, tbnode.db in the state directory (created 0600), in WAL mode with
 * synchronous=NORMAL: a committed write survives the process being killed (it is in the WAL,
 * in the OS's hands); the sequence reservation is committed with synchronous=FULL so it
 * survives a power loss as well. The schema is versioned (table schema_version) and migrated
 * forward on open; a database newer than this build is refused. store/schema.md documents the
 * tables and the views (kinds by name, UTC times) for `sqlite3 tbnode.db`.
 *
 * Sequence numbers are reserved in blocks: before handing out a number from a new block the
 * store durably records the end of the block, and a restarted store continues from there (it
 * skips what was left of the block, never reuses a number).
 *
 * This module does I/O by nature (it is the edge), but never reads a clock: every time is an
 * argument. Not thread-safe: one tb_store per thread. */
#ifndef TB_STORE_STORE_H
#define TB_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "crosscheck/crosscheck.h"
#include "measure/measurement.h"

#define TB_STORE_FILE "tbnode.db"
#define TB_STORE_SCHEMA_VERSION 2

typedef struct tb_store tb_store;

typedef struct tb_store_config {
    const char *dir;    /* state directory; must exist */
    uint32_t seq_block; /* sequence numbers reserved at a time (default 1024) */
} tb_store_config;

/* Opens (creating and migrating) dir/tbnode.db. On failure returns TB_ERR_IO (cannot open or
 * write), TB_ERR_UNSUPPORTED (schema newer than this build), TB_ERR_MALFORMED (not a tbnode
 * database, or corrupt), and err says "PATH: what" for the operator. */
TB_WUR int tb_store_open(const tb_store_config *cfg, tb_store **out, char *err, size_t errlen);
void tb_store_close(tb_store *s);

/* Opens dir/tbnode.db read-only for `tbnode history`, beside a running node (WAL: neither
 * waits for the other): creates nothing, migrates nothing; a database of an older schema is
 * read as it is. Only the queries below may be used on it. Errors as tb_store_open. */
TB_WUR int tb_store_open_readonly(const char *dir, tb_store **out, char *err, size_t errlen);

/* The next own sequence number (starting at 1). Returns TB_ERR_IO when the reservation could
 * not be made durable: then no number is handed out; TB_ERR_INVAL when a new block is due
 * inside a batch (tb_store_batch_begin), whose commit would come too late for it. */
TB_WUR int tb_store_next_seq(tb_store *s, uint64_t *seq);

/* Stores one measurement: m as parsed from (or encoded into) body, sig its signature, own true
 * for the node's own. TB_ERR_EXISTS when (origin, seq) is stored already. */
TB_WUR int tb_store_put_measurement(tb_store *s, const tb_measurement *m, bool own,
                                    const uint8_t *body, size_t len,
                                    const uint8_t sig[TB_MEASURE_SIG_LEN], int64_t received_ns);

/* Writes between tb_store_batch_begin and tb_store_batch_end go to the database in one
 * transaction: a received batch of measurements costs one commit (one WAL append and lock
 * round) instead of one per row. A row that fails (TB_ERR_EXISTS) does not undo the others.
 * Batches do not nest. tb_store_batch_end returns TB_ERR_IO when the commit failed or SQLite
 * had already rolled the transaction back (the rows put since begin may be lost; the caller
 * says so); the store is back in autocommit mode either way. When begin fails, writes commit
 * one by one as without it. */
TB_WUR int tb_store_batch_begin(tb_store *s);
TB_WUR int tb_store_batch_end(tb_store *s);

/* Stores a verdict with its reason and references ("origin:seq" comma-separated). */
TB_WUR int tb_store_put_verdict(tb_store *s, const tb_xc_verdict *v, int64_t at_ns);

/* Stores a malfeasance report (the RFC JSON) about the Roughtime key pubkey. */
TB_WUR int tb_store_put_malfeasance(tb_store *s, const char *source,
                                    const uint8_t pubkey[TB_MEASURE_RT_PK_LEN], const char *json,
                                    int64_t at_ns);

/* Deletes measurements received, and verdicts and reports made, before now_ns − keep_ns.
 * *deleted (may be NULL) gets the number of rows removed. */
TB_WUR int tb_store_prune(tb_store *s, int64_t now_ns, int64_t keep_ns, uint64_t *deleted);

/* What a stored measurement counts against the budgets of tb_store_trim: its body and signature
 * and TB_STORE_ROW_OVERHEAD for the other columns and the indexes (a row of a peer measurement
 * without evidence takes ~290 bytes of the file). */
#define TB_STORE_ROW_OVERHEAD 160

/* The storage budget besides retention (ADR 0010): deletes the oldest measurements of every
 * origin over origin_bytes, then the oldest of all while the total is over total_bytes (0: no
 * limit). *deleted (may be NULL) gets the number of rows removed. */
TB_WUR int tb_store_trim(tb_store *s, uint64_t origin_bytes, uint64_t total_bytes,
                         uint64_t *deleted);

/* A stored measurement, valid during the callback only. */
typedef struct tb_store_row {
    const char *origin;
    uint64_t seq;
    bool own;
    tb_measure_kind kind;
    const char *source, *address;
    int64_t real_ns, offset_ns, delay_ns, bound_ns, received_ns;
    const uint8_t *body, *sig;
    size_t body_len;
    /* tb_store_query only: the first verdict on this source that cites this measurement,
     * made within 10 minutes after it arrived (what the cross-check concluded with it), or
     * NULL. */
    const char *verdict;
} tb_store_row;

/* Callbacks return 0 to go on, anything else to stop (which the query then returns). */
typedef int (*tb_store_row_fn)(void *arg, const tb_store_row *row);

/* Every measurement received at or after since_ns, oldest first: to rebuild the cross-check's
 * input after a restart. */
TB_WUR int tb_store_each_since(tb_store *s, int64_t since_ns, tb_store_row_fn fn, void *arg);

/* The newest `limit` (1..TB_STORE_HISTORY_MAX) measurements of source (kind and configured
 * name) taken at or after since_ns by their origin's clock, from every origin, to fn oldest
 * first: the offset history the dashboard draws. */
#define TB_STORE_HISTORY_MAX 20000
TB_WUR int tb_store_history(tb_store *s, tb_measure_kind kind, const char *source, int64_t since_ns,
                            unsigned limit, tb_store_row_fn fn, void *arg);

/* Measurements for `tbnode history`: of kind (0: any) and source (NULL: any) taken in
 * [since_ns, until_ns] by their origin's clock; the newest `limit` (1..TB_STORE_HISTORY_MAX),
 * to fn oldest first, with the verdict. tb_store_history is this for one source. */
typedef struct tb_store_filter {
    int kind;
    const char *source;
    int64_t since_ns, until_ns;
    unsigned limit;
} tb_store_filter;
TB_WUR int tb_store_query(tb_store *s, const tb_store_filter *q, tb_store_row_fn fn, void *arg);

/* The measurement (origin, seq), to fn once; TB_ERR_NOTFOUND when it is not stored (pruned):
 * the evidence of a malfeasance report, which the time node does not keep in memory. */
TB_WUR int tb_store_get_measurement(tb_store *s, const char *origin, uint64_t seq,
                                    tb_store_row_fn fn, void *arg);

/* The highest stored sequence per origin: to seed measure/replay after a restart. */
typedef int (*tb_store_seq_fn)(void *arg, const char *origin, uint64_t seq);
TB_WUR int tb_store_max_seqs(tb_store *s, tb_store_seq_fn fn, void *arg);

/* Rows in the three tables (for status and tests). */
TB_WUR int tb_store_counts(tb_store *s, uint64_t *measurements, uint64_t *verdicts,
                           uint64_t *reports);

#endif
