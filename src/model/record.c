/*
 * record.c: applying partial updates to records.
 */
#include "model/record.h"

#include <string.h>

void lead_apply_patch(lead_t *cur, const lead_patch_t *p)
{
    const lead_t *v = &p->v;
    if (p->fields & LEAD_F_NAME) cur->name = v->name;
    if (p->fields & LEAD_F_SOURCE) cur->source = v->source;
    if (p->fields & LEAD_F_ACCOUNT) memcpy(cur->account_id, v->account_id, sizeof cur->account_id);
    if (p->fields & LEAD_F_CONTACT) memcpy(cur->contact_id, v->contact_id, sizeof cur->contact_id);
    if (p->fields & LEAD_F_VALUE) {
        cur->has_value = v->has_value;
        cur->value_cents = v->value_cents;
    }
    if (p->fields & LEAD_F_STAGE) cur->stage = v->stage;
    if (p->fields & LEAD_F_PROBABILITY) cur->probability = v->probability;
    if (p->fields & LEAD_F_STATUS) cur->status = v->status;
}

void follow_apply_patch(follow_t *cur, const follow_patch_t *p)
{
    const follow_t *v = &p->v;
    if (p->fields & FOLLOW_F_TITLE) cur->title = v->title;
    if (p->fields & FOLLOW_F_DESCRIPTION) cur->description = v->description;
    if (p->fields & FOLLOW_F_DUE) {
        cur->has_due = v->has_due;
        cur->due_at = v->due_at;
    }
    if (p->fields & FOLLOW_F_STATUS) cur->status = v->status;
}
