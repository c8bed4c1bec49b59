/*
 * follows.c: /leads/{id}/follows and /leads/{id}/follows/{follow_id}.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#define FOLLOWS_DEFAULT_RECORDS 100

void leads_write_meta(jw_t *w, int64_t total, int64_t page, int records);

static const char LEAD_NOT_FOUND_TITLE[] = "Lead Not Found";
static const char LEAD_NOT_FOUND_DETAIL[] = "The requested lead could not be found.";
static const char NOT_FOUND_TITLE[] = "Follow Not Found";
static const char NOT_FOUND_DETAIL[] = "The requested follow could not be found.";

typedef struct emit_ctx {
    jw_t *w;
    int64_t now;
    int n;
    follow_t seen; /* for emit_capture: the stored follow (strings not kept) */
    bool found;
} emit_ctx_t;

static void emit_list_item(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    if (c->n++ > 0)
        jw_lit(c->w, ",");
    follow_encode(c->w, f, c->now);
}

static void emit_one(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    jw_reset(c->w);
    jw_lit(c->w, "{\"data\":");
    follow_encode(c->w, f, c->now);
    jw_lit(c->w, "}");
}

static void emit_capture(void *ctx, const follow_t *f)
{
    emit_ctx_t *c = ctx;
    c->seen = *f;
    c->seen.title.ptr = c->seen.description.ptr = NULL;
    c->found = true;
}

static void list(api_req_t *r)
{
    int64_t page;
    int records;
    if (!api_read_paging(r, FOLLOWS_DEFAULT_RECORDS, &page, &records))
        return;
    int64_t offset = page - 1 > INT64_MAX / records ? INT64_MAX : (page - 1) * records;
    jw_t *w = &r->t->out;
    jw_lit(w, "{\"data\":[");
    emit_ctx_t c = {.w = w, .now = r->now};
    int64_t total = 0;
    int rc = store_follow_list(r->t->store, r->app.id, r->id, offset, records, &total, emit_list_item, &c);
    if (rc != STORE_OK) {
        api_store_error(r, rc, LEAD_NOT_FOUND_TITLE, LEAD_NOT_FOUND_DETAIL);
        return;
    }
    leads_write_meta(w, total, page, records);
    api_send(r, 200);
}

static void create(api_req_t *r)
{
    json_t *root = api_read_body(r);
    if (root == NULL)
        return;
    follow_patch_t p;
    verrs_t errs = {0};
    follow_decode(root, true, &p, &errs);
    if (errs.n > 0) {
        api_errors(r, &errs);
        json_decref(root);
        return;
    }
    follow_t *f = &p.v;
    memcpy(f->lead_id, r->id, sizeof f->lead_id);
    if (uuid_v7(r->now, f->id) != 0) {
        api_error(r, 503, "Service Unavailable", "No randomness is available for a new id.");
        json_decref(root);
        return;
    }
    f->created_at = f->updated_at = r->now;
    int rc = store_follow_create(r->t->store, r->app.id, f);
    if (rc != STORE_OK) {
        api_store_error(r, rc, LEAD_NOT_FOUND_TITLE, LEAD_NOT_FOUND_DETAIL);
    } else {
        char loc[128];
        int n = snprintf(loc, sizeof loc, "/leads/%s/follows/%s", r->id, f->id);
        api_add_header(r, H2O_TOKEN_LOCATION, h2o_strdup(&r->req->pool, loc, (size_t)n).base, (size_t)n);
        emit_ctx_t c = {.w = &r->t->out, .now = r->now};
        emit_one(&c, f);
        api_send(r, 201);
    }
    json_decref(root);
}

static void update(api_req_t *r)
{
    json_t *root = api_read_body(r);
    if (root == NULL)
        return;
    follow_patch_t p;
    verrs_t errs = {0};
    follow_decode(root, false, &p, &errs);
    emit_ctx_t c = {.w = &r->t->out, .now = r->now};
    int rc = STORE_OK;
    if ((p.fields & FOLLOW_F_STATUS) && p.v.status == FOLLOW_OVERDUE) {
        /* "overdue" is derived. Sending it back is fine only where the
         * follow already reads overdue, and then it changes nothing. */
        rc = store_follow_get(r->t->store, r->app.id, r->id, r->fid, emit_capture, &c);
        if (rc == STORE_OK && follow_effective_status(&c.seen, r->now) == FOLLOW_OVERDUE)
            p.fields &= ~(unsigned)FOLLOW_F_STATUS;
        else if (rc == STORE_OK)
            verrs_add(&errs, "validation_error", "/follow/status", NULL,
                      "Status overdue is derived from the due date and cannot be written");
    }
    if (rc != STORE_OK)
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    else if (errs.n > 0)
        api_errors(r, &errs);
    else if ((rc = store_follow_update(r->t->store, r->app.id, r->id, r->fid, &p, r->now, emit_one, &c)) ==
             STORE_OK)
        api_send(r, 200);
    else
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    json_decref(root);
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
    emit_ctx_t c = {.w = &r->t->out, .now = r->now};
    int rc;
    switch (r->method) {
    case METHOD_PUT:
        update(r);
        break;
    case METHOD_DELETE:
        rc = store_follow_delete(r->t->store, r->app.id, r->id, r->fid);
        if (rc == STORE_OK)
            api_send_empty(r, 204);
        else
            api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
        break;
    default:
        rc = store_follow_get(r->t->store, r->app.id, r->id, r->fid, emit_one, &c);
        if (rc == STORE_OK)
            api_send(r, 200);
        else
            api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    }
}
