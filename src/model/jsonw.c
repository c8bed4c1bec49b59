/*
 * jsonw.c: see jsonw.h.
 */
#include "model/jsonw.h"

#include <stdlib.h>
#include <string.h>

#include "model/decimal.h"

/* Guarantees room for n more bytes; false (and w->oom) if it cannot. */
static bool reserve(jw_t *w, size_t n)
{
    if (w->oom) return false;
    if (w->len + n <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n)
        cap *= 2;
    char *p = realloc(w->buf, cap);
    if (p == NULL) {
        w->oom = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

void jw_reset(jw_t *w)
{
    w->len = 0;
    w->oom = false;
}

void jw_free(jw_t *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void jw_raw(jw_t *w, const char *s, size_t n)
{
    if (!reserve(w, n)) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

void jw_str(jw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* The worst case is six bytes out per byte in (\u00XX), plus quotes. */
    if (!reserve(w, n * 6 + 2)) return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

void jw_cstr(jw_t *w, const char *s)
{
    if (s == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, s, strlen(s));
}

void jw_int(jw_t *w, int64_t v)
{
    char b[1 + DECIMAL_U64_BUFSZ];
    size_t n = 0;
    if (v < 0) b[n++] = '-';
    n += decimal_u64(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, b + n);
    jw_raw(w, b, n);
}
