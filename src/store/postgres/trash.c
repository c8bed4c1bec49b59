/*
 * trash.c: the trash on PostgreSQL (store/schema.h, migration 8): a
 * deleted lead's rows move to leads_trash and follows_trash and back.
 *
 * Each move is one statement (sql.c) run as one write through txn.c,
 * which keeps the app's lead count; lead_totals follows through totals.c,
 * as for a delete and an insert. An id that is not a UUID names nothing.
 */
#include "store/postgres/pg_int.h"

store_rc_t pg_lead_trash(store_t *base, int64_t app, const char *id, int64_t now)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pgp_int8(&p, now);
    pg_store_t *s = pg_of(base);
    pg_totals_expect(s, PG_TOTALS_DELETE, app, NULL);
    store_rc_t rc = pg_one_row(s, Q_LEAD_TRASH, &p, app, -1, NULL, NULL, NULL);
    pg_totals_expect(s, PG_TOTALS_NONE, 0, NULL);
    return rc;
}

store_rc_t pg_lead_recover(store_t *base, int64_t app, const char *id, int64_t now, store_lead_cb cb,
                           void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pgp_int8(&p, now);
    pg_store_t *s = pg_of(base);
    pg_totals_expect(s, PG_TOTALS_RECOVER, app, NULL);
    store_rc_t rc = pg_one_row(s, Q_LEAD_RECOVER, &p, app, 1, pg_emit_leads, (void *)cb, ctx);
    pg_totals_expect(s, PG_TOTALS_NONE, 0, NULL);
    return rc;
}

store_rc_t pg_trash_purge(store_t *base, int64_t app, const char *id)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    return pg_one_row(pg_of(base), Q_TRASH_PURGE, &p, 0, 0, NULL, NULL, NULL);
}

/* Q_TRASH_GET's row: the lead, then its deleted_at. */
static store_rc_t trashed_one(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    lead_t l;
    pg_read_lead(r, 0, 0, &l);
    ((store_trash_cb)to->cb)(to->ctx, &l, pg_get_int(r, 0, LEAD_NCOLS));
    return STORE_OK;
}

store_rc_t pg_trash_get(store_t *base, int64_t app, const char *id, store_trash_cb cb, void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_TRASH_GET, &p, trashed_one, &to, NULL);
}

static store_rc_t due_rows(const PGresult *r, const pg_rows_t *to)
{
    for (int i = 0; i < PQntuples(r); i++) {
        char id[UUID_BUFSZ];
        pg_get_uuid(r, i, 1, id);
        ((store_trash_due_cb)to->cb)(to->ctx, pg_get_int(r, i, 0), id);
    }
    return STORE_OK;
}

store_rc_t pg_trash_due(store_t *base, int64_t before, int limit, store_trash_due_cb cb, void *ctx)
{
    pg_params_t p = {0};
    pgp_int8(&p, before);
    pgp_int8(&p, limit);
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_TRASH_DUE, &p, due_rows, &to, NULL);
}

/* Q_TRASH_LIST's rows: the count, then a trashed lead from column 1 and
 * its deleted_at after it (NULL lead columns: an empty page). */
static store_rc_t trash_rows(const PGresult *r, const pg_rows_t *to)
{
    store_trash_cb cb = (store_trash_cb)to->cb;
    int n = PQntuples(r);
    if (n > 0) *to->total = pg_get_int(r, 0, 0);
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(r, i, 1)) continue;
        lead_t l;
        pg_read_lead(r, i, 1, &l);
        cb(to->ctx, &l, pg_get_int(r, i, 1 + LEAD_NCOLS));
    }
    return STORE_OK;
}

store_rc_t pg_trash_list(store_t *base, int64_t app, const store_trash_query_t *q, int64_t *total,
                         store_trash_cb cb, void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(&p, app);
    pgp_int8(&p, q->limit);
    pgp_int8(&p, q->after ? 0 : q->offset);
    pgp_int8(&p, q->after ? q->after_deleted_at : INT64_MAX);
    /* Past every UUID when there is no position: ffffffff-... is the
     * greatest, and no lead has it (ids are UUIDv7). */
    if (!pgp_uuid(&p, q->after ? q->after_id : "ffffffff-ffff-ffff-ffff-ffffffffffff")) return STORE_ERROR;
    *total = 0;
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx, .total = total};
    return pg_read_rows(pg_of(base), Q_TRASH_LIST, &p, trash_rows, &to, async);
}

store_rc_t pg_trash_expire(store_t *base, int64_t before, int limit, int *purged)
{
    pg_params_t p = {0};
    pgp_int8(&p, before);
    pgp_int8(&p, limit);
    return pg_write_count(pg_of(base), Q_TRASH_EXPIRE, &p, purged);
}
