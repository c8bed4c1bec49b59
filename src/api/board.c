/*
 * board.c: GET / and GET /board/{file}: the pipeline board, a web app
 * (web/, docs/board.md) compiled into the binary (board_files.h). No
 * credentials: the files hold none; the app signs in to the API itself.
 * The query string is ignored.
 *
 * Every answer carries a strict Content-Security-Policy (scripts, styles and
 * images from this origin only, no inline script, no framing), and a strong
 * ETag; If-None-Match listing it gets a 304. The page (/) is revalidated on
 * every load; the other files carry their content's hash in their name and
 * are kept for a year. A client that accepts gzip gets the compressed form.
 */
#include <string.h>
#include <strings.h>

#include "api/board_files.h"
#include "api/handlers.h"
#include "api/request.h"
#include "api/respond.h"

/* 'self' alone: the app's script, style and icon come from this origin and
 * it talks only to this origin's API. */
#define BOARD_CSP                                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "          \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Whether an Accept-Encoding value v accepts gzip: a "gzip" or "*" member
 * whose q is not zero ("q=0", "q=0.", "q=0.000"). */
static bool accepts_gzip(h2o_iovec_t v)
{
    const char *p = v.base;
    h2o_iovec_t it;
    while (api_list_next(&p, v.base + v.len, &it)) {
        size_t n = 0;
        while (n < it.len && it.base[n] != ';' && it.base[n] != ' ' && it.base[n] != '\t')
            n++;
        if (!(n == 4 && strncasecmp(it.base, "gzip", 4) == 0) && !(n == 1 && it.base[0] == '*')) continue;
        const char *q = memmem(it.base + n, it.len - n, "q=", 2), *end = it.base + it.len;
        if (q == NULL || q + 2 == end || q[2] != '0') return true;
        for (q += 3; q < end && (*q == '.' || *q == '0'); q++)
            ;
        return q < end && *q >= '1' && *q <= '9';
    }
    return false;
}

static void header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

/* A header h2o has no token for. */
static void header_str(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, strlen(value));
}

static void reply_file(api_req_t *r, const board_file_t *f, bool immutable)
{
    h2o_req_t *req = r->req;
    ssize_t ae = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    bool gz = f->gz != NULL && ae >= 0 && accepts_gzip(req->headers.entries[ae].value);
    const char *etag = gz ? f->gz_etag : f->etag;
    header(req, H2O_TOKEN_ETAG, etag);
    header(req, H2O_TOKEN_CACHE_CONTROL, immutable ? "public, max-age=31536000, immutable" : "no-cache");
    header_str(req, "content-security-policy", BOARD_CSP);
    header_str(req, "x-content-type-options", "nosniff");
    header_str(req, "x-frame-options", "DENY");
    header_str(req, "referrer-policy", "no-referrer");
    if (f->gz != NULL) header(req, H2O_TOKEN_VARY, "Accept-Encoding");
    if (api_if_none_match(req, etag)) {
        api_reply_pooled(r, 304, (char *)"", 0);
        return;
    }
    header(req, H2O_TOKEN_CONTENT_TYPE, f->type);
    if (gz) header(req, H2O_TOKEN_CONTENT_ENCODING, "gzip");
    /* Static: sent as it is, never copied. */
    api_reply_pooled(r, 200, (char *)(gz ? f->gz : f->body), gz ? f->gz_len : f->len);
}

void board_index(api_req_t *r)
{
    reply_file(r, &BOARD_FILES[0], false);
}

void board_file(api_req_t *r)
{
    h2o_iovec_t name = r->params[0];
    for (size_t i = 1; i < BOARD_NFILES; i++) {
        const board_file_t *f = &BOARD_FILES[i];
        if (strlen(f->name) == name.len && memcmp(f->name, name.base, name.len) == 0) {
            reply_file(r, f, true);
            return;
        }
    }
    api_reply_error(r, 404, "Not Found", "No such file of the board.");
}

size_t board_static_bodies(h2o_iovec_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < BOARD_NFILES; i++) {
        if (n < max) out[n++] = h2o_iovec_init(BOARD_FILES[i].body, BOARD_FILES[i].len);
        if (n < max && BOARD_FILES[i].gz != NULL)
            out[n++] = h2o_iovec_init(BOARD_FILES[i].gz, BOARD_FILES[i].gz_len);
    }
    return n;
}
