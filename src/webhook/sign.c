/*
 * sign.c: see sign.h. The MAC is computed over the timestamp, the dot and
 * the body in three updates, so the body is never copied.
 */
#include "webhook/sign.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>

int webhook_sign(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len,
                 char out[WEBHOOK_SIGNATURE_MAX])
{
    char ts[24];
    int tlen = snprintf(ts, sizeof ts, "%lld", (long long)t);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    int ok = ctx != NULL && EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tlen) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
             EVP_MAC_final(ctx, mac, &maclen, sizeof mac) == 1 && maclen == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    if (!ok) return -1;
    int n = snprintf(out, WEBHOOK_SIGNATURE_MAX, "t=%s,v1=", ts);
    for (size_t i = 0; i < maclen; i++)
        n += snprintf(out + n, WEBHOOK_SIGNATURE_MAX - (size_t)n, "%02x", mac[i]);
    return 0;
}
