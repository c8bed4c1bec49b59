/*
 * common.c: what both backends do the same way, written once (see
 * store_int.h): the log hook, filling an app from a row, running the
 * migrations in order, the group commit's bookkeeping, growing arrays.
 *
 * The store never prints: a library that writes to stderr by itself takes
 * that choice from the program using it (SQLite has sqlite3_log for the
 * same reason). Every message goes through store_log to the hook, which
 * by default writes whole lines to stderr, each with one write(2), so that
 * lines from several threads never mix.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"

/* The hook. Set before any store is opened, then only read. */
static store_log_fn log_fn;
static void *log_ctx;

void store_set_log(store_log_fn fn, void *ctx)
{
    log_fn = fn;
    log_ctx = ctx;
}

static void log_to_stderr(const char *line)
{
    char buf[STORE_LOG_LINE_MAX + 1];
    size_t n = strlen(line);
    memcpy(buf, line, n);
    buf[n++] = '\n';
    /* Nothing useful is left to do when stderr itself fails. */
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

void store_log(const char *fmt, ...)
{
    char line[STORE_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_fn != NULL)
        log_fn(log_ctx, line);
    else
        log_to_stderr(line);
}

void store_text_copy(char *out, size_t outsz, text_ref_t t)
{
    snprintf(out, outsz, "%.*s", t.ptr != NULL ? (int)t.len : 0, t.ptr != NULL ? t.ptr : "");
}

void store_app_fill(store_app_t *a, int64_t id, text_ref_t key, text_ref_t name, int disabled,
                    int64_t created_at)
{
    memset(a, 0, sizeof *a);
    a->id = id;
    store_text_copy(a->key, sizeof a->key, key);
    store_text_copy(a->name, sizeof a->name, name);
    a->disabled = disabled;
    a->created_at = created_at;
}

/* The messages keep the words crmd has always used: operators grep them. */
store_rc_t store_migrate_run(const store_migrator_t *m, void *ctx)
{
    for (;;) {
        int version = 0;
        store_rc_t rc = m->begin(ctx, &version);
        if (rc != STORE_OK) return rc;
        if (version > SCHEMA_VERSION) {
            store_log("crmd: database schema version %d is newer than this crmd (%d)", version,
                      SCHEMA_VERSION);
            return m->end(ctx, STORE_ERROR);
        }
        if (version == SCHEMA_VERSION) return m->end(ctx, STORE_OK);
        char why[STORE_LOG_LINE_MAX / 2] = "";
        rc = m->apply(ctx, version, why, sizeof why);
        if (rc != STORE_OK) {
            if (why[0] != '\0')
                store_log("crmd: migration %d failed: %s", version + 1, why);
            else
                store_log("crmd: migration %d failed", version + 1);
            return m->end(ctx, rc);
        }
        rc = m->end(ctx, STORE_OK);
        if (rc != STORE_OK) return rc;
    }
}

uint64_t store_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void *store_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap) return v;
    size_t want = *cap ? *cap * 2 : first;
    void *bigger = realloc(v, want * elem);
    if (bigger != NULL) *cap = want;
    return bigger;
}

/* Group commit's bookkeeping is the same for every backend: only how a
 * transaction begins, commits and rolls back differs (base->tx). */
store_rc_t store_base_batch_begin(store_t *s)
{
    store_base_t *base = (store_base_t *)s;
    assert(base->batch == BATCH_NONE);
    base->redo = false;
    store_rc_t rc = base->tx->begin(s);
    if (rc == STORE_OK) base->batch = BATCH_OPEN;
    return rc;
}

store_rc_t store_base_batch_end(store_t *s, int commit)
{
    store_base_t *base = (store_base_t *)s;
    assert(base->batch != BATCH_NONE);
    bool broken = base->batch == BATCH_BROKEN;
    base->batch = BATCH_NONE;
    if (commit && !broken) {
        store_rc_t rc = base->tx->commit(s);
        if (rc == STORE_OK) return STORE_OK;
        base->tx->rollback(s);
        return rc;
    }
    base->tx->rollback(s);
    return commit ? STORE_UNAVAILABLE : STORE_OK;
}

bool store_batch_redo(const store_t *s)
{
    return ((const store_base_t *)s)->redo;
}

/* The export's state while it passes the signing keys. */
typedef struct key_export {
    const store_export_t *cb;
    void *ctx;
    store_rc_t rc;
} key_export_t;

static void export_one_key(void *ctx, const store_key_t *key)
{
    key_export_t *e = ctx;
    if (e->rc == STORE_OK) e->rc = e->cb->key(e->ctx, key);
}

store_rc_t store_export_keys(store_t *s, const store_export_t *cb, void *ctx)
{
    key_export_t e = {cb, ctx, STORE_OK};
    store_rc_t rc = store_keys(s, export_one_key, &e);
    return rc != STORE_OK ? rc : e.rc;
}
