/*
 * respond.h: the bottom of the request path: sending a response, and the
 * contract's JSON error bodies.
 *
 * api_respond is the one function that hands a response to h2o, for the
 * worker threads and for writes answered after the writer's commit alike,
 * so every response gets the same headers for the same status. This layer
 * knows h2o and JSON, never a route, a handler or the store's connection.
 */
#ifndef CRMD_API_RESPOND_H
#define CRMD_API_RESPOND_H

#include <stdbool.h>

#include "h2o.h"

#include "model/codec.h"
#include "model/jsonw.h"
#include "store/store.h"

/* Sends req's response: status, its reason phrase, the headers the status
 * calls for (201: Location, when location is not NULL; 401:
 * WWW-Authenticate; 503: Retry-After), and unless the status is 204 the
 * body with its Content-Length, as application/json unless the handler
 * set a Content-Type already (only the board's files do). The body is copied
 * into req's pool unless pooled says it is there already. A HEAD request
 * gets the headers only. req may be disposed of before this returns: the
 * caller must not touch it afterwards. */
void api_respond(h2o_req_t *req, int status, h2o_iovec_t body, bool pooled, const char *location);

/* Until api_respond_captured, the answer api_respond gives req on this
 * thread is kept rather than sent: its status, reason and headers set in
 * req->res, its body (in req's pool) returned by api_respond_captured.
 * The memory guard answers a request whose body it will not read this way
 * (server.h's body_check), before h2o would hand the request to a handler.
 * Only error answers (with a body) are captured. */
void api_respond_capture(h2o_req_t *req);
h2o_iovec_t api_respond_captured(void);

/* The next member of a comma-separated header value: *p walks it up to
 * end; item gets the member without the white space around it. False when
 * none is left. */
bool api_list_next(const char **p, const char *end, h2o_iovec_t *item);

/* Whether req's If-None-Match lists etag (a strong tag, quoted), or is
 * "*"; its weak tags are compared weakly, as RFC 9110 wants. */
bool api_if_none_match(h2o_req_t *req, const char *etag);

/* Starts a streamed 200 answer of req, produced by gen (h2o calls
 * gen->proceed for each next chunk), with the given Content-Type and
 * Content-Disposition, and sends its first chunk: final when nothing
 * follows. A chunk must stay valid until proceed runs or req is disposed
 * of. A HEAD request gets the headers only. Returns whether the stream
 * goes on: false when it ended here (final, HEAD, or the memory guard had
 * no room for the first chunk and answered 503 instead). */
bool api_respond_stream(h2o_req_t *req, h2o_generator_t *gen, const char *type, const char *disposition,
                        h2o_iovec_t first, bool final);
/* The next chunk of a stream, when its generator's proceed asked for it. */
void api_respond_stream_more(h2o_req_t *req, h2o_iovec_t chunk, bool final);
/* Ends a stream as failed: the client sees a cut-off answer (HTTP/1: no
 * last chunk and the connection closed; HTTP/2: the stream reset). */
void api_respond_stream_fail(h2o_req_t *req);

/* The reason phrase of a status ("Internal Server Error" for any status
 * the API does not use). */
const char *api_reason(int status);
/* The API's reason phrase of a status, or other for a status the API does
 * not use. */
const char *api_reason_or(int status, const char *other);

/* Write an error document into w (emptied first) and return its status:
 * one error; the 422 of a list of validation problems; and the response
 * to a store failure (404 with the given title and detail, 503, 500). */
int api_render_error(jw_t *w, int status, const char *title, const char *detail);
int api_render_errors(jw_t *w, const verrs_t *errs);
/* One error about a request header (source.header), with its own code. */
int api_render_header_error(jw_t *w, int status, const char *code, const char *title, const char *header,
                            const char *detail);
int api_render_store_error(jw_t *w, store_rc_t rc, const char *not_found_title, const char *not_found_detail);

/* The error document body with meta.requestId set to id, in pool: every
 * error document this file renders ends either in "]}" or in its meta
 * object ("],\"meta\":{...}}"), and id is plain ASCII (reqid.h), so it is
 * added without parsing. A body of another form is returned as it is. */
h2o_iovec_t api_error_with_request_id(h2o_mem_pool_t *pool, h2o_iovec_t body, h2o_iovec_t id);

/* The code of an error document's first error into out (size bytes,
 * terminated; "" when there is none). */
void api_error_code(h2o_iovec_t body, char *out, size_t size);

#endif
