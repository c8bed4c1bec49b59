/*
 * leads.c: lead operations on PostgreSQL: create, get (locking the row
 * inside a batch), list with its total, partial update, delete.
 *
 * Each is one statement run through txn.c, which gives it its transaction
 * (or savepoint) and keeps the app's lead count; an id that is not a UUID
 * names no lead and never reaches the server.
 */
#include <stdlib.h>
#include <string.h>

#include "model/uuid.h"
#include "store/postgres/pg_int.h"

/* A page that starts within this many leads of the newest is read in one
 * ordered index scan (Q_LEAD_LIST_NEAR); deeper, the rows OFFSET skips cost
 * more read whole than as keys alone (Q_LEAD_LIST): measured at 100k leads,
 * 0.012 against 0.040 ms at offset 0, 0.055 against 0.082 at 300, 0.140
 * against 0.111 at 1,000. */
#define NEAR_OFFSET_MAX 500

store_rc_t pg_lead_create(store_t *base, int64_t app, const lead_t *l)
{
    pg_params_t p = {0};
    if (!pg_lead_params(&p, app, l)) return STORE_ERROR;
    pg_store_t *s = pg_of(base);
    pg_totals_expect(s, PG_TOTALS_INSERT, app, l);
    store_rc_t rc = pg_write(s, Q_LEAD_INSERT, &p, app, 1, NULL);
    pg_totals_expect(s, PG_TOTALS_NONE, 0, NULL);
    return rc;
}

/* create_many's leads and what it has done with them. */
typedef struct create_many {
    int64_t app;
    store_lead_next_fn next;
    void *ctx;
    int64_t created;
} create_many_t;

/* Inserts every lead next gives, as one unit of work (txn.c). */
static store_rc_t create_many_unit(pg_store_t *s, void *ctx)
{
    create_many_t *c = ctx;
    s->unit_sends = true;
    store_rc_t rc = STORE_OK;
    lead_t l;
    while (rc == STORE_OK && c->next(c->ctx, &l)) {
        rc = pg_lead_create(&s->base.super, c->app, &l);
        if (rc == STORE_OK) c->created++;
    }
    return rc;
}

/* One unit of work, one savepoint of the batch, for all of the leads and
 * what the caller records for them between two (their history, their
 * events): a savepoint for each statement cost two more round trips each,
 * and an import of 20,000 rows held the writer, which every tenant's
 * writes wait for, for half a minute. The inserts, their history and
 * their events are sent in pipeline mode (txn.c: write_in_unit), so that
 * rows cost no round trip each; any failure, learned at once or when the answers come,
 * undoes the whole unit, and the caller then ends the batch without
 * committing (store.h). A batch is never tried again in the same
 * transaction (txn.c: finish_in_batch), so next is never asked twice for
 * a lead. */
store_rc_t pg_lead_create_many(store_t *base, int64_t app, store_lead_next_fn next, void *ctx,
                               int64_t *created)
{
    *created = 0;
    if (pg_of(base)->base.batch == BATCH_NONE) return STORE_ERROR; /* see store.h */
    create_many_t c = {.app = app, .next = next, .ctx = ctx};
    store_rc_t rc = pg_write_unit(pg_of(base), create_many_unit, &c);
    /* A unit that failed was undone whole: none of its leads stays. */
    *created = rc == STORE_OK ? c.created : 0;
    return rc;
}

store_rc_t pg_lead_get(store_t *base, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                       const store_async_t *async)
{
    pg_store_t *s = pg_of(base);
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    /* Inside a batch the row stays locked until the batch ends. */
    enum pg_stmt_id q = s->base.batch != BATCH_NONE ? Q_LEAD_GET_LOCK : Q_LEAD_GET;
    pg_rows_t to = {.emit = pg_emit_leads, .cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(s, q, &p, pg_rows_one, &to, async);
}

/* Q_LEAD_LIST's (and _NEAR's) one row per lead of the page, each with the
 * total; one with no lead when the page is empty; none for an unknown app. */
static store_rc_t lead_page(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) > 0) {
        *to->total = pg_get_int(r, 0, 0);
        pg_emit_leads(r, 1, to->cb, to->ctx);
    }
    return STORE_OK;
}

store_rc_t pg_lead_list(store_t *base, int64_t app, int64_t offset, int limit, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(&p, app);
    pgp_int8(&p, limit);
    pgp_int8(&p, offset);
    *total = 0;
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx, .total = total};
    enum pg_stmt_id q = offset < NEAR_OFFSET_MAX ? Q_LEAD_LIST_NEAR : Q_LEAD_LIST;
    return pg_read_rows(pg_of(base), q, &p, lead_page, &to, async);
}

store_rc_t pg_lead_update(store_t *base, int64_t app, const char *id, const lead_patch_t *patch, int64_t now,
                          store_lead_cb cb, void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pgp_int4(&p, (int32_t)patch->fields);
    if (!pg_lead_values(&p, &patch->v)) return STORE_ERROR;
    pgp_int8(&p, now);
    pgp_fold(&p, patch->v.name);
    pgp_fold(&p, patch->v.source);
    if (p.full) return STORE_ERROR;
    pg_store_t *s = pg_of(base);
    pg_totals_expect(s, PG_TOTALS_UPDATE, app, NULL);
    store_rc_t rc = pg_one_row(s, Q_LEAD_UPDATE_OLD, &p, 0, 0, pg_emit_leads, (void *)cb, ctx);
    pg_totals_expect(s, PG_TOTALS_NONE, 0, NULL);
    return rc;
}

store_rc_t pg_lead_delete(store_t *base, int64_t app, const char *id)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pg_store_t *s = pg_of(base);
    pg_totals_expect(s, PG_TOTALS_DELETE, app, NULL);
    store_rc_t rc = pg_one_row(s, Q_LEAD_DELETE_OLD, &p, app, -1, NULL, NULL, NULL);
    pg_totals_expect(s, PG_TOTALS_NONE, 0, NULL);
    return rc;
}

/* The batch's leads, locked in one statement (store.h); its ids as two
 * arrays, apps and UUIDs. */
typedef struct lead_lock {
    pg_array_t apps, ids;
} lead_lock_t;

static store_rc_t lock_unit(pg_store_t *s, void *ctx)
{
    lead_lock_t *l = ctx;
    pg_params_t p = {0};
    pgp_own_text(&p, l->apps.buf, l->apps.len);
    pgp_own_text(&p, l->ids.buf, l->ids.len);
    return pg_run_in_tx(s, Q_LEADS_LOCK, &p, NULL);
}

store_rc_t pg_leads_lock(store_t *base, const store_lead_ref_t *leads, size_t n)
{
    lead_lock_t l = {0};
    pg_array_begin(&l.apps);
    pg_array_begin(&l.ids);
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) {
        char id[UUID_BUFSZ];
        if (!uuid_parse(leads[i].id, strlen(leads[i].id), id)) continue;
        pg_array_int(&l.apps, leads[i].app);
        pg_array_text(&l.ids, (text_ref_t){id, strlen(id)});
        valid++;
    }
    pg_array_end(&l.apps);
    pg_array_end(&l.ids);
    store_rc_t rc = l.apps.oom || l.ids.oom ? STORE_ERROR
                    : valid == 0            ? STORE_OK
                                            : pg_write_unit(pg_of(base), lock_unit, &l);
    free(l.apps.buf);
    free(l.ids.buf);
    return rc;
}
