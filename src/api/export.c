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
 * its time is up, or its client has taken nothing for the idle time,
 * whichever comes first; then both go at once, whether or not the client
 * still reads what was sent.
 *
 * A held snapshot keeps SQLite's checkpoints from copying the WAL past its
 * start, and the WAL grows with every app's writes until it ends; nor can
 * the WAL start again from its beginning while any snapshot is open. So
 * besides each export's bounds, one app's exports may not hold snapshots
 * without a break for longer than an export's time: exports begun one
 * before the other ended (within the app's cap, each cut off before its
 * own time) kept one open for ever, and the WAL grew without end
 * (export_take).
 */
#include "api/export.h"

#include <assert.h>
#include <linux/tcp.h> /* tcpi_bytes_acked, which glibc's netinet/tcp.h lacks */
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "model/csv.h"
#include "model/timestamp.h"

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
/* After the process's exports have held snapshots without a break for an
 * export's time, none begins until none has run for this long: SQLite
 * starts its WAL again only once a checkpoint has copied every frame and
 * a write begins with no snapshot open, which takes a few commits. */
#define EXPORT_QUIET_MS 2000

/* The running exports of the process, by app (any thread). At most
 * API_EXPORT_MAX_TOTAL run, so that many apps is room enough. */
static struct {
    pthread_mutex_t lock;
    int max_total, max_per_app;
    int64_t max_ms, idle_ms;
    int running;
    /* mono_ms: when running last rose from 0 after a pause of
     * EXPORT_QUIET_MS or more (the chain of snapshots began), and when it
     * last fell to 0. */
    int64_t chain_since, quiet_since;
    struct {
        int64_t app;
        int n;
        int64_t since; /* mono_ms: when n last rose from 0 */
    } apps[API_EXPORT_MAX_TOTAL];
} limits = {PTHREAD_MUTEX_INITIALIZER, API_EXPORT_TOTAL_DEFAULT, API_EXPORT_PER_APP_DEFAULT,
            API_EXPORT_TIME_DEFAULT_MS, API_EXPORT_IDLE_DEFAULT_MS,
            /* No export has run: the chain had its break long ago. */
            .quiet_since = -EXPORT_QUIET_MS};

void api_export_configure(int max_total, int max_per_app, int64_t max_ms, int64_t idle_ms)
{
    assert(max_total >= 1 && max_total <= API_EXPORT_MAX_TOTAL && max_per_app >= 1 && max_ms >= 1000 &&
           max_ms <= UINT32_MAX && idle_ms >= 1000 && idle_ms <= UINT32_MAX);
    limits.max_total = max_total;
    limits.max_per_app = max_per_app;
    limits.max_ms = max_ms;
    limits.idle_ms = idle_ms;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether a new export may run, and why not. */
enum export_room { EXPORT_ROOM, EXPORT_APP_FULL, EXPORT_APP_LONG, EXPORT_ALL_FULL, EXPORT_ALL_LONG };

/* Whether the process's chain of snapshots has had its break by now: no
 * export runs, and none has for EXPORT_QUIET_MS (limits.lock held). */
static bool chain_broken(int64_t now)
{
    return limits.running == 0 && now - limits.quiet_since >= EXPORT_QUIET_MS;
}

/* Takes a place for an export of app (export_give gives it back). An app
 * whose exports have held snapshots without a break (one running at every
 * moment) for max_ms gets none until they have all ended: then its
 * snapshots never span more than twice max_ms. The same holds for the
 * process's exports of every app: exports of two apps begun in turn (or an
 * app's begun as soon as its last ended) kept a snapshot open for ever and
 * SQLite's WAL grew without end, so once the process's exports have held
 * snapshots without a break for max_ms, none begins until they have all
 * ended and none has run for EXPORT_QUIET_MS, when the WAL is let go. A
 * pause shorter than that is no break: exports begun one after the other,
 * each ended before its time, kept the WAL from ever starting again too. */
static enum export_room export_take(int64_t app)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&limits.lock);
    int at = -1, free_at = -1;
    for (int i = 0; i < API_EXPORT_MAX_TOTAL && at < 0; i++) {
        if (limits.apps[i].n > 0 && limits.apps[i].app == app) at = i;
        if (limits.apps[i].n == 0 && free_at < 0) free_at = i;
    }
    enum export_room room = EXPORT_ROOM;
    if (at >= 0 && limits.apps[at].n >= limits.max_per_app)
        room = EXPORT_APP_FULL;
    else if (at >= 0 && now - limits.apps[at].since >= limits.max_ms)
        room = EXPORT_APP_LONG;
    else if (!chain_broken(now) && now - limits.chain_since >= limits.max_ms)
        room = EXPORT_ALL_LONG;
    else if (limits.running >= limits.max_total)
        room = EXPORT_ALL_FULL;
    if (room == EXPORT_ROOM) {
        if (chain_broken(now)) limits.chain_since = now;
        if (at < 0) { /* running < max_total: one is free */
            at = free_at;
            assert(at >= 0);
            limits.apps[at].since = now;
        }
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
            if (--limits.running == 0) limits.quiet_since = mono_ms();
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
    store_t *db;                  /* the reader holding the snapshot; NULL once it is let go */
    store_timer_t *deadline;      /* while db is held: at ends_ms, or the client's idle time */
    int64_t ends_ms, progress_ms; /* mono_ms: the end of its time; when its client last took bytes */
    int64_t acked;                /* HTTP/1: the connection's bytes its client acknowledged, or -1 */
    export_t *prev, *next;        /* in t->exports while db is held */
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
    /* A page read on SQLite holds the thread's loop like any read (one
     * whose filter falls off the index scans every lead of the app):
     * --read-time bounds it and its app pays for its time. */
    int64_t t0 = api_read_begin(x->db);
    store_rc_t rc = store_lead_find(x->db, x->app, &x->q, &x->total, emit, x, &async);
    api_read_end(x->db, x->app, ts_now_ms(), t0);
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
    x->progress_ms = mono_ms();
    if (x->expired && x->more && !x->reading) {
        x->more = false;
        api_respond_stream_fail(req); /* cut off: never taken for the whole file */
        return;
    }
    if (!x->more || x->reading) return;
    jw_reset(&x->out);
    read_page(x);
}

/* The bytes x's client has acknowledged on its connection, over HTTP/1;
 * -1 over HTTP/2 or when unknown. Over HTTP/1 h2o asks for the next chunk
 * only once the socket has room for it, which on loopback, with a send
 * buffer grown to 4 MiB, can take a client reading 256 KiB a second
 * longer than 3 s; what TCP acknowledged shows its every read. Over
 * HTTP/2 the stream's window holds h2o's writes back (64 KiB by default),
 * and its asking for more is all there is: the connection's bytes would
 * count its PING answers too. */
static int64_t client_acked(const export_t *x)
{
    if (x->req->version >= 0x200) return -1;
    h2o_socket_t *sock = x->req->conn->callbacks->get_socket(x->req->conn);
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (sock == NULL || getsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
        return -1;
    return (int64_t)ti.tcpi_bytes_acked;
}

/* Fires at the export's end or when its client may have been idle for
 * limits.idle_ms, whichever is sooner, and again while neither is so. Its
 * client has taken something when h2o asked for more or, over HTTP/1, its
 * TCP acknowledged more bytes (client_acked, looked at here: the cut comes
 * one to two idle times after the last byte taken). When its time is up or
 * its client has been idle so long, its snapshot goes now, or once the
 * read in flight completes (which then fails the export); the answer is
 * cut off when h2o next asks for more (a client that never reads again is
 * h2o's I/O timeout's to close, 20 s later). A client that stopped
 * reading held the snapshot, and SQLite's WAL, for the whole of
 * --export-time. */
static void on_deadline(void *arg)
{
    export_t *x = arg;
    x->deadline = NULL;
    int64_t now = mono_ms();
    int64_t acked = client_acked(x);
    /* A read in flight: the database's wait, not the client's. */
    if (x->reading || acked != x->acked) x->progress_ms = now;
    x->acked = acked;
    int64_t wait = x->ends_ms - now, idle = x->progress_ms + limits.idle_ms - now;
    if (idle < wait) wait = idle;
    if (wait > 0 &&
        (x->deadline = x->t->sloop.timer_start(x->t->sloop.ctx, (uint32_t)wait, on_deadline, x)) != NULL)
        return;
    x->expired = true; /* out of memory for the timer too: it ends now rather than unbounded */
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
    /* Why an export cannot run now, as its client is told. A 503 of a
     * full process says Retry-After: 1 as every 503 does (respond.c). */
    static const struct {
        int status, retry_after;
        const char *title, *detail;
    } refusals[] = {
        [EXPORT_APP_FULL] =
            {429, EXPORT_RETRY_AFTER_S, "Too Many Requests",
             "This app runs as many CSV exports at once as it may; retry when one has ended."},
        [EXPORT_APP_LONG] =
            {429, EXPORT_RETRY_AFTER_S, "Too Many Requests",
             "This app's CSV exports have held a snapshot of the database without a break for "
             "as long as one export may; retry when they have ended."},
        [EXPORT_ALL_FULL] = {503, 0, "Service Unavailable",
                             "The server runs as many CSV exports at once as it may; retry shortly."},
        [EXPORT_ALL_LONG] = {503, EXPORT_RETRY_AFTER_S, "Service Unavailable",
                             "The server's CSV exports have held a snapshot of the database without a break "
                             "for as long as one export may; retry shortly."},
    };
    enum export_room room = export_take(x->app);
    if (room != EXPORT_ROOM) {
        if (refusals[room].retry_after > 0) api_header_int(r, "retry-after", refusals[room].retry_after);
        api_reply_error(r, refusals[room].status, refusals[room].title, refusals[room].detail);
        return false;
    }
    char err[STORE_OPEN_ERR_MAX];
    x->db = reader_take(x->t, err, sizeof err);
    if (x->db != NULL) { /* on the thread's list from now, for api_export_thread_fini */
        x->next = x->t->exports;
        if (x->next != NULL) x->next->prev = x;
        x->t->exports = x;
    }
    x->progress_ms = mono_ms();
    x->acked = client_acked(x);
    x->ends_ms = x->progress_ms + limits.max_ms;
    int64_t first = limits.idle_ms < limits.max_ms ? limits.idle_ms : limits.max_ms;
    if (x->db == NULL || store_snapshot_begin(x->db) != STORE_OK ||
        (x->deadline = x->t->sloop.timer_start(x->t->sloop.ctx, (uint32_t)first, on_deadline, x)) == NULL) {
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
