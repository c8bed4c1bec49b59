/*
 * request.c: see request.h.
 */
#include "api/request.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/etag.h"
#include "api/inflight.h"
#include "api/query.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "http/metrics.h"
#include "model/jsonlex.h"
#include "model/timestamp.h"

#define MIB (1024 * 1024)

/* --- life --------------------------------------------------------------------- */

/* The value of req's first header token (base NULL: none). */
static h2o_iovec_t header(const h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* Copies at most size bytes of v into buf, for the log line. */
static size_t keep(char *buf, size_t size, h2o_iovec_t v)
{
    size_t n = v.len < size ? v.len : size;
    if (n > 0) memcpy(buf, v.base, n);
    return n;
}

/* h2o disposes of a request's pool when the request ends, which can be
 * before its read or write completes (an HTTP/2 stream reset, a closed
 * connection): forget it, keeping what its log line names, and tell its
 * write that the client is gone. h2o calls this before it frees the
 * pool's memory, so req is still whole here. */
static void on_req_dispose(void *p)
{
    api_req_t **ref = p;
    api_req_t *r = *ref;
    if (r == NULL) return;
    h2o_req_t *req = r->req;
    r->kept.method_len = keep(r->kept.method, sizeof r->kept.method, req->method);
    r->kept.path_len = keep(r->kept.path, sizeof r->kept.path, req->path);
    h2o_iovec_t agent = header(req, H2O_TOKEN_USER_AGENT);
    r->kept.has_agent = agent.base != NULL;
    r->kept.agent_len = keep(r->kept.agent, sizeof r->kept.agent, agent);
    if (r->t->shared->log_requests) api_client(r);
    if (r->gone != NULL) atomic_store(r->gone, true);
    r->req = NULL;
}

/* The request target in origin form, into r->path and r->query_at. h2o
 * 2.2 hands an absolute-form target ("GET http://host/leads HTTP/1.1",
 * which RFC 7230 says a server must accept) over as it came: its scheme
 * and authority are cut off here (one host is served, so the authority
 * chooses nothing), and an empty path is "/". */
static void origin_form(api_req_t *r, h2o_req_t *req)
{
    h2o_iovec_t p = req->path;
    r->path = p;
    r->query_at = req->query_at;
    size_t skip = 0;
    if (p.len >= 7 && h2o_lcstris(p.base, 7, H2O_STRLIT("http://")))
        skip = 7;
    else if (p.len >= 8 && h2o_lcstris(p.base, 8, H2O_STRLIT("https://")))
        skip = 8;
    if (skip == 0) return;
    while (skip < p.len && p.base[skip] != '/' && p.base[skip] != '?')
        skip++;
    h2o_iovec_t rest = h2o_iovec_init(p.base + skip, p.len - skip);
    if (rest.len == 0 || rest.base[0] == '?')
        rest = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("/")), rest);
    r->path = rest;
    const char *q = memchr(rest.base, '?', rest.len);
    r->query_at = q != NULL ? (size_t)(q - rest.base) : SIZE_MAX;
}

api_req_t *api_req_new(api_thread_t *t, h2o_req_t *req)
{
    /* The last request's state, and its grown buffer, are reused. */
    api_req_t *r = t->spare;
    jw_t out = {0};
    if (r != NULL) {
        t->spare = NULL;
        out = r->out;
        jw_reset(&out);
    } else if ((r = malloc(sizeof *r)) == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof *r);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    r->now = ts_now_ms();
    r->out = out;
    r->t = t;
    r->req = req;
    r->ref = h2o_mem_alloc_shared(&req->pool, sizeof *r->ref, on_req_dispose);
    *r->ref = r;
    origin_form(r, req);
    r->reqid_len = api_request_id(req, r->reqid);
    r->metric_route = -1;
    return r;
}

size_t api_request_id(h2o_req_t *req, char out[HTTP_REQID_MAX + 1])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    size_t len;
    if (i >= 0 && reqid_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
        len = req->headers.entries[i].value.len;
        memcpy(out, req->headers.entries[i].value.base, len);
        out[len] = '\0';
    } else {
        len = reqid_generate(out);
    }
    /* In the pool: h2o may write the headers after r has ended. */
    h2o_iovec_t v = h2o_strdup(&req->pool, out, len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, v.base, v.len);
    return len;
}

static void req_end(api_req_t *r)
{
    assert(!r->waiting && r->read_done == NULL);
    if (r->req != NULL) *r->ref = NULL; /* the pool outlives r */
    api_thread_t *t = r->t;
    if (t->spare == NULL) {
        t->spare = r;
        return;
    }
    jw_free(&r->out);
    free(r);
}

void api_req_thread_fini(api_thread_t *t)
{
    if (t->spare == NULL) return;
    jw_free(&t->spare->out);
    free(t->spare);
    t->spare = NULL;
}

static void on_read_done(void *ctx, store_rc_t rc)
{
    api_req_t *r = ctx;
    if (r->waiting) {
        r->waiting = false;
        r->t->reads_pending--;
    }
    api_read_done_fn done = r->read_done;
    r->read_done = NULL;
    if (r->req == NULL) {
        /* Nobody is left to answer, but what the request holds is let go
         * (an Idempotency-Key taken before its lookup, which would else be
         * a 409 in this process until it stops), and its end is logged as
         * any other client's who left. */
        api_req_abandon(r);
        return;
    }
    done(r, rc);
}

/* The time a read may hold the loop (--read-time; 0: no bound). */
static int64_t read_max_ns = API_READ_TIME_DEFAULT_MS * 1000000;

void api_read_configure(int64_t max_ms)
{
    assert(max_ms >= 0);
    read_max_ns = max_ms * 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t api_read_begin(store_t *s)
{
    int64_t t0 = mono_ns();
    store_read_deadline(s, read_max_ns > 0 ? t0 + read_max_ns : 0);
    return t0;
}

/* Charges app for the loop time its read took beyond API_READ_FREE_MS:
 * one request of its rate limit a millisecond, so that an app's stream of
 * slow reads is refused (429) long before it could keep a thread busy,
 * whatever its request rate. */
void api_read_end(store_t *s, int64_t app, int64_t now, int64_t t0)
{
    store_read_deadline(s, 0);
    api_loop_charge(app, now, t0);
}

int64_t api_loop_begin(void)
{
    return mono_ns();
}

void api_loop_charge(int64_t app, int64_t now, int64_t t0)
{
    int64_t over_ms = (mono_ns() - t0) / 1000000 - API_READ_FREE_MS;
    if (over_ms <= 0 || app == 0 || !ratelimit_enabled(RATELIMIT_APP)) return;
    ratelimit_charge(RATELIMIT_APP, (ratelimit_key_t){(uint64_t)app, 0}, now,
                     (double)over_ms * API_READ_COST_PER_MS);
}

void api_req_read(api_req_t *r, api_read_start_fn start, api_read_done_fn done)
{
    assert(r->read_done == NULL && !r->waiting);
    r->read_done = done;
    /* The store keeps its own copy of async. */
    store_async_t async = {.done = on_read_done, .ctx = r};
    /* A read that completes now holds the loop, every request of the
     * thread, while it runs: it stops at its deadline (STORE_TOO_SLOW)
     * and its app pays for its time (one left pending, for the moment its
     * start took). */
    int64_t t0 = api_read_begin(r->t->store);
    store_rc_t rc = start(r, &async);
    api_read_end(r->t->store, r->app.id, r->now, t0);
    if (rc == STORE_PENDING) {
        r->waiting = true;
        r->t->reads_pending++;
        return;
    }
    on_read_done(r, rc);
}

/* --- answers ------------------------------------------------------------------- */

void api_log_h2o(api_thread_t *t, h2o_req_t *req, int status, h2o_iovec_t reqid, h2o_iovec_t body,
                 int64_t start_ns)
{
    char code[64] = "";
    if (status >= 400) api_error_code(body, code, sizeof code);
    proxy_addr_t client;
    api_client_of(req, &client);
    api_log_entry_t e = {.now = ts_now_ms(),
                         .start_ns = start_ns,
                         .client = &client,
                         .method = req->method,
                         .path = req->path,
                         .request_id = reqid,
                         .user_agent = header(req, H2O_TOKEN_USER_AGENT),
                         .status = status,
                         .code = code,
                         .app = ""};
    api_log_write(&t->log, &e);
}

/* The line of r, answered with status and body (an error's code is read
 * from it); from r->kept when h2o has let go of the request. */
static void log_reply(api_req_t *r, int status, h2o_iovec_t body)
{
    h2o_req_t *req = r->req;
    char code[64] = "";
    if (status >= 400) api_error_code(body, code, sizeof code);
    api_log_entry_t e = {.now = r->now,
                         .start_ns = r->start_ns,
                         .request_id = h2o_iovec_init(r->reqid, r->reqid_len),
                         .status = status,
                         .code = code,
                         .app = r->app.key};
    if (req != NULL) {
        e.client = api_client(r);
        e.method = req->method;
        e.path = req->path;
        e.user_agent = header(req, H2O_TOKEN_USER_AGENT);
    } else {
        e.client = r->client_known ? &r->client : NULL;
        e.method = h2o_iovec_init(r->kept.method, r->kept.method_len);
        e.path = h2o_iovec_init(r->kept.path, r->kept.path_len);
        if (r->kept.has_agent) e.user_agent = h2o_iovec_init(r->kept.agent, r->kept.agent_len);
        e.note = "client=gone";
    }
    api_log_write(&r->t->log, &e);
}

/* Counts r's answer in the metrics. A 429 before the caller is known is
 * the limit on failed authentication; after, the app's. */
static void count(api_req_t *r, int status)
{
    if (!metrics_enabled()) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    metrics_request(r->metric_route, status, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - r->start_ns);
    if (status == 429) metrics_count(r->app.id != 0 ? METRIC_RATE_LIMITED_APP : METRIC_RATE_LIMITED_AUTH);
}

/* Sends the answer, or, when h2o has let go of the request (its client is
 * gone), only logs it: a write answered then was committed (or, 499, not
 * run), and every committed write has its line. An error document gets
 * the request's id as meta.requestId. */
/* A lead's or a follow's answer carries the ETag of its body; a GET (or
 * HEAD) whose If-None-Match names it becomes a 304. Returns the status. */
static int tag(api_req_t *r, int status, h2o_iovec_t body)
{
    if (r->req == NULL || r->route == NULL || !r->route->etag || (status != 200 && status != 201))
        return status;
    char etag[API_ETAG_MAX], list[API_ETAG_LIST_MAX + 1];
    api_etag_of(body.base, body.len, etag);
    api_header_str(r, "etag", etag);
    size_t n = api_header_list(r, "if-none-match", list, sizeof list);
    bool get = r->method == METHOD_GET || r->method == METHOD_HEAD;
    if (get && n > 0 && n < sizeof list && api_etag_match(list, n, etag, true)) return 304;
    return status;
}

static void reply(api_req_t *r, int status, h2o_iovec_t body, bool pooled, const char *location)
{
    h2o_req_t *req = r->req;
    status = tag(r, status, body);
    /* The key is free again before the client can see the answer and
     * retry: a retry then finds the kept answer, never a 409. */
    if (r->idem.held) api_inflight_give(r->app.id, r->idem.key);
    r->idem.held = false;
    if (req != NULL && status >= 400 && body.len > 0) {
        h2o_iovec_t with =
            api_error_with_request_id(&req->pool, body, h2o_iovec_init(r->reqid, r->reqid_len));
        pooled = pooled || with.base != body.base;
        body = with;
    }
    count(r, status);
    /* Logged first: h2o may dispose of req while sending. */
    if (r->t->shared->log_requests) log_reply(r, status, body);
    if (req != NULL) api_respond(req, status, body, pooled, location);
    req_end(r);
}

void api_req_forget(api_req_t *r)
{
    req_end(r);
}

void api_req_abandon(api_req_t *r)
{
    assert(r->req == NULL);
    reply(r, API_STATUS_CLIENT_GONE, h2o_iovec_init(NULL, 0), false, NULL);
}

void api_reply_body(api_req_t *r, int status, jw_t *body, const char *location)
{
    /* A body that could not be written whole is not sent half. */
    if (body->oom)
        status = api_render_error(body, 503, "Service Unavailable", "The server is out of memory.");
    reply(r, status, h2o_iovec_init(body->buf, body->len), false, location);
}

void api_reply(api_req_t *r, int status)
{
    api_reply_body(r, status, &r->out, NULL);
}

void api_reply_pooled(api_req_t *r, int status, char *body, size_t len)
{
    reply(r, status, h2o_iovec_init(body, len), true, NULL);
}

h2o_req_t *api_reply_streamed(api_req_t *r)
{
    h2o_req_t *req = r->req;
    count(r, 200);
    if (r->t->shared->log_requests) log_reply(r, 200, h2o_iovec_init(NULL, 0));
    req_end(r);
    return req;
}

void api_reply_error(api_req_t *r, int status, const char *title, const char *detail)
{
    api_reply(r, api_render_error(&r->out, status, title, detail));
}

void api_reply_errors(api_req_t *r, const verrs_t *errs)
{
    api_reply(r, api_render_errors(&r->out, errs));
}

void api_reply_store_error(api_req_t *r, store_rc_t rc, const char *not_found_title,
                           const char *not_found_detail)
{
    if (rc == STORE_TOO_SLOW) api_header_int(r, "retry-after", API_READ_RETRY_AFTER_S);
    api_reply(r, api_render_store_error(&r->out, rc, not_found_title, not_found_detail));
}

void api_header_str(api_req_t *r, const char *name, const char *value)
{
    size_t n = strlen(value);
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 0, NULL,
                          h2o_strdup(&r->req->pool, value, n).base, n);
}

size_t api_header_list(api_req_t *r, const char *name, char *buf, size_t cap)
{
    size_t len = 0;
    const h2o_headers_t *hs = &r->req->headers;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(hs, name, strlen(name), i)) >= 0;) {
        h2o_iovec_t v = hs->entries[i].value;
        size_t sep = len > 0 ? 2 : 0;
        if (len + sep + v.len >= cap) return cap;
        memcpy(buf + len, ", ", sep);
        memcpy(buf + len + sep, v.base, v.len);
        len += sep + v.len;
    }
    buf[len] = '\0';
    return len;
}

void api_header_int(api_req_t *r, const char *name, int value)
{
    char *v = h2o_mem_alloc_pool(&r->req->pool, 16);
    int n = snprintf(v, 16, "%d", value);
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 0, NULL, v, (size_t)n);
}

/* --- the client ------------------------------------------------------------------ */

/* At most this many X-Forwarded-For headers are read (the last ones). */
#define XFF_HEADERS_MAX 8

void api_client_of(h2o_req_t *req, proxy_addr_t *out)
{
    proxy_addr_t peer;
    memset(&peer, 0, sizeof peer);
    struct sockaddr_storage ss;
    if (req->conn != NULL && req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) > 0)
        proxy_addr_of((struct sockaddr *)&ss, &peer);
    h2o_iovec_t xff[XFF_HEADERS_MAX];
    size_t n = 0;
    for (ssize_t i = -1;
         (i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-for"), i)) >= 0;) {
        if (n == XFF_HEADERS_MAX) memmove(xff, xff + 1, --n * sizeof *xff);
        xff[n++] = req->headers.entries[i].value;
    }
    proxy_client(&peer, xff, n, out);
}

const proxy_addr_t *api_client(api_req_t *r)
{
    if (r->client_known) return &r->client;
    api_client_of(r->req, &r->client);
    r->client_known = true;
    return &r->client;
}

/* --- the body ------------------------------------------------------------------ */

void api_trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* True when a Content-Type names JSON in UTF-8: application/json or
 * application/vnd.api+json, any case, with no charset or charset=utf-8. */
static bool is_json_type(h2o_iovec_t ct)
{
    const char *p = ct.base, *end = ct.base + ct.len;
    const char *semi = memchr(p, ';', ct.len);
    const char *tend = semi ? semi : end;
    size_t n = (size_t)(tend - p);
    api_trim_ows(&p, &n);
    if (!(h2o_lcstris(p, n, H2O_STRLIT("application/json")) ||
          h2o_lcstris(p, n, H2O_STRLIT("application/vnd.api+json"))))
        return false;
    while (semi != NULL) {
        p = semi + 1;
        semi = memchr(p, ';', (size_t)(end - p));
        tend = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(tend - p));
        if (eq == NULL) continue;
        const char *k = p, *v = eq + 1;
        size_t kn = (size_t)(eq - p), vn = (size_t)(tend - v);
        api_trim_ows(&k, &kn);
        api_trim_ows(&v, &vn);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
            v++;
            vn -= 2;
        }
        if (h2o_lcstris(k, kn, H2O_STRLIT("charset")) && !h2o_lcstris(v, vn, H2O_STRLIT("utf-8")))
            return false;
    }
    return true;
}

/* Answers the 400 of a body jansson could not parse. */
/* Renders the 400 of a body that is not JSON into r->out; its status. */
static int render_bad_json(api_req_t *r, const json_error_t *jerr)
{
    /* jansson may quote raw input bytes in its message: keep only
     * printable ASCII so the error body stays valid UTF-8. */
    char text[sizeof jerr->text];
    size_t i;
    for (i = 0; jerr->text[i] != '\0' && i < sizeof text - 1; i++) {
        unsigned char c = (unsigned char)jerr->text[i];
        text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    text[i] = '\0';
    char detail[256];
    if (r->req->entity.len == 0)
        snprintf(detail, sizeof detail, "The request body is empty; it must be a JSON object.");
    else
        snprintf(detail, sizeof detail, "The request body is not valid JSON: %s (line %d, column %d).", text,
                 jerr->line, jerr->column);
    return api_render_error(&r->out, 400, "Bad Request", detail);
}

bool api_body_coded(const api_req_t *r)
{
    const h2o_headers_t *hs = &r->req->headers;
    for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_CONTENT_ENCODING, i)) >= 0;) {
        h2o_iovec_t v = hs->entries[i].value;
        if (v.len > 0 && !h2o_lcstris(v.base, v.len, H2O_STRLIT("identity"))) return true;
    }
    return false;
}

int api_render_too_large(jw_t *w, size_t max)
{
    char detail[96];
    if (max % MIB == 0)
        snprintf(detail, sizeof detail, "The request body is larger than %zu MiB.", max / MIB);
    else if (max % 1024 == 0)
        snprintf(detail, sizeof detail, "The request body is larger than %zu KiB.", max / 1024);
    else
        snprintf(detail, sizeof detail, "The request body is larger than %zu bytes.", max);
    return api_render_error(w, 413, "Payload Too Large", detail);
}

json_t *api_body_or_render(api_req_t *r, int *status)
{
    h2o_req_t *req = r->req;
    size_t max = r->route->body_max;
    assert(max > 0); /* the route reads a body */
    ssize_t cti = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t ct = cti < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[cti].value;
    if ((ct.base != NULL && !is_json_type(ct)) || api_body_coded(r)) {
        *status = api_render_error(&r->out, 415, "Unsupported Media Type",
                                   "Send the body as application/json (UTF-8), or application/vnd.api+json, "
                                   "without a Content-Encoding.");
        return NULL;
    }
    if (req->entity.len > max) {
        *status = api_render_too_large(&r->out, max);
        return NULL;
    }
    json_error_t jerr;
    const char *body = req->entity.base ? req->entity.base : "";
    /* Parsed on the loop, every request of the thread waiting: 1 MiB of
     * "[1,1,...]" took 0.3 s. Its app pays for that time as for a read's,
     * where one app's such bodies on two connections (7 a second, far
     * under the rate limit) held both threads of a server (review rv86). */
    int64_t t0 = api_loop_begin();
    json_t *root = jsonlex_loadb(body, req->entity.len, JSONLEX_BODY_FLAGS, &jerr);
    api_loop_charge(r->app.id, r->now, t0);
    if (root == NULL) *status = render_bad_json(r, &jerr);
    return root;
}

/* --- the path and the query string -------------------------------------------- */

static bool declared(const api_route_t *route, const char *name)
{
    for (const char *const *q = route->query; q != NULL && *q != NULL; q++)
        if (strcmp(*q, name) == 0) return true;
    return false;
}

h2o_iovec_t api_query(const api_req_t *r, const char *name)
{
    assert(declared(r->route, name));                      /* the route table lists what is read */
    if (r->query != NULL) return api_query_value(r, name); /* read and decoded (query.h) */
    h2o_iovec_t found = h2o_iovec_init(NULL, 0);
    if (r->query_at == SIZE_MAX) return found;
    const char *p = r->path.base + r->query_at + 1, *end = r->path.base + r->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        const char *kend = eq ? eq : pend;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0)
            found = eq ? h2o_iovec_init(eq + 1, (size_t)(pend - eq - 1)) : h2o_iovec_init("", 0);
        p = pend + 1;
    }
    return found;
}

/* Parses a number of pages or records: decimal digits only, any number of
 * them. A value beyond INT64_MAX reads as INT64_MAX: as a page it is past
 * the end of any list just the same, and as records it is out of range
 * just the same. Returns false when the text is not digits. */
static bool parse_count(h2o_iovec_t v, int64_t *out)
{
    if (v.len == 0) return false;
    int64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9') return false;
        int d = v.base[i] - '0';
        x = x > (INT64_MAX - d) / 10 ? INT64_MAX : x * 10 + d;
    }
    *out = x;
    return true;
}

bool api_paging_parse(api_req_t *r, int default_records, int64_t *page, int *records, verrs_t *errs)
{
    int before = errs->n;
    int64_t p = 1, n = default_records;
    h2o_iovec_t v = api_query(r, "page");
    if (v.base != NULL && (!parse_count(v, &p) || p < 1))
        verrs_add(errs, "validation_error", NULL, "page", "page must be an integer of at least 1");
    v = api_query(r, "records");
    if (v.base != NULL && (!parse_count(v, &n) || n < 1 || n > 100))
        verrs_add(errs, "validation_error", NULL, "records", "records must be an integer from 1 to 100");
    if (errs->n > before) return false;
    *page = p;
    *records = (int)n;
    return true;
}

bool api_paging_or_reply(api_req_t *r, int default_records, int64_t *page, int *records)
{
    verrs_t errs = {0};
    if (api_paging_parse(r, default_records, page, records, &errs)) return true;
    api_reply_errors(r, &errs);
    return false;
}

bool api_uuid_or_reply(api_req_t *r, int param, char out[UUID_BUFSZ], const char *title, const char *detail)
{
    assert(param >= 0 && param < API_ROUTE_PARAMS);
    if (uuid_parse(r->params[param].base, r->params[param].len, out)) return true;
    api_reply_error(r, 404, title, detail);
    return false;
}
