/*
 * timestamp.c: RFC 3339 date-times to and from ms since the epoch.
 *
 * Calendar arithmetic is done here with a days-from-civil computation on the
 * proleptic Gregorian calendar rather than with mktime or timegm, so that the
 * result never depends on TZ, the locale or the C library's time_t range.
 */
#include "model/timestamp.h"

#include <assert.h>
#include <stdbool.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 1..12, d 1..31).
 * Years are shifted to start in March so that the leap day is the last day
 * of the shifted year, and 400-year eras make the division exact. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                         /* 0..399 */
    int64_t mp = (m + 9) % 12;                           /* March is 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;            /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0..146096 */
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11 */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    assert(m >= 1 && m <= 12);
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* The first and one-past-last instants of years 0001..9999, in ms. */
static int64_t ms_min(void)
{
    return days_from_civil(1, 1, 1) * MS_PER_DAY;
}

static int64_t ms_end(void)
{
    return days_from_civil(10000, 1, 1) * MS_PER_DAY;
}

/* Reads exactly n decimal digits at s[*i], advancing *i. The caller has
 * already checked that n bytes are available. */
static bool read_digits(const char *s, size_t *i, int n, int *value)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *value = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c) return false;
    (*i)++;
    return true;
}

int ts_parse(const char *s, size_t len, int64_t *ms)
{
    assert(ms != NULL);
    if (s == NULL) return -1;

    /* "YYYY-MM-DDTHH:MM:SS" is 19 bytes and the shortest offset, "Z", one
     * more; every fixed-width field below lies inside those 20 bytes. */
    if (len < 20) return -1;

    size_t i = 0;
    int year, month, day, hour, minute, second;
    if (!read_digits(s, &i, 4, &year) || !expect(s, len, &i, '-') || !read_digits(s, &i, 2, &month) ||
        !expect(s, len, &i, '-') || !read_digits(s, &i, 2, &day))
        return -1;
    if (i >= len || (s[i] != 'T' && s[i] != 't')) return -1;
    i++;
    if (!read_digits(s, &i, 2, &hour) || !expect(s, len, &i, ':') || !read_digits(s, &i, 2, &minute) ||
        !expect(s, len, &i, ':') || !read_digits(s, &i, 2, &second))
        return -1;
    assert(i == 19);

    if (year < 1 || month < 1 || month > 12) return -1;
    if (day < 1 || day > days_in_month(year, month)) return -1;
    if (hour > 23 || minute > 59 || second > 59) return -1;

    /* A fraction of any length; only the first three digits matter, the
     * rest are checked for being digits and dropped (truncation). */
    int frac_ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd == 0) return -1;
        for (size_t k = nd; k < 3; k++)
            frac_ms *= 10;
    }

    /* The offset: Z, or +HH:MM / -HH:MM, and then the end of the text. */
    int64_t offset_min = 0;
    if (i >= len) return -1;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        if (len - i != 5) return -1;
        int oh, om;
        if (!read_digits(s, &i, 2, &oh) || !expect(s, len, &i, ':') || !read_digits(s, &i, 2, &om)) return -1;
        if (oh > 23 || om > 59) return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (i != len) return -1;

    /* Local time minus the offset is UTC; the offset may carry the instant
     * out of years 0001..9999, which is refused like any other bad year. */
    int64_t t = days_from_civil(year, month, day) * MS_PER_DAY +
                ((int64_t)hour * 3600 + minute * 60 + second) * 1000 + frac_ms - offset_min * 60000;
    if (t < ms_min() || t >= ms_end()) return -1;
    *ms = t;
    return 0;
}

/* Writes v (0 <= v < 10^n) as exactly n decimal digits, zero-padded. */
static void put_digits(char *out, int v, int n)
{
    assert(v >= 0);
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    assert(v == 0);
}

size_t ts_format(int64_t ms, char *out)
{
    assert(out != NULL);

    /* Stored instants always come from ts_parse or the clock, but an
     * out-of-range value is clamped to the nearest representable one rather
     * than printed with a five-digit or negative year. */
    if (ms < ms_min()) ms = ms_min();
    if (ms >= ms_end()) ms = ms_end() - 1;

    /* Floor division, so that instants before 1970 fall on the right day. */
    int64_t days = ms / MS_PER_DAY;
    int64_t rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }

    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    assert(y >= 1 && y <= 9999);

    int hh = (int)(rem / 3600000);
    int mi = (int)(rem / 60000 % 60);
    int ss = (int)(rem / 1000 % 60);
    int mmm = (int)(rem % 1000);
    /* By hand rather than with snprintf: every lead and follow rendered
     * formats two or three of these, and snprintf's format parsing was
     * about 5 % of a follows list's CPU (bench/results.md). */
    const int parts[] = {(int)y, m, d, hh, mi, ss, mmm};
    static const int widths[] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[] = "--T::.Z";
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        put_digits(out + n, parts[i], widths[i]);
        n += (size_t)widths[i];
        out[n++] = after[i];
    }
    assert(n == 24);
    out[n] = '\0';
    return 24;
}

int64_t ts_now_ms(void)
{
    struct timespec tp;
    int rc = clock_gettime(CLOCK_REALTIME, &tp);
    assert(rc == 0);
    (void)rc;
    return (int64_t)tp.tv_sec * 1000 + tp.tv_nsec / 1000000;
}
