/*
 * schedule.c: see schedule.h.
 */
#include "webhook/schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DURATION_MAX_MS (30LL * 86400 * 1000)

bool webhook_duration_parse(const char *s, int64_t *ms)
{
    if (s[0] < '0' || s[0] > '9') return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || n <= 0 || end[0] == '\0' || end[1] != '\0') return false;
    long long unit = end[0] == 's'   ? 1000
                     : end[0] == 'm' ? 60000
                     : end[0] == 'h' ? 3600000
                     : end[0] == 'd' ? 86400000
                                     : 0;
    if (unit == 0 || n > DURATION_MAX_MS / unit) return false;
    *ms = n * unit;
    return true;
}

bool webhook_schedule_parse(const char *s, webhook_schedule_t *sch)
{
    char buf[512];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len + 1);
    sch->n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (sch->n == WEBHOOK_SCHEDULE_MAX || !webhook_duration_parse(tok, &sch->ms[sch->n])) return false;
        sch->n++;
    }
    /* strtok_r passes over empty items ("1s,,2s"): refuse them. */
    return sch->n > 0 && strstr(s, ",,") == NULL && s[0] != ',' && s[len - 1] != ',';
}

int64_t webhook_next_attempt(const webhook_schedule_t *sch, int attempt, int64_t first_at, int64_t now)
{
    int i = attempt - 1 < sch->n ? attempt - 1 : sch->n - 1;
    if (i < 0) i = 0;
    int64_t next = now + sch->ms[i];
    return next - first_at > sch->give_up_ms ? 0 : next;
}
