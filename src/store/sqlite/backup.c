/*
 * backup.c: crmd backup on SQLite (store_backup): an online copy with the
 * backup API.
 *
 * The copy is taken in one step (sqlite3_backup_step with -1), inside one
 * read transaction of the source: in WAL mode writers go on meanwhile,
 * and the copy is the database as of the moment that transaction began,
 * so every write committed before it is in the copy. (Copying in small
 * steps would let other connections' writes restart it, forever under a
 * steady load.) The copy goes to a temporary file beside path, created
 * 0600, is checked, synced, and only then renamed to path. The copy is
 * written without a journal (a failed copy is thrown away whole), and the
 * temporary files of backups to path whose process is gone (killed, or
 * stopped by a signal) are removed before a new one starts.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sqlite/sqlite_int.h"

/* Whether column c of table t holds a NULL in db: checks a "NULL value in
 * t.c" of integrity_check's. SQLite 3.40 (Debian 12's) reports that of
 * every NOT NULL column of a WITHOUT ROWID table whose primary key's
 * columns are not its first ones in order, whatever the rows hold; later
 * versions do not. crmd's webhook_attempts was such a table until
 * migration 18, and a backup copies its source as it is, unmigrated. An
 * error counts as a NULL. */
static bool null_found(sqlite3 *db, const char *t, const char *c)
{
    /* typeof, not IS NULL: SQLite takes "c IS NULL" of a NOT NULL column
     * as false without reading a row. */
    char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE typeof(\"%w\") = 'null' LIMIT 1", t, c);
    sqlite3_stmt *st = NULL;
    bool found = sql == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
                 sqlite3_step(st) != SQLITE_DONE;
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return found;
}

/* Whether the line of integrity_check is a "NULL value in t.c" that the
 * rows disprove (null_found). Table and column names of crmd's schema
 * hold no dot. */
static bool false_null(sqlite3 *db, const char *line)
{
    static const char prefix[] = "NULL value in ";
    if (strncmp(line, prefix, sizeof prefix - 1) != 0) return false;
    char name[128];
    if (snprintf(name, sizeof name, "%s", line + sizeof prefix - 1) >= (int)sizeof name) return false;
    char *dot = strchr(name, '.');
    if (dot == NULL || strchr(dot + 1, '.') != NULL) return false;
    *dot = '\0';
    return !null_found(db, name, dot + 1);
}

/* How many problems integrity_check may report before it stops: its
 * default 100, plus room for the false NULLs of an unmigrated
 * webhook_attempts (at most one per NOT NULL column, seven, per row), so
 * that they never fill the report and hide a real problem after them. */
static int64_t check_limit(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t rows = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_attempts", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rows < (INT32_MAX - 100) / 8 ? 100 + 8 * rows : INT32_MAX;
}

/* Runs integrity_check on the copy: STORE_OK when it finds nothing but
 * the false NULLs of false_null; else STORE_ERROR and the first problem
 * in msg. */
static store_rc_t check_copy(sqlite3 *dst, char *msg, size_t msgsz)
{
    sqlite3_stmt *st = NULL;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA integrity_check(%lld)", (long long)check_limit(dst));
    if (sqlite3_prepare_v2(dst, pragma, -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msgsz, "the copy fails its integrity check: %s", sqlite3_errmsg(dst));
        return STORE_ERROR;
    }
    store_rc_t rc = STORE_OK;
    int src = SQLITE_DONE;
    while (rc == STORE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line != NULL && (strcmp(line, "ok") == 0 || false_null(dst, line))) continue;
        snprintf(msg, msgsz, "the copy fails its integrity check: %s", line != NULL ? line : "?");
        rc = STORE_ERROR;
    }
    if (rc == STORE_OK && src != SQLITE_DONE) {
        snprintf(msg, msgsz, "the copy fails its integrity check: %s", sqlite3_errmsg(dst));
        rc = STORE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Copies s's main database into the open, empty file tmp. */
static store_rc_t copy_into(sqlite_store_t *s, const char *tmp, char *msg, size_t msgsz)
{
    sqlite3 *dst = NULL;
    store_rc_t rc = STORE_ERROR;
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(msg, msgsz, "cannot open the copy: %s", dst ? sqlite3_errmsg(dst) : "out of memory");
        sqlite3_close(dst);
        return STORE_ERROR;
    }
    /* No -journal beside the copy: a copy that fails is removed whole. */
    (void)sqlite3_exec(dst, "PRAGMA journal_mode = OFF", NULL, NULL, NULL);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", s->db, "main");
    int src = b != NULL ? sqlite3_backup_step(b, -1) : sqlite3_errcode(dst);
    if (b != NULL) sqlite3_backup_finish(b);
    if (src != SQLITE_DONE) {
        snprintf(msg, msgsz, "the copy failed: %s", sqlite3_errstr(src));
        rc = src == SQLITE_BUSY || src == SQLITE_LOCKED || src == SQLITE_FULL ? STORE_UNAVAILABLE
                                                                              : STORE_ERROR;
    } else {
        rc = check_copy(dst, msg, msgsz);
    }
    sqlite3_close(dst);
    return rc;
}

/* Syncs the file path, and the folder holding it (so its name lasts). */
static bool sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    char *dir = strdup(path);
    int dfd = dir != NULL ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    ok = ok && dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0) close(dfd);
    free(dir);
    return ok;
}

/* Removes the temporary files of earlier backups to path whose process
 * is gone: "PATH.partial-PID" and "PATH.partial-PID-journal" (the journal
 * of a copy before it was written without one), PID in the digits crmd
 * writes, no such process here, and the file untouched for a minute (a
 * backup in another PID namespace sharing the folder writes its copy
 * without a pause). Returns how many. */
static int remove_stale(const char *path)
{
    char *d = strdup(path), *b = strdup(path);
    DIR *dir = d != NULL && b != NULL ? opendir(dirname(d)) : NULL;
    int removed = 0;
    if (dir != NULL) {
        /* The names are judged and removed relative to the directory opened,
         * so a rename of a parent meanwhile cannot point them elsewhere. */
        int dfd = dirfd(dir);
        char prefix[512];
        int n = snprintf(prefix, sizeof prefix, "%s.partial-", basename(b));
        struct dirent *e;
        while (n > 0 && (size_t)n < sizeof prefix && (e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, prefix, (size_t)n) != 0) continue;
            const char *digits = e->d_name + n, *end = digits + strspn(digits, "0123456789");
            if (end == digits || end - digits > 10 || *digits == '0' ||
                (*end != '\0' && strcmp(end, "-journal") != 0))
                continue;
            long pid = strtol(digits, NULL, 10);
            if (pid > INT32_MAX || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue;
            struct stat st;
            if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
                time(NULL) - st.st_mtime < 60)
                continue;
            if (unlinkat(dfd, e->d_name, 0) == 0) removed++;
        }
        closedir(dir);
    }
    free(d);
    free(b);
    return removed;
}

store_rc_t sq_backup(store_t *base, const char *path, char *msg, size_t msgsz)
{
    sqlite_store_t *s = sq_of(base);
    sqlite3_stmt *v = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK &&
        sqlite3_step(v) == SQLITE_ROW)
        version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (version == 0) {
        snprintf(msg, msgsz, "the database is empty or not crmd's; nothing was written");
        return STORE_NOT_FOUND;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        snprintf(msg, msgsz, "%s exists; crmd backup never overwrites a file", path);
        return STORE_CONFLICT;
    }
    int stale = remove_stale(path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.partial-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(msg, msgsz, "the path is too long");
        return STORE_ERROR;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, msgsz, "cannot create %s: %s", tmp, strerror(errno));
        return errno == ENOSPC ? STORE_UNAVAILABLE : STORE_ERROR;
    }
    close(fd);
    store_rc_t rc = copy_into(s, tmp, msg, msgsz);
    if (rc == STORE_OK && !sync_path(tmp)) {
        snprintf(msg, msgsz, "cannot sync the copy to disk: %s", strerror(errno));
        rc = STORE_UNAVAILABLE;
    }
    /* link() fails on an existing name, so a file made meanwhile is kept. */
    if (rc == STORE_OK && link(tmp, path) != 0) {
        snprintf(msg, msgsz, "cannot name the copy %s: %s", path, strerror(errno));
        rc = errno == EEXIST ? STORE_CONFLICT : STORE_ERROR;
    }
    unlink(tmp);
    if (rc == STORE_OK && !sync_path(path)) {
        snprintf(msg, msgsz, "cannot sync %s to disk: %s", path, strerror(errno));
        rc = STORE_UNAVAILABLE;
    }
    if (rc == STORE_OK && stat(path, &st) == 0)
        snprintf(msg, msgsz, "backed up to %s (%lld bytes, integrity ok%s)", path, (long long)st.st_size,
                 stale > 0 ? "; the files of an interrupted backup to it removed" : "");
    return rc;
}
