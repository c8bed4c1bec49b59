/*
 * auth.c: who is calling. Every /leads request carries a bearer JWT and the
 * app key (AppId, or its synonym X-Api-Key). The token must verify (RS256,
 * signature, exp), and name the same app as the key: a valid token of one
 * app used with another app's key is a 403, anything else wrong a 401.
 *
 * The key is the one the token's kid names in the keyring's newest
 * snapshot (crmd's own keys and an identity provider's, each pinned to
 * its algorithm: keyring.h). A thread takes a newer snapshot as soon as
 * one is published, and then forgets the tokens it verified, so a retired
 * key's tokens are refused within a poll.
 *
 * Verifying RS256 costs tens of microseconds, so each thread keeps the
 * tokens it verified, until they expire. Apps are cached for at most a
 * second, so disabling one takes effect within a second everywhere. Both
 * store reads here (an app by key, the revocations) may complete later.
 *
 * Revocations cannot be missed. A poll's rows are kept aside until it is
 * done, then applied in one step, the token cache emptied when any is new;
 * only a poll that read everything moves the sequence number on, so the
 * rows of a poll that failed part way are read again by the next. A thread
 * uses its token cache and its list of revocations only while the last
 * poll that succeeded started at most REVOKED_POLL_MS (a second) before
 * the request did, so a revocation holds everywhere within a second even
 * when polls complete later (PostgreSQL); otherwise (an idle thread, a
 * store in trouble) a request waits for a fresh poll, and is a 503 if that
 * poll fails. A busy thread polls again REVOKED_REFRESH_MS after its last
 * poll, so that its list is renewed before it goes stale and requests go
 * on without waiting for the poll.
 *
 * Failed authentication is limited per client address (api_client: the
 * peer, or the forwarded client behind a trusted proxy). Every 400, 401
 * and 403 here takes one from the address's bucket (RATELIMIT_AUTH); a
 * token that is not in the cache is verified only while the bucket holds
 * one, else the request is a 429 with Retry-After before any RSA work.
 * Tokens already verified are served from the cache as before, so an
 * honest client behind the same address is not locked out by another's
 * failures.
 */
#include "api/auth.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/keyring.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "api/respond.h"

#define AUTH_TOKEN_CACHE 256
#define AUTH_APP_CACHE 64
#define APP_CACHE_MS 1000
/* verify_token's own results beyond the jwt_rc values. */
#define AUTH_REVOKED 100
#define AUTH_LIMITED 101
#define TOKEN_CACHE_MAX_LEN 4096
#define OTHER_APP "The bearer token belongs to another app than the AppId header names."
/* Revocations reach every thread within this long: a thread whose last
 * successful poll started longer before a request does not authenticate it
 * before another poll succeeds. */
#define REVOKED_POLL_MS 1000
/* A thread polls again this long after its last poll (when a request comes),
 * well before what it knows goes stale. */
#define REVOKED_REFRESH_MS 250

typedef struct auth_token_entry {
    uint64_t hash;
    char *token; /* malloc'd copy, compared in full on a hit */
    size_t len;
    int64_t exp; /* seconds */
    char app[JWT_CLAIM_MAX];
    char sub[JWT_CLAIM_MAX]; /* who the token speaks for: a change's actor */
    char jti[JWT_CLAIM_MAX]; /* its id, which a revocation names ("" for none) */
} auth_token_entry_t;

typedef struct auth_app_entry {
    uint64_t hash;
    int64_t fetched_ms;
    store_app_t app;
} auth_app_entry_t;

/* A list of token ids (jti), each malloc'd. */
typedef struct jti_list {
    char **v;
    size_t n, cap;
} jti_list_t;

struct auth_cache {
    auth_token_entry_t tokens[AUTH_TOKEN_CACHE];
    auth_app_entry_t apps[AUTH_APP_CACHE];
    /* Revoked token ids, polled from the store at most once a second. */
    jti_list_t revoked;
    int64_t revoked_seq; /* the last revocation applied */
    int64_t synced_ms;   /* when the last poll that succeeded started (0: none yet) */
    int64_t poll_ms;     /* when the last poll started */
    bool polling;        /* its answer is still to come */
    /* What the poll in progress read, applied once it has read everything. */
    jti_list_t fresh;
    int64_t fresh_seq;
    bool fresh_lost; /* a row could not be kept: the poll counts as failed */
    /* Requests waiting for that poll, in order. */
    api_req_t *waiting, **waiting_tail;
    /* The key set tokens are verified with (NULL until the first). */
    keyring_snap_t *keys;
};

auth_cache_t *auth_cache_new(void)
{
    auth_cache_t *c = calloc(1, sizeof(auth_cache_t));
    if (c != NULL) c->waiting_tail = &c->waiting;
    return c;
}

static void forget_tokens(auth_cache_t *c)
{
    for (int i = 0; i < AUTH_TOKEN_CACHE; i++) {
        free(c->tokens[i].token);
        c->tokens[i].token = NULL;
    }
}

static void jti_clear(jti_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

/* Makes room for n ids in all; false when out of memory. */
static bool jti_reserve(jti_list_t *l, size_t n)
{
    if (n <= l->cap) return true;
    size_t cap = l->cap ? l->cap : 16;
    while (cap < n)
        cap *= 2;
    char **v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) return false;
    l->v = v;
    l->cap = cap;
    return true;
}

void auth_cache_free(auth_cache_t *c)
{
    if (c == NULL) return;
    assert(c->waiting == NULL); /* the thread stays busy while a poll waits */
    forget_tokens(c);
    jti_clear(&c->revoked);
    jti_clear(&c->fresh);
    free(c->revoked.v);
    free(c->fresh.v);
    keyring_release(c->keys);
    free(c);
}

bool auth_busy(const auth_cache_t *c)
{
    return c->polling;
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

/* The two slots (of n) where an entry of hash h may be: each cache is
 * two-way, so that two busy apps or tokens whose hashes share a slot do
 * not evict each other on every other request (two apps' keys did so in
 * one bench run in 64: every second request read its app from the store).
 * The second slot comes from the hash's high half. */
static void slots_of(uint64_t h, size_t n, size_t out[2])
{
    out[0] = (size_t)(h % n);
    out[1] = (size_t)((h >> 32) % n);
    if (out[1] == out[0]) out[1] = (out[0] + 1) % n;
}

/* The value of the headers named names[] (NULL-terminated), all of which
 * must say the same, into *out (base NULL when none is there); false when
 * two of them differ. */
static bool one_value(const h2o_req_t *req, const char *const *names, h2o_iovec_t *out)
{
    *out = h2o_iovec_init(NULL, 0);
    for (; *names != NULL; names++) {
        for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, *names, strlen(*names), i)) >= 0;) {
            /* White space around a value is no part of it (RFC 9112, 5.1;
             * h2o keeps what trails a value). */
            const char *base = req->headers.entries[i].value.base;
            size_t len = req->headers.entries[i].value.len;
            api_trim_ows(&base, &len);
            h2o_iovec_t v = h2o_iovec_init(base, len);
            if (out->base == NULL)
                *out = v;
            else if (!h2o_memis(out->base, out->len, v.base, v.len))
                return false;
        }
    }
    return true;
}

/* --- revocations ----------------------------------------------------------------- */

/* A row of the poll in progress: kept aside until the poll is done. */
static void add_revoked(void *ctx, int64_t seq, const char *jti)
{
    auth_cache_t *c = ctx;
    char *copy = jti_reserve(&c->fresh, c->fresh.n + 1) ? strdup(jti) : NULL;
    if (copy == NULL) {
        c->fresh_lost = true;
        return;
    }
    c->fresh.v[c->fresh.n++] = copy;
    c->fresh_seq = seq;
}

static bool is_revoked(const auth_cache_t *c, const char *jti)
{
    if (jti[0] == '\0') return false;
    for (size_t i = 0; i < c->revoked.n; i++)
        if (strcmp(c->revoked.v[i], jti) == 0) return true;
    return false;
}

/* Forgets the cached tokens that revocations from the list's from-th on
 * name, so that each is verified, and refused, again. The others stay:
 * emptying the whole cache on any revocation had every client verify its
 * token again, which a client address over its failed-authentication
 * limit may not do (another app's failures behind the same address then
 * locked out tokens that hold). */
static void forget_revoked(auth_cache_t *c, size_t from)
{
    for (int i = 0; i < AUTH_TOKEN_CACHE; i++) {
        auth_token_entry_t *e = &c->tokens[i];
        if (e->token == NULL || e->jti[0] == '\0') continue;
        for (size_t j = from; j < c->revoked.n; j++) {
            if (strcmp(c->revoked.v[j], e->jti) != 0) continue;
            free(e->token);
            e->token = NULL;
            break;
        }
    }
}

/* Applies what a poll read, in one step: its revocations join the list,
 * and the cached tokens they name are forgotten (forget_revoked). Only a poll that read everything (it
 * succeeded, no row was lost) moves the sequence number on and counts as
 * fresh; after any other the next poll reads the same rows again (those
 * already applied are not added twice). True when the poll succeeded. */
static bool apply_poll(auth_cache_t *c, store_rc_t rc)
{
    bool ok = rc == STORE_OK && !c->fresh_lost;
    size_t added = 0, from = c->revoked.n;
    if (jti_reserve(&c->revoked, c->revoked.n + c->fresh.n)) {
        for (size_t i = 0; i < c->fresh.n; i++) {
            if (is_revoked(c, c->fresh.v[i])) continue;
            c->revoked.v[c->revoked.n++] = c->fresh.v[i];
            c->fresh.v[i] = NULL;
            added++;
        }
    } else {
        ok = false;
    }
    if (added > 0) forget_revoked(c, from);
    if (ok) {
        c->revoked_seq = c->fresh_seq;
        c->synced_ms = c->poll_ms;
    }
    jti_clear(&c->fresh);
    c->fresh_lost = false;
    return ok;
}

static void check_token(api_req_t *r);
static void fail_store(api_req_t *r, store_rc_t rc);

/* A poll is done: applies it, then lets the requests that waited for it
 * go on (a 503 if it failed). */
static void polled(void *ctx, store_rc_t rc)
{
    auth_cache_t *c = ctx;
    c->polling = false;
    bool ok = apply_poll(c, rc);
    api_req_t *r = c->waiting;
    c->waiting = NULL;
    c->waiting_tail = &c->waiting;
    while (r != NULL) {
        api_req_t *next = r->auth.next_waiting;
        if (r->req == NULL)
            api_req_abandon(r);
        else if (!ok)
            fail_store(r, STORE_UNAVAILABLE);
        else
            check_token(r);
        r = next;
    }
}

/* Whether the thread knows the revocations well enough to authenticate a
 * request that started at now. */
static bool revocations_known(const auth_cache_t *c, int64_t now)
{
    return c->synced_ms > 0 && now - c->synced_ms <= REVOKED_POLL_MS;
}

/* Asks the store for new revocations: REVOKED_REFRESH_MS after the last
 * poll, or at once when they are not known well enough. The poll is the
 * thread's: a request waits for it only in the second case. */
static void poll_revoked(auth_cache_t *c, store_t *s, int64_t now)
{
    if (c->polling) return;
    if (revocations_known(c, now) && now - c->poll_ms < REVOKED_REFRESH_MS) return;
    c->poll_ms = now;
    c->fresh_seq = c->revoked_seq;
    store_async_t async = {.done = polled, .ctx = c};
    store_rc_t rc = store_revoked_since(s, c->revoked_seq, add_revoked, c, &async);
    if (rc == STORE_PENDING)
        c->polling = true;
    else
        polled(c, rc);
}

store_rc_t auth_cache_load(auth_cache_t *c, store_t *s, int64_t now)
{
    assert(!c->polling);
    c->poll_ms = now;
    c->fresh_seq = c->revoked_seq;
    store_rc_t rc = store_revoked_since(s, c->revoked_seq, add_revoked, c, NULL);
    apply_poll(c, rc);
    return rc;
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
    memcpy(e->sub, claims->sub, JWT_CLAIM_MAX);
    memcpy(e->jti, claims->jti, JWT_CLAIM_MAX);
}

/* The bucket of r's client in the failed-authentication limiter. */
static ratelimit_key_t client_key(api_req_t *r)
{
    uint64_t k[2];
    proxy_limit_key(api_client(r), k);
    return (ratelimit_key_t){k[0], k[1]};
}

/* Whether r's client may still fail: false (the answer's Retry-After
 * added) when it is over its limit. */
static bool failures_allowed(api_req_t *r)
{
    if (!ratelimit_enabled(RATELIMIT_AUTH)) return true;
    ratelimit_info_t info;
    if (ratelimit_peek(RATELIMIT_AUTH, client_key(r), r->now, &info)) return true;
    api_header_int(r, "retry-after", info.retry_after);
    return false;
}

/* Answers r, whose client is over its failures (failures_allowed). */
static void reply_limited(api_req_t *r)
{
    memset(&r->app, 0, sizeof r->app);
    api_reply_error(r, 429, "Too Many Requests",
                    "Too many failed authentications from this address; retry later.");
}

const jwt_keyset_t *auth_keys(api_req_t *r)
{
    auth_cache_t *c = r->t->auth;
    keyring_t *ring = r->t->shared->keys;
    if (c->keys == NULL || keyring_generation(ring) != c->keys->gen) {
        keyring_release(c->keys);
        c->keys = keyring_acquire(ring);
        forget_tokens(c); /* verified with keys that may be gone */
    }
    return c->keys->set;
}

/* Verifies a token, through the thread's cache; the app it names goes
 * into app. A token not in the cache is verified only while r's client
 * may still fail (else AUTH_LIMITED). */
static int verify_token(api_req_t *r, const char *tok, size_t len, char app[JWT_CLAIM_MAX])
{
    auth_cache_t *c = r->t->auth;
    int64_t now_s = r->now / 1000;
    keyring_t *ring = r->t->shared->keys;
    auth_keys(r);
    /* The tail of a JWT is its signature: hashing it alone is as good as
     * hashing all of it, and a hit still compares the whole token. */
    size_t tail = len > 64 ? 64 : len;
    uint64_t h = fnv1a(tok + len - tail, tail) ^ len;
    size_t slot[2];
    slots_of(h, AUTH_TOKEN_CACHE, slot);
    for (int i = 0; i < 2; i++) {
        const auth_token_entry_t *e = &c->tokens[slot[i]];
        if (e->token == NULL || e->hash != h || e->len != len || memcmp(e->token, tok, len) != 0) continue;
        if (now_s >= e->exp) return JWT_EXPIRED;
        memcpy(app, e->app, JWT_CLAIM_MAX);
        memcpy(r->auth.subject, e->sub, JWT_CLAIM_MAX);
        return JWT_OK;
    }
    if (!failures_allowed(r)) return AUTH_LIMITED;
    jwt_claims_t claims;
    int rc = jwt_verify_set(c->keys->set, keyring_rules(ring), tok, len, now_s, &claims);
    if (rc != JWT_OK) return rc;
    if (is_revoked(c, claims.jti)) return AUTH_REVOKED;
    memcpy(app, claims.app, JWT_CLAIM_MAX);
    memcpy(r->auth.subject, claims.sub, JWT_CLAIM_MAX);
    /* Into the first slot when it is free, else the second: a third token
     * of the pair of slots replaces the second one's. */
    remember_token(&c->tokens[slot[c->tokens[slot[0]].token == NULL ? 0 : 1]], h, tok, len, &claims);
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
        return "The bearer token has no expiry (exp) as a number of seconds (a NumericDate).";
    case JWT_NOT_YET:
        return "The bearer token is not valid yet.";
    case JWT_BAD_ALG:
        return "The bearer token is not signed with the algorithm of its key.";
    case JWT_NO_KID:
        return "The bearer token names no signing key (kid).";
    case JWT_UNKNOWN_KID:
        return "The bearer token's signing key (kid) is not known.";
    case JWT_BAD_CLAIM:
        return "The bearer token's issuer or audience is not accepted.";
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

/* Whether e holds the app of key (len bytes, hash h). */
static bool app_is(const auth_app_entry_t *e, uint64_t h, const char *key, size_t len)
{
    return e->hash == h && e->fetched_ms > 0 && strlen(e->app.key) == len &&
           memcmp(e->app.key, key, len) == 0;
}

/* The slot to keep key's app in: the one that holds it already, else the
 * one fetched longer ago (an empty one first). */
static auth_app_entry_t *app_slot(auth_cache_t *c, uint64_t h, const char *key, size_t len)
{
    size_t slot[2];
    slots_of(h, AUTH_APP_CACHE, slot);
    auth_app_entry_t *a = &c->apps[slot[0]], *b = &c->apps[slot[1]];
    if (app_is(a, h, key, len)) return a;
    if (app_is(b, h, key, len)) return b;
    return b->fetched_ms < a->fetched_ms ? b : a;
}

static void found(api_req_t *r, store_rc_t rc)
{
    if (rc == STORE_OK) {
        uint64_t h = fnv1a(r->auth.key, r->auth.key_len);
        auth_app_entry_t *e = app_slot(r->t->auth, h, r->auth.key, r->auth.key_len);
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
    const auth_app_entry_t *e = app_slot(r->t->auth, h, key, len);
    if (app_is(e, h, key, len) && e->fetched_ms + APP_CACHE_MS > r->now) {
        r->app = e->app;
        done(r, enabled(&r->app));
        return;
    }
    r->auth.found = done;
    api_req_read(r, start_find, found);
}

/* --- the request ------------------------------------------------------------------------ */

/* Answers a failed authentication, which counts against the client; a
 * 429 once the client is over its failures, whatever failed. */
static void fail(api_req_t *r, int status, const char *detail)
{
    if (!failures_allowed(r)) {
        reply_limited(r);
        return;
    }
    if (ratelimit_enabled(RATELIMIT_AUTH)) {
        ratelimit_info_t info;
        ratelimit_take(RATELIMIT_AUTH, client_key(r), r->now, &info);
    }
    memset(&r->app, 0, sizeof r->app);
    api_reply_error(r, status, api_reason(status), detail);
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
        fail(r, 403, OTHER_APP);
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

/* What is wrong with r's credentials headers (NULL: nothing, else the
 * problem, its status in *status); the token goes into tok and the app
 * key into key. Credentials that say two things at once (two different
 * app keys in AppId and X-Api-Key, or in two AppId headers; two different
 * Authorization headers) are a 400: no one of them is picked. */
static const char *read_headers(h2o_req_t *req, h2o_iovec_t *tok, h2o_iovec_t *key, int *status)
{
    static const char *const KEYS[] = {"appid", "x-api-key", NULL};
    static const char *const AUTHORIZATION[] = {"authorization", NULL};
    h2o_iovec_t authz;
    *status = 400;
    if (!one_value(req, KEYS, key))
        return "The request names different app keys (AppId, X-Api-Key); send one.";
    if (!one_value(req, AUTHORIZATION, &authz))
        return "The request carries different Authorization headers; send one.";
    *status = 401;
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

/* Reads r's credentials headers into r->auth; false when r has been
 * answered (400, 401). */
static bool headers_or_reply(api_req_t *r)
{
    int status;
    const char *problem = read_headers(r->req, &r->auth.token, &r->auth.key_header, &status);
    if (problem != NULL) fail(r, status, problem);
    return problem == NULL;
}

/* Verifies r's token into r->auth.claimed; false when r has been answered
 * (429 for a client over its failures, 401). */
static bool token_or_reply(api_req_t *r)
{
    int rc = verify_token(r, r->auth.token.base, r->auth.token.len, r->auth.claimed);
    if (rc == AUTH_LIMITED) {
        reply_limited(r);
        return false;
    }
    if (rc != JWT_OK) fail(r, 401, token_problem(rc));
    return rc == JWT_OK;
}

/* Verifies r's token, the revocations known, then finds the app. An app
 * key that is not the token's app is a failure whatever it names: while
 * r's client is over its failures, it is refused before any lookup, so
 * that a verified token beside made-up app keys is no unlimited stream of
 * store reads; a key that is the token's app is looked up as ever, so
 * that honest clients behind the address are served. */
static void check_token(api_req_t *r)
{
    if (!token_or_reply(r)) return;
    h2o_iovec_t key = r->auth.key_header;
    if ((strlen(r->auth.claimed) != key.len || CRYPTO_memcmp(r->auth.claimed, key.base, key.len) != 0) &&
        !failures_allowed(r)) {
        reply_limited(r);
        return;
    }
    find_app(r, key.base, key.len, on_key_app);
}

void auth_request(api_req_t *r, api_step_fn then)
{
    if (!headers_or_reply(r)) return;
    r->auth.then = then;
    auth_cache_t *c = r->t->auth;
    poll_revoked(c, r->t->store, r->now);
    if (revocations_known(c, r->now)) {
        check_token(r);
    } else if (c->polling) {
        r->auth.next_waiting = NULL;
        *c->waiting_tail = r;
        c->waiting_tail = &r->auth.next_waiting;
    } else {
        fail_store(r, STORE_UNAVAILABLE); /* the poll it needed failed */
    }
}

bool auth_request_now(api_req_t *r)
{
    if (!headers_or_reply(r)) return false;
    /* A thread that has not polled lately starts a poll (on SQLite it is
     * done before the token is checked). */
    poll_revoked(r->t->auth, r->t->store, r->now);
    if (!token_or_reply(r)) return false;
    h2o_iovec_t key = r->auth.key_header;
    size_t clen = strlen(r->auth.claimed);
    if (clen != key.len || CRYPTO_memcmp(r->auth.claimed, key.base, clen) != 0) {
        fail(r, 403, OTHER_APP);
        return false;
    }
    return true;
}
