/*
 * test_jsonlex.c: finding a number's own text in a document
 * (jsonlex_number_at), and parsing documents whose numbers jansson cannot
 * hold (jsonlex_loadb): such numbers are valid JSON, so a body holding one
 * must reach the codec, which reads the digits and answers 422, rather than
 * be refused as not JSON.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/jsonlex.h"

#define SERVER_FLAGS JSONLEX_BODY_FLAGS

static json_t *root_;

static void teardown(void)
{
    json_decref(root_);
    root_ = NULL;
}

TestSuite(jsonlex_loadb, .fini = teardown);

/* n copies of c followed by tail, in a heap buffer. */
static char *digits(char c, size_t n, const char *tail)
{
    char *s = malloc(n + strlen(tail) + 1);
    cr_assert_not_null(s);
    memset(s, c, n);
    strcpy(s + n, tail);
    return s;
}

/* Parses doc as the server does; fails the test if it is refused. */
static json_t *load(const char *doc)
{
    json_error_t err;
    json_decref(root_);
    root_ = jsonlex_loadb(doc, strlen(doc), SERVER_FLAGS, &err);
    cr_assert_not_null(root_, "refused (%s at %d): %.80s", err.text, err.position, doc);
    return root_;
}

static double number_at(const json_t *root, const char *k1, const char *k2)
{
    json_t *v = json_object_get(json_object_get(root, k1), k2);
    cr_assert(json_is_number(v), "%s.%s is not a number", k1, k2);
    return json_number_value(v);
}

/* A value sent as a number of many digits: the tree holds 1e308 and the
 * digits are still found in the body. */
static void expect_saturated(const char *num, double want)
{
    char *doc = NULL;
    cr_assert(asprintf(&doc, "{\"lead\":{\"name\":\"x\",\"value\":%s}}", num) > 0);
    json_error_t err;
    json_t *plain = json_loads(doc, SERVER_FLAGS, &err);
    cr_assert_null(plain, "jansson itself read %.40s", num);
    cr_assert_eq(json_error_code(&err), json_error_numeric_overflow);
    json_t *root = load(doc);
    cr_expect_eq(number_at(root, "lead", "value"), want, "%.40s read as %g", num,
                 number_at(root, "lead", "value"));
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(root, "lead"), "name")), "x");
    const char *raw = NULL;
    size_t rawlen = 0;
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "value", &raw, &rawlen));
    cr_expect(rawlen == strlen(num) && memcmp(raw, num, rawlen) == 0, "the body's own digits were not found");
    free(doc);
}

Test(jsonlex_loadb, numbers_beyond_a_double_read_as_1e308)
{
    char *nines = digits('9', 400, "");
    char *power = digits('0', 399, "");
    power[0] = '1';
    char *negative = digits('9', 400, "");
    negative[0] = '-';
    expect_saturated(nines, 1e308);
    expect_saturated(power, 1e308);
    expect_saturated(negative, -1e308);
    expect_saturated("1e999", 1e308);
    expect_saturated("2e308", 1e308);
    expect_saturated("-2e308", -1e308);
    expect_saturated("0.5E+99999999999999999999", 1e308);
    expect_saturated("1.7976931348623159e308", 1e308);
    free(nines);
    free(power);
    free(negative);
}

Test(jsonlex_loadb, documents_jansson_reads_are_read_as_jansson_reads_them)
{
    static const char *const docs[] = {"{\"lead\":{\"value\":1.7976931348623157e308}}",
                                       "{\"lead\":{\"value\":1e-999,\"p\":[1,-0,0.5e3]}}",
                                       "[\"1e999\",{\"a\":\"-1e999\"}]", "{\"a\":\"\\\"1e999\",\"b\":null}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t err;
        json_t *plain = json_loads(docs[i], SERVER_FLAGS, &err);
        cr_assert_not_null(plain, "%s", docs[i]);
        cr_expect(json_equal(load(docs[i]), plain), "%s read differently", docs[i]);
        json_decref(plain);
    }
    cr_expect_eq(number_at(load(docs[0]), "lead", "value"), DBL_MAX);
}

Test(jsonlex_loadb, only_numbers_change_never_strings_or_other_numbers)
{
    json_t *root =
        load("{\"s\":\"1e999\",\"t\":\"\\\"9e999\\\\\",\"a\":[1e999,-1e999,12,1e-999,{\"n\":1e400}]}");
    cr_expect_str_eq(json_string_value(json_object_get(root, "s")), "1e999");
    cr_expect_str_eq(json_string_value(json_object_get(root, "t")), "\"9e999\\");
    json_t *a = json_object_get(root, "a");
    cr_assert_eq(json_array_size(a), 5);
    cr_expect_eq(json_number_value(json_array_get(a, 0)), 1e308);
    cr_expect_eq(json_number_value(json_array_get(a, 1)), -1e308);
    cr_expect_eq(json_number_value(json_array_get(a, 2)), 12);
    cr_expect_eq(json_number_value(json_array_get(a, 3)), 0);
    cr_expect_eq(json_number_value(json_object_get(json_array_get(a, 4), "n")), 1e308);
}

Test(jsonlex_loadb, a_document_wrong_beyond_its_numbers_is_still_refused_where_it_is_wrong)
{
    /* Each is refused by jansson as an overflow first; its real fault
     * comes after. The same text with an ordinary number in place says
     * where: the same place. */
    static const char *const bad[][2] = {
        {"{\"v\":1e999,}", "{\"v\":1e300,}"},   {"{\"v\":1e999", "{\"v\":1e300"},
        {"{\"v\":1e999.5}", "{\"v\":1e300.5}"}, {"[1e999, 01]", "[1e300, 01]"},
        {"[1e999 2e999]", "[1e300 2e300]"},     {"[1e999,\"\\ud800\"]", "[1e300,\"\\ud800\"]"},
        {"[1e999,1e999", "[1e300,1e300"},       {"{\"a\":1e999,\"a\":2}", "{\"a\":1e300,\"a\":2}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t err, want;
        json_t *root = jsonlex_loadb(bad[i][0], strlen(bad[i][0]), SERVER_FLAGS, &err);
        cr_expect_null(root, "%s was accepted", bad[i][0]);
        json_decref(root);
        cr_assert_null(json_loads(bad[i][1], SERVER_FLAGS, &want));
        cr_expect_eq(err.position, want.position, "%s: error at %d, want %d (%s)", bad[i][0], err.position,
                     want.position, err.text);
        cr_expect_neq(json_error_code(&err), json_error_numeric_overflow, "%s: %s", bad[i][0], err.text);
    }
}

Test(jsonlex_loadb, integers_beyond_json_int_t_without_decode_int_as_real)
{
    const char *doc = "[9223372036854775807,9223372036854775808,-9223372036854775809]";
    json_error_t err;
    json_decref(root_);
    root_ = jsonlex_loadb(doc, strlen(doc), 0, &err);
    cr_assert_not_null(root_, "%s", err.text);
    cr_expect(json_is_integer(json_array_get(root_, 0)));
    cr_expect_eq(json_integer_value(json_array_get(root_, 0)), 9223372036854775807LL);
    cr_expect_eq(json_number_value(json_array_get(root_, 1)), 1e308);
    cr_expect_eq(json_number_value(json_array_get(root_, 2)), -1e308);
}

Test(jsonlex_loadb, other_errors_and_a_null_error_pointer)
{
    json_error_t err;
    cr_expect_null(jsonlex_loadb("", 0, SERVER_FLAGS, &err));
    cr_expect_null(jsonlex_loadb("{\"a\":", 5, SERVER_FLAGS, &err));
    cr_expect_null(jsonlex_loadb("[1e999,", 7, SERVER_FLAGS, NULL));
    root_ = jsonlex_loadb("[1e999]", 7, SERVER_FLAGS, NULL);
    cr_expect_not_null(root_);
    /* A fraction needs a digit after its '.', however long the number. */
    char *dot = digits('9', 410, ".]");
    memcpy(dot, "[1e999,", 7);
    cr_expect_null(jsonlex_loadb(dot, strlen(dot), SERVER_FLAGS, &err), "a bare '.' was accepted");
    free(dot);
    /* Only len bytes are read: what follows is not part of the document. */
    json_t *cut = jsonlex_loadb("[1e999]xyz", 7, SERVER_FLAGS, &err);
    cr_expect_not_null(cut, "%s", err.text);
    json_decref(cut);
}

Test(jsonlex_number_at, finds_the_text_of_a_nested_member)
{
    const char *doc =
        "{ \"x\" : [1, {\"lead\": 2}], \"lead\" : {\"name\":\"v\\\"alue\", \"value\" : 12.50e0 , "
        "\"p\":-3}}";
    const char *raw = NULL;
    size_t n = 0;
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "value", &raw, &n));
    cr_expect(n == 7 && memcmp(raw, "12.50e0", 7) == 0, "found %.*s", (int)n, raw);
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "p", &raw, &n));
    cr_expect(n == 2 && memcmp(raw, "-3", 2) == 0, "found %.*s", (int)n, raw);
    cr_expect_not(jsonlex_number_at(doc, strlen(doc), "lead", "name", &raw, &n));
    cr_expect_not(jsonlex_number_at(doc, strlen(doc), "lead", "missing", &raw, &n));
    cr_expect_not(jsonlex_number_at(doc, strlen(doc), "x", "lead", &raw, &n));
}

Test(jsonlex_number_at, keys_are_matched_with_their_escapes_decoded)
{
    /* "le\u0061d" and "v\u0061lue" are "lead" and "value" to jansson: the
     * exact digits must be found whatever spelling the client chose. */
    const char *doc =
        "{\"le\\u0061d\":{\"name\":\"x\",\"v\\u0061lue\":0.0100000000000000001,"
        "\"prob\\u0061bility\":40.0000000000000001,\"\\u00e9t\\u00e9\":7,\"\\ud83d\\ude00\":8}}";
    const char *raw = NULL;
    size_t n = 0;
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "value", &raw, &n));
    cr_expect(n == 21 && memcmp(raw, "0.0100000000000000001", 21) == 0, "found %.*s", (int)n, raw);
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "probability", &raw, &n));
    cr_expect(n == 19 && memcmp(raw, "40.0000000000000001", 19) == 0, "found %.*s", (int)n, raw);
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "\xc3\xa9t\xc3\xa9", &raw, &n), "two-byte UTF-8");
    cr_expect(n == 1 && raw[0] == '7');
    cr_assert(jsonlex_number_at(doc, strlen(doc), "lead", "\xf0\x9f\x98\x80", &raw, &n), "a surrogate pair");
    cr_expect(n == 1 && raw[0] == '8');
    cr_expect_not(jsonlex_number_at(doc, strlen(doc), "lead", "valu", &raw, &n), "no prefix match");
    cr_expect_not(jsonlex_number_at(doc, strlen(doc), "lead", "values", &raw, &n), "no longer match");
}

Test(jsonlex_elements_at, each_element_in_one_pass)
{
    static const char doc[] =
        " { \"x\": [1], \"ops\" : [ {\"a\": [1, {\"b\": \"]\"}]} ,2.50 , \"s,t\",[] ] }";
    jsonlex_span_t s[8];
    size_t n = jsonlex_elements_at(doc, strlen(doc), "ops", s, 8);
    cr_assert_eq(n, 4);
    static const char *const want[] = {"{\"a\": [1, {\"b\": \"]\"}]}", "2.50", "\"s,t\"", "[]"};
    for (size_t i = 0; i < n; i++)
        cr_expect(s[i].len == strlen(want[i]) && memcmp(s[i].p, want[i], s[i].len) == 0, "element %zu: %.*s",
                  i, (int)s[i].len, s[i].p);
    cr_expect_eq(jsonlex_elements_at(doc, strlen(doc), "ops", s, 2), 2, "at most max");
    cr_expect_eq(jsonlex_elements_at(doc, strlen(doc), "none", s, 8), 0);
    static const char empty[] = "{\"ops\": []}", notarray[] = "{\"ops\": {\"a\": 1}}";
    cr_expect_eq(jsonlex_elements_at(empty, strlen(empty), "ops", s, 8), 0);
    cr_expect_eq(jsonlex_elements_at(notarray, strlen(notarray), "ops", s, 8), 0);
}
