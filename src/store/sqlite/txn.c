/*
 * txn.c: SQLite transactions: how a write, a read of several statements
 * and a group commit begin and end.
 *
 * A write alone is BEGIN IMMEDIATE ... COMMIT: it takes the database's
 * write lock at once, so two connections never deadlock upgrading a read
 * lock, and waits for it at most the busy timeout. Inside a batch
 * (store_batch_begin) the batch's transaction holds that lock throughout,
 * and each write is a savepoint in it, so one failed write is undone alone.
 */
#include "store/sqlite/sqlite_int.h"

store_rc_t sq_exec(sqlite_store_t *s, enum sq_stmt_id id)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    return st != NULL ? sq_run(s, st) : STORE_ERROR;
}

/* Inside a batch: refuses to go on once the batch's transaction is gone.
 * SQLite may roll a whole transaction back by itself (a full disk, an I/O
 * error); a write run after that would commit on its own, in autocommit,
 * while the batch is answered as failed. */
static store_rc_t batch_usable(sqlite_store_t *s)
{
    if (s->base.batch == BATCH_BROKEN || sqlite3_get_autocommit(s->db)) {
        s->base.batch = BATCH_BROKEN;
        return STORE_UNAVAILABLE;
    }
    return STORE_OK;
}

store_rc_t sq_begin_write(sqlite_store_t *s)
{
    if (s->base.batch != BATCH_NONE) {
        store_rc_t rc = batch_usable(s);
        return rc != STORE_OK ? rc : sq_exec(s, Q_SAVEPOINT);
    }
    return sq_exec(s, Q_BEGIN_WRITE);
}

store_rc_t sq_begin_single(sqlite_store_t *s)
{
    return s->base.batch != BATCH_NONE ? batch_usable(s) : sq_exec(s, Q_BEGIN_WRITE);
}

store_rc_t sq_begin_read(sqlite_store_t *s)
{
    if (s->held) sq_release(s);
    return sq_exec(s, Q_BEGIN_READ);
}

store_rc_t sq_finish(sqlite_store_t *s, store_rc_t rc)
{
    if (s->base.batch != BATCH_NONE) {
        /* Undo only this write; the batch's transaction goes on. */
        bool moved = s->staged == 0; /* staged creates may have been moved inside it */
        if (rc != STORE_OK && sq_exec(s, Q_ROLLBACK_TO) != STORE_OK)
            s->base.batch = BATCH_BROKEN; /* the batch can no longer be trusted */
        store_rc_t rrc = sq_exec(s, Q_RELEASE);
        /* A move undone with the write left its creates staged again: moved
         * now, outside any write, they stay moved whatever fails next. Else
         * every failed write of the batch would move them all and undo it. */
        if (rc != STORE_OK && moved && rrc == STORE_OK && batch_usable(s) == STORE_OK) sq_stage_flush(s);
        if (batch_usable(s) != STORE_OK) return STORE_UNAVAILABLE;
        return rc != STORE_OK ? rc : rrc;
    }
    if (rc == STORE_OK) {
        rc = sq_exec(s, Q_COMMIT);
        if (rc == STORE_OK) {
            sq_note_commit();
            return STORE_OK;
        }
    }
    if (!sqlite3_get_autocommit(s->db)) sq_exec(s, Q_ROLLBACK);
    return rc;
}

store_rc_t sq_finish_single(sqlite_store_t *s, store_rc_t rc)
{
    if (s->base.batch != BATCH_NONE) return batch_usable(s) != STORE_OK ? STORE_UNAVAILABLE : rc;
    return sq_finish(s, rc);
}

sqlite3_stmt *sq_write_stmt(sqlite_store_t *s, enum sq_stmt_id id, bool single, store_rc_t *rc)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) {
        *rc = STORE_ERROR;
        return NULL;
    }
    *rc = single ? sq_begin_single(s) : sq_begin_write(s);
    return *rc == STORE_OK ? st : NULL;
}

store_rc_t sq_read_one(sqlite_store_t *s, enum sq_stmt_id id, int64_t app, const char *id1, const char *id2,
                       sq_row_fn emit, void *cb, void *ctx)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, id1, id2);
    return sq_held_done(s, sq_step_found(s, st, emit, cb, ctx));
}

store_rc_t sq_update(sqlite_store_t *s, int64_t app, const sq_update_t *u, const void *patch, int64_t now,
                     void *cb, void *ctx)
{
    /* A lead or follow update names only the attributes it sets, one
     * statement per set of attributes (a handful in practice, kept by conn.c):
     * see sq_update_sql. Other updates (a webhook's) are one fixed statement. */
    char sql[SQ_UPDATE_SQL_MAX];
    bool partial = u->stmt == Q_LEAD_UPDATE || u->stmt == Q_FOLLOW_UPDATE;
    sqlite3_stmt *st =
        partial ? sq_dyn_stmt(s, sq_update_sql(u->stmt, u->fields, sql, sizeof sql)) : sq_stmt(s, u->stmt);
    if (st == NULL) return STORE_ERROR;
    store_rc_t rc = sq_begin_single(s);
    if (rc != STORE_OK) return rc;
    sq_bind_key(st, app, u->id, u->id2);
    u->bind(st, patch, now);
    return sq_finish_single(s, sq_step_found(s, st, u->emit, cb, ctx));
}

/* A batch is one BEGIN IMMEDIATE transaction (common.c does the rest). */
static store_rc_t tx_begin(store_t *base)
{
    return sq_exec(sq_of(base), Q_BEGIN_WRITE);
}

/* The writer's batch commits leave their sync owed (store_sync_defer):
 * taken here, right after the COMMIT, for the writer to hand on. */
static store_rc_t tx_commit(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    if (s->defer_syncs) sq_vfs_defer_next(true);
    store_rc_t rc = sq_exec(s, Q_COMMIT);
    if (s->defer_syncs) {
        sq_vfs_defer_next(false);
        /* A ticket not taken yet is covered by this one's sync. */
        sq_vfs_deferred(&s->owed);
    }
    if (rc == STORE_OK) sq_note_commit();
    return rc;
}

static void tx_rollback(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    if (!sqlite3_get_autocommit(s->db)) sq_exec(s, Q_ROLLBACK);
}

const store_tx_ops_t sq_batch_tx = {.begin = tx_begin, .commit = tx_commit, .rollback = tx_rollback};

store_rc_t sq_run_keyed(sqlite_store_t *s, enum sq_stmt_id id, int64_t app, const char *lead, int64_t v3,
                        int *changes)
{
    if (id == Q__COUNT) return STORE_OK;
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, lead, NULL);
    if (v3 >= 0) sqlite3_bind_int64(st, 3, v3);
    return sq_step_changes(s, st, changes);
}
