/*
 * idem.c: idempotency keys on PostgreSQL (store/schema.h, migration 8).
 *
 * Each is one statement through txn.c. A claim inserts the key's row
 * (or replaces an expired one): a second process claiming the same key
 * waits for the first's transaction on the primary key, then finds its
 * answer (STORE_CONFLICT) and replays it.
 */
#include "store/postgres/pg_int.h"

static store_rc_t idem_row(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    char h[STORE_IDEM_HASH_HEX + 1], loc[512];
    store_text_copy(h, sizeof h, pg_get_text(r, 0, 0));
    store_text_copy(loc, sizeof loc, pg_get_text(r, 0, 2));
    store_idem_t idem = {.hash = h,
                         .status = (int)pg_get_int(r, 0, 1),
                         .location = loc,
                         .body = pg_get_text(r, 0, 3),
                         .created_at = pg_get_int(r, 0, 4)};
    ((store_idem_cb)to->cb)(to->ctx, &idem);
    return STORE_OK;
}

/* The parameters every statement here starts with. */
static pg_params_t *keyed(pg_params_t *p, int64_t app, const char *key)
{
    pgp_int8(p, app);
    pgp_str(p, key);
    return p;
}

store_rc_t pg_idem_get(store_t *base, int64_t app, const char *key, int64_t fresh_after, store_idem_cb cb,
                       void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(keyed(&p, app, key), fresh_after);
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_IDEM_GET, &p, idem_row, &to, async);
}

store_rc_t pg_idem_claim(store_t *base, int64_t app, const char *key, const char *hash, int64_t now,
                         int64_t fresh_after)
{
    pg_params_t p = {0};
    pgp_str(keyed(&p, app, key), hash);
    pgp_int8(&p, now);
    pgp_int8(&p, fresh_after);
    int n;
    store_rc_t rc = pg_write_count(pg_of(base), Q_IDEM_CLAIM, &p, &n);
    return rc == STORE_OK && n == 0 ? STORE_CONFLICT : rc;
}

store_rc_t pg_idem_finish(store_t *base, int64_t app, const char *key, int status, const char *location,
                          text_ref_t body)
{
    pg_params_t p = {0};
    pgp_int4(keyed(&p, app, key), status);
    pgp_str(&p, location);
    pgp_text(&p, body.ptr != NULL ? body : (text_ref_t){"", 0});
    return pg_one_row(pg_of(base), Q_IDEM_FINISH, &p, 0, 0, NULL, NULL, NULL);
}

store_rc_t pg_idem_release(store_t *base, int64_t app, const char *key)
{
    pg_params_t p = {0};
    return pg_write(pg_of(base), Q_IDEM_RELEASE, keyed(&p, app, key), 0, 0, NULL);
}

store_rc_t pg_idem_expire(store_t *base, int64_t before, int limit, int *purged)
{
    pg_params_t p = {0};
    pgp_int8(&p, before);
    pgp_int8(&p, limit);
    return pg_write_count(pg_of(base), Q_IDEM_EXPIRE, &p, purged);
}
