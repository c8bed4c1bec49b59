/*
 * pg_int.h: the PostgreSQL backend's private header, shared by the files
 * of store/postgres/ only.
 *
 * The backend is split by concern, each file using only those above it:
 *   sql.c      the SQL text: the migrations and the prepared statements
 *   conn.c     the connection: settings, reconnection with back-off,
 *              PostgreSQL's errors as store_rc_t, statements prepared on it
 *   params.c   binary parameters (folded texts included) and binary
 *              columns, records from rows
 *   pipe.c     libpq's pipeline mode: crmd copy's inserts, an import's
 *              statements (txn.c: a unit of work's), the totals at commit
 *   dyn.c      statements made at run time, prepared by id like the others
 *   totals.c   what lead writes change in lead_totals, applied at commit
 *   txn.c      transactions: one write, a read, group commit with a
 *              savepoint per write, lead counts, deadlock retries
 *   fold.c     array literals, and migration 5's backfill of folded texts
 *   async.c    reads that complete later on the owning thread's event
 *              loop, pipelined on a non-blocking connection (server
 *              threads), or at once through txn.c (everyone else)
 *   find.c     the find reads: filtered, sorted, keyset pages; the summary
 *   leads.c    lead operations
 *   trash.c    the trash: moving a lead in and out, its list, purges
 *   idem.c     idempotency keys: claims, kept answers, their expiry
 *   history.c  a lead's history: recording a change, its list
 *   follows.c  follow operations
 *   admin.c    apps, the signing keys, issued and revoked tokens
 *   bulk.c     crmd copy's export (cursors) and import
 *   webhooks.c webhooks, the outbox and the delivery log (store/webhook.h)
 *   migrate.c  the migration steps for store_migrate_run
 *   postgres.c the table of operations, store_postgres_open
 *
 * One pg_store_t is one connection with its prepared statements, used by
 * one thread only, exactly like the SQLite store; many crmd processes can
 * share one database. A server thread's connection, once the thread has
 * given it its event loop (store_set_loop), only reads, without blocking:
 * see async.c. Semantics mirror SQLite's: the same tables and
 * schema versions (store/schema.h), lead counts kept in the transaction
 * that changes the leads, partial updates as one UPDATE ... RETURNING
 * (atomic here too: a concurrent update of the same row waits for the row
 * lock and then applies to the newest version, so no update is lost), and
 * group commit with a savepoint per write.
 *
 * Statements are prepared on first use on each connection, and exchange
 * parameters and results in binary (integers, UUIDs) so that no number is
 * printed or parsed on either side.
 *
 * Failures. A lost connection makes the call STORE_UNAVAILABLE (503); the
 * next call reconnects, at most once per back-off interval, so during an
 * outage requests are refused at once instead of each waiting on a
 * connection attempt, and service resumes by itself. A read, or a BEGIN,
 * that finds its connection dead is tried once more on a new connection
 * (nothing can have happened twice); a write inside a transaction never
 * is. Deadlocks are retried (see txn.c). A lock wait longer than the
 * lock_timeout is STORE_UNAVAILABLE, like SQLite's busy timeout.
 */
#ifndef CRMD_STORE_PG_INT_H
#define CRMD_STORE_PG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store/store_int.h"
#include "store/webhook.h"
#include "store/webhook_sql.h"

/* The most parameters a statement here takes. */
#define PG_MAX_PARAMS 64
/* Room in a statement's parameters for texts made for it (the folded name
 * and source of a lead, the array literals of a filter). */
#define PG_OWN_MAX 8192
/* A message from the server, as logged. */
#define PG_MSG_MAX 512

/* sql.c: the migrations, and the statements by enum pg_stmt_id (below). */
extern const char *const pg_migrations[SCHEMA_VERSION];
extern const char *const pg_stmt_sql[];
/* Simple-protocol statements of the migrations (migrate.c). */
extern const char *const pg_schema_lock_sql;   /* takes the migration lock, makes crmd_schema */
extern const char *const pg_schema_exists_sql; /* true when crmd_schema exists */
extern const char *const pg_schema_get_sql;    /* the version */
extern const char *const pg_schema_set_fmt;    /* printf format: sets the version to %d */
/* crmd copy (bulk.c). */
extern const char *const pg_import_lock_sql;
extern const char *const pg_import_counts_sql;
extern const char *const pg_import_sequence_sql;
/* The export's cursors: leads, follows, trashed leads, trashed follows,
 * history, idempotency keys. */
#define PG_EXPORT_CURSORS 6
extern const char *const pg_export_declare_sql[PG_EXPORT_CURSORS];
extern const char *const pg_export_fetch_sql[PG_EXPORT_CURSORS];

/* The high half of the fixed advisory locks' keys ('crmd', sql.c), which
 * no other one-key lock of crmd's has (idem.c). */
#define PG_LOCK_CRMD 0x63726d64ULL

/* The prepared statements, by purpose; their SQL is pg_stmt_sql[id]. Every
 * parameter carries a cast, so its type never depends on inference. */
enum pg_stmt_id {
    SCHEMA_SHARED_STMT_IDS,
    Q_KEY_FIRST,
    Q_KEY_ADD,
    Q_LEAD_GET_LOCK,
    Q_LEAD_LIST,
    Q_LEAD_LIST_NEAR,
    Q_FOLLOW_INSERT,
    Q_FOLLOW_GET_LOCK,
    Q_FOLLOW_LIST,
    Q_APP_DISABLE,
    Q_REVOKE,
    Q_COPY_COUNT,
    Q_COPY_ISSUED,
    Q_COPY_REVOKED,
    Q_COPY_KEY,
    Q_COPY_APP,
    Q_COPY_APP_ID,
    SCHEMA_WEBHOOK_STMT_IDS,
    Q_WH_APP_LOCK,
    Q_WH_DELETE,
    Q_WH_DELETE_QUEUE,
    Q_OUT_CLAIM,
    Q_OUT_LOCK,
    Q_PAYLOAD_LOCK,
    Q_PAYLOAD_DROP,
    Q_LEAD_UPDATE_OLD,
    Q_LEAD_DELETE_OLD,
    Q_TOTALS_ADD,
    Q_LEAD_TRASH,
    Q_LEAD_RECOVER,
    Q_TRASH_PURGE,
    Q_TRASH_LIST,
    Q_TRASH_GET,
    Q_TRASH_DUE,
    Q_TRASH_EXPIRE,
    Q_HISTORY_ADD,
    Q_HISTORY_IMPORT,
    Q_HISTORY_LIST,
    Q_IDEM_GET,
    Q_IDEM_CLAIM,
    Q_IDEM_FINISH,
    Q_IDEM_RELEASE,
    Q_IDEM_EXPIRE,
    Q_IDEM_TRY_LOCK,
    Q_LEADS_LOCK,
    Q__COUNT
};

/* A change of one (app, stage, status, source) row of lead_totals (totals.c),
 * applied when the transaction commits. */
#define PG_SRC_MAX 260 /* a source: 64 code points of at most 4 bytes */
typedef struct pg_totals_delta {
    int64_t app;
    int stage, status;
    bool has_src;
    size_t src_len;
    char src[PG_SRC_MAX];
    int64_t n, v_hi, v_lo, w_hi, w_lo;
} pg_totals_delta_t;

/* Changes of lead_totals summed by cell (totals.c): a unit of work's, or
 * a transaction's. The cells are found by hash, since an import of many
 * leads with as many sources would otherwise look through every cell for
 * each lead. */
typedef struct pg_totals_set {
    pg_totals_delta_t *cell;
    size_t n, cap;
    uint32_t *slot; /* a cell's index + 1, by hash; 0: free */
    size_t nslot;   /* a power of two, or 0 */
} pg_totals_set_t;

/* What the lead write in progress does to lead_totals. */
enum pg_totals_op {
    PG_TOTALS_NONE,
    PG_TOTALS_INSERT,
    PG_TOTALS_UPDATE,
    PG_TOTALS_DELETE, /* a delete or a move to the trash: the old figures come back */
    PG_TOTALS_RECOVER /* a lead back from the trash: the row comes back in column order */
};

/* A read that completes later (async.c's). */
typedef struct pg_aread pg_aread_t;

/* A connection's life as async.c drives it. */
typedef enum pg_aio_state {
    AIO_DOWN,       /* no connection: the next read starts one */
    AIO_CONNECTING, /* PQconnectPoll in progress; reads wait, unsent */
    AIO_READY       /* in pipeline mode: reads are sent at once */
} pg_aio_state_t;

/* What async.c keeps: the loop, the connection's socket as the loop
 * watches it, and the reads in the order they were sent (those waiting
 * for a connection last). */
typedef struct pg_async {
    bool on; /* a loop was given (store_set_loop): reads go through it */
    store_loop_t loop;
    pg_aio_state_t state;
    store_watch_t *watch;    /* the connection's socket, while there is one */
    store_timer_t *deadline; /* while connecting: connect_timeout */
    store_timer_t *kick;     /* the end of this turn of the loop: the batch goes */
    store_timer_t *silence;  /* while reads are sent: how long the server may say nothing */
    int silence_ms;          /* pg_silence_ms of the connection, once made */
    int batched;             /* statements queued in libpq since the last Sync */
    /* A read of the batch being answered failed for a reason of the
     * moment (a lock wait past lock_timeout, say): the reads the server
     * skipped after it fail too, until the batch's Sync, instead of going
     * again in the next batch, where each would wait out the same lock
     * once more. */
    bool batch_unavailable;
    /* A read of the batch being answered was stopped at the read time
     * (STORE_TOO_SLOW): the reads the server skipped after it go again
     * without counting the skip against SKIPS_MAX (async.c), since that
     * read is answered, so each such skip is progress. */
    bool batch_slow;
    bool broken; /* the connection failed inside a call */
    pg_aread_t *head, *tail;
    pg_aread_t *spare; /* ended reads kept for the next ones */
    int nspare;
    /* A reader's snapshot (store_snapshot_begin): its connection begins
     * with BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY and is never
     * made again once started (spent), since a new one would read another
     * snapshot. */
    bool snapshot, spent;
    int depth;    /* loop callbacks of this store running (async.c) */
    bool closing; /* pg_close was called under one: pg_close_now when it ends */
    /* The bound of the API's reads (store_read_deadline, --read-time) in
     * ms, 0 for none, and the statement_timeout the connection's session
     * was told (0: none, as a new connection starts): a server thread's
     * connection carries the bound as its statement_timeout (async.c). */
    int read_ms, told_ms;
} pg_async_t;

/* A change of one app's lead count, applied when the transaction commits. */
typedef struct pg_count_delta {
    int64_t app, delta;
} pg_count_delta_t;

/* A statement made at run time (dyn.c): its id is Q__COUNT + its slot. */
#define PG_DYN_MAX 32
typedef struct pg_dyn {
    char *sql;
    uint64_t hash, used;
    bool drop; /* the server holds the slot's previous statement: DEALLOCATE it first */
} pg_dyn_t;

typedef struct pg_store {
    store_base_t base;                    /* the store_t, and group commit's state (base.batch) */
    PGconn *conn;                         /* NULL while disconnected */
    char *conninfo;                       /* owned copy of the URL or key=value string */
    bool prepared[Q__COUNT + PG_DYN_MAX]; /* on this connection (dyn.c's too) */
    pg_dyn_t dyn[PG_DYN_MAX];
    uint64_t dyn_tick;
    bool in_tx;     /* a transaction is open: never reconnect in it */
    bool in_import; /* inside copy_import_begin/end */
    /* A unit of work runs (pg_write_unit): the writes inside it take no
     * savepoint of their own, since the unit's savepoint undoes all of
     * them, and the first of them to fail fails the unit (unit_rc). */
    bool in_unit;
    store_rc_t unit_rc;
    /* The unit's writes whose answers nobody reads may be sent in pipeline
     * mode (txn.c: write_in_unit); set by a unit that wants it (leads.c:
     * create_many), for the rest of the unit. */
    bool unit_sends;
    /* The last failure was a deadlock or a serialization failure (it is
     * STORE_UNAVAILABLE, like the others): the write that got it may run
     * again. Reset before each try of a write. */
    bool retry;
    /* The statement in progress changes this app's lead count by op_delta. */
    /* The app whose webhooks all had room for ev_room more events each
     * when this transaction last looked (webhooks.c: backlog_full); 0
     * for none. A transaction begins without it. */
    int64_t ev_room_app;
    int ev_room;
    int64_t op_app;
    int op_delta;
    /* The lead count changes of the unit of work in progress, kept in the
     * transaction's (deltas) only when all of it succeeds. */
    pg_count_delta_t *unit_deltas;
    size_t nunit_deltas, capunit_deltas;
    /* Lead count changes of the transaction, applied just before it
     * commits, in app order: the apps row, which every lead insert and
     * delete of an app touches, is then locked only for the commit, and
     * two batches lock apps in the same order. */
    pg_count_delta_t *deltas;
    size_t ndeltas, capdeltas;
    /* The same for lead_totals (totals.c): the statement in progress, its
     * changes once it ran, those of the unit of work, and those of the
     * transaction. */
    enum pg_totals_op totals_op;
    int64_t totals_app;
    const lead_t *totals_lead;
    pg_totals_delta_t op_totals[2];
    int nop_totals;
    pg_totals_set_t unit_totals;
    pg_totals_set_t totals;
    int64_t retry_at_ms;  /* no reconnection attempt before this... */
    int64_t failed_at_ms; /* ...unless a connection succeeded after this */
    int backoff_ms;
    bool down_logged; /* the outage has been logged once */
    bool reset;       /* the server cannot take writes: reconnect when idle */
    /* Bulk import in libpq's pipeline mode: inserts sent, answers pending. */
    bool piped;
    int pipe_queued;    /* inserts since the last sync */
    store_rc_t pipe_rc; /* the first failure among them */
    pg_async_t aio;     /* a server thread's reads (async.c) */
} pg_store_t;

static inline pg_store_t *pg_of(store_t *base)
{
    return (pg_store_t *)base;
}

/* --- conn.c ---------------------------------------------------------------- */

/* Opens a new connection into s->conn, waiting for it; false with a
 * reason in err. */
bool pg_connect(pg_store_t *s, char *err, size_t errsz);
bool pg_conn_ok(const pg_store_t *s);

/* Starts a connection with crmd's settings without waiting for it
 * (PQconnectStartParams; NULL when out of memory): the caller drives
 * PQconnectPoll, then sends pg_reader_session_sql before anything else.
 * The connect_timeout it was given, in ms (0: none), is what the caller
 * must enforce, since PQconnectPoll does not. */
PGconn *pg_connect_start(pg_store_t *s, int *timeout_ms);
/* How long a thread's read connection may leave the reads sent on it
 * unanswered before it is given up (async.c): its tcp_user_timeout (the
 * URL's, else crmd's 30 s), which bounds a host that vanished, so that a
 * server that stops answering on a host that still acknowledges (a hung
 * backend) is bounded alike; at least PG_SILENCE_MIN_MS, so that a read
 * waiting for a lock gets its lock_timeout first. 0: no bound. */
#define PG_SILENCE_MIN_MS 6000
int pg_silence_ms(PGconn *c);
/* What every connection runs first (the lock timeout of store.h), and what
 * a server thread's read connection runs instead (generic plans too). */
extern const char pg_session_sql[];
extern const char pg_reader_session_sql[];
/* A find's plans on a server thread's read connection (async.c): custom,
 * then generic again, each until its batch ends. */
extern const char pg_custom_plans_sql[];
extern const char pg_generic_plans_sql[];
/* printf format of what a server thread's read connection runs, in a
 * batch of its own, to bound each of its statements at the API's read
 * time (the first %d, ms; async.c), and a wait for a lock a little less
 * (the second), so that a read behind a table lock ends as one (55P03),
 * which answers the reads queued behind it at once, not as a slow read. Session-wide, since a read may go in
 * any batch, but alone before its Sync, since a setting made in the implicit transaction of a batch that then
 * fails is undone with it. */
#define PG_READ_TIMEOUT_FMT                                                                                  \
    "SELECT set_config('statement_timeout', '%dms', false), set_config('lock_timeout', '%dms', false)"
/* The session's lock_timeout outside the read time (conn.c), in ms. */
#define PG_LOCK_TIMEOUT_MS 5000
/* The SQLSTATE of a statement cancelled, at statement_timeout among others. */
#define PG_QUERY_CANCELED "57014"

/* Reconnection bookkeeping, shared by both ways of connecting: whether an
 * attempt is allowed now (not during the back-off after a failure, unless
 * another thread has got through since), and what follows an attempt
 * that failed (err logged once per outage, the back-off doubled) or
 * succeeded. */
bool pg_may_connect(const pg_store_t *s);
void pg_connect_failed(pg_store_t *s, const char *err);
void pg_connect_succeeded(pg_store_t *s);

/* Makes sure there is a connection, reconnecting when allowed: never
 * inside a transaction (its work died with the old connection, and a new
 * one must not pretend otherwise), and, unless now is set, not before the
 * back-off interval has passed. Every blocking call goes through here, so
 * it asserts that the store has no loop (store.h's rule). */
bool pg_ensure_conn(pg_store_t *s, bool now);

/* Maps a failed result (r may be NULL: the connection's error) to a
 * store_rc_t: what a client can wait out or an operator can fix
 * (connection, resources, shutdown, lock timeout, read-only standby, I/O,
 * and deadlocks, which also set s->retry) is STORE_UNAVAILABLE;
 * constraints are STORE_CONFLICT, a missing referenced lead
 * STORE_NOT_FOUND; the rest is STORE_ERROR. Logged; outages once. */
store_rc_t pg_map_error(pg_store_t *s, const PGresult *r);

/* Logs that the connection is lost (msg: why), once per outage. */
void pg_lost(pg_store_t *s, const char *msg);

/* Copies libpq's message into out without its trailing newline. */
void pg_message(const char *msg, char *out, size_t outsz);

/* Prepares statement id on this connection unless it already is, and
 * writes its name into name; NULL on success, else the failed result. */
#define PG_STMT_NAME_MAX 16
PGresult *pg_prepare(pg_store_t *s, enum pg_stmt_id id, char name[PG_STMT_NAME_MAX]);
/* The name statement id is prepared under. */
void pg_stmt_name(enum pg_stmt_id id, char name[PG_STMT_NAME_MAX]);

/* --- params.c ----------------------------------------------------------- */

/* Statement parameters, all in binary. Integers and UUIDs are encoded into
 * buf; texts point at the caller's bytes, which must outlive the call. */
typedef struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    unsigned char buf[PG_MAX_PARAMS][UUID_BYTES]; /* the widest binary value */
    char own[PG_OWN_MAX];                         /* texts made for this statement */
    size_t nown;
    bool full; /* own ran out of room: the statement must not run */
} pg_params_t;

void pgp_null(pg_params_t *p);
void pgp_int8(pg_params_t *p, int64_t x);
void pgp_int4(pg_params_t *p, int32_t x);
void pgp_opt_int8(pg_params_t *p, bool set, int64_t x);
void pgp_opt_int4(pg_params_t *p, bool set, int32_t x);
void pgp_text(pg_params_t *p, text_ref_t t); /* NULL when unset */
void pgp_str(pg_params_t *p, const char *s);
/* The folding of t (model/text.c), kept in p->own; NULL when unset. */
void pgp_fold(pg_params_t *p, text_ref_t t);
/* Room for n bytes in p->own, or NULL (and p->full) when there is none. */
char *pgp_own(pg_params_t *p, size_t n);
/* A text parameter in text format (an array literal: one in p->own, or a
 * pg_array_t's buffer): s[n] must be a NUL, since libpq reads text-format
 * parameters up to it. */
void pgp_own_text(pg_params_t *p, const char *s, size_t n);
/* A signing key's pem, created_at, signed_until, retired_at (admin.c). */
void pgp_signing_key(pg_params_t *p, const store_key_t *key);
/* A UUID as its 16 bytes; "" is NULL. False for text that is not a
 * canonical UUID (which names no record). */
bool pgp_uuid(pg_params_t *p, const char *id);
/* App and the key ids (lead id, then follow id if id2 is not NULL); false
 * when an id is empty or not a UUID: such a key names no record. */
bool pgp_key(pg_params_t *p, int64_t app, const char *id, const char *id2);
/* A record's attributes, name (title) to status in column order; false if
 * an id is not a UUID. */
bool pg_lead_values(pg_params_t *p, const lead_t *v);
void pg_follow_values(pg_params_t *p, const follow_t *v);
/* The parameters of Q_LEAD_INSERT / Q_FOLLOW_INSERT (the import's too);
 * false if an id is not a UUID. */
bool pg_lead_params(pg_params_t *p, int64_t app, const lead_t *l);
bool pg_follow_params(pg_params_t *p, int64_t app, const follow_t *f);
/* Parameters as they are sent, their values elsewhere: a read kept for
 * later (async.c) holds these, not the larger pg_params_t. */
typedef struct pg_args {
    int n;
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
} pg_args_t;
/* Copies src's values into *heap (malloc'd, the caller frees it; NULL when
 * there are none) and points dst at them, so that dst no longer points at
 * src or the caller's bytes. False when out of memory. */
bool pg_params_copy(pg_args_t *dst, const pg_params_t *src, char **heap);

/* A binary integer column of any width (bool, int2, int4, int8). */
int64_t pg_get_int(const PGresult *r, int row, int col);
text_ref_t pg_get_text(const PGresult *r, int row, int col);
/* A binary UUID column as canonical lowercase text; "" when NULL. */
void pg_get_uuid(const PGresult *r, int row, int col, char out[UUID_BUFSZ]);
/* The rows a command changed. */
int64_t pg_affected(const PGresult *r);
/* Wipes a result's values (a private key) before it is freed. */
void pg_wipe(PGresult *r);

/* Read SCHEMA_LEAD_COLS / SCHEMA_FOLLOW_COLS from column c0 of a row, and
 * SCHEMA_APP_COLS from column 0; strings point into r. */
void pg_read_lead(const PGresult *r, int row, int c0, lead_t *l);
void pg_read_follow(const PGresult *r, int row, int c0, follow_t *f);
void pg_read_app(const PGresult *r, int row, store_app_t *a);
/* Hand each row's record (from column c0; rows whose id is NULL are the
 * empty page of a list) to cb. */
typedef void (*pg_emit_fn)(const PGresult *r, int c0, void *cb, void *ctx);
void pg_emit_leads(const PGresult *r, int c0, void *cb, void *ctx);   /* cb: store_lead_cb */
void pg_emit_follows(const PGresult *r, int c0, void *cb, void *ctx); /* cb: store_follow_cb */

/* --- dyn.c -------------------------------------------------------------- */

/* The statement id of sql (a copy is kept), for pg_read and the rest; -1
 * when out of memory. */
int pg_dyn_id(pg_store_t *s, const char *sql);
/* The SQL of statement id, fixed or made at run time. */
const char *pg_stmt_text(const pg_store_t *s, int id);
/* Called by pg_prepare before it prepares id under name. */
void pg_dyn_before_prepare(pg_store_t *s, int id, const char *name);
/* A new connection holds none of the old one's statements. */
void pg_dyn_reconnected(pg_store_t *s);
void pg_dyn_free(pg_store_t *s);

/* --- fold.c ------------------------------------------------------------- */

/* An array literal being written ("{1,2}", "{\"a b\",NULL}"), on the heap. */
typedef struct pg_array {
    char *buf;
    size_t len, cap;
    bool oom;
} pg_array_t;
void pg_array_begin(pg_array_t *a); /* empties it, and opens the brace */
void pg_array_raw(pg_array_t *a, const char *s, size_t n);
void pg_array_text(pg_array_t *a, text_ref_t t); /* quoted and escaped; NULL when unset */
void pg_array_int(pg_array_t *a, int64_t v);
void pg_array_end(pg_array_t *a);

/* Migration 5's backfill: folds every stored lead's name and source, in
 * the migration's transaction. */
store_rc_t pg_fold_backfill(pg_store_t *s);
extern const char *const pg_fold_declare_sql, *const pg_fold_fetch_sql, *const pg_fold_update_sql;

/* --- totals.c ------------------------------------------------------------ */

/* Says what the next lead write does to lead_totals (created: the new
 * lead, for an insert); PG_TOTALS_NONE after it. */
void pg_totals_expect(pg_store_t *s, enum pg_totals_op op, int64_t app, const lead_t *created);
/* Reads the write's changes from the result of its statement (txn.c). */
void pg_totals_note(pg_store_t *s, const PGresult *r);
/* The same for an insert sent in pipeline mode, whose result comes later:
 * it is taken to insert its row, since its failure fails its unit of work
 * (txn.c), whose changes are then dropped. */
void pg_totals_note_sent(pg_store_t *s);
/* Adds d's figures to its cell of t; STORE_ERROR when out of memory. */
store_rc_t pg_totals_add(pg_totals_set_t *t, const pg_totals_delta_t *d);
/* Adds every cell of from to into's (from is then to be emptied; it may
 * be at once); STORE_ERROR when out of memory. */
store_rc_t pg_totals_merge(pg_totals_set_t *into, pg_totals_set_t *from);
/* Empties t (the room of a large one is given back). */
void pg_totals_clear(pg_totals_set_t *t);
void pg_totals_free(pg_totals_set_t *t);
/* Keeps the changes of the statement that just succeeded in its unit's. */
store_rc_t pg_totals_keep(pg_store_t *s);
/* Writes the transaction's changes with run, in order, and forgets them. */
store_rc_t pg_totals_flush(pg_store_t *s,
                           store_rc_t (*run)(pg_store_t *, enum pg_stmt_id, const pg_params_t *));

/* admin.c: records an issued token (the import's too); *added is false
 * when its jti was already there. */
store_rc_t pg_token_insert(pg_store_t *s, const store_token_t *t, bool *added);

/* --- pipe.c ------------------------------------------------------------- */

/* Sends statement id with p without waiting for its answer (bulk import);
 * a failure may be returned by a later call instead. */
store_rc_t pg_pipe_send(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p);
/* Collects what is pending and leaves pipeline mode (a no-op outside it). */
store_rc_t pg_pipe_leave(pg_store_t *s);
/* pg_pipe_leave for pipelined statements of a transaction that goes on
 * (a unit of work, the totals at commit): their first failure is
 * returned, and forgotten, so that the statements that follow (ROLLBACK
 * TO, or the next transaction's) may run. */
store_rc_t pg_pipe_end(pg_store_t *s);

/* --- txn.c -------------------------------------------------------------- */

/* Runs a statement without parameters or rows (transaction control), by
 * the simple protocol; BEGIN is tried once more on a new connection when
 * the old one was dead. */
store_rc_t pg_exec_sql(pg_store_t *s, const char *sql);
/* Runs statement id inside the transaction the caller opened with
 * pg_tx_begin (no savepoint: a failure ends the transaction, which the
 * caller then rolls back). *out as pg_write's. */
store_rc_t pg_run_in_tx(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, PGresult **out);
store_rc_t pg_tx_begin(pg_store_t *s, const char *sql);
store_rc_t pg_tx_commit(pg_store_t *s);
void pg_tx_rollback(pg_store_t *s);

/* Runs fn as one write of several statements (its own transaction, or a
 * savepoint in a batch), each run by pg_run_in_tx, or by pg_write, which
 * inside a unit takes no savepoint of its own (and may pipeline: see
 * unit_sends); retries deadlocks. What fn returns, and the first failure
 * of a pg_write inside it, decide: anything but STORE_OK undoes all of it,
 * its lead counts and totals too. A unit begun inside a unit is part of
 * it. */
typedef store_rc_t (*pg_unit_fn)(pg_store_t *s, void *ctx);
store_rc_t pg_write_unit(pg_store_t *s, pg_unit_fn fn, void *ctx);

/* Runs statement id as one write (its own transaction, or a savepoint in
 * a batch), retrying deadlocks. When it changes a row and count_delta is
 * not 0, count_app's lead count changes by count_delta in the same
 * transaction. On STORE_OK the result is put in *out (if out is not NULL;
 * the caller PQclear()s it), else *out is NULL. */
store_rc_t pg_write(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                    int count_delta, PGresult **out);
/* Runs a read: alone one statement, hence one snapshot; inside a batch a
 * savepoint like a write (a failed statement would otherwise end the whole
 * batch's transaction). *out as pg_write's, and never NULL on STORE_OK. */
store_rc_t pg_read(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, PGresult **out);
/* Runs a write of one record: STORE_NOT_FOUND when it changed and
 * returned no row; rows returned go to emit (may be NULL) with cb and ctx. */
store_rc_t pg_one_row(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                      int count_delta, pg_emit_fn emit, void *cb, void *ctx);
/* Runs statement id as one write; *affected gets the rows it changed
 * (0 on failure). */
store_rc_t pg_write_count(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int *affected);
/* A batch's transaction: BEGIN, and the lead counts at COMMIT. */
extern const store_tx_ops_t pg_batch_tx;

/* --- async.c ------------------------------------------------------------ */

/* Where a read's rows go: the callback and its context of the store.h
 * function, and its out parameters. */
typedef struct pg_rows {
    pg_emit_fn emit; /* for a record read: how a row becomes cb's record */
    void *cb, *ctx;
    void *out;                 /* app_find's store_app_t; a summary's store_summary_t */
    int64_t *total;            /* a list's total */
    int c0;                    /* a find's: the column its records start at (store/find.h) */
    bool one_lead;             /* a find of one lead's follows: no row is STORE_NOT_FOUND */
    unsigned stages, statuses; /* a summary's: the cells its filter keeps */
} pg_rows_t;
/* Turns a read's result into rows for to, and its rc (STORE_NOT_FOUND
 * when there is nothing). Called once, with the whole result. */
typedef store_rc_t (*pg_rows_fn)(const PGresult *r, const pg_rows_t *to);
/* A record read's pg_rows_fn: the first row to emit, or STORE_NOT_FOUND. */
store_rc_t pg_rows_one(const PGresult *r, const pg_rows_t *to);

/* Runs read id with p and hands its result to fn: later, from the loop,
 * when async is not NULL and the store has a loop (STORE_PENDING, then
 * async->done with fn's rc, or the failure), else at once through txn.c's
 * pg_read (*to and p need only last the call; to's pointers until done). */
store_rc_t pg_read_rows(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, pg_rows_fn fn,
                        const pg_rows_t *to, const store_async_t *async);
/* The same for a statement made at run time (sql: a find's): without a
 * loop prepared through dyn.c like any other; with one, sent unnamed and
 * planned for its parameters. */
store_rc_t pg_read_rows_sql(pg_store_t *s, const char *sql, const pg_params_t *p, pg_rows_fn fn,
                            const pg_rows_t *to, const store_async_t *async);
/* Closes the store and frees it (async.c); pg_close does the same
 * unless a loop callback of the store is running (a read's done may close
 * it): then async.c does when that callback ends. */
void pg_close_now(pg_store_t *s);
/* Lets go of the loop's watch and timers; no read may be pending. */
void pg_async_close(pg_store_t *s);
/* The session's statement_timeout, in ms, for a read left_ns before its
 * deadline (pg_read_deadline), when cur_ms is the one it was last given
 * (0 for none): at least 1, never more than the time left, and cur_ms kept
 * while it is less than 10 ms under that (async.c). */
int pg_read_ms(int cur_ms, int64_t left_ns);
/* A reader's snapshot on the loop (bulk.c's store_snapshot_begin/end):
 * begun before its first read, on the connection that read makes; ended by
 * closing that connection (no read may be pending), after which the next
 * read makes a new one, outside any snapshot. */
store_rc_t pg_async_snapshot_begin(pg_store_t *s);
void pg_async_snapshot_end(pg_store_t *s);

/* webhooks.c: the webhook functions (store_ops_t.webhook); bulk copy's
 * counts of webhooks and events into out, and their export (after the
 * follows, in the export's snapshot). */
extern const store_webhook_ops_t pg_webhook_ops;
store_rc_t pg_webhook_counts(pg_store_t *s, store_counts_t *out);
store_rc_t pg_webhook_export(pg_store_t *s, const store_export_t *cb, void *ctx);

/* --- the operations ------------------------------------------------------
 * pg_close (async.c), pg_migrate (migrate.c), pg_lead_* (leads.c; pg_lead_trash and
 * pg_lead_recover in trash.c, with pg_trash_*), pg_idem_* (idem.c), pg_history_* (history.c), pg_follow_*
 * (follows.c), pg_app_*, pg_keys, pg_key_add, pg_key_update, pg_token_record, pg_token_revoke,
 * pg_revoked_since, pg_backup (admin.c), pg_copy_* (bulk.c), pg_set_loop and pg_read_deadline (async.c), each
 * with the type of its store_ops_t slot. */
STORE_OPS_DECLARE(pg)

#endif
