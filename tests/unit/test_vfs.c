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
    }
    return real_of(f)->pMethods->xWrite(real_of(f), data, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
    return real_of(f)->pMethods->xSync(real_of(f), flags);
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
