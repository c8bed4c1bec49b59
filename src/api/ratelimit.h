/*
 * ratelimit.h: per-app request rate limiting with token buckets.
 *
 * One bucket per app, shared by every thread of the process: an app may
 * send `burst` requests at once and `rate` per second after that. Other
 * apps are unaffected. With several crmd processes each keeps its own
 * buckets (see docs/security.md).
 */
#ifndef CRMD_API_RATELIMIT_H
#define CRMD_API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ratelimit_info {
    int limit;       /* the burst: requests allowed at once */
    int remaining;   /* requests left right now */
    int reset_s;     /* seconds until the bucket is full again */
    int retry_after; /* seconds until one more request is allowed (when refused) */
} ratelimit_info_t;

/* Sets the limits; rate <= 0 turns limiting off. Call before serving. */
void ratelimit_configure(double rate, double burst);
bool ratelimit_enabled(void);

/* Takes one request from app's bucket at time now (ms). Returns false when
 * the app is over its limit; *info is filled either way. */
bool ratelimit_take(int64_t app, int64_t now, ratelimit_info_t *info);

/* Parses "RATE" or "RATE:BURST" (requests per second; the burst defaults to
 * twice the rate). Returns false if malformed. */
bool ratelimit_parse(const char *s, double *rate, double *burst);

#endif
