/*
 * history.c: see history.h.
 */
#include "api/history.h"

#include <string.h>

#include "api/writer.h"
#include "model/uuid.h"

char *api_texts_copy(text_ref_t *refs[], int n, char *at)
{
    for (int i = 0; i < n; i++) {
        if (refs[i]->ptr == NULL) continue;
        memcpy(at, refs[i]->ptr, refs[i]->len);
        at[refs[i]->len] = '\0';
        refs[i]->ptr = at;
        at += refs[i]->len + 1;
    }
    return at;
}

/* The history's action for c; -1 for none (a lead gone for good). */
static int action_of(const api_change_t *c)
{
    bool follow = c->kind == CHANGE_FOLLOW;
    switch (c->action) {
    case CHANGE_CREATED:
        return follow ? STORE_CHANGE_FOLLOW_CREATED : STORE_CHANGE_CREATED;
    case CHANGE_UPDATED:
        return follow ? STORE_CHANGE_FOLLOW_UPDATED : STORE_CHANGE_UPDATED;
    case CHANGE_DELETED:
        if (follow) return STORE_CHANGE_FOLLOW_DELETED;
        return api_trash_retention_ms() > 0 ? STORE_CHANGE_DELETED : -1;
    case CHANGE_RECOVERED:
        return STORE_CHANGE_RECOVERED;
    default:
        return -1;
    }
}

store_rc_t api_history_add(store_t *s, int64_t app, const char *actor, int64_t now, const api_change_t *c)
{
#ifdef CRMD_BENCH_NO_HISTORY
    /* Only in the build bench/run --safe makes beside the real one, to
     * measure what history costs a write: never a build to serve with. */
    return STORE_OK;
#endif
    int action = action_of(c);
    if (action < 0) return STORE_OK;
    jw_t changes = {0};
    if (action == STORE_CHANGE_CREATED || action == STORE_CHANGE_UPDATED)
        lead_encode_changes(&changes, c->lead_before, c->lead_after);
    else if (action == STORE_CHANGE_FOLLOW_CREATED || action == STORE_CHANGE_FOLLOW_UPDATED)
        follow_encode_changes(&changes, c->follow_before, c->follow_after, now);
    else
        jw_lit(&changes, "{}");
    bool update = action == STORE_CHANGE_UPDATED || action == STORE_CHANGE_FOLLOW_UPDATED;
    if (!changes.oom && update && changes.len == 2) { /* "{}": nothing changed, nothing recorded */
        jw_free(&changes);
        return STORE_OK;
    }
    const lead_t *lead = c->lead_after != NULL ? c->lead_after : c->lead_before;
    const follow_t *follow = c->follow_after != NULL ? c->follow_after : c->follow_before;
    /* A create or an update happens at the record's new updated_at: now,
     * or a millisecond past the last change's when two fall in the same
     * one (record.h), so that an entry's time is the one its record shows.
     * A delete or a recovery happens no earlier than the record's last
     * change, so that a lead's times never go back down its history (an
     * update bumped past now, then a delete at now, in one batch). The
     * store then keeps each entry no earlier than its lead's newest (a
     * follow's times are its own, and the clock may step back). */
    int64_t at = now;
    if (action == STORE_CHANGE_CREATED || action == STORE_CHANGE_UPDATED)
        at = c->lead_after->updated_at;
    else if (action == STORE_CHANGE_FOLLOW_CREATED || action == STORE_CHANGE_FOLLOW_UPDATED)
        at = c->follow_after->updated_at;
    else if (c->kind == CHANGE_LEAD && lead->updated_at > at)
        at = lead->updated_at;
    else if (c->kind == CHANGE_FOLLOW && follow->updated_at > at)
        at = follow->updated_at;
    char id[UUID_BUFSZ];
    store_change_t h = {.id = id,
                        .lead_id = c->kind == CHANGE_LEAD ? lead->id : follow->lead_id,
                        .follow_id = c->kind == CHANGE_FOLLOW ? follow->id : "",
                        .action = action,
                        .actor = actor,
                        .at = at,
                        .changes = {changes.buf, changes.len}};
    store_rc_t rc = changes.oom || uuid_v7(now, id) != 0 ? STORE_UNAVAILABLE : store_history_add(s, app, &h);
    jw_free(&changes);
    return rc;
}
