/*
 * txn.c: PostgreSQL transactions: running a statement (once more on a new
 * connection when that cannot do harm), one write as its own transaction
 * or as a savepoint in a batch (a unit of work: one statement, or many,
 * an import's pipelined), lead counts applied at commit, deadlock
 * retries, and group commit.
 *
 * Sections:
 *   running statements   run, pg_run_in_tx, pg_exec_sql
 *   transactions         pg_tx_begin, pg_tx_commit, pg_tx_rollback
 *   lead counts          op_keep, unit_keep, flush_deltas
 *   one unit of work     begin_op, finish_op, pg_write, pg_read, pg_one_row
 *   a batch              pg_batch_tx
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres/pg_int.h"

/* A write that keeps losing deadlocks gives up (503) after this many tries. */
#define WRITE_ATTEMPTS 3

/* How long a write or a batch that lost a deadlock waits, once rolled
 * back, before it is tried again (deadlock_pause). */
#define DEADLOCK_PAUSE_MS 50

/* Waits DEADLOCK_PAUSE_MS after a transaction that lost a deadlock was
 * rolled back. The transaction that won was waiting for a row the loser
 * had changed; the rollback wakes it, but a try made at once can change
 * that row again before the winner runs (a row whose last change was
 * rolled back is taken without waiting), close the same circle, lose
 * again after deadlock_timeout, and after the last try answer 503. The
 * API test that makes such a circle lost its first try about one time in
 * six so on two busy cores (tests/api/test_postgres.py). Deadlocks are
 * rare, so the pause, which holds up the writes queued behind this one,
 * costs little. */
static void deadlock_pause(void)
{
    struct timespec t = {.tv_sec = 0, .tv_nsec = DEADLOCK_PAUSE_MS * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* --- running statements ----------------------------------------------------- */

/* True when a failed try may be made again on a new connection: the old
 * one died outside a transaction, so nothing can happen twice. */
static bool try_again(const pg_store_t *s, store_rc_t rc, int attempt)
{
    return rc == STORE_UNAVAILABLE && !pg_conn_ok(s) && !s->in_tx && attempt == 0;
}

/* Runs prepared statement id with p (may be NULL), preparing it on first
 * use on this connection. Returns the result (the caller PQclear()s it)
 * or NULL with *rc set. */
static PGresult *run(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, store_rc_t *rc)
{
    if (s->piped && (*rc = pg_pipe_leave(s)) != STORE_OK) return NULL;
    if (s->pipe_rc != STORE_OK) {
        *rc = s->pipe_rc;
        return NULL;
    }
    for (int attempt = 0;; attempt++) {
        if (!pg_ensure_conn(s, attempt > 0)) {
            *rc = STORE_UNAVAILABLE;
            return NULL;
        }
        char name[PG_STMT_NAME_MAX];
        PGresult *r = pg_prepare(s, id, name);
        if (s->prepared[id]) {
            r = PQexecPrepared(s->conn, name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL,
                               p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 1);
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                *rc = STORE_OK;
                return r;
            }
        }
        *rc = pg_map_error(s, r);
        PQclear(r);
        if (!try_again(s, *rc, attempt)) return NULL;
    }
}

store_rc_t pg_run_in_tx(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, PGresult **out)
{
    assert(s->in_tx);
    store_rc_t rc;
    PGresult *r = run(s, id, p, &rc);
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return rc;
}

store_rc_t pg_exec_sql(pg_store_t *s, const char *sql)
{
    store_rc_t prc = pg_pipe_leave(s);
    /* A doomed import can still be rolled back. */
    if (prc != STORE_OK && strcmp(sql, "ROLLBACK") != 0) return prc;
    for (int attempt = 0;; attempt++) {
        if (!pg_ensure_conn(s, attempt > 0)) return STORE_UNAVAILABLE;
        PGresult *r = PQexec(s->conn, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            /* COMMIT of a transaction that had failed answers ROLLBACK. */
            bool rolled_back = strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0;
            PQclear(r);
            return rolled_back ? STORE_ERROR : STORE_OK;
        }
        store_rc_t rc = pg_map_error(s, r);
        PQclear(r);
        if (!try_again(s, rc, attempt)) return rc;
    }
}

/* --- transactions ------------------------------------------------------------- */

store_rc_t pg_tx_begin(pg_store_t *s, const char *sql)
{
    assert(!s->in_tx);
    s->ev_room_app = 0; /* other processes may have queued events since */
    store_rc_t rc = pg_exec_sql(s, sql);
    if (rc == STORE_OK) s->in_tx = true;
    return rc;
}

store_rc_t pg_tx_commit(pg_store_t *s)
{
    store_rc_t rc = pg_exec_sql(s, "COMMIT");
    s->in_tx = false;
    return rc == STORE_ERROR ? STORE_UNAVAILABLE : rc;
}

void pg_tx_rollback(pg_store_t *s)
{
    if (s->in_tx && pg_conn_ok(s)) pg_exec_sql(s, "ROLLBACK");
    s->in_tx = false;
}

/* --- lead counts ------------------------------------------------------------ */

/* A statement's lead count change and lead_totals changes are kept in its
 * unit of work's when it succeeds (op_keep), and the unit's in the
 * transaction's when all of the unit succeeds (unit_keep): a unit that
 * fails leaves the transaction's untouched, as its savepoint leaves the
 * tables. */

/* Forgets the unit's changes. */
static void unit_forget(pg_store_t *s)
{
    s->nunit_deltas = 0;
    pg_totals_clear(&s->unit_totals);
}

/* Forgets the lead counts and totals (totals.c) the transaction changed. */
static void forget_deltas(pg_store_t *s)
{
    s->ndeltas = 0;
    pg_totals_clear(&s->totals);
    unit_forget(s);
}

/* Runs a statement whose rows are not wanted. */
static store_rc_t run_no_rows(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p)
{
    store_rc_t rc;
    PQclear(run(s, id, p, &rc));
    return rc;
}

static int delta_cmp(const void *a, const void *b)
{
    const pg_count_delta_t *x = a, *y = b;
    return x->app < y->app ? -1 : x->app > y->app;
}

/* Adds delta to app's change in the list v (n of cap); few apps ever
 * share a transaction, so a list looked through will do. */
static store_rc_t add_count(pg_count_delta_t **v, size_t *n, size_t *cap, int64_t app, int64_t delta)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*v)[i].app == app) {
            (*v)[i].delta += delta;
            return STORE_OK;
        }
    }
    pg_count_delta_t *d = store_grow(*v, cap, *n, sizeof *d, 16);
    if (d == NULL) return STORE_ERROR;
    *v = d;
    (*v)[(*n)++] = (pg_count_delta_t){app, delta};
    return STORE_OK;
}

/* Keeps the changes of the statement that just succeeded in its unit's. */
static store_rc_t op_keep(pg_store_t *s)
{
    if (pg_totals_keep(s) != STORE_OK) return STORE_ERROR;
    int delta = s->op_delta;
    s->op_delta = 0;
    if (delta == 0) return STORE_OK;
    return add_count(&s->unit_deltas, &s->nunit_deltas, &s->capunit_deltas, s->op_app, delta);
}

/* Keeps the changes of the unit that just succeeded in the transaction's. */
static store_rc_t unit_keep(pg_store_t *s)
{
    store_rc_t rc = pg_totals_merge(&s->totals, &s->unit_totals);
    for (size_t i = 0; i < s->nunit_deltas && rc == STORE_OK; i++)
        rc =
            add_count(&s->deltas, &s->ndeltas, &s->capdeltas, s->unit_deltas[i].app, s->unit_deltas[i].delta);
    unit_forget(s);
    return rc;
}

/* Applies the kept lead count changes, in app order, inside the open
 * transaction, and forgets them. The totals, a row per cell (one per
 * source an import brings), are sent in pipeline mode: one round trip for
 * all of them. */
static store_rc_t flush_deltas(pg_store_t *s)
{
    store_rc_t rc = STORE_OK;
    if (s->ndeltas > 1) qsort(s->deltas, s->ndeltas, sizeof *s->deltas, delta_cmp);
    for (size_t i = 0; i < s->ndeltas && rc == STORE_OK; i++) {
        if (s->deltas[i].delta == 0) continue;
        pg_params_t p = {0};
        pgp_int8(&p, s->deltas[i].app);
        pgp_int8(&p, s->deltas[i].delta);
        PQclear(run(s, Q_APP_COUNT_ADD, &p, &rc));
    }
    s->ndeltas = 0;
    if (rc != STORE_OK) {
        pg_totals_clear(&s->totals);
        return rc;
    }
    if (s->totals.n <= 1) return pg_totals_flush(s, run_no_rows);
    rc = pg_totals_flush(s, pg_pipe_send);
    store_rc_t prc = pg_pipe_end(s);
    return rc != STORE_OK ? rc : prc;
}

/* Applies the kept lead counts and commits. */
static store_rc_t commit_all(pg_store_t *s)
{
    store_rc_t rc = flush_deltas(s);
    return rc == STORE_OK ? pg_tx_commit(s) : rc;
}

/* --- one unit of work ------------------------------------------------------ */

/* Starts one unit of work: a savepoint inside a batch, else a transaction. */
static store_rc_t begin_op(pg_store_t *s)
{
    s->op_app = 0;
    s->op_delta = 0;
    s->nop_totals = 0;
    unit_forget(s);
    if (s->base.batch == BATCH_BROKEN) return STORE_UNAVAILABLE;
    if (s->base.batch == BATCH_OPEN) {
        store_rc_t rc = pg_exec_sql(s, "SAVEPOINT w");
        if (rc != STORE_OK) s->base.batch = BATCH_BROKEN;
        return rc;
    }
    forget_deltas(s);
    return pg_tx_begin(s, "BEGIN");
}

/* Marks the batch broken: nothing more of it may run or commit, and the
 * write that found out is not tried again. */
static store_rc_t break_batch(pg_store_t *s, store_rc_t rc)
{
    s->base.batch = BATCH_BROKEN;
    s->retry = false;
    return rc;
}

/* finish_op inside a batch. A deadlock (s->retry): the other transaction
 * waits for locks this batch took in earlier writes, so retrying in the
 * same transaction would only deadlock again; and committing what the
 * batch has done so far, to go on in a new transaction, could commit part
 * of an API write (its change, say) without the rest (its event, its
 * history, its Idempotency-Key's answer), should that rest then fail. So
 * the batch breaks, none of it happens, and its writer runs all of its
 * writes again in a new batch (store_batch_redo, api/writer.c). */
static store_rc_t finish_in_batch(pg_store_t *s, store_rc_t rc)
{
    if (rc == STORE_OK) {
        rc = pg_exec_sql(s, "RELEASE w");
        if (rc == STORE_OK) rc = unit_keep(s);
        return rc == STORE_OK ? rc : break_batch(s, rc);
    }
    unit_forget(s);
    if (s->retry) {
        store_log("crmd: postgres: deadlock: the batch is undone, to be run again");
        s->base.redo = true;
        return break_batch(s, STORE_UNAVAILABLE);
    }
    if (pg_exec_sql(s, "ROLLBACK TO w") != STORE_OK || pg_exec_sql(s, "RELEASE w") != STORE_OK)
        return break_batch(s, rc);
    return rc;
}

/* Ends the unit of work begun by begin_op: keeps it when rc is STORE_OK,
 * else undoes it alone. Returns the final rc; s->retry says whether the
 * write may be tried again. */
static store_rc_t finish_op(pg_store_t *s, store_rc_t rc)
{
    if (s->base.batch != BATCH_NONE) return finish_in_batch(s, rc);
    if (rc == STORE_OK) {
        rc = unit_keep(s);
        if (rc == STORE_OK) rc = commit_all(s);
        if (rc == STORE_OK) return STORE_OK;
    }
    pg_tx_rollback(s);
    forget_deltas(s);
    return rc;
}

/* Hands r to *out when out is not NULL, else frees it. */
static void give(PGresult *r, PGresult **out)
{
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
}

/* pg_write's one statement, as a unit for pg_write_unit: its result (that
 * of the last try) is kept in r. */
typedef struct one_write {
    enum pg_stmt_id id;
    const pg_params_t *p;
    int64_t count_app;
    int count_delta;
    PGresult *r;
} one_write_t;

/* Runs statement id and notes what it changed, for op_keep to keep: the
 * totals, and count_delta leads of app count_app when it changed a row. */
static PGresult *run_noted(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                           int count_delta, store_rc_t *rc)
{
    PGresult *r = run(s, id, p, rc);
    pg_totals_note(s, r);
    if (r != NULL && count_delta != 0 && pg_affected(r) > 0) {
        s->op_app = count_app;
        s->op_delta = count_delta;
    }
    return r;
}

static store_rc_t one_write(pg_store_t *s, void *ctx)
{
    one_write_t *w = ctx;
    store_rc_t rc;
    PQclear(w->r); /* a try before that lost a deadlock */
    w->r = run_noted(s, w->id, w->p, w->count_app, w->count_delta, &rc);
    return rc == STORE_OK ? op_keep(s) : rc;
}

/* Whether statement id, inside a unit of work that allows it and with
 * its result not wanted, may be sent in pipeline mode, its answer
 * collected later: what it changes in the lead counts and totals is known
 * without its answer (an insert adds its row, or fails, and the others
 * change neither), and nobody branches on how it failed, since any
 * failure fails the unit. These are what an import runs for each lead:
 * the insert, its history, and its event (webhooks.c: event_record). */
static bool sent_unanswered(enum pg_stmt_id id)
{
    return id == Q_LEAD_INSERT || id == Q_HISTORY_ADD || id == Q_EV_FULL_LOG || id == Q_EV_FULL_OFF ||
           id == Q_EV_RECORD;
}

/* pg_write inside a unit of work: the statement runs with no savepoint of
 * its own, since the unit's undoes it, and its changes are kept in the
 * unit's. A failure fails the unit: the transaction cannot go on past a
 * failed statement until the unit's savepoint is rolled back to, so
 * nothing more of the unit runs. */
static store_rc_t write_in_unit(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                                int count_delta, PGresult **out)
{
    if (s->unit_rc != STORE_OK) return s->unit_rc;
    store_rc_t rc;
    s->op_delta = 0;
    if (s->unit_sends && out == NULL && sent_unanswered(id)) {
        rc = pg_pipe_send(s, id, p);
        if (rc == STORE_OK) pg_totals_note_sent(s);
        if (rc == STORE_OK && count_delta != 0) {
            s->op_app = count_app;
            s->op_delta = count_delta;
        }
    } else {
        give(run_noted(s, id, p, count_app, count_delta, &rc), out);
    }
    if (rc == STORE_OK) rc = op_keep(s);
    if (rc == STORE_OK) return STORE_OK;
    s->nop_totals = 0;
    s->op_delta = 0;
    s->unit_rc = rc;
    if (out != NULL) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

store_rc_t pg_write(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                    int count_delta, PGresult **out)
{
    if (out != NULL) *out = NULL;
    store_rc_t rc;
    if (s->in_import) {
        /* The import is one transaction: any failure ends all of it. */
        give(run(s, id, p, &rc), out);
        return rc;
    }
    if (s->in_unit) return write_in_unit(s, id, p, count_app, count_delta, out);
    one_write_t w = {.id = id, .p = p, .count_app = count_app, .count_delta = count_delta};
    rc = pg_write_unit(s, one_write, &w);
    if (rc == STORE_OK)
        give(w.r, out);
    else
        PQclear(w.r);
    return rc;
}

/* Runs fn as the unit of work begun: its writes take no savepoint of their
 * own (write_in_unit), and what it sent in pipeline mode is answered
 * before the unit ends, so that the unit's rc holds every failure. */
static store_rc_t run_unit(pg_store_t *s, pg_unit_fn fn, void *ctx)
{
    s->in_unit = true;
    s->unit_rc = STORE_OK;
    store_rc_t rc = fn(s, ctx);
    store_rc_t prc = pg_pipe_end(s);
    if (rc == STORE_OK) rc = s->unit_rc;
    if (rc == STORE_OK) rc = prc;
    s->in_unit = false;
    s->unit_sends = false;
    s->unit_rc = STORE_OK;
    return rc;
}

store_rc_t pg_write_unit(pg_store_t *s, pg_unit_fn fn, void *ctx)
{
    assert(!s->in_import);
    if (s->in_unit) {
        /* A unit inside a unit is part of it, undone with it. */
        store_rc_t rc = s->unit_rc != STORE_OK ? s->unit_rc : fn(s, ctx);
        if (rc != STORE_OK && s->unit_rc == STORE_OK) s->unit_rc = rc;
        return rc;
    }
    for (int attempt = 1;; attempt++) {
        s->retry = false;
        store_rc_t rc = begin_op(s);
        if (rc != STORE_OK) return rc;
        rc = finish_op(s, run_unit(s, fn, ctx));
        if (rc == STORE_OK || !s->retry) return rc;
        store_log("crmd: postgres: deadlock (try %d of %d)", attempt, WRITE_ATTEMPTS);
        if (attempt == WRITE_ATTEMPTS) return STORE_UNAVAILABLE;
        deadlock_pause();
    }
}

store_rc_t pg_read(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, PGresult **out)
{
    if (s->base.batch != BATCH_NONE) return pg_write(s, id, p, 0, 0, out);
    store_rc_t rc;
    *out = run(s, id, p, &rc);
    return rc;
}

store_rc_t pg_one_row(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int64_t count_app,
                      int count_delta, pg_emit_fn emit, void *cb, void *ctx)
{
    PGresult *r;
    store_rc_t rc = pg_write(s, id, p, count_app, count_delta, &r);
    if (rc == STORE_OK && PQntuples(r) == 0 && pg_affected(r) == 0)
        rc = STORE_NOT_FOUND;
    else if (rc == STORE_OK && emit != NULL)
        emit(r, 0, cb, ctx);
    PQclear(r);
    return rc;
}

store_rc_t pg_write_count(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, int *affected)
{
    PGresult *r;
    *affected = 0;
    store_rc_t rc = pg_write(s, id, p, 0, 0, &r);
    if (rc == STORE_OK) *affected = (int)pg_affected(r);
    PQclear(r);
    return rc;
}

/* --- a batch's transaction ------------------------------------------------------------ */

/* A batch is one transaction; its lead counts are applied at its commit
 * (common.c does the rest). */
static store_rc_t batch_tx_begin(store_t *base)
{
    pg_store_t *s = pg_of(base);
    assert(!s->in_tx);
    forget_deltas(s);
    return pg_tx_begin(s, "BEGIN");
}

static store_rc_t batch_tx_commit(store_t *base)
{
    return commit_all(pg_of(base));
}

/* A batch that lost a deadlock (finish_in_batch) is run again by its
 * writer once rolled back (store_batch_redo): it waits first. */
static void batch_tx_rollback(store_t *base)
{
    pg_store_t *s = pg_of(base);
    pg_tx_rollback(s);
    forget_deltas(s);
    if (s->base.redo) deadlock_pause();
}

const store_tx_ops_t pg_batch_tx = {
    .begin = batch_tx_begin, .commit = batch_tx_commit, .rollback = batch_tx_rollback};
