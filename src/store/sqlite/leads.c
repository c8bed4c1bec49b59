/*
 * leads.c: lead operations on SQLite: create, get, list, partial update,
 * delete, with the app's lead count kept in the same transaction.
 *
 * Lists page with OFFSET, made cheap for deep pages by the anchors this
 * connection remembers (see sqlite_int.h): those live here because only
 * the lead list uses them, and every lead write through this connection
 * must invalidate them.
 */
#include <limits.h>

#include "store/sqlite/sqlite_int.h"

store_rc_t sq_add_lead_count(sqlite_store_t *s, int64_t app, int delta)
{
    sqlite3_stmt *st = sq_stmt(s, Q_APP_COUNT_ADD);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int(st, 2, delta);
    return sq_run(s, st);
}

/* Stages a create (sqlite_int.h: staged creates), refused as leads would
 * refuse it: a taken id there or among the staged rows, an unknown app, a
 * constraint. */
static store_rc_t stage_lead(sqlite_store_t *s, int64_t app, const lead_t *l)
{
    sqlite3_stmt *taken = sq_stmt(s, Q_STAGE_TAKEN), *st = sq_stmt(s, Q_STAGE_INSERT);
    if (taken == NULL || st == NULL) return STORE_ERROR;
    sq_bind_key(taken, app, l->id, NULL);
    int src = sqlite3_step(taken);
    sq_reset(taken);
    if (src == SQLITE_ROW) return STORE_CONFLICT;
    if (src != SQLITE_DONE) return sq_map_rc(s, src);
    sq_bind_lead_row(st, app, l);
    store_rc_t rc = sq_run(s, st);
    if (rc == STORE_OK && ++s->staged >= SQ_STAGE_ROWS) rc = sq_stage_flush(s);
    return rc;
}

store_rc_t sq_lead_create(store_t *base, int64_t app, const lead_t *l)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    rc = s->base.batch == BATCH_OPEN ? stage_lead(s, app, l) : sq_insert_lead(s, app, l);
    if (rc == STORE_OK) rc = sq_add_lead_count(s, app, 1);
    s->local_writes++;
    return sq_finish(s, rc);
}

store_rc_t sq_lead_create_many(store_t *base, int64_t app, store_lead_next_fn next, void *ctx,
                               int64_t *created)
{
    sqlite_store_t *s = sq_of(base);
    *created = 0;
    if (s->base.batch == BATCH_NONE) return STORE_ERROR; /* see store.h */
    /* The batch's transaction holds the write lock; a failure ends the
     * batch uncommitted, so no savepoint is needed per lead. */
    store_rc_t rc = sq_begin_single(s);
    lead_t l;
    while (rc == STORE_OK && next(ctx, &l)) {
        rc = stage_lead(s, app, &l);
        if (rc == STORE_OK) ++*created;
    }
    if (rc == STORE_OK && *created > INT_MAX) rc = STORE_ERROR;
    if (rc == STORE_OK && *created > 0) rc = sq_add_lead_count(s, app, (int)*created);
    s->local_writes++;
    return sq_finish_single(s, rc);
}

store_rc_t sq_insert_lead(sqlite_store_t *s, int64_t app, const lead_t *l)
{
    sqlite3_stmt *st = sq_stmt(s, Q_LEAD_INSERT);
    if (st == NULL) return STORE_ERROR;
    sq_bind_lead_row(st, app, l);
    return sq_run(s, st);
}

store_rc_t sq_lead_get(store_t *base, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                       const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    return sq_read_one(s, Q_LEAD_GET, app, id, NULL, sq_emit_lead, (void *)cb, ctx);
}

/* Walks SQ_ANCHOR_STEP entries on from the last anchor (or the top) and
 * appends the next anchor; false when there is none (or on failure). */
static bool next_anchor(sqlite_store_t *s, sqlite3_stmt *keys, int64_t app)
{
    sq_anchors_t *a = &s->anchors;
    sq_anchor_t *v = store_grow(a->v, &a->cap, a->n, sizeof *v, 64);
    if (v == NULL) return false;
    a->v = v;
    sqlite3_bind_int64(keys, 1, app);
    if (a->n == 0) {
        sqlite3_bind_int64(keys, 2, INT64_MAX);
        sq_bind_str(keys, 3, "~"); /* above every UUID */
    } else {
        sqlite3_bind_int64(keys, 2, a->v[a->n - 1].created_at);
        sq_bind_str(keys, 3, a->v[a->n - 1].id);
    }
    /* Either way the next anchor is the walk's (STEP+1)th row: from the
     * top that is position STEP; from an anchor, which the walk starts
     * with, it is STEP positions on. */
    const int target = SQ_ANCHOR_STEP + 1;
    sqlite3_bind_int(keys, 4, target);
    int src, seen = 0;
    sq_anchor_t next = {0};
    while ((src = sqlite3_step(keys)) == SQLITE_ROW) {
        if (++seen == target) {
            next.created_at = sqlite3_column_int64(keys, 0);
            sq_col_id(keys, 1, next.id);
        }
    }
    sq_reset(keys);
    if (src != SQLITE_DONE || seen < target || next.id[0] == '\0') return false;
    a->v[a->n++] = next;
    return true;
}

/* Makes sure s->anchors belong to app and are current (inside a read
 * transaction), and extends them to cover position offset. Returns the
 * index of the nearest anchor at or before offset, or -1 for none (start
 * from the top). Failures only mean no anchor: the list still works. */
static long nearest_anchor(sqlite_store_t *s, int64_t app, int64_t offset)
{
    sq_anchors_t *a = &s->anchors;
    sqlite3_stmt *dv = sq_stmt(s, Q_DATA_VERSION), *keys = sq_stmt(s, Q_LEAD_KEYS_FROM);
    if (dv == NULL || keys == NULL || sqlite3_step(dv) != SQLITE_ROW) {
        if (dv != NULL) sq_reset(dv);
        return -1;
    }
    int64_t version = sqlite3_column_int64(dv, 0);
    sq_reset(dv);
    if (a->app != app || a->data_version != version || a->local_writes != s->local_writes) {
        a->app = app;
        a->data_version = version;
        a->local_writes = s->local_writes;
        a->n = 0;
    }
    size_t want = (size_t)(offset / SQ_ANCHOR_STEP); /* anchors needed: positions STEP .. want*STEP */
    while (a->n < want)
        if (!next_anchor(s, keys, app)) break;
    size_t k = want < a->n ? want : a->n;
    return (long)k - 1;
}

/* Runs the page statement, from anchor k when k >= 0. */
static store_rc_t list_page(sqlite_store_t *s, int64_t app, int64_t offset, int limit, long k, sq_list_t *lr)
{
    if (limit == 0) {
        /* The count alone (the response cache's stamp, resource.c). */
        store_rc_t rc = sq_query_int(s, Q_LEAD_COUNT, app, &lr->total);
        return rc == STORE_NOT_FOUND ? STORE_OK : rc;
    }
    sqlite3_stmt *st = sq_stmt(s, k >= 0 ? Q_LEAD_LIST_FROM : Q_LEAD_LIST);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int(st, 2, limit);
    if (k >= 0) {
        const sq_anchor_t *an = &s->anchors.v[k];
        sqlite3_bind_int64(st, 3, offset - (int64_t)(k + 1) * SQ_ANCHOR_STEP);
        sqlite3_bind_int64(st, 4, an->created_at);
        sq_bind_str(st, 5, an->id);
    } else {
        sqlite3_bind_int64(st, 3, offset);
    }
    store_rc_t rc = sq_step_list(s, st, lr);
    sq_reset(st);
    if (rc == STORE_OK && lr->n == 0) {
        /* Past the end (or no leads): the total still counts. */
        rc = sq_query_int(s, Q_LEAD_COUNT, app, &lr->total);
        if (rc == STORE_NOT_FOUND) rc = STORE_OK;
    }
    return rc;
}

store_rc_t sq_lead_list(store_t *base, int64_t app, int64_t offset, int limit, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    /* A deep page needs its anchors and its rows from one snapshot of its
     * own; a shallow one (or the count alone) is a single statement, read
     * in the loop's turn's snapshot (sq_hold). */
    bool deep = offset >= SQ_ANCHOR_STEP;
    sqlite_store_t *s = deep ? sq_of(base) : sq_of_read(base);
    sq_list_t lr = {.fn = sq_emit_lead, .cb = (void *)cb, .ctx = ctx, .total_col = LEAD_NCOLS};
    if (!deep) sq_hold(s);
    store_rc_t rc = deep ? sq_begin_read(s) : STORE_OK;
    if (rc != STORE_OK) return rc;
    long k = deep ? nearest_anchor(s, app, offset) : -1;
    rc = list_page(s, app, offset, limit, k, &lr);
    *total = lr.total;
    return deep ? sq_finish(s, rc) : sq_held_done(s, rc);
}

/* The patch after the key (app, id): the fields bits, the values, now. */
static void bind_patch(sqlite3_stmt *st, const void *patch, int64_t now)
{
    const lead_patch_t *p = patch;
    sqlite3_bind_int(st, 3, (int)p->fields);
    sq_bind_lead_values(st, 4, &p->v);
    sqlite3_bind_int64(st, 12, now);
    sq_bind_fold(st, 13, p->v.name);
    sq_bind_fold(st, 14, p->v.source);
}

store_rc_t sq_lead_update(store_t *base, int64_t app, const char *id, const lead_patch_t *p, int64_t now,
                          store_lead_cb cb, void *ctx)
{
    const sq_update_t u = {
        .stmt = Q_LEAD_UPDATE, .fields = p->fields, .id = id, .bind = bind_patch, .emit = sq_emit_lead};
    return sq_update(sq_of(base), app, &u, p, now, (void *)cb, ctx);
}

store_rc_t sq_lead_delete(store_t *base, int64_t app, const char *id)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    /* Deleted for good: no kept answer may replay it (found through its
     * row, so first). */
    sqlite3_stmt *k = sq_write_stmt(s, Q_IDEM_FORGET_LIVE, false, &rc);
    if (k == NULL) return rc;
    sq_bind_key(k, app, id, NULL);
    rc = sq_run(s, k);
    /* Deleted for good: its history goes with it, found through its row
     * (the chain's head), so before it. */
    int ignored;
    if (rc == STORE_OK) rc = sq_run_keyed(s, Q_HISTORY_DELETE, app, id, -1, &ignored);
    sqlite3_stmt *st = rc == STORE_OK ? sq_stmt(s, Q_LEAD_DELETE) : NULL;
    if (rc == STORE_OK && st == NULL) rc = STORE_ERROR;
    if (rc == STORE_OK) {
        sq_bind_key(st, app, id, NULL);
        rc = sq_step_changed(s, st);
    }
    if (rc == STORE_OK) rc = sq_add_lead_count(s, app, -1);
    s->local_writes++;
    return sq_finish(s, rc);
}

/* The batch's write lock already holds every row (store.h). */
store_rc_t sq_leads_lock(store_t *base, const store_lead_ref_t *leads, size_t n)
{
    (void)base;
    (void)leads;
    (void)n;
    return STORE_OK;
}
