/*
 * resource.c: see resource.h.
 */
#include "api/resource.h"

#include <assert.h>
#include <string.h>

#include "api/cache.h"
#include "api/request.h"
#include "api/respond.h"
#include "api/writer.h"

const char API_LEAD_NOT_FOUND_TITLE[] = "Lead Not Found";
const char API_LEAD_NOT_FOUND_DETAIL[] = "The requested lead could not be found.";
const char API_FOLLOW_NOT_FOUND_TITLE[] = "Follow Not Found";
const char API_FOLLOW_NOT_FOUND_DETAIL[] = "The requested follow could not be found.";

/* The answer's pool is gone: so is its need of the cached body. */
static void unpin(void *p)
{
    cache_unpin(*(cache_pin_t **)p);
}

static void no_lead(void *ctx, const lead_t *l)
{
    (void)ctx;
    (void)l;
}

/* Answers r from the response cache when it can; else returns false with
 * r->rd.gen set to the generation to store the fresh body with. A list's
 * key takes the app's lead count first (cache.h: stamp), read at once
 * (the cache is on with SQLite only, whose reads never wait). */
static bool cached(api_req_t *r)
{
    if (!cache_enabled() || r->rd.key.kind == 0) return false;
    if (r->rd.key.kind == CACHE_LEADS &&
        store_lead_list(r->t->store, r->app.id, 0, 0, &r->rd.key.stamp, no_lead, NULL, NULL) != STORE_OK) {
        r->rd.key.kind = 0; /* not kept either */
        return false;
    }
    r->rd.gen = cache_generation(&r->rd.key);
    size_t len = 0;
    cache_pin_t *pin = NULL;
    const char *body = cache_pin(&r->rd.key, r->now, &len, &pin);
    if (body == NULL) return false;
    /* The body is sent from the cache's entry, which the request's pool
     * keeps until h2o lets go of the answer. */
    *(cache_pin_t **)h2o_mem_alloc_shared(&r->req->pool, sizeof pin, unpin) = pin;
    api_reply_pooled(r, 200, (char *)body, len);
    return true;
}

static void write_meta(jw_t *w, int64_t total, int64_t page, int records)
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

static void read_done(api_req_t *r, store_rc_t rc)
{
    const api_read_spec_t *spec = r->rd.spec;
    if (rc != STORE_OK) {
        api_reply_store_error(r, rc, spec->not_found_title, spec->not_found_detail);
        return;
    }
    if (spec->meta != NULL)
        spec->meta(r);
    else if (spec->list)
        write_meta(&r->out, r->rd.total, r->rd.page, r->rd.records);
    if (!r->out.oom && r->rd.key.kind != 0)
        cache_put(&r->rd.key, r->rd.gen, r->out.buf, r->out.len, r->rd.render.expires);
    api_reply(r, 200);
}

void api_resource_read(api_req_t *r, const api_read_spec_t *spec)
{
    if (cached(r)) return;
    r->rd.spec = spec;
    r->rd.render = (api_render_t){.w = &r->out, .now = r->now, .expires = INT64_MAX};
    if (spec->list) jw_lit(&r->out, "{\"data\":[");
    api_req_read(r, spec->start, read_done);
}

bool api_resource_paging_or_reply(api_req_t *r, int default_records)
{
    return api_paging_or_reply(r, default_records, &r->rd.page, &r->rd.records);
}

int64_t api_resource_offset(const api_req_t *r)
{
    int64_t page = r->rd.page, records = r->rd.records;
    return page - 1 > INT64_MAX / records ? INT64_MAX : (page - 1) * records;
}

/* The path's param-th UUID into out, or a 404 kept for an
 * Idempotency-Key (a follow create names its lead in the path). */
static bool uuid_or_reply(api_req_t *r, int param, char out[UUID_BUFSZ], const char *title,
                          const char *detail)
{
    assert(param >= 0 && param < API_ROUTE_PARAMS);
    if (uuid_parse(r->params[param].base, r->params[param].len, out)) return true;
    api_reply_kept(r, api_render_error(&r->out, 404, title, detail));
    return false;
}

bool api_lead_id_or_reply(api_req_t *r)
{
    r->names_lead = uuid_or_reply(r, 0, r->id, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
    return r->names_lead;
}

bool api_follow_id_or_reply(api_req_t *r)
{
    return uuid_or_reply(r, 1, r->fid, API_FOLLOW_NOT_FOUND_TITLE, API_FOLLOW_NOT_FOUND_DETAIL);
}

/* A new write for r holding patch p, whose texts are copied into the
 * write's own allocation (each NUL-terminated); NULL when out of memory. */
static api_write_t *write_with_text(api_req_t *r, api_write_fn fn, api_patch_t *p,
                                    text_ref_t *texts[API_PATCH_TEXTS])
{
    size_t extra = 0;
    for (int i = 0; i < API_PATCH_TEXTS; i++)
        if (texts[i] != NULL && texts[i]->ptr != NULL) extra += texts[i]->len + 1;
    api_write_t *w = api_write_new(r, fn, extra);
    if (w == NULL) return NULL;
    char *at = w->text;
    for (int i = 0; i < API_PATCH_TEXTS; i++) {
        text_ref_t *t = texts[i];
        if (t == NULL || t->ptr == NULL) continue;
        memcpy(at, t->ptr, t->len);
        at[t->len] = '\0';
        t->ptr = at;
        at += t->len + 1;
    }
    w->p = *p;
    return w;
}

/* Where a resource's ETag is made, and the time a follow reads at. */
typedef struct tag_ctx {
    int64_t now;
    char *etag;
} tag_ctx_t;

/* The ETag of {"data":...} as written so far into a scratch writer. */
static void tag_end(jw_t *w, tag_ctx_t *c)
{
    jw_lit(w, "}");
    api_etag_of(w->buf, w->len, c->etag);
    jw_free(w);
}

static void tag_lead(void *ctx, const lead_t *l)
{
    jw_t w = {0};
    jw_lit(&w, "{\"data\":");
    lead_encode(&w, l);
    tag_end(&w, ctx);
}

static void tag_follow(void *ctx, const follow_t *f)
{
    tag_ctx_t *c = ctx;
    jw_t w = {0};
    jw_lit(&w, "{\"data\":");
    follow_encode(&w, f, c->now);
    tag_end(&w, c);
}

/* Reads the lead (or, with w->fid set, the follow) of w's path, its ETag
 * into w->etag: true when it is there, else false with w answered 404. */
static bool write_found(store_t *s, api_write_t *w)
{
    tag_ctx_t c = {.now = w->now, .etag = w->etag};
    bool follow = w->fid[0] != '\0';
    store_rc_t rc = follow ? store_follow_get(s, w->app, w->id, w->fid, tag_follow, &c, NULL)
                           : store_lead_get(s, w->app, w->id, tag_lead, &c, NULL);
    if (rc == STORE_OK) return true;
    w->etag[0] = '\0';
    api_write_answer(w, rc, 0, follow ? API_FOLLOW_NOT_FOUND_TITLE : API_LEAD_NOT_FOUND_TITLE,
                     follow ? API_FOLLOW_NOT_FOUND_DETAIL : API_LEAD_NOT_FOUND_DETAIL);
    return false;
}

/* Whether w's If-Match names the ETag write_found read; else false with w
 * answered 412. */
static bool write_matches(api_write_t *w)
{
    bool whole = w->if_match_len < sizeof w->if_match;
    if (whole && api_etag_match(w->if_match, w->if_match_len, w->etag, false)) return true;
    /* One too long to read is refused as no match, whatever tags it lists,
     * and says so: "has changed" would send the client to read again and
     * send the same header (review rv102). */
    w->status = api_render_error(
        &w->out, 412, "Precondition Failed",
        whole ? "The resource has changed since you read it (If-Match does not match its ETag)."
              : "If-Match is longer than the 1,024 bytes crmd reads of it: send the ETag you read.");
    return false;
}

bool api_write_precondition(store_t *s, api_write_t *w)
{
    if (!w->has_if_match) return true;
    return write_found(s, w) && write_matches(w);
}

void api_write_given(api_write_t *w)
{
    jw_reset(&w->out);
    jw_raw(&w->out, w->text, w->size - sizeof *w);
    w->status = w->out.oom
                    ? api_render_error(&w->out, 503, "Service Unavailable", "The server is out of memory.")
                    : w->given;
}

/* A body with problems, answered once the writer has checked what
 * extensions.md's order of checks puts before it: the resource (404) on a
 * lead or follow the path names, If-Match or not, and the precondition
 * (412). The problem given to w stands only when both hold. */
static void run_body_errors(store_t *s, api_write_t *w)
{
    api_write_given(w);
    int status = w->status;
    bool ok = w->names_lead && !w->has_if_match ? write_found(s, w) : api_write_precondition(s, w);
    if (ok) w->status = status;
}

/* Hands the answer already rendered into r->out (status) to a new write
 * that runs fn and then answers it (its body kept in the write's text);
 * false when out of memory. */
static bool through_writer(api_req_t *r, int status, api_write_fn fn)
{
    api_write_t *w = api_write_new(r, fn, r->out.len);
    if (w == NULL) return false;
    if (r->out.len > 0) memcpy(w->text, r->out.buf, r->out.len);
    w->given = status;
    api_write_submit(r, w);
    return true;
}

/* Answers the problem of r's body already rendered into r->out (status):
 * at once, or, on a lead or follow the path names (the only resources
 * If-Match applies to), after the writer has checked the resource and the
 * precondition (run_body_errors); under an Idempotency-Key, through the
 * writer too, which keeps the answer for the key. */
static void body_errors(api_req_t *r, int status)
{
    if ((!r->names_lead && !r->idem.held) || !through_writer(r, status, run_body_errors))
        api_reply(r, status);
}

/* The answer is given already: the writer only keeps it for w's key. */
static void run_kept(store_t *s, api_write_t *w)
{
    (void)s;
    api_write_given(w);
}

void api_reply_kept(api_req_t *r, int status)
{
    if (!r->idem.held || !through_writer(r, status, run_kept)) api_reply(r, status);
}

void api_reply_found(api_req_t *r, int status, api_write_fn found)
{
    if (!through_writer(r, status, found)) api_reply(r, status);
}

void api_reply_errors_kept(api_req_t *r, const verrs_t *errs)
{
    api_reply_kept(r, api_render_errors(&r->out, errs));
}

json_t *api_body_or_reply_kept(api_req_t *r)
{
    int status = 0;
    json_t *root = api_body_or_render(r, &status);
    if (root == NULL) api_reply_kept(r, status);
    return root;
}

api_write_t *api_decode_or_reply(api_req_t *r, bool creating, api_decode_fn decode, api_write_fn fn)
{
    int status = 0;
    json_t *root = api_body_or_render(r, &status);
    if (root == NULL) {
        body_errors(r, status);
        return NULL;
    }
    api_patch_t p;
    text_ref_t *texts[API_PATCH_TEXTS] = {NULL};
    verrs_t errs = {0};
    decode(root, r->req->entity, creating, &p, texts, &errs);
    api_write_t *w = errs.n > 0 ? NULL : write_with_text(r, fn, &p, texts);
    /* The write holds its own text: nothing points into the tree now. */
    json_decref(root);
    if (errs.n > 0)
        body_errors(r, api_render_errors(&r->out, &errs));
    else if (w == NULL)
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
    return w;
}

api_write_t *api_create_or_reply(api_req_t *r, api_decode_fn decode, api_write_fn fn, char id[UUID_BUFSZ])
{
    if (uuid_v7(r->now, id) != 0) {
        api_reply_error(r, 503, "Service Unavailable", "No randomness is available for a new id.");
        return NULL;
    }
    return api_decode_or_reply(r, true, decode, fn);
}
