/*
 * log.h: the request log, one line per answered request on stderr.
 *
 * A line is written when its response is sent, whenever that is (a write
 * is answered after the writer's commit). Each server thread gathers its
 * lines in its own api_log_t and writes them out with one write(2) when
 * 8 KiB have gathered or 100 ms have passed, whichever comes first, so
 * lines from several threads never interleave and logging costs no system
 * call per request. The token is never logged.
 *
 * A line holds the time, the client's address (behind a trusted proxy, the
 * one X-Forwarded-For names), the method, the path, the status, the time
 * taken, the app key, the request id, the error code of an error, and the
 * User-Agent. Two forms (api_log_configure): a readable text line (the
 * default), or one JSON object per line for log shippers. Whatever a
 * client sent is cut (method 16 bytes, path 250, User-Agent 200) and
 * escaped, so a line is always one line, at most API_LOG_LINE_MAX bytes.
 */
#ifndef CRMD_API_LOG_H
#define CRMD_API_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2o.h"

#include "api/proxy.h"

#define API_LOG_BUFSZ 16384
/* The longest line either form writes. */
#define API_LOG_LINE_MAX 2048

enum api_log_format { API_LOG_TEXT, API_LOG_JSON };

/* Chooses the form of every line; call before serving. */
void api_log_configure(enum api_log_format format);
enum api_log_format api_log_format(void);

/* One thread's log buffer; only that thread touches it. */
typedef struct api_log {
    h2o_context_t *ctx; /* whose loop runs the 100 ms flush */
    char buf[API_LOG_BUFSZ];
    size_t len;
    h2o_timeout_entry_t flush;
} api_log_t;

/* What one line says. Strings need not be terminated but the const char
 * ones (NULL or "" for none). */
typedef struct api_log_entry {
    int64_t now;                /* ms since the epoch: dates the line */
    int64_t start_ns;           /* CLOCK_MONOTONIC when the request started */
    const proxy_addr_t *client; /* NULL: unknown */
    h2o_iovec_t method, path, request_id, user_agent;
    int status;
    const char *code; /* the error's code (the first one's), for an error */
    const char *app;  /* the app key; "" before authentication */
    const char *note; /* "client=gone" on the line of a write whose client left */
} api_log_entry_t;

/* Prepares log for the thread that runs ctx's loop. */
void api_log_init(api_log_t *log, h2o_context_t *ctx);

/* Adds the line of e. */
void api_log_write(api_log_t *log, const api_log_entry_t *e);

/* Writes the line of e into buf (size bytes, terminated, at most
 * API_LOG_LINE_MAX with its newline) in the configured form; returns its
 * length. */
size_t api_log_format_line(const api_log_entry_t *e, char *buf, size_t size);

/* Writes out what has gathered; call before the thread ends. */
void api_log_flush(api_log_t *log);

/* A line that is not a request's (the store's messages), in the configured
 * form, written at once with one write(2): the text form writes msg as it
 * is. */
void api_log_message(const char *level, const char *msg);

#endif
