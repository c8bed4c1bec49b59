/*
 * test_vfs.c: crmd's SQLite VFS (store/sqlite/vfs.c) over a VFS that fails
 * WAL writes on demand ("faulty", made the default before crmd's is
 * registered, so that crmd's wraps it as it wraps the system's).
 *
 * Criterion runs every test in a process of its own, so each registers
 * the two afresh.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_check.h"
#include "store/sqlite/sqlite_int.h"

static sqlite3_vfs *unix_vfs;
static sqlite3_vfs faulty;
static bool fail_wal;    /* WAL writes fail with SQLITE_FULL (ENOSPC) */
static int wal_writes;   /* WAL writes that reached the file, by size: */
static int small_writes; /* of a frame's 24-byte header alone */
static int failed_writes;

/* A power loss, for the restart test: while track is on, the WAL as the
 * disk holds it since its last sync (durable: what a sync went through
 * left), and at each moment a power loss may come (crash_here: before a
 * sync ends, after the commit), the durable WAL and the WAL as written,
 * any of whose pages the disk may hold or lack. */
static bool track;
static int header_writes; /* WAL writes at offset 0 while tracked */
static char *durable;
static size_t durable_len;
typedef struct crash {
    char *then, *now;
    size_t then_len, now_len;
} crash_t;
static crash_t crashes[8];
static int ncrashes;

typedef struct faulty_file {
    sqlite3_file base;
    sqlite3_file *real;
    bool wal;
} faulty_file_t;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((faulty_file_t *)f)->real;
}

static int f_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}

static int f_read(sqlite3_file *f, void *out, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), out, n, off);
}

static int f_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    if (((faulty_file_t *)f)->wal) {
        if (fail_wal) {
            failed_writes++;
            return SQLITE_FULL;
        }
        wal_writes++;
        if (n == 24) small_writes++;
        if (track && off == 0) header_writes++;
    }
    return real_of(f)->pMethods->xWrite(real_of(f), data, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static void crash_here(void);
static char *wal_now(size_t *len);

static int f_sync(sqlite3_file *f, int flags)
{
    bool tracked = track && ((faulty_file_t *)f)->wal;
    if (tracked) crash_here();
    int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
    if (tracked && rc == SQLITE_OK) {
        free(durable);
        durable = wal_now(&durable_len);
    }
    return rc;
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int f_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int f_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int f_check_reserved_lock(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int f_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, out);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods faulty_methods = {
    3,
    f_close,
    f_read,
    f_write,
    f_truncate,
    f_sync,
    f_file_size,
    f_lock,
    f_unlock,
    f_check_reserved_lock,
    f_file_control,
    f_sector_size,
    f_device_characteristics,
    f_shm_map,
    f_shm_lock,
    f_shm_barrier,
    f_shm_unmap,
    f_fetch,
    f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    faulty_file_t *ff = (faulty_file_t *)f;
    memset(ff, 0, sizeof *ff);
    ff->real = (sqlite3_file *)(ff + 1);
    ff->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = unix_vfs->xOpen(unix_vfs, name, ff->real, flags, out_flags);
    if (ff->real->pMethods != NULL) ff->base.pMethods = &faulty_methods;
    return rc;
}

static char dir_[64];
static char path_[128];
static char path2_[128]; /* a second database in the same directory (the psow=0 test) */

static void setup(void)
{
    snprintf(dir_, sizeof dir_, "/tmp/crmd-test-vfs.XXXXXX");
    cr_assert_not_null(mkdtemp(dir_));
    snprintf(path_, sizeof path_, "%s/v.db", dir_);
    snprintf(path2_, sizeof path2_, "%s/w.db", dir_);
    unix_vfs = sqlite3_vfs_find(NULL);
    cr_assert_not_null(unix_vfs);
    faulty = *unix_vfs;
    faulty.zName = "faulty";
    faulty.pNext = NULL;
    faulty.szOsFile = (int)sizeof(faulty_file_t) + unix_vfs->szOsFile;
    faulty.xOpen = f_open;
    cr_assert_eq(sqlite3_vfs_register(&faulty, 1), SQLITE_OK);
    cr_assert_eq(sq_vfs_register(), SQLITE_OK); /* wraps the default: faulty */
}

static void teardown(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    const char *const paths[] = {path_, path2_};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char p[160];
            snprintf(p, sizeof p, "%s%s", paths[k], suffixes[i]);
            unlink(p);
        }
    rmdir(dir_);
}

TestSuite(vfs, .init = setup, .fini = teardown);

/* A connection as crmd's (crmd's VFS, FULL, WAL), at uri when given. */
static sqlite3 *open_crmd(const char *uri)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | (uri != NULL ? SQLITE_OPEN_URI : 0);
    cr_assert_eq(sqlite3_open_v2(uri != NULL ? uri : path_, &db, flags, SQ_VFS_NAME), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA synchronous = FULL; PRAGMA journal_mode = WAL;", NULL, NULL, NULL),
                 SQLITE_OK);
    return db;
}

/* A transaction whose buffered frames (a cache spill's) cannot be written
 * never commits, even when the failure surfaces in a read, which SQLite
 * takes for a failed statement: here a batch's write, in its savepoint,
 * while the disk is full, undone to the savepoint, then the commit, as
 * crmd's group commit does. The connection writes again once the disk
 * has room, and the database is intact throughout. */
Test(vfs, a_lost_spill_write_never_lets_its_transaction_commit)
{
    sqlite3 *db = open_crmd(NULL);
    cr_assert_eq(sqlite3_exec(db,
                              "PRAGMA cache_size = 20;"
                              "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, pad BLOB);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(db,
                     "BEGIN IMMEDIATE;"
                     "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000) "
                     "INSERT INTO t (v, pad) SELECT printf('%010d', i), randomblob(300) FROM c;"
                     "SAVEPOINT w;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    cr_assert_gt(wal_writes, 0, "the transaction spilled no frames: the test would prove nothing");
    fail_wal = true;
    int src = sqlite3_exec(db, "INSERT INTO t (v, pad) SELECT v || 'y', pad FROM t WHERE id <= 50", NULL,
                           NULL, NULL);
    fail_wal = false;
    cr_expect_neq(src, SQLITE_OK, "the write went through a full disk");
    cr_expect_gt(failed_writes, 0, "no WAL write failed");
    if (!sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "ROLLBACK TO w; RELEASE w;", NULL, NULL, NULL);
        cr_expect_neq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK,
                      "a transaction that lost frames committed");
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    check_intact(other);
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), 0,
                 "rows of the failed transaction are in the database");
    cr_assert_eq(sqlite3_exec(db, "INSERT INTO t (v) VALUES ('after')", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), 1);
    check_intact(other);
    sqlite3_close(other);
    sqlite3_close(db);
}

/* Commits write their frames in runs: no write of a frame's header alone.
 * With powersafe overwrite off on the database file (psow=0), SQLite syncs
 * in the middle of a commit's padding and writes the rest after the sync,
 * so every write goes through as SQLite makes it. */
Test(vfs, frames_go_in_runs_unless_the_database_lacks_powersafe_overwrite)
{
    static const char create[] =
        "CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB);"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200) "
        "INSERT INTO t (pad) SELECT randomblob(300) FROM c;";
    sqlite3 *db = open_crmd(NULL);
    cr_assert_eq(sqlite3_exec(db, create, NULL, NULL, NULL), SQLITE_OK);
    cr_expect_gt(wal_writes, 0);
    cr_expect_eq(small_writes, 0, "%d of %d WAL writes were a frame's header alone", small_writes,
                 wal_writes);
    sqlite3_close(db);
    char uri[200];
    snprintf(uri, sizeof uri, "file:%s?psow=0", path2_);
    wal_writes = small_writes = 0;
    db = open_crmd(uri);
    cr_assert_eq(sqlite3_exec(db, create, NULL, NULL, NULL), SQLITE_OK);
    cr_expect_gt(small_writes, 0, "psow=0, and %d WAL writes, none a frame's header alone", wal_writes);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path2_, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), 200);
    check_intact(other);
    sqlite3_close(other);
    sqlite3_close(db);
}

/* The whole of the file at p (through the kernel's cache), malloc'd. */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spill(const char *p, const char *buf, size_t len)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "%s", p);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static char *wal_now(size_t *len)
{
    char p[160];
    snprintf(p, sizeof p, "%s-wal", path_);
    return slurp(p, len);
}

static void crash_here(void)
{
    cr_assert_lt(ncrashes, (int)(sizeof crashes / sizeof crashes[0]));
    crash_t *c = &crashes[ncrashes++];
    c->then_len = durable_len;
    c->then = malloc(durable_len + 1);
    cr_assert_not_null(c->then);
    memcpy(c->then, durable, durable_len);
    c->now = wal_now(&c->now_len);
}

/* The database after a power loss at c, the disk having written the WAL's
 * pages from byte cut on and none before (the database file itself is
 * unchanged since the checkpoint that synced it): opened by a connection
 * of its own, which recovers the WAL, it still holds the acknowledged
 * update. */
static void check_power_loss(const crash_t *c, int at, size_t cut)
{
    size_t len = c->now_len > c->then_len ? c->now_len : c->then_len;
    char *img = calloc(1, len + 1);
    cr_assert_not_null(img);
    for (size_t i = 0; i < len; i++)
        img[i] = i < cut ? (i < c->then_len ? c->then[i] : 0) : (i < c->now_len ? c->now[i] : c->then[i]);
    char cdb[160], cwal[160], cshm[160];
    snprintf(cdb, sizeof cdb, "%s/c.db", dir_);
    snprintf(cwal, sizeof cwal, "%s/c.db-wal", dir_);
    snprintf(cshm, sizeof cshm, "%s/c.db-shm", dir_);
    size_t dblen;
    char *db = slurp(path_, &dblen);
    spill(cdb, db, dblen);
    spill(cwal, img, len);
    unlink(cshm);
    free(db);
    free(img);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(cdb, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    const char *v = NULL;
    if (sqlite3_prepare_v2(other, "SELECT v FROM t WHERE id = 1", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = (const char *)sqlite3_column_text(st, 0);
    cr_expect(v != NULL && strcmp(v, "new") == 0,
              "a power loss at point %d, the WAL's first %zu bytes not written, and the acknowledged "
              "update reads %s",
              at, cut, v == NULL ? "(no row)" : v);
    sqlite3_finalize(st);
    sqlite3_close(other);
    unlink(cdb);
    unlink(cwal);
    unlink(cshm);
}

/* A batch commit whose sync is deferred (sq_vfs_defer_next) and that
 * starts the WAL again, every frame of it copied: SQLite syncs the new
 * header before it writes the first frame over the old ones, so that a
 * power loss never finds the old header with some of the old frames,
 * which the recovery would bring back over the newer pages of the
 * database. That sync is not the one deferred. Every moment a power loss
 * may come is tried (each sync of the WAL, and the commit's return before
 * its deferred sync), with the disk having written any run of the WAL's
 * last pages and not those before. */
Test(vfs, a_deferred_commit_that_starts_the_wal_again_syncs_its_header_first)
{
    sqlite3 *db = open_crmd(NULL);
    cr_assert_eq(sqlite3_exec(db,
                              "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                              "CREATE TABLE u (pad BLOB);"
                              "INSERT INTO t VALUES (1, 'old');"
                              "UPDATE t SET v = 'new' WHERE id = 1;",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    int log = 0, copied = 0;
    cr_assert_eq(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied), SQLITE_OK);
    cr_assert(log > 0 && copied == log, "the checkpoint copied %d of %d frames", copied, log);
    durable = wal_now(&durable_len); /* synced by the checkpoint, before it copied */
    track = true;
    cr_assert_eq(sqlite3_exec(db,
                              "BEGIN IMMEDIATE;"
                              "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20) "
                              "INSERT INTO u SELECT randomblob(3000) FROM c;",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sq_vfs_defer_next(true);
    int src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sq_vfs_defer_next(false);
    store_sync_t t;
    bool owed = sq_vfs_deferred(&t);
    cr_assert_eq(src, SQLITE_OK, "%s", sqlite3_errmsg(db));
    crash_here(); /* answered once its deferred sync is done: not yet */
    track = false;
    cr_assert_eq(header_writes, 1, "the commit did not start the WAL again: the test would prove nothing");
    cr_expect(owed, "the commit's own sync was not deferred");
    for (int i = 0; i < ncrashes; i++) {
        size_t len = crashes[i].now_len > crashes[i].then_len ? crashes[i].now_len : crashes[i].then_len;
        for (size_t cut = 0; cut <= len; cut += 4096)
            check_power_loss(&crashes[i], i, cut);
    }
    if (owed) cr_assert_eq(sq_vfs_sync(&t), 0);
    sqlite3_close(db);
    for (int i = 0; i < ncrashes; i++) {
        free(crashes[i].then);
        free(crashes[i].now);
    }
    free(durable);
}
