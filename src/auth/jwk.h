/*
 * jwk.h: JSON Web Keys (RFC 7517, 7518): reading an identity provider's key
 * set, and writing crmd's own public keys as one.
 */
#ifndef CRMD_AUTH_JWK_H
#define CRMD_AUTH_JWK_H

#include <stddef.h>

#include "auth/jwt.h"

/* The largest JWK Set text read (an identity provider publishes a few keys). */
#define JWK_SET_MAX (256 * 1024)

/* Adds the usable keys of the JWK Set text[0..len) to set, as external
 * keys, each pinned to the one algorithm its JWK allows:
 * - kty "RSA" (2048 bits or more) verifies RS256 only; kty "EC" with crv
 *   "P-256" verifies ES256 only. An "alg" member, when present, must name
 *   that algorithm; "use", when present, must be "sig"; a kid is required.
 * - Any other key (kty "oct" for HS256, other curves or algorithms, a key
 *   whose kid set already holds) is skipped, and said in notes (notessz
 *   bytes, "" when none was skipped).
 * Returns the number of keys added, or -1 with the reason in err (errsz
 * bytes) when the text is not a JWK Set or holds no usable key; set then
 * holds what it held before plus nothing. */
int jwk_set_parse(const char *text, size_t len, jwt_keyset_t *set, char *err, size_t errsz, char *notes,
                  size_t notessz);

/* The JWK Set of set's own (not external) keys, in the order they were
 * added: {"keys":[{"kty":"RSA","kid","use":"sig","alg":"RS256","n","e"}]}.
 * Returns malloc'd text (length in *len), or NULL when out of memory. */
char *jwk_set_render(const jwt_keyset_t *set, size_t *len);

#endif
