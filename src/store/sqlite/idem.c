/*
 * idem.c: idempotency keys on SQLite (store/schema.h, migration 8).
 *
 * A claim, its answer, a release and an expiry are each one statement,
 * run as one write (inside a batch, a statement of the batch's
 * transaction, which holds the write lock, and so the key, until it ends).
 */
#include "store/sqlite/sqlite_int.h"

/* What a statement binds: app and key (?1, ?2) and its own values after
 * them; an expiry binds before and limit instead. */
typedef struct args {
    int64_t app;
    const char *key;
    const char *hash;
    int64_t now, fresh_after;
    int status;
    const char *location;
    text_ref_t body;
} args_t;

static void bind_args(sqlite3_stmt *st, enum sq_stmt_id id, const args_t *a)
{
    sqlite3_bind_int64(st, 1, a->app);
    if (id == Q_IDEM_EXPIRE) {
        sqlite3_bind_int64(st, 2, a->now);
        return;
    }
    sq_bind_str(st, 2, a->key);
    if (id == Q_IDEM_CLAIM) {
        sq_bind_str(st, 3, a->hash);
        sqlite3_bind_int64(st, 4, a->now);
        sqlite3_bind_int64(st, 5, a->fresh_after);
    } else if (id == Q_IDEM_FINISH) {
        sqlite3_bind_int(st, 3, a->status);
        sq_bind_str(st, 4, a->location);
        sqlite3_bind_text(st, 5, a->body.ptr != NULL ? a->body.ptr : "", (int)a->body.len, SQLITE_STATIC);
    }
}

/* Runs statement id as one write; *changes gets the rows it changed. A
 * claim that changed none found a live answer: STORE_CONFLICT, which is
 * no failure of the transaction. */
static store_rc_t run(sqlite_store_t *s, enum sq_stmt_id id, const args_t *a, int *changes)
{
    *changes = 0;
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, id, true, &rc);
    if (st == NULL) return rc;
    bind_args(st, id, a);
    rc = sq_finish_single(s, sq_step_changes(s, st, changes));
    if (rc != STORE_OK) *changes = 0;
    return rc == STORE_OK && id == Q_IDEM_CLAIM && *changes == 0 ? STORE_CONFLICT : rc;
}

store_rc_t sq_idem_get(store_t *base, int64_t app, const char *key, int64_t fresh_after, store_idem_cb cb,
                       void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_IDEM_GET);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sq_bind_str(st, 2, key);
    sqlite3_bind_int64(st, 3, fresh_after);
    int src = sqlite3_step(st);
    store_rc_t rc = src == SQLITE_DONE ? STORE_NOT_FOUND : src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    if (rc == STORE_OK) {
        /* Q_IDEM_GET's columns: hash, status, location, body, created_at. */
        store_idem_t idem = {.hash = sq_col_str(st, 0), .location = sq_col_str(st, 2)};
        idem.status = sqlite3_column_int(st, 1);
        idem.body = sq_col_text(st, 3);
        idem.created_at = sqlite3_column_int64(st, 4);
        cb(ctx, &idem);
    }
    sq_reset(st);
    return rc;
}

store_rc_t sq_idem_claim(store_t *base, int64_t app, const char *key, const char *hash, int64_t now,
                         int64_t fresh_after)
{
    int n;
    const args_t a = {.app = app, .key = key, .hash = hash, .now = now, .fresh_after = fresh_after};
    return run(sq_of(base), Q_IDEM_CLAIM, &a, &n);
}

store_rc_t sq_idem_finish(store_t *base, int64_t app, const char *key, int status, const char *location,
                          text_ref_t body)
{
    int n;
    const args_t a = {.app = app, .key = key, .status = status, .location = location, .body = body};
    store_rc_t rc = run(sq_of(base), Q_IDEM_FINISH, &a, &n);
    return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
}

store_rc_t sq_idem_release(store_t *base, int64_t app, const char *key)
{
    int n;
    return run(sq_of(base), Q_IDEM_RELEASE, &(args_t){.app = app, .key = key}, &n);
}

store_rc_t sq_idem_expire(store_t *base, int64_t before, int limit, int *purged)
{
    /* ?1 is before and ?2 the limit: bind_args' app and now. */
    return run(sq_of(base), Q_IDEM_EXPIRE, &(args_t){.app = before, .now = limit}, purged);
}
