/*
 * idem.c: see idem.h.
 */
#include "api/idem.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/etag.h"
#include "api/inflight.h"
#include "api/request.h"
#include "api/respond.h"

static const char HEADER[] = "Idempotency-Key";

/* The request's digest in hex: its method, target (path and query) and
 * body bytes, each length-prefixed so that no two requests share one. */
static bool digest(api_req_t *r, char out[STORE_IDEM_HASH_HEX + 1])
{
    h2o_iovec_t parts[] = {r->req->method, r->path, r->req->entity};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    /* The thread's own context (etag.c), not one made per request. */
    EVP_MD_CTX *ctx = api_sha256_begin();
    bool ok = ctx != NULL;
    for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++) {
        uint64_t n = parts[i].len;
        ok = EVP_DigestUpdate(ctx, &n, sizeof n) == 1 &&
             (n == 0 || EVP_DigestUpdate(ctx, parts[i].base, parts[i].len) == 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len * 2 == STORE_IDEM_HASH_HEX;
    if (ok) {
        api_hex(md, len, out);
        out[2 * len] = '\0';
    }
    return ok;
}

/* The key: exactly one header of 1..255 printable ASCII characters. */
static bool key_of(api_req_t *r, ssize_t at)
{
    const h2o_headers_t *hs = &r->req->headers;
    if (h2o_find_header_by_str(hs, H2O_STRLIT("idempotency-key"), at) >= 0) return false;
    h2o_iovec_t v = hs->entries[at].value;
    if (v.len == 0 || v.len >= sizeof r->idem.key) return false;
    for (size_t i = 0; i < v.len; i++)
        if (v.base[i] < 0x20 || v.base[i] > 0x7e) return false;
    memcpy(r->idem.key, v.base, v.len);
    r->idem.key[v.len] = '\0';
    return true;
}

static void reply_header_error(api_req_t *r, int status, const char *code, const char *title,
                               const char *detail)
{
    api_reply(r, api_render_header_error(&r->out, status, code, title, HEADER, detail));
}

static void on_kept(void *ctx, const store_idem_t *kept)
{
    api_req_t *r = ctx;
    r->idem.found = true;
    r->idem.same = strcmp(kept->hash, r->idem.hash) == 0;
    r->idem.status = kept->status;
    snprintf(r->idem.location, sizeof r->idem.location, "%s", kept->location);
    jw_reset(&r->out);
    api_idem_render_kept(&r->out, kept->status, kept->body);
}

static store_rc_t start_lookup(api_req_t *r, const store_async_t *async)
{
    return store_idem_get(r->t->store, r->app.id, r->idem.key, r->now - API_IDEM_KEEP_MS, on_kept, r, async);
}

static void looked_up(api_req_t *r, store_rc_t rc)
{
    if (rc == STORE_NOT_FOUND) {
        r->idem.next(r);
    } else if (rc != STORE_OK) {
        api_reply_store_error(r, rc, "", "");
    } else if (!r->idem.same) {
        reply_header_error(
            r, 422, "idempotency_key_reused", "Idempotency Key Reused",
            "This Idempotency-Key was used with another request (method, path, query or body).");
    } else if (r->idem.status == 0) {
        api_reply(r, api_idem_render_in_flight(&r->out));
    } else {
        api_header_str(r, "idempotent-replayed", "true");
        api_reply_body(r, r->idem.status, &r->out, r->idem.location[0] != '\0' ? r->idem.location : NULL);
    }
}

int api_idem_render_in_flight(jw_t *out)
{
    return api_render_header_error(
        out, 409, "idempotency_conflict", "Idempotency Conflict", HEADER,
        "A request with this Idempotency-Key is still in progress; retry shortly.");
}

void api_idem_then(api_req_t *r, api_step_fn next)
{
    ssize_t at = h2o_find_header_by_str(&r->req->headers, H2O_STRLIT("idempotency-key"), -1);
    if (at < 0) {
        next(r);
        return;
    }
    if (!key_of(r, at)) {
        reply_header_error(r, 422, "validation_error", "Validation Error",
                           "Idempotency-Key must be one header of 1 to 255 printable ASCII characters.");
        return;
    }
    if (!digest(r, r->idem.hash)) {
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return;
    }
    if (!api_inflight_take(r->app.id, r->idem.key)) {
        api_reply(r, api_idem_render_in_flight(&r->out));
        return;
    }
    r->idem.held = true;
    r->idem.next = next;
    api_req_read(r, start_lookup, looked_up);
}

_Static_assert(API_IDEM_KEEP_BYTES == 1024 * 1024 && API_IDEM_KEEP_REFUSED_BYTES == 8 * 1024,
               "the not-kept answers name the limits");

void api_idem_render_not_kept(jw_t *out, int status, enum api_idem_not_kept why)
{
    static const char *const REFUSED[] = {
        [API_IDEM_TOO_LARGE] = "The first answer to this request was larger than 8 KiB, too large to keep; "
                               "it changed nothing. Send the request again under a new Idempotency-Key "
                               "to see every problem.",
        [API_IDEM_PURGED] = "The first answer to this request named a lead since purged, so it is no longer "
                            "kept; it changed nothing. Send the request again under a new Idempotency-Key "
                            "to see every problem.",
    };
    /* A client that sees a 2xx must not run the request again under a new key. */
    static const char *const DONE[] = {
        [API_IDEM_TOO_LARGE] =
            "{\"meta\":{\"replayed\":true,\"answerKept\":false,\"note\":\"The first answer "
            "to this request was larger than 1 MiB, too large to keep; the request was "
            "done and was not run again. Read its result back with GET.\"}}",
        [API_IDEM_PURGED] =
            "{\"meta\":{\"replayed\":true,\"answerKept\":false,\"note\":\"The first answer to "
            "this request carried a lead since purged, so it is no longer kept; the request "
            "was done and was not run again.\"}}",
    };
    assert(why == API_IDEM_TOO_LARGE || why == API_IDEM_PURGED);
    if (status < 300)
        jw_raw(out, DONE[why], strlen(DONE[why]));
    else if (status == 422)
        api_render_header_error(out, 422, "validation_error", "Validation Error", HEADER, REFUSED[why]);
    else
        api_render_error(out, status, api_reason(status), REFUSED[why]);
}

void api_idem_render_kept(jw_t *out, int status, text_ref_t body)
{
    /* Every kept answer has a body but a 204's (and a claim's, status 0,
     * which is never replayed); an empty one was blanked by a purge. */
    if (body.len == 0 && status >= 200 && status != 204)
        api_idem_render_not_kept(out, status, API_IDEM_PURGED);
    else
        jw_raw(out, body.ptr != NULL ? body.ptr : "", body.len);
}
