/*
 * admin.c: the admin listener (admin.h): /metrics and the like
 * on an address of its own, away from the API's.
 *
 * One thread with its own event loop, h2o configuration and context serves
 * it, so a scrape never waits behind API traffic in a worker's loop and
 * never takes one of the API's connections. Everything goes to
 * the caller's handler; nothing of the API (routes, credentials, limits) is
 * reachable here. It is meant for loopback or a private network: no
 * credentials, no TLS, no memory guard, at most ADMIN_CONNS connections
 * at once (h2o's 10 s request timeout closes idle ones).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "http/admin.h"
#include "http/listen.h"

#define ADMIN_CONNS 64
#define ADMIN_MAX_BODY 4096

static struct {
    void (*handle)(h2o_req_t *req, void *arg);
    void *arg;
    const atomic_int *stopping;
    int fd, conns;
    h2o_globalconf_t gc;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_socket_t *listener;
    pthread_t thread;
    bool running;
} A = {.fd = -1};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    A.handle(req, A.arg);
    return 0;
}

static void on_close(void *data)
{
    (void)data;
    A.conns--;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL) return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) return;
        if (A.conns >= ADMIN_CONNS) {
            h2o_socket_close(sock);
            continue;
        }
        A.conns++;
        sock->on_close.cb = on_close;
        h2o_accept(&A.accept, sock);
    }
}

static void *admin_main(void *arg)
{
    (void)arg;
    A.loop = h2o_evloop_create();
    h2o_context_init(&A.ctx, A.loop, &A.gc);
    A.accept.ctx = &A.ctx;
    A.accept.hosts = A.gc.hosts;
    A.listener = h2o_evloop_socket_create(A.loop, A.fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(A.listener, on_accept);
    while (!atomic_load(A.stopping))
        h2o_evloop_run(A.loop, 100);
    /* The process is about to end: open scrapes are simply dropped. */
    h2o_socket_read_stop(A.listener);
    h2o_socket_close(A.listener);
    return NULL;
}

int http_admin_start(const char *host, uint16_t port, void (*handle)(h2o_req_t *req, void *arg), void *arg,
                     const atomic_int *stopping)
{
    if (host == NULL) return 0;
    A.handle = handle;
    A.arg = arg;
    A.stopping = stopping;
    if (http_address_free(host, port) != 0) return -1;
    A.fd = http_listen_socket(host, port);
    if (A.fd < 0) return -1;
    h2o_config_init(&A.gc);
    /* As on the API's listeners: no HTTP/2 inside h2o's HTTP/1 parser. */
    A.gc.http1.upgrade_to_http2 = 0;
    /* Nothing here reads a body: h2o's default of 1 GiB let two POSTs of
     * 300 MiB to /metrics grow the process by 250 MB, with no memory guard
     * on this listener. A larger body is refused as it arrives (413). */
    A.gc.max_request_entity_size = ADMIN_MAX_BODY;
    A.gc.server_name = h2o_iovec_init(H2O_STRLIT("crmd"));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&A.gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof *handler);
    handler->on_req = on_req;
    if (pthread_create(&A.thread, NULL, admin_main, NULL) != 0) {
        close(A.fd);
        A.fd = -1;
        return -1;
    }
    A.running = true;
    return 0;
}

void http_admin_stop(void)
{
    if (!A.running) return;
    pthread_join(A.thread, NULL);
    A.running = false;
}
