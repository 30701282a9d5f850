/* SQLite storage (adr/0008): schema migrations, sequence reservation, inserts and queries. */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SEQ_BLOCK 1024

struct tb_store {
    sqlite3 *db;
    char path[4096];
    uint64_t next_seq, reserved_until; /* numbers in [next_seq, reserved_until) are ours */
    uint32_t seq_block;
    sqlite3_stmt *ins_meas;
    bool readonly;
    bool in_batch; /* tb_store_batch_begin succeeded, tb_store_batch_end not called yet */
};

/* Migration i brings the schema from version i to i + 1. Never edit one: append. */
static const char *const migrations[TB_STORE_SCHEMA_VERSION] = {
    "CREATE TABLE seq_state(id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  reserved_until INTEGER NOT NULL);"
    "CREATE TABLE measurements(id INTEGER PRIMARY KEY, origin TEXT NOT NULL,"
    "  seq INTEGER NOT NULL, own INTEGER NOT NULL, kind INTEGER NOT NULL, source TEXT NOT NULL,"
    "  address TEXT NOT NULL, real_ns INTEGER NOT NULL, offset_ns INTEGER NOT NULL,"
    "  delay_ns INTEGER NOT NULL, bound_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,"
    "  body BLOB NOT NULL, sig BLOB NOT NULL, UNIQUE (origin, seq));"
    "CREATE INDEX measurements_by_source ON measurements(kind, source, real_ns);"
    "CREATE INDEX measurements_by_received ON measurements(received_ns);"
    "CREATE TABLE verdicts(id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL, source TEXT NOT NULL, verdict TEXT NOT NULL,"
    "  reason TEXT NOT NULL, refs TEXT NOT NULL);"
    "CREATE INDEX verdicts_by_source ON verdicts(kind, source, at_ns);"
    "CREATE INDEX verdicts_by_at ON verdicts(at_ns);"
    "CREATE TABLE malfeasance(id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL,"
    "  source TEXT NOT NULL, rt_pubkey BLOB NOT NULL, report TEXT NOT NULL);"
    "CREATE INDEX malfeasance_by_at ON malfeasance(at_ns);",
    /* 2: kinds by name, and views that show them and UTC times (store/schema.md) */
    "CREATE TABLE kinds(kind INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO kinds VALUES (1, 'ntp'), (2, 'roughtime'), (3, 'peer');"
    "CREATE INDEX measurements_by_real ON measurements(real_ns);" /* tbnode history */
    "CREATE VIEW measurements_named AS SELECT m.id, m.origin, m.seq, m.own,"
    "  coalesce(k.name, m.kind) AS kind, m.source, m.address,"
    "  strftime('%Y-%m-%dT%H:%M:%fZ', m.real_ns / 1e9, 'unixepoch') AS real_utc,"
    "  m.offset_ns, m.delay_ns, m.bound_ns,"
    "  strftime('%Y-%m-%dT%H:%M:%fZ', m.received_ns / 1e9, 'unixepoch') AS received_utc"
    "  FROM measurements m LEFT JOIN kinds k ON k.kind = m.kind;"
    "CREATE VIEW verdicts_named AS SELECT v.id,"
    "  strftime('%Y-%m-%dT%H:%M:%fZ', v.at_ns / 1e9, 'unixepoch') AS at_utc,"
    "  coalesce(k.name, v.kind) AS kind, v.source, v.verdict, v.reason, v.refs"
    "  FROM verdicts v LEFT JOIN kinds k ON k.kind = v.kind;",
};

static int set_err(char *err, size_t errlen, int rc, const char *path, const char *what,
                   const char *detail)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s%s%s", path, what, detail ? ": " : "", detail ? detail : "");
    return rc;
}

static int exec(tb_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : TB_ERR_IO;
}

/* One integer from a query, or dflt when it yields no row or NULL. */
static int query_int(tb_store *s, const char *sql, int64_t dflt, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return TB_ERR_IO;
    int rc = sqlite3_step(st);
    *out = dflt;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : TB_ERR_IO;
}

static int schema_version(tb_store *s, int64_t *v)
{
    int64_t has;
    int rc = query_int(s,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'schema_version'",
                       0, &has);
    if (rc != 0 || !has) {
        *v = 0;
        return rc;
    }
    return query_int(s, "SELECT version FROM schema_version", 0, v);
}

static int migrate(tb_store *s, char *err, size_t errlen)
{
    int64_t v;
    if (schema_version(s, &v) != 0)
        return set_err(err, errlen, TB_ERR_MALFORMED, s->path, "not a readable database",
                       sqlite3_errmsg(s->db));
    if (v > TB_STORE_SCHEMA_VERSION || v < 0) {
        char d[96];
        snprintf(d, sizeof(d), "version %lld, this tbnode knows up to %d", (long long)v,
                 TB_STORE_SCHEMA_VERSION);
        return set_err(err, errlen, TB_ERR_UNSUPPORTED, s->path, "schema is newer", d);
    }
    for (; v < TB_STORE_SCHEMA_VERSION; v++) {
        char bump[96];
        snprintf(bump, sizeof(bump),
                 "DELETE FROM schema_version; INSERT INTO schema_version "
                 "VALUES (%lld);",
                 (long long)v + 1);
        if (exec(s, "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS schema_version(version "
                    "INTEGER NOT NULL);") != 0 ||
            exec(s, migrations[v]) != 0 || exec(s, bump) != 0 || exec(s, "COMMIT") != 0) {
            set_err(err, errlen, TB_ERR_IO, s->path, "schema migration failed",
                    sqlite3_errmsg(s->db));
            exec(s, "ROLLBACK");
            return TB_ERR_IO;
        }
    }
    return 0;
}

/* Where numbering resumes: after the last reservation, and after any own row (belt and
 * braces: a row can never exist beyond its reservation). */
static int load_seq(tb_store *s)
{
    int64_t reserved, max_own;
    if (query_int(s, "SELECT reserved_until FROM seq_state WHERE id = 1", 1, &reserved) != 0 ||
        query_int(s, "SELECT max(seq) FROM measurements WHERE own = 1", 0, &max_own) != 0)
        return TB_ERR_IO;
    uint64_t next = (uint64_t)reserved;
    if ((uint64_t)max_own + 1 > next)
        next = (uint64_t)max_own + 1;
    s->next_seq = next < 1 ? 1 : next;
    s->reserved_until = s->next_seq; /* nothing reserved by this process yet */
    return 0;
}

/* Creates the file 0600 ourselves: SQLite would use the umask, and its -wal/-shm files copy
 * the database file's mode. */
static int create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return TB_ERR_IO;
    close(fd);
    return 0;
}

/* A reader beside a running node: no file created, no schema changed, no lock a writer
 * waits on (WAL readers never block the writer). It needs the WAL's -shm next to the file,
 * which a running node keeps, or a writable directory to create it in. */
static int open_readonly(tb_store *s, char *err, size_t errlen)
{
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK)
        return set_err(err, errlen, TB_ERR_IO, s->path, "cannot open",
                       s->db ? sqlite3_errmsg(s->db) : NULL);
    sqlite3_busy_timeout(s->db, 2000);
    int64_t v;
    if (schema_version(s, &v) != 0 || v < 1)
        return set_err(err, errlen, TB_ERR_MALFORMED, s->path, "not a tbnode database",
                       sqlite3_errmsg(s->db));
    if (v > TB_STORE_SCHEMA_VERSION)
        return set_err(err, errlen, TB_ERR_UNSUPPORTED, s->path, "schema is newer", NULL);
    return 0;
}

/* SQLite's page cache, as a negative cache_size (KiB). Its default of 2000 KiB became the
 * node's largest heap user as the history grew (bench_timekeeper); the store's queries are
 * appends and indexed ranges over recent rows, and a page that falls out is one read away in
 * the kernel's page cache. */
#define STORE_CACHE_KIB "-512"

static int open_db(tb_store *s, char *err, size_t errlen)
{
    if (s->readonly)
        return open_readonly(s, err, errlen);
    /* Neither we nor SQLite follow a symbolic link planted in the state directory. */
    if (create_private(s->path) != 0)
        return set_err(err, errlen, TB_ERR_IO, s->path, "cannot create",
                       errno == ELOOP ? "it is a symbolic link (not followed)" : strerror(errno));
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK)
        return set_err(err, errlen, TB_ERR_IO, s->path, "cannot open",
                       s->db ? sqlite3_errmsg(s->db) : NULL);
    sqlite3_busy_timeout(s->db, 5000);
    int64_t ok;
    if (query_int(s, "PRAGMA journal_mode = WAL", 0, &ok) != 0 ||
        exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
                "PRAGMA cache_size = " STORE_CACHE_KIB) != 0)
        return set_err(err, errlen, TB_ERR_MALFORMED, s->path, "not a usable database",
                       sqlite3_errmsg(s->db));
    return 0;
}

static int open_mode(const tb_store_config *cfg, bool readonly, tb_store **out, char *err,
                     size_t errlen);

int tb_store_open(const tb_store_config *cfg, tb_store **out, char *err, size_t errlen)
{
    return open_mode(cfg, false, out, err, errlen);
}

int tb_store_open_readonly(const char *dir, tb_store **out, char *err, size_t errlen)
{
    tb_store_config cfg = {dir, 0};
    return open_mode(&cfg, true, out, err, errlen);
}

static int open_mode(const tb_store_config *cfg, bool readonly, tb_store **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (cfg == NULL || cfg->dir == NULL)
        return set_err(err, errlen, TB_ERR_INVAL, "(none)", "no state directory", NULL);
    tb_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return TB_ERR_NOMEM;
    s->seq_block = cfg->seq_block ? cfg->seq_block : DEFAULT_SEQ_BLOCK;
    s->readonly = readonly;
    int rc = TB_ERR_TOO_BIG;
    if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s", cfg->dir, TB_STORE_FILE) >=
        sizeof(s->path))
        set_err(err, errlen, rc, cfg->dir, "path too long", NULL);
    else if ((rc = open_db(s, err, errlen)) == 0 && !readonly &&
             (rc = migrate(s, err, errlen)) == 0 && (rc = load_seq(s)) != 0)
        set_err(err, errlen, rc, s->path, "cannot read the sequence state", NULL);
    if (rc == 0 && !readonly &&
        sqlite3_prepare_v3(s->db,
                           "INSERT INTO measurements(origin, seq, own, kind, source, address, "
                           "real_ns, offset_ns, delay_ns, bound_ns, received_ns, body, sig) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->ins_meas, NULL) != SQLITE_OK)
        rc = set_err(err, errlen, TB_ERR_IO, s->path, "cannot prepare", sqlite3_errmsg(s->db));
    if (rc != 0) {
        tb_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void tb_store_close(tb_store *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(s->ins_meas);
    sqlite3_close(s->db);
    free(s);
}

/* Records the end of a new block durably (FULL: fsync at commit) before any number of it is
 * used. */
static int reserve(tb_store *s)
{
    uint64_t until = s->next_seq + s->seq_block;
    char sql[160];
    snprintf(sql, sizeof(sql),
             "INSERT INTO seq_state(id, reserved_until) VALUES (1, %llu) ON CONFLICT(id) DO "
             "UPDATE SET reserved_until = excluded.reserved_until",
             (unsigned long long)until);
    int rc = exec(s, "PRAGMA synchronous = FULL");
    if (rc == 0)
        rc = exec(s, sql);
    if (exec(s, "PRAGMA synchronous = NORMAL") != 0)
        rc = TB_ERR_IO;
    if (rc == 0)
        s->reserved_until = until;
    return rc;
}

int tb_store_next_seq(tb_store *s, uint64_t *seq)
{
    if (s->next_seq >= s->reserved_until) {
        /* Inside a batch the reservation would be durable only at the batch's commit. */
        if (s->in_batch)
            return TB_ERR_INVAL;
        int rc = reserve(s);
        if (rc != 0)
            return rc;
    }
    *seq = s->next_seq++;
    return 0;
}

static int step_done(tb_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    return sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE ? TB_ERR_EXISTS : TB_ERR_IO;
}

int tb_store_put_measurement(tb_store *s, const tb_measurement *m, bool own, const uint8_t *body,
                             size_t len, const uint8_t sig[TB_MEASURE_SIG_LEN], int64_t received_ns)
{
    if (len > TB_MEASURE_BODY_MAX || m->seq > INT64_MAX)
        return TB_ERR_INVAL;
    sqlite3_stmt *st = s->ins_meas;
    sqlite3_bind_text(st, 1, m->origin, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)m->seq);
    sqlite3_bind_int(st, 3, own);
    sqlite3_bind_int(st, 4, (int)m->kind);
    sqlite3_bind_text(st, 5, m->source_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->source_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, m->real_ns);
    sqlite3_bind_int64(st, 8, m->offset_ns);
    sqlite3_bind_int64(st, 9, m->delay_ns);
    sqlite3_bind_int64(st, 10, m->bound_ns);
    sqlite3_bind_int64(st, 11, received_ns);
    sqlite3_bind_blob(st, 12, len ? (const void *)body : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, sig, TB_MEASURE_SIG_LEN, SQLITE_STATIC);
    return step_done(s, st);
}

int tb_store_batch_begin(tb_store *s)
{
    if (s->in_batch || s->readonly)
        return TB_ERR_INVAL;
    if (exec(s, "BEGIN IMMEDIATE") != 0)
        return TB_ERR_IO;
    s->in_batch = true;
    return 0;
}

int tb_store_batch_end(tb_store *s)
{
    if (!s->in_batch)
        return TB_ERR_INVAL;
    s->in_batch = false;
    /* An I/O error, a full disk or a busy lock inside the batch can make SQLite roll the whole
     * transaction back, after which the later rows committed one by one: report the loss. */
    if (sqlite3_get_autocommit(s->db))
        return TB_ERR_IO;
    if (exec(s, "COMMIT") == 0)
        return 0;
    (void)exec(s, "ROLLBACK");
    return TB_ERR_IO;
}

sqlite3 *tb_store_db(tb_store *s)
{
    return s->db;
}
