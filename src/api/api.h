/*
 * api.h: the API's request handling, shared by its files.
 *
 * Data flows one way: route (router.c) -> authenticate (auth.c) -> decode
 * and validate (model/codec.c) -> store (store/) -> render (model/codec.c),
 * all on the thread that received the request, which owns an api_thread_t.
 */
#ifndef CRMD_API_API_H
#define CRMD_API_API_H

#include <stdbool.h>
#include <stdint.h>

#include "h2o.h"

#include "api/router.h"
#include "auth/jwt.h"
#include "model/codec.h"
#include "model/jsonw.h"
#include "store/store.h"

/* The largest request body accepted (413 beyond). */
#define API_MAX_BODY (1024 * 1024)

/* What every thread shares; read-only while serving. */
typedef struct api_shared {
    const char *db_url;
    const jwt_key_t *key; /* verifies tokens */
    int log_requests;     /* one line per request on stderr */
} api_shared_t;

#define AUTH_TOKEN_CACHE 256
#define AUTH_APP_CACHE 64

typedef struct auth_token_entry {
    uint64_t hash;
    char *token; /* malloc'd copy, compared in full on a hit */
    size_t len;
    int64_t exp; /* seconds */
    char app[JWT_CLAIM_MAX];
} auth_token_entry_t;

typedef struct auth_app_entry {
    uint64_t hash;
    int64_t fetched_ms;
    store_app_t app;
} auth_app_entry_t;

/* One server thread's state: never touched by another thread. */
typedef struct api_thread {
    const api_shared_t *shared;
    int index;
    store_t *store;
    h2o_multithread_receiver_t done; /* finished writes come back here */
    int writes_in_flight;            /* queued to the writer, not answered yet */
    h2o_context_t *ctx;
    /* Request log lines wait here for one write(2): when 8 KiB have
     * gathered or 100 ms have passed, whichever comes first. */
    char logbuf[16384];
    size_t loglen;
    h2o_timeout_entry_t logflush;
    jw_t out; /* the response being written, reused across requests */
    auth_token_entry_t tokens[AUTH_TOKEN_CACHE];
    auth_app_entry_t apps[AUTH_APP_CACHE];
    /* Revoked token ids, polled from the store at most once a second. */
    char **revoked;
    size_t revoked_n, revoked_cap;
    int64_t revoked_seq;     /* the last revocation seen */
    int64_t revoked_poll_ms; /* when the store was last asked */
} api_thread_t;

/* One request in flight. */
typedef struct api_req {
    h2o_req_t *req;
    api_thread_t *t;
    route_match_t route;
    unsigned method;
    store_app_t app; /* the authenticated app */
    int64_t now;     /* ms, taken once when the request starts */
    char id[UUID_BUFSZ], fid[UUID_BUFSZ];
    int64_t start_ns; /* monotonic, for the log line */
    bool deferred;    /* handed to the writer: answered (and logged) later */
} api_req_t;

/*
 * A write travels from the worker thread that received it to the writer
 * thread (writer.c), which runs many at once in one transaction and one
 * sync to disk (group commit), then back to the worker to be answered.
 * The worker fills it in; run executes on the writer with the writer's
 * store and sets status and out; the worker then sends out.
 */
typedef struct api_write api_write_t;
typedef void (*api_write_fn)(store_t *s, api_write_t *w);
struct api_write {
    h2o_multithread_message_t msg; /* the way back to the worker */
    api_write_t *next;             /* the writer's queue */
    api_write_fn run;
    api_thread_t *t;
    h2o_req_t *req;        /* NULL once h2o has disposed of the request */
    api_write_t **req_ref; /* in the request's pool, pointing back here */
    bool queued;           /* went through the writer thread */
    json_t *root;          /* the body, owned: the patch points into it */
    int64_t app, now, start_ns;
    char app_key[96];
    char id[UUID_BUFSZ], fid[UUID_BUFSZ];
    union {
        lead_patch_t lead;
        follow_patch_t follow;
    } p;
    int status;
    jw_t out;
    char location[128]; /* sent with a 201 */
    /* What a successful write makes stale in the response cache. */
    bool touch_app;
    char touch_lead[UUID_BUFSZ];
};

/* Makes a write for request r that will run fn; takes ownership of root. */
api_write_t *api_write_new(api_req_t *r, api_write_fn fn, json_t *root);
/* Hands w to the writer thread (or, with none running, runs it here) and
 * marks r deferred. On allocation failure (w NULL) answers 503. */
void api_write_submit(api_req_t *r, api_write_t *w);
/* Starts and stops the writer thread (with its own store connection). */
int api_writer_start(const api_shared_t *shared);
void api_writer_stop(void);
/* Answers the finished writes the writer posted to a worker thread (the
 * receiver of api_thread_t.done; runs on that worker's loop). */
void api_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* Thread life cycle and the request entry point (http_config_t hooks). */
void *api_thread_init(int index, void *arg, h2o_context_t *ctx);
void api_thread_fini(void *state);
/* Nonzero while the thread owes answers the writer is still preparing: a
 * stopping server must keep its loop (and this state) alive until then. */
int api_thread_busy(void *state);
void api_handle(h2o_req_t *req, void *state);
h2o_iovec_t api_error_body(h2o_req_t *req, void *state);

/* Responses. api_send sends t->out as the body with status. */
void api_send(api_req_t *r, int status);
/* Sends body (from the request's pool, not copied) with status. */
void api_send_pooled(api_req_t *r, int status, char *body, size_t len);
/* Answers a GET from the response cache when it can; else returns false
 * and *gen holds the generation to store the fresh body with. */
struct cache_key;
bool api_cached(api_req_t *r, const struct cache_key *key, uint64_t *gen);
void api_send_empty(api_req_t *r, int status);
void api_error(api_req_t *r, int status, const char *title, const char *detail);
/* Write an error body into w and return its status, without sending. */
int api_render_error(jw_t *w, int status, const char *title, const char *detail);
int api_render_errors(jw_t *w, const verrs_t *errs);
int api_render_store_error(jw_t *w, int rc, const char *not_found_title, const char *not_found_detail);
/* Adds the headers an error status calls for (WWW-Authenticate, Retry-After). */
void api_error_headers(h2o_req_t *req, int status);
const char *api_reason(int status);
/* Writes the request's log line. */
void api_log(api_thread_t *t, h2o_req_t *req, const char *app_key, int64_t now, int64_t start_ns);
void api_log_flush(api_thread_t *t);
void api_errors(api_req_t *r, const verrs_t *errs);
/* Maps a store failure to its response (404 uses the given title). */
void api_store_error(api_req_t *r, int rc, const char *not_found_title, const char *not_found_detail);
void api_add_header(api_req_t *r, const h2o_token_t *token, const char *value, size_t len);

/* Reads the JSON body after the Content-Type and size checks; on failure
 * the error response has been sent and NULL is returned. The caller
 * json_decref()s the result. */
json_t *api_read_body(api_req_t *r);

/* Ends a list document in w: closes its "data" array and writes "meta"
 * (totalPages, totalRecords, page, records). */
void api_write_meta(jw_t *w, int64_t total, int64_t page, int records);

/* Reads page and records from the query string; on failure the 422 has
 * been sent and false is returned. */
bool api_read_paging(api_req_t *r, int default_records, int64_t *page, int *records);

/* Authenticates the request (Authorization + AppId / X-Api-Key); on
 * failure the 401/403/503 has been sent and false is returned. */
bool auth_request(api_req_t *r);
void auth_thread_fini(api_thread_t *t);

/* Resource handlers, one per route. */
void leads_handle(api_req_t *r);
void follows_handle(api_req_t *r);

#endif
