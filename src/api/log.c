/*
 * log.c: see log.h.
 */
#include "api/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "model/timestamp.h"

/* A line is flushed early when less than this much room is left. */
#define LINE_MAX_LEN 512
#define FLUSH_AT 8192

static void on_flush(h2o_timeout_entry_t *entry)
{
    api_log_flush(H2O_STRUCT_FROM_MEMBER(api_log_t, flush, entry));
}

void api_log_init(api_log_t *log, h2o_context_t *ctx)
{
    log->ctx = ctx;
    log->len = 0;
    log->flush = (h2o_timeout_entry_t){.cb = on_flush};
}

void api_log_flush(api_log_t *log)
{
    size_t off = 0;
    while (off < log->len) {
        ssize_t n = write(STDERR_FILENO, log->buf + off, log->len - off);
        if (n <= 0) break; /* a log that cannot be written must not stop serving */
        off += (size_t)n;
    }
    log->len = 0;
    if (h2o_timeout_is_linked(&log->flush)) h2o_timeout_unlink(&log->flush);
}

/* Copies s[0..n) into out (outsz bytes), unprintable bytes as '?', and
 * marks a cut with "...". */
static void printable(char *out, size_t outsz, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < outsz - 4; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (o < n) o += (size_t)snprintf(out + o, outsz - o, "...");
    out[o] = '\0';
}

void api_log_request(api_log_t *log, const h2o_req_t *req, int status, const char *app_key, int64_t now,
                     int64_t start_ns)
{
    api_log_line(log, req->method, req->path, status, app_key, now, start_ns, NULL);
}

void api_log_line(api_log_t *log, h2o_iovec_t method_v, h2o_iovec_t path_v, int status, const char *app_key,
                  int64_t now, int64_t start_ns, const char *note)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t dur_us = ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - start_ns) / 1000;
    char when[TS_BUFSZ], path[256], method[20];
    ts_format(now, when);
    printable(path, sizeof path, path_v.base, path_v.len);
    printable(method, sizeof method, method_v.base, method_v.len);
    if (log->len > sizeof log->buf - LINE_MAX_LEN) api_log_flush(log);
    size_t room = sizeof log->buf - log->len;
    int len = snprintf(log->buf + log->len, room, "%s %s %s %d %" PRId64 ".%03dms app=%s%s%s\n", when, method,
                       path, status, dur_us / 1000, (int)(dur_us % 1000), app_key[0] ? app_key : "-",
                       note != NULL ? " " : "", note != NULL ? note : "");
    if (len > 0) log->len += (size_t)len < room ? (size_t)len : room - 1;
    if (log->len >= FLUSH_AT)
        api_log_flush(log);
    else if (!h2o_timeout_is_linked(&log->flush))
        h2o_timeout_link(log->ctx->loop, &log->ctx->hundred_ms_timeout, &log->flush);
}
