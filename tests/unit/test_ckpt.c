/*
 * test_ckpt.c: the server writer's checkpoints on a thread of their own
 * (store/sqlite/ckpt.c, store_set_writer).
 *
 * The writer here is the test itself, on the store's connection: it fills
 * the WAL past the point where the checkpointer starts, waits for its pass,
 * and commits again, as the writer thread's next batch would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sqlite_check.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store_int.h"

static char dir_[64];
static char path_[128];

static void setup(void)
{
    snprintf(dir_, sizeof dir_, "/tmp/crmd-test-ckpt.XXXXXX");
    cr_assert_not_null(mkdtemp(dir_));
    snprintf(path_, sizeof path_, "%s/c.db", dir_);
}

static void teardown(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path_, suffixes[i]);
        unlink(p);
    }
    rmdir(dir_);
}

TestSuite(ckpt, .init = setup, .fini = teardown);

/* While set, every fdatasync and fsync of the database file (not its WAL)
 * fails with EIO, as after a failed writeback. */
static volatile bool fail_db_syncs;

static bool names_db(int fd)
{
    char p[64], t[200];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n <= 0) return false;
    t[n] = '\0';
    return strcmp(t, path_) == 0;
}

/* The C library's, here for every caller in the process (SQLite's too). */
int fdatasync(int fd)
{
    if (fail_db_syncs && names_db(fd)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    if (fail_db_syncs && names_db(fd)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

/* One transaction of 40 rows of 3,000 bytes: about 40 WAL frames. */
static void commit_some(sqlite3 *db)
{
    cr_assert_eq(sqlite3_exec(db,
                              "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40) "
                              "INSERT INTO t (pad) SELECT randomblob(3000) FROM c;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
}

/* Frames in the WAL now (what a PASSIVE checkpoint reports as its log). */
static int wal_frames(sqlite3 *db)
{
    int log = -1, copied = -1;
    cr_assert_eq(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied), SQLITE_OK);
    return log;
}

/* The WAL file's size at frames frames: 24 bytes of header and a 4 KiB
 * page each, after a 32-byte header (it only grows until it starts again). */
static long long wal_size_at(int frames)
{
    return 32 + (long long)frames * (24 + 4096);
}

/* Commits on db until the WAL file reaches frames frames; how many. */
static int fill_wal(sqlite3 *db, int frames)
{
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path_);
    int commits = 0;
    struct stat sb;
    do {
        commit_some(db);
        commits++;
        cr_assert_eq(stat(wal, &sb), 0);
    } while (sb.st_size < wal_size_at(frames) && commits < 2000);
    cr_assert_geq(sb.st_size, wal_size_at(frames));
    return commits;
}

/* Waits (30 s at most) for the checkpointer's passes to reach want. */
static void wait_passes(store_t *s, unsigned want)
{
    unsigned asks = 0, passes = 0, finishes = 0;
    int writer_frames = 0;
    for (int waited = 0; waited < 3000; waited++) {
        sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
        if (passes >= want) break;
        usleep(10000);
    }
    cr_assert_eq(passes, want, "pass %u of the checkpointer did not come in 30 s", want);
}

static store_t *writer_store(void)
{
    char err[256];
    store_t *s = store_sqlite_open(path_, true, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    store_set_writer(s);
    /* A user_version, as crmd's migrations set: a database of objects
     * without one is another program's, which crmd refuses to open. */
    cr_assert_eq(sqlite3_exec(((sqlite_store_t *)s)->db,
                              "CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB); PRAGMA user_version = 1",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    return s;
}

/* The WAL's 16,000 frames are copied by the checkpointer, not by the
 * commit that reached them. A reader's snapshot holds the pass back from
 * the last frames, as writes that come in during a pass do in a server:
 * the writer's next commit copies only those, and the one after it writes
 * at the WAL's beginning again. */
Test(ckpt, the_checkpointer_copies_the_wal_and_the_writer_only_the_rest)
{
    store_t *s = writer_store();
    sqlite3 *db = ((sqlite_store_t *)s)->db;
    int commits = fill_wal(db, 15500);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN; SELECT count(*) FROM t;", NULL, NULL, NULL), SQLITE_OK);
    commits += fill_wal(db, 16000);
    wait_passes(s, 1);
    unsigned asks = 0, passes = 0, finishes = 0;
    int writer_frames = 0;
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_expect_eq(finishes, 0, "the writer checkpointed before the pass ended");
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);

    commit_some(db);
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_assert_eq(finishes, 1, "the commit after the pass did not copy the rest");
    cr_expect(writer_frames > 0 && writer_frames < 1000, "the writer copied %d frames itself", writer_frames);

    commit_some(db);
    int frames = wal_frames(other);
    cr_expect_lt(frames, 100, "the WAL did not start again: %d frames", frames);
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), (int64_t)(commits + 2) * 40);
    check_intact(other);
    sqlite3_close(other);
    store_close(s);
}

/* A pass that copies the whole WAL, no write coming in meanwhile, leaves
 * the writer nothing to copy: the WAL starts again with the next write.
 * When it is full again, the commit asks for a pass again rather than
 * copying it all itself. */
Test(ckpt, a_pass_that_copied_everything_leaves_the_writer_nothing)
{
    store_t *s = writer_store();
    sqlite3 *db = ((sqlite_store_t *)s)->db;
    int commits = fill_wal(db, 16000);
    wait_passes(s, 1);
    commit_some(db);
    commit_some(db);
    unsigned asks = 0, passes = 0, finishes = 0;
    int writer_frames = 0;
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_expect_eq(finishes, 0);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    cr_expect_lt(wal_frames(other), 100, "the WAL did not start again");

    /* The file does not shrink: commit until the second ask (16,000
     * frames again), then wait for its pass without another commit. */
    int more = 0;
    do {
        commit_some(db);
        more++;
        sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    } while (asks < 2 && more < 2000);
    cr_assert_eq(asks, 2);
    cr_expect_geq(more, commits * 9 / 10, "a pass was asked for after %d commits, not %d", more, commits);
    wait_passes(s, 2);
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_expect_eq(finishes, 0, "the writer copied %d frames itself", writer_frames);
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), (int64_t)(commits + 2 + more) * 40);
    check_intact(other);
    sqlite3_close(other);
    store_close(s);
}

/* While a checkpointer runs, the process's other connections that write
 * (the webhook sender's) leave the checkpoints to it: theirs could start
 * right after one of its own that copied everything (the WAL-reset bug,
 * ckpt.c). So their commits take the WAL past 16,000 frames untouched
 * (without that, the WAL would start again at 16,000), and the writer's
 * next commit asks for the pass. */
Test(ckpt, the_other_connections_leave_the_checkpoints_to_the_checkpointer)
{
    store_t *s = writer_store();
    char err[256];
    store_t *o = store_sqlite_open(path_, false, err, sizeof err);
    cr_assert_not_null(o, "%s", err);
    int commits = fill_wal(((sqlite_store_t *)o)->db, 20000);
    unsigned asks = 0, passes = 0, finishes = 0;
    int writer_frames = 0;
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_expect_eq(asks, 0);
    sqlite3 *db = ((sqlite_store_t *)s)->db;
    commit_some(db);
    wait_passes(s, 1);
    commit_some(db);
    commit_some(db);
    sq_ckpt_counts((sqlite_store_t *)s, &asks, &passes, &finishes, &writer_frames);
    cr_expect_eq(asks, 1);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    cr_expect_lt(wal_frames(other), 100, "the WAL did not start again");
    cr_expect_eq(check_int(other, "SELECT count(*) FROM t"), (int64_t)(commits + 3) * 40);
    check_intact(other);
    sqlite3_close(other);
    store_close(o);
    store_close(s);
}

/* A store of no file has no checkpointer, and none is started twice. */
Test(ckpt, only_a_file_gets_a_checkpointer_and_only_one)
{
    char err[256];
    store_t *mem = store_sqlite_open(":memory:", true, err, sizeof err);
    cr_assert_not_null(mem, "%s", err);
    store_set_writer(mem);
    cr_expect_null(((sqlite_store_t *)mem)->ckpt);
    store_close(mem);

    store_t *s = store_sqlite_open(path_, true, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    store_set_writer(s);
    sq_ckpt_t *first = ((sqlite_store_t *)s)->ckpt;
    cr_expect_not_null(first);
    store_set_writer(s);
    cr_expect_eq(((sqlite_store_t *)s)->ckpt, first);
    store_close(s);
}

/* Rows of t in the database file itself, its WAL left aside (-1: no t
 * there yet). */
static int rows_in_file(void)
{
    char uri[200];
    snprintf(uri, sizeof uri, "file:%s?immutable=1", path_);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, "unix"), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The writer's batch commits leave their syncs owed (store_sync_defer,
 * vfs.c): the commit is written and visible, its ticket taken once, and
 * the process counts it owed until the ticket is run. Commits outside a
 * batch sync as before. A log found when deferring begins is copied into
 * the database file and emptied first. */
Test(ckpt, a_batch_commit_leaves_its_sync_to_be_run)
{
    store_t *s = writer_store();
    sqlite3 *db = ((sqlite_store_t *)s)->db;
    store_sync_t t = {.fd = -1};
    /* A log found at the start is copied into the database file first. */
    commit_some(db);
    cr_assert_leq(rows_in_file(), 0, "the rows were in the database file before the log was copied");
    cr_assert(store_sync_defer(s));
    cr_assert_eq(rows_in_file(), 40, "the log found was not copied into the database file");
    char wal[160];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", path_);
    cr_assert_eq(stat(wal, &sb), 0);
    cr_assert_eq(sb.st_size, 0, "the log found was not emptied: %lld bytes", (long long)sb.st_size);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(store_batch_begin(s), STORE_OK);
        cr_assert_eq(sqlite3_exec(db, "INSERT INTO t (pad) VALUES (randomblob(100))", NULL, NULL, NULL),
                     SQLITE_OK);
        cr_assert_eq(store_batch_end(s, 1), STORE_OK);
    }
    /* The two commits' tickets are one, the later: its sync covers both. */
    cr_assert(store_sync_owed(s, &t), "a batch commit synced by itself");
    cr_expect_eq(t.n, 2);
    cr_assert_not(store_sync_owed(s, &t), "a ticket was taken twice");
    cr_assert_not(sq_vfs_durable(0), "an owed sync was not counted");
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READONLY, "unix"), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "SELECT count(*) FROM t", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    cr_assert_eq(store_sync_run(s, &t), 0);
    cr_assert(sq_vfs_durable(0), "a run sync was still counted owed");
    commit_some(db);
    cr_assert_not(store_sync_owed(s, &t), "a commit outside a batch left its sync owed");
    store_close(s);
}

/* SQLite's record of the checkpoints in the -shm (the WAL index, laid out
 * as sqlite.org/walformat.html says): nBackfill, the frames copied into
 * the database (from the WAL's start), and nBackfillAttempted, those the
 * last checkpoint set out to copy. Read from the file: it is shared
 * memory, and the process that wrote it may be gone. */
static void shm_backfill(uint32_t *copied, uint32_t *attempted)
{
    char shm[160];
    snprintf(shm, sizeof shm, "%s-shm", path_);
    int fd = open(shm, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", shm, strerror(errno));
    uint32_t w[34];
    cr_assert_eq(pread(fd, w, sizeof w, 0), (ssize_t)sizeof w);
    close(fd);
    *copied = w[96 / 4];
    *attempted = w[128 / 4];
}

/* The writer child and the test tell each other where they are, a byte
 * through a pipe: false when the other end is gone. */
static void say(int fd)
{
    cr_assert_eq(write(fd, "", 1), 1);
}

static bool hear(int fd)
{
    char c;
    ssize_t n;
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1;
}

/* Another process's connection (the sqlite3 shell, a crmd export) that
 * holds the database open across the writer's stop, so that the -shm and
 * what SQLite recorded in it stay for the next start. It reads, so that it
 * holds a snapshot of the WAL as it is now (BEGIN without COMMIT), which
 * holds every checkpoint back from the frames after it. It does not
 * checkpoint when it closes. */
static sqlite3 *holder_open(void)
{
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &h, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    cr_assert_eq(sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL), SQLITE_OK);
    return h;
}

static void hold_snapshot(sqlite3 *h)
{
    cr_assert_eq(sqlite3_exec(h, "BEGIN; SELECT count(*) FROM t;", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(h));
}

static void let_go(sqlite3 *h)
{
    cr_assert_eq(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
}

/* Waits for the writer child; its exit status (-1: ended by a signal). */
static int writer_status(pid_t pid)
{
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid: %s", strerror(errno));
    cr_assert(WIFEXITED(status), "the writer ended by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* The writer child and, in the test's process, the holder: another
 * connection (holder_open) with a snapshot. up and down are each side's
 * ends of the pipes between them (say, hear). */
typedef struct writer {
    pid_t pid; /* 0 in the child */
    int up, down;
    store_t *s;  /* the child's */
    sqlite3 *db; /* the child's: s's connection */
    sqlite3 *h;  /* the test's: the holder */
} writer_t;

/* Forks the writer: a child that opens the store, fills the WAL to 15,500
 * frames, and waits while the test opens the holder and takes its
 * snapshot. */
static writer_t fork_writer(void)
{
    writer_t w = {0};
    int u[2], d[2];
    cr_assert_eq(pipe(u), 0);
    cr_assert_eq(pipe(d), 0);
    w.pid = fork();
    cr_assert_geq(w.pid, 0, "fork: %s", strerror(errno));
    if (w.pid == 0) {
        close(u[0]);
        close(d[1]);
        w.up = u[1];
        w.down = d[0];
        w.s = writer_store();
        w.db = ((sqlite_store_t *)w.s)->db;
        fill_wal(w.db, 15500);
        say(w.up);
        if (!hear(w.down)) _exit(3);
        return w;
    }
    close(u[1]);
    close(d[0]);
    w.up = u[0];
    w.down = d[1];
    if (!hear(w.up))
        cr_assert_fail("the writer ended before it filled the WAL (exit %d)", writer_status(w.pid));
    w.h = holder_open();
    hold_snapshot(w.h);
    say(w.down);
    return w;
}

/* A sync of the database file that fails in a checkpoint stops the
 * process: the kernel reports a failed writeback once to each descriptor,
 * so a checkpoint that tried again would succeed, and the WAL would start
 * again over the only copy on disk of what the pages held (review rv95).
 * Unless the process stops, the writes go on and the WAL starts again.
 *
 * It stops before SQLite records the copy in the -shm (vfs.c, ckpt_done):
 * another process holds the database open across the stop, so the next
 * start goes by that record, and copies only the frames after it; the
 * pages whose writeback failed would never be written again (review rv98).
 * Its snapshot also holds the pass back from the WAL's end, as commits
 * coming in during a pass do in a server: SQLite syncs the database itself
 * only after a copy of the whole WAL, and a sync there that failed kept
 * the copy unrecorded before.
 *
 * The writes run in a child, so that this process, which waits for it,
 * still runs the suite's teardown: Criterion runs none for a test whose
 * process exits, and the database and its WAL (120 MB) would stay in
 * /tmp. */
Test(ckpt, a_failed_sync_of_the_database_in_a_checkpoint_stops_the_process)
{
    /* What the child logs once it fails the syncs: a file of no name. */
    char said_at[160];
    snprintf(said_at, sizeof said_at, "%s/said", dir_);
    int said = open(said_at, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(said, 0, "%s: %s", said_at, strerror(errno));
    unlink(said_at);
    writer_t w = fork_writer();
    if (w.pid == 0) {
        if (dup2(said, STDERR_FILENO) < 0) _exit(3);
        fail_db_syncs = true;
        char wal[160];
        snprintf(wal, sizeof wal, "%s-wal", path_);
        struct stat sb;
        /* The pass starts at 16,000 frames; then a commit every 0.1 s for
         * 30 s at most. */
        for (int after = 0; after < 300;) {
            commit_some(w.db);
            if (stat(wal, &sb) != 0) _exit(3);
            if (sb.st_size >= wal_size_at(16000)) {
                usleep(100000);
                after++;
            }
        }
        _exit(0);
    }
    int status = writer_status(w.pid);
    cr_assert_neq(status, 0, "a failed sync of the database file in a checkpoint did not stop the process");
    cr_assert_eq(status, EXIT_FAILURE, "the writer failed otherwise (exit %d)", status);
    uint32_t copied = 0, attempted = 0;
    shm_backfill(&copied, &attempted);
    cr_assert_geq(attempted, 15000, "the pass did not set out to copy the frames (%u)", attempted);
    cr_expect_eq(copied, 0, "SQLite recorded %u frames copied though their sync failed", copied);
    /* The child's last words say that the commits are on disk in the log,
     * as they are (SQLite synced it before the copy). A command-line
     * process (crmd import) that stops so has committed its writes, and
     * one who read "may not be on disk" would make them again (rv104). */
    char said_text[4096];
    ssize_t n = pread(said, said_text, sizeof said_text - 1, 0);
    said_text[n > 0 ? n : 0] = '\0';
    cr_expect(strstr(said_text, "is on disk in the log") != NULL, "the stop said: %s", said_text);
    let_go(w.h);
    sqlite3_close(w.h);
    close(w.up);
    close(w.down);
    close(said);
}

/* The same for the writer's own checkpoint (step 2 in ckpt.c): while a
 * reader holds frames back from it, it copies the rest of the pass's time
 * without reaching the WAL's end, after which SQLite syncs nothing. A
 * failed sync of what it copied stops the process before SQLite records
 * the copy: what the -shm says is copied stays what the pass synced. */
Test(ckpt, a_failed_sync_of_the_writers_own_checkpoint_stops_the_process)
{
    writer_t w = fork_writer();
    if (w.pid == 0) {
        fill_wal(w.db, 16000);
        wait_passes(w.s, 1);
        say(w.up);
        if (!hear(w.down)) _exit(3);
        fail_db_syncs = true;
        commit_some(w.db);
        unsigned asks = 0, passes = 0, finishes = 0;
        int writer_frames = 0;
        sq_ckpt_counts((sqlite_store_t *)w.s, &asks, &passes, &finishes, &writer_frames);
        _exit(finishes == 1 ? 0 : 4);
    }
    if (!hear(w.up)) cr_assert_fail("the writer ended before its pass (exit %d)", writer_status(w.pid));
    uint32_t passed = 0, copied = 0, attempted = 0;
    shm_backfill(&passed, &attempted);
    cr_assert_geq(passed, 15000, "the pass copied %u frames", passed);
    /* A snapshot of the WAL as the pass left it: the writer's next commit
     * copies up to it, not to the WAL's end. */
    let_go(w.h);
    hold_snapshot(w.h);
    say(w.down);
    int status = writer_status(w.pid);
    cr_assert_neq(status, 0,
                  "a failed sync of the database file in the writer's checkpoint did not stop the process");
    cr_assert_eq(status, EXIT_FAILURE, "the writer failed otherwise (exit %d)", status);
    shm_backfill(&copied, &attempted);
    cr_assert_gt(attempted, passed, "the writer did not set out to copy frames (%u, the pass %u)", attempted,
                 passed);
    cr_expect_eq(copied, passed, "SQLite recorded %u frames copied though the sync after %u failed", copied,
                 passed);
    let_go(w.h);
    sqlite3_close(w.h);
    close(w.up);
    close(w.down);
}
