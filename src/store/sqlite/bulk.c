/*
 * bulk.c: crmd copy on SQLite: counting, exporting everything from one
 * read snapshot, and importing inside one write transaction.
 *
 * These run once per process (never while serving), so their statements
 * are prepared for one use instead of kept. The import's leads and
 * follows go through the same inserts as the API's (leads.c, follows.c).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

store_rc_t sq_copy_count(store_t *base, store_counts_t *out)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_prepare_once(s, sq_copy_count_sql);
    if (st == NULL) return STORE_ERROR;
    int src = sqlite3_step(st);
    store_rc_t rc = STORE_OK;
    if (src == SQLITE_ROW) {
        out->apps = sqlite3_column_int64(st, 0);
        out->leads = sqlite3_column_int64(st, 1);
        out->follows = sqlite3_column_int64(st, 2);
        out->revoked = sqlite3_column_int64(st, 3);
        out->lead_count_sum = sqlite3_column_int64(st, 4);
        out->keys = sqlite3_column_int64(st, 5);
        out->issued = sqlite3_column_int64(st, 6);
        out->trash = sqlite3_column_int64(st, 7);
        out->trash_follows = sqlite3_column_int64(st, 8);
        out->history = sqlite3_column_int64(st, 9);
        out->idem = sqlite3_column_int64(st, 10);
    } else {
        rc = sq_map_rc(s, src);
    }
    sqlite3_finalize(st);
    return rc == STORE_OK ? sq_webhook_counts(s, out) : rc;
}

/* The export queries' rows (sq_export_row_fn): app_id is the last column,
 * so the record readers read the rest unchanged. */

static store_rc_t export_app(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    store_app_t app;
    sq_read_app(st, &app);
    return cb->app(ctx, &app);
}

static store_rc_t export_issued(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    store_token_t t = {.jti = sq_col_str(st, TOKEN_COL_JTI),
                       .app = sqlite3_column_int64(st, TOKEN_COL_APP),
                       .subject = sq_col_str(st, TOKEN_COL_SUBJECT),
                       .issued_at = sqlite3_column_int64(st, TOKEN_COL_ISSUED_AT),
                       .expires_at = sqlite3_column_int64(st, TOKEN_COL_EXPIRES_AT)};
    return cb->issued(ctx, &t);
}

static store_rc_t export_revoked(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    return cb->revoked(ctx, sq_col_str(st, 0), sqlite3_column_int64(st, 1));
}

static store_rc_t export_lead(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    lead_t l;
    sq_read_lead(st, &l);
    return cb->lead(ctx, sqlite3_column_int64(st, LEAD_NCOLS), &l);
}

static store_rc_t export_follow(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    follow_t f;
    sq_read_follow(st, &f);
    return cb->follow(ctx, sqlite3_column_int64(st, FOLLOW_NCOLS), &f);
}

static store_rc_t export_trashed(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    lead_t l;
    sq_read_lead(st, &l);
    return cb->trashed(ctx, sqlite3_column_int64(st, LEAD_NCOLS), &l,
                       sqlite3_column_int64(st, LEAD_NCOLS + 1));
}

static store_rc_t export_trashed_follow(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    follow_t f;
    sq_read_follow(st, &f);
    return cb->trashed_follow(ctx, sqlite3_column_int64(st, FOLLOW_NCOLS), &f);
}

static store_rc_t export_change(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    char id[UUID_BUFSZ], follow[UUID_BUFSZ], lead[UUID_BUFSZ];
    sq_col_id(st, HISTORY_COL_ID, id);
    sq_col_id(st, HISTORY_COL_FOLLOW, follow);
    sq_col_id(st, HISTORY_NCOLS + 1, lead);
    store_change_t c = {
        .id = id, .lead_id = lead, .follow_id = follow, .actor = sq_col_str(st, HISTORY_COL_ACTOR)};
    c.action = sqlite3_column_int(st, HISTORY_COL_ACTION);
    c.at = sqlite3_column_int64(st, HISTORY_COL_AT);
    c.changes = sq_col_text(st, HISTORY_COL_CHANGES);
    c.seq = sqlite3_column_int64(st, HISTORY_COL_SEQ);
    return cb->change(ctx, sqlite3_column_int64(st, HISTORY_NCOLS), &c);
}

/* The columns: hash, status, location, body, created_at, app_id, key. */
static store_rc_t export_idem(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    store_idem_t idem = {.hash = sq_col_str(st, 0), .location = sq_col_str(st, 2)};
    idem.status = sqlite3_column_int(st, 1);
    idem.body = sq_col_text(st, 3);
    idem.created_at = sqlite3_column_int64(st, 4);
    return cb->idem(ctx, sqlite3_column_int64(st, 5), sq_col_str(st, 6), &idem);
}

/* Steps the one-use export query sql, handing each row to fn. */
static store_rc_t export_rows(sqlite_store_t *s, const char *sql, sq_export_row_fn fn,
                              const store_export_t *cb, void *ctx)
{
    sqlite3_stmt *st = sq_prepare_once(s, sql);
    if (st == NULL) return STORE_ERROR;
    store_rc_t rc = sq_export_step(s, st, fn, cb, ctx);
    sqlite3_finalize(st);
    return rc;
}

store_rc_t sq_copy_export(store_t *base, const store_export_t *cb, void *ctx, store_counts_t *total)
{
    static const sq_export_row_fn fns[] = {
        export_app,     export_issued,         export_revoked, export_lead, export_follow,
        export_trashed, export_trashed_follow, export_change,  export_idem};
    _Static_assert(sizeof fns / sizeof fns[0] == sizeof sq_export_sql / sizeof sq_export_sql[0],
                   "one reader an export query");
    sqlite_store_t *s = sq_of(base);
    /* One read transaction: every query sees the same snapshot. */
    store_rc_t rc = sq_begin_read(s);
    if (rc != STORE_OK) return rc;
    rc = sq_copy_count(base, total);
    if (rc == STORE_OK) rc = store_export_keys(base, cb, ctx);
    for (size_t i = 0; rc == STORE_OK && i < sizeof fns / sizeof fns[0]; i++)
        rc = export_rows(s, sq_export_sql[i], fns[i], cb, ctx);
    if (rc == STORE_OK) rc = sq_webhook_export(s, cb, ctx);
    return sq_finish(s, rc);
}

/* A deferred BEGIN: the snapshot is taken by the first read in it. */
store_rc_t sq_snapshot_begin(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    assert(s->base.batch == BATCH_NONE);
    return sq_begin_read(s);
}

void sq_snapshot_end(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    if (!sqlite3_get_autocommit(s->db)) sq_exec(s, Q_ROLLBACK); /* read only: nothing to commit */
}

store_rc_t sq_copy_import_begin(store_t *base, store_counts_t *before)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_exec(s, Q_BEGIN_WRITE);
    if (rc == STORE_OK) {
        rc = sq_copy_count(base, before);
        if (rc != STORE_OK) sq_exec(s, Q_ROLLBACK);
    }
    /* The import's transaction is a batch's: the API's own writes (a
     * trashing, a history entry, an idempotency key) run in it as
     * savepoints instead of transactions of their own. */
    if (rc == STORE_OK) {
        s->base.batch = BATCH_OPEN;
        s->in_import = true;
    }
    return rc;
}

/* Runs a one-use write with texts ?1 and ?2 (text2 may be NULL: then not
 * bound, and the integers start at ?2) and integers after them; *id gets
 * the id it returns, when id is not NULL. */
static store_rc_t import_one(sqlite_store_t *s, const char *sql, const char *text, const char *text2,
                             const int64_t *ints, int nints, int64_t *id)
{
    sqlite3_stmt *st = sq_prepare_once(s, sql);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, text);
    if (text2 != NULL) sq_bind_str(st, 2, text2);
    for (int i = 0; i < nints; i++)
        sqlite3_bind_int64(st, text2 != NULL ? 3 + i : 2 + i, ints[i]);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && id != NULL) {
        *id = sqlite3_column_int64(st, 0);
        src = sqlite3_step(st);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sqlite3_finalize(st);
    return rc;
}

store_rc_t sq_copy_import_key(store_t *base, const store_key_t *key)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_prepare_once(s, sq_import_key_sql);
    if (st == NULL) return STORE_ERROR;
    sq_bind_signing_key(st, key);
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_copy_import_app(store_t *base, const store_app_t *app, int keep_id, int64_t *id)
{
    int64_t ints[3] = {app->disabled ? 1 : 0, app->created_at, app->id};
    return import_one(sq_of(base), sq_import_app_sql[keep_id ? 1 : 0], app->key, app->name, ints,
                      keep_id ? 3 : 2, id);
}

store_rc_t sq_copy_import_issued(store_t *base, const store_token_t *token, int *added)
{
    int changes = 0;
    store_rc_t rc = sq_token_insert(sq_of(base), token, &changes);
    *added = rc == STORE_OK && changes > 0;
    return rc;
}

store_rc_t sq_copy_import_revoked(store_t *base, const char *jti, int64_t revoked_at, int *added)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = import_one(s, sq_import_revoked_sql, jti, NULL, &revoked_at, 1, NULL);
    *added = rc == STORE_OK && sqlite3_changes(s->db) > 0;
    return rc;
}

store_rc_t sq_copy_import_lead(store_t *base, int64_t app, const lead_t *l)
{
    return sq_insert_lead(sq_of(base), app, l);
}

store_rc_t sq_copy_import_follow(store_t *base, int64_t app, const follow_t *f)
{
    return sq_insert_follow(sq_of(base), app, f);
}

store_rc_t sq_copy_import_end(store_t *base, int commit)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = commit ? STORE_OK : STORE_ERROR;
    if (s->base.batch == BATCH_BROKEN) rc = STORE_UNAVAILABLE;
    s->base.batch = BATCH_NONE;
    s->in_import = false;
    if (rc == STORE_OK) rc = sq_stage_flush(s); /* the counts count every lead */
    if (rc == STORE_OK) {
        int src = sqlite3_exec(s->db, sq_import_counts_sql, NULL, NULL, NULL);
        rc = src == SQLITE_OK ? STORE_OK : sq_map_rc(s, src);
    }
    rc = sq_finish(s, rc);
    return commit ? rc : STORE_OK;
}
