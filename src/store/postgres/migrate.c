/*
 * migrate.c: the steps store_migrate_run takes on PostgreSQL.
 *
 * The version lives in the table crmd_schema, read under a
 * transaction-scoped advisory lock, so N processes starting together on
 * one database wait for each other and apply each step once. Every start
 * first looks without any lock, since the schema is nearly always current.
 */
#include <stdio.h>
#include <stdlib.h>

#include "store/postgres/pg_int.h"

/* The version in crmd_schema, by the simple protocol; -1 when unknown. */
static int read_version(pg_store_t *s)
{
    PGresult *r = PQexec(s->conn, pg_schema_get_sql);
    int v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) pg_map_error(s, r);
    PQclear(r);
    return v;
}

/* True when the schema is already at SCHEMA_VERSION, found without any
 * lock (the common case at every start); false when unsure. */
static bool schema_current(pg_store_t *s)
{
    if (!pg_ensure_conn(s, true)) return false;
    PGresult *r = PQexec(s->conn, pg_schema_exists_sql);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return exists && read_version(s) == SCHEMA_VERSION;
}

static store_rc_t begin(void *ctx, int *version)
{
    pg_store_t *s = ctx;
    store_rc_t rc = pg_tx_begin(s, "BEGIN");
    if (rc != STORE_OK) return rc;
    *version = pg_exec_sql(s, pg_schema_lock_sql) == STORE_OK ? read_version(s) : -1;
    if (*version >= 0) return STORE_OK;
    pg_tx_rollback(s);
    return STORE_UNAVAILABLE;
}

static store_rc_t apply(void *ctx, int step, char *why, size_t whysz)
{
    (void)why, (void)whysz; /* the server's reason is logged by pg_map_error */
    pg_store_t *s = ctx;
    char set[SCHEMA_VERSION_SQL_MAX];
    snprintf(set, sizeof set, pg_schema_set_fmt, step + 1);
    store_rc_t rc = pg_exec_sql(s, pg_migrations[step]);
    if (rc == STORE_OK && step + 1 == SCHEMA_FOLD_VERSION) rc = pg_fold_backfill(s);
    return rc == STORE_OK ? pg_exec_sql(s, set) : rc;
}

static store_rc_t end(void *ctx, store_rc_t rc)
{
    pg_store_t *s = ctx;
    if (rc == STORE_OK) return pg_tx_commit(s);
    pg_tx_rollback(s);
    return rc;
}

store_rc_t pg_migrate(store_t *base)
{
    static const store_migrator_t steps = {.begin = begin, .apply = apply, .end = end};
    pg_store_t *s = pg_of(base);
    return schema_current(s) ? STORE_OK : store_migrate_run(&steps, s);
}
