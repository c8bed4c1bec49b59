/*
 * routes.h: the route table and what is derived from it.
 *
 * Every route is one entry of API_ROUTES (routes.c): one method on one path
 * pattern, with its handler and its facts (query parameters, what its
 * writes make stale, credentials, body limit, summary). Matching, the 404
 * and the 405 with its Allow header, whether auth runs, cache invalidation
 * and the route list of the docs (api_routes_print) all come from it.
 *
 * Matching looks at the raw path only (before '?', not percent-decoded):
 * no id ever holds a '%', so an encoded segment simply names nothing. One
 * trailing slash is ignored; an empty segment matches nothing; the pattern
 * "/" matches the path "/" alone. A literal
 * segment beats a {param} at the same position, so "/leads/summary" can sit
 * beside "/leads/{id}". A HEAD request is served by the GET entry.
 */
#ifndef CRMD_API_ROUTES_H
#define CRMD_API_ROUTES_H

#include <stddef.h>
#include <stdio.h>

#include "api/api_int.h"

extern const api_route_t API_ROUTES[];
extern const size_t API_NROUTES;

typedef struct api_route_match {
    const api_route_t *route;             /* the entry for the method; NULL: a 404 or a 405 */
    unsigned allowed;                     /* the methods of the path's pattern; 0: no pattern (404) */
    h2o_iovec_t params[API_ROUTE_PARAMS]; /* its {param}s in order, pointing into the path */
} api_route_match_t;

/* The method of an HTTP method name (METHOD_OTHER for any other). */
enum api_method api_method_of(const char *name, size_t len);

/* Matches method on path[0..len) (no query string) against table[0..n). */
void api_route_find(const api_route_t *table, size_t n, const char *path, size_t len, enum api_method method,
                    api_route_match_t *m);
/* The same against API_ROUTES. */
void api_route_match(const char *path, size_t len, enum api_method method, api_route_match_t *m);

/* Writes the Allow header value of the METHOD_BITs allowed ("GET, HEAD, PUT, DELETE": in
 * that order, GET implying HEAD) into buf (size bytes, terminated); returns
 * its length. */
size_t api_allow_header(unsigned allowed, char *buf, size_t size);

/* The metrics slot (http/metrics.h) of a request of method that matched no
 * entry: after the entries' own, one per method. */
int api_unmatched_route(enum api_method method);
/* The method's name ("OTHER" for METHOD_OTHER). */
const char *api_method_name(enum api_method method);

/* Prints table[0..n) as a Markdown table: method, path, auth, summary. */
void api_routes_print_table(const api_route_t *table, size_t n, FILE *out);

#endif
