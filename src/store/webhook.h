/*
 * webhook.h: the store's part of webhooks (extensions.md, "Webhooks"):
 * subscriptions, the outbox of events waiting for delivery, and the log of
 * delivery attempts. The rules of store.h hold here
 * too (one thread per store, records through callbacks whose strings live
 * only during the call, every function scoped to an app where it takes
 * one).
 *
 * The outbox. An acknowledged change records its events in the same
 * transaction (store_event_record, from a write of the writer's batch): the
 * payload once per event, and a queue row per event and subscribed active
 * webhook naming it, so an event exists exactly when its change does, and
 * a webhook inactive at that moment never gets it. A payload goes in the
 * same transaction as the last queue row that names it (delivered, given
 * up, or deleted with its webhook). Rows are numbered in the order they are recorded (seq); a webhook's
 * events go out in that order, one at a time. For one lead that is the
 * order of its changes: a change waits for the previous one's row lock,
 * so its events are recorded after the previous change committed.
 *
 * Sending (webhook/sender.c, one thread per process) works on leases: a
 * sender leases a webhook (store_outbox_claim) and alone sends its events
 * until the lease ends, renewing it as it reports (store_outbox_report). A
 * lease taken by a process that died expires, and another process (or the
 * same one restarted) takes the webhook over, sending again what was not
 * reported: deliveries are at least once. Claims skip webhooks another
 * process is leasing (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite holds its
 * write lock), so two senders never work on one webhook at once.
 */
#ifndef CRMD_STORE_WEBHOOK_H
#define CRMD_STORE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/webhook.h"
#include "store/store.h"

typedef void (*store_webhook_cb)(void *ctx, const webhook_t *wh);
typedef void (*store_delivery_cb)(void *ctx, const delivery_t *d);

/* An event to record: its payload is the exact body every delivery sends.
 * A webhook that already has backlog_max undelivered events does not get
 * it: its delivery log gets a row of id drop_id saying so (attempt 1, no
 * status, error "dropped: ..."), and it is made inactive, all in the same
 * transaction. */
typedef struct store_event {
    char id[UUID_BUFSZ];
    int type; /* model/event.h */
    int64_t created_at;
    const char *payload;
    size_t len;
    int64_t backlog_max; /* from 1 */
    char drop_id[UUID_BUFSZ];
} store_event_t;

/* A webhook leased to a sender. */
typedef struct store_lane {
    const char *id;
    int64_t app;
    const char *url, *secret;
} store_lane_t;
typedef void (*store_lane_cb)(void *ctx, const store_lane_t *lane);

/* One undelivered event of a webhook, as the outbox holds it. */
struct store_queued {
    int64_t seq;
    char event_id[UUID_BUFSZ];
    int type;
    int64_t created_at;
    const char *payload;
    size_t len;
    int attempts;     /* made so far */
    int64_t first_at; /* ms: the first attempt; 0 before it */
    int64_t next_at;  /* ms: not to be sent before; 0: at once */
    /* store_outbox_queue's only (NULL and false elsewhere): the webhook as
     * it is now, so that events recorded after a change of its URL are
     * sent to the new one. */
    const char *url;
    bool active;
};
typedef void (*store_queued_cb)(void *ctx, const store_queued_t *e);

/* What became of one attempt. */
typedef struct store_outcome {
    const char *webhook_id;
    int64_t seq;               /* the event's row */
    const delivery_t *attempt; /* the log's row; next_retry_at 0 ends the event (delivered or given up) */
    int64_t first_at;          /* kept on the event for its next attempts */
    bool ok;                   /* delivered: the webhook is not failing */
} store_outcome_t;

/* A sender's report (store_outbox_report), in one transaction: the
 * outcomes, in the order they happened; then the leases of release end;
 * then every other lease of owner is renewed to lease_until, and held
 * gets each webhook still leased to owner and active (a webhook deleted,
 * made inactive or taken over meanwhile is not among them, and the sender
 * drops it). A failure at now on a webhook that has failed since at least
 * disable_after_ms before sets it inactive: disabled gets it. */
typedef struct store_report {
    const store_outcome_t *outcomes;
    size_t n;
    const char *const *release;
    size_t nrelease;
    const char *owner;
    int64_t now, lease_until, disable_after_ms;
    store_lane_cb held;
    void (*disabled)(void *ctx, const char *webhook_id);
    void *ctx;
} store_report_t;

/* A page of a list ordered newest first (created_at, then id, both
 * descending): at most limit rows, those after the first offset, or, when
 * after_id is set, those after the row (after_at, after_id) (keyset
 * paging: a cursor's page, whatever was written since). */
typedef struct store_newest_page {
    int64_t offset;
    int limit;
    int64_t after_at;
    const char *after_id; /* a UUID, or NULL: by offset */
} store_newest_page_t;

/* Where a page by offset starts: after the end of the order. */
#define STORE_NEWEST_END_AT INT64_MAX
#define STORE_NEWEST_END_ID "ffffffff-ffff-ffff-ffff-ffffffffffff"

/* The backend's webhook functions (store_ops_t.webhook, declared in store.h
 * as store_webhook_ops_t); see the wrappers. */
struct store_webhook_ops {
    store_rc_t (*create)(store_t *s, int64_t app, const webhook_t *wh, int max);
    store_rc_t (*get)(store_t *s, int64_t app, const char *id, store_webhook_cb cb, void *ctx,
                      const store_async_t *async);
    store_rc_t (*list)(store_t *s, int64_t app, const store_newest_page_t *pg, int64_t *total,
                       store_webhook_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*update)(store_t *s, int64_t app, const char *id, const webhook_patch_t *patch, int64_t now,
                         store_webhook_cb cb, void *ctx);
    store_rc_t (*remove)(store_t *s, int64_t app, const char *id);
    store_rc_t (*deliveries)(store_t *s, int64_t app, const char *id, const store_newest_page_t *pg,
                             int64_t *total, store_delivery_cb cb, void *ctx, const store_async_t *async);
    store_rc_t (*event_record)(store_t *s, int64_t app, const store_event_t *ev, int *recorded);
    store_rc_t (*event_wanted)(store_t *s, int64_t app, int type, bool *wanted);
    store_rc_t (*claim)(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max,
                        store_lane_cb cb, void *ctx);
    store_rc_t (*queue)(store_t *s, const char *webhook_id, int limit, store_queued_cb cb, void *ctx);
    store_rc_t (*report)(store_t *s, const store_report_t *r);
    store_rc_t (*owners)(store_t *s, void (*cb)(void *ctx, const char *owner), void *ctx);
    store_rc_t (*release_owner)(store_t *s, const char *owner);
    store_rc_t (*prune)(store_t *s, int64_t before, int limit, int *deleted);
    /* Bulk copy (store.h's): inside the import's transaction. */
    store_rc_t (*import_webhook)(store_t *s, int64_t app, const webhook_t *wh);
    store_rc_t (*import_event)(store_t *s, const char *webhook_id, const store_queued_t *e);
};

/* Inserts a new webhook (id, secret and timestamps set by the caller);
 * STORE_CONFLICT when the app already has max webhooks. */
store_rc_t store_webhook_create(store_t *s, int64_t app, const webhook_t *wh, int max);

/* Passes the webhook with this id to cb (secret included); STORE_NOT_FOUND
 * when the app has none. */
store_rc_t store_webhook_get(store_t *s, int64_t app, const char *id, store_webhook_cb cb, void *ctx,
                             const store_async_t *async);

/* Passes the page pg of the app's webhooks, newest first; *total gets
 * how many it has. */
store_rc_t store_webhook_list(store_t *s, int64_t app, const store_newest_page_t *pg, int64_t *total,
                              store_webhook_cb cb, void *ctx, const store_async_t *async);

/* Applies patch (never the secret), sets updated_at as
 * record_next_updated_at does, and passes the webhook to cb. Making it
 * active again forgets that it was failing, so that it is not disabled at
 * its next failure. STORE_NOT_FOUND when the app has none. */
store_rc_t store_webhook_update(store_t *s, int64_t app, const char *id, const webhook_patch_t *patch,
                                int64_t now, store_webhook_cb cb, void *ctx);

/* Deletes a webhook with its undelivered events and its log, in one
 * write; STORE_NOT_FOUND when the app has none. */
store_rc_t store_webhook_delete(store_t *s, int64_t app, const char *id);

/* Passes the page pg of the webhook's log of attempts, newest first;
 * *total gets how many there are. STORE_NOT_FOUND when the app has no
 * such webhook. */
store_rc_t store_webhook_deliveries(store_t *s, int64_t app, const char *id, const store_newest_page_t *pg,
                                    int64_t *total, store_delivery_cb cb, void *ctx,
                                    const store_async_t *async);

/* Records ev for every active webhook of app subscribed to its type,
 * inside the caller's write: call it in the writer's batch, after the
 * change it describes, and undo the batch if it fails (the change must not
 * be acknowledged without its events). Records nothing when no webhook
 * wants it; *recorded gets the number of rows recorded, or inside a bulk
 * write on PostgreSQL (store_lead_create_many), which does not wait for
 * the answer, 1: there may be some (the sender then looks for nothing). */
store_rc_t store_event_record(store_t *s, int64_t app, const store_event_t *ev, int *recorded);

/* Whether an event of type, recorded by a write of this batch, may reach
 * a webhook of app: false only when store_event_record would record
 * nothing for it until the batch ends, so that a bulk write (an import, a
 * batch's creates) may leave its events out instead of asking for each.
 * SQLite looks at the app's webhooks: its batch holds the write lock, so
 * none is added or made active meanwhile. PostgreSQL, where another
 * process may add one while the batch runs, always says true. */
store_rc_t store_event_wanted(store_t *s, int64_t app, int type, bool *wanted);

/* Leases to owner, until lease_until, at most max active webhooks that no
 * lease holds at now and whose oldest event is due at now; passes each to
 * cb. Its own write. */
store_rc_t store_outbox_claim(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max,
                              store_lane_cb cb, void *ctx);

/* Passes the oldest limit events of a webhook, oldest first, each with
 * the webhook's url and state as they are (none when it was deleted). */
store_rc_t store_outbox_queue(store_t *s, const char *webhook_id, int limit, store_queued_cb cb, void *ctx);

/* Deletes at most limit attempts of the delivery logs made before before
 * (ms); *deleted gets how many. Its own short write: call it again while
 * it deletes limit. */
store_rc_t store_outbox_prune(store_t *s, int64_t before, int limit, int *deleted);

/* Records a sender's report (store_report_t), in one transaction. */
store_rc_t store_outbox_report(store_t *s, const store_report_t *r);

/* Passes every owner that holds a lease (expired or not) to cb. */
store_rc_t store_outbox_owners(store_t *s, void (*cb)(void *ctx, const char *owner), void *ctx);

/* Ends every lease of owner: for a sender that knows owner's process is
 * gone, so its webhooks need not wait for their leases to run out. */
store_rc_t store_outbox_release_owner(store_t *s, const char *owner);

/* Bulk copy: inserts a webhook as it is, secret and state included, for
 * app (the target's id); its lease is not copied. */
store_rc_t store_copy_import_webhook(store_t *s, int64_t app, const webhook_t *wh);
/* Bulk copy: inserts an undelivered event of a webhook imported before,
 * after those imported so far (its order is kept, its seq is the
 * target's); its payload is stored unless an event of that id already
 * has it (the same event, imported for another webhook). */
store_rc_t store_copy_import_event(store_t *s, const char *webhook_id, const store_queued_t *e);

#endif
