/*
 * jwk.c: JSON Web Keys (see jwk.h).
 *
 * An identity provider's key becomes an EVP_PKEY through EVP_PKEY_fromdata
 * from its public numbers alone; its algorithm is decided here, from kty
 * and crv, and never later from a token. An EC point is checked to be on
 * the curve before the key is accepted.
 */
#include "auth/jwk.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/b64url.h"
#include "auth/jwt_int.h"

/* The largest RSA modulus read: 16384 bits. */
#define JWK_NUM_MAX 2048
#define JWK_RSA_MIN_BITS 2048
#define JWK_P256_COORD 32

/* Decodes the base64url member name of jwk into out (cap bytes); false
 * when it is missing or not base64url. */
static bool get_b64(const json_t *jwk, const char *name, unsigned char *out, size_t cap, size_t *len)
{
    const json_t *v = json_object_get(jwk, name);
    return json_is_string(v) && json_string_length(v) > 0 &&
           b64url_decode(json_string_value(v), json_string_length(v), out, cap, len);
}

/* A public key of type name ("RSA" or "EC") from the parameters built in
 * bld; NULL on failure. */
static EVP_PKEY *from_params(const char *name, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* An RSA public key from n and e; NULL (with why) when unusable. */
static EVP_PKEY *rsa_key(const json_t *jwk, const char **why)
{
    unsigned char n[JWK_NUM_MAX], e[16];
    size_t n_len, e_len;
    if (!get_b64(jwk, "n", n, sizeof n, &n_len) || !get_b64(jwk, "e", e, sizeof e, &e_len)) {
        *why = "n or e is missing or not base64url";
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = BN_bin2bn(n, (int)n_len, NULL), *be = BN_bin2bn(e, (int)e_len, NULL);
    EVP_PKEY *pkey = NULL;
    if (bld && bn && be && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = from_params("RSA", bld);
    BN_free(bn);
    BN_free(be);
    OSSL_PARAM_BLD_free(bld);
    if (pkey && EVP_PKEY_get_bits(pkey) < JWK_RSA_MIN_BITS) {
        EVP_PKEY_free(pkey);
        *why = "an RSA key under 2048 bits";
        return NULL;
    }
    if (!pkey) *why = "not a valid RSA public key";
    return pkey;
}

/* A P-256 public key from x and y; NULL (with why) when unusable or off
 * the curve. */
static EVP_PKEY *p256_key(const json_t *jwk, const char **why)
{
    const json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0) {
        *why = "an EC key on another curve than P-256";
        return NULL;
    }
    unsigned char point[1 + 2 * JWK_P256_COORD];
    size_t x_len, y_len;
    point[0] = 4; /* uncompressed: 04 || x || y */
    if (!get_b64(jwk, "x", point + 1, JWK_P256_COORD, &x_len) ||
        !get_b64(jwk, "y", point + 1 + JWK_P256_COORD, JWK_P256_COORD, &y_len) || x_len != JWK_P256_COORD ||
        y_len != JWK_P256_COORD) {
        *why = "x or y is missing, not base64url or not 32 bytes";
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX *check = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    if (pkey && (!check || EVP_PKEY_public_check(check) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    if (!pkey) *why = "not a point on P-256";
    return pkey;
}

/* Whether the optional member name of jwk is absent or exactly want. */
static bool absent_or(const json_t *jwk, const char *name, const char *want)
{
    const json_t *v = json_object_get(jwk, name);
    return !v || (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

/* Makes the external key of one JWK; NULL with why when it is skipped. */
static jwt_key_t *one_key(const json_t *jwk, const char **why)
{
    const json_t *kty = json_object_get(jwk, "kty"), *kid = json_object_get(jwk, "kid");
    const char *type = json_is_string(kty) ? json_string_value(kty) : "";
    bool rsa = strcmp(type, "RSA") == 0, ec = strcmp(type, "EC") == 0;
    if (!json_is_object(jwk) || (!rsa && !ec)) {
        *why = "kty is not RSA or EC (HMAC keys are never accepted)";
        return NULL;
    }
    if (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) >= JWT_KID_MAX) {
        *why = "no kid (or one over 127 bytes)";
        return NULL;
    }
    if (!absent_or(jwk, "use", "sig")) {
        *why = "use is not sig";
        return NULL;
    }
    if (!absent_or(jwk, "alg", rsa ? "RS256" : "ES256")) {
        *why = rsa ? "an RSA key for another algorithm than RS256"
                   : "an EC key for another algorithm than ES256";
        return NULL;
    }
    EVP_PKEY *pkey = rsa ? rsa_key(jwk, why) : p256_key(jwk, why);
    jwt_key_t *key = pkey ? calloc(1, sizeof(*key)) : NULL;
    if (!key) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    key->pkey = pkey;
    key->alg = rsa ? JWT_ALG_RS256 : JWT_ALG_ES256;
    key->external = true;
    memcpy(key->kid, json_string_value(kid), json_string_length(kid) + 1);
    return key;
}

/* Appends "kid: why; " to notes (cut to fit). */
static void note(char *notes, size_t notessz, const json_t *jwk, const char *why)
{
    const json_t *kid = json_object_get(jwk, "kid");
    size_t used = strnlen(notes, notessz);
    if (used + 1 >= notessz) return;
    snprintf(notes + used, notessz - used, "%skey %.64s: %s", used ? "; " : "",
             json_is_string(kid) ? json_string_value(kid) : "(no kid)", why);
}

int jwk_set_parse(const char *text, size_t len, jwt_keyset_t *set, char *err, size_t errsz, char *notes,
                  size_t notessz)
{
    json_error_t jerr;
    if (notessz > 0) notes[0] = '\0';
    json_t *doc = len <= JWK_SET_MAX ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errsz, "not a JWK Set (a JSON object with a \"keys\" array, at most %d bytes)",
                 JWK_SET_MAX);
        json_decref(doc);
        return -1;
    }
    int added = 0;
    size_t i;
    const json_t *jwk;
    json_array_foreach(keys, i, jwk)
    {
        const char *why = "out of memory";
        jwt_key_t *key = one_key(jwk, &why);
        if (key && jwt_keyset_find(set, key->kid)) {
            why = "a kid already in use";
            jwt_key_free(key);
            key = NULL;
        }
        if (key && jwt_keyset_add(set, key) == JWT_OK)
            added++;
        else if (!key)
            note(notes, notessz, jwk, why);
    }
    ERR_clear_error();
    json_decref(doc);
    if (added == 0) snprintf(err, errsz, "no usable key (RS256 RSA or ES256 P-256, with a kid)");
    return added > 0 ? added : -1;
}

/* Sets member name of obj to the base64url text of the RSA parameter
 * param of pkey; false on failure. */
static bool put_bn(json_t *obj, const char *name, const EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char bin[JWK_NUM_MAX];
    char text[JWK_NUM_MAX * 4 / 3 + 4];
    bool ok = false;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) == 1 && BN_num_bytes(bn) <= (int)sizeof bin) {
        int n = BN_bn2bin(bn, bin);
        size_t t = b64url_encode(bin, (size_t)n, text);
        ok = json_object_set_new(obj, name, json_stringn(text, t)) == 0;
    }
    BN_free(bn);
    return ok;
}

char *jwk_set_render(const jwt_keyset_t *set, size_t *len)
{
    json_t *keys = json_array(), *doc = json_pack("{s:o}", "keys", keys);
    bool ok = keys && doc;
    for (size_t i = 0; ok && i < jwt_keyset_count(set); i++) {
        const jwt_key_t *k = jwt_keyset_key(set, i);
        if (k->external) continue;
        json_t *jwk =
            json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", k->kid, "use", "sig", "alg", "RS256");
        ok = jwk && put_bn(jwk, "n", k->pkey, OSSL_PKEY_PARAM_RSA_N) &&
             put_bn(jwk, "e", k->pkey, OSSL_PKEY_PARAM_RSA_E) && json_array_append_new(keys, jwk) == 0;
        if (!ok) json_decref(jwk);
    }
    char *text = ok ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text) *len = strlen(text);
    return text;
}
