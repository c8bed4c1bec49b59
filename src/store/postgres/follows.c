/*
 * follows.c: follow operations on PostgreSQL: create (only under an
 * existing lead), get (locking the row inside a batch), list with its
 * total, partial update, delete.
 *
 * As leads.c: one statement each through txn.c. The insert checks its
 * lead in the same statement, so a missing lead is STORE_NOT_FOUND (404),
 * never a constraint error.
 */
#include "store/postgres/pg_int.h"

store_rc_t pg_follow_create(store_t *base, int64_t app, const follow_t *f)
{
    pg_params_t p = {0};
    if (!pg_follow_params(&p, app, f)) return STORE_NOT_FOUND;
    return pg_one_row(pg_of(base), Q_FOLLOW_INSERT, &p, 0, 0, NULL, NULL, NULL);
}

store_rc_t pg_follow_get(store_t *base, int64_t app, const char *lead_id, const char *id, store_follow_cb cb,
                         void *ctx, const store_async_t *async)
{
    pg_store_t *s = pg_of(base);
    pg_params_t p = {0};
    if (!pgp_key(&p, app, lead_id, id)) return STORE_NOT_FOUND;
    /* Inside a batch the row stays locked until the batch ends. */
    enum pg_stmt_id q = s->base.batch != BATCH_NONE ? Q_FOLLOW_GET_LOCK : Q_FOLLOW_GET;
    pg_rows_t to = {.emit = pg_emit_follows, .cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(s, q, &p, pg_rows_one, &to, async);
}

/* Q_FOLLOW_LIST's rows: one per follow of the page, each with the
 * total, or one with no follow; none when the lead does not exist. */
static store_rc_t follow_page(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND; /* no lead: not even the count's row */
    *to->total = pg_get_int(r, 0, 0);
    pg_emit_follows(r, 1, to->cb, to->ctx);
    return STORE_OK;
}

store_rc_t pg_follow_list(store_t *base, int64_t app, const char *lead_id, int64_t offset, int limit,
                          int64_t *total, store_follow_cb cb, void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, lead_id, NULL)) return STORE_NOT_FOUND;
    pgp_int8(&p, limit);
    pgp_int8(&p, offset);
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx, .total = total};
    return pg_read_rows(pg_of(base), Q_FOLLOW_LIST, &p, follow_page, &to, async);
}

store_rc_t pg_follow_update(store_t *base, int64_t app, const char *lead_id, const char *id,
                            const follow_patch_t *patch, int64_t now, store_follow_cb cb, void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, lead_id, id)) return STORE_NOT_FOUND;
    pgp_int4(&p, (int32_t)patch->fields);
    pg_follow_values(&p, &patch->v);
    pgp_int8(&p, now);
    return pg_one_row(pg_of(base), Q_FOLLOW_UPDATE, &p, 0, 0, pg_emit_follows, (void *)cb, ctx);
}

store_rc_t pg_follow_delete(store_t *base, int64_t app, const char *lead_id, const char *id)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, lead_id, id)) return STORE_NOT_FOUND;
    return pg_one_row(pg_of(base), Q_FOLLOW_DELETE, &p, 0, 0, NULL, NULL, NULL);
}
