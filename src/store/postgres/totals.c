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

#include "store/postgres/pg_int.h"

/* A row's figures into d, with sign +1 or -1. */
static void figures(pg_totals_delta_t *d, int64_t app, int stage, int status, bool has_value, int64_t cents,
                    bool has_probability, int64_t probability, int sign)
{
    int64_t v = has_value ? cents : 0;
    int64_t w = has_value && has_probability ? cents * probability : 0;
    *d = (pg_totals_delta_t){.app = app,
                             .stage = stage,
                             .status = status,
                             .n = sign,
                             .v_hi = sign * (v >> 32),
                             .v_lo = sign * (v & 0xFFFFFFFF),
                             .w_hi = sign * (w >> 32),
                             .w_lo = sign * (w & 0xFFFFFFFF)};
}

/* The figures of the four columns stage, status, value_cents, probability
 * starting at column c of row 0. */
static void figures_at(pg_totals_delta_t *d, int64_t app, const PGresult *r, int c, int sign)
{
    figures(d, app, (int)pg_get_int(r, 0, c), (int)pg_get_int(r, 0, c + 1), !PQgetisnull(r, 0, c + 2),
            PQgetisnull(r, 0, c + 2) ? 0 : pg_get_int(r, 0, c + 2), !PQgetisnull(r, 0, c + 3),
            PQgetisnull(r, 0, c + 3) ? 0 : pg_get_int(r, 0, c + 3), sign);
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
        figures(&s->op_totals[s->nop_totals++], app, l->stage, l->status, l->has_value, l->value_cents,
                l->probability >= 0, l->probability, 1);
        return;
    }
    if (PQntuples(r) != 1) return;
    if (s->totals_op == PG_TOTALS_DELETE) {
        figures_at(&s->op_totals[s->nop_totals++], app, r, 0, -1);
        return;
    }
    /* An update returns the new row, then the old figures. */
    figures_at(&s->op_totals[s->nop_totals++], app, r, LEAD_NCOLS, -1);
    bool has_value = !PQgetisnull(r, 0, LEAD_COL_VALUE), has_prob = !PQgetisnull(r, 0, LEAD_COL_PROBABILITY);
    figures(&s->op_totals[s->nop_totals++], app, (int)pg_get_int(r, 0, LEAD_COL_STAGE),
            (int)pg_get_int(r, 0, LEAD_COL_STATUS), has_value,
            has_value ? pg_get_int(r, 0, LEAD_COL_VALUE) : 0, has_prob,
            has_prob ? pg_get_int(r, 0, LEAD_COL_PROBABILITY) : 0, 1);
}

static int same_cell(const pg_totals_delta_t *a, const pg_totals_delta_t *b)
{
    return a->app == b->app && a->stage == b->stage && a->status == b->status;
}

store_rc_t pg_totals_keep(pg_store_t *s)
{
    for (int k = 0; k < s->nop_totals; k++) {
        const pg_totals_delta_t *d = &s->op_totals[k];
        size_t i = 0;
        while (i < s->ntotals && !same_cell(&s->totals[i], d))
            i++;
        if (i == s->ntotals) {
            pg_totals_delta_t *v = store_grow(s->totals, &s->captotals, s->ntotals, sizeof *v, 16);
            if (v == NULL) return STORE_ERROR;
            s->totals = v;
            s->totals[s->ntotals++] =
                (pg_totals_delta_t){.app = d->app, .stage = d->stage, .status = d->status};
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

static int cell_cmp(const void *a, const void *b)
{
    const pg_totals_delta_t *x = a, *y = b;
    if (x->app != y->app) return x->app < y->app ? -1 : 1;
    if (x->stage != y->stage) return x->stage < y->stage ? -1 : 1;
    return (x->status > y->status) - (x->status < y->status);
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
