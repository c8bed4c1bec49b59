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

/* A lead's follows are sorted whole by SQLite's in-memory sorter when they
 * are this many at most (a few hundred KB at most); more, through a LIMIT,
 * whose ephemeral b-tree holds only offset + limit of them. The sorter is
 * the cheaper: the ephemeral b-tree is a pager and a table opened and
 * closed per list, a tenth of a list's CPU. */
#define SQ_FOLLOW_SORT_MAX 1000

static store_rc_t count_follows(sqlite_store_t *s, int64_t app, const char *lead_id, int64_t *n)
{
    sqlite3_stmt *st = sq_stmt(s, Q_FOLLOW_COUNT);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, lead_id, NULL);
    int src = sqlite3_step(st);
    *n = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

/* The page from offset (limit rows at most) of a lead's n follows (n > 0),
 * sorted whole or through a LIMIT (SQ_FOLLOW_SORT_MAX). */
static store_rc_t follow_page(sqlite_store_t *s, int64_t app, const char *lead_id, int64_t n, int64_t offset,
                              int limit, sq_list_t *lr)
{
    bool whole = n <= SQ_FOLLOW_SORT_MAX;
    sqlite3_stmt *st = sq_stmt(s, whole ? Q_FOLLOW_LIST : Q_FOLLOW_LIST_TOP);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, lead_id, NULL);
    if (!whole) {
        sqlite3_bind_int(st, 3, limit);
        sqlite3_bind_int64(st, 4, offset);
        offset = 0;
    }
    int src = SQLITE_DONE;
    for (int64_t seen = 0; lr->n < limit && (src = sqlite3_step(st)) == SQLITE_ROW; seen++) {
        if (seen < offset) continue;
        lr->n++;
        lr->fn(st, lr->cb, lr->ctx);
    }
    sq_reset(st);
    return src == SQLITE_DONE || src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_follow_list(store_t *base, int64_t app, const char *lead_id, int64_t offset, int limit,
                          int64_t *total, store_follow_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    /* The count and the page from one snapshot: the loop's turn's, else
     * one of their own (but in a batch, whose transaction is one). */
    bool own = !s->held && sqlite3_get_autocommit(s->db);
    store_rc_t rc = own ? sq_begin_read(s) : STORE_OK;
    if (rc != STORE_OK) return rc;
    sq_list_t lr = {.fn = sq_emit_follow, .cb = (void *)cb, .ctx = ctx};
    int64_t n = 0;
    rc = count_follows(s, app, lead_id, &n);
    /* No follows: is there a lead? */
    if (rc == STORE_OK)
        rc = n > 0 ? follow_page(s, app, lead_id, n, offset, limit, &lr) : lead_exists(s, app, lead_id);
    *total = n;
    return own ? sq_finish(s, rc) : sq_held_done(s, rc);
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
