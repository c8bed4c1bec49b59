/*
 * fold.c: the folded copies of a lead's name and source (store/schema.h)
 * on SQLite: binding them on every lead write, and crmd_fold, the SQL
 * function migration 5 fills existing rows with.
 *
 * Both run model/text.c's folding, the same C code PostgreSQL's rows are
 * folded with, so the two backends search and sort the same bytes.
 */
#include "model/text.h"
#include "store/sqlite/sqlite_int.h"

void sq_bind_fold(sqlite3_stmt *st, int i, text_ref_t t)
{
    if (t.ptr == NULL) {
        sqlite3_bind_null(st, i);
        return;
    }
    /* Names and sources are short (255 and 64 characters), so the folding
     * fits on the stack; the statement keeps its own copy. */
    char buf[TEXT_FOLD_MAX(SQ_FOLD_INPUT_MAX)];
    size_t n = t.len <= SQ_FOLD_INPUT_MAX ? text_fold(t.ptr, t.len, buf, sizeof buf) : (size_t)-1;
    if (n == (size_t)-1) {
        /* Longer than any stored attribute can be: fold a heap copy. */
        char *big = sqlite3_malloc64(TEXT_FOLD_MAX(t.len) + 1);
        if (big == NULL) {
            sqlite3_bind_null(st, i);
            return;
        }
        n = text_fold(t.ptr, t.len, big, TEXT_FOLD_MAX(t.len) + 1);
        sqlite3_bind_text64(st, i, big, n, sqlite3_free, SQLITE_UTF8);
        return;
    }
    sqlite3_bind_text(st, i, buf, (int)n, SQLITE_TRANSIENT);
}

static void fold_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    char *out = sqlite3_malloc64(TEXT_FOLD_MAX(len) + 1);
    if (out == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t n = text_fold(s, len, out, TEXT_FOLD_MAX(len) + 1);
    sqlite3_result_text64(ctx, out, n, sqlite3_free, SQLITE_UTF8);
}

int sq_register_fold(sqlite3 *db)
{
    return sqlite3_create_function(db, "crmd_fold", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                   NULL, fold_fn, NULL, NULL);
}
