/*
 * ratelimit.c: see ratelimit.h.
 *
 * Each limiter's buckets live in a fixed open-addressed table (no
 * allocation while serving), guarded by striped mutexes so that threads
 * serving different keys rarely wait for each other. A bucket that has
 * filled up again is as good as a new one, so its slot may be reused.
 * When every slot a new key may take is busy with a recently active key,
 * the new key takes over the one whose bucket is nearest to full (the
 * least active of them) as that bucket is, not a full one: keys that
 * crowd one group of slots share its buckets' budget. So a client is
 * never let through unlimited (it was: with the probes of its address
 * held by eight others an address went unlimited, and, when a displacing
 * key started full, nine addresses taking turns each got a fresh burst).
 * The slots a key may take depend on a secret drawn at start, so that
 * addresses that crowd one group cannot be worked out in advance.
 */
#include "api/ratelimit.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SLOTS 4096
#define STRIPES 64
#define PROBES 8

typedef struct bucket {
    ratelimit_key_t key; /* both zero: free */
    double tokens;
    int64_t last_ms;
} bucket_t;

typedef struct limiter {
    double rate, burst;
    bucket_t slots[SLOTS];
    pthread_mutex_t locks[STRIPES];
} limiter_t;

static limiter_t RL[RATELIMIT_KINDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The secret the slots' places are drawn with (use). */
static uint64_t seed[2];

static void init_locks(void)
{
    /* Without randomness the places are as predictable as before: the
     * limits still hold, shared among keys that crowd one group. */
    if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed[0] = seed[1] = 0;
    for (int k = 0; k < RATELIMIT_KINDS; k++)
        for (int i = 0; i < STRIPES; i++)
            pthread_mutex_init(&RL[k].locks[i], NULL);
}

void ratelimit_configure(enum ratelimit_kind kind, double rate, double burst)
{
    pthread_once(&once, init_locks);
    limiter_t *l = &RL[kind];
    l->rate = rate > 0 ? rate : 0;
    l->burst = burst >= 1 ? burst : (rate > 0 ? rate : 0);
    memset(l->slots, 0, sizeof l->slots);
}

bool ratelimit_enabled(enum ratelimit_kind kind)
{
    return RL[kind].rate > 0;
}

bool ratelimit_parse(const char *s, double *rate, double *burst)
{
    char *end;
    double r = strtod(s, &end);
    if (end == s || !isfinite(r) || r <= 0 || r > 1e9) return false;
    /* Twice the rate, and at least one request: a bucket that never holds
     * one (--rate-limit 0.2, a burst of 0.4) refused every request. */
    double b = r * 2 < 1 ? 1 : r * 2;
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

static bool same(ratelimit_key_t x, ratelimit_key_t y)
{
    return x.a == y.a && x.b == y.b;
}

/* Whether c's slot may go to another key: free, or its bucket full again. */
static bool reusable(const limiter_t *l, const bucket_t *c, int64_t now)
{
    if (c->key.a == 0 && c->key.b == 0) return true;
    return (double)(now - c->last_ms) * l->rate / 1000.0 >= l->burst - c->tokens;
}

/* How full c's bucket would be at now (burst when it is free). */
static double fullness(const limiter_t *l, const bucket_t *c, int64_t now)
{
    if (c->key.a == 0 && c->key.b == 0) return l->burst;
    return c->tokens + (now > c->last_ms ? (double)(now - c->last_ms) * l->rate / 1000.0 : 0);
}

/* Finds (or makes) key's bucket among the probes of home, refilled to now:
 * a new key takes a free or full one, else the one nearest to full (see
 * the top of this file). Under the stripe's lock. */
static bucket_t *bucket(limiter_t *l, size_t home, ratelimit_key_t key, int64_t now)
{
    bucket_t *b = NULL, *fullest = NULL;
    double most = -1.0;
    for (size_t i = 0; i < PROBES; i++) {
        bucket_t *c = &l->slots[(home + i * STRIPES) % SLOTS];
        if (same(c->key, key)) {
            b = c;
            break;
        }
        if (b == NULL && reusable(l, c, now)) b = c;
        double level = fullness(l, c, now);
        if (level > most) {
            most = level;
            fullest = c;
        }
    }
    bool taken_over = b == NULL;
    if (taken_over) b = fullest;
    assert(b != NULL);
    if (!same(b->key, key)) {
        /* A free or full slot starts full; one taken over keeps its level
         * (refilled below). */
        if (!taken_over) b->tokens = l->burst;
        b->key = key;
        if (!taken_over) b->last_ms = now;
    }
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * l->rate / 1000.0;
        if (b->tokens > l->burst) b->tokens = l->burst;
        b->last_ms = now;
    }
    return b;
}

/* The stripe's lock and home slot of key. */
static pthread_mutex_t *place(limiter_t *l, ratelimit_key_t key, size_t *home_out)
{
    uint64_t h = ((key.a ^ seed[0]) * 0x9E3779B97F4A7C15ULL) ^ ((key.b ^ seed[1]) * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    size_t home = (size_t)(h >> 52) % SLOTS;
    *home_out = home;
    /* All the probes of one key stay in one stripe's range of slots. */
    return &l->locks[home % STRIPES];
}

/* ratelimit_take (take true) and ratelimit_peek (false). */
static bool use(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, bool take, ratelimit_info_t *info)
{
    limiter_t *l = &RL[kind];
    info->limit = (int)l->burst;
    info->remaining = (int)l->burst;
    info->reset_s = 0;
    info->retry_after = 0;
    if (l->rate <= 0) return true;
    size_t home;
    pthread_mutex_t *lock = place(l, key, &home);
    pthread_mutex_lock(lock);
    bucket_t *b = bucket(l, home, key, now);
    bool ok = b->tokens >= 1.0;
    if (ok && take) b->tokens -= 1.0;
    double tokens = b->tokens;
    pthread_mutex_unlock(lock);

    info->remaining = tokens > 0 ? (int)floor(tokens) : 0;
    info->reset_s = (int)ceil((l->burst - tokens) / l->rate);
    if (!ok) info->retry_after = (int)ceil((1.0 - tokens) / l->rate);
    if (!ok && info->retry_after < 1) info->retry_after = 1;
    return ok;
}

bool ratelimit_take(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, ratelimit_info_t *info)
{
    return use(kind, key, now, true, info);
}

bool ratelimit_peek(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, ratelimit_info_t *info)
{
    return use(kind, key, now, false, info);
}

void ratelimit_charge(enum ratelimit_kind kind, ratelimit_key_t key, int64_t now, double cost)
{
    limiter_t *l = &RL[kind];
    if (l->rate <= 0 || !(cost > 0)) return;
    size_t home;
    pthread_mutex_t *lock = place(l, key, &home);
    pthread_mutex_lock(lock);
    bucket_t *b = bucket(l, home, key, now);
    double floor_at = -l->rate * RATELIMIT_DEBT_S;
    b->tokens = b->tokens - cost < floor_at ? floor_at : b->tokens - cost;
    pthread_mutex_unlock(lock);
}
