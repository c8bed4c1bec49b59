/*
 * dispatch.h: the top of the request path (see dispatch.c); the public
 * entry points are in api.h.
 */
#ifndef CRMD_API_DISPATCH_H
#define CRMD_API_DISPATCH_H

#include "api/api_int.h"

/* Makes a thread's state on store s, which it then owns; finished writes
 * come back to it through ctx's queue. NULL when out of memory (s is then
 * closed). api_thread_init is this on a store opened from shared->db_url. */
api_thread_t *api_thread_new(int index, const api_shared_t *shared, h2o_context_t *ctx, store_t *s);

#endif
