/*
 * change.h: what an acknowledged write changed, and the one place where
 * what follows from a change is recorded.
 *
 * Each write function that runs on the writer (leads.c, follows.c)
 * describes its change, once the store has made it, as an api_change_t:
 * the action, and the record before and after. api_change_record then
 * records, in the same batch (so in the same transaction as the change),
 * everything a change entails: the webhooks' events (outbox.c) and the
 * lead's history (history.c). If that fails, the write is
 * answered 503 and its whole batch undone, so a change is never
 * acknowledged without what follows from it.
 *
 * The writer's thread only (or the thread that runs a write without one).
 */
#ifndef CRMD_API_CHANGE_H
#define CRMD_API_CHANGE_H

#include <stdbool.h>

#include "api/api_int.h"

enum api_change_kind { CHANGE_LEAD, CHANGE_FOLLOW };
/* A lead's DELETED moves it to the trash (or, without a trash, deletes it
 * for good); RECOVERED brings it back; PURGED deletes a trashed lead. */
enum api_change_action { CHANGE_CREATED, CHANGE_UPDATED, CHANGE_DELETED, CHANGE_RECOVERED, CHANGE_PURGED };

/* A change: the versions before and after it (NULL before a creation and
 * after a deletion); for a lead, lead_*, for a follow, follow_*. */
typedef struct api_change {
    enum api_change_kind kind;
    enum api_change_action action;
    const lead_t *lead_before, *lead_after;
    const follow_t *follow_before, *follow_after;
    /* A lead's PURGED: when it went to the trash (ms), for lead.purged's
     * data, the lead as it was there (with deleted_at, as the trash shows it). */
    int64_t deleted_at;
    /* No webhook can get its events (store_event_wanted said so for this
     * batch): none is recorded. */
    bool no_events;
} api_change_t;

/* Records what follows from change c, made by write w (its app and time),
 * inside w's batch on s. False when that failed: w is then answered with
 * the failure and its batch undone (api_change_fail). */
bool api_change_record(store_t *s, api_write_t *w, const api_change_t *c);

/* Deletes lead id of w's app (before: the lead as it is) as a DELETE
 * does, a batch's included: to the trash, recorded as deleted; when
 * nothing is kept there (--trash-retention 0) for good at once instead,
 * recorded as deleted and then purged (lead.deleted, then lead.purged,
 * and no history: it goes with the lead). False when recording failed (w
 * is answered: api_change_record), else true with the store's outcome in
 * *rc. */
bool api_change_lead_delete(store_t *s, api_write_t *w, const char *id, const lead_t *before, store_rc_t *rc);

/* Whether the lead.created events of a bulk create of app's leads can be
 * left out (*no_events: no active webhook of the app wants them), asked
 * once for the whole run instead of per lead; a store failure is rc. */
store_rc_t api_change_creates_unwanted(store_t *s, int64_t app, bool *no_events);

/* Answers w with the failure rc (a 503 for anything but STORE_ERROR) and
 * marks its batch to be undone (w->undo_batch): for a write whose change
 * was made but cannot be recorded. */
void api_change_fail(api_write_t *w, store_rc_t rc);

/* A record read inside a write, with its own copy of its texts (a store
 * callback's strings live only during the call): the version before a
 * change, or after it. */
typedef struct api_held {
    bool found;
    lead_t lead;
    int64_t deleted_at; /* a trashed lead's (api_hold_trashed) */
    follow_t follow;
    char *text; /* the texts' copies; api_held_free frees them */
} api_held_t;

/* Store callbacks (store_lead_cb, store_follow_cb) that keep the record
 * they are given in the api_held_t ctx. On out of memory its texts are
 * left unset and found false. */
void api_hold_lead(void *ctx, const lead_t *lead);
/* The same for a trashed lead (store_trash_cb), keeping its deleted_at. */
void api_hold_trashed(void *ctx, const lead_t *lead, int64_t deleted_at);
void api_hold_follow(void *ctx, const follow_t *follow);
void api_held_free(api_held_t *h);

/* Reads the lead (follow) the path of w names into h, inside w's batch,
 * which locks its row until the batch ends (store.h): the version before
 * w's change. STORE_NOT_FOUND when there is none, STORE_UNAVAILABLE when
 * out of memory. */
store_rc_t api_held_lead(store_t *s, const api_write_t *w, api_held_t *h);
store_rc_t api_held_follow(store_t *s, const api_write_t *w, api_held_t *h);

#endif
