/*
 * dyn.c: prepared statements made at run time (the find reads, whose SQL
 * depends on the filters and the sort), kept per connection by their text.
 *
 * Their shapes are few in practice (a client asks for the same filters
 * again and again), so a small cache spares the preparing of all but the
 * first; the least recently used statement makes room for a new one.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_int.h"

sqlite3_stmt *sq_dyn_stmt(sqlite_store_t *s, const char *sql)
{
    /* As sq_stmt: what runs next sees the staged leads in leads. */
    if (s->staged > 0 && sq_stage_flush(s) != STORE_OK) return NULL;
    uint64_t h = store_hash(sql);
    sq_dyn_t *lru = &s->dyn[0];
    s->dyn_tick++;
    for (int i = 0; i < SQ_DYN_MAX; i++) {
        sq_dyn_t *d = &s->dyn[i];
        if (d->st != NULL && d->hash == h && strcmp(d->sql, sql) == 0) {
            d->used = s->dyn_tick;
            return d->st;
        }
        if (d->used < lru->used) lru = d;
    }
    sqlite3_stmt *st = NULL;
    char *copy = strdup(sql);
    if (copy == NULL ||
        sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        store_log("crmd: sqlite: prepare failed: %s", sqlite3_errmsg(s->db));
        free(copy);
        return NULL;
    }
    sqlite3_finalize(lru->st);
    free(lru->sql);
    *lru = (sq_dyn_t){.sql = copy, .st = st, .hash = h, .used = s->dyn_tick};
    return st;
}

void sq_dyn_close(sqlite_store_t *s)
{
    for (int i = 0; i < SQ_DYN_MAX; i++) {
        sqlite3_finalize(s->dyn[i].st);
        free(s->dyn[i].sql);
        s->dyn[i] = (sq_dyn_t){0};
    }
}
