/*
 * api_int.h: the API's internal types, shared by its files (and by unit
 * tests); nothing outside src/api/ includes it.
 *
 * The request path runs down these layers; no file calls one above it:
 *
 *   dispatch.c   entry point, thread life cycle, rate limit; calls
 *     loop.c       the thread's event loop as the store sees it (a leaf)
 *     routes.c     the route table: path and method -> entry
 *     auth.c       credentials, before the handler when the entry says so
 *   leads.c, follows.c, webhooks.c, health.c   handlers, reached only
 *                through the table
 *   resource.c   what the resource handlers share (reads, decoding writes)
 *   change.c     what a write changed, and what follows from it recorded in
 *                its batch (outbox.c: the webhooks' events)
 *   writer.c     group commit: writes run on the writer thread
 *   resolve.c    a host name resolved off the loop (webhook targets)
 *   request.c    the request's life, its input (body, query), its answer
 *   respond.c, log.c   sending a response; the request log
 *
 * Everything here belongs to one server thread, except api_write_t, which
 * travels to the writer thread and back (see there).
 */
#ifndef CRMD_API_API_INT_H
#define CRMD_API_API_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "h2o.h"
#include "h2o/hostinfo.h"

#include "api/api.h"
#include "api/cache.h"
#include "api/etag.h"
#include "api/log.h"
#include "api/proxy.h"
#include "http/reqid.h"
#include "auth/jwt.h"
#include "model/codec.h"
#include "model/jsonw.h"
#include "model/webhook.h"
#include "store/store.h"

/* HTTP methods. A route entry names one; HEAD is served by the GET entry
 * of the same path; OPTIONS is a CORS preflight (cors.h), never an entry. Sets of methods are bit masks of
 * METHOD_BIT(m). */
enum api_method {
    METHOD_GET,
    METHOD_HEAD,
    METHOD_POST,
    METHOD_PUT,
    METHOD_DELETE,
    METHOD_OPTIONS,
    METHOD_OTHER
};
#define METHOD_BIT(m) (1u << (m))

/* What a successful write makes stale in the response cache. */
enum api_stale {
    API_STALE_LEAD = 1u << 0, /* the lead the path's {id} names: its GET, its follows */
    API_STALE_APP = 1u << 1   /* the app's lists of leads */
};

/* The status a write's log line shows when its client was gone before the
 * writer reached it, so it was not run (nginx's "client closed request"). */
#define API_STATUS_CLIENT_GONE 499

/* Paths have at most this many segments, of which at most API_ROUTE_PARAMS
 * are {param}s. */
#define API_ROUTE_SEGMENTS 8
#define API_ROUTE_PARAMS 4

typedef struct api_req api_req_t;
typedef void (*api_handler_fn)(api_req_t *r);

/* One entry of the route table (routes.c): one method on one path. */
typedef struct api_route {
    enum api_method method; /* never HEAD */
    const char *path;       /* literal segments and {param}s: "/leads/{id}/follows" */
    api_handler_fn handler;
    const char *const *query; /* the query parameters it reads, NULL-terminated */
    unsigned stale;           /* enum api_stale bits */
    bool auth;                /* credentials needed (auth.c runs first) */
    size_t body_max;          /* 0: no body is read; else larger is a 413 */
    bool etag;                /* a lead or follow: its 200 and 201 carry an ETag (etag.h) */
    const char *summary;      /* one line, for docs */
} api_route_t;

typedef struct auth_cache auth_cache_t; /* auth.c's, per thread */
typedef struct export export_t;         /* export.c's: a running CSV export */
/* Readers a thread keeps between its CSV exports (export.c). */
#define API_EXPORT_READERS_KEPT 2
typedef struct api_loop api_loop_t; /* loop.c's: the loop as the store sees it */

/* One server thread's state: never touched by another thread (the writer
 * only posts to done). */
typedef struct api_thread {
    const api_shared_t *shared;
    int index;
    store_t *store;
    h2o_context_t *ctx;
    h2o_multithread_receiver_t done; /* finished writes come back here */
    int writes_in_flight;            /* queued to the writer, not answered yet */
    int reads_pending;               /* store reads that will complete later */
    int resolves_pending;            /* host names being resolved (resolve.c) */
    api_log_t log;
    auth_cache_t *auth;
    api_loop_t *loop;                          /* given to the store once serving starts; NULL before */
    store_loop_t sloop;                        /* the same as the store sees it (export.c's timers too) */
    export_t *exports;                         /* the exports holding a reader (export.c) */
    store_t *readers[API_EXPORT_READERS_KEPT]; /* kept between exports (export.c), nreaders of them */
    int nreaders;
    store_timer_t *readers_timer; /* closes them when no export ran for a while */
    api_req_t *spare;             /* an ended request kept, with its buffer, for the next */
} api_thread_t;

/*
 * A read from the store in two halves (request.c, api_req_read): start
 * makes the store call, passing async on; done gets its result, at once or
 * later from the event loop.
 */
typedef store_rc_t (*api_read_start_fn)(api_req_t *r, const store_async_t *async);
typedef void (*api_read_done_fn)(api_req_t *r, store_rc_t rc);
typedef void (*api_step_fn)(api_req_t *r);
/* What runs once a host name is resolved for a request (resolve.h): res
 * lists its addresses, NULL when it has none to tell. */
typedef void (*api_resolve_done_fn)(api_req_t *r, const struct addrinfo *res);

/* Where store callbacks render records: the body, the time a follow's
 * status is judged at, items so far, and when the body turns stale by
 * itself (a pending follow's due date passing; INT64_MAX: never). */
typedef struct api_render {
    jw_t *w;
    int64_t now;
    int n;
    int64_t expires;
} api_render_t;

struct api_read_spec; /* resource.h */

/*
 * One request, from api_handle until its response is sent (or h2o has
 * disposed of it). It lives on the heap, not in h2o's request pool, so
 * that a read or write it waits for can finish after h2o let go of the
 * request: req is then NULL, and the request ends without an answer.
 * Only its own thread touches it.
 */
struct api_req {
    h2o_req_t *req;  /* NULL once h2o has disposed of the request */
    api_req_t **ref; /* in req's pool, pointing back here until the end */
    api_thread_t *t;
    const api_route_t *route;
    enum api_method method;
    h2o_iovec_t path;                     /* origin form: "/leads?page=2" (see api_req_new) */
    size_t query_at;                      /* where its '?' is; SIZE_MAX: none */
    h2o_iovec_t params[API_ROUTE_PARAMS]; /* the path's {param}s, in order, in path */
    int64_t now;                          /* ms, taken once when the request starts */
    int64_t start_ns;                     /* monotonic, for the log line */
    store_app_t app;                      /* the authenticated app */
    struct api_query *query;              /* its query string, read (query.h), in req's pool */
    proxy_addr_t client;                  /* api_client's, once client_known */
    bool client_known;
    int metric_route;               /* its slot in the metrics (dispatch.c); -1: not counted */
    char reqid[HTTP_REQID_MAX + 1]; /* the request id (reqid.h), terminated */
    size_t reqid_len;
    char id[UUID_BUFSZ], fid[UUID_BUFSZ]; /* the lead and follow the path names */
    bool names_lead;                      /* id is a lead's (api_lead_id_or_reply) */
    jw_t out;                             /* the body being rendered: the request's own */
    /* The store read it waits for (request.c). */
    api_read_done_fn read_done;
    bool waiting;
    /* A host name being resolved for it (resolve.c): h2o's lookup and the
     * timer that bounds it, both NULL when none is. */
    struct {
        h2o_hostinfo_getaddr_req_t *lookup;
        store_timer_t *timer;
        api_resolve_done_fn done;
    } dns;
    /* Set when h2o lets go of req while r waits (its write's flag). */
    atomic_bool *gone;
    /* What the log line of a request h2o let go of names (request.c). */
    struct {
        char method[16], path[256], agent[200];
        size_t method_len, path_len, agent_len;
        bool has_agent;
    } kept;
    /* Its Idempotency-Key (idem.c), when a POST carries one. */
    struct {
        char key[STORE_IDEM_KEY_MAX];
        char hash[STORE_IDEM_HASH_HEX + 1]; /* of the request: method, target, body */
        bool held;                          /* taken (inflight.h): given back when r ends */
        bool found, same;                   /* a kept answer; for this very request */
        int status;
        char location[128];
        api_step_fn next; /* the handler, once the key is free */
    } idem;
    /* Authentication in progress (auth.c). */
    struct {
        api_step_fn then;                        /* what runs once the caller is known */
        h2o_iovec_t token, key_header;           /* in req's headers */
        api_req_t *next_waiting;                 /* the thread's requests waiting for a poll */
        api_read_done_fn found;                  /* what runs once an app was looked up */
        char key[sizeof((store_app_t *)0)->key]; /* the app key being looked up */
        size_t key_len;
        char claimed[JWT_CLAIM_MAX]; /* the token's app */
        char subject[JWT_CLAIM_MAX]; /* the token's sub: who makes its changes */
    } auth;
    /* A read of a resource (resource.c). */
    struct {
        const struct api_read_spec *spec;
        cache_key_t key; /* kind 0: not cached */
        uint64_t gen;
        int64_t page, total;
        int records;
        api_render_t render;
        /* A list's page and the cursor of the next (find.c): rows to
         * render (a find reads one more, to know whether a page follows),
         * the list's order and the position of its last row. */
        int want, kind;
        bool more, by_cursor, no_count, plain;
        int norder;
        store_sort_t order[STORE_SORT_MAX];
        store_pos_t last;
        unsigned char digest[32]; /* of the filters and the sort */
        const void *query;        /* the store query (in req's pool), for start only */
        store_summary_t summary;  /* GET /leads/summary (summary.c) */
    } rd;
};

/*
 * A write travels from the worker thread that received it to the writer
 * thread (writer.c), which runs many at once in one transaction and one
 * sync to disk (group commit), then back to the worker to be answered.
 * The worker fills it in (api_write_new); run executes on the writer with
 * the writer's store and touches only the api_write_t (never r), setting
 * status and out; the worker then answers r with them.
 *
 * A write holds its decoded change and nothing of the request: the text
 * its patch names is copied into text, at the end of its own allocation,
 * and the body's tree is freed before it is queued.
 */
typedef struct api_write api_write_t;
typedef void (*api_write_fn)(store_t *s, api_write_t *w);
typedef union api_patch {
    lead_patch_t lead;
    follow_patch_t follow;
    webhook_patch_t webhook;
} api_patch_t;
struct api_write {
    h2o_multithread_message_t msg; /* the way back to the worker */
    api_write_t *next;             /* the writer's queue */
    api_write_fn run;
    api_thread_t *t;  /* the worker */
    api_req_t *r;     /* the request it answers: the worker's alone */
    bool queued;      /* went through the writer thread */
    bool alone;       /* runs in a transaction of its own, kept only if it
                       * answers 2xx (an import: all or nothing) */
    atomic_bool gone; /* h2o let go of r's request: its client is gone */
    size_t size;      /* bytes, text included: what it costs in the queue */
    int64_t app, now;
    char id[UUID_BUFSZ], fid[UUID_BUFSZ];
    api_patch_t p;
    unsigned stale;                      /* enum api_stale: what to bump once acknowledged */
    void (*touch)(const api_write_t *w); /* what else it makes stale (a batch's leads), or NULL */
    /* The i-th lead it changes beyond the one its path names (a batch's
     * updates and deletes), NULL past the last; or NULL: none. */
    const char *(*lead_at)(const api_write_t *w, int i);
    /* Part of it was made in the batch and another part failed (change.h):
     * the whole batch must be undone. */
    bool undo_batch;
    int status;
    jw_t out;
    char location[128]; /* sent with a 201 */
    /* If-Match as the request gave it (API_ETAG_LIST_MAX bytes and a NUL; one
     * longer is if_match_len == sizeof if_match), "" when
     * none or empty; and the resource's ETag when a 412 answers it
     * (etag.h). has_if_match: one was sent, an empty one included (it
     * lists no tag, so it matches nothing: a 412). */
    char if_match[API_ETAG_LIST_MAX + 1], etag[API_ETAG_MAX];
    size_t if_match_len;
    bool has_if_match;
    bool names_lead; /* the path names a lead (api_req_t's names_lead) */
    /* The request's Idempotency-Key ("" when none) and digest: the
     * writer claims the key in the write's transaction and keeps the
     * answer there (writer.c). */
    char idem_key[STORE_IDEM_KEY_MAX], idem_hash[STORE_IDEM_HASH_HEX + 1];
    char actor[JWT_CLAIM_MAX]; /* the token's subject, for the history */
    bool replayed;             /* the answer is another process's, kept for the key */
    int given;                 /* the status of an answer made before the run, its body
                                * the text (through_writer, resource.c) */
    char text[];               /* the patch's text (api_write_new's extra bytes) */
};

#endif
