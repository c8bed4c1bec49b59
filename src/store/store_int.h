/*
 * store_int.h: what the backends share and the rest of crmd never sees.
 *
 * Like curl's vtls_int.h: store.h is the interface the API calls; this is
 * the other side of it, for the files of src/store/ only. It holds the
 * backends' constructors (store.c dispatches to them), the log hook's
 * sending end, and the logic that is the same whatever the database
 * (running the migrations in order, filling an app), written once in
 * store.c instead of twice.
 */
#ifndef CRMD_STORE_STORE_INT_H
#define CRMD_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"
#include "store/schema.h"
#include "store/store.h"

/* Backends' constructors, used by store_open. */
/* With create false, a database file that is not there is refused and
 * nothing is created. */
store_t *store_sqlite_open(const char *path, bool create, char *err, size_t errsz);
/* conninfo is a postgres:// or postgresql:// URL or a libpq key=value
 * string; the store keeps its own copy. */
store_t *store_postgres_open(const char *conninfo, char *err, size_t errsz);

/* Which backend a database URL names, by the rules of store.c. */
typedef enum store_url_kind {
    STORE_URL_BAD,     /* none: store_url_check says why */
    STORE_URL_SQLITE,  /* *path is the file's path */
    STORE_URL_POSTGRES /* a libpq URL or key=value string */
} store_url_kind_t;
/* Reads url's kind; *path gets the SQLite path in it (also for a bad
 * "sqlite:" URL), or NULL. */
store_url_kind_t store_url_kind(const char *url, const char **path);

/* Replaces every occurrence of secret (NULL or "" for none) in the text
 * (a NUL-terminated string in textsz bytes, cut to fit) with "***": a
 * password the database's message may show in a shape store_url_redact
 * cannot know. */
void store_text_hide(char *text, size_t textsz, const char *secret);

/* Sends one message line (printf format, no trailing newline) to the log
 * hook; a line longer than STORE_LOG_LINE_MAX - 1 bytes is cut. Any
 * thread. */
void store_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies t into out (outsz bytes, always terminated, cut to fit); an unset
 * t gives "". */
void store_text_copy(char *out, size_t outsz, text_ref_t t);

/* Fills *a from an app row's values (key and name cut to fit). */
void store_app_fill(store_app_t *a, int64_t id, text_ref_t key, text_ref_t name, int disabled,
                    int64_t created_at);

/* A quick hash of a NUL-terminated text (FNV-1a), for a first comparison
 * before strcmp (the caches of statements made at run time). */
uint64_t store_hash(const char *s);

/* Makes room for one more element in a growing array v of *cap elements
 * of size elem, n of them used: when it is full, doubles it (from first
 * elements) and sets *cap. Returns the array, moved or not, or NULL when
 * memory runs out (v is then still valid and unchanged). */
void *store_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

/* Passes every signing key of s (store_keys) to cb->key, for a backend's
 * copy_export; stops at the first rc other than STORE_OK, and returns it. */
store_rc_t store_export_keys(store_t *s, const store_export_t *cb, void *ctx);

/* The state of a connection's group commit (store_batch_begin/end). */
typedef enum store_batch {
    BATCH_NONE,  /* no batch: each write is its own transaction */
    BATCH_OPEN,  /* writes are savepoints in the batch's transaction */
    BATCH_BROKEN /* the batch's transaction is gone: refuse writes, never commit */
} store_batch_t;

/* A backend's plain write transaction, as group commit uses it. */
typedef struct store_tx_ops {
    store_rc_t (*begin)(store_t *s);  /* opens it */
    store_rc_t (*commit)(store_t *s); /* commits it; on failure it may still be open */
    void (*rollback)(store_t *s);     /* rolls back whatever is open */
} store_tx_ops_t;

/* What every backend's connection starts with (so a store_t * is also a
 * store_base_t *): the part of it that common.c looks after. */
typedef struct store_base {
    store_t super;
    const store_tx_ops_t *tx;
    store_batch_t batch; /* inside store_batch_begin/end */
    /* The batch broke because its transaction lost a deadlock (or a
     * serialization failure) to another connection: none of it happened,
     * and the same writes may succeed in a new batch (store_batch_redo). */
    bool redo;
} store_base_t;

/* store_batch_begin and store_batch_end (see store.h) for every backend,
 * on its tx. A batch that broke (its transaction gone) cannot commit:
 * STORE_UNAVAILABLE. Ending without commit rolls back: STORE_OK. */
store_rc_t store_base_batch_begin(store_t *s);
store_rc_t store_base_batch_end(store_t *s, int commit);

/*
 * The operations of a backend. Each backend defines PREFIX_close,
 * PREFIX_migrate, ... PREFIX_copy_import_end, one function a slot of
 * store_ops_t but group commit's (common.c's, above).
 * STORE_OPS_DECLARE(prefix) declares them, each with the exact type of its
 * slot, so a backend's function can never drift from the interface;
 * STORE_OPS_INIT(prefix) fills a store_ops_t with them. Adding an
 * operation to store_ops_t means adding it to STORE_OPS too, but for the
 * few only one backend has (the commit's sync left owed: store.h), which
 * its STORE_OPS_INIT(prefix, .op = fn, ...) names after the prefix.
 */
/* clang-format off */
#define STORE_OPS(X, p)                                                                                      \
    X(p, close) X(p, migrate)                                                                                \
    X(p, app_create) X(p, app_find) X(p, keys) X(p, key_add) X(p, key_update)                                \
    X(p, lead_create) X(p, lead_create_many) X(p, lead_get) X(p, lead_list) X(p, lead_update) X(p, lead_delete)                     \
    X(p, follow_create) X(p, follow_get) X(p, follow_list) X(p, follow_update) X(p, follow_delete)           \
    X(p, lead_find) X(p, follow_find) X(p, lead_summary)                                                     \
    X(p, lead_trash) X(p, lead_recover) X(p, trash_purge) X(p, trash_get) X(p, trash_due) X(p, trash_list) X(p, trash_expire)                \
    X(p, history_add) X(p, history_list)                                                                     \
    X(p, idem_get) X(p, idem_claim) X(p, idem_finish) X(p, idem_release) X(p, idem_expire) X(p, idem_hold) X(p, search_tidy) X(p, leads_lock)                \
    X(p, app_list) X(p, app_set_disabled) X(p, token_record) X(p, token_revoke) X(p, revoked_since)          \
    X(p, copy_count) X(p, copy_export) X(p, snapshot_begin) X(p, snapshot_end) X(p, reader_open)           \
    X(p, copy_import_begin) X(p, copy_import_key)                                                            \
    X(p, copy_import_app) X(p, copy_import_issued) X(p, copy_import_revoked) X(p, copy_import_lead)          \
    X(p, copy_import_follow)                                                                                 \
    X(p, copy_import_end) X(p, backup) X(p, set_loop) X(p, set_writer)     \
    X(p, read_deadline)
#define STORE_OP_DECLARE_(p, op) extern __typeof__(*((store_ops_t *)0)->op) p##_##op;
#define STORE_OP_INIT_(p, op) .op = p##_##op,
#define STORE_OPS_DECLARE(prefix) STORE_OPS(STORE_OP_DECLARE_, prefix)
#define STORE_OPS_INIT(prefix, ...)                                                                          \
    {STORE_OPS(STORE_OP_INIT_, prefix) .batch_begin = store_base_batch_begin, .batch_end = store_base_batch_end, \
     .webhook = &prefix##_webhook_ops, __VA_ARGS__}
/* clang-format on */

/*
 * Migrations, step by step (store_migrate). A backend supplies the steps;
 * store_migrate_run runs them in order, each in its own transaction, and
 * says what went wrong in the same words for both. ctx is the backend's
 * store.
 */
typedef struct store_migrator {
    /* Opens a transaction that no other migrating connection can enter
     * (a write lock, an advisory lock), and reads the schema version in
     * it. On failure nothing is left open. */
    store_rc_t (*begin)(void *ctx, int *version);
    /* Applies migration step (0-based: it brings the schema to version
     * step + 1) and records the new version, in the open transaction. On
     * failure may put the database's reason into why (whysz bytes). */
    store_rc_t (*apply)(void *ctx, int step, char *why, size_t whysz);
    /* Commits the transaction when rc is STORE_OK, else rolls it back;
     * returns rc, or the commit's failure. */
    store_rc_t (*end)(void *ctx, store_rc_t rc);
} store_migrator_t;

store_rc_t store_migrate_run(const store_migrator_t *m, void *ctx);

#endif
