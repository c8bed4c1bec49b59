/*
 * test_etag.c: entity tags and the If-Match / If-None-Match lists
 * (src/api/etag.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api/etag.h"

#define M(list, tag, weak) api_etag_match(list, strlen(list), tag, weak)

Test(etag, is_a_quoted_digest_of_the_body)
{
    char a[API_ETAG_MAX], b[API_ETAG_MAX], c[API_ETAG_MAX];
    api_etag_of("{\"data\":1}", 10, a);
    api_etag_of("{\"data\":1}", 10, b);
    api_etag_of("{\"data\":2}", 10, c);
    cr_expect_eq(strlen(a), 34u);
    cr_expect(a[0] == '"' && a[33] == '"');
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c);
}

Test(etag, is_the_first_half_of_the_sha256_in_hex)
{
    /* The SHA-256 of "abc" (FIPS 180-2's example): a tag must not change
     * from one build to the next, clients keep them. */
    char a[API_ETAG_MAX];
    api_etag_of("abc", 3, a);
    cr_expect_str_eq(a, "\"ba7816bf8f01cfea414140de5dae2223\"");
    cr_expect_not_null(api_sha256());
}

Test(etag, lists_match_by_strong_or_weak_comparison)
{
    const char *t = "\"abc\"";
    cr_expect(M("\"abc\"", t, false));
    cr_expect(M("  \"x\" ,\"abc\"  ", t, false));
    cr_expect(M("\"x\",,\"abc\"", t, false));
    cr_expect(M("*", t, false));
    cr_expect(M(" * ", t, true));
    cr_expect(!M("W/\"abc\"", t, false), "a weak tag never matches strongly");
    cr_expect(M("W/\"abc\"", t, true));
    cr_expect(!M("\"abcd\"", t, true));
    cr_expect(!M("\"ab\"", t, true));
}

Test(etag, what_is_not_a_list_matches_nothing)
{
    const char *t = "\"abc\"";
    const char *bad[] = {"",           " ",        "abc",      "\"abc", "\"abc\" junk", "\"abc\";\"x\"",
                         "*, \"abc\"", "\"a\"b\"", "w/\"abc\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!M(bad[i], t, true), "%s", bad[i]);
}
