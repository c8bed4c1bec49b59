/*
 * jwt.c: RS256 and ES256 JSON Web Tokens (RFC 7515 / 7519) on OpenSSL 3 EVP
 * and jansson, and the key sets servers verify with.
 *
 * Verification decodes the three base64url parts first, then checks the
 * header (alg must be exactly the algorithm the key is pinned to), then the
 * signature over the bytes as received, and only then parses and checks the
 * claims, so no attacker controlled payload JSON is parsed before the
 * signature is known good. With a key set the key is the one the header's
 * kid names: a token without a kid, or with one the set does not hold,
 * is refused before any signature work.
 *
 * Decisions jwt.h leaves open:
 * - "typ", when present, must be the string "JWT" exactly; anything else is
 *   JWT_BAD_ALG, as jwt.h documents.
 * - A "crit" header is JWT_MALFORMED, since no extension is understood here
 *   (RFC 7515 section 4.1.11); a "kid" that is not a string is JWT_MALFORMED.
 *   jwt_verify (one key) does not compare the kid: the signature decides.
 * - ES256 signatures are JWS's raw r || s (64 bytes), turned into DER for
 *   OpenSSL; any other length is JWT_BAD_SIG.
 * - exp may be a JSON integer or a JSON real within +-2^53 (some issuers
 *   write 1.7e9; RFC 7519 section 2 lets a NumericDate have a fraction). A
 *   fraction is rounded toward the stricter second: exp down, nbf and iat
 *   up, so a token is never taken for longer or earlier than it says. A
 *   non-finite or non-numeric exp is JWT_NO_EXP. nbf and iat follow the same
 *   number rule, but a bad one is JWT_MALFORMED since they are optional.
 * - crmd's keys must be RSA of at least 2048 bits; jwt_key_load rejects
 *   others (external keys: jwk.c).
 */
#include "auth/jwt.h"

#include <jansson.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/b64url.h"
#include "auth/jwt_int.h"

/* Tokens longer than this are refused unread; it also bounds every buffer
 * used while verifying. */
#define JWT_TOKEN_MAX 8192
/* PEM text longer than this is not a plausible RSA key and would not fit the
 * int length BIO_new_mem_buf takes. */
#define JWT_PEM_MAX 65536
#define JWT_KEY_BITS 2048
#define JWT_KID_HEX 16
/* iat and nbf may be at most this many seconds ahead of now, for clock
 * skew: a provider whose clock runs ahead sets both to its own now. */
#define JWT_IAT_LEEWAY 60
/* The largest magnitude a double holds exactly as an integer. */
#define JWT_REAL_INT_MAX 9007199254740992.0

int jwt_pem_no_pass_phrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int jwt_key_generate(char **pem)
{
    int rc = JWT_INTERNAL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;

    if (!pem) return JWT_INTERNAL;
    *pem = NULL;
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)JWT_KEY_BITS);
    if (!pkey) goto out;
    /* A secure-memory BIO wipes the private key text when it is freed. */
    bio = BIO_new(BIO_s_secmem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) goto out;
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !data) goto out;
    char *copy = malloc((size_t)n + 1);
    if (!copy) goto out;
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *pem = copy;
    rc = JWT_OK;
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (rc != JWT_OK) ERR_clear_error();
    return rc;
}

/* Fills key->kid from the SHA-256 of the DER SubjectPublicKeyInfo. */
static bool key_compute_id(jwt_key_t *key)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *der = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;

    int der_len = i2d_PUBKEY(key->pkey, &der);
    if (der_len <= 0) return false;
    int ok = EVP_Q_digest(NULL, "SHA256", NULL, der, (size_t)der_len, md, &md_len);
    OPENSSL_free(der);
    if (!ok || md_len < JWT_KID_HEX / 2) return false;
    for (size_t i = 0; i < JWT_KID_HEX / 2; i++) {
        key->kid[2 * i] = hex[md[i] >> 4];
        key->kid[2 * i + 1] = hex[md[i] & 15];
    }
    key->kid[JWT_KID_HEX] = '\0';
    return true;
}

/* The key's secret (jwt.h): HMAC-SHA256 keyed by the private key's DER. */
static bool key_derive_secret(jwt_key_t *key)
{
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(key->pkey, &der);
    if (n <= 0) return false;
    static const char label[] = "crmd: secret derived from the signing key";
    unsigned int out = 0;
    bool ok = HMAC(EVP_sha256(), der, n, (const unsigned char *)label, sizeof label - 1, key->secret, &out) !=
                  NULL &&
              out == JWT_SECRET_BYTES;
    OPENSSL_clear_free(der, (size_t)n);
    return ok;
}

const unsigned char *jwt_key_secret(const jwt_key_t *key)
{
    return key->external ? NULL : key->secret;
}

jwt_key_t *jwt_key_load(const char *pem, size_t len)
{
    jwt_key_t *key = NULL;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    if (!pem || len == 0 || len > JWT_PEM_MAX) return NULL;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) goto fail;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, jwt_pem_no_pass_phrase, NULL);
    if (!pkey || !EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < JWT_KEY_BITS) goto fail;
    key = calloc(1, sizeof(*key));
    if (!key) goto fail;
    key->pkey = pkey;
    key->alg = JWT_ALG_RS256;
    if (!key_compute_id(key) || !key_derive_secret(key)) goto fail;
    BIO_free(bio);
    return key;
fail:
    free(key);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    ERR_clear_error();
    return NULL;
}

void jwt_key_free(jwt_key_t *key)
{
    if (!key) return;
    OPENSSL_cleanse(key->secret, sizeof key->secret);
    EVP_PKEY_free(key->pkey);
    free(key);
}

const char *jwt_key_id(const jwt_key_t *key)
{
    return key ? key->kid : NULL;
}

int jwt_key_alg(const jwt_key_t *key)
{
    return key->alg;
}

bool jwt_key_external(const jwt_key_t *key)
{
    return key->external;
}

/* Sets up ctx for RS256 (SHA-256, PKCS#1 v1.5) signing or verifying. A
 * fresh EVP_MD_CTX per call keeps the shared EVP_PKEY read-only. */
static bool rs256_init(EVP_MD_CTX *ctx, EVP_PKEY *pkey, bool sign)
{
    EVP_PKEY_CTX *pctx = NULL;
    int ok = sign ? EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, pkey, NULL)
                  : EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL, pkey, NULL);
    return ok == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
}

/* Appends a string claim unless it is empty; a claim that is not
 * NUL-terminated within JWT_CLAIM_MAX or not UTF-8 is JWT_MALFORMED. */
static int claim_put_string(json_t *obj, const char *name, const char *value)
{
    size_t n = strnlen(value, JWT_CLAIM_MAX);
    if (n == JWT_CLAIM_MAX) return JWT_MALFORMED;
    if (n == 0) return JWT_OK;
    json_t *s = json_stringn(value, n);
    if (!s) return JWT_MALFORMED;
    return json_object_set_new(obj, name, s) == 0 ? JWT_OK : JWT_INTERNAL;
}

/* Dumps obj compactly and appends its base64url text at *o in out. */
static int append_json_b64(const json_t *obj, char *out, size_t cap, size_t *o)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text) return JWT_INTERNAL;
    size_t n = strlen(text);
    int rc = JWT_INTERNAL;
    if (b64url_encoded_len(n) <= cap - *o) {
        *o += b64url_encode((const unsigned char *)text, n, out + *o);
        rc = JWT_OK;
    }
    free(text);
    return rc;
}

int jwt_sign(const jwt_key_t *key, const jwt_claims_t *claims, char **token)
{
    int rc = JWT_INTERNAL;
    json_t *header = NULL, *payload = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *sig = NULL;
    char *buf = NULL;
    size_t o = 0, sig_len = 0;

    if (!token) return JWT_INTERNAL;
    *token = NULL;
    /* Only crmd's own keys hold a private half. */
    if (!key || !claims || key->external || key->alg != JWT_ALG_RS256) return JWT_INTERNAL;
    if (strnlen(claims->app, JWT_CLAIM_MAX) == 0) return JWT_NO_APP;

    header = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", key->kid);
    payload = json_object();
    if (!header || !payload) goto out;
    if ((rc = claim_put_string(payload, "iss", claims->iss)) != JWT_OK ||
        (rc = claim_put_string(payload, "sub", claims->sub)) != JWT_OK ||
        (rc = claim_put_string(payload, "app", claims->app)) != JWT_OK)
        goto out;
    rc = JWT_INTERNAL;
    if (json_object_set_new(payload, "iat", json_integer(claims->iat)) != 0 ||
        json_object_set_new(payload, "exp", json_integer(claims->exp)) != 0)
        goto out;
    if ((rc = claim_put_string(payload, "jti", claims->jti)) != JWT_OK) goto out;
    rc = JWT_INTERNAL;

    /* The claims are bounded, so the token always fits what jwt_verify
     * accepts; the same cap bounds this buffer. */
    buf = malloc(JWT_TOKEN_MAX + 1);
    if (!buf) goto out;
    if ((rc = append_json_b64(header, buf, JWT_TOKEN_MAX, &o)) != JWT_OK) goto out;
    rc = JWT_INTERNAL;
    if (o >= JWT_TOKEN_MAX) goto out;
    buf[o++] = '.';
    if ((rc = append_json_b64(payload, buf, JWT_TOKEN_MAX, &o)) != JWT_OK) goto out;
    rc = JWT_INTERNAL;

    /* An RSA signature is exactly the modulus size. */
    sig_len = (size_t)EVP_PKEY_get_size(key->pkey);
    sig = malloc(sig_len);
    ctx = EVP_MD_CTX_new();
    if (!sig || !ctx || !rs256_init(ctx, key->pkey, true) ||
        EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)buf, o) != 1)
        goto out;
    if (o + 1 + b64url_encoded_len(sig_len) > JWT_TOKEN_MAX) goto out;
    buf[o++] = '.';
    o += b64url_encode(sig, sig_len, buf + o);
    buf[o] = '\0';
    *token = buf;
    buf = NULL;
    rc = JWT_OK;
out:
    if (rc == JWT_INTERNAL) ERR_clear_error();
    free(sig);
    free(buf);
    EVP_MD_CTX_free(ctx);
    json_decref(header);
    json_decref(payload);
    return rc;
}

/* What verification reads from the header: its algorithm (an enum jwt_alg)
 * and its kid ("" when it names none). */
typedef struct jwt_header {
    int alg;
    char kid[JWT_KID_MAX];
} jwt_header_t;

/* Reads the decoded header: a JSON object whose alg is one of the two this
 * library knows (which one the key wants is checked later). */
static int check_header(const unsigned char *text, size_t len, jwt_header_t *hd)
{
    json_error_t err;
    json_t *h = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);
    int rc = JWT_MALFORMED;
    if (!h || !json_is_object(h)) goto out;
    const json_t *alg = json_object_get(h, "alg");
    /* jansson refuses \u0000 without JSON_ALLOW_NUL, so strcmp sees the
     * whole string. */
    const char *name = json_is_string(alg) ? json_string_value(alg) : "";
    hd->alg = strcmp(name, "RS256") == 0 ? JWT_ALG_RS256 : strcmp(name, "ES256") == 0 ? JWT_ALG_ES256 : 0;
    const json_t *typ = json_object_get(h, "typ");
    if (hd->alg == 0 || (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))) {
        rc = JWT_BAD_ALG;
        goto out;
    }
    const json_t *kid = json_object_get(h, "kid");
    if (json_object_get(h, "crit") || (kid && !json_is_string(kid))) goto out;
    hd->kid[0] = '\0';
    if (kid) {
        size_t n = json_string_length(kid);
        if (n >= JWT_KID_MAX) goto out;
        memcpy(hd->kid, json_string_value(kid), n + 1);
    }
    rc = JWT_OK;
out:
    json_decref(h);
    return rc;
}

/* Reads a NumericDate into whole seconds: a JSON integer, or a finite real
 * within +-2^53, whose fraction goes down when up is false (exp) and up when
 * it is true (nbf, iat). Returns false for anything else. */
static bool get_time(const json_t *v, bool up, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) > JWT_REAL_INT_MAX) return false;
        *out = (int64_t)(up ? ceil(d) : floor(d));
        return true;
    }
    return false;
}

/* Copies an optional string claim into dst (empty when absent). A claim of
 * another type, or too long for JWT_CLAIM_MAX, is JWT_MALFORMED. */
static int get_string(const json_t *obj, const char *name, char dst[JWT_CLAIM_MAX])
{
    const json_t *v = json_object_get(obj, name);
    dst[0] = '\0';
    if (!v) return JWT_OK;
    if (!json_is_string(v)) return JWT_MALFORMED;
    size_t n = json_string_length(v);
    /* jansson refuses \u0000 without JSON_ALLOW_NUL, so n is the C length. */
    if (n > JWT_CLAIM_MAX - 1) return JWT_MALFORMED;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return JWT_OK;
}

/* Whether an aud claim (a string or an array of strings) names aud. */
static bool has_audience(const json_t *v, const char *aud)
{
    if (json_is_string(v)) return strcmp(json_string_value(v), aud) == 0;
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) if (json_is_string(e) && strcmp(json_string_value(e), aud) == 0) return true;
    return false;
}

/* An external token's issuer and audience, when rules ask for them. */
static int check_external(const json_t *p, const jwt_claims_t *c, const jwt_rules_t *rules)
{
    if (rules->issuer && strcmp(c->iss, rules->issuer) != 0) return JWT_BAD_CLAIM;
    if (rules->audience && !has_audience(json_object_get(p, "aud"), rules->audience)) return JWT_BAD_CLAIM;
    return JWT_OK;
}

/* Parses the payload and checks the claims against now into *c: the app
 * is named by app_claim; ext, when not NULL, are an external key's rules. */
static int check_claims(const unsigned char *text, size_t len, int64_t now, const char *app_claim,
                        const jwt_rules_t *ext, jwt_claims_t *c)
{
    json_error_t err;
    json_t *p = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);
    int rc = JWT_MALFORMED;
    int64_t nbf = 0;

    if (!p || !json_is_object(p)) goto out;
    if (!get_time(json_object_get(p, "exp"), false, &c->exp)) {
        rc = JWT_NO_EXP;
        goto out;
    }
    const json_t *v = json_object_get(p, "nbf");
    if (v && !get_time(v, true, &nbf)) goto out;
    bool has_nbf = v != NULL;
    v = json_object_get(p, "iat");
    if (v && !get_time(v, true, &c->iat)) goto out;
    if ((rc = get_string(p, "iss", c->iss)) != JWT_OK || (rc = get_string(p, "sub", c->sub)) != JWT_OK ||
        (rc = get_string(p, "jti", c->jti)) != JWT_OK)
        goto out;
    v = json_object_get(p, app_claim);
    if (!json_is_string(v) || json_string_length(v) == 0) {
        rc = JWT_NO_APP;
        goto out;
    }
    if ((rc = get_string(p, app_claim, c->app)) != JWT_OK) goto out;
    if (ext && (rc = check_external(p, c, ext)) != JWT_OK) goto out;

    if (now >= c->exp) rc = JWT_EXPIRED;
    /* Written so that now + leeway cannot overflow. */
    else if (has_nbf && now <= INT64_MAX - JWT_IAT_LEEWAY && nbf > now + JWT_IAT_LEEWAY)
        rc = JWT_NOT_YET;
    else if (now <= INT64_MAX - JWT_IAT_LEEWAY && c->iat > now + JWT_IAT_LEEWAY)
        rc = JWT_NOT_YET;
    else
        rc = JWT_OK;
out:
    json_decref(p);
    return rc;
}

/* Turns a JWS ES256 signature (r and s, 32 bytes each, big-endian) into the
 * DER ECDSA-Sig-Value OpenSSL verifies; *der is OPENSSL_free'd by the
 * caller. Returns its length, or 0 on failure. */
static size_t es256_der(const unsigned char *sig, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int n = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        n = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n > 0 ? (size_t)n : 0;
}

/* Verifies sig over data with key, by the key's algorithm. Errors OpenSSL
 * queues for a bad signature are dropped so they do not leak into
 * unrelated callers. */
static int check_signature(const jwt_key_t *key, const char *data, size_t data_len, const unsigned char *sig,
                           size_t sig_len)
{
    unsigned char *der = NULL;
    if (key->alg == JWT_ALG_RS256 && sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) return JWT_BAD_SIG;
    if (key->alg == JWT_ALG_ES256 && sig_len != 64) return JWT_BAD_SIG;
    int rc = JWT_INTERNAL;
    ERR_set_mark();
    if (key->alg == JWT_ALG_ES256) {
        sig_len = es256_der(sig, &der);
        sig = der;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ready = ctx && sig_len > 0 &&
                 (key->alg == JWT_ALG_RS256
                      ? rs256_init(ctx, key->pkey, false)
                      : EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL, key->pkey, NULL) == 1);
    if (ready) {
        /* A signature that is not a valid value (e.g. >= n) is reported as
         * an error rather than a mismatch; it is still a bad signature. */
        int r = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data, data_len);
        rc = r == 1 ? JWT_OK : JWT_BAD_SIG;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_pop_to_mark();
    return rc;
}

/* A token cut into its three decoded parts; the signed text is
 * token[0..signed_len). */
typedef struct jwt_parts {
    const char *token;
    size_t signed_len;
    const unsigned char *h, *p, *s;
    size_t h_len, p_len, s_len;
    jwt_header_t header;
} jwt_parts_t;

/* Splits and decodes token[0..len) into buf (JWT_TOKEN_MAX bytes: decoding
 * shrinks by a quarter, so all three parts fit; nothing here grows with the
 * input), then reads the header. */
static int split(const char *token, size_t len, unsigned char *buf, jwt_parts_t *t)
{
    if (!token || len == 0 || len > JWT_TOKEN_MAX) return JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1) return JWT_MALFORMED;
    const char *end = token + len;
    const char *dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1))) return JWT_MALFORMED;

    unsigned char *h = buf;
    if (!b64url_decode(token, (size_t)(dot1 - token), h, JWT_TOKEN_MAX, &t->h_len)) return JWT_MALFORMED;
    unsigned char *p = h + t->h_len;
    if (!b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), p, JWT_TOKEN_MAX - t->h_len, &t->p_len))
        return JWT_MALFORMED;
    unsigned char *s = p + t->p_len;
    if (!b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), s, JWT_TOKEN_MAX - t->h_len - t->p_len, &t->s_len))
        return JWT_MALFORMED;
    if (t->h_len == 0 || t->p_len == 0) return JWT_MALFORMED;
    t->token = token;
    t->signed_len = (size_t)(dot2 - token);
    t->h = h;
    t->p = p;
    t->s = s;
    return check_header(h, t->h_len, &t->header);
}

/* Checks a split token with key: the algorithm the key is pinned to, the
 * signature, then the claims (by rules for an external key). */
static int verify_with(const jwt_key_t *key, const jwt_rules_t *rules, const jwt_parts_t *t, int64_t now,
                       jwt_claims_t *out)
{
    if (t->header.alg != key->alg) return JWT_BAD_ALG;
    int rc = check_signature(key, t->token, t->signed_len, t->s, t->s_len);
    if (rc != JWT_OK) return rc;
    const jwt_rules_t *ext = key->external ? rules : NULL;
    const char *app_claim = ext && ext->app_claim ? ext->app_claim : "app";
    jwt_claims_t claims;
    memset(&claims, 0, sizeof(claims));
    if ((rc = check_claims(t->p, t->p_len, now, app_claim, ext, &claims)) != JWT_OK) return rc;
    if (out) *out = claims;
    return JWT_OK;
}

int jwt_verify(const jwt_key_t *key, const char *token, size_t len, int64_t now, jwt_claims_t *out)
{
    unsigned char buf[JWT_TOKEN_MAX];
    jwt_parts_t t;
    if (out) memset(out, 0, sizeof(*out));
    if (!key) return JWT_INTERNAL;
    int rc = split(token, len, buf, &t);
    return rc != JWT_OK ? rc : verify_with(key, NULL, &t, now, out);
}

int jwt_verify_set(const jwt_keyset_t *set, const jwt_rules_t *rules, const char *token, size_t len,
                   int64_t now, jwt_claims_t *out)
{
    unsigned char buf[JWT_TOKEN_MAX];
    jwt_parts_t t;
    if (out) memset(out, 0, sizeof(*out));
    if (!set) return JWT_INTERNAL;
    int rc = split(token, len, buf, &t);
    if (rc != JWT_OK) return rc;
    if (t.header.kid[0] == '\0') return JWT_NO_KID;
    const jwt_key_t *key = jwt_keyset_find(set, t.header.kid);
    return key ? verify_with(key, rules, &t, now, out) : JWT_UNKNOWN_KID;
}

/* --- key sets ------------------------------------------------------------------ */

struct jwt_keyset {
    atomic_int refs;
    size_t n, cap;
    jwt_key_t **keys;
};

jwt_keyset_t *jwt_keyset_new(void)
{
    jwt_keyset_t *set = calloc(1, sizeof(*set));
    if (set) atomic_init(&set->refs, 1);
    return set;
}

int jwt_keyset_add(jwt_keyset_t *set, jwt_key_t *key)
{
    if (jwt_keyset_find(set, key->kid)) {
        jwt_key_free(key);
        return JWT_MALFORMED;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        jwt_key_t **v = realloc(set->keys, cap * sizeof(*v));
        if (!v) {
            jwt_key_free(key);
            return JWT_INTERNAL;
        }
        set->keys = v;
        set->cap = cap;
    }
    set->keys[set->n++] = key;
    return JWT_OK;
}

jwt_keyset_t *jwt_keyset_ref(jwt_keyset_t *set)
{
    if (set) atomic_fetch_add(&set->refs, 1);
    return set;
}

void jwt_keyset_unref(jwt_keyset_t *set)
{
    if (!set || atomic_fetch_sub(&set->refs, 1) != 1) return;
    for (size_t i = 0; i < set->n; i++)
        jwt_key_free(set->keys[i]);
    free(set->keys);
    free(set);
}

size_t jwt_keyset_count(const jwt_keyset_t *set)
{
    return set ? set->n : 0;
}

const jwt_key_t *jwt_keyset_key(const jwt_keyset_t *set, size_t i)
{
    return i < set->n ? set->keys[i] : NULL;
}

const jwt_key_t *jwt_keyset_find(const jwt_keyset_t *set, const char *kid)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->keys[i]->kid, kid) == 0) return set->keys[i];
    return NULL;
}
