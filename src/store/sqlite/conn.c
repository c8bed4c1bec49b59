/*
 * conn.c: the SQLite connection: opening a database file with crmd's
 * settings, the per-connection cache of prepared statements, SQLite's
 * result codes as store_rc_t, and closing.
 *
 * Everything else in store/sqlite/ goes through these to reach SQLite, so
 * the settings that make the store durable, private and its failures
 * answerable (WAL, FULL sync, a 0600 file, the busy timeout, which codes
 * mean 503) are decided here once.
 */
#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

sqlite3_stmt *sq_stmt(sqlite_store_t *s, enum sq_stmt_id id)
{
    assert(id >= 0 && id < Q__COUNT);
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

void sq_close(store_t *base)
{
    sqlite_store_t *s = sq_of(base);
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    free(s->anchors.v);
    /* The last connection to close checkpoints the WAL into the database. */
    sqlite3_close(s->db);
    free(s);
}

/* SQLite counts every allocation under one global mutex unless told not
 * to: with a connection per thread that mutex is the threads' only meeting
 * point, and it showed in profiles. */
static void global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
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

/* Creates the database file, when there is none, readable by its owner
 * only: it holds the token signing key. SQLite would make it 0644 less
 * the umask; its -wal and -shm files take the database file's mode. An
 * existing file is left as its owner set it. Failures are left for
 * sqlite3_open_v2 to report. */
static void create_private(const char *path)
{
    if (path[0] == '\0' || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) return;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
}

sqlite_store_t *sq_connect(const char *path, char *err, size_t errsz)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_config);
    sqlite_store_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    create_private(path);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
        return give_up(s, err, errsz, "cannot open", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    static const char *const pragmas = "PRAGMA journal_mode = WAL;"
                                       "PRAGMA synchronous = FULL;"
                                       "PRAGMA foreign_keys = ON;"
                                       "PRAGMA temp_store = MEMORY;";
    char *msg = NULL;
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        char why[STORE_LOG_LINE_MAX / 2];
        snprintf(why, sizeof why, "%s", msg ? msg : "?");
        sqlite3_free(msg);
        return give_up(s, err, errsz, "cannot set up", path, why);
    }
    return s;
}
