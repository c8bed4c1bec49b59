/*
 * leads.c: /leads and /leads/{id}.
 *
 * Reads run here, on the worker thread, and may wait for the store (see
 * api_req_read). Writes are validated here and then run on the writer
 * thread (writer.c) by the run_* functions, which only touch the
 * api_write_t they are given.
 */
#include "api/change.h"
#include "api/find.h"
#include "api/handlers.h"
#include "api/request.h"
#include "api/resource.h"
#include "api/writer.h"

#include <stdio.h>
#include <string.h>

/* Renders one lead as {"data": ...}. */
static void emit_one(void *ctx, const lead_t *lead)
{
    api_render_t *c = ctx;
    jw_reset(c->w);
    jw_lit(c->w, "{\"data\":");
    lead_encode(c->w, lead);
    jw_lit(c->w, "}");
}

static store_rc_t start_get(api_req_t *r, const store_async_t *async)
{
    return store_lead_get(r->t->store, r->app.id, r->id, emit_one, &r->rd.render, async);
}

static const api_read_spec_t GET = {start_get, false, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL};

void leads_list(api_req_t *r)
{
    api_leads_list(r);
}

void leads_get(api_req_t *r)
{
    if (!api_lead_id_or_reply(r)) return;
    r->rd.key = (cache_key_t){.kind = CACHE_LEAD, .app = r->app.id};
    memcpy(r->rd.key.id, r->id, sizeof r->id);
    api_resource_read(r, &GET);
}

/* The write's answer: 404 means the lead. */
static void answer(api_write_t *w, store_rc_t rc, int ok_status)
{
    api_write_answer(w, rc, ok_status, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
}

/* Each write describes its change (change.h) once the store made it. */
static void run_create(store_t *s, api_write_t *w)
{
    const lead_t *l = &w->p.lead.v;
    store_rc_t rc = store_lead_create(s, w->app, l);
    const api_change_t c = {.kind = CHANGE_LEAD, .action = CHANGE_CREATED, .lead_after = l};
    if (rc == STORE_OK && !api_change_record(s, w, &c)) return;
    if (rc == STORE_OK) emit_one(&(api_render_t){.w = &w->out}, l);
    answer(w, rc, 201);
}

static void run_update(store_t *s, api_write_t *w)
{
    if (!api_write_precondition(s, w)) return;
    api_held_t before = {0}, after = {0};
    store_rc_t rc = api_held_lead(s, w, &before);
    if (rc == STORE_OK) rc = store_lead_update(s, w->app, w->id, &w->p.lead, w->now, api_hold_lead, &after);
    const api_change_t c = {.kind = CHANGE_LEAD,
                            .action = CHANGE_UPDATED,
                            .lead_before = &before.lead,
                            .lead_after = &after.lead};
    if (rc == STORE_OK && !after.found)
        api_change_fail(w, STORE_UNAVAILABLE);
    else if (rc != STORE_OK || api_change_record(s, w, &c)) {
        if (rc == STORE_OK) emit_one(&(api_render_t){.w = &w->out}, &after.lead);
        answer(w, rc, 200);
    }
    api_held_free(&before);
    api_held_free(&after);
}

/* A delete moves the lead to the trash, unless nothing is kept there
 * (--trash-retention 0): then it is gone at once (api_change_lead_delete). */
static void run_delete(store_t *s, api_write_t *w)
{
    if (!api_write_precondition(s, w)) return;
    api_held_t before = {0};
    store_rc_t rc = api_held_lead(s, w, &before);
    if (rc != STORE_OK || api_change_lead_delete(s, w, w->id, &before.lead, &rc)) answer(w, rc, 204);
    api_held_free(&before);
}

/* The trash's 404: the lead is not there (a live one included). */
static const char NOT_IN_TRASH[] = "The requested lead is not in the trash.";

static void run_recover(store_t *s, api_write_t *w)
{
    api_held_t after = {0};
    store_rc_t rc = store_lead_recover(s, w->app, w->id, w->now, api_hold_lead, &after);
    const api_change_t c = {.kind = CHANGE_LEAD, .action = CHANGE_RECOVERED, .lead_after = &after.lead};
    if (rc == STORE_OK && !after.found) {
        api_change_fail(w, STORE_UNAVAILABLE);
    } else if (rc != STORE_OK || api_change_record(s, w, &c)) {
        if (rc == STORE_OK) emit_one(&(api_render_t){.w = &w->out}, &after.lead);
        api_write_answer(w, rc, 200, API_LEAD_NOT_FOUND_TITLE, NOT_IN_TRASH);
    }
    api_held_free(&after);
}

static void run_purge(store_t *s, api_write_t *w)
{
    api_held_t before = {0};
    store_rc_t rc = store_trash_get(s, w->app, w->id, api_hold_trashed, &before);
    if (rc == STORE_OK && !before.found) rc = STORE_UNAVAILABLE;
    if (rc == STORE_OK) rc = store_trash_purge(s, w->app, w->id);
    const api_change_t c = {.kind = CHANGE_LEAD,
                            .action = CHANGE_PURGED,
                            .lead_before = &before.lead,
                            .deleted_at = before.deleted_at};
    if (rc != STORE_OK || api_change_record(s, w, &c))
        api_write_answer(w, rc, 204, API_LEAD_NOT_FOUND_TITLE, NOT_IN_TRASH);
    api_held_free(&before);
}

static void decode(const json_t *root, h2o_iovec_t body, bool creating, api_patch_t *p,
                   text_ref_t *texts[API_PATCH_TEXTS], verrs_t *errs)
{
    lead_decode_body(root, body.base, body.len, creating, &p->lead, errs);
    texts[0] = &p->lead.v.name;
    texts[1] = &p->lead.v.source;
}

void leads_create(api_req_t *r)
{
    char id[UUID_BUFSZ];
    api_write_t *w = api_create_or_reply(r, decode, run_create, id);
    if (w == NULL) return;
    lead_t *l = &w->p.lead.v;
    memcpy(l->id, id, sizeof l->id);
    l->created_at = l->updated_at = r->now;
    snprintf(w->location, sizeof w->location, "/leads/%s", l->id);
    api_write_submit(r, w);
}

void leads_update(api_req_t *r)
{
    if (!api_lead_id_or_reply(r)) return;
    api_write_t *w = api_decode_or_reply(r, false, decode, run_update);
    if (w != NULL) api_write_submit(r, w);
}

void leads_delete(api_req_t *r)
{
    if (!api_lead_id_or_reply(r)) return;
    api_write_submit(r, api_write_new(r, run_delete, 0));
}

void leads_trash_list(api_req_t *r)
{
    api_trash_list(r);
}

void leads_recover(api_req_t *r)
{
    if (!api_lead_id_or_reply(r)) return;
    api_write_submit(r, api_write_new(r, run_recover, 0));
}

void leads_trash_purge(api_req_t *r)
{
    if (!api_lead_id_or_reply(r)) return;
    api_write_submit(r, api_write_new(r, run_purge, 0));
}

void leads_history(api_req_t *r)
{
    if (api_lead_id_or_reply(r)) api_history_list(r);
}
