/*
 * api.c: the request entry point, request helpers and the request log.
 */
#include "api/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/cache.h"
#include "api/ratelimit.h"
#include "model/jsonlex.h"
#include "model/timestamp.h"

static void on_logflush(h2o_timeout_entry_t *entry);

void *api_thread_init(int index, void *arg, h2o_context_t *ctx)
{
    const api_shared_t *shared = arg;
    api_thread_t *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->shared = shared;
    t->index = index;
    char err[256];
    t->store = store_open(shared->db_url, err, sizeof err);
    if (t->store == NULL) {
        fprintf(stderr, "crmd: thread %d: %s\n", index, err);
        free(t);
        return NULL;
    }
    h2o_multithread_register_receiver(ctx->queue, &t->done, api_writes_done);
    t->ctx = ctx;
    t->logflush.cb = on_logflush;
    return t;
}

int api_thread_busy(void *state)
{
    return ((api_thread_t *)state)->writes_in_flight > 0;
}

void api_thread_fini(void *state)
{
    api_thread_t *t = state;
    api_log_flush(t);
    store_close(t->store);
    jw_free(&t->out);
    auth_thread_fini(t);
    free(t);
}

const char *api_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

void api_add_header(api_req_t *r, const h2o_token_t *token, const char *value, size_t len)
{
    h2o_add_header(&r->req->pool, &r->req->res.headers, token, NULL, value, len);
}

void api_send(api_req_t *r, int status)
{
    jw_t *w = &r->t->out;
    if (w->oom) {
        /* The body could not be written whole: say so rather than send half. */
        jw_reset(w);
        jw_lit(w, "{\"errors\":[{\"status\":\"503\",\"code\":\"service_unavailable\","
                  "\"title\":\"Service Unavailable\",\"detail\":\"The server is out of memory.\"}]}");
        status = 503;
    }
    r->req->res.status = status;
    r->req->res.reason = api_reason(status);
    api_add_header(r, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"));
    /* h2o_send_inline copies the body into the request's pool. It leaves
     * the length unset, and h2o 2.2 then drops keep-alive for any status
     * but 200: always say it. */
    r->req->res.content_length = w->len;
    h2o_send_inline(r->req, w->buf, w->len);
}

void api_send_pooled(api_req_t *r, int status, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    req->res.status = status;
    req->res.reason = api_reason(status);
    req->res.content_length = len;
    api_add_header(r, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    if (r->method == METHOD_HEAD)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void *pool_alloc(void *ctx, size_t n)
{
    return h2o_mem_alloc_pool(ctx, n);
}

bool api_cached(api_req_t *r, const struct cache_key *key, uint64_t *gen)
{
    if (!cache_enabled()) return false;
    *gen = cache_generation(key);
    size_t len = 0;
    char *body = cache_get(key, r->now, pool_alloc, &r->req->pool, &len);
    if (body == NULL) return false;
    api_send_pooled(r, 200, body, len);
    return true;
}

void api_send_empty(api_req_t *r, int status)
{
    r->req->res.status = status;
    r->req->res.reason = api_reason(status);
    h2o_send_inline(r->req, "", 0);
}

static void trim(const char **s, size_t *n)
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
    trim(&p, &n);
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
        trim(&k, &kn);
        trim(&v, &vn);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
            v++;
            vn -= 2;
        }
        if (h2o_lcstris(k, kn, H2O_STRLIT("charset")) && !h2o_lcstris(v, vn, H2O_STRLIT("utf-8")))
            return false;
    }
    return true;
}

json_t *api_read_body(api_req_t *r)
{
    h2o_req_t *req = r->req;
    ssize_t cti = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t ct = cti < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[cti].value;
    if (ct.base != NULL && !is_json_type(ct)) {
        api_error(r, 415, "Unsupported Media Type",
                  "Send the body as application/json (UTF-8), or application/vnd.api+json.");
        return NULL;
    }
    if (req->entity.len > API_MAX_BODY) {
        api_error(r, 413, "Payload Too Large", "The request body is larger than 1 MiB.");
        return NULL;
    }
    json_error_t jerr;
    const char *body = req->entity.base ? req->entity.base : "";
    json_t *root = jsonlex_loadb(body, req->entity.len,
                                 JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        /* jansson may quote raw input bytes in its message: keep only
         * printable ASCII so the error body stays valid UTF-8. */
        char text[sizeof jerr.text];
        size_t i;
        for (i = 0; jerr.text[i] != '\0' && i < sizeof text - 1; i++) {
            unsigned char c = (unsigned char)jerr.text[i];
            text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        text[i] = '\0';
        char detail[256];
        if (req->entity.len == 0)
            snprintf(detail, sizeof detail, "The request body is empty; it must be a JSON object.");
        else
            snprintf(detail, sizeof detail, "The request body is not valid JSON: %s (line %d, column %d).",
                     text, jerr.line, jerr.column);
        api_error(r, 400, "Bad Request", detail);
        return NULL;
    }
    return root;
}

/* Finds a query parameter; returns its raw value or base == NULL. The
 * last occurrence wins. */
static h2o_iovec_t query_param(h2o_req_t *req, const char *name)
{
    h2o_iovec_t found = h2o_iovec_init(NULL, 0);
    if (req->query_at == SIZE_MAX) return found;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
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

/* Parses a decimal integer of at most 18 digits (optionally negative).
 * Returns false when the text is not one. */
static bool parse_int(h2o_iovec_t v, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (v.len > 0 && v.base[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == v.len || v.len - i > 18) return false;
    int64_t x = 0;
    for (; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9') return false;
        x = x * 10 + (v.base[i] - '0');
    }
    *out = neg ? -x : x;
    return true;
}

bool api_read_paging(api_req_t *r, int default_records, int64_t *page, int *records)
{
    verrs_t errs = {0};
    int64_t p = 1, n = default_records;
    h2o_iovec_t v = query_param(r->req, "page");
    if (v.base != NULL && (!parse_int(v, &p) || p < 1))
        verrs_add(&errs, "validation_error", NULL, "page", "page must be an integer of at least 1");
    v = query_param(r->req, "records");
    if (v.base != NULL && (!parse_int(v, &n) || n < 1 || n > 100))
        verrs_add(&errs, "validation_error", NULL, "records", "records must be an integer from 1 to 100");
    if (errs.n > 0) {
        api_errors(r, &errs);
        return false;
    }
    *page = p;
    *records = (int)n;
    return true;
}

/* Writes out the thread's gathered log lines (whole lines only, so lines
 * from several threads never interleave). The token is never logged. */
void api_log_flush(api_thread_t *t)
{
    size_t off = 0;
    while (off < t->loglen) {
        ssize_t n = write(STDERR_FILENO, t->logbuf + off, t->loglen - off);
        if (n <= 0) break; /* a log that cannot be written must not stop serving */
        off += (size_t)n;
    }
    t->loglen = 0;
    if (h2o_timeout_is_linked(&t->logflush)) h2o_timeout_unlink(&t->logflush);
}

static void on_logflush(h2o_timeout_entry_t *entry)
{
    api_thread_t *t = H2O_STRUCT_FROM_MEMBER(api_thread_t, logflush, entry);
    api_log_flush(t);
}

void api_log(api_thread_t *t, h2o_req_t *req, const char *app_key, int64_t now, int64_t start_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t dur_us = ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - start_ns) / 1000;
    char when[TS_BUFSZ];
    ts_format(now, when);
    char path[256];
    size_t n = 0;
    for (size_t i = 0; i < req->path.len && n < sizeof path - 4; i++) {
        unsigned char c = (unsigned char)req->path.base[i];
        path[n++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (n < req->path.len) n += (size_t)snprintf(path + n, sizeof path - n, "...");
    path[n] = '\0';
    char method[16];
    size_t mn = req->method.len < sizeof method - 1 ? req->method.len : sizeof method - 1;
    for (size_t i = 0; i < mn; i++) {
        unsigned char c = (unsigned char)req->method.base[i];
        method[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    method[mn] = '\0';
    if (t->loglen > sizeof t->logbuf - 512) api_log_flush(t);
    int len = snprintf(t->logbuf + t->loglen, sizeof t->logbuf - t->loglen,
                       "%s %s %s %d %" PRId64 ".%03dms app=%s\n", when, method, path, req->res.status,
                       dur_us / 1000, (int)(dur_us % 1000), app_key[0] ? app_key : "-");
    if (len > 0)
        t->loglen +=
            (size_t)len < sizeof t->logbuf - t->loglen ? (size_t)len : sizeof t->logbuf - t->loglen - 1;
    if (t->loglen >= 8192)
        api_log_flush(t);
    else if (!h2o_timeout_is_linked(&t->logflush))
        h2o_timeout_link(t->ctx->loop, &t->ctx->hundred_ms_timeout, &t->logflush);
}

/* Adds a header whose name h2o has no token for, with a number value. */
static void add_number_header(api_req_t *r, const char *name, int value)
{
    char *v = h2o_mem_alloc_pool(&r->req->pool, 16);
    int n = snprintf(v, 16, "%d", value);
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 0, NULL, v, (size_t)n);
}

/* Applies the app's rate limit: false (429 sent) when it is over it. Every
 * limited response says where the app stands (RateLimit-* headers). */
static bool rate_limit(api_req_t *r)
{
    if (!ratelimit_enabled()) return true;
    ratelimit_info_t info;
    bool ok = ratelimit_take(r->app.id, r->now, &info);
    add_number_header(r, "ratelimit-limit", info.limit);
    add_number_header(r, "ratelimit-remaining", info.remaining);
    add_number_header(r, "ratelimit-reset", info.reset_s);
    if (!ok) {
        add_number_header(r, "retry-after", info.retry_after);
        api_error(r, 429, "Too Many Requests", "This app is over its request rate limit; retry later.");
    }
    return ok;
}

h2o_iovec_t api_error_body(h2o_req_t *req, void *state)
{
    api_thread_t *t = state;
    int status = req->res.status;
    const char *detail =
        status == 413 ? "The request body is larger than 1 MiB." : "The request could not be read as HTTP.";
    const char *title = req->res.reason != NULL ? req->res.reason : "Bad Request";
    api_render_error(&t->out, status, title, detail);
    if (t->shared->log_requests) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        api_log(t, req, "", ts_now_ms(), (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    }
    return h2o_strdup(&req->pool, t->out.buf, t->out.len);
}

void api_handle(h2o_req_t *req, void *state)
{
    api_thread_t *t = state;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    api_req_t r;
    memset(&r, 0, sizeof r);
    r.req = req;
    r.t = t;
    r.now = ts_now_ms();
    r.start_ns = start_ns;
    jw_reset(&t->out);

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    router_match(req->path.base, plen, &r.route);
    r.method = router_method(req->method.base, req->method.len);
    if (r.route.route == ROUTE_NONE) {
        api_error(&r, 404, "Not Found", "No such route.");
    } else if (!(router_allowed(r.route.route) & r.method)) {
        const char *allow = router_allow_header(r.route.route);
        api_add_header(&r, H2O_TOKEN_ALLOW, allow, strlen(allow));
        api_error(&r, 405, "Method Not Allowed", "This route does not support that method.");
    } else if (r.route.route == ROUTE_HEALTH) {
        jw_lit(&t->out, "{\"status\":\"ok\"}");
        api_send(&r, 200);
    } else if (auth_request(&r) && rate_limit(&r)) {
        if (r.route.route == ROUTE_LEADS || r.route.route == ROUTE_LEAD)
            leads_handle(&r);
        else
            follows_handle(&r);
    }
    /* A write queued for the writer is logged when it is answered. */
    if (t->shared->log_requests && !r.deferred) api_log(t, req, r.app.key, r.now, start_ns);
}
