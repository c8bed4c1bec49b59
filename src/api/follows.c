/*
 * follows.c: /leads/{id}/follows, /leads/{id}/follows/{follow_id}, and
 * /follows/ (every follow of the app; the lists are find.c's).
 *
 * As in leads.c, reads run on the worker and writes on the writer thread.
 */
#include "api/change.h"
#include "api/find.h"
#include "api/handlers.h"
#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "api/writer.h"

#include <stdio.h>
#include <string.h>

static void emit_one(void *ctx, const follow_t *f)
{
    api_render_t *c = ctx;
    jw_reset(c->w);
    jw_lit(c->w, "{\"data\":");
    follow_encode(c->w, f, c->now);
    jw_lit(c->w, "}");
    api_render_follow_expiry(c, f);
}

static store_rc_t start_get(api_req_t *r, const store_async_t *async)
{
    return store_follow_get(r->t->store, r->app.id, r->id, r->fid, emit_one, &r->rd.render, async);
}

static const api_read_spec_t GET = {start_get, false, API_FOLLOW_NOT_FOUND_TITLE,
                                    API_FOLLOW_NOT_FOUND_DETAIL};

void follows_list(api_req_t *r)
{
    if (api_lead_id_or_reply(r)) api_follows_list(r);
}

void follows_all(api_req_t *r)
{
    api_follows_all(r);
}

void follows_get(api_req_t *r)
{
    if (!api_lead_id_or_reply(r) || !api_follow_id_or_reply(r)) return;
    r->rd.key = (cache_key_t){.kind = CACHE_FOLLOW, .app = r->app.id};
    memcpy(r->rd.key.id, r->id, sizeof r->id);
    memcpy(r->rd.key.fid, r->fid, sizeof r->fid);
    api_resource_read(r, &GET);
}

/* Each write describes its change (change.h) once the store made it. */
static void run_create(store_t *s, api_write_t *w)
{
    const follow_t *f = &w->p.follow.v;
    store_rc_t rc = store_follow_create(s, w->app, f);
    const api_change_t c = {.kind = CHANGE_FOLLOW, .action = CHANGE_CREATED, .follow_after = f};
    if (rc == STORE_OK && !api_change_record(s, w, &c)) return;
    if (rc == STORE_OK) emit_one(&(api_render_t){.w = &w->out, .now = w->now, .expires = INT64_MAX}, f);
    /* Creating under a lead that does not exist: the lead is missing. */
    api_write_answer(w, rc, 201, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
}

/* "overdue" is derived. Sending it back is fine only where the follow
 * already reads overdue (f, read inside the write's transaction, where
 * the read locks its row: store.h), and then it changes nothing: p, a
 * copy of w's patch (w's stays as sent, for a batch run again), loses
 * it. Returns false when w has been answered. */
static bool allow_overdue(api_write_t *w, follow_patch_t *p, const follow_t *f)
{
    if (!(p->fields & FOLLOW_F_STATUS) || p->v.status != FOLLOW_OVERDUE) return true;
    if (follow_effective_status(f, w->now) != FOLLOW_OVERDUE) {
        verrs_t errs = {0};
        verrs_add(&errs, "validation_error", "/follow/status", NULL,
                  "Status overdue is derived from the due date and cannot be written");
        w->status = api_render_errors(&w->out, &errs);
        return false;
    }
    p->fields &= ~(unsigned)FOLLOW_F_STATUS;
    return true;
}

static void answer(api_write_t *w, store_rc_t rc, int ok_status)
{
    api_write_answer(w, rc, ok_status, API_FOLLOW_NOT_FOUND_TITLE, API_FOLLOW_NOT_FOUND_DETAIL);
}

static void run_update(store_t *s, api_write_t *w)
{
    if (!api_write_precondition(s, w)) return;
    api_held_t before = {0}, after = {0};
    follow_patch_t p = w->p.follow;
    store_rc_t rc = api_held_follow(s, w, &before);
    if (rc == STORE_OK && !allow_overdue(w, &p, &before.follow)) goto done;
    if (rc == STORE_OK)
        rc = store_follow_update(s, w->app, w->id, w->fid, &p, w->now, api_hold_follow, &after);
    const api_change_t c = {.kind = CHANGE_FOLLOW,
                            .action = CHANGE_UPDATED,
                            .follow_before = &before.follow,
                            .follow_after = &after.follow};
    if (rc == STORE_OK && !after.found) {
        api_change_fail(w, STORE_UNAVAILABLE);
    } else if (rc != STORE_OK || api_change_record(s, w, &c)) {
        if (rc == STORE_OK)
            emit_one(&(api_render_t){.w = &w->out, .now = w->now, .expires = INT64_MAX}, &after.follow);
        answer(w, rc, 200);
    }
done:
    api_held_free(&before);
    api_held_free(&after);
}

static void run_delete(store_t *s, api_write_t *w)
{
    if (!api_write_precondition(s, w)) return;
    api_held_t before = {0};
    store_rc_t rc = api_held_follow(s, w, &before);
    if (rc == STORE_OK) rc = store_follow_delete(s, w->app, w->id, w->fid);
    const api_change_t c = {.kind = CHANGE_FOLLOW, .action = CHANGE_DELETED, .follow_before = &before.follow};
    if (rc != STORE_OK || api_change_record(s, w, &c)) answer(w, rc, 204);
    api_held_free(&before);
}

static void decode(const json_t *root, h2o_iovec_t body, bool creating, api_patch_t *p,
                   text_ref_t *texts[API_PATCH_TEXTS], verrs_t *errs)
{
    (void)body;
    follow_decode(root, creating, &p->follow, errs);
    texts[0] = &p->follow.v.title;
    texts[1] = &p->follow.v.description;
}

void follows_create(api_req_t *r)
{
    char id[UUID_BUFSZ];
    if (!api_lead_id_or_reply(r)) return;
    api_write_t *w = api_create_or_reply(r, decode, run_create, id);
    if (w == NULL) return;
    follow_t *f = &w->p.follow.v;
    memcpy(f->id, id, sizeof f->id);
    memcpy(f->lead_id, r->id, sizeof f->lead_id);
    f->created_at = f->updated_at = r->now;
    snprintf(w->location, sizeof w->location, "/leads/%s/follows/%s", r->id, f->id);
    api_write_submit(r, w);
}

void follows_update(api_req_t *r)
{
    if (!api_lead_id_or_reply(r) || !api_follow_id_or_reply(r)) return;
    api_write_t *w = api_decode_or_reply(r, false, decode, run_update);
    if (w != NULL) api_write_submit(r, w);
}

void follows_delete(api_req_t *r)
{
    if (!api_lead_id_or_reply(r) || !api_follow_id_or_reply(r)) return;
    api_write_submit(r, api_write_new(r, run_delete, 0));
}
