/*
 * server.h: the h2o glue. N threads, each with its own event loop, its own
 * listening socket on the same address (SO_REUSEPORT: the kernel spreads
 * connections) and its own per-thread state made by the caller.
 */
#ifndef CRMD_HTTP_SERVER_H
#define CRMD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2o.h"

typedef struct http_config {
    const char *host; /* numeric address to bind, e.g. "127.0.0.1" */
    uint16_t port;
    int threads;
    size_t max_body; /* bytes; larger request bodies are refused with 413 */
    /* A body over body_small bytes (declared, or chunked, or as it
     * arrives) is read further only if body_check(req, declared, state,
     * &owner, &limit, &answer) returns 0, from the request's head alone
     * (declared: its Content-Length, SIZE_MAX when it has none, or, for
     * one that outgrew the limit it was allowed, its size so far); it then
     * counts, with the other judged bodies of that owner, against half the
     * request memory (503 beyond), for *limit bytes (preset to max_body):
     * the most it may bring, past which (with no length declared) it is
     * judged again at its size. Otherwise it returns the status of the
     * answer it made in req->res (headers) and *answer (the body, in req's
     * pool), or -1 for none (a 503 is sent): the guard sends it at once
     * and reads no more of the request (see guard.h). NULL: no check. */
    size_t body_small;
    int (*body_check)(h2o_req_t *req, size_t declared, void *state, uint64_t *owner, size_t *limit,
                      h2o_iovec_t *answer);
    /* The 503 for a large body body_check allowed but its owner's share
     * has no room for: its headers in req->res, its body returned (in
     * req's pool), with the request id and log line of every answer. NULL:
     * the guard's own 503. */
    h2o_iovec_t (*body_busy)(h2o_req_t *req, void *state);
    int max_connections; /* open at once, all threads together; beyond: 503 */
    /* After SIGTERM or SIGINT, how long each thread goes on serving the
     * connections it has (answers being written, an export streaming)
     * before it cuts them (0: 3000). */
    int drain_ms;
    /* What clients may make crmd hold, all threads together (0: the
     * default, HTTP_MEMORY_DEFAULT): request bytes received and not yet
     * answered (bodies, large heads), and response bytes a slow reader has
     * not taken yet (see src/http/guard.h). */
    size_t request_memory;
    size_t response_memory;
    /* Cleartext HTTP/2 with prior knowledge. Off: the HTTP/2 preface is a
     * malformed HTTP/1 request (400, connection closed). Upgrade: h2c is
     * never honoured (the request is answered over HTTP/1.1). */
    bool http2;
    /* HTTPS: the certificate chain and private key files (PEM), both or
     * neither (NULL: plain HTTP). See tls.h; with http2, HTTP/2 is offered
     * by ALPN instead of by prior knowledge. */
    const char *tls_cert, *tls_key;
    /* The admin listener: a numeric address (NULL: none) whose every
     * request goes to admin_handle (with arg), on a thread of its own; see
     * http/admin.c. */
    const char *admin_host;
    uint16_t admin_port;
    void (*admin_handle)(h2o_req_t *req, void *arg);
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
    /* The program's own bytes (its compiled-in documents), which answers
     * send as they are, never copied: the memory guard does not count
     * answer bytes from there where h2o sends them without a copy either
     * (cleartext HTTP/1; HTTP/2, which frames only what the peer's windows
     * take), so that readers that take nothing of them cannot fill the
     * response memory with bytes crmd does not hold. At most
     * HTTP_STATIC_MAX of them (more are ignored: counted as any answer);
     * the array and the bytes must outlive http_serve. */
    const h2o_iovec_t *static_bodies;
    size_t nstatic;
    void *arg;
} http_config_t;

#define HTTP_STATIC_MAX 64

#define HTTP_MEMORY_DEFAULT ((size_t)64 << 20)

/* To call before copying an answer of len bytes into req's pool (as
 * h2o_send_inline does): 0 if it may be sent; otherwise -1, and req has
 * been answered 503 (JSON, Retry-After: 1), so the caller sends nothing
 * more. Answers over 64 KiB must fit crmd's response memory after the
 * oldest answers slow readers hold on this thread are given up; the bytes
 * count once sent, until the reader has them. Answers sent without asking
 * are counted all the same, but the copy is then made before the guard
 * can refuse it. */
int http_response_admit(h2o_req_t *req, size_t len);

/* Open connections, all threads together; the bytes held of clients'
 * requests and of answers not yet taken (the memory guard's two totals). */
int http_open_connections(void);
void http_memory_held(size_t *request, size_t *response);

/* The most serving threads http_thread_connections reports. */
#define HTTP_THREADS_REPORTED 256

/* The connections each serving thread holds now (those it serves and
 * those handed to it but not yet taken), into counts[0] to counts[max - 1];
 * returns how many threads it wrote, 0 when none serve. Any thread may
 * call it while http_serve runs. */
int http_thread_connections(int *counts, int max);

/* A default for max_connections that the process's file limit can hold
 * (it raises its soft limit to the hard one first). */
long http_max_connections_default(void);

/* Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
 * it starts from then on, leaving them to http_serve's wait. Call it before
 * the program starts any thread of its own (http_serve does it for its
 * workers): a thread that does not block them would take a SIGTERM that
 * arrives while the waiting thread is between two waits, and the process
 * would die of it instead of stopping in order. */
void http_block_stop_signals(void);

/* Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight
 * responses finish (up to a few seconds) and returns 0; 1 on a start-up
 * failure (reason on stderr). ready, if not NULL, is called once every
 * thread listens. */
int http_serve(const http_config_t *cfg, void (*ready)(void *arg));

#endif
