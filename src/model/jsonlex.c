/*
 * jsonlex.c: see jsonlex.h. A scanner, not a parser: it trusts that the
 * document is valid (jansson said so) and only tracks where it is. It keeps
 * no stack, so nesting depth costs nothing; every loop advances, so it ends.
 */
#include "model/jsonlex.h"

#include <string.h>

typedef struct scan {
    const char *p, *end;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* At an opening quote: moves past the closing one; the raw content (escapes
 * not decoded) is [*start, *start + *n). */
static void skip_string(scan_t *s, const char **start, size_t *n)
{
    s->p++;
    *start = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' && s->p + 1 < s->end) s->p++;
        s->p++;
    }
    *n = (size_t)(s->p - *start);
    if (s->p < s->end) s->p++;
}

/* Skips one value of any kind, counting brackets for containers. */
static void skip_value(scan_t *s)
{
    const char *str;
    size_t n;
    skip_ws(s);
    if (s->p >= s->end) return;
    if (*s->p == '"') {
        skip_string(s, &str, &n);
        return;
    }
    if (*s->p != '{' && *s->p != '[') {
        while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
               *s->p != '\t' && *s->p != '\n' && *s->p != '\r')
            s->p++;
        return;
    }
    size_t depth = 0;
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '"') {
            skip_string(s, &str, &n);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0) {
            s->p++;
            return;
        }
        s->p++;
    }
}

/* At '{': finds the member named key and leaves s at its value. */
static bool find_member(scan_t *s, const char *key)
{
    size_t klen = strlen(key);
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{') return false;
    s->p++;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"') return false;
        const char *name;
        size_t n;
        skip_string(s, &name, &n);
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') return false;
        s->p++;
        skip_ws(s);
        if (n == klen && memcmp(name, key, n) == 0) return true;
        skip_value(s);
        skip_ws(s);
        if (s->p >= s->end || *s->p != ',') return false;
        s->p++;
    }
}

bool jsonlex_number_at(const char *doc, size_t len, const char *k1, const char *k2, const char **out,
                       size_t *outlen)
{
    scan_t s = {doc, doc + len};
    if (!find_member(&s, k1) || !find_member(&s, k2)) return false;
    const char *start = s.p;
    if (s.p >= s.end || !(*s.p == '-' || (*s.p >= '0' && *s.p <= '9'))) return false;
    skip_value(&s);
    *out = start;
    *outlen = (size_t)(s.p - start);
    return true;
}
