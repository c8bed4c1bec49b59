/*
 * leads.c: lead operations on PostgreSQL: create, get (locking the row
 * inside a batch), list with its total, partial update, delete.
 *
 * Each is one statement run through txn.c, which gives it its transaction
 * (or savepoint) and keeps the app's lead count; an id that is not a UUID
 * names no lead and never reaches the server.
 */
#include "store/postgres/pg_int.h"

store_rc_t pg_lead_create(store_t *base, int64_t app, const lead_t *l)
{
    pg_params_t p = {0};
    if (!pg_lead_params(&p, app, l)) return STORE_ERROR;
    return pg_write(pg_of(base), Q_LEAD_INSERT, &p, app, 1, NULL);
}

store_rc_t pg_lead_get(store_t *base, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                       const store_async_t *async)
{
    (void)async;
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    return pg_read_one(pg_of(base), Q_LEAD_GET, Q_LEAD_GET_LOCK, &p, pg_emit_leads, (void *)cb, ctx);
}

store_rc_t pg_lead_list(store_t *base, int64_t app, int64_t offset, int limit, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    pg_params_t p = {0};
    pgp_int8(&p, app);
    pgp_int8(&p, limit);
    pgp_int8(&p, offset);
    PGresult *r;
    *total = 0;
    store_rc_t rc = pg_read(pg_of(base), Q_LEAD_LIST, &p, &r);
    if (rc == STORE_OK && PQntuples(r) > 0) {
        *total = pg_get_int(r, 0, 0);
        pg_emit_leads(r, 1, (void *)cb, ctx);
    }
    PQclear(r);
    return rc;
}

store_rc_t pg_lead_update(store_t *base, int64_t app, const char *id, const lead_patch_t *patch, int64_t now,
                          store_lead_cb cb, void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pgp_int4(&p, (int32_t)patch->fields);
    if (!pg_lead_values(&p, &patch->v)) return STORE_ERROR;
    pgp_int8(&p, now);
    return pg_one_row(pg_of(base), Q_LEAD_UPDATE, &p, true, 0, 0, pg_emit_leads, (void *)cb, ctx);
}

store_rc_t pg_lead_delete(store_t *base, int64_t app, const char *id)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    return pg_one_row(pg_of(base), Q_LEAD_DELETE, &p, true, app, -1, NULL, NULL, NULL);
}
