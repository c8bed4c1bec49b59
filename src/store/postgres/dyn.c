/*
 * dyn.c: statements made at run time (the find reads, whose SQL depends on
 * the filters and the sort), prepared per connection like the fixed ones.
 *
 * Each gets a statement id past Q__COUNT, so that every helper that runs a
 * statement by id (txn.c's pg_read above all) runs these too. A small
 * cache keeps the most recently used texts; a slot taken by a new text
 * first drops its old statement on the server (DEALLOCATE) when that was
 * prepared on the current connection.
 */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

int pg_dyn_id(pg_store_t *s, const char *sql)
{
    uint64_t h = store_hash(sql);
    int lru = 0;
    s->dyn_tick++;
    for (int i = 0; i < PG_DYN_MAX; i++) {
        pg_dyn_t *d = &s->dyn[i];
        if (d->sql != NULL && d->hash == h && strcmp(d->sql, sql) == 0) {
            d->used = s->dyn_tick;
            return Q__COUNT + i;
        }
        if (d->used < s->dyn[lru].used) lru = i;
    }
    char *copy = strdup(sql);
    if (copy == NULL) return -1;
    pg_dyn_t *d = &s->dyn[lru];
    free(d->sql);
    /* The server still holds the slot's old statement under its name. */
    d->drop = s->prepared[Q__COUNT + lru];
    s->prepared[Q__COUNT + lru] = false;
    d->sql = copy;
    d->hash = h;
    d->used = s->dyn_tick;
    return Q__COUNT + lru;
}

const char *pg_stmt_text(const pg_store_t *s, int id)
{
    return id < Q__COUNT ? pg_stmt_sql[id] : s->dyn[id - Q__COUNT].sql;
}

void pg_dyn_before_prepare(pg_store_t *s, int id, const char *name)
{
    if (id < Q__COUNT || !s->dyn[id - Q__COUNT].drop) return;
    s->dyn[id - Q__COUNT].drop = false;
    char sql[PG_STMT_NAME_MAX + 16];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
    PQclear(PQexec(s->conn, sql));
}

void pg_dyn_reconnected(pg_store_t *s)
{
    for (int i = 0; i < PG_DYN_MAX; i++)
        s->dyn[i].drop = false;
}

void pg_dyn_free(pg_store_t *s)
{
    for (int i = 0; i < PG_DYN_MAX; i++)
        free(s->dyn[i].sql);
}
