/*
 * resolve.h: a host name resolved for a request without holding up its
 * thread's event loop.
 *
 * h2o's resolver (h2o/hostinfo.h) runs getaddrinfo on threads of its own
 * and hands the answer back to the loop through the context's receiver.
 * A lookup is bounded by API_RESOLVE_TIMEOUT_MS, after which it is
 * cancelled and the name taken as one that does not resolve; at most
 * API_RESOLVE_MAX_PENDING run for a thread at once, and a name beyond
 * them is not looked up at all. Either way only the API's early answer is
 * lost: the webhook sender checks every address it connects to.
 */
#ifndef CRMD_API_RESOLVE_H
#define CRMD_API_RESOLVE_H

#include "api/api.h"
#include "api/api_int.h"

/* How long a lookup may take before its name counts as not resolving. */
#define API_RESOLVE_TIMEOUT_MS 2000
/* Lookups a thread has under way at most (its requests' memory, and h2o's
 * resolver threads, which every server thread shares). */
#define API_RESOLVE_MAX_PENDING 64
/* h2o's resolver threads (h2o_hostinfo_max_threads, 1 by default, set by
 * api_resolve_setup in api.h): one slow name must not make every other
 * lookup wait behind it until it times out. */
#define API_RESOLVE_THREADS 8

/* Resolves host (a name, NUL-terminated) for r: done(r, res) runs with
 * its addresses, at once or later from r's event loop, res NULL when
 * there are none to tell (the name does not resolve, the lookup timed
 * out, or too many are under way); res is valid during done only.
 * Meanwhile r counts in t->resolves_pending. If h2o let go of r's request
 * in between (its client went away), done is not called and r ends
 * (api_req_abandon). One lookup at a time per request. */
void api_req_resolve(api_req_t *r, const char *host, api_resolve_done_fn done);

#endif
