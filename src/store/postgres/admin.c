/*
 * admin.c: apps, the token signing keys, and issued and revoked tokens on
 * PostgreSQL: what authentication reads on every request (app_find,
 * revoked_since) and what the command line changes (create, disable,
 * record a token it issues, revoke).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

store_rc_t pg_app_create(store_t *base, const char *key, const char *name, int64_t now, store_app_t *out)
{
    pg_params_t p = {0};
    pgp_str(&p, key);
    pgp_str(&p, name);
    pgp_int8(&p, now);
    PGresult *r;
    store_rc_t rc = pg_write(pg_of(base), Q_APP_INSERT, &p, 0, 0, &r);
    if (rc == STORE_OK)
        store_app_fill(out, PQntuples(r) == 1 ? pg_get_int(r, 0, 0) : 0, (text_ref_t){key, strlen(key)},
                       (text_ref_t){name, strlen(name)}, 0, now);
    PQclear(r);
    return rc;
}

static store_rc_t found_app(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    pg_read_app(r, 0, to->out);
    return STORE_OK;
}

store_rc_t pg_app_find(store_t *base, const char *key, store_app_t *out, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_str(&p, key);
    pg_rows_t to = {.out = out};
    return pg_read_rows(pg_of(base), Q_APP_FIND, &p, found_app, &to, async);
}

store_rc_t pg_keys(store_t *base, store_key_cb cb, void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_read(pg_of(base), Q_KEYS, NULL, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++) {
        store_key_t k = {.seq = pg_get_int(r, i, 0),
                         .pem = PQgetvalue(r, i, 1),
                         .created_at = pg_get_int(r, i, 2),
                         .signed_until = pg_get_int(r, i, 3),
                         .retired_at = pg_get_int(r, i, 4)};
        cb(ctx, &k);
    }
    pg_wipe(r); /* private keys: not left in freed heap */
    PQclear(r);
    return rc;
}

/* A signing key's pem, created_at, signed_until and retired_at as $1..$4. */
void pgp_signing_key(pg_params_t *p, const store_key_t *key)
{
    pgp_str(p, key->pem);
    pgp_int8(p, key->created_at);
    pgp_int8(p, key->signed_until);
    pgp_int8(p, key->retired_at);
}

store_rc_t pg_key_add(store_t *base, const store_key_t *key, int first)
{
    pg_params_t p = {0};
    pgp_signing_key(&p, key);
    return pg_write(pg_of(base), first ? Q_KEY_FIRST : Q_KEY_ADD, &p, 0, 0, NULL);
}

store_rc_t pg_key_update(store_t *base, int64_t seq, int64_t signed_until, int64_t retired_at)
{
    pg_params_t p = {0};
    pgp_int8(&p, seq);
    pgp_int8(&p, signed_until);
    pgp_int8(&p, retired_at);
    return pg_one_row(pg_of(base), Q_KEY_UPDATE, &p, 0, 0, NULL, NULL, NULL);
}

store_rc_t pg_app_list(store_t *base, store_app_cb cb, void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_read(pg_of(base), Q_APP_LIST, NULL, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++) {
        store_app_t a;
        pg_read_app(r, i, &a);
        cb(ctx, &a, pg_get_int(r, i, APP_NCOLS));
    }
    PQclear(r);
    return rc;
}

store_rc_t pg_app_set_disabled(store_t *base, const char *key, int disabled)
{
    pg_params_t p = {0};
    pgp_str(&p, key);
    pgp_int4(&p, disabled ? 1 : 0);
    return pg_one_row(pg_of(base), Q_APP_DISABLE, &p, 0, 0, NULL, NULL, NULL);
}

store_rc_t pg_token_insert(pg_store_t *s, const store_token_t *t, bool *added)
{
    pg_params_t p = {0};
    pgp_str(&p, t->jti);
    pgp_int8(&p, t->app);
    pgp_str(&p, t->subject);
    pgp_int8(&p, t->issued_at);
    pgp_int8(&p, t->expires_at);
    PGresult *r;
    store_rc_t rc = pg_write(s, Q_TOKEN_INSERT, &p, 0, 0, &r);
    *added = rc == STORE_OK && pg_affected(r) > 0;
    PQclear(r);
    return rc;
}

store_rc_t pg_token_record(store_t *base, const store_token_t *token)
{
    bool added = false;
    store_rc_t rc = pg_token_insert(pg_of(base), token, &added);
    return rc == STORE_OK && !added ? STORE_CONFLICT : rc;
}

store_rc_t pg_token_revoke(store_t *base, const char *jti, int64_t now, bool unrecorded)
{
    pg_store_t *s = pg_of(base);
    pg_params_t p = {0};
    pgp_str(&p, jti);
    pgp_int8(&p, now);
    pgp_int4(&p, unrecorded ? 1 : 0);
    PGresult *r;
    store_rc_t rc = pg_write(s, Q_REVOKE, &p, 0, 0, &r);
    bool added = rc == STORE_OK && pg_affected(r) > 0;
    PQclear(r);
    if (rc != STORE_OK || added) return rc;
    /* Nothing was added: revoked before, or never issued here. Neither
     * table ever loses a row, so the answer cannot change in between. */
    pg_params_t q = {0};
    pgp_str(&q, jti);
    rc = pg_read(s, Q_REVOKED_FIND, &q, &r);
    if (rc == STORE_OK) rc = PQntuples(r) > 0 ? STORE_CONFLICT : STORE_NOT_FOUND;
    PQclear(r);
    return rc;
}

static store_rc_t revoked_rows(const PGresult *r, const pg_rows_t *to)
{
    for (int i = 0; i < PQntuples(r); i++) {
        char jti[STORE_JTI_MAX];
        store_text_copy(jti, sizeof jti, pg_get_text(r, i, 1));
        ((store_revoked_cb)to->cb)(to->ctx, pg_get_int(r, i, 0), jti);
    }
    return STORE_OK;
}

store_rc_t pg_revoked_since(store_t *base, int64_t after_seq, store_revoked_cb cb, void *ctx,
                            const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(&p, after_seq);
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_REVOKED_SINCE, &p, revoked_rows, &to, async);
}

store_rc_t pg_backup(store_t *base, const char *path, char *msg, size_t msgsz)
{
    (void)base;
    snprintf(msg, msgsz,
             "crmd backup copies SQLite databases; for PostgreSQL use pg_dump, which takes a consistent "
             "snapshot while crmd serves:\n"
             "  pg_dump --format=custom --file=%s 'postgres://USER@HOST/DBNAME'\n"
             "and pg_restore to bring it back (docs/operations.md)",
             path);
    return STORE_ERROR;
}
