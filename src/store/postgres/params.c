/*
 * params.c: records to binary statement parameters and binary columns
 * back to records, for PostgreSQL.
 *
 * Everything travels in binary: integers big-endian, UUIDs as their 16
 * bytes (model/uuid.c), texts as their bytes, so that no number is
 * printed or parsed on either side and no text needs a NUL. The stored
 * form's conventions are SQLite's: unset text, id, money and probability
 * are NULL.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "model/text.h"
#include "store/postgres/pg_int.h"

static int slot(pg_params_t *p)
{
    assert(p->n < PG_MAX_PARAMS);
    p->fmt[p->n] = 1;
    return p->n++;
}

void pgp_null(pg_params_t *p)
{
    int i = slot(p);
    p->v[i] = NULL;
    p->len[i] = 0;
}

static void put_int(pg_params_t *p, int64_t x, int bytes)
{
    int i = slot(p);
    uint64_t u = (uint64_t)x;
    for (int b = 0; b < bytes; b++)
        p->buf[i][bytes - 1 - b] = (unsigned char)(u >> (8 * b));
    p->v[i] = (const char *)p->buf[i];
    p->len[i] = bytes;
}

void pgp_int8(pg_params_t *p, int64_t x)
{
    put_int(p, x, 8);
}

void pgp_int4(pg_params_t *p, int32_t x)
{
    put_int(p, x, 4);
}

void pgp_opt_int8(pg_params_t *p, bool set, int64_t x)
{
    if (set)
        pgp_int8(p, x);
    else
        pgp_null(p);
}

void pgp_opt_int4(pg_params_t *p, bool set, int32_t x)
{
    if (set)
        pgp_int4(p, x);
    else
        pgp_null(p);
}

void pgp_text(pg_params_t *p, text_ref_t t)
{
    if (t.ptr == NULL) {
        pgp_null(p);
        return;
    }
    int i = slot(p);
    p->v[i] = t.len > 0 ? t.ptr : "";
    p->len[i] = (int)t.len;
}

void pgp_str(pg_params_t *p, const char *s)
{
    pgp_text(p, (text_ref_t){s, strlen(s)});
}

char *pgp_own(pg_params_t *p, size_t n)
{
    if (p->full || PG_OWN_MAX - p->nown < n) {
        p->full = true;
        return NULL;
    }
    char *at = p->own + p->nown;
    p->nown += n;
    return at;
}

void pgp_fold(pg_params_t *p, text_ref_t t)
{
    if (t.ptr == NULL) {
        pgp_null(p);
        return;
    }
    char *out = pgp_own(p, TEXT_FOLD_MAX(t.len));
    if (out == NULL) {
        pgp_null(p);
        return;
    }
    size_t n = text_fold(t.ptr, t.len, out, TEXT_FOLD_MAX(t.len));
    p->nown -= TEXT_FOLD_MAX(t.len) - n; /* give back what the folding did not use */
    pgp_text(p, (text_ref_t){out, n});
}

void pgp_own_text(pg_params_t *p, const char *s, size_t n)
{
    pgp_text(p, (text_ref_t){s, n});
    p->fmt[p->n - 1] = 0; /* an array literal: text format */
}

bool pgp_uuid(pg_params_t *p, const char *id)
{
    if (id[0] == '\0') {
        pgp_null(p);
        return true;
    }
    unsigned char b[UUID_BYTES];
    if (!uuid_to_bytes(id, strlen(id), b)) return false;
    int i = slot(p);
    memcpy(p->buf[i], b, UUID_BYTES);
    p->v[i] = (const char *)p->buf[i];
    p->len[i] = UUID_BYTES;
    return true;
}

bool pgp_key(pg_params_t *p, int64_t app, const char *id, const char *id2)
{
    pgp_int8(p, app);
    if (id[0] == '\0' || !pgp_uuid(p, id)) return false;
    return id2 == NULL || (id2[0] != '\0' && pgp_uuid(p, id2));
}

bool pg_lead_values(pg_params_t *p, const lead_t *v)
{
    pgp_text(p, v->name);
    pgp_text(p, v->source);
    if (!pgp_uuid(p, v->account_id) || !pgp_uuid(p, v->contact_id)) return false;
    pgp_opt_int8(p, v->has_value, v->value_cents);
    pgp_int4(p, v->stage);
    pgp_opt_int4(p, v->probability >= 0, v->probability);
    pgp_int4(p, v->status);
    return true;
}

void pg_follow_values(pg_params_t *p, const follow_t *v)
{
    pgp_text(p, v->title);
    pgp_text(p, v->description);
    pgp_opt_int8(p, v->has_due, v->due_at);
    pgp_int4(p, v->status);
}

bool pg_lead_params(pg_params_t *p, int64_t app, const lead_t *l)
{
    if (!pgp_key(p, app, l->id, NULL) || !pg_lead_values(p, l)) return false;
    pgp_int8(p, l->created_at);
    pgp_int8(p, l->updated_at);
    pgp_fold(p, l->name);
    pgp_fold(p, l->source);
    return !p->full;
}

bool pg_follow_params(pg_params_t *p, int64_t app, const follow_t *f)
{
    if (!pgp_key(p, app, f->id, f->lead_id)) return false;
    pg_follow_values(p, f);
    pgp_int8(p, f->created_at);
    pgp_int8(p, f->updated_at);
    return true;
}

bool pg_params_copy(pg_args_t *dst, const pg_params_t *src, char **heap)
{
    size_t need = 0;
    for (int i = 0; i < src->n; i++)
        if (src->v[i] != NULL) need += (size_t)src->len[i] + 1;
    dst->n = src->n;
    *heap = NULL;
    if (need > 0 && (*heap = malloc(need)) == NULL) return false;
    size_t off = 0;
    for (int i = 0; i < src->n; i++) {
        dst->len[i] = src->len[i];
        dst->fmt[i] = src->fmt[i];
        dst->v[i] = NULL;
        if (src->v[i] == NULL) continue;
        /* Each ends in a NUL: libpq reads a text-format one (an array
         * literal) up to it. An empty text stays one, not NULL. */
        memcpy(*heap + off, src->v[i], (size_t)src->len[i]);
        (*heap)[off + (size_t)src->len[i]] = '\0';
        dst->v[i] = *heap + off;
        off += (size_t)src->len[i] + 1;
    }
    return true;
}

int64_t pg_get_int(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    uint64_t u = 0;
    for (int i = 0; i < n && i < 8; i++)
        u = u << 8 | v[i];
    switch (n) {
    case 1:
        return (int8_t)u;
    case 2:
        return (int16_t)u;
    case 4:
        return (int32_t)u;
    default:
        return (int64_t)u;
    }
}

text_ref_t pg_get_text(const PGresult *r, int row, int col)
{
    text_ref_t t = {NULL, 0};
    if (!PQgetisnull(r, row, col)) {
        t.ptr = PQgetvalue(r, row, col);
        t.len = (size_t)PQgetlength(r, row, col);
    }
    return t;
}

void pg_get_uuid(const PGresult *r, int row, int col, char out[UUID_BUFSZ])
{
    out[0] = '\0';
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != UUID_BYTES) return;
    uuid_from_bytes((const unsigned char *)PQgetvalue(r, row, col), out);
}

int64_t pg_affected(const PGresult *r)
{
    return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

void pg_wipe(PGresult *r)
{
    for (int i = 0; r != NULL && i < PQntuples(r); i++)
        for (int j = 0; j < PQnfields(r); j++)
            explicit_bzero(PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j));
}

/* An integer column that may be NULL: fallback then. */
static int64_t get_opt_int(const PGresult *r, int row, int col, int64_t fallback)
{
    return PQgetisnull(r, row, col) ? fallback : pg_get_int(r, row, col);
}

void pg_read_lead(const PGresult *r, int row, int c0, lead_t *l)
{
    pg_get_uuid(r, row, c0 + LEAD_COL_ID, l->id);
    l->name = pg_get_text(r, row, c0 + LEAD_COL_NAME);
    l->source = pg_get_text(r, row, c0 + LEAD_COL_SOURCE);
    pg_get_uuid(r, row, c0 + LEAD_COL_ACCOUNT, l->account_id);
    pg_get_uuid(r, row, c0 + LEAD_COL_CONTACT, l->contact_id);
    l->has_value = !PQgetisnull(r, row, c0 + LEAD_COL_VALUE);
    l->value_cents = get_opt_int(r, row, c0 + LEAD_COL_VALUE, 0);
    l->stage = (int)pg_get_int(r, row, c0 + LEAD_COL_STAGE);
    l->probability = (int)get_opt_int(r, row, c0 + LEAD_COL_PROBABILITY, -1);
    l->status = (int)pg_get_int(r, row, c0 + LEAD_COL_STATUS);
    l->created_at = pg_get_int(r, row, c0 + LEAD_COL_CREATED_AT);
    l->updated_at = pg_get_int(r, row, c0 + LEAD_COL_UPDATED_AT);
}

void pg_read_follow(const PGresult *r, int row, int c0, follow_t *f)
{
    pg_get_uuid(r, row, c0 + FOLLOW_COL_ID, f->id);
    pg_get_uuid(r, row, c0 + FOLLOW_COL_LEAD, f->lead_id);
    f->title = pg_get_text(r, row, c0 + FOLLOW_COL_TITLE);
    f->description = pg_get_text(r, row, c0 + FOLLOW_COL_DESCRIPTION);
    f->has_due = !PQgetisnull(r, row, c0 + FOLLOW_COL_DUE);
    f->due_at = get_opt_int(r, row, c0 + FOLLOW_COL_DUE, 0);
    f->status = (int)pg_get_int(r, row, c0 + FOLLOW_COL_STATUS);
    f->created_at = pg_get_int(r, row, c0 + FOLLOW_COL_CREATED_AT);
    f->updated_at = pg_get_int(r, row, c0 + FOLLOW_COL_UPDATED_AT);
}

void pg_read_app(const PGresult *r, int row, store_app_t *a)
{
    store_app_fill(a, pg_get_int(r, row, APP_COL_ID), pg_get_text(r, row, APP_COL_KEY),
                   pg_get_text(r, row, APP_COL_NAME), pg_get_int(r, row, APP_COL_DISABLED) != 0,
                   pg_get_int(r, row, APP_COL_CREATED_AT));
}

/* Reads one row's record from column c0 and passes it to cb. */
typedef void (*emit_row_fn)(const PGresult *r, int row, int c0, void *cb, void *ctx);

static void emit_lead(const PGresult *r, int row, int c0, void *cb, void *ctx)
{
    lead_t l;
    pg_read_lead(r, row, c0, &l);
    ((store_lead_cb)cb)(ctx, &l);
}

static void emit_follow(const PGresult *r, int row, int c0, void *cb, void *ctx)
{
    follow_t f;
    pg_read_follow(r, row, c0, &f);
    ((store_follow_cb)cb)(ctx, &f);
}

static void emit_rows(const PGresult *r, int c0, emit_row_fn fn, void *cb, void *ctx)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, c0)) fn(r, i, c0, cb, ctx);
}

void pg_emit_leads(const PGresult *r, int c0, void *cb, void *ctx)
{
    emit_rows(r, c0, emit_lead, cb, ctx);
}

void pg_emit_follows(const PGresult *r, int c0, void *cb, void *ctx)
{
    emit_rows(r, c0, emit_follow, cb, ctx);
}
