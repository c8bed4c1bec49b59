/*
 * decimal.c: exact money values, parsed from JSON number text without ever
 * going through binary floating point.
 *
 * A number is read as a digit string (integer and fraction digits run
 * together) and a power of ten. Leading and trailing zeros are dropped, which
 * leaves a significand of n digits whose first and last digits are not zero,
 * times 10^e. Then:
 *   - the value has more than two fractional digits exactly when e < -2;
 *   - the value is 10^13 or more exactly when n - 1 + e >= 13.
 * Both checks need only n and e, so a 400-digit significand or an exponent
 * of 1e999999999999 costs one pass over the text and no big arithmetic.
 *
 * When a value is both out of range and too precise ("10000000000000.001"),
 * DECIMAL_RANGE wins: the magnitude is checked before the fraction. A
 * negative non-zero value is DECIMAL_NEGATIVE whatever else is wrong with it.
 */
#include "model/decimal.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exponents are clamped to this magnitude while they are read. Any exponent
 * this large already decides the outcome (range or precision), and the
 * clamp keeps the later sums of exponent and digit counts far from int64_t
 * overflow. */
#define EXP_CLAMP 1000000000000000LL

/* Inputs at least this long are refused outright. No such string fits in
 * memory on any real machine; the bound only proves that digit counts,
 * which are at most len, cannot overflow the exponent arithmetic. */
#define INPUT_MAX ((size_t)EXP_CLAMP)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The digits of the number, integer part then fraction part, seen as one
 * sequence so that the significand can be found without copying. */
struct digits {
    const char *ip; /* integer digits */
    size_t il;
    const char *fp; /* fraction digits (after the '.') */
    size_t fl;
};

static int digit_at(const struct digits *d, size_t i)
{
    assert(i < d->il + d->fl);
    return i < d->il ? d->ip[i] - '0' : d->fp[i - d->il] - '0';
}

/* A number read in the JSON grammar, not yet interpreted. */
struct number {
    bool negative;
    struct digits d;
    int64_t exp; /* the exponent, saturated at +-EXP_CLAMP */
};

/* Reads the exponent part at s[*i..len), if there is one: 'e' or 'E', an
 * optional sign, then at least one digit. The value saturates at EXP_CLAMP
 * so any number of digits is safe. Returns false on a malformed one. */
static bool read_exponent(const char *s, size_t len, size_t *i, int64_t *exp)
{
    *exp = 0;
    if (*i >= len || (s[*i] != 'e' && s[*i] != 'E')) return true;
    (*i)++;
    bool negative = false;
    if (*i < len && (s[*i] == '+' || s[*i] == '-')) {
        negative = s[*i] == '-';
        (*i)++;
    }
    if (*i >= len || !is_digit(s[*i])) return false;
    for (; *i < len && is_digit(s[*i]); (*i)++)
        if (*exp < EXP_CLAMP) *exp = *exp * 10 + (s[*i] - '0');
    if (*exp > EXP_CLAMP) *exp = EXP_CLAMP;
    if (negative) *exp = -*exp;
    return true;
}

/* Reads all of s[0..len) as a JSON number into *n; false if it is not one. */
static bool read_number(const char *s, size_t len, struct number *n)
{
    size_t i = 0;
    *n = (struct number){0};
    if (s[i] == '-') {
        n->negative = true;
        i++;
    }

    /* Integer part: a lone '0', or a non-zero digit followed by digits. */
    if (i >= len || !is_digit(s[i])) return false;
    n->d.ip = s + i;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    n->d.il = (size_t)(s + i - n->d.ip);

    /* Fraction: a '.' needs at least one digit after it. */
    if (i < len && s[i] == '.') {
        i++;
        n->d.fp = s + i;
        while (i < len && is_digit(s[i]))
            i++;
        n->d.fl = (size_t)(s + i - n->d.fp);
        if (n->d.fl == 0) return false;
    }

    /* Anything left over after the exponent (white space, a second '.',
     * letters, NUL) is not part of the grammar. */
    return read_exponent(s, len, &i, &n->exp) && i == len;
}

/* Interprets a number read by read_number as cents. */
static int number_cents(const struct number *num, int64_t *cents)
{
    const struct digits *d = &num->d;
    /* Locate the significand: the first and last non-zero digits. */
    size_t total = d->il + d->fl;
    size_t first = 0;
    while (first < total && digit_at(d, first) == 0)
        first++;
    if (first == total) {
        /* Zero, however written ("-0", "0.000", "0e999999"), is valid. */
        *cents = 0;
        return DECIMAL_OK;
    }
    if (num->negative) return DECIMAL_NEGATIVE;

    size_t last = total - 1;
    while (digit_at(d, last) == 0)
        last--;

    /* All three counts are below INPUT_MAX, so with |exp| <= EXP_CLAMP the
     * sum stays within a few multiples of 10^15. */
    int64_t n = (int64_t)(last - first + 1);
    int64_t e = num->exp - (int64_t)d->fl + (int64_t)(total - 1 - last);

    if (n - 1 + e >= 13) return DECIMAL_RANGE;
    if (e < -2) return DECIMAL_PRECISION;

    /* Now e >= -2 and n + e <= 13, so the value in cents has n + e + 2 <= 15
     * digits and fits in int64_t with room to spare. */
    assert(n + e + 2 <= 15);
    int64_t v = 0;
    for (size_t k = first; k <= last; k++)
        v = v * 10 + digit_at(d, k);
    for (int64_t k = 0; k < e + 2; k++)
        v *= 10;
    assert(v > 0 && v < DECIMAL_LIMIT_CENTS);
    *cents = v;
    return DECIMAL_OK;
}

int decimal_parse(const char *s, size_t len, int64_t *cents)
{
    assert(cents != NULL);
    if (s == NULL || len == 0 || len >= INPUT_MAX) return DECIMAL_SYNTAX;
    struct number n;
    if (!read_number(s, len, &n)) return DECIMAL_SYNTAX;
    return number_cents(&n, cents);
}

int decimal_from_double(double d, int64_t *cents)
{
    assert(cents != NULL);
    if (!isfinite(d)) return DECIMAL_SYNTAX;

    /* %.17g always reads back exactly, so the loop always finds a text; the
     * shortest one is the decimal the JSON writer most likely meant. Both
     * snprintf and strtod follow LC_NUMERIC, which the server leaves as "C"
     * so that the decimal point is '.'. */
    char buf[40];
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, d);
        assert(n > 0 && (size_t)n < sizeof buf);
        if (strtod(buf, NULL) == d) break;
    }
    return decimal_parse(buf, (size_t)n, cents);
}

size_t decimal_format(int64_t cents, char *out)
{
    assert(out != NULL);

    /* Valid values are never negative, but a stray one is still written
     * correctly (INT64_MIN included) rather than trusted blindly. */
    bool negative = cents < 0;
    uint64_t mag = negative ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    unsigned long long whole = mag / 100;
    unsigned frac = (unsigned)(mag % 100);
    size_t n = 0;
    if (negative) out[n++] = '-';
    n += decimal_u64(whole, out + n);
    if (frac != 0) {
        out[n++] = '.';
        out[n++] = (char)('0' + frac / 10);
        if (frac % 10 != 0) out[n++] = (char)('0' + frac % 10);
    }
    out[n] = '\0';
    assert(n > 0 && n < DECIMAL_BUFSZ);
    return n;
}

size_t decimal_u64(uint64_t v, char *out)
{
    char rev[DECIMAL_U64_BUFSZ];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t decimal_format_wide(unsigned __int128 v, int scale, char *out)
{
    assert(out != NULL && scale >= 0 && scale <= 18);
    /* Digits from the last, at least scale + 1 of them. */
    char digits[DECIMAL_WIDE_BUFSZ];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v > 0 || n <= scale);
    /* Fractional zeros at the end are not written. */
    int drop = 0;
    while (drop < scale && digits[drop] == '0')
        drop++;
    size_t o = 0;
    for (int i = n - 1; i >= scale; i--)
        out[o++] = digits[i];
    if (drop < scale) {
        out[o++] = '.';
        for (int i = scale - 1; i >= drop; i--)
            out[o++] = digits[i];
    }
    out[o] = '\0';
    return o;
}
