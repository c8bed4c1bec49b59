/*
 * loop.c: see loop.h.
 *
 * A watch is an h2o socket on a duplicate of the store's descriptor, made
 * with H2O_SOCKET_FLAG_DONT_READ: h2o only reports readiness, and never
 * reads or writes. Being a duplicate, it is h2o's to close, and libpq may
 * close its own descriptor whenever it likes (it does when it finds the
 * connection gone): the watch then still holds that socket, which reports
 * end of file, until the store lets go of it. Without the duplicate, h2o
 * would close libpq's descriptor, or a later one reusing its number.
 *
 * A timer is an entry on an h2o timeout. h2o 2.2 has one timeout object
 * per duration, which may not go away while its entries run, so this
 * keeps one per duration used (the store uses two: at once, and the
 * connect timeout; exports two more: their time limit, and how long a
 * thread keeps idle readers) until the thread ends.
 */
#include "api/loop.h"

#include <fcntl.h>
#include <stdlib.h>

/* Distinct timer durations a thread may use. */
#define LOOP_DURATIONS 6

struct api_loop {
    h2o_evloop_t *loop;
    int n;
    h2o_timeout_t timeouts[LOOP_DURATIONS];
};

struct store_watch {
    h2o_socket_t *sock;
    store_io_fn fn;
    void *arg;
    bool writing; /* a write notification is asked for */
};

struct store_timer {
    h2o_timeout_entry_t entry;
    store_timer_fn fn;
    void *arg;
};

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err; /* with DONT_READ, h2o reads nothing and has nothing to say */
    store_watch_t *w = sock->data;
    w->fn(w->arg, STORE_IO_READ);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    store_watch_t *w = sock->data;
    w->writing = false;
    w->fn(w->arg, STORE_IO_WRITE);
}

static store_watch_t *watch(void *ctx, int fd, store_io_fn fn, void *arg)
{
    api_loop_t *l = ctx;
    store_watch_t *w = malloc(sizeof *w);
    int dup = w != NULL ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (dup < 0) {
        free(w);
        return NULL;
    }
    *w = (store_watch_t){.fn = fn, .arg = arg};
    w->sock = h2o_evloop_socket_create(l->loop, dup, H2O_SOCKET_FLAG_DONT_READ);
    w->sock->data = w;
    return w;
}

static void want_read(store_watch_t *w, bool on)
{
    if (on && !h2o_socket_is_reading(w->sock))
        h2o_socket_read_start(w->sock, on_readable);
    else if (!on && h2o_socket_is_reading(w->sock))
        h2o_socket_read_stop(w->sock);
}

static void want_write(store_watch_t *w)
{
    if (w->writing) return;
    w->writing = true;
    h2o_socket_notify_write(w->sock, on_writable);
}

static void unwatch(store_watch_t *w)
{
    /* h2o frees the socket on a later turn of the loop and runs no more of
     * its callbacks, even those already due in this turn. */
    h2o_socket_close(w->sock);
    free(w);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    store_timer_t *t = H2O_STRUCT_FROM_MEMBER(store_timer_t, entry, entry);
    store_timer_fn fn = t->fn;
    void *arg = t->arg;
    free(t); /* h2o has unlinked it, and touches it no more */
    fn(arg);
}

/* The timeout object for ms, made on first use; NULL when all are taken. */
static h2o_timeout_t *timeout_for(api_loop_t *l, uint32_t ms)
{
    for (int i = 0; i < l->n; i++)
        if (l->timeouts[i].timeout == ms) return &l->timeouts[i];
    if (l->n == LOOP_DURATIONS) return NULL;
    h2o_timeout_init(l->loop, &l->timeouts[l->n], ms);
    return &l->timeouts[l->n++];
}

static store_timer_t *timer_start(void *ctx, uint32_t ms, store_timer_fn fn, void *arg)
{
    api_loop_t *l = ctx;
    h2o_timeout_t *timeout = timeout_for(l, ms);
    store_timer_t *t = timeout != NULL ? calloc(1, sizeof *t) : NULL;
    if (t == NULL) return NULL;
    t->entry.cb = on_timeout;
    t->fn = fn;
    t->arg = arg;
    h2o_timeout_link(l->loop, timeout, &t->entry);
    return t;
}

static void timer_stop(store_timer_t *t)
{
    h2o_timeout_unlink(&t->entry);
    free(t);
}

api_loop_t *api_loop_new(h2o_evloop_t *loop, store_loop_t *out)
{
    api_loop_t *l = calloc(1, sizeof *l);
    if (l == NULL) return NULL;
    l->loop = loop;
    *out = (store_loop_t){.ctx = l,
                          .watch = watch,
                          .read = want_read,
                          .write = want_write,
                          .unwatch = unwatch,
                          .timer_start = timer_start,
                          .timer_stop = timer_stop};
    return l;
}

void api_loop_free(api_loop_t *l)
{
    if (l == NULL) return;
    for (int i = 0; i < l->n; i++)
        h2o_timeout_dispose(l->loop, &l->timeouts[i]);
    free(l);
}
