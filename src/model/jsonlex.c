/*
 * jsonlex.c: see jsonlex.h. A scanner, not a parser: it trusts that the
 * document is valid (jansson said so) and only tracks where it is. It keeps
 * no stack, so nesting depth costs nothing; every loop advances, so it ends.
 */
#include "model/jsonlex.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/text.h"

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

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits at raw[*i..], advancing *i; -1 if malformed. */
static long read_hex4(const char *raw, size_t n, size_t *i)
{
    if (*i + 4 > n) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_value(raw[(*i)++]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Decodes the next character of the raw string content raw[*i..n) (one
 * escape or one byte) into out as UTF-8; returns its length, 0 at a
 * malformed escape (the document was valid, so only at the end). */
static size_t next_char(const char *raw, size_t n, size_t *i, unsigned char out[4])
{
    if (raw[*i] != '\\') {
        out[0] = (unsigned char)raw[(*i)++];
        return 1;
    }
    if (*i + 1 >= n) return 0;
    char e = raw[*i + 1];
    *i += 2;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *f = e != 'u' ? strchr(from, e) : NULL;
    if (f != NULL && e != '\0') {
        out[0] = (unsigned char)to[f - from];
        return 1;
    }
    long cp = e == 'u' ? read_hex4(raw, n, i) : -1;
    if (cp >= 0xD800 && cp < 0xDC00 && *i + 1 < n && raw[*i] == '\\' && raw[*i + 1] == 'u') {
        *i += 2;
        long lo = read_hex4(raw, n, i);
        cp = lo >= 0xDC00 && lo < 0xE000 ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00) : -1;
    }
    if (cp < 0) return 0;
    return text_utf8_encode((uint32_t)cp, (char *)out);
}

/* Whether the raw (still escaped) string content raw[0..n) spells key once
 * its escapes are decoded, as jansson decodes them: "v\u0061lue" is
 * "value". A member must be found whatever spelling the client chose, or
 * its number would be read from jansson's double instead of its digits. */
static bool key_equals(const char *raw, size_t n, const char *key)
{
    size_t i = 0, k = 0, klen = strlen(key);
    while (i < n) {
        unsigned char c[4];
        size_t m = next_char(raw, n, &i, c);
        if (m == 0 || k + m > klen || memcmp(key + k, c, m) != 0) return false;
        k += m;
    }
    return k == klen;
}

/* At '{': finds the member named key and leaves s at its value. */
static bool find_member(scan_t *s, const char *key)
{
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
        if (key_equals(name, n, key)) return true;
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

size_t jsonlex_elements_at(const char *doc, size_t len, const char *k1, jsonlex_span_t *out, size_t max)
{
    scan_t s = {doc, doc + len};
    if (!find_member(&s, k1)) return 0;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '[') return 0;
    s.p++;
    size_t n = 0;
    while (n < max) {
        skip_ws(&s);
        if (s.p >= s.end || *s.p == ']') break;
        const char *start = s.p;
        skip_value(&s);
        out[n++] = (jsonlex_span_t){start, (size_t)(s.p - start)};
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ',') break;
        s.p++;
    }
    return n;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The length of the JSON number at p[0..end - p): the longest prefix in
 * the number grammar, as jansson's lexer reads it; 0 if there is none. */
static size_t number_len(const char *p, const char *end)
{
    const char *q = p;
    if (q < end && *q == '-') q++;
    if (q >= end || !is_digit(*q)) return 0;
    if (*q++ != '0')
        while (q < end && is_digit(*q))
            q++;
    if (q + 1 < end && *q == '.' && is_digit(q[1]))
        for (q++; q < end && is_digit(*q);)
            q++;
    if (q < end && (*q == 'e' || *q == 'E')) {
        const char *e = q + 1;
        if (e < end && (*e == '+' || *e == '-')) e++;
        if (e < end && is_digit(*e))
            for (q = e; q < end && is_digit(*q);)
                q++;
    }
    return (size_t)(q - p);
}

/* Whether jansson refuses the number num[0..n) as too large; num[n] must
 * be writable (it is put back). */
static bool number_overflows(char *num, size_t n, size_t flags)
{
    char after = num[n];
    num[n] = '\0';
    errno = 0;
    bool over = isinf(strtod(num, NULL)) && errno == ERANGE;
    if (!over && !(flags & JSON_DECODE_INT_AS_REAL) && strpbrk(num, ".eE") == NULL) {
        errno = 0;
        (void)strtoll(num, NULL, 10);
        over = errno == ERANGE;
    }
    num[n] = after;
    return over;
}

/* Overwrites every number of doc[0..len) that jansson refuses as too large
 * with 1e308 (or -1e308) of the same length, its exponent padded with
 * zeros. Strings are skipped; doc[len] must be writable. Such a number has
 * at least five characters ("2e308"), six when negative. */
static void saturate_numbers(char *doc, size_t len, size_t flags)
{
    scan_t s = {doc, doc + len};
    while (s.p < s.end) {
        if (*s.p == '"') {
            const char *str;
            size_t n;
            skip_string(&s, &str, &n);
            continue;
        }
        size_t n = number_len(s.p, s.end);
        char *num = doc + (s.p - doc);
        s.p += n > 0 ? n : 1;
        if (n == 0 || !number_overflows(num, n, flags)) continue;
        const char *head = num[0] == '-' ? "-1e" : "1e";
        size_t hl = strlen(head);
        if (n < hl + 3) continue;
        memcpy(num, head, hl);
        memset(num + hl, '0', n - hl - 3);
        memcpy(num + n - 3, "308", 3);
    }
}

json_t *jsonlex_loadb(const char *doc, size_t len, size_t flags, json_error_t *err)
{
    json_error_t own;
    if (err == NULL) err = &own;
    json_t *root = json_loadb(doc, len, flags, err);
    if (root != NULL || json_error_code(err) != json_error_numeric_overflow) return root;
    /* Parsed again, the numbers in range: the tree, or what else is wrong
     * with the document. */
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, doc, len);
    copy[len] = '\0';
    saturate_numbers(copy, len, flags);
    root = json_loadb(copy, len, flags, err);
    free(copy);
    return root;
}
