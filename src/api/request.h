/*
 * request.h: one request's life (api_req_t, api_int.h), its input and its
 * answer.
 *
 * A request starts in api_handle (api_req_new) and ends when it is
 * answered: every api_reply* function sends the response (through
 * api_respond), writes the log line, and ends the request, so the caller
 * must not touch r afterwards. A request that h2o disposed of meanwhile
 * (r->req NULL) ends there without an answer. Functions named
 * ..._or_reply answer the request themselves when they fail (and return
 * false or NULL): the caller then only returns.
 */
#ifndef CRMD_API_REQUEST_H
#define CRMD_API_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api/api_int.h"

/* Starts a request of thread t: takes the time, and notes in req's pool
 * when h2o disposes of req. NULL when out of memory. */
api_req_t *api_req_new(api_thread_t *t, h2o_req_t *req);
/* The request id of req (its valid X-Request-Id, else a new one, reqid.h)
 * into out, terminated, and as req's X-Request-Id response header; returns
 * its length. */
size_t api_request_id(h2o_req_t *req, char out[HTTP_REQID_MAX + 1]);

/* Logs req, which has no api_req_t (an error h2o answered itself), with
 * status, its request id and its error body. */
void api_log_h2o(api_thread_t *t, h2o_req_t *req, int status, h2o_iovec_t reqid, h2o_iovec_t body,
                 int64_t start_ns);

/* Frees what t keeps for its next request; call before t ends. */
void api_req_thread_fini(api_thread_t *t);

/* Runs a store read for r in two halves: start(r, async) makes the store
 * call; done(r, rc) gets its result, either at once or, if the store
 * returned STORE_PENDING, later from the thread's event loop (meanwhile r
 * counts in t->reads_pending). If h2o disposed of the request in between,
 * done is not called and r ends. One read at a time per request; done
 * may start the next. Anything start hands the store (the callbacks'
 * context, out parameters) must live in r. */
void api_req_read(api_req_t *r, api_read_start_fn start, api_read_done_fn done);

/* The same bounds for a read made on the loop outside api_req_read (an
 * export's pages, on a reader of its own): api_read_begin sets s's
 * deadline (--read-time) and returns the read's start, api_read_end clears
 * it and charges app (at now) for the loop time beyond API_READ_FREE_MS. */
int64_t api_read_begin(store_t *s);
void api_read_end(store_t *s, int64_t app, int64_t now, int64_t t0);

/* Other work an app's request makes on the loop (an import's file checked
 * before it is queued) pays for its time as a read does: api_loop_begin
 * returns its start, api_loop_charge charges app for the time since t0
 * beyond API_READ_FREE_MS (api_read_end calls it). */
int64_t api_loop_begin(void);
void api_loop_charge(int64_t app, int64_t now, int64_t t0);

/* Ends r without an answer, logging and counting nothing: r was only a
 * look at a request that is handled later (api_body_check). */
void api_req_forget(api_req_t *r);

/* Ends r, which h2o has let go of (r->req NULL) while it waited, without
 * an answer; its log line says 499 and client=gone. */
void api_req_abandon(api_req_t *r);

/* Answers r with status and r->out as the body (a 503 if r->out ran out
 * of memory). */
void api_reply(api_req_t *r, int status);
/* The same with another body (a write's), and a Location for a 201. */
void api_reply_body(api_req_t *r, int status, jw_t *body, const char *location);
/* The same with a body already in the request's pool (a cached one). */
void api_reply_pooled(api_req_t *r, int status, char *body, size_t len);
/* Logs and counts r as answered 200 with a streamed body, and ends r: the
 * caller then streams the answer to the returned h2o request (respond.h,
 * api_respond_stream), which lives on after r. NULL when h2o has already
 * let go of it. */
h2o_req_t *api_reply_streamed(api_req_t *r);
/* Answers with an error document (respond.h renders them). */
void api_reply_error(api_req_t *r, int status, const char *title, const char *detail);
void api_reply_errors(api_req_t *r, const verrs_t *errs);
void api_reply_store_error(api_req_t *r, store_rc_t rc, const char *not_found_title,
                           const char *not_found_detail);

/* The client's address: the connection's peer, or, when that is a trusted
 * proxy, the address X-Forwarded-For names (proxy.h); all zero when
 * unknown. Worked out once per request. */
const proxy_addr_t *api_client(api_req_t *r);
/* The same for req, worked out each time. */
void api_client_of(h2o_req_t *req, proxy_addr_t *out);

/* Adds a response header whose name h2o has no token for, with a number
 * value. */
void api_header_int(api_req_t *r, const char *name, int value);
/* Adds a response header with a text value (copied). */
void api_header_str(api_req_t *r, const char *name, const char *value);

/* Every value of request header name, joined by ", " into buf (cap
 * bytes, NUL-terminated): its length, 0 when there is none, or cap when
 * they do not fit (then buf holds nothing of use). */
size_t api_header_list(api_req_t *r, const char *name, char *buf, size_t cap);

/* Renders into w the 413 of a body over max bytes (its detail names max in
 * MiB, KiB or bytes); returns 413. */
int api_render_too_large(jw_t *w, size_t max);

/* The JSON body, after the Content-Type (415), size (413, beyond the
 * route's body_max) and syntax (400) checks; the caller json_decref()s it.
 * NULL with the error rendered into r->out and its status into *status
 * (api_body_or_reply_kept in resource.h answers it). */
json_t *api_body_or_render(api_req_t *r, int *status);

/* Whether r's body comes in a content coding (a Content-Encoding other
 * than identity): crmd reads none, so such a body is a 415 (RFC 9110,
 * 8.4), never its bytes taken as they are. */
bool api_body_coded(const api_req_t *r);

/* The value of query parameter name, decoded (query.h) once the query
 * string has been read, or base NULL. The route must list name among its
 * query parameters. */
h2o_iovec_t api_query(const api_req_t *r, const char *name);

/* page (from 1, any number of digits; beyond INT64_MAX it reads as
 * INT64_MAX, past the end of any list) and records (1..100,
 * default_records when not given) from the query string; 422 when either
 * is not one. */
bool api_paging_or_reply(api_req_t *r, int default_records, int64_t *page, int *records);
/* The same, with the problems added to errs (false when there were some). */
bool api_paging_parse(api_req_t *r, int default_records, int64_t *page, int *records, verrs_t *errs);

/* The path's param'th {param} as a canonical UUID into out; a 404 with
 * title and detail when it is not one (such an id names nothing). */
bool api_uuid_or_reply(api_req_t *r, int param, char out[UUID_BUFSZ], const char *title, const char *detail);

/* Moves *s and shortens *n past the optional white space (SP, HTAB)
 * around a header value or a parameter of one (RFC 9112, 5.1). */
void api_trim_ows(const char **s, size_t *n);

#endif
