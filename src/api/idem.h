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
 * Location with a small body that says the answer was not kept. 1 MiB
 * holds every answer a request can make in practice (a batch of 500
 * creates is about 300 KiB, an import's 1,000 problems about 250 KiB), so
 * a replay gives the first answer whole, as extensions.md asks. */
#define API_IDEM_KEEP_BYTES (1024 * 1024)

/* Why a kept answer's body is not replayed: it was larger than
 * API_IDEM_KEEP_BYTES, or it carried a lead since purged (the purge blanks
 * the body of every answer that carries the lead, so that nothing of a
 * purged lead is replayed, and keeps the status and Location, so that the
 * request is still not run twice). */
enum api_idem_not_kept { API_IDEM_TOO_LARGE, API_IDEM_PURGED };

/* Renders into out the small body a replay of status answers in place of
 * a body not kept, for why: a 2xx says the request was done, a 4xx that it
 * was refused. */
void api_idem_render_not_kept(jw_t *out, int status, enum api_idem_not_kept why);

/* Renders into out the body a replay of a kept answer of status gives:
 * body itself, or, when a purge blanked it, api_idem_render_not_kept's.
 * body is read during the call only. */
void api_idem_render_kept(jw_t *out, int status, text_ref_t body);

/* Runs next(r) at once when r carries no Idempotency-Key, else once the
 * key is known to be free (or answers r itself). */
void api_idem_then(api_req_t *r, api_step_fn next);

#endif
