/*
 * sqlite_check.h: what the SQLite unit tests ask a database through a
 * connection of their own (the default VFS, as the sqlite3 shell or
 * another process would read it). Static, for the test file that
 * includes it.
 */
#ifndef CRMD_TEST_SQLITE_CHECK_H
#define CRMD_TEST_SQLITE_CHECK_H

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdint.h>

/* The one integer sql answers on db; -1 on an error. */
static inline int64_t check_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The database as db reads it passes SQLite's integrity check. */
static inline void check_intact(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

#endif
