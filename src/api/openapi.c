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

#include "api/api.h"
#include "api/handlers.h"
#include "api/request.h"
#include "api/respond.h"

/* gen/openapi_json.c */
extern const char API_OPENAPI_JSON[];
extern const size_t API_OPENAPI_JSON_LEN;
extern const char API_OPENAPI_ETAG[];

void openapi_get(api_req_t *r)
{
    h2o_req_t *req = r->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, API_OPENAPI_ETAG,
                   strlen(API_OPENAPI_ETAG));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("public, max-age=300"));
    if (api_if_none_match(req, API_OPENAPI_ETAG)) {
        api_reply_pooled(r, 304, (char *)"", 0);
        return;
    }
    /* Static: sent as it is, never copied. */
    api_reply_pooled(r, 200, (char *)API_OPENAPI_JSON, API_OPENAPI_JSON_LEN);
}

size_t api_static_bodies(h2o_iovec_t *out, size_t max)
{
    size_t n = 0;
    if (n < max) out[n++] = h2o_iovec_init(API_OPENAPI_JSON, API_OPENAPI_JSON_LEN);
    return n + board_static_bodies(out + n, max - n);
}
