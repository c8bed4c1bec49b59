/*
 * resource.h: what the resource handlers (leads.c, follows.c) share: a
 * read answered from the response cache or from the store, and a write
 * decoded from the body.
 */
#ifndef CRMD_API_RESOURCE_H
#define CRMD_API_RESOURCE_H

#include <stdbool.h>

#include "api/api_int.h"

/* The 404s of the two resources. */
extern const char API_LEAD_NOT_FOUND_TITLE[], API_LEAD_NOT_FOUND_DETAIL[];
extern const char API_FOLLOW_NOT_FOUND_TITLE[], API_FOLLOW_NOT_FOUND_DETAIL[];

/* How to read one resource, or one page of a list. start makes the store
 * call, with r->rd.render as its callbacks' context (its items rendered
 * into r->out). A list's body is {"data":[items],"meta":{paging}}; an
 * item's start renders {"data":item} itself. */
typedef struct api_read_spec {
    api_read_start_fn start;
    bool list;
    const char *not_found_title, *not_found_detail;
    api_step_fn meta; /* a list's "meta" member, when not the plain paging one */
} api_read_spec_t;

/* Answers r with what spec reads, for the response cache key r->rd.key
 * (and, for a list, r->rd.page and r->rd.records): from the cache when it
 * holds it, else from the store, then keeping it in the cache. A key of
 * kind 0 is never cached (webhooks: the sender changes what they show). */
void api_resource_read(api_req_t *r, const api_read_spec_t *spec);

/* A list's paging for r (default_records per page unless the query says),
 * into r->rd; false when the 422 has been sent. */
bool api_resource_paging_or_reply(api_req_t *r, int default_records);
/* The offset of r's page; a page so far out that it overflows is simply
 * past the end. */
int64_t api_resource_offset(const api_req_t *r);

/* The path's lead ({id}) into r->id, and its follow ({follow_id}) into
 * r->fid; a 404 when it is not a UUID. */
bool api_lead_id_or_reply(api_req_t *r);
bool api_follow_id_or_reply(api_req_t *r);

/* Decodes body root into a patch; problems go into errs. body is the text
 * root was parsed from. texts gets the patch's text members (NULL where
 * fewer), which point into root: the write gets its own copy of them. */
#define API_PATCH_TEXTS 2
typedef void (*api_decode_fn)(const json_t *root, h2o_iovec_t body, bool creating, api_patch_t *p,
                              text_ref_t *texts[API_PATCH_TEXTS], verrs_t *errs);

/* Reads and decodes the body into a new write that will run fn, holding
 * its own copy of the patch's text (the body's tree is freed); NULL when
 * r has been answered (400, 413, 415, 422, 503). */
api_write_t *api_decode_or_reply(api_req_t *r, bool creating, api_decode_fn decode, api_write_fn fn);

/* Answers r with the answer already rendered into r->out (status): at
 * once, or, under an Idempotency-Key, through the writer, which keeps it
 * for the key so that a retry replays it. For the 4xx a POST finds before
 * its write (a body, a query, a file that cannot be taken). */
void api_reply_kept(api_req_t *r, int status);

/* Answers r with the problem of its body already rendered into r->out
 * (status) once the writer has run found, which looks for the resource
 * r's path names: it starts with api_write_given and answers w itself
 * (404) when the resource is not there, as extensions.md's order of
 * checks puts that before the body's problems. The answer is kept for an
 * Idempotency-Key as api_reply_kept keeps it. */
void api_reply_found(api_req_t *r, int status, api_write_fn found);

/* Sets w's answer to the one api_reply_found (or api_reply_kept) gave it.
 * Each run does, not the handler: a batch run again (writer.c) starts
 * each write afresh. */
void api_write_given(api_write_t *w);

/* api_reply_kept with every problem of errs. */
void api_reply_errors_kept(api_req_t *r, const verrs_t *errs);

/* The JSON body (api_body_or_render); NULL when r has been answered
 * (400, 413, 415) by api_reply_kept. The caller json_decref()s it. */
json_t *api_body_or_reply_kept(api_req_t *r);

/* If-Match on a write of the lead (or, with w->fid set, the follow) of
 * w's path, inside its transaction: true to go on (no If-Match, or it
 * names the current ETag); else false with w answered: 404 when there is
 * no such resource, 412 (w->etag set) when it does not match. The read
 * locks the row until the batch ends (store.h), so the write that follows
 * changes what was compared. */
bool api_write_precondition(store_t *s, api_write_t *w);

/* The same for a create: first a new id into id (a 503 when no randomness
 * is available), then the body. */
api_write_t *api_create_or_reply(api_req_t *r, api_decode_fn decode, api_write_fn fn, char id[UUID_BUFSZ]);

#endif
