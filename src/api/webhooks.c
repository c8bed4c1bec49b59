/*
 * webhooks.c: /webhooks, /webhooks/{id} and /webhooks/{id}/deliveries
 * (extensions.md, "Webhooks").
 *
 * Reads run on the worker, never from the response cache (the sender
 * changes what a webhook shows: it may set one inactive); the two lists
 * are paged by page or by cursor, newest first (find.h). Writes run on
 * the writer like a lead's. A target URL is checked before its write is
 * queued (webhook/target.h): its form, its port, an IP literal, and
 * localhost (RFC 6761 fixes it to loopback). Another host name is then
 * resolved, on h2o's resolver threads so that the event loop never waits
 * for DNS (resolve.h), and any refused address it has is a 422 as a
 * literal's is; a name that does not resolve, or not within the bound, is
 * taken, as extensions.md says. With private targets allowed no name is
 * resolved. The sender checks every address it connects to anyway.
 */
#include "api/cursor.h"
#include "api/find.h"
#include "api/handlers.h"
#include "api/request.h"
#include "api/resource.h"
#include "api/resolve.h"
#include "api/respond.h"
#include "api/writer.h"

#include <stdio.h>
#include <string.h>

#include "model/webhook.h"
#include "store/webhook.h"
#include "webhook/target.h"

#define WEBHOOKS_DEFAULT_RECORDS 15
#define DELIVERIES_DEFAULT_RECORDS 100
/* Room for a URL of WEBHOOK_URL_MAX characters, each up to 4 bytes. */
#define URL_BYTES_MAX (WEBHOOK_URL_MAX * 4 + 1)

static const char NOT_FOUND_TITLE[] = "Webhook Not Found";
static const char NOT_FOUND_DETAIL[] = "The requested webhook could not be found.";

/* --- reads ------------------------------------------------------------------- */

static void emit_item(void *ctx, const webhook_t *wh)
{
    api_render_t *c = ctx;
    if (api_newest_row(ctx, wh->created_at, wh->id)) webhook_encode(c->w, wh, false);
}

static void emit_one(void *ctx, const webhook_t *wh)
{
    api_render_t *c = ctx;
    jw_reset(c->w);
    jw_lit(c->w, "{\"data\":");
    webhook_encode(c->w, wh, false);
    jw_lit(c->w, "}");
}

static void emit_delivery(void *ctx, const delivery_t *d)
{
    api_render_t *c = ctx;
    if (api_newest_row(ctx, d->created_at, d->id)) delivery_encode(c->w, d);
}

static store_rc_t start_list(api_req_t *r, const store_async_t *async)
{
    return store_webhook_list(r->t->store, r->app.id, r->rd.query, &r->rd.total, emit_item, &r->rd.render,
                              async);
}

static store_rc_t start_get(api_req_t *r, const store_async_t *async)
{
    return store_webhook_get(r->t->store, r->app.id, r->id, emit_one, &r->rd.render, async);
}

static store_rc_t start_deliveries(api_req_t *r, const store_async_t *async)
{
    return store_webhook_deliveries(r->t->store, r->app.id, r->id, r->rd.query, &r->rd.total, emit_delivery,
                                    &r->rd.render, async);
}

static const api_read_spec_t LIST = {start_list, true, NOT_FOUND_TITLE, NOT_FOUND_DETAIL, api_newest_meta};
static const api_read_spec_t GET = {start_get, false, NOT_FOUND_TITLE, NOT_FOUND_DETAIL};
static const api_read_spec_t DELIVERIES = {start_deliveries, true, NOT_FOUND_TITLE, NOT_FOUND_DETAIL,
                                           api_newest_meta};

static bool webhook_id_or_reply(api_req_t *r)
{
    return api_uuid_or_reply(r, 0, r->id, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

/* The page of a list into r's pool, or false when r has been answered. */
static bool page_or_reply(api_req_t *r, int kind, int default_records)
{
    store_newest_page_t *pg = h2o_mem_alloc_pool(&r->req->pool, sizeof *pg);
    if (!api_newest_paging_or_reply(r, kind, default_records, pg)) return false;
    r->rd.query = pg;
    return true;
}

void webhooks_list(api_req_t *r)
{
    if (!page_or_reply(r, CURSOR_WEBHOOKS, WEBHOOKS_DEFAULT_RECORDS)) return;
    api_resource_read(r, &LIST);
}

void webhooks_get(api_req_t *r)
{
    if (!webhook_id_or_reply(r)) return;
    api_resource_read(r, &GET);
}

void webhooks_deliveries(api_req_t *r)
{
    if (!webhook_id_or_reply(r) || !page_or_reply(r, CURSOR_DELIVERIES, DELIVERIES_DEFAULT_RECORDS)) return;
    api_resource_read(r, &DELIVERIES);
}

/* --- writes ------------------------------------------------------------------ */

static void answer(api_write_t *w, store_rc_t rc, int ok_status)
{
    api_write_answer(w, rc, ok_status, NOT_FOUND_TITLE, NOT_FOUND_DETAIL);
}

static void run_create(store_t *s, api_write_t *w)
{
    webhook_t *wh = &w->p.webhook.v;
    char secret[WEBHOOK_SECRET_BUFSZ];
    if (webhook_secret_new(secret) != 0) {
        w->status =
            api_render_error(&w->out, 503, "Service Unavailable", "No randomness is available for a secret.");
        return;
    }
    wh->secret = (text_ref_t){secret, strlen(secret)};
    store_rc_t rc = store_webhook_create(s, w->app, wh, WEBHOOK_MAX_PER_APP);
    if (rc == STORE_CONFLICT) {
        verrs_t errs = {0};
        verrs_add(&errs, "validation_error", "/webhook", NULL, "An app may have at most %d webhooks",
                  WEBHOOK_MAX_PER_APP);
        w->status = api_render_errors(&w->out, &errs);
        return;
    }
    if (rc == STORE_OK) {
        jw_lit(&w->out, "{\"data\":");
        webhook_encode(&w->out, wh, true);
        jw_lit(&w->out, "}");
    }
    answer(w, rc, 201);
}

static void run_update(store_t *s, api_write_t *w)
{
    api_render_t c = {.w = &w->out};
    answer(w, store_webhook_update(s, w->app, w->id, &w->p.webhook, w->now, emit_one, &c), 200);
}

static void run_delete(store_t *s, api_write_t *w)
{
    answer(w, store_webhook_delete(s, w->app, w->id), 204);
}

static void decode(const json_t *root, h2o_iovec_t body, bool creating, api_patch_t *p,
                   text_ref_t *texts[API_PATCH_TEXTS], verrs_t *errs)
{
    (void)body;
    webhook_decode(root, creating, &p->webhook, errs);
    texts[0] = &p->webhook.v.url;
    texts[1] = &p->webhook.v.description;
}

/* Checks the body as a write would decode it, and the target URL's form,
 * port and literal address with it: 0 when it is good, else the status of
 * every problem at once, rendered into r->out. When it is good and its
 * URL names a host by a name that must be resolved, the name goes to
 * host, without its trailing dot: DNS reads "name." and "name" alike, but
 * /etc/hosts, which the resolver reads first, knows only the latter, and
 * the name's loopback entry there must not be missed; else host is "". */
static int body_problems(api_req_t *r, bool creating, char host[WEBHOOK_HOST_MAX])
{
    host[0] = '\0';
    int status = 0;
    json_t *root = api_body_or_render(r, &status);
    if (root == NULL) return status;
    webhook_patch_t p;
    verrs_t errs = {0};
    webhook_decode(root, creating, &p, &errs);
    if (p.fields & WEBHOOK_F_URL && p.v.url.ptr != NULL) {
        char url[URL_BYTES_MAX], why[192];
        snprintf(url, sizeof url, "%.*s", (int)p.v.url.len, p.v.url.ptr);
        webhook_target_rc_t trc = webhook_target_check(url, host, WEBHOOK_HOST_MAX, why, sizeof why);
        if (trc == TARGET_INVALID || trc == TARGET_REFUSED)
            verrs_add(&errs, "validation_error", "/webhook/url", NULL, "%s", why);
        if (trc != TARGET_NAME) host[0] = '\0';
    }
    json_decref(root);
    if (errs.n != 0) {
        host[0] = '\0';
        return api_render_errors(&r->out, &errs);
    }
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.') host[n - 1] = '\0';
    return 0;
}

/* The problem of a target whose name resolved to res, rendered into r->out
 * as body_problems renders a literal's: 0 when there is none. */
static int resolved_problems(api_req_t *r, const struct addrinfo *res)
{
    char why[192];
    if (webhook_target_resolved(res, why, sizeof why) != TARGET_REFUSED) return 0;
    verrs_t errs = {0};
    verrs_add(&errs, "validation_error", "/webhook/url", NULL, "%s", why);
    return api_render_errors(&r->out, &errs);
}

static void no_webhook(void *ctx, const webhook_t *wh)
{
    (void)ctx;
    (void)wh;
}

/* The problem of a PUT's body stands once the webhook is found; a missing
 * one is a 404 (api_reply_found). */
static void run_found(store_t *s, api_write_t *w)
{
    api_write_given(w);
    answer(w, store_webhook_get(s, w->app, w->id, no_webhook, NULL, NULL), w->status);
}

static void submit_create(api_req_t *r)
{
    char id[UUID_BUFSZ];
    api_write_t *w = api_create_or_reply(r, decode, run_create, id);
    if (w == NULL) return;
    webhook_t *wh = &w->p.webhook.v;
    memcpy(wh->id, id, sizeof wh->id);
    wh->created_at = wh->updated_at = r->now;
    snprintf(w->location, sizeof w->location, "/webhooks/%s", id);
    api_write_submit(r, w);
}

static void submit_update(api_req_t *r)
{
    api_write_t *w = api_decode_or_reply(r, false, decode, run_update);
    if (w != NULL) api_write_submit(r, w);
}

/* A create whose target's name was resolved: the body is read again from
 * the request, which h2o still holds (else this is not called). */
static void create_resolved(api_req_t *r, const struct addrinfo *res)
{
    int status = resolved_problems(r, res);
    if (status != 0)
        api_reply_kept(r, status);
    else
        submit_create(r);
}

static void update_resolved(api_req_t *r, const struct addrinfo *res)
{
    int status = resolved_problems(r, res);
    if (status != 0)
        api_reply_found(r, status, run_found);
    else
        submit_update(r);
}

void webhooks_create(api_req_t *r)
{
    /* The 201 shows the secret, once: no cache on the way may keep it. */
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    char host[WEBHOOK_HOST_MAX];
    int status = body_problems(r, true, host);
    if (status != 0)
        api_reply_kept(r, status);
    else if (host[0] != '\0')
        api_req_resolve(r, host, create_resolved);
    else
        submit_create(r);
}

void webhooks_update(api_req_t *r)
{
    if (!webhook_id_or_reply(r)) return;
    char host[WEBHOOK_HOST_MAX];
    int status = body_problems(r, false, host);
    if (status != 0)
        api_reply_found(r, status, run_found);
    else if (host[0] != '\0')
        api_req_resolve(r, host, update_resolved);
    else
        submit_update(r);
}

void webhooks_delete(api_req_t *r)
{
    if (webhook_id_or_reply(r)) api_write_submit(r, api_write_new(r, run_delete, 0));
}
