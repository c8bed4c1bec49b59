/*
 * trash.c: the trash on SQLite (store/schema.h, migration 8): a deleted
 * lead's rows move to leads_trash and follows_trash and back, each move
 * one write (a savepoint inside a batch), with the app's lead count.
 *
 * The triggers on leads keep the totals and the search index as the rows
 * leave and come back, and the foreign key's cascade takes the follows
 * out of follows once they are copied.
 */
#include "store/sqlite/sqlite_int.h"

/* The moves of a lead with its follows: copy the lead (none copied: not
 * there), copy the follows, take both out of where they were. */
static store_rc_t move(sqlite_store_t *s, int64_t app, const char *id, int64_t now,
                       const enum sq_stmt_id q[4])
{
    int n = 0, ignored;
    store_rc_t rc = sq_run_keyed(s, q[0], app, id, now, &n);
    if (rc == STORE_OK && n == 0) rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) rc = sq_run_keyed(s, q[1], app, id, -1, &ignored);
    if (rc == STORE_OK) rc = sq_run_keyed(s, q[2], app, id, -1, &ignored);
    if (rc == STORE_OK) rc = sq_run_keyed(s, q[3], app, id, -1, &ignored);
    return rc;
}

store_rc_t sq_lead_trash(store_t *base, int64_t app, const char *id, int64_t now)
{
    /* The follows leave follows by the foreign key's cascade. */
    static const enum sq_stmt_id q[4] = {Q_TRASH_LEAD_IN, Q_TRASH_FOLLOWS_IN, Q_LEAD_DELETE, Q__COUNT};
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    rc = move(s, app, id, now, q);
    /* crmd copy's import counts no lead as it goes: it counts them all at its end. */
    if (rc == STORE_OK && !s->in_import) rc = sq_add_lead_count(s, app, -1);
    s->local_writes++;
    return sq_finish(s, rc);
}

store_rc_t sq_lead_recover(store_t *base, int64_t app, const char *id, int64_t now, store_lead_cb cb,
                           void *ctx)
{
    static const enum sq_stmt_id q[4] = {Q_RECOVER_LEAD, Q_RECOVER_FOLLOWS, Q_TRASH_FOLLOWS_DELETE,
                                         Q_TRASH_LEAD_DELETE};
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    rc = move(s, app, id, now, q);
    if (rc == STORE_OK) rc = sq_add_lead_count(s, app, 1);
    if (rc == STORE_OK) rc = sq_read_one(s, Q_LEAD_GET, app, id, NULL, sq_emit_lead, (void *)cb, ctx);
    s->local_writes++;
    return sq_finish(s, rc);
}

store_rc_t sq_trash_purge(store_t *base, int64_t app, const char *id)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    int n = 0, ignored;
    rc = sq_run_keyed(s, Q_TRASH_FOLLOWS_DELETE, app, id, -1, &ignored);
    if (rc == STORE_OK) rc = sq_run_keyed(s, Q_HISTORY_DELETE, app, id, -1, &ignored);
    /* Nothing of it stays to be replayed either (found through its row). */
    if (rc == STORE_OK) rc = sq_run_keyed(s, Q_IDEM_FORGET_TRASHED, app, id, -1, &ignored);
    if (rc == STORE_OK) rc = sq_run_keyed(s, Q_TRASH_LEAD_DELETE, app, id, -1, &n);
    if (rc == STORE_OK && n == 0) rc = STORE_NOT_FOUND;
    return sq_finish(s, rc);
}

/* A row of Q_TRASH_GET: the lead, then its deleted_at. */
static void emit_trashed(sqlite3_stmt *st, void *cb, void *ctx)
{
    lead_t l;
    sq_read_lead(st, &l);
    ((store_trash_cb)cb)(ctx, &l, sqlite3_column_int64(st, LEAD_NCOLS));
}

store_rc_t sq_trash_get(store_t *base, int64_t app, const char *id, store_trash_cb cb, void *ctx)
{
    return sq_read_one(sq_of(base), Q_TRASH_GET, app, id, NULL, emit_trashed, (void *)cb, ctx);
}

store_rc_t sq_trash_due(store_t *base, int64_t before, int limit, store_trash_due_cb cb, void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_TRASH_DUE);
    int src = st == NULL ? SQLITE_ERROR : SQLITE_ROW;
    if (st != NULL && (sqlite3_bind_int64(st, 1, before) | sqlite3_bind_int(st, 2, limit)) != SQLITE_OK)
        src = SQLITE_ERROR;
    /* Each row is (app_id, id). */
    while (src == SQLITE_ROW && (src = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, sqlite3_column_int64(st, 0), sq_col_str(st, 1));
    if (st != NULL) sq_reset(st);
    return src == SQLITE_DONE ? STORE_OK : st == NULL ? STORE_ERROR : sq_map_rc(s, src);
}

/* Steps the page statement, passing each trashed lead to cb. */
static store_rc_t trash_rows(sqlite_store_t *s, sqlite3_stmt *st, store_trash_cb cb, void *ctx)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        lead_t l;
        sq_read_lead(st, &l);
        cb(ctx, &l, sqlite3_column_int64(st, LEAD_NCOLS));
    }
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_trash_list(store_t *base, int64_t app, const store_trash_query_t *q, int64_t *total,
                         store_trash_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_TRASH_PAGE);
    if (st == NULL) return STORE_ERROR;
    store_rc_t rc = sq_begin_read(s);
    if (rc != STORE_OK) return rc;
    rc = sq_query_int(s, Q_TRASH_COUNT, app, total);
    if (rc == STORE_OK) {
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_int(st, 2, q->limit);
        sqlite3_bind_int64(st, 3, q->after ? 0 : q->offset);
        sqlite3_bind_int64(st, 4, q->after ? q->after_deleted_at : INT64_MAX);
        sq_bind_str(st, 5, q->after ? q->after_id : "~"); /* "~" sorts after every UUID */
        rc = trash_rows(s, st, cb, ctx);
        sq_reset(st);
    }
    return sq_finish(s, rc);
}

store_rc_t sq_trash_expire(store_t *base, int64_t before, int limit, int *purged)
{
    sqlite_store_t *s = sq_of(base);
    *purged = 0;
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    int ignored;
    /* The leads' rows last: the others are found through them. */
    static const enum sq_stmt_id q[4] = {Q_TRASH_EXPIRE_FOLLOWS, Q_HISTORY_EXPIRE, Q_IDEM_EXPIRE_TRASH,
                                         Q_TRASH_EXPIRE_LEADS};
    for (int i = 0; i < 4 && rc == STORE_OK; i++) {
        sqlite3_stmt *st = sq_stmt(s, q[i]);
        if (st == NULL) {
            rc = STORE_ERROR;
            break;
        }
        sqlite3_bind_int64(st, 1, before);
        sqlite3_bind_int(st, 2, limit);
        rc = sq_step_changes(s, st, i < 3 ? &ignored : purged);
    }
    rc = sq_finish(s, rc);
    if (rc != STORE_OK) *purged = 0;
    return rc;
}
