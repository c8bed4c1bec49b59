/*
 * fuzz_parsers.c: the small parsers every request leans on, each checked
 * against an independent reading or a round trip.
 *
 * The first byte of the input picks the parser (its value mod 8; the seeds
 * use the digits '0'..'7'), the rest is its input:
 *   0  decimal_parse: agrees with strtod; decimal_format reads back
 *   1  decimal_from_double on the 8 bytes as a double (or on strtod of the
 *      text): agrees with the double
 *   2  ts_parse: ts_format of the result reads back to the same instant
 *   3  ts_format on the 8 bytes as an int64: always 24 characters, and
 *      parse(format(x)) == x for every x in years 0001..9999
 *   4, 5  text_clean without and with newlines allowed: agrees with
 *      jansson's UTF-8 check, the span is trimmed and clean
 *   6  uuid_parse: the canonical form is lowercase and reads back
 *   7  jsonlex_loadb: reads what jansson reads, and refuses what jansson
 *      refuses for any reason but a number's size, at the same place; then
 *      jsonlex_number_at on what it read: the number found is lead.value,
 *      exactly as jansson reads it (1e308 where jansson overflows)
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "model/decimal.h"
#include "model/jsonlex.h"
#include "model/text.h"
#include "model/timestamp.h"
#include "model/uuid.h"

/* Years 0001..9999 in ms since the epoch. */
#define MS_MIN (-62135596800000LL)
#define MS_END (253402300800000LL)

static void check_decimal_text(const char *s, size_t n)
{
    int64_t cents = -7;
    int rc = decimal_parse(s, n, &cents);
    FUZZ_CHECK(rc >= DECIMAL_OK && rc <= DECIMAL_RANGE, "rc %d", rc);
    if (rc != DECIMAL_OK) {
        FUZZ_CHECK(cents == -7, "cents written on error %d", rc);
        return;
    }
    FUZZ_CHECK(cents >= 0 && cents < DECIMAL_LIMIT_CENTS, "%lld cents", (long long)cents);
    char buf[DECIMAL_BUFSZ];
    size_t m = decimal_format(cents, buf);
    FUZZ_CHECK(m == strlen(buf), "decimal_format length");
    int64_t back = -1;
    FUZZ_CHECK(decimal_parse(buf, m, &back) == DECIMAL_OK && back == cents, "%lld -> %s -> %lld",
               (long long)cents, buf, (long long)back);
    /* strtod reads the same grammar (a superset); the exact value in cents
     * is what the double rounds to. */
    char *copy = strndup(s, n);
    double d = strtod(copy, NULL);
    free(copy);
    FUZZ_CHECK(llround(d * 100) == cents, "%.*s is %lld cents but strtod says %.17g", (int)n, s,
               (long long)cents, d);
}

static void check_double(double d)
{
    int64_t cents = -7;
    int rc = decimal_from_double(d, &cents);
    FUZZ_CHECK(rc >= DECIMAL_OK && rc <= DECIMAL_RANGE, "rc %d", rc);
    if (!isfinite(d)) FUZZ_CHECK(rc == DECIMAL_SYNTAX, "non-finite accepted");
    if (rc != DECIMAL_OK) return;
    FUZZ_CHECK(cents >= 0 && cents < DECIMAL_LIMIT_CENTS, "%lld cents", (long long)cents);
    FUZZ_CHECK(llround(d * 100) == cents, "%.17g gave %lld cents", d, (long long)cents);
    /* Accepted means the double is (the nearest double to) cents / 100. */
    FUZZ_CHECK(d == 0 || fabs(d - (double)cents / 100) <= fabs(d) * 1e-15, "%.17g gave %lld cents", d,
               (long long)cents);
}

static void check_ts_text(const char *s, size_t n)
{
    int64_t ms = 7;
    int rc = ts_parse(s, n, &ms);
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(ms == 7, "ms written on error");
        return;
    }
    FUZZ_CHECK(ms >= MS_MIN && ms < MS_END, "%lld out of range", (long long)ms);
    char buf[TS_BUFSZ];
    size_t m = ts_format(ms, buf);
    int64_t back = 0;
    FUZZ_CHECK(m == 24 && ts_parse(buf, m, &back) == 0 && back == ms, "%lld -> %s -> %lld", (long long)ms,
               buf, (long long)back);
    /* The date and time fields as written, when the offset is Z, are what
     * the canonical form says (down to the milliseconds it keeps). */
    if ((s[n - 1] == 'Z' || s[n - 1] == 'z') && n >= 20)
        FUZZ_CHECK(strncasecmp(s, buf, 19) == 0, "%.*s formats as %s", (int)n, s, buf);
}

static void check_ts_value(int64_t x)
{
    char buf[TS_BUFSZ];
    size_t m = ts_format(x, buf);
    FUZZ_CHECK(m == 24 && strlen(buf) == 24, "ts_format(%lld) is %zu bytes", (long long)x, m);
    int64_t back = 0;
    FUZZ_CHECK(ts_parse(buf, m, &back) == 0, "ts_format(%lld) = %s does not parse", (long long)x, buf);
    int64_t clamped = x < MS_MIN ? MS_MIN : x >= MS_END ? MS_END - 1 : x;
    FUZZ_CHECK(back == clamped, "%lld -> %s -> %lld", (long long)x, buf, (long long)back);
}

static bool is_ws(const unsigned char *p, size_t n, size_t *len)
{
    /* The White_Space code points text.h lists, as UTF-8. */
    static const char *const ws[] = {
        "\t",           "\n",           "\v",           "\f",           "\r",           " ",
        "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82",
        "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88",
        "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f",
        "\xe3\x80\x80"};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        size_t l = strlen(ws[i]);
        if (l <= n && memcmp(p, ws[i], l) == 0) {
            *len = l;
            return true;
        }
    }
    return false;
}

static void check_text(const char *s, size_t n, bool newlines)
{
    const char *o = NULL;
    size_t olen = 99, cps = 99;
    int rc = text_clean(s, n, newlines, &o, &olen, &cps);
    /* jansson's own UTF-8 check (json_stringn) is the reference. */
    json_t *js = json_stringn(s, n);
    FUZZ_CHECK((rc == TEXT_BAD_UTF8) == (js == NULL), "text_clean says %d, jansson %s", rc,
               js ? "valid" : "invalid");
    json_decref(js);
    if (rc != TEXT_OK) {
        FUZZ_CHECK(olen == 0 && cps == 0, "outputs set on error");
        return;
    }
    FUZZ_CHECK(o >= s && o + olen <= s + n && cps <= olen, "span out of the input");
    const unsigned char *u = (const unsigned char *)o;
    size_t l;
    if (olen > 0) {
        FUZZ_CHECK(!is_ws(u, olen, &l), "the span starts with white space");
        /* Not ending in white space: try each length a trailing one has. */
        for (size_t k = 1; k <= 3 && k <= olen; k++)
            FUZZ_CHECK(!(is_ws(u + olen - k, k, &l) && l == k), "the span ends with white space");
    } else {
        FUZZ_CHECK(cps == 0, "an empty span with %zu code points", cps);
    }
    size_t count = 0;
    for (size_t i = 0; i < olen; i++) {
        unsigned char c = u[i];
        if ((c & 0xC0) != 0x80) count++;
        bool ok_nl = newlines && (c == '\n' || c == '\r' || c == '\t');
        FUZZ_CHECK(c >= 0x20 || ok_nl, "a control byte 0x%02x left in the span", c);
        FUZZ_CHECK(c != 0x7f, "DEL left in the span");
        if (c == 0xC2 && i + 1 < olen)
            FUZZ_CHECK(u[i + 1] < 0x80 || u[i + 1] > 0x9f, "a C1 control left in the span");
    }
    FUZZ_CHECK(count == cps, "%zu code points counted, %zu reported", count, cps);
}

static void check_uuid(const char *s, size_t n)
{
    char out[UUID_BUFSZ];
    memset(out, 'x', sizeof out);
    if (!uuid_parse(s, n, out)) return;
    FUZZ_CHECK(n == UUID_STRLEN && strlen(out) == UUID_STRLEN && strncasecmp(out, s, n) == 0, "%.*s -> %s",
               (int)n, s, out);
    for (int i = 0; i < UUID_STRLEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        FUZZ_CHECK(dash ? out[i] == '-'
                        : ((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f')),
                   "not canonical: %s", out);
    }
    char again[UUID_BUFSZ];
    FUZZ_CHECK(uuid_parse(out, UUID_STRLEN, again) && strcmp(again, out) == 0, "%s does not read back", out);
}

#define SERVER_FLAGS JSONLEX_BODY_FLAGS

/* Parses s as the server does (jsonlex_loadb), checked against jansson. */
static json_t *check_loadb(const char *s, size_t n)
{
    json_error_t err, mine_err;
    json_t *plain = json_loadb(s, n, SERVER_FLAGS, &err);
    json_t *mine = jsonlex_loadb(s, n, SERVER_FLAGS, &mine_err);
    if (plain != NULL)
        FUZZ_CHECK(mine != NULL && json_equal(plain, mine),
                   "jsonlex_loadb read a document otherwise than jansson");
    else if (json_error_code(&err) != json_error_numeric_overflow)
        FUZZ_CHECK(mine == NULL && mine_err.position == err.position,
                   "jansson refused at %d (%s), jsonlex_loadb %s at %d", err.position, err.text,
                   mine ? "accepted" : "refused", mine ? 0 : mine_err.position);
    json_decref(plain);
    return mine;
}

static void check_jsonlex(const char *s, size_t n)
{
    json_t *root = check_loadb(s, n);
    if (root == NULL) return; /* jsonlex_number_at is only ever given documents that parsed */
    const char *raw = NULL;
    size_t rawlen = 0;
    bool found = jsonlex_number_at(s, n, "lead", "value", &raw, &rawlen);
    json_t *v = json_object_get(json_object_get(root, "lead"), "value");
    if (found) {
        FUZZ_CHECK(raw >= s && raw + rawlen <= s + n && rawlen > 0, "the number is outside the document");
        FUZZ_CHECK(json_is_number(v), "jsonlex found a number where lead.value is not one: %.*s", (int)rawlen,
                   raw);
        char *copy = strndup(raw, rawlen);
        char *end;
        double d = strtod(copy, &end);
        FUZZ_CHECK(*end == '\0', "jsonlex's number text is not a number: %s", copy);
        if (isinf(d)) d = copysign(1e308, d);
        FUZZ_CHECK(d == json_number_value(v), "jsonlex read %s, jansson %.17g", copy, json_number_value(v));
        free(copy);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 8) {
    case 0:
        check_decimal_text(s, n);
        break;
    case 1:
        if (n == 8) {
            double d;
            memcpy(&d, s, 8);
            check_double(d);
        } else {
            char *copy = strndup(s, n);
            check_double(strtod(copy, NULL));
            free(copy);
        }
        break;
    case 2:
        check_ts_text(s, n);
        break;
    case 3: {
        int64_t x = 0;
        memcpy(&x, s, n < 8 ? n : 8);
        check_ts_value(x);
        break;
    }
    case 4:
    case 5:
        check_text(s, n, data[0] % 8 == 5);
        break;
    case 6:
        check_uuid(s, n);
        break;
    default:
        check_jsonlex(s, n);
    }
    return 0;
}
