/*
 * auth.c: who is calling. Every /leads request carries a bearer JWT and the
 * app key (AppId, or its synonym X-Api-Key). The token must verify (RS256,
 * signature, exp), and name the same app as the key: a valid token of one
 * app used with another app's key is a 403, anything else wrong a 401.
 *
 * Verifying RS256 costs tens of microseconds, so each thread keeps the
 * tokens it verified, until they expire. Apps are cached for at most a
 * second, so disabling one takes effect within a second everywhere.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define APP_CACHE_MS 1000
/* verify_token's own result beyond the jwt_rc values. */
#define AUTH_REVOKED 100
#define TOKEN_CACHE_MAX_LEN 4096

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static h2o_iovec_t header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* Revocations reach every thread within this long. */
#define REVOKED_POLL_MS 1000

static void add_revoked(void *ctx, int64_t seq, const char *jti)
{
    api_thread_t *t = ctx;
    t->revoked_seq = seq;
    if (t->revoked_n == t->revoked_cap) {
        size_t cap = t->revoked_cap ? t->revoked_cap * 2 : 16;
        char **p = realloc(t->revoked, cap * sizeof *p);
        if (p == NULL) return;
        t->revoked = p;
        t->revoked_cap = cap;
    }
    char *copy = strdup(jti);
    if (copy != NULL) t->revoked[t->revoked_n++] = copy;
}

/* Picks up new revocations; any new one empties the token cache, so a
 * revoked token is verified (and refused) again. */
static void poll_revoked(api_thread_t *t, int64_t now)
{
    if (now - t->revoked_poll_ms < REVOKED_POLL_MS) return;
    t->revoked_poll_ms = now;
    size_t before = t->revoked_n;
    if (store_revoked_since(t->store, t->revoked_seq, add_revoked, t, NULL) == STORE_OK &&
        t->revoked_n != before) {
        for (int i = 0; i < AUTH_TOKEN_CACHE; i++) {
            free(t->tokens[i].token);
            t->tokens[i].token = NULL;
        }
    }
}

static bool is_revoked(const api_thread_t *t, const char *jti)
{
    if (jti[0] == '\0') return false;
    for (size_t i = 0; i < t->revoked_n; i++)
        if (strcmp(t->revoked[i], jti) == 0) return true;
    return false;
}

/* Verifies a token, through the thread's cache. */
static int verify_token(api_req_t *r, const char *tok, size_t len, char app[JWT_CLAIM_MAX])
{
    api_thread_t *t = r->t;
    int64_t now_s = r->now / 1000;
    /* The tail of a JWT is its signature: hashing it alone is as good as
     * hashing all of it, and a hit still compares the whole token. */
    size_t tail = len > 64 ? 64 : len;
    uint64_t h = fnv1a(tok + len - tail, tail) ^ len;
    auth_token_entry_t *e = &t->tokens[h % AUTH_TOKEN_CACHE];
    if (e->token != NULL && e->hash == h && e->len == len && memcmp(e->token, tok, len) == 0) {
        if (now_s < e->exp) {
            memcpy(app, e->app, JWT_CLAIM_MAX);
            return JWT_OK;
        }
        return JWT_EXPIRED;
    }
    jwt_claims_t claims;
    int rc = jwt_verify(t->shared->key, tok, len, now_s, &claims);
    if (rc != JWT_OK) return rc;
    if (is_revoked(t, claims.jti)) return AUTH_REVOKED;
    memcpy(app, claims.app, JWT_CLAIM_MAX);
    if (len <= TOKEN_CACHE_MAX_LEN) {
        char *copy = malloc(len);
        if (copy != NULL) {
            memcpy(copy, tok, len);
            free(e->token);
            e->token = copy;
            e->len = len;
            e->hash = h;
            e->exp = claims.exp;
            memcpy(e->app, claims.app, JWT_CLAIM_MAX);
        }
    }
    return JWT_OK;
}

/* Finds an enabled app by key, through the thread's cache. */
static int find_app(api_req_t *r, const char *key, size_t len, store_app_t *out)
{
    api_thread_t *t = r->t;
    if (len == 0 || len >= sizeof out->key) return STORE_NOT_FOUND;
    uint64_t h = fnv1a(key, len);
    auth_app_entry_t *e = &t->apps[h % AUTH_APP_CACHE];
    if (e->hash == h && e->fetched_ms + APP_CACHE_MS > r->now && strlen(e->app.key) == len &&
        memcmp(e->app.key, key, len) == 0) {
        *out = e->app;
    } else {
        char k[sizeof out->key];
        memcpy(k, key, len);
        k[len] = '\0';
        int rc = store_app_find(t->store, k, out, NULL);
        if (rc != STORE_OK) return rc;
        e->hash = h;
        e->fetched_ms = r->now;
        e->app = *out;
    }
    return out->disabled ? STORE_NOT_FOUND : STORE_OK;
}

static const char *token_problem(int rc)
{
    switch (rc) {
    case AUTH_REVOKED:
        return "The bearer token has been revoked.";
    case JWT_EXPIRED:
        return "The bearer token has expired.";
    case JWT_NO_EXP:
        return "The bearer token has no expiry (exp).";
    case JWT_NOT_YET:
        return "The bearer token is not valid yet.";
    case JWT_BAD_ALG:
        return "The bearer token must be signed with RS256.";
    case JWT_BAD_SIG:
        return "The bearer token's signature is not valid.";
    case JWT_NO_APP:
        return "The bearer token names no app.";
    default:
        return "The bearer token is malformed.";
    }
}

static bool fail(api_req_t *r, int status, const char *detail)
{
    api_error(r, status, status == 403 ? "Forbidden" : "Unauthorized", detail);
    return false;
}

bool auth_request(api_req_t *r)
{
    ssize_t ai = h2o_find_header(&r->req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t authz = ai < 0 ? h2o_iovec_init(NULL, 0) : r->req->headers.entries[ai].value;
    h2o_iovec_t key = header(r->req, "appid");
    if (key.base == NULL) key = header(r->req, "x-api-key");
    if (authz.base == NULL) return fail(r, 401, "Send the token in an Authorization: Bearer header.");
    if (authz.len < 7 || !h2o_lcstris(authz.base, 7, H2O_STRLIT("bearer ")))
        return fail(r, 401, "The Authorization header must be 'Bearer <token>'.");
    const char *tok = authz.base + 7;
    size_t toklen = authz.len - 7;
    while (toklen > 0 && *tok == ' ') {
        tok++;
        toklen--;
    }
    if (key.base == NULL || key.len == 0)
        return fail(r, 401, "Send the app key in an AppId (or X-Api-Key) header.");

    poll_revoked(r->t, r->now);
    char claimed[JWT_CLAIM_MAX];
    int rc = verify_token(r, tok, toklen, claimed);
    if (rc != JWT_OK) return fail(r, 401, token_problem(rc));

    rc = find_app(r, key.base, key.len, &r->app);
    if (rc == STORE_NOT_FOUND) {
        memset(&r->app, 0, sizeof r->app);
        return fail(r, 401, "Unknown app key.");
    }
    if (rc != STORE_OK) {
        memset(&r->app, 0, sizeof r->app);
        api_store_error(r, rc, "", "");
        return false;
    }
    size_t clen = strlen(claimed);
    if (clen != key.len || CRYPTO_memcmp(claimed, key.base, clen) != 0) {
        store_app_t other;
        rc = find_app(r, claimed, clen, &other);
        memset(&r->app, 0, sizeof r->app);
        if (rc == STORE_NOT_FOUND) return fail(r, 401, "The bearer token names an unknown app.");
        if (rc != STORE_OK) {
            api_store_error(r, rc, "", "");
            return false;
        }
        return fail(r, 403, "The bearer token belongs to another app than the AppId header names.");
    }
    return true;
}

void auth_thread_fini(api_thread_t *t)
{
    for (int i = 0; i < AUTH_TOKEN_CACHE; i++)
        free(t->tokens[i].token);
    for (size_t i = 0; i < t->revoked_n; i++)
        free(t->revoked[i]);
    free(t->revoked);
}
