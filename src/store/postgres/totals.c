/*
 * totals.c: lead_totals on PostgreSQL (store/schema.h): what each lead
 * write changes in it, kept with the write and applied at commit.
 *
 * Like the apps' lead counts (txn.c), the changes of a transaction are
 * gathered here and written just before it commits, in (app, stage,
 * status) order: a totals row is then locked only for the commit, never
 * while a batch of writes runs, and two transactions lock rows in the same
 * order, so they never deadlock on them. Triggers would lock the row at
 * each write, in write order, and hold it to the end of the batch.
 *
 * A lead write says what it is before it runs (pg_totals_expect); once its
 * statement has run, pg_totals_note reads the row's figures from the row
 * the statement returned (the old ones of an update or a delete come back
 * as extra columns), and txn.c keeps them when the write succeeds.
 */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

/* A lead row's figures, as totals.c reads them. */
typedef struct row {
    int stage, status;
    text_ref_t source;
    bool has_value, has_probability;
    int64_t cents, probability;
} row_t;

/* A row's figures into d (its cell, and its sums), with sign +1 or -1. */
static void figures(pg_totals_delta_t *d, int64_t app, const row_t *r, int sign)
{
    int64_t v = r->has_value ? r->cents : 0;
    int64_t w = r->has_value && r->has_probability ? r->cents * r->probability : 0;
    *d = (pg_totals_delta_t){.app = app,
                             .stage = r->stage,
                             .status = r->status,
                             .has_src = r->source.ptr != NULL,
                             .n = sign,
                             .v_hi = sign * (v >> 32),
                             .v_lo = sign * (v & 0xFFFFFFFF),
                             .w_hi = sign * (w >> 32),
                             .w_lo = sign * (w & 0xFFFFFFFF)};
    d->src_len = r->source.ptr != NULL && r->source.len < PG_SRC_MAX ? r->source.len : 0;
    if (d->src_len > 0) memcpy(d->src, r->source.ptr, d->src_len);
}

/* An integer column that may be NULL. */
static int64_t opt_int(const PGresult *r, int c, bool *set)
{
    *set = !PQgetisnull(r, 0, c);
    return *set ? pg_get_int(r, 0, c) : 0;
}

/* Row 0's figures from its columns stage, status, value_cents, probability
 * and source at the given places. */
static row_t row_at(const PGresult *r, int stage, int status, int value, int probability, int source)
{
    row_t x = {.stage = (int)pg_get_int(r, 0, stage), .status = (int)pg_get_int(r, 0, status)};
    x.cents = opt_int(r, value, &x.has_value);
    x.probability = opt_int(r, probability, &x.has_probability);
    x.source = pg_get_text(r, 0, source);
    return x;
}

void pg_totals_expect(pg_store_t *s, enum pg_totals_op op, int64_t app, const lead_t *created)
{
    s->totals_op = op;
    s->totals_app = app;
    s->totals_lead = created;
}

void pg_totals_note(pg_store_t *s, const PGresult *r)
{
    s->nop_totals = 0;
    if (s->totals_op == PG_TOTALS_NONE || r == NULL) return;
    int64_t app = s->totals_app;
    if (s->totals_op == PG_TOTALS_INSERT) {
        const lead_t *l = s->totals_lead;
        if (pg_affected(r) < 1) return;
        row_t x = {l->stage,       l->status,     l->source, l->has_value, l->probability >= 0,
                   l->value_cents, l->probability};
        figures(&s->op_totals[s->nop_totals++], app, &x, 1);
        return;
    }
    if (PQntuples(r) != 1) return;
    if (s->totals_op == PG_TOTALS_RECOVER) {
        row_t now =
            row_at(r, LEAD_COL_STAGE, LEAD_COL_STATUS, LEAD_COL_VALUE, LEAD_COL_PROBABILITY, LEAD_COL_SOURCE);
        figures(&s->op_totals[s->nop_totals++], app, &now, 1);
        return;
    }
    if (s->totals_op == PG_TOTALS_DELETE) {
        row_t old = row_at(r, 0, 1, 2, 3, 4); /* RETURNING stage, status, value_cents, probability, source */
        figures(&s->op_totals[s->nop_totals++], app, &old, -1);
        return;
    }
    /* An update returns the new row, then the old figures. */
    row_t old = row_at(r, LEAD_NCOLS, LEAD_NCOLS + 1, LEAD_NCOLS + 2, LEAD_NCOLS + 3, LEAD_NCOLS + 4);
    row_t now =
        row_at(r, LEAD_COL_STAGE, LEAD_COL_STATUS, LEAD_COL_VALUE, LEAD_COL_PROBABILITY, LEAD_COL_SOURCE);
    figures(&s->op_totals[s->nop_totals++], app, &old, -1);
    figures(&s->op_totals[s->nop_totals++], app, &now, 1);
}

/* Orders cells: (app, stage, status, source), the order they are locked in. */
static int cell_cmp(const void *pa, const void *pb)
{
    const pg_totals_delta_t *x = pa, *y = pb;
    if (x->app != y->app) return x->app < y->app ? -1 : 1;
    if (x->stage != y->stage) return x->stage < y->stage ? -1 : 1;
    if (x->status != y->status) return x->status < y->status ? -1 : 1;
    if (x->has_src != y->has_src) return x->has_src ? 1 : -1;
    int c = memcmp(x->src, y->src, x->src_len < y->src_len ? x->src_len : y->src_len);
    return c != 0 ? c : (x->src_len > y->src_len) - (x->src_len < y->src_len);
}

store_rc_t pg_totals_keep(pg_store_t *s)
{
    for (int k = 0; k < s->nop_totals; k++) {
        const pg_totals_delta_t *d = &s->op_totals[k];
        size_t i = 0;
        while (i < s->ntotals && cell_cmp(&s->totals[i], d) != 0)
            i++;
        if (i == s->ntotals) {
            pg_totals_delta_t *v = store_grow(s->totals, &s->captotals, s->ntotals, sizeof *v, 16);
            if (v == NULL) return STORE_ERROR;
            s->totals = v;
            pg_totals_delta_t cell = *d;
            cell.n = cell.v_hi = cell.v_lo = cell.w_hi = cell.w_lo = 0;
            s->totals[s->ntotals++] = cell;
        }
        pg_totals_delta_t *t = &s->totals[i];
        t->n += d->n;
        t->v_hi += d->v_hi;
        t->v_lo += d->v_lo;
        t->w_hi += d->w_hi;
        t->w_lo += d->w_lo;
    }
    s->nop_totals = 0;
    return STORE_OK;
}

store_rc_t pg_totals_flush(pg_store_t *s,
                           store_rc_t (*run)(pg_store_t *, enum pg_stmt_id, const pg_params_t *))
{
    store_rc_t rc = STORE_OK;
    if (s->ntotals > 1) qsort(s->totals, s->ntotals, sizeof *s->totals, cell_cmp);
    for (size_t i = 0; i < s->ntotals && rc == STORE_OK; i++) {
        const pg_totals_delta_t *t = &s->totals[i];
        if (t->n == 0 && t->v_hi == 0 && t->v_lo == 0 && t->w_hi == 0 && t->w_lo == 0) continue;
        pg_params_t p = {0};
        pgp_int8(&p, t->app);
        pgp_int4(&p, t->stage);
        pgp_int4(&p, t->status);
        pgp_text(&p, (text_ref_t){t->src, t->src_len});
        pgp_int4(&p, t->has_src);
        pgp_int8(&p, t->n);
        pgp_int8(&p, t->v_hi);
        pgp_int8(&p, t->v_lo);
        pgp_int8(&p, t->w_hi);
        pgp_int8(&p, t->w_lo);
        rc = run(s, Q_TOTALS_ADD, &p);
    }
    s->ntotals = 0;
    return rc;
}
