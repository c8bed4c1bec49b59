/*
 * log.c: see log.h.
 */
#include "api/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/timestamp.h"

/* A buffer is flushed early when less than a line's room is left. */
#define FLUSH_AT 8192
/* What is kept of what a client sent. */
#define METHOD_KEEP 16
#define PATH_KEEP 250
#define AGENT_KEEP 200

_Static_assert(API_LOG_BUFSZ - FLUSH_AT >= API_LOG_LINE_MAX, "room for a line after a flush check");

static enum api_log_format format = API_LOG_TEXT;

void api_log_configure(enum api_log_format f)
{
    format = f;
}

enum api_log_format api_log_format(void)
{
    return format;
}

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

static void write_all(const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(STDERR_FILENO, buf + off, len - off);
        if (n <= 0) break; /* a log that cannot be written must not stop serving */
        off += (size_t)n;
    }
}

void api_log_flush(api_log_t *log)
{
    write_all(log->buf, log->len);
    log->len = 0;
    if (h2o_timeout_is_linked(&log->flush)) h2o_timeout_unlink(&log->flush);
}

/* --- writing a line --------------------------------------------------------------- */

/* A line being written: what does not fit is dropped, and room is always
 * left for the closing characters and the newline. */
typedef struct line {
    char *p;
    size_t len, size;
} line_t;

#define TAIL_ROOM 8

static void put(line_t *o, const char *s, size_t n)
{
    size_t room = o->size - TAIL_ROOM - o->len;
    if (o->len + TAIL_ROOM > o->size) room = 0;
    if (n > room) n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(line_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putch(line_t *o, char c)
{
    put(o, &c, 1);
}

/* Text form: s[0..n), at most keep bytes, unprintable bytes and spaces as
 * '?' (so a field is one word), a cut marked "...". */
static void put_word(line_t *o, h2o_iovec_t v, size_t keep)
{
    if (v.len == 0) {
        putch(o, '-');
        return;
    }
    size_t n = v.len < keep ? v.len : keep;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v.base[i];
        putch(o, c > 0x20 && c < 0x7f ? (char)c : '?');
    }
    if (n < v.len) puts_(o, "...");
}

/* A quoted string, at most keep bytes of v, a cut marked "...": '"' and
 * '\\' escaped, and every byte outside printable ASCII as \xHH (text
 * form) or \u00XX (JSON form, json set), so the line stays one line of
 * plain ASCII (and valid JSON) whatever the client sent. */
static void put_escaped(line_t *o, h2o_iovec_t v, size_t keep, bool json)
{
    static const char HEX[] = "0123456789abcdef";
    size_t n = v.len < keep ? v.len : keep;
    putch(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            putch(o, (char)c);
        } else if (json) {
            char esc[6] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15]};
            put(o, esc, 6);
        } else {
            char esc[4] = {'\\', 'x', HEX[c >> 4], HEX[c & 15]};
            put(o, esc, 4);
        }
    }
    if (n < v.len) puts_(o, "...");
    putch(o, '"');
}

/* JSON form: a string, or null when v.base is NULL. */
static void put_json(line_t *o, h2o_iovec_t v, size_t keep)
{
    if (v.base == NULL)
        puts_(o, "null");
    else
        put_escaped(o, v, keep, true);
}

static h2o_iovec_t cstr(const char *s)
{
    return s != NULL && s[0] != '\0' ? h2o_iovec_init(s, strlen(s)) : h2o_iovec_init(NULL, 0);
}

/* The fields both forms compute: time, client, duration. */
typedef struct fields {
    char when[TS_BUFSZ], client[64], dur[32];
} fields_t;

static void compute(const api_log_entry_t *e, fields_t *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t dur_us = ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - e->start_ns) / 1000;
    if (dur_us < 0) dur_us = 0;
    ts_format(e->now, f->when);
    snprintf(f->dur, sizeof f->dur, "%" PRId64 ".%03d", dur_us / 1000, (int)(dur_us % 1000));
    f->client[0] = '\0';
    static const proxy_addr_t none;
    if (e->client != NULL && memcmp(e->client, &none, sizeof none) != 0)
        proxy_addr_format(e->client, f->client, sizeof f->client);
}

/* "2026-01-12T10:00:00.123Z 192.0.2.7 GET /leads/ 200 0.412ms app=pk_live_...
 *  id=... code=... ua="curl/8.0" client=gone" */
static void text_line(line_t *o, const api_log_entry_t *e, const fields_t *f)
{
    char status[16];
    snprintf(status, sizeof status, "%d", e->status);
    puts_(o, f->when);
    putch(o, ' ');
    put_word(o, cstr(f->client), sizeof f->client);
    putch(o, ' ');
    put_word(o, e->method, METHOD_KEEP);
    putch(o, ' ');
    put_word(o, e->path, PATH_KEEP);
    putch(o, ' ');
    puts_(o, status);
    putch(o, ' ');
    puts_(o, f->dur);
    puts_(o, "ms app=");
    put_word(o, cstr(e->app), 128);
    puts_(o, " id=");
    put_word(o, e->request_id, 128);
    if (e->code != NULL && e->code[0] != '\0') {
        puts_(o, " code=");
        put_word(o, cstr(e->code), 64);
    }
    puts_(o, " ua=");
    if (e->user_agent.base != NULL)
        put_escaped(o, e->user_agent, AGENT_KEEP, false);
    else
        putch(o, '-');
    if (e->note != NULL) {
        putch(o, ' ');
        puts_(o, e->note);
    }
}

static void json_line(line_t *o, const api_log_entry_t *e, const fields_t *f)
{
    char num[48];
    puts_(o, "{\"time\":\"");
    puts_(o, f->when);
    puts_(o, "\",\"client\":");
    put_json(o, cstr(f->client), sizeof f->client);
    puts_(o, ",\"method\":");
    put_json(o, e->method.base ? e->method : h2o_iovec_init("", 0), METHOD_KEEP);
    puts_(o, ",\"path\":");
    put_json(o, e->path.base ? e->path : h2o_iovec_init("", 0), PATH_KEEP);
    snprintf(num, sizeof num, ",\"status\":%d,\"duration_ms\":", e->status);
    puts_(o, num);
    puts_(o, f->dur);
    puts_(o, ",\"app\":");
    put_json(o, cstr(e->app), 128);
    puts_(o, ",\"request_id\":");
    put_json(o, e->request_id, 128);
    puts_(o, ",\"code\":");
    put_json(o, cstr(e->code), 64);
    puts_(o, ",\"user_agent\":");
    put_json(o, e->user_agent, AGENT_KEEP);
    if (e->note != NULL) {
        puts_(o, ",\"note\":");
        put_json(o, cstr(e->note), 64);
    }
    o->p[o->len++] = '}'; /* TAIL_ROOM keeps room for it */
}

size_t api_log_format_line(const api_log_entry_t *e, char *buf, size_t size)
{
    if (size > API_LOG_LINE_MAX) size = API_LOG_LINE_MAX;
    line_t o = {buf, 0, size};
    fields_t f;
    compute(e, &f);
    if (format == API_LOG_JSON)
        json_line(&o, e, &f);
    else
        text_line(&o, e, &f);
    buf[o.len++] = '\n';
    buf[o.len] = '\0';
    return o.len;
}

void api_log_write(api_log_t *log, const api_log_entry_t *e)
{
    if (log->len > sizeof log->buf - API_LOG_LINE_MAX) api_log_flush(log);
    log->len += api_log_format_line(e, log->buf + log->len, sizeof log->buf - log->len);
    if (log->len >= FLUSH_AT)
        api_log_flush(log);
    else if (!h2o_timeout_is_linked(&log->flush))
        h2o_timeout_link(log->ctx->loop, &log->ctx->hundred_ms_timeout, &log->flush);
}

void api_log_message(const char *level, const char *msg)
{
    char buf[API_LOG_LINE_MAX + 8];
    line_t o = {buf, 0, sizeof buf};
    size_t n = strlen(msg);
    if (format == API_LOG_JSON) {
        char when[TS_BUFSZ];
        ts_format(ts_now_ms(), when);
        puts_(&o, "{\"time\":\"");
        puts_(&o, when);
        puts_(&o, "\",\"level\":");
        put_json(&o, cstr(level), 16);
        puts_(&o, ",\"message\":");
        put_json(&o, h2o_iovec_init(msg, n), API_LOG_LINE_MAX - 128);
        buf[o.len++] = '}';
    } else {
        put(&o, msg, n);
    }
    buf[o.len++] = '\n';
    write_all(buf, o.len);
}
