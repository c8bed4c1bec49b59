/*
 * sqlite_int.h: the SQLite backend's private header, shared by the files
 * of store/sqlite/ only.
 *
 * The backend is split by concern, each file using only those above it:
 *   sql.c      the SQL text: the migrations and the prepared statements
 *   vfs.c      crmd's VFS: the default one, with a WAL's frames written in runs
 *   ckpt.c     the server writer's checkpoints, on a thread of their own
 *   conn.c     the connection: opening it with its settings, the statement
 *              cache, SQLite result codes as store_rc_t, closing
 *   params.c   binding parameters and reading columns into records
 *   fold.c     the folded name and source of a lead, and crmd_fold for SQL
 *   txn.c      transactions: writes, reads, a batch's transaction and savepoints
 *   leads.c    lead operations, with the anchors that make deep pages cheap
 *   follows.c  follow operations
 *   find.c     the find reads: filtered, sorted, keyset pages; the summary
 *   trash.c    the trash: moving a lead in and out, its list, purges
 *   idem.c     idempotency keys: claims, kept answers, their expiry
 *   history.c  a lead's history: recording a change, its list
 *   admin.c    apps, the signing keys, issued and revoked tokens
 *   bulk.c     crmd copy's export and import
 *   webhooks.c webhooks, the outbox and the delivery log (store/webhook.h)
 *   migrate.c  the migration steps for store_migrate_run
 *   sqlite.c   the table of operations and store_sqlite_open
 *
 * One sqlite_store_t is one connection with its prepared statements, used
 * by one thread only. Durability: WAL with synchronous=FULL, so a commit is
 * on disk before the function that made it returns. Every write runs
 * inside BEGIN IMMEDIATE, so two connections never deadlock upgrading a
 * read lock; a writer that cannot get the lock within the busy timeout
 * gets STORE_UNAVAILABLE (503), never a hang.
 */
#ifndef CRMD_STORE_SQLITE_INT_H
#define CRMD_STORE_SQLITE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store_int.h"
#include "store/webhook.h"
#include "store/webhook_sql.h"

/* The prepared statements, by purpose; their SQL is sq_stmt_sql[id]. */
enum sq_stmt_id {
    SCHEMA_SHARED_STMT_IDS,
    Q_BEGIN_READ,
    Q_BEGIN_WRITE,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_KEY_FIRST,
    Q_KEY_ADD,
    Q_LEAD_LIST,
    Q_LEAD_LIST_FROM,
    Q_LEAD_KEYS_FROM,
    Q_DATA_VERSION,
    Q_LEAD_COUNT,
    Q_LEAD_EXISTS,
    Q_FOLLOW_INSERT,
    Q_FOLLOW_LIST,
    Q_FOLLOW_LIST_TOP,
    Q_FOLLOW_COUNT,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_APP_DISABLE,
    Q_REVOKE,
    SCHEMA_WEBHOOK_STMT_IDS,
    Q_WH_DELETE,
    Q_WH_DELETE_PAYLOADS,
    Q_WH_DELETE_EVENTS,
    Q_WH_DELETE_ATTEMPTS,
    Q_OUT_CLAIM,
    Q_EV_WANTED,
    Q_EV_PAYLOAD,
    Q_OUT_UNUSED,
    Q_TRASH_LEAD_IN,
    Q_TRASH_FOLLOWS_IN,
    Q_RECOVER_LEAD,
    Q_RECOVER_FOLLOWS,
    Q_TRASH_FOLLOWS_DELETE,
    Q_TRASH_LEAD_DELETE,
    Q_TRASH_COUNT,
    Q_TRASH_GET,
    Q_TRASH_DUE,
    Q_TRASH_PAGE,
    Q_TRASH_EXPIRE_FOLLOWS,
    Q_TRASH_EXPIRE_LEADS,
    Q_HISTORY_ADD,
    Q_HISTORY_IMPORT,
    Q_HISTORY_HEAD,
    Q_HISTORY_HEAD_TRASHED,
    Q_HISTORY_COUNT,
    Q_HISTORY_PAGE,
    Q_HISTORY_DELETE,
    Q_HISTORY_EXPIRE,
    Q_IDEM_GET,
    Q_IDEM_CLAIM,
    Q_IDEM_FINISH,
    Q_IDEM_TAKEN,
    Q_IDEM_KEEP,
    Q_IDEM_RELEASE,
    Q_IDEM_EXPIRE,
    Q_IDEM_FORGET_LIVE,
    Q_IDEM_FORGET_TRASHED,
    Q_IDEM_EXPIRE_TRASH,
    Q_SEARCH_LARGE,
    Q_SEARCH_USERMERGE,
    Q_SEARCH_MERGE,
    Q_SEARCH_OTHERS_NEWEST,
    Q_SEARCH_OTHERS_OLDEST,
    Q_SEARCH_APP_SPAN,
    Q_STAGE_INSERT,
    Q_STAGE_TAKEN,
    Q_STAGE_FLUSH,
    Q_STAGE_CLEAR,
    Q_STAGE_HISTORY,
    Q_STAGE_HISTORY_LAST,
    Q_STAGE_HISTORY_FLUSH,
    Q_STAGE_HISTORY_CLEAR,
    Q__COUNT
};

/* sql.c: the schema, one migration per entry (entry i brings the database
 * to version i + 1, kept in PRAGMA user_version), and the statements. */
extern const char *const sq_migrations[SCHEMA_VERSION];
extern const char *const sq_stmt_sql[Q__COUNT];
/* One-use statements of crmd copy (bulk.c), kept with the rest of the SQL. */
extern const char *const sq_copy_count_sql;
/* apps, issued tokens, revocations, leads, follows, trashed leads and
 * follows, history, idempotency keys */
extern const char *const sq_export_sql[9];
extern const char *const sq_import_key_sql;
extern const char *const sq_import_app_sql[2]; /* [keep_id] */
extern const char *const sq_import_revoked_sql;
extern const char *const sq_import_counts_sql;
/* The staging tables of lead creates and of the history entries recorded
 * while they wait (leads.c, history.c), made as a connection opens. */
extern const char *const sq_stage_table_sql;
/* The page cache of a connection that writes (conn.c), in KiB as
 * PRAGMA cache_size takes it (negative), and of one that only reads (a
 * server thread's: sq_set_loop), SQLite's default. */
#define SQ_WRITER_CACHE_KIB -16384
#define SQ_READER_CACHE_KIB -2000
/* At most this many leads wait in the staging table. */
#define SQ_STAGE_ROWS 1000
/* The text of the partial update id (Q_LEAD_UPDATE or Q_FOLLOW_UPDATE)
 * that sets only the attributes in fields, written into buf (at least
 * SQ_UPDATE_SQL_MAX bytes); returns buf. Its parameters are those of id. */
#define SQ_UPDATE_SQL_MAX 512
const char *sq_update_sql(enum sq_stmt_id id, unsigned fields, char *buf, size_t size);

/*
 * Deep pages (leads.c). OFFSET n walks n index entries, so page 5000 would
 * cost 5000 times page 1. Each connection therefore remembers, for the app
 * it listed last, the key of every SQ_ANCHOR_STEP-th lead in list order; a
 * deep page starts from the nearest anchor and skips fewer than
 * SQ_ANCHOR_STEP entries. Any commit by another connection (PRAGMA
 * data_version) or a lead written through this one invalidates them.
 */
#define SQ_ANCHOR_STEP 512

typedef struct sq_anchor {
    int64_t created_at;
    char id[UUID_BUFSZ];
} sq_anchor_t;

typedef struct sq_anchors {
    int64_t app;          /* whose anchors these are; 0: none */
    int64_t data_version; /* PRAGMA data_version when they were taken */
    int64_t local_writes; /* this connection's lead writes then */
    sq_anchor_t *v;       /* v[k] is the lead at position (k + 1) * SQ_ANCHOR_STEP */
    size_t n, cap;
} sq_anchors_t;

/* A statement made at run time (conn.c), by its text. */
#define SQ_DYN_MAX 32
typedef struct sq_dyn {
    char *sql;
    sqlite3_stmt *st;
    uint64_t hash, used;
} sq_dyn_t;

/* An idempotency key claimed inside a batch and not yet kept or let go of
 * (idem.c): its row is written once, with the answer. */
typedef struct sq_idem_claim {
    bool set;
    int64_t app, at, fresh_after;
    char key[STORE_IDEM_KEY_MAX];
    char hash[STORE_IDEM_HASH_HEX + 1];
} sq_idem_claim_t;

/* The checkpointer of the server's writer connection (ckpt.c). */
typedef struct sq_ckpt sq_ckpt_t;

typedef struct sqlite_store {
    store_base_t base; /* the store_t, and group commit's state (base.batch) */
    sqlite3 *db;
    char *path;                   /* the database file's (store_reader_open); NULL: in memory */
    sqlite3_stmt *stmt[Q__COUNT]; /* prepared on first use */
    sq_dyn_t dyn[SQ_DYN_MAX];     /* conn.c */
    uint64_t dyn_tick;
    int64_t local_writes; /* lead creates and deletes through this connection */
    sq_anchors_t anchors;
    bool in_import;        /* inside crmd copy's import, which counts the apps' leads when it ends */
    int staged;            /* leads that may wait in the staging table (leads.c) */
    sq_idem_claim_t claim; /* the idempotency key claimed last (idem.c) */
    bool tidy_set;         /* the search index's merge setting written (tidy.c) */
    /* The read transaction kept for the rest of the loop's turn (txn.c,
     * sq_hold): only on a connection that serves an event loop. */
    store_loop_t loop;
    bool has_loop;
    bool timed; /* its reads take deadlines (a loop's connection, an export's reader) */
    bool held;
    uint64_t held_seq;         /* the process's commit count when it began */
    store_timer_t *hold_timer; /* ends it when the loop's turn ends */
    sq_ckpt_t *ckpt;           /* the server writer's checkpointer (ckpt.c), or NULL */
    /* The read deadline (store_read_deadline; sqlite.c): a CLOCK_MONOTONIC
     * time in ns, 0 for none, and whether a read was stopped at it. */
    int64_t deadline_ns;
    bool too_slow;
    /* The writer's commits leave their syncs owed (store_sync_defer), and
     * the last one's, if it did, not yet taken (store_sync_owed; n 0:
     * none). */
    bool defer_syncs;
    store_sync_t owed;
} sqlite_store_t;

/* The connection behind base. Every operation but the reads that may run
 * in a held snapshot (sq_of_read) starts here, so that a held read
 * transaction never reaches a write, a list or another table's read
 * (conn.c ends it). */
sqlite_store_t *sq_of(store_t *base);

/* The connection behind base, its held snapshot (if any) kept: for the
 * reads of one lead, one follow, one lead's follows, a shallow page of
 * leads (or an app's lead count), and the finds and the summary (find.c),
 * which call sq_hold. */
static inline sqlite_store_t *sq_of_read(store_t *base)
{
    return (sqlite_store_t *)base;
}

/* --- vfs.c ----------------------------------------------------------------- */

/* The VFS crmd's connections open their files with (vfs.c): the default
 * one, with a WAL file's frames written out in runs, at the latest before
 * each sync. Only for connections with synchronous=FULL and the normal
 * locking mode (vfs.c says why). */
#define SQ_VFS_NAME "crmd"
/* Registers it (not as the default); once, before the first open. */
int sq_vfs_register(void);

/* Arms (or disarms) the calling thread's next sync of a WAL: it writes
 * the frames as every sync does and leaves the fdatasync owed, to be
 * taken with sq_vfs_deferred and done with sq_vfs_sync, on any thread.
 * One sync only, its frames' (the sync of a WAL header the COMMIT writes,
 * starting the WAL again, is done at once, as SQLite must have it on disk
 * before any frame: vfs.c); a checkpoint it runs syncs as always. */
void sq_vfs_defer_next(bool on);
/* The sync the calling thread's last armed sync left owed, taken (false:
 * none was). */
bool sq_vfs_deferred(store_sync_t *out);
/* Does an owed sync, on any thread: 0, or the errno of fdatasync. It
 * covers every commit written to that WAL before it. */
int sq_vfs_sync(const store_sync_t *t);
/* Waits at most wait_ms for every sync owed in the process when it is
 * called to be done; false when one is still owed then. A reader that
 * must not act on a commit not yet on disk (the webhook sender) calls it
 * after its snapshot is taken, before using what it read. */
bool sq_vfs_durable(int wait_ms);
/* How long the webhook sender waits so (a sync takes a few milliseconds). */
#define SQ_DURABLE_WAIT_MS 2000
/* Every checkpoint on a connection of crmd's VFS syncs the pages it copied
 * into the database file before SQLite records the copy, and a failed sync
 * stops the process (vfs.c, ckpt_done). fn(arg, file) is how the calling
 * thread syncs them from now on (file: the default VFS's; SQLITE_OK or an
 * error); NULL: with file's xSync. */
typedef int (*sq_vfs_ckpt_sync_fn)(void *arg, sqlite3_file *file);
void sq_vfs_ckpt_sync(sq_vfs_ckpt_sync_fn fn, void *arg);

/* --- ckpt.c ---------------------------------------------------------------- */

/* Stops the checkpointer's thread (running: it was started) and closes its
 * connection; frees ck. NULL does nothing. sq_close calls it. */
void sq_ckpt_free(sq_ckpt_t *ck, bool running);

/* For the tests: the passes the writer asked for and those done so far,
 * the writer's own checkpoints, and how many frames the last of those
 * copied (all 0 without a checkpointer). */
void sq_ckpt_counts(const sqlite_store_t *s, unsigned *asks, unsigned *passes, unsigned *finishes,
                    int *writer_frames);

/* The WAL hook of every connection (sq_connect): SQLite's own checkpoint
 * after a commit that leaves 16,000 frames in the WAL, unless a
 * checkpointer runs in this process, whose checkpoints alone are then
 * made (ckpt.c says why). */
int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames);

/* --- conn.c ---------------------------------------------------------------- */

/* Opens the database file at path with crmd's settings (WAL, FULL sync,
 * foreign keys, busy timeout), creating it (0600) when it is not there and
 * create is true; NULL with a reason in err. The caller sets the table of
 * operations. */
sqlite_store_t *sq_connect(const char *path, bool create, char *err, size_t errsz);

/* Maps an SQLite result code to a store_rc_t: the conditions a client can
 * wait out or an operator can fix (busy, disk full, read-only, I/O) are
 * STORE_UNAVAILABLE; the rest are STORE_ERROR. Failures are logged. */
store_rc_t sq_map_rc(sqlite_store_t *s, int src);

/* Statement id, reset and with its bindings cleared, prepared on first
 * use; NULL on failure (logged). Pair each use with sq_reset. */
sqlite3_stmt *sq_stmt(sqlite_store_t *s, enum sq_stmt_id id);
void sq_reset(sqlite3_stmt *st);

/* Staged creates. Inside a batch, a lead create waits in the staging
 * table (temp.leads_incoming) instead of going into leads at once: each
 * write of a batch is a savepoint, and FTS5 writes its pending entries out
 * as a segment of their own at every savepoint (and every statement
 * savepoint), so creates one after the other made a search index segment
 * (and its merges) per lead. The staged rows go into leads by one
 * INSERT ... SELECT, the triggers (search index, lead_text, totals)
 * running for each row inside it: before any statement that may read or
 * write leads or what the triggers keep (sq_stmt, sq_dyn_stmt and
 * sq_prepare_once see to it: everything but the statements of a create's
 * own write), at the commit, and when SQ_STAGE_ROWS wait. A refused
 * create (a taken id, a broken constraint) is refused when staged, as
 * leads would refuse it; a failed move fails the commit, so no create is
 * acknowledged without its row; a move undone with the savepoint of the
 * write it ran in leaves the rows staged again, and sq_finish moves
 * them again at once, outside any write. Moves the staged rows now. */
store_rc_t sq_stage_flush(sqlite_store_t *s);

/* Prepares sql for one use (bulk copy and migrations run once per
 * process, so these are not kept); NULL on failure (logged). The caller
 * finalizes it. */
sqlite3_stmt *sq_prepare_once(sqlite_store_t *s, const char *sql);

/* Hands one row of an export query to its receiver (crmd copy). */
typedef store_rc_t (*sq_export_row_fn)(sqlite3_stmt *st, const store_export_t *cb, void *ctx);

/* Steps st to its end, handing each row to fn, until fn fails; the caller
 * resets or finalizes st. */
store_rc_t sq_export_step(sqlite_store_t *s, sqlite3_stmt *st, sq_export_row_fn fn, const store_export_t *cb,
                          void *ctx);

/* Steps st once more after its last row: SQLITE_DONE maps to STORE_OK. */
store_rc_t sq_step_done(sqlite_store_t *s, sqlite3_stmt *st);
/* Runs a bound statement that returns no rows, and resets it. */
store_rc_t sq_run(sqlite_store_t *s, sqlite3_stmt *st);

/* --- params.c ----------------------------------------------------------- */

void sq_bind_text(sqlite3_stmt *st, int i, text_ref_t t); /* NULL when unset */
void sq_bind_str(sqlite3_stmt *st, int i, const char *s);
/* Binds a signing key's pem, created_at, signed_until, retired_at as ?1..?4
 * (admin.c). */
void sq_bind_signing_key(sqlite3_stmt *st, const store_key_t *key);
void sq_bind_id(sqlite3_stmt *st, int i, const char *id); /* "" is NULL */
void sq_bind_opt_int(sqlite3_stmt *st, int i, bool set, int64_t v);
/* Binds app and then the key strings (lead id, follow id) from ?1 on. */
void sq_bind_key(sqlite3_stmt *st, int64_t app, const char *id, const char *id2);
/* The find statement written into q (store/find.h), prepared (conn.c's
 * cache) and bound; NULL on failure (logged). Pair with sq_reset. */
struct fq;
sqlite3_stmt *sq_fq_stmt(sqlite_store_t *s, const struct fq *q);
/* Runs the statement written into q (built: fq's writer succeeded) to its
 * one number, into *out. */
store_rc_t sq_fq_number(sqlite_store_t *s, const struct fq *q, bool built, int64_t *out);
/* Binds a lead's attributes, name to status in column order, from ?first. */
void sq_bind_lead_values(sqlite3_stmt *st, int first, const lead_t *v);
/* Binds a follow's attributes, title to status in column order, from ?first. */
void sq_bind_follow_values(sqlite3_stmt *st, int first, const follow_t *v);
/* Bind a whole row for its insert: app, then every column in order. */
void sq_bind_lead_row(sqlite3_stmt *st, int64_t app, const lead_t *l);
void sq_bind_follow_row(sqlite3_stmt *st, int64_t app, const follow_t *f);

text_ref_t sq_col_text(sqlite3_stmt *st, int i);
const char *sq_col_str(sqlite3_stmt *st, int i); /* "" when NULL; NUL-terminated */
void sq_col_id(sqlite3_stmt *st, int i, char out[UUID_BUFSZ]);

/* Read a row of SCHEMA_LEAD_COLS / SCHEMA_FOLLOW_COLS / SCHEMA_APP_COLS
 * from column 0 (or c0); strings stay valid until st is stepped again. */
void sq_read_lead(sqlite3_stmt *st, lead_t *l);
void sq_read_follow(sqlite3_stmt *st, follow_t *f);
void sq_read_lead_at(sqlite3_stmt *st, int c0, lead_t *l);
void sq_read_follow_at(sqlite3_stmt *st, int c0, follow_t *f);
void sq_read_app(sqlite3_stmt *st, store_app_t *app);

/* Steps st to the end, passing each row's record to cb (a store_lead_cb
 * or store_follow_cb for fn); the number of rows goes to *n. */
typedef void (*sq_row_fn)(sqlite3_stmt *st, void *cb, void *ctx);
void sq_emit_lead(sqlite3_stmt *st, void *cb, void *ctx);
void sq_emit_follow(sqlite3_stmt *st, void *cb, void *ctx);
store_rc_t sq_step_rows(sqlite_store_t *s, sqlite3_stmt *st, sq_row_fn fn, void *cb, void *ctx, int *n);
/* The same from column c0. */
typedef void (*sq_row_at_fn)(sqlite3_stmt *st, int c0, void *cb, void *ctx);
void sq_emit_lead_at(sqlite3_stmt *st, int c0, void *cb, void *ctx);
void sq_emit_follow_at(sqlite3_stmt *st, int c0, void *cb, void *ctx);
/* sq_step_rows for one record, then resets st: STORE_NOT_FOUND without a
 * row. */
store_rc_t sq_step_found(sqlite_store_t *s, sqlite3_stmt *st, sq_row_fn fn, void *cb, void *ctx);
/* Steps a bound write to its end and resets it; *changes gets the rows it
 * changed. */
store_rc_t sq_step_changes(sqlite_store_t *s, sqlite3_stmt *st, int *changes);
/* The same for a write of one record: STORE_NOT_FOUND when it changed none. */
store_rc_t sq_step_changed(sqlite_store_t *s, sqlite3_stmt *st);

/* A list statement: each row's record, and the total from the column
 * after the record's (the same snapshot as the rows). */
typedef struct sq_list {
    sq_row_fn fn;
    void *cb, *ctx;
    int total_col;
    int64_t total;
    int n;
} sq_list_t;
store_rc_t sq_step_list(sqlite_store_t *s, sqlite3_stmt *st, sq_list_t *lr);

/* Runs statement id, with ?1 bound to v, to its single integer column;
 * STORE_NOT_FOUND without a row. */
store_rc_t sq_query_int(sqlite_store_t *s, enum sq_stmt_id id, int64_t v, int64_t *out);

/* --- search.c ------------------------------------------------------------ */

/* The leads a search walk looks at, where it begins, to choose whether to
 * ask the index for its app's matches only (search.c). */
#define SQ_SEARCH_SAMPLE 64

/* Runs lead find lq by walking the search index in the list's order, when
 * it can (fq_lead_walks_search, a page of reasonable size, and no
 * created_at holding too many of the matches): true, with *rc the
 * outcome; false when another plan must run it. */
bool sq_search_walk(sqlite_store_t *s, int64_t app, const store_lead_query_t *lq, int64_t *total,
                    store_lead_cb cb, void *ctx, store_rc_t *rc);

/* --- conn.c: statements made at run time ------------------------------- */

/* The prepared statement of sql (a copy is kept), from this connection's
 * cache or prepared now; NULL on failure (logged). Pair each use with
 * sq_reset. */
sqlite3_stmt *sq_dyn_stmt(sqlite_store_t *s, const char *sql);

/* --- fold.c ------------------------------------------------------------- */

/* The longest text folded on the stack: any stored name or source (255
 * and 64 code points of at most 4 bytes) fits. */
#define SQ_FOLD_INPUT_MAX 1024
/* Binds the folding of t (NULL when unset) to parameter i. */
void sq_bind_fold(sqlite3_stmt *st, int i, text_ref_t t);
/* Registers crmd_fold(text) on db: the same folding, for SQL (migration 5). */
int sq_register_fold(sqlite3 *db);

/*
 * A held snapshot (conn.c). A read transaction per request (its WAL read lock: a
 * mutex, an fcntl, an fstat) was a tenth of a GET's CPU, so on a server
 * thread the reads of one lead, one follow, one lead's follows, a shallow
 * page of leads, a find or a summary share one read transaction until the end of the event loop's turn
 * (bench/results.md).
 * No answer is older than a write this process acknowledged: every commit
 * counts in a process-wide number before its write is answered, and a held
 * snapshot begun at another count is ended before the next read. A write by
 * another process (crmd import) shows at the next turn at the latest.
 * sq_hold begins or renews it before such a read; sq_release ends it (sq_of
 * does, before anything else runs on the connection); sq_note_commit counts
 * a commit.
 */
void sq_hold(sqlite_store_t *s);
void sq_release(sqlite_store_t *s);
/* A read in the held snapshot ended with rc: a failure (STORE_NOT_FOUND is
 * an answer, not one) ends the snapshot, which SQLite may have ended or
 * left unusable. Returns rc. */
store_rc_t sq_held_done(sqlite_store_t *s, store_rc_t rc);
void sq_note_commit(void);

/* --- txn.c -------------------------------------------------------------- */

/* Runs a statement that returns no rows. */
store_rc_t sq_exec(sqlite_store_t *s, enum sq_stmt_id id);

/* A write: BEGIN IMMEDIATE, or a savepoint inside a batch. End it with
 * sq_finish. */
store_rc_t sq_begin_write(sqlite_store_t *s);
/* A write made of one statement needs no savepoint inside a batch: SQLite
 * undoes a failed statement by itself. End it with sq_finish_single. */
store_rc_t sq_begin_single(sqlite_store_t *s);
/* A read transaction (one snapshot for several statements). */
store_rc_t sq_begin_read(sqlite_store_t *s);
/* Ends what a begin started: commits (or releases the savepoint) when rc
 * is STORE_OK, else rolls back. Returns the final rc: a failed commit is
 * rolled back and reported. */
store_rc_t sq_finish(sqlite_store_t *s, store_rc_t rc);
store_rc_t sq_finish_single(sqlite_store_t *s, store_rc_t rc);
/* Statement id for a write, with the write begun (sq_begin_single when
 * single, else sq_begin_write); NULL with *rc set when either fails. */
sqlite3_stmt *sq_write_stmt(sqlite_store_t *s, enum sq_stmt_id id, bool single, store_rc_t *rc);
/* Runs statement id keyed by app and lead as ?1, ?2 (and, with v3 >= 0,
 * v3 as ?3); *changes gets the rows it changed. Q__COUNT is no statement. */
store_rc_t sq_run_keyed(sqlite_store_t *s, enum sq_stmt_id id, int64_t app, const char *lead, int64_t v3,
                        int *changes);
/* A batch's transaction: BEGIN IMMEDIATE, COMMIT, ROLLBACK. */
extern const store_tx_ops_t sq_batch_tx;

/* Reads one record with statement id, keyed by app and id (and id2 when
 * not NULL): STORE_NOT_FOUND without a row; the row goes to cb through
 * emit. No lock is needed inside a batch: the batch holds the database's
 * write lock, which covers every row. */
store_rc_t sq_read_one(sqlite_store_t *s, enum sq_stmt_id id, int64_t app, const char *id1, const char *id2,
                       sq_row_fn emit, void *cb, void *ctx);

/* A partial update of one record (leads.c, follows.c): its statement, the
 * attributes the patch sets, its key after the app (id2 NULL for a lead),
 * how to bind the patch (fields, values and now, after the key), and how
 * to pass the row it returns. */
typedef struct sq_update {
    enum sq_stmt_id stmt;
    unsigned fields;
    const char *id, *id2;
    void (*bind)(sqlite3_stmt *st, const void *patch, int64_t now);
    sq_row_fn emit;
} sq_update_t;
/* Runs it as a single-statement write; the updated row goes to cb. */
store_rc_t sq_update(sqlite_store_t *s, int64_t app, const sq_update_t *u, const void *patch, int64_t now,
                     void *cb, void *ctx);

/* --- the operations ------------------------------------------------------
 * sq_close (conn.c), sq_migrate (migrate.c), sq_lead_* (leads.c; sq_lead_trash and sq_lead_recover in
 * trash.c, with sq_trash_*), sq_idem_* (idem.c), sq_history_* (history.c), sq_follow_* (follows.c), sq_app_*,
 * sq_keys, sq_key_add, sq_key_update, sq_token_record, sq_token_revoke,
 * sq_revoked_since (admin.c), sq_copy_* (bulk.c), sq_backup (backup.c),
 * sq_search_tidy (tidy.c), sq_set_loop and sq_read_deadline (sqlite.c), each with the type of its store_ops_t
 * slot. */
STORE_OPS_DECLARE(sq)

/* admin.c: records an issued token inside the caller's transaction (the
 * import's too); *changes is 0 when its jti was already there. */
store_rc_t sq_token_insert(sqlite_store_t *s, const store_token_t *t, int *changes);

/* webhooks.c: the webhook functions (store_ops_t.webhook); bulk copy's
 * counts of webhooks and events into out, and their export (after the
 * follows, inside the export's read transaction). */
extern const store_webhook_ops_t sq_webhook_ops;
store_rc_t sq_webhook_counts(sqlite_store_t *s, store_counts_t *out);
store_rc_t sq_webhook_export(sqlite_store_t *s, const store_export_t *cb, void *ctx);

/* leads.c, follows.c: insert one row as it is, inside the caller's
 * transaction (the import's too); a follow whose lead is missing is
 * STORE_NOT_FOUND. */
store_rc_t sq_insert_lead(sqlite_store_t *s, int64_t app, const lead_t *l);
store_rc_t sq_insert_follow(sqlite_store_t *s, int64_t app, const follow_t *f);

/* leads.c: changes app's lead count by delta, inside the caller's write. */
store_rc_t sq_add_lead_count(sqlite_store_t *s, int64_t app, int delta);

#endif
