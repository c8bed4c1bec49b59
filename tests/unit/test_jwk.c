/*
 * test_jwk.c: key sets (jwt_verify_set) and JSON Web Keys (src/auth/jwk.c).
 *
 * ES256 tokens are signed here with OpenSSL directly (DER signature turned
 * into JWS's r || s by hand), so a bug in the library's conversion cannot
 * hide itself.
 */
#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/b64url.h"
#include "auth/jwk.h"
#include "auth/jwt.h"

#define NOW INT64_C(1700000000)

static char *b64(const void *data, size_t n)
{
    char *out = malloc(b64url_encoded_len(n) + 1);
    out[b64url_encode(data, n, out)] = '\0';
    return out;
}

/* A compact token of header and payload JSON, signed by sign (NULL: an
 * empty signature). */
static char *token(const char *header, const char *payload, EVP_PKEY *es_key)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    char *signing = NULL;
    cr_assert(asprintf(&signing, "%s.%s", h, p) > 0);
    unsigned char raw[64] = {0};
    if (es_key != NULL) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char der[128];
        size_t der_len = sizeof der;
        cr_assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, es_key) == 1);
        cr_assert(EVP_DigestSign(ctx, der, &der_len, (unsigned char *)signing, strlen(signing)) == 1);
        EVP_MD_CTX_free(ctx);
        const unsigned char *q = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
        cr_assert_not_null(sig);
        BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
        ECDSA_SIG_free(sig);
    }
    char *s = b64(raw, es_key != NULL ? 64 : 0), *tok = NULL;
    cr_assert(asprintf(&tok, "%s.%s", signing, s) > 0);
    free(h), free(p), free(s), free(signing);
    return tok;
}

/* The JWK Set text of a P-256 key's public half, with kid (and alg when not NULL). */
static char *ec_jwks(EVP_PKEY *key, const char *kid, const char *alg)
{
    unsigned char point[65];
    size_t n = 0;
    cr_assert(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &n) == 1);
    cr_assert_eq(n, 65);
    char *x = b64(point + 1, 32), *y = b64(point + 33, 32), *text = NULL;
    cr_assert(
        asprintf(
            &text,
            "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",%s%s%s\"x\":\"%s\",\"y\":\"%s\"}]}",
            kid, alg ? "\"alg\":\"" : "", alg ? alg : "", alg ? "\"," : "", x, y) > 0);
    free(x), free(y);
    return text;
}

static const jwt_rules_t RULES = {.app_claim = "tenant", .issuer = "https://idp", .audience = "crmd"};

static char *claims(const char *iss, const char *aud, const char *app_claim)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "{\"iss\":\"%s\",\"aud\":%s,\"%s\":\"pk_live_x\",\"exp\":%lld,\"jti\":\"j1\"}",
                       iss, aud, app_claim, (long long)NOW + 60) > 0);
    return p;
}

Test(jwk, es256_tokens_verify_with_their_key_only)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(ec);
    char *text = ec_jwks(ec, "ec1", "ES256"), err[256], notes[256];
    jwt_keyset_t *set = jwt_keyset_new();
    cr_assert_eq(jwk_set_parse(text, strlen(text), set, err, sizeof err, notes, sizeof notes), 1, "%s", err);
    cr_expect_str_eq(notes, "");
    const jwt_key_t *k = jwt_keyset_find(set, "ec1");
    cr_assert_not_null(k);
    cr_expect_eq(jwt_key_alg(k), JWT_ALG_ES256);
    cr_expect(jwt_key_external(k));

    char *good = claims("https://idp", "[\"x\",\"crmd\"]", "tenant");
    char *tok = token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", good, ec);
    jwt_claims_t c;
    cr_expect_eq(jwt_verify_set(set, &RULES, tok, strlen(tok), NOW, &c), JWT_OK);
    cr_expect_str_eq(c.app, "pk_live_x");
    cr_expect_str_eq(c.jti, "j1");
    free(tok);

    struct {
        const char *header;
        char *payload;
        int want;
    } bad[] = {
        {"{\"alg\":\"RS256\",\"kid\":\"ec1\"}", strdup(good), JWT_BAD_ALG},
        {"{\"alg\":\"none\",\"kid\":\"ec1\"}", strdup(good), JWT_BAD_ALG},
        {"{\"alg\":\"HS256\",\"kid\":\"ec1\"}", strdup(good), JWT_BAD_ALG},
        {"{\"alg\":\"ES256\"}", strdup(good), JWT_NO_KID},
        {"{\"alg\":\"ES256\",\"kid\":\"ec2\"}", strdup(good), JWT_UNKNOWN_KID},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims("https://evil", "\"crmd\"", "tenant"), JWT_BAD_CLAIM},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims("https://idp", "\"other\"", "tenant"), JWT_BAD_CLAIM},
        {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims("https://idp", "\"crmd\"", "app"), JWT_NO_APP},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tok = token(bad[i].header, bad[i].payload, ec);
        cr_expect_eq(jwt_verify_set(set, &RULES, tok, strlen(tok), NOW, NULL), bad[i].want, "case %zu", i);
        free(tok);
        free(bad[i].payload);
    }
    /* A signature of another length than 64 bytes is refused as such. */
    tok = token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", good, NULL);
    cr_expect_eq(jwt_verify_set(set, &RULES, tok, strlen(tok), NOW, NULL), JWT_BAD_SIG);
    free(tok);
    free(good);
    free(text);
    jwt_keyset_unref(set);
    EVP_PKEY_free(ec);
}

Test(jwk, unusable_keys_are_skipped_and_said)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *es512 = ec_jwks(ec, "e", "ES512"), err[256], notes[512];
    jwt_keyset_t *set = jwt_keyset_new();
    cr_expect_eq(jwk_set_parse(es512, strlen(es512), set, err, sizeof err, notes, sizeof notes), -1);
    cr_expect(strstr(notes, "key e:") != NULL, "%s", notes);
    const char *others[] = {
        "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        /* A point that is not on the curve. */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"o\",\"x\":"
        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"alg\":\"RS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":{}}",
        "[]",
        "not json",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        cr_expect_eq(jwk_set_parse(others[i], strlen(others[i]), set, err, sizeof err, notes, sizeof notes),
                     -1, "case %zu", i);
    cr_expect_eq(jwt_keyset_count(set), 0);
    free(es512);
    jwt_keyset_unref(set);
    EVP_PKEY_free(ec);
}

Test(jwk, own_keys_render_and_verify_by_kid)
{
    char *pem = NULL;
    cr_assert_eq(jwt_key_generate(&pem), JWT_OK);
    jwt_key_t *key = jwt_key_load(pem, strlen(pem));
    free(pem);
    char kid[JWT_KID_MAX];
    snprintf(kid, sizeof kid, "%s", jwt_key_id(key));
    jwt_claims_t in = {.iss = "crmd", .app = "pk_live_y", .iat = NOW, .exp = NOW + 60};
    char *tok = NULL;
    cr_assert_eq(jwt_sign(key, &in, &tok), JWT_OK);

    jwt_keyset_t *own = jwt_keyset_new();
    cr_assert_eq(jwt_keyset_add(own, key), JWT_OK);
    cr_expect_eq(jwt_verify_set(own, NULL, tok, strlen(tok), NOW, NULL), JWT_OK);
    size_t len = 0;
    char *jwks = jwk_set_render(own, &len);
    cr_assert_not_null(jwks);
    cr_expect(strstr(jwks, kid) != NULL && strstr(jwks, "\"alg\":\"RS256\"") != NULL, "%s", jwks);

    /* What is published verifies what crmd signs: the rendered n and e are
     * the key's. */
    jwt_keyset_t *pub = jwt_keyset_new();
    char err[256], notes[256];
    cr_assert_eq(jwk_set_parse(jwks, len, pub, err, sizeof err, notes, sizeof notes), 1, "%s", err);
    jwt_rules_t rules = {.app_claim = "app"};
    cr_expect_eq(jwt_verify_set(pub, &rules, tok, strlen(tok), NOW, NULL), JWT_OK);
    free(tok);
    free(jwks);
    jwt_keyset_unref(own);
    jwt_keyset_unref(pub);
}
