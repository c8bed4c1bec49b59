/*
 * cache.h: rendered responses of hot reads, shared by the server threads.
 *
 * A GET of a lead, a follow, a lead's follows or a page of leads is kept as
 * the exact body that was sent, so the next identical GET costs a hash
 * lookup instead of a database transaction and a rendering.
 *
 * Correctness rests on tags. Every entry belongs to a tag (a lead, covering
 * the lead and its follows; or an app, covering its lists), and each tag
 * has a generation number. The writer bumps the tags of what it wrote
 * after its commit and before any write is acknowledged; a reader takes
 * the generation before it reads the database and stores its entry with
 * it; an entry counts only while its tag still has that generation. So a
 * response rendered from data older than an acknowledged write is never
 * served.
 *
 * The cache knows about writes made through this process only, so it is
 * used with an embedded SQLite database (one server process per database),
 * never with PostgreSQL, where other processes write too. The one other
 * writer of leads on such a database, the command line's import (and
 * copy --append), only adds leads: a list's key carries the app's lead
 * count read just before (stamp), so a list kept before such an import is
 * a miss afterwards.
 */
#ifndef CRMD_API_CACHE_H
#define CRMD_API_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cache_kind { CACHE_LEAD = 1, CACHE_FOLLOW, CACHE_FOLLOWS, CACHE_LEADS };

typedef struct cache_key {
    int kind; /* enum cache_kind */
    int64_t app;
    char id[40];  /* the lead ("" for CACHE_LEADS) */
    char fid[40]; /* the follow (CACHE_FOLLOW), else "" */
    int64_t page; /* lists */
    int records;
    /* A list: the SHA-256 of the secret of its cursors and, filtered, of
     * its filters, sort, count and cursor (api/find.c); all zero for the
     * others. */
    unsigned char variant[32];
    /* A list: the app's lead count when it was read (resource.c), so that
     * leads another process added (crmd import) are never missing from a
     * list kept before they came; 0 for the others. */
    int64_t stamp;
} cache_key_t;

/* Turns the cache on with a budget of max_bytes (0 leaves it off). Call
 * before serving. */
void cache_configure(size_t max_bytes);
bool cache_enabled(void);

/* The generation of key's tag: take it before reading the database. */
uint64_t cache_generation(const cache_key_t *key);

/* An entry's body lent to an answer (cache_pin): it stays readable until
 * cache_unpin, even when a write or the budget drops the entry meanwhile. */
typedef struct cache_pin cache_pin_t;

/* The body cached for key, if there is one still valid at time now (ms):
 * its bytes and *len, with *pin to give back through cache_unpin once the
 * answer is sent (no copy: a list of 100 leads is 60 KB). NULL on a miss. */
const char *cache_pin(const cache_key_t *key, int64_t now, size_t *len, cache_pin_t **pin);
void cache_unpin(cache_pin_t *pin);

/* Stores body for key, as read at generation gen, valid until expires (ms;
 * INT64_MAX for no end). Dropped if gen is already out of date. */
void cache_put(const cache_key_t *key, uint64_t gen, const char *body, size_t len, int64_t expires);

/* The writer's side: bumps the tag of a lead (its GETs, its follows) and
 * of an app (its lists). Call after the commit, before acknowledging. */
void cache_touch_lead(int64_t app, const char *lead_id);
void cache_touch_app(int64_t app);

#endif
