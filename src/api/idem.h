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
 * Location with a small body that says the answer was not kept. A 2xx
 * answer may keep 1 MiB, which holds every answer of a change in practice
 * (a batch of 500 creates is about 300 KiB, 930 KiB with every text at
 * its longest), so its replay gives the first answer whole, as
 * extensions.md asks; what it keeps is of the size of what the change
 * wrote. A 4xx changed nothing and keeps 8 KiB, a few times the size of
 * the request that drew it at most: an import's list of 1,000 problems
 * from a file of a few KiB would otherwise keep 50 times the request's
 * size for a day, for nothing written, and 64 KiB let an app fill the
 * database at 9.6 MB/s within its rate limit with refused imports of
 * 2.6 KB under fresh keys (a review). */
#define API_IDEM_KEEP_BYTES (1024 * 1024)
#define API_IDEM_KEEP_REFUSED_BYTES (8 * 1024)

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

/* Renders the 409 idempotency_conflict of a key whose first request is
 * still in flight (in this process, or another's on the same database:
 * api/writer.c) into out; returns 409. */
int api_idem_render_in_flight(jw_t *out);

/* Runs next(r) at once when r carries no Idempotency-Key, else once the
 * key is known to be free (or answers r itself). */
void api_idem_then(api_req_t *r, api_step_fn next);

#endif
