/*
 * server.c: see server.h.
 *
 * A request is handled on the loop thread that accepted its connection,
 * and whatever completes it later (a write the writer thread finished, a
 * read that completes on the loop) comes back to that same thread, so a
 * thread's state needs no locks: the store connection, caches and buffers
 * of a thread are only touched by it. A store call that blocks (a
 * PostgreSQL round trip, a busy SQLite database) holds up every other
 * connection of its thread while it lasts; a read that completes later on
 * the loop (store_async_t, store.h) does not.
 */
#include "http/server_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/admin.h"
#include "http/guard.h"
#include "http/listen.h"
#include "http/metrics.h"
#include "http/reqid.h"
#include "http/tls.h"

/* How long a stopping thread keeps serving open connections at most,
 * unless cfg->drain_ms says otherwise. */
#define DRAIN_MS 3000
/* How long an answer that was waited for past DRAIN_MS gets to be written. */
#define DRAIN_GRACE_MS 1000
/* Turns of the loop (10 ms at most each) a stopping thread gives h2o to
 * close the connections it cut after the drain. */
#define CUT_TURNS 100
/* A client that stops reading its answers (a zero receive window) for this
 * long loses its connection: h2o 2.2 has no timeout while writing, so the
 * kernel's TCP_USER_TIMEOUT, which also covers zero-window probes, stands in. */
#define WRITE_STALL_MS 20000

static h2o_globalconf_t globalconf;
static atomic_int stopping;
static atomic_int started;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    /* One handler serves every thread; the connection's context says which
     * thread (and so which state) this is. */
    http_worker_t *w = H2O_STRUCT_FROM_MEMBER(http_worker_t, ctx, req->conn->ctx);
    w->cfg->handle(req, w->state);
    return 0;
}

/* h2o answers some errors itself, before any handler runs (413 for a body
 * over the limit, 400 for a malformed request), in text/plain. They go
 * through the host's fallback path, where this filter swaps the body for
 * the one cfg->error_body gives. */
typedef struct error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
} error_ostream_t;

static void error_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                          h2o_send_state_t state)
{
    error_ostream_t *o = (error_ostream_t *)self;
    (void)bufs;
    (void)bufcnt;
    if (!o->sent && o->body.len > 0) {
        o->sent = 1;
        h2o_ostream_send_next(&o->super, req, &o->body, 1, state);
    } else {
        h2o_ostream_send_next(&o->super, req, NULL, 0, state);
    }
}

static void error_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    http_worker_t *w = H2O_STRUCT_FROM_MEMBER(http_worker_t, ctx, req->conn->ctx);
    if (req->res.status >= 400 && w->state != NULL && w->cfg->error_body != NULL) {
        h2o_iovec_t body = w->cfg->error_body(req, w->state);
        if (body.base != NULL) {
            error_ostream_t *o = (error_ostream_t *)h2o_add_ostream(req, sizeof *o, slot);
            o->super.do_send = error_do_send;
            o->body = body;
            o->sent = 0;
            req->res.content_length = body.len;
            http_guard_json_type(req);
            slot = &o->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

static void on_busy_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    free(sock->data);
    h2o_socket_close(sock);
}

/* Refuses a connection over the cap at once rather than leave its client
 * hanging in the backlog. Over TLS there is nobody to tell in plain
 * text: it is only closed. */
static void refuse(http_worker_t *w, h2o_socket_t *sock)
{
    metrics_count(METRIC_CONNECTIONS_REFUSED);
    char *buf = w->cfg->tls_cert != NULL ? NULL : malloc(HTTP_BUSY_MAX);
    if (buf == NULL) {
        h2o_socket_close(sock);
        return;
    }
    sock->data = buf;
    h2o_iovec_t v = h2o_iovec_init(
        buf, http_busy_response(buf, HTTP_BUSY_MAX, "Too many open connections; retry shortly."));
    h2o_socket_write(sock, &v, 1, on_busy_written);
}

long http_max_connections_default(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Leave room for the database files, listeners and the odd pipe. */
    long room = rl.rlim_cur == RLIM_INFINITY ? 1000000 : (long)rl.rlim_cur - 128;
    return room < 10000 ? (room > 16 ? room : 16) : 10000;
}

/* The threads of http_serve, for balancing and for the metrics: all_count
 * is set once all_workers may be read, before any thread starts, and back
 * to 0 before they are freed. */
static http_worker_t **all_workers;
static atomic_int all_count;

/* A connection accepted by one thread for another (its socket's fd). */
typedef struct handoff {
    h2o_multithread_message_t msg;
    int fd;
} handoff_t;

static int load_of(http_worker_t *w)
{
    return atomic_load(&w->conns) + atomic_load(&w->inbound);
}

/* The kernel spreads new connections over the threads' listeners by a hash
 * of their addresses (SO_REUSEPORT), so a few long-lived connections often
 * land unevenly: 11 of 16 on one of two threads one time in five. Each
 * thread serves its connections in turn, so the busier one's requests wait
 * longer and its latencies set the tail. A thread that accepts a
 * connection while another serves fewer hands it over instead. Returns
 * true if fd went to another thread. */
static bool hand_off(http_worker_t *w, int fd)
{
    http_worker_t *to = w;
    int least = load_of(w);
    int n = atomic_load(&all_count);
    for (int i = 0; i < n; i++) {
        http_worker_t *o = all_workers[i];
        if (o == w || !atomic_load(&o->taking)) continue;
        int load = load_of(o);
        if (load < least) {
            to = o;
            least = load;
        }
    }
    if (to == w) return false;
    handoff_t *h = calloc(1, sizeof *h);
    if (h == NULL) return false;
    /* Counted before stopping is read: a stopping thread waits for what it
     * was counted to receive, and nothing is handed over once stopping is
     * seen, so no message can arrive after its loop has ended. */
    atomic_fetch_add(&to->inbound, 1);
    if (atomic_load(&stopping)) {
        atomic_fetch_sub(&to->inbound, 1);
        free(h);
        return false;
    }
    h->fd = fd;
    h2o_multithread_send_message(&to->handoff, &h->msg);
    return true;
}

int http_thread_connections(int *counts, int max)
{
    int n = atomic_load(&all_count);
    if (n > max) n = max;
    for (int i = 0; i < n; i++)
        counts[i] = load_of(all_workers[i]);
    return n;
}

static void serve_fd(http_worker_t *w, int fd)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(w->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    http_worker_accept(w, sock);
}

static void on_handoff(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    http_worker_t *w = H2O_STRUCT_FROM_MEMBER(http_worker_t, handoff, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        handoff_t *h = H2O_STRUCT_FROM_MEMBER(handoff_t, msg.link, messages->next);
        h2o_linklist_unlink(&h->msg.link);
        int fd = h->fd;
        free(h);
        serve_fd(w, fd);
        atomic_fetch_sub(&w->inbound, 1);
    }
}

/* Accepts up to max connections waiting on w's listener. The accepted
 * socket inherits TCP_NODELAY from the listener, as with h2o's own
 * accept. */
static void accept_pending(http_worker_t *w, int max)
{
    int listener = h2o_socket_get_fd(w->listener);
    for (int i = 0; i < max; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        /* The cap counts all threads together: SO_REUSEPORT spreads
         * connections unevenly, so a per-thread share of it would refuse
         * some below it. */
        if (!http_worker_admit(w->cfg->max_connections)) {
            refuse(w, h2o_evloop_socket_create(w->loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION));
            continue;
        }
        int ms = WRITE_STALL_MS;
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
        if (!hand_off(w, fd)) serve_fd(w, fd);
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL) return;
    /* A handful per wake-up, as h2o's own server does. */
    accept_pending(listener->data, 16);
}

int http_conns_open(h2o_context_t *ctx)
{
    return !h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns);
}

void http_config_setup(h2o_globalconf_t *gc, const http_config_t *cfg)
{
    h2o_config_init(gc);
    gc->max_request_entity_size = cfg->max_body;
    gc->server_name = h2o_iovec_init(H2O_STRLIT("crmd"));
    h2o_hostconf_t *host = h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_filter_t *filter = h2o_create_filter(&host->fallback_path, sizeof *filter);
    filter->on_setup_ostream = error_on_setup_ostream;
    h2o_handler_t *handler = h2o_create_handler(path, sizeof *handler);
    handler->on_req = on_req;
    http_guard_configure(gc, cfg);
    http_guard_filter(path);
    http_guard_filter(&host->fallback_path);
}

int http_worker_init(http_worker_t *w, h2o_globalconf_t *gc)
{
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, gc);
    http_guard_thread_init(w);
    w->state = w->cfg->thread_init(w->index, w->cfg->arg, &w->ctx);
    if (w->state == NULL) return -1;
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = gc->hosts;
    return 0;
}

/* Whether the thread has answers still being prepared elsewhere (a read
 * or a write in flight). */
static int worker_busy(const http_worker_t *w)
{
    return w->cfg->busy != NULL && w->cfg->busy(w->state);
}

static void *worker_main(void *arg)
{
    http_worker_t *w = arg;
    if (http_worker_init(w, &globalconf) != 0) {
        w->failed = 1;
        atomic_store(&stopping, 1);
        atomic_fetch_add(&started, 1);
        return NULL;
    }
    w->listener = h2o_evloop_socket_create(w->loop, w->fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_multithread_register_receiver(w->ctx.queue, &w->handoff, on_handoff);
    atomic_store(&w->taking, 1);
    h2o_socket_read_start(w->listener, on_accept);
    atomic_fetch_add(&started, 1);

    while (!atomic_load(&stopping))
        h2o_evloop_run(w->loop, 100);

    /* Stop accepting, ask connections to close once idle, and keep the loop
     * turning so responses already being written reach their clients. */
    h2o_socket_read_stop(w->listener);
    /* Connections the kernel already completed are clients that may have
     * sent their request: serve them rather than reset them. */
    accept_pending(w, INT32_MAX);
    h2o_socket_close(w->listener);
    w->listener = NULL;
    h2o_context_request_shutdown(&w->ctx);
    uint64_t drain = w->cfg->drain_ms > 0 ? (uint64_t)w->cfg->drain_ms : DRAIN_MS;
    uint64_t deadline = h2o_now(w->loop) + drain;
    for (;;) {
        /* Answers still being prepared elsewhere are waited for however
         * long they take, and each then gets a moment to be written. */
        int busy = worker_busy(w);
        if (busy && deadline < h2o_now(w->loop) + DRAIN_GRACE_MS)
            deadline = h2o_now(w->loop) + DRAIN_GRACE_MS;
        /* Connections handed to this thread are taken whatever the time:
         * the loop must not end with one of them still in its queue. */
        if (!busy && atomic_load(&w->inbound) == 0 &&
            (!http_conns_open(&w->ctx) || h2o_now(w->loop) >= deadline))
            break;
        h2o_evloop_run(w->loop, 10);
    }
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->handoff);
    /* Connections still open (clients that keep an idle one, or never end
     * a request) are cut, and h2o, which sees that at its next turn,
     * closes and frees each: otherwise their memory would stay allocated,
     * unreachable once the worker is freed, and LeakSanitizer would report
     * it at exit. The last turn frees the sockets closed in the one
     * before. */
    int cut = http_guard_cut_all(w);
    if (cut > 0)
        fprintf(stderr,
                "crmd: stopping: %d connection%s still open after the %llu s drain cut (idle ones, or "
                "answers still being written: --drain-seconds gives them longer)\n",
                cut, cut == 1 ? "" : "s", (unsigned long long)(drain / 1000));
    for (int i = 0; i < CUT_TURNS && http_guard_conns_open(w); i++)
        h2o_evloop_run(w->loop, 10);
    h2o_evloop_run(w->loop, 0);
    /* A request whose frames h2o had read before the cut can still reach
     * its handler in those turns and start a read (a PostgreSQL query, its
     * app looked up) or a write. The thread's store may not close with one
     * in flight (store.h), so the loop turns until each is over, as in the
     * drain; the answers have nobody left to go to. Seen on PostgreSQL
     * over HTTP/2: an abort at exit, one run in many. */
    while (worker_busy(w))
        h2o_evloop_run(w->loop, 10);

    http_guard_thread_fini(w);
    w->cfg->thread_fini(w->state);
    return NULL;
}

static int start_tls(const http_config_t *cfg)
{
    if (cfg->tls_cert == NULL) return 0;
    char err[512];
    if (http_tls_init(cfg->tls_cert, cfg->tls_key, cfg->http2, err, sizeof err) == 0) return 0;
    fprintf(stderr, "crmd: TLS: %s\n", err);
    return -1;
}

/* SIGHUP: the certificate and key read again; a failure keeps the old. */
static void reload_tls(void)
{
    char err[512];
    if (!http_tls_enabled()) {
        fprintf(stderr, "crmd: SIGHUP: nothing to reload (no --tls-cert)\n");
    } else if (http_tls_reload(err, sizeof err) == 0) {
        metrics_count(METRIC_TLS_RELOADS);
        fprintf(stderr, "crmd: SIGHUP: TLS certificate and key reloaded\n");
    } else {
        metrics_count(METRIC_TLS_RELOAD_FAILURES);
        fprintf(stderr, "crmd: SIGHUP: TLS reload failed, the old certificate stays: %s\n", err);
    }
}

static void stop_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGHUP); /* --tls-cert reload: handled by the main thread */
}

void http_block_stop_signals(void)
{
    sigset_t sigs;
    stop_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
}

int http_serve(const http_config_t *cfg, void (*ready)(void *arg))
{
    int rc = 1;
    /* Buffers of 128 KiB and more (request bodies, large answers) get
     * their own mappings, so the memory a closed connection held goes back
     * to the system at once instead of staying in the heap (glibc would
     * otherwise raise this threshold after the first large free). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    http_config_setup(&globalconf, cfg);

    int n = cfg->threads;
    http_worker_t **workers = calloc((size_t)n, sizeof *workers);
    if (workers == NULL) return 1;
    for (int i = 0; i < n; i++) {
        workers[i] = calloc(1, sizeof(http_worker_t));
        if (workers[i] == NULL) abort();
        workers[i]->fd = -1;
    }

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t sigs;
    stop_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (start_tls(cfg) != 0 || http_address_free(cfg->host, cfg->port) != 0 ||
        http_admin_start(cfg->admin_host, cfg->admin_port, cfg->admin_handle, cfg->arg, &stopping) != 0)
        goto out;
    for (int i = 0; i < n; i++) {
        http_worker_t *w = workers[i];
        w->cfg = cfg;
        w->index = i;
        w->fd = http_listen_socket(cfg->host, cfg->port);
        if (w->fd < 0) goto out;
    }
    all_workers = workers;
    atomic_store(&all_count, n);
    for (int i = 0; i < n; i++)
        pthread_create(&workers[i]->thread, NULL, worker_main, workers[i]);
    while (atomic_load(&started) < n)
        usleep(1000);
    if (!atomic_load(&stopping)) {
        if (ready != NULL) ready(cfg->arg);
        int sig;
        /* Wait for SIGINT/SIGTERM, or for a worker that failed to start. */
        struct timespec tick = {0, 100 * 1000 * 1000};
        while (!atomic_load(&stopping)) {
            sig = sigtimedwait(&sigs, NULL, &tick);
            if (sig == SIGINT || sig == SIGTERM) atomic_store(&stopping, 1);
            if (sig == SIGHUP) reload_tls();
        }
    }
    /* The listeners close now: a new crmd may start on the port. */
    http_address_release();
    rc = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(workers[i]->thread, NULL);
        if (workers[i]->failed) rc = 1;
    }
out:
    atomic_store(&stopping, 1);
    http_address_release();
    http_admin_stop();
    atomic_store(&all_count, 0);
    for (int i = 0; i < n; i++) {
        if (workers[i]->fd >= 0 && rc != 0 && workers[i]->loop == NULL) close(workers[i]->fd);
        free(workers[i]);
    }
    free(workers);
    return rc;
}
