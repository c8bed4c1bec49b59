/*
 * ckpt.c: the server writer's checkpoints, copied on a thread of their own
 * (store_set_writer).
 *
 * A checkpoint copies the pages of the WAL into the database file, then
 * syncs the database. SQLite runs it inside the commit that takes the WAL
 * past its size (wal_autocheckpoint, 16,000 pages here: conn.c), so the
 * writer thread copied up to 64 MiB and waited for the sync while every
 * queued write waited behind it: the p99 of creates at 64 connections was
 * 110 to 160 ms with checkpoints and 25 ms without (bench/results.md,
 * 2026-12-01 09:10).
 *
 * Moving the whole checkpoint to another thread is not enough. SQLite
 * starts the WAL again from its beginning only when a write transaction
 * begins with every frame copied; under steady writes a checkpoint on
 * another thread never catches up with the frames the writer adds
 * meanwhile, so the WAL grows without end and the writer must copy all
 * of it itself in the end (tried: 2026-12-01 07:25). So the work is
 * split:
 *
 *   1. A commit that leaves CK_START frames or more in the WAL wakes the
 *      checkpointer, which copies what is there, and again what came in
 *      meanwhile while each pass copies more than CK_REST frames (at most
 *      CK_PASSES passes), each pass's copy synced before SQLite records
 *      it (sync_db), but never after a pass that may have copied the
 *      whole WAL (below).
 *   2. The writer's next commit, seeing the pass done, copies the
 *      frames left (those of the last pass's time) and syncs the database
 *      itself: a small copy and a sync with little to write out. Its next
 *      write transaction finds every frame copied and starts the WAL again.
 *   3. A transaction larger than all that (an import) is copied the same
 *      way: its commit asks for a pass and returns, and the next one copies
 *      the rest. While a reader's snapshot holds the passes back (a long
 *      export), the WAL grows, as it would with SQLite's own checkpoints:
 *      no checkpoint copies a frame a reader may still need.
 *
 * Both are PASSIVE checkpoints: neither waits for a lock. One that finds
 * the other copying returns at once having done nothing, and the next
 * commit tries again. Durability is SQLite's: each commit is synced into
 * the WAL before it returns (synchronous=FULL); a checkpoint syncs the WAL
 * before it copies; and the WAL's frames are written over only after a
 * checkpoint that reached the WAL's end has synced the database. crmd's
 * VFS adds one sync: every checkpoint's copy, the passes' and the
 * writer's, is synced before SQLite records it in the -shm (vfs.c,
 * ckpt_done), where a failed writeback must stop the process (failed_sync).
 * A pass's sync (sync_db) also moves most of the last sync's work earlier,
 * so the writer's sync finds little to write.
 *
 * SQLite up to 3.51.2 (Debian 12 has 3.40) can lose commits when a
 * checkpoint starts right after one that copied the whole WAL and a write
 * starts the WAL again while it runs (the "WAL-reset bug", fixed in
 * 3.51.3). A write starts the WAL again only once every frame is copied,
 * so no checkpoint here starts then: the first pass starts after the
 * asking commit added frames; another pass only when the writer's
 * commits left the WAL longer than the pass copied; the writer copies
 * (step 2) only when its commit's frames lie past what the pass copied;
 * and the process's other connections leave their checkpoints to these
 * two (sq_wal_hook). Another process's connection (the command line)
 * checkpoints by itself, as before.
 *
 * Threads: the hook runs on the writer's thread, after its commits; the
 * checkpointer has its own connection. They share sq_ckpt_t under ck->mu
 * (asked is written by the writer only, under it: the writer alone reads it
 * without).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite/sqlite_int.h"

/* A commit leaving this many frames in the WAL (64 MiB of 4 KiB pages)
 * wakes the checkpointer: SQLite's autocheckpoint setting until now. */
#define CK_START 16000
/* A pass that copied more than this many frames is followed by another. */
#define CK_REST 1000
#define CK_PASSES 4
/* The database's copied pages are written out this much of the file at a
 * time (sync_db). */
#define CK_SYNC_CHUNK (8 << 20)

struct sq_ckpt {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    sqlite3 *db; /* the checkpointer's own connection */
    int fd;      /* the database file, read-only (kept_fd): its writes go out through it */
    bool vfs;    /* db is on crmd's VFS, which syncs each copy (sync_db) before it is recorded */
    bool want;   /* a pass is asked for */
    bool busy;   /* asked for or running */
    bool quit;
    bool asked;        /* the writer asked for the pass (busy or done since) */
    unsigned asks;     /* passes asked for */
    unsigned done;     /* passes finished */
    int passed;        /* frames copied (from the WAL's start) when the last pass ended */
    int live;          /* frames in the WAL after the writer's last commit since the ask */
    unsigned finishes; /* the writer's checkpoints (step 2) */
    int writer_frames; /* frames its last one copied */
};

/* A sync that failed in a checkpoint (what names it): the pages copied
 * into the database may not be on disk, and the kernel, which marks them
 * clean, reports that once to each descriptor, so the next checkpoint's
 * sync would succeed and the WAL start again over the only copy of those
 * commits on disk. The process stops at once, as for a failed sync of the
 * WAL (api/writer.c), and before SQLite records the copy in the -shm: the
 * next start copies those frames into the database again and syncs them
 * (sq_sync_defer), even when another process held the database open
 * across the stop and kept the -shm (review rv98). The sync of a copy
 * stops in crmd's VFS (vfs.c, ckpt_done); this is for the failures SQLite
 * reports, of its sync of the WAL before a copy and of the database after
 * a copy of the whole WAL, neither of which it records, and for the sync
 * after a pass of a checkpointer without crmd's VFS, which can only come
 * after the record (sync_after). */
static void failed_sync(const char *what)
{
    store_log("crmd: sqlite: %s could not be synced in a checkpoint: committed writes may not be on disk; "
              "stopping",
              what);
    _exit(EXIT_FAILURE);
}

/* A PASSIVE checkpoint on db: how many frames of the WAL are copied
 * (counted from its start, those copied before included); 0 when it
 * failed or found the checkpoint lock taken. A failed sync stops the
 * process (failed_sync). */
static int copy_frames(sqlite3 *db)
{
    int log = 0, copied = 0;
    int src = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (src != SQLITE_OK && sqlite3_extended_errcode(db) == SQLITE_IOERR_FSYNC)
        failed_sync("the database or its log");
    return src == SQLITE_OK && copied > 0 ? copied : 0;
}

/* Checkpointers running in this process (sq_wal_hook). */
static atomic_int active;

int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)arg;
    if (frames >= CK_START && atomic_load(&active) == 0) sqlite3_wal_checkpoint(db, name);
    return SQLITE_OK;
}

/* Writes the database file's copied pages out to the disk: the sync of a
 * pass's copy, on the checkpointer's thread, in the copy's checkpoint
 * before SQLite records it (sq_vfs_ckpt_sync: SQLITE_OK, or an error,
 * which stops the process there). SQLite syncs the database only in a
 * checkpoint that reaches the WAL's end, which under steady writes is the
 * writer's (step 2): it synced there every page the passes had copied (64
 * MiB: 50 to 290 ms with every write waiting). Synced here, the writer's
 * sync finds only its own few pages to write. One fdatasync of them all
 * queued 64 MiB of writes at once on the disk, and the writer's commits
 * waited up to 250 ms for their WAL's sync behind them (strace). So the
 * pages go out CK_SYNC_CHUNK of the file at a time, each chunk waited
 * for, with the commits' syncs between. f is the database file of the
 * checkpointer's connection (the default VFS's). */
static int sync_db(void *arg, sqlite3_file *f)
{
    const sq_ckpt_t *ck = arg;
    struct stat sb;
    if (ck->fd >= 0 && fstat(ck->fd, &sb) == 0)
        for (off_t off = 0; off < sb.st_size; off += CK_SYNC_CHUNK)
            if (sync_file_range(ck->fd, off, CK_SYNC_CHUNK,
                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                    SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
                errno == EIO)
                return SQLITE_IOERR_FSYNC;
    /* What sync_file_range leaves (the file's size, the disk's cache), or
     * all of it without the descriptor: SQLite's own sync of its file. */
    return f != NULL && f->pMethods != NULL ? f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) : SQLITE_OK;
}

/* The same after a pass, for a checkpointer without crmd's VFS, whose
 * checkpoints are recorded before it (ck_open). */
static void sync_after(sq_ckpt_t *ck)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(ck->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK) f = NULL;
    if (sync_db(ck, f) != SQLITE_OK) failed_sync("the database");
}

/* A read-only descriptor of the database file at path, for sync_file_range
 * (SQLite does not hand out its own), or -1. It is never closed: closing
 * any descriptor of a file drops every POSIX lock the process holds on it,
 * SQLite's included, and another process would then find the database
 * unused (and, closing its own connection last, delete the WAL under this
 * one). So one is kept per file for the process's life, and found again
 * by the file's identity when another writer opens the same file. */
#define CK_KEPT_MAX 8
static int kept_fd(const char *path)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        dev_t dev;
        ino_t ino;
        int fd;
    } kept[CK_KEPT_MAX];
    static int n;
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    int fd = -1;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n && fd < 0; i++)
        if (kept[i].dev == sb.st_dev && kept[i].ino == sb.st_ino) fd = kept[i].fd;
    if (fd < 0 && n < CK_KEPT_MAX && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        struct stat fb;
        /* Kept under the identity of what it opened, which is the file
         * at path now, should it have been replaced since the stat. */
        if (fstat(fd, &fb) == 0) {
            kept[n].dev = fb.st_dev;
            kept[n].ino = fb.st_ino;
            kept[n].fd = fd;
            n++;
        }
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

static void *ck_main(void *arg)
{
    sq_ckpt_t *ck = arg;
    /* Its connection's copies are synced in chunks (sync_db). */
    sq_vfs_ckpt_sync(sync_db, ck);
    pthread_mutex_lock(&ck->mu);
    for (;;) {
        while (!ck->want && !ck->quit)
            pthread_cond_wait(&ck->cv, &ck->mu);
        if (ck->quit) break;
        assert(ck->busy && ck->asked); /* set with want, cleared only here and by the writer */
        ck->want = false;
        /* nCkpt counts from the WAL's start: a pass copied the difference
         * from the one before (from 0 when the WAL started again since).
         * A pass that copied nothing (a reader's snapshot holds it back)
         * synced nothing (vfs.c). Another pass follows only when a commit of the
         * writer's since the ask left more frames in the WAL than this
         * one copied: then the WAL is not wholly copied, and no write can
         * start it again while the next pass runs (the WAL-reset bug). */
        int last = ck->passed, upto = 0;
        pthread_mutex_unlock(&ck->mu);
        for (int pass = 0; pass < CK_PASSES; pass++) {
            upto = copy_frames(ck->db);
            if (upto < last) last = 0;
            if (upto > last && !ck->vfs) sync_after(ck);
            if (upto - last <= CK_REST) break;
            pthread_mutex_lock(&ck->mu);
            bool more = ck->live > upto && !ck->quit;
            pthread_mutex_unlock(&ck->mu);
            if (!more) break;
            last = upto;
        }
        pthread_mutex_lock(&ck->mu);
        ck->passed = upto;
        ck->done++;
        ck->busy = false;
    }
    pthread_mutex_unlock(&ck->mu);
    return NULL;
}

/* The writer connection's WAL hook, after each commit, with frames in the
 * WAL: see the top of the file. */
static int ck_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)name;
    sq_ckpt_t *ck = arg;
    if (frames < CK_START && !ck->asked) return SQLITE_OK;
    bool finish = false;
    pthread_mutex_lock(&ck->mu);
    if (ck->busy) {
        /* The pass goes on: the writer leaves the WAL to it. */
        ck->live = frames;
    } else if (ck->asked) {
        /* The pass is over. Unless the WAL started again since (the pass
         * copied every frame, and the write after it began the WAL anew),
         * the writer copies what came in while it ran; but not when the
         * pass copied this commit's frames too (SQLite calls the hook
         * after the commit's locks are released, and a pass may have run
         * in between): every frame may then be copied (the WAL-reset
         * bug). The next commit asks for a pass again. */
        ck->asked = false;
        finish = frames >= CK_START && frames > ck->passed;
    } else {
        ck->asked = ck->want = ck->busy = true;
        ck->asks++;
        ck->live = frames;
        pthread_cond_signal(&ck->cv);
    }
    int passed = ck->passed;
    pthread_mutex_unlock(&ck->mu);
    if (finish) {
        int upto = copy_frames(db);
        /* Only this thread writes them; the tests read them under the mutex. */
        pthread_mutex_lock(&ck->mu);
        ck->finishes++;
        ck->writer_frames = upto > passed ? upto - passed : upto;
        pthread_mutex_unlock(&ck->mu);
    }
    return SQLITE_OK;
}

void sq_ckpt_counts(const sqlite_store_t *s, unsigned *asks, unsigned *passes, unsigned *finishes,
                    int *writer_frames)
{
    *asks = *passes = *finishes = 0;
    *writer_frames = 0;
    sq_ckpt_t *ck = s->ckpt;
    if (ck == NULL) return;
    pthread_mutex_lock(&ck->mu);
    *asks = ck->asks;
    *passes = ck->done;
    *finishes = ck->finishes;
    *writer_frames = ck->writer_frames;
    pthread_mutex_unlock(&ck->mu);
}

/* The checkpointer's connection: crmd's VFS and synchronous=FULL as every
 * connection of crmd's (conn.c), nothing else: it only checkpoints. */
static sqlite3 *ck_open(const char *path, bool *on_vfs)
{
    sqlite3 *db = NULL;
    const char *vfs = sqlite3_vfs_find(SQ_VFS_NAME) != NULL ? SQ_VFS_NAME : NULL;
    *on_vfs = vfs != NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

void sq_set_writer(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base; /* the writer holds no snapshot */
    if (s->path == NULL || s->ckpt != NULL) return;
    sq_ckpt_t *ck = calloc(1, sizeof *ck);
    if (ck == NULL) return; /* the checkpoints stay in the commits */
    pthread_mutex_init(&ck->mu, NULL);
    pthread_cond_init(&ck->cv, NULL);
    ck->fd = kept_fd(s->path); /* -1: the database is synced in one go */
    if ((ck->db = ck_open(s->path, &ck->vfs)) == NULL ||
        pthread_create(&ck->thread, NULL, ck_main, ck) != 0) {
        store_log("crmd: sqlite: no checkpointer thread; the writer's commits checkpoint as SQLite does");
        sq_ckpt_free(ck, false);
        return;
    }
    s->ckpt = ck;
    atomic_fetch_add(&active, 1);
    /* Replaces sq_wal_hook on this connection. */
    sqlite3_wal_hook(s->db, ck_hook, ck);
}

void sq_ckpt_free(sq_ckpt_t *ck, bool running)
{
    if (ck == NULL) return;
    if (running) {
        pthread_mutex_lock(&ck->mu);
        ck->quit = true;
        pthread_cond_signal(&ck->cv);
        pthread_mutex_unlock(&ck->mu);
        pthread_join(ck->thread, NULL);
        /* Only now may the other connections checkpoint again: one of
         * theirs between two passes would be the WAL-reset bug's first. */
        atomic_fetch_sub(&active, 1);
    }
    sqlite3_close(ck->db); /* ck->fd stays open: kept_fd */
    pthread_cond_destroy(&ck->cv);
    pthread_mutex_destroy(&ck->mu);
    free(ck);
}
