/*
 * resolve.h: checking a webhook target's host name without blocking the
 * event loop.
 *
 * A name is resolved with getaddrinfo, which blocks for as long as DNS
 * takes (seconds, when a server does not answer): never on a server
 * thread's loop. So the resolution runs on a short-lived thread of its
 * own, and the request waits for it like for a store read that completes
 * later (api_req_read): the thread's loop watches an eventfd the resolver
 * signals, then completes the read.
 */
#ifndef CRMD_API_RESOLVE_H
#define CRMD_API_RESOLVE_H

#include "api/api_int.h"

/* At most this many resolutions run at once, in all threads together;
 * beyond that a request gets STORE_UNAVAILABLE (503) at once. */
#define API_RESOLVE_MAX 8

/* An api_read_start_fn's body: resolves host (copied) for r and completes
 * with STORE_OK when none of its addresses is refused (a name that does
 * not resolve included), STORE_CONFLICT when one is, STORE_UNAVAILABLE
 * when the resolution cannot run. Without a loop (r->t->loop NULL: the
 * command line, tests) it resolves at once, blocking. */
store_rc_t api_resolve_start(api_req_t *r, const char *host, const store_async_t *async);

#endif
