/*
 * sender.h: the thread that delivers webhook events (one per process,
 * unless --webhook-sender off).
 *
 * It is a leaf: fed by the store's outbox (store/webhook.h) on a
 * connection of its own, it never calls into the API; the writer only
 * pokes it when a commit recorded events, so they go at once instead of
 * at the next poll. It leases webhooks, sends each one's events one at a
 * time, oldest first, with libcurl's multi interface (many webhooks at
 * once, each transfer bounded by a 10 s timeout and a 64 KiB answer), and
 * reports what became of each attempt in batches. See sender.c.
 */
#ifndef CRMD_WEBHOOK_SENDER_H
#define CRMD_WEBHOOK_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "webhook/schedule.h"

typedef struct webhook_sender_conf {
    const char *db_url;          /* must outlive the sender */
    webhook_schedule_t schedule; /* --webhook-retry, --webhook-give-up */
    int64_t disable_after_ms;    /* --webhook-disable-after */
    int64_t log_keep_ms;         /* --webhook-log-keep: the delivery logs' attempts are kept this long */
    const char *ca_file;         /* --webhook-ca-file: more CAs for https targets; NULL for none */
} webhook_sender_conf_t;

/* Opens the sender's own store connection, reads the CA file and starts
 * the thread; 0, or -1 with the reason in err (errsz bytes). Call before
 * the server threads start, from the main thread. */
int webhook_sender_start(const webhook_sender_conf_t *conf, char *err, size_t errsz);

/* Stops the thread: transfers in flight are dropped (their events are
 * sent again later: at least once), what is known is reported, and every
 * lease is given back, so another process takes over at once. A no-op
 * when the sender is not running. */
void webhook_sender_stop(void);

/* Wakes the sender: events were committed. Any thread; a no-op when the
 * sender is not running. */
void webhook_sender_poke(void);

#endif
