/*
 * leads.c: /leads/ and /leads/{id}.
 *
 * Reads run here, on the worker thread. Writes are validated here and then
 * run on the writer thread (writer.c) by the run_* functions, which only
 * touch the api_write_t they are given.
 */
#include "api/api.h"
#include "api/cache.h"

#include <stdio.h>
#include <string.h>

#define LEADS_DEFAULT_RECORDS 15

static const char NOT_FOUND_TITLE[] = "Lead Not Found";
static const char NOT_FOUND_DETAIL[] = "The requested lead could not be found.";

typedef struct list_ctx {
    jw_t *w;
    int n;
} list_ctx_t;

static void emit_list_item(void *ctx, const lead_t *lead)
{
    list_ctx_t *c = ctx;
    if (c->n++ > 0) jw_lit(c->w, ",");
    lead_encode(c->w, lead);
}

/* Wraps one lead as {"data": ...}. */
static void emit_one(void *ctx, const lead_t *lead)
{
    jw_t *w = ctx;
    jw_reset(w);
    jw_lit(w, "{\"data\":");
    lead_encode(w, lead);
    jw_lit(w, "}");
}

void api_write_meta(jw_t *w, int64_t total, int64_t page, int records)
{
    jw_lit(w, "],\"meta\":{\"totalPages\":");
    jw_int(w, total == 0 ? 0 : (total + records - 1) / records);
    jw_lit(w, ",\"totalRecords\":");
    jw_int(w, total);
    jw_lit(w, ",\"page\":");
    jw_int(w, page);
    jw_lit(w, ",\"records\":");
    jw_int(w, records);
    jw_lit(w, "}}");
}

static void list(api_req_t *r)
{
    int64_t page;
    int records;
    if (!api_read_paging(r, LEADS_DEFAULT_RECORDS, &page, &records)) return;
    cache_key_t key = {.kind = CACHE_LEADS, .app = r->app.id, .page = page, .records = records};
    uint64_t gen = 0;
    if (api_cached(r, &key, &gen)) return;
    /* A page so far out that its offset overflows is simply past the end. */
    int64_t offset = page - 1 > INT64_MAX / records ? INT64_MAX : (page - 1) * records;
    jw_t *w = &r->t->out;
    jw_lit(w, "{\"data\":[");
    list_ctx_t c = {w, 0};
    int64_t total = 0;
    int rc = store_lead_list(r->t->store, r->app.id, offset, records, &total, emit_list_item, &c, NULL);
    if (rc != STORE_OK) {
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
        return;
    }
    api_write_meta(w, total, page, records);
    if (!w->oom) cache_put(&key, gen, w->buf, w->len, INT64_MAX);
    api_send(r, 200);
}

static void get(api_req_t *r)
{
    cache_key_t key = {.kind = CACHE_LEAD, .app = r->app.id};
    memcpy(key.id, r->id, sizeof r->id);
    uint64_t gen = 0;
    if (api_cached(r, &key, &gen)) return;
    jw_t *w = &r->t->out;
    int rc = store_lead_get(r->t->store, r->app.id, r->id, emit_one, w, NULL);
    if (rc == STORE_OK && !w->oom) cache_put(&key, gen, w->buf, w->len, INT64_MAX);
    if (rc == STORE_OK)
        api_send(r, 200);
    else
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

static void run_create(store_t *s, api_write_t *w)
{
    const lead_t *l = &w->p.lead.v;
    int rc = store_lead_create(s, w->app, l);
    if (rc == STORE_OK) {
        emit_one(&w->out, l);
        w->status = 201;
    } else {
        w->status = api_render_store_error(&w->out, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    }
}

static void run_update(store_t *s, api_write_t *w)
{
    int rc = store_lead_update(s, w->app, w->id, &w->p.lead, w->now, emit_one, &w->out);
    w->status = rc == STORE_OK ? 200 : api_render_store_error(&w->out, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

static void run_delete(store_t *s, api_write_t *w)
{
    int rc = store_lead_delete(s, w->app, w->id);
    w->status = rc == STORE_OK ? 204 : api_render_store_error(&w->out, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

/* Decodes the body into a write (create or update); NULL when the
 * request has been answered with an error. */
static api_write_t *decode(api_req_t *r, bool creating, api_write_fn fn)
{
    json_t *root = api_read_body(r);
    if (root == NULL) return NULL;
    lead_patch_t p;
    verrs_t errs = {0};
    lead_decode_body(root, r->req->entity.base, r->req->entity.len, creating, &p, &errs);
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
    w->p.lead = p;
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
    lead_t *l = &w->p.lead.v;
    memcpy(l->id, id, sizeof l->id);
    l->created_at = l->updated_at = r->now;
    snprintf(w->location, sizeof w->location, "/leads/%s", l->id);
    api_write_submit(r, w);
}

void leads_handle(api_req_t *r)
{
    if (r->route.route == ROUTE_LEADS) {
        if (r->method == METHOD_POST)
            create(r);
        else
            list(r);
        return;
    }
    /* An id that is not a UUID names no lead: 404, not 400. */
    if (!uuid_parse(r->route.id, r->route.id_len, r->id)) {
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
