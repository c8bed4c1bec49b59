/*
 * webhooks.c: webhooks, the outbox and the delivery log on SQLite (see
 * store/webhook.h for the contract, store/webhook_sql.h for the
 * statements both backends share).
 *
 * Sections:
 *   rows              reading webhooks, attempts and queued events
 *   subscriptions     create, get, list, update, delete, the log
 *   the outbox        recording events, claims, queues, reports
 *   bulk copy         counting, exporting, importing
 */
#include "model/event.h"
#include "store/sqlite/sqlite_int.h"
#include "store/webhook.h"
#include "store/webhook_sql.h"

/* --- rows --------------------------------------------------------------------- */

static void read_webhook(sqlite3_stmt *st, int c0, webhook_t *wh)
{
    sq_col_id(st, c0 + WEBHOOK_COL_ID, wh->id);
    wh->url = sq_col_text(st, c0 + WEBHOOK_COL_URL);
    wh->events = (unsigned)sqlite3_column_int64(st, c0 + WEBHOOK_COL_EVENTS);
    wh->description = sq_col_text(st, c0 + WEBHOOK_COL_DESCRIPTION);
    wh->active = sqlite3_column_int(st, c0 + WEBHOOK_COL_ACTIVE) != 0;
    wh->secret = sq_col_text(st, c0 + WEBHOOK_COL_SECRET);
    wh->created_at = sqlite3_column_int64(st, c0 + WEBHOOK_COL_CREATED_AT);
    wh->updated_at = sqlite3_column_int64(st, c0 + WEBHOOK_COL_UPDATED_AT);
}

static void read_delivery(sqlite3_stmt *st, int c0, delivery_t *d)
{
    sq_col_id(st, c0 + DELIVERY_COL_ID, d->id);
    sq_col_id(st, c0 + DELIVERY_COL_EVENT, d->event_id);
    d->type = sqlite3_column_int(st, c0 + DELIVERY_COL_TYPE);
    d->attempt = sqlite3_column_int(st, c0 + DELIVERY_COL_ATTEMPT);
    d->status_code = sqlite3_column_int(st, c0 + DELIVERY_COL_STATUS);
    d->duration_ms = sqlite3_column_int64(st, c0 + DELIVERY_COL_DURATION);
    d->error = sq_col_text(st, c0 + DELIVERY_COL_ERROR);
    d->next_retry_at = sqlite3_column_int64(st, c0 + DELIVERY_COL_NEXT_RETRY);
    d->created_at = sqlite3_column_int64(st, c0 + DELIVERY_COL_CREATED_AT);
}

static void read_queued(sqlite3_stmt *st, int c0, store_queued_t *e)
{
    e->seq = sqlite3_column_int64(st, c0 + QUEUED_COL_SEQ);
    sq_col_id(st, c0 + QUEUED_COL_EVENT, e->event_id);
    e->type = sqlite3_column_int(st, c0 + QUEUED_COL_TYPE);
    e->created_at = sqlite3_column_int64(st, c0 + QUEUED_COL_CREATED_AT);
    text_ref_t payload = sq_col_text(st, c0 + QUEUED_COL_PAYLOAD);
    e->payload = payload.ptr != NULL ? payload.ptr : "";
    e->len = payload.len;
    e->attempts = sqlite3_column_int(st, c0 + QUEUED_COL_ATTEMPTS);
    e->first_at = sqlite3_column_int64(st, c0 + QUEUED_COL_FIRST_AT);
    e->next_at = sqlite3_column_int64(st, c0 + QUEUED_COL_NEXT_AT);
    e->url = NULL;
    e->active = false;
}

static void read_lane(sqlite3_stmt *st, store_lane_t *lane)
{
    lane->id = sq_col_str(st, 0);
    lane->app = sqlite3_column_int64(st, 1);
    lane->url = sq_col_str(st, 2);
    lane->secret = sq_col_str(st, 3);
}

static void emit_webhook(sqlite3_stmt *st, void *cb, void *ctx)
{
    webhook_t wh;
    read_webhook(st, 0, &wh);
    ((store_webhook_cb)cb)(ctx, &wh);
}

/* A row of a page (SCHEMA_WEBHOOK_PAGE): the total, then an item, whose
 * id is NULL on the one row of an empty page. */
typedef struct page {
    void (*emit)(sqlite3_stmt *st, void *cb, void *ctx); /* reads the item from column 1 */
    void *cb, *ctx;
    int64_t total;
    int rows;
} page_t;

static store_rc_t step_page(sqlite_store_t *s, sqlite3_stmt *st, page_t *pg)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        pg->rows++;
        pg->total = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) pg->emit(st, pg->cb, pg->ctx);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static void emit_page_webhook(sqlite3_stmt *st, void *cb, void *ctx)
{
    webhook_t wh;
    read_webhook(st, 1, &wh);
    ((store_webhook_cb)cb)(ctx, &wh);
}

static void emit_page_delivery(sqlite3_stmt *st, void *cb, void *ctx)
{
    delivery_t d;
    read_delivery(st, 1, &d);
    ((store_delivery_cb)cb)(ctx, &d);
}

/* --- subscriptions ------------------------------------------------------------ */

/* Binds a whole webhook for its insert: app, then its columns in order. */
static void bind_webhook(sqlite3_stmt *st, int64_t app, const webhook_t *wh)
{
    sqlite3_bind_int64(st, 1, app);
    sq_bind_str(st, 2, wh->id);
    sq_bind_text(st, 3, wh->url);
    sqlite3_bind_int64(st, 4, wh->events);
    sq_bind_text(st, 5, wh->description);
    sqlite3_bind_int(st, 6, wh->active);
    sq_bind_text(st, 7, wh->secret);
    sqlite3_bind_int64(st, 8, wh->created_at);
    sqlite3_bind_int64(st, 9, wh->updated_at);
}

static store_rc_t webhook_create(store_t *base, int64_t app, const webhook_t *wh, int max)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_WH_INSERT, true, &rc);
    if (st == NULL) return rc;
    bind_webhook(st, app, wh);
    sqlite3_bind_int(st, 10, max);
    int changes = 0;
    rc = sq_step_changes(s, st, &changes);
    if (rc == STORE_OK && changes == 0) rc = STORE_CONFLICT;
    return sq_finish_single(s, rc);
}

static store_rc_t webhook_get(store_t *base, int64_t app, const char *id, store_webhook_cb cb, void *ctx,
                              const store_async_t *async)
{
    (void)async;
    return sq_read_one(sq_of(base), Q_WH_GET, app, id, NULL, emit_webhook, (void *)cb, ctx);
}

/* Binds the page pg from parameter i on: limit, offset, the position. */
static void bind_page(sqlite3_stmt *st, int i, const store_newest_page_t *pg)
{
    sqlite3_bind_int(st, i, pg->limit);
    sqlite3_bind_int64(st, i + 1, pg->after_id != NULL ? 0 : pg->offset);
    sqlite3_bind_int64(st, i + 2, pg->after_id != NULL ? pg->after_at : STORE_NEWEST_END_AT);
    sq_bind_str(st, i + 3, pg->after_id != NULL ? pg->after_id : STORE_NEWEST_END_ID);
}

static store_rc_t webhook_list(store_t *base, int64_t app, const store_newest_page_t *pgq, int64_t *total,
                               store_webhook_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_WH_LIST);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    bind_page(st, 2, pgq);
    page_t pg = {.emit = emit_page_webhook, .cb = (void *)cb, .ctx = ctx};
    store_rc_t rc = step_page(s, st, &pg);
    *total = pg.total;
    return rc;
}

/* The patch after the key (app, id): the fields bits, the values, now. */
static void bind_patch(sqlite3_stmt *st, const void *patch, int64_t now)
{
    const webhook_patch_t *p = patch;
    sqlite3_bind_int(st, 3, (int)p->fields);
    sq_bind_text(st, 4, p->v.url);
    sqlite3_bind_int64(st, 5, p->v.events);
    sq_bind_text(st, 6, p->v.description);
    sqlite3_bind_int(st, 7, p->v.active);
    sqlite3_bind_int64(st, 8, now);
}

static store_rc_t webhook_update(store_t *base, int64_t app, const char *id, const webhook_patch_t *patch,
                                 int64_t now, store_webhook_cb cb, void *ctx)
{
    const sq_update_t u = {.stmt = Q_WH_UPDATE, .id = id, .bind = bind_patch, .emit = emit_webhook};
    return sq_update(sq_of(base), app, &u, patch, now, (void *)cb, ctx);
}

/* Runs statement id with ?1 bound to text v, inside the open write. */
static store_rc_t run_by_id(sqlite_store_t *s, enum sq_stmt_id id, const char *v)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, v);
    return sq_run(s, st);
}

static store_rc_t webhook_remove(store_t *base, int64_t app, const char *id)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_WH_DELETE, false, &rc);
    if (st == NULL) return rc;
    sq_bind_key(st, app, id, NULL);
    rc = sq_step_changed(s, st);
    if (rc == STORE_OK) rc = run_by_id(s, Q_WH_DELETE_PAYLOADS, id);
    if (rc == STORE_OK) rc = run_by_id(s, Q_WH_DELETE_EVENTS, id);
    if (rc == STORE_OK) rc = run_by_id(s, Q_WH_DELETE_ATTEMPTS, id);
    return sq_finish(s, rc);
}

static store_rc_t webhook_deliveries(store_t *base, int64_t app, const char *id,
                                     const store_newest_page_t *pgq, int64_t *total, store_delivery_cb cb,
                                     void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_WH_DELIVERIES);
    if (st == NULL) return STORE_ERROR;
    sq_bind_key(st, app, id, NULL);
    bind_page(st, 3, pgq);
    page_t pg = {.emit = emit_page_delivery, .cb = (void *)cb, .ctx = ctx};
    store_rc_t rc = step_page(s, st, &pg);
    *total = pg.total;
    return rc == STORE_OK && pg.rows == 0 ? STORE_NOT_FOUND : rc;
}

/* --- the outbox --------------------------------------------------------------- */

/* The webhooks whose backlog is full: the event dropped in their logs,
 * then made inactive (store_event_t), inside the open write. */
static store_rc_t backlog_full(sqlite_store_t *s, int64_t app, const store_event_t *ev)
{
    store_rc_t rc = STORE_OK;
    for (int i = 0; i < 2 && rc == STORE_OK; i++) {
        sqlite3_stmt *st = sq_stmt(s, i == 0 ? Q_EV_FULL_LOG : Q_EV_FULL_OFF);
        if (st == NULL) return STORE_ERROR;
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_int64(st, 2, EVENT_ALL | EVENT_BIT(ev->type));
        sqlite3_bind_int64(st, 3, ev->backlog_max - 1);
        if (i == 0) {
            sq_bind_str(st, 4, ev->drop_id);
            sq_bind_str(st, 5, ev->id);
            sqlite3_bind_int(st, 6, ev->type);
            sqlite3_bind_int64(st, 7, ev->created_at);
        }
        rc = sq_run(s, st);
    }
    return rc;
}

/* Stores an event's payload by statement id (Q_EV_PAYLOAD, or the
 * import's, which keeps one stored before), inside the open write. */
static store_rc_t put_payload(sqlite_store_t *s, enum sq_stmt_id id, const char *event_id, int type,
                              int64_t created_at, text_ref_t payload)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, event_id);
    sqlite3_bind_int(st, 2, type);
    sqlite3_bind_int64(st, 3, created_at);
    sqlite3_bind_text(st, 4, payload.ptr, (int)payload.len, SQLITE_STATIC);
    return sq_run(s, st);
}

/* A queue row per webhook that wants ev after the backlogs' check, then
 * the payload once if there was any. */
static store_rc_t event_record(store_t *base, int64_t app, const store_event_t *ev, int *recorded)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_EV_RECORD, false, &rc);
    if (st == NULL) return rc;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int64(st, 2, EVENT_ALL | EVENT_BIT(ev->type));
    sq_bind_str(st, 3, ev->id);
    rc = backlog_full(s, app, ev);
    if (rc == STORE_OK)
        rc = sq_step_changes(s, st, recorded);
    else
        sq_reset(st);
    if (rc == STORE_OK && *recorded > 0)
        rc = put_payload(s, Q_EV_PAYLOAD, ev->id, ev->type, ev->created_at,
                         (text_ref_t){ev->payload, ev->len});
    return sq_finish(s, rc);
}

static store_rc_t event_maybe_wanted(store_t *base, int64_t app, int type, bool *wanted)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_EV_WANTED);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int64(st, 2, EVENT_ALL | EVENT_BIT(type));
    int src = sqlite3_step(st);
    *wanted = src != SQLITE_DONE; /* a failure: asked for each then */
    sq_reset(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

/* Steps st to its end, passing each row's lane to cb, and resets it. */
static store_rc_t step_lanes(sqlite_store_t *s, sqlite3_stmt *st, store_lane_cb cb, void *ctx)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_lane_t lane;
        read_lane(st, &lane);
        if (cb != NULL) cb(ctx, &lane);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static store_rc_t outbox_claim(store_t *base, const char *owner, int64_t now, int64_t lease_until, int max,
                               store_lane_cb cb, void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_OUT_CLAIM, true, &rc);
    if (st == NULL) return rc;
    sq_bind_str(st, 1, owner);
    sqlite3_bind_int64(st, 2, lease_until);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int(st, 4, max);
    return sq_finish_single(s, step_lanes(s, st, cb, ctx));
}

static store_rc_t outbox_queue(store_t *base, const char *webhook_id, int limit, store_queued_cb cb,
                               void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_OUT_QUEUE);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, webhook_id);
    sqlite3_bind_int(st, 2, limit);
    int src = sqlite3_step(st);
    /* The snapshot is taken: the writer's commits in it whose syncs are
     * still owed (store_sync_defer) are waited for, so that no event is
     * sent before its change is on disk. */
    if (src == SQLITE_ROW && !sq_vfs_durable(SQ_DURABLE_WAIT_MS)) {
        sq_reset(st);
        return STORE_UNAVAILABLE;
    }
    for (; src == SQLITE_ROW; src = sqlite3_step(st)) {
        store_queued_t e;
        read_queued(st, 0, &e);
        e.url = sq_col_str(st, QUEUED_COL_URL);
        e.active = sqlite3_column_int(st, QUEUED_COL_ACTIVE) != 0;
        cb(ctx, &e);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static void bind_attempt(sqlite3_stmt *st, const store_outcome_t *o)
{
    const delivery_t *d = o->attempt;
    sq_bind_str(st, 1, o->webhook_id);
    sq_bind_str(st, 2, d->id);
    sq_bind_str(st, 3, d->event_id);
    sqlite3_bind_int(st, 4, d->type);
    sqlite3_bind_int(st, 5, d->attempt);
    sq_bind_opt_int(st, 6, d->status_code > 0, d->status_code);
    sqlite3_bind_int64(st, 7, d->duration_ms);
    sq_bind_text(st, 8, d->error);
    sq_bind_opt_int(st, 9, d->next_retry_at > 0, d->next_retry_at);
    sqlite3_bind_int64(st, 10, d->created_at);
}

/* The event's row after the attempt: gone once it ends (and its payload
 * with the last row that needs it), else its retry. */
static store_rc_t update_event(sqlite_store_t *s, const store_outcome_t *o)
{
    const delivery_t *d = o->attempt;
    sqlite3_stmt *st = sq_stmt(s, d->next_retry_at > 0 ? Q_OUT_RETRY : Q_OUT_DONE);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, o->seq);
    if (d->next_retry_at > 0) {
        sqlite3_bind_int(st, 2, d->attempt);
        sqlite3_bind_int64(st, 3, o->first_at);
        sqlite3_bind_int64(st, 4, d->next_retry_at);
    }
    store_rc_t rc = sq_run(s, st);
    return rc == STORE_OK && d->next_retry_at == 0 ? run_by_id(s, Q_OUT_UNUSED, d->event_id) : rc;
}

/* The webhook's failing state after the attempt; a webhook that this
 * failure disables goes to r->disabled. */
static store_rc_t update_failing(sqlite_store_t *s, const store_report_t *r, const store_outcome_t *o)
{
    sqlite3_stmt *st = sq_stmt(s, o->ok ? Q_OUT_OK : Q_OUT_FAILED);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, o->webhook_id);
    if (!o->ok) {
        sqlite3_bind_int64(st, 2, o->attempt->created_at);
        sqlite3_bind_int64(st, 3, r->disable_after_ms);
    }
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        if (sqlite3_column_int(st, 0) == 0 && r->disabled != NULL) r->disabled(r->ctx, o->webhook_id);
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static store_rc_t report_outcome(sqlite_store_t *s, const store_report_t *r, const store_outcome_t *o)
{
    sqlite3_stmt *st = sq_stmt(s, Q_OUT_ATTEMPT);
    if (st == NULL) return STORE_ERROR;
    bind_attempt(st, o);
    store_rc_t rc = sq_run(s, st);
    if (rc == STORE_OK) rc = update_event(s, o);
    if (rc == STORE_OK) rc = update_failing(s, r, o);
    return rc;
}

/* The leases: those released end, those of inactive webhooks too, and the
 * rest are renewed (held gets them). */
static store_rc_t report_leases(sqlite_store_t *s, const store_report_t *r)
{
    store_rc_t rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < r->nrelease; i++) {
        sqlite3_stmt *st = sq_stmt(s, Q_OUT_RELEASE);
        if (st == NULL) return STORE_ERROR;
        sq_bind_str(st, 1, r->release[i]);
        sq_bind_str(st, 2, r->owner);
        rc = sq_run(s, st);
    }
    if (rc == STORE_OK) rc = run_by_id(s, Q_OUT_DROP, r->owner);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st = sq_stmt(s, Q_OUT_RENEW);
    if (st == NULL) return STORE_ERROR;
    sq_bind_str(st, 1, r->owner);
    sqlite3_bind_int64(st, 2, r->lease_until);
    return step_lanes(s, st, r->held, r->ctx);
}

static store_rc_t outbox_report(store_t *base, const store_report_t *r)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    for (size_t i = 0; rc == STORE_OK && i < r->n; i++)
        rc = report_outcome(s, r, &r->outcomes[i]);
    if (rc == STORE_OK) rc = report_leases(s, r);
    return sq_finish(s, rc);
}

static store_rc_t outbox_owners(store_t *base, void (*cb)(void *ctx, const char *owner), void *ctx)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_OUT_OWNERS);
    if (st == NULL) return STORE_ERROR;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, sq_col_str(st, 0));
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static store_rc_t release_owner(store_t *base, const char *owner)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_OUT_FREE, true, &rc);
    if (st == NULL) return rc;
    sq_bind_str(st, 1, owner);
    return sq_finish_single(s, sq_run(s, st));
}

static store_rc_t outbox_prune(store_t *base, int64_t before, int limit, int *deleted)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc;
    *deleted = 0;
    sqlite3_stmt *st = sq_write_stmt(s, Q_OUT_PRUNE, true, &rc);
    if (st == NULL) return rc;
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, limit);
    return sq_finish_single(s, sq_step_changes(s, st, deleted));
}

/* --- bulk copy ---------------------------------------------------------------- */

store_rc_t sq_webhook_counts(sqlite_store_t *s, store_counts_t *out)
{
    sqlite3_stmt *st = sq_stmt(s, Q_WH_COUNTS);
    if (st == NULL) return STORE_ERROR;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->webhooks = sqlite3_column_int64(st, 0);
        out->events = sqlite3_column_int64(st, 1);
    }
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

static store_rc_t export_webhook(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    webhook_t wh;
    read_webhook(st, 1, &wh);
    return cb->webhook(ctx, sqlite3_column_int64(st, 0), &wh);
}

static store_rc_t export_event(sqlite3_stmt *st, const store_export_t *cb, void *ctx)
{
    store_queued_t e;
    read_queued(st, 1, &e);
    return cb->event(ctx, sq_col_str(st, 0), &e);
}

/* Steps export statement id, handing each row to fn. */
static store_rc_t export_rows(sqlite_store_t *s, enum sq_stmt_id id, sq_export_row_fn fn,
                              const store_export_t *cb, void *ctx)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    store_rc_t rc = sq_export_step(s, st, fn, cb, ctx);
    sq_reset(st);
    return rc;
}

store_rc_t sq_webhook_export(sqlite_store_t *s, const store_export_t *cb, void *ctx)
{
    store_rc_t rc = export_rows(s, Q_WH_EXPORT, export_webhook, cb, ctx);
    return rc == STORE_OK ? export_rows(s, Q_EV_EXPORT, export_event, cb, ctx) : rc;
}

static store_rc_t import_webhook(store_t *base, int64_t app, const webhook_t *wh)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *st = sq_stmt(s, Q_WH_IMPORT);
    if (st == NULL) return STORE_ERROR;
    bind_webhook(st, app, wh);
    return sq_run(s, st);
}

static store_rc_t import_event(store_t *base, const char *webhook_id, const store_queued_t *e)
{
    sqlite_store_t *s = sq_of(base);
    store_rc_t rc = put_payload(s, Q_EV_IMPORT_PAYLOAD, e->event_id, e->type, e->created_at,
                                (text_ref_t){e->payload, e->len});
    sqlite3_stmt *st = rc == STORE_OK ? sq_stmt(s, Q_EV_IMPORT) : NULL;
    if (st == NULL) return rc == STORE_OK ? STORE_ERROR : rc;
    sq_bind_str(st, 1, webhook_id);
    sq_bind_str(st, 2, e->event_id);
    sqlite3_bind_int(st, 3, e->attempts);
    sqlite3_bind_int64(st, 4, e->first_at);
    sqlite3_bind_int64(st, 5, e->next_at);
    return sq_run(s, st);
}

const store_webhook_ops_t sq_webhook_ops = {
    .create = webhook_create,
    .get = webhook_get,
    .list = webhook_list,
    .update = webhook_update,
    .remove = webhook_remove,
    .deliveries = webhook_deliveries,
    .event_record = event_record,
    .event_wanted = event_maybe_wanted,
    .claim = outbox_claim,
    .queue = outbox_queue,
    .report = outbox_report,
    .owners = outbox_owners,
    .prune = outbox_prune,
    .release_owner = release_owner,
    .import_webhook = import_webhook,
    .import_event = import_event,
};
