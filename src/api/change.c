/*
 * change.c: see change.h.
 */
#include "api/change.h"

#include <stdlib.h>
#include <string.h>

#include "api/history.h"
#include "api/outbox.h"
#include "api/writer.h"
#include "model/event.h"
#include "store/webhook.h"

void api_change_fail(api_write_t *w, store_rc_t rc)
{
    /* The change is in the batch already: undo all of it. */
    w->undo_batch = true;
    jw_reset(&w->out);
    api_write_answer(w, rc == STORE_ERROR ? STORE_ERROR : STORE_UNAVAILABLE, 0, "", "");
}

bool api_change_record(store_t *s, api_write_t *w, const api_change_t *c)
{
    int recorded = 0;
    store_rc_t rc = api_outbox_record(s, w->app, w->now, c, &recorded);
    if (rc == STORE_OK) rc = api_history_add(s, w->app, w->actor, w->now, c);
    if (rc != STORE_OK) api_change_fail(w, rc);
    return rc == STORE_OK;
}

bool api_change_lead_delete(store_t *s, api_write_t *w, const char *id, const lead_t *before, store_rc_t *rc)
{
    bool keep = api_trash_retention_ms() > 0;
    *rc = keep ? store_lead_trash(s, w->app, id, w->now) : store_lead_delete(s, w->app, id);
    if (*rc != STORE_OK) return true;
    api_change_t c = {.kind = CHANGE_LEAD, .action = CHANGE_DELETED, .lead_before = before};
    if (!api_change_record(s, w, &c)) return false;
    c.action = CHANGE_PURGED;
    c.deleted_at = w->now; /* in the trash for no time at all */
    return keep || api_change_record(s, w, &c);
}

/* Copies the texts of refs (n of them, unset ones left) into one
 * allocation, pointing them at the copies; false when out of memory. */
static bool copy_texts(api_held_t *h, text_ref_t *refs[], int n)
{
    size_t size = 0;
    for (int i = 0; i < n; i++)
        if (refs[i]->ptr != NULL) size += refs[i]->len + 1;
    free(h->text);
    h->text = malloc(size > 0 ? size : 1);
    if (h->text == NULL) return false;
    api_texts_copy(refs, n, h->text);
    return true;
}

void api_hold_lead(void *ctx, const lead_t *lead)
{
    api_held_t *h = ctx;
    h->lead = *lead;
    h->found = copy_texts(h, (text_ref_t *[]){&h->lead.name, &h->lead.source}, 2);
}

void api_hold_trashed(void *ctx, const lead_t *lead, int64_t deleted_at)
{
    api_held_t *h = ctx;
    api_hold_lead(ctx, lead);
    h->deleted_at = deleted_at;
}

void api_hold_follow(void *ctx, const follow_t *follow)
{
    api_held_t *h = ctx;
    h->follow = *follow;
    h->found = copy_texts(h, (text_ref_t *[]){&h->follow.title, &h->follow.description}, 2);
}

void api_held_free(api_held_t *h)
{
    free(h->text);
    h->text = NULL;
    h->found = false;
}

store_rc_t api_held_lead(store_t *s, const api_write_t *w, api_held_t *h)
{
    store_rc_t rc = store_lead_get(s, w->app, w->id, api_hold_lead, h, NULL);
    return rc == STORE_OK && !h->found ? STORE_UNAVAILABLE : rc;
}

store_rc_t api_held_follow(store_t *s, const api_write_t *w, api_held_t *h)
{
    store_rc_t rc = store_follow_get(s, w->app, w->id, w->fid, api_hold_follow, h, NULL);
    return rc == STORE_OK && !h->found ? STORE_UNAVAILABLE : rc;
}

store_rc_t api_change_creates_unwanted(store_t *s, int64_t app, bool *no_events)
{
    bool wanted = true;
    store_rc_t rc = store_event_wanted(s, app, EVENT_LEAD_CREATED, &wanted);
    *no_events = !wanted;
    return rc;
}
