/*
 * fuzz_jwt.c: jwt_verify with the fixed test key, at a fixed time
 * (FUZZ_NOW_S).
 *
 * Two kinds of input:
 *
 * - A token (anything not starting with '{'): verified as it is. No input
 *   can be signed by chance, so any JWT_OK must be one of the two tokens the
 *   harness itself signed (the seeds): anything else is a forgery, e.g. an
 *   algorithm confusion or a signature check over the wrong bytes.
 *
 * - "HEADER-JSON\nPAYLOAD-JSON" (starting with '{'): the harness encodes
 *   both parts and signs them with the test key, so the fuzzer reaches the
 *   header and claims checks behind the signature. The outcome is then
 *   compared with an independent reading of the same JSON: alg exactly
 *   "RS256", exp an integral number after now, a non-empty app claim...
 */
#include <jansson.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static char *signed_tokens[2];
static EVP_PKEY *pkey;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_maybe_print_tokens();
    signed_tokens[0] = fuzz_token(FUZZ_APP_KEY);
    signed_tokens[1] = fuzz_token(FUZZ_APP2_KEY);
    const char *pem = fuzz_key_pem();
    BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pkey == NULL) abort();
    /* The seeds must verify, or the corpus no longer reaches anything. */
    jwt_claims_t c;
    for (int i = 0; i < 2; i++)
        if (jwt_verify(fuzz_key(), signed_tokens[i], strlen(signed_tokens[i]), FUZZ_NOW_S, &c) != JWT_OK)
            abort();
    return 0;
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
    }
    return o;
}

/* A NumericDate as auth/jwt.c documents it: an integer, or a finite real
 * within +-2^53 whose fraction goes toward the stricter second, down for
 * exp and up (up true) for nbf and iat. */
static bool numeric_date(const json_t *v, bool up, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) > 9007199254740992.0) return false;
        *out = (long long)(up ? ceil(d) : floor(d));
        return true;
    }
    return false;
}

/* What jwt_verify should say about these header and payload texts, judged
 * independently; -1 when this model does not decide (the verifier may then
 * answer anything but JWT_OK... or JWT_OK: see below). */
static int expected(const char *h, size_t hl, const char *p, size_t pl)
{
    json_error_t err;
    json_t *hd = json_loadb(h, hl, JSON_REJECT_DUPLICATES, &err);
    json_t *pd = json_loadb(p, pl, JSON_REJECT_DUPLICATES, &err);
    int rc = -1;
    if (hd == NULL || !json_is_object(hd)) {
        rc = JWT_MALFORMED;
        goto out;
    }
    /* The header is read first (an algorithm of the two the library knows,
     * typ, crit, kid); only then is the algorithm compared with the key's,
     * which is RS256 here. */
    const json_t *alg = json_object_get(hd, "alg"), *typ = json_object_get(hd, "typ");
    const char *name = json_is_string(alg) ? json_string_value(alg) : "";
    bool known = strcmp(name, "RS256") == 0 || strcmp(name, "ES256") == 0;
    if (!known || (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))) {
        rc = JWT_BAD_ALG;
        goto out;
    }
    /* A kid the verifier could not keep (JWT_KID_MAX) is malformed too. */
    const json_t *kid = json_object_get(hd, "kid");
    if (json_object_get(hd, "crit") ||
        (kid && (!json_is_string(kid) || json_string_length(kid) >= JWT_KID_MAX))) {
        rc = JWT_MALFORMED;
        goto out;
    }
    if (strcmp(name, "RS256") != 0) {
        rc = JWT_BAD_ALG;
        goto out;
    }
    if (pd == NULL || !json_is_object(pd)) {
        rc = JWT_MALFORMED;
        goto out;
    }
    long long exp, nbf = 0, iat = 0;
    if (!numeric_date(json_object_get(pd, "exp"), false, &exp)) {
        rc = JWT_NO_EXP;
        goto out;
    }
    const json_t *v = json_object_get(pd, "nbf");
    if (v && !numeric_date(v, true, &nbf)) {
        rc = JWT_MALFORMED;
        goto out;
    }
    bool has_nbf = v != NULL;
    v = json_object_get(pd, "iat");
    if (v && !numeric_date(v, true, &iat)) {
        rc = JWT_MALFORMED;
        goto out;
    }
    static const char *const strs[] = {"iss", "sub", "jti"};
    for (int i = 0; i < 3; i++) {
        v = json_object_get(pd, strs[i]);
        if (v && (!json_is_string(v) || json_string_length(v) > JWT_CLAIM_MAX - 1)) {
            rc = JWT_MALFORMED;
            goto out;
        }
    }
    v = json_object_get(pd, "app");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        rc = JWT_NO_APP;
        goto out;
    }
    if (json_string_length(v) > JWT_CLAIM_MAX - 1) {
        rc = JWT_MALFORMED;
        goto out;
    }
    if (FUZZ_NOW_S >= exp)
        rc = JWT_EXPIRED;
    else if (has_nbf && nbf > FUZZ_NOW_S + 60)
        rc = JWT_NOT_YET;
    else if (iat > FUZZ_NOW_S + 60)
        rc = JWT_NOT_YET;
    else
        rc = JWT_OK;
out:
    json_decref(hd);
    json_decref(pd);
    return rc;
}

static void signed_mode(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (nl == NULL) return;
    const char *h = (const char *)data, *p = nl + 1;
    size_t hl = (size_t)(nl - h), pl = size - hl - 1;
    if (hl == 0 || pl == 0 || hl > 2000 || pl > 3000) return;
    static char tok[8192 + 1024];
    size_t o = b64url((const unsigned char *)h, hl, tok);
    tok[o++] = '.';
    o += b64url((const unsigned char *)p, pl, tok + o);
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, o) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    tok[o++] = '.';
    o += b64url(sig, siglen, tok + o);

    jwt_claims_t c;
    int rc = jwt_verify(fuzz_key(), tok, o, FUZZ_NOW_S, &c);
    int want = expected(h, hl, p, pl);
    /* The verifier decodes with jansson too, so the two readings agree
     * exactly; a JSON text jansson refuses is MALFORMED either way. */
    FUZZ_CHECK(rc == want, "jwt_verify says %d, the claims say %d", rc, want);
    if (rc == JWT_OK) {
        FUZZ_CHECK(c.app[0] != '\0' && c.exp > FUZZ_NOW_S, "accepted without app or exp");
        FUZZ_CHECK(memchr(c.app, '\0', JWT_CLAIM_MAX) != NULL && memchr(c.iss, '\0', JWT_CLAIM_MAX) != NULL &&
                       memchr(c.sub, '\0', JWT_CLAIM_MAX) != NULL &&
                       memchr(c.jti, '\0', JWT_CLAIM_MAX) != NULL,
                   "a claim without its NUL");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == '{') {
        signed_mode(data, size);
        return 0;
    }
    jwt_claims_t c;
    memset(&c, 0x5a, sizeof c);
    int rc = jwt_verify(fuzz_key(), (const char *)data, size, FUZZ_NOW_S, &c);
    FUZZ_CHECK(rc >= JWT_OK && rc <= JWT_INTERNAL, "rc %d", rc);
    FUZZ_CHECK(rc != JWT_INTERNAL, "JWT_INTERNAL for an input");
    if (rc == JWT_OK) {
        bool ours = false;
        for (int i = 0; i < 2; i++)
            ours |= strlen(signed_tokens[i]) == size && memcmp(signed_tokens[i], data, size) == 0;
        FUZZ_CHECK(ours, "a token the test key never signed verified (%zu bytes)", size);
        FUZZ_CHECK(strcmp(c.app, FUZZ_APP_KEY) == 0 || strcmp(c.app, FUZZ_APP2_KEY) == 0, "app %s", c.app);
    } else {
        /* On failure nothing of the claims may be left half-filled. */
        static const jwt_claims_t zero;
        FUZZ_CHECK(memcmp(&c, &zero, sizeof c) == 0, "claims written on failure (rc %d)", rc);
    }
    return 0;
}
