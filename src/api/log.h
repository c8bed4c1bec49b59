/*
 * log.h: the request log, one line per answered request on stderr.
 *
 * A line is written when its response is sent, whenever that is (a write
 * is answered after the writer's commit). Each server thread gathers its
 * lines in its own api_log_t and writes them out with one write(2) when
 * 8 KiB have gathered or 100 ms have passed, whichever comes first, so
 * lines from several threads never interleave and logging costs no system
 * call per request. The token is never logged.
 */
#ifndef CRMD_API_LOG_H
#define CRMD_API_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "h2o.h"

#define API_LOG_BUFSZ 16384

/* One thread's log buffer; only that thread touches it. */
typedef struct api_log {
    h2o_context_t *ctx; /* whose loop runs the 100 ms flush */
    char buf[API_LOG_BUFSZ];
    size_t len;
    h2o_timeout_entry_t flush;
} api_log_t;

/* Prepares log for the thread that runs ctx's loop. */
void api_log_init(api_log_t *log, h2o_context_t *ctx);

/* Adds the line of req, answered with status: its method, path (raw, at
 * most 250 bytes, unprintable bytes as '?'), status, the time since
 * start_ns (CLOCK_MONOTONIC), and the app key ("" before authentication).
 * now (ms since the epoch) dates the line. */
void api_log_request(api_log_t *log, const h2o_req_t *req, int status, const char *app_key, int64_t now,
                     int64_t start_ns);

/* The same line from the request's method and path, for a request h2o has
 * let go of, with note (NULL for none) at its end: "client=gone" on the
 * line of a write whose client went away before its answer. */
void api_log_line(api_log_t *log, h2o_iovec_t method, h2o_iovec_t path, int status, const char *app_key,
                  int64_t now, int64_t start_ns, const char *note);

/* Writes out what has gathered; call before the thread ends. */
void api_log_flush(api_log_t *log);

#endif
