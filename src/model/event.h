/*
 * event.h: the event types webhooks subscribe to (extensions.md,
 * "Webhooks").
 *
 * Each type has a number (stored in the outbox and the delivery log) and a
 * bit (a webhook's subscription is a mask of them, stored as an integer).
 * `*` is a bit of its own, EVENT_ALL, so that a webhook subscribed to `*`
 * also gets the types added later, and shows `*` again when read.
 *
 * Adding a type is one line of EVENT_TYPES (its number is its position:
 * append, never reorder, since numbers are stored). lead.recovered and
 * lead.purged are there already, so that webhooks can subscribe to every
 * type of the contract; they are sent once the trash makes them.
 */
#ifndef CRMD_MODEL_EVENT_H
#define CRMD_MODEL_EVENT_H

#include <stdbool.h>
#include <stddef.h>

/* clang-format off */
#define EVENT_TYPES(X)                                                                                       \
    X(EVENT_LEAD_CREATED, "lead.created")                                                                    \
    X(EVENT_LEAD_UPDATED, "lead.updated")                                                                    \
    X(EVENT_LEAD_STAGE_CHANGED, "lead.stage_changed")                                                        \
    X(EVENT_LEAD_DELETED, "lead.deleted")                                                                    \
    X(EVENT_LEAD_RECOVERED, "lead.recovered")                                                                \
    X(EVENT_LEAD_PURGED, "lead.purged")                                                                      \
    X(EVENT_FOLLOW_CREATED, "follow.created")                                                                \
    X(EVENT_FOLLOW_UPDATED, "follow.updated")                                                                \
    X(EVENT_FOLLOW_COMPLETED, "follow.completed")                                                            \
    X(EVENT_FOLLOW_DELETED, "follow.deleted")
/* clang-format on */

#define EVENT_ENUM_(id, name) id,
enum event_type { EVENT_TYPES(EVENT_ENUM_) EVENT_NTYPES };
#undef EVENT_ENUM_

/* A subscription: one bit per type, and EVENT_ALL for `*`. */
#define EVENT_BIT(type) (1u << (type))
#define EVENT_ALL (1u << 30)
_Static_assert(EVENT_NTYPES < 30, "the event bits and EVENT_ALL must fit in a positive int");

/* The longest type name, with its NUL. */
#define EVENT_NAME_MAX 24

/* The type's name ("lead.created"); "" for a number that names none. */
const char *event_name(int type);

/* The type named s[0..len) ("*": EVENT_ALL's pseudo type -1); false when
 * it names none. */
bool event_parse(const char *s, size_t len, int *type);

/* Whether a webhook subscribed with mask gets events of type. */
static inline bool event_wanted(unsigned mask, int type)
{
    return (mask & (EVENT_ALL | EVENT_BIT(type))) != 0;
}

#endif
