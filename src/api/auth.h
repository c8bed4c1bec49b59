/*
 * auth.h: who is calling (see auth.c).
 */
#ifndef CRMD_API_AUTH_H
#define CRMD_API_AUTH_H

#include <stdbool.h>

#include "api/api_int.h"

/* A thread's caches of verified tokens, apps and revocations; opaque.
 * NULL when out of memory. */
auth_cache_t *auth_cache_new(void);
void auth_cache_free(auth_cache_t *c);
/* Loads every revocation recorded so far, waiting for the store: a thread
 * calls it before it serves, so that no token is trusted before the
 * revocations are known. Returns the store's rc. */
store_rc_t auth_cache_load(auth_cache_t *c, store_t *s, int64_t now);
/* True while the cache waits for the store (a revocation poll). */
bool auth_busy(const auth_cache_t *c);

/* The key set the thread verifies tokens with: the keyring's newest
 * snapshot, taken again when another has been published. Valid until the
 * thread next authenticates a request. */
const jwt_keyset_t *auth_keys(api_req_t *r);

/* Authenticates r (Authorization: Bearer + AppId or X-Api-Key), now or
 * after store reads (an app, or a revocation poll the thread needs): on
 * success r->app is the caller's app and then(r) runs; on failure r has
 * been answered (400 for conflicting credentials, 401, 403, 429 for a
 * client address over its failed-authentication limit, 503). */
void auth_request(api_req_t *r, api_step_fn then);

/* Authenticates r at once, from its headers and what the thread knows,
 * without the store: the token must verify (signature, expiry, the
 * revocations this thread knows) and name the app of the AppId (or
 * X-Api-Key) header. Whether that app exists and is enabled is not looked
 * up: auth_request does that when the request is handled. False when r
 * has been answered (400, 401, 403, 429), as auth_request would. Used for
 * a body the server would rather not read before it knows the caller
 * (dispatch.c's api_body_check). */
bool auth_request_now(api_req_t *r);

#endif
