/*
 * writer.c: group commit.
 *
 * Every acknowledged write must be on disk (synchronous=FULL), and a sync
 * costs about half a millisecond here: one sync per request would cap
 * writes near 2,000/s whatever the CPU. So workers do not write: they
 * validate, then queue the write here. One writer thread takes everything
 * queued, runs it in one transaction (a savepoint per write, so a write
 * that fails is undone alone), commits once, and only then hands each
 * write back to its worker to be answered. Under light load a batch is one
 * write and costs what it did before; under load the sync is shared.
 *
 * The queue is bounded, in writes and in bytes (api.h): a write that
 * finds it full is answered 503 with Retry-After at once, before anything
 * of it ran, so a flood costs the writer at most a full queue and SIGTERM
 * waits at most for that. A write whose client went away before the
 * writer reached it (h2o let go of its request: an HTTP/2 stream reset, a
 * closed connection) is not run: it was never acknowledged and never will
 * be, so dropping it whole is as correct as committing it, and a flood of
 * reset streams costs no commits. A write already running when its client
 * goes is committed. Either way its log line says the client was gone.
 *
 * On SQLite the commit's sync is the syncer's (below): the writer goes on
 * with the next batch while the last one is being synced, and the syncer
 * answers a batch once its sync is done.
 */
#include "api/writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/cache.h"
#include "api/expire.h"
#include "api/idem.h"
#include "api/outbox.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "api/respond.h"
#include "http/metrics.h"
#include "model/timestamp.h"
#include "webhook/sender.h"

/* At most this many writes share one transaction, so that one batch's
 * latency stays bounded. */
#define BATCH_MAX 256
/* A batch that keeps losing deadlocks (PostgreSQL) is tried this many
 * times in all, then its writes are answered 503. */
#define BATCH_ATTEMPTS 3

/* The trash's purge runs between batches, at most this many leads per
 * transaction (a few milliseconds of the write lock), and yields to any
 * write that arrives meanwhile. */
#define PURGE_CHUNK 100

/* The search index is merged between batches while no write waits
 * (store_search_tidy), about this many pages a step: a couple of
 * milliseconds, as long as a small batch, so a write that arrives during
 * a step waits little. After a step that found nothing to merge, the next
 * is tried once a batch has committed, at most every TIDY_RECHECK_MS, so
 * that an idle check does not follow every lone write. */
#define TIDY_PAGES 16
#define TIDY_RECHECK_MS 1000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    api_write_t *head, **tail;
    size_t n, bytes;         /* writes at the writer (queued or running), their size */
    size_t max_n, max_bytes; /* the bound */
    int stop;
    int running;
    atomic_int_least64_t busy_since; /* ms: when the running batch started; 0: none runs */
    store_t *store;
    pthread_t thread;
    int64_t retention_ms; /* trashed leads are kept this long; 0: not at all */
    int64_t purge_at;     /* ms: when the trash is next checked */
    bool tidy_due;        /* a batch committed since the index was found merged */
    int64_t tidy_at;      /* ms: not before then */
} W = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .max_n = API_WRITE_QUEUE_DEFAULT,
       .max_bytes = API_WRITE_QUEUE_BYTES,
       .retention_ms = API_TRASH_RETENTION_DEFAULT_MS};

/*
 * The syncer: the sync of each batch's commit, off the writer's thread
 * (store_sync_defer), so that the writer runs the next batch meanwhile.
 * A create costs the writer about 2.8 ms of work and 2.4 ms of waiting
 * for its sync per batch at 64 connections (bench/results.md, 2026-12-01
 * 14:55); one after the other, the writer was idle half of the time.
 *
 * The writer queues each batch here once committed, in commit order, with
 * the sync its commit left owed; the syncer does the latest owed sync
 * (which covers every commit before it, on the same log), then hands back
 * every batch queued before it, in order. Batches that came meanwhile
 * share the next sync. A batch that owes none (its writes failed, or its
 * commit did not write) waits all the same for those before it, so no
 * answer goes out before one it may have seen. A failed sync leaves
 * commits that others may have read and that may not be on disk: the
 * process stops at once, answering none of them (as PostgreSQL does); the
 * next start copies the log into the database before it defers a sync
 * (store_sync_defer).
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    api_write_t *head, **tail; /* committed writes, their batches one after the other */
    store_sync_t owed;         /* the latest sync owed by them (n 0: none) */
    bool stop, running;
    atomic_int_least64_t busy_since; /* ms: when the running sync started; 0: none runs */
    pthread_t thread;
} Y = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Hands each write of batch back to its worker to be answered, having
 * taken it off the queue's count. */
static void hand_back(api_write_t *batch)
{
    size_t n = 0, bytes = 0;
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        n++;
        bytes += w->size;
    }
    /* Done here: they leave the queue's count before they are freed. */
    pthread_mutex_lock(&W.mu);
    W.n -= n;
    W.bytes -= bytes;
    pthread_mutex_unlock(&W.mu);
    for (api_write_t *w = batch, *next; w != NULL; w = next) {
        next = w->next;
        h2o_multithread_send_message(&w->t->done, &w->msg);
    }
}

/* Does the sync t; a failure stops the process (above). */
static void sync_or_stop(const store_sync_t *t)
{
    int err = store_sync_run(W.store, t);
    if (err == 0) return;
    fprintf(stderr,
            "crmd: the database's log could not be synced (%s): committed writes may not be on disk; "
            "stopping without answering them\n",
            strerror(err));
    _exit(EXIT_FAILURE);
}

static void *syncer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&Y.mu);
    for (;;) {
        while (Y.head == NULL && !Y.stop)
            pthread_cond_wait(&Y.cv, &Y.mu);
        if (Y.head == NULL) break;
        api_write_t *done = Y.head;
        store_sync_t t = Y.owed;
        Y.head = NULL;
        Y.tail = &Y.head;
        Y.owed.n = 0;
        pthread_mutex_unlock(&Y.mu);
        if (t.n != 0) {
            atomic_store(&Y.busy_since, ts_now_ms());
            sync_or_stop(&t);
            atomic_store(&Y.busy_since, 0);
        }
        hand_back(done);
        pthread_mutex_lock(&Y.mu);
    }
    pthread_mutex_unlock(&Y.mu);
    return NULL;
}

/* Queues batch for the syncer, with the sync its commit left owed (if
 * owed). */
static void to_syncer(api_write_t *batch, bool owed, const store_sync_t *t)
{
    api_write_t *last = batch;
    while (last->next != NULL)
        last = last->next;
    pthread_mutex_lock(&Y.mu);
    *Y.tail = batch;
    Y.tail = &last->next;
    if (owed) Y.owed = *t;
    pthread_cond_signal(&Y.cv);
    pthread_mutex_unlock(&Y.mu);
}

/* Stops the syncer, once it has handed back what was queued for it. */
static void stop_syncer(void)
{
    if (!Y.running) return;
    pthread_mutex_lock(&Y.mu);
    Y.stop = true;
    pthread_cond_signal(&Y.cv);
    pthread_mutex_unlock(&Y.mu);
    pthread_join(Y.thread, NULL);
    Y.running = false;
}

/* Syncs what a commit outside a batch of writes (the purge's) left owed,
 * here: no answer waits for it, the sender's reads do (store_sync_defer). */
static void settle(void)
{
    store_sync_t t;
    if (store_sync_owed(W.store, &t)) sync_or_stop(&t);
}

static bool defer_syncs;

void api_writer_configure_syncs(bool defer)
{
    defer_syncs = defer;
}

void api_writer_configure_trash(int64_t retention_ms)
{
    W.retention_ms = retention_ms;
}

int64_t api_trash_retention_ms(void)
{
    return W.retention_ms;
}

/* How often the trash is checked for leads past their retention. */
static int64_t purge_interval_ms(void)
{
    return W.retention_ms > 0 && W.retention_ms < 60000 ? 1000 : 60000;
}

/* Purges what is due (trashed leads past their retention, idempotency
 * keys past 24 hours), PURGE_CHUNK per transaction, until none is left or
 * a write is waiting (the next check goes on). Called with W.mu held,
 * which it lets go of while it works. */
static void purge_due(int64_t now)
{
    W.purge_at = now + purge_interval_ms();
    int purged = PURGE_CHUNK;
    while (purged == PURGE_CHUNK && W.head == NULL && !W.stop) {
        pthread_mutex_unlock(&W.mu);
        /* With --trash-retention 0 a DELETE keeps nothing in the trash, but
         * what an earlier run with a retention left there goes now. */
        purged = api_trash_expire_due(W.store, now - W.retention_ms, PURGE_CHUNK, now);
        int keys = 0;
        store_rc_t rc = store_idem_expire(W.store, now - API_IDEM_KEEP_MS, PURGE_CHUNK, &keys);
        if (keys > purged) purged = keys;
        settle();
        /* Failures are logged by the store, and tried again at the next check. */
        if (rc != STORE_OK || purged < 0) purged = 0;
        /* Their lead.purged events are committed: the sender may go. */
        if (api_outbox_take_recorded()) webhook_sender_poke();
        pthread_mutex_lock(&W.mu);
    }
}

/* One step of the search index's merge. Called with W.mu held, which it
 * lets go of while it works. */
static void tidy_step(int64_t now)
{
    pthread_mutex_unlock(&W.mu);
    bool more = false;
    /* A failure is logged by the store, and tried again after a batch. */
    store_rc_t rc = store_search_tidy(W.store, TIDY_PAGES, &more);
    settle();
    pthread_mutex_lock(&W.mu);
    if (rc != STORE_OK || !more) {
        W.tidy_due = false;
        W.tidy_at = now + TIDY_RECHECK_MS;
    }
}

/* Waits, with W.mu held, until there is a write or the writer stops,
 * purging the trash whenever a check is due, and merging the search
 * index while it needs it. */
static void wait_for_writes(void)
{
    while (W.head == NULL && !W.stop) {
        int64_t now = ts_now_ms();
        if (W.purge_at <= now) {
            purge_due(now);
            continue;
        }
        if (W.tidy_due && W.tidy_at <= now) {
            tidy_step(now);
            continue;
        }
        int64_t at = W.tidy_due && W.tidy_at < W.purge_at ? W.tidy_at : W.purge_at;
        struct timespec ts = {.tv_sec = (time_t)(at / 1000), .tv_nsec = (long)(at % 1000) * 1000000L};
        pthread_cond_timedwait(&W.cv, &W.mu, &ts);
    }
}

void api_writer_configure(size_t max_writes, size_t max_bytes)
{
    W.max_n = max_writes;
    W.max_bytes = max_bytes;
}

api_write_t *api_write_new(api_req_t *r, api_write_fn fn, size_t extra)
{
    api_write_t *w = calloc(1, sizeof *w + extra);
    if (w == NULL) return NULL;
    w->size = sizeof *w + extra;
    atomic_init(&w->gone, false);
    w->run = fn;
    w->t = r->t;
    w->r = r;
    w->app = r->app.id;
    w->now = r->now;
    memcpy(w->id, r->id, sizeof w->id);
    memcpy(w->fid, r->fid, sizeof w->fid);
    w->stale = r->route->stale;
    w->names_lead = r->names_lead;
    if (r->method == METHOD_PUT || r->method == METHOD_DELETE) {
        w->if_match_len = api_header_list(r, "if-match", w->if_match, sizeof w->if_match);
        w->has_if_match = h2o_find_header_by_str(&r->req->headers, H2O_STRLIT("if-match"), -1) >= 0;
    }
    memcpy(w->actor, r->auth.subject, sizeof w->actor);
    if (r->idem.held) {
        memcpy(w->idem_key, r->idem.key, sizeof w->idem_key);
        memcpy(w->idem_hash, r->idem.hash, sizeof w->idem_hash);
    }
    return w;
}

void api_write_answer(api_write_t *w, store_rc_t rc, int ok_status, const char *not_found_title,
                      const char *not_found_detail)
{
    w->status =
        rc == STORE_OK ? ok_status : api_render_store_error(&w->out, rc, not_found_title, not_found_detail);
}

/* Whether an answer is kept for its key: every 2xx and 4xx but 409 and 429. */
static bool kept_status(int status)
{
    return status >= 200 && status < 500 && status != 409 && status != 429;
}

/* Charges w's app for the answer kept for its Idempotency-Key beyond
 * API_IDEM_KEEP_REFUSED_BYTES: one request of its rate limit for each
 * API_IDEM_KEEP_REFUSED_BYTES more, so that an app keeps no more than
 * about that much a request within its rate limit, whatever it asks for. A
 * batch of 500 updates that changed nothing (38 KB) kept 674 KB for a day,
 * and an import with mode=valid of 1,000 bad rows (5 KB) 142 KB: one app
 * grew the database by 34 MB/s (and 19 MB/s) within the default rate
 * limit, for nothing written. */
static void charge_kept(const api_write_t *w)
{
    if (w->idem_key[0] == '\0' || w->replayed || w->status < 200 || w->status >= 300 ||
        w->out.len > API_IDEM_KEEP_BYTES || w->out.len <= API_IDEM_KEEP_REFUSED_BYTES ||
        !ratelimit_enabled(RATELIMIT_APP))
        return;
    ratelimit_charge(RATELIMIT_APP, (ratelimit_key_t){(uint64_t)w->app, 0}, w->now,
                     (double)(w->out.len - API_IDEM_KEEP_REFUSED_BYTES) / API_IDEM_KEEP_REFUSED_BYTES);
}

/* Answers a finished write on its worker's thread, and frees it. */
static void complete(api_write_t *w)
{
    if (w->queued) w->t->writes_in_flight--;
    charge_kept(w);
    if (w->status == 412 && w->etag[0] != '\0' && w->r->req != NULL) api_header_str(w->r, "etag", w->etag);
    if (w->replayed && w->r->req != NULL) api_header_str(w->r, "idempotent-replayed", "true");
    api_reply_body(w->r, w->status, &w->out, w->location);
    jw_free(&w->out);
    free(w);
}

void api_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        api_write_t *w = H2O_STRUCT_FROM_MEMBER(api_write_t, msg.link, messages->next);
        h2o_linklist_unlink(&w->msg.link);
        complete(w);
    }
}

/* Marks what an acknowledged write changed as stale in the response cache:
 * after the commit, before it is answered. A write with no lead in its
 * path (a create) has no lead entries to make stale. */
static void touch(const api_write_t *w)
{
    if (w->status >= 300) return;
    if ((w->stale & API_STALE_LEAD) && w->id[0] != '\0') cache_touch_lead(w->app, w->id);
    if (w->stale & API_STALE_APP) cache_touch_app(w->app);
    if (w->touch != NULL) w->touch(w);
}

/* The answer another process kept for w's key (it claimed it first). */
static void on_kept(void *ctx, const store_idem_t *kept)
{
    api_write_t *w = ctx;
    if (strcmp(kept->hash, w->idem_hash) != 0 || kept->status == 0) {
        w->status = api_render_header_error(&w->out, 422, "idempotency_key_reused", "Idempotency Key Reused",
                                            "Idempotency-Key",
                                            "This Idempotency-Key was used with another request (method, "
                                            "path, query or body).");
        return;
    }
    w->status = kept->status;
    w->replayed = true;
    jw_reset(&w->out);
    api_idem_render_kept(&w->out, kept->status, kept->body);
    snprintf(w->location, sizeof w->location, "%s", kept->location);
}

/* Keeps w's answer for its key, or, above API_IDEM_KEEP_BYTES (a 2xx) or
 * API_IDEM_KEEP_REFUSED_BYTES (a 4xx), its status and Location with the
 * body of api_idem_render_not_kept. */
static store_rc_t keep(store_t *s, const api_write_t *w)
{
    const char *location = w->status == 201 ? w->location : "";
    if (w->out.len <= (w->status < 300 ? API_IDEM_KEEP_BYTES : API_IDEM_KEEP_REFUSED_BYTES))
        return store_idem_finish(s, w->app, w->idem_key, w->status, location,
                                 (text_ref_t){w->out.buf, w->out.len});
    jw_t small = {0};
    api_idem_render_not_kept(&small, w->status, API_IDEM_TOO_LARGE);
    store_rc_t rc = small.oom ? STORE_UNAVAILABLE
                              : store_idem_finish(s, w->app, w->idem_key, w->status, location,
                                                  (text_ref_t){small.buf, small.len});
    jw_free(&small);
    return rc;
}

/* The i-th lead w changes (the one its path names first), NULL past the
 * last. */
static const char *lead_of(const api_write_t *w, int i)
{
    bool path = w->names_lead && w->id[0] != '\0';
    if (path && i == 0) return w->id;
    return w->lead_at != NULL ? w->lead_at(w, i - path) : NULL;
}

/* How many leads the writes of batch yet to run change. */
static size_t leads_counted(const api_write_t *batch)
{
    size_t n = 0;
    for (const api_write_t *w = batch; w != NULL; w = w->next)
        for (int i = 0; w->status == 0 && lead_of(w, i) != NULL; i++)
            n++;
    return n;
}

/* The leads the writes of batch yet to run change, into a new array *v
 * (NULL when there are none); false when out of memory. */
static bool leads_to_run(const api_write_t *batch, store_lead_ref_t **v, size_t *n)
{
    size_t cap = 0;
    *v = NULL;
    *n = 0;
    for (const api_write_t *w = batch; w != NULL; w = w->next) {
        const char *id;
        for (int i = 0; w->status == 0 && (id = lead_of(w, i)) != NULL; i++) {
            if (*n == cap) {
                cap = cap == 0 ? 16 : 2 * cap;
                store_lead_ref_t *grown = realloc(*v, cap * sizeof **v);
                if (grown == NULL) {
                    free(*v);
                    return false;
                }
                *v = grown;
            }
            (*v)[*n].app = w->app;
            snprintf((*v)[*n].id, sizeof(*v)[*n].id, "%s", id);
            (*n)++;
        }
    }
    return true;
}

/* Before the writes of batch run: when they change more than one lead
 * between them (or one twice), locks all of those leads at once, in
 * order (store_leads_lock). Writes that lock their leads one after the
 * other, in the order the requests came, made PostgreSQL deadlocks
 * between processes writing the same leads: 12 to 16 in 12 s with three
 * processes on four leads, each costing its batch a second and a try,
 * some batches all three tries (503). Their Idempotency-Keys are taken
 * first (store_idem_hold): a key's write in flight elsewhere is a 409 at
 * once, not a wait at these leads. A single write of one lead, by far
 * the most common batch, costs nothing more. */
static store_rc_t lock_ahead(store_t *s, api_write_t *batch)
{
    if (leads_counted(batch) < 2) return STORE_OK;
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        if (w->status != 0 || w->idem_key[0] == '\0') continue;
        bool in_flight;
        store_rc_t rc = store_idem_hold(s, w->app, w->idem_key, &in_flight);
        if (rc != STORE_OK) return rc;
        if (in_flight) w->status = api_idem_render_in_flight(&w->out);
    }
    store_lead_ref_t *leads;
    size_t n;
    if (!leads_to_run(batch, &leads, &n)) return STORE_UNAVAILABLE;
    store_rc_t rc = n < 2 ? STORE_OK : store_leads_lock(s, leads, n);
    free(leads);
    return rc;
}

/* Runs w; with an Idempotency-Key, claims it first and keeps the answer,
 * both in w's transaction, or replays the answer another process kept,
 * or answers 409 while another process's write of the key is in flight. */
static void run_one(store_t *s, api_write_t *w)
{
    if (w->idem_key[0] == '\0') {
        w->run(s, w);
        return;
    }
    bool in_flight;
    store_rc_t rc =
        store_idem_claim(s, w->app, w->idem_key, w->idem_hash, w->now, w->now - API_IDEM_KEEP_MS, &in_flight);
    if (rc == STORE_CONFLICT && in_flight) {
        /* Another process's write of this key has not ended: a 409 now,
         * the same as one of this process's (idem.c), not a wait for it
         * that would hold up this batch. The key stays the other's. */
        w->status = api_idem_render_in_flight(&w->out);
        return;
    }
    if (rc == STORE_CONFLICT) {
        rc = store_idem_get(s, w->app, w->idem_key, w->now - API_IDEM_KEEP_MS, on_kept, w, NULL);
        /* Gone between the two (expired): the client retries. */
        if (rc != STORE_OK) api_write_answer(w, rc == STORE_NOT_FOUND ? STORE_UNAVAILABLE : rc, 0, "", "");
        return;
    }
    if (rc != STORE_OK) {
        api_write_answer(w, rc, 0, "", "");
        return;
    }
    w->run(s, w);
    if (kept_status(w->status))
        rc = keep(s, w);
    else
        rc = store_idem_release(s, w->app, w->idem_key);
    if (rc != STORE_OK) {
        /* The change is made but its key is not: undo the batch. */
        w->undo_batch = true;
        api_write_answer(w, rc == STORE_ERROR ? STORE_ERROR : STORE_UNAVAILABLE, 0, "", "");
    }
}

/* Makes w as it was before it ran, to be run again in a new batch: its
 * answer and what its run set. Its Location, set by its handler, stays (a
 * replay sets it again). */
static void forget_run(api_write_t *w)
{
    w->status = 0;
    w->undo_batch = false;
    w->replayed = false;
    w->etag[0] = '\0';
    jw_reset(&w->out);
}

/* Whether a committed batch keeps its changes: not a write alone in its
 * batch (an import: all or nothing) that failed. */
static bool batch_kept(const api_write_t *batch)
{
    return !(batch->alone && batch->status >= 300);
}

/* Runs the writes of batch in one transaction on s, leaving each with its
 * answer; returns the commit's rc: unless STORE_OK, none of them happened.
 * A write that asks for its batch to be undone fails it. A write whose
 * client is gone when the batch begins is not run (see the top). The
 * leads they change are locked first (lock_ahead). */
static store_rc_t try_batch(store_t *s, api_write_t *batch)
{
    store_rc_t rc = store_batch_begin(s);
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        if (rc != STORE_OK)
            api_write_answer(w, rc, 0, "", "");
        else if (atomic_load(&w->gone))
            w->status = API_STATUS_CLIENT_GONE;
    }
    if (rc != STORE_OK) return rc;
    rc = lock_ahead(s, batch);
    if (rc != STORE_OK) {
        /* Nothing ran; a deadlock lost here runs the batch again. */
        for (api_write_t *w = batch; w != NULL; w = w->next)
            if (w->status == 0) api_write_answer(w, rc, 0, "", "");
        store_batch_end(s, 0);
        return rc;
    }
    bool undo = false;
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        if (w->status == 0) run_one(s, w);
        undo |= w->undo_batch;
    }
    /* A write that could not record what follows from its change (change.h)
     * undoes the batch: nothing of it may be acknowledged. */
    if (undo) {
        store_batch_end(s, 0);
        return STORE_UNAVAILABLE;
    }
    rc = store_batch_end(s, batch_kept(batch));
    /* A write alone that failed ends its batch without a commit, which
     * succeeds; if it failed for having lost a deadlock, the batch is run
     * again all the same (run_batch): an import that lost one was answered
     * 503 while the log said it would run again (a review). */
    return rc == STORE_OK && store_batch_redo(s) ? STORE_UNAVAILABLE : rc;
}

/* Runs batch (try_batch), again from the start while it fails only for
 * having lost a deadlock to another process on the same PostgreSQL
 * database (store_batch_redo), up to BATCH_ATTEMPTS times; then hands each
 * write its answer: a 503 for all of them if the last try failed. */
static void run_batch(store_t *s, api_write_t *batch)
{
    store_rc_t rc = try_batch(s, batch);
    for (int attempt = 2; rc != STORE_OK && store_batch_redo(s) && attempt <= BATCH_ATTEMPTS; attempt++) {
        for (api_write_t *w = batch; w != NULL; w = w->next)
            forget_run(w);
        rc = try_batch(s, batch);
    }
    /* Events committed with the batch: the sender may go at once. */
    if (api_outbox_take_recorded() && rc == STORE_OK && batch_kept(batch)) webhook_sender_poke();
    if (rc != STORE_OK) metrics_count(METRIC_COMMIT_FAILURES);
    /* No write of a batch whose commit failed may be acknowledged; what
     * failed for another reason there is a 503 (retry), not a 500. */
    if (rc == STORE_ERROR) rc = STORE_UNAVAILABLE;
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        if (rc != STORE_OK && w->status < 300) api_write_answer(w, rc, 0, "", "");
        touch(w);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    metrics_thread_attach();
    pthread_mutex_lock(&W.mu);
    for (;;) {
        wait_for_writes();
        if (W.head == NULL) break;
        /* Take up to BATCH_MAX writes off the queue; a write that runs
         * alone goes in a batch of its own. */
        api_write_t *batch = W.head, *last = W.head;
        int n = 1;
        while (!batch->alone && last->next != NULL && !last->next->alone && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        W.head = last->next;
        if (W.head == NULL) W.tail = &W.head;
        last->next = NULL;
        pthread_mutex_unlock(&W.mu);
        int64_t started = ts_now_ms();
        atomic_store(&W.busy_since, started);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        run_batch(W.store, batch);
        store_sync_t t;
        bool owed = store_sync_owed(W.store, &t);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_store(&W.busy_since, 0);
        metrics_commit(n, (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
        if (Y.running)
            to_syncer(batch, owed, &t);
        else
            hand_back(batch);
        pthread_mutex_lock(&W.mu);
        W.tidy_due = true;
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

void api_writer_depth(size_t *writes, size_t *bytes)
{
    pthread_mutex_lock(&W.mu);
    *writes = W.n;
    *bytes = W.bytes;
    pthread_mutex_unlock(&W.mu);
}

enum api_writer_state api_writer_state(int64_t now_ms)
{
    if (!W.running) return API_WRITER_NOT_RUNNING;
    /* A sync that never ends (a dead disk) holds every answer too. */
    int64_t since = atomic_load(&W.busy_since), sync = atomic_load(&Y.busy_since);
    if (sync != 0 && (since == 0 || sync < since)) since = sync;
    return since != 0 && now_ms - since > API_WRITER_STUCK_MS ? API_WRITER_STUCK : API_WRITER_OK;
}

void api_write_submit(api_req_t *r, api_write_t *w)
{
    if (w == NULL) {
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return;
    }
    if (!W.running) {
        /* No writer (the command line, the fuzz target): run it here, alone. */
        w->next = NULL;
        run_batch(w->t->store, w);
        complete(w);
        return;
    }
    w->next = NULL;
    /* A write that runs alone (an import, up to 16 MiB) must leave a
     * sixteenth of the bytes to the others: two imports near 16 MiB, one
     * running and one waiting, filled the 32 MiB to within a write, and
     * every other app's write was refused 503 for as long as one app kept
     * sending them (review rv86). */
    size_t reserve = w->alone ? W.max_bytes / API_WRITE_QUEUE_RESERVE : 0;
    pthread_mutex_lock(&W.mu);
    bool full =
        W.n >= W.max_n || W.bytes + reserve > W.max_bytes || w->size > W.max_bytes - reserve - W.bytes;
    if (!full) {
        W.n++;
        W.bytes += w->size;
        /* Set before the writer can see it; the worker alone reads them. */
        w->queued = true;
        w->t->writes_in_flight++;
        r->gone = &w->gone;
        if (r->req == NULL) atomic_store(&w->gone, true);
        *W.tail = w;
        W.tail = &w->next;
        pthread_cond_signal(&W.cv);
    }
    pthread_mutex_unlock(&W.mu);
    if (full) {
        free(w);
        api_reply_error(r, 503, "Service Unavailable",
                        "Too many writes are waiting to be committed; retry shortly.");
    }
}

int api_writer_start_store(store_t *s)
{
    W.store = s;
    store_set_writer(s);
    W.head = NULL;
    W.tail = &W.head;
    W.n = W.bytes = 0;
    W.stop = 0;
    /* An index written in bulk (an import, a copy) is merged at start. */
    W.tidy_due = true;
    W.tidy_at = 0;
    Y.head = NULL;
    Y.tail = &Y.head;
    Y.owed.n = 0;
    Y.stop = false;
    /* Without the syncer's thread, the commits sync as before. */
    Y.running = defer_syncs && pthread_create(&Y.thread, NULL, syncer_main, NULL) == 0;
    if (Y.running && !store_sync_defer(s)) stop_syncer();
    if (pthread_create(&W.thread, NULL, writer_main, NULL) != 0) {
        stop_syncer();
        store_close(W.store);
        W.store = NULL;
        return -1;
    }
    W.running = 1;
    return 0;
}

int api_writer_start(const api_shared_t *shared)
{
    char err[256];
    store_t *s = store_open(shared->db_url, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: writer: %s\n", err);
        return -1;
    }
    return api_writer_start_store(s);
}

void api_writer_stop(void)
{
    if (!W.running) return;
    pthread_mutex_lock(&W.mu);
    W.stop = 1;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(W.thread, NULL);
    stop_syncer();
    W.running = 0;
    store_close(W.store);
    W.store = NULL;
}
