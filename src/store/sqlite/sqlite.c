/*
 * sqlite.c: the SQLite backend as store.c sees it: its table of operations
 * and store_sqlite_open.
 *
 * The embedded store: one database file in WAL mode, one connection per
 * thread (see sqlite_int.h for the files that do the work). This file only
 * wires them to the store interface.
 */
#include <stdio.h>

#include "store/sqlite/sqlite_int.h"

/* SQLite's reads take microseconds and always complete at once: a loop is
 * of no use to them. */
/* SQLite's reads never wait for the loop; it only ends the snapshots a
 * server thread holds (txn.c, sq_hold) when the loop's turn ends. */
void sq_set_loop(store_t *base, const store_loop_t *loop)
{
    sqlite_store_t *s = sq_of(base);
    s->loop = *loop;
    s->has_loop = true;
    /* It only reads: the writer's larger page cache (conn.c) would grow
     * with every page it reads, on each server thread. */
    sqlite3_exec(s->db, "PRAGMA cache_size = " SCHEMA_STR(SQ_READER_CACHE_KIB), NULL, NULL, NULL);
}

/* A reader is another connection to the same file, without a loop: its
 * reads complete at once, and it holds no per-turn snapshot (sq_hold), only
 * the one store_snapshot_begin opens. */
store_t *sq_reader_open(store_t *base, char *err, size_t errsz)
{
    const sqlite_store_t *s = (const sqlite_store_t *)base; /* its held snapshot stays */
    if (s->path == NULL) {
        snprintf(err, errsz, "an in-memory database has no second connection");
        return NULL;
    }
    return store_sqlite_open(s->path, false, err, errsz);
}

static const store_ops_t sqlite_ops = STORE_OPS_INIT(sq);

store_t *store_sqlite_open(const char *path, bool create, char *err, size_t errsz)
{
    sqlite_store_t *s = sq_connect(path, create, err, errsz);
    if (s == NULL) return NULL;
    s->base.super.ops = &sqlite_ops;
    s->base.tx = &sq_batch_tx;
    return &s->base.super;
}
