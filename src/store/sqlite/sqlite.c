/*
 * sqlite.c: the SQLite backend as store.c sees it: its table of operations
 * and store_sqlite_open.
 *
 * The embedded store: one database file in WAL mode, one connection per
 * thread (see sqlite_int.h for the files that do the work). This file only
 * wires them to the store interface.
 */
#include <stdio.h>
#include <time.h>

#include "store/sqlite/sqlite_int.h"

/* How many virtual machine steps a read runs between two looks at its
 * deadline: a look reads the monotonic clock (tens of ns through the vDSO),
 * 1,000 steps take tens of microseconds, so a read stops well within a
 * millisecond of its deadline and pays under 0.1% for the looks. */
#define SQ_DEADLINE_STEPS 1000

/* The progress handler of a loop's connection: non-zero stops the
 * statement (SQLITE_INTERRUPT, sq_map_rc's STORE_TOO_SLOW). */
static int past_deadline(void *arg)
{
    sqlite_store_t *s = arg;
    if (s->deadline_ns == 0) return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec < s->deadline_ns) return 0;
    s->too_slow = true;
    return 1;
}

/* Gives s's reads the deadlines of store_read_deadline. */
static void time_reads(sqlite_store_t *s)
{
    s->timed = true;
    sqlite3_progress_handler(s->db, SQ_DEADLINE_STEPS, past_deadline, s);
}

void sq_read_deadline(store_t *base, int64_t deadline_ns)
{
    sqlite_store_t *s = sq_of_read(base); /* its held snapshot stays */
    s->deadline_ns = s->timed ? deadline_ns : 0;
    s->too_slow = false;
}

/* SQLite's reads never wait for the loop; it only ends the snapshots a
 * server thread holds (txn.c, sq_hold) when the loop's turn ends. A
 * loop's connection also gets the deadlines of its reads
 * (store_read_deadline): its reads run on the loop and hold every other
 * request of the thread until they end. */
void sq_set_loop(store_t *base, const store_loop_t *loop)
{
    sqlite_store_t *s = sq_of(base);
    s->loop = *loop;
    s->has_loop = true;
    time_reads(s);
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
    store_t *r = store_sqlite_open(s->path, false, err, errsz);
    /* Its reads run on the loop too (an export's pages, export.c): they
     * take the same deadlines. */
    if (r != NULL) time_reads((sqlite_store_t *)r);
    return r;
}

static bool sq_sync_defer(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    if (s->path == NULL) return false; /* in memory: nothing to sync */
    /* A log left by a process that stopped at a failed sync may be read
     * from the kernel's cache with frames the disk lacks: commits written
     * after them would be lost with them at a power loss, as the log's
     * recovery stops at the first frame missing. Copied into the database,
     * synced, and the log emptied (TRUNCATE, waiting the busy timeout for
     * a reader of another process), they are on disk whatever the log
     * held, and nothing is written after them (reviews rv88, rv89). The
     * caller has the file to itself among servers, so no other server's
     * writes wait for this. A log left by a clean stop is gone (the last
     * connection's close copies it), so this costs a start after a crash. */
    int frames = 0, copied = 0;
    int src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied);
    if (src != SQLITE_OK || copied < frames) {
        store_log(
            "crmd: sqlite: the log left by the last run could not be copied into the database and "
            "emptied (%s, %d of %d pages): the writer's commits sync themselves; if that run stopped at a "
            "failed sync, commits made now may be lost with its at a power loss until the log is emptied",
            sqlite3_errmsg(s->db), copied, frames);
        return false;
    }
    s->defer_syncs = true;
    return true;
}

static bool sq_sync_owed(store_t *base, store_sync_t *out)
{
    sqlite_store_t *s = sq_of(base);
    if (s->owed.n == 0) return false;
    *out = s->owed;
    s->owed = (store_sync_t){.fd = -1};
    return true;
}

/* The commits' syncs left to the writer's syncer (store_sync_defer) are
 * SQLite's alone. */
static const store_ops_t sqlite_ops =
    STORE_OPS_INIT(sq, .sync_defer = sq_sync_defer, .sync_owed = sq_sync_owed, .sync_run = sq_vfs_sync);

store_t *store_sqlite_open(const char *path, bool create, char *err, size_t errsz)
{
    sqlite_store_t *s = sq_connect(path, create, err, errsz);
    if (s == NULL) return NULL;
    s->base.super.ops = &sqlite_ops;
    s->base.tx = &sq_batch_tx;
    return &s->base.super;
}
