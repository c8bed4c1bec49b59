/*
 * query.c: see query.h.
 */
#include "api/query.h"

#include <string.h>

#include "model/text.h"

/* What a route's entry says about a name: not taken, one value, several. */
enum taken { NOT_TAKEN, SINGLE, MULTI };

static enum taken taken(const api_route_t *route, h2o_iovec_t name)
{
    for (const char *const *q = route->query; q != NULL && *q != NULL; q++) {
        size_t n = strlen(*q);
        bool multi = n > 2 && memcmp(*q + n - 2, "[]", 2) == 0;
        if (multi) n -= 2;
        if (n == name.len && memcmp(*q, name.base, n) == 0) return multi ? MULTI : SINGLE;
    }
    return NOT_TAKEN;
}

bool api_query_takes_any(const api_route_t *route)
{
    return route->query != NULL && route->query[0] != NULL;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into the pool: %XX and '+' for a space. Base NULL when a
 * '%' is not followed by two hex digits, or the result is not UTF-8 or
 * holds a control character. */
static h2o_iovec_t decode(h2o_mem_pool_t *pool, const char *s, size_t n)
{
    char *out = h2o_mem_alloc_pool(pool, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] != '%') {
            out[o++] = s[i];
        } else {
            int hi = i + 2 < n ? hex(s[i + 1]) : -1, lo = i + 2 < n ? hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) return h2o_iovec_init(NULL, 0);
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        }
    }
    out[o] = '\0';
    const char *span;
    size_t len, cps;
    if (text_clean(out, o, false, &span, &len, &cps) != TEXT_OK) return h2o_iovec_init(NULL, 0);
    return h2o_iovec_init(out, o);
}

/* A name as an error shows it: decoded when it can be, else as sent. */
static void shown_name(char *buf, size_t cap, h2o_iovec_t decoded, const char *raw, size_t rawlen)
{
    const char *s = decoded.base != NULL ? decoded.base : raw;
    size_t n = decoded.base != NULL ? decoded.len : rawlen;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        buf[k++] =
            decoded.base != NULL || ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) ? s[i] : '?';
    buf[k] = '\0';
}

static bool seen_before(const struct api_query *q, h2o_iovec_t name)
{
    for (int i = 0; i < q->n; i++)
        if (h2o_memis(q->p[i].name.base, q->p[i].name.len, name.base, name.len)) return true;
    return false;
}

/* Whether a problem with parameter shown has been recorded already. */
static bool said(const struct api_query *q, const char *shown)
{
    for (int i = 0; i < q->errs.n; i++)
        if (strcmp(q->errs.e[i].parameter, shown) == 0) return true;
    return false;
}

/* Adds value v of name to q (a multi-valued one split at its commas). */
static void add_values(struct api_query *q, h2o_iovec_t name, h2o_iovec_t v, enum taken t, const char *shown)
{
    const char *p = v.base, *end = v.base + v.len;
    for (;;) {
        const char *comma = t == MULTI ? memchr(p, ',', (size_t)(end - p)) : NULL;
        const char *vend = comma != NULL ? comma : end;
        if (vend == p) {
            verrs_add(&q->errs, "validation_error", NULL, shown, "%s must not be empty", shown);
            return;
        }
        if (q->n == API_QUERY_MAX) {
            verrs_add(&q->errs, "validation_error", NULL, shown, "At most %d query values are taken",
                      API_QUERY_MAX);
            return;
        }
        q->p[q->n++] = (api_qparam_t){name, h2o_iovec_init(p, (size_t)(vend - p))};
        if (comma == NULL) return;
        p = comma + 1;
    }
}

/* Reads one name=value pair of the query string. */
static void read_pair(api_req_t *r, struct api_query *q, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq != NULL ? (size_t)(eq - s) : n;
    h2o_iovec_t name = decode(&r->req->pool, s, nlen);
    char shown[sizeof q->errs.e[0].parameter];
    shown_name(shown, sizeof shown, name, s, nlen);
    bool brackets = name.base != NULL && name.len >= 2 && memcmp(name.base + name.len - 2, "[]", 2) == 0;
    if (brackets) name.len -= 2;
    enum taken t = name.base != NULL ? taken(r->route, name) : NOT_TAKEN;
    if (t == NOT_TAKEN) {
        if (!said(q, shown))
            verrs_add(&q->errs, "unknown_parameter", NULL, shown, "Unknown query parameter: %s", shown);
        return;
    }
    /* Problems with its values name the parameter as the route does. */
    shown_name(shown, sizeof shown, name, s, nlen);
    if (t == SINGLE && (brackets || seen_before(q, name))) {
        if (!said(q, shown))
            verrs_add(&q->errs, "validation_error", NULL, shown, "%s takes one value", shown);
        return;
    }
    h2o_iovec_t v = eq != NULL ? decode(&r->req->pool, eq + 1, n - nlen - 1) : h2o_iovec_init("", 0);
    if (v.base == NULL) {
        verrs_add(&q->errs, "validation_error", NULL, shown, "%s is not valid percent-encoded UTF-8 text",
                  shown);
        return;
    }
    add_values(q, name, v, t, shown);
}

bool api_query_load(api_req_t *r)
{
    struct api_query *q = h2o_mem_alloc_pool(&r->req->pool, sizeof *q);
    if (q == NULL) return false;
    q->n = 0;
    q->errs = (verrs_t){0};
    r->query = q;
    if (r->query_at == SIZE_MAX) return true;
    const char *p = r->path.base + r->query_at + 1, *end = r->path.base + r->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp != NULL ? amp : end;
        if (pend > p) read_pair(r, q, p, (size_t)(pend - p));
        p = pend + 1;
    }
    return true;
}

int api_query_values(const api_req_t *r, const char *name, h2o_iovec_t *out, int max)
{
    int n = 0;
    size_t len = strlen(name);
    for (int i = 0; r->query != NULL && i < r->query->n; i++) {
        const api_qparam_t *p = &r->query->p[i];
        if (!h2o_memis(p->name.base, p->name.len, name, len)) continue;
        if (n < max) out[n] = p->value;
        n++;
    }
    return n;
}

h2o_iovec_t api_query_value(const api_req_t *r, const char *name)
{
    h2o_iovec_t v = h2o_iovec_init(NULL, 0);
    api_query_values(r, name, &v, 1);
    return v;
}

bool api_query_has_other(const api_req_t *r, const char *const *names)
{
    for (int i = 0; r->query != NULL && i < r->query->n; i++) {
        bool listed = false;
        for (const char *const *n = names; *n != NULL && !listed; n++)
            listed = h2o_memis(r->query->p[i].name.base, r->query->p[i].name.len, *n, strlen(*n));
        if (!listed) return true;
    }
    return false;
}
