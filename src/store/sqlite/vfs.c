/*
 * vfs.c: crmd's SQLite VFS, "crmd": the system's default VFS (unix) with
 * the writes to a WAL file gathered into one write per run of frames.
 *
 * SQLite writes each WAL frame with two calls, its 24-byte header and then
 * its page at an offset 24 bytes further, so every page written costs two
 * system calls, each touching two pages of the kernel's cache. A commit of
 * a few dozen creates writes a few hundred frames, one after the other;
 * one write of a run of them costs about a tenth of that (3.7 against 0.4 µs a
 * frame on the benchmark machine, bench/results.md). So a WAL file opened
 * through this VFS keeps the frames written since its last sync in a
 * buffer, as long as each write follows the one before, and hands them to
 * the file in writes of up to WALBUF_MAX bytes:
 *   - before a sync (every commit: crmd's connections run synchronous=FULL,
 *     so a commit's frames are on disk before SQLite publishes the commit
 *     in the WAL index, where other connections look: they never read a
 *     frame that is still in this buffer);
 *   - before a write somewhere else (a frame rewritten in place), a read
 *     (the same connection reading back a page it spilled mid-transaction),
 *     a size asked or a truncation, a file control, and the close;
 *   - when the next write would not fit (WALBUF_MAX);
 *   - before SQLite publishes a commit in the WAL index (the barrier
 *     between its two copies of the header): for a commit that ends
 *     without a sync, which crmd's never do (see the preconditions);
 *   - before the connection lets go of the WAL's write lock, whatever
 *     ended its transaction (a rollback leaves frames a cache spill wrote).
 *     Only the holder of that lock writes the WAL, so what waits here is
 *     written before any other connection or process may write there:
 *     the file sees the writes in the order SQLite made them.
 * A write out of the buffer that fails keeps failing every later write,
 * sync and read until the transaction ends (flush): the transaction can
 * never commit, and frames past the last commit are never read. The
 * database file is the default VFS's, watched for the write lock's release
 * and the publications (its shared-memory locks and barrier), and synced at
 * the end of each checkpoint's copy, before SQLite records it (ckpt_done);
 * every other file (temp files, a rollback journal) is the default VFS's
 * own.
 *
 * Preconditions, both set by sq_connect and asserted by test_store_sqlite:
 *   - synchronous=FULL: a commit's frames are written, and a failure to
 *     write them reported, by its sync, before SQLite publishes it. Under
 *     NORMAL the first write of a small commit's frames would come at the
 *     publication, which cannot fail: a failure there would be lost and the
 *     commit published without its frames;
 *   - the normal locking mode: locking_mode=EXCLUSIVE takes no shared-memory
 *     locks, so the end of a transaction would never be seen here, and a
 *     failure, once stuck, would last until the connection closed.
 * The sqlite3 shell and other processes use the default VFS on the same
 * files, as before: the files are the same, only the calls that write them
 * are fewer.
 *
 * The server writer's batch commits leave their fdatasync to another
 * thread (store_sync_defer, api/writer.c's syncer): armed just before the
 * COMMIT (sq_vfs_defer_next), the first sync of a WAL on that thread
 * writes the frames as above, so that a failure to write still fails the
 * commit, and hands out a ticket (a read-only descriptor of the WAL of its
 * own and a number) instead of syncing. The commit is then published and
 * visible before it is durable; its writes are answered only after the
 * ticket's sync. Whatever the arm met, the sync after it is a real one: a
 * checkpoint run by the same COMMIT syncs the WAL before copying any of it
 * into the database. A WAL's first sync is never deferred, as the default
 * VFS syncs the directory of a new WAL with it, nor the sync of a header
 * that starts the WAL again (wb_sync): the arm then stays for the frames'.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/sqlite/sqlite_int.h"

/* The most buffered, and so the most handed to the file at once: the
 * default VFS writes at most 128 KiB - 1 per call (it masks the length
 * with 0x1ffff, and a write it cannot finish is SQLITE_FULL). Sixteen
 * frames of 4 KiB pages and more. */
#define WALBUF_MAX (64 * 1024)
/* A write of this much or more goes to the file at once. */
#define WALBUF_DIRECT (WALBUF_MAX / 2)

/* A file of this VFS: the default VFS's file (real) behind it. */
typedef struct vfs_file {
    sqlite3_file base;
    sqlite3_file *real;
} vfs_file_t;

typedef struct walbuf_file walbuf_file_t;

/* A database file: real, and the WAL opened for it, if any. */
typedef struct db_file {
    vfs_file_t f; /* pMethods: db_methods */
    walbuf_file_t *wal;
    /* A checkpoint's copy into this file (SQLITE_FCNTL_CKPT_START to
     * SQLITE_FCNTL_CKPT_DONE, ckpt_done): under way, a page written, a
     * write failed. */
    bool copying, copied, copy_failed;
} db_file_t;

struct walbuf_file {
    vfs_file_t f;  /* pMethods: walbuf_methods */
    db_file_t *db; /* its database's file (may be NULL) */
    char *buf;     /* WALBUF_MAX bytes, allocated on first use */
    size_t len;
    sqlite3_int64 at; /* the file offset of buf[0] */
    bool direct;      /* every write goes to the file at once (see vfs_open) */
    int err;          /* a failed write out of buf: see flush */
    int sync_fd;      /* the WAL again, read-only, for a sync owed (sq_vfs_defer_next); -1: none */
    bool synced;      /* a sync of real went through: the WAL's directory entry is on disk */
    bool header;      /* the WAL's header was written (at its start) since the last sync of real */
};

/*
 * Syncs left for later (sq_vfs_defer_next). The thread that arms one gets
 * its ticket (the WAL's sync_fd and a number, in the order armed); the
 * owed syncs are counted process-wide so that a reader who must not see
 * an undurable commit can wait for them (sq_vfs_durable).
 */
static _Thread_local bool defer_armed;
static _Thread_local store_sync_t defer_taken;
static pthread_mutex_t defer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t defer_cv = PTHREAD_COND_INITIALIZER;
static uint64_t defer_owed, defer_done; /* under defer_mu: syncs deferred, and done, by number */

/* How the calling thread syncs the database file in a checkpoint
 * (sq_vfs_ckpt_sync); NULL: the default VFS's xSync. */
static _Thread_local sq_vfs_ckpt_sync_fn ckpt_sync;
static _Thread_local void *ckpt_sync_arg;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs crmd_vfs;
static sqlite3_io_methods walbuf_methods, db_methods;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((vfs_file_t *)f)->real;
}

/* The default VFS's own methods, called on real. */
static int vf_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), out, n, off);
}

static int vf_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xWrite(real_of(f), data, n, off);
}

static int vf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int vf_sync(sqlite3_file *f, int flags)
{
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int vf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int vf_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int vf_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

static int vf_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int vf_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int vf_check_reserved_lock(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int vf_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int vf_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int vf_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, out);
}

static int vf_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void vf_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int vf_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int vf_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

/* Writes out what the buffer holds. A failure (a full disk, an I/O error)
 * sticks: the bytes stay, and every write, sync, read, size, truncation
 * and file control answers it until the write lock is let go or the file
 * closes (end_transaction), so the transaction whose frames they are can never
 * commit. Without that, a failure met by a read (which SQLite takes for a
 * failed statement, not a failed transaction) would lose frames that the
 * WAL index already counts, and the next COMMIT would publish past them. */
static int flush(walbuf_file_t *w)
{
    if (w->err != SQLITE_OK) return w->err;
    if (w->len == 0) return SQLITE_OK;
    int rc = w->f.real->pMethods->xWrite(w->f.real, w->buf, (int)w->len, w->at);
    if (rc != SQLITE_OK) return w->err = rc;
    w->len = 0;
    return SQLITE_OK;
}

/* The transaction is over (the write lock let go, or the file closed):
 * what the buffer holds is written out if it can be, then dropped. A
 * commit's frames were written by its sync, so what is left is a rolled
 * back transaction's, past the last commit, and never read; a failure
 * that stuck ends with it. */
static int end_transaction(walbuf_file_t *w)
{
    int rc = flush(w);
    w->len = 0;
    w->err = SQLITE_OK;
    return rc;
}

static int wb_close(sqlite3_file *f)
{
    walbuf_file_t *w = (walbuf_file_t *)f;
    int rc = end_transaction(w);
    int crc = w->f.real->pMethods->xClose(w->f.real);
    if (w->sync_fd >= 0) close(w->sync_fd);
    w->sync_fd = -1;
    if (w->db != NULL) w->db->wal = NULL;
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : crc;
}

static int wb_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
    walbuf_file_t *w = (walbuf_file_t *)f;
    /* An I/O error, not the write's own code (SQLITE_FULL would undo only
     * the statement): SQLite then rolls the whole transaction back. */
    if (flush(w) != SQLITE_OK) return SQLITE_IOERR_READ;
    return vf_read(f, out, n, off);
}

static int wb_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    walbuf_file_t *w = (walbuf_file_t *)f;
    assert(n >= 0);
    if (w->err != SQLITE_OK) return w->err;
    /* Only the WAL's header lies at its start (wb_sync). */
    if (off == 0) w->header = true;
    if (w->len > 0 && off == w->at + (sqlite3_int64)w->len && w->len + (size_t)n <= WALBUF_MAX) {
        memcpy(w->buf + w->len, data, (size_t)n);
        w->len += (size_t)n;
        return SQLITE_OK;
    }
    int rc = flush(w);
    if (rc != SQLITE_OK) return rc;
    if (w->direct || (size_t)n >= WALBUF_DIRECT || (w->buf == NULL && (w->buf = malloc(WALBUF_MAX)) == NULL))
        return vf_write(f, data, n, off);
    memcpy(w->buf, data, (size_t)n);
    w->len = (size_t)n;
    w->at = off;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = flush((walbuf_file_t *)f);
    return rc != SQLITE_OK ? rc : vf_truncate(f, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
    walbuf_file_t *w = (walbuf_file_t *)f;
    int rc = flush(w);
    if (rc != SQLITE_OK) return rc;
    /* The sync of a header just written, at the WAL's start (a new WAL, or
     * one started again over frames already copied), is SQLite's barrier
     * between it and the frames it then writes over the old ones: the disk
     * may write a sync's pages in any order, and the old header found with
     * some of the old frames after a power loss would have the recovery
     * bring back a commit long copied, over the newer pages of the database
     * (SQLite's ticket ff5be73dee). So it is never deferred, and the arm
     * stays for the commit's own sync that follows. */
    if (w->header) {
        rc = vf_sync(f, flags);
        if (rc == SQLITE_OK) {
            w->synced = true;
            w->header = false;
        }
        return rc;
    }
    /* Armed for this commit: the frames are written (their failures
     * answered here, as before), the sync is the arming thread's to do.
     * Not before the file's first sync of real: that one also syncs the
     * directory that holds a WAL just made (the default VFS's). */
    bool armed = defer_armed;
    /* Armed or not, the next sync is no longer this one's: a checkpoint
     * that the same COMMIT runs after it syncs the WAL itself. */
    defer_armed = false;
    if (armed && w->synced && w->sync_fd >= 0) {
        pthread_mutex_lock(&defer_mu);
        defer_taken = (store_sync_t){.fd = w->sync_fd, .n = ++defer_owed};
        pthread_mutex_unlock(&defer_mu);
        return SQLITE_OK;
    }
    rc = vf_sync(f, flags);
    if (rc == SQLITE_OK) w->synced = true;
    return rc;
}

void sq_vfs_defer_next(bool on)
{
    defer_armed = on;
}

bool sq_vfs_deferred(store_sync_t *out)
{
    if (defer_taken.n == 0) return false;
    *out = defer_taken;
    defer_taken = (store_sync_t){.fd = -1};
    return true;
}

int sq_vfs_sync(const store_sync_t *t)
{
    int rc;
    do
        rc = fdatasync(t->fd);
    while (rc != 0 && errno == EINTR);
    /* After a failed writeback the kernel keeps the pages, clean and
     * readable, though the disk may lack them. They are left there: the
     * next start copies the log into the database from them and syncs it
     * (sq_sync_defer). Dropped, another process holding the database open
     * across the stop would have had the next start read stale frames
     * from the disk through the WAL index it kept (review rv89). */
    if (rc != 0) return errno;
    pthread_mutex_lock(&defer_mu);
    if (t->n > defer_done) {
        defer_done = t->n;
        pthread_cond_broadcast(&defer_cv);
    }
    pthread_mutex_unlock(&defer_mu);
    return 0;
}

bool sq_vfs_durable(int wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&defer_mu);
    uint64_t owed = defer_owed;
    int rc = 0;
    while (defer_done < owed && rc == 0)
        rc = pthread_cond_timedwait(&defer_cv, &defer_mu, &until);
    bool done = defer_done >= owed;
    pthread_mutex_unlock(&defer_mu);
    return done;
}

static int wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = flush((walbuf_file_t *)f);
    return rc != SQLITE_OK ? rc : vf_file_size(f, size);
}

static int wb_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    walbuf_file_t *w = (walbuf_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : vf_fetch(f, off, n, out);
}

static int wb_file_control(sqlite3_file *f, int op, void *arg)
{
    int rc = flush((walbuf_file_t *)f);
    return rc != SQLITE_OK ? rc : vf_file_control(f, op, arg);
}

/* The database file: before a release of the WAL's write lock (slot 0 of
 * its shared-memory locks, held exclusively), the frames still waiting go
 * to the WAL, in the order SQLite wrote them, and the transaction's
 * failure, if one stuck, ends. A failure to write them cannot stop the
 * release; they are not a commit's (a commit's were written by its sync),
 * so SQLite never reads them. */
static int db_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    db_file_t *d = (db_file_t *)f;
    if (d->wal != NULL && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE) && offset == 0 && n >= 1)
        end_transaction(d->wal);
    return vf_shm_lock(f, offset, n, flags);
}

/* SQLite publishes a commit by writing the WAL index's header twice, a
 * barrier between, and a reader takes it only when both copies agree. Under
 * synchronous=FULL the commit's sync has written its frames already; this
 * flush orders them before the second copy otherwise, though a failure here
 * cannot be reported (hence the precondition). */
static void db_shm_barrier(sqlite3_file *f)
{
    db_file_t *d = (db_file_t *)f;
    if (d->wal != NULL) flush(d->wal);
    vf_shm_barrier(f);
}

/* A page a checkpoint copies (ckpt_done): in WAL mode only checkpoints
 * write the database file. */
static int db_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    db_file_t *d = (db_file_t *)f;
    int rc = vf_write(f, data, n, off);
    if (d->copying) {
        if (rc == SQLITE_OK)
            d->copied = true;
        else
            d->copy_failed = true;
    }
    return rc;
}

/*
 * The end of a checkpoint's copy (SQLITE_FCNTL_CKPT_DONE): the pages it
 * wrote are synced here, before SQLite records in the WAL index (nBackfill,
 * in the -shm) that the frames are copied, and a failed sync stops the
 * process before it does. SQLite syncs the database itself only after a
 * checkpoint that copied the whole WAL, and records every other copy
 * unsynced: the checkpointer's passes under steady writes, the writer's
 * own checkpoint while a reader holds frames back (ckpt.c). A sync after
 * the record (ckpt.c's before review rv98) comes too late if it fails: the
 * kernel reports a failed writeback once and marks the pages clean, and
 * when another process (a crmd export, the sqlite3 shell) holds the
 * database open across the stop, the -shm keeps the record, so the next
 * start copies only the frames after it and never writes those pages
 * again. Stopped before the record, any start copies them again.
 * Returning an error would not do: SQLite ignores what this file control
 * answers, and records the copy unless a write, or its own truncation and
 * sync after a copy of the whole WAL, failed. A copy with a failed write
 * is not recorded, so it is not synced: a full disk fails the checkpoint,
 * not the process. The sync is the thread's (sq_vfs_ckpt_sync: the
 * checkpointer's thread writes the pages out in chunks) or the default
 * VFS's; SQLite's own after a copy of the whole WAL then finds nothing
 * left to write (0.3 ms, strace).
 */
static void ckpt_done(db_file_t *d)
{
    bool sync = d->copying && d->copied && !d->copy_failed;
    d->copying = d->copied = d->copy_failed = false;
    if (!sync) return;
    int rc =
        ckpt_sync != NULL ? ckpt_sync(ckpt_sync_arg, d->f.real) : vf_sync(&d->f.base, SQLITE_SYNC_NORMAL);
    if (rc == SQLITE_OK) return;
    /* Not "committed writes may not be on disk" (failed_sync, ckpt.c):
     * SQLite synced the WAL before this copy, so every commit made before
     * it is on disk there, and stays there because the process stops.
     * A command-line process (crmd import) stops so inside the commit
     * that made its checkpoint: its writes are committed, and one who took
     * them for lost would make them again (review rv104). */
    store_log(
        "crmd: sqlite: the database file could not be synced after a checkpoint copied the log into it; "
        "stopping before the copy is recorded: every commit made before the checkpoint is on disk in the "
        "log (-wal), which the next open of the database copies again");
    _exit(EXIT_FAILURE);
}

static int db_file_control(sqlite3_file *f, int op, void *arg)
{
    db_file_t *d = (db_file_t *)f;
    if (op == SQLITE_FCNTL_CKPT_START) {
        d->copying = true;
        d->copied = d->copy_failed = false;
    } else if (op == SQLITE_FCNTL_CKPT_DONE) {
        ckpt_done(d);
    }
    return vf_file_control(f, op, arg);
}

void sq_vfs_ckpt_sync(sq_vfs_ckpt_sync_fn fn, void *arg)
{
    ckpt_sync = fn;
    ckpt_sync_arg = arg;
}

static int db_close(sqlite3_file *f)
{
    db_file_t *d = (db_file_t *)f;
    if (d->wal != NULL) {
        end_transaction(d->wal);
        d->wal->db = NULL;
        d->wal = NULL;
    }
    return d->f.real->pMethods->xClose(d->f.real);
}

/* Opens real (the default VFS's file) behind f as a file of this VFS
 * with methods m; false when real did not open (f then has no methods). */
static bool open_behind(vfs_file_t *f, size_t size, const char *name, int flags, int *out_flags,
                        const sqlite3_io_methods *m, int *rc)
{
    memset(f, 0, size);
    f->real = (sqlite3_file *)((char *)f + size);
    *rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* SQLite closes a file whose methods are set, even after a failure. */
    if (f->real->pMethods == NULL) return false;
    assert(f->real->pMethods->iVersion <= m->iVersion);
    f->base.pMethods = m;
    return true;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    int rc = SQLITE_OK;
    if (flags & SQLITE_OPEN_MAIN_DB) {
        open_behind((vfs_file_t *)f, sizeof(db_file_t), name, flags, out_flags, &db_methods, &rc);
        return rc;
    }
    if (!(flags & SQLITE_OPEN_WAL)) return real_vfs->xOpen(real_vfs, name, f, flags, out_flags);
    walbuf_file_t *w = (walbuf_file_t *)f;
    if (!open_behind(&w->f, sizeof *w, name, flags, out_flags, &walbuf_methods, &rc)) return rc;
    /* A descriptor of its own for the syncs another thread does for this
     * connection's commits (sq_vfs_defer_next): fdatasync on any
     * descriptor of a file writes out all of its data. */
    w->sync_fd = name != NULL ? open(name, O_RDONLY | O_CLOEXEC) : -1;
    /* Without powersafe overwrite, SQLite pads a commit to a sector
     * boundary, syncs up to there and writes the rest of its last frame
     * after the sync: then every write goes through. SQLite asks the
     * database file (a URI's psow=0 turns it off there), so this does too,
     * and the WAL's own answer counts as well. So is a WAL whose database
     * file is not one of this VFS's written through (nothing watches its
     * write lock and its publications). */
    sqlite3_file *db = name != NULL ? sqlite3_database_file_object(name) : NULL;
    if (db != NULL && db->pMethods == &db_methods && ((db_file_t *)db)->wal == NULL) {
        w->db = (db_file_t *)db;
        w->db->wal = w;
    }
    int dc = w->f.real->pMethods->xDeviceCharacteristics(w->f.real);
    if (w->db != NULL) dc &= vf_device_characteristics(db);
    w->direct = !(dc & SQLITE_IOCAP_POWERSAFE_OVERWRITE) || w->db == NULL;
    return rc;
}

/* The rest is the default VFS's, asked with the default VFS itself. */
static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int vfs_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

int sq_vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL || real_vfs->iVersion < 2) return SQLITE_ERROR;
    walbuf_methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = wb_close,
        .xRead = wb_read,
        .xWrite = wb_write,
        .xTruncate = wb_truncate,
        .xSync = wb_sync,
        .xFileSize = wb_file_size,
        .xLock = vf_lock,
        .xUnlock = vf_unlock,
        .xCheckReservedLock = vf_check_reserved_lock,
        .xFileControl = wb_file_control,
        .xSectorSize = vf_sector_size,
        .xDeviceCharacteristics = vf_device_characteristics,
        .xShmMap = vf_shm_map,
        .xShmLock = vf_shm_lock,
        .xShmBarrier = vf_shm_barrier,
        .xShmUnmap = vf_shm_unmap,
        .xFetch = wb_fetch,
        .xUnfetch = vf_unfetch,
    };
    db_methods = walbuf_methods;
    db_methods.xClose = db_close;
    db_methods.xRead = vf_read;
    db_methods.xWrite = db_write;
    db_methods.xTruncate = vf_truncate;
    db_methods.xSync = vf_sync;
    db_methods.xFileSize = vf_file_size;
    db_methods.xFileControl = db_file_control;
    db_methods.xShmLock = db_shm_lock;
    db_methods.xShmBarrier = db_shm_barrier;
    db_methods.xFetch = vf_fetch;
    crmd_vfs = *real_vfs;
    crmd_vfs.zName = SQ_VFS_NAME;
    crmd_vfs.pNext = NULL;
    crmd_vfs.pAppData = NULL;
    crmd_vfs.szOsFile =
        (int)(sizeof(walbuf_file_t) > sizeof(db_file_t) ? sizeof(walbuf_file_t) : sizeof(db_file_t)) +
        real_vfs->szOsFile;
    crmd_vfs.xOpen = vfs_open;
    crmd_vfs.xDelete = vfs_delete;
    crmd_vfs.xAccess = vfs_access;
    crmd_vfs.xFullPathname = vfs_full_pathname;
    crmd_vfs.xRandomness = vfs_randomness;
    crmd_vfs.xSleep = vfs_sleep;
    crmd_vfs.xCurrentTime = vfs_current_time;
    crmd_vfs.xGetLastError = vfs_get_last_error;
    crmd_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    /* xDlOpen and the system-call table stay the default VFS's: they do
     * not look at the VFS they are given. */
    return sqlite3_vfs_register(&crmd_vfs, 0);
}
