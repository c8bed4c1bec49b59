/*
 * etag.c: see etag.h.
 */
#include "api/etag.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

static EVP_MD *sha256;
static pthread_key_t ctx_key; /* each thread's context (api_sha256_begin) */
static bool have_ctx_key;

static void ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    have_ctx_key = pthread_key_create(&ctx_key, ctx_free) == 0;
}

const EVP_MD *api_sha256(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fetch_sha256);
    return sha256;
}

EVP_MD_CTX *api_sha256_begin(void)
{
    const EVP_MD *type = api_sha256();
    if (type == NULL || !have_ctx_key) return NULL;
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (ctx == NULL) {
        if ((ctx = EVP_MD_CTX_new()) == NULL) return NULL;
        if (pthread_setspecific(ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return NULL;
        }
    }
    return EVP_DigestInit_ex(ctx, type, NULL) == 1 ? ctx : NULL;
}

/* One SHA-256 of pad[0..64) then msg[0..len) into out. */
static bool sha256_two(const unsigned char pad[64], const unsigned char *msg, size_t len,
                       unsigned char out[32])
{
    EVP_MD_CTX *ctx = api_sha256_begin();
    unsigned int n = 0;
    return ctx != NULL && EVP_DigestUpdate(ctx, pad, 64) == 1 && EVP_DigestUpdate(ctx, msg, len) == 1 &&
           EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;
}

bool api_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg, size_t len,
                     unsigned char out[32])
{
    if (klen > 64) return false;
    unsigned char ipad[64], opad[64], inner[32];
    for (size_t i = 0; i < 64; i++) {
        unsigned char k = i < klen ? key[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
    }
    bool ok = sha256_two(ipad, msg, len, inner) && sha256_two(opad, inner, sizeof inner, out);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    return ok;
}

void api_hex(const unsigned char *md, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
}

void api_etag_of(const char *body, size_t len, char out[API_ETAG_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *ctx = api_sha256_begin();
    if (ctx == NULL || EVP_DigestUpdate(ctx, body, len) != 1 || EVP_DigestFinal_ex(ctx, md, NULL) != 1)
        SHA256((const unsigned char *)body, len, md);
    out[0] = '"';
    api_hex(md, 16, out + 1);
    out[33] = '"';
    out[34] = '\0';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* An etagc of RFC 9110: visible ASCII but the double quote (and obs-text). */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

bool api_etag_match(const char *list, size_t len, const char *etag, bool weak)
{
    size_t i = 0, n = strlen(etag);
    while (i < len && is_space(list[i]))
        i++;
    if (len - i >= 1 && list[i] == '*') {
        for (i++; i < len && is_space(list[i]); i++)
            ;
        return i == len;
    }
    bool found = false, any = false;
    while (i < len) {
        bool is_weak = len - i >= 2 && list[i] == 'W' && list[i + 1] == '/';
        if (is_weak) i += 2;
        if (i >= len || list[i] != '"') return false;
        size_t start = i++;
        while (i < len && is_etagc((unsigned char)list[i]))
            i++;
        if (i >= len || list[i] != '"') return false;
        i++;
        if (i - start == n && memcmp(list + start, etag, n) == 0 && (weak || !is_weak)) found = true;
        any = true;
        while (i < len && is_space(list[i]))
            i++;
        if (i == len) break;
        if (list[i] != ',') return false;
        for (i++; i < len && (is_space(list[i]) || list[i] == ','); i++)
            ;
    }
    return any && found;
}
