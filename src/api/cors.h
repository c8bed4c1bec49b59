/*
 * cors.h: cross-origin requests from browsers (--cors-origin), off by
 * default.
 *
 * The operator lists the origins whose pages may call the API
 * ("https://app.example.com", or "*" for any). crmd's credentials are
 * headers a page must hold and send itself (a bearer token and an app key),
 * never cookies, so allowing an origin lets its pages make the calls their
 * users could make anyway; it never lends them ambient credentials (no
 * Access-Control-Allow-Credentials).
 *
 * With a list set, every answer says Vary: Origin; an answer to a listed
 * origin also has Access-Control-Allow-Origin (that origin, exactly) and
 * Access-Control-Expose-Headers. A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) from a listed origin, on a path the route
 * table has, is a 204 that names the path's methods, the request headers
 * the API reads and a Max-Age; it is answered before credentials, which a
 * preflight never carries. Anything else (no list, another origin, a plain
 * OPTIONS) is answered as without CORS: 404 or 405 with Allow.
 *
 * The list is set once, before serving, and only read afterwards, by every
 * thread.
 */
#ifndef CRMD_API_CORS_H
#define CRMD_API_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "h2o.h"

/* At most this many origins, each at most this long. */
#define CORS_MAX 32
#define CORS_ORIGIN_MAX 255
/* How long a browser may keep a preflight's answer, in seconds. */
#define CORS_MAX_AGE 3600

/* Sets the list to the comma-separated origins of list (NULL or "": none,
 * CORS off): "*", or scheme://host[:port] with scheme http or https and
 * nothing after (no path, no trailing slash), compared without regard to
 * case. -1 with the reason in err (errsz bytes), and CORS off, when one is
 * not such an origin, or there are too many. */
int cors_allow(const char *list, char *err, size_t errsz);

/* Whether a list is set. */
bool cors_enabled(void);

/* Adds the CORS headers of an answer to req (nothing when off). */
void cors_headers(h2o_req_t *req);

/* Whether req is a preflight from a listed origin. */
bool cors_is_preflight(h2o_req_t *req);

/* Adds a preflight's headers to req's answer: the methods allowed (an
 * Allow value), the request headers the API reads, Max-Age. */
void cors_preflight_headers(h2o_req_t *req, h2o_iovec_t methods);

#endif
