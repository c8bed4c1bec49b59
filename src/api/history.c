/*
 * history.c: see history.h.
 */
#include "api/history.h"

#include <stdlib.h>
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

/* Copies the texts of refs into one allocation of c's; false when out of
 * memory. */
static bool copy_texts(api_copy_t *c, text_ref_t *refs[], int n)
{
    size_t size = 1;
    for (int i = 0; i < n; i++)
        if (refs[i]->ptr != NULL) size += refs[i]->len + 1;
    free(c->text);
    c->text = malloc(size);
    if (c->text == NULL) return false;
    api_texts_copy(refs, n, c->text);
    return true;
}

void api_copy_lead(void *ctx, const lead_t *lead)
{
    api_copy_t *c = ctx;
    c->lead = *lead;
    c->found = copy_texts(c, (text_ref_t *[]){&c->lead.name, &c->lead.source}, 2);
}

void api_copy_follow(void *ctx, const follow_t *follow)
{
    api_copy_t *c = ctx;
    c->follow = *follow;
    c->found = copy_texts(c, (text_ref_t *[]){&c->follow.title, &c->follow.description}, 2);
}

void api_copy_free(api_copy_t *c)
{
    free(c->text);
    c->text = NULL;
    c->found = false;
}

/* What changed, rendered into out. */
static void render(jw_t *out, const api_write_t *w, int action, const void *before, const void *after)
{
    switch (action) {
    case STORE_CHANGE_CREATED:
    case STORE_CHANGE_UPDATED:
        lead_encode_changes(out, before, after);
        break;
    case STORE_CHANGE_FOLLOW_CREATED:
    case STORE_CHANGE_FOLLOW_UPDATED:
        follow_encode_changes(out, before, after, w->now);
        break;
    default:
        jw_lit(out, "{}");
    }
}

bool api_history_record(store_t *s, api_write_t *w, int action, const char *lead_id, const void *before,
                        const void *after)
{
    jw_t changes = {0};
    render(&changes, w, action, before, after);
    bool follow = action >= STORE_CHANGE_FOLLOW_CREATED;
    bool update = action == STORE_CHANGE_UPDATED || action == STORE_CHANGE_FOLLOW_UPDATED;
    if (!changes.oom && update && changes.len == 2) { /* "{}": nothing changed, nothing recorded */
        jw_free(&changes);
        return true;
    }
    const follow_t *f = after != NULL ? after : before;
    char id[UUID_BUFSZ];
    store_change_t c = {.id = id,
                        .lead_id = lead_id,
                        .follow_id = follow ? (f != NULL ? f->id : w->fid) : "",
                        .action = action,
                        .actor = w->actor,
                        .at = w->now,
                        .changes = {changes.buf, changes.len}};
    store_rc_t rc =
        changes.oom || uuid_v7(w->now, id) != 0 ? STORE_UNAVAILABLE : store_history_add(s, w->app, &c);
    jw_free(&changes);
    if (rc == STORE_OK) return true;
    /* The change is in the batch already: undo all of it. */
    w->undo_batch = true;
    jw_reset(&w->out);
    api_write_answer(w, rc == STORE_ERROR ? STORE_ERROR : STORE_UNAVAILABLE, 0, "", "");
    return false;
}
