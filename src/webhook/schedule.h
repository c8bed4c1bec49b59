/*
 * schedule.h: when a failed delivery is tried again, and when it is given
 * up (--webhook-retry, --webhook-give-up).
 *
 * The schedule is a list of intervals: the n-th failure of an event waits
 * the n-th interval, the last one repeating. An event is given up, and the
 * next one goes, when its next attempt would come more than give_up after
 * the event was made: counted from its creation, not its first attempt,
 * so that a dead receiver's backlog ages out within give_up rather than
 * one event per give_up.
 */
#ifndef CRMD_WEBHOOK_SCHEDULE_H
#define CRMD_WEBHOOK_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define WEBHOOK_SCHEDULE_MAX 32
#define WEBHOOK_RETRY_DEFAULT "10s,30s,2m,5m,15m,30m,1h,2h,4h,8h"
#define WEBHOOK_GIVE_UP_DEFAULT_MS (24LL * 3600 * 1000)
#define WEBHOOK_DISABLE_AFTER_DEFAULT_MS (3LL * 86400 * 1000)
#define WEBHOOK_LOG_KEEP_DEFAULT_MS (7LL * 86400 * 1000)

typedef struct webhook_schedule {
    int64_t ms[WEBHOOK_SCHEDULE_MAX];
    int n;
    int64_t give_up_ms;
} webhook_schedule_t;

/* Reads a duration ("90s", "2m", "1h", "3d": a whole number from 1 and
 * one unit, at most 30 days) into *ms. */
bool webhook_duration_parse(const char *s, int64_t *ms);

/* Reads a comma-separated list of durations into sch (its give_up_ms
 * untouched); false when one is not a duration or there are none or more
 * than WEBHOOK_SCHEDULE_MAX. */
bool webhook_schedule_parse(const char *s, webhook_schedule_t *sch);

/* When the attempt-th attempt (from 1) of an event first attempted at
 * first_at failed at now: the time of the next attempt, or 0 when the
 * event is given up (the give-up counts from the first attempt, as the
 * contract says: an event that waited behind others still gets its
 * retries). */
int64_t webhook_next_attempt(const webhook_schedule_t *sch, int attempt, int64_t first_at, int64_t now);

#endif
