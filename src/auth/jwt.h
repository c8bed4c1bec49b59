/*
 * jwt.h: JSON Web Tokens signed RS256 (RFC 7519 / 7515), with OpenSSL 3.
 *
 * Only RS256 is ever accepted: a header whose "alg" is anything else
 * ("none", "HS256", "RS512", missing) is rejected before any key is used.
 */
#ifndef CRMD_AUTH_JWT_H
#define CRMD_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

enum jwt_rc {
    JWT_OK = 0,
    JWT_MALFORMED, /* not three base64url parts, bad JSON, wrong claim types */
    JWT_BAD_ALG,   /* header alg is not exactly "RS256" (or typ is not JWT) */
    JWT_BAD_SIG,   /* signature does not verify with the key */
    JWT_NO_EXP,    /* no numeric exp claim */
    JWT_EXPIRED,   /* now >= exp */
    JWT_NOT_YET,   /* nbf present and now < nbf, or iat more than 60 s ahead */
    JWT_NO_APP,    /* no string app claim */
    JWT_INTERNAL   /* OpenSSL or allocation failure */
};

#define JWT_CLAIM_MAX 128
typedef struct jwt_claims {
    char iss[JWT_CLAIM_MAX];
    char sub[JWT_CLAIM_MAX];
    char app[JWT_CLAIM_MAX]; /* the app key (pk_live_...) */
    char jti[JWT_CLAIM_MAX];
    int64_t iat; /* seconds since the epoch */
    int64_t exp;
} jwt_claims_t;

/* An RSA key pair, read-only once loaded, so one may be shared by every
 * thread. */
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

/* A secret derived from the private key (32 bytes, valid as long as key):
 * every process serving one database loads the same signing key, so all
 * of them derive the same secret, which keys MACs of what crmd hands out
 * and reads back (list cursors), never leaking the key itself. */
#define JWT_SECRET_BYTES 32
const unsigned char *jwt_key_secret(const jwt_key_t *key);

/* Signs claims into a compact JWT (header {"alg":"RS256","typ":"JWT","kid":...});
 * *token receives it (the caller frees it with free()). Returns a jwt_rc. */
int jwt_sign(const jwt_key_t *key, const jwt_claims_t *claims, char **token);

/* Verifies a compact JWT token[0..len) against key at time now (seconds):
 * alg exactly RS256, signature, exp required and in the future, nbf/iat not
 * in the future (60 s leeway for iat only), app claim present. On JWT_OK
 * *out holds the claims. Never reads past len; tokens over 8 KiB are
 * JWT_MALFORMED. Returns a jwt_rc. */
int jwt_verify(const jwt_key_t *key, const char *token, size_t len, int64_t now, jwt_claims_t *out);

#endif
