/*
 * idem.h: Idempotency-Key on POST (extensions.md, "Safe writes").
 *
 * Before a POST's handler runs, its key is checked (1..255 printable
 * ASCII, one header, else a 422 on the header), taken for this process
 * (inflight.h: a second request with it meanwhile is a 409), and looked
 * up: an answer kept for the same request is replayed with
 * Idempotent-Replayed: true, one kept for another request is a 422
 * idempotency_key_reused. Otherwise the handler runs, and the writer
 * claims the key and keeps the answer in the write's own transaction
 * (writer.c), so a change acknowledged once is never made twice, across
 * restarts too.
 */
#ifndef CRMD_API_IDEM_H
#define CRMD_API_IDEM_H

#include "api/api_int.h"

/* How long an answer is kept. */
#define API_IDEM_KEEP_MS (24LL * 3600 * 1000)

/* The largest answer body kept: a larger one keeps its status and
 * Location with a small body that says the answer was not kept (a batch
 * of 500 would otherwise keep most of a megabyte for a day). */
#define API_IDEM_KEEP_BYTES (64 * 1024)

/* Runs next(r) at once when r carries no Idempotency-Key, else once the
 * key is known to be free (or answers r itself). */
void api_idem_then(api_req_t *r, api_step_fn next);

#endif
