/*
 * async.c: reads that complete later, on the event loop of the thread that
 * owns the store (store_set_loop), pipelined on its one connection.
 *
 * A server thread's connection is kept in libpq's non-blocking pipeline
 * mode with its socket watched by the thread's loop. A read is queued in
 * libpq at once (its statement prepared first, in the same pipeline, when
 * this connection has not prepared it yet) and the call returns
 * STORE_PENDING. The reads the thread starts in one turn of its loop form
 * a batch: a timer that fires at the end of the turn sends them with one
 * Sync, so the thread writes to the socket once per turn, and the server
 * answers the batch at once instead of read by read. Nothing waits for an
 * answer before the next batch goes. When the socket turns readable the
 * answers are taken in the order the reads were sent, and each read's rows
 * go to its callbacks, then done runs.
 *
 * Each statement still sees one snapshot of its own (READ COMMITTED takes
 * one per statement, in a batch too). A reader (store_reader_open) whose
 * snapshot has begun is the exception: its connection starts with BEGIN
 * ISOLATION LEVEL REPEATABLE READ READ ONLY, before its session's set-up,
 * and that transaction, which no Sync ends, holds every read it makes until
 * the connection is closed (pg_async_snapshot_end). Such a connection is
 * made once: when it is lost, its reads fail instead of going again.
 *
 * The find reads (store/find.c's statements, made at run time for each
 * combination of filters and sort) are sent unnamed, with their SQL, and
 * planned for their parameters: the session's generic plans suit the
 * fixed reads, whose best plan never depends on the values, but not a
 * find, whose best plan does (a term few leads hold is found through the
 * trigram index, one most hold by walking the sort's index). So a find
 * goes between two settings of plan_cache_mode local to its batch's
 * transaction (which ends with the batch's Sync, whatever fails), and
 * the reads after it in the batch are planned as before. A read that fails makes the server
 * skip the rest of its batch (PGRES_PIPELINE_ABORTED): those reads are
 * sent again in the next batch, not failed (unless it failed for a reason
 * of the moment, below).
 *
 * Sections:
 *   reads              the queue, kept entries, completing
 *   the connection     connecting without blocking, setting it up, losing it
 *   sending            a read's messages, batches, flushing
 *   answers            taking results in order
 *   the interface      pg_read_rows(_sql), pg_set_loop, pg_close, pg_async_close
 *
 * Failures. A connection that dies takes no read with it: each read in
 * flight is sent again once on a new connection, made at once (a read
 * changes nothing, so nothing can happen twice), as a blocking read is
 * tried again (txn.c); a read that was already on its second connection
 * fails with STORE_UNAVAILABLE. Connections are made without blocking
 * (PQconnectStart, then PQconnectPoll each time the loop says the socket
 * is ready), bounded by connect_timeout with a timer, and reads arriving
 * meanwhile wait in order. A failed attempt fails them all with
 * STORE_UNAVAILABLE and starts conn.c's back-off, during which reads are
 * refused at once, without a round trip. So the loop never waits for the
 * database. A read never completes inside the call that started it: a
 * failure found there (a send refused) is dealt with from the loop.
 *
 * A read that waits out lock_timeout (a table locked by VACUUM FULL, an
 * ALTER TABLE, a LOCK TABLE) fails with STORE_UNAVAILABLE, and so, at
 * once, does every read queued behind it on the connection, in its batch
 * or in later ones (answer_behind): the server runs them one after the
 * other, so each would wait out the same lock in its turn. Their answers
 * still come, in order, and are dropped. Reads sent after that answer
 * are tried as usual; if the lock is still held, the next read ahead of
 * them to wait it out answers them too, so no read waits much longer than
 * lock_timeout.
 *
 * The API's reads are bounded by --read-time (pg_read_deadline): the
 * session of a thread's connection gets it as its statement_timeout, in a
 * batch of its own, so that no failure in a batch undoes it, and the
 * server times each statement of a batch from its own start (its timer
 * starts again at each Execute of a pipeline: six pipelined statements of
 * 30 ms each all pass a 50 ms statement_timeout on PostgreSQL 15). A read
 * cancelled at it (57014) completes with STORE_TOO_SLOW; the reads the
 * server then skipped in its batch go again, as after any failed read, and
 * the Sync ends the aborted batch, so the connection serves on. The same
 * setting makes lock_timeout a tenth shorter (5 s at most), so that a read
 * waiting for a lock ends as above (STORE_UNAVAILABLE, with every read
 * queued behind it) rather than cancelled as a slow read: then each read
 * behind it waited up to --read-time for the lock in its turn, and a
 * thread's connection got through one read a second for as long as an
 * ALTER TABLE held the table (a review).
 *
 * A server that stops answering while its host still acknowledges (a hung
 * backend: TCP's keepalives and tcp_user_timeout never fire) is given up
 * like a lost one once the reads sent on it go unanswered for
 * pg_silence_ms (time_silence).
 *
 * The connection is watched for reading even when idle, so a server that
 * goes away is noticed at once, not by the next request. Its session
 * plans every statement once (pg_reader_session_sql): re-planning a list
 * at each execution would cost more than running it.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres/pg_int.h"

/* Ended entries kept for reuse, at most (a thread's reads in flight are
 * about as many as its clients waiting). */
#define SPARE_MAX 64
/* How many connections a read is sent on at most. */
#define SENDS_MAX 2
/* How many times a read is sent again after the server skipped it (a read
 * before it in its batch failed) before it fails too: a bound should every
 * batch start with a failing read. */
#define SKIPS_MAX 8

/* What an entry of the queue stands for. */
enum kind {
    READ,  /* a caller's read */
    SETUP, /* the session's settings (pg_reader_session_sql): nobody's read */
    SYNC   /* the end of a batch */
};

/* Where an entry is in the answers the server sends for it. */
enum stage {
    UNSENT,  /* waiting for a connection, or for the next batch */
    CUSTOM,  /* a find's custom plans turned on: a result, then NULL */
    PREPARE, /* its statement's preparation: a result, then NULL */
    EXEC,    /* the statement: a result, then NULL; a SYNC: PGRES_PIPELINE_SYNC */
    GENERIC, /* a find's custom plans turned off again: a result, then NULL */
    ENDED
};

struct pg_aread {
    pg_aread_t *next;
    enum kind kind;
    enum stage stage;
    enum pg_stmt_id id;
    char *sql;   /* a find: its statement, sent unnamed (owned); NULL: id's;
                  * a SETUP: its statement (owned); NULL: the session's */
    pg_args_t p; /* its values point into text */
    char *text;  /* owned copies of the values, or NULL */
    pg_rows_fn fn;
    pg_rows_t to;
    store_async_t async;
    int sends;        /* connections it was sent on */
    int skips;        /* times the server skipped it */
    bool skipped;     /* the server skipped it: a read before it in its batch failed */
    bool answered;    /* its caller was answered already (answer_behind): its answers go nowhere */
    PGresult *result; /* the statement's */
    store_rc_t rc;    /* the first failure among its answers */
};

static void lose(pg_store_t *s);
static void on_io(void *arg, unsigned events);
static void on_kick(void *arg);

/* Every callback of the loop runs between these: a read's done may close
 * its store (an export's reader, after its last page), which is then freed
 * only when the loop's callback that ran it is over, never under it. */
static void loop_enter(pg_store_t *s)
{
    s->aio.depth++;
}

static void loop_leave(pg_store_t *s)
{
    if (--s->aio.depth == 0 && s->aio.closing) pg_close_now(s);
}

/* --- reads ------------------------------------------------------------------ */

static pg_aread_t *entry_new(pg_async_t *a, enum kind kind)
{
    pg_aread_t *r = a->spare;
    if (r != NULL) {
        a->spare = r->next;
        a->nspare--;
    } else if ((r = malloc(sizeof *r)) == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->kind = kind;
    return r;
}

static void entry_free(pg_async_t *a, pg_aread_t *r)
{
    PQclear(r->result);
    free(r->text);
    free(r->sql);
    if (a->nspare >= SPARE_MAX) {
        free(r);
        return;
    }
    r->next = a->spare;
    a->spare = r;
    a->nspare++;
}

static void append(pg_async_t *a, pg_aread_t *r)
{
    r->next = NULL;
    if (a->tail != NULL)
        a->tail->next = r;
    else
        a->head = r;
    a->tail = r;
}

/* Takes every entry out of the queue; returns them, in order. */
static pg_aread_t *take_all(pg_async_t *a)
{
    pg_aread_t *list = a->head;
    a->head = a->tail = NULL;
    return list;
}

/* Makes read r as if never sent, for the next batch or connection. */
static void unsend(pg_aread_t *r)
{
    PQclear(r->result);
    r->result = NULL;
    r->stage = UNSENT;
    r->skipped = false;
    r->rc = STORE_OK;
}

/* Ends read r (out of the queue) with rc: its rows go to its callbacks
 * when rc is STORE_OK, then done runs; a read answered already just goes. */
static void complete(pg_store_t *s, pg_aread_t *r, store_rc_t rc)
{
    if (r->answered) {
        entry_free(&s->aio, r);
        return;
    }
    if (rc == STORE_OK) rc = r->result != NULL ? r->fn(r->result, &r->to) : STORE_ERROR;
    store_async_t async = r->async;
    entry_free(&s->aio, r);
    async.done(async.ctx, rc);
}

/* Answers 503 at once every read queued behind entry r, whose statement
 * has just waited out lock_timeout: they were sent before that answer
 * came, so each would wait for the same lock in its turn, lock_timeout
 * after the one before it (a review saw the ninth answered after 45 s).
 * Their entries stay where they are, for their answers, which the server
 * sends whatever comes of them and which keep their places in the
 * pipeline, but go nowhere. The reads sent from now on are tried as usual:
 * the lock may be gone. A read answered here starts no other (its done
 * may start reads, which join the queue's end, after last). */
static void answer_behind(pg_store_t *s, pg_aread_t *r)
{
    pg_aread_t *last = s->aio.tail;
    for (pg_aread_t *q = r; q != last;) {
        q = q->next;
        if (q->kind != READ || q->answered) continue;
        q->answered = true;
        q->async.done(q->async.ctx, STORE_UNAVAILABLE);
    }
}

/* Ends every read of list with rc; the other entries just go. */
static void fail_all(pg_store_t *s, pg_aread_t *list, store_rc_t rc)
{
    while (list != NULL) {
        pg_aread_t *r = list;
        list = r->next;
        if (r->kind == READ)
            complete(s, r, rc);
        else
            entry_free(&s->aio, r);
    }
}

/* --- the connection ------------------------------------------------------ */

/* Watches the connection's socket for events (STORE_IO_READ: always from
 * now; STORE_IO_WRITE: once) on a new watch: while connecting, libpq may
 * move to another socket between steps. False when out of memory. */
static bool rewatch(pg_store_t *s, unsigned events)
{
    pg_async_t *a = &s->aio;
    if (a->watch != NULL) a->loop.unwatch(a->watch);
    a->watch = a->loop.watch(a->loop.ctx, PQsocket(s->conn), on_io, s);
    if (a->watch == NULL) return false;
    if (events & STORE_IO_READ) a->loop.read(a->watch, true);
    if (events & STORE_IO_WRITE) a->loop.write(a->watch);
    return true;
}

static void stop_timer(pg_async_t *a, store_timer_t **t)
{
    if (*t != NULL) a->loop.timer_stop(*t);
    *t = NULL;
}

/* Closes the connection, whatever its state; the entries stay queued. */
static void drop(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    if (a->watch != NULL) a->loop.unwatch(a->watch);
    a->watch = NULL;
    stop_timer(a, &a->deadline);
    stop_timer(a, &a->kick);
    stop_timer(a, &a->silence);
    if (s->conn != NULL) PQfinish(s->conn);
    s->conn = NULL;
    a->state = AIO_DOWN;
    a->broken = false;
    a->batched = 0;
    a->batch_unavailable = false;
    a->batch_slow = false;
    a->told_ms = 0; /* a new connection starts without the read bound */
}

/* Why connection c failed (libpq's msg), as logged: never a password. */
static void connect_error(PGconn *c, const char *msg, char *err, size_t errsz)
{
    char why[PG_MSG_MAX];
    pg_message(msg, why, sizeof why);
    if (c != NULL) store_text_hide(why, sizeof why, PQpass(c));
    snprintf(err, errsz, "cannot connect to PostgreSQL: %s", why);
}

/* A connection attempt failed (msg: libpq's reason): every read waiting
 * for it fails, and the back-off starts. */
static void connect_failed(pg_store_t *s, const char *msg)
{
    char err[PG_MSG_MAX + 64];
    connect_error(s->conn, msg, err, sizeof err);
    drop(s);
    pg_connect_failed(s, err);
    fail_all(s, take_all(&s->aio), STORE_UNAVAILABLE);
}

static void on_deadline(void *arg)
{
    pg_store_t *s = arg;
    s->aio.deadline = NULL;
    loop_enter(s);
    connect_failed(s, "timeout expired");
    loop_leave(s);
}

/* Starts a connection without waiting for it; false (logged, back-off
 * started) when it cannot even start. The queue is the caller's. */
static bool start_connect(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    int timeout_ms = 0;
    PGconn *c = pg_connect_start(s, &timeout_ms);
    if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
        char err[PG_MSG_MAX + 64];
        connect_error(c, c != NULL ? PQerrorMessage(c) : "out of memory", err, sizeof err);
        PQfinish(c);
        pg_connect_failed(s, err);
        return false;
    }
    s->conn = c;
    memset(s->prepared, 0, sizeof s->prepared);
    a->state = AIO_CONNECTING;
    a->spent = a->snapshot;
    /* Before the first PQconnectPoll, libpq waits to write (connect(2)). */
    bool ok = rewatch(s, STORE_IO_WRITE);
    if (ok && timeout_ms > 0)
        ok = (a->deadline = a->loop.timer_start(a->loop.ctx, (uint32_t)timeout_ms, on_deadline, s)) != NULL;
    if (!ok) {
        drop(s);
        pg_connect_failed(s, "cannot connect to PostgreSQL: out of memory");
    }
    return ok;
}

static bool send_one(pg_store_t *s, pg_aread_t *r);
static bool send_unsent(pg_store_t *s);
static bool end_batch(pg_store_t *s);

/* A set-up entry (sql NULL: the session's settings); NULL when out of
 * memory. */
static pg_aread_t *setup_new(pg_async_t *a, const char *sql)
{
    pg_aread_t *setup = entry_new(a, SETUP);
    if (setup == NULL || (sql != NULL && (setup->sql = strdup(sql)) == NULL)) {
        if (setup != NULL) entry_free(a, setup);
        return NULL;
    }
    return setup;
}

/* Puts a set-up entry (sql NULL: the session's settings) last in the
 * queue; false when out of memory. */
static bool append_setup(pg_async_t *a, const char *sql)
{
    pg_aread_t *setup = setup_new(a, sql);
    if (setup == NULL) return false;
    append(a, setup);
    return true;
}

/* Puts the entries of list (take_all's) back at the end of the queue, in
 * order. */
static void append_all(pg_async_t *a, pg_aread_t *list)
{
    while (list != NULL) {
        pg_aread_t *r = list;
        list = r->next;
        append(a, r);
    }
}

/* The statement that bounds the session's statements at the read time. */
static void read_timeout_sql(const pg_async_t *a, char *sql, size_t sqlsz)
{
    /* Strictly shorter: of two timers due at once PostgreSQL reports the
     * statement's, which began first. */
    int lock_ms = a->read_ms - (a->read_ms >= 10 ? a->read_ms / 10 : 1);
    if (lock_ms > PG_LOCK_TIMEOUT_MS) lock_ms = PG_LOCK_TIMEOUT_MS;
    snprintf(sql, sqlsz, PG_READ_TIMEOUT_FMT, a->read_ms, lock_ms < 1 ? 1 : lock_ms);
}

/* Makes the connection a thread's read connection (non-blocking, in
 * pipeline mode, watched for reading) and sends the session's set-up (with
 * the read time's statement_timeout once the API has given one) as a batch
 * of its own, then every read that waited for it, in order, as the next;
 * false when that cannot be done. The set-up's batch commits whatever
 * becomes of the reads: settings made in the implicit transaction of a
 * batch whose read then fails (one stopped at statement_timeout, say)
 * would be undone with it. A reader's snapshot begins first: its
 * transaction outlives the batches' Syncs, which end only implicit ones. */
static bool start_session(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    if (PQsetnonblocking(s->conn, 1) != 0 || PQenterPipelineMode(s->conn) != 1 || !rewatch(s, STORE_IO_READ))
        return false;
    a->state = AIO_READY;
    a->silence_ms = pg_silence_ms(s->conn);
    /* The reads waiting go after the set-up's batch and its Sync, whose
     * entry end_batch appends to the queue. */
    pg_aread_t *waiting = take_all(a);
    char sql[sizeof PG_READ_TIMEOUT_FMT + 32];
    read_timeout_sql(a, sql, sizeof sql);
    bool ok = (!a->snapshot || append_setup(a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) &&
              append_setup(a, NULL) && (a->read_ms == 0 || append_setup(a, sql)) && send_unsent(s) &&
              end_batch(s);
    a->told_ms = ok ? a->read_ms : 0;
    append_all(a, waiting);
    return ok && send_unsent(s) && end_batch(s);
}

/* Tells a ready connection's session the read time the API gave since it
 * was set up (a thread's connection is set up before its first request):
 * the reads queued so far end their batch, and the setting goes alone in
 * the next (see start_session), so that it holds for every read after it
 * whatever fails. False when that cannot be done: the connection is then
 * broken. */
static bool tell_read_time(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    char sql[sizeof PG_READ_TIMEOUT_FMT + 32];
    read_timeout_sql(a, sql, sizeof sql);
    pg_aread_t *setup = setup_new(a, sql);
    if (setup == NULL) return false;
    if (!end_batch(s)) {
        entry_free(a, setup);
        return false;
    }
    a->told_ms = a->read_ms;
    append(a, setup);
    return send_one(s, setup) && end_batch(s);
}

/* The connection is made. */
static void connected(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    stop_timer(a, &a->deadline);
    if (!start_session(s)) {
        connect_failed(s, PQerrorMessage(s->conn));
        return;
    }
    pg_connect_succeeded(s);
}

/* One step of the connection, when its socket is ready as last asked. */
static void connect_step(pg_store_t *s)
{
    switch (PQconnectPoll(s->conn)) {
    case PGRES_POLLING_READING:
        if (!rewatch(s, STORE_IO_READ)) connect_failed(s, "out of memory");
        return;
    case PGRES_POLLING_WRITING:
        if (!rewatch(s, STORE_IO_WRITE)) connect_failed(s, "out of memory");
        return;
    case PGRES_POLLING_OK:
        connected(s);
        return;
    default:
        connect_failed(s, PQerrorMessage(s->conn));
        return;
    }
}

/* The connection is gone, or can no longer be trusted: the reads sent on
 * it go again on a new one (made at once, as a blocking read is tried
 * again), except those already on their second, and a snapshot's, which a
 * new connection would read from another snapshot. */
static void lose_why(pg_store_t *s, const char *why)
{
    pg_async_t *a = &s->aio;
    char msg[PG_MSG_MAX];
    if (why != NULL)
        snprintf(msg, sizeof msg, "%s", why);
    else if (pg_conn_ok(s) && !a->broken)
        snprintf(msg, sizeof msg, "answers out of step with the reads sent");
    else
        pg_message(PQerrorMessage(s->conn), msg, sizeof msg);
    pg_lost(s, msg); /* once per outage */
    drop(s);
    pg_aread_t *failed = NULL, **failed_tail = &failed;
    for (pg_aread_t *r = take_all(a), *next; r != NULL; r = next) {
        next = r->next;
        if (r->kind != READ || r->answered || r->sends >= SENDS_MAX || a->snapshot) {
            r->next = NULL;
            *failed_tail = r;
            failed_tail = &r->next;
            continue;
        }
        unsend(r);
        append(a, r);
    }
    if (a->head != NULL && !start_connect(s)) *failed_tail = take_all(a);
    fail_all(s, failed, STORE_UNAVAILABLE);
}

static void lose(pg_store_t *s)
{
    lose_why(s, NULL);
}

/* The server answered none of the reads sent for silence_ms: the
 * connection is given up, as one whose host vanished is. */
static void on_silence(void *arg)
{
    pg_store_t *s = arg;
    s->aio.silence = NULL;
    loop_enter(s);
    char why[96];
    snprintf(why, sizeof why, "no answer for %d ms: the connection is given up", s->aio.silence_ms);
    lose_why(s, why);
    loop_leave(s);
}

/* Times the server's silence while reads are sent on the connection and
 * unanswered; from now when restart (an answer came), else only if not
 * timed yet. */
static void time_silence(pg_store_t *s, bool restart)
{
    pg_async_t *a = &s->aio;
    bool waiting = a->state == AIO_READY && a->head != NULL && a->head->stage != UNSENT;
    if (a->silence != NULL && (restart || !waiting)) stop_timer(a, &a->silence);
    if (waiting && a->silence == NULL && a->silence_ms > 0)
        a->silence = a->loop.timer_start(a->loop.ctx, (uint32_t)a->silence_ms, on_silence, s);
}

/* Asks for on_kick at the end of this turn of the loop. Without memory
 * for a timer, a broken connection is still noticed through its socket;
 * a batch waits for the next read's kick. */
static void kick(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    if (a->kick == NULL) a->kick = a->loop.timer_start(a->loop.ctx, 0, on_kick, s);
}

/* The connection failed inside a call, where no read may complete: it is
 * lost from the loop, at the end of this turn. */
static void broken(pg_store_t *s)
{
    s->aio.broken = true;
    kick(s);
}

/* --- sending ------------------------------------------------------------------ */

/* Queues a find's statement, unnamed and planned for its parameters (see
 * the top of this file). */
static bool send_find(PGconn *c, pg_aread_t *r)
{
    r->stage = CUSTOM;
    return PQsendQueryParams(c, pg_custom_plans_sql, 0, NULL, NULL, NULL, NULL, 1) == 1 &&
           PQsendQueryParams(c, r->sql, r->p.n, NULL, r->p.v, r->p.len, r->p.fmt, 1) == 1 &&
           PQsendQueryParams(c, pg_generic_plans_sql, 0, NULL, NULL, NULL, NULL, 1) == 1;
}

/* Queues entry r in libpq (which sends nothing before the batch ends): a
 * read's statement, prepared first when this connection lacks it, or the
 * session's set-up. False when libpq refuses (the connection is broken). */
static bool send_one(pg_store_t *s, pg_aread_t *r)
{
    PGconn *c = s->conn;
    s->aio.batched++;
    r->stage = EXEC;
    if (r->kind == SETUP)
        return PQsendQueryParams(c, r->sql != NULL ? r->sql : pg_reader_session_sql, 0, NULL, NULL, NULL,
                                 NULL, 1) == 1;
    r->sends++;
    if (r->sql != NULL) return send_find(c, r);
    char name[PG_STMT_NAME_MAX];
    pg_stmt_name(r->id, name);
    if (!s->prepared[r->id]) {
        if (PQsendPrepare(c, name, pg_stmt_sql[r->id], 0, NULL) != 1) return false;
        s->prepared[r->id] = true; /* for the reads sent after it; undone if it fails */
        r->stage = PREPARE;
    }
    return PQsendQueryPrepared(c, name, r->p.n, r->p.v, r->p.len, r->p.fmt, 1) == 1;
}

/* Pushes what libpq holds to the socket; the rest when it is writable.
 * False (the connection is broken) when it cannot. */
static bool flush(pg_store_t *s)
{
    int rc = PQflush(s->conn);
    if (rc > 0) s->aio.loop.write(s->aio.watch);
    return rc >= 0;
}

/* Queues every entry waiting to be sent, in order. */
static bool send_unsent(pg_store_t *s)
{
    for (pg_aread_t *r = s->aio.head; r != NULL; r = r->next)
        if (r->stage == UNSENT && !send_one(s, r)) return false;
    return true;
}

/* Ends the batch: a Sync after the entries queued since the last one, and
 * everything sent. */
static bool end_batch(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    if (a->batched == 0) return true;
    pg_aread_t *sync = entry_new(a, SYNC);
    if (sync == NULL) return false;
    if (PQpipelineSync(s->conn) != 1) {
        entry_free(a, sync);
        return false;
    }
    sync->stage = EXEC;
    append(a, sync);
    a->batched = 0;
    time_silence(s, false);
    return flush(s);
}

static void on_kick(void *arg)
{
    pg_store_t *s = arg;
    s->aio.kick = NULL;
    loop_enter(s);
    if (s->aio.broken || !end_batch(s)) lose(s);
    loop_leave(s);
}

/* --- answers -------------------------------------------------------------------- */

/* The SQLSTATE of a failed result, or "". */
static const char *sqlstate(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL ? state : "";
}

/* True when res is the server ending the session (a connection failure,
 * an administrator's pg_terminate_backend, a shutdown) or the connection
 * is gone: not the read's answer, but a lost connection. */
static bool session_ends(const pg_store_t *s, const PGresult *res)
{
    const char *state = sqlstate(res);
    if (!pg_conn_ok(s) || state[0] == '\0') return true;
    return strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0;
}

/* Notes a failed result of read r. Whether this connection has prepared
 * a statement is known only once the batch that prepared it is answered,
 * and a read sent meanwhile may have guessed wrong; both guesses heal:
 *   - PGRES_PIPELINE_ABORTED: the server skipped r, since a read before it
 *     in its batch failed: r goes again (and a skipped preparation is not
 *     made);
 *   - a preparation refused because the statement exists (42P05): it is
 *     prepared; r's statement, skipped after it, goes again without;
 *   - a statement that does not exist (26000): its preparation was in a
 *     batch the server skipped: r goes again, prepared first;
 *   - anything else is r's answer (the first failure counts); a lock
 *     wait past lock_timeout also answers the reads behind r. */
static void note_failure(pg_store_t *s, pg_aread_t *r, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    bool preparing = r->stage == PREPARE;
    bool named = r->sql == NULL; /* a find's statement is no prepared one */
    if (st == PGRES_PIPELINE_ABORTED) {
        if (preparing) s->prepared[r->id] = false;
        r->skipped = true;
    } else if (r->rc != STORE_OK) {
        return;
    } else if (preparing && strcmp(sqlstate(res), "42P05") == 0) {
        s->prepared[r->id] = true;
    } else if (named && !preparing && strcmp(sqlstate(res), "26000") == 0) {
        s->prepared[r->id] = false;
        r->skipped = true;
    } else if (strcmp(sqlstate(res), PG_QUERY_CANCELED) == 0 && s->aio.told_ms > 0) {
        /* Stopped at the read time's statement_timeout: the client is
         * told (503 "Read Timeout", as SQLite's), not the log, and the
         * reads the server skipped behind it go again, since theirs is no
         * failure of the moment. */
        if (preparing) s->prepared[r->id] = false;
        r->rc = STORE_TOO_SLOW;
        s->aio.batch_slow = true;
    } else {
        if (preparing) s->prepared[r->id] = false;
        r->rc = pg_map_error(s, res);
        if (r->rc == STORE_UNAVAILABLE) s->aio.batch_unavailable = true;
        if (strcmp(sqlstate(res), "55P03") == 0) answer_behind(s, r); /* lock_not_available */
    }
}

/* Where read r is once a statement's results have all come. */
static enum stage next_stage(const pg_aread_t *r)
{
    switch (r->stage) {
    case CUSTOM:
    case PREPARE:
        return EXEC;
    case EXEC:
        return r->kind == READ && r->sql != NULL ? GENERIC : ENDED; /* a find's */
    default:
        return ENDED;
    }
}

/* Takes the next result (res, NULL included) of r, the oldest entry in
 * flight. False when it is not what r can get, or the server is ending
 * the session: the connection is then lost. */
static bool take(pg_store_t *s, pg_aread_t *r, PGresult *res)
{
    if (r->kind == SYNC) {
        bool synced = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        r->stage = ENDED;
        return synced;
    }
    if (res == NULL) { /* the end of this statement's results */
        r->stage = next_stage(r);
        return true;
    }
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || (st == PGRES_TUPLES_OK && r->stage != PREPARE);
    if (st == PGRES_PIPELINE_SYNC || (ok && r->stage == EXEC && r->result != NULL)) {
        PQclear(res);
        return false;
    }
    if (!ok && st != PGRES_PIPELINE_ABORTED && session_ends(s, res)) {
        char msg[PG_MSG_MAX];
        pg_message(PQresultErrorMessage(res), msg, sizeof msg);
        pg_lost(s, msg);
        PQclear(res);
        return false;
    }
    if (ok && r->stage == EXEC) {
        r->result = res;
        return true;
    }
    if (!ok) note_failure(s, r, res);
    PQclear(res);
    return true;
}

/* Ends the oldest entry once all its answers are in: a read completes, or
 * goes again in the next batch when the server skipped it (unless a read
 * before it failed for a reason of the moment: then it fails too, 503, as
 * the reviewer's locked table showed: each batch waited out lock_timeout
 * again, and a read 9 of them); a read answered already (answer_behind)
 * just goes. False when the connection has been lost meanwhile (its
 * set-up failed). */
static bool end_head(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    pg_aread_t *r = a->head;
    a->head = r->next;
    if (a->head == NULL) a->tail = NULL;
    if (r->kind == SYNC) a->batch_unavailable = a->batch_slow = false;
    /* A skip behind a read stopped at the read time is not counted: that
     * read is answered, and twelve slow reads sent at once ahead of a cheap
     * one (another app's) made it a 503 after its ninth skip. */
    if (r->kind == READ && !r->answered && r->rc == STORE_OK && r->skipped && !a->batch_unavailable &&
        (a->batch_slow || ++r->skips <= SKIPS_MAX)) {
        unsend(r);
        r->sends--; /* the same connection: no new try */
        append(a, r);
        if (!send_one(s, r)) broken(s);
        kick(s);
        return true;
    }
    if (r->kind == READ) {
        complete(s, r, r->rc == STORE_OK && r->skipped ? STORE_UNAVAILABLE : r->rc);
        return true;
    }
    bool ok = r->kind == SYNC || (r->rc == STORE_OK && !r->skipped);
    entry_free(a, r);
    if (!ok) {
        store_log("crmd: postgres: cannot set up the PostgreSQL session");
        lose(s);
    }
    return ok;
}

/* Takes every answer that has arrived, in order. A read's callbacks may
 * start other reads, which join the queue's end. */
static void take_answers(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    bool took = false;
    for (;;) {
        if (a->state != AIO_READY || a->broken || a->closing) return;
        if (PQstatus(s->conn) == CONNECTION_BAD) {
            lose(s);
            return;
        }
        pg_aread_t *r = a->head;
        if (r == NULL || r->stage == UNSENT || PQisBusy(s->conn)) {
            time_silence(s, took);
            return;
        }
        if (!take(s, r, PQgetResult(s->conn))) {
            lose(s);
            return;
        }
        took = true;
        if (r->stage == ENDED && !end_head(s)) return;
    }
}

static void io_step(pg_store_t *s, unsigned events)
{
    pg_async_t *a = &s->aio;
    if (a->state == AIO_CONNECTING) {
        connect_step(s);
        return;
    }
    if (a->broken || ((events & STORE_IO_WRITE) && !flush(s)) ||
        ((events & STORE_IO_READ) && PQconsumeInput(s->conn) != 1)) {
        lose(s);
        return;
    }
    take_answers(s);
}

static void on_io(void *arg, unsigned events)
{
    pg_store_t *s = arg;
    loop_enter(s);
    io_step(s, events);
    loop_leave(s);
}

/* --- the interface ---------------------------------------------------------------- */

store_rc_t pg_rows_one(const PGresult *r, const pg_rows_t *to)
{
    if (PQntuples(r) == 0) return STORE_NOT_FOUND;
    to->emit(r, 0, to->cb, to->ctx);
    return STORE_OK;
}

/* Without a loop or an async: at once, through txn.c. */
static store_rc_t read_now(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, pg_rows_fn fn,
                           const pg_rows_t *to)
{
    PGresult *r;
    store_rc_t rc = pg_read(s, id, p, &r);
    if (rc == STORE_OK) rc = fn(r, to);
    PQclear(r);
    return rc;
}

/* Queues a read of statement id (sql: a find's, sent unnamed) for the
 * loop: STORE_PENDING, or a refusal at once. */
static store_rc_t start_read(pg_store_t *s, enum pg_stmt_id id, const char *sql, const pg_params_t *p,
                             pg_rows_fn fn, const pg_rows_t *to, const store_async_t *async)
{
    pg_async_t *a = &s->aio;
    assert(s->base.batch == BATCH_NONE && !s->in_tx && !s->piped);
    /* During the back-off after a failed attempt, or when a snapshot's
     * connection is gone: refused at once. */
    if (a->state == AIO_DOWN && (a->spent || !pg_may_connect(s) || !start_connect(s)))
        return STORE_UNAVAILABLE;
    pg_aread_t *r = entry_new(a, READ);
    if (r == NULL) return STORE_UNAVAILABLE;
    if (!pg_params_copy(&r->p, p, &r->text) || (sql != NULL && (r->sql = strdup(sql)) == NULL)) {
        entry_free(a, r);
        return STORE_UNAVAILABLE;
    }
    r->id = id;
    r->fn = fn;
    r->to = *to;
    r->async = *async;
    if (a->state == AIO_READY && !a->broken && a->read_ms != a->told_ms && !tell_read_time(s)) broken(s);
    append(a, r);
    if (a->state == AIO_READY && !a->broken) {
        if (!send_one(s, r)) broken(s);
        kick(s); /* the batch ends with this turn of the loop */
    }
    return STORE_PENDING;
}

store_rc_t pg_read_rows(pg_store_t *s, enum pg_stmt_id id, const pg_params_t *p, pg_rows_fn fn,
                        const pg_rows_t *to, const store_async_t *async)
{
    if (async == NULL || !s->aio.on) return read_now(s, id, p, fn, to);
    return start_read(s, id, NULL, p, fn, to, async);
}

store_rc_t pg_read_rows_sql(pg_store_t *s, const char *sql, const pg_params_t *p, pg_rows_fn fn,
                            const pg_rows_t *to, const store_async_t *async)
{
    if (async != NULL && s->aio.on) return start_read(s, Q__COUNT, sql, p, fn, to, async);
    int id = pg_dyn_id(s, sql);
    return id < 0 ? STORE_ERROR : read_now(s, (enum pg_stmt_id)id, p, fn, to);
}

/* The bound never passes the time left (a bound rounded up to 10 ms let
 * --read-time 23ms run a statement for 30, review rv100), and it is kept
 * while it is less than 10 ms under it: the time left when a read begins
 * wavers by a millisecond or so around --read-time, and each change is
 * told to the session again, in a batch of its own. */
int pg_read_ms(int cur_ms, int64_t left_ns)
{
    int64_t ms = left_ns / 1000000;
    if (ms < 1) ms = 1;
    if (ms > INT_MAX) ms = INT_MAX;
    if (cur_ms > 0 && cur_ms <= ms && ms - cur_ms < 10) return cur_ms;
    return (int)ms;
}

/* A server thread's read connection bounds each statement at the read
 * time the API gives with its reads (--read-time): the deadline, taken
 * as a duration when a read begins, becomes the session's
 * statement_timeout, told once (start_session, tell_read_time) rather
 * than with each read, and a statement cancelled at it is answered
 * STORE_TOO_SLOW (note_failure). Unlike SQLite's reads, PostgreSQL's do
 * not hold the loop, but they hold the thread's one connection: the
 * server runs its reads one after the other, so a slow one delays every
 * read of every app queued behind it. The end of a read (0) keeps the
 * bound for the next. A reader's (an export's, which has --export-time)
 * and a store without a loop (the writer's, the webhook sender's, the
 * purge's, a command's) are never bounded. */
void pg_read_deadline(store_t *base, int64_t deadline_ns)
{
    pg_store_t *s = pg_of(base);
    pg_async_t *a = &s->aio;
    if (!a->on || a->snapshot || deadline_ns == 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    a->read_ms = pg_read_ms(a->read_ms, deadline_ns - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
}

void pg_set_loop(store_t *base, const store_loop_t *loop)
{
    pg_store_t *s = pg_of(base);
    pg_async_t *a = &s->aio;
    assert(!a->on && !s->in_tx && !s->piped && s->base.batch == BATCH_NONE);
    a->on = true;
    a->loop = *loop;
    a->state = AIO_DOWN;
    /* The connection the thread opened (and read its revocations on) is
     * kept; failing that, the first read makes a new one. */
    if (pg_conn_ok(s) && start_session(s)) return;
    drop(s);
    fail_all(s, take_all(a), STORE_UNAVAILABLE); /* only the set-up, if anything */
}

/* Closes the connection with what is left in its queue: set-ups, Syncs
 * and reads answered already (answer_behind) still unanswered by the
 * server, never a pending read (store.h: none may be). */
static void drop_idle(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    for (pg_aread_t *r = take_all(a), *next; r != NULL; r = next) {
        next = r->next;
        assert(r->kind != READ || r->answered);
        entry_free(a, r);
    }
    drop(s);
}

void pg_close(store_t *base)
{
    pg_store_t *s = pg_of(base);
    if (s->aio.depth > 0) {
        s->aio.closing = true; /* from a read's done: async.c closes it once that is over */
        return;
    }
    pg_close_now(s);
}

void pg_close_now(pg_store_t *s)
{
    pg_async_close(s);
    if (s->conn != NULL) PQfinish(s->conn);
    free(s->deltas);
    free(s->unit_deltas);
    pg_totals_free(&s->totals);
    pg_totals_free(&s->unit_totals);
    pg_dyn_free(s);
    free(s->conninfo);
    free(s);
}

void pg_async_close(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    if (!a->on) return;
    drop_idle(s);
    while (a->spare != NULL) {
        pg_aread_t *r = a->spare;
        a->spare = r->next;
        free(r);
    }
    a->nspare = 0;
}

store_rc_t pg_async_snapshot_begin(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    assert(a->on && !a->snapshot);
    /* A connection made before (outside a snapshot) goes: the snapshot's
     * must begin with it. */
    drop_idle(s);
    a->snapshot = true;
    a->spent = false;
    return STORE_OK;
}

void pg_async_snapshot_end(pg_store_t *s)
{
    pg_async_t *a = &s->aio;
    assert(a->on);
    drop_idle(s); /* ends the transaction with the connection */
    a->snapshot = a->spent = false;
}
