/*
 * find.c: the find reads on PostgreSQL (store_lead_find, store_follow_find,
 * store_lead_summary): each is one statement written by store/find.c, run
 * by async.c's pg_read_rows_sql: on a server thread's connection later,
 * from its loop, like every read there; elsewhere at once, prepared
 * through dyn.c.
 *
 * Search is always LIKE '%term%' on the folded columns: pg_trgm's index
 * serves it, and PostgreSQL's planner, which has statistics, chooses
 * between that index and walking the sort's index.
 */
#include <stdlib.h>
#include <string.h>

#include "store/find.h"
#include "store/postgres/pg_int.h"

/* An array parameter as a literal in p's own texts. */
static bool array_param(pg_params_t *p, const fq_param_t *f)
{
    pg_array_t a = {0};
    pg_array_begin(&a);
    for (int i = 0; i < f->n; i++) {
        if (f->type == FQ_TEXT_ARRAY)
            pg_array_text(&a, f->texts[i]);
        else
            pg_array_text(&a, (text_ref_t){f->ids[i], strlen(f->ids[i])});
    }
    pg_array_end(&a);
    /* Text-format parameters are read up to their NUL, whatever the length. */
    char *at = a.oom ? NULL : pgp_own(p, a.len + 1);
    if (at != NULL) {
        memcpy(at, a.buf, a.len + 1);
        pgp_own_text(p, at, a.len);
    }
    free(a.buf);
    return at != NULL;
}

/* q's parameters, in binary but for arrays; false when one does not fit. */
static bool params_of(const fq_t *q, pg_params_t *p)
{
    for (int i = 0; i < q->np; i++) {
        const fq_param_t *f = &q->p[i];
        switch (f->type) {
        case FQ_INT8:
            pgp_int8(p, f->i);
            break;
        case FQ_TEXT:
            pgp_text(p, f->t);
            break;
        case FQ_UUID: {
            char id[UUID_BUFSZ];
            if (f->t.len != UUID_STRLEN) return false;
            memcpy(id, f->t.ptr, UUID_STRLEN);
            id[UUID_STRLEN] = '\0';
            if (!pgp_uuid(p, id)) return false;
            break;
        }
        default:
            if (!array_param(p, f)) return false;
            break;
        }
    }
    return !p->full;
}

/* Runs q's statement, its rows to fn and to: later when async says so
 * (pg_read_rows_sql copies the statement and its parameters). */
static store_rc_t run_find(pg_store_t *s, const fq_t *q, pg_rows_fn fn, const pg_rows_t *to,
                           const store_async_t *async)
{
    pg_params_t *p = calloc(1, sizeof *p); /* large: not on the stack */
    if (p == NULL) return STORE_ERROR;
    store_rc_t rc = params_of(q, p) ? pg_read_rows_sql(s, q->sql.s, p, fn, to, async) : STORE_ERROR;
    free(p);
    return rc;
}

/* A find's rows: the count of its first row (-1 when NULL), and its
 * records to emit; none at all is STORE_NOT_FOUND for one lead's follows
 * (the lead does not exist). */
static store_rc_t find_rows(const PGresult *r, const pg_rows_t *to)
{
    if (to->one_lead && PQntuples(r) == 0) return STORE_NOT_FOUND;
    *to->total = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? pg_get_int(r, 0, 0) : -1;
    to->emit(r, to->c0, to->cb, to->ctx);
    return STORE_OK;
}

/* A find read: q (on the heap: it is large) written by build, and run. */
static store_rc_t find(store_t *base, bool (*build)(fq_t *, int64_t, const void *), int64_t app,
                       const void *query, pg_rows_t *to, const store_async_t *async)
{
    fq_t *q = malloc(sizeof *q);
    if (q == NULL) return STORE_ERROR;
    fq_init(q, true);
    store_rc_t rc = STORE_ERROR;
    if (build(q, app, query)) {
        to->c0 = q->c0;
        rc = run_find(pg_of(base), q, find_rows, to, async);
    }
    free(q);
    return rc;
}

static bool build_leads(fq_t *q, int64_t app, const void *query)
{
    return fq_lead_find(q, app, query);
}

static bool build_follows(fq_t *q, int64_t app, const void *query)
{
    return fq_follow_find(q, app, query);
}

store_rc_t pg_lead_find(store_t *base, int64_t app, const store_lead_query_t *lq, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    pg_rows_t to = {.emit = pg_emit_leads, .cb = (void *)cb, .ctx = ctx, .total = total};
    return find(base, build_leads, app, lq, &to, async);
}

store_rc_t pg_follow_find(store_t *base, int64_t app, const store_follow_query_t *fq, int64_t *total,
                          store_follow_cb cb, void *ctx, const store_async_t *async)
{
    pg_rows_t to = {.emit = pg_emit_follows,
                    .cb = (void *)cb,
                    .ctx = ctx,
                    .total = total,
                    .one_lead = fq->lead[0] != '\0'};
    return find(base, build_follows, app, fq, &to, async);
}

/* The summary's rows, each added to the store_summary_t of to->out. */
static store_rc_t summary_rows(const PGresult *r, const pg_rows_t *to)
{
    store_lead_filter_t f;
    store_lead_filter_init(&f);
    f.stages = to->stages;
    f.statuses = to->statuses;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t row[8];
        for (int c = 0; c < 8; c++)
            row[c] = PQgetisnull(r, i, c) ? 0 : pg_get_int(r, i, c);
        fq_summary_add(to->out, &f, row);
    }
    return STORE_OK;
}

store_rc_t pg_lead_summary(store_t *base, int64_t app, const store_lead_filter_t *f, int64_t now,
                           store_summary_t *out, const store_async_t *async)
{
    *out = (store_summary_t){0};
    fq_t *q = malloc(sizeof *q);
    if (q == NULL) return STORE_ERROR;
    fq_init(q, true);
    /* Only the cells the filter keeps count (fq_summary_add); the filter
     * itself need not outlive the call. */
    pg_rows_t to = {.out = out, .stages = f->stages, .statuses = f->statuses};
    store_rc_t rc =
        fq_lead_summary(q, app, f, now) ? run_find(pg_of(base), q, summary_rows, &to, async) : STORE_ERROR;
    free(q);
    return rc;
}

/* pg_trgm's GIN index is kept by PostgreSQL itself (its pending list is
 * merged by vacuum and by inserts): nothing for the writer to do. */
store_rc_t pg_search_tidy(store_t *base, int pages, bool *more)
{
    (void)base, (void)pages;
    *more = false;
    return STORE_OK;
}
