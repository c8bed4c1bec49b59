/*
 * cache.c: see cache.h.
 *
 * Sixteen shards, each a mutex, a chained hash table and an LRU list, share
 * the byte budget evenly. Tag generations live in a fixed array indexed by
 * the tag's hash: two tags that share a slot only invalidate each other's
 * entries now and then, which costs a miss, never a stale answer.
 *
 * An entry is freed by its last holder: the cache holds one reference
 * while the entry is in its table, each answer that reads its body
 * (cache_pin) one more until it is sent.
 */
#include "api/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"

#define SHARDS 16
#define BUCKETS 4096 /* per shard */
#define GENERATIONS 65536

/* The LRU list's links, on their own so that a shard can hold its
 * sentinel without holding a whole entry. */
typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link_t;

typedef struct entry {
    lru_link_t lru;      /* first: an lru_link_t * is its entry_t * */
    struct entry *hnext; /* hash chain */
    uint64_t hash;
    cache_key_t key;
    uint64_t gen;
    size_t tag;
    int64_t expires;
    size_t len;
    _Atomic size_t refs; /* the table's and the pins' */
    char body[];
} entry_t;

struct cache_pin {
    entry_t e;
};

typedef struct shard {
    pthread_mutex_t mu;
    entry_t *buckets[BUCKETS];
    lru_link_t lru; /* sentinel; most recent first */
    size_t bytes;
} shard_t;

static struct {
    bool enabled;
    size_t shard_budget;
    shard_t *shards;
    _Atomic uint64_t gens[GENERATIONS];
} C;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t tag_hash(int64_t app, const char *lead_id)
{
    uint64_t h = mix(1469598103934665603ULL, &app, sizeof app);
    return mix(h, lead_id, strlen(lead_id));
}

/* Lists of leads belong to the app's tag; everything else to its lead's. */
static size_t tag_of(const cache_key_t *k)
{
    return (size_t)(tag_hash(k->app, k->kind == CACHE_LEADS ? "" : k->id) % GENERATIONS);
}

static uint64_t key_hash(const cache_key_t *k)
{
    uint64_t h = tag_hash(k->app, k->id);
    h = mix(h, &k->kind, sizeof k->kind);
    h = mix(h, k->fid, strlen(k->fid));
    h = mix(h, &k->page, sizeof k->page);
    h = mix(h, k->variant, sizeof k->variant);
    return mix(h, &k->records, sizeof k->records);
}

static bool key_eq(const cache_key_t *a, const cache_key_t *b)
{
    return a->kind == b->kind && a->app == b->app && a->page == b->page && a->records == b->records &&
           a->stamp == b->stamp && strcmp(a->id, b->id) == 0 && strcmp(a->fid, b->fid) == 0 &&
           memcmp(a->variant, b->variant, sizeof a->variant) == 0;
}

void cache_configure(size_t max_bytes)
{
    if (max_bytes == 0 || C.shards != NULL) return;
    C.shards = calloc(SHARDS, sizeof *C.shards);
    if (C.shards == NULL) return;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&C.shards[i].mu, NULL);
        C.shards[i].lru.next = C.shards[i].lru.prev = &C.shards[i].lru;
    }
    C.shard_budget = max_bytes / SHARDS;
    C.enabled = true;
}

bool cache_enabled(void)
{
    return C.enabled;
}

uint64_t cache_generation(const cache_key_t *key)
{
    return atomic_load(&C.gens[tag_of(key)]);
}

void cache_touch_lead(int64_t app, const char *lead_id)
{
    if (C.enabled) atomic_fetch_add(&C.gens[tag_hash(app, lead_id) % GENERATIONS], 1);
}

void cache_touch_app(int64_t app)
{
    if (C.enabled) atomic_fetch_add(&C.gens[tag_hash(app, "") % GENERATIONS], 1);
}

static shard_t *shard_for(uint64_t h)
{
    return &C.shards[(h >> 32) % SHARDS];
}

static entry_t **slot_for(shard_t *s, uint64_t h)
{
    return &s->buckets[h % BUCKETS];
}

static void lru_unlink(entry_t *e)
{
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
}

static void lru_push_front(shard_t *s, entry_t *e)
{
    e->lru.next = s->lru.next;
    e->lru.prev = &s->lru;
    s->lru.next->prev = &e->lru;
    s->lru.next = &e->lru;
}

static void unref(entry_t *e)
{
    if (atomic_fetch_sub(&e->refs, 1) == 1) free(e);
}

/* Unlinks e from its chain and the LRU list and lets go of the table's
 * reference (an answer may still be sending its body). */
static void drop(shard_t *s, entry_t *e)
{
    entry_t **p = slot_for(s, e->hash);
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(e);
    s->bytes -= sizeof *e + e->len;
    unref(e);
}

static entry_t *find(shard_t *s, uint64_t h, const cache_key_t *key)
{
    for (entry_t *e = *slot_for(s, h); e != NULL; e = e->hnext)
        if (e->hash == h && key_eq(&e->key, key)) return e;
    return NULL;
}

const char *cache_pin(const cache_key_t *key, int64_t now, size_t *len, cache_pin_t **pin)
{
    if (!C.enabled) return NULL;
    uint64_t h = key_hash(key);
    shard_t *s = shard_for(h);
    entry_t *out = NULL;
    pthread_mutex_lock(&s->mu);
    entry_t *e = find(s, h, key);
    if (e != NULL) {
        if (e->gen != atomic_load(&C.gens[e->tag]) || now >= e->expires) {
            drop(s, e);
        } else {
            out = e;
            atomic_fetch_add(&e->refs, 1);
            lru_unlink(e);
            lru_push_front(s, e);
        }
    }
    pthread_mutex_unlock(&s->mu);
    metrics_count(out != NULL ? METRIC_CACHE_HITS : METRIC_CACHE_MISSES);
    if (out == NULL) return NULL;
    *len = out->len;
    *pin = (cache_pin_t *)out;
    return out->body;
}

void cache_unpin(cache_pin_t *pin)
{
    if (pin != NULL) unref(&pin->e);
}

void cache_put(const cache_key_t *key, uint64_t gen, const char *body, size_t len, int64_t expires)
{
    if (!C.enabled || len > C.shard_budget / 8) return;
    size_t tag = tag_of(key);
    if (atomic_load(&C.gens[tag]) != gen) return; /* written meanwhile: this body may be out of date */
    entry_t *n = malloc(sizeof *n + len);
    if (n == NULL) return;
    n->hash = key_hash(key);
    n->key = *key;
    n->gen = gen;
    n->tag = tag;
    n->expires = expires;
    n->len = len;
    atomic_init(&n->refs, 1);
    memcpy(n->body, body, len);
    shard_t *s = shard_for(n->hash);
    pthread_mutex_lock(&s->mu);
    entry_t *old = find(s, n->hash, key);
    if (old != NULL) drop(s, old);
    while (s->bytes + sizeof *n + len > C.shard_budget && s->lru.prev != &s->lru)
        drop(s, (entry_t *)s->lru.prev);
    entry_t **slot = slot_for(s, n->hash);
    n->hnext = *slot;
    *slot = n;
    lru_push_front(s, n);
    s->bytes += sizeof *n + len;
    pthread_mutex_unlock(&s->mu);
}
