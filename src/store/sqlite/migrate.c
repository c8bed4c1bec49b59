/*
 * migrate.c: the steps store_migrate_run takes on SQLite.
 *
 * The version lives in PRAGMA user_version and is read inside the write
 * lock (BEGIN IMMEDIATE), so two processes migrating at once apply each
 * step once; the order and the messages are store_migrate_run's.
 */
#include <stdio.h>

#include "store/sqlite/sqlite_int.h"

static store_rc_t begin(void *ctx, int *version)
{
    sqlite_store_t *s = ctx;
    store_rc_t rc = sq_begin_write(s);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return sq_finish(s, sq_map_rc(s, sqlite3_errcode(s->db)));
    *version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return STORE_OK;
}

static store_rc_t apply(void *ctx, int step, char *why, size_t whysz)
{
    sqlite_store_t *s = ctx;
    char pragma[SCHEMA_VERSION_SQL_MAX];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", step + 1);
    char *msg = NULL;
    if (sqlite3_exec(s->db, sq_migrations[step], NULL, NULL, &msg) == SQLITE_OK &&
        sqlite3_exec(s->db, pragma, NULL, NULL, &msg) == SQLITE_OK)
        return STORE_OK;
    snprintf(why, whysz, "%s", msg != NULL ? msg : "?");
    sqlite3_free(msg);
    return STORE_ERROR;
}

static store_rc_t end(void *ctx, store_rc_t rc)
{
    return sq_finish(ctx, rc);
}

store_rc_t sq_migrate(store_t *base)
{
    static const store_migrator_t steps = {.begin = begin, .apply = apply, .end = end};
    return store_migrate_run(&steps, sq_of(base));
}
