/*
 * bulk.c: crmd copy on PostgreSQL: counting, exporting everything from one
 * REPEATABLE READ snapshot (leads and follows through cursors, so a table
 * of any size is never held in memory whole), and importing inside one
 * transaction that locks out other writers, with the inserts pipelined
 * (pipe.c).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

store_rc_t pg_copy_count(store_t *base, store_counts_t *out)
{
    PGresult *r;
    store_rc_t rc = pg_read(pg_of(base), Q_COPY_COUNT, NULL, &r);
    if (rc == STORE_OK) {
        out->apps = pg_get_int(r, 0, 0);
        out->leads = pg_get_int(r, 0, 1);
        out->follows = pg_get_int(r, 0, 2);
        out->revoked = pg_get_int(r, 0, 3);
        out->lead_count_sum = pg_get_int(r, 0, 4);
        out->keys = pg_get_int(r, 0, 5);
        out->issued = pg_get_int(r, 0, 6);
        out->trash = pg_get_int(r, 0, 7);
        out->trash_follows = pg_get_int(r, 0, 8);
        out->history = pg_get_int(r, 0, 9);
        out->idem = pg_get_int(r, 0, 10);
    }
    PQclear(r);
    return rc == STORE_OK ? pg_webhook_counts(pg_of(base), out) : rc;
}

/* Hands one row of an export to its receiver; app_id is column 0. */
typedef store_rc_t (*export_row_fn)(const PGresult *r, int row, const store_export_t *cb, void *ctx);

static store_rc_t export_app(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    store_app_t a;
    pg_read_app(r, row, &a);
    return cb->app(ctx, &a);
}

static store_rc_t export_issued(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    /* libpq ends every value with a NUL, and text holds none. */
    store_token_t t = {.jti = PQgetvalue(r, row, TOKEN_COL_JTI),
                       .app = pg_get_int(r, row, TOKEN_COL_APP),
                       .subject = PQgetvalue(r, row, TOKEN_COL_SUBJECT),
                       .issued_at = pg_get_int(r, row, TOKEN_COL_ISSUED_AT),
                       .expires_at = pg_get_int(r, row, TOKEN_COL_EXPIRES_AT)};
    return cb->issued(ctx, &t);
}

static store_rc_t export_revoked(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    char jti[STORE_JTI_MAX];
    store_text_copy(jti, sizeof jti, pg_get_text(r, row, 0));
    return cb->revoked(ctx, jti, pg_get_int(r, row, 1));
}

static store_rc_t export_lead(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    lead_t l;
    pg_read_lead(r, row, 1, &l);
    return cb->lead(ctx, pg_get_int(r, row, 0), &l);
}

static store_rc_t export_follow(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    follow_t f;
    pg_read_follow(r, row, 1, &f);
    return cb->follow(ctx, pg_get_int(r, row, 0), &f);
}

static store_rc_t export_trashed(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    lead_t l;
    pg_read_lead(r, row, 1, &l);
    return cb->trashed(ctx, pg_get_int(r, row, 0), &l, pg_get_int(r, row, 1 + LEAD_NCOLS));
}

static store_rc_t export_trashed_follow(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    follow_t f;
    pg_read_follow(r, row, 1, &f);
    return cb->trashed_follow(ctx, pg_get_int(r, row, 0), &f);
}

/* The columns: app_id, lead_id, then SCHEMA_HISTORY_COLS. */
static store_rc_t export_change(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    char id[UUID_BUFSZ], follow[UUID_BUFSZ], lead[UUID_BUFSZ];
    pg_get_uuid(r, row, 1, lead);
    pg_get_uuid(r, row, 2 + HISTORY_COL_ID, id);
    pg_get_uuid(r, row, 2 + HISTORY_COL_FOLLOW, follow);
    store_change_t c = {.id = id, .lead_id = lead, .follow_id = follow};
    c.actor = PQgetvalue(r, row, 2 + HISTORY_COL_ACTOR); /* text: NUL-ended, none inside */
    c.action = (int)pg_get_int(r, row, 2 + HISTORY_COL_ACTION);
    c.at = pg_get_int(r, row, 2 + HISTORY_COL_AT);
    c.changes = pg_get_text(r, row, 2 + HISTORY_COL_CHANGES);
    c.seq = pg_get_int(r, row, 2 + HISTORY_COL_SEQ);
    return cb->change(ctx, pg_get_int(r, row, 0), &c);
}

/* The columns: app_id, key, hash, status, location, body, created_at. */
static store_rc_t export_idem(const PGresult *r, int row, const store_export_t *cb, void *ctx)
{
    store_idem_t idem = {.hash = PQgetvalue(r, row, 2), .location = PQgetvalue(r, row, 4)};
    idem.status = (int)pg_get_int(r, row, 3);
    idem.body = pg_get_text(r, row, 5);
    idem.created_at = pg_get_int(r, row, 6);
    return cb->idem(ctx, pg_get_int(r, row, 0), PQgetvalue(r, row, 1), &idem);
}

/* Passes every row of r to fn. */
static store_rc_t export_result(const PGresult *r, export_row_fn fn, const store_export_t *cb, void *ctx)
{
    store_rc_t rc = STORE_OK;
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++)
        rc = fn(r, i, cb, ctx);
    return rc;
}

/* Runs statement id and passes its rows to fn. */
static store_rc_t export_stmt(pg_store_t *s, enum pg_stmt_id id, export_row_fn fn, const store_export_t *cb,
                              void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_read(s, id, NULL, &r);
    if (rc == STORE_OK) rc = export_result(r, fn, cb, ctx);
    PQclear(r);
    return rc;
}

/* Streams cursor k (pg_export_declare_sql) a batch at a time into fn. */
static store_rc_t export_cursor(pg_store_t *s, int k, export_row_fn fn, const store_export_t *cb, void *ctx)
{
    store_rc_t rc = pg_exec_sql(s, pg_export_declare_sql[k]);
    while (rc == STORE_OK) {
        PGresult *r = PQexecParams(s->conn, pg_export_fetch_sql[k], 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = pg_map_error(s, r);
            PQclear(r);
            break;
        }
        int n = PQntuples(r);
        rc = export_result(r, fn, cb, ctx);
        PQclear(r);
        if (n == 0) break;
    }
    return rc;
}

store_rc_t pg_copy_export(store_t *base, const store_export_t *cb, void *ctx, store_counts_t *total)
{
    pg_store_t *s = pg_of(base);
    /* One snapshot for everything, so follows always find their leads. */
    store_rc_t rc = pg_tx_begin(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc != STORE_OK) return rc;
    rc = pg_copy_count(base, total);
    if (rc == STORE_OK) rc = store_export_keys(base, cb, ctx);
    if (rc == STORE_OK) rc = export_stmt(s, Q_APP_LIST, export_app, cb, ctx);
    if (rc == STORE_OK) rc = export_stmt(s, Q_COPY_ISSUED, export_issued, cb, ctx);
    if (rc == STORE_OK) rc = export_stmt(s, Q_COPY_REVOKED, export_revoked, cb, ctx);
    static const export_row_fn fns[PG_EXPORT_CURSORS] = {export_lead,           export_follow, export_trashed,
                                                         export_trashed_follow, export_change, export_idem};
    for (int k = 0; rc == STORE_OK && k < PG_EXPORT_CURSORS; k++)
        rc = export_cursor(s, k, fns[k], cb, ctx);
    if (rc == STORE_OK) rc = pg_webhook_export(s, cb, ctx);
    pg_tx_rollback(s); /* read only: nothing to commit */
    return rc;
}

store_rc_t pg_snapshot_begin(store_t *base)
{
    pg_store_t *s = pg_of(base);
    assert(s->base.batch == BATCH_NONE);
    if (s->aio.on) return pg_async_snapshot_begin(s); /* a reader: async.c */
    return pg_tx_begin(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

void pg_snapshot_end(store_t *base)
{
    pg_store_t *s = pg_of(base);
    if (s->aio.on)
        pg_async_snapshot_end(s);
    else
        pg_tx_rollback(s); /* read only: nothing to commit */
}

store_rc_t pg_copy_import_begin(store_t *base, store_counts_t *before)
{
    pg_store_t *s = pg_of(base);
    s->pipe_rc = STORE_OK;
    store_rc_t rc = pg_tx_begin(s, "BEGIN");
    if (rc == STORE_OK) rc = pg_exec_sql(s, pg_import_lock_sql);
    if (rc == STORE_OK) {
        s->in_import = true;
        rc = pg_copy_count(base, before);
    }
    if (rc != STORE_OK) {
        s->in_import = false;
        pg_tx_rollback(s);
    }
    return rc;
}

store_rc_t pg_copy_import_key(store_t *base, const store_key_t *key)
{
    pg_params_t p = {0};
    pgp_signing_key(&p, key);
    return pg_write(pg_of(base), Q_COPY_KEY, &p, 0, 0, NULL);
}

store_rc_t pg_copy_import_app(store_t *base, const store_app_t *app, int keep_id, int64_t *id)
{
    pg_params_t p = {0};
    pgp_str(&p, app->key);
    pgp_str(&p, app->name);
    pgp_int4(&p, app->disabled ? 1 : 0);
    pgp_int8(&p, app->created_at);
    if (keep_id) pgp_int8(&p, app->id);
    PGresult *r;
    store_rc_t rc = pg_write(pg_of(base), keep_id ? Q_COPY_APP_ID : Q_COPY_APP, &p, 0, 0, &r);
    if (rc == STORE_OK) *id = PQntuples(r) == 1 ? pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

store_rc_t pg_copy_import_issued(store_t *base, const store_token_t *token, int *added)
{
    bool b = false;
    store_rc_t rc = pg_token_insert(pg_of(base), token, &b);
    *added = b;
    return rc;
}

store_rc_t pg_copy_import_revoked(store_t *base, const char *jti, int64_t revoked_at, int *added)
{
    pg_params_t p = {0};
    pgp_str(&p, jti);
    pgp_int8(&p, revoked_at);
    pgp_int4(&p, 1); /* whether or not the token's record came along */
    PGresult *r;
    store_rc_t rc = pg_write(pg_of(base), Q_REVOKE, &p, 0, 0, &r);
    *added = rc == STORE_OK && pg_affected(r) > 0;
    PQclear(r);
    return rc;
}

store_rc_t pg_copy_import_lead(store_t *base, int64_t app, const lead_t *lead)
{
    pg_params_t p = {0};
    if (!pg_lead_params(&p, app, lead)) return STORE_ERROR;
    return pg_pipe_send(pg_of(base), Q_LEAD_INSERT, &p);
}

store_rc_t pg_copy_import_follow(store_t *base, int64_t app, const follow_t *follow)
{
    pg_params_t p = {0};
    if (!pg_follow_params(&p, app, follow)) return STORE_ERROR;
    return pg_pipe_send(pg_of(base), Q_FOLLOW_INSERT, &p);
}

store_rc_t pg_copy_import_end(store_t *base, int commit)
{
    pg_store_t *s = pg_of(base);
    assert(s->in_import);
    s->in_import = false;
    store_rc_t rc = STORE_OK;
    if (commit) {
        rc = pg_exec_sql(s, pg_import_counts_sql);
        if (rc == STORE_OK) rc = pg_exec_sql(s, pg_import_sequence_sql);
        if (rc == STORE_OK) rc = pg_tx_commit(s);
        if (rc == STORE_OK) return STORE_OK;
    }
    pg_tx_rollback(s);
    s->pipe_rc = STORE_OK;
    return commit ? rc : STORE_OK;
}
