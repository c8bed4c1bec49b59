/*
 * loop.h: a server thread's h2o event loop as the store sees it
 * (store_loop_t, store/store.h), so that a PostgreSQL read waits on the
 * loop instead of blocking it. dispatch.c makes one per thread and hands
 * it to the thread's store once the thread's blocking reads are done.
 */
#ifndef CRMD_API_LOOP_H
#define CRMD_API_LOOP_H

#include "h2o.h"

#include "store/store.h"

typedef struct api_loop api_loop_t;

/* Makes the store's view of loop into *out (which the store copies);
 * NULL when out of memory. Use it on loop's thread only. */
api_loop_t *api_loop_new(h2o_evloop_t *loop, store_loop_t *out);
/* Frees it (NULL is fine): after the store that used it is closed, so no
 * watch or timer is left. */
void api_loop_free(api_loop_t *l);

#endif
