/*
 * respond.c: see respond.h. Error documents have the contract's form:
 * {"errors":[{"status":"404","code":"not_found","title":...,"detail":...}]}
 */
#include "api/respond.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/etag.h"
#include "http/server.h"

/* Every status the API answers with: its reason phrase, and the code its
 * error documents carry. The last row stands for any other status. */
static const struct status_row {
    int status;
    const char *reason, *code;
} STATUSES[] = {
    {200, "OK", NULL},
    {201, "Created", NULL},
    {204, "No Content", NULL},
    {304, "Not Modified", NULL},
    {400, "Bad Request", "bad_request"},
    {401, "Unauthorized", "unauthorized"},
    {403, "Forbidden", "forbidden"},
    {404, "Not Found", "not_found"},
    {405, "Method Not Allowed", "method_not_allowed"},
    {409, "Conflict", "idempotency_conflict"},
    {412, "Precondition Failed", "precondition_failed"},
    {413, "Payload Too Large", "payload_too_large"},
    {415, "Unsupported Media Type", "unsupported_media_type"},
    /* The contract's codes are fixed (contract-notes.md): a client's
     * mistake in the head, as a 400's. */
    {417, "Expectation Failed", "bad_request"},
    {422, "Unprocessable Entity", "validation_error"},
    {429, "Too Many Requests", "rate_limited"},
    {503, "Service Unavailable", "service_unavailable"},
    {500, "Internal Server Error", "internal_error"},
};
#define NSTATUSES (sizeof STATUSES / sizeof STATUSES[0])

static const struct status_row *status_row(int status)
{
    for (size_t i = 0; i < NSTATUSES - 1; i++)
        if (STATUSES[i].status == status) return &STATUSES[i];
    return &STATUSES[NSTATUSES - 1];
}

const char *api_reason(int status)
{
    return status_row(status)->reason;
}

const char *api_reason_or(int status, const char *other)
{
    const struct status_row *row = status_row(status);
    return row->status == status ? row->reason : other;
}

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, len);
}

/* An answer to a request that carries credentials holds one app's data:
 * no cache may keep it (browsers' disk caches included), and a list's
 * JSON and CSV forms are never mixed up. Routes that choose their own
 * caching (the board's files, the OpenAPI document, a webhook's secret)
 * have set Cache-Control already. */
static void add_private(h2o_req_t *req)
{
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) >= 0) return;
    if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) < 0 &&
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("appid"), -1) < 0 &&
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1) < 0)
        return;
    add_header(req, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("private, no-store"));
}

/* The request whose answer is being kept rather than sent (see
 * api_respond_capture), and that answer's body. Per thread: a request is
 * answered on its own thread. */
static _Thread_local h2o_req_t *capturing;
static _Thread_local h2o_iovec_t captured;

void api_respond_capture(h2o_req_t *req)
{
    capturing = req;
    captured = h2o_iovec_init(NULL, 0);
}

h2o_iovec_t api_respond_captured(void)
{
    capturing = NULL;
    return captured;
}

void api_respond(h2o_req_t *req, int status, h2o_iovec_t body, bool pooled, const char *location)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = api_reason(status);
    if (status == 201 && location != NULL) {
        size_t n = strlen(location);
        add_header(req, H2O_TOKEN_LOCATION, h2o_strdup(&req->pool, location, n).base, n);
    }
    if (status == 401) add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer realm=\"crmd\""));
    /* One Retry-After: 1 unless the answer named its own (a read stopped at --read-time). */
    if ((status == 503 || status == 409) &&
        h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("retry-after"), -1) < 0)
        add_header(req, H2O_TOKEN_RETRY_AFTER, H2O_STRLIT("1"));
    add_private(req);
    if (status == 204 || status == 304) {
        body = h2o_iovec_init(NULL, 0);
    } else {
        /* The board's files name their own type (board.c); all else is JSON. */
        if (h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1) < 0)
            add_header(req, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"));
        /* h2o 2.2 drops keep-alive after any status but 200 whose length
         * it does not know: always say it. */
        req->res.content_length = body.len;
        if (req == capturing) {
            captured = pooled ? body : h2o_strdup(&req->pool, body.base, body.len);
            return;
        }
        /* The memory guard may refuse a large answer (503) before it is
         * copied into the request's pool. */
        if (http_response_admit(req, body.len) != 0) return;
        if (!pooled) body = h2o_strdup(&req->pool, body.base, body.len);
    }
    h2o_start_response(req, &generator);
    if (body.len == 0 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

bool api_list_next(const char **p, const char *end, h2o_iovec_t *item)
{
    while (*p < end && (**p == ' ' || **p == ',' || **p == '\t'))
        (*p)++;
    if (*p == end) return false;
    const char *q = *p;
    while (q < end && *q != ',')
        q++;
    const char *e = q;
    while (e > *p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *item = h2o_iovec_init(*p, (size_t)(e - *p));
    *p = q;
    return true;
}

/* Whether an If-None-Match value lists etag (or is "*"). */
bool api_if_none_match(h2o_req_t *req, const char *etag)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i < 0) return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    return v.len <= API_ETAG_LIST_MAX && api_etag_match(v.base, v.len, etag, true);
}

bool api_respond_stream(h2o_req_t *req, h2o_generator_t *gen, const char *type, const char *disposition,
                        h2o_iovec_t first, bool final)
{
    req->res.status = 200;
    req->res.reason = api_reason(200);
    add_header(req, H2O_TOKEN_CONTENT_TYPE, type, strlen(type));
    add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, disposition, strlen(disposition));
    add_private(req);
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!head && http_response_admit(req, first.len) != 0) return false;
    h2o_start_response(req, gen);
    if (head)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &first, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
    return !head && !final;
}

void api_respond_stream_more(h2o_req_t *req, h2o_iovec_t chunk, bool final)
{
    h2o_send(req, &chunk, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

void api_respond_stream_fail(h2o_req_t *req)
{
    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static void open_error(jw_t *w, int status, const char *code, const char *title, const char *detail)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    jw_lit(w, "{\"status\":");
    jw_cstr(w, st);
    jw_lit(w, ",\"code\":");
    jw_cstr(w, code);
    jw_lit(w, ",\"title\":");
    jw_cstr(w, title);
    jw_lit(w, ",\"detail\":");
    jw_cstr(w, detail);
}

int api_render_error(jw_t *w, int status, const char *title, const char *detail)
{
    jw_reset(w);
    jw_lit(w, "{\"errors\":[");
    open_error(w, status, status_row(status)->code, title, detail);
    jw_lit(w, "}]}");
    return status;
}

int api_render_header_error(jw_t *w, int status, const char *code, const char *title, const char *header,
                            const char *detail)
{
    jw_reset(w);
    jw_lit(w, "{\"errors\":[");
    open_error(w, status, code, title, detail);
    jw_lit(w, ",\"source\":{\"header\":");
    jw_cstr(w, header);
    jw_lit(w, "}}]}");
    return status;
}

int api_render_errors(jw_t *w, const verrs_t *errs)
{
    jw_reset(w);
    jw_lit(w, "{\"errors\":[");
    for (int i = 0; i < errs->n; i++) {
        const verr_t *e = &errs->e[i];
        bool unknown = strcmp(e->code, "unknown_attribute") == 0;
        bool param = strcmp(e->code, "unknown_parameter") == 0;
        if (i > 0) jw_lit(w, ",");
        open_error(w, 422, e->code,
                   unknown ? "Unknown Attribute"
                   : param ? "Unknown Parameter"
                           : "Validation Error",
                   e->detail);
        /* A query problem names its parameter, a body problem its pointer
         * ("" is the whole body). */
        if (e->parameter[0] != '\0' || param) {
            jw_lit(w, ",\"source\":{\"parameter\":");
            jw_cstr(w, e->parameter);
        } else {
            jw_lit(w, ",\"source\":{\"pointer\":");
            jw_cstr(w, e->pointer);
        }
        jw_lit(w, "}}");
    }
    jw_lit(w, "]");
    if (errs->dropped > 0) {
        jw_lit(w, ",\"meta\":{\"omittedErrors\":");
        jw_int(w, errs->dropped);
        jw_lit(w, "}");
    }
    jw_lit(w, "}");
    return 422;
}

int api_render_store_error(jw_t *w, store_rc_t rc, const char *not_found_title, const char *not_found_detail)
{
    switch (rc) {
    case STORE_NOT_FOUND:
        return api_render_error(w, 404, not_found_title, not_found_detail);
    case STORE_UNAVAILABLE:
        return api_render_error(w, 503, "Service Unavailable",
                                "The database cannot take this request right now; retry shortly.");
    case STORE_TOO_SLOW:
        /* 503, not 4xx: the same query may pass on an idle server; the
         * server stopped it to keep the others' requests going. The code
         * stays the contract's one for 503 (contract-notes.md lists every
         * code); the title tells it apart. */
        return api_render_error(w, 503, API_READ_TIMEOUT_TITLE,
                                "The read took longer than this server allows (--read-time) and was stopped; "
                                "narrow the query (more selective filters, a longer search term, a plainer "
                                "sort, a cursor instead of a deep page) or retry after Retry-After.");
    default:
        return api_render_error(w, 500, "Internal Server Error",
                                "The server could not complete the request.");
    }
}

h2o_iovec_t api_error_with_request_id(h2o_mem_pool_t *pool, h2o_iovec_t body, h2o_iovec_t id)
{
    static const char META[] = "],\"meta\":{";
    const size_t mlen = sizeof META - 1;
    if (body.len < 2 || body.base[body.len - 1] != '}' || id.len == 0) return body;
    /* Where the id goes: after the meta object's brace, or as a new meta
     * object before the document's last brace. A '"' is always escaped
     * inside a JSON string, so META cannot occur within one. */
    size_t at = body.len - 1;
    const char *before = "", *after = "";
    if (body.base[body.len - 2] == ']') {
        before = ",\"meta\":{\"requestId\":\"";
        after = "\"}";
    } else {
        size_t i = body.len - 2;
        while (i > 0 && !(i + mlen <= body.len && memcmp(body.base + i, META, mlen) == 0))
            i--;
        if (i == 0) return body;
        at = i + mlen;
        before = "\"requestId\":\"";
        after = body.base[at] == '}' ? "\"" : "\",";
    }
    size_t blen = strlen(before), alen = strlen(after);
    size_t len = body.len + blen + id.len + alen;
    char *out = h2o_mem_alloc_pool(pool, len);
    memcpy(out, body.base, at);
    memcpy(out + at, before, blen);
    memcpy(out + at + blen, id.base, id.len);
    memcpy(out + at + blen + id.len, after, alen);
    memcpy(out + at + blen + id.len + alen, body.base + at, body.len - at);
    return h2o_iovec_init(out, len);
}

void api_error_code(h2o_iovec_t body, char *out, size_t size)
{
    static const char KEY[] = "\"code\":\"";
    out[0] = '\0';
    const char *p = body.len > 0 ? memmem(body.base, body.len, KEY, sizeof KEY - 1) : NULL;
    if (p == NULL) return;
    p += sizeof KEY - 1;
    const char *end = body.base + body.len;
    size_t n = 0;
    while (p + n < end && p[n] != '"' && p[n] != '\\' && n < size - 1)
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
}
