/*
 * keyring.h: the keys tokens are signed and verified with.
 *
 * crmd's own keys live in the database (store_keys), each in one state:
 * - signing: the newest key not retired; `crmd token issue` and `crmd app
 *   create` sign with it (and record the expiry of what they sign);
 * - verifying: an older key some token it signed may still be valid for
 *   (its signed_until is in the future, or untracked: a key from before
 *   keys were tracked);
 * - expired: an older key all of whose tokens have expired: it no longer
 *   verifies, and is no longer published;
 * - retired: taken out by `crmd key retire` (a leaked key, say): it never
 *   verifies again.
 * A key's id (kid) is derived from its public key (jwt_key_id).
 *
 * A server adds the keys of an external identity provider (--jwks-file,
 * --jwks-url) to the same set. One poller thread re-reads the database
 * every second (and the file when it changes, the URL every
 * refresh_s seconds) and publishes a new snapshot when anything changed;
 * every server thread takes the newest snapshot before it verifies a
 * token, so a rotation reaches every thread within about a second.
 */
#ifndef CRMD_API_KEYRING_H
#define CRMD_API_KEYRING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "store/store.h"

typedef enum keyring_state { KEY_SIGNING, KEY_VERIFYING, KEY_EXPIRED, KEY_RETIRED } keyring_state_t;

/* One of crmd's keys as stored, with its kid and state at some time. */
typedef struct keyring_entry {
    int64_t seq, created_at, signed_until, retired_at;
    keyring_state_t state;
    char kid[JWT_KID_MAX]; /* "" when its PEM is not a valid key */
    jwt_key_t *key;        /* loaded when asked for (keyring_read), else NULL */
} keyring_entry_t;

typedef struct keyring_list {
    keyring_entry_t *v;
    size_t n;
} keyring_list_t;

/* What keyring_read does with each key's PEM: nothing (states only, kid
 * ""), work out its kid, or also load the keys that sign or verify. */
enum keyring_read_mode { KEYRING_STATES, KEYRING_KIDS, KEYRING_LOAD };

/* Reads every key of s with its state at now_s (seconds), oldest first,
 * as mode says. Returns the store's rc (STORE_ERROR when out of memory). */
store_rc_t keyring_read(store_t *s, int64_t now_s, enum keyring_read_mode mode, keyring_list_t *out);
void keyring_list_free(keyring_list_t *l);
const char *keyring_state_name(keyring_state_t state);

/* The key that signs (loaded, owned by the caller), its seq in *seq: a new
 * key is made and stored when none is stored or all are retired. NULL with
 * the reason in err (errsz bytes). */
jwt_key_t *keyring_signing_key(store_t *s, int64_t *seq, char *err, size_t errsz);

/* Adds a new key that signs from now on; its kid goes into kid
 * (JWT_KID_MAX bytes). Returns the store's rc (STORE_ERROR, reason in err,
 * when no key could be made). */
store_rc_t keyring_rotate(store_t *s, char *kid, char *err, size_t errsz);

/* --- a server's key set ------------------------------------------------------- */

typedef struct keyring_conf {
    const char *db_url;
    const char *jwks_file; /* NULL: none */
    const char *jwks_url;  /* NULL: none */
    int refresh_s;         /* how often the URL is fetched again */
    jwt_rules_t rules;     /* for the external keys' tokens */
} keyring_conf_t;

typedef struct keyring keyring_t;

/* Checks an identity provider's key set URL (--jwks-url): https, or http
 * to this machine only (localhost, 127.0.0.0/8, [::1]). Its keys sign
 * tokens for every app, so they never cross a network in the clear.
 * Returns 0, or -1 with the reason in err (errsz bytes). */
int keyring_url_check(const char *url, char *err, size_t errsz);
/* url for messages, its password (if any) shown as "***", into out
 * (outsz bytes). */
void keyring_url_shown(const char *url, char *out, size_t outsz);

/* A published state of the key set: read-only, counted by references. */
typedef struct keyring_snap {
    atomic_int refs;
    jwt_keyset_t *set;
    char *jwks; /* the JWK Set of crmd's own verifying keys (GET /.well-known/jwks.json) */
    size_t jwks_len;
    uint64_t gen; /* the keyring's generation it was published as */
} keyring_snap_t;

/* Loads the first key set (making a signing key when none is stored, and
 * reading the external keys), from store s. NULL with the reason in err
 * (errsz bytes). conf's strings must outlive the keyring. */
keyring_t *keyring_open(const keyring_conf_t *conf, store_t *s, char *err, size_t errsz);
/* Starts the poller thread (0, or -1 with the reason on stderr), which
 * polls through s from then on: the keyring takes s (keyring_free closes
 * it, whatever keyring_start returns), which no other thread may use. */
int keyring_start(keyring_t *k, store_t *s);
/* Stops the poller, if started, and frees k once no snapshot is held. */
void keyring_free(keyring_t *k);

/* The generation of the newest snapshot: cheap (one atomic read), for a
 * thread to see whether the snapshot it holds is still the newest. */
uint64_t keyring_generation(const keyring_t *k);
/* The newest snapshot, with a reference the caller drops with
 * keyring_release. */
keyring_snap_t *keyring_acquire(keyring_t *k);
void keyring_release(keyring_snap_t *snap);
const jwt_rules_t *keyring_rules(const keyring_t *k);

/* A keyring of one key, for tests: never polls. */
keyring_t *keyring_of_key(jwt_key_t *key);

#endif
