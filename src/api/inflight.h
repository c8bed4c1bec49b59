/*
 * inflight.h: the Idempotency-Keys this process is working on: taken when
 * a keyed POST goes ahead, given back when it is answered, so that a
 * retry arriving meanwhile is a 409 instead of running twice (the key's
 * row is committed only with the first's answer). Any thread; a leaf.
 */
#ifndef CRMD_API_INFLIGHT_H
#define CRMD_API_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

/* Takes app's key: false when it is taken already (or out of memory,
 * which answers the same 409: retry). */
bool api_inflight_take(int64_t app, const char *key);
/* Gives a key taken by api_inflight_take back. */
void api_inflight_give(int64_t app, const char *key);

#endif
