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
 */
#include "api/api.h"
#include "api/cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many writes share one transaction, so that one batch's
 * latency stays bounded. */
#define BATCH_MAX 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    api_write_t *head, **tail;
    int stop;
    int running;
    store_t *store;
    pthread_t thread;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* h2o disposes of a request's pool when the request ends, which can be
 * before its write comes back (an HTTP/2 stream reset): forget it then. */
static void on_req_dispose(void *p)
{
    api_write_t **ref = p;
    if (*ref != NULL) (*ref)->req = NULL;
}

api_write_t *api_write_new(api_req_t *r, api_write_fn fn, json_t *root)
{
    api_write_t *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    w->run = fn;
    w->t = r->t;
    w->req = r->req;
    w->root = root;
    w->app = r->app.id;
    w->now = r->now;
    w->start_ns = r->start_ns;
    snprintf(w->app_key, sizeof w->app_key, "%s", r->app.key);
    memcpy(w->id, r->id, sizeof w->id);
    memcpy(w->fid, r->fid, sizeof w->fid);
    /* What the write makes stale in the response cache follows from its
     * route: every write touches its lead (its GET, its follows; none yet
     * for a create), and lead writes also the app's lists. */
    memcpy(w->touch_lead, r->id, sizeof w->touch_lead);
    w->touch_app = r->route.route == ROUTE_LEADS || r->route.route == ROUTE_LEAD;
    w->req_ref = h2o_mem_alloc_shared(&r->req->pool, sizeof *w->req_ref, on_req_dispose);
    *w->req_ref = w;
    return w;
}

/* Answers a finished write on its worker's thread, and frees it. */
static void complete(api_write_t *w)
{
    h2o_req_t *req = w->req;
    if (req != NULL) {
        *w->req_ref = NULL;
        if (w->out.oom)
            w->status = api_render_error(&w->out, 503, "Service Unavailable", "The server is out of memory.");
        if (w->status == 204) {
            req->res.status = 204;
            req->res.reason = api_reason(204);
            h2o_send_inline(req, "", 0);
        } else {
            if (w->status == 201 && w->location[0] != '\0') {
                size_t n = strlen(w->location);
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                               h2o_strdup(&req->pool, w->location, n).base, n);
            }
            api_error_headers(req, w->status);
            req->res.status = w->status;
            req->res.reason = api_reason(w->status);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("application/json"));
            req->res.content_length = w->out.len; /* see api_send */
            h2o_send_inline(req, w->out.buf, w->out.len);
        }
        if (w->t->shared->log_requests) api_log(w->t, req, w->app_key, w->now, w->start_ns);
    }
    if (w->queued) w->t->writes_in_flight--;
    json_decref(w->root);
    jw_free(&w->out);
    free(w);
}

/* The worker's receiver: writes that came back from the writer. */
void api_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        api_write_t *w = H2O_STRUCT_FROM_MEMBER(api_write_t, msg.link, messages->next);
        h2o_linklist_unlink(&w->msg.link);
        complete(w);
    }
}

/* Marks what the acknowledged writes changed as stale in the response
 * cache: after the commit, before any of them is answered. */
static void touch(api_write_t *w)
{
    if (w->status >= 300) return;
    if (w->touch_lead[0] != '\0') cache_touch_lead(w->app, w->touch_lead);
    if (w->touch_app) cache_touch_app(w->app);
}

/* Runs one batch on the writer's connection. */
static void run_batch(api_write_t *batch)
{
    int rc = store_batch_begin(W.store);
    for (api_write_t *w = batch; w != NULL; w = w->next) {
        if (rc == STORE_OK)
            w->run(W.store, w);
        else
            w->status = api_render_store_error(&w->out, rc, "", "");
    }
    if (rc == STORE_OK) {
        rc = store_batch_end(W.store, 1);
        if (rc != STORE_OK) {
            /* Nothing of the batch happened: no write may be acknowledged. */
            for (api_write_t *w = batch; w != NULL; w = w->next)
                if (w->status < 300)
                    w->status =
                        api_render_store_error(&w->out, rc == STORE_ERROR ? STORE_UNAVAILABLE : rc, "", "");
        }
    }
    for (api_write_t *w = batch; w != NULL; w = w->next)
        touch(w);
    for (api_write_t *w = batch, *next; w != NULL; w = next) {
        next = w->next;
        h2o_multithread_send_message(&w->t->done, &w->msg);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (W.head == NULL && !W.stop)
            pthread_cond_wait(&W.cv, &W.mu);
        if (W.head == NULL) break;
        /* Take up to BATCH_MAX writes off the queue. */
        api_write_t *batch = W.head, *last = W.head;
        int n = 1;
        while (last->next != NULL && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        W.head = last->next;
        if (W.head == NULL) W.tail = &W.head;
        last->next = NULL;
        pthread_mutex_unlock(&W.mu);
        run_batch(batch);
        pthread_mutex_lock(&W.mu);
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

void api_write_submit(api_req_t *r, api_write_t *w)
{
    if (w == NULL) {
        api_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return;
    }
    r->deferred = true;
    if (!W.running) {
        /* No writer (the command line, or tests): run it here, alone. */
        int rc = store_batch_begin(w->t->store);
        if (rc == STORE_OK) {
            w->run(w->t->store, w);
            rc = store_batch_end(w->t->store, 1);
        }
        if (rc != STORE_OK && w->status < 300)
            w->status = api_render_store_error(&w->out, rc == STORE_ERROR ? STORE_UNAVAILABLE : rc, "", "");
        touch(w);
        complete(w);
        return;
    }
    w->queued = true;
    w->t->writes_in_flight++;
    pthread_mutex_lock(&W.mu);
    w->next = NULL;
    *W.tail = w;
    W.tail = &w->next;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

int api_writer_start(const api_shared_t *shared)
{
    char err[256];
    W.store = store_open(shared->db_url, err, sizeof err);
    if (W.store == NULL) {
        fprintf(stderr, "crmd: writer: %s\n", err);
        return -1;
    }
    W.head = NULL;
    W.tail = &W.head;
    W.stop = 0;
    if (pthread_create(&W.thread, NULL, writer_main, NULL) != 0) {
        store_close(W.store);
        return -1;
    }
    W.running = 1;
    return 0;
}

void api_writer_stop(void)
{
    if (!W.running) return;
    pthread_mutex_lock(&W.mu);
    W.stop = 1;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(W.thread, NULL);
    W.running = 0;
    store_close(W.store);
    W.store = NULL;
}
