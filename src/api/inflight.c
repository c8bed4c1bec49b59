/*
 * inflight.c: see inflight.h. A hash table of chained entries under one
 * mutex: it holds at most the keyed writes in flight, each for the time
 * of one request.
 */
#include "api/inflight.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

typedef struct entry {
    struct entry *next;
    int64_t app;
    char key[]; /* NUL-terminated */
} entry_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry_t *table[BUCKETS];

static size_t bucket(int64_t app, const char *key)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)app;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

/* The link that points at app's key in its bucket (NULL at the end). */
static entry_t **find(int64_t app, const char *key)
{
    entry_t **at = &table[bucket(app, key)];
    while (*at != NULL && ((*at)->app != app || strcmp((*at)->key, key) != 0))
        at = &(*at)->next;
    return at;
}

bool api_inflight_take(int64_t app, const char *key)
{
    size_t n = strlen(key) + 1;
    entry_t *e = malloc(sizeof *e + n);
    if (e == NULL) return false;
    e->app = app;
    memcpy(e->key, key, n);
    pthread_mutex_lock(&mu);
    entry_t **at = find(app, key);
    bool free_key = *at == NULL;
    if (free_key) {
        e->next = NULL;
        *at = e;
    }
    pthread_mutex_unlock(&mu);
    if (!free_key) free(e);
    return free_key;
}

void api_inflight_give(int64_t app, const char *key)
{
    pthread_mutex_lock(&mu);
    entry_t **at = find(app, key);
    entry_t *e = *at;
    if (e != NULL) *at = e->next;
    pthread_mutex_unlock(&mu);
    free(e);
}
