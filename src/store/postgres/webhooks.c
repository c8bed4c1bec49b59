/*
 * webhooks.c: webhooks, the outbox and the delivery log on PostgreSQL (see
 * store/webhook.h for the contract, store/webhook_sql.h for the statements
 * both backends share).
 *
 * Sections:
 *   rows              reading webhooks, attempts and queued events
 *   subscriptions     create, get, list, update, delete, the log
 *   the outbox        recording events, claims, queues, reports
 *   bulk copy         counting, exporting, importing
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "model/event.h"
#include "store/postgres/pg_int.h"

/* --- rows --------------------------------------------------------------------- */

static void read_webhook(const PGresult *r, int row, int c0, webhook_t *wh)
{
    pg_get_uuid(r, row, c0 + WEBHOOK_COL_ID, wh->id);
    wh->url = pg_get_text(r, row, c0 + WEBHOOK_COL_URL);
    wh->events = (unsigned)pg_get_int(r, row, c0 + WEBHOOK_COL_EVENTS);
    wh->description = pg_get_text(r, row, c0 + WEBHOOK_COL_DESCRIPTION);
    wh->active = pg_get_int(r, row, c0 + WEBHOOK_COL_ACTIVE) != 0;
    wh->secret = pg_get_text(r, row, c0 + WEBHOOK_COL_SECRET);
    wh->created_at = pg_get_int(r, row, c0 + WEBHOOK_COL_CREATED_AT);
    wh->updated_at = pg_get_int(r, row, c0 + WEBHOOK_COL_UPDATED_AT);
}

static void read_delivery(const PGresult *r, int row, int c0, delivery_t *d)
{
    pg_get_uuid(r, row, c0 + DELIVERY_COL_ID, d->id);
    pg_get_uuid(r, row, c0 + DELIVERY_COL_EVENT, d->event_id);
    d->type = (int)pg_get_int(r, row, c0 + DELIVERY_COL_TYPE);
    d->attempt = (int)pg_get_int(r, row, c0 + DELIVERY_COL_ATTEMPT);
    d->status_code = (int)pg_get_int(r, row, c0 + DELIVERY_COL_STATUS);
    d->duration_ms = pg_get_int(r, row, c0 + DELIVERY_COL_DURATION);
    d->error = pg_get_text(r, row, c0 + DELIVERY_COL_ERROR);
    d->next_retry_at = pg_get_int(r, row, c0 + DELIVERY_COL_NEXT_RETRY);
    d->created_at = pg_get_int(r, row, c0 + DELIVERY_COL_CREATED_AT);
}

static void read_queued(const PGresult *r, int row, int c0, store_queued_t *e)
{
    e->seq = pg_get_int(r, row, c0 + QUEUED_COL_SEQ);
    pg_get_uuid(r, row, c0 + QUEUED_COL_EVENT, e->event_id);
    e->type = (int)pg_get_int(r, row, c0 + QUEUED_COL_TYPE);
    e->created_at = pg_get_int(r, row, c0 + QUEUED_COL_CREATED_AT);
    /* libpq ends every value with a NUL. */
    e->payload = PQgetvalue(r, row, c0 + QUEUED_COL_PAYLOAD);
    e->len = (size_t)PQgetlength(r, row, c0 + QUEUED_COL_PAYLOAD);
    e->attempts = (int)pg_get_int(r, row, c0 + QUEUED_COL_ATTEMPTS);
    e->first_at = pg_get_int(r, row, c0 + QUEUED_COL_FIRST_AT);
    e->next_at = pg_get_int(r, row, c0 + QUEUED_COL_NEXT_AT);
    e->url = NULL;
    e->active = false;
}

/* Passes every row of r (SCHEMA_LANE_COLS) to cb. */
static void pass_lanes(const PGresult *r, store_lane_cb cb, void *ctx)
{
    for (int i = 0; cb != NULL && i < PQntuples(r); i++) {
        char id[UUID_BUFSZ];
        pg_get_uuid(r, i, 0, id);
        store_lane_t lane = {
            .id = id, .app = pg_get_int(r, i, 1), .url = PQgetvalue(r, i, 2), .secret = PQgetvalue(r, i, 3)};
        cb(ctx, &lane);
    }
}

/* pg_emit_fn's: every row's record from column c0, but rows whose id is
 * NULL (the empty page of a list). */
static void emit_webhooks(const PGresult *r, int c0, void *cb, void *ctx)
{
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, c0)) continue;
        webhook_t wh;
        read_webhook(r, i, c0, &wh);
        ((store_webhook_cb)cb)(ctx, &wh);
    }
}

static void emit_deliveries(const PGresult *r, int c0, void *cb, void *ctx)
{
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, c0)) continue;
        delivery_t d;
        read_delivery(r, i, c0, &d);
        ((store_delivery_cb)cb)(ctx, &d);
    }
}

/* A page (SCHEMA_WEBHOOK_PAGE): the total in column 0 of every row, the
 * items from column 1; no row at all is STORE_NOT_FOUND (the log of a
 * webhook the app does not have). */
static store_rc_t page_rows(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    *to->total = pg_get_int(r, 0, 0);
    to->emit(r, 1, to->cb, to->ctx);
    return STORE_OK;
}

/* --- subscriptions ------------------------------------------------------------ */

/* A whole webhook for its insert: app, then its columns in order; false
 * when its id is not a UUID. */
static bool webhook_params(pg_params_t *p, int64_t app, const webhook_t *wh)
{
    pgp_int8(p, app);
    if (!pgp_uuid(p, wh->id)) return false;
    pgp_text(p, wh->url);
    pgp_int4(p, (int32_t)wh->events);
    pgp_text(p, wh->description);
    pgp_int4(p, wh->active);
    pgp_text(p, wh->secret);
    pgp_int8(p, wh->created_at);
    pgp_int8(p, wh->updated_at);
    return true;
}

typedef struct creation {
    int64_t app;
    const webhook_t *wh;
    int max;
} creation_t;

/* webhook_create's unit of work. The insert counts the app's webhooks
 * from its own snapshot, so two processes' creates could each see one
 * short of max and both insert; the app's lock, taken first and held to
 * the commit, makes them one at a time, and the insert's snapshot, taken
 * after it, sees the other's (READ COMMITTED). */
static store_rc_t create_unit(pg_store_t *s, void *ctx)
{
    const creation_t *c = ctx;
    pg_params_t l = {0}, p = {0};
    pgp_int8(&l, c->app);
    PGresult *r;
    store_rc_t rc = pg_run_in_tx(s, Q_WH_APP_LOCK, &l, &r);
    PQclear(r);
    if (rc != STORE_OK) return rc;
    if (!webhook_params(&p, c->app, c->wh)) return STORE_ERROR;
    pgp_int4(&p, c->max);
    s->ev_room_app = 0; /* a new backlog: room_ahead looks again */
    rc = pg_run_in_tx(s, Q_WH_INSERT, &p, &r);
    if (rc == STORE_OK && pg_affected(r) == 0) rc = STORE_CONFLICT;
    PQclear(r);
    return rc;
}

static store_rc_t webhook_create(store_t *base, int64_t app, const webhook_t *wh, int max)
{
    creation_t c = {.app = app, .wh = wh, .max = max};
    return pg_write_unit(pg_of(base), create_unit, &c);
}

static store_rc_t webhook_get(store_t *base, int64_t app, const char *id, store_webhook_cb cb, void *ctx,
                              const store_async_t *async)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pg_rows_t to = {.emit = emit_webhooks, .cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_WH_GET, &p, pg_rows_one, &to, async);
}

/* Adds the page pg's parameters: limit, offset, the position. */
static bool page_params(pg_params_t *p, const store_newest_page_t *pg)
{
    pgp_int8(p, pg->limit);
    pgp_int8(p, pg->after_id != NULL ? 0 : pg->offset);
    pgp_int8(p, pg->after_id != NULL ? pg->after_at : STORE_NEWEST_END_AT);
    return pgp_uuid(p, pg->after_id != NULL ? pg->after_id : STORE_NEWEST_END_ID);
}

static store_rc_t webhook_list(store_t *base, int64_t app, const store_newest_page_t *pg, int64_t *total,
                               store_webhook_cb cb, void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(&p, app);
    if (!page_params(&p, pg)) return STORE_ERROR;
    *total = 0;
    pg_rows_t to = {.emit = emit_webhooks, .cb = (void *)cb, .ctx = ctx, .total = total};
    return pg_read_rows(pg_of(base), Q_WH_LIST, &p, page_rows, &to, async);
}

static store_rc_t webhook_update(store_t *base, int64_t app, const char *id, const webhook_patch_t *patch,
                                 int64_t now, store_webhook_cb cb, void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    pgp_int4(&p, (int32_t)patch->fields);
    pgp_text(&p, patch->v.url);
    pgp_int4(&p, (int32_t)patch->v.events);
    pgp_text(&p, patch->v.description);
    pgp_int4(&p, patch->v.active);
    pgp_int8(&p, now);
    /* A webhook set active again brings its backlog back: the room seen
     * before (room_ahead) no longer holds. */
    pg_of(base)->ev_room_app = 0;
    return pg_one_row(pg_of(base), Q_WH_UPDATE, &p, 0, 0, emit_webhooks, (void *)cb, ctx);
}

/* Locks, then drops, the payloads of the events ids (an array literal
 * being written, ended here) that no queue row names any more, inside the
 * open transaction (see PG_WEBHOOK_SQL). */
static store_rc_t drop_unused(pg_store_t *s, pg_array_t *ids)
{
    /* Only the brace: none, unless its first growth failed (out of memory:
     * taken for none, the payloads would stay behind for good). */
    if (ids->len <= 1 && !ids->oom) return STORE_OK;
    pg_array_end(ids);
    if (ids->oom) return STORE_ERROR;
    pg_params_t p = {0};
    pgp_own_text(&p, ids->buf, ids->len);
    store_rc_t rc = pg_run_in_tx(s, Q_PAYLOAD_LOCK, &p, NULL);
    return rc == STORE_OK ? pg_run_in_tx(s, Q_PAYLOAD_DROP, &p, NULL) : rc;
}

typedef struct removal {
    int64_t app;
    const char *id;
} removal_t;

/* The delete (pg_unit_fn): the webhook, then (a new snapshot, which shows
 * what a writer that held the webhook's row queued for it) its queue and
 * log, then the payloads only its queue needed. */
static store_rc_t remove_unit(pg_store_t *s, void *ctx)
{
    const removal_t *rm = ctx;
    pg_params_t p = {0};
    if (!pgp_key(&p, rm->app, rm->id, NULL)) return STORE_NOT_FOUND;
    PGresult *r;
    store_rc_t rc = pg_run_in_tx(s, Q_WH_DELETE, &p, &r);
    if (rc != STORE_OK) return rc;
    bool gone = pg_affected(r) == 1;
    PQclear(r);
    if (!gone) return STORE_NOT_FOUND;
    pg_params_t q = {0};
    if (!pgp_uuid(&q, rm->id)) return STORE_NOT_FOUND;
    rc = pg_run_in_tx(s, Q_WH_DELETE_QUEUE, &q, &r);
    if (rc != STORE_OK) return rc;
    pg_array_t ids = {0};
    pg_array_begin(&ids);
    for (int i = 0; i < PQntuples(r); i++) {
        char event_id[UUID_BUFSZ];
        pg_get_uuid(r, i, 0, event_id);
        pg_array_text(&ids, (text_ref_t){event_id, strlen(event_id)});
    }
    PQclear(r);
    rc = drop_unused(s, &ids);
    free(ids.buf);
    return rc;
}

static store_rc_t webhook_remove(store_t *base, int64_t app, const char *id)
{
    removal_t rm = {.app = app, .id = id};
    return pg_write_unit(pg_of(base), remove_unit, &rm);
}

static store_rc_t webhook_deliveries(store_t *base, int64_t app, const char *id,
                                     const store_newest_page_t *pg, int64_t *total, store_delivery_cb cb,
                                     void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    if (!pgp_key(&p, app, id, NULL)) return STORE_NOT_FOUND;
    if (!page_params(&p, pg)) return STORE_ERROR;
    *total = 0;
    pg_rows_t to = {.emit = emit_deliveries, .cb = (void *)cb, .ctx = ctx, .total = total};
    return pg_read_rows(pg_of(base), Q_WH_DELIVERIES, &p, page_rows, &to, async);
}

/* --- the outbox --------------------------------------------------------------- */

/* How many events of one app a transaction records without a look when
 * the app has no active webhook. */
#define EV_ROOM_NONE 256

/* Whether this event of app may skip the test of a full backlog: the
 * least room left in the app's webhooks' backlogs is looked at once
 * (Q_EV_NEAR_FULL), and that many events of the app skip the test in
 * this transaction, rather than the test at each event, which reads up
 * to --webhook-backlog-max entries of each webhook's queue and held the
 * process's writer 34 s for a batch of 500 creates of an app with 100
 * failing webhooks (a review). In a unit sending in pipeline mode (a
 * batch's creates), the look collects what was sent before it (txn.c:
 * run). Not in crmd copy's import, which records no events. */
static bool room_ahead(pg_store_t *s, int64_t app, const store_event_t *ev)
{
    if (s->ev_room_app == app && s->ev_room > 0) {
        s->ev_room--;
        return true;
    }
    s->ev_room_app = 0;
    if (s->in_import) return false;
    pg_params_t p = {0};
    pgp_int8(&p, app);
    pgp_int4(&p, (int32_t)(EVENT_ALL | ((1u << EVENT_NTYPES) - 1)));
    pgp_int8(&p, ev->backlog_max);
    PGresult *res = NULL;
    store_rc_t rc = pg_write(s, Q_EV_NEAR_FULL, &p, 0, 0, &res);
    /* With no active webhook, as many events as a backlog may hold at
     * most: one set active again meanwhile by another process, full, then
     * takes no more past its cap than the room of one seen would. */
    int64_t none_room = ev->backlog_max < EV_ROOM_NONE ? ev->backlog_max : EV_ROOM_NONE;
    int64_t room = rc != STORE_OK ? 0 : PQntuples(res) == 0 ? none_room : pg_get_int(res, 0, 0);
    PQclear(res);
    /* Room for room events in each backlog: this one and room - 1 more
     * (events only add to a backlog within the transaction; a webhook set
     * active again forgets it: webhook_update). */
    if (room < 1) return false;
    s->ev_room_app = app;
    s->ev_room = room - 1 > INT_MAX ? INT_MAX : (int)(room - 1);
    return true;
}

/* The webhooks whose backlog is full: the event dropped in their logs,
 * then made inactive (store_event_t). Inside the writer's batch, so these
 * and the event's rows commit or fail together with the change. */
static store_rc_t backlog_full(pg_store_t *s, int64_t app, const store_event_t *ev)
{
    if (room_ahead(s, app, ev)) return STORE_OK;
    store_rc_t rc = STORE_OK;
    for (int i = 0; i < 2 && rc == STORE_OK; i++) {
        pg_params_t p = {0};
        pgp_int8(&p, app);
        pgp_int4(&p, (int32_t)(EVENT_ALL | EVENT_BIT(ev->type)));
        pgp_int8(&p, ev->backlog_max - 1);
        if (i == 0 && (!pgp_uuid(&p, ev->drop_id) || !pgp_uuid(&p, ev->id))) return STORE_ERROR;
        if (i == 0) pgp_int4(&p, ev->type);
        if (i == 0) pgp_int8(&p, ev->created_at);
        rc = pg_write(s, i == 0 ? Q_EV_FULL_LOG : Q_EV_FULL_OFF, &p, 0, 0, NULL);
    }
    return rc;
}

static store_rc_t event_record(store_t *base, int64_t app, const store_event_t *ev, int *recorded)
{
    pg_params_t p = {0};
    pgp_int8(&p, app);
    pgp_int4(&p, (int32_t)(EVENT_ALL | EVENT_BIT(ev->type)));
    if (!pgp_uuid(&p, ev->id)) return STORE_ERROR;
    pgp_int4(&p, ev->type);
    pgp_int8(&p, ev->created_at);
    pgp_text(&p, (text_ref_t){ev->payload, ev->len});
    pg_store_t *s = pg_of(base);
    store_rc_t rc = backlog_full(s, app, ev);
    if (rc != STORE_OK) return rc;
    if (s->in_unit && s->unit_sends) {
        /* An import's event is sent in pipeline mode (txn.c), unanswered:
         * it may have been recorded, and the sender is told to look
         * (webhook.h allows one too many). */
        rc = pg_write(s, Q_EV_RECORD, &p, 0, 0, NULL);
        *recorded = rc == STORE_OK;
        return rc;
    }
    PGresult *r;
    rc = pg_write(s, Q_EV_RECORD, &p, 0, 0, &r);
    *recorded = rc == STORE_OK ? (int)pg_affected(r) : 0;
    PQclear(r);
    return rc;
}

static store_rc_t outbox_claim(store_t *base, const char *owner, int64_t now, int64_t lease_until, int max,
                               store_lane_cb cb, void *ctx)
{
    pg_params_t p = {0};
    pgp_str(&p, owner);
    pgp_int8(&p, lease_until);
    pgp_int8(&p, now);
    pgp_int8(&p, max);
    PGresult *r;
    store_rc_t rc = pg_write(pg_of(base), Q_OUT_CLAIM, &p, 0, 0, &r);
    if (rc == STORE_OK) pass_lanes(r, cb, ctx);
    PQclear(r);
    return rc;
}

static store_rc_t outbox_queue(store_t *base, const char *webhook_id, int limit, store_queued_cb cb,
                               void *ctx)
{
    pg_params_t p = {0};
    if (!pgp_uuid(&p, webhook_id)) return STORE_NOT_FOUND;
    pgp_int8(&p, limit);
    PGresult *r;
    store_rc_t rc = pg_read(pg_of(base), Q_OUT_QUEUE, &p, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++) {
        store_queued_t e;
        read_queued(r, i, 0, &e);
        e.url = PQgetvalue(r, i, QUEUED_COL_URL);
        e.active = pg_get_int(r, i, QUEUED_COL_ACTIVE) != 0;
        cb(ctx, &e);
    }
    PQclear(r);
    return rc;
}

static store_rc_t report_attempt(pg_store_t *s, const store_outcome_t *o)
{
    const delivery_t *d = o->attempt;
    pg_params_t p = {0};
    if (!pgp_uuid(&p, o->webhook_id) || !pgp_uuid(&p, d->id) || !pgp_uuid(&p, d->event_id))
        return STORE_ERROR;
    pgp_int4(&p, d->type);
    pgp_int4(&p, d->attempt);
    pgp_opt_int4(&p, d->status_code > 0, d->status_code);
    pgp_int8(&p, d->duration_ms);
    pgp_text(&p, d->error);
    pgp_opt_int8(&p, d->next_retry_at > 0, d->next_retry_at);
    pgp_int8(&p, d->created_at);
    return pg_run_in_tx(s, Q_OUT_ATTEMPT, &p, NULL);
}

/* The event's row after the attempt: gone once it ends, else its retry. */
static store_rc_t report_event(pg_store_t *s, const store_outcome_t *o)
{
    const delivery_t *d = o->attempt;
    pg_params_t p = {0};
    pgp_int8(&p, o->seq);
    if (d->next_retry_at == 0) return pg_run_in_tx(s, Q_OUT_DONE, &p, NULL);
    pgp_int4(&p, d->attempt);
    pgp_int8(&p, o->first_at);
    pgp_int8(&p, d->next_retry_at);
    return pg_run_in_tx(s, Q_OUT_RETRY, &p, NULL);
}

/* The webhook's failing state; a webhook this failure disables goes to
 * r->disabled. */
static store_rc_t report_failing(pg_store_t *s, const store_report_t *r, const store_outcome_t *o)
{
    pg_params_t p = {0};
    if (!pgp_uuid(&p, o->webhook_id)) return STORE_ERROR;
    if (o->ok) return pg_run_in_tx(s, Q_OUT_OK, &p, NULL);
    pgp_int8(&p, o->attempt->created_at);
    pgp_int8(&p, r->disable_after_ms);
    PGresult *res;
    store_rc_t rc = pg_run_in_tx(s, Q_OUT_FAILED, &p, &res);
    if (rc == STORE_OK && PQntuples(res) == 1 && pg_get_int(res, 0, 0) == 0 && r->disabled != NULL)
        r->disabled(r->ctx, o->webhook_id);
    PQclear(res);
    return rc;
}

/* The leases: those released end, those of inactive webhooks too, and the
 * rest are renewed (held gets them). */
static store_rc_t report_leases(pg_store_t *s, const store_report_t *r)
{
    store_rc_t rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < r->nrelease; i++) {
        pg_params_t p = {0};
        if (!pgp_uuid(&p, r->release[i])) continue;
        pgp_str(&p, r->owner);
        rc = pg_run_in_tx(s, Q_OUT_RELEASE, &p, NULL);
    }
    pg_params_t p = {0};
    pgp_str(&p, r->owner);
    if (rc == STORE_OK) rc = pg_run_in_tx(s, Q_OUT_DROP, &p, NULL);
    if (rc != STORE_OK) return rc;
    pgp_int8(&p, r->lease_until);
    PGresult *res;
    rc = pg_run_in_tx(s, Q_OUT_RENEW, &p, &res);
    if (rc == STORE_OK) pass_lanes(res, r->held, r->ctx);
    PQclear(res);
    return rc;
}

/* The outcomes; the ids of the events whose rows they ended go to ended. */
static store_rc_t report_outcomes(pg_store_t *s, const store_report_t *r, pg_array_t *ended)
{
    store_rc_t rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < r->n; i++) {
        const store_outcome_t *o = &r->outcomes[i];
        rc = report_attempt(s, o);
        if (rc == STORE_OK) rc = report_event(s, o);
        if (rc == STORE_OK) rc = report_failing(s, r, o);
        const char *event_id = o->attempt->event_id;
        if (o->attempt->next_retry_at == 0 && event_id[0] != '\0')
            pg_array_text(ended, (text_ref_t){event_id, strlen(event_id)});
    }
    return rc;
}

/* Locks every webhook the report changes (those of r's outcomes, and
 * those r's owner leases, whose leases it ends or renews) in one
 * statement, in the order of their ids (see PG_IN_ID_ORDER), and before
 * their queue rows: a webhook's delete takes its row, then its queue. */
static store_rc_t lock_webhooks(pg_store_t *s, const store_report_t *r)
{
    pg_array_t ids = {0};
    pg_array_begin(&ids);
    for (size_t i = 0; i < r->n; i++)
        pg_array_text(&ids, (text_ref_t){r->outcomes[i].webhook_id, strlen(r->outcomes[i].webhook_id)});
    pg_array_end(&ids);
    store_rc_t rc = ids.oom ? STORE_ERROR : STORE_OK;
    if (rc == STORE_OK) {
        pg_params_t p = {0};
        pgp_own_text(&p, ids.buf, ids.len);
        pgp_str(&p, r->owner);
        rc = pg_run_in_tx(s, Q_OUT_LOCK, &p, NULL);
    }
    free(ids.buf);
    return rc;
}

/* The outcomes (their webhooks locked first), the leases, and only then
 * the payloads that the ended rows no longer need: a webhook's delete
 * holds its row while it waits for its queue rows and then for those
 * payloads' locks, so a report that held either while it waited for that
 * row would deadlock with it. */
static store_rc_t outbox_report(store_t *base, const store_report_t *r)
{
    pg_store_t *s = pg_of(base);
    pg_array_t ended = {0};
    pg_array_begin(&ended);
    store_rc_t rc = pg_tx_begin(s, "BEGIN");
    if (rc == STORE_OK) rc = lock_webhooks(s, r);
    if (rc == STORE_OK) rc = report_outcomes(s, r, &ended);
    if (rc == STORE_OK) rc = report_leases(s, r);
    if (rc == STORE_OK) rc = drop_unused(s, &ended);
    free(ended.buf);
    if (rc == STORE_OK) return pg_tx_commit(s);
    if (s->in_tx) pg_tx_rollback(s);
    return rc;
}

static store_rc_t outbox_owners(store_t *base, void (*cb)(void *ctx, const char *owner), void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_read(pg_of(base), Q_OUT_OWNERS, NULL, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++)
        cb(ctx, PQgetvalue(r, i, 0));
    PQclear(r);
    return rc;
}

static store_rc_t release_owner(store_t *base, const char *owner)
{
    pg_params_t p = {0};
    pgp_str(&p, owner);
    return pg_write(pg_of(base), Q_OUT_FREE, &p, 0, 0, NULL);
}

static store_rc_t outbox_prune(store_t *base, int64_t before, int limit, int *deleted)
{
    pg_params_t p = {0};
    pgp_int8(&p, before);
    pgp_int8(&p, limit);
    PGresult *r;
    store_rc_t rc = pg_write(pg_of(base), Q_OUT_PRUNE, &p, 0, 0, &r);
    *deleted = rc == STORE_OK ? (int)pg_affected(r) : 0;
    PQclear(r);
    return rc;
}

/* --- bulk copy ---------------------------------------------------------------- */

store_rc_t pg_webhook_counts(pg_store_t *s, store_counts_t *out)
{
    PGresult *r;
    store_rc_t rc = pg_read(s, Q_WH_COUNTS, NULL, &r);
    if (rc == STORE_OK) {
        out->webhooks = pg_get_int(r, 0, 0);
        out->events = pg_get_int(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

store_rc_t pg_webhook_export(pg_store_t *s, const store_export_t *cb, void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_read(s, Q_WH_EXPORT, NULL, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++) {
        webhook_t wh;
        read_webhook(r, i, 1, &wh);
        rc = cb->webhook(ctx, pg_get_int(r, i, 0), &wh);
    }
    PQclear(r);
    if (rc != STORE_OK) return rc;
    rc = pg_read(s, Q_EV_EXPORT, NULL, &r);
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++) {
        char webhook_id[UUID_BUFSZ];
        pg_get_uuid(r, i, 0, webhook_id);
        store_queued_t e;
        read_queued(r, i, 1, &e);
        rc = cb->event(ctx, webhook_id, &e);
    }
    PQclear(r);
    return rc;
}

static store_rc_t import_webhook(store_t *base, int64_t app, const webhook_t *wh)
{
    pg_params_t p = {0};
    if (!webhook_params(&p, app, wh)) return STORE_ERROR;
    return pg_write(pg_of(base), Q_WH_IMPORT, &p, 0, 0, NULL);
}

static store_rc_t import_event(store_t *base, const char *webhook_id, const store_queued_t *e)
{
    pg_params_t pl = {0};
    if (!pgp_uuid(&pl, e->event_id)) return STORE_ERROR;
    pgp_int4(&pl, e->type);
    pgp_int8(&pl, e->created_at);
    pgp_text(&pl, (text_ref_t){e->payload, e->len});
    store_rc_t rc = pg_write(pg_of(base), Q_EV_IMPORT_PAYLOAD, &pl, 0, 0, NULL);
    if (rc != STORE_OK) return rc;
    pg_params_t p = {0};
    if (!pgp_uuid(&p, webhook_id) || !pgp_uuid(&p, e->event_id)) return STORE_ERROR;
    pgp_int4(&p, e->attempts);
    pgp_int8(&p, e->first_at);
    pgp_int8(&p, e->next_at);
    return pg_write(pg_of(base), Q_EV_IMPORT, &p, 0, 0, NULL);
}

/* Another process may add a webhook while this batch runs (see webhook.h). */
static store_rc_t event_maybe_wanted(store_t *base, int64_t app, int type, bool *wanted)
{
    (void)base, (void)app, (void)type;
    *wanted = true;
    return STORE_OK;
}

const store_webhook_ops_t pg_webhook_ops = {
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
