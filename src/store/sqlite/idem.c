/*
 * idem.c: idempotency keys on SQLite (store/schema.h, migration 8).
 *
 * A claim, its answer, a release and an expiry are each one statement,
 * run as one write (inside a batch, a statement of the batch's
 * transaction, which holds the write lock, and so the key, until it ends).
 *
 * Inside a batch, a claim only looks for a live answer and remembers the
 * key (s->claim); the answer then writes the key's row once, whole. The
 * write lock, held from the claim to the answer, is what holds the key:
 * no other process can claim it meanwhile, and a later write of the same
 * batch finds the answer. A claim that wrote the row first and an answer
 * that filled it in wrote the row twice, the second time growing it by the
 * answer, a page split as often as not. Outside a batch (crmd copy) the
 * claim still writes the row, so that it holds the key between the two
 * transactions.
 */
#include <string.h>

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

static void bind_answer(sqlite3_stmt *st, int at, const args_t *a)
{
    sqlite3_bind_int(st, at, a->status);
    sq_bind_str(st, at + 1, a->location);
    sqlite3_bind_text(st, at + 2, a->body.ptr != NULL ? a->body.ptr : "", (int)a->body.len, SQLITE_STATIC);
}

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
    } else if (id == Q_IDEM_TAKEN) {
        sqlite3_bind_int64(st, 3, a->fresh_after);
    } else if (id == Q_IDEM_FINISH) {
        bind_answer(st, 3, a);
    } else if (id == Q_IDEM_KEEP) {
        sq_bind_str(st, 3, a->hash);
        bind_answer(st, 4, a);
        sqlite3_bind_int64(st, 7, a->now);
        sqlite3_bind_int64(st, 8, a->fresh_after);
    }
}

/* Steps st: *changes gets the rows it changed, or, for a look (TAKEN),
 * 1 when it found a row. */
static store_rc_t step(sqlite_store_t *s, sqlite3_stmt *st, enum sq_stmt_id id, int *changes)
{
    if (id != Q_IDEM_TAKEN) return sq_step_changes(s, st, changes);
    int src = sqlite3_step(st);
    *changes = src == SQLITE_ROW;
    sq_reset(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

/* Runs statement id as one write; *changes as step's. A claim that
 * changed none, or a look that found a row, met a live answer:
 * STORE_CONFLICT, which is no failure of the transaction. */
static store_rc_t run(sqlite_store_t *s, enum sq_stmt_id id, const args_t *a, int *changes)
{
    *changes = 0;
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, id, true, &rc);
    if (st == NULL) return rc;
    bind_args(st, id, a);
    rc = sq_finish_single(s, step(s, st, id, changes));
    if (rc != STORE_OK) *changes = 0;
    if (rc == STORE_OK && id == Q_IDEM_CLAIM && *changes == 0) return STORE_CONFLICT;
    if (rc == STORE_OK && id == Q_IDEM_TAKEN && *changes == 1) return STORE_CONFLICT;
    return rc;
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

/* Whether app's key is the claim that waits for its answer. */
static bool claimed(const sqlite_store_t *s, int64_t app, const char *key)
{
    return s->claim.set && s->claim.app == app && strcmp(s->claim.key, key) == 0;
}

/* One process writes an SQLite database: no claim of another is ever in
 * flight (the process's own are kept apart by api/inflight.c), so
 * in_flight stays false. */
store_rc_t sq_idem_claim(store_t *base, int64_t app, const char *key, const char *hash, int64_t now,
                         int64_t fresh_after, bool *in_flight)
{
    (void)in_flight;
    sqlite_store_t *s = sq_of(base);
    s->claim.set = false;
    int n;
    const args_t a = {.app = app, .key = key, .hash = hash, .now = now, .fresh_after = fresh_after};
    bool deferred = s->base.batch != BATCH_NONE && strlen(key) < sizeof s->claim.key &&
                    strlen(hash) < sizeof s->claim.hash;
    if (!deferred) return run(s, Q_IDEM_CLAIM, &a, &n);
    store_rc_t rc = run(s, Q_IDEM_TAKEN, &a, &n);
    if (rc != STORE_OK) return rc;
    s->claim = (sq_idem_claim_t){.set = true, .app = app, .at = now, .fresh_after = fresh_after};
    strcpy(s->claim.key, key);
    strcpy(s->claim.hash, hash);
    return STORE_OK;
}

store_rc_t sq_idem_finish(store_t *base, int64_t app, const char *key, int status, const char *location,
                          text_ref_t body)
{
    sqlite_store_t *s = sq_of(base);
    int n;
    args_t a = {.app = app, .key = key, .status = status, .location = location, .body = body};
    if (!claimed(s, app, key)) {
        store_rc_t rc = run(s, Q_IDEM_FINISH, &a, &n);
        return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
    }
    a.hash = s->claim.hash;
    a.now = s->claim.at;
    a.fresh_after = s->claim.fresh_after;
    store_rc_t rc = run(s, Q_IDEM_KEEP, &a, &n);
    s->claim.set = false;
    /* The write lock held since the claim: a live row cannot be there. */
    return rc == STORE_OK && n == 0 ? STORE_ERROR : rc;
}

store_rc_t sq_idem_release(store_t *base, int64_t app, const char *key)
{
    sqlite_store_t *s = sq_of(base);
    if (claimed(s, app, key)) s->claim.set = false;
    int n;
    return run(s, Q_IDEM_RELEASE, &(args_t){.app = app, .key = key}, &n);
}

store_rc_t sq_idem_expire(store_t *base, int64_t before, int limit, int *purged)
{
    /* ?1 is before and ?2 the limit: bind_args' app and now. */
    return run(sq_of(base), Q_IDEM_EXPIRE, &(args_t){.app = before, .now = limit}, purged);
}

/* The batch's write lock holds every key (store.h). */
store_rc_t sq_idem_hold(store_t *base, int64_t app, const char *key, bool *in_flight)
{
    (void)base;
    (void)app;
    (void)key;
    (void)in_flight;
    return STORE_OK;
}
