/*
 * export.c: see export.h.
 *
 * An export outlives its api_req_t: the request is logged and ended once
 * the first page is read (a store failure before that is an ordinary JSON
 * error), and the export then lives on h2o's request alone. It is freed
 * when h2o disposes of that request, or, if a read is in flight then (a
 * PostgreSQL read completes later), when that read completes.
 *
 * Every page is read from one snapshot, on a reader of the export's own
 * (store_reader_open): the thread's store keeps answering its other
 * requests from fresh reads meanwhile. The reader holds a place among the
 * running exports (the app's and the process's, export_take) and its
 * snapshot until the last page is read, the export fails, its client goes,
 * or its time is up, whichever comes first; then both go at once, whether
 * or not the client still reads what was sent.
 */
#include "api/export.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "model/csv.h"

/* Leads read per page: a page of long names stays near 64 KiB, the size
 * the memory guard lets any answer have. */
#define EXPORT_PAGE 256
/* What the Retry-After of an app's export refused for its cap says: an
 * export of a million leads takes about five seconds. */
#define EXPORT_RETRY_AFTER_S 5
/* A thread keeps up to API_EXPORT_READERS_KEPT readers between its
 * exports (opening one costs SQLite 0.7 ms, the schema read and the
 * statement prepared again, half of a 1,000-lead export; on PostgreSQL
 * the connection is made again anyway, its snapshot ending with it), until
 * it has run no export for this long. */
#define EXPORT_IDLE_MS 30000

/* The running exports of the process, by app (any thread). At most
 * API_EXPORT_MAX_TOTAL run, so that many apps is room enough. */
static struct {
    pthread_mutex_t lock;
    int max_total, max_per_app;
    int64_t max_ms;
    int running;
    struct {
        int64_t app;
        int n;
    } apps[API_EXPORT_MAX_TOTAL];
} limits = {PTHREAD_MUTEX_INITIALIZER, API_EXPORT_TOTAL_DEFAULT, API_EXPORT_PER_APP_DEFAULT,
            API_EXPORT_TIME_DEFAULT_MS};

void api_export_configure(int max_total, int max_per_app, int64_t max_ms)
{
    assert(max_total >= 1 && max_total <= API_EXPORT_MAX_TOTAL && max_per_app >= 1 && max_ms >= 1000);
    limits.max_total = max_total;
    limits.max_per_app = max_per_app;
    limits.max_ms = max_ms;
}

/* Whether a new export may run, and why not. */
enum export_room { EXPORT_ROOM, EXPORT_APP_FULL, EXPORT_ALL_FULL };

/* Takes a place for an export of app (export_give gives it back). */
static enum export_room export_take(int64_t app)
{
    pthread_mutex_lock(&limits.lock);
    int at = -1, free_at = -1;
    for (int i = 0; i < API_EXPORT_MAX_TOTAL && at < 0; i++) {
        if (limits.apps[i].n > 0 && limits.apps[i].app == app) at = i;
        if (limits.apps[i].n == 0 && free_at < 0) free_at = i;
    }
    enum export_room room = EXPORT_ROOM;
    if (at >= 0 && limits.apps[at].n >= limits.max_per_app)
        room = EXPORT_APP_FULL;
    else if (limits.running >= limits.max_total)
        room = EXPORT_ALL_FULL;
    if (room == EXPORT_ROOM) {
        if (at < 0) at = free_at; /* running < max_total: one is free */
        assert(at >= 0);
        limits.apps[at].app = app;
        limits.apps[at].n++;
        limits.running++;
    }
    pthread_mutex_unlock(&limits.lock);
    return room;
}

static void export_give(int64_t app)
{
    pthread_mutex_lock(&limits.lock);
    for (int i = 0; i < API_EXPORT_MAX_TOTAL; i++) {
        if (limits.apps[i].n > 0 && limits.apps[i].app == app) {
            limits.apps[i].n--;
            limits.running--;
            break;
        }
    }
    pthread_mutex_unlock(&limits.lock);
}

struct export
{
    h2o_generator_t gen;
    h2o_req_t *req;
    api_req_t *r; /* until the first page is read */
    api_thread_t *t;
    store_t *db;             /* the reader holding the snapshot; NULL once it is let go */
    store_timer_t *deadline; /* while db is held */
    export_t *prev, *next;   /* in t->exports while db is held */
    int64_t app;
    store_lead_query_t q; /* its texts in req's pool */
    int norder;
    store_sort_t order[STORE_SORT_MAX];
    store_pos_t after, last; /* the query's position; the last row rendered */
    int64_t total;
    int n;
    bool more, reading, counted, gone, expired;
    jw_t out;
};

/* The thread has run no export for EXPORT_IDLE_MS: its kept readers go. */
static void readers_idle(void *arg)
{
    api_thread_t *t = arg;
    t->readers_timer = NULL;
    while (t->nreaders > 0)
        store_close(t->readers[--t->nreaders]);
}

/* Keeps db (its snapshot ended) for the thread's next export, or closes
 * it (from its own read's callback too: store.h allows it). */
static void reader_keep(api_thread_t *t, store_t *db)
{
    if (t->readers_timer != NULL) t->sloop.timer_stop(t->readers_timer);
    t->readers_timer = NULL;
    if (t->nreaders < API_EXPORT_READERS_KEPT) {
        t->readers[t->nreaders++] = db;
        db = NULL;
    }
    if (db != NULL) store_close(db);
    t->readers_timer = t->sloop.timer_start(t->sloop.ctx, EXPORT_IDLE_MS, readers_idle, t);
    if (t->readers_timer == NULL) readers_idle(t); /* out of memory: nothing is kept */
}

/* A kept reader of the thread, or a new one; NULL (err says why) when
 * none can be opened. */
static store_t *reader_take(api_thread_t *t, char *err, size_t errsz)
{
    if (t->nreaders > 0) return t->readers[--t->nreaders];
    return store_reader_open(t->store, err, errsz);
}

/* Lets go of the reader, its snapshot and the export's place, once no
 * read is in flight on it. */
static void export_release(export_t *x)
{
    assert(!x->reading);
    if (x->deadline != NULL) x->t->sloop.timer_stop(x->deadline);
    x->deadline = NULL;
    if (x->db == NULL) return;
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        x->t->exports = x->next;
    if (x->next != NULL) x->next->prev = x->prev;
    store_snapshot_end(x->db);
    reader_keep(x->t, x->db);
    x->db = NULL;
    export_give(x->app);
}

static void export_free(export_t *x)
{
    export_release(x);
    jw_free(&x->out);
    free(x);
}

/* h2o disposes of the request: the export ends with it, now or when its
 * read completes. */
static void on_dispose(void *p)
{
    export_t *x = *(export_t **)p;
    if (x->reading)
        x->gone = true;
    else
        export_free(x);
}

static void emit(void *ctx, const lead_t *l)
{
    export_t *x = ctx;
    if (x->n == EXPORT_PAGE) {
        x->more = true; /* the row read past the page */
        return;
    }
    x->n++;
    csv_write_lead(&x->out, l);
    store_lead_pos(l, x->order, x->norder, &x->last);
}

static void on_page(void *ctx, store_rc_t rc);

/* Reads the next page into x->out. */
static void read_page(export_t *x)
{
    x->n = 0;
    x->more = false;
    if (x->last.n > 0) store_pos_copy(&x->after, &x->last);
    x->q.after = x->last.n > 0 ? &x->after : NULL;
    x->reading = true;
    store_async_t async = {.done = on_page, .ctx = x};
    store_rc_t rc = store_lead_find(x->db, x->app, &x->q, &x->total, emit, x, &async);
    if (rc == STORE_PENDING) {
        x->counted = true;
        x->t->reads_pending++;
        return;
    }
    on_page(x, rc);
}

/* The first page is read: r is answered, a JSON error or the stream's
 * start. */
static void first_page(export_t *x, api_req_t *r, store_rc_t rc)
{
    if (rc != STORE_OK) {
        export_release(x); /* x goes with the request */
        api_reply_store_error(r, rc, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
        return;
    }
    h2o_req_t *req = api_reply_streamed(r);
    if (req == NULL) return;
    if (x->out.oom) {
        api_respond_stream_fail(req);
        return;
    }
    bool on =
        api_respond_stream(req, &x->gen, "text/csv; charset=utf-8", "attachment; filename=\"leads.csv\"",
                           h2o_iovec_init(x->out.buf, x->out.len), !x->more);
    if (!on) x->more = false;
    if (!x->more) export_release(x);
}

static void on_page(void *ctx, store_rc_t rc)
{
    export_t *x = ctx;
    if (x->counted) {
        x->counted = false;
        x->t->reads_pending--;
    }
    x->reading = false;
    api_req_t *r = x->r;
    x->r = NULL;
    if (x->gone) {
        if (r != NULL) api_req_abandon(r);
        export_free(x);
        return;
    }
    if (x->expired && rc == STORE_OK) rc = STORE_UNAVAILABLE; /* its time ran out meanwhile */
    if (r != NULL) {
        first_page(x, r, rc);
        return;
    }
    if (rc != STORE_OK || x->out.oom) x->more = false;
    if (!x->more) export_release(x);
    if (rc != STORE_OK || x->out.oom) {
        api_respond_stream_fail(x->req);
        return;
    }
    api_respond_stream_more(x->req, h2o_iovec_init(x->out.buf, x->out.len), !x->more);
}

/* h2o has sent the last chunk and asks for the next. */
static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    export_t *x = H2O_STRUCT_FROM_MEMBER(export_t, gen, gen);
    if (x->expired && x->more && !x->reading) {
        x->more = false;
        api_respond_stream_fail(req); /* cut off: never taken for the whole file */
        return;
    }
    if (!x->more || x->reading) return;
    jw_reset(&x->out);
    read_page(x);
}

/* The export's time is up: its snapshot goes now, or once the read in
 * flight completes (which then fails the export); the answer is cut off
 * when h2o next asks for more (a client that never reads again is h2o's
 * I/O timeout's to close). */
static void on_deadline(void *arg)
{
    export_t *x = arg;
    x->deadline = NULL;
    x->expired = true;
    if (!x->reading) export_release(x);
}

/* h2o ends the answer early (its client is gone): on_dispose follows. */
static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    H2O_STRUCT_FROM_MEMBER(export_t, gen, gen)->more = false;
}

/* Takes the export's place, its reader and its snapshot; false (r
 * answered: 429 or 503 with Retry-After) when it cannot run now. */
static bool export_open(export_t *x, api_req_t *r)
{
    enum export_room room = export_take(x->app);
    if (room == EXPORT_APP_FULL) {
        api_header_int(r, "retry-after", EXPORT_RETRY_AFTER_S);
        api_reply_error(r, 429, "Too Many Requests",
                        "This app runs as many CSV exports at once as it may; retry when one has ended.");
        return false;
    }
    if (room == EXPORT_ALL_FULL) { /* every 503 says Retry-After: 1 (respond.c) */
        api_reply_error(r, 503, "Service Unavailable",
                        "The server runs as many CSV exports at once as it may; retry shortly.");
        return false;
    }
    char err[STORE_OPEN_ERR_MAX];
    x->db = reader_take(x->t, err, sizeof err);
    if (x->db != NULL) { /* on the thread's list from now, for api_export_thread_fini */
        x->next = x->t->exports;
        if (x->next != NULL) x->next->prev = x;
        x->t->exports = x;
    }
    if (x->db == NULL || store_snapshot_begin(x->db) != STORE_OK ||
        (x->deadline = x->t->sloop.timer_start(x->t->sloop.ctx, (uint32_t)limits.max_ms, on_deadline, x)) ==
            NULL) {
        if (x->db == NULL) {
            char line[STORE_LOG_LINE_MAX];
            snprintf(line, sizeof line, "crmd: export: %s", err);
            api_store_log(NULL, line);
            export_give(x->app);
        }
        export_release(x);
        api_reply_error(r, 503, "Service Unavailable", "The database cannot take the export now.");
        return false;
    }
    return true;
}

void api_leads_export(api_req_t *r, store_lead_query_t *q)
{
    export_t *x = calloc(1, sizeof *x);
    export_t **ref = x != NULL ? h2o_mem_alloc_shared(&r->req->pool, sizeof *ref, on_dispose) : NULL;
    if (ref == NULL) {
        free(x);
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return;
    }
    *ref = x;
    x->gen = (h2o_generator_t){on_proceed, on_stop};
    x->req = r->req;
    x->r = r;
    x->t = r->t;
    x->app = r->app.id;
    if (!export_open(x, r)) return; /* x goes with the request */
    x->q = *q;
    x->q.limit = EXPORT_PAGE + 1; /* one more: whether a page follows */
    x->q.offset = 0;
    x->q.count = false;
    x->q.now = r->now;
    x->norder = store_lead_order(q->sort, q->nsort, x->order);
    csv_write_header(&x->out);
    read_page(x);
}

void api_export_thread_fini(api_thread_t *t)
{
    while (t->exports != NULL)
        export_release(t->exports);
    if (t->readers_timer != NULL) t->sloop.timer_stop(t->readers_timer);
    readers_idle(t);
}
