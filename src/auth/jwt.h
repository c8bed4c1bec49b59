/*
 * jwt.h: JSON Web Tokens (RFC 7519 / 7515) signed RS256 or ES256, with
 * OpenSSL 3.
 *
 * The algorithm is pinned by the key, never taken from the token: crmd's
 * own keys are RSA and verify RS256 only; keys of an external identity
 * provider (jwk.h) verify RS256 (RSA) or ES256 (P-256) only, as their JWK
 * says. A header whose "alg" is anything else ("none", "HS256", "RS512",
 * another key's algorithm, missing) is rejected.
 */
#ifndef CRMD_AUTH_JWT_H
#define CRMD_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jwt_rc {
    JWT_OK = 0,
    JWT_MALFORMED,   /* not three base64url parts, bad JSON, wrong claim types */
    JWT_BAD_ALG,     /* header alg is not exactly the key's (or typ is not JWT) */
    JWT_BAD_SIG,     /* signature does not verify with the key */
    JWT_NO_EXP,      /* no numeric exp claim */
    JWT_EXPIRED,     /* now >= exp */
    JWT_NOT_YET,     /* nbf present and now < nbf, or iat more than 60 s ahead */
    JWT_NO_APP,      /* no string app claim */
    JWT_INTERNAL,    /* OpenSSL or allocation failure */
    JWT_NO_KID,      /* a key set was asked, and the header names no key (kid) */
    JWT_UNKNOWN_KID, /* ... or one the set does not hold */
    JWT_BAD_CLAIM    /* an external token's iss or aud is not the one required */
};

/* The algorithms a key may be pinned to. */
enum jwt_alg { JWT_ALG_RS256 = 1, JWT_ALG_ES256 };

/* The longest key id kept, with its NUL (crmd's own are 16 hex digits). */
#define JWT_KID_MAX 128

#define JWT_CLAIM_MAX 128
typedef struct jwt_claims {
    char iss[JWT_CLAIM_MAX];
    char sub[JWT_CLAIM_MAX];
    char app[JWT_CLAIM_MAX]; /* the app key (pk_live_...) */
    char jti[JWT_CLAIM_MAX];
    int64_t iat; /* seconds since the epoch */
    int64_t exp;
} jwt_claims_t;

/* A key: crmd's own RSA key pair (jwt_key_load), or the public key of an
 * external identity provider (jwk.h). Read-only once loaded, so one may be
 * shared by every thread. */
typedef struct jwt_key jwt_key_t;

/* Generates a new 2048-bit RSA key pair; *pem receives its PKCS#8 PEM text
 * (the caller frees it with free()). Returns a jwt_rc. */
int jwt_key_generate(char **pem);

/* Loads a private key from PEM text; NULL on failure. jwt_key_free frees. */
jwt_key_t *jwt_key_load(const char *pem, size_t len);
void jwt_key_free(jwt_key_t *key);

/* The key's id: the first 16 hex digits of the SHA-256 of its public key in
 * DER form, NUL-terminated; valid as long as key. Put in the "kid" header. */
const char *jwt_key_id(const jwt_key_t *key);

/* A secret derived from the private key (32 bytes, valid as long as key),
 * or NULL for an external provider's key, which has no private half:
 * every process serving one database loads the same keys, so all of them
 * derive the same secrets, which key MACs of what crmd hands out and reads
 * back (list cursors), never leaking the key itself. */
#define JWT_SECRET_BYTES 32
const unsigned char *jwt_key_secret(const jwt_key_t *key);

/* Signs claims into a compact JWT (header {"alg":"RS256","typ":"JWT","kid":...});
 * *token receives it (the caller frees it with free()). Returns a jwt_rc. */
int jwt_sign(const jwt_key_t *key, const jwt_claims_t *claims, char **token);

/* The key's algorithm (enum jwt_alg), and whether it is an external
 * provider's public key. */
int jwt_key_alg(const jwt_key_t *key);
bool jwt_key_external(const jwt_key_t *key);

/* Verifies a compact JWT token[0..len) against key at time now (seconds):
 * alg exactly the key's, signature, exp required and in the future,
 * nbf/iat not in the future (60 s leeway for iat only), app claim present.
 * The header's kid is not compared: the signature decides. On JWT_OK *out
 * holds the claims. Never reads past len; tokens over 8 KiB are
 * JWT_MALFORMED. Returns a jwt_rc. */
int jwt_verify(const jwt_key_t *key, const char *token, size_t len, int64_t now, jwt_claims_t *out);

/*
 * Key sets: the keys a server verifies with, found by the kid of the
 * token's header. A set is built once (jwt_keyset_add), then shared
 * read-only by every thread, counted by references (any thread may take
 * or drop one).
 */
typedef struct jwt_keyset jwt_keyset_t;

/* What tokens of external keys must also satisfy: the claim that names the
 * app (crmd's own tokens always use "app"), and, when not NULL, the exact
 * issuer (iss) and an audience (aud, a string or an array holding it). */
typedef struct jwt_rules {
    const char *app_claim;
    const char *issuer;
    const char *audience;
} jwt_rules_t;

/* A new empty set with one reference; NULL when out of memory. */
jwt_keyset_t *jwt_keyset_new(void);
/* Adds key, which the set then owns (also on failure, when it is freed).
 * Returns JWT_OK, JWT_MALFORMED when the set already holds a key with its
 * kid, or JWT_INTERNAL. */
int jwt_keyset_add(jwt_keyset_t *set, jwt_key_t *key);
jwt_keyset_t *jwt_keyset_ref(jwt_keyset_t *set);
void jwt_keyset_unref(jwt_keyset_t *set);
size_t jwt_keyset_count(const jwt_keyset_t *set);
/* The i-th key added (valid while the set is). */
const jwt_key_t *jwt_keyset_key(const jwt_keyset_t *set, size_t i);
/* The key with this kid, or NULL. */
const jwt_key_t *jwt_keyset_find(const jwt_keyset_t *set, const char *kid);

/* As jwt_verify, with the key of set that the header's kid names: a
 * header without a kid is JWT_NO_KID, a kid the set does not hold
 * JWT_UNKNOWN_KID. An external key's token is also held to rules (its app
 * claim, issuer and audience: JWT_NO_APP, JWT_BAD_CLAIM); rules may be NULL
 * when the set holds only crmd's keys. */
int jwt_verify_set(const jwt_keyset_t *set, const jwt_rules_t *rules, const char *token, size_t len,
                   int64_t now, jwt_claims_t *out);

/* An OpenSSL pass phrase callback that refuses: an encrypted PEM (a key, a
 * certificate) fails to load instead of OpenSSL asking the terminal,
 * which would block a start or a reload. For every PEM crmd reads. */
int jwt_pem_no_pass_phrase(char *buf, int size, int rwflag, void *u);

#endif
