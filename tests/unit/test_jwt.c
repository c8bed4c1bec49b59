/*
 * test_jwt.c: unit tests for src/auth/jwt.c.
 *
 * Tokens the library would never produce (alg none, HS256, duplicate keys,
 * bad claim types) are built here by hand: JSON text is base64url-encoded
 * with OpenSSL's own base64 rather than the code under test, and signed
 * RS256 with the raw EVP_PKEY, so a bug in jwt.c cannot hide itself.
 */
#include "auth/jwt.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW INT64_C(1700000000)
#define TOKEN_MAX 8192
#define ENV_KEY "CRMD_TEST_JWT_KEY"
#define ENV_OTHER "CRMD_TEST_JWT_KEY_OTHER"

/* Criterion runs every test in a freshly executed child process, so a static
 * made in one test is gone in the next. RSA key generation costs about
 * 100 ms, so the runner makes the two keys once before any test starts and
 * hands the PEM text down through the environment, which children inherit;
 * each test then only parses it. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    const char *names[] = {ENV_KEY, ENV_OTHER};
    for (size_t i = 0; i < 2; i++) {
        char *pem = NULL;
        if (getenv(names[i])) continue;
        if (jwt_key_generate(&pem) == JWT_OK) setenv(names[i], pem, 1);
        free(pem);
    }
}

static struct {
    char *pem;        /* the main key's PKCS#8 PEM text */
    jwt_key_t *key;   /* the main key, as the library loads it */
    EVP_PKEY *raw;    /* the same key, for signing hand-made tokens */
    jwt_key_t *other; /* a second, unrelated key */
    char *pub_pem;    /* the main key's public half, as SPKI PEM */
} fx;

/* Returns a copy of the PEM the runner exported, or a new one when the test
 * was started on its own (for instance under a debugger with --filter). */
static char *fixture_pem(const char *env)
{
    const char *v = getenv(env);
    if (v) return strdup(v);
    char *pem = NULL;
    cr_assert_eq(jwt_key_generate(&pem), JWT_OK);
    setenv(env, pem, 1);
    return pem;
}

static void setup(void)
{
    fx.pem = fixture_pem(ENV_KEY);
    fx.key = jwt_key_load(fx.pem, strlen(fx.pem));
    cr_assert_not_null(fx.key);

    BIO *bio = BIO_new_mem_buf(fx.pem, -1);
    fx.raw = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    cr_assert_not_null(fx.raw);

    bio = BIO_new(BIO_s_mem());
    cr_assert(PEM_write_bio_PUBKEY(bio, fx.raw));
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    fx.pub_pem = strndup(data, (size_t)n);
    BIO_free(bio);

    char *other_pem = fixture_pem(ENV_OTHER);
    fx.other = jwt_key_load(other_pem, strlen(other_pem));
    free(other_pem);
    cr_assert_not_null(fx.other);
}

static void teardown(void)
{
    jwt_key_free(fx.key);
    jwt_key_free(fx.other);
    EVP_PKEY_free(fx.raw);
    free(fx.pem);
    free(fx.pub_pem);
    memset(&fx, 0, sizeof(fx));
}

TestSuite(jwt, .init = setup, .fini = teardown);

/* Encodes data[0..n) as unpadded base64url with OpenSSL's base64, into a
 * malloc'd string. */
static char *b64url(const void *data, size_t n)
{
    char *out = malloc(4 * (n / 3 + 1) + 1);
    cr_assert_not_null(out);
    int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    return out;
}

/* Joins "<b64 header>.<b64 payload>" into a malloc'd string. */
static char *signing_input(const char *header, const char *payload)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *s = malloc(n);
    cr_assert_not_null(s);
    snprintf(s, n, "%s.%s", h, p);
    free(h);
    free(p);
    return s;
}

/* Appends "." and the base64url of sig to input, consuming input. */
static char *append_sig(char *input, const unsigned char *sig, size_t sig_len)
{
    char *s = b64url(sig, sig_len);
    size_t n = strlen(input) + strlen(s) + 2;
    char *tok = malloc(n);
    cr_assert_not_null(tok);
    snprintf(tok, n, "%s.%s", input, s);
    free(s);
    free(input);
    return tok;
}

/* Signs input with pkey using the named digest and PKCS#1 v1.5 padding. */
static size_t rsa_sign(EVP_PKEY *pkey, const char *md, const char *input, unsigned char *sig, size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t sig_len = cap;
    cr_assert_eq(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL), 1);
    cr_assert_gt(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 0);
    cr_assert_eq(EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    return sig_len;
}

/* Builds a token from raw JSON texts, correctly RS256-signed by the main
 * key, so only the property under test is wrong. */
static char *make_rs256(const char *header, const char *payload)
{
    unsigned char sig[512];
    char *input = signing_input(header, payload);
    size_t n = rsa_sign(fx.raw, "SHA256", input, sig, sizeof(sig));
    return append_sig(input, sig, n);
}

/* Verifies a NUL-terminated token at NOW. */
static int verify(const char *token, jwt_claims_t *out)
{
    return jwt_verify(fx.key, token, strlen(token), NOW, out);
}

#define HDR "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define EXP_OK "1700003600"

static int verify_payload(const char *payload)
{
    char *tok = make_rs256(HDR, payload);
    jwt_claims_t c;
    int rc = verify(tok, &c);
    free(tok);
    return rc;
}

static int verify_header(const char *header)
{
    char *tok = make_rs256(header, "{\"app\":\"pk_live_x\",\"exp\":" EXP_OK "}");
    int rc = verify(tok, NULL);
    free(tok);
    return rc;
}

static jwt_claims_t full_claims(void)
{
    jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    strcpy(c.iss, "crmd");
    strcpy(c.sub, "user-42");
    strcpy(c.app, "pk_live_0123456789abcdef");
    strcpy(c.jti, "3f2c8d1e-\"quoted\"-\xc3\xa9");
    c.iat = NOW - 10;
    c.exp = NOW + 3600;
    return c;
}

static char *sign_ok(const jwt_key_t *key, const jwt_claims_t *c)
{
    char *tok = NULL;
    cr_assert_eq(jwt_sign(key, c, &tok), JWT_OK);
    cr_assert_not_null(tok);
    return tok;
}

Test(jwt, key_generate_and_load)
{
    cr_assert(strncmp(fx.pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "not PKCS#8: %.40s", fx.pem);
    cr_assert_eq(EVP_PKEY_get_bits(fx.raw), 2048);

    const char *kid = jwt_key_id(fx.key);
    cr_assert_eq(strlen(kid), 16);
    cr_assert_eq(strspn(kid, "0123456789abcdef"), 16);
    cr_assert_str_neq(kid, jwt_key_id(fx.other));

    /* The kid is the SHA-256 of the SubjectPublicKeyInfo DER. */
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(fx.raw, &der);
    unsigned char md[32];
    size_t md_len = 0;
    cr_assert(EVP_Q_digest(NULL, "SHA256", NULL, der, (size_t)der_len, md, &md_len));
    OPENSSL_free(der);
    char want[17];
    for (int i = 0; i < 8; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    cr_assert_str_eq(kid, want);

    /* Loading the same PEM again gives the same id. */
    jwt_key_t *again = jwt_key_load(fx.pem, strlen(fx.pem));
    cr_assert_not_null(again);
    cr_assert_str_eq(jwt_key_id(again), kid);
    jwt_key_free(again);
}

/* The timeout turns a passphrase prompt, which would hang, into a failure. */
Test(jwt, key_load_rejects, .timeout = 30)
{
    cr_assert_null(jwt_key_load(NULL, 10));
    cr_assert_null(jwt_key_load("", 0));
    cr_assert_null(jwt_key_load("garbage", 7));
    /* A truncated PEM. */
    cr_assert_null(jwt_key_load(fx.pem, strlen(fx.pem) / 2));
    /* A public key alone cannot sign. */
    cr_assert_null(jwt_key_load(fx.pub_pem, strlen(fx.pub_pem)));

    /* An encrypted PEM fails instead of prompting for a passphrase. */
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert(PEM_write_bio_PKCS8PrivateKey(bio, fx.raw, EVP_aes_128_cbc(), "pw", 2, NULL, NULL));
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    cr_assert_null(jwt_key_load(data, (size_t)n));
    BIO_free(bio);

    /* Not RSA, and RSA too small. */
    EVP_PKEY *keys[] = {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)};
    for (size_t i = 0; i < 2; i++) {
        cr_assert_not_null(keys[i]);
        bio = BIO_new(BIO_s_mem());
        cr_assert(PEM_write_bio_PrivateKey(bio, keys[i], NULL, NULL, 0, NULL, NULL));
        n = BIO_get_mem_data(bio, &data);
        cr_assert_null(jwt_key_load(data, (size_t)n), "key %zu loaded", i);
        BIO_free(bio);
        EVP_PKEY_free(keys[i]);
    }
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left dirty");
}

Test(jwt, round_trip_every_claim)
{
    jwt_claims_t in = full_claims(), out;
    char *tok = sign_ok(fx.key, &in);

    cr_assert_eq(strchr(tok, '='), NULL);
    const char *d1 = strchr(tok, '.');
    cr_assert_not_null(d1);
    const char *d2 = strchr(d1 + 1, '.');
    cr_assert_not_null(d2);
    cr_assert_null(strchr(d2 + 1, '.'));

    /* The header is exactly what jwt.h promises. */
    char want_hdr[128];
    snprintf(want_hdr, sizeof(want_hdr), "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             jwt_key_id(fx.key));
    char *h = b64url(want_hdr, strlen(want_hdr));
    cr_assert_eq((size_t)(d1 - tok), strlen(h));
    cr_assert(strncmp(tok, h, strlen(h)) == 0);
    free(h);

    memset(&out, 0x55, sizeof(out));
    cr_assert_eq(verify(tok, &out), JWT_OK);
    cr_assert_str_eq(out.iss, in.iss);
    cr_assert_str_eq(out.sub, in.sub);
    cr_assert_str_eq(out.app, in.app);
    cr_assert_str_eq(out.jti, in.jti);
    cr_assert_eq(out.iat, in.iat);
    cr_assert_eq(out.exp, in.exp);

    /* The token is not NUL-terminated in the buffer verify gets: a read past
     * len would show up under AddressSanitizer. */
    size_t len = strlen(tok);
    char *exact = malloc(len);
    memcpy(exact, tok, len);
    cr_assert_eq(jwt_verify(fx.key, exact, len, NOW, &out), JWT_OK);
    free(exact);
    free(tok);
}

Test(jwt, sign_omits_empty_optionals)
{
    jwt_claims_t in, out;
    memset(&in, 0, sizeof(in));
    strcpy(in.app, "pk_live_a");
    in.iat = NOW;
    in.exp = NOW + 60;
    char *tok = sign_ok(fx.key, &in);

    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    const char *want = "{\"app\":\"pk_live_a\",\"iat\":1700000000,\"exp\":1700000060}";
    char *p = b64url(want, strlen(want));
    cr_assert_eq((size_t)(d2 - d1 - 1), strlen(p));
    cr_assert(strncmp(d1 + 1, p, strlen(p)) == 0);
    free(p);

    memset(&out, 0x55, sizeof(out));
    cr_assert_eq(verify(tok, &out), JWT_OK);
    cr_assert_str_eq(out.iss, "");
    cr_assert_str_eq(out.sub, "");
    cr_assert_str_eq(out.jti, "");
    free(tok);
}

Test(jwt, sign_rejects_bad_claims)
{
    jwt_claims_t c = full_claims();
    char *tok = (char *)1;
    c.app[0] = '\0';
    cr_assert_eq(jwt_sign(fx.key, &c, &tok), JWT_NO_APP);
    cr_assert_null(tok);

    c = full_claims();
    memset(c.sub, 'a', sizeof(c.sub)); /* not NUL-terminated */
    cr_assert_eq(jwt_sign(fx.key, &c, &tok), JWT_MALFORMED);
    cr_assert_null(tok);

    c = full_claims();
    strcpy(c.iss, "\xff\xfe");
    cr_assert_eq(jwt_sign(fx.key, &c, &tok), JWT_MALFORMED);
    cr_assert_null(tok);
}

Test(jwt, alg_none_rejected)
{
    char *input =
        signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"app\":\"pk_live_x\",\"exp\":" EXP_OK "}");
    char *tok = append_sig(input, (const unsigned char *)"", 0);
    cr_assert_eq(tok[strlen(tok) - 1], '.');
    cr_assert_eq(verify(tok, NULL), JWT_BAD_ALG);
    free(tok);
}

Test(jwt, alg_hs256_key_confusion_rejected)
{
    /* The classic attack: HMAC-SHA256 keyed with the public key PEM, hoping
     * the verifier feeds its "key" to HMAC. */
    char *input =
        signing_input("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"app\":\"pk_live_x\",\"exp\":" EXP_OK "}");
    unsigned char mac[32];
    size_t mac_len = 0;
    cr_assert_not_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, fx.pub_pem, strlen(fx.pub_pem),
                                 (const unsigned char *)input, strlen(input), mac, sizeof(mac), &mac_len));
    cr_assert_eq(mac_len, 32);
    char *tok = append_sig(input, mac, mac_len);
    cr_assert_eq(verify(tok, NULL), JWT_BAD_ALG);
    free(tok);
}

Test(jwt, alg_rs512_rejected)
{
    /* Really RS512-signed by the right key: still not RS256. */
    char *input =
        signing_input("{\"alg\":\"RS512\",\"typ\":\"JWT\"}", "{\"app\":\"pk_live_x\",\"exp\":" EXP_OK "}");
    unsigned char sig[512];
    size_t n = rsa_sign(fx.raw, "SHA512", input, sig, sizeof(sig));
    char *tok = append_sig(input, sig, n);
    cr_assert_eq(verify(tok, NULL), JWT_BAD_ALG);
    free(tok);
}

Test(jwt, alg_other_forms_rejected)
{
    cr_assert_eq(verify_header(HDR), JWT_OK); /* the control */
    cr_assert_eq(verify_header("{\"typ\":\"JWT\"}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":\"rs256\"}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":\"RS256 \"}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":256}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":null}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":[\"RS256\"]}"), JWT_BAD_ALG);
    /* typ is optional, but if present must be JWT. */
    cr_assert_eq(verify_header("{\"alg\":\"RS256\"}"), JWT_OK);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\",\"typ\":\"JWS\"}"), JWT_BAD_ALG);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\",\"typ\":1}"), JWT_BAD_ALG);
    /* Unknown critical extensions and a non-string kid. */
    cr_assert_eq(verify_header("{\"alg\":\"RS256\",\"crit\":[\"b64\"],\"b64\":false}"), JWT_MALFORMED);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\",\"kid\":7}"), JWT_MALFORMED);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\",\"kid\":\"anything\"}"), JWT_OK);
}

Test(jwt, header_not_object)
{
    cr_assert_eq(verify_header("[\"RS256\"]"), JWT_MALFORMED);
    cr_assert_eq(verify_header("\"RS256\""), JWT_MALFORMED);
    cr_assert_eq(verify_header("null"), JWT_MALFORMED);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\""), JWT_MALFORMED);
    cr_assert_eq(verify_header("{\"alg\":\"none\",\"alg\":\"RS256\"}"), JWT_MALFORMED);
    cr_assert_eq(verify_header("{\"alg\":\"RS256\"} x"), JWT_MALFORMED);
}

Test(jwt, changed_payload_rejected)
{
    jwt_claims_t c = full_claims();
    char *tok = sign_ok(fx.key, &c);
    strcpy(c.app, "pk_live_attacker");
    char *other = sign_ok(fx.key, &c);

    /* Splice the second payload between the first header and signature. */
    const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    const char *o1 = strchr(other, '.'), *o2 = strchr(o1 + 1, '.');
    char spliced[TOKEN_MAX];
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(o2 - o1), o1, d2);
    cr_assert_eq(verify(tok, NULL), JWT_OK);
    cr_assert_eq(verify(spliced, NULL), JWT_BAD_SIG);

    /* One changed payload character. */
    char *pc = tok + (d1 - tok) + 5;
    *pc = *pc == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(tok, NULL), JWT_BAD_SIG);
    free(tok);
    free(other);
}

Test(jwt, signature_from_other_key_rejected)
{
    jwt_claims_t c = full_claims();
    char *tok = sign_ok(fx.other, &c);
    cr_assert_eq(jwt_verify(fx.other, tok, strlen(tok), NOW, NULL), JWT_OK);
    cr_assert_eq(verify(tok, NULL), JWT_BAD_SIG);
    free(tok);
}

Test(jwt, bad_signature_forms_rejected)
{
    jwt_claims_t c = full_claims();
    char *tok = sign_ok(fx.key, &c);
    size_t len = strlen(tok);
    cr_assert_eq(verify(tok, NULL), JWT_OK);

    /* Truncated from 256 to 255 and to 252 bytes (whole base64 groups, so
     * the text stays well formed). */
    cr_assert_eq(strlen(strrchr(tok, '.') + 1), 342);
    cr_assert_eq(jwt_verify(fx.key, tok, len - 2, NOW, NULL), JWT_BAD_SIG);
    cr_assert_eq(jwt_verify(fx.key, tok, len - 6, NOW, NULL), JWT_BAD_SIG);

    /* Empty signature. */
    const char *d2 = strrchr(tok, '.');
    cr_assert_eq(jwt_verify(fx.key, tok, (size_t)(d2 - tok) + 1, NOW, NULL), JWT_BAD_SIG);

    /* One bit flipped in the middle of the signature. */
    tok[len - 100] = tok[len - 100] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(tok, NULL), JWT_BAD_SIG);

    /* A signature of all ones is larger than the modulus. */
    char *input = signing_input(HDR, "{\"app\":\"pk_live_x\",\"exp\":" EXP_OK "}");
    unsigned char ones[256];
    memset(ones, 0xff, sizeof(ones));
    char *big = append_sig(input, ones, sizeof(ones));
    cr_assert_eq(verify(big, NULL), JWT_BAD_SIG);
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left dirty");
    free(big);
    free(tok);
}

Test(jwt, check_order)
{
    /* alg is judged before the signature, the signature before claims. */
    char *input = signing_input("{\"alg\":\"none\"}", "not json");
    char *tok = append_sig(input, (const unsigned char *)"x", 1);
    cr_assert_eq(verify(tok, NULL), JWT_BAD_ALG);
    free(tok);

    jwt_claims_t c = full_claims();
    c.exp = NOW - 1;
    tok = sign_ok(fx.other, &c);
    cr_assert_eq(verify(tok, NULL), JWT_BAD_SIG);
    free(tok);

    /* Bad base64 in the signature beats a bad alg. */
    input = signing_input("{\"alg\":\"none\"}", "{}");
    size_t n = strlen(input) + 3;
    tok = malloc(n);
    snprintf(tok, n, "%s.*", input);
    cr_assert_eq(verify(tok, NULL), JWT_MALFORMED);
    free(tok);
    free(input);
}

Test(jwt, expired)
{
    jwt_claims_t c = full_claims();
    char *tok;
    c.exp = NOW + 1;
    tok = sign_ok(fx.key, &c);
    cr_assert_eq(verify(tok, NULL), JWT_OK);
    free(tok);

    c.exp = NOW;
    tok = sign_ok(fx.key, &c);
    cr_assert_eq(verify(tok, NULL), JWT_EXPIRED);
    free(tok);

    c.exp = NOW - 3600;
    tok = sign_ok(fx.key, &c);
    jwt_claims_t out;
    cr_assert_eq(verify(tok, &out), JWT_EXPIRED);
    cr_assert_str_eq(out.app, "", "claims leaked on failure");
    free(tok);
}

Test(jwt, exp_required_and_numeric)
{
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1700000001}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\"}"), JWT_NO_EXP);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":\"1700003600\"}"), JWT_NO_EXP);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":null}"), JWT_NO_EXP);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":true}"), JWT_NO_EXP);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":[1700003600]}"), JWT_NO_EXP);
    /* A real is accepted, a fraction rounded down: expired at the second it
     * began (NOW is 1700000000). */
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1.7000036e9}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1.5e9}"), JWT_EXPIRED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1700003600.5}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1700000001.9}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1700000000.9}"), JWT_EXPIRED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":-1.5}"), JWT_EXPIRED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1e300}"), JWT_NO_EXP);
    /* Past int64: jansson refuses the number, so the JSON is malformed. */
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":99999999999999999999}"), JWT_MALFORMED);
}

Test(jwt, nbf_in_future)
{
    /* Up to 60 s ahead (clock skew, as for iat); beyond, not yet. */
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000061}"), JWT_NOT_YET);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000060}"), JWT_OK);
    /* A fraction of nbf is rounded up: 60.1 s ahead is beyond the 60. */
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000060.1}"), JWT_NOT_YET);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000059.5}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"iat\":1700000060.1}"), JWT_NOT_YET);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"iat\":1699999999.5}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1e300}"), JWT_MALFORMED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000001}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":1700000000}"), JWT_OK);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":9223372036854775807}"),
                 JWT_NOT_YET);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"nbf\":\"soon\"}"), JWT_MALFORMED);
}

Test(jwt, iat_far_in_future)
{
    jwt_claims_t c = full_claims(), out;
    char *tok;
    c.iat = NOW + 61;
    tok = sign_ok(fx.key, &c);
    cr_assert_eq(verify(tok, NULL), JWT_NOT_YET);
    free(tok);

    c.iat = NOW + 60;
    tok = sign_ok(fx.key, &c);
    cr_assert_eq(verify(tok, &out), JWT_OK);
    cr_assert_eq(out.iat, NOW + 60);
    free(tok);

    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"iat\":\"now\"}"), JWT_MALFORMED);
    /* iat is optional. */
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK "}"), JWT_OK);
}

Test(jwt, app_required)
{
    cr_assert_eq(verify_payload("{\"exp\":" EXP_OK "}"), JWT_NO_APP);
    cr_assert_eq(verify_payload("{\"app\":\"\",\"exp\":" EXP_OK "}"), JWT_NO_APP);
    cr_assert_eq(verify_payload("{\"app\":42,\"exp\":" EXP_OK "}"), JWT_NO_APP);
    cr_assert_eq(verify_payload("{\"app\":null,\"exp\":" EXP_OK "}"), JWT_NO_APP);
}

Test(jwt, string_claim_limits)
{
    char payload[512], s127[128], s128[129];
    memset(s127, 'x', 127);
    s127[127] = '\0';
    memset(s128, 'x', 128);
    s128[128] = '\0';

    snprintf(payload, sizeof(payload), "{\"app\":\"%s\",\"sub\":\"%s\",\"exp\":" EXP_OK "}", s127, s127);
    cr_assert_eq(verify_payload(payload), JWT_OK);
    const char *names[] = {"app", "sub", "iss", "jti"};
    for (size_t i = 0; i < 4; i++) {
        /* app is always needed, so the over-long one replaces it. */
        if (i == 0)
            snprintf(payload, sizeof(payload), "{\"app\":\"%s\",\"exp\":" EXP_OK "}", s128);
        else
            snprintf(payload, sizeof(payload), "{\"app\":\"a\",\"%s\":\"%s\",\"exp\":" EXP_OK "}", names[i],
                     s128);
        cr_assert_eq(verify_payload(payload), JWT_MALFORMED, "%s of 128 bytes", names[i]);
    }
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"iss\":1,\"exp\":" EXP_OK "}"), JWT_MALFORMED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"jti\":{},\"exp\":" EXP_OK "}"), JWT_MALFORMED);
    /* Embedded NUL bytes are refused by the JSON parser. */
    cr_assert_eq(verify_payload("{\"app\":\"a\\u0000b\",\"exp\":" EXP_OK "}"), JWT_MALFORMED);
}

Test(jwt, payload_not_object_or_duplicate)
{
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK ",\"app\":\"b\"}"), JWT_MALFORMED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":1,\"exp\":" EXP_OK "}"), JWT_MALFORMED);
    cr_assert_eq(verify_payload("[]"), JWT_MALFORMED);
    cr_assert_eq(verify_payload("\"app\""), JWT_MALFORMED);
    cr_assert_eq(verify_payload("{\"app\":\"a\",\"exp\":" EXP_OK), JWT_MALFORMED);
}

Test(jwt, garbage_input)
{
    const char *bad[] = {
        "",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c.d",
        "abc",
        "eyJhbGciOiJSUzI1NiJ9.e30.abc.",
        "eyJhbGciOiJSUzI1NiJ9.e30+.abcd",     /* '+' is plain base64 */
        "eyJhbGciOiJSUzI1NiJ9.e30/.abcd",     /* '/' likewise */
        "eyJhbGciOiJSUzI1NiJ9.e3*.abcd",      /* outside any alphabet */
        "eyJhbGciOiJSUzI1NiJ9 .e30.abcd",     /* space */
        "eyJhbGciOiJSUzI1NiJ9.e30=.abcd",     /* padding */
        "eyJhbGciOiJSUzI1NiJ9.e30.abc=",      /* padding in the signature */
        "eyJhbGciOiJSUzI1NiJ9==.e30.abcd",    /* padding in the header */
        "eyJhbGciOiJSUzI1NiJ9.e30.abcdA",     /* len % 4 == 1, spare bits zero */
        "eyJhbGciOiJSUzI1NiJ9.e31.abcd",      /* non-zero trailing bits */
        ".e30.abcd",                          /* empty header */
        "eyJhbGciOiJSUzI1NiJ9..abcd",         /* empty payload */
        "eyJhbGciOiJSUzI1NiJ9.e30.ab\xc3\xa9" /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(verify(bad[i], NULL), JWT_MALFORMED, "accepted [%zu] \"%s\"", i, bad[i]);
    cr_assert_eq(jwt_verify(fx.key, NULL, 10, NOW, NULL), JWT_MALFORMED);
    /* An embedded NUL byte. */
    cr_assert_eq(jwt_verify(fx.key, "eyJhbGciOiJSUzI1NiJ9.e30\0.abcd", 30, NOW, NULL), JWT_MALFORMED);

    /* The controls: well formed, these reach the later checks. */
    cr_assert_eq(verify("eyJhbGciOiJub25lIn0.e30.", NULL), JWT_BAD_ALG);
    cr_assert_eq(verify("eyJhbGciOiJSUzI1NiJ9.e30.abcd", NULL), JWT_BAD_SIG);
}

/* Makes a correctly signed token about target bytes long by padding the
 * header with a filler field; *len receives its exact length. */
static char *token_of_size(size_t target, size_t *len)
{
    size_t filler = (target - 500) * 3 / 4;
    for (;;) {
        char *header = malloc(filler + 64);
        int n = snprintf(header, filler + 64, "{\"alg\":\"RS256\",\"x\":\"");
        memset(header + n, 'x', filler);
        strcpy(header + n + filler, "\"}");
        char *tok = make_rs256(header, "{\"app\":\"a\",\"exp\":" EXP_OK "}");
        free(header);
        *len = strlen(tok);
        if (*len >= target) return tok;
        free(tok);
        filler++;
    }
}

Test(jwt, size_cap)
{
    size_t len;
    char *tok = token_of_size(TOKEN_MAX - 2, &len);
    cr_assert_leq(len, TOKEN_MAX);
    cr_assert_eq(verify(tok, NULL), JWT_OK, "a %zu-byte token was refused", len);
    free(tok);

    tok = token_of_size(TOKEN_MAX + 1, &len);
    cr_assert_gt(len, TOKEN_MAX);
    cr_assert_eq(verify(tok, NULL), JWT_MALFORMED);
    free(tok);

    tok = token_of_size(9 * 1024, &len);
    cr_assert_eq(verify(tok, NULL), JWT_MALFORMED);
    free(tok);
}

struct thread_arg {
    const char *token;
    int ok;
};

static void *verify_many(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 1000; i++) {
        jwt_claims_t c;
        if (jwt_verify(fx.key, a->token, strlen(a->token), NOW, &c) == JWT_OK &&
            strcmp(c.app, "pk_live_0123456789abcdef") == 0)
            a->ok++;
    }
    return NULL;
}

Test(jwt, concurrent_verify, .timeout = 120)
{
    jwt_claims_t c = full_claims();
    char *tok = sign_ok(fx.key, &c);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].token = tok;
        args[i].ok = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(args[i].ok, 1000, "thread %d: %d of 1000 verified", i, args[i].ok);
    free(tok);
}
