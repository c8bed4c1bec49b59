/*
 * event.c: see event.h.
 */
#include "model/event.h"

#include <string.h>

#define EVENT_NAME_(id, name) [id] = name,
static const char *const names[EVENT_NTYPES] = {EVENT_TYPES(EVENT_NAME_)};
#undef EVENT_NAME_

#define EVENT_SIZE_(id, name) _Static_assert(sizeof name <= EVENT_NAME_MAX, "EVENT_NAME_MAX is too small");
EVENT_TYPES(EVENT_SIZE_)
#undef EVENT_SIZE_

const char *event_name(int type)
{
    return type >= 0 && type < EVENT_NTYPES ? names[type] : "";
}

bool event_parse(const char *s, size_t len, int *type)
{
    if (len == 1 && s[0] == '*') {
        *type = -1;
        return true;
    }
    for (int i = 0; i < EVENT_NTYPES; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            *type = i;
            return true;
        }
    }
    return false;
}
