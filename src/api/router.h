/*
 * router.h: maps a request path to one of the API's routes.
 *
 * Routing looks at the raw path only (before '?', not percent-decoded): no
 * id ever holds a '%', so an encoded segment simply names nothing. Every
 * route answers the same with or without one trailing slash.
 */
#ifndef CRMD_API_ROUTER_H
#define CRMD_API_ROUTER_H

#include <stddef.h>

enum route_id { ROUTE_NONE, ROUTE_HEALTH, ROUTE_LEADS, ROUTE_LEAD, ROUTE_FOLLOWS, ROUTE_FOLLOW };

enum route_method {
    METHOD_GET = 1u << 0,
    METHOD_HEAD = 1u << 1,
    METHOD_POST = 1u << 2,
    METHOD_PUT = 1u << 3,
    METHOD_DELETE = 1u << 4,
    METHOD_OTHER = 1u << 5
};

typedef struct route_match {
    int route;      /* enum route_id */
    const char *id; /* the {id} segment (lead), pointing into the path */
    size_t id_len;
    const char *fid; /* the {follow_id} segment */
    size_t fid_len;
} route_match_t;

/* Matches path[0..len) (no query string). Returns the route id, also kept
 * in m->route; ROUTE_NONE when nothing matches. */
int router_match(const char *path, size_t len, route_match_t *m);

/* The method bit for an HTTP method name. */
unsigned router_method(const char *name, size_t len);

/* The methods a route allows, as bits and as an Allow header value. */
unsigned router_allowed(int route);
const char *router_allow_header(int route);

#endif
