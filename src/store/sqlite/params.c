/*
 * params.c: records to statement parameters and columns back to records,
 * for SQLite.
 *
 * The conventions of the stored form live here: an unset text or id is
 * NULL, an unset money value or probability is NULL (probability -1 in a
 * lead_t), ids are their 36-character text. Strings read from a row point
 * into SQLite's memory and stay valid until the statement is stepped or
 * reset, which is why records go to callbacks straight from a row.
 */
#include <string.h>

#include "store/find.h"
#include "store/sqlite/sqlite_int.h"

void sq_bind_text(sqlite3_stmt *st, int i, text_ref_t t)
{
    if (t.ptr == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, t.ptr, (int)t.len, SQLITE_STATIC);
}

void sq_bind_str(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

void sq_bind_id(sqlite3_stmt *st, int i, const char *id)
{
    if (id[0] == '\0')
        sqlite3_bind_null(st, i);
    else
        sq_bind_str(st, i, id);
}

void sq_bind_opt_int(sqlite3_stmt *st, int i, bool set, int64_t v)
{
    if (set)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

void sq_bind_key(sqlite3_stmt *st, int64_t app, const char *id, const char *id2)
{
    sqlite3_bind_int64(st, 1, app);
    sq_bind_str(st, 2, id);
    if (id2 != NULL) sq_bind_str(st, 3, id2);
}

void sq_bind_lead_values(sqlite3_stmt *st, int first, const lead_t *v)
{
    sq_bind_text(st, first, v->name);
    sq_bind_text(st, first + 1, v->source);
    sq_bind_id(st, first + 2, v->account_id);
    sq_bind_id(st, first + 3, v->contact_id);
    sq_bind_opt_int(st, first + 4, v->has_value, v->value_cents);
    sqlite3_bind_int(st, first + 5, v->stage);
    sq_bind_opt_int(st, first + 6, v->probability >= 0, v->probability);
    sqlite3_bind_int(st, first + 7, v->status);
}

void sq_bind_follow_values(sqlite3_stmt *st, int first, const follow_t *v)
{
    sq_bind_text(st, first, v->title);
    sq_bind_text(st, first + 1, v->description);
    sq_bind_opt_int(st, first + 2, v->has_due, v->due_at);
    sqlite3_bind_int(st, first + 3, v->status);
}

void sq_bind_lead_row(sqlite3_stmt *st, int64_t app, const lead_t *l)
{
    sq_bind_key(st, app, l->id, NULL);
    sq_bind_lead_values(st, 3, l);
    sqlite3_bind_int64(st, 3 + 8, l->created_at);
    sqlite3_bind_int64(st, 3 + 9, l->updated_at);
    sq_bind_fold(st, 3 + 10, l->name);
    sq_bind_fold(st, 3 + 11, l->source);
}

void sq_bind_follow_row(sqlite3_stmt *st, int64_t app, const follow_t *f)
{
    sq_bind_key(st, app, f->id, f->lead_id);
    sq_bind_follow_values(st, 4, f);
    sqlite3_bind_int64(st, 4 + 4, f->created_at);
    sqlite3_bind_int64(st, 4 + 5, f->updated_at);
}

text_ref_t sq_col_text(sqlite3_stmt *st, int i)
{
    text_ref_t t = {NULL, 0};
    if (sqlite3_column_type(st, i) != SQLITE_NULL) {
        t.ptr = (const char *)sqlite3_column_text(st, i);
        t.len = (size_t)sqlite3_column_bytes(st, i);
        if (t.ptr == NULL) t.ptr = "";
    }
    return t;
}

const char *sq_col_str(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t != NULL ? t : "";
}

void sq_col_id(sqlite3_stmt *st, int i, char out[UUID_BUFSZ])
{
    const unsigned char *p = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (p == NULL || n != UUID_STRLEN) {
        out[0] = '\0';
        return;
    }
    memcpy(out, p, UUID_STRLEN);
    out[UUID_STRLEN] = '\0';
}

static bool col_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

void sq_read_lead(sqlite3_stmt *st, lead_t *l)
{
    sq_read_lead_at(st, 0, l);
}

void sq_read_lead_at(sqlite3_stmt *st, int c0, lead_t *l)
{
    sq_col_id(st, c0 + LEAD_COL_ID, l->id);
    l->name = sq_col_text(st, c0 + LEAD_COL_NAME);
    l->source = sq_col_text(st, c0 + LEAD_COL_SOURCE);
    sq_col_id(st, c0 + LEAD_COL_ACCOUNT, l->account_id);
    sq_col_id(st, c0 + LEAD_COL_CONTACT, l->contact_id);
    l->has_value = !col_null(st, c0 + LEAD_COL_VALUE);
    l->value_cents = sqlite3_column_int64(st, c0 + LEAD_COL_VALUE);
    l->stage = sqlite3_column_int(st, c0 + LEAD_COL_STAGE);
    l->probability =
        col_null(st, c0 + LEAD_COL_PROBABILITY) ? -1 : sqlite3_column_int(st, c0 + LEAD_COL_PROBABILITY);
    l->status = sqlite3_column_int(st, c0 + LEAD_COL_STATUS);
    l->created_at = sqlite3_column_int64(st, c0 + LEAD_COL_CREATED_AT);
    l->updated_at = sqlite3_column_int64(st, c0 + LEAD_COL_UPDATED_AT);
}

void sq_read_follow(sqlite3_stmt *st, follow_t *f)
{
    sq_read_follow_at(st, 0, f);
}

void sq_read_follow_at(sqlite3_stmt *st, int c0, follow_t *f)
{
    sq_col_id(st, c0 + FOLLOW_COL_ID, f->id);
    sq_col_id(st, c0 + FOLLOW_COL_LEAD, f->lead_id);
    f->title = sq_col_text(st, c0 + FOLLOW_COL_TITLE);
    f->description = sq_col_text(st, c0 + FOLLOW_COL_DESCRIPTION);
    f->has_due = !col_null(st, c0 + FOLLOW_COL_DUE);
    f->due_at = sqlite3_column_int64(st, c0 + FOLLOW_COL_DUE);
    f->status = sqlite3_column_int(st, c0 + FOLLOW_COL_STATUS);
    f->created_at = sqlite3_column_int64(st, c0 + FOLLOW_COL_CREATED_AT);
    f->updated_at = sqlite3_column_int64(st, c0 + FOLLOW_COL_UPDATED_AT);
}

void sq_read_app(sqlite3_stmt *st, store_app_t *app)
{
    store_app_fill(app, sqlite3_column_int64(st, APP_COL_ID), sq_col_text(st, APP_COL_KEY),
                   sq_col_text(st, APP_COL_NAME), sqlite3_column_int(st, APP_COL_DISABLED),
                   sqlite3_column_int64(st, APP_COL_CREATED_AT));
}

void sq_emit_lead(sqlite3_stmt *st, void *cb, void *ctx)
{
    lead_t l;
    sq_read_lead(st, &l);
    ((store_lead_cb)cb)(ctx, &l);
}

void sq_emit_follow(sqlite3_stmt *st, void *cb, void *ctx)
{
    follow_t f;
    sq_read_follow(st, &f);
    ((store_follow_cb)cb)(ctx, &f);
}

void sq_emit_lead_at(sqlite3_stmt *st, int c0, void *cb, void *ctx)
{
    lead_t l;
    sq_read_lead_at(st, c0, &l);
    ((store_lead_cb)cb)(ctx, &l);
}

void sq_emit_follow_at(sqlite3_stmt *st, int c0, void *cb, void *ctx)
{
    follow_t f;
    sq_read_follow_at(st, c0, &f);
    ((store_follow_cb)cb)(ctx, &f);
}

store_rc_t sq_step_rows(sqlite_store_t *s, sqlite3_stmt *st, sq_row_fn fn, void *cb, void *ctx, int *n)
{
    int src, count = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        fn(st, cb, ctx);
        count++;
    }
    if (n != NULL) *n = count;
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_step_found(sqlite_store_t *s, sqlite3_stmt *st, sq_row_fn fn, void *cb, void *ctx)
{
    int n = 0;
    store_rc_t rc = sq_step_rows(s, st, fn, cb, ctx, &n);
    sq_reset(st);
    return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
}

store_rc_t sq_step_changes(sqlite_store_t *s, sqlite3_stmt *st, int *changes)
{
    store_rc_t rc = sq_run(s, st);
    *changes = sqlite3_changes(s->db);
    return rc;
}

store_rc_t sq_step_changed(sqlite_store_t *s, sqlite3_stmt *st)
{
    int changes = 0;
    store_rc_t rc = sq_step_changes(s, st, &changes);
    return rc == STORE_OK && changes == 0 ? STORE_NOT_FOUND : rc;
}

store_rc_t sq_step_list(sqlite_store_t *s, sqlite3_stmt *st, sq_list_t *lr)
{
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (lr->n++ == 0) lr->total = sqlite3_column_int64(st, lr->total_col);
        lr->fn(st, lr->cb, lr->ctx);
    }
    return src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
}

store_rc_t sq_query_int(sqlite_store_t *s, enum sq_stmt_id id, int64_t v, int64_t *out)
{
    sqlite3_stmt *st = sq_stmt(s, id);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, v);
    int src = sqlite3_step(st);
    *out = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : src == SQLITE_DONE ? STORE_NOT_FOUND : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

store_rc_t sq_fq_number(sqlite_store_t *s, const fq_t *q, bool built, int64_t *out)
{
    sqlite3_stmt *st = built ? sq_fq_stmt(s, q) : NULL;
    if (st == NULL) return STORE_ERROR;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

sqlite3_stmt *sq_fq_stmt(sqlite_store_t *s, const fq_t *q)
{
    sqlite3_stmt *st = sq_dyn_stmt(s, q->sql.s);
    if (st == NULL) return NULL;
    for (int i = 0; i < q->np; i++) {
        const fq_param_t *p = &q->p[i];
        if (p->type == FQ_INT8)
            sqlite3_bind_int64(st, i + 1, p->i);
        else
            sqlite3_bind_text(st, i + 1, p->t.ptr, (int)p->t.len, SQLITE_STATIC);
    }
    return st;
}
