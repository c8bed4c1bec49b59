/*
 * router.c: see router.h.
 */
#include "api/router.h"

#include <string.h>

#define MAX_SEGMENTS 4

static int seg_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

int router_match(const char *path, size_t len, route_match_t *m)
{
    memset(m, 0, sizeof *m);
    if (len == 0 || path[0] != '/') return ROUTE_NONE;
    /* One trailing slash is ignored, so "/leads/" is "/leads". */
    if (len > 1 && path[len - 1] == '/') len--;
    const char *seg[MAX_SEGMENTS];
    size_t seglen[MAX_SEGMENTS];
    int n = 0;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || n == MAX_SEGMENTS) /* an empty segment, or too many */
            return ROUTE_NONE;
        seg[n] = path + start;
        seglen[n] = i - start;
        n++;
        i++;
    }
    if (n == 1 && seg_is(seg[0], seglen[0], "healthz")) return m->route = ROUTE_HEALTH;
    if (n == 0 || !seg_is(seg[0], seglen[0], "leads")) return ROUTE_NONE;
    if (n == 1) return m->route = ROUTE_LEADS;
    m->id = seg[1];
    m->id_len = seglen[1];
    if (n == 2) return m->route = ROUTE_LEAD;
    if (!seg_is(seg[2], seglen[2], "follows")) return m->route = ROUTE_NONE;
    if (n == 3) return m->route = ROUTE_FOLLOWS;
    m->fid = seg[3];
    m->fid_len = seglen[3];
    return m->route = ROUTE_FOLLOW;
}

unsigned router_method(const char *s, size_t n)
{
    if (seg_is(s, n, "GET")) return METHOD_GET;
    if (seg_is(s, n, "HEAD")) return METHOD_HEAD;
    if (seg_is(s, n, "POST")) return METHOD_POST;
    if (seg_is(s, n, "PUT")) return METHOD_PUT;
    if (seg_is(s, n, "DELETE")) return METHOD_DELETE;
    return METHOD_OTHER;
}

unsigned router_allowed(int route)
{
    switch (route) {
    case ROUTE_HEALTH:
        return METHOD_GET | METHOD_HEAD;
    case ROUTE_LEADS:
    case ROUTE_FOLLOWS:
        return METHOD_GET | METHOD_HEAD | METHOD_POST;
    case ROUTE_LEAD:
    case ROUTE_FOLLOW:
        return METHOD_GET | METHOD_HEAD | METHOD_PUT | METHOD_DELETE;
    default:
        return 0;
    }
}

const char *router_allow_header(int route)
{
    switch (route) {
    case ROUTE_HEALTH:
        return "GET, HEAD";
    case ROUTE_LEADS:
    case ROUTE_FOLLOWS:
        return "GET, HEAD, POST";
    case ROUTE_LEAD:
    case ROUTE_FOLLOW:
        return "GET, HEAD, PUT, DELETE";
    default:
        return "";
    }
}
