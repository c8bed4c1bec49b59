/*
 * auth.c: who is calling. Every /leads request carries a bearer JWT and the
 * app key (AppId, or its synonym X-Api-Key). The token must verify (RS256,
 * signature, exp), and name the same app as the key: a valid token of one
 * app used with another app's key is a 403, anything else wrong a 401.
 *
 * Verifying RS256 costs tens of microseconds, so each thread keeps the
 * tokens it verified, until they expire. Apps are cached for at most a
 * second, so disabling one takes effect within a second everywhere. Both
 * store reads here (an app by key, the revocations) may complete later.
 *
 * Revocations are polled by the requests themselves: one that finds the
 * thread's list more than a second old reads what is new before its
 * token is checked, so no request ever trusts a token revoked more than a
 * second before it started. Requests that find it stale together each
 * read (they would wait for one another's read anyway, on the same
 * connection); every revocation is kept once.
 */
#include "api/auth.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/request.h"

#define AUTH_TOKEN_CACHE 256
#define AUTH_APP_CACHE 64
#define APP_CACHE_MS 1000
/* verify_token's own result beyond the jwt_rc values. */
#define AUTH_REVOKED 100
#define TOKEN_CACHE_MAX_LEN 4096
/* A request trusts the revocations it knows when they are this fresh. */
#define REVOKED_POLL_MS 1000

typedef struct auth_token_entry {
    uint64_t hash;
    char *token; /* malloc'd copy, compared in full on a hit */
    size_t len;
    int64_t exp; /* seconds */
    char app[JWT_CLAIM_MAX];
} auth_token_entry_t;

typedef struct auth_app_entry {
    uint64_t hash;
    int64_t fetched_ms;
    store_app_t app;
} auth_app_entry_t;

struct auth_cache {
    auth_token_entry_t tokens[AUTH_TOKEN_CACHE];
    auth_app_entry_t apps[AUTH_APP_CACHE];
    /* Revoked token ids, polled from the store at most once a second. */
    char **revoked;
    size_t revoked_n, revoked_cap;
    int64_t revoked_seq; /* the last revocation seen */
    int64_t fresh_ms;    /* every revocation before this is known */
};

auth_cache_t *auth_cache_new(void)
{
    return calloc(1, sizeof(auth_cache_t));
}

static void forget_tokens(auth_cache_t *c)
{
    for (int i = 0; i < AUTH_TOKEN_CACHE; i++) {
        free(c->tokens[i].token);
        c->tokens[i].token = NULL;
    }
}

void auth_cache_free(auth_cache_t *c)
{
    if (c == NULL) return;
    forget_tokens(c);
    for (size_t i = 0; i < c->revoked_n; i++)
        free(c->revoked[i]);
    free(c->revoked);
    free(c);
}

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

/* --- revocations ----------------------------------------------------------------- */

static void add_revoked(void *ctx, int64_t seq, const char *jti)
{
    auth_cache_t *c = ctx;
    if (seq <= c->revoked_seq) return; /* two polls at once report it twice */
    c->revoked_seq = seq;
    /* A token verified before may be this one: each is verified again. */
    forget_tokens(c);
    if (c->revoked_n == c->revoked_cap) {
        size_t cap = c->revoked_cap ? c->revoked_cap * 2 : 16;
        char **p = realloc(c->revoked, cap * sizeof *p);
        if (p == NULL) return;
        c->revoked = p;
        c->revoked_cap = cap;
    }
    char *copy = strdup(jti);
    if (copy != NULL) c->revoked[c->revoked_n++] = copy;
}

store_rc_t auth_cache_load(auth_cache_t *c, store_t *s, int64_t now)
{
    store_rc_t rc = store_revoked_since(s, c->revoked_seq, add_revoked, c, NULL);
    if (rc == STORE_OK) c->fresh_ms = now;
    return rc;
}

static store_rc_t start_poll(api_req_t *r, const store_async_t *async)
{
    auth_cache_t *c = r->t->auth;
    return store_revoked_since(r->t->store, c->revoked_seq, add_revoked, c, async);
}

static bool is_revoked(const auth_cache_t *c, const char *jti)
{
    if (jti[0] == '\0') return false;
    for (size_t i = 0; i < c->revoked_n; i++)
        if (strcmp(c->revoked[i], jti) == 0) return true;
    return false;
}

/* --- tokens ------------------------------------------------------------------------ */

static void remember_token(auth_token_entry_t *e, uint64_t h, const char *tok, size_t len,
                           const jwt_claims_t *claims)
{
    if (len > TOKEN_CACHE_MAX_LEN) return;
    char *copy = malloc(len);
    if (copy == NULL) return;
    memcpy(copy, tok, len);
    free(e->token);
    e->token = copy;
    e->len = len;
    e->hash = h;
    e->exp = claims->exp;
    memcpy(e->app, claims->app, JWT_CLAIM_MAX);
}

/* Verifies a token, through the thread's cache; the app it names goes
 * into app. */
static int verify_token(api_req_t *r, const char *tok, size_t len, char app[JWT_CLAIM_MAX])
{
    auth_cache_t *c = r->t->auth;
    int64_t now_s = r->now / 1000;
    /* The tail of a JWT is its signature: hashing it alone is as good as
     * hashing all of it, and a hit still compares the whole token. */
    size_t tail = len > 64 ? 64 : len;
    uint64_t h = fnv1a(tok + len - tail, tail) ^ len;
    auth_token_entry_t *e = &c->tokens[h % AUTH_TOKEN_CACHE];
    if (e->token != NULL && e->hash == h && e->len == len && memcmp(e->token, tok, len) == 0) {
        if (now_s < e->exp) {
            memcpy(app, e->app, JWT_CLAIM_MAX);
            return JWT_OK;
        }
        return JWT_EXPIRED;
    }
    jwt_claims_t claims;
    int rc = jwt_verify(r->t->shared->key, tok, len, now_s, &claims);
    if (rc != JWT_OK) return rc;
    if (is_revoked(c, claims.jti)) return AUTH_REVOKED;
    memcpy(app, claims.app, JWT_CLAIM_MAX);
    remember_token(e, h, tok, len, &claims);
    return JWT_OK;
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

/* --- apps ---------------------------------------------------------------------------- */

static store_rc_t enabled(const store_app_t *app)
{
    return app->disabled ? STORE_NOT_FOUND : STORE_OK;
}

static store_rc_t start_find(api_req_t *r, const store_async_t *async)
{
    return store_app_find(r->t->store, r->auth.key, &r->app, async);
}

static void found(api_req_t *r, store_rc_t rc)
{
    if (rc == STORE_OK) {
        uint64_t h = fnv1a(r->auth.key, r->auth.key_len);
        auth_app_entry_t *e = &r->t->auth->apps[h % AUTH_APP_CACHE];
        e->hash = h;
        e->fetched_ms = r->now;
        e->app = r->app;
        rc = enabled(&r->app);
    }
    r->auth.found(r, rc);
}

/* Finds an enabled app by key into r->app, through the thread's cache,
 * then calls done(r, rc): STORE_NOT_FOUND for an unknown or disabled app. */
static void find_app(api_req_t *r, const char *key, size_t len, api_read_done_fn done)
{
    if (len == 0 || len >= sizeof r->auth.key) {
        done(r, STORE_NOT_FOUND);
        return;
    }
    memcpy(r->auth.key, key, len);
    r->auth.key[len] = '\0';
    r->auth.key_len = len;
    uint64_t h = fnv1a(key, len);
    const auth_app_entry_t *e = &r->t->auth->apps[h % AUTH_APP_CACHE];
    if (e->hash == h && e->fetched_ms + APP_CACHE_MS > r->now && strlen(e->app.key) == len &&
        memcmp(e->app.key, key, len) == 0) {
        r->app = e->app;
        done(r, enabled(&r->app));
        return;
    }
    r->auth.found = done;
    api_req_read(r, start_find, found);
}

/* --- the request ------------------------------------------------------------------------ */

static void fail(api_req_t *r, int status, const char *detail)
{
    memset(&r->app, 0, sizeof r->app);
    api_reply_error(r, status, status == 403 ? "Forbidden" : "Unauthorized", detail);
}

static void fail_store(api_req_t *r, store_rc_t rc)
{
    memset(&r->app, 0, sizeof r->app);
    api_reply_store_error(r, rc, "", "");
}

/* The token's app, looked up after it differed from the key's. */
static void on_claimed_app(api_req_t *r, store_rc_t rc)
{
    if (rc == STORE_NOT_FOUND)
        fail(r, 401, "The bearer token names an unknown app.");
    else if (rc != STORE_OK)
        fail_store(r, rc);
    else
        fail(r, 403, "The bearer token belongs to another app than the AppId header names.");
}

/* The key's app: the caller, if the token names the same one. */
static void on_key_app(api_req_t *r, store_rc_t rc)
{
    if (rc == STORE_NOT_FOUND) {
        fail(r, 401, "Unknown app key.");
        return;
    }
    if (rc != STORE_OK) {
        fail_store(r, rc);
        return;
    }
    size_t clen = strlen(r->auth.claimed);
    if (clen != r->auth.key_len || CRYPTO_memcmp(r->auth.claimed, r->auth.key, clen) != 0) {
        find_app(r, r->auth.claimed, clen, on_claimed_app);
        return;
    }
    r->auth.then(r);
}

/* What is wrong with r's credentials headers (NULL: nothing); the token
 * goes into tok and the app key into key. */
static const char *read_headers(h2o_req_t *req, h2o_iovec_t *tok, h2o_iovec_t *key)
{
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t authz = ai < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[ai].value;
    *key = header(req, "appid");
    if (key->base == NULL) *key = header(req, "x-api-key");
    if (authz.base == NULL) return "Send the token in an Authorization: Bearer header.";
    if (authz.len < 7 || !h2o_lcstris(authz.base, 7, H2O_STRLIT("bearer ")))
        return "The Authorization header must be 'Bearer <token>'.";
    *tok = h2o_iovec_init(authz.base + 7, authz.len - 7);
    while (tok->len > 0 && *tok->base == ' ') {
        tok->base++;
        tok->len--;
    }
    if (key->base == NULL || key->len == 0) return "Send the app key in an AppId (or X-Api-Key) header.";
    return NULL;
}

/* The token, checked against revocations known to be fresh, then the key. */
static void check_token(api_req_t *r)
{
    h2o_iovec_t tok, key;
    read_headers(r->req, &tok, &key); /* checked by auth_request */
    int rc = verify_token(r, tok.base, tok.len, r->auth.claimed);
    if (rc != JWT_OK) {
        fail(r, 401, token_problem(rc));
        return;
    }
    find_app(r, key.base, key.len, on_key_app);
}

/* The revocations r read: fresh as of its start. Without them (the
 * database failed) no token is trusted. */
static void polled(api_req_t *r, store_rc_t rc)
{
    auth_cache_t *c = r->t->auth;
    if (rc != STORE_OK) {
        fail_store(r, rc);
        return;
    }
    if (c->fresh_ms < r->now) c->fresh_ms = r->now;
    check_token(r);
}

void auth_request(api_req_t *r, api_step_fn then)
{
    h2o_iovec_t tok, key;
    const char *problem = read_headers(r->req, &tok, &key);
    if (problem != NULL) {
        fail(r, 401, problem);
        return;
    }
    r->auth.then = then;
    if (r->now - r->t->auth->fresh_ms < REVOKED_POLL_MS)
        check_token(r);
    else
        api_req_read(r, start_poll, polled);
}
