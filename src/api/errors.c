/*
 * errors.c: the JSON error responses of the contract:
 * {"errors":[{"status":"404","code":"not_found","title":...,"detail":...}]}
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

static const char *code_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 422:
        return "validation_error";
    case 429:
        return "rate_limited";
    case 503:
        return "service_unavailable";
    default:
        return "internal_error";
    }
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
    open_error(w, status, code_for(status), title, detail);
    jw_lit(w, "}]}");
    return status;
}

void api_error_headers(h2o_req_t *req, int status)
{
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"crmd\""));
    if (status == 503)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
}

void api_error(api_req_t *r, int status, const char *title, const char *detail)
{
    api_render_error(&r->t->out, status, title, detail);
    api_error_headers(r->req, status);
    api_send(r, status);
}

int api_render_errors(jw_t *w, const verrs_t *errs)
{
    jw_reset(w);
    jw_lit(w, "{\"errors\":[");
    for (int i = 0; i < errs->n; i++) {
        const verr_t *e = &errs->e[i];
        bool unknown = strcmp(e->code, "unknown_attribute") == 0;
        if (i > 0) jw_lit(w, ",");
        open_error(w, 422, e->code, unknown ? "Unknown Attribute" : "Validation Error", e->detail);
        /* A query problem names its parameter, a body problem its pointer
         * ("" is the whole body). */
        if (e->parameter[0] != '\0') {
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

void api_errors(api_req_t *r, const verrs_t *errs)
{
    api_send(r, api_render_errors(&r->t->out, errs));
}

int api_render_store_error(jw_t *w, int rc, const char *not_found_title, const char *not_found_detail)
{
    switch (rc) {
    case STORE_NOT_FOUND:
        return api_render_error(w, 404, not_found_title, not_found_detail);
    case STORE_UNAVAILABLE:
        return api_render_error(w, 503, "Service Unavailable",
                                "The database cannot take this request right now; retry shortly.");
    default:
        return api_render_error(w, 500, "Internal Server Error",
                                "The server could not complete the request.");
    }
}

void api_store_error(api_req_t *r, int rc, const char *not_found_title, const char *not_found_detail)
{
    int status = api_render_store_error(&r->t->out, rc, not_found_title, not_found_detail);
    api_error_headers(r->req, status);
    api_send(r, status);
}
