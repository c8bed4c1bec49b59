/*
 * ratelimit.c: see ratelimit.h.
 *
 * The buckets live in a fixed open-addressed table (no allocation while
 * serving), guarded by striped mutexes so that threads serving different
 * apps rarely wait for each other. A table that is full of recently active
 * apps lets a new app through unlimited rather than refuse it: limiting is
 * protection against one noisy app, never a reason to fail a quiet one.
 */
#include "api/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 4096
#define STRIPES 64
#define PROBES 8
#define IDLE_MS 60000 /* a bucket unused this long may be reused */

typedef struct bucket {
    int64_t app; /* 0: free */
    double tokens;
    int64_t last_ms;
} bucket_t;

static struct {
    double rate, burst;
    bucket_t slots[SLOTS];
    pthread_mutex_t locks[STRIPES];
    pthread_once_t once;
} RL = {.once = PTHREAD_ONCE_INIT};

static void init_locks(void)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&RL.locks[i], NULL);
}

void ratelimit_configure(double rate, double burst)
{
    pthread_once(&RL.once, init_locks);
    RL.rate = rate > 0 ? rate : 0;
    RL.burst = burst >= 1 ? burst : (rate > 0 ? rate : 0);
}

bool ratelimit_enabled(void)
{
    return RL.rate > 0;
}

bool ratelimit_parse(const char *s, double *rate, double *burst)
{
    char *end;
    double r = strtod(s, &end);
    if (end == s || !isfinite(r) || r <= 0 || r > 1e9) return false;
    double b = r * 2;
    if (*end == ':') {
        const char *bs = end + 1;
        b = strtod(bs, &end);
        if (end == bs || !isfinite(b) || b < 1 || b > 1e9) return false;
    }
    if (*end != '\0') return false;
    *rate = r;
    *burst = b;
    return true;
}

bool ratelimit_take(int64_t app, int64_t now, ratelimit_info_t *info)
{
    info->limit = (int)RL.burst;
    info->remaining = (int)RL.burst;
    info->reset_s = 0;
    info->retry_after = 0;
    if (RL.rate <= 0) return true;
    uint64_t h = (uint64_t)app * 0x9E3779B97F4A7C15ULL;
    size_t home = (size_t)(h >> 52) % SLOTS;
    /* All the probes of one app stay in one stripe's range of slots. */
    pthread_mutex_t *lock = &RL.locks[home % STRIPES];
    pthread_mutex_lock(lock);
    bucket_t *b = NULL;
    for (size_t i = 0; i < PROBES; i++) {
        bucket_t *c = &RL.slots[(home + i * STRIPES) % SLOTS];
        if (c->app == app) {
            b = c;
            break;
        }
        if (b == NULL && (c->app == 0 || now - c->last_ms > IDLE_MS)) b = c;
    }
    if (b == NULL) {
        pthread_mutex_unlock(lock);
        return true;
    }
    if (b->app != app) {
        b->app = app;
        b->tokens = RL.burst;
        b->last_ms = now;
    }
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * RL.rate / 1000.0;
        if (b->tokens > RL.burst) b->tokens = RL.burst;
        b->last_ms = now;
    }
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    double tokens = b->tokens;
    pthread_mutex_unlock(lock);

    info->remaining = (int)floor(tokens);
    info->reset_s = (int)ceil((RL.burst - tokens) / RL.rate);
    if (!ok) info->retry_after = (int)ceil((1.0 - tokens) / RL.rate);
    if (!ok && info->retry_after < 1) info->retry_after = 1;
    return ok;
}
