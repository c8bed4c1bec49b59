/*
 * record.h: the two resources, as the store and the handlers see them.
 *
 * A lead_t or follow_t never owns its strings: they point into memory that
 * belongs to whoever filled the struct (a request's pool, a database row),
 * and the producer states how long that memory lives.
 */
#ifndef CRMD_MODEL_RECORD_H
#define CRMD_MODEL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/uuid.h"

/* A string that may be unset (ptr == NULL); len counts bytes. */
typedef struct text_ref {
    const char *ptr;
    size_t len;
} text_ref_t;

enum lead_stage { STAGE_NEW, STAGE_CONTACTED, STAGE_QUALIFIED, STAGE_PROPOSAL, STAGE_NEGOTIATION };
enum lead_status { LEAD_ACTIVE, LEAD_INACTIVE, LEAD_CONVERTED, LEAD_LOST };
/* Stored follow states; FOLLOW_OVERDUE is only ever derived when reading. */
enum follow_status { FOLLOW_PENDING, FOLLOW_COMPLETED, FOLLOW_OVERDUE };

typedef struct lead {
    char id[UUID_BUFSZ];
    text_ref_t name;
    text_ref_t source;
    char account_id[UUID_BUFSZ]; /* "" when unset */
    char contact_id[UUID_BUFSZ];
    bool has_value;
    int64_t value_cents;
    int stage;                      /* enum lead_stage */
    int probability;                /* -1 when unset */
    int status;                     /* enum lead_status */
    int64_t created_at, updated_at; /* ms since the epoch */
} lead_t;

typedef struct follow {
    char id[UUID_BUFSZ];
    char lead_id[UUID_BUFSZ];
    text_ref_t title;
    text_ref_t description;
    bool has_due;
    int64_t due_at; /* ms since the epoch */
    int status;     /* FOLLOW_PENDING or FOLLOW_COMPLETED as stored */
    int64_t created_at, updated_at;
} follow_t;

/* Which attributes a partial update names. A named attribute with its
 * value unset (NULL text, has_value false, probability -1, "" id) clears it. */
enum lead_field {
    LEAD_F_NAME = 1u << 0,
    LEAD_F_SOURCE = 1u << 1,
    LEAD_F_ACCOUNT = 1u << 2,
    LEAD_F_CONTACT = 1u << 3,
    LEAD_F_VALUE = 1u << 4,
    LEAD_F_STAGE = 1u << 5,
    LEAD_F_PROBABILITY = 1u << 6,
    LEAD_F_STATUS = 1u << 7
};
enum follow_field {
    FOLLOW_F_TITLE = 1u << 0,
    FOLLOW_F_DESCRIPTION = 1u << 1,
    FOLLOW_F_DUE = 1u << 2,
    FOLLOW_F_STATUS = 1u << 3
};

typedef struct lead_patch {
    unsigned fields; /* enum lead_field bits */
    lead_t v;
} lead_patch_t;

typedef struct follow_patch {
    unsigned fields; /* enum follow_field bits */
    follow_t v;
} follow_patch_t;

/* Applies the named attributes of patch to cur. */
void lead_apply_patch(lead_t *cur, const lead_patch_t *patch);
void follow_apply_patch(follow_t *cur, const follow_patch_t *patch);

/* The next updated_at: now, or one millisecond after the previous value
 * when the clock has not moved on, so that it strictly increases. */
static inline int64_t record_next_updated_at(int64_t prev, int64_t now)
{
    return now > prev ? now : prev + 1;
}

/* The status a follow reads as at time now: pending with a due date that
 * has passed reads as overdue. */
static inline int follow_effective_status(const follow_t *f, int64_t now)
{
    if (f->status == FOLLOW_PENDING && f->has_due && f->due_at < now) return FOLLOW_OVERDUE;
    return f->status;
}

#endif
