/*
 * leads.c: /leads/ and /leads/{id}.
 */
#include "api/api.h"

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
    if (c->n++ > 0)
        jw_lit(c->w, ",");
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

/* Writes meta for a list: totals and the page asked for. */
void leads_write_meta(jw_t *w, int64_t total, int64_t page, int records)
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
    if (!api_read_paging(r, LEADS_DEFAULT_RECORDS, &page, &records))
        return;
    /* A page so far out that its offset overflows is simply past the end. */
    int64_t offset = page - 1 > INT64_MAX / records ? INT64_MAX : (page - 1) * records;
    jw_t *w = &r->t->out;
    jw_lit(w, "{\"data\":[");
    list_ctx_t c = {w, 0};
    int64_t total = 0;
    int rc = store_lead_list(r->t->store, r->app.id, offset, records, &total, emit_list_item, &c);
    if (rc != STORE_OK) {
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
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
    lead_patch_t p;
    verrs_t errs = {0};
    lead_decode(root, true, &p, &errs);
    if (errs.n > 0) {
        api_errors(r, &errs);
        json_decref(root);
        return;
    }
    lead_t *l = &p.v;
    if (uuid_v7(r->now, l->id) != 0) {
        api_error(r, 503, "Service Unavailable", "No randomness is available for a new id.");
        json_decref(root);
        return;
    }
    l->created_at = l->updated_at = r->now;
    int rc = store_lead_create(r->t->store, r->app.id, l);
    if (rc != STORE_OK) {
        api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    } else {
        char loc[64];
        int n = snprintf(loc, sizeof loc, "/leads/%s", l->id);
        api_add_header(r, H2O_TOKEN_LOCATION, h2o_strdup(&r->req->pool, loc, (size_t)n).base, (size_t)n);
        emit_one(&r->t->out, l);
        api_send(r, 201);
    }
    json_decref(root);
}

static void update(api_req_t *r)
{
    json_t *root = api_read_body(r);
    if (root == NULL)
        return;
    lead_patch_t p;
    verrs_t errs = {0};
    lead_decode(root, false, &p, &errs);
    if (errs.n > 0) {
        api_errors(r, &errs);
    } else {
        int rc = store_lead_update(r->t->store, r->app.id, r->id, &p, r->now, emit_one, &r->t->out);
        if (rc == STORE_OK)
            api_send(r, 200);
        else
            api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    }
    json_decref(root);
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
    int rc;
    switch (r->method) {
    case METHOD_PUT:
        update(r);
        break;
    case METHOD_DELETE:
        rc = store_lead_delete(r->t->store, r->app.id, r->id);
        if (rc == STORE_OK)
            api_send_empty(r, 204);
        else
            api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
        break;
    default:
        rc = store_lead_get(r->t->store, r->app.id, r->id, emit_one, &r->t->out);
        if (rc == STORE_OK)
            api_send(r, 200);
        else
            api_store_error(r, rc, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
    }
}
