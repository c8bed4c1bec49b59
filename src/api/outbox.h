/*
 * outbox.h: the webhooks' events of a change (extensions.md, "Webhooks"),
 * recorded in the outbox of the store (store/webhook.h) by
 * api_change_record.
 *
 * Which events a change makes: a creation, its *.created; a deletion, its
 * *.deleted (a lead's follows go with it and send nothing); an update that
 * changes some attribute, its *.updated, and lead.stage_changed when the
 * stage changed, follow.completed when the follow became completed. An
 * update that changes nothing makes none. Each event's payload is the
 * exact body its deliveries send: {"id", "type", "created_at", "data"
 * (the record as the API renders it after the change, before it for a
 * deletion), "previous_attributes" (the old values of what changed; {}
 * but for updates)}.
 *
 * A webhook whose backlog holds the cap already does not get the event:
 * the event is dropped, its delivery log says so, and the webhook is made
 * inactive (store_event_t).
 */
#ifndef CRMD_API_OUTBOX_H
#define CRMD_API_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "api/change.h"

/* The most undelivered events a webhook may have waiting
 * (--webhook-backlog-max): a receiver that is down for long would
 * otherwise make the outbox, and the database, grow without bound. Past
 * it the webhook is made inactive, so that its owner sees it. */
#define API_OUTBOX_BACKLOG_DEFAULT 10000
#define API_OUTBOX_BACKLOG_MAX 10000000

/* Sets the cap (1..API_OUTBOX_BACKLOG_MAX); call before serving. */
void api_outbox_configure(int64_t backlog_max);

/* Records change c's events for app, made at now, on s (inside the
 * writer's batch). *recorded grows by the rows recorded (one per event and
 * webhook that wants it). */
store_rc_t api_outbox_record(store_t *s, int64_t app, int64_t now, const api_change_t *c, int *recorded);

/* Whether events were recorded since the last call: the writer asks after
 * each batch, to wake the sender when it committed some. */
bool api_outbox_take_recorded(void);

#endif
