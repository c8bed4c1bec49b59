/*
 * sqlite.c: the embedded store, on SQLite 3 in WAL mode.
 *
 * One store_t is one connection with its prepared statements, used by one
 * thread only. Durability: WAL with synchronous=FULL, so a commit is on disk
 * before the function that made it returns. Every write runs inside
 * BEGIN IMMEDIATE, so two connections never deadlock upgrading a read lock;
 * a writer that cannot get the lock within the busy timeout gets
 * STORE_UNAVAILABLE (503), never a hang.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store.h"

#define BUSY_TIMEOUT_MS 5000

/* The schema, one migration per entry, applied in order; entry i brings the
 * database to version i + 1 (kept in PRAGMA user_version). Never edit an
 * entry that has shipped: append a new one. */
static const char *const migrations[] = {
    /* 1: apps, signing keys, leads and follows. */
    "CREATE TABLE apps ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    /* lead_count makes totalRecords exact without counting the table. */
    "  lead_count INTEGER NOT NULL DEFAULT 0 CHECK (lead_count >= 0));"
    "CREATE TABLE signing_keys ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  pem TEXT NOT NULL);"
    "CREATE TABLE leads ("
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  source TEXT,"
    "  account_id TEXT,"
    "  contact_id TEXT,"
    "  value_cents INTEGER CHECK (value_cents >= 0),"
    "  stage INTEGER NOT NULL CHECK (stage BETWEEN 0 AND 4),"
    "  probability INTEGER CHECK (probability BETWEEN 0 AND 100),"
    "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (app_id, id)) WITHOUT ROWID;"
    "CREATE INDEX leads_newest ON leads (app_id, created_at DESC, id DESC);"
    "CREATE TABLE follows ("
    "  app_id INTEGER NOT NULL,"
    "  lead_id TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  description TEXT,"
    "  due_at INTEGER,"
    "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 1),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (app_id, lead_id, id),"
    "  FOREIGN KEY (app_id, lead_id) REFERENCES leads (app_id, id) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE INDEX follows_due ON follows (app_id, lead_id, due_at IS NULL, due_at, created_at, id);",
    /* 2: revoked tokens, polled by every server thread by sequence number. */
    "CREATE TABLE revoked_tokens ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  jti TEXT NOT NULL UNIQUE,"
    "  revoked_at INTEGER NOT NULL);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define LEAD_COLS                                                                                            \
    "id, name, source, account_id, contact_id, value_cents, stage, probability, status, created_at, "        \
    "updated_at"
#define LEAD_COLS_L                                                                                          \
    "l.id, l.name, l.source, l.account_id, l.contact_id, l.value_cents, l.stage, l.probability, "            \
    "l.status, l.created_at, l.updated_at"
#define FOLLOW_COLS "id, lead_id, title, description, due_at, status, created_at, updated_at"

/* The prepared statements, by purpose. SQL text and slot stay together. */
enum stmt_id {
    Q_BEGIN_READ,
    Q_BEGIN_WRITE,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_APP_INSERT,
    Q_APP_FIND,
    Q_APP_COUNT_ADD,
    Q_KEY_GET,
    Q_KEY_PUT,
    Q_LEAD_INSERT,
    Q_LEAD_GET,
    Q_LEAD_LIST,
    Q_LEAD_LIST_FROM,
    Q_LEAD_KEYS_FROM,
    Q_DATA_VERSION,
    Q_LEAD_COUNT,
    Q_LEAD_UPDATE,
    Q_LEAD_DELETE,
    Q_LEAD_EXISTS,
    Q_FOLLOW_INSERT,
    Q_FOLLOW_GET,
    Q_FOLLOW_LIST,
    Q_FOLLOW_COUNT,
    Q_FOLLOW_UPDATE,
    Q_FOLLOW_DELETE,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_APP_LIST,
    Q_APP_DISABLE,
    Q_REVOKE,
    Q_REVOKED_SINCE,
    Q__COUNT
};

static const char *const stmt_sql[Q__COUNT] = {
    [Q_BEGIN_READ] = "BEGIN",
    [Q_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_APP_INSERT] = "INSERT INTO apps (key, name, created_at) VALUES (?1, ?2, ?3) RETURNING id",
    [Q_APP_FIND] = "SELECT id, key, name, disabled, created_at FROM apps WHERE key = ?1",
    [Q_APP_COUNT_ADD] = "UPDATE apps SET lead_count = lead_count + ?2 WHERE id = ?1",
    [Q_KEY_GET] = "SELECT pem FROM signing_keys WHERE id = 1",
    [Q_KEY_PUT] = "INSERT OR IGNORE INTO signing_keys (id, pem) VALUES (1, ?1)",
    [Q_LEAD_INSERT] = "INSERT INTO leads (app_id, " LEAD_COLS ") "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [Q_LEAD_GET] = "SELECT " LEAD_COLS " FROM leads WHERE app_id = ?1 AND id = ?2",
    /* The page's keys come from the covering index alone (skipping rows
     * there costs no table lookups); only the page's rows are then read. */
    [Q_LEAD_LIST] = "SELECT " LEAD_COLS_L ", (SELECT lead_count FROM apps WHERE id = ?1) "
                    "FROM (SELECT id FROM leads WHERE app_id = ?1 "
                    "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3) AS p "
                    "CROSS JOIN leads AS l ON l.app_id = ?1 AND l.id = p.id "
                    "ORDER BY l.created_at DESC, l.id DESC",
    /* The same, starting at an anchor: the row (?4, ?5) and those after it. */
    [Q_LEAD_LIST_FROM] = "SELECT " LEAD_COLS_L ", (SELECT lead_count FROM apps WHERE id = ?1) "
                         "FROM (SELECT id FROM leads WHERE app_id = ?1 "
                         "AND (created_at, id) <= (?4, ?5) "
                         "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3) AS p "
                         "CROSS JOIN leads AS l ON l.app_id = ?1 AND l.id = p.id "
                         "ORDER BY l.created_at DESC, l.id DESC",
    /* Walks the index from an anchor to record the next anchors. */
    [Q_LEAD_KEYS_FROM] =
        "SELECT created_at, id FROM leads WHERE app_id = ?1 AND (created_at, id) <= (?2, ?3) "
        "ORDER BY created_at DESC, id DESC LIMIT ?4",
    [Q_DATA_VERSION] = "PRAGMA data_version",
    [Q_LEAD_COUNT] = "SELECT lead_count FROM apps WHERE id = ?1",
    /* Each attribute is replaced only when its bit is set in ?3, so one
     * statement serves every partial update without a read-modify-write. */
    [Q_LEAD_UPDATE] = "UPDATE leads SET "
                      "name = CASE WHEN ?3 & 1 THEN ?4 ELSE name END, "
                      "source = CASE WHEN ?3 & 2 THEN ?5 ELSE source END, "
                      "account_id = CASE WHEN ?3 & 4 THEN ?6 ELSE account_id END, "
                      "contact_id = CASE WHEN ?3 & 8 THEN ?7 ELSE contact_id END, "
                      "value_cents = CASE WHEN ?3 & 16 THEN ?8 ELSE value_cents END, "
                      "stage = CASE WHEN ?3 & 32 THEN ?9 ELSE stage END, "
                      "probability = CASE WHEN ?3 & 64 THEN ?10 ELSE probability END, "
                      "status = CASE WHEN ?3 & 128 THEN ?11 ELSE status END, "
                      "updated_at = max(?12, updated_at + 1) "
                      "WHERE app_id = ?1 AND id = ?2 RETURNING " LEAD_COLS,
    [Q_LEAD_DELETE] = "DELETE FROM leads WHERE app_id = ?1 AND id = ?2",
    [Q_LEAD_EXISTS] = "SELECT 1 FROM leads WHERE app_id = ?1 AND id = ?2",
    [Q_FOLLOW_INSERT] = "INSERT INTO follows (app_id, " FOLLOW_COLS ") "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_FOLLOW_GET] = "SELECT " FOLLOW_COLS " FROM follows WHERE app_id = ?1 AND lead_id = ?2 AND id = ?3",
    /* The last column is the lead's follow count, so that one statement
     * (one snapshot) gives the page and its total. */
    [Q_FOLLOW_LIST] =
        "SELECT " FOLLOW_COLS ", (SELECT count(*) FROM follows WHERE app_id = ?1 AND lead_id = ?2) "
        "FROM follows WHERE app_id = ?1 AND lead_id = ?2 "
        "ORDER BY due_at IS NULL, due_at, created_at, id LIMIT ?3 OFFSET ?4",
    [Q_FOLLOW_COUNT] = "SELECT count(*) FROM follows WHERE app_id = ?1 AND lead_id = ?2",
    [Q_FOLLOW_UPDATE] = "UPDATE follows SET "
                        "title = CASE WHEN ?4 & 1 THEN ?5 ELSE title END, "
                        "description = CASE WHEN ?4 & 2 THEN ?6 ELSE description END, "
                        "due_at = CASE WHEN ?4 & 4 THEN ?7 ELSE due_at END, "
                        "status = CASE WHEN ?4 & 8 THEN ?8 ELSE status END, "
                        "updated_at = max(?9, updated_at + 1) "
                        "WHERE app_id = ?1 AND lead_id = ?2 AND id = ?3 RETURNING " FOLLOW_COLS,
    [Q_FOLLOW_DELETE] = "DELETE FROM follows WHERE app_id = ?1 AND lead_id = ?2 AND id = ?3",
    [Q_SAVEPOINT] = "SAVEPOINT w",
    [Q_RELEASE] = "RELEASE w",
    [Q_ROLLBACK_TO] = "ROLLBACK TO w",
    [Q_APP_LIST] = "SELECT id, key, name, disabled, created_at, lead_count FROM apps ORDER BY id",
    [Q_APP_DISABLE] = "UPDATE apps SET disabled = ?2 WHERE key = ?1",
    [Q_REVOKE] = "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at) VALUES (?1, ?2)",
    [Q_REVOKED_SINCE] = "SELECT seq, jti FROM revoked_tokens WHERE seq > ?1 ORDER BY seq",
};

/*
 * Deep pages. OFFSET n walks n index entries, so page 5000 would cost 5000
 * times page 1. Each connection therefore remembers, for the app it listed
 * last, the key of every ANCHOR_STEP-th lead in list order; a deep page
 * starts from the nearest anchor and skips fewer than ANCHOR_STEP entries.
 * Any commit by another connection (PRAGMA data_version) or a lead written
 * through this one invalidates them.
 */
#define ANCHOR_STEP 512

typedef struct anchor {
    int64_t created_at;
    char id[UUID_BUFSZ];
} anchor_t;

typedef struct anchors {
    int64_t app;          /* whose anchors these are; 0: none */
    int64_t data_version; /* PRAGMA data_version when they were taken */
    int64_t local_writes; /* this connection's lead writes then */
    anchor_t *v;          /* v[k] is the lead at position (k + 1) * ANCHOR_STEP */
    size_t n, cap;
} anchors_t;

typedef struct sqlite_store {
    store_t super;
    anchors_t anchors;
    int64_t local_writes; /* lead creates and deletes through this connection */
    sqlite3 *db;
    sqlite3_stmt *stmt[Q__COUNT]; /* prepared on first use */
    int in_batch;                 /* inside store_batch_begin/end */
} sqlite_store_t;

/* Maps an SQLite result code to a store_rc: the conditions a client can
 * wait out or an operator can fix (busy, disk full, read-only, I/O) are
 * STORE_UNAVAILABLE; the rest are STORE_ERROR and logged. */
static int map_rc(sqlite_store_t *s, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        fprintf(stderr, "crmd: sqlite: %s (%d)\n", sqlite3_errmsg(s->db), rc);
        return STORE_UNAVAILABLE;
    default:
        fprintf(stderr, "crmd: sqlite: %s (%d)\n", sqlite3_errmsg(s->db), rc);
        return STORE_ERROR;
    }
}

/* Returns the statement for id, reset and with its bindings cleared,
 * preparing it on first use; NULL on failure (logged). */
static sqlite3_stmt *stmt(sqlite_store_t *s, enum stmt_id id)
{
    assert(id >= 0 && id < Q__COUNT);
    sqlite3_stmt *st = s->stmt[id];
    if (st == NULL) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "crmd: sqlite: prepare failed: %s\n", sqlite3_errmsg(s->db));
            return NULL;
        }
        st = s->stmt[id];
    }
    return st;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(sqlite_store_t *s, enum stmt_id id)
{
    sqlite3_stmt *st = stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    int rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/* Inside a batch: refuses to go on once the batch's transaction is gone.
 * SQLite may roll a whole transaction back by itself (a full disk, an I/O
 * error); a write run after that would commit on its own, in autocommit,
 * while the batch is answered as failed. */
static int batch_usable(sqlite_store_t *s)
{
    if (s->in_batch == 2 || sqlite3_get_autocommit(s->db)) {
        s->in_batch = 2;
        return STORE_UNAVAILABLE;
    }
    return STORE_OK;
}

/* In a batch, a write is a savepoint inside the batch's transaction. */
static int begin_write(sqlite_store_t *s)
{
    if (s->in_batch) {
        int rc = batch_usable(s);
        return rc != STORE_OK ? rc : exec_stmt(s, Q_SAVEPOINT);
    }
    return exec_stmt(s, Q_BEGIN_WRITE);
}

/* A write made of one statement needs no savepoint inside a batch: SQLite
 * undoes a failed statement by itself. Pair with finish_single. */
static int begin_single(sqlite_store_t *s)
{
    return s->in_batch ? batch_usable(s) : exec_stmt(s, Q_BEGIN_WRITE);
}

static int begin_read(sqlite_store_t *s)
{
    return exec_stmt(s, Q_BEGIN_READ);
}

/* Ends the transaction: commits when rc is STORE_OK, else rolls back.
 * Returns the final rc (a failed commit is rolled back and reported). */
static int finish(sqlite_store_t *s, int rc)
{
    if (s->in_batch) {
        /* Undo only this write; the batch's transaction goes on. */
        if (rc != STORE_OK && exec_stmt(s, Q_ROLLBACK_TO) != STORE_OK)
            s->in_batch = 2; /* the batch can no longer be trusted */
        int rrc = exec_stmt(s, Q_RELEASE);
        if (batch_usable(s) != STORE_OK) return STORE_UNAVAILABLE;
        return rc != STORE_OK ? rc : rrc;
    }
    if (rc == STORE_OK) {
        rc = exec_stmt(s, Q_COMMIT);
        if (rc == STORE_OK) return STORE_OK;
    }
    if (!sqlite3_get_autocommit(s->db)) exec_stmt(s, Q_ROLLBACK);
    return rc;
}

static int finish_single(sqlite_store_t *s, int rc)
{
    if (s->in_batch) return batch_usable(s) != STORE_OK ? STORE_UNAVAILABLE : rc;
    return finish(s, rc);
}

static void bind_text(sqlite3_stmt *st, int i, text_ref_t t)
{
    if (t.ptr == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, t.ptr, (int)t.len, SQLITE_STATIC);
}

static void bind_id(sqlite3_stmt *st, int i, const char *id)
{
    if (id[0] == '\0')
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, id, -1, SQLITE_STATIC);
}

static void bind_opt_int(sqlite3_stmt *st, int i, bool set, int64_t v)
{
    if (set)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static text_ref_t col_text(sqlite3_stmt *st, int i)
{
    text_ref_t t = {NULL, 0};
    if (sqlite3_column_type(st, i) != SQLITE_NULL) {
        t.ptr = (const char *)sqlite3_column_text(st, i);
        t.len = (size_t)sqlite3_column_bytes(st, i);
        if (t.ptr == NULL) t.ptr = "";
    }
    return t;
}

static void col_id(sqlite3_stmt *st, int i, char out[UUID_BUFSZ])
{
    const unsigned char *p = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (p == NULL || n != UUID_STRLEN) {
        out[0] = '\0';
        return;
    }
    memcpy(out, p, UUID_STRLEN);
    out[UUID_STRLEN] = '\0';
}

/* Reads a row of LEAD_COLS; strings stay valid until st is stepped again. */
static void read_lead(sqlite3_stmt *st, lead_t *l)
{
    col_id(st, 0, l->id);
    l->name = col_text(st, 1);
    l->source = col_text(st, 2);
    col_id(st, 3, l->account_id);
    col_id(st, 4, l->contact_id);
    l->has_value = sqlite3_column_type(st, 5) != SQLITE_NULL;
    l->value_cents = sqlite3_column_int64(st, 5);
    l->stage = sqlite3_column_int(st, 6);
    l->probability = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 7);
    l->status = sqlite3_column_int(st, 8);
    l->created_at = sqlite3_column_int64(st, 9);
    l->updated_at = sqlite3_column_int64(st, 10);
}

static void read_follow(sqlite3_stmt *st, follow_t *f)
{
    col_id(st, 0, f->id);
    col_id(st, 1, f->lead_id);
    f->title = col_text(st, 2);
    f->description = col_text(st, 3);
    f->has_due = sqlite3_column_type(st, 4) != SQLITE_NULL;
    f->due_at = sqlite3_column_int64(st, 4);
    f->status = sqlite3_column_int(st, 5);
    f->created_at = sqlite3_column_int64(st, 6);
    f->updated_at = sqlite3_column_int64(st, 7);
}

/* Steps st to the end, handing each row to emit; returns a store_rc and
 * counts rows in *n when n is not NULL. */
typedef void (*row_fn)(sqlite3_stmt *st, void *cb, void *ctx);

static void emit_lead(sqlite3_stmt *st, void *cb, void *ctx)
{
    lead_t l;
    read_lead(st, &l);
    ((store_lead_cb)cb)(ctx, &l);
}

static void emit_follow(sqlite3_stmt *st, void *cb, void *ctx)
{
    follow_t f;
    read_follow(st, &f);
    ((store_follow_cb)cb)(ctx, &f);
}

static int step_rows(sqlite_store_t *s, sqlite3_stmt *st, row_fn fn, void *cb, void *ctx, int *n)
{
    int rc, count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn(st, cb, ctx);
        count++;
    }
    if (n != NULL) *n = count;
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/* --- connection and schema --------------------------------------------- */

static void sq_close(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    free(s->anchors.v);
    /* The last connection to close checkpoints the WAL into the database. */
    sqlite3_close(s->db);
    free(s);
}

static int sq_migrate(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    char *msg = NULL;
    int version = 0;
    for (;;) {
        /* Read the version inside the write lock, so that two processes
         * migrating at once apply each step once. */
        int rc = begin_write(s);
        if (rc != STORE_OK) return rc;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
            return finish(s, map_rc(s, sqlite3_errcode(s->db)));
        if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (version > SCHEMA_VERSION) {
            fprintf(stderr, "crmd: database schema version %d is newer than this crmd (%d)\n", version,
                    SCHEMA_VERSION);
            return finish(s, STORE_ERROR);
        }
        if (version == SCHEMA_VERSION) return finish(s, STORE_OK);
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
        if (sqlite3_exec(s->db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK) {
            fprintf(stderr, "crmd: migration %d failed: %s\n", version + 1, msg ? msg : "?");
            sqlite3_free(msg);
            return finish(s, STORE_ERROR);
        }
        rc = finish(s, STORE_OK);
        if (rc != STORE_OK) return rc;
    }
}

/* --- apps and keys -------------------------------------------------------- */

static int sq_app_create(store_t *base, const char *key, const char *name, int64_t now, store_app_t *out)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_APP_INSERT);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_write(s);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->key, sizeof out->key, "%s", key);
        snprintf(out->name, sizeof out->name, "%s", name);
        out->created_at = now;
        src = sqlite3_step(st);
    }
    rc = src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
    done(st);
    return finish(s, rc);
}

/* Reads an app row whose first five columns are id, key, name, disabled,
 * created_at (as every app query here selects them). */
static void read_app(sqlite3_stmt *st, store_app_t *app)
{
    memset(app, 0, sizeof *app);
    app->id = sqlite3_column_int64(st, 0);
    snprintf(app->key, sizeof app->key, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(app->name, sizeof app->name, "%s", (const char *)sqlite3_column_text(st, 2));
    app->disabled = sqlite3_column_int(st, 3);
    app->created_at = sqlite3_column_int64(st, 4);
}

static int sq_app_find(store_t *base, const char *key, store_app_t *out, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_APP_FIND);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_app(st, out);
        rc = STORE_OK;
    } else {
        rc = rc == SQLITE_DONE ? STORE_NOT_FOUND : map_rc(s, rc);
    }
    done(st);
    return rc;
}

static int sq_signing_key(store_t *base, const char *pem_if_none, char **pem)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    *pem = NULL;
    if (pem_if_none != NULL) {
        sqlite3_stmt *put = stmt(s, Q_KEY_PUT);
        if (put == NULL) return STORE_ERROR;
        int rc = begin_write(s);
        if (rc != STORE_OK) return rc;
        sqlite3_bind_text(put, 1, pem_if_none, -1, SQLITE_STATIC);
        int src = sqlite3_step(put);
        done(put);
        rc = finish(s, src == SQLITE_DONE ? STORE_OK : map_rc(s, src));
        if (rc != STORE_OK) return rc;
    }
    sqlite3_stmt *st = stmt(s, Q_KEY_GET);
    if (st == NULL) return STORE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        *pem = strdup(t != NULL ? t : "");
        rc = *pem != NULL ? STORE_OK : STORE_ERROR;
    } else {
        rc = rc == SQLITE_DONE ? STORE_NOT_FOUND : map_rc(s, rc);
    }
    done(st);
    return rc;
}

/* --- leads ---------------------------------------------------------------- */

static int add_lead_count(sqlite_store_t *s, int64_t app, int delta)
{
    sqlite3_stmt *st = stmt(s, Q_APP_COUNT_ADD);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int(st, 2, delta);
    int rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/* Inserts one lead row as it is, inside the caller's transaction. */
static int insert_lead(sqlite_store_t *s, int64_t app, const lead_t *l)
{
    sqlite3_stmt *st = stmt(s, Q_LEAD_INSERT);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, l->id, -1, SQLITE_STATIC);
    bind_text(st, 3, l->name);
    bind_text(st, 4, l->source);
    bind_id(st, 5, l->account_id);
    bind_id(st, 6, l->contact_id);
    bind_opt_int(st, 7, l->has_value, l->value_cents);
    sqlite3_bind_int(st, 8, l->stage);
    bind_opt_int(st, 9, l->probability >= 0, l->probability);
    sqlite3_bind_int(st, 10, l->status);
    sqlite3_bind_int64(st, 11, l->created_at);
    sqlite3_bind_int64(st, 12, l->updated_at);
    int src = sqlite3_step(st);
    done(st);
    return src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
}

static int sq_lead_create(store_t *base, int64_t app, const lead_t *l)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int rc = begin_write(s);
    if (rc != STORE_OK) return rc;
    rc = insert_lead(s, app, l);
    if (rc == STORE_OK) rc = add_lead_count(s, app, 1);
    s->local_writes++;
    return finish(s, rc);
}

static int sq_lead_get(store_t *base, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                       const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_LEAD_GET);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int n = 0;
    int rc = step_rows(s, st, emit_lead, (void *)cb, ctx, &n);
    done(st);
    return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
}

/* Makes sure s->anchors belong to app and are current (inside a read
 * transaction), and extends them to cover position offset. Returns the
 * index of the nearest anchor at or before offset, or -1 for none (start
 * from the top). Failures only mean no anchor: the list still works. */
static long nearest_anchor(sqlite_store_t *s, int64_t app, int64_t offset)
{
    anchors_t *a = &s->anchors;
    sqlite3_stmt *dv = stmt(s, Q_DATA_VERSION), *keys = stmt(s, Q_LEAD_KEYS_FROM);
    if (dv == NULL || keys == NULL || sqlite3_step(dv) != SQLITE_ROW) {
        if (dv != NULL) done(dv);
        return -1;
    }
    int64_t version = sqlite3_column_int64(dv, 0);
    done(dv);
    if (a->app != app || a->data_version != version || a->local_writes != s->local_writes) {
        a->app = app;
        a->data_version = version;
        a->local_writes = s->local_writes;
        a->n = 0;
    }
    size_t want = (size_t)(offset / ANCHOR_STEP); /* anchors needed: positions STEP .. want*STEP */
    while (a->n < want) {
        /* Walk ANCHOR_STEP entries on from the last anchor (or the top). */
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 64;
            anchor_t *v = realloc(a->v, cap * sizeof *v);
            if (v == NULL) break;
            a->v = v;
            a->cap = cap;
        }
        sqlite3_bind_int64(keys, 1, app);
        if (a->n == 0) {
            sqlite3_bind_int64(keys, 2, INT64_MAX);
            sqlite3_bind_text(keys, 3, "~", -1, SQLITE_STATIC); /* above every UUID */
        } else {
            sqlite3_bind_int64(keys, 2, a->v[a->n - 1].created_at);
            sqlite3_bind_text(keys, 3, a->v[a->n - 1].id, -1, SQLITE_STATIC);
        }
        /* Either way the next anchor is the walk's (STEP+1)th row: from the
         * top that is position STEP; from an anchor, which the walk starts
         * with, it is STEP positions on. */
        sqlite3_bind_int(keys, 4, ANCHOR_STEP + 1);
        int rc, seen = 0;
        int64_t created_at = 0;
        char id[UUID_BUFSZ] = "";
        const int target = ANCHOR_STEP + 1;
        while ((rc = sqlite3_step(keys)) == SQLITE_ROW) {
            if (++seen == target) {
                created_at = sqlite3_column_int64(keys, 0);
                col_id(keys, 1, id);
            }
        }
        done(keys);
        if (rc != SQLITE_DONE || seen < target || id[0] == '\0') break;
        a->v[a->n].created_at = created_at;
        memcpy(a->v[a->n].id, id, UUID_BUFSZ);
        a->n++;
    }
    size_t k = want < a->n ? want : a->n;
    return (long)k - 1;
}

/* Passes each row of a list statement to cb, and reads the total from
 * the column after the record's (the same snapshot as the rows). */
typedef struct list_rows {
    row_fn fn;
    void *cb, *ctx;
    int total_col;
    int64_t total;
    int n;
} list_rows_t;

static int step_list(sqlite_store_t *s, sqlite3_stmt *st, list_rows_t *lr)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (lr->n++ == 0) lr->total = sqlite3_column_int64(st, lr->total_col);
        lr->fn(st, lr->cb, lr->ctx);
    }
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

static int sq_lead_list(store_t *base, int64_t app, int64_t offset, int limit, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    list_rows_t lr = {.fn = emit_lead, .cb = (void *)cb, .ctx = ctx, .total_col = 11};
    /* A deep page needs its anchors and its rows from one snapshot; a
     * shallow one is a single statement, a read transaction of its own. */
    bool deep = offset >= ANCHOR_STEP;
    int rc = deep ? begin_read(s) : STORE_OK;
    if (rc != STORE_OK) return rc;
    long k = deep ? nearest_anchor(s, app, offset) : -1;
    sqlite3_stmt *st = stmt(s, k >= 0 ? Q_LEAD_LIST_FROM : Q_LEAD_LIST);
    if (st == NULL) return deep ? finish(s, STORE_ERROR) : STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int(st, 2, limit);
    if (k >= 0) {
        const anchor_t *an = &s->anchors.v[k];
        sqlite3_bind_int64(st, 3, offset - (int64_t)(k + 1) * ANCHOR_STEP);
        sqlite3_bind_int64(st, 4, an->created_at);
        sqlite3_bind_text(st, 5, an->id, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(st, 3, offset);
    }
    rc = step_list(s, st, &lr);
    done(st);
    if (rc == STORE_OK && lr.n == 0) {
        /* Past the end (or no leads): the total still counts. */
        sqlite3_stmt *cnt = stmt(s, Q_LEAD_COUNT);
        if (cnt == NULL) return deep ? finish(s, STORE_ERROR) : STORE_ERROR;
        sqlite3_bind_int64(cnt, 1, app);
        int src = sqlite3_step(cnt);
        lr.total = src == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0;
        rc = src == SQLITE_ROW || src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
        done(cnt);
    }
    *total = lr.total;
    return deep ? finish(s, rc) : rc;
}

static int sq_lead_update(store_t *base, int64_t app, const char *id, const lead_patch_t *p, int64_t now,
                          store_lead_cb cb, void *ctx)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_LEAD_UPDATE);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_single(s);
    if (rc != STORE_OK) return rc;
    const lead_t *v = &p->v;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)p->fields);
    bind_text(st, 4, v->name);
    bind_text(st, 5, v->source);
    bind_id(st, 6, v->account_id);
    bind_id(st, 7, v->contact_id);
    bind_opt_int(st, 8, v->has_value, v->value_cents);
    sqlite3_bind_int(st, 9, v->stage);
    bind_opt_int(st, 10, v->probability >= 0, v->probability);
    sqlite3_bind_int(st, 11, v->status);
    sqlite3_bind_int64(st, 12, now);
    int n = 0;
    rc = step_rows(s, st, emit_lead, (void *)cb, ctx, &n);
    done(st);
    if (rc == STORE_OK && n == 0) rc = STORE_NOT_FOUND;
    return finish_single(s, rc);
}

static int sq_lead_delete(store_t *base, int64_t app, const char *id)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_LEAD_DELETE);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_write(s);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    done(st);
    rc = src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
    if (rc == STORE_OK) rc = sqlite3_changes(s->db) == 0 ? STORE_NOT_FOUND : add_lead_count(s, app, -1);
    s->local_writes++;
    return finish(s, rc);
}

/* --- follows -------------------------------------------------------------- */

/* STORE_OK if the lead exists in app, STORE_NOT_FOUND if not. */
static int lead_exists(sqlite_store_t *s, int64_t app, const char *lead_id)
{
    sqlite3_stmt *st = stmt(s, Q_LEAD_EXISTS);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, lead_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    done(st);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : map_rc(s, rc);
}

/* Inserts one follow row as it is, inside the caller's transaction;
 * STORE_NOT_FOUND when its lead is not there. */
static int insert_follow(sqlite_store_t *s, int64_t app, const follow_t *f)
{
    sqlite3_stmt *st = stmt(s, Q_FOLLOW_INSERT);
    if (st == NULL) return STORE_ERROR;
    int rc = lead_exists(s, app, f->lead_id);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->lead_id, -1, SQLITE_STATIC);
    bind_text(st, 4, f->title);
    bind_text(st, 5, f->description);
    bind_opt_int(st, 6, f->has_due, f->due_at);
    sqlite3_bind_int(st, 7, f->status);
    sqlite3_bind_int64(st, 8, f->created_at);
    sqlite3_bind_int64(st, 9, f->updated_at);
    int src = sqlite3_step(st);
    done(st);
    return src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
}

static int sq_follow_create(store_t *base, int64_t app, const follow_t *f)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int rc = begin_single(s);
    if (rc != STORE_OK) return rc;
    return finish_single(s, insert_follow(s, app, f));
}

static int sq_follow_get(store_t *base, int64_t app, const char *lead_id, const char *id, store_follow_cb cb,
                         void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_FOLLOW_GET);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, lead_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    int n = 0;
    int rc = step_rows(s, st, emit_follow, (void *)cb, ctx, &n);
    done(st);
    return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
}

static int sq_follow_list(store_t *base, int64_t app, const char *lead_id, int64_t offset, int limit,
                          int64_t *total, store_follow_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_FOLLOW_LIST);
    if (st == NULL) return STORE_ERROR;
    /* The usual case, a lead with follows on the page asked for, is one
     * statement. Only an empty page needs to know whether the lead exists
     * and how many follows it has: that is a transaction of its own. */
    list_rows_t lr = {.fn = emit_follow, .cb = (void *)cb, .ctx = ctx, .total_col = 8};
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, lead_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    int rc = step_list(s, st, &lr);
    done(st);
    if (rc != STORE_OK || lr.n > 0) {
        *total = lr.total;
        return rc;
    }
    sqlite3_stmt *cnt = stmt(s, Q_FOLLOW_COUNT);
    if (cnt == NULL) return STORE_ERROR;
    rc = begin_read(s);
    if (rc != STORE_OK) return rc;
    rc = lead_exists(s, app, lead_id);
    if (rc == STORE_OK) {
        sqlite3_bind_int64(cnt, 1, app);
        sqlite3_bind_text(cnt, 2, lead_id, -1, SQLITE_STATIC);
        int src = sqlite3_step(cnt);
        *total = src == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0;
        rc = src == SQLITE_ROW ? STORE_OK : map_rc(s, src);
        done(cnt);
    }
    return finish(s, rc);
}

static int sq_follow_update(store_t *base, int64_t app, const char *lead_id, const char *id,
                            const follow_patch_t *p, int64_t now, store_follow_cb cb, void *ctx)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_FOLLOW_UPDATE);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_single(s);
    if (rc != STORE_OK) return rc;
    const follow_t *v = &p->v;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, lead_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)p->fields);
    bind_text(st, 5, v->title);
    bind_text(st, 6, v->description);
    bind_opt_int(st, 7, v->has_due, v->due_at);
    sqlite3_bind_int(st, 8, v->status);
    sqlite3_bind_int64(st, 9, now);
    int n = 0;
    rc = step_rows(s, st, emit_follow, (void *)cb, ctx, &n);
    done(st);
    if (rc == STORE_OK && n == 0) rc = STORE_NOT_FOUND;
    return finish_single(s, rc);
}

static int sq_follow_delete(store_t *base, int64_t app, const char *lead_id, const char *id)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_FOLLOW_DELETE);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_single(s);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_text(st, 2, lead_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    done(st);
    rc = src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0) rc = STORE_NOT_FOUND;
    return finish_single(s, rc);
}

static int sq_batch_begin(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    assert(!s->in_batch);
    int rc = exec_stmt(s, Q_BEGIN_WRITE);
    if (rc == STORE_OK) s->in_batch = 1;
    return rc;
}

static int sq_batch_end(store_t *base, int commit)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    assert(s->in_batch);
    int broken = s->in_batch == 2;
    s->in_batch = 0;
    return finish(s, commit && !broken ? STORE_OK : STORE_ERROR);
}

/* --- administration -------------------------------------------------------- */

static int sq_app_list(store_t *base, store_app_cb cb, void *ctx)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_APP_LIST);
    if (st == NULL) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_app_t app;
        read_app(st, &app);
        cb(ctx, &app, sqlite3_column_int64(st, 5));
    }
    done(st);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/* Runs one single-statement write with two text/int parameters. */
static int write_one(sqlite_store_t *s, enum stmt_id id, const char *text, int64_t v, int *changes)
{
    sqlite3_stmt *st = stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    int rc = begin_write(s);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    int src = sqlite3_step(st);
    done(st);
    rc = src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
    if (changes != NULL) *changes = sqlite3_changes(s->db);
    return finish(s, rc);
}

static int sq_app_set_disabled(store_t *base, const char *key, int disabled)
{
    int changes = 0;
    int rc = write_one((sqlite_store_t *)base, Q_APP_DISABLE, key, disabled ? 1 : 0, &changes);
    return rc == STORE_OK && changes == 0 ? STORE_NOT_FOUND : rc;
}

static int sq_token_revoke(store_t *base, const char *jti, int64_t now)
{
    return write_one((sqlite_store_t *)base, Q_REVOKE, jti, now, NULL);
}

static int sq_revoked_since(store_t *base, int64_t after_seq, store_revoked_cb cb, void *ctx,
                            const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = stmt(s, Q_REVOKED_SINCE);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, after_seq);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
    done(st);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/* --- bulk copy (crmd copy) ------------------------------------------------ */

/* Prepares sql for one use (bulk copy runs once per process, so these are
 * not kept); NULL on failure (logged). */
static sqlite3_stmt *prepare_once(sqlite_store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "crmd: sqlite: prepare failed: %s\n", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static int sq_copy_count(store_t *base, store_counts_t *out)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st =
        prepare_once(s, "SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM leads), "
                        "(SELECT count(*) FROM follows), (SELECT count(*) FROM revoked_tokens), "
                        "(SELECT COALESCE(sum(lead_count), 0) FROM apps), "
                        "(SELECT count(*) FROM signing_keys)");
    if (st == NULL) return STORE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->apps = sqlite3_column_int64(st, 0);
        out->leads = sqlite3_column_int64(st, 1);
        out->follows = sqlite3_column_int64(st, 2);
        out->revoked = sqlite3_column_int64(st, 3);
        out->lead_count_sum = sqlite3_column_int64(st, 4);
        out->signing_key = sqlite3_column_int64(st, 5) > 0;
        rc = STORE_OK;
    } else {
        rc = map_rc(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Steps a one-use export query, handing each row to fn; app_id is the
 * last column, so read_lead and read_follow read the rest unchanged. */
typedef int (*export_row_fn)(sqlite3_stmt *st, const store_export_t *cb, void *ctx);

static int export_rows(sqlite_store_t *s, const char *sql, export_row_fn fn, const store_export_t *cb,
                       void *ctx)
{
    sqlite3_stmt *st = prepare_once(s, sql);
    if (st == NULL) return STORE_ERROR;
    int rc = STORE_OK, src;
    while (rc == STORE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(st, cb, ctx);
    if (rc == STORE_OK && src != SQLITE_DONE) rc = map_rc(s, src);
    sqlite3_finalize(st);
    return rc;
}

static int export_app(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    store_app_t app;
    read_app(st, &app);
    return cb->app(ctx, &app);
}

static int export_revoked(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    const char *jti = (const char *)sqlite3_column_text(st, 0);
    return cb->revoked(ctx, jti != NULL ? jti : "", sqlite3_column_int64(st, 1));
}

static int export_lead(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    lead_t l;
    read_lead(st, &l);
    return cb->lead(ctx, sqlite3_column_int64(st, 11), &l);
}

static int export_follow(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    follow_t f;
    read_follow(st, &f);
    return cb->follow(ctx, sqlite3_column_int64(st, 8), &f);
}

static int sq_copy_export(store_t *base, const store_export_t *cb, void *ctx, store_counts_t *total)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    /* One read transaction: every query sees the same snapshot. */
    int rc = begin_read(s);
    if (rc != STORE_OK) return rc;
    rc = sq_copy_count(base, total);
    if (rc == STORE_OK) {
        char *pem = NULL;
        rc = sq_signing_key(base, NULL, &pem);
        if (rc == STORE_OK)
            rc = cb->signing_key(ctx, pem);
        else if (rc == STORE_NOT_FOUND)
            rc = STORE_OK;
        if (pem != NULL) explicit_bzero(pem, strlen(pem)); /* a private key: not left in freed heap */
        free(pem);
    }
    if (rc == STORE_OK)
        rc = export_rows(s, "SELECT id, key, name, disabled, created_at FROM apps ORDER BY id", export_app,
                         cb, ctx);
    if (rc == STORE_OK)
        rc = export_rows(s, "SELECT jti, revoked_at FROM revoked_tokens ORDER BY seq", export_revoked, cb,
                         ctx);
    if (rc == STORE_OK)
        rc = export_rows(s, "SELECT " LEAD_COLS ", app_id FROM leads ORDER BY app_id, created_at, id",
                         export_lead, cb, ctx);
    if (rc == STORE_OK)
        rc = export_rows(
            s, "SELECT " FOLLOW_COLS ", app_id FROM follows ORDER BY app_id, lead_id, created_at, id",
            export_follow, cb, ctx);
    return finish(s, rc);
}

static int sq_copy_import_begin(store_t *base, store_counts_t *before)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int rc = exec_stmt(s, Q_BEGIN_WRITE);
    if (rc == STORE_OK) {
        rc = sq_copy_count(base, before);
        if (rc != STORE_OK) exec_stmt(s, Q_ROLLBACK);
    }
    return rc;
}

/* Runs a one-use write with text ?1 and optional integer ?2..?5 (NULL
 * entries of ints are not bound); *id gets a returned id if asked. */
static int import_one(sqlite_store_t *s, const char *sql, const char *text, const int64_t *ints, int nints,
                      const char *text2, int64_t *id)
{
    sqlite3_stmt *st = prepare_once(s, sql);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    if (text2 != NULL) sqlite3_bind_text(st, 2, text2, -1, SQLITE_STATIC);
    for (int i = 0; i < nints; i++)
        sqlite3_bind_int64(st, text2 != NULL ? 3 + i : 2 + i, ints[i]);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && id != NULL) {
        *id = sqlite3_column_int64(st, 0);
        src = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? STORE_OK : map_rc(s, src);
}

static int sq_copy_import_key(store_t *base, const char *pem)
{
    return import_one((sqlite_store_t *)base, "INSERT OR REPLACE INTO signing_keys (id, pem) VALUES (1, ?1)",
                      pem, NULL, 0, NULL, NULL);
}

static int sq_copy_import_app(store_t *base, const store_app_t *app, int keep_id, int64_t *id)
{
    int64_t ints[3] = {app->disabled ? 1 : 0, app->created_at, app->id};
    return import_one(
        (sqlite_store_t *)base,
        keep_id ? "INSERT INTO apps (key, name, disabled, created_at, id) VALUES (?1, ?2, ?3, ?4, ?5) "
                  "RETURNING id"
                : "INSERT INTO apps (key, name, disabled, created_at) VALUES (?1, ?2, ?3, ?4) "
                  "RETURNING id",
        app->key, ints, keep_id ? 3 : 2, app->name, id);
}

static int sq_copy_import_revoked(store_t *base, const char *jti, int64_t revoked_at, int *added)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int rc = import_one(s, "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at) VALUES (?1, ?2)", jti,
                        &revoked_at, 1, NULL, NULL);
    *added = rc == STORE_OK && sqlite3_changes(s->db) > 0;
    return rc;
}

static int sq_copy_import_lead(store_t *base, int64_t app, const lead_t *l)
{
    return insert_lead((sqlite_store_t *)base, app, l);
}

static int sq_copy_import_follow(store_t *base, int64_t app, const follow_t *f)
{
    return insert_follow((sqlite_store_t *)base, app, f);
}

static int sq_copy_import_end(store_t *base, int commit)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int rc = commit ? STORE_OK : STORE_ERROR;
    if (commit) {
        int src = sqlite3_exec(s->db,
                               "UPDATE apps SET lead_count = (SELECT count(*) FROM leads "
                               "WHERE leads.app_id = apps.id)",
                               NULL, NULL, NULL);
        rc = src == SQLITE_OK ? STORE_OK : map_rc(s, src);
    }
    rc = finish(s, rc);
    return commit ? rc : STORE_OK;
}

static const store_ops_t sqlite_ops = {
    .close = sq_close,
    .migrate = sq_migrate,
    .app_create = sq_app_create,
    .app_find = sq_app_find,
    .signing_key = sq_signing_key,
    .lead_create = sq_lead_create,
    .lead_get = sq_lead_get,
    .lead_list = sq_lead_list,
    .lead_update = sq_lead_update,
    .lead_delete = sq_lead_delete,
    .follow_create = sq_follow_create,
    .follow_get = sq_follow_get,
    .follow_list = sq_follow_list,
    .follow_update = sq_follow_update,
    .follow_delete = sq_follow_delete,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .app_list = sq_app_list,
    .app_set_disabled = sq_app_set_disabled,
    .token_revoke = sq_token_revoke,
    .revoked_since = sq_revoked_since,
    .copy_count = sq_copy_count,
    .copy_export = sq_copy_export,
    .copy_import_begin = sq_copy_import_begin,
    .copy_import_key = sq_copy_import_key,
    .copy_import_app = sq_copy_import_app,
    .copy_import_revoked = sq_copy_import_revoked,
    .copy_import_lead = sq_copy_import_lead,
    .copy_import_follow = sq_copy_import_follow,
    .copy_import_end = sq_copy_import_end,
};

/* SQLite counts every allocation under one global mutex unless told not
 * to: with a connection per thread that mutex is the threads' only meeting
 * point, and it showed in profiles. */
static void global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

store_t *store_sqlite_open(const char *path, char *err, size_t errsz)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_config);
    sqlite_store_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->super.ops = &sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    static const char *const pragmas = "PRAGMA journal_mode = WAL;"
                                       "PRAGMA synchronous = FULL;"
                                       "PRAGMA foreign_keys = ON;"
                                       "PRAGMA temp_store = MEMORY;";
    char *msg = NULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsz, "cannot set up %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(s->db);
        free(s);
        return NULL;
    }
    return &s->super;
}
