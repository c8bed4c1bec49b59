/*
 * fold.c: array literals (the lists of a filter, the backfill's batches)
 * and the backfill of migration 5, which folds the name and source of the
 * leads already stored (store/schema.h).
 *
 * PostgreSQL cannot run model/text.c's folding itself, and its lower()
 * follows the database's locale, so every folded value is computed in C,
 * exactly as SQLite's are: here for the stored rows, in params.c
 * (pgp_fold) for each write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/text.h"
#include "store/postgres/pg_int.h"

/* --- array literals ------------------------------------------------------- */

void pg_array_begin(pg_array_t *a)
{
    a->len = 0;
    a->oom = false;
    pg_array_raw(a, "{", 1);
}

void pg_array_raw(pg_array_t *a, const char *s, size_t n)
{
    if (a->oom) return;
    if (a->cap - a->len < n + 1) {
        size_t want = a->cap ? a->cap : 256;
        while (want - a->len < n + 1)
            want *= 2;
        char *b = realloc(a->buf, want);
        if (b == NULL) {
            a->oom = true;
            return;
        }
        a->buf = b;
        a->cap = want;
    }
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

/* Separates elements. */
static void next_element(pg_array_t *a)
{
    if (a->len > 1) pg_array_raw(a, ",", 1);
}

void pg_array_text(pg_array_t *a, text_ref_t t)
{
    next_element(a);
    if (t.ptr == NULL) {
        pg_array_raw(a, "NULL", 4);
        return;
    }
    /* Quoted, with quotes and backslashes escaped: any text is an element. */
    pg_array_raw(a, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < t.len; i++) {
        if (t.ptr[i] != '"' && t.ptr[i] != '\\') continue;
        pg_array_raw(a, t.ptr + from, i - from);
        pg_array_raw(a, "\\", 1);
        from = i;
    }
    pg_array_raw(a, t.ptr + from, t.len - from);
    pg_array_raw(a, "\"", 1);
}

void pg_array_int(pg_array_t *a, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    next_element(a);
    pg_array_raw(a, b, (size_t)n);
}

void pg_array_end(pg_array_t *a)
{
    pg_array_raw(a, "}", 1);
}

/* --- the backfill of migration 5 --------------------------------------------- */

/* The folded name and source of one fetched batch, as array literals. */
typedef struct batch {
    pg_array_t app, id, name, source;
} batch_t;

static void fold_into(pg_array_t *a, const PGresult *r, int row, int col, char *buf, size_t cap)
{
    if (PQgetisnull(r, row, col)) {
        pg_array_text(a, (text_ref_t){NULL, 0});
        return;
    }
    const char *v = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    char *out = TEXT_FOLD_MAX(len) <= cap ? buf : malloc(TEXT_FOLD_MAX(len) + 1);
    if (out == NULL) {
        a->oom = true;
        return;
    }
    size_t n = text_fold(v, len, out, TEXT_FOLD_MAX(len) + (out == buf ? 0 : 1));
    pg_array_text(a, (text_ref_t){out, n});
    if (out != buf) free(out);
}

/* Folds the rows of r (app_id, id, name, source, in text) and writes them. */
static store_rc_t update_batch(pg_store_t *s, const PGresult *r, batch_t *b)
{
    pg_array_begin(&b->app);
    pg_array_begin(&b->id);
    pg_array_begin(&b->name);
    pg_array_begin(&b->source);
    char buf[TEXT_FOLD_MAX(1024)];
    for (int i = 0; i < PQntuples(r); i++) {
        pg_array_text(&b->app, pg_get_text(r, i, 0));
        pg_array_text(&b->id, pg_get_text(r, i, 1));
        fold_into(&b->name, r, i, 2, buf, sizeof buf);
        fold_into(&b->source, r, i, 3, buf, sizeof buf);
    }
    pg_array_end(&b->app);
    pg_array_end(&b->id);
    pg_array_end(&b->name);
    pg_array_end(&b->source);
    if (b->app.oom || b->id.oom || b->name.oom || b->source.oom) return STORE_ERROR;
    const char *const vals[4] = {b->app.buf, b->id.buf, b->name.buf, b->source.buf};
    PGresult *u = PQexecParams(s->conn, pg_fold_update_sql, 4, NULL, vals, NULL, NULL, 0);
    store_rc_t rc = PQresultStatus(u) == PGRES_COMMAND_OK ? STORE_OK : pg_map_error(s, u);
    PQclear(u);
    return rc;
}

store_rc_t pg_fold_backfill(pg_store_t *s)
{
    store_rc_t rc = pg_exec_sql(s, pg_fold_declare_sql);
    batch_t b = {0};
    while (rc == STORE_OK) {
        PGresult *r = PQexec(s->conn, pg_fold_fetch_sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = pg_map_error(s, r);
        } else if (PQntuples(r) == 0) {
            PQclear(r);
            break;
        } else {
            rc = update_batch(s, r, &b);
        }
        PQclear(r);
    }
    free(b.app.buf);
    free(b.id.buf);
    free(b.name.buf);
    free(b.source.buf);
    return rc == STORE_OK ? pg_exec_sql(s, "CLOSE crmd_fold") : rc;
}
