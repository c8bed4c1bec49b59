/*
 * dispatch.c: the request entry point and the thread life cycle.
 *
 * api_handle finds the request's route entry (routes.c), answers a
 * malformed HTTP/2 request (400), 404 and 405 itself, before credentials
 * are looked at, then authenticates the caller when the entry says so
 * (auth.c), applies the app's rate limit, and hands the request to the
 * entry's handler. Each of these steps may answer the request, now or
 * after a store read; from then on the request is not touched here.
 */
#include "api/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/auth.h"
#include "api/idem.h"
#include "api/query.h"
#include "api/loop.h"
#include "api/cors.h"
#include "api/export.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "api/respond.h"
#include "api/routes.h"
#include "api/writer.h"
#include "http/metrics.h"
#include "model/timestamp.h"

api_thread_t *api_thread_new(int index, const api_shared_t *shared, h2o_context_t *ctx, store_t *s)
{
    api_thread_t *t = calloc(1, sizeof *t);
    if (t != NULL && (t->auth = auth_cache_new()) == NULL) {
        free(t);
        t = NULL;
    }
    if (t == NULL) {
        store_close(s);
        return NULL;
    }
    t->shared = shared;
    t->index = index;
    t->store = s;
    t->ctx = ctx;
    api_log_init(&t->log, ctx);
    h2o_multithread_register_receiver(ctx->queue, &t->done, api_writes_done);
    return t;
}

void *api_thread_init(int index, void *arg, h2o_context_t *ctx)
{
    const api_shared_t *shared = arg;
    char err[256];
    store_t *s = store_open(shared->db_url, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: thread %d: %s\n", index, err);
        return NULL;
    }
    metrics_thread_attach();
    api_thread_t *t = api_thread_new(index, shared, ctx, s);
    if (t != NULL && auth_cache_load(t->auth, t->store, ts_now_ms()) != STORE_OK) {
        fprintf(stderr, "crmd: thread %d: cannot read the revoked tokens from the database\n", index);
        api_thread_fini(t);
        return NULL;
    }
    /* Only now, the revocations loaded by a blocking read before the first
     * token is checked, may the store's reads complete later on the loop
     * (and from now on it takes no blocking call: store_set_loop). */
    if (t != NULL && (t->loop = api_loop_new(ctx->loop, &t->sloop)) == NULL) {
        fprintf(stderr, "crmd: thread %d: out of memory\n", index);
        api_thread_fini(t);
        return NULL;
    }
    if (t != NULL) store_set_loop(t->store, &t->sloop);
    return t;
}

int api_thread_busy(void *state)
{
    const api_thread_t *t = state;
    return t->writes_in_flight > 0 || t->reads_pending > 0 || t->resolves_pending > 0 || auth_busy(t->auth);
}

void api_thread_fini(void *state)
{
    api_thread_t *t = state;
    h2o_multithread_unregister_receiver(t->ctx->queue, &t->done);
    api_log_flush(&t->log);
    api_export_thread_fini(t); /* their readers use the loop, as the store does */
    store_close(t->store);
    api_loop_free(t->loop); /* after the store, which used it */
    api_req_thread_fini(t);
    auth_cache_free(t->auth);
    free(t);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

h2o_iovec_t api_error_body(h2o_req_t *req, void *state)
{
    api_thread_t *t = state;
    int status = req->res.status;
    const char *detail = status == 413   ? "The request body is larger than 16 MiB."
                         : status == 417 ? "Only Expect: 100-continue is supported."
                                         : "The request could not be read as HTTP.";
    /* The API's own title where it has one: h2o's 413 says "Request Entity
     * Too Large" where every other 413 of crmd says "Payload Too Large". */
    const char *title = api_reason_or(status, req->res.reason != NULL ? req->res.reason : "Bad Request");
    char id[HTTP_REQID_MAX + 1];
    h2o_iovec_t reqid = h2o_iovec_init(id, api_request_id(req, id));
    cors_headers(req);
    jw_t w = {0};
    api_render_error(&w, status, title, detail);
    h2o_iovec_t body = w.oom ? h2o_iovec_init(NULL, 0) : h2o_strdup(&req->pool, w.buf, w.len);
    jw_free(&w);
    body = api_error_with_request_id(&req->pool, body, reqid);
    metrics_request(api_unmatched_route(api_method_of(req->method.base, req->method.len)), status, 0);
    if (t->shared->log_requests) api_log_h2o(t, req, status, reqid, body, monotonic_ns());
    return body;
}

/* Applies the app's rate limit: false (429 sent) when it is over it. Every
 * limited response says where the app stands (RateLimit-* headers). */
static bool rate_limit_or_reply(api_req_t *r)
{
    if (!ratelimit_enabled(RATELIMIT_APP)) return true;
    ratelimit_info_t info;
    bool ok = ratelimit_take(RATELIMIT_APP, (ratelimit_key_t){(uint64_t)r->app.id, 0}, r->now, &info);
    api_header_int(r, "ratelimit-limit", info.limit);
    api_header_int(r, "ratelimit-remaining", info.remaining);
    api_header_int(r, "ratelimit-reset", info.reset_s);
    if (!ok) {
        api_header_int(r, "retry-after", info.retry_after);
        api_reply_error(r, 429, "Too Many Requests", "This app is over its request rate limit; retry later.");
    }
    return ok;
}

/* Reads the query string against the route's parameters; a route that
 * takes none answers its problems here, the others with their own. */
static bool query_or_reply(api_req_t *r)
{
    if (!api_query_load(r)) {
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return false;
    }
    if (api_query_takes_any(r->route) || r->query->errs.n == 0) return true;
    api_reply_errors(r, &r->query->errs);
    return false;
}

/* The largest body route reads, the limit a 413 names: its body_max, or
 * for a route that reads none, API_MAX_BODY (such a body is read and
 * dropped). */
static size_t body_limit(const api_route_t *route)
{
    return route->body_max > 0 ? route->body_max : API_MAX_BODY;
}

/* A body larger than r's route takes (h2o read up to the largest any
 * route takes) is a 413: after the route and the credentials, in
 * extensions.md's order of checks. One up to API_MAX_BODY is left to the
 * handler, which reads the body (api_body_or_render) and so answers what
 * else is wrong with the request first. */
static bool body_size_or_reply(api_req_t *r)
{
    size_t max = r->route->body_max > API_MAX_BODY ? r->route->body_max : API_MAX_BODY;
    if (r->req->entity.len <= max) return true;
    api_reply(r, api_render_too_large(&r->out, body_limit(r->route)));
    return false;
}

static void authenticated(api_req_t *r)
{
    if (!body_size_or_reply(r) || !rate_limit_or_reply(r) || !query_or_reply(r)) return;
    if (r->method == METHOD_POST)
        api_idem_then(r, r->route->handler);
    else
        r->route->handler(r);
}

/* Out of memory before the request has its state: a fixed answer. */
static void reply_no_memory(api_thread_t *t, h2o_req_t *req)
{
    static const char body[] =
        "{\"errors\":[{\"status\":\"503\",\"code\":\"service_unavailable\","
        "\"title\":\"Service Unavailable\",\"detail\":\"The server is out of memory.\"}]}";
    char id[HTTP_REQID_MAX + 1];
    h2o_iovec_t reqid = h2o_iovec_init(id, api_request_id(req, id));
    h2o_iovec_t b = api_error_with_request_id(&req->pool, h2o_iovec_init(body, sizeof body - 1), reqid);
    metrics_request(api_unmatched_route(METHOD_OTHER), 503, 0);
    if (t->shared->log_requests) api_log_h2o(t, req, 503, reqid, b, monotonic_ns());
    api_respond(req, 503, b, b.base != body, NULL);
}

/* A method the path has no entry for: a CORS preflight's 204, or a 405,
 * both naming the path's methods (OPTIONS among them with CORS on). */
static void reply_other_method(api_req_t *r, unsigned allowed)
{
    h2o_req_t *req = r->req;
    if (cors_enabled()) allowed |= METHOD_BIT(METHOD_OPTIONS);
    char *allow = h2o_mem_alloc_pool(&req->pool, 80);
    size_t n = api_allow_header(allowed, allow, 80);
    if (cors_is_preflight(req)) {
        cors_preflight_headers(req, h2o_iovec_init(allow, n));
        api_reply(r, 204);
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, n);
    api_reply_error(r, 405, "Method Not Allowed", "This route does not support that method.");
}

/* The route entry of r's path and method (NULL when there is none),
 * r->metric_route set for it. */
static const api_route_t *route_of(api_req_t *r, api_route_match_t *m)
{
    size_t plen = r->query_at != SIZE_MAX ? r->query_at : r->path.len;
    r->method = api_method_of(r->req->method.base, r->req->method.len);
    api_route_match(r->path.base, plen, r->method, m);
    r->metric_route = m->route != NULL ? (int)(m->route - API_ROUTES) : api_unmatched_route(r->method);
    return m->route;
}

/* Why an HTTP/2 request is refused before routing, or NULL when it is
 * not. More than H2O_MAX_HEADERS fields: HTTP/1's limit (h2o answers such
 * a head 400 before any handler), which h2o 2.2 does not hold over HTTP/2
 * (the guard resets such a stream once the read ends, h2_cap_headers: too
 * late, a create would have been made). Or one RFC 9113 calls malformed
 * that h2o lets through: a connection-specific field (8.2.2; h2o refuses
 * connection, transfer-encoding, upgrade and a te other than "trailers"
 * itself), or a :path that is not a path ("*" only for OPTIONS; 8.3.1).
 * An intermediary must not pass such a request on, and two that read it
 * differently are how requests get smuggled: it gets a 400, which the RFC
 * allows before the stream ends. (A host field beside :authority h2o
 * drops: nothing here can read it.) */
static const char *h2_malformed(const h2o_req_t *req)
{
    if (req->version < 0x200) return NULL;
    if (req->headers.size > H2O_MAX_HEADERS)
        return "A request may carry at most 100 header fields (HTTP/1's limit, held over HTTP/2 too).";
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("keep-alive")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("proxy-connection")))
            return "An HTTP/2 request may not carry a connection-specific header field (RFC 9113, 8.2.2).";
    }
    /* RFC 9110, 9.1: a method is a token; HTTP/1's parser refuses any
     * other, h2o's HTTP/2 decoder takes "", "G T" or "GET\t". */
    static const char tchar[] =
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    bool token = req->method.len > 0;
    for (size_t i = 0; token && i < req->method.len; i++)
        token = req->method.base[i] != '\0' && strchr(tchar, req->method.base[i]) != NULL;
    if (!token) return "The :method of an HTTP/2 request must be a token (RFC 9110, 9.1).";
    h2o_iovec_t path = req->input.path;
    bool options = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"));
    if (path.len == 0 ||
        (path.base[0] != '/' && !(options && h2o_memis(path.base, path.len, H2O_STRLIT("*")))))
        return "The :path of an HTTP/2 request must start with \"/\" (RFC 9113, 8.3.1).";
    return NULL;
}

/* Whom a large body counts against: its app key, hashed (FNV-1a; never
 * 0). */
static uint64_t owner_of(h2o_iovec_t key)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < key.len; i++)
        h = (h ^ (unsigned char)key.base[i]) * 1099511628211ULL;
    return h != 0 ? h : 1;
}

/* Whether r, whose body is to be over API_MAX_BODY, may send it: its
 * route takes that much and it is authenticated (from its headers alone);
 * otherwise r has been answered, in extensions.md's order of checks: a
 * malformed HTTP/2 request (400, as api_handle answers it), no route
 * (404), another method (405), the credentials (401, 403), then the
 * body's size (413). */
/* Whether r's body, declared long (SIZE_MAX: not known), may be read:
 * the checks of a request in the contract's order, up to the body's
 * length. A body up to API_MAX_BODY on a route that reads less is left
 * to its handler, which answers what else is wrong with the request
 * first, as once read. *limit: the most the body may bring. */
static bool body_allowed(api_req_t *r, size_t declared, size_t *limit)
{
    api_route_match_t m;
    const api_route_t *route = route_of(r, &m);
    const char *malformed = h2_malformed(r->req);
    if (malformed != NULL) {
        api_reply_error(r, 400, "Bad Request", malformed);
        return false;
    }
    if (m.allowed == 0) {
        api_reply_error(r, 404, "Not Found", "No such route.");
        return false;
    }
    if (route == NULL) {
        reply_other_method(r, m.allowed);
        return false;
    }
    if (!route->auth) {
        /* Only credentials let a body in: these routes read none. */
        api_reply_error(r, 413, "Payload Too Large", "This route reads no request body; send none.");
        return false;
    }
    if (!auth_request_now(r)) return false;
    size_t max = route->body_max > API_MAX_BODY ? route->body_max : API_MAX_BODY;
    if (declared != SIZE_MAX && declared > max) {
        api_reply(r, api_render_too_large(&r->out, body_limit(route)));
        return false;
    }
    *limit = declared != SIZE_MAX ? declared : max;
    return true;
}

int api_body_check(h2o_req_t *req, size_t declared, void *state, uint64_t *owner, size_t *limit,
                   h2o_iovec_t *answer)
{
    api_thread_t *t = state;
    api_req_t *r = api_req_new(t, req);
    if (r == NULL) return -1;
    api_respond_capture(req);
    if (body_allowed(r, declared, limit)) {
        *owner = r->auth.key_header.len > 0 ? owner_of(r->auth.key_header) : 1;
        api_req_forget(r);
        api_respond_captured();
        /* The request is handled as any other once its body is in: the
         * X-Request-Id given to this look at it goes. */
        memset(&req->res.headers, 0, sizeof req->res.headers);
        return 0;
    }
    cors_headers(req);
    *answer = api_respond_captured();
    return req->res.status;
}

h2o_iovec_t api_body_busy(h2o_req_t *req, void *state)
{
    api_thread_t *t = state;
    api_req_t *r = api_req_new(t, req);
    if (r == NULL) return h2o_iovec_init(NULL, 0);
    api_respond_capture(req);
    route_of(r, &(api_route_match_t){0});
    cors_headers(req);
    api_reply_error(r, 503, "Service Unavailable",
                    "Your app's large uploads take all the room they may have now; retry shortly.");
    return api_respond_captured();
}

void api_handle(h2o_req_t *req, void *state)
{
    api_thread_t *t = state;
    api_req_t *r = api_req_new(t, req);
    if (r == NULL) {
        reply_no_memory(t, req);
        return;
    }
    cors_headers(req);
    api_route_match_t m;
    route_of(r, &m);
    const char *malformed = h2_malformed(req);
    if (malformed != NULL) {
        api_reply_error(r, 400, "Bad Request", malformed);
        return;
    }
    if (m.allowed == 0) {
        api_reply_error(r, 404, "Not Found", "No such route.");
        return;
    }
    if (m.route == NULL) {
        reply_other_method(r, m.allowed);
        return;
    }
    r->route = m.route;
    memcpy(r->params, m.params, sizeof r->params);
    if (r->route->auth)
        auth_request(r, authenticated);
    else if (body_size_or_reply(r))
        r->route->handler(r);
}
