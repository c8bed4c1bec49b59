/*
 * decimal.h: exact money values.
 *
 * A lead's value is kept as a count of hundredths (cents) in an int64_t, so
 * that it round-trips exactly: 0 <= cents < 10^15 (the value is below 10^13
 * with at most two fractional digits).
 */
#ifndef CRMD_MODEL_DECIMAL_H
#define CRMD_MODEL_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

enum decimal_rc {
    DECIMAL_OK = 0,
    DECIMAL_SYNTAX,    /* not the JSON number grammar (white space included) */
    DECIMAL_NEGATIVE,  /* below zero ("-0" is zero and fine) */
    DECIMAL_PRECISION, /* more than two significant fractional digits */
    DECIMAL_RANGE      /* 10^13 or more */
};

/* The largest value accepted, exclusive, in cents. */
#define DECIMAL_LIMIT_CENTS 1000000000000000LL

/* Parses text in the JSON number grammar (optional '-', digits, optional
 * fraction, optional exponent; no white space, no leading '+', no leading
 * zeros) into cents. Trailing fractional zeros do not count against the two
 * digits: "12.300" is 1230 cents, "1.5e2" is 15000. Returns a decimal_rc. */
int decimal_parse(const char *s, size_t len, int64_t *cents);

/* Converts a double that came from a JSON number to cents, through the
 * shortest decimal text that reads back as the same double. Exact for every
 * value with at most 15 significant digits, which covers every valid value.
 * Returns a decimal_rc. */
int decimal_from_double(double d, int64_t *cents);

/* Writes v in decimal digits and a NUL into out, which holds at least
 * DECIMAL_U64_BUFSZ bytes; returns the number of digits. By hand rather
 * than with snprintf, whose format parsing showed in the profile of every
 * lead rendered (bench/results.md). */
#define DECIMAL_U64_BUFSZ 21
size_t decimal_u64(uint64_t v, char *out);

/* Writes the shortest exact decimal form of cents ("50000", "12345.67",
 * "12.3", "0.1") and a NUL into out, which holds at least DECIMAL_BUFSZ
 * bytes; returns the length written (without the NUL). */
#define DECIMAL_BUFSZ 32
size_t decimal_format(int64_t cents, char *out);

/* Sums of money can pass 64 bits (ten thousand leads of 10^13, with
 * their probabilities). Writes the shortest exact decimal form of
 * v / 10^scale (scale 0..18: trailing fractional zeros dropped, no point
 * when nothing is left) and a NUL into out, which holds at least
 * DECIMAL_WIDE_BUFSZ bytes; returns the length written. */
#define DECIMAL_WIDE_BUFSZ 48
size_t decimal_format_wide(unsigned __int128 v, int scale, char *out);

#endif
