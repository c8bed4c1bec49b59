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
 * as extra columns), and txn.c keeps them in its unit of work's when the
 * statement succeeds, and those in the transaction's when all of the unit
 * does. Both are summed by cell in a hash table: an import of 20,000 leads
 * with as many sources looked through every cell for each lead before.
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

void pg_totals_note_sent(pg_store_t *s)
{
    s->nop_totals = 0;
    if (s->totals_op != PG_TOTALS_INSERT) return;
    const lead_t *l = s->totals_lead;
    row_t x = {l->stage,       l->status,     l->source, l->has_value, l->probability >= 0,
               l->value_cents, l->probability};
    figures(&s->op_totals[s->nop_totals++], s->totals_app, &x, 1);
}

/* FNV-1a over a cell's key, the fields cell_cmp compares. */
static uint64_t cell_hash(const pg_totals_delta_t *d)
{
    uint64_t h = 14695981039346656037ULL;
    int64_t key[4] = {d->app, d->stage, d->status, d->has_src};
    const unsigned char *k = (const unsigned char *)key;
    for (size_t i = 0; i < sizeof key; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    for (size_t i = 0; i < d->src_len; i++)
        h = (h ^ (unsigned char)d->src[i]) * 1099511628211ULL;
    return h;
}

/* The slot of d's cell in t, or of the free slot where it would go. */
static size_t slot_of(const pg_totals_set_t *t, const pg_totals_delta_t *d)
{
    size_t mask = t->nslot - 1, i = (size_t)cell_hash(d) & mask;
    while (t->slot[i] != 0 && cell_cmp(&t->cell[t->slot[i] - 1], d) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Doubles t's slots (at least 64), keeping at most half of them used so
 * that a probe stays short; false when out of memory. */
static bool grow_slots(pg_totals_set_t *t)
{
    size_t want = t->nslot ? t->nslot * 2 : 64;
    uint32_t *slot = calloc(want, sizeof *slot);
    if (slot == NULL || want > UINT32_MAX) {
        free(slot);
        return false;
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = want;
    for (size_t c = 0; c < t->n; c++)
        t->slot[slot_of(t, &t->cell[c])] = (uint32_t)(c + 1);
    return true;
}

store_rc_t pg_totals_add(pg_totals_set_t *t, const pg_totals_delta_t *d)
{
    if ((t->n + 1) * 2 > t->nslot && !grow_slots(t)) return STORE_ERROR;
    size_t i = slot_of(t, d);
    if (t->slot[i] == 0) {
        pg_totals_delta_t *v = store_grow(t->cell, &t->cap, t->n, sizeof *v, 16);
        if (v == NULL) return STORE_ERROR;
        t->cell = v;
        pg_totals_delta_t cell = *d;
        cell.n = cell.v_hi = cell.v_lo = cell.w_hi = cell.w_lo = 0;
        t->cell[t->n++] = cell;
        t->slot[i] = (uint32_t)t->n;
    }
    pg_totals_delta_t *c = &t->cell[t->slot[i] - 1];
    c->n += d->n;
    c->v_hi += d->v_hi;
    c->v_lo += d->v_lo;
    c->w_hi += d->w_hi;
    c->w_lo += d->w_lo;
    return STORE_OK;
}

store_rc_t pg_totals_merge(pg_totals_set_t *into, pg_totals_set_t *from)
{
    if (into->n == 0) {
        /* The first unit of a transaction (an import's): its cells move. */
        pg_totals_set_t empty = *into;
        *into = *from;
        *from = empty;
        pg_totals_clear(from);
        return STORE_OK;
    }
    for (size_t c = 0; c < from->n; c++)
        if (pg_totals_add(into, &from->cell[c]) != STORE_OK) return STORE_ERROR;
    return STORE_OK;
}

/* A set with more slots than this is freed when emptied, not wiped: an
 * import's room would otherwise cost every later write a large memset. */
#define SET_KEEP_SLOTS 256

void pg_totals_clear(pg_totals_set_t *t)
{
    t->n = 0;
    if (t->nslot > SET_KEEP_SLOTS) {
        pg_totals_free(t);
    } else if (t->nslot > 0) {
        memset(t->slot, 0, t->nslot * sizeof *t->slot);
    }
}

void pg_totals_free(pg_totals_set_t *t)
{
    free(t->cell);
    free(t->slot);
    *t = (pg_totals_set_t){0};
}

store_rc_t pg_totals_keep(pg_store_t *s)
{
    for (int k = 0; k < s->nop_totals; k++)
        if (pg_totals_add(&s->unit_totals, &s->op_totals[k]) != STORE_OK) return STORE_ERROR;
    s->nop_totals = 0;
    return STORE_OK;
}

store_rc_t pg_totals_flush(pg_store_t *s,
                           store_rc_t (*run)(pg_store_t *, enum pg_stmt_id, const pg_params_t *))
{
    store_rc_t rc = STORE_OK;
    pg_totals_set_t *t = &s->totals;
    /* The order breaks the slots: the set is emptied below. */
    if (t->n > 1) qsort(t->cell, t->n, sizeof *t->cell, cell_cmp);
    for (size_t i = 0; i < t->n && rc == STORE_OK; i++) {
        const pg_totals_delta_t *c = &t->cell[i];
        if (c->n == 0 && c->v_hi == 0 && c->v_lo == 0 && c->w_hi == 0 && c->w_lo == 0) continue;
        pg_params_t p = {0};
        pgp_int8(&p, c->app);
        pgp_int4(&p, c->stage);
        pgp_int4(&p, c->status);
        pgp_text(&p, (text_ref_t){c->src, c->src_len});
        pgp_int4(&p, c->has_src);
        pgp_int8(&p, c->n);
        pgp_int8(&p, c->v_hi);
        pgp_int8(&p, c->v_lo);
        pgp_int8(&p, c->w_hi);
        pgp_int8(&p, c->w_lo);
        rc = run(s, Q_TOTALS_ADD, &p);
    }
    pg_totals_clear(t);
    return rc;
}
