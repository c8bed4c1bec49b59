/*
 * server_int.h: the h2o glue's internals, shared by server.c and by tests
 * that drive requests through it in-process (tests/fuzz/fuzz_request.c
 * feeds a socketpair to one worker on the test's own thread).
 *
 * Nothing in src/ but server.c and guard.c includes this header.
 */
#ifndef CRMD_HTTP_SERVER_INT_H
#define CRMD_HTTP_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "http/server.h"

/* One serving thread: its event loop, its h2o context and listener, and
 * the state cfg->thread_init made for it. A request finds its worker (and
 * so its state) from its connection's context, which is the ctx member. */
typedef struct http_worker {
    const http_config_t *cfg;
    int index;
    int fd; /* the listening socket; -1 for none */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    void *state;

    /* The memory guard's state for this thread (guard.c): the timers of
     * its sweep and of connections yet to show their protocol, the
     * responses it holds for readers, oldest first, and its open
     * connections. */
    h2o_timeout_t guard_tick;
    h2o_timeout_entry_t guard_sweep;
    h2o_timeout_t guard_detect;
    h2o_linklist_t guard_held;
    h2o_linklist_t guard_conns;

    /* Balancing (server.c): the connections this thread serves and those
     * another thread has handed it that it has not taken yet, both read by
     * the other threads; nonzero taking once handoff is registered with
     * the thread's queue, so that connections may be handed to it. */
    atomic_int conns;
    atomic_int inbound;
    atomic_int taking;
    h2o_multithread_receiver_t handoff;

    pthread_t thread;
    int failed;
} http_worker_t;

/* Initialises gc as crmd serves: one host whose every path goes to
 * cfg->handle with the state of the worker serving the connection, a body
 * limit of cfg->max_body, a filter that gives the errors h2o answers
 * itself cfg->error_body, and the memory guard's limits and response
 * accounting (guard.h). cfg must outlive gc. */
void http_config_setup(h2o_globalconf_t *gc, const http_config_t *cfg);

/* Makes w's event loop and its h2o context over gc, the guard's timers,
 * then its state with cfg->thread_init (w->cfg and w->index set by the
 * caller), on the thread that will run the loop. Returns 0, or -1 if
 * thread_init failed. A socket then given to http_worker_accept(w, sock)
 * (or to h2o_accept(&w->accept_ctx, sock), without the guard's per-connection
 * limits) is served by w->loop. */
int http_worker_init(http_worker_t *w, h2o_globalconf_t *gc);

/* Serves sock on w under the memory guard (guard.h). The caller counted it
 * with http_worker_admit. */
void http_worker_accept(http_worker_t *w, h2o_socket_t *sock);

/* Counts one more open connection, all threads together; false (and not
 * counted) if max are open already. */
bool http_worker_admit(int max);

/* Nonzero while a connection (HTTP/1 or HTTP/2) is open on ctx. */
int http_conns_open(h2o_context_t *ctx);

#endif
