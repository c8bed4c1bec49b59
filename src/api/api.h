/*
 * api.h: the API as the rest of the program sees it: what main.c and the
 * HTTP glue (http/server.h) need, and nothing else.
 *
 * Each server thread owns one API thread state (api_thread_init), on which
 * every request that thread receives is handled (api_handle). Beside them
 * runs the writer thread (api_writer_start), which commits the writes of
 * all threads together. Everything else is internal: see api_int.h and
 * docs/architecture.md.
 */
#ifndef CRMD_API_API_H
#define CRMD_API_API_H

#include <stdint.h>
#include <stdio.h>

#include "h2o.h"

#include "api/keyring.h"

/* The largest request body a route accepts, and the largest any route
 * accepts (POST /leads/import's). h2o refuses a body over the second with
 * 413 as it arrives; one over the first on any other route is a 413
 * before routing (dispatch.c). */
#define API_MAX_BODY (1024 * 1024)
#define API_IMPORT_MAX_BODY (16 * 1024 * 1024)
/* A webhook's body: a URL of at most 2,048 bytes, a few dozen event names
 * and a description fit many times over; more is never a real webhook. */
#define API_WEBHOOK_BODY_MAX (16 * 1024)

/* What every thread shares; read-only while serving, and it must outlive
 * the server and the writer. */
typedef struct api_shared {
    const char *db_url;
    keyring_t *keys;  /* verifies tokens (thread-safe; see keyring.h) */
    int log_requests; /* one line per request on stderr */
} api_shared_t;

/* The thread life cycle and the request entry point, as http_config_t's
 * hooks (see http/server.h); arg is the api_shared_t. */
void *api_thread_init(int index, void *arg, h2o_context_t *ctx);
void api_thread_fini(void *state);
/* Nonzero while the thread owes answers it is still waiting for (writes at
 * the writer, reads at the store): a stopping server must keep its loop,
 * and this state, alive until then. */
int api_thread_busy(void *state);
void api_handle(h2o_req_t *req, void *state);
h2o_iovec_t api_error_body(h2o_req_t *req, void *state);
/* A request body over this many bytes (declared, or chunked) is judged
 * from its head before it is read (http_config_t's body_small): no body
 * that does not fit the input every connection may hold is read before
 * its credentials hold. */
#define API_BODY_JUDGED 4096
/* http_config_t's body_check: a body is allowed from a caller whose
 * credentials hold (auth.h's auth_request_now) on a route that takes
 * credentials, up to what the route reads (API_MAX_BODY, API_IMPORT_MAX_BODY
 * on POST /leads/import: *limit, or the declared length); *owner is then
 * its app key's hash. Otherwise the answer is in req->res, its body in
 * *answer (404, 405, 400, 401, 403, 429, 413 (always on a route without
 * credentials, which reads no body); -1 when out of memory), as the
 * request would have been answered once read. */
int api_body_check(h2o_req_t *req, size_t declared, void *state, uint64_t *owner, size_t *limit,
                   h2o_iovec_t *answer);
/* The compiled-in bodies answers send as they are (the OpenAPI document,
 * the board's files), for http_config_t's static_bodies: up to max of them
 * into out; returns how many. */
size_t api_static_bodies(h2o_iovec_t *out, size_t max);
/* http_config_t's body_busy: the API's 503 (with its Retry-After) for a
 * large body allowed but over its app's share; its body NULL when out of
 * memory. */
h2o_iovec_t api_body_busy(h2o_req_t *req, void *state);

/* The writer's queue holds at most this many writes, and at most this many
 * bytes of them (each write's decoded change, its text included); a write
 * beyond either gets a 503 with Retry-After at once (docs/security.md). At
 * 20,000 writes a second, a full queue is 0.2 s of work. */
#define API_WRITE_QUEUE_DEFAULT 4096
#define API_WRITE_QUEUE_BYTES ((size_t)32 << 20)
/* Writes that run alone (imports) may take the queue's bytes but
 * 1/API_WRITE_QUEUE_RESERVE of them, which stay for every other write. */
#define API_WRITE_QUEUE_RESERVE 16
/* Sets the bound; call before api_writer_start. */
void api_writer_configure(size_t max_writes, size_t max_bytes);

/* Trashed leads are purged retention_ms after their deletion (0: a
 * delete purges at once), by the writer thread between its batches, a
 * few in each transaction, each with its lead.purged event, checked every
 * minute (every second when the retention is under a minute). Call before
 * api_writer_start. */
#define API_TRASH_RETENTION_DEFAULT_MS (30LL * 86400 * 1000)
void api_writer_configure_trash(int64_t retention_ms);

/* Whether the writer may leave its commits' syncs to a thread of its own
 * (store_sync_defer; off by default): only for a server that has its
 * SQLite database to itself. Other servers on the same file would read,
 * replay as an Idempotency-Key's answer, and send as webhook events
 * commits not yet on disk, since a process knows only its own syncs
 * owed (review rv88). Call before api_writer_start. */
void api_writer_configure_syncs(bool defer);

/* CSV exports over HTTP (GET /leads/ as text/csv): at most max_total run
 * at once in the process, at most max_per_app of them for one app (beyond
 * either, a 503 or a 429 with Retry-After), and each holds its database
 * snapshot for at most max_ms, or until its client has taken nothing for
 * idle_ms, then is cut off; an app whose exports have held snapshots
 * without a break for max_ms gets a 429 until they have ended
 * (docs/csv.md). Call before serving. */
#define API_EXPORT_MAX_TOTAL 1024
#define API_EXPORT_TOTAL_DEFAULT 16
#define API_EXPORT_PER_APP_DEFAULT 4
#define API_EXPORT_TIME_DEFAULT_MS (10LL * 60 * 1000)
#define API_EXPORT_IDLE_DEFAULT_MS (30LL * 1000)
void api_export_configure(int max_total, int max_per_app, int64_t max_ms, int64_t idle_ms);

/* The time a read may hold its thread's event loop (SQLite: every read of
 * the API but the exports, which have their own reader and --export-time):
 * one still running then is stopped and answered 503 (service_unavailable,
 * title API_READ_TIMEOUT_TITLE) with Retry-After (API_READ_RETRY_AFTER_S). 0: no bound. Each read's time
 * beyond API_READ_FREE_MS is charged to its app's rate limit,
 * API_READ_COST_PER_MS requests a millisecond (nothing with the rate
 * limit off). Call before serving. */
#define API_READ_TIME_DEFAULT_MS 1000
#define API_READ_TIMEOUT_TITLE "Read Timeout"
#define API_READ_TIME_MAX_MS (60LL * 1000)
#define API_READ_RETRY_AFTER_S 2
#define API_READ_FREE_MS 10
#define API_READ_COST_PER_MS 1.0
void api_read_configure(int64_t max_ms);

/* Starts the writer thread with its own store connection (0, or -1 with
 * the reason on stderr), and stops it once the server threads are done:
 * it finishes what is queued first. */
int api_writer_start(const api_shared_t *shared);
void api_writer_stop(void);

/* Sets up h2o's resolver, which checks webhook targets' names when they
 * are created or changed (resolve.h); call once, before serving. */
void api_resolve_setup(void);

/* The admin listener's handler (http/server.h's admin_handle): GET
 * /metrics (Prometheus text) and GET /healthz; anything else 404. */
void api_admin_handle(h2o_req_t *req, void *arg);
/* Turns the metrics on (http/metrics.h); call before serving. */
void api_metrics_configure(void);
/* The store's log hook (store_set_log): counts database errors and
 * reconnections, and writes the line in the log's form. */
void api_store_log(void *ctx, const char *line);

/* Prints the route table as a Markdown table (method, path, auth, summary),
 * as docs/architecture.md shows it. */
void api_routes_print(FILE *out);

#endif
