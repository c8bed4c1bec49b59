/*
 * webhook.c: see webhook.h. Bodies are read by codec.c's rules
 * (codec_int.h): the same wrapper, unknown members and text checks as a
 * lead's.
 */
#include "model/webhook.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "model/codec_int.h"
#include "model/event.h"

/* Reads the events array into *mask: 1..EVENT_NTYPES + 1 distinct names
 * of model/event.h (or `*`), each problem on /webhook/events/{index}. */
static bool get_events(attr_t *a, unsigned *mask)
{
    *mask = 0;
    size_t n = json_is_array(a->v) ? json_array_size(a->v) : 0;
    if (!json_is_array(a->v) || n == 0 || n > EVENT_NTYPES + 1) {
        char lim[64];
        snprintf(lim, sizeof lim, " of 1 to %d event types", EVENT_NTYPES + 1);
        codec_attr_error(a, "%s must be an array%s", lim);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a->v, i);
        attr_t item = {.v = e, .label = "Event type", .errs = a->errs};
        /* The pointer is "/webhook/events" and i < 12: it fits. */
        snprintf(item.pointer, sizeof item.pointer, "/webhook/events/%d", (int)i);
        int type;
        if (!json_is_string(e) || !event_parse(json_string_value(e), json_string_length(e), &type)) {
            codec_attr_error(&item, "%s is not included in the list%s", " (see the event types of the API)");
            ok = false;
            continue;
        }
        unsigned bit = type < 0 ? EVENT_ALL : EVENT_BIT(type);
        if (*mask & bit) {
            codec_attr_error(&item, "%s is given twice%s", "");
            ok = false;
        }
        *mask |= bit;
    }
    return ok;
}

static bool webhook_attr(attr_t *a, const char *key, void *ctx)
{
    webhook_patch_t *out = ctx;
    webhook_t *wh = &out->v;
    if (strcmp(key, "url") == 0) {
        a->label = "URL";
        if (codec_text(a, false, false, WEBHOOK_URL_MAX, &wh->url)) out->fields |= WEBHOOK_F_URL;
    } else if (strcmp(key, "events") == 0) {
        a->label = "Events";
        if (get_events(a, &wh->events)) out->fields |= WEBHOOK_F_EVENTS;
    } else if (strcmp(key, "description") == 0) {
        a->label = "Description";
        if (codec_text(a, true, false, WEBHOOK_DESCRIPTION_MAX, &wh->description))
            out->fields |= WEBHOOK_F_DESCRIPTION;
    } else if (strcmp(key, "active") == 0) {
        a->label = "Active";
        if (json_is_boolean(a->v)) {
            wh->active = json_is_true(a->v);
            out->fields |= WEBHOOK_F_ACTIVE;
        } else {
            codec_attr_error(a, "%s must be true or false%s", "");
        }
    } else {
        return false;
    }
    return true;
}

void webhook_decode(const json_t *root, bool creating, webhook_patch_t *out, verrs_t *errs)
{
    memset(out, 0, sizeof *out);
    const json_t *w = codec_members(root, "webhook", errs, webhook_attr, out);
    if (w == NULL || !creating) return;
    if (json_object_get(w, "url") == NULL)
        verrs_add(errs, "validation_error", "/webhook/url", NULL, "URL can't be blank");
    if (json_object_get(w, "events") == NULL)
        verrs_add(errs, "validation_error", "/webhook/events", NULL, "Events can't be blank");
    if (!(out->fields & WEBHOOK_F_ACTIVE)) out->v.active = true;
    out->fields = ~0u;
}

static void put_events(jw_t *w, unsigned mask)
{
    jw_lit(w, "[");
    int n = 0;
    if (mask & EVENT_ALL) {
        jw_lit(w, "\"*\"");
        n++;
    }
    for (int t = 0; t < EVENT_NTYPES; t++) {
        if (!(mask & EVENT_BIT(t))) continue;
        if (n++ > 0) jw_lit(w, ",");
        jw_cstr(w, event_name(t));
    }
    jw_lit(w, "]");
}

static void put_text(jw_t *w, text_ref_t t)
{
    if (t.ptr == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, t.ptr, t.len);
}

void webhook_encode(jw_t *w, const webhook_t *wh, bool with_secret)
{
    jw_lit(w, "{\"id\":");
    jw_cstr(w, wh->id);
    jw_lit(w, ",\"type\":\"webhook\",\"attributes\":{\"url\":");
    put_text(w, wh->url);
    jw_lit(w, ",\"events\":");
    put_events(w, wh->events);
    jw_lit(w, ",\"description\":");
    put_text(w, wh->description);
    jw_lit(w, ",\"active\":");
    if (wh->active)
        jw_lit(w, "true");
    else
        jw_lit(w, "false");
    jw_lit(w, ",\"created_at\":");
    codec_put_time(w, wh->created_at);
    jw_lit(w, ",\"updated_at\":");
    codec_put_time(w, wh->updated_at);
    if (with_secret) {
        jw_lit(w, ",\"secret\":");
        put_text(w, wh->secret);
    }
    jw_lit(w, "}}");
}

void delivery_encode(jw_t *w, const delivery_t *d)
{
    jw_lit(w, "{\"id\":");
    jw_cstr(w, d->id);
    jw_lit(w, ",\"type\":\"webhook_delivery\",\"attributes\":{\"event_id\":");
    jw_cstr(w, d->event_id);
    jw_lit(w, ",\"event_type\":");
    jw_cstr(w, event_name(d->type));
    jw_lit(w, ",\"attempt\":");
    jw_int(w, d->attempt);
    jw_lit(w, ",\"status_code\":");
    if (d->status_code > 0)
        jw_int(w, d->status_code);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"duration_ms\":");
    jw_int(w, d->duration_ms);
    jw_lit(w, ",\"error\":");
    put_text(w, d->error);
    jw_lit(w, ",\"next_retry_at\":");
    if (d->next_retry_at > 0)
        codec_put_time(w, d->next_retry_at);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"created_at\":");
    codec_put_time(w, d->created_at);
    jw_lit(w, "}}");
}

int webhook_secret_new(char out[WEBHOOK_SECRET_BUFSZ])
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t at = sizeof WEBHOOK_SECRET_PREFIX - 1;
    memcpy(out, WEBHOOK_SECRET_PREFIX, at);
    while (at < WEBHOOK_SECRET_BUFSZ - 1) {
        unsigned char rnd[32];
        if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
        /* 62 * 4 = 248: bytes from 248 up are dropped, so that every
         * character is equally likely. */
        for (size_t i = 0; i < sizeof rnd && at < WEBHOOK_SECRET_BUFSZ - 1; i++)
            if (rnd[i] < 248) out[at++] = digits[rnd[i] % 62];
    }
    out[at] = '\0';
    return 0;
}
