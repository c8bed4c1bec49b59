/*
 * cors.c: see cors.h.
 */
#include "api/cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct {
    char origin[CORS_MAX][CORS_ORIGIN_MAX + 1];
    size_t len[CORS_MAX];
    size_t n;
    bool any;
} C;

/* The request headers the API reads, for a preflight. */
static const char ALLOW_HEADERS[] = "Authorization, AppId, X-Api-Key, Content-Type, If-Match, If-None-Match, "
                                    "Idempotency-Key, X-Request-Id";
/* The answer headers a page may read besides the simple ones. */
static const char EXPOSE_HEADERS[] = "Location, ETag, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
                                     "RateLimit-Reset, Retry-After, Idempotent-Replayed";

bool cors_enabled(void)
{
    return C.n > 0 || C.any;
}

/* Whether s[0..n) is "http(s)://host[:port]": a host of letters, digits,
 * '.', '-' (or an IPv6 literal in brackets), an optional port of digits. */
static bool is_origin(const char *s, size_t n)
{
    size_t i;
    if (n > 8 && strncasecmp(s, "https://", 8) == 0)
        i = 8;
    else if (n > 7 && strncasecmp(s, "http://", 7) == 0)
        i = 7;
    else
        return false;
    size_t host = i;
    if (s[i] == '[') {
        /* An IPv6 literal: hex digits, colons and dots (an IPv4 tail) only.
         * Any bytes were taken up to the ']', and echoed back to any origin
         * with --cors-origin '*': over HTTP/2 (h2o 2.2 does not refuse them)
         * even a CR or LF, for a proxy before crmd to pass on (review rv102). */
        i++;
        while (i < n && (s[i] == ':' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
                         ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
            i++;
        if (i == n || s[i] != ']' || i == host + 1) return false;
        i++;
    } else {
        while (i < n && (s[i] == '.' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
                         ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
            i++;
    }
    if (i == host) return false;
    if (i < n && s[i] == ':') {
        size_t port = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == port || i - port > 5) return false;
    }
    return i == n;
}

static int add(const char *s, size_t n, char *err, size_t errsz)
{
    if (n == 1 && s[0] == '*') {
        C.any = true;
        return 0;
    }
    const char *why = n > CORS_ORIGIN_MAX || !is_origin(s, n)
                          ? "is not an origin (scheme://host[:port], or *)"
                      : C.n == CORS_MAX ? "is one origin too many"
                                        : NULL;
    if (why != NULL) {
        snprintf(err, errsz, "'%.*s' %s", (int)(n > 80 ? 80 : n), s, why);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        C.origin[C.n][i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]);
    C.origin[C.n][n] = '\0';
    C.len[C.n++] = n;
    return 0;
}

int cors_allow(const char *list, char *err, size_t errsz)
{
    C.n = 0;
    C.any = false;
    if (list == NULL || list[0] == '\0') return 0;
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *s = p;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0 || add(s, n, err, errsz) != 0) {
            if (n == 0) snprintf(err, errsz, "an empty origin");
            C.n = 0;
            C.any = false;
            return -1;
        }
        p += strcspn(p, ",");
        if (*p == '\0') return 0;
        p++;
    }
}

/* The request's Origin when it is listed (base NULL otherwise). */
static h2o_iovec_t allowed_origin(h2o_req_t *req)
{
    h2o_iovec_t none = h2o_iovec_init(NULL, 0);
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i < 0) return none;
    h2o_iovec_t o = req->headers.entries[i].value;
    if (C.any) return o.len > 0 && o.len <= CORS_ORIGIN_MAX && is_origin(o.base, o.len) ? o : none;
    for (size_t k = 0; k < C.n; k++)
        if (C.len[k] == o.len && strncasecmp(C.origin[k], o.base, o.len) == 0) return o;
    return none;
}

/* name: lower case, static. */
static void add_header(h2o_req_t *req, const char *name, size_t name_len, const char *v, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 1, NULL, v, len);
}

void cors_headers(h2o_req_t *req)
{
    if (!cors_enabled()) return;
    add_header(req, H2O_STRLIT("vary"), H2O_STRLIT("Origin"));
    h2o_iovec_t o = allowed_origin(req);
    if (o.base == NULL) return;
    add_header(req, H2O_STRLIT("access-control-allow-origin"), o.base, o.len);
    add_header(req, H2O_STRLIT("access-control-expose-headers"), H2O_STRLIT(EXPOSE_HEADERS));
}

bool cors_is_preflight(h2o_req_t *req)
{
    return cors_enabled() && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")) &&
           h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) >= 0 &&
           allowed_origin(req).base != NULL;
}

void cors_preflight_headers(h2o_req_t *req, h2o_iovec_t methods)
{
    static const char max_age[] = {'0' + CORS_MAX_AGE / 1000, '0' + CORS_MAX_AGE / 100 % 10,
                                   '0' + CORS_MAX_AGE / 10 % 10, '0' + CORS_MAX_AGE % 10};
    _Static_assert(CORS_MAX_AGE >= 1000 && CORS_MAX_AGE <= 9999, "four digits");
    add_header(req, H2O_STRLIT("access-control-allow-methods"), methods.base, methods.len);
    add_header(req, H2O_STRLIT("access-control-allow-headers"), H2O_STRLIT(ALLOW_HEADERS));
    add_header(req, H2O_STRLIT("access-control-max-age"), max_age, sizeof max_age);
}
