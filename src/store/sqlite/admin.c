/*
 * admin.c: apps, the token signing keys, and issued and revoked tokens on
 * SQLite: what authentication reads on every request (app_find,
 * revoked_since) and what the command line changes (create, disable,
 * record a token it issues, revoke).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

store_rc_t sq_app_create(store_t *base, const char *key, const char *name, int64_t now, store_app_t *out)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_APP_INSERT, false, &rc);
    if (st == NULL) return rc;
    sq_bind_str(st, 1, key);
    sq_bind_str(st, 2, name);
    sqlite3_bind_int64(st, 3, now);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        store_app_fill(out, sqlite3_column_int64(st, 0), (text_ref_t){key, strlen(key)},
                       (text_ref_t){name, strlen(name)}, 0, now);
        src = sqlite3_step(st);
    }
    rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return sq_finish(s, rc);
}

store_rc_t sq_app_find(store_t *base, const char *key, store_app_t *out, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_APP_FIND);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, key);
    int src = sqlite3_step(st);
    store_rc_t rc = STORE_OK;
    if (src == SQLITE_ROW)
        sq_read_app(st, out);
    else
        rc = src == SQLITE_DONE ? STORE_NOT_FOUND : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

/* Runs one single-statement write: a text ?1 when text is not NULL, then
 * the integers ints[0..n) (from ?2, or ?1 without a text); the rows it
 * changed go to *changes. */
static store_rc_t write_one(sqlite_store_t *s, enum sq_stmt_id id, const char *text, const int64_t *ints,
                            int n, int *changes)
{
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, id, false, &rc);
    if (st == NULL) return rc;
    int first = 1;
    if (text != NULL) sq_bind_str(st, first++, text);
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(st, first + i, ints[i]);
    return sq_finish(s, sq_step_changes(s, st, changes));
}

store_rc_t sq_keys(store_t *base, store_key_cb cb, void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_KEYS);
    if (st == NULL) return STORE_ERROR;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_key_t k = {.seq = sqlite3_column_int64(st, 0),
                         .pem = sq_col_str(st, 1),
                         .created_at = sqlite3_column_int64(st, 2),
                         .signed_until = sqlite3_column_int64(st, 3),
                         .retired_at = sqlite3_column_int64(st, 4)};
        cb(ctx, &k);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

/* Binds a key's pem, created_at, signed_until and retired_at as ?1..?4. */
void sq_bind_signing_key(sqlite3_stmt *st, const store_key_t *key)
{
    sq_bind_str(st, 1, key->pem);
    sqlite3_bind_int64(st, 2, key->created_at);
    sqlite3_bind_int64(st, 3, key->signed_until);
    sqlite3_bind_int64(st, 4, key->retired_at);
}

store_rc_t sq_key_add(store_t *base, const store_key_t *key, int first)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, first ? Q_KEY_FIRST : Q_KEY_ADD, false, &rc);
    if (st == NULL) return rc;
    sq_bind_signing_key(st, key);
    int changes;
    return sq_finish(s, sq_step_changes(s, st, &changes));
}

store_rc_t sq_key_update(store_t *base, int64_t seq, int64_t signed_until, int64_t retired_at)
{
    int changes = 0;
    const int64_t v[] = {seq, signed_until, retired_at};
    store_rc_t rc = write_one(sq_of(base), Q_KEY_UPDATE, NULL, v, 3, &changes);
    return rc == STORE_OK && changes == 0 ? STORE_NOT_FOUND : rc;
}

store_rc_t sq_app_list(store_t *base, store_app_cb cb, void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_APP_LIST);
    if (st == NULL) return STORE_ERROR;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_app_t app;
        sq_read_app(st, &app);
        cb(ctx, &app, sqlite3_column_int64(st, APP_NCOLS));
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

store_rc_t sq_app_set_disabled(store_t *base, const char *key, int disabled)
{
    int changes = 0;
    const int64_t v = disabled ? 1 : 0;
    store_rc_t rc = write_one(sq_of(base), Q_APP_DISABLE, key, &v, 1, &changes);
    return rc == STORE_OK && changes == 0 ? STORE_NOT_FOUND : rc;
}

store_rc_t sq_token_insert(sqlite_store_t *s, const store_token_t *t, int *changes)
{
    sqlite3_stmt *st = sq_stmt(s, Q_TOKEN_INSERT);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, t->jti);
    sqlite3_bind_int64(st, 2, t->app);
    sq_bind_str(st, 3, t->subject);
    sqlite3_bind_int64(st, 4, t->issued_at);
    sqlite3_bind_int64(st, 5, t->expires_at);
    return sq_step_changes(s, st, changes);
}

store_rc_t sq_token_record(store_t *base, const store_token_t *token)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_single(s);
    if (rc != STORE_OK) return rc;
    int changes = 0;
    rc = sq_token_insert(s, token, &changes);
    return sq_finish_single(s, rc == STORE_OK && changes == 0 ? STORE_CONFLICT : rc);
}

/* After a revocation that changed nothing: STORE_CONFLICT when the jti is
 * revoked already, else STORE_NOT_FOUND (it was never issued here). */
static store_rc_t revoked_before(sqlite_store_t *s, const char *jti)
{
    sqlite3_stmt *st = sq_stmt(s, Q_REVOKED_FIND);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, jti);
    int src = sqlite3_step(st);
    store_rc_t rc = src == SQLITE_ROW    ? STORE_CONFLICT
                    : src == SQLITE_DONE ? STORE_NOT_FOUND
                                         : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

store_rc_t sq_token_revoke(store_t *base, const char *jti, int64_t now, bool unrecorded)
{
    sqlite_store_t *s = sq_of(base);
    int64_t v[] = {now, unrecorded ? 1 : 0};
    int changes = 0;
    store_rc_t rc = write_one(s, Q_REVOKE, jti, v, 2, &changes);
    /* Nothing was added: revoked before, or never issued here. Neither
     * table ever loses a row, so the answer cannot change in between. */
    return rc == STORE_OK && changes == 0 ? revoked_before(s, jti) : rc;
}

store_rc_t sq_revoked_since(store_t *base, int64_t after_seq, store_revoked_cb cb, void *ctx,
                            const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_REVOKED_SINCE);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, after_seq);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, sqlite3_column_int64(st, 0), sq_col_str(st, 1));
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}
