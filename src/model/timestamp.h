/*
 * timestamp.h: instants as milliseconds since the Unix epoch, UTC.
 */
#ifndef CRMD_MODEL_TIMESTAMP_H
#define CRMD_MODEL_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

/* Parses an RFC 3339 date-time ("2026-03-05T14:00:00Z",
 * "2026-03-05T16:00:00.123456+02:00"; 't' and 'z' accepted in either case)
 * into ms since the epoch, UTC. Fractions finer than a millisecond are
 * truncated. Impossible dates (2026-02-30, hour 24, minute 60) are rejected;
 * a leap second (:60) is rejected too. Years 0001..9999 only.
 * Returns 0 on success, -1 on any error. */
int ts_parse(const char *s, size_t len, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 characters) and a NUL into out,
 * which holds at least TS_BUFSZ bytes; returns 24. */
#define TS_BUFSZ 32
size_t ts_format(int64_t ms, char *out);

/* The current time in ms since the epoch (CLOCK_REALTIME). */
int64_t ts_now_ms(void);

#endif
