/*
 * ratelimit.h: request rate limits with token buckets.
 *
 * Two limiters, each with one bucket per key, shared by every thread of the
 * process: RATELIMIT_APP counts an app's requests (keyed by the app's id),
 * RATELIMIT_AUTH a client address's failed authentications (keyed by
 * proxy_limit_key). A key may spend `burst` at once and `rate` per second
 * after that; other keys are unaffected. With several crmd processes each
 * keeps its own buckets (see docs/security.md).
 */
#ifndef CRMD_API_RATELIMIT_H
#define CRMD_API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum ratelimit_kind { RATELIMIT_APP, RATELIMIT_AUTH, RATELIMIT_KINDS };

/* A bucket's key; never both words zero. */
typedef struct ratelimit_key {
    uint64_t a, b;
} ratelimit_key_t;

typedef struct ratelimit_info {
    int limit;       /* the burst: requests allowed at once */
    int remaining;   /* requests left right now */
    int reset_s;     /* seconds until the bucket is full again */
    int retry_after; /* seconds until one more request is allowed (when refused) */
} ratelimit_info_t;

/* Sets a limiter's limits; rate <= 0 turns it off (as it starts). Call
 * before serving. */
void ratelimit_configure(enum ratelimit_kind kind, double rate, double burst);
bool ratelimit_enabled(enum ratelimit_kind kind);

/* Takes one from key's bucket at time now (ms). Returns false when the key
 * is over its limit (nothing is taken); *info is filled either way. */
bool ratelimit_take(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, ratelimit_info_t *info);

/* Takes cost more from key's bucket at time now (ms) for what a request
 * already let through used beyond one request (a slow read's time): the
 * bucket may go below zero, down to RATELIMIT_DEBT_S seconds of the rate,
 * and the key's next requests are refused until it has refilled past one.
 * Nothing when the limiter is off or cost <= 0. */
#define RATELIMIT_DEBT_S 60
void ratelimit_charge(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, double cost);

/* Whether key's bucket holds one at time now, taking nothing; *info is
 * filled either way. */
bool ratelimit_peek(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, ratelimit_info_t *info);

/* Parses "RATE" or "RATE:BURST" (requests per second; the burst defaults to
 * twice the rate, and to at least 1). Returns false if malformed. */
bool ratelimit_parse(const char *s, double *rate, double *burst);

#endif
