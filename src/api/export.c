/*
 * export.c: see export.h.
 *
 * An export outlives its api_req_t: the request is logged and ended once
 * the first page is read (a store failure before that is an ordinary JSON
 * error), and the export then lives on h2o's request alone. It is freed
 * when h2o disposes of that request, or, if a read is in flight then (a
 * PostgreSQL read completes later), when that read completes.
 */
#include "api/export.h"

#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "model/csv.h"

/* Leads read per page: a page of long names stays near 64 KiB, the size
 * the memory guard lets any answer have. */
#define EXPORT_PAGE 256

typedef struct export
{
    h2o_generator_t gen;
    h2o_req_t *req;
    api_req_t *r; /* until the first page is read */
    api_thread_t *t;
    int64_t app;
    store_lead_query_t q; /* its texts in req's pool */
    int norder;
    store_sort_t order[STORE_SORT_MAX];
    store_pos_t after, last; /* the query's position; the last row rendered */
    int64_t total;
    int n;
    bool more, reading, counted, gone;
    jw_t out;
}
export_t;

static void export_free(export_t *x)
{
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
    store_rc_t rc = store_lead_find(x->t->store, x->app, &x->q, &x->total, emit, x, &async);
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
        api_reply_store_error(r, rc, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
        return; /* x goes with the request */
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
    if (r != NULL) {
        first_page(x, r, rc);
        return;
    }
    if (rc != STORE_OK || x->out.oom) {
        x->more = false;
        api_respond_stream_fail(x->req);
        return;
    }
    api_respond_stream_more(x->req, h2o_iovec_init(x->out.buf, x->out.len), !x->more);
}

/* h2o has sent the last chunk and asks for the next. */
static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    export_t *x = H2O_STRUCT_FROM_MEMBER(export_t, gen, gen);
    if (!x->more || x->reading) return;
    jw_reset(&x->out);
    read_page(x);
}

/* h2o ends the answer early (its client is gone): on_dispose follows. */
static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    H2O_STRUCT_FROM_MEMBER(export_t, gen, gen)->more = false;
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
    x->q = *q;
    x->q.limit = EXPORT_PAGE + 1; /* one more: whether a page follows */
    x->q.offset = 0;
    x->q.count = false;
    x->q.now = r->now;
    x->norder = store_lead_order(q->sort, q->nsort, x->order);
    csv_write_header(&x->out);
    read_page(x);
}
