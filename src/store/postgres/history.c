/*
 * history.c: a lead's history on PostgreSQL (store/schema.h, migration 8).
 */
#include "store/postgres/pg_int.h"

store_rc_t pg_history_add(store_t *base, int64_t app, const store_change_t *c)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, c->lead_id, c->id)) return STORE_ERROR;
    pgp_int4(&p, c->action);
    pgp_str(&p, c->actor);
    pgp_int8(&p, c->at);
    if (!pgp_uuid(&p, c->follow_id)) return STORE_ERROR;
    pgp_text(&p, c->changes.ptr != NULL ? c->changes : (text_ref_t){"{}", 2});
    if (c->seq > 0) pgp_int8(&p, c->seq);
    return pg_write(pg_of(base), c->seq > 0 ? Q_HISTORY_IMPORT : Q_HISTORY_ADD, &p, 0, 0, NULL);
}

/* Q_HISTORY_LIST's rows: the count, then a change from column 1 (NULL
 * change columns: an empty page); none: no such lead. */
static store_rc_t change_rows(const PGresult *r, const pg_rows_t *to)
{
    store_change_cb cb = (store_change_cb)to->cb;
    int n = PQntuples(r);
    if (n == 0) return STORE_NOT_FOUND;
    *to->total = pg_get_int(r, 0, 0);
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(r, i, 1)) continue;
        char id[UUID_BUFSZ], follow[UUID_BUFSZ], actor[STORE_IDEM_KEY_MAX];
        pg_get_uuid(r, i, 1 + HISTORY_COL_ID, id);
        pg_get_uuid(r, i, 1 + HISTORY_COL_FOLLOW, follow);
        store_text_copy(actor, sizeof actor, pg_get_text(r, i, 1 + HISTORY_COL_ACTOR));
        store_change_t c = {.id = id, .follow_id = follow, .actor = actor};
        c.action = (int)pg_get_int(r, i, 1 + HISTORY_COL_ACTION);
        c.at = pg_get_int(r, i, 1 + HISTORY_COL_AT);
        c.changes = pg_get_text(r, i, 1 + HISTORY_COL_CHANGES);
        cb(to->ctx, &c, pg_get_int(r, i, 1 + HISTORY_COL_SEQ));
    }
    return STORE_OK;
}

store_rc_t pg_history_list(store_t *base, int64_t app, const char *lead_id, const store_history_query_t *q,
                           int64_t *total, store_change_cb cb, void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, lead_id, NULL)) return STORE_NOT_FOUND;
    pgp_int8(&p, q->limit);
    pgp_int8(&p, q->after ? 0 : q->offset);
    pgp_int8(&p, q->after ? q->after_seq : INT64_MAX);
    *total = 0;
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx, .total = total};
    return pg_read_rows(pg_of(base), Q_HISTORY_LIST, &p, change_rows, &to, async);
}
