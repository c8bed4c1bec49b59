/*
 * idem.c: idempotency keys on PostgreSQL (store/schema.h, migration 8).
 *
 * Each is one statement through txn.c but the claim. A claim inserts the
 * key's row (or replaces an expired one), after taking the key's advisory
 * lock without waiting (pg_try_advisory_xact_lock, held to the end of the
 * transaction): a second process claiming a key whose first claim is not
 * committed yet is told so at once (in_flight, a 409), where its insert
 * waited for the first's transaction on the primary key, up to
 * lock_timeout (5 s), and then answered 503, holding its writer, and every
 * write queued behind it, all that time (a review). A claim after the
 * first's commit gets the lock, finds the answer (STORE_CONFLICT) and
 * replays it.
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "store/postgres/pg_int.h"

/* The one-key advisory lock of app's key: the first 64 bits of SHA-256 of
 * the app (8 bytes, big-endian) and the key. A hash no one can aim, where
 * FNV-1a's could be: an app that knew another app's key in flight could
 * have made one of its own with the same lock and given that request a
 * 409 (a review). The keys whose high half is 'crmd' are the fixed locks'
 * (sql.c: MIGRATE_LOCK, REVOKE_LOCK): such a hash has a bit of that half
 * flipped. (The webhooks' lock is in the two-key space, apart from all of
 * these.) Two keys that share a lock, one time in 2^64, make the second a
 * 409 while the first is in flight. Returns false if OpenSSL could not
 * hash (out of memory). */
static bool lock_key(int64_t app, const char *key, int64_t *lock)
{
    unsigned char in[8 + STORE_IDEM_KEY_MAX], md[SHA256_DIGEST_LENGTH];
    size_t n = strlen(key);
    assert(n <= STORE_IDEM_KEY_MAX);
    for (int i = 0; i < 8; i++)
        in[i] = (unsigned char)((uint64_t)app >> (8 * (7 - i)));
    memcpy(in + 8, key, n);
    unsigned int mdlen = 0;
    if (EVP_Digest(in, 8 + n, md, &mdlen, EVP_sha256(), NULL) != 1) return false;
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | md[i];
    if (h >> 32 == PG_LOCK_CRMD) h ^= 1ULL << 32;
    *lock = (int64_t)h;
    return true;
}

static store_rc_t idem_row(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    char h[STORE_IDEM_HASH_HEX + 1], loc[512];
    store_text_copy(h, sizeof h, pg_get_text(r, 0, 0));
    store_text_copy(loc, sizeof loc, pg_get_text(r, 0, 2));
    store_idem_t idem = {.hash = h,
                         .status = (int)pg_get_int(r, 0, 1),
                         .location = loc,
                         .body = pg_get_text(r, 0, 3),
                         .created_at = pg_get_int(r, 0, 4)};
    ((store_idem_cb)to->cb)(to->ctx, &idem);
    return STORE_OK;
}

/* The parameters every statement here starts with. */
static pg_params_t *keyed(pg_params_t *p, int64_t app, const char *key)
{
    pgp_int8(p, app);
    pgp_str(p, key);
    return p;
}

store_rc_t pg_idem_get(store_t *base, int64_t app, const char *key, int64_t fresh_after, store_idem_cb cb,
                       void *ctx, const store_async_t *async)
{
    pg_params_t p = {0};
    pgp_int8(keyed(&p, app, key), fresh_after);
    pg_rows_t to = {.cb = (void *)cb, .ctx = ctx};
    return pg_read_rows(pg_of(base), Q_IDEM_GET, &p, idem_row, &to, async);
}

/* A claim: its key's lock, then its row, as one unit of work (one
 * savepoint in a batch). */
typedef struct claim {
    int64_t app;
    const char *key;
    const pg_params_t *p;
    bool in_flight;  /* the lock is another transaction's */
    int64_t claimed; /* rows the insert wrote */
} claim_t;

/* Takes c's key's lock, or finds it another transaction's (c->in_flight). */
static store_rc_t try_lock(pg_store_t *s, claim_t *c)
{
    int64_t lock;
    if (!lock_key(c->app, c->key, &lock)) return STORE_ERROR;
    pg_params_t l = {0};
    pgp_int8(&l, lock);
    PGresult *r;
    store_rc_t rc = pg_run_in_tx(s, Q_IDEM_TRY_LOCK, &l, &r);
    c->in_flight = rc == STORE_OK && pg_get_int(r, 0, 0) == 0;
    PQclear(r);
    return rc;
}

static store_rc_t hold_unit(pg_store_t *s, void *ctx)
{
    return try_lock(s, ctx);
}

store_rc_t pg_idem_hold(store_t *base, int64_t app, const char *key, bool *in_flight)
{
    claim_t c = {.app = app, .key = key};
    store_rc_t rc = pg_write_unit(pg_of(base), hold_unit, &c);
    *in_flight = rc == STORE_OK && c.in_flight;
    return rc;
}

static store_rc_t claim_unit(pg_store_t *s, void *ctx)
{
    claim_t *c = ctx;
    store_rc_t rc = try_lock(s, c);
    if (rc != STORE_OK || c->in_flight) return rc;
    PGresult *r;
    rc = pg_run_in_tx(s, Q_IDEM_CLAIM, c->p, &r);
    if (rc == STORE_OK) c->claimed = pg_affected(r);
    PQclear(r);
    return rc;
}

store_rc_t pg_idem_claim(store_t *base, int64_t app, const char *key, const char *hash, int64_t now,
                         int64_t fresh_after, bool *in_flight)
{
    pg_store_t *s = pg_of(base);
    pg_params_t p = {0};
    pgp_str(keyed(&p, app, key), hash);
    pgp_int8(&p, now);
    pgp_int8(&p, fresh_after);
    if (s->in_import) {
        /* crmd copy, one transaction on a target no server writes yet. */
        int n;
        store_rc_t rc = pg_write_count(s, Q_IDEM_CLAIM, &p, &n);
        return rc == STORE_OK && n == 0 ? STORE_CONFLICT : rc;
    }
    claim_t c = {.app = app, .key = key, .p = &p};
    store_rc_t rc = pg_write_unit(s, claim_unit, &c);
    if (rc != STORE_OK) return rc;
    if (c.in_flight && in_flight != NULL) *in_flight = true;
    return c.in_flight || c.claimed == 0 ? STORE_CONFLICT : STORE_OK;
}

store_rc_t pg_idem_finish(store_t *base, int64_t app, const char *key, int status, const char *location,
                          text_ref_t body)
{
    pg_params_t p = {0};
    pgp_int4(keyed(&p, app, key), status);
    pgp_str(&p, location);
    pgp_text(&p, body.ptr != NULL ? body : (text_ref_t){"", 0});
    return pg_one_row(pg_of(base), Q_IDEM_FINISH, &p, 0, 0, NULL, NULL, NULL);
}

store_rc_t pg_idem_release(store_t *base, int64_t app, const char *key)
{
    pg_params_t p = {0};
    return pg_write(pg_of(base), Q_IDEM_RELEASE, keyed(&p, app, key), 0, 0, NULL);
}

store_rc_t pg_idem_expire(store_t *base, int64_t before, int limit, int *purged)
{
    pg_params_t p = {0};
    pgp_int8(&p, before);
    pgp_int8(&p, limit);
    return pg_write_count(pg_of(base), Q_IDEM_EXPIRE, &p, purged);
}
