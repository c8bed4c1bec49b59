/*
 * outbox.c: see outbox.h.
 */
#include "api/outbox.h"

#include <assert.h>
#include <stdatomic.h>

#include "model/diff.h"
#include "model/event.h"
#include "model/timestamp.h"
#include "store/webhook.h"

/* Events were recorded since the writer last asked. */
static atomic_bool recorded_since;

static _Atomic int64_t backlog_max = API_OUTBOX_BACKLOG_DEFAULT;

void api_outbox_configure(int64_t max)
{
    assert(max >= 1 && max <= API_OUTBOX_BACKLOG_MAX);
    atomic_store(&backlog_max, max);
}

bool api_outbox_take_recorded(void)
{
    return atomic_exchange(&recorded_since, false);
}

/* The events of c: their types into types (at most two), and the fields
 * whose old values previous_attributes shows into *fields. */
static int event_types(const api_change_t *c, int64_t now, int types[2], unsigned *fields)
{
    bool lead = c->kind == CHANGE_LEAD;
    *fields = 0;
    if (c->action == CHANGE_CREATED) {
        types[0] = lead ? EVENT_LEAD_CREATED : EVENT_FOLLOW_CREATED;
        return 1;
    }
    if (c->action == CHANGE_DELETED) {
        types[0] = lead ? EVENT_LEAD_DELETED : EVENT_FOLLOW_DELETED;
        return 1;
    }
    if (c->action == CHANGE_RECOVERED || c->action == CHANGE_PURGED) {
        types[0] = c->action == CHANGE_RECOVERED ? EVENT_LEAD_RECOVERED : EVENT_LEAD_PURGED;
        return 1;
    }
    *fields = lead ? lead_changed_fields(c->lead_before, c->lead_after)
                   : follow_changed_fields(c->follow_before, c->follow_after, now);
    if (*fields == 0) return 0;
    types[0] = lead ? EVENT_LEAD_UPDATED : EVENT_FOLLOW_UPDATED;
    if (lead && (*fields & LEAD_F_STAGE)) {
        types[1] = EVENT_LEAD_STAGE_CHANGED;
        return 2;
    }
    if (!lead && (*fields & FOLLOW_F_STATUS) && c->follow_after->status == FOLLOW_COMPLETED) {
        types[1] = EVENT_FOLLOW_COMPLETED;
        return 2;
    }
    return 1;
}

/* Writes the payload's "data" and "previous_attributes" members, which
 * every event of c shares, into w: ,"data":{...},"previous_attributes":{...}} */
static void write_body(jw_t *w, const api_change_t *c, int64_t now, unsigned fields)
{
    const lead_t *lead = c->lead_after != NULL ? c->lead_after : c->lead_before;
    const follow_t *follow = c->follow_after != NULL ? c->follow_after : c->follow_before;
    jw_lit(w, ",\"data\":");
    if (c->kind == CHANGE_LEAD && c->action == CHANGE_PURGED)
        lead_encode_trashed(w, lead, c->deleted_at); /* as the trash showed it */
    else if (c->kind == CHANGE_LEAD)
        lead_encode(w, lead);
    else
        follow_encode(w, follow, now);
    jw_lit(w, ",\"previous_attributes\":");
    if (c->kind == CHANGE_LEAD)
        lead_encode_fields(w, c->lead_before != NULL ? c->lead_before : lead, fields);
    else
        follow_encode_fields(w, c->follow_before != NULL ? c->follow_before : follow, fields, now);
    jw_lit(w, "}");
}

/* Records one event of type with the shared body. */
static store_rc_t record_one(store_t *s, int64_t app, int64_t now, int type, const jw_t *body, int *recorded)
{
    store_event_t ev = {.type = type, .created_at = now, .backlog_max = atomic_load(&backlog_max)};
    if (uuid_v7(now, ev.id) != 0 || uuid_v7(now, ev.drop_id) != 0) return STORE_UNAVAILABLE;
    char at[TS_BUFSZ];
    ts_format(now, at);
    jw_t w = {0};
    jw_lit(&w, "{\"id\":");
    jw_cstr(&w, ev.id);
    jw_lit(&w, ",\"type\":");
    jw_cstr(&w, event_name(type));
    jw_lit(&w, ",\"created_at\":");
    jw_cstr(&w, at);
    jw_raw(&w, body->buf, body->len);
    store_rc_t rc = STORE_UNAVAILABLE;
    if (!w.oom) {
        ev.payload = w.buf;
        ev.len = w.len;
        int n = 0;
        rc = store_event_record(s, app, &ev, &n);
        *recorded += n;
    }
    jw_free(&w);
    return rc;
}

store_rc_t api_outbox_record(store_t *s, int64_t app, int64_t now, const api_change_t *c, int *recorded)
{
    int types[2];
    unsigned fields;
    int n = c->no_events ? 0 : event_types(c, now, types, &fields);
    if (n == 0) return STORE_OK;
    jw_t body = {0};
    write_body(&body, c, now, fields);
    store_rc_t rc = body.oom ? STORE_UNAVAILABLE : STORE_OK;
    int before = *recorded;
    for (int i = 0; i < n && rc == STORE_OK; i++)
        rc = record_one(s, app, now, types[i], &body, recorded);
    jw_free(&body);
    if (*recorded > before) atomic_store(&recorded_since, true);
    return rc;
}
