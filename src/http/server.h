/*
 * server.h: the h2o glue. N threads, each with its own event loop, its own
 * listening socket on the same address (SO_REUSEPORT: the kernel spreads
 * connections) and its own per-thread state made by the caller.
 */
#ifndef CRMD_HTTP_SERVER_H
#define CRMD_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "h2o.h"

typedef struct http_config {
    const char *host; /* numeric address to bind, e.g. "127.0.0.1" */
    uint16_t port;
    int threads;
    size_t max_body;     /* bytes; larger request bodies are refused with 413 */
    int max_connections; /* open at once, all threads together; beyond: 503 */
    /* Called on each server thread before it serves, with the thread's h2o
     * context; returns the thread's state (NULL on failure, which stops the
     * server). */
    void *(*thread_init)(int index, void *arg, h2o_context_t *ctx);
    /* While stopping, a thread keeps its loop turning, past the drain time,
     * as long as this says it still has work in flight (answers it owes
     * that another thread is preparing). May be NULL. */
    int (*busy)(void *state);
    /* Called on each server thread after it stopped serving. */
    void (*thread_fini)(void *state);
    /* Handles one request completely (it must send a response). */
    void (*handle)(h2o_req_t *req, void *state);
    /* Gives the body (in req->pool) that replaces the one of an error that
     * h2o itself answered (a body over max_body, a malformed request), so
     * that every error a client sees has the same form. */
    h2o_iovec_t (*error_body)(h2o_req_t *req, void *state);
    void *arg;
} http_config_t;

/* A default for max_connections that the process's file limit can hold
 * (it raises its soft limit to the hard one first). */
long http_max_connections_default(void);

/* Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight
 * responses finish (up to a few seconds) and returns 0; 1 on a start-up
 * failure (reason on stderr). ready, if not NULL, is called once every
 * thread listens. */
int http_serve(const http_config_t *cfg, void (*ready)(void *arg));

#endif
