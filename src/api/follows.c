/*
 * follows.c: /leads/{id}/follows and /leads/{id}/follows/{follow_id}.
 *
 * As in leads.c, reads run on the worker and writes on the writer thread.
 */
#include "api/api.h"
#include "api/cache.h"

#include <stdio.h>
#include <string.h>

#define FOLLOWS_DEFAULT_RECORDS 100

static const char LEAD_NOT_FOUND_TITLE[] = "Lead Not Found";
static const char LEAD_NOT_FOUND_DETAIL[] = "The requested lead could not be found.";
static const char NOT_FOUND_TITLE[] = "Follow Not Found";
static const char NOT_FOUND_DETAIL[] = "The requested follow could not be found.";

typedef struct emit_ctx {
    jw_t *w;
    int64_t now;
    int n;
    int status;      /* for emit_status: how the stored follow reads */
    int64_t expires; /* when the first pending follow rendered turns overdue */
} emit_ctx_t;

/* A rendered pending follow with a due date reads "overdue" once that date
 * has passed: a cached body is good only until then. */
static void note_expiry(emit_ctx_t *c, const follow_t *f)
{
    if (f->status == FOLLOW_PENDING && f->has_due && f->due_at >= c->now && f->due_at + 1 < c->expires)
        c->expires = f->due_at + 1;
}

static void emit_list_item(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    if (c->n++ > 0) jw_lit(c->w, ",");
    follow_encode(c->w, f, c->now);
    note_expiry(c, f);
}

static void emit_one(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    jw_reset(c->w);
    jw_lit(c->w, "{\"data\":");
    follow_encode(c->w, f, c->now);
    jw_lit(c->w, "}");
    note_expiry(c, f);
}

static void emit_status(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    c->status = follow_effective_status(f, c->now);
}

static void list(api_req_t *r)
{
    int64_t page;
    int records;
    if (!api_read_paging(r, FOLLOWS_DEFAULT_RECORDS, &page, &records)) return;
    cache_key_t key = {.kind = CACHE_FOLLOWS, .app = r->app.id, .page = page, .records = records};
    memcpy(key.id, r->id, sizeof r->id);
    uint64_t gen = 0;
    if (api_cached(r, &key, &gen)) return;
    int64_t offset = page - 1 > INT64_MAX / records ? INT64_MAX : (page - 1) * records;
    jw_t *w = &r->t->out;
    jw_lit(w, "{\"data\":[");
    emit_ctx_t c = {.w = w, .now = r->now, .expires = INT64_MAX};
    int64_t total = 0;
    int rc =
        store_follow_list(r->t->store, r->app.id, r->id, offset, records, &total, emit_list_item, &c, NULL);
    if (rc != STORE_OK) {
        api_store_error(r, rc, LEAD_NOT_FOUND_TITLE, LEAD_NOT_FOUND_DETAIL);
        return;
    }
    api_write_meta(w, total, page, records);
    if (!w->oom) cache_put(&key, gen, w->buf, w->len, c.expires);
    api_send(r, 200);
}

static void get(api_req_t *r)
{
    cache_key_t key = {.kind = CACHE_FOLLOW, .app = r->app.id};
    memcpy(key.id, r->id, sizeof r->id);
    memcpy(key.fid, r->fid, sizeof r->fid);
    uint64_t gen = 0;
    if (api_cached(r, &key, &gen)) return;
    emit_ctx_t c = {.w = &r->t->out, .now = r->now, .expires = INT64_MAX};
    int rc = store_follow_get(r->t->store, r->app.id, r->id, r->fid, emit_one, &c, NULL);
    if (rc == STORE_OK && !c.w->oom) cache_put(&key, gen, c.w->buf, c.w->len, c.expires);
    if (rc == STORE_OK)
        api_send(r, 200);
    else
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

static void run_create(store_t *s, api_write_t *w)
{
    const follow_t *f = &w->p.follow.v;
    int rc = store_follow_create(s, w->app, f);
    if (rc == STORE_OK) {
        emit_ctx_t c = {.w = &w->out, .now = w->now};
        emit_one(&c, f);
        w->status = 201;
    } else {
        w->status = api_render_store_error(&w->out, rc, LEAD_NOT_FOUND_TITLE, LEAD_NOT_FOUND_DETAIL);
    }
}

static void run_update(store_t *s, api_write_t *w)
{
    follow_patch_t *p = &w->p.follow;
    emit_ctx_t c = {.w = &w->out, .now = w->now};
    int rc = STORE_OK;
    if ((p->fields & FOLLOW_F_STATUS) && p->v.status == FOLLOW_OVERDUE) {
        /* "overdue" is derived. Sending it back is fine only where the
         * follow already reads overdue, and then it changes nothing. This
         * runs inside the write's transaction, so the check holds. */
        rc = store_follow_get(s, w->app, w->id, w->fid, emit_status, &c, NULL);
        if (rc == STORE_OK && c.status != FOLLOW_OVERDUE) {
            verrs_t errs = {0};
            verrs_add(&errs, "validation_error", "/follow/status", NULL,
                      "Status overdue is derived from the due date and cannot be written");
            w->status = api_render_errors(&w->out, &errs);
            return;
        }
        p->fields &= ~(unsigned)FOLLOW_F_STATUS;
    }
    if (rc == STORE_OK) rc = store_follow_update(s, w->app, w->id, w->fid, p, w->now, emit_one, &c);
    w->status = rc == STORE_OK ? 200 : api_render_store_error(&w->out, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

static void run_delete(store_t *s, api_write_t *w)
{
    int rc = store_follow_delete(s, w->app, w->id, w->fid);
    w->status = rc == STORE_OK ? 204 : api_render_store_error(&w->out, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

/* Decodes the body into a write; NULL when the request has been answered. */
static api_write_t *decode(api_req_t *r, bool creating, api_write_fn fn)
{
    json_t *root = api_read_body(r);
    if (root == NULL) return NULL;
    follow_patch_t p;
    verrs_t errs = {0};
    follow_decode(root, creating, &p, &errs);
    if (errs.n > 0) {
        api_errors(r, &errs);
        json_decref(root);
        return NULL;
    }
    api_write_t *w = api_write_new(r, fn, root);
    if (w == NULL) {
        json_decref(root);
        api_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return NULL;
    }
    w->p.follow = p;
    return w;
}

static void create(api_req_t *r)
{
    char id[UUID_BUFSZ];
    if (uuid_v7(r->now, id) != 0) {
        api_error(r, 503, "Service Unavailable", "No randomness is available for a new id.");
        return;
    }
    api_write_t *w = decode(r, true, run_create);
    if (w == NULL) return;
    follow_t *f = &w->p.follow.v;
    memcpy(f->id, id, sizeof f->id);
    memcpy(f->lead_id, r->id, sizeof f->lead_id);
    f->created_at = f->updated_at = r->now;
    snprintf(w->location, sizeof w->location, "/leads/%s/follows/%s", r->id, f->id);
    api_write_submit(r, w);
}

void follows_handle(api_req_t *r)
{
    if (!uuid_parse(r->route.id, r->route.id_len, r->id)) {
        api_error(r, 404, LEAD_NOT_FOUND_TITLE, LEAD_NOT_FOUND_DETAIL);
        return;
    }
    if (r->route.route == ROUTE_FOLLOWS) {
        if (r->method == METHOD_POST)
            create(r);
        else
            list(r);
        return;
    }
    if (!uuid_parse(r->route.fid, r->route.fid_len, r->fid)) {
        api_error(r, 404, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
        return;
    }
    api_write_t *w;
    switch (r->method) {
    case METHOD_PUT:
        if ((w = decode(r, false, run_update)) != NULL) api_write_submit(r, w);
        break;
    case METHOD_DELETE:
        api_write_submit(r, api_write_new(r, run_delete, NULL));
        break;
    default:
        get(r);
    }
}
