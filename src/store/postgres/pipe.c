/*
 * pipe.c: libpq's pipeline mode, for crmd copy's bulk import, the API's
 * imports (txn.c: the statements of a unit of work) and the totals
 * written at commit.
 *
 * Inserts one round trip each would take minutes for a large database, so
 * copy_import_lead and _follow only send theirs and the answers are
 * collected every PIPE_SYNC rows. Every one must have inserted a row. The
 * import is one transaction, so the first failure dooms it all: it is kept
 * in pipe_rc, logged with the server's message (which names the row), and
 * returned by every later call. Any other statement first collects the
 * answers and leaves pipeline mode (txn.c calls pg_pipe_leave). A unit
 * of work's failure, or the totals', fails only that unit (or commit):
 * pg_pipe_end hands it over and forgets it.
 */
#include <stdio.h>

#include "store/postgres/pg_int.h"

/* Bulk import sends this many inserts before waiting for their answers. */
#define PIPE_SYNC 1000

/* Notes the first failure among the answers of one sync. */
static void collect_one(pg_store_t *s, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (s->pipe_rc != STORE_OK) return;
    if (st == PGRES_FATAL_ERROR) {
        char msg[PG_MSG_MAX];
        pg_message(PQresultErrorMessage(r), msg, sizeof msg);
        store_log("crmd: postgres: %s", msg);
        s->pipe_rc = pg_map_error(s, r);
    } else if (!s->in_unit && st == PGRES_COMMAND_OK && pg_affected(r) != 1) {
        /* crmd copy's inserts, and the totals at commit, each change a
         * row; the statements of a unit of work (txn.c) fail by an error,
         * and some change no row. */
        store_log("crmd: postgres: a follow's lead is not in the target");
        s->pipe_rc = STORE_NOT_FOUND;
    }
}

static store_rc_t pipe_collect(pg_store_t *s)
{
    if (PQpipelineSync(s->conn) != 1) {
        s->pipe_rc = pg_map_error(s, NULL);
        return s->pipe_rc;
    }
    int nulls = 0;
    for (;;) {
        PGresult *r = PQgetResult(s->conn);
        if (r == NULL) {
            /* NULL ends each insert's answers; two in a row mean nothing
             * more will come (a lost connection). */
            if (++nulls > 1 || !pg_conn_ok(s)) {
                if (s->pipe_rc == STORE_OK) s->pipe_rc = pg_map_error(s, NULL);
                break;
            }
            continue;
        }
        nulls = 0;
        bool synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        if (!synced) collect_one(s, r);
        PQclear(r);
        if (synced) break;
    }
    s->pipe_queued = 0;
    return s->pipe_rc;
}

store_rc_t pg_pipe_leave(pg_store_t *s)
{
    if (!s->piped) return STORE_OK;
    store_rc_t rc = pg_conn_ok(s) ? pipe_collect(s) : STORE_UNAVAILABLE;
    if (pg_conn_ok(s) && PQexitPipelineMode(s->conn) != 1 && rc == STORE_OK) rc = STORE_ERROR;
    s->piped = false;
    return rc;
}

store_rc_t pg_pipe_end(pg_store_t *s)
{
    store_rc_t rc = pg_pipe_leave(s);
    if (rc == STORE_OK) rc = s->pipe_rc;
    s->pipe_rc = STORE_OK;
    return rc;
}

/* Prepares statement id and enters pipeline mode. */
static store_rc_t pipe_enter(pg_store_t *s, enum pg_stmt_id id)
{
    char name[PG_STMT_NAME_MAX];
    PGresult *r = pg_prepare(s, id, name);
    if (r != NULL) {
        s->pipe_rc = pg_map_error(s, r);
        PQclear(r);
        return s->pipe_rc;
    }
    if (PQenterPipelineMode(s->conn) != 1) return s->pipe_rc = STORE_ERROR;
    s->piped = true;
    return STORE_OK;
}

store_rc_t pg_pipe_send(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p)
{
    if (s->pipe_rc != STORE_OK) return s->pipe_rc;
    if (!pg_conn_ok(s)) return s->pipe_rc = STORE_UNAVAILABLE;
    if (!s->piped) {
        store_rc_t rc = pipe_enter(s, id);
        if (rc != STORE_OK) return rc;
    } else if (!s->prepared[id]) {
        /* Statements are prepared outside pipeline mode. */
        store_rc_t rc = pg_pipe_leave(s);
        return rc != STORE_OK ? rc : pg_pipe_send(s, id, p);
    }
    char name[PG_STMT_NAME_MAX];
    PQclear(pg_prepare(s, id, name)); /* prepared already: this only names it */
    if (PQsendQueryPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 1) != 1)
        return s->pipe_rc = pg_map_error(s, NULL);
    if (++s->pipe_queued >= PIPE_SYNC) return pipe_collect(s);
    return STORE_OK;
}
