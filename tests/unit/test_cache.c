/*
 * test_cache.c: the response cache of api/cache.c: hits and misses, the tag
 * generations that keep a body from outliving a write, expiry, and the LRU
 * within the byte budget.
 *
 * The cache reads no clock of its own: cache_pin is given the time and
 * cache_put the expiry, so these tests drive time by hand. Criterion runs
 * each test in its own process, so each starts from an unconfigured cache.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cache.h"

#define T0 1767225600000LL
#define APP 11
#define OTHER_APP 12
#define LEAD "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"
#define OTHER_LEAD "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0f"
#define FOLLOW "0190f3a2-7c1e-7b3a-9d4e-000000000002"

/* Copies of the bodies cache_pin lends, freed after each test. */
static char *bufs[4096];
static int nbufs;

static void *alloc(size_t n)
{
    cr_assert_lt(nbufs, (int)(sizeof bufs / sizeof bufs[0]));
    return bufs[nbufs++] = malloc(n ? n : 1);
}

static void teardown(void)
{
    while (nbufs > 0)
        free(bufs[--nbufs]);
}

TestSuite(cache, .fini = teardown);

static cache_key_t key(int kind, int64_t app, const char *id, const char *fid, int64_t page)
{
    cache_key_t k;
    memset(&k, 0, sizeof k);
    k.kind = kind;
    k.app = app;
    snprintf(k.id, sizeof k.id, "%s", id);
    snprintf(k.fid, sizeof k.fid, "%s", fid);
    k.page = page;
    k.records = kind == CACHE_LEADS ? 15 : kind == CACHE_FOLLOWS ? 100 : 0;
    return k;
}

static cache_key_t lead_key(int64_t app, const char *id)
{
    return key(CACHE_LEAD, app, id, "", 0);
}

static cache_key_t list_key(int64_t app, int64_t page)
{
    return key(CACHE_LEADS, app, "", "", page);
}

/* Stores body for k at k's current generation, valid for good. */
static void put(const cache_key_t *k, const char *body)
{
    cache_put(k, cache_generation(k), body, strlen(body), INT64_MAX);
}

/* The body cached for k at now, as a NUL-terminated string, or NULL. */
static const char *get_at(const cache_key_t *k, int64_t now)
{
    size_t len = 0;
    cache_pin_t *pin = NULL;
    const char *b = cache_pin(k, now, &len, &pin);
    if (b == NULL) return NULL;
    cr_assert_not_null(pin);
    char *s = alloc(len + 1);
    memcpy(s, b, len);
    s[len] = '\0';
    cache_unpin(pin);
    return s;
}

static const char *get(const cache_key_t *k)
{
    return get_at(k, T0);
}

static void expect_hit(const cache_key_t *k, const char *body)
{
    const char *got = get(k);
    cr_expect(got != NULL && strcmp(got, body) == 0, "kind %d app %lld %s %s: got %s, want %s", k->kind,
              (long long)k->app, k->id, k->fid, got ? got : "a miss", body);
}

static void expect_miss(const cache_key_t *k)
{
    const char *got = get(k);
    cr_expect_null(got, "kind %d app %lld %s %s page %lld: a hit (%s) where a miss was due", k->kind,
                   (long long)k->app, k->id, k->fid, (long long)k->page, got);
}

Test(cache, a_stored_body_is_found_and_every_other_key_misses)
{
    cache_configure(1 << 20);
    cr_assert(cache_enabled());
    cache_key_t k = lead_key(APP, LEAD);
    expect_miss(&k);
    put(&k, "{\"data\":1}");
    expect_hit(&k, "{\"data\":1}");
    expect_hit(&k, "{\"data\":1}"); /* a hit leaves the entry in place */
    /* Each member of the key counts. */
    cache_key_t others[] = {lead_key(OTHER_APP, LEAD),
                            lead_key(APP, OTHER_LEAD),
                            key(CACHE_FOLLOWS, APP, LEAD, "", 0),
                            key(CACHE_FOLLOW, APP, LEAD, FOLLOW, 0),
                            key(CACHE_LEAD, APP, LEAD, FOLLOW, 0),
                            key(CACHE_LEAD, APP, LEAD, "", 1)};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        expect_miss(&others[i]);
    cache_key_t recs = k;
    recs.records = 16;
    expect_miss(&recs);
    /* A filtered list's variant counts too, and its app's tag drops it. */
    cache_key_t list = key(CACHE_LEADS, APP, "", "", 1), filtered = list;
    filtered.variant[31] = 1;
    put(&filtered, "{\"data\":2}");
    expect_miss(&list);
    expect_hit(&filtered, "{\"data\":2}");
    cache_touch_app(APP);
    expect_miss(&filtered);
}

Test(cache, a_second_put_replaces_the_body)
{
    cache_configure(1 << 20);
    cache_key_t k = list_key(APP, 1);
    put(&k, "first");
    put(&k, "second, longer");
    expect_hit(&k, "second, longer");
}

/* An answer sends a pinned body after the lock is gone: a write, a newer
 * body or the budget may drop the entry meanwhile, and the bytes it was
 * lent must stay whole until it gives them back (ASan sees a use after a
 * free here). */
Test(cache, a_pinned_body_outlives_its_entry)
{
    cache_configure(16 * 4096); /* a shard budget of 4 KiB */
    cache_key_t k = lead_key(APP, LEAD);
    put(&k, "pinned body");
    size_t len = 0;
    cache_pin_t *first = NULL, *second = NULL;
    const char *a = cache_pin(&k, T0, &len, &first);
    cr_assert(a != NULL && len == strlen("pinned body"));
    const char *b = cache_pin(&k, T0, &len, &second);
    cr_assert_eq(a, b, "a hit lends the entry's own bytes, not a copy");
    cache_touch_lead(APP, LEAD); /* the write drops it at the next get */
    expect_miss(&k);
    put(&k, "a newer body, in a new entry");
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 64; i++) { /* and the budget evicts everything else */
        cache_key_t other = key(CACHE_LEADS, OTHER_APP, "", "", i + 1);
        put(&other, big);
    }
    cr_expect_eq(memcmp(a, "pinned body", len), 0);
    cache_unpin(first);
    cr_expect_eq(memcmp(b, "pinned body", len), 0);
    cache_unpin(second);
    cache_unpin(NULL); /* nothing to give back */
}

Test(cache, touching_a_lead_drops_the_lead_its_follows_and_nothing_else)
{
    cache_configure(1 << 20);
    cache_key_t lead = lead_key(APP, LEAD);
    cache_key_t follow = key(CACHE_FOLLOW, APP, LEAD, FOLLOW, 0);
    cache_key_t follows = key(CACHE_FOLLOWS, APP, LEAD, "", 1);
    cache_key_t list = list_key(APP, 1);
    cache_key_t other_lead = lead_key(APP, OTHER_LEAD);
    cache_key_t other_app = lead_key(OTHER_APP, LEAD);
    put(&lead, "lead");
    put(&follow, "follow");
    put(&follows, "follows");
    put(&list, "list");
    put(&other_lead, "other lead");
    put(&other_app, "other app");
    uint64_t before = cache_generation(&lead);

    cache_touch_lead(APP, LEAD);
    cr_expect_neq(cache_generation(&lead), before);
    expect_miss(&lead);
    expect_miss(&follow);
    expect_miss(&follows);
    expect_hit(&list, "list");
    expect_hit(&other_lead, "other lead");
    expect_hit(&other_app, "other app");
}

Test(cache, touching_an_app_drops_its_lists_and_nothing_else)
{
    cache_configure(1 << 20);
    cache_key_t page1 = list_key(APP, 1), page2 = list_key(APP, 2);
    cache_key_t lead = lead_key(APP, LEAD);
    cache_key_t follows = key(CACHE_FOLLOWS, APP, LEAD, "", 1);
    cache_key_t other_list = list_key(OTHER_APP, 1);
    put(&page1, "page 1");
    put(&page2, "page 2");
    put(&lead, "lead");
    put(&follows, "follows");
    put(&other_list, "other list");

    cache_touch_app(APP);
    expect_miss(&page1);
    expect_miss(&page2);
    expect_hit(&lead, "lead");
    expect_hit(&follows, "follows");
    expect_hit(&other_list, "other list");
    /* A list read after the write is cached again. */
    put(&page1, "page 1 again");
    expect_hit(&page1, "page 1 again");
}

Test(cache, a_body_read_before_a_write_is_not_stored_after_it)
{
    cache_configure(1 << 20);
    cache_key_t lead = lead_key(APP, LEAD), list = list_key(APP, 1);
    /* A reader takes the generations, reads the database... */
    uint64_t lead_gen = cache_generation(&lead), list_gen = cache_generation(&list);
    /* ...a write commits and touches its tags... */
    cache_touch_lead(APP, LEAD);
    cache_touch_app(APP);
    /* ...and the reader's now stale bodies arrive. */
    cache_put(&lead, lead_gen, "stale", 5, INT64_MAX);
    cache_put(&list, list_gen, "stale", 5, INT64_MAX);
    expect_miss(&lead);
    expect_miss(&list);
    /* With the generation taken after the write, they are stored... */
    cache_put(&lead, cache_generation(&lead), "fresh", 5, INT64_MAX);
    expect_hit(&lead, "fresh");
    /* ...and a stale body arriving later does not displace them. */
    cache_put(&lead, lead_gen, "stale", 5, INT64_MAX);
    expect_hit(&lead, "fresh");
}

Test(cache, an_entry_expires_at_its_time_and_is_gone_after)
{
    cache_configure(1 << 20);
    cache_key_t k = key(CACHE_FOLLOWS, APP, LEAD, "", 1);
    cache_put(&k, cache_generation(&k), "due soon", 8, T0 + 1000);
    cr_expect_not_null(get_at(&k, T0 + 999));
    cr_expect_null(get_at(&k, T0 + 1000), "served at its expiry time");
    /* The expired entry was dropped, not only skipped. */
    cr_expect_null(get_at(&k, T0), "an expired entry came back");
}

Test(cache, the_least_recently_used_entries_go_when_the_budget_is_spent)
{
    enum { BUDGET = 1 << 20, LEN = 4096, KEYS = 2000 };
    cache_configure(BUDGET);
    static char body[LEN + 1];
    memset(body, 'b', LEN);
    cache_key_t keep = lead_key(APP, LEAD), old = lead_key(APP, OTHER_LEAD);
    put(&keep, body);
    put(&old, body);
    /* Many times the budget, with keep read after every store. */
    for (int i = 0; i < KEYS; i++) {
        cache_key_t k = list_key(APP, 100 + i);
        put(&k, body);
        cr_assert_not_null(get(&keep), "a recently used entry was evicted (after %d stores)", i + 1);
        teardown();
    }
    expect_miss(&old);
    int hits = 0;
    for (int i = 0; i < KEYS; i++) {
        cache_key_t k = list_key(APP, 100 + i);
        hits += get(&k) != NULL;
        teardown();
    }
    /* The bodies kept fit the budget, and the budget is used. */
    cr_expect_leq(hits * LEN, BUDGET, "%d bodies of %d bytes kept in a budget of %d", hits, LEN, BUDGET);
    cr_expect_geq(hits * LEN, BUDGET / 2, "only %d bodies of %d bytes kept in a budget of %d", hits, LEN,
                  BUDGET);
    cache_key_t last = list_key(APP, 100 + KEYS - 1);
    cr_expect_not_null(get(&last), "the newest entry was evicted");
}

Test(cache, a_body_over_an_eighth_of_a_shard_is_not_kept)
{
    /* 16 shards of 64 KiB: at most 8 KiB a body. */
    cache_configure(1 << 20);
    static char body[8193];
    memset(body, 'b', sizeof body);
    cache_key_t k = lead_key(APP, LEAD);
    cache_put(&k, cache_generation(&k), body, 8193, INT64_MAX);
    expect_miss(&k);
    cache_put(&k, cache_generation(&k), body, 8192, INT64_MAX);
    cr_expect_not_null(get(&k));
}

Test(cache, a_disabled_cache_keeps_nothing)
{
    cr_expect_not(cache_enabled());
    cache_configure(0);
    cr_expect_not(cache_enabled());
    cache_key_t k = lead_key(APP, LEAD);
    put(&k, "body");
    expect_miss(&k);
    cache_touch_lead(APP, LEAD);
    cache_touch_app(APP);
    cr_expect_eq(cache_generation(&k), 0);
}
