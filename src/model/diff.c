/*
 * diff.c: see diff.h.
 */
#include "model/diff.h"

#include <stdbool.h>
#include <string.h>

#include "model/codec.h"
#include "model/codec_int.h"
#include "model/decimal.h"

static bool same_text(text_ref_t a, text_ref_t b)
{
    if (a.ptr == NULL || b.ptr == NULL) return a.ptr == b.ptr;
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

unsigned lead_changed_fields(const lead_t *a, const lead_t *b)
{
    unsigned f = 0;
    if (!same_text(a->name, b->name)) f |= LEAD_F_NAME;
    if (!same_text(a->source, b->source)) f |= LEAD_F_SOURCE;
    if (strcmp(a->account_id, b->account_id) != 0) f |= LEAD_F_ACCOUNT;
    if (strcmp(a->contact_id, b->contact_id) != 0) f |= LEAD_F_CONTACT;
    if (a->has_value != b->has_value || (a->has_value && a->value_cents != b->value_cents)) f |= LEAD_F_VALUE;
    if (a->stage != b->stage) f |= LEAD_F_STAGE;
    if (a->probability != b->probability) f |= LEAD_F_PROBABILITY;
    if (a->status != b->status) f |= LEAD_F_STATUS;
    return f;
}

unsigned follow_changed_fields(const follow_t *a, const follow_t *b, int64_t now)
{
    unsigned f = 0;
    if (!same_text(a->title, b->title)) f |= FOLLOW_F_TITLE;
    if (!same_text(a->description, b->description)) f |= FOLLOW_F_DESCRIPTION;
    if (a->has_due != b->has_due || (a->has_due && a->due_at != b->due_at)) f |= FOLLOW_F_DUE;
    if (follow_effective_status(a, now) != follow_effective_status(b, now)) f |= FOLLOW_F_STATUS;
    return f;
}

static void put_key(jw_t *w, int *n, const char *name)
{
    if ((*n)++ > 0) jw_lit(w, ",");
    jw_cstr(w, name);
    jw_lit(w, ":");
}

static void put_text(jw_t *w, text_ref_t t)
{
    if (t.ptr == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, t.ptr, t.len);
}

/* A number, or null when unset. */
static void put_opt_int(jw_t *w, bool set, int64_t v)
{
    if (set)
        jw_int(w, v);
    else
        jw_lit(w, "null");
}

void lead_encode_fields(jw_t *w, const lead_t *l, unsigned fields)
{
    int n = 0;
    char b[DECIMAL_BUFSZ];
    jw_lit(w, "{");
    if (fields & LEAD_F_NAME) put_key(w, &n, "name"), put_text(w, l->name);
    if (fields & LEAD_F_SOURCE) put_key(w, &n, "source"), put_text(w, l->source);
    if (fields & LEAD_F_ACCOUNT)
        put_key(w, &n, "account_id"), jw_cstr(w, l->account_id[0] ? l->account_id : NULL);
    if (fields & LEAD_F_CONTACT)
        put_key(w, &n, "contact_id"), jw_cstr(w, l->contact_id[0] ? l->contact_id : NULL);
    if (fields & LEAD_F_VALUE) {
        put_key(w, &n, "value");
        if (l->has_value)
            jw_raw(w, b, decimal_format(l->value_cents, b));
        else
            jw_lit(w, "null");
    }
    if (fields & LEAD_F_STAGE) put_key(w, &n, "stage"), jw_cstr(w, lead_stage_name(l->stage));
    if (fields & LEAD_F_PROBABILITY)
        put_key(w, &n, "probability"), put_opt_int(w, l->probability >= 0, l->probability);
    if (fields & LEAD_F_STATUS) put_key(w, &n, "status"), jw_cstr(w, lead_status_name(l->status));
    jw_lit(w, "}");
}

void follow_encode_fields(jw_t *w, const follow_t *f, unsigned fields, int64_t now)
{
    int n = 0;
    jw_lit(w, "{");
    if (fields & FOLLOW_F_TITLE) put_key(w, &n, "title"), put_text(w, f->title);
    if (fields & FOLLOW_F_DESCRIPTION) put_key(w, &n, "description"), put_text(w, f->description);
    if (fields & FOLLOW_F_DUE) {
        put_key(w, &n, "due_date");
        if (f->has_due)
            codec_put_time(w, f->due_at);
        else
            jw_lit(w, "null");
    }
    if (fields & FOLLOW_F_STATUS)
        put_key(w, &n, "status"), jw_cstr(w, follow_status_name(follow_effective_status(f, now)));
    jw_lit(w, "}");
}
