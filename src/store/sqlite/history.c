/*
 * history.c: a lead's history on SQLite (store/schema.h, migration 8).
 */
#include "store/sqlite/sqlite_int.h"

/* While creates wait in the staging table (sqlite_int.h: staged creates),
 * their history entries wait beside them and go into lead_history by one
 * statement after them (sq_stage_flush), in the order recorded: one
 * INSERT ... SELECT costs less than a statement each. Any other write of
 * the history moves what waits first (Q_HISTORY_ADD is not stage-safe), so
 * the entries are numbered (seq) in the order they were recorded, as if
 * inserted one by one, and chained (migration 17) as they would have
 * been. */
static enum sq_stmt_id add_stmt(const sqlite_store_t *s, const store_change_t *c)
{
    if (c->seq > 0) return Q_HISTORY_IMPORT;
    /* Only a lead's creation waits: its lead waits too (a create inside
     * a batch is always staged), with no entry before it, which the move
     * relies on (sql.c). */
    return s->staged > 0 && c->action == STORE_CHANGE_CREATED ? Q_STAGE_HISTORY : Q_HISTORY_ADD;
}

/* Makes entry seq the newest of its lead's chain (migration 17), in the
 * lead's row in leads, or else in leads_trash. A lead in neither leaves the
 * entry out of every chain, as no lead's history showed it before. */
static store_rc_t link_head(sqlite_store_t *s, int64_t app, const char *lead, int64_t seq)
{
    int n = 0;
    store_rc_t rc = sq_run_keyed(s, Q_HISTORY_HEAD, app, lead, seq, &n);
    return rc == STORE_OK && n == 0 ? sq_run_keyed(s, Q_HISTORY_HEAD_TRASHED, app, lead, seq, &n) : rc;
}

static void bind_change(sqlite3_stmt *st, int64_t app, const store_change_t *c)
{
    if (c->seq > 0) sqlite3_bind_int64(st, 9, c->seq);
    sq_bind_key(st, app, c->lead_id, c->id);
    sqlite3_bind_int(st, 4, c->action);
    sq_bind_str(st, 5, c->actor);
    sqlite3_bind_int64(st, 6, c->at);
    sq_bind_id(st, 7, c->follow_id);
    sq_bind_text(st, 8, c->changes.ptr != NULL ? c->changes : (text_ref_t){"{}", 2});
}

store_rc_t sq_history_add(store_t *base, int64_t app, const store_change_t *c)
{
    sqlite_store_t *s = sq_of(base);
    /* One statement, then the chain's link (none for a staged entry: the
     * move links it). Inside a batch the pair takes no savepoint: if the
     * link fails after the entry went in, the batch may not commit
     * (BATCH_BROKEN), which undoes both, as a failed recording undoes its
     * batch's every write anyway (docs/architecture.md). */
    enum sq_stmt_id id = add_stmt(s, c);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, id, true, &rc);
    if (st == NULL) return rc;
    bind_change(st, app, c);
    int staged = 0;
    if (id != Q_STAGE_HISTORY) {
        rc = sq_run(s, st);
    } else if ((rc = sq_step_changes(s, st, &staged)) == STORE_OK && staged == 0) {
        /* Its lead does not wait beside it (sql.c stages an entry only
         * there): recorded and linked at once, after what waits moved. */
        id = Q_HISTORY_ADD;
        if ((st = sq_stmt(s, id)) == NULL) {
            rc = STORE_ERROR;
        } else {
            bind_change(st, app, c);
            rc = sq_run(s, st);
        }
    }
    if (rc == STORE_OK && id != Q_STAGE_HISTORY) {
        /* lead_history has no trigger: the last row inserted is the entry. */
        rc = link_head(s, app, c->lead_id, c->seq > 0 ? c->seq : sqlite3_last_insert_rowid(s->db));
        if (rc != STORE_OK && s->base.batch != BATCH_NONE) s->base.batch = BATCH_BROKEN;
    }
    return sq_finish_single(s, rc);
}

/* Steps the page statement, passing each change to cb. */
static store_rc_t change_rows(sqlite_store_t *s, sqlite3_stmt *st, store_change_cb cb, void *ctx)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        char id[UUID_BUFSZ], follow[UUID_BUFSZ];
        sq_col_id(st, HISTORY_COL_ID, id);
        sq_col_id(st, HISTORY_COL_FOLLOW, follow);
        store_change_t c = {.id = id, .follow_id = follow, .actor = sq_col_str(st, HISTORY_COL_ACTOR)};
        c.action = sqlite3_column_int(st, HISTORY_COL_ACTION);
        c.at = sqlite3_column_int64(st, HISTORY_COL_AT);
        c.changes = sq_col_text(st, HISTORY_COL_CHANGES);
        cb(ctx, &c, sqlite3_column_int64(st, HISTORY_COL_SEQ));
    }
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_history_list(store_t *base, int64_t app, const char *lead_id, const store_history_query_t *q,
                           int64_t *total, store_change_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *cnt = sq_stmt(s, Q_HISTORY_COUNT), *st = sq_stmt(s, Q_HISTORY_PAGE);
    if (cnt == NULL || st == NULL) return STORE_ERROR;
    store_rc_t rc = sq_begin_read(s);
    if (rc != STORE_OK) return rc;
    sq_bind_key(cnt, app, lead_id, NULL);
    int src = sqlite3_step(cnt);
    rc = src == SQLITE_ROW ? STORE_OK : src == SQLITE_DONE ? STORE_NOT_FOUND : sq_map_rc(s, src);
    if (rc == STORE_OK) *total = sqlite3_column_int64(cnt, 0);
    sq_reset(cnt);
    /* A page past the last entry is empty: known from the count, where the
     * walk would go down the whole chain to find it. */
    if (rc == STORE_OK && (q->after || q->offset < *total)) {
        sq_bind_key(st, app, lead_id, NULL);
        sqlite3_bind_int(st, 3, q->limit);
        sqlite3_bind_int64(st, 4, q->after ? 0 : q->offset);
        sqlite3_bind_int64(st, 5, q->after ? q->after_seq : INT64_MAX);
        rc = change_rows(s, st, cb, ctx);
        sq_reset(st);
    }
    return sq_finish(s, rc);
}
