/*
 * follows.c: follow operations on SQLite: create (only under an existing
 * lead), get, list with its total, partial update, delete.
 *
 * A follow's lead is checked explicitly rather than left to the foreign
 * key, so that a missing lead is STORE_NOT_FOUND (404) and never mistaken
 * for a duplicate (STORE_CONFLICT).
 */
#include "store/sqlite/sqlite_int.h"

/* STORE_OK if the lead exists in app, STORE_NOT_FOUND if not. */
static store_rc_t lead_exists(sqlite_store_t *s, int64_t app, const char *lead_id)
{
    sqlite3_stmt *st = sq_stmt(s, Q_LEAD_EXISTS);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, lead_id, NULL);
    int src = sqlite3_step(st);
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : src == SQLITE_DONE ? STORE_NOT_FOUND : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

store_rc_t sq_insert_follow(sqlite_store_t *s, int64_t app, const follow_t *f)
{
    sqlite3_stmt *st = sq_stmt(s, Q_FOLLOW_INSERT);
    if (st == NULL) return STORE_ERROR;
    store_rc_t rc = lead_exists(s, app, f->lead_id);
    if (rc != STORE_OK) return rc;
    sq_bind_follow_row(st, app, f);
    return sq_run(s, st);
}

store_rc_t sq_follow_create(store_t *base, int64_t app, const follow_t *f)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_single(s);
    if (rc != STORE_OK) return rc;
    return sq_finish_single(s, sq_insert_follow(s, app, f));
}

store_rc_t sq_follow_get(store_t *base, int64_t app, const char *lead_id, const char *id, store_follow_cb cb,
                         void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    return sq_read_one(s, Q_FOLLOW_GET, app, lead_id, id, sq_emit_follow, (void *)cb, ctx);
}

/* An empty page: whether the lead exists, and how many follows it has,
 * in one read transaction. */
static store_rc_t empty_page_total(sqlite_store_t *s, int64_t app, const char *lead_id, int64_t *total)
{
    sqlite3_stmt *cnt = sq_stmt(s, Q_FOLLOW_COUNT);
    if (cnt == NULL) return STORE_ERROR;
    store_rc_t rc = sq_begin_read(s);
    if (rc != STORE_OK) return rc;
    rc = lead_exists(s, app, lead_id);
    if (rc == STORE_OK) {
        sq_bind_key(cnt, app, lead_id, NULL);
        int src = sqlite3_step(cnt);
        *total = src == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0;
        rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
        sq_reset(cnt);
    }
    return sq_finish(s, rc);
}

/* Emits the rows of st from offset on, limit of them at most. The
 * statement has no LIMIT: with one, SQLite sorts into an ephemeral b-tree
 * (a pager and a table opened and closed per list, a tenth of a list's
 * CPU); without, into its in-memory sorter. Either way it reads and sorts
 * all of the lead's follows, which the count reads anyway. */
static store_rc_t step_page(sqlite_store_t *s, sqlite3_stmt *st, int64_t offset, int limit, sq_list_t *lr)
{
    int src = SQLITE_DONE;
    for (int64_t seen = 0; lr->n < limit && (src = sqlite3_step(st)) == SQLITE_ROW; seen++) {
        if (seen < offset) continue;
        if (lr->n++ == 0) lr->total = sqlite3_column_int64(st, lr->total_col);
        lr->fn(st, lr->cb, lr->ctx);
    }
    return src == SQLITE_DONE || src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_follow_list(store_t *base, int64_t app, const char *lead_id, int64_t offset, int limit,
                          int64_t *total, store_follow_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sqlite3_stmt *st = sq_stmt(s, Q_FOLLOW_LIST);
    if (st == NULL) return STORE_ERROR;
    sq_hold(s);
    /* The usual case, a lead with follows on the page asked for, is one
     * statement. Only an empty page needs to know whether the lead exists
     * and how many follows it has: that is a transaction of its own. */
    sq_list_t lr = {.fn = sq_emit_follow, .cb = (void *)cb, .ctx = ctx, .total_col = FOLLOW_NCOLS};
    sq_bind_key(st, app, lead_id, NULL);
    store_rc_t rc = step_page(s, st, offset, limit, &lr);
    sq_reset(st);
    if (s->held && rc != STORE_OK) sq_release(s); /* not after a failure */
    if (rc != STORE_OK || lr.n > 0) {
        *total = lr.total;
        return rc;
    }
    return empty_page_total(s, app, lead_id, total);
}

/* The patch after the key (app, lead id, id): the fields bits, the
 * values, now. */
static void bind_patch(sqlite3_stmt *st, const void *patch, int64_t now)
{
    const follow_patch_t *p = patch;
    sqlite3_bind_int(st, 4, (int)p->fields);
    sq_bind_follow_values(st, 5, &p->v);
    sqlite3_bind_int64(st, 9, now);
}

store_rc_t sq_follow_update(store_t *base, int64_t app, const char *lead_id, const char *id,
                            const follow_patch_t *p, int64_t now, store_follow_cb cb, void *ctx)
{
    const sq_update_t u = {.stmt = Q_FOLLOW_UPDATE,
                           .fields = p->fields,
                           .id = lead_id,
                           .id2 = id,
                           .bind = bind_patch,
                           .emit = sq_emit_follow};
    return sq_update(sq_of(base), app, &u, p, now, (void *)cb, ctx);
}

store_rc_t sq_follow_delete(store_t *base, int64_t app, const char *lead_id, const char *id)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_FOLLOW_DELETE, true, &rc);
    if (st == NULL) return rc;
    sq_bind_key(st, app, lead_id, id);
    return sq_finish_single(s, sq_step_changed(s, st));
}
