/*
 * openapi.c: GET /openapi.json: the OpenAPI document (openapi/openapi.json)
 * exactly as it stands in the repository, compiled into the binary (the
 * Makefile turns it into build/.../gen/openapi_json.c, and fails the build
 * when it is not valid JSON), so the server always serves the document of
 * its own version. No credentials; the query string is ignored.
 *
 * Its ETag is the SHA-256 of the document, computed at build time, and a
 * client holding the same one gets a 304.
 */
#include <string.h>

#include "api/handlers.h"
#include "api/request.h"

/* gen/openapi_json.c */
extern const char API_OPENAPI_JSON[];
extern const size_t API_OPENAPI_JSON_LEN;
extern const char API_OPENAPI_ETAG[];

/* Whether an If-None-Match value lists etag (or is "*"). */
static bool matches(h2o_iovec_t v, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
            p++;
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        const char *e = q;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e - p == 1 && *p == '*') return true;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2; /* weak comparison, as If-None-Match wants */
        if ((size_t)(e - p) == n && memcmp(p, etag, n) == 0) return true;
        p = q;
    }
    return false;
}

void openapi_get(api_req_t *r)
{
    h2o_req_t *req = r->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, API_OPENAPI_ETAG,
                   strlen(API_OPENAPI_ETAG));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("public, max-age=300"));
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i >= 0 && matches(req->headers.entries[i].value, API_OPENAPI_ETAG)) {
        api_reply_pooled(r, 304, (char *)"", 0);
        return;
    }
    /* Static: sent as it is, never copied. */
    api_reply_pooled(r, 200, (char *)API_OPENAPI_JSON, API_OPENAPI_JSON_LEN);
}
