/*
 * admin.c: apps, the token signing key, and issued and revoked tokens on
 * PostgreSQL: what authentication reads on every request (app_find,
 * revoked_since) and what the command line changes (create, disable,
 * record a token it issues, revoke).
 */
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

store_rc_t pg_signing_key(store_t *base, const char *pem_if_none, char **pem)
{
    pg_store_t *s = pg_of(base);
    *pem = NULL;
    if (pem_if_none != NULL) {
        pg_params_t p = {0};
        pgp_str(&p, pem_if_none);
        store_rc_t rc = pg_write(s, Q_KEY_PUT, &p, 0, 0, NULL);
        if (rc != STORE_OK) return rc;
    }
    PGresult *r;
    store_rc_t rc = pg_read(s, Q_KEY_GET, NULL, &r);
    if (rc == STORE_OK && PQntuples(r) == 0) {
        rc = STORE_NOT_FOUND;
    } else if (rc == STORE_OK) {
        text_ref_t t = pg_get_text(r, 0, 0);
        *pem = strndup(t.ptr != NULL ? t.ptr : "", t.len);
        rc = *pem != NULL ? STORE_OK : STORE_ERROR;
    }
    pg_wipe(r); /* a private key: not left in freed heap */
    PQclear(r);
    return rc;
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
