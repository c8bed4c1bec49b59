/*
 * query.h: a request's query string, read once against its route's
 * parameters (extensions.md, "Common rules").
 *
 * A route entry lists the parameters it takes (routes.c); a name ending in
 * "[]" there takes several values. Reading the query string (api_query_load,
 * called for every route that needs credentials, after them) percent-decodes
 * names and values ('+' is a space), accepts a multi-valued parameter as a
 * comma list, as repeats and in the `name[]` form, and records every
 * problem at once: an unknown name (unknown_parameter), an empty value, a
 * single-valued parameter given twice, text that is not UTF-8. A route that
 * takes no parameters answers those problems before its handler runs; one
 * that takes some reports them with its own (api/find.c).
 */
#ifndef CRMD_API_QUERY_H
#define CRMD_API_QUERY_H

#include <stdbool.h>

#include "api/api_int.h"

/* At most this many values in one query string (more is a 422). */
#define API_QUERY_MAX 128

typedef struct api_qparam {
    h2o_iovec_t name;  /* decoded, without "[]"; a route's own spelling */
    h2o_iovec_t value; /* decoded; one value of a comma list */
} api_qparam_t;

/* The decoded query string of a request, in its pool. */
struct api_query {
    int n;
    api_qparam_t p[API_QUERY_MAX];
    verrs_t errs; /* what was wrong with it */
};

/* Reads r's query string into r->query against r->route's parameters.
 * False only when out of memory. */
bool api_query_load(api_req_t *r);

/* Whether route takes any query parameter. */
bool api_query_takes_any(const api_route_t *route);

/* The values given for name (a parameter r's route takes), in order:
 * returns how many, and puts the first max of them in out. */
int api_query_values(const api_req_t *r, const char *name, h2o_iovec_t *out, int max);

/* The value of a single-valued parameter, or base NULL when not given. */
h2o_iovec_t api_query_value(const api_req_t *r, const char *name);

/* Whether any parameter but those of names[] (NULL-terminated) was given. */
bool api_query_has_other(const api_req_t *r, const char *const *names);

#endif
