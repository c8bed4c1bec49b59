/*
 * test_codec.c: every attribute rule of lead_decode / follow_decode, and the
 * JSON that lead_encode / follow_encode write.
 *
 * Request bodies go through jsonlex_loadb with the server's own flags, so
 * the trees are exactly what a handler sees. To keep the JSON readable, the
 * bodies below are written with single quotes, turned into double quotes
 * before parsing (a real quote inside a string is written \u0022).
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/codec.h"
#include "model/jsonlex.h"
#include "model/jsonw.h"

#define SERVER_FLAGS JSONLEX_BODY_FLAGS

/* 2026-03-05T14:00:00.123Z and 2026-01-10T10:30:00.000Z in ms. */
#define T_DUE 1772719200123LL
#define T_JAN10 1768041000000LL

#define UUID_A "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"
#define UUID_A_UPPER "0190F3A2-7C1E-7B3A-9D4E-5F6A7B8C9D0E"
#define UUID_B "0190f3a2-7c1e-7b3a-9d4e-000000000002"

/* --- helpers -------------------------------------------------------------- */

static json_t *root_; /* the tree the last patch points into */
static lead_patch_t lp;
static follow_patch_t fp;
static verrs_t errs;

static void teardown(void)
{
    json_decref(root_);
    root_ = NULL;
}

TestSuite(lead_decode, .fini = teardown);
TestSuite(follow_decode, .fini = teardown);

/* Parses text (single quotes read as double quotes) as the server does. */
static json_t *parse_body(const char *text)
{
    char *s = strdup(text);
    cr_assert_not_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t jerr;
    json_t *root = jsonlex_loadb(s, strlen(s), SERVER_FLAGS, &jerr);
    cr_assert_not_null(root, "test body does not parse: %s: %s", s, jerr.text);
    free(s);
    return root;
}

/* printf into a heap buffer. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    cr_assert(n >= 0);
    return s;
}

/* n copies of unit, concatenated, in a heap buffer. */
static char *repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

static void reset_errs(void)
{
    memset(&errs, 0, sizeof errs);
}

/* Decodes as the server does: with the body text, so that a value sent as
 * a JSON number is read from its own digits. */
static const lead_t *decode_lead(const char *text, bool creating)
{
    json_decref(root_);
    root_ = parse_body(text);
    reset_errs();
    char *body = strdup(text);
    cr_assert_not_null(body);
    for (char *p = body; *p; p++)
        if (*p == '\'') *p = '"';
    lead_decode_body(root_, body, strlen(body), creating, &lp, &errs);
    free(body);
    return &lp.v;
}

static const follow_t *decode_follow(const char *text, bool creating)
{
    json_decref(root_);
    root_ = parse_body(text);
    reset_errs();
    follow_decode(root_, creating, &fp, &errs);
    return &fp.v;
}

static void expect_no_errors(const char *what)
{
    cr_assert_eq(errs.n, 0, "%s: %d unexpected error(s), first: %s (%s)", what, errs.n,
                 errs.n ? errs.e[0].detail : "", errs.n ? errs.e[0].pointer : "");
}

/* Exactly one problem, with this code and pointer. */
static void expect_one_error(const char *what, const char *code, const char *pointer)
{
    cr_assert_eq(errs.n, 1, "%s: %d error(s), want 1 (first: %s)", what, errs.n,
                 errs.n ? errs.e[0].detail : "");
    cr_expect_str_eq(errs.e[0].code, code, "%s: code", what);
    cr_expect_str_eq(errs.e[0].pointer, pointer, "%s: pointer", what);
    cr_expect_str_eq(errs.e[0].parameter, "", "%s: parameter", what);
    cr_expect_neq(errs.e[0].detail[0], '\0', "%s: empty detail", what);
}

static bool has_error_at(const char *pointer, const char *code)
{
    for (int i = 0; i < errs.n; i++)
        if (strcmp(errs.e[i].pointer, pointer) == 0 && strcmp(errs.e[i].code, code) == 0) return true;
    return false;
}

/* Exactly two problems: code1 at pointer1 and code2 at pointer2. */
static void expect_two_errors(const char *what, const char *pointer1, const char *code1, const char *pointer2,
                              const char *code2)
{
    cr_expect_eq(errs.n, 2, "%s: %d errors, want 2", what, errs.n);
    cr_expect(has_error_at(pointer1, code1), "%s: no %s at %s", what, code1, pointer1);
    cr_expect(has_error_at(pointer2, code2), "%s: no %s at %s", what, code2, pointer2);
}

static void expect_text(text_ref_t t, const char *want, const char *what)
{
    cr_assert_not_null(t.ptr, "%s: unset, want \"%s\"", what, want);
    cr_expect_eq(t.len, strlen(want), "%s: length %zu, want %zu", what, t.len, strlen(want));
    cr_expect(t.len == strlen(want) && memcmp(t.ptr, want, t.len) == 0, "%s: \"%.*s\", want \"%s\"", what,
              (int)t.len, t.ptr, want);
}

/* Decodes {"lead":{key: value}} as an update and expects it accepted with
 * only field's bit set. */
static const lead_t *lead_attr_ok(const char *key, const char *value, unsigned field)
{
    char *body = fmt("{'lead':{'%s':%s}}", key, value);
    const lead_t *l = decode_lead(body, false);
    expect_no_errors(body);
    cr_expect_eq(lp.fields, field, "%s: fields %#x, want %#x", body, lp.fields, field);
    free(body);
    return l;
}

/* The same, expecting exactly one validation error at /lead/key and the
 * field's bit left unset. */
static void lead_attr_bad(const char *key, const char *value)
{
    char *body = fmt("{'lead':{'%s':%s}}", key, value);
    char *ptr = fmt("/lead/%s", key);
    decode_lead(body, false);
    expect_one_error(body, "validation_error", ptr);
    cr_expect_eq(lp.fields, 0u, "%s: fields %#x set for a refused attribute", body, lp.fields);
    free(ptr);
    free(body);
}

static const follow_t *follow_attr_ok(const char *key, const char *value, unsigned field)
{
    char *body = fmt("{'follow':{'%s':%s}}", key, value);
    const follow_t *f = decode_follow(body, false);
    expect_no_errors(body);
    cr_expect_eq(fp.fields, field, "%s: fields %#x, want %#x", body, fp.fields, field);
    free(body);
    return f;
}

static void follow_attr_bad(const char *key, const char *value)
{
    char *body = fmt("{'follow':{'%s':%s}}", key, value);
    char *ptr = fmt("/follow/%s", key);
    decode_follow(body, false);
    expect_one_error(body, "validation_error", ptr);
    cr_expect_eq(fp.fields, 0u, "%s: fields %#x set for a refused attribute", body, fp.fields);
    free(ptr);
    free(body);
}

/* --- lead: name ----------------------------------------------------------- */

Test(lead_decode, name_required_on_create)
{
    decode_lead("{'lead':{'source':'website'}}", true);
    expect_one_error("no name", "validation_error", "/lead/name");
    cr_expect_str_eq(errs.e[0].detail, "Name can't be blank");

    decode_lead("{'lead':{}}", true);
    expect_one_error("empty lead", "validation_error", "/lead/name");
}

Test(lead_decode, name_not_required_on_update)
{
    decode_lead("{'lead':{'source':'website'}}", false);
    expect_no_errors("update without name");
    cr_expect_eq(lp.fields, (unsigned)LEAD_F_SOURCE);
}

Test(lead_decode, name_is_trimmed)
{
    const lead_t *l = decode_lead("{'lead':{'name':'  \\t Acme Corp \\u3000\\u00a0 '}}", true);
    expect_no_errors("trimmed name");
    expect_text(l->name, "Acme Corp", "name");

    l = lead_attr_ok("name", "'\\u2003Jos\\u00e9 \\u00c1lvarez\\u2003'", LEAD_F_NAME);
    expect_text(l->name, "Jos\xc3\xa9 \xc3\x81lvarez", "name");
}

Test(lead_decode, name_null_or_blank_rejected)
{
    decode_lead("{'lead':{'name':null}}", true);
    expect_one_error("null name on create", "validation_error", "/lead/name");
    cr_expect_str_eq(errs.e[0].detail, "Name can't be blank");

    lead_attr_bad("name", "null");
    cr_expect_str_eq(errs.e[0].detail, "Name can't be blank");
    lead_attr_bad("name", "''");
    lead_attr_bad("name", "'   '");
    lead_attr_bad("name", "'\\t\\n \\r'");
    lead_attr_bad("name", "'\\u00a0\\u3000\\u2028'");
}

Test(lead_decode, name_length_counts_code_points)
{
    /* 255 two-byte characters: 510 bytes, 255 characters: fine. */
    char *s = repeat("\xc3\xa9", 255);
    char *v = fmt("'  %s  '", s);
    const lead_t *l = lead_attr_ok("name", v, LEAD_F_NAME);
    cr_expect_eq(l->name.len, 510u);
    free(v);
    free(s);

    s = repeat("a", 255);
    v = fmt("'%s'", s);
    l = lead_attr_ok("name", v, LEAD_F_NAME);
    cr_expect_eq(l->name.len, 255u);
    free(v);
    free(s);

    s = repeat("a", 256);
    v = fmt("'%s'", s);
    lead_attr_bad("name", v);
    cr_expect(strstr(errs.e[0].detail, "too long") != NULL, "detail: %s", errs.e[0].detail);
    free(v);
    free(s);

    s = repeat("\xc3\xa9", 256);
    v = fmt("'%s'", s);
    lead_attr_bad("name", v);
    free(v);
    free(s);
}

Test(lead_decode, name_emoji_counts_as_one_character)
{
    /* U+1F600 is 4 bytes in UTF-8 and a surrogate pair in JSON escapes. */
    char *s = repeat("\xf0\x9f\x98\x80", 255);
    char *v = fmt("'%s'", s);
    const lead_t *l = lead_attr_ok("name", v, LEAD_F_NAME);
    cr_expect_eq(l->name.len, 1020u);
    free(v);
    free(s);

    s = repeat("\\ud83d\\ude00", 255);
    v = fmt("'%s'", s);
    l = lead_attr_ok("name", v, LEAD_F_NAME);
    cr_expect_eq(l->name.len, 1020u);
    free(v);
    free(s);

    s = repeat("\xf0\x9f\x98\x80", 256);
    v = fmt("'%s'", s);
    lead_attr_bad("name", v);
    free(v);
    free(s);

    l = lead_attr_ok("name", "'\\ud83d\\ude00'", LEAD_F_NAME);
    expect_text(l->name, "\xf0\x9f\x98\x80", "one emoji");
}

Test(lead_decode, name_control_characters_rejected)
{
    static const char *const bad[] = {
        "'a\\u0000b'", "'a\\u0001b'", "'a\\u001fb'", "'a\\u007fb'", "'a\\u0080b'",
        "'a\\u009fb'", "'a\\nb'",     "'a\\rb'",     "'a\\tb'",     "'a\\u0085b'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_attr_bad("name", bad[i]);
        cr_expect(strstr(errs.e[0].detail, "control") != NULL, "%s: detail %s", bad[i], errs.e[0].detail);
    }
    /* U+00A0 is white space, not a control character, and may sit inside. */
    const lead_t *l = lead_attr_ok("name", "'a\\u00a0b'", LEAD_F_NAME);
    expect_text(l->name,
                "a\xc2\xa0"
                "b",
                "nbsp inside");
}

Test(lead_decode, name_must_be_a_string)
{
    static const char *const bad[] = {"42", "0", "true", "false", "[]", "['Acme']", "{}", "{'x':'y'}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_attr_bad("name", bad[i]);
        cr_expect(strstr(errs.e[0].detail, "string") != NULL, "%s: detail %s", bad[i], errs.e[0].detail);
    }
}

/* --- lead: source --------------------------------------------------------- */

Test(lead_decode, source)
{
    const lead_t *l = lead_attr_ok("source", "' referral '", LEAD_F_SOURCE);
    expect_text(l->source, "referral", "source");

    char *s = repeat("\xe4\xb8\xad", 64); /* 64 three-byte characters */
    char *v = fmt("'%s'", s);
    l = lead_attr_ok("source", v, LEAD_F_SOURCE);
    cr_expect_eq(l->source.len, 192u);
    free(v);
    free(s);

    s = repeat("x", 65);
    v = fmt("'%s'", s);
    lead_attr_bad("source", v);
    free(v);
    free(s);

    lead_attr_bad("source", "'cold\\u0007call'");
    lead_attr_bad("source", "12");
}

Test(lead_decode, source_null_clears)
{
    const lead_t *l = lead_attr_ok("source", "null", LEAD_F_SOURCE);
    cr_expect_null(l->source.ptr);
    cr_expect_eq(l->source.len, 0u);
}

/* --- lead: account_id, contact_id ------------------------------------------- */

Test(lead_decode, account_and_contact_ids)
{
    const lead_t *l = lead_attr_ok("account_id", "'" UUID_A "'", LEAD_F_ACCOUNT);
    cr_expect_str_eq(l->account_id, UUID_A);
    l = lead_attr_ok("account_id", "'" UUID_A_UPPER "'", LEAD_F_ACCOUNT);
    cr_expect_str_eq(l->account_id, UUID_A, "uppercase is lowercased");
    l = lead_attr_ok("contact_id", "'" UUID_A_UPPER "'", LEAD_F_CONTACT);
    cr_expect_str_eq(l->contact_id, UUID_A, "uppercase is lowercased");
    cr_expect_str_eq(l->account_id, "", "account untouched");
    l = lead_attr_ok("contact_id", "' " UUID_B " '", LEAD_F_CONTACT);
    cr_expect_str_eq(l->contact_id, UUID_B, "trimmed like any string");
}

Test(lead_decode, ids_null_clears)
{
    const lead_t *l = lead_attr_ok("account_id", "null", LEAD_F_ACCOUNT);
    cr_expect_str_eq(l->account_id, "");
    l = lead_attr_ok("contact_id", "null", LEAD_F_CONTACT);
    cr_expect_str_eq(l->contact_id, "");
}

Test(lead_decode, ids_garbage_rejected)
{
    static const char *const bad[] = {
        "'account-uuid-456'",
        "''",
        "'   '",
        "'0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0'",   /* one digit short */
        "'0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e0'", /* one too many */
        "'0190f3a27c1e7b3a9d4e5f6a7b8c9d0e'",      /* no dashes */
        "'{0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e}'",
        "'0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0g'",
        "'0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c\\u0000d0e'",
        "42",
        "true",
        "['" UUID_A "']",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_attr_bad("account_id", bad[i]);
        cr_expect_str_eq(lp.v.account_id, "", "%s: partial id left behind", bad[i]);
        lead_attr_bad("contact_id", bad[i]);
    }
}

/* --- lead: value ---------------------------------------------------------- */

static void value_ok(const char *v, int64_t cents)
{
    const lead_t *l = lead_attr_ok("value", v, LEAD_F_VALUE);
    cr_expect(l->has_value, "%s: has_value", v);
    cr_expect_eq(l->value_cents, cents, "%s: %lld cents, want %lld", v, (long long)l->value_cents,
                 (long long)cents);
}

Test(lead_decode, value_numbers)
{
    value_ok("50000", 5000000);
    value_ok("50000.00", 5000000);
    value_ok("12345.67", 1234567);
    value_ok("12.300", 1230);
    value_ok("1.5e2", 15000);
    value_ok("1.5E+2", 15000);
    value_ok("0", 0);
    value_ok("-0", 0);
    value_ok("0.1", 10);
    value_ok("0.01", 1);
    value_ok("9999999999999.99", 999999999999999LL);
    /* Binary floating point cannot hold these; the cents must still be exact. */
    value_ok("0.29", 29);
    value_ok("1.1", 110);
    value_ok("19.99", 1999);
    value_ok("1234567.89", 123456789);
}

Test(lead_decode, value_numeric_strings)
{
    value_ok("'12345.67'", 1234567);
    value_ok("'12.300'", 1230);
    value_ok("'1.5e2'", 15000);
    value_ok("'0'", 0);
    value_ok("'9999999999999.99'", 999999999999999LL);
}

Test(lead_decode, value_rejected)
{
    static const char *const bad[] = {
        "'abc'", "''",    "' 12'", "'12 '",         "'+12'",   "'012'", "'1,000'", "'NaN'",  "'0x10'",
        "-1",    "-0.01", "'-1'",  "0.001",         "'0.001'", "1.005", "1e13",    "'1e13'", "10000000000000",
        "1e300", "true",  "[12]",  "{'amount':12}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_attr_bad("value", bad[i]);
        cr_expect_not(lp.v.has_value, "%s: has_value on error", bad[i]);
    }
    /* The messages tell the problems apart. */
    lead_attr_bad("value", "-1");
    cr_expect(strstr(errs.e[0].detail, "greater than or equal to 0") != NULL, "%s", errs.e[0].detail);
    lead_attr_bad("value", "0.001");
    cr_expect(strstr(errs.e[0].detail, "2 decimal places") != NULL, "%s", errs.e[0].detail);
    lead_attr_bad("value", "1e13");
    cr_expect(strstr(errs.e[0].detail, "less than") != NULL, "%s", errs.e[0].detail);
    lead_attr_bad("value", "'abc'");
    cr_expect(strstr(errs.e[0].detail, "not a number") != NULL, "%s", errs.e[0].detail);
}

/* A JSON number is read from its own digits in the body, not from jansson's
 * double, whose precision would lose them: 12.3400000000000001 would pass
 * as 12.34 and 1e-400 as 0. The contract allows at most 2 fractional digits
 * and requires money to round-trip exactly. */
Test(lead_decode, value_excess_digits_in_json_number)
{
    lead_attr_bad("value", "12.3400000000000001");
    lead_attr_bad("value", "0.10000000000000001");
    lead_attr_bad("value", "1e-400");
}

/* Numbers beyond a double are valid JSON: jsonlex_loadb lets them through
 * (as 1e308) and the digits in the body decide, so they are out of range,
 * not a body that is not JSON. */
Test(lead_decode, numbers_beyond_a_double_are_out_of_range)
{
    char *nines = repeat("9", 400);
    char *power = fmt("1%s", nines);
    memset(power + 1, '0', 400);
    char *negative = fmt("-%s", nines);
    const char *const huge[] = {nines, power, "1e999", "123.45e308"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        lead_attr_bad("value", huge[i]);
        cr_expect(strstr(errs.e[0].detail, "less than 10000000000000") != NULL, "%.20s: %s", huge[i],
                  errs.e[0].detail);
        lead_attr_bad("probability", huge[i]);
        cr_expect(strstr(errs.e[0].detail, "between 0 and 100") != NULL, "%.20s: %s", huge[i],
                  errs.e[0].detail);
    }
    lead_attr_bad("value", negative);
    cr_expect(strstr(errs.e[0].detail, "greater than or equal to 0") != NULL, "%s", errs.e[0].detail);
    lead_attr_bad("probability", "-1e999");
    cr_expect(strstr(errs.e[0].detail, "between 0 and 100") != NULL, "%s", errs.e[0].detail);
    free(nines);
    free(power);
    free(negative);
}

Test(lead_decode, value_null_clears)
{
    const lead_t *l = lead_attr_ok("value", "null", LEAD_F_VALUE);
    cr_expect_not(l->has_value);
}

/* --- lead: stage and status ----------------------------------------------- */

Test(lead_decode, stage_enum)
{
    static const char *const names[] = {"new", "contacted", "qualified", "proposal", "negotiation"};
    static const int values[] = {STAGE_NEW, STAGE_CONTACTED, STAGE_QUALIFIED, STAGE_PROPOSAL,
                                 STAGE_NEGOTIATION};
    for (int i = 0; i < 5; i++) {
        char *v = fmt("'%s'", names[i]);
        const lead_t *l = lead_attr_ok("stage", v, LEAD_F_STAGE);
        cr_expect_eq(l->stage, values[i], "%s", names[i]);
        cr_expect_str_eq(lead_stage_name(values[i]), names[i]);
        free(v);
    }
    const lead_t *l = lead_attr_ok("stage", "' proposal '", LEAD_F_STAGE);
    cr_expect_eq(l->stage, STAGE_PROPOSAL);

    static const char *const bad[] = {"null", "'won'", "''", "'new2'", "'ne'", "1", "true", "['new']"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        lead_attr_bad("stage", bad[i]);
    lead_attr_bad("stage", "'won'");
    cr_expect(strstr(errs.e[0].detail, "negotiation") != NULL, "lists the values: %s", errs.e[0].detail);
}

Test(lead_decode, status_enum)
{
    static const char *const names[] = {"active", "inactive", "converted", "lost"};
    static const int values[] = {LEAD_ACTIVE, LEAD_INACTIVE, LEAD_CONVERTED, LEAD_LOST};
    for (int i = 0; i < 4; i++) {
        char *v = fmt("'%s'", names[i]);
        const lead_t *l = lead_attr_ok("status", v, LEAD_F_STATUS);
        cr_expect_eq(l->status, values[i], "%s", names[i]);
        cr_expect_str_eq(lead_status_name(values[i]), names[i]);
        free(v);
    }
    static const char *const bad[] = {"null", "'deleted'", "'pending'", "''", "0", "false"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        lead_attr_bad("status", bad[i]);

    decode_lead("{'lead':{'name':'A','status':null}}", true);
    expect_one_error("null status on create", "validation_error", "/lead/status");
    decode_lead("{'lead':{'name':'A','stage':null}}", true);
    expect_one_error("null stage on create", "validation_error", "/lead/stage");
}

/* --- lead: probability ---------------------------------------------------- */

Test(lead_decode, probability)
{
    const lead_t *l = lead_attr_ok("probability", "40", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 40);
    l = lead_attr_ok("probability", "40.0", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 40);
    l = lead_attr_ok("probability", "0", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 0);
    l = lead_attr_ok("probability", "100", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 100);
    l = lead_attr_ok("probability", "1e2", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 100);

    static const char *const bad[] = {"40.5", "101", "-1", "'40'", "100.01", "1e3", "true", "[40]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_attr_bad("probability", bad[i]);
        cr_expect_eq(lp.v.probability, -1, "%s: probability written on error", bad[i]);
    }
}

Test(lead_decode, probability_null_clears)
{
    const lead_t *l = lead_attr_ok("probability", "null", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, -1);
}

/* --- lead: attribute names ------------------------------------------------ */

Test(lead_decode, unknown_attribute)
{
    decode_lead("{'lead':{'nmae':'Acme'}}", false);
    expect_one_error("typo", "unknown_attribute", "/lead/nmae");
    cr_expect(strstr(errs.e[0].detail, "nmae") != NULL, "detail names the key: %s", errs.e[0].detail);
    cr_expect_eq(lp.fields, 0u);

    /* A case difference is another name. */
    decode_lead("{'lead':{'Name':'Acme'}}", false);
    expect_one_error("Name", "unknown_attribute", "/lead/Name");

    decode_lead("{'lead':{'name':'Acme','colour':'red'}}", true);
    expect_one_error("extra on create", "unknown_attribute", "/lead/colour");
}

Test(lead_decode, unknown_attribute_pointer_is_escaped)
{
    decode_lead("{'lead':{'a~b/c':1}}", false);
    expect_one_error("~ and /", "unknown_attribute", "/lead/a~0b~1c");
    decode_lead("{'lead':{'~1':1}}", false);
    expect_one_error("~1 literally", "unknown_attribute", "/lead/~01");
    decode_lead("{'lead':{'/':1}}", false);
    expect_one_error("/", "unknown_attribute", "/lead/~1");
    decode_lead("{'lead':{'':1}}", false);
    expect_one_error("empty key", "unknown_attribute", "/lead/");
}

Test(lead_decode, read_only_attributes_ignored)
{
    decode_lead("{'lead':{'unique_id':'" UUID_A "','created_at':'2026-01-10T10:30:00.000Z',"
                "'updated_at':'garbage'}}",
                false);
    expect_no_errors("read-only on update");
    cr_expect_eq(lp.fields, 0u);
    cr_expect_str_eq(lp.v.id, "", "unique_id is not taken from the body");
    cr_expect_eq(lp.v.created_at, 0);
    cr_expect_eq(lp.v.updated_at, 0);

    char *longest = repeat("x", 64);
    char *body = fmt("{'lead':{'name':'A','unique_id':'%s'}}", longest);
    decode_lead(body, true);
    expect_no_errors("a read-only string of 64 bytes on create");
    cr_expect_str_eq(lp.v.id, "");
    free(body);
    free(longest);
}

Test(lead_decode, read_only_attributes_must_look_like_the_servers)
{
    /* What a client's model holds before the server gave a value (null, a
     * number) is ignored too; a boolean, an array or an object is not. */
    decode_lead("{'lead':{'name':'A','unique_id':null,'created_at':5,'updated_at':1.5e9}}", true);
    expect_no_errors("null and numbers as read-only attributes");
    cr_expect_str_eq(lp.v.id, "");
    cr_expect_eq(lp.v.created_at, 0);
    decode_lead("{'lead':{'name':'A','unique_id':true,'created_at':{},'updated_at':[]}}", true);
    cr_assert_eq(errs.n, 3, "%d errors", errs.n);
    cr_expect(has_error_at("/lead/unique_id", "validation_error"));
    cr_expect(has_error_at("/lead/created_at", "validation_error"));
    cr_expect(has_error_at("/lead/updated_at", "validation_error"));

    char *too_long = repeat("x", 65);
    char *body = fmt("{'lead':{'created_at':'%s'}}", too_long);
    decode_lead(body, false);
    expect_one_error("a read-only string of 65 bytes", "validation_error", "/lead/created_at");
    free(body);
    free(too_long);

    /* The review's body: a large array where a timestamp goes. */
    char *zeros = repeat("0,", 100000);
    body = fmt("{'lead':{'name':'x','created_at':[%s0]}}", zeros);
    decode_lead(body, true);
    expect_one_error("an array as created_at", "validation_error", "/lead/created_at");
    free(body);
    free(zeros);
}

Test(lead_decode, all_problems_reported_at_once)
{
    decode_lead("{'lead':{'name':'  ','source':null,'value':-1,'probability':40.5,'stage':'won',"
                "'status':null,'account_id':'nope','contact_id':7,'colour':'red'}}",
                true);
    cr_assert_eq(errs.n, 8, "%d errors", errs.n);
    cr_expect_eq(errs.dropped, 0);
    static const char *const ptrs[] = {"/lead/name",   "/lead/value",      "/lead/probability", "/lead/stage",
                                       "/lead/status", "/lead/account_id", "/lead/contact_id"};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        cr_expect(has_error_at(ptrs[i], "validation_error"), "no error at %s", ptrs[i]);
    cr_expect(has_error_at("/lead/colour", "unknown_attribute"));
    cr_expect_not(has_error_at("/lead/source", "validation_error"));

    /* A missing name is one more problem beside the others. */
    decode_lead("{'lead':{'value':'abc','probability':101}}", true);
    cr_expect_eq(errs.n, 3);
    cr_expect(has_error_at("/lead/name", "validation_error"));
}

Test(lead_decode, wrapper_problems)
{
    decode_lead("[]", true);
    expect_one_error("array root", "validation_error", "");
    decode_lead("[{'lead':{'name':'Acme'}}]", false);
    expect_one_error("array of leads", "validation_error", "");
    /* JSON, but not an object: the wrapper is missing. */
    static const char *const scalars[] = {"'lead'", "42", "null", "true"};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        decode_lead(scalars[i], true);
        expect_one_error(scalars[i], "validation_error", "");
    }
    decode_lead("{}", true);
    expect_one_error("no wrapper", "validation_error", "/lead");
    /* Members beside the wrapper are unknown, at the top. */
    decode_lead("{'name':'Acme'}", true);
    expect_two_errors("attributes without wrapper", "/name", "unknown_attribute", "/lead",
                      "validation_error");
    decode_lead("{'follow':{'title':'x'}}", true);
    expect_two_errors("wrong wrapper", "/follow", "unknown_attribute", "/lead", "validation_error");
    decode_lead("{'lead':{'name':'Acme'},'created_at':'x','a/b':1}", true);
    expect_two_errors("members beside the wrapper", "/created_at", "unknown_attribute", "/a~1b",
                      "unknown_attribute");
    decode_lead("{'lead':[]}", true);
    expect_one_error("wrapper array", "validation_error", "/lead");
    decode_lead("{'lead':null}", false);
    expect_one_error("wrapper null", "validation_error", "/lead");
    decode_lead("{'lead':'Acme'}", false);
    expect_one_error("wrapper string", "validation_error", "/lead");
    cr_expect(strstr(errs.e[0].detail, "object") != NULL, "%s", errs.e[0].detail);
}

Test(lead_decode, create_defaults)
{
    const lead_t *l = decode_lead("{'lead':{'name':'Acme'}}", true);
    expect_no_errors("minimal create");
    cr_expect_eq(lp.fields, ~0u, "every field is named on create");
    expect_text(l->name, "Acme", "name");
    cr_expect_eq(l->stage, STAGE_NEW);
    cr_expect_eq(l->status, LEAD_ACTIVE);
    cr_expect_null(l->source.ptr);
    cr_expect_str_eq(l->account_id, "");
    cr_expect_str_eq(l->contact_id, "");
    cr_expect_not(l->has_value);
    cr_expect_eq(l->probability, -1);

    l = decode_lead("{'lead':{'name':'Acme','stage':'qualified','status':'lost'}}", true);
    expect_no_errors("create with enums");
    cr_expect_eq(l->stage, STAGE_QUALIFIED);
    cr_expect_eq(l->status, LEAD_LOST);
}

Test(lead_decode, create_full)
{
    const lead_t *l =
        decode_lead("{'lead':{'name':'John Doe','source':'website','account_id':'" UUID_A_UPPER "',"
                    "'contact_id':'" UUID_B "','value':'50000.00','stage':'contacted',"
                    "'probability':25,'status':'inactive'}}",
                    true);
    expect_no_errors("full create");
    expect_text(l->name, "John Doe", "name");
    expect_text(l->source, "website", "source");
    cr_expect_str_eq(l->account_id, UUID_A);
    cr_expect_str_eq(l->contact_id, UUID_B);
    cr_expect(l->has_value);
    cr_expect_eq(l->value_cents, 5000000);
    cr_expect_eq(l->stage, STAGE_CONTACTED);
    cr_expect_eq(l->probability, 25);
    cr_expect_eq(l->status, LEAD_INACTIVE);
}

Test(lead_decode, update_sets_only_named_bits)
{
    decode_lead("{'lead':{}}", false);
    expect_no_errors("empty update");
    cr_expect_eq(lp.fields, 0u);

    decode_lead("{'lead':{'stage':'qualified','probability':60}}", false);
    expect_no_errors("two fields");
    cr_expect_eq(lp.fields, (unsigned)(LEAD_F_STAGE | LEAD_F_PROBABILITY));

    decode_lead("{'lead':{'name':'B','source':'x','account_id':null,'contact_id':null,'value':1,"
                "'stage':'new','probability':1,'status':'active'}}",
                false);
    expect_no_errors("all fields");
    cr_expect_eq(lp.fields, (unsigned)(LEAD_F_NAME | LEAD_F_SOURCE | LEAD_F_ACCOUNT | LEAD_F_CONTACT |
                                       LEAD_F_VALUE | LEAD_F_STAGE | LEAD_F_PROBABILITY | LEAD_F_STATUS));

    /* An update does not take the create defaults. */
    decode_lead("{'lead':{'name':'B'}}", false);
    cr_expect_eq(lp.fields, (unsigned)LEAD_F_NAME);
}

/* --- follows -------------------------------------------------------------- */

Test(follow_decode, title_rules)
{
    decode_follow("{'follow':{'description':'x'}}", true);
    expect_one_error("no title", "validation_error", "/follow/title");
    cr_expect_str_eq(errs.e[0].detail, "Title can't be blank");

    decode_follow("{'follow':{'title':null}}", true);
    expect_one_error("null title", "validation_error", "/follow/title");

    const follow_t *f = follow_attr_ok("title", "'  Call back \\u00e9 '", FOLLOW_F_TITLE);
    expect_text(f->title, "Call back \xc3\xa9", "title");

    follow_attr_bad("title", "null");
    follow_attr_bad("title", "'   '");
    follow_attr_bad("title", "'a\\nb'");
    follow_attr_bad("title", "'a\\u0000b'");
    follow_attr_bad("title", "12");

    char *s = repeat("\xf0\x9f\x93\x9e", 255);
    char *v = fmt("'%s'", s);
    f = follow_attr_ok("title", v, FOLLOW_F_TITLE);
    cr_expect_eq(f->title.len, 1020u);
    free(v);
    free(s);
    s = repeat("t", 256);
    v = fmt("'%s'", s);
    follow_attr_bad("title", v);
    free(v);
    free(s);
}

Test(follow_decode, description_rules)
{
    const follow_t *f =
        follow_attr_ok("description", "' line 1\\nline 2\\r\\n\\tindented '", FOLLOW_F_DESCRIPTION);
    expect_text(f->description, "line 1\nline 2\r\n\tindented", "newlines, tab kept inside");

    f = follow_attr_ok("description", "null", FOLLOW_F_DESCRIPTION);
    cr_expect_null(f->description.ptr);

    follow_attr_bad("description", "'a\\u0001b'");
    follow_attr_bad("description", "'a\\u0000b'");
    follow_attr_bad("description", "'a\\u000bb'"); /* vertical tab */
    follow_attr_bad("description", "'a\\u0090b'");
    follow_attr_bad("description", "42");

    char *s = repeat("\xc3\xa9", 10000);
    char *v = fmt("'%s'", s);
    f = follow_attr_ok("description", v, FOLLOW_F_DESCRIPTION);
    cr_expect_eq(f->description.len, 20000u);
    free(v);
    free(s);
    s = repeat("d", 10001);
    v = fmt("'%s'", s);
    follow_attr_bad("description", v);
    free(v);
    free(s);
}

Test(follow_decode, due_date)
{
    const follow_t *f = follow_attr_ok("due_date", "'2026-03-05T14:00:00.123Z'", FOLLOW_F_DUE);
    cr_expect(f->has_due);
    cr_expect_eq(f->due_at, T_DUE);

    f = follow_attr_ok("due_date", "'2026-03-05T16:00:00.123+02:00'", FOLLOW_F_DUE);
    cr_expect_eq(f->due_at, T_DUE, "+02:00 converted to UTC");
    f = follow_attr_ok("due_date", "'2026-03-05T09:00:00.123-05:00'", FOLLOW_F_DUE);
    cr_expect_eq(f->due_at, T_DUE, "-05:00 converted to UTC");
    f = follow_attr_ok("due_date", "'2026-03-05T14:00:00.123999Z'", FOLLOW_F_DUE);
    cr_expect_eq(f->due_at, T_DUE, "finer fraction truncated");
    f = follow_attr_ok("due_date", "'2026-01-10T10:30:00Z'", FOLLOW_F_DUE);
    cr_expect_eq(f->due_at, T_JAN10);

    f = follow_attr_ok("due_date", "null", FOLLOW_F_DUE);
    cr_expect_not(f->has_due);

    static const char *const bad[] = {
        "'2026-02-30T10:00:00Z'",
        "'2026-13-01T10:00:00Z'",
        "'2026-03-05T24:00:00Z'",
        "'2026-03-05'",
        "'2026-03-05T14:00:00'",
        "'tomorrow'",
        "''",
        "1772719200123",
        "true",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        follow_attr_bad("due_date", bad[i]);
        cr_expect_not(fp.v.has_due, "%s: has_due on error", bad[i]);
    }
}

Test(follow_decode, status_rules)
{
    const follow_t *f = follow_attr_ok("status", "'pending'", FOLLOW_F_STATUS);
    cr_expect_eq(f->status, FOLLOW_PENDING);
    f = follow_attr_ok("status", "'completed'", FOLLOW_F_STATUS);
    cr_expect_eq(f->status, FOLLOW_COMPLETED);

    /* overdue: decoded on update, for the caller to judge. */
    f = follow_attr_ok("status", "'overdue'", FOLLOW_F_STATUS);
    cr_expect_eq(f->status, FOLLOW_OVERDUE);

    decode_follow("{'follow':{'title':'Call','status':'overdue'}}", true);
    expect_one_error("overdue on create", "validation_error", "/follow/status");

    follow_attr_bad("status", "null");
    follow_attr_bad("status", "'done'");
    follow_attr_bad("status", "'active'");
    follow_attr_bad("status", "1");
}

Test(follow_decode, create_defaults)
{
    const follow_t *f = decode_follow("{'follow':{'title':'Call John'}}", true);
    expect_no_errors("minimal follow");
    cr_expect_eq(fp.fields, ~0u);
    expect_text(f->title, "Call John", "title");
    cr_expect_eq(f->status, FOLLOW_PENDING);
    cr_expect_null(f->description.ptr);
    cr_expect_not(f->has_due);

    f = decode_follow("{'follow':{'title':'Call John','status':'completed'}}", true);
    expect_no_errors("completed on create");
    cr_expect_eq(f->status, FOLLOW_COMPLETED);
}

Test(follow_decode, names_wrappers_and_many_problems)
{
    decode_follow("{'follow':{'titel':'x'}}", false);
    expect_one_error("typo", "unknown_attribute", "/follow/titel");
    decode_follow("{'follow':{'x/y~z':'x'}}", false);
    expect_one_error("escaped", "unknown_attribute", "/follow/x~1y~0z");

    decode_follow("{'follow':{'unique_id':'x','created_at':'2026-01-10T10:30:00.000Z'}}", false);
    expect_no_errors("read-only ignored");
    cr_expect_eq(fp.fields, 0u);
    decode_follow("{'follow':{'unique_id':'x','created_at':1,'updated_at':null}}", false);
    expect_no_errors("read-only null and numbers ignored");
    cr_expect_eq(fp.fields, 0u);
    decode_follow("{'follow':{'unique_id':'x','created_at':false,'updated_at':{}}}", false);
    expect_two_errors("read-only of no shape they hold", "/follow/created_at", "validation_error",
                      "/follow/updated_at", "validation_error");

    decode_follow("{'lead':{'title':'x'}}", true);
    expect_two_errors("wrong wrapper", "/lead", "unknown_attribute", "/follow", "validation_error");
    decode_follow("{'follow':['x']}", true);
    expect_one_error("wrapper array", "validation_error", "/follow");
    decode_follow("[{'follow':{}}]", true);
    expect_one_error("array root", "validation_error", "");

    decode_follow("{'follow':{'description':'\\u0002','due_date':'2026-02-30T00:00:00Z',"
                  "'status':'overdue','foo':1}}",
                  true);
    cr_expect_eq(errs.n, 5, "%d errors", errs.n);
    cr_expect(has_error_at("/follow/title", "validation_error"));
    cr_expect(has_error_at("/follow/description", "validation_error"));
    cr_expect(has_error_at("/follow/due_date", "validation_error"));
    cr_expect(has_error_at("/follow/status", "validation_error"));
    cr_expect(has_error_at("/follow/foo", "unknown_attribute"));

    decode_follow("{'follow':{'due_date':null}}", false);
    expect_no_errors("update");
    cr_expect_eq(fp.fields, (unsigned)FOLLOW_F_DUE, "only the named bit");
}

/* --- encoding ------------------------------------------------------------- */

static char *out_text; /* the last encoding, NUL-terminated */
static json_t *out_json;

static void enc_teardown(void)
{
    free(out_text);
    out_text = NULL;
    json_decref(out_json);
    out_json = NULL;
    teardown();
}

TestSuite(lead_encode, .fini = enc_teardown);
TestSuite(follow_encode, .fini = enc_teardown);

/* Keeps w's text and parses it strictly (duplicate keys refused). */
static json_t *take(jw_t *w)
{
    cr_assert_not(w->oom);
    free(out_text);
    out_text = malloc(w->len + 1);
    cr_assert_not_null(out_text);
    memcpy(out_text, w->buf, w->len);
    out_text[w->len] = '\0';
    jw_free(w);
    for (size_t i = 0; out_text[i]; i++)
        cr_assert_geq((unsigned char)out_text[i], 0x20, "raw control byte %#x at %zu in %s",
                      (unsigned char)out_text[i], i, out_text);
    json_error_t jerr;
    json_decref(out_json);
    out_json = json_loads(out_text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    cr_assert_not_null(out_json, "invalid JSON (%s): %s", jerr.text, out_text);
    return out_json;
}

static json_t *enc_lead(const lead_t *l)
{
    jw_t w = {0};
    lead_encode(&w, l);
    return take(&w);
}

static json_t *enc_follow(const follow_t *f, int64_t now)
{
    jw_t w = {0};
    follow_encode(&w, f, now);
    return take(&w);
}

static text_ref_t T(const char *s)
{
    return (text_ref_t){s, strlen(s)};
}

static lead_t base_lead(void)
{
    lead_t l = {0};
    strcpy(l.id, UUID_A);
    l.name = T("Acme");
    l.stage = STAGE_NEW;
    l.status = LEAD_ACTIVE;
    l.probability = -1;
    l.created_at = T_JAN10;
    l.updated_at = T_JAN10 + 1;
    return l;
}

static follow_t base_follow(void)
{
    follow_t f = {0};
    strcpy(f.id, UUID_B);
    strcpy(f.lead_id, UUID_A);
    f.title = T("Call John");
    f.status = FOLLOW_PENDING;
    f.created_at = T_JAN10;
    f.updated_at = T_JAN10;
    return f;
}

static json_t *attrs(json_t *res)
{
    json_t *a = json_object_get(res, "attributes");
    cr_assert(json_is_object(a), "attributes is not an object: %s", out_text);
    return a;
}

static void expect_str_member(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "%s is not a string in %s", key, out_text);
    cr_expect_str_eq(json_string_value(v), want, "%s", key);
}

static void expect_null_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert_not_null(v, "%s missing in %s", key, out_text);
    cr_expect(json_is_null(v), "%s is not null in %s", key, out_text);
}

/* The raw text of the value member, as written. */
static char *raw_value(void)
{
    const char *p = strstr(out_text, "\"value\":");
    cr_assert_not_null(p, "no value in %s", out_text);
    p += 8;
    size_t n = strcspn(p, ",}");
    return strndup(p, n);
}

Test(lead_encode, minimal_lead_every_attribute_present)
{
    lead_t l = base_lead();
    json_t *res = enc_lead(&l);
    expect_str_member(res, "id", UUID_A);
    expect_str_member(res, "type", "lead");
    json_t *a = attrs(res);
    static const char *const keys[] = {"unique_id",  "name",       "source",    "account_id",
                                       "contact_id", "value",      "stage",     "probability",
                                       "status",     "created_at", "updated_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(json_object_get(a, keys[i]), "attribute %s missing: %s", keys[i], out_text);
    cr_expect_eq(json_object_size(a), sizeof keys / sizeof keys[0], "unexpected attributes: %s", out_text);
    expect_str_member(a, "unique_id", UUID_A);
    expect_str_member(a, "name", "Acme");
    expect_null_member(a, "source");
    expect_null_member(a, "account_id");
    expect_null_member(a, "contact_id");
    expect_null_member(a, "value");
    expect_str_member(a, "stage", "new");
    expect_null_member(a, "probability");
    expect_str_member(a, "status", "active");
    expect_str_member(a, "created_at", "2026-01-10T10:30:00.000Z");
    expect_str_member(a, "updated_at", "2026-01-10T10:30:00.001Z");

    json_t *rel = json_object_get(res, "relationships");
    cr_assert(json_is_object(rel), "relationships: %s", out_text);
    expect_null_member(json_object_get(rel, "account"), "data");
    expect_null_member(json_object_get(rel, "contact"), "data");
}

Test(lead_encode, full_lead)
{
    lead_t l = base_lead();
    l.source = T("referral");
    strcpy(l.account_id, UUID_A);
    strcpy(l.contact_id, UUID_B);
    l.has_value = true;
    l.value_cents = 1234567;
    l.stage = STAGE_NEGOTIATION;
    l.probability = 0;
    l.status = LEAD_CONVERTED;
    json_t *a = attrs(enc_lead(&l));
    expect_str_member(a, "source", "referral");
    expect_str_member(a, "account_id", UUID_A);
    expect_str_member(a, "contact_id", UUID_B);
    expect_str_member(a, "stage", "negotiation");
    expect_str_member(a, "status", "converted");
    json_t *p = json_object_get(a, "probability");
    cr_assert(json_is_integer(p), "probability 0 must be the integer 0: %s", out_text);
    cr_expect_eq(json_integer_value(p), 0);
    cr_expect(json_is_number(json_object_get(a, "value")), "value is a JSON number");

    json_t *rel = json_object_get(out_json, "relationships");
    json_t *acc = json_object_get(json_object_get(rel, "account"), "data");
    cr_assert(json_is_object(acc), "account data: %s", out_text);
    expect_str_member(acc, "id", UUID_A);
    expect_str_member(acc, "type", "account");
    json_t *con = json_object_get(json_object_get(rel, "contact"), "data");
    cr_assert(json_is_object(con), "contact data: %s", out_text);
    expect_str_member(con, "id", UUID_B);
    expect_str_member(con, "type", "contact");
}

Test(lead_encode, value_rendered_exactly)
{
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {1234567, "12345.67"}, {1230, "12.3"}, {5000000, "50000"}, {10, "0.1"},
        {1, "0.01"},           {0, "0"},       {29, "0.29"},       {999999999999999LL, "9999999999999.99"},
        {100000, "1000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lead_t l = base_lead();
        l.has_value = true;
        l.value_cents = cases[i].cents;
        enc_lead(&l);
        char *raw = raw_value();
        cr_expect_str_eq(raw, cases[i].text, "%lld cents", (long long)cases[i].cents);
        free(raw);
    }
}

Test(lead_encode, strings_escaped_and_round_trip)
{
    static const char name[] = "q\"uote back\\slash sl/ nl\n tab\t cr\r bs\b ff\f c1\x01 c1f\x1f"
                               " del\x7f \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xe2\x80\xa8 end";
    lead_t l = base_lead();
    l.name = (text_ref_t){name, sizeof name - 1};
    l.source = T("</script><b>&amp;'");
    json_t *a = attrs(enc_lead(&l));
    json_t *n = json_object_get(a, "name");
    cr_assert(json_is_string(n), "%s", out_text);
    cr_expect_eq(json_string_length(n), sizeof name - 1);
    cr_expect(memcmp(json_string_value(n), name, sizeof name - 1) == 0, "name did not round-trip: %s",
              out_text);
    expect_str_member(a, "source", "</script><b>&amp;'");
}

Test(lead_encode, nul_byte_escaped)
{
    static const char name[] = "a\0b";
    lead_t l = base_lead();
    l.name = (text_ref_t){name, 3};
    json_t *n = json_object_get(attrs(enc_lead(&l)), "name");
    cr_assert(json_is_string(n), "%s", out_text);
    cr_expect_eq(json_string_length(n), 3u);
    cr_expect(memcmp(json_string_value(n), name, 3) == 0);
}

Test(lead_encode, decode_then_encode_round_trip)
{
    const lead_t *d = decode_lead("{'lead':{'name':' Jos\\u00e9 \\u0022Pepe\\u0022 \\\\ \\ud83d\\ude00 ',"
                                  "'value':12.300,'probability':40.0,'account_id':'" UUID_A_UPPER "'}}",
                                  true);
    expect_no_errors("decode");
    lead_t l = *d;
    strcpy(l.id, UUID_B);
    l.created_at = l.updated_at = T_JAN10;
    json_t *a = attrs(enc_lead(&l));
    expect_str_member(a, "name", "Jos\xc3\xa9 \"Pepe\" \\ \xf0\x9f\x98\x80");
    expect_str_member(a, "account_id", UUID_A);
    char *raw = raw_value();
    cr_expect_str_eq(raw, "12.3");
    free(raw);
    cr_expect_eq(json_integer_value(json_object_get(a, "probability")), 40);
    expect_str_member(a, "stage", "new");
    expect_str_member(a, "status", "active");
}

Test(follow_encode, every_attribute_present)
{
    follow_t f = base_follow();
    json_t *res = enc_follow(&f, T_JAN10);
    expect_str_member(res, "id", UUID_B);
    expect_str_member(res, "type", "follow");
    json_t *a = attrs(res);
    static const char *const keys[] = {"unique_id", "title",      "description", "due_date",
                                       "status",    "created_at", "updated_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(json_object_get(a, keys[i]), "attribute %s missing: %s", keys[i], out_text);
    cr_expect_eq(json_object_size(a), sizeof keys / sizeof keys[0], "unexpected attributes: %s", out_text);
    expect_str_member(a, "unique_id", UUID_B);
    expect_str_member(a, "title", "Call John");
    expect_null_member(a, "description");
    expect_null_member(a, "due_date");
    expect_str_member(a, "status", "pending");
    expect_str_member(a, "created_at", "2026-01-10T10:30:00.000Z");

    f.description = T("line 1\nline 2\r\n\ttab \"q\" \\");
    f.has_due = true;
    f.due_at = T_DUE;
    a = attrs(enc_follow(&f, T_JAN10));
    expect_str_member(a, "description", "line 1\nline 2\r\n\ttab \"q\" \\");
    expect_str_member(a, "due_date", "2026-03-05T14:00:00.123Z");
}

Test(follow_encode, overdue_is_derived)
{
    follow_t f = base_follow();
    f.has_due = true;
    f.due_at = T_DUE;

    expect_str_member(attrs(enc_follow(&f, T_DUE - 1)), "status", "pending");
    expect_str_member(attrs(enc_follow(&f, T_DUE + 1)), "status", "overdue");
    expect_str_member(attrs(enc_follow(&f, T_DUE + 86400000LL)), "status", "overdue");

    f.status = FOLLOW_COMPLETED;
    expect_str_member(attrs(enc_follow(&f, T_DUE + 1)), "status", "completed");
    expect_str_member(attrs(enc_follow(&f, T_DUE - 1)), "status", "completed");

    /* Without a due date a pending follow is never overdue. */
    f = base_follow();
    expect_str_member(attrs(enc_follow(&f, T_DUE + 86400000LL)), "status", "pending");
}

Test(lead_decode, probability_excess_digits_in_json_number)
{
    lead_attr_bad("probability", "40.000000000000001");
    lead_attr_bad("probability", "40.5");
    const lead_t *l = lead_attr_ok("probability", "4e1", LEAD_F_PROBABILITY);
    cr_expect_eq(l->probability, 40);
}

Test(follow_encode, names_its_lead)
{
    follow_t f = base_follow();
    json_t *res = enc_follow(&f, T_JAN10);
    json_t *rel = json_object_get(res, "relationships");
    cr_assert(json_is_object(rel), "%s", out_text);
    cr_expect_eq(json_object_size(rel), 1, "%s", out_text);
    json_t *data = json_object_get(json_object_get(rel, "lead"), "data");
    cr_assert(json_is_object(data), "%s", out_text);
    expect_str_member(data, "id", f.lead_id);
    expect_str_member(data, "type", "lead");
    cr_expect_eq(json_object_size(data), 2, "%s", out_text);
}

/* jw_int(v) between two literals writes exactly want between them. */
static void expect_int(int64_t v, const char *want)
{
    jw_t w = {0};
    jw_lit(&w, "[");
    jw_int(&w, v);
    jw_lit(&w, "]");
    size_t n = strlen(want);
    cr_expect(w.len == n + 2 && memcmp(w.buf + 1, want, n) == 0 && w.buf[n + 1] == ']', "%.*s", (int)w.len,
              w.buf);
    jw_free(&w);
}

Test(jsonw, integers_in_decimal_with_their_sign)
{
    expect_int(0, "0");
    expect_int(5, "5");
    expect_int(-5, "-5");
    expect_int(100, "100");
    expect_int(INT64_MAX, "9223372036854775807");
    expect_int(INT64_MIN, "-9223372036854775808");
}

/* --- problems ---------------------------------------------------------------- */

/* A caller that builds a pointer with snprintf into a buffer of its own
 * (batch.c: "/operations/3" and a member's pointer) cuts at a byte; the
 * problem must still hold valid UTF-8, the cut character left out. */
Test(verrs, a_pointer_cut_inside_a_character_loses_that_character)
{
    static const char *const CHARS[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < sizeof CHARS / sizeof CHARS[0]; c++) {
        size_t clen = strlen(CHARS[c]);
        for (size_t cut = 1; cut < clen; cut++) {
            char src[64];
            snprintf(src, sizeof src, "/lead/%s%.*s", CHARS[c], (int)cut, CHARS[c]);
            verrs_t e = {0};
            verrs_add(&e, "unknown_attribute", src, NULL, "x");
            char want[64];
            snprintf(want, sizeof want, "/lead/%s", CHARS[c]);
            cr_assert_str_eq(e.e[0].pointer, want, "char %zu cut after %zu bytes", c, cut);
        }
        char whole[64];
        snprintf(whole, sizeof whole, "/lead/%s", CHARS[c]);
        verrs_t e = {0};
        verrs_add(&e, "unknown_attribute", whole, NULL, "x");
        cr_assert_str_eq(e.e[0].pointer, whole);
    }
}

Test(verrs, a_long_pointer_is_cut_at_a_character_boundary)
{
    char src[300] = "/operations/0/lead/";
    while (strlen(src) + 3 < sizeof src)
        strcat(src, "\xe2\x82\xac");
    verrs_t e = {0};
    verrs_add(&e, "unknown_attribute", src, NULL, "%s", src);
    const char *p = e.e[0].pointer;
    size_t n = strlen(p);
    cr_assert(n > 19 && n < sizeof e.e[0].pointer && (n - 19) % 3 == 0, "%zu bytes", n);
    cr_assert(strncmp(p, src, n) == 0);
    n = strlen(e.e[0].detail);
    cr_assert(n > 19 && (n - 19) % 3 == 0, "%zu bytes", n);
}
