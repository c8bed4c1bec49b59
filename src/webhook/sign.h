/*
 * sign.h: the Crmd-Signature header of a delivery.
 *
 *   Crmd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
 *
 * keyed by the webhook's secret, its bytes as shown ("whsec_..."), so a
 * receiver verifies it with its language's HMAC in a few lines
 * (docs/webhooks.md) and rejects an old t to refuse replays.
 */
#ifndef CRMD_WEBHOOK_SIGN_H
#define CRMD_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* "t=" 20 digits ",v1=" 64 hex digits and a NUL. */
#define WEBHOOK_SIGNATURE_MAX 96

/* Writes the header's value for body (len bytes) sent at t (unix seconds)
 * with secret into out; -1 when OpenSSL fails. Any thread. */
int webhook_sign(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len,
                 char out[WEBHOOK_SIGNATURE_MAX]);

#endif
