/*
 * resolve.c: see resolve.h.
 *
 * A job lives from api_resolve_start until its completion on the loop: the
 * resolver thread fills in the verdict, then writes the eventfd and
 * touches the job no more; the loop's watch sees the eventfd readable, and
 * the loop's thread ends the watch, completes the read and frees the job.
 */
#include "api/resolve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api/loop.h"
#include "webhook/target.h"

static atomic_int running; /* resolutions in progress, all threads */

typedef struct job {
    char host[WEBHOOK_HOST_MAX];
    bool refused; /* the verdict, set by the resolver thread */
    int fd;       /* the eventfd */
    store_async_t async;
    api_loop_t *loop;
    store_loop_t view;
    store_watch_t *watch;
} job_t;

static store_rc_t verdict(const char *host)
{
    char addr[WEBHOOK_ADDR_TEXT_MAX];
    if (!webhook_host_refused(host, addr)) return STORE_OK;
    fprintf(stderr, "crmd: webhooks: %s resolves to %s, which is not allowed\n", host, addr);
    return STORE_CONFLICT;
}

static void *resolver_main(void *arg)
{
    job_t *j = arg;
    char addr[WEBHOOK_ADDR_TEXT_MAX];
    j->refused = webhook_host_refused(j->host, addr);
    /* The address goes to the operator's log only, never to the client. */
    if (j->refused)
        fprintf(stderr, "crmd: webhooks: %s resolves to %s, which is not allowed\n", j->host, addr);
    /* From here on the job is the loop's. */
    uint64_t one = 1;
    ssize_t n = write(j->fd, &one, sizeof one);
    (void)n; /* an eventfd's counter cannot overflow with one write */
    return NULL;
}

static void job_free(job_t *j)
{
    if (j->watch != NULL) j->view.unwatch(j->watch);
    if (j->fd >= 0) close(j->fd);
    api_loop_free(j->loop);
    free(j);
}

/* The loop's side: the resolver has written the eventfd. */
static void on_ready(void *arg, unsigned events)
{
    (void)events;
    job_t *j = arg;
    store_async_t async = j->async;
    store_rc_t rc = j->refused ? STORE_CONFLICT : STORE_OK;
    job_free(j);
    atomic_fetch_sub(&running, 1);
    async.done(async.ctx, rc);
}

/* Starts j's resolver thread, detached; false when it cannot run. */
static bool spawn(job_t *j)
{
    pthread_attr_t attr;
    pthread_t tid;
    if (pthread_attr_init(&attr) != 0) return false;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&tid, &attr, resolver_main, j) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

store_rc_t api_resolve_start(api_req_t *r, const char *host, const store_async_t *async)
{
    if (r->t->loop == NULL) return verdict(host);
    if (atomic_fetch_add(&running, 1) >= API_RESOLVE_MAX) {
        atomic_fetch_sub(&running, 1);
        return STORE_UNAVAILABLE;
    }
    job_t *j = calloc(1, sizeof *j);
    if (j != NULL) {
        snprintf(j->host, sizeof j->host, "%s", host);
        j->async = *async;
        j->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        j->loop = j->fd >= 0 ? api_loop_new(r->t->ctx->loop, &j->view) : NULL;
        j->watch = j->loop != NULL ? j->view.watch(j->view.ctx, j->fd, on_ready, j) : NULL;
    }
    if (j == NULL || j->watch == NULL) {
        if (j != NULL) job_free(j);
        atomic_fetch_sub(&running, 1);
        return STORE_UNAVAILABLE;
    }
    j->view.read(j->watch, true);
    if (!spawn(j)) {
        job_free(j);
        atomic_fetch_sub(&running, 1);
        return STORE_UNAVAILABLE;
    }
    return STORE_PENDING;
}
