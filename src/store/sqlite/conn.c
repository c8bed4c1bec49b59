/*
 * conn.c: the SQLite connection: opening a database file with crmd's
 * settings, the per-connection caches of prepared statements, a server
 * thread's held read snapshot, SQLite's result codes as store_rc_t, and
 * closing.
 *
 * Everything else in store/sqlite/ goes through these to reach SQLite, so
 * the settings that make the store durable, private and its failures
 * answerable (WAL, FULL sync, a 0600 file, the busy timeout, which codes
 * mean 503) are decided here once.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/sqlite/sqlite_int.h"

/* How long a write waits for another connection's write lock before it
 * is STORE_UNAVAILABLE (store.h promises about five seconds). */
#define BUSY_TIMEOUT_MS 5000

store_rc_t sq_map_rc(sqlite_store_t *s, int src)
{
    switch (src & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    case SQLITE_INTERRUPT:
        /* Stopped at its deadline (sqlite.c): the client is told, not the log. */
        if (s->too_slow) return STORE_TOO_SLOW;
        break;
    default:
        break;
    }
    store_log("crmd: sqlite: %s (%d)", sqlite3_errmsg(s->db), src);
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return STORE_UNAVAILABLE;
    default:
        return STORE_ERROR;
    }
}

/* The statements that may run while creates wait in the staging table:
 * none reads or writes leads, or what the triggers on leads keep. */
static bool stage_safe(enum sq_stmt_id id)
{
    switch (id) {
    case Q_STAGE_INSERT:
    case Q_STAGE_TAKEN:
    case Q_STAGE_FLUSH:
    case Q_STAGE_CLEAR:
    case Q_STAGE_HISTORY:
    case Q_STAGE_HISTORY_LAST:
    case Q_STAGE_HISTORY_FLUSH:
    case Q_STAGE_HISTORY_CLEAR:
    case Q_SAVEPOINT:
    case Q_RELEASE:
    case Q_ROLLBACK_TO:
    case Q_ROLLBACK:
    case Q_APP_COUNT_ADD:
    case Q_EV_RECORD:
    case Q_EV_FULL_LOG:
    case Q_EV_FULL_OFF:
    case Q_EV_WANTED:
    case Q_IDEM_GET:
    case Q_IDEM_CLAIM:
    case Q_IDEM_FINISH:
    case Q_IDEM_TAKEN:
    case Q_IDEM_KEEP:
    case Q_IDEM_RELEASE:
        return true;
    default:
        return false;
    }
}

store_rc_t sq_stage_flush(sqlite_store_t *s)
{
    if (s->staged == 0) return STORE_OK;
    sqlite3_stmt *last = sq_stmt(s, Q_STAGE_HISTORY_LAST), *in = sq_stmt(s, Q_STAGE_FLUSH),
                 *clear = sq_stmt(s, Q_STAGE_CLEAR), *hin = sq_stmt(s, Q_STAGE_HISTORY_FLUSH),
                 *hclear = sq_stmt(s, Q_STAGE_HISTORY_CLEAR);
    if (last == NULL || in == NULL || clear == NULL || hin == NULL || hclear == NULL) return STORE_ERROR;
    /* The waiting history entries are numbered after the largest seq, and
     * the leads go in naming theirs (sql.c). */
    int src = sqlite3_step(last);
    int64_t seq = sqlite3_column_int64(last, 0);
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    sq_reset(last);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(in, 1, seq);
    rc = sq_run(s, in);
    if (rc != STORE_OK) return rc; /* the statement undone: the rows wait still */
    sqlite3_bind_int64(hin, 1, seq);
    rc = sq_run(s, hin);
    if (rc == STORE_OK) rc = sq_run(s, clear);
    if (rc == STORE_OK) rc = sq_run(s, hclear);
    if (rc == STORE_OK) {
        s->staged = 0;
        return STORE_OK;
    }
    /* The rows are in leads (and perhaps the history) and still staged
     * (out of memory, a full disk): moved again they would clash or be
     * recorded twice, so the batch may not commit. */
    if (s->base.batch != BATCH_NONE) s->base.batch = BATCH_BROKEN;
    return STORE_UNAVAILABLE;
}

sqlite3_stmt *sq_stmt(sqlite_store_t *s, enum sq_stmt_id id)
{
    assert(id >= 0 && id < Q__COUNT);
    /* Whatever else runs sees the staged leads in leads first: a commit
     * commits them, a read reads them. */
    if (s->staged > 0 && !stage_safe(id) && sq_stage_flush(s) != STORE_OK) return NULL;
    /* A rollback takes the staged rows with it. A rollback to a savepoint
     * may put some back: when the rows were moved inside the write it
     * undoes (a trashing that found no lead), the move is undone too, and
     * they wait again. */
    if (id == Q_ROLLBACK) s->staged = 0;
    if (id == Q_ROLLBACK_TO && s->staged == 0) s->staged = 1;
    if (s->stmt[id] == NULL && sqlite3_prepare_v3(s->db, sq_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                                  &s->stmt[id], NULL) != SQLITE_OK) {
        store_log("crmd: sqlite: prepare failed: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    return s->stmt[id];
}

void sq_reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

sqlite3_stmt *sq_prepare_once(sqlite_store_t *s, const char *sql)
{
    if (s->staged > 0 && sq_stage_flush(s) != STORE_OK) return NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_log("crmd: sqlite: prepare failed: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

store_rc_t sq_step_done(sqlite_store_t *s, sqlite3_stmt *st)
{
    int src = sqlite3_step(st);
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_run(sqlite_store_t *s, sqlite3_stmt *st)
{
    store_rc_t rc = sq_step_done(s, st);
    sq_reset(st);
    return rc;
}

/*
 * Statements made at run time (the find reads, whose SQL depends on the
 * filters and the sort), kept per connection by their text. Their shapes
 * are few in practice (a client asks for the same filters again and
 * again), so a small cache spares the preparing of all but the first; the
 * least recently used statement makes room for a new one.
 */
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

static void dyn_close(sqlite_store_t *s)
{
    for (int i = 0; i < SQ_DYN_MAX; i++) {
        sqlite3_finalize(s->dyn[i].st);
        free(s->dyn[i].sql);
        s->dyn[i] = (sq_dyn_t){0};
    }
}

/*
 * The read snapshot a server thread keeps for the rest of its loop's turn
 * (sq_hold, see sqlite_int.h). It lives beside the statements because
 * sq_of, which every operation starts from, ends it.
 */
static store_rc_t run_id(sqlite_store_t *s, enum sq_stmt_id id)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    return st != NULL ? sq_run(s, st) : STORE_ERROR;
}

/* Commits made through this process's connections (sq_hold). */
static _Atomic uint64_t commits;

void sq_note_commit(void)
{
    atomic_fetch_add(&commits, 1);
}

void sq_release(sqlite_store_t *s)
{
    s->held = false;
    if (sqlite3_get_autocommit(s->db)) return; /* SQLite ended it (an error) */
    if (run_id(s, Q_COMMIT) != STORE_OK && !sqlite3_get_autocommit(s->db)) run_id(s, Q_ROLLBACK);
}

store_rc_t sq_held_done(sqlite_store_t *s, store_rc_t rc)
{
    if (s->held && rc != STORE_OK && rc != STORE_NOT_FOUND) sq_release(s);
    return rc;
}

/* The loop's turn is over: so is the snapshot. */
static void hold_end(void *arg)
{
    sqlite_store_t *s = arg;
    s->hold_timer = NULL;
    if (s->held) sq_release(s);
}

void sq_hold(sqlite_store_t *s)
{
    if (!s->has_loop || s->base.batch != BATCH_NONE) return;
    /* Read before the snapshot begins: a commit counted later makes it
     * end before the next read, even one the snapshot holds already. */
    uint64_t now = atomic_load(&commits);
    if (s->held && s->held_seq == now) return;
    if (s->held) sq_release(s);
    if (!sqlite3_get_autocommit(s->db)) return; /* not ours: leave it alone */
    if (s->hold_timer == NULL && (s->hold_timer = s->loop.timer_start(s->loop.ctx, 0, hold_end, s)) == NULL)
        return; /* out of memory: a transaction per read, as without */
    if (run_id(s, Q_BEGIN_READ) != STORE_OK) return;
    s->held = true;
    s->held_seq = now;
}

sqlite_store_t *sq_of(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    if (s->held) sq_release(s);
    return s;
}

void sq_close(store_t *base)
{
    sqlite_store_t *s = sq_of(base); /* ends a held snapshot */
    if (s->ckpt != NULL) {
        sqlite3_wal_hook(s->db, NULL, NULL);
        sq_ckpt_free(s->ckpt, true);
    }
    if (s->hold_timer != NULL) s->loop.timer_stop(s->hold_timer);
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    dyn_close(s);
    free(s->anchors.v);
    free(s->path);
    /* The last connection to close checkpoints the WAL into the database. */
    sqlite3_close(s->db);
    free(s);
}

/* crmd's VFS (vfs.c) is registered. */
static bool vfs_ready;

/* SQLite counts every allocation under one global mutex unless told not
 * to: with a connection per thread that mutex is the threads' only meeting
 * point, and it showed in profiles. */
static void global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* Without it (it never fails on Linux) connections use the default
     * VFS, which writes the WAL a frame at a time. */
    vfs_ready = sq_vfs_register() == SQLITE_OK;
}

/* Fails the open: the reason into err, the connection closed. */
static sqlite_store_t *give_up(sqlite_store_t *s, char *err, size_t errsz, const char *what, const char *path,
                               const char *why)
{
    snprintf(err, errsz, "%s %s: %s", what, path, why);
    sqlite3_close(s->db);
    free(s);
    return NULL;
}

/* Whether db holds objects but no crmd schema version (user_version 0,
 * which every migration of crmd's sets past in the transaction that makes
 * its tables). An error counts as no: opening goes on and reports it. */
static bool foreign(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool yes = sqlite3_prepare_v2(db,
                                  "SELECT (SELECT user_version FROM pragma_user_version) = 0 "
                                  "AND EXISTS (SELECT 1 FROM sqlite_schema)",
                                  -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    return yes;
}

/* True when path names a file (not SQLite's in-memory or temporary
 * database). */
static bool names_file(const char *path)
{
    return path[0] != '\0' && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0;
}

/* Creates the database file, when there is none, readable and writable by
 * its owner only (exactly 0600, whatever the umask): it holds the token
 * signing key. SQLite would make it 0644 less the umask. The files SQLite
 * creates beside it (-wal, -shm, a rollback -journal) take its mode, and
 * its temporary files are 0600 and unlinked at once. Failures are left for
 * sqlite3_open_v2 to report. */
static void create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return;
    if (fchmod(fd, 0600) != 0) {
        /* open's mode less the umask stands: check_private judges it. */
    }
    close(fd);
}

/* Appends s to out (outsz bytes, terminated, cut to fit). */
static void append(char *out, size_t outsz, const char *s)
{
    size_t len = strlen(out), n = strlen(s);
    if (len + 1 >= outsz) return;
    if (n > outsz - 1 - len) n = outsz - 1 - len;
    memcpy(out + len, s, n);
    out[len + n] = '\0';
}

/* Appends a blank and word to out, in single quotes when a shell would
 * read it otherwise. */
static void append_shell_word(char *out, size_t outsz, const char *word)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=+-";
    append(out, outsz, " ");
    if (strspn(word, plain) == strlen(word)) {
        append(out, outsz, word);
        return;
    }
    append(out, outsz, "'");
    for (const char *c = word; *c != '\0'; c++)
        append(out, outsz, *c == '\'' ? "'\\''" : (char[]){*c, '\0'});
    append(out, outsz, "'");
}

/* Whether the file at path is not an SQLite database: not empty, and not
 * starting with SQLite's header. Asked only on the way to a refusal, so
 * that a file that is no database (a --db mistyped onto /etc/hosts) is not
 * told to be made private with chmod. Read through SQLite, a read-only
 * connection's own read of its file, never with open() and close() of
 * crmd's: closing a descriptor of the database file would drop every
 * POSIX lock this process holds on it, its other connections' too (a
 * closing connection then takes itself for the last and removes the -wal
 * and -shm under them), where SQLite's close keeps the descriptor until
 * those locks are let go (os_unix.c). Opening reads nothing; a file SQLite
 * cannot open or read counts as a database. */
static bool not_a_database(const char *path)
{
    sqlite3 *db = NULL;
    bool no = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, vfs_ready ? SQ_VFS_NAME : NULL) == SQLITE_OK) {
        sqlite3_file *f = NULL;
        unsigned char head[16] = {0};
        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f != NULL &&
            f->pMethods != NULL) {
            int rc = f->pMethods->xRead(f, head, sizeof head, 0);
            /* A short read leaves the rest zero; a file /proc shows has
             * size 0 and yet reads. */
            bool empty = true;
            for (size_t i = 0; i < sizeof head; i++)
                empty &= head[i] == 0;
            if ((rc == SQLITE_OK || rc == SQLITE_IOERR_SHORT_READ) && !empty)
                no = memcmp(head, "SQLite format 3", 16) != 0; /* 15 bytes and the NUL */
        }
    }
    sqlite3_close(db);
    return no;
}

/* Refuses a database whose files group or others can use (as ssh refuses
 * a private key file others can read): anyone who can read it can sign
 * tokens for every app, anyone who can write it can replace the key. The
 * database file and SQLite's files beside it are checked; the reason,
 * with the chmod that fixes it, goes into err. */
static bool check_private(const char *path, char *err, size_t errsz)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char first[PATH_MAX] = "", fix[STORE_OPEN_ERR_MAX] = "chmod 600";
    unsigned mode = 0;
    /* A directory or a FIFO is not a database, whatever its mode: told
     * so, never to chmod it (chmod 600 /tmp was the advice). */
    struct stat db;
    if (stat(path, &db) == 0 && !S_ISREG(db.st_mode)) {
        snprintf(err, errsz, "%s is %s, not a database file: name the file itself", path,
                 S_ISDIR(db.st_mode) ? "a directory" : "not a regular file");
        return false;
    }
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char file[PATH_MAX];
        struct stat sb;
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        if (stat(file, &sb) != 0 || (sb.st_mode & 077) == 0) continue;
        if (first[0] == '\0') {
            snprintf(first, sizeof first, "%s", file);
            mode = (unsigned)sb.st_mode & 07777;
        }
        append_shell_word(fix, sizeof fix, file);
    }
    if (first[0] == '\0') return true;
    if (not_a_database(path)) {
        snprintf(
            err, errsz,
            "%s is not an SQLite database (it does not begin with SQLite's header): name crmd's database "
            "file; nothing was changed",
            path);
        return false;
    }
    const char *how = (mode & 044) && (mode & 022) ? "readable and writable"
                      : (mode & 044)               ? "readable"
                      : (mode & 022)               ? "writable"
                                                   : "usable";
    snprintf(err, errsz, "%s is %s by group or others (mode %04o); %s the token signing key: %s", first, how,
             mode, strcmp(first, path) == 0 ? "it holds" : "the database holds", fix);
    return false;
}

sqlite_store_t *sq_connect(const char *path, bool create, char *err, size_t errsz)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_config);
    sqlite_store_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (names_file(path)) {
        /* A symbolic link to nothing: open's O_EXCL would not follow it,
         * so create_private could not make the file 0600, and SQLite
         * would make it through the link with its own mode (0644). */
        struct stat lsb, sb;
        if (lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode) && stat(path, &sb) != 0) {
            snprintf(err, errsz,
                     "%s is a symbolic link to nothing: make the database where it points first "
                     "(crmd migrate --db ITS_TARGET), or name the file itself (nothing was created)",
                     path);
            free(s);
            return NULL;
        }
        if (create) create_private(path);
        if (!create && access(path, F_OK) != 0) {
            snprintf(err, errsz, "no database at %s: %s (nothing was created)", path, strerror(errno));
            free(s);
            return NULL;
        }
        if (!check_private(path, err, errsz)) {
            free(s);
            return NULL;
        }
    }
    if (sqlite3_open_v2(path, &s->db, flags, vfs_ready ? SQ_VFS_NAME : NULL) != SQLITE_OK)
        return give_up(s, err, errsz, "cannot open", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (sq_register_fold(s->db) != SQLITE_OK)
        return give_up(s, err, errsz, "cannot set up", path, "out of memory");
    /* Checkpoints every 16,000 WAL pages (64 MiB) rather than SQLite's
     * 1,000: a lead write dirties about a dozen index pages scattered over
     * the database, and the kernel writes a dirty page of the database
     * back in large blocks, so each checkpoint's cost is mostly per
     * checkpoint, not per page. On lead PUTs at 100,000 leads, disk writes
     * per request fell to a fifth (1,000 → 16,000 pages) with the
     * database's pages cached in large blocks, by a third in bench/run,
     * and CPU per request by a fifth (bench/results.md). A commit is still
     * synced into the WAL before it returns; only the copying back waits.
     * sq_wal_hook (ckpt.c) does what the setting does, and leaves the
     * checkpoints to the checkpointer of a server's writer when there is
     * one (ckpt.c, which replaces that hook on the writer's connection). */
    /* A page cache of SQ_WRITER_CACHE_KIB (sqlite_int.h) rather than
     * SQLite's 2 MiB: a batch of creates dirties a page or more in each of
     * a dozen B-trees per lead, more than 2 MiB holds, so SQLite wrote
     * dirty pages into the WAL in the middle of the transaction, read them
     * back and wrote them again at the commit. A connection that serves an
     * event loop only reads, and goes back to the default (sq_set_loop). */
    /* Another program's database (a --db mistyped onto it): objects in
     * it, yet no crmd schema version. Refused before the pragmas below,
     * which would turn it to WAL for good, and before a migration adds
     * crmd's tables to it. */
    if (foreign(s->db))
        return give_up(s, err, errsz, "refused", path,
                       "it holds tables but no crmd schema version (user_version 0): another program's "
                       "database, or crmd's restored by sqlite3's .dump, which drops the version (restore "
                       "a crmd backup instead, or set PRAGMA user_version to the dumped one's); nothing "
                       "was changed");
    /* synchronous first: crmd's VFS holds WAL frames until a sync, which
     * FULL makes every commit end with (vfs.c). journal_size_limit: when a
     * write starts the WAL again from its beginning, its first commit cuts
     * the file down to 64 MiB, the checkpoints' start (16,000 pages,
     * ckpt.c). Without it the file kept the largest size it ever had: 476
     * MB for good after a CSV export's snapshot had held the checkpoints
     * back (docs/csv.md). */
    static const char *const pragmas = "PRAGMA synchronous = FULL;"
                                       "PRAGMA journal_mode = WAL;"
                                       "PRAGMA journal_size_limit = 67108864;"
                                       "PRAGMA foreign_keys = ON;"
                                       "PRAGMA temp_store = MEMORY;"
                                       "PRAGMA cache_size = " SCHEMA_STR(SQ_WRITER_CACHE_KIB) ";";
    char *msg = NULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, sq_stage_table_sql, NULL, NULL, &msg) != SQLITE_OK) {
        char why[STORE_LOG_LINE_MAX / 2];
        /* SQLite's "unable to open database file" alone does not say that
         * the file system is read-only, where WAL cannot make its -shm. */
        struct statvfs fs;
        bool ro = names_file(path) && statvfs(path, &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0;
        snprintf(why, sizeof why, "%s%s", msg ? msg : "?",
                 ro ? " (its file system is read-only: crmd opens a database in WAL mode, which writes "
                      "its -wal and -shm files beside it; copy it to a writable place first)"
                    : "");
        sqlite3_free(msg);
        return give_up(s, err, errsz, "cannot set up", path, why);
    }
    /* The checkpoints every 16,000 WAL pages (above). */
    sqlite3_wal_hook(s->db, sq_wal_hook, NULL);
    if (names_file(path) && (s->path = strdup(path)) == NULL)
        return give_up(s, err, errsz, "cannot set up", path, "out of memory");
    return s;
}

store_rc_t sq_export_step(sqlite_store_t *s, sqlite3_stmt *st, sq_export_row_fn fn, const store_export_t *cb,
                          void *ctx)
{
    store_rc_t rc = STORE_OK;
    int src = SQLITE_DONE;
    while (rc == STORE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(st, cb, ctx);
    if (rc == STORE_OK && src != SQLITE_DONE) rc = sq_map_rc(s, src);
    return rc;
}
