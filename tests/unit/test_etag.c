/*
 * test_etag.c: entity tags and the If-Match / If-None-Match lists
 * (src/api/etag.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* The cursors' MAC: RFC 4231's second case, then OpenSSL's HMAC() for
 * every key length up to a block and messages across block edges; a key
 * longer than a block is refused, not silently cut. */
Test(etag, hmac_sha256_is_rfc_2104s)
{
    unsigned char out[32], want[EVP_MAX_MD_SIZE];
    char hex[65] = {0};
    const char *msg = "what do ya want for nothing?";
    cr_assert(
        api_hmac_sha256((const unsigned char *)"Jefe", 4, (const unsigned char *)msg, strlen(msg), out));
    api_hex(out, 32, hex);
    cr_expect_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char key[65], data[300];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 13 + 5);
    for (size_t k = 0; k <= 64; k += 8) {
        for (size_t n = 0; n < sizeof data; n += 37) {
            unsigned int wl = 0;
            cr_assert(HMAC(EVP_sha256(), key, (int)k, data, n, want, &wl) != NULL);
            cr_assert(api_hmac_sha256(key, k, data, n, out));
            cr_expect(wl == 32 && memcmp(out, want, 32) == 0, "key %zu bytes, message %zu", k, n);
        }
    }
    cr_expect(!api_hmac_sha256(key, 65, data, 10, out));
}
