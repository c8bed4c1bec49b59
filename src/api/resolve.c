/*
 * resolve.c: see resolve.h.
 *
 * A lookup belongs to its api_req_t, which lives on the heap until it
 * ends, not to the h2o request, whose pool h2o frees when the client goes
 * away: the lookup's callback and its timer only ever reach r, and look
 * at r->req to learn whether anyone is left to answer. Exactly one of the
 * two ends the lookup: the answer stops the timer; the timer cancels the
 * lookup, after which h2o frees its answer without calling back.
 */
#include "api/resolve.h"

#include <assert.h>
#include <netdb.h>
#include <string.h>

#include "api/request.h"

void api_resolve_setup(void)
{
    h2o_hostinfo_max_threads = API_RESOLVE_THREADS;
}

/* Ends r's lookup with res: done runs, unless r's client is gone. */
static void resolve_finish(api_req_t *r, const struct addrinfo *res)
{
    api_resolve_done_fn done = r->dns.done;
    r->dns.done = NULL;
    if (r->req == NULL) {
        api_req_abandon(r); /* nobody is left to answer */
        return;
    }
    done(r, res);
}

/* h2o's answer, on r's loop; h2o frees res once this returns. */
static void on_resolved(h2o_hostinfo_getaddr_req_t *lookup, const char *errstr, struct addrinfo *res,
                        void *cbdata)
{
    api_req_t *r = cbdata;
    assert(r->dns.lookup == lookup);
    r->dns.lookup = NULL;
    r->t->sloop.timer_stop(r->dns.timer);
    r->dns.timer = NULL;
    r->t->resolves_pending--;
    resolve_finish(r, errstr == NULL ? res : NULL);
}

/* The lookup took too long: its name counts as one that does not resolve.
 * The loop has freed the timer. */
static void on_resolve_timeout(void *arg)
{
    api_req_t *r = arg;
    r->dns.timer = NULL;
    h2o_hostinfo_getaddr_cancel(r->dns.lookup);
    r->dns.lookup = NULL;
    r->t->resolves_pending--;
    resolve_finish(r, NULL);
}

void api_req_resolve(api_req_t *r, const char *host, api_resolve_done_fn done)
{
    assert(r->dns.done == NULL && r->dns.lookup == NULL);
    api_thread_t *t = r->t;
    r->dns.done = done;
    /* Without the loop as the store sees it (a thread not serving yet)
     * there is no timer to bound a lookup with. */
    if (t->loop == NULL || t->resolves_pending >= API_RESOLVE_MAX_PENDING) {
        resolve_finish(r, NULL);
        return;
    }
    r->dns.timer = t->sloop.timer_start(t->sloop.ctx, API_RESOLVE_TIMEOUT_MS, on_resolve_timeout, r);
    if (r->dns.timer == NULL) {
        resolve_finish(r, NULL);
        return;
    }
    t->resolves_pending++;
    /* Every address of every family, so that none the sender might pick
     * goes unchecked; the service only keeps getaddrinfo from answering
     * once per socket type. */
    r->dns.lookup =
        h2o_hostinfo_getaddr(&t->ctx->receivers.hostinfo_getaddr, h2o_iovec_init(host, strlen(host)),
                             h2o_iovec_init(H2O_STRLIT("443")), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
                             AI_NUMERICSERV, on_resolved, r);
}
