/*
 * test_decimal.c: the value rules, including hostile number texts.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/decimal.h"

/* A value the parser never produces, so a test can tell whether cents was
 * written. */
#define SENTINEL (-12345)

static int parse(const char *s, int64_t *cents)
{
    *cents = SENTINEL;
    return decimal_parse(s, strlen(s), cents);
}

static void expect_ok(const char *s, int64_t want)
{
    int64_t c;
    int rc = parse(s, &c);
    cr_expect_eq(rc, DECIMAL_OK, "\"%s\": rc %d, want OK", s, rc);
    cr_expect_eq(c, want, "\"%s\": %lld cents, want %lld", s, (long long)c, (long long)want);
}

static void expect_rc(const char *s, int want)
{
    int64_t c;
    int rc = parse(s, &c);
    cr_expect_eq(rc, want, "\"%s\": rc %d, want %d", s, rc, want);
    cr_expect_eq(c, SENTINEL, "\"%s\": cents written on error", s);
}

/* Builds prefix, then n copies of fill, then suffix, in a heap buffer. */
static char *repeat(const char *prefix, char fill, size_t n, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *b = malloc(pl + n + sl + 1);
    cr_assert_not_null(b);
    memcpy(b, prefix, pl);
    memset(b + pl, fill, n);
    memcpy(b + pl + n, suffix, sl + 1);
    return b;
}

Test(decimal_parse, plain_values)
{
    expect_ok("0", 0);
    expect_ok("1", 100);
    expect_ok("50000", 5000000);
    expect_ok("12345.67", 1234567);
    expect_ok("12.3", 1230);
    expect_ok("0.1", 10);
    expect_ok("0.01", 1);
    expect_ok("0.99", 99);
}

Test(decimal_parse, trailing_zeros_do_not_count)
{
    expect_ok("12.300", 1230);
    expect_ok("0.10", 10);
    expect_ok("0.000", 0);
    expect_ok("5.000000000000000000000000000000", 500);
    expect_ok("1.230e1", 1230);
}

Test(decimal_parse, exponents)
{
    expect_ok("1.5e2", 15000);
    expect_ok("1E2", 10000);
    expect_ok("1e+2", 10000);
    expect_ok("100e-2", 100);
    expect_ok("1e-2", 1);
    expect_ok("1e0", 100);
    expect_ok("1e-0", 100);
    expect_ok("1e007", 1000000000);
    expect_ok("123400e-4", 1234);
    expect_ok("0.0012e3", 120);
    expect_ok("1e12", 100000000000000LL);
}

Test(decimal_parse, negative_zero_is_zero)
{
    expect_ok("-0", 0);
    expect_ok("-0.0", 0);
    expect_ok("-0e5", 0);
    expect_ok("0e999999999999999999999", 0);
}

Test(decimal_parse, negative)
{
    expect_rc("-1", DECIMAL_NEGATIVE);
    expect_rc("-0.01", DECIMAL_NEGATIVE);
    /* Negative wins over range and precision. */
    expect_rc("-1e99", DECIMAL_NEGATIVE);
    expect_rc("-0.001", DECIMAL_NEGATIVE);
}

Test(decimal_parse, precision)
{
    expect_rc("0.001", DECIMAL_PRECISION);
    expect_rc("0.0010", DECIMAL_PRECISION);
    expect_rc("12.345", DECIMAL_PRECISION);
    expect_rc("123456e-4", DECIMAL_PRECISION);
    expect_rc("1e-3", DECIMAL_PRECISION);
    expect_rc("1e-99999999999", DECIMAL_PRECISION);
}

Test(decimal_parse, range)
{
    expect_ok("9999999999999.99", 999999999999999LL);
    expect_ok("9999999999999", 999999999999900LL);
    expect_rc("10000000000000", DECIMAL_RANGE);
    expect_rc("1e13", DECIMAL_RANGE);
    expect_rc("0.1e14", DECIMAL_RANGE);
    expect_rc("1e999999999999", DECIMAL_RANGE);
    expect_rc("1e99999999999999999999999999999999999999", DECIMAL_RANGE);
    /* Out of range and too precise at once: range is reported. */
    expect_rc("10000000000000.001", DECIMAL_RANGE);
}

Test(decimal_parse, syntax)
{
    static const char *const bad[] = {
        "",    "-",  "00",   "01",   "-01",   ".5",   "5.",  "+5",       " 5",  "5 ",  "5\n",   "1e", "1e+",
        "1E-", "e5", "1.e5", "1..2", "1.2.3", "0x10", "NaN", "Infinity", "1,5", "--1", "1e5.5", "½",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_rc(bad[i], DECIMAL_SYNTAX);
}

Test(decimal_parse, embedded_nul_and_length)
{
    int64_t c = SENTINEL;
    /* The length, not a NUL, ends the input. */
    cr_expect_eq(decimal_parse("12\0"
                               "3",
                               4, &c),
                 DECIMAL_SYNTAX);
    cr_expect_eq(decimal_parse("123", 2, &c), DECIMAL_OK);
    cr_expect_eq(c, 1200);
    cr_expect_eq(decimal_parse(NULL, 0, &c), DECIMAL_SYNTAX);
}

Test(decimal_parse, long_inputs)
{
    /* 400 zeros after the point then a 5: far too precise. */
    char *s = repeat("0.", '0', 400, "5");
    expect_rc(s, DECIMAL_PRECISION);
    free(s);

    /* A 400-digit integer. */
    s = repeat("1", '0', 399, "");
    expect_rc(s, DECIMAL_RANGE);
    free(s);

    /* 400 digits scaled back down to ten: exact and fine. */
    s = repeat("1", '0', 399, "e-398");
    expect_ok(s, 1000);
    free(s);

    /* Trailing zeros in a long fraction still do not count. */
    s = repeat("7.25", '0', 400, "");
    expect_ok(s, 725);
    free(s);

    /* A long run of exponent digits. */
    s = repeat("1e", '9', 400, "");
    expect_rc(s, DECIMAL_RANGE);
    free(s);
    s = repeat("1e-", '9', 400, "");
    expect_rc(s, DECIMAL_PRECISION);
    free(s);
    s = repeat("0e", '9', 400, "");
    expect_ok(s, 0);
    free(s);
}

Test(decimal_from_double, values)
{
    int64_t c = SENTINEL;
    cr_expect_eq(decimal_from_double(0.1, &c), DECIMAL_OK);
    cr_expect_eq(c, 10);
    cr_expect_eq(decimal_from_double(12345.67, &c), DECIMAL_OK);
    cr_expect_eq(c, 1234567);
    cr_expect_eq(decimal_from_double(0.29, &c), DECIMAL_OK); /* 0.29 * 100 is 28.999... in binary */
    cr_expect_eq(c, 29);
    cr_expect_eq(decimal_from_double(50000.0, &c), DECIMAL_OK);
    cr_expect_eq(c, 5000000);
    cr_expect_eq(decimal_from_double(9999999999999.99, &c), DECIMAL_OK);
    cr_expect_eq(c, 999999999999999LL);
    cr_expect_eq(decimal_from_double(-0.0, &c), DECIMAL_OK);
    cr_expect_eq(c, 0);
    cr_expect_eq(decimal_from_double(1e-5, &c), DECIMAL_PRECISION); /* "%g" gives "1e-05" */
}

Test(decimal_from_double, errors)
{
    int64_t c = SENTINEL;
    cr_expect_eq(decimal_from_double(NAN, &c), DECIMAL_SYNTAX);
    cr_expect_eq(decimal_from_double(INFINITY, &c), DECIMAL_SYNTAX);
    cr_expect_eq(decimal_from_double(-INFINITY, &c), DECIMAL_SYNTAX);
    cr_expect_eq(decimal_from_double(-1.0, &c), DECIMAL_NEGATIVE);
    cr_expect_eq(decimal_from_double(1e13, &c), DECIMAL_RANGE); /* "%g" gives "1e+13" */
    cr_expect_eq(decimal_from_double(1e300, &c), DECIMAL_RANGE);
    cr_expect_eq(decimal_from_double(0.001, &c), DECIMAL_PRECISION);
    cr_expect_eq(decimal_from_double(5e-324, &c), DECIMAL_PRECISION);
    cr_expect_eq(c, SENTINEL);
}

Test(decimal_from_double, every_cent_round_trips)
{
    /* Every cent value in a spread of magnitudes, through its nearest
     * double, comes back exactly. */
    for (int64_t base = 1; base < DECIMAL_LIMIT_CENTS; base *= 10) {
        for (int64_t k = 0; k < 200; k++) {
            int64_t want = base + k * 7;
            if (want >= DECIMAL_LIMIT_CENTS) break;
            char buf[DECIMAL_BUFSZ];
            decimal_format(want, buf);
            double d = strtod(buf, NULL);
            int64_t c = SENTINEL;
            cr_assert_eq(decimal_from_double(d, &c), DECIMAL_OK, "%s", buf);
            cr_assert_eq(c, want, "%s gave %lld", buf, (long long)c);
        }
    }
}

static void expect_format(int64_t cents, const char *want)
{
    char buf[DECIMAL_BUFSZ];
    memset(buf, 'x', sizeof buf);
    size_t n = decimal_format(cents, buf);
    cr_expect_str_eq(buf, want);
    cr_expect_eq(n, strlen(want));
}

Test(decimal_format, shortest_form)
{
    expect_format(0, "0");
    expect_format(1, "0.01");
    expect_format(10, "0.1");
    expect_format(99, "0.99");
    expect_format(100, "1");
    expect_format(1230, "12.3");
    expect_format(1234567, "12345.67");
    expect_format(5000000, "50000");
    expect_format(999999999999999LL, "9999999999999.99");
    expect_format(DECIMAL_LIMIT_CENTS - 10, "9999999999999.9");
}

Test(decimal_format, out_of_contract_values_do_not_overflow)
{
    expect_format(-150, "-1.5");
    expect_format(INT64_MIN, "-92233720368547758.08");
    expect_format(INT64_MAX, "92233720368547758.07");
}

Test(decimal_format, round_trip_through_parse)
{
    static const int64_t vals[] = {
        0, 1, 5, 10, 11, 100, 101, 110, 12345, 99999, 100000000000000LL, 999999999999999LL};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char buf[DECIMAL_BUFSZ];
        size_t n = decimal_format(vals[i], buf);
        int64_t c = SENTINEL;
        cr_expect_eq(decimal_parse(buf, n, &c), DECIMAL_OK, "%s", buf);
        cr_expect_eq(c, vals[i], "%s", buf);
    }
}

/* --- decimal_format_wide --------------------------------------------------------- */

static void expect_wide(unsigned __int128 v, int scale, const char *want)
{
    char out[DECIMAL_WIDE_BUFSZ];
    size_t n = decimal_format_wide(v, scale, out);
    cr_expect_str_eq(out, want);
    cr_expect_eq(n, strlen(want));
}

Test(decimal_format_wide, shortest_exact_forms)
{
    expect_wide(0, 2, "0");
    expect_wide(5, 2, "0.05");
    expect_wide(50, 2, "0.5");
    expect_wide(5000000, 2, "50000");
    expect_wide(1234567, 2, "12345.67");
    expect_wide(43000050, 4, "4300.005");
    expect_wide(4300000500000, 4, "430000050");
    expect_wide(1, 4, "0.0001");
    expect_wide(123, 0, "123");
}

Test(decimal_format_wide, beyond_64_bits)
{
    /* 10,000 leads of the largest value: 10^19 - 10^4 cents, over INT64_MAX. */
    unsigned __int128 max = 999999999999999, n = 10000;
    expect_wide(max * n, 2, "99999999999999900");
    /* Their weighted value at 100%: the same amount, in 1/10^4. */
    expect_wide(max * n * 100, 4, "99999999999999900");
    expect_wide(max * n * 100 + 1, 4, "99999999999999900.0001");
    /* The largest unsigned 128-bit value, at scale 18. */
    expect_wide(~(unsigned __int128)0, 18, "340282366920938463463.374607431768211455");
}

static void expect_u64(uint64_t v, const char *want)
{
    char buf[DECIMAL_U64_BUFSZ];
    memset(buf, 'x', sizeof buf);
    cr_expect_eq(decimal_u64(v, buf), strlen(want), "%s", want);
    cr_expect_str_eq(buf, want);
}

Test(decimal_u64, every_width_and_the_extremes)
{
    expect_u64(0, "0");
    expect_u64(7, "7");
    expect_u64(10, "10");
    expect_u64(99, "99");
    expect_u64(1000000, "1000000");
    expect_u64(4294967296ULL, "4294967296");
    expect_u64(UINT64_MAX, "18446744073709551615");
}
