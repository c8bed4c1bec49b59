/*
 * jwt_int.h: what jwt.c and jwk.c share, and nothing outside src/auth/ sees:
 * the layout of a key.
 */
#ifndef CRMD_AUTH_JWT_INT_H
#define CRMD_AUTH_JWT_INT_H

#include <openssl/evp.h>
#include <stdbool.h>

#include "auth/jwt.h"

/* The key's EVP_PKEY is owned by it and only read once the key is made, so
 * any number of threads may verify with it at once (each with its own
 * EVP_MD_CTX). */
struct jwt_key {
    EVP_PKEY *pkey;
    int alg;       /* enum jwt_alg: the only algorithm it verifies */
    bool external; /* an identity provider's public key (jwk.h) */
    char kid[JWT_KID_MAX];
    unsigned char secret[JWT_SECRET_BYTES]; /* crmd's own keys only: see jwt_key_secret */
};

#endif
