/*
 * store.h: the one interface between the API and a database.
 *
 * A store_t is one connection with its prepared statements. It belongs to
 * one thread for its whole life: each server thread opens its own, and the
 * writer thread (api/writer.c) has one more for its batches. The store
 * speaks records (model/record.h), never HTTP or JSON, and never prints:
 * its messages go through the log hook (store_set_log).
 *
 * Every function returns a store_rc_t; a backend's own result codes never
 * leave it. Functions that produce records hand them to a callback; the
 * strings of a record passed to a callback are valid only until the
 * callback returns.
 *
 * Every data function takes the app (tenant) id and touches only that app's
 * rows: another app's record is indistinguishable from a missing one.
 *
 * Promises across connections (threads and processes on one database):
 * - Each write is atomic: it happens whole or not at all, and what a
 *   function returns STORE_OK for is durable (outside a batch) or will be
 *   once store_batch_end commits.
 * - A write waits for the row and table locks it needs for a bounded
 *   time (about five seconds: SQLite's busy timeout, PostgreSQL's
 *   lock_timeout), then returns STORE_UNAVAILABLE; it never waits forever.
 *   SQLite lets one connection write at a time, PostgreSQL one per row.
 * - Partial updates never lose a concurrent update of the same record:
 *   each applies to the newest version of the row.
 * - A read outside a batch sees one snapshot: a list's page and its total
 *   always agree.
 * - Reads inside a batch, and their locks: see store_batch_begin.
 */
#ifndef CRMD_STORE_STORE_H
#define CRMD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/record.h"

/* The number of lead stages and statuses (enum lead_stage, lead_status). */
#define SCHEMA_STAGES 5
#define SCHEMA_STATUSES 4

typedef enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* no such record (in this app) */
    STORE_CONFLICT,    /* a unique key already exists */
    STORE_UNAVAILABLE, /* the database cannot take the request now (busy,
                        * disk full, read-only, connection lost): 503 */
    STORE_ERROR,       /* anything else: 500 */
    STORE_PENDING,     /* a read that will complete later (see store_async_t) */
    STORE_TOO_SLOW     /* a read that ran past its deadline (store_read_deadline)
                        * and was stopped: 503 "Read Timeout" */
} store_rc_t;

typedef struct store store_t;

/* A commit's sync left owed (store_sync_defer): what store_sync_run needs,
 * valid while the store that committed is open. */
typedef struct store_sync {
    int fd;
    uint64_t n; /* its number among the process's owed syncs, from 1 */
} store_sync_t;
/* The webhook functions of a backend, and an undelivered event: store/webhook.h. */
typedef struct store_webhook_ops store_webhook_ops_t;
typedef struct store_queued store_queued_t;
struct webhook;

/* Where the store's messages go: one call per message, with the whole
 * message (no trailing newline, at most STORE_LOG_LINE_MAX - 1 bytes,
 * texts like "crmd: postgres: reconnected"; a database's own message may
 * carry its DETAIL on a second line). It may be called from any thread
 * that uses a store, at the same time as from others, so it must be
 * thread-safe. */
#define STORE_LOG_LINE_MAX 1024
typedef void (*store_log_fn)(void *ctx, const char *line);

/* Sends the store's messages to fn (with ctx); fn NULL restores the
 * default, which writes each line and a newline to stderr with one
 * write(2), so lines from several threads never interleave. Set it at
 * start, before any store is opened (it is read without a lock); a
 * program that never sets it gets the default. */
void store_set_log(store_log_fn fn, void *ctx);

/*
 * How a read may complete later, on the event loop of the thread that owns
 * the store, instead of before it returns.
 *
 * Every read (the functions below that take a `const store_async_t *async`)
 * either completes before it returns, and then returns its result, or, when
 * async is not NULL and the backend can, returns STORE_PENDING and completes
 * later: it then passes the rows to the read's callbacks and calls
 * async->done(async->ctx, rc) exactly once, from the owning thread's event
 * loop, after the function has returned. The store copies the strings it is
 * given (ids, keys) and the store_async_t itself; the read's callback
 * context, its out parameters (total, out) and async->ctx must stay valid
 * until done runs. With async NULL every read completes before returning,
 * whatever the backend: the writer thread and the command line read so.
 *
 * Which backends can: PostgreSQL once it has the owning thread's event
 * loop (store_set_loop, below); SQLite never (its reads take microseconds
 * and complete at once). Even then a read may complete at once: a refusal
 * during an outage's back-off, an id that names nothing.
 */
typedef struct store_async {
    void (*done)(void *ctx, store_rc_t rc);
    void *ctx;
} store_async_t;

/*
 * The event loop of the thread that owns a store, as the store needs it to
 * complete reads later: watch a socket, and a timer. The store never sees
 * HTTP; whoever runs the loop fills this in (api/loop.c, on h2o). Every
 * function is called on the owning thread only, and every callback runs
 * from the loop on that thread, never from inside the call that asked for
 * it. The handles are the loop's own types, opaque here.
 */
typedef struct store_watch store_watch_t;
typedef struct store_timer store_timer_t;
#define STORE_IO_READ 1u
#define STORE_IO_WRITE 2u
typedef void (*store_io_fn)(void *arg, unsigned events);
typedef void (*store_timer_fn)(void *arg);
typedef struct store_loop {
    void *ctx; /* the loop's: passed to watch and timer_start */
    /* Starts watching fd, which stays the caller's: the loop never reads,
     * writes or closes it, and copes with the caller closing it before
     * unwatch. Nothing is reported until read or write asks. NULL when out
     * of memory. */
    store_watch_t *(*watch)(void *ctx, int fd, store_io_fn fn, void *arg);
    /* While on, fn(arg, STORE_IO_READ) runs whenever fd is readable, at
     * end of file or failed. */
    void (*read)(store_watch_t *w, bool on);
    /* fn(arg, STORE_IO_WRITE) runs once, when fd is next writable; asking
     * again before that is harmless. */
    void (*write)(store_watch_t *w);
    /* Stops watching and frees w: fn is not called again. fn may call it. */
    void (*unwatch)(store_watch_t *w);
    /* Calls fn(arg) once, ms milliseconds from now (0: as soon as the loop
     * turns), then frees the timer; NULL when out of memory. */
    store_timer_t *(*timer_start)(void *ctx, uint32_t ms, store_timer_fn fn, void *arg);
    /* Cancels and frees a timer that has not fired yet. */
    void (*timer_stop)(store_timer_t *t);
} store_loop_t;

/* The longest app key and name kept, with their NUL (keys are made by
 * crmd and are far shorter; names longer than this are cut). */
#define STORE_APP_KEY_MAX 96
#define STORE_APP_NAME_MAX 256

typedef struct store_app {
    int64_t id;
    char key[STORE_APP_KEY_MAX];
    char name[STORE_APP_NAME_MAX];
    int disabled;
    int64_t created_at;
} store_app_t;

/* The longest revoked token id a store_revoked_cb is sure to get whole,
 * with its NUL: a backend may cut a longer one (tokens' jti are at most
 * JWT_CLAIM_MAX - 1 bytes, so a longer one revokes no token anyway). */
#define STORE_JTI_MAX 256

/* A token signing key as stored. Keys are never deleted: a retired key
 * stays, so that its history (and crmd copy) keeps it. */
#define STORE_KEY_UNTRACKED (-1)
typedef struct store_key {
    int64_t seq;          /* the order keys were added in: the newest unretired one signs */
    const char *pem;      /* its private key, PKCS#8 PEM text */
    int64_t created_at;   /* milliseconds since the epoch */
    int64_t signed_until; /* seconds: the latest exp of the tokens it signed (0: none yet);
                           * STORE_KEY_UNTRACKED for a key from before keys were tracked */
    int64_t retired_at;   /* milliseconds; 0 while it is not retired */
} store_key_t;

/* A token crmd issued (crmd token issue, crmd app create), as
 * store_token_record keeps it and bulk copy moves it. The strings are the
 * caller's (or, in an export, valid during the call). */
typedef struct store_token {
    const char *jti;
    int64_t app; /* the app's id */
    const char *subject;
    int64_t issued_at, expires_at; /* ms since the epoch */
} store_token_t;

typedef void (*store_app_cb)(void *ctx, const store_app_t *app, int64_t leads);
typedef void (*store_key_cb)(void *ctx, const store_key_t *key);
typedef void (*store_revoked_cb)(void *ctx, int64_t seq, const char *jti);
typedef void (*store_lead_cb)(void *ctx, const lead_t *lead);
/* Gives the next lead to create into *lead (its strings valid until the
 * next call) and returns true, or returns false when there is none left. */
typedef bool (*store_lead_next_fn)(void *ctx, lead_t *lead);
typedef void (*store_follow_cb)(void *ctx, const follow_t *follow);

/* Bulk copy (crmd copy): what a database holds, counted in one snapshot. */
typedef struct store_counts {
    int64_t apps, leads, follows, revoked;
    int64_t issued;         /* issued tokens recorded */
    int64_t lead_count_sum; /* the sum of the apps' lead counts: equals leads */
    int64_t keys;           /* signing keys, retired ones included */
    int64_t webhooks;       /* webhook subscriptions (store/webhook.h) */
    int64_t events;         /* undelivered events, one per webhook */
    int64_t trash;          /* trashed leads */
    int64_t trash_follows;  /* their follows */
    int64_t history;        /* history entries */
    int64_t idem;           /* kept idempotency answers */
} store_counts_t;

/* Bulk copy: the receivers of store_copy_export, called in this order: the
 * signing keys (by seq), every app (by id), every issued token (by
 * issued_at, jti), every revoked token (by sequence number), every lead
 * (by app, created_at, id), every follow (by app, lead, created_at, id),
 * every trashed lead (by app, deleted_at, id), every trashed follow (by
 * app, lead, created_at, id), every history entry (in the order recorded),
 * every kept idempotency answer (by app, key), then the webhooks and their
 * undelivered events. Each returns STORE_OK to go on; any other rc stops the export, which
 * then returns that rc. Strings are valid only during the call. */
struct store_change; /* below, with the history */
struct store_idem;   /* below, with the idempotency keys */
typedef struct store_export {
    store_rc_t (*key)(void *ctx, const store_key_t *key);
    store_rc_t (*app)(void *ctx, const store_app_t *app);
    store_rc_t (*issued)(void *ctx, const store_token_t *token);
    store_rc_t (*revoked)(void *ctx, const char *jti, int64_t revoked_at);
    store_rc_t (*lead)(void *ctx, int64_t app, const lead_t *lead);
    store_rc_t (*follow)(void *ctx, int64_t app, const follow_t *follow);
    store_rc_t (*trashed)(void *ctx, int64_t app, const lead_t *lead, int64_t deleted_at);
    store_rc_t (*trashed_follow)(void *ctx, int64_t app, const follow_t *follow);
    store_rc_t (*change)(void *ctx, int64_t app, const struct store_change *change);
    store_rc_t (*idem)(void *ctx, int64_t app, const char *key, const struct store_idem *idem);
    store_rc_t (*webhook)(void *ctx, int64_t app, const struct webhook *wh);
    store_rc_t (*event)(void *ctx, const char *webhook_id, const store_queued_t *e);
} store_export_t;

/* --- Finding leads and follows -----------------------------------------------
 * The filtered, sorted, paged reads of GET /leads/, GET /leads/{id}/follows,
 * GET /follows/ and GET /leads/summary (store_lead_find, store_follow_find,
 * store_lead_summary below). Filters AND together; the values of one list
 * filter OR together. The order is the query's sort keys, then the list's
 * ties (see store_lead_order), so that it is total: a page is either the
 * rows after an offset or, keyset paging, the rows after a position (the
 * sort values of the last row of the page before, store_pos_t), which
 * never skips or repeats a row however many are written in between. */

/* Keys a lead or follow can be ordered by. Unset values (a lead's value or
 * probability, a follow's due date) come last in either direction. */
enum store_lead_key {
    LEAD_KEY_CREATED,
    LEAD_KEY_UPDATED,
    LEAD_KEY_NAME, /* folded (model/text.c), compared byte by byte */
    LEAD_KEY_VALUE,
    LEAD_KEY_PROBABILITY,
    LEAD_KEY_STAGE, /* pipeline order: enum lead_stage */
    LEAD_KEY_ID
};
enum store_follow_key { FOLLOW_KEY_DUE, FOLLOW_KEY_CREATED, FOLLOW_KEY_UPDATED, FOLLOW_KEY_ID };

typedef struct store_sort {
    int key; /* enum store_lead_key or store_follow_key */
    bool desc;
} store_sort_t;

/* At most this many keys order a list, its ties included; at most this
 * many values in one list filter. */
#define STORE_SORT_MAX 8
#define STORE_LIST_MAX 50

/* The leads a read keeps; a zero filter keeps every lead. */
typedef struct store_lead_filter {
    unsigned stages;   /* bits 1 << enum lead_stage; 0: any */
    unsigned statuses; /* bits 1 << enum lead_status; 0: any */
    int nsources;
    text_ref_t sources[STORE_LIST_MAX]; /* exact values */
    int naccounts, ncontacts;
    char accounts[STORE_LIST_MAX][UUID_BUFSZ], contacts[STORE_LIST_MAX][UUID_BUFSZ];
    bool account_unset, contact_unset; /* also keep leads where it is unset */
    bool has_value_min, has_value_max; /* inclusive, in cents; unset values never match */
    int64_t value_min, value_max;
    int probability_min, probability_max; /* inclusive; -1: no bound */
    bool has_created_from, has_created_to, has_updated_from, has_updated_to;
    int64_t created_from, created_to, updated_from, updated_to; /* ms; _from inclusive, _to exclusive */
    text_ref_t search; /* folded (model/text.c): a substring of the folded name or source; ptr NULL: none */
    int has_overdue;   /* -1: any; 1: a follow reads overdue (at the query's now); 0: none does */
    int has_open;      /* -1: any; 1: a follow is not completed; 0: none is */
} store_lead_filter_t;

/* Makes *f the filter that keeps every lead. */
void store_lead_filter_init(store_lead_filter_t *f);

/* One sort value of a row; texts (a folded name, an id) point elsewhere. */
typedef struct store_val {
    bool null;
    int64_t i;
    text_ref_t t;
} store_val_t;

/* Where a page ends: the values of every key of the list's order (ties
 * included), for the row the next page starts after. */
#define STORE_POS_NAME_MAX 1020 /* 255 code points of 4 bytes */
#define STORE_POS_TEXT_MAX (STORE_POS_NAME_MAX + 2 * UUID_BUFSZ)
typedef struct store_pos {
    int n;
    store_val_t v[STORE_SORT_MAX];
    char text[STORE_POS_TEXT_MAX]; /* where its texts may live */
} store_pos_t;

typedef struct store_lead_query {
    store_lead_filter_t f;
    int nsort; /* the order asked for; 0 is the default (created_at descending) */
    store_sort_t sort[STORE_SORT_MAX];
    int limit;
    int64_t offset;           /* rows skipped, when after is NULL */
    const store_pos_t *after; /* keyset paging: the rows after this position */
    bool count;               /* also count the filtered set into *total */
    int64_t now;              /* ms: what reads overdue */
} store_lead_query_t;

typedef struct store_follow_query {
    const char *lead; /* one lead's follows (its route), or "" for the app's */
    int nleads;       /* the lead_id filter (with lead ""): any of these */
    char leads[STORE_LIST_MAX][UUID_BUFSZ];
    unsigned statuses; /* bits 1 << enum follow_status, overdue as derived at now; 0: any */
    bool has_due_from, has_due_to;
    int64_t due_from, due_to; /* unset due dates never match */
    int nsort;                /* 0: due date (unset last), then created_at, then id, ascending */
    store_sort_t sort[STORE_SORT_MAX];
    int limit;
    int64_t offset;
    const store_pos_t *after;
    bool count;
    int64_t now;
} store_follow_query_t;

/* One (stage, status) cell of a pipeline summary: leads, and their value
 * and weighted value (value_cents * probability) each as the sums of the
 * high and the low 32 bits of every row's figure (so no sum ever
 * overflows; see store/schema.h). value = v_hi * 2^32 + v_lo cents. */
typedef struct store_cell {
    int64_t n, v_hi, v_lo, w_hi, w_lo;
} store_cell_t;

typedef struct store_summary {
    store_cell_t cell[SCHEMA_STAGES][SCHEMA_STATUSES]; /* [enum lead_stage][enum lead_status] */
    int64_t overdue;                                   /* follows reading overdue, on these leads */
} store_summary_t;

/* --- The trash ------------------------------------------------------------------
 * A deleted lead (store_lead_trash) moves with its follows into the trash:
 * every read above then leaves it out, and it comes back whole with
 * store_lead_recover or goes for good with store_trash_purge (or, once old
 * enough, store_trash_expire). */

/* A trashed lead due for its purge: its app and id. */
typedef void (*store_trash_due_cb)(void *ctx, int64_t app, const char *id);

/* A trashed lead, and when it was trashed (ms). */
typedef void (*store_trash_cb)(void *ctx, const lead_t *lead, int64_t deleted_at);

/* A page of an app's trash, newest deletion first (deleted_at, then id,
 * descending): the rows after an offset, or, keyset paging, the rows after
 * the position (after_deleted_at, after_id) when after is set. */
typedef struct store_trash_query {
    int limit;
    int64_t offset;
    bool after;
    int64_t after_deleted_at;
    char after_id[UUID_BUFSZ];
} store_trash_query_t;

/* --- History ------------------------------------------------------------------
 * A lead's changes and its follows', recorded by the API in the
 * transaction of each change (store_history_add), listed newest first
 * (store_history_list), and gone with the lead when it is purged. */

enum store_change_action {
    STORE_CHANGE_CREATED,
    STORE_CHANGE_UPDATED,
    STORE_CHANGE_DELETED,
    STORE_CHANGE_RECOVERED,
    STORE_CHANGE_FOLLOW_CREATED,
    STORE_CHANGE_FOLLOW_UPDATED,
    STORE_CHANGE_FOLLOW_DELETED
};

/* One change. changes is what the API rendered of it, kept as it is. */
typedef struct store_change {
    const char *id;        /* the change's own (a UUID) */
    const char *lead_id;   /* the lead it is about */
    const char *follow_id; /* the follow, for the follow actions; "" else */
    int action;            /* enum store_change_action */
    const char *actor;     /* who made it (a token's subject) */
    int64_t at;            /* ms */
    text_ref_t changes;
    int64_t seq; /* its number in the order recorded: 0 when adding (the store numbers it) but for
                    crmd copy's import, which keeps the source's, so that cursors stay valid */
} store_change_t;
typedef void (*store_change_cb)(void *ctx, const store_change_t *change, int64_t seq);

/* A page of a lead's history, newest first (by seq, the order changes
 * were recorded in): after an offset, or after the change seq after_seq
 * when after is set. */
typedef struct store_history_query {
    int limit;
    int64_t offset;
    bool after;
    int64_t after_seq;
} store_history_query_t;

/* --- Idempotency keys -------------------------------------------------------------
 * The first answer to a POST that carried an Idempotency-Key, kept per app
 * and key so that a retry replays it (extensions.md, "Safe writes"). The
 * key is claimed (store_idem_claim) in the transaction of the write it
 * guards, and finished with the answer in the same transaction, so a
 * change and its key are committed together or not at all. */

/* The longest key kept, with its NUL; the request's digest, in hex. */
#define STORE_IDEM_KEY_MAX 256
#define STORE_IDEM_HASH_HEX 64

/* A kept answer; strings valid during the callback only. status 0: the
 * key is claimed by a write not finished yet (never seen outside its
 * transaction). */
typedef struct store_idem {
    const char *hash; /* STORE_IDEM_HASH_HEX hex digits of the request */
    int status;
    const char *location;
    text_ref_t body;
    int64_t created_at;
} store_idem_t;
typedef void (*store_idem_cb)(void *ctx, const store_idem_t *idem);

/* A lead, by app and id, for store_leads_lock. */
typedef struct store_lead_ref {
    int64_t app;
    char id[UUID_BUFSZ];
} store_lead_ref_t;

/* The complete order of a lead list: sort[0..n) (none: created_at
 * descending), then its ties, created_at descending and id descending,
 * where sort does not name them. Returns the number of keys put in out. */
int store_lead_order(const store_sort_t *sort, int n, store_sort_t out[STORE_SORT_MAX]);
/* The same for follows: sort, then due date, created_at and id ascending. */
int store_follow_order(const store_sort_t *sort, int n, store_sort_t out[STORE_SORT_MAX]);
/* The position of l (or f) in a list ordered by order[0..n): the row a
 * next page starts after. A folded name is written into pos->text. */
void store_lead_pos(const lead_t *l, const store_sort_t *order, int n, store_pos_t *pos);
/* Copies a position, its texts moved into dst's own buffer (so src may
 * change while dst is a query's after). */
void store_pos_copy(store_pos_t *dst, const store_pos_t *src);
void store_follow_pos(const follow_t *f, const store_sort_t *order, int n, store_pos_t *pos);

/* The backend's table of functions; see the wrappers below for contracts. */
typedef struct store_ops {
    void (*close)(store_t *s);
    store_rc_t (*migrate)(store_t *s);
    store_rc_t (*app_create)(store_t *s, const char *key, const char *name, int64_t now, store_app_t *out);
    store_rc_t (*app_find)(store_t *s, const char *key, store_app_t *out, const store_async_t *async);
    store_rc_t (*keys)(store_t *s, store_key_cb cb, void *ctx);
    store_rc_t (*key_add)(store_t *s, const store_key_t *key, int first);
    store_rc_t (*key_update)(store_t *s, int64_t seq, int64_t signed_until, int64_t retired_at);
    store_rc_t (*lead_create)(store_t *s, int64_t app, const lead_t *lead);
    store_rc_t (*lead_create_many)(store_t *s, int64_t app, store_lead_next_fn next, void *ctx,
                                   int64_t *created);
    store_rc_t (*lead_get)(store_t *s, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                           const store_async_t *async);
    store_rc_t (*lead_list)(store_t *s, int64_t app, int64_t offset, int limit, int64_t *total,
                            store_lead_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*lead_update)(store_t *s, int64_t app, const char *id, const lead_patch_t *patch, int64_t now,
                              store_lead_cb cb, void *ctx);
    store_rc_t (*lead_delete)(store_t *s, int64_t app, const char *id);
    store_rc_t (*follow_create)(store_t *s, int64_t app, const follow_t *follow);
    store_rc_t (*follow_get)(store_t *s, int64_t app, const char *lead_id, const char *id, store_follow_cb cb,
                             void *ctx, const store_async_t *async);
    store_rc_t (*follow_list)(store_t *s, int64_t app, const char *lead_id, int64_t offset, int limit,
                              int64_t *total, store_follow_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*follow_update)(store_t *s, int64_t app, const char *lead_id, const char *id,
                                const follow_patch_t *patch, int64_t now, store_follow_cb cb, void *ctx);
    store_rc_t (*follow_delete)(store_t *s, int64_t app, const char *lead_id, const char *id);
    store_rc_t (*lead_find)(store_t *s, int64_t app, const store_lead_query_t *q, int64_t *total,
                            store_lead_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*follow_find)(store_t *s, int64_t app, const store_follow_query_t *q, int64_t *total,
                              store_follow_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*lead_summary)(store_t *s, int64_t app, const store_lead_filter_t *f, int64_t now,
                               store_summary_t *out, const store_async_t *async);
    store_rc_t (*lead_trash)(store_t *s, int64_t app, const char *id, int64_t now);
    store_rc_t (*lead_recover)(store_t *s, int64_t app, const char *id, int64_t now, store_lead_cb cb,
                               void *ctx);
    store_rc_t (*trash_purge)(store_t *s, int64_t app, const char *id);
    store_rc_t (*trash_get)(store_t *s, int64_t app, const char *id, store_trash_cb cb, void *ctx);
    store_rc_t (*trash_due)(store_t *s, int64_t before, int limit, store_trash_due_cb cb, void *ctx);
    store_rc_t (*trash_list)(store_t *s, int64_t app, const store_trash_query_t *q, int64_t *total,
                             store_trash_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*trash_expire)(store_t *s, int64_t before, int limit, int *purged);
    store_rc_t (*history_add)(store_t *s, int64_t app, const store_change_t *change);
    store_rc_t (*history_list)(store_t *s, int64_t app, const char *lead_id, const store_history_query_t *q,
                               int64_t *total, store_change_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*idem_get)(store_t *s, int64_t app, const char *key, int64_t fresh_after, store_idem_cb cb,
                           void *ctx, const store_async_t *async);
    store_rc_t (*idem_claim)(store_t *s, int64_t app, const char *key, const char *hash, int64_t now,
                             int64_t fresh_after, bool *in_flight);
    store_rc_t (*idem_finish)(store_t *s, int64_t app, const char *key, int status, const char *location,
                              text_ref_t body);
    store_rc_t (*idem_release)(store_t *s, int64_t app, const char *key);
    store_rc_t (*idem_expire)(store_t *s, int64_t before, int limit, int *purged);
    store_rc_t (*search_tidy)(store_t *s, int pages, bool *more);
    store_rc_t (*idem_hold)(store_t *s, int64_t app, const char *key, bool *in_flight);
    store_rc_t (*leads_lock)(store_t *s, const store_lead_ref_t *leads, size_t n);
    store_rc_t (*batch_begin)(store_t *s);
    store_rc_t (*batch_end)(store_t *s, int commit);
    /* Administration (the command line); see the wrappers. */
    store_rc_t (*app_list)(store_t *s, store_app_cb cb, void *ctx);
    store_rc_t (*app_set_disabled)(store_t *s, const char *key, int disabled);
    store_rc_t (*token_record)(store_t *s, const store_token_t *token);
    store_rc_t (*token_revoke)(store_t *s, const char *jti, int64_t now, bool unrecorded);
    store_rc_t (*revoked_since)(store_t *s, int64_t after_seq, store_revoked_cb cb, void *ctx,
                                const store_async_t *async);
    /* Bulk copy (crmd copy, never while serving); see the wrappers. */
    store_rc_t (*copy_count)(store_t *s, store_counts_t *out);
    store_rc_t (*copy_export)(store_t *s, const store_export_t *cb, void *ctx, store_counts_t *total);
    /* One read snapshot over several reads (crmd export, and an export over
     * HTTP on a reader of its own); see the wrappers. */
    store_rc_t (*snapshot_begin)(store_t *s);
    void (*snapshot_end)(store_t *s);
    store_t *(*reader_open)(store_t *s, char *err, size_t errsz);
    store_rc_t (*copy_import_begin)(store_t *s, store_counts_t *before);
    store_rc_t (*copy_import_key)(store_t *s, const store_key_t *key);
    store_rc_t (*copy_import_app)(store_t *s, const store_app_t *app, int keep_id, int64_t *id);
    store_rc_t (*copy_import_issued)(store_t *s, const store_token_t *token, int *added);
    store_rc_t (*copy_import_revoked)(store_t *s, const char *jti, int64_t revoked_at, int *added);
    store_rc_t (*copy_import_lead)(store_t *s, int64_t app, const lead_t *lead);
    store_rc_t (*copy_import_follow)(store_t *s, int64_t app, const follow_t *follow);
    store_rc_t (*copy_import_end)(store_t *s, int commit);
    /* crmd backup; see the wrapper. */
    store_rc_t (*backup)(store_t *s, const char *path, char *msg, size_t msgsz);
    /* Reads that complete later (server threads); see the wrapper. */
    void (*set_loop)(store_t *s, const store_loop_t *loop);
    void (*set_writer)(store_t *s);
    bool (*sync_defer)(store_t *s);
    bool (*sync_owed)(store_t *s, store_sync_t *out);
    int (*sync_run)(const store_sync_t *t);
    void (*read_deadline)(store_t *s, int64_t deadline_ns);
    /* Webhooks and their outbox: store/webhook.h. */
    const store_webhook_ops_t *webhook;
} store_ops_t;

struct store {
    const store_ops_t *ops;
};

/* Room for store_open's reason, and for a URL as store_url_redact shows
 * it in messages (a longer one is cut). */
#define STORE_OPEN_ERR_MAX 512
#define STORE_URL_SHOWN_MAX 256

/* Opens a connection for url, which must have one of these forms (and
 * nothing else, so that a mistyped URL never becomes a new SQLite file):
 * "sqlite:PATH"; a bare path that does not begin like a URL scheme
 * ("word:"), read as SQLite too; or PostgreSQL as a "postgres://" or
 * "postgresql://" URL or a libpq key=value string (one that starts with a
 * keyword and '=', such as "host=/run/postgresql dbname=crmd"). On failure
 * returns NULL and writes a reason into err (errsz bytes), never a
 * password. The schema is not touched: call store_migrate. */
store_t *store_open(const char *url, char *err, size_t errsz);

/* As store_open, but never makes a database: an SQLite file that is not
 * there is refused (NULL, the reason in err) and stays absent, its -wal
 * and -shm too. For commands that only read a database (crmd backup).
 * PostgreSQL: as store_open. */
store_t *store_open_existing(const char *url, char *err, size_t errsz);

/* Closes the connection (an open batch or import is rolled back); s may be
 * NULL. It may be called from the done callback of s's own last read (the
 * store is then freed once the loop's callback that ran it is over). */
static inline void store_close(store_t *s)
{
    if (s != NULL) s->ops->close(s);
}

/* Hands the store the event loop of its owning thread (it keeps a copy of
 * *loop; the loop itself must outlive the store). From then on a read
 * given an async may return STORE_PENDING and complete from that loop.
 * SQLite ignores it.
 *
 * The rule on PostgreSQL: a store with a loop is a server thread's read
 * connection, kept in libpq's non-blocking pipeline mode with reads in
 * flight, and takes only reads that come with an async. Anything that
 * would block (a read with async NULL, a write, a batch, administration,
 * bulk copy) would first have to wait for every read in flight with the
 * loop stopped, so it is refused by an assertion. So a thread does the
 * blocking reads it needs before it serves (its revocation load) first,
 * then sets the loop, once. Close the store only when none of its reads
 * is pending (a server thread's drain waits for them). */
static inline void store_set_loop(store_t *s, const store_loop_t *loop)
{
    if (s->ops->set_loop != NULL) s->ops->set_loop(s, loop);
}

/* Bounds the time of the reads that run from now on, on a server thread's
 * read connection (one given a loop: store_set_loop): deadline_ns is a
 * CLOCK_MONOTONIC time in nanoseconds, 0 for none (as it starts). On
 * SQLite a read still running at the deadline stops (its statement is
 * interrupted: every 1,000 virtual machine steps the clock is read) and
 * returns STORE_TOO_SLOW; the API sets it around each read it runs on the
 * loop (api_req_read, --read-time). On PostgreSQL, whose reads complete
 * later, the time left until the deadline when a read starts becomes the
 * statement_timeout of the thread's read connection, kept from then on (0
 * leaves it): each statement still running after that long is cancelled
 * and its read completes with STORE_TOO_SLOW (store/postgres/async.c).
 * On SQLite an export's reader (store_reader_open) takes it too, its pages
 * being read on the loop (api_read_begin, api/export.c). Other connections
 * (PostgreSQL's exports' readers, the writer, the commands) ignore it. */
static inline void store_read_deadline(store_t *s, int64_t deadline_ns)
{
    if (s->ops->read_deadline != NULL) s->ops->read_deadline(s, deadline_ns);
}

/* Tells the store that it is the server's writer connection, the one that
 * commits nearly every write (api/writer.c), once, before its first batch.
 * SQLite then copies the WAL into the database on a thread of its own
 * rather than inside the commits (store/sqlite/ckpt.c); should that thread
 * not start, the checkpoints stay in the commits. PostgreSQL ignores it. */
static inline void store_set_writer(store_t *s)
{
    if (s->ops->set_writer != NULL) s->ops->set_writer(s);
}

/*
 * Syncs taken out of the writer's commits (api/writer.c), so that the
 * writer's next batch runs while the last one's commit is being synced.
 *
 * store_sync_defer(s), on the writer's store, once, before its first
 * batch: from then on every commit of store_batch_end writes the batch to
 * the database's log and leaves the sync that makes it durable owed;
 * false when the backend cannot (PostgreSQL: its commit is its server's).
 * store_sync_owed(s, &t), on the writer's thread right after each
 * store_batch_end: whether that commit left a sync owed, and its ticket.
 * A commit is visible to the process's other connections at once, but it
 * may be acknowledged only after store_sync_run(s, &t) returned 0, on any
 * thread (the errno of the failed sync otherwise: what was committed may
 * then not be on disk, and the process must stop serving). A sync covers
 * every commit whose sync was owed before it. Every ticket taken must be
 * run, before the store closes.
 */
static inline bool store_sync_defer(store_t *s)
{
    return s->ops->sync_defer != NULL && s->ops->sync_defer(s);
}

static inline bool store_sync_owed(store_t *s, store_sync_t *out)
{
    return s->ops->sync_owed != NULL && s->ops->sync_owed(s, out);
}

static inline int store_sync_run(store_t *s, const store_sync_t *t)
{
    return s->ops->sync_run(t);
}

/* Creates or upgrades the schema to the newest version (SCHEMA_VERSION in
 * store/schema.h), each migration in its own transaction, in order. Safe
 * to run on an up-to-date database, and from several processes at once:
 * each step is applied once. STORE_ERROR for a database newer than this
 * crmd. */
static inline store_rc_t store_migrate(store_t *s)
{
    return s->ops->migrate(s);
}

/* Creates an app with the given key and fills *out;
 * STORE_CONFLICT if the key exists. */
static inline store_rc_t store_app_create(store_t *s, const char *key, const char *name, int64_t now,
                                          store_app_t *out)
{
    return s->ops->app_create(s, key, name, now, out);
}

/* Finds an app by key (disabled apps included; the caller decides). */
static inline store_rc_t store_app_find(store_t *s, const char *key, store_app_t *out,
                                        const store_async_t *async)
{
    return s->ops->app_find(s, key, out, async);
}

/* Passes every token signing key to cb, by seq (oldest first), in one
 * snapshot; the PEM text is valid only during the call. Never async: the
 * command line and the key poller (api/keyring.c) read it. */
static inline store_rc_t store_keys(store_t *s, store_key_cb cb, void *ctx)
{
    return s->ops->keys(s, cb, ctx);
}

/* Stores a signing key (its pem, created_at, signed_until and retired_at;
 * seq is the store's). With first, only when no key is stored at all:
 * concurrent first uses agree on one key (whoever stores first wins; the
 * others store nothing and read the winner's back with store_keys). */
static inline store_rc_t store_key_add(store_t *s, const store_key_t *key, int first)
{
    return s->ops->key_add(s, key, first);
}

/* Records that key seq signed a token expiring at signed_until (seconds):
 * its signed_until only grows, and stays STORE_KEY_UNTRACKED when it is.
 * With retired_at > 0, also retires it then (a retired key stays retired,
 * at its first time). STORE_NOT_FOUND when no key has that seq. */
static inline store_rc_t store_key_update(store_t *s, int64_t seq, int64_t signed_until, int64_t retired_at)
{
    return s->ops->key_update(s, seq, signed_until, retired_at);
}

/* Inserts a complete lead (id and timestamps set by the caller), and
 * counts it in the app's lead total in the same transaction;
 * STORE_CONFLICT if the app already has a lead with this id. */
static inline store_rc_t store_lead_create(store_t *s, int64_t app, const lead_t *lead)
{
    return s->ops->lead_create(s, app, lead);
}

/* Inserts every lead next gives (complete, as store_lead_create takes
 * them) and counts them in the app's lead total; *created counts those
 * inserted. Only inside a batch (store_batch_begin), which the caller
 * ends without committing when this fails: the leads are then not all
 * undone by this call alone (SQLite; *created counts those that stay
 * until then), or are (PostgreSQL, where it is one unit of work whose
 * statements are pipelined, so a failure may be learned only after more
 * leads were taken; *created is then 0). It stops at the first failure. next is
 * called again after the last lead it gave has been taken, so the caller
 * may record each lead's change (its events, its history) in the next
 * call; a lead taken may not be readable before this returns. Made for
 * imports and a batch's creates: SQLite inserts them without a savepoint
 * each, and moves them into leads (the search index, the totals) by one
 * statement per thousand (sqlite_int.h: staged creates). */
static inline store_rc_t store_lead_create_many(store_t *s, int64_t app, store_lead_next_fn next, void *ctx,
                                                int64_t *created)
{
    return s->ops->lead_create_many(s, app, next, ctx, created);
}

/* Passes the lead with this id to cb; STORE_NOT_FOUND if there is none
 * (an id that is not a UUID names none). Inside a batch it locks the row:
 * see store_batch_begin. */
static inline store_rc_t store_lead_get(store_t *s, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                                        const store_async_t *async)
{
    return s->ops->lead_get(s, app, id, cb, ctx, async);
}

/* Passes at most limit leads, newest first (created_at, then id,
 * descending), skipping offset; *total receives the app's lead count. */
static inline store_rc_t store_lead_list(store_t *s, int64_t app, int64_t offset, int limit, int64_t *total,
                                         store_lead_cb cb, void *ctx, const store_async_t *async)
{
    return s->ops->lead_list(s, app, offset, limit, total, cb, ctx, async);
}

/* Applies patch in one transaction, sets updated_at with
 * record_next_updated_at, and passes the whole updated lead to cb. cb may
 * run before the commit: use what it saw only when STORE_OK is returned. */
static inline store_rc_t store_lead_update(store_t *s, int64_t app, const char *id, const lead_patch_t *patch,
                                           int64_t now, store_lead_cb cb, void *ctx)
{
    return s->ops->lead_update(s, app, id, patch, now, cb, ctx);
}

/* Deletes a lead and its follows; STORE_NOT_FOUND if there is none. */
static inline store_rc_t store_lead_delete(store_t *s, int64_t app, const char *id)
{
    return s->ops->lead_delete(s, app, id);
}

/* Inserts a complete follow; STORE_NOT_FOUND if its lead does not exist. */
static inline store_rc_t store_follow_create(store_t *s, int64_t app, const follow_t *follow)
{
    return s->ops->follow_create(s, app, follow);
}

/* Passes the follow id of lead lead_id to cb; STORE_NOT_FOUND if that
 * lead has no such follow. Inside a batch it locks the row: see
 * store_batch_begin. */
static inline store_rc_t store_follow_get(store_t *s, int64_t app, const char *lead_id, const char *id,
                                          store_follow_cb cb, void *ctx, const store_async_t *async)
{
    return s->ops->follow_get(s, app, lead_id, id, cb, ctx, async);
}

/* Passes a lead's follows by due date (unset last), then created_at, then
 * id; STORE_NOT_FOUND if the lead does not exist. */
static inline store_rc_t store_follow_list(store_t *s, int64_t app, const char *lead_id, int64_t offset,
                                           int limit, int64_t *total, store_follow_cb cb, void *ctx,
                                           const store_async_t *async)
{
    return s->ops->follow_list(s, app, lead_id, offset, limit, total, cb, ctx, async);
}

/* As store_lead_update, for a follow of lead lead_id; STORE_NOT_FOUND if
 * that lead has no such follow. */
static inline store_rc_t store_follow_update(store_t *s, int64_t app, const char *lead_id, const char *id,
                                             const follow_patch_t *patch, int64_t now, store_follow_cb cb,
                                             void *ctx)
{
    return s->ops->follow_update(s, app, lead_id, id, patch, now, cb, ctx);
}

/* Deletes a follow of lead lead_id; STORE_NOT_FOUND if there is none. */
static inline store_rc_t store_follow_delete(store_t *s, int64_t app, const char *lead_id, const char *id)
{
    return s->ops->follow_delete(s, app, lead_id, id);
}

/* Passes the leads of q's page in q's order (see "Finding leads" above)
 * to cb, and, when q->count, the number of leads the filter keeps to
 * *total (else -1). The page and the count come from one snapshot. */
static inline store_rc_t store_lead_find(store_t *s, int64_t app, const store_lead_query_t *q, int64_t *total,
                                         store_lead_cb cb, void *ctx, const store_async_t *async)
{
    return s->ops->lead_find(s, app, q, total, cb, ctx, async);
}

/* The same for follows: q->lead's (STORE_NOT_FOUND when that lead does not
 * exist), or the app's. */
static inline store_rc_t store_follow_find(store_t *s, int64_t app, const store_follow_query_t *q,
                                           int64_t *total, store_follow_cb cb, void *ctx,
                                           const store_async_t *async)
{
    return s->ops->follow_find(s, app, q, total, cb, ctx, async);
}

/* The pipeline summary of the leads f keeps, from one snapshot: without a
 * filter, or with stages, statuses and sources only, it reads the totals
 * kept by every write (a few rows) instead of the leads. Overdue follows come
 * from their index (status, due date). */
static inline store_rc_t store_lead_summary(store_t *s, int64_t app, const store_lead_filter_t *f,
                                            int64_t now, store_summary_t *out, const store_async_t *async)
{
    return s->ops->lead_summary(s, app, f, now, out, async);
}

/* Moves a lead and its follows to the trash, trashed at now (ms), and
 * takes it out of the app's lead count, in one transaction;
 * STORE_NOT_FOUND if there is no such lead (a trashed one included). */
static inline store_rc_t store_lead_trash(store_t *s, int64_t app, const char *id, int64_t now)
{
    return s->ops->lead_trash(s, app, id, now);
}

/* Moves a trashed lead and its follows back, as they were but for the
 * lead's updated_at, which advances as an update's (record_next_updated_at),
 * counts it again, and passes it to cb; STORE_NOT_FOUND if the trash holds
 * no such lead. cb may run before the commit, as store_lead_update's. */
static inline store_rc_t store_lead_recover(store_t *s, int64_t app, const char *id, int64_t now,
                                            store_lead_cb cb, void *ctx)
{
    return s->ops->lead_recover(s, app, id, now, cb, ctx);
}

/* Deletes a trashed lead and its follows for good; STORE_NOT_FOUND if the
 * trash holds no such lead. */
static inline store_rc_t store_trash_purge(store_t *s, int64_t app, const char *id)
{
    return s->ops->trash_purge(s, app, id);
}

/* Passes the trashed lead id to cb with its deleted_at (its row locked
 * until a batch ends, as store_lead_get's); STORE_NOT_FOUND if the trash
 * holds no such lead. */
static inline store_rc_t store_trash_get(store_t *s, int64_t app, const char *id, store_trash_cb cb,
                                         void *ctx)
{
    return s->ops->trash_get(s, app, id, cb, ctx);
}

/* Passes at most limit trashed leads (of any app) trashed before before
 * (ms), oldest first, to cb. Inside a batch their rows stay locked until
 * it ends; on PostgreSQL rows another process holds are skipped, so that
 * several processes purging at once share the work. */
static inline store_rc_t store_trash_due(store_t *s, int64_t before, int limit, store_trash_due_cb cb,
                                         void *ctx)
{
    return s->ops->trash_due(s, before, limit, cb, ctx);
}

/* Passes q's page of the app's trash to cb, and the number of leads in
 * the app's trash to *total, from one snapshot. */
static inline store_rc_t store_trash_list(store_t *s, int64_t app, const store_trash_query_t *q,
                                          int64_t *total, store_trash_cb cb, void *ctx,
                                          const store_async_t *async)
{
    return s->ops->trash_list(s, app, q, total, cb, ctx, async);
}

/* Purges at most limit leads (of any app) trashed before before (ms), with
 * their follows, in one short transaction; *purged gets how many. Several
 * processes may run it at once: none waits for the rows another is
 * purging. */
static inline store_rc_t store_trash_expire(store_t *s, int64_t before, int limit, int *purged)
{
    return s->ops->trash_expire(s, before, limit, purged);
}

/* Records a change of a lead (or of its follow) in the caller's
 * transaction (inside a batch, with the write that made it), at
 * change->at or, if the lead's newest entry is later, at that one's, so
 * that the list never shows an earlier time above a later one (a copied
 * entry, change->seq > 0, keeps its time). */
static inline store_rc_t store_history_add(store_t *s, int64_t app, const store_change_t *change)
{
    return s->ops->history_add(s, app, change);
}

/* Passes q's page of the lead's history to cb, and the number of its
 * changes to *total, from one snapshot; STORE_NOT_FOUND when the app has
 * no such lead, live or in the trash (a purged lead's history is gone
 * with it). */
static inline store_rc_t store_history_list(store_t *s, int64_t app, const char *lead_id,
                                            const store_history_query_t *q, int64_t *total,
                                            store_change_cb cb, void *ctx, const store_async_t *async)
{
    return s->ops->history_list(s, app, lead_id, q, total, cb, ctx, async);
}

/* Passes the answer kept for app's key to cb, unless it was made before
 * fresh_after (ms: then it is as good as gone); STORE_NOT_FOUND when
 * there is none. */
static inline store_rc_t store_idem_get(store_t *s, int64_t app, const char *key, int64_t fresh_after,
                                        store_idem_cb cb, void *ctx, const store_async_t *async)
{
    return s->ops->idem_get(s, app, key, fresh_after, cb, ctx, async);
}

/* Claims app's key for a request whose digest is hash (hex), at now:
 * STORE_OK when it was free (or its answer older than fresh_after, which
 * it replaces); STORE_CONFLICT when a live answer holds it (another
 * process's, committed first: read it with store_idem_get), or when
 * another transaction claimed it and has not ended (another process's
 * write still in flight, on PostgreSQL): then *in_flight (when not NULL)
 * is set true, at once, without waiting for that transaction. Inside a
 * batch, the claim holds the key until the batch ends. */
static inline store_rc_t store_idem_claim(store_t *s, int64_t app, const char *key, const char *hash,
                                          int64_t now, int64_t fresh_after, bool *in_flight)
{
    if (in_flight != NULL) *in_flight = false;
    return s->ops->idem_claim(s, app, key, hash, now, fresh_after, in_flight);
}

/* Inside a batch: takes app's key for the batch's transaction, without
 * waiting, before anything of the batch may wait (store_leads_lock), so
 * that another process's claim of it is told it is in flight at once
 * (store_idem_claim, which then gets it again, without waiting). STORE_OK
 * with *in_flight true when another transaction holds it. SQLite, with
 * one writing process, does nothing (*in_flight false). */
static inline store_rc_t store_idem_hold(store_t *s, int64_t app, const char *key, bool *in_flight)
{
    *in_flight = false;
    return s->ops->idem_hold(s, app, key, in_flight);
}

/* Keeps the answer of the write that claimed app's key. */
static inline store_rc_t store_idem_finish(store_t *s, int64_t app, const char *key, int status,
                                           const char *location, text_ref_t body)
{
    return s->ops->idem_finish(s, app, key, status, location, body);
}

/* Lets go of a claim whose answer is not kept (a 409, 429 or 5xx). */
static inline store_rc_t store_idem_release(store_t *s, int64_t app, const char *key)
{
    return s->ops->idem_release(s, app, key);
}

/* Forgets at most limit answers made before before (ms), in one short
 * transaction; *purged gets how many. */
static inline store_rc_t store_idem_expire(store_t *s, int64_t before, int limit, int *purged)
{
    return s->ops->idem_expire(s, before, limit, purged);
}

/* Upkeep of the search index that no write does itself, a step of it in
 * one short transaction of its own, durable like a write: SQLite merges
 * its trigram index's segments, writing at most about pages pages, so
 * that a search looks its terms up in a few segments rather than a dozen
 * (store/sqlite/tidy.c). *more is true when the step did some work (more
 * may be left), false when nothing was left to do. PostgreSQL's index
 * needs no such step: always STORE_OK and false. The writer thread runs
 * it while no write waits (api/writer.c). */
static inline store_rc_t store_search_tidy(store_t *s, int pages, bool *more)
{
    return s->ops->search_tidy(s, pages, more);
}

/* Group commit, on the writer thread's connection. Between
 * store_batch_begin and store_batch_end every write function runs inside
 * one transaction, each in its own savepoint: a write that fails is undone
 * alone (its rc says why), and the others stay. store_batch_end(s, 1)
 * commits them all with one sync to disk and returns STORE_OK, or fails
 * (STORE_UNAVAILABLE, or STORE_ERROR) and then none of them happened, not
 * even those that returned STORE_OK. store_batch_end(s, 0) undoes them
 * all. A batch whose transaction the database ended by itself (a lost
 * connection, a full disk, a deadlock) refuses every later write with
 * STORE_UNAVAILABLE and cannot commit: a write's part never commits
 * without the rest of it (see store_batch_redo).
 *
 * Locks. A read of one record inside a batch (store_lead_get,
 * store_follow_get) locks that row until the batch ends: no other
 * connection can change or delete it in between, so a write later in the
 * batch that depends on what was read (the follow update's "overdue"
 * check in api/follows.c) still sees it as read. Other connections may
 * read it meanwhile. SQLite holds the database's write lock for the whole
 * batch, which covers every row; PostgreSQL reads with FOR UPDATE. Lists
 * inside a batch lock nothing. Keep batches short: every writer elsewhere
 * waits for these locks (see above). */
static inline store_rc_t store_batch_begin(store_t *s)
{
    return s->ops->batch_begin(s);
}

/* Inside a batch, before its writes: locks the rows of these leads (those
 * that exist; an id that is not a UUID names none) until the batch ends,
 * all in one statement, in (app, id) order. Batches of several processes
 * on one PostgreSQL database that change some of the same leads then never
 * each hold a lead the other waits for (a deadlock, which undoes one of
 * them after a second: api/writer.c runs it again, three times in all);
 * the later one waits here for the first's commit. SQLite, whose write
 * lock covers every row for the whole batch, does nothing. */
static inline store_rc_t store_leads_lock(store_t *s, const store_lead_ref_t *leads, size_t n)
{
    return s->ops->leads_lock(s, leads, n);
}

static inline store_rc_t store_batch_end(store_t *s, int commit)
{
    return s->ops->batch_end(s, commit);
}

/* After a batch failed: whether it failed only because its transaction
 * lost a deadlock (or a serialization failure) to another connection's, so
 * that running the same writes again in a new batch may succeed. None of
 * the failed batch happened. PostgreSQL only: SQLite's writers never wait
 * for each other in a circle. Valid until the next store_batch_begin. */
bool store_batch_redo(const store_t *s);

/* Passes every app with its lead count, oldest first. */
static inline store_rc_t store_app_list(store_t *s, store_app_cb cb, void *ctx)
{
    return s->ops->app_list ? s->ops->app_list(s, cb, ctx) : STORE_ERROR;
}

/* Disables (1) or enables (0) an app; STORE_NOT_FOUND for an unknown key.
 * Servers notice within a second (their app cache lives that long). */
static inline store_rc_t store_app_set_disabled(store_t *s, const char *key, int disabled)
{
    return s->ops->app_set_disabled ? s->ops->app_set_disabled(s, key, disabled) : STORE_ERROR;
}

/* Records a token this database issued, before anyone is given it, so
 * that store_token_revoke knows it; STORE_CONFLICT when its jti is already
 * recorded. Verifying a token never needs its record: tokens issued before
 * records were kept (schema version 3) stay valid. */
static inline store_rc_t store_token_record(store_t *s, const store_token_t *token)
{
    return s->ops->token_record ? s->ops->token_record(s, token) : STORE_ERROR;
}

/* Records a revoked token id (jti): STORE_OK when it is newly revoked;
 * STORE_CONFLICT when it already was (nothing changes: revoking twice is
 * fine); STORE_NOT_FOUND, and nothing recorded, when this database has no
 * record of issuing it (store_token_record), unless unrecorded is true:
 * for a token issued before records were kept. */
static inline store_rc_t store_token_revoke(store_t *s, const char *jti, int64_t now, bool unrecorded)
{
    return s->ops->token_revoke ? s->ops->token_revoke(s, jti, now, unrecorded) : STORE_ERROR;
}

/* Passes the revocations recorded after sequence number after_seq, in
 * order; servers poll this every second. Sequence numbers become visible
 * in order, across connections and processes, so a poller that asks for
 * those after the last it saw never misses one. */
static inline store_rc_t store_revoked_since(store_t *s, int64_t after_seq, store_revoked_cb cb, void *ctx,
                                             const store_async_t *async)
{
    return s->ops->revoked_since ? s->ops->revoked_since(s, after_seq, cb, ctx, async) : STORE_ERROR;
}

/* --- Bulk copy --------------------------------------------------------------
 * Whole-database export and import, for `crmd copy` between backends. An
 * import is one transaction on the target: nothing of it is visible until
 * store_copy_import_end(s, 1) returns STORE_OK, and nothing of it remains
 * after any failure. Ids and timestamps are kept as given. */

/* Counts what the database holds, in one snapshot (inside an import: with
 * the import's own rows). */
static inline store_rc_t store_copy_count(store_t *s, store_counts_t *out)
{
    return s->ops->copy_count ? s->ops->copy_count(s, out) : STORE_ERROR;
}

/* Passes everything to cb (see store_export_t) from one read snapshot, and
 * counts that snapshot's rows into *total. */
static inline store_rc_t store_copy_export(store_t *s, const store_export_t *cb, void *ctx,
                                           store_counts_t *total)
{
    return s->ops->copy_export ? s->ops->copy_export(s, cb, ctx, total) : STORE_ERROR;
}

/* Begins a read snapshot: the reads made on s until store_snapshot_end
 * (never inside a batch) see the database as it was at the first of them,
 * whatever other connections commit meanwhile, so that a read made page by
 * page (crmd export, an export over HTTP) passes each lead once, in order,
 * even under a sort by a value that changes. Holds back no writer (SQLite:
 * a WAL read transaction, which holds back checkpoints past its start;
 * PostgreSQL: REPEATABLE READ READ ONLY, which holds back the vacuuming of
 * rows changed after its start): keep it short, or bounded.
 *
 * Never on a server thread's own store, whose reads answer other
 * requests: open a reader (store_reader_open) for it. On a reader with a
 * loop (PostgreSQL) the reads may be async; begin the snapshot before the
 * first read: the transaction begins on the connection that read makes,
 * which is never made again (a lost connection fails the read in flight,
 * and every read after it, with STORE_UNAVAILABLE). */
static inline store_rc_t store_snapshot_begin(store_t *s)
{
    return s->ops->snapshot_begin ? s->ops->snapshot_begin(s) : STORE_ERROR;
}

static inline void store_snapshot_end(store_t *s)
{
    if (s->ops->snapshot_end) s->ops->snapshot_end(s);
}

/* Opens another connection to the database s is on, for one export's
 * snapshot (store_snapshot_begin) beside the reads of s's thread, which
 * owns it as it owns s; close it with store_close (which ends a snapshot
 * still open). It never blocks the thread's loop on the network: on
 * PostgreSQL, when s has a loop, the reader takes a copy of it and makes
 * its connection with its first read, as s's reads do; without one it
 * connects before returning, as store_open. SQLite opens the file again
 * (an in-memory database has no second connection: NULL). NULL with the
 * reason in err (errsz bytes) when it cannot. */
static inline store_t *store_reader_open(store_t *s, char *err, size_t errsz)
{
    return s->ops->reader_open(s, err, errsz);
}

/* Starts the import transaction, holding the database's write lock where
 * the backend has one, and counts what the target holds in it. */
static inline store_rc_t store_copy_import_begin(store_t *s, store_counts_t *before)
{
    return s->ops->copy_import_begin ? s->ops->copy_import_begin(s, before) : STORE_ERROR;
}

/* Adds a signing key as it is (a new seq, after the target's keys). */
static inline store_rc_t store_copy_import_key(store_t *s, const store_key_t *key)
{
    return s->ops->copy_import_key ? s->ops->copy_import_key(s, key) : STORE_ERROR;
}

/* Inserts an app with its key, name, disabled flag and created_at; with
 * keep_id its id too, else the target picks one. Its id is put in *id.
 * STORE_CONFLICT when the key or the id is taken. */
static inline store_rc_t store_copy_import_app(store_t *s, const store_app_t *app, int keep_id, int64_t *id)
{
    return s->ops->copy_import_app ? s->ops->copy_import_app(s, app, keep_id, id) : STORE_ERROR;
}

/* Records an issued token, its app the target's id; *added is 0 when its
 * jti was already recorded. */
static inline store_rc_t store_copy_import_issued(store_t *s, const store_token_t *token, int *added)
{
    return s->ops->copy_import_issued ? s->ops->copy_import_issued(s, token, added) : STORE_ERROR;
}

/* Records a revocation; *added is 0 when the jti was already revoked. */
static inline store_rc_t store_copy_import_revoked(store_t *s, const char *jti, int64_t revoked_at,
                                                   int *added)
{
    return s->ops->copy_import_revoked ? s->ops->copy_import_revoked(s, jti, revoked_at, added) : STORE_ERROR;
}

/* Inserts a lead as it is (app lead counts are set by import_end);
 * STORE_CONFLICT when the app already has a lead with its id. A backend
 * may send leads and follows ahead without waiting for each answer: a
 * failure can then be returned by a later bulk copy call instead (never
 * lost: the import fails as a whole). */
static inline store_rc_t store_copy_import_lead(store_t *s, int64_t app, const lead_t *lead)
{
    return s->ops->copy_import_lead ? s->ops->copy_import_lead(s, app, lead) : STORE_ERROR;
}

/* Inserts a follow as it is; STORE_NOT_FOUND if its lead is not there. */
static inline store_rc_t store_copy_import_follow(store_t *s, int64_t app, const follow_t *follow)
{
    return s->ops->copy_import_follow ? s->ops->copy_import_follow(s, app, follow) : STORE_ERROR;
}

/* Ends the import: with commit, sets every app's lead count from its leads
 * (and moves id sequences past the imported ids), then commits; without,
 * rolls everything back. */
static inline store_rc_t store_copy_import_end(store_t *s, int commit)
{
    return s->ops->copy_import_end ? s->ops->copy_import_end(s, commit) : STORE_ERROR;
}

/* Writes a consistent copy of the database, as of one moment, to the new
 * file path (created 0600; an existing path is STORE_CONFLICT), while
 * other connections go on reading and writing; the copy is checked
 * (integrity_check) before it is given its name, so path is whole or
 * absent. What was done, or why not, goes to msg (msgsz bytes).
 * PostgreSQL: STORE_ERROR, and msg says how pg_dump does it. */
static inline store_rc_t store_backup(store_t *s, const char *path, char *msg, size_t msgsz)
{
    return s->ops->backup ? s->ops->backup(s, path, msg, msgsz) : STORE_ERROR;
}

/* True when url has one of the forms store_open accepts; else false with
 * a reason in err (errsz bytes) that names the accepted forms and never
 * shows more of url than its scheme. */
bool store_url_check(const char *url, char *err, size_t errsz);

/* Writes url into out (outsz bytes, always terminated, cut to fit) with
 * every password replaced by "***", for messages and logs: a URL's
 * password whatever characters it holds (the userinfo ends at the last
 * '@'), a password= parameter of a URL's query (its keyword
 * percent-encoded or not) or of a key=value string (quoted or not), and
 * likewise sslpassword. Any text may be given, such as a database's
 * message that quotes a URL; where it is unsure, more is hidden. */
void store_url_redact(const char *url, char *out, size_t outsz);

/* True when url names a database that other processes may write to at the
 * same time (PostgreSQL), false for an embedded SQLite file. */
bool store_url_is_shared(const char *url);

/* The file an SQLite URL names (a pointer into url), or NULL for a URL
 * that names no file (PostgreSQL, an unknown scheme). */
const char *store_url_file(const char *url);

#endif
