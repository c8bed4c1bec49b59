/*
 * test_text.c: UTF-8 validation, trimming and control characters.
 *
 * Inputs are copied into heap buffers of exactly their length, so that a
 * read past len shows up under AddressSanitizer.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/text.h"

struct result {
    int rc;
    char *span; /* the cleaned span, NUL-terminated copy */
    size_t offset;
    size_t len;
    size_t cps;
};

static struct result clean_n(const char *s, size_t len, bool allow_newlines)
{
    char *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    memcpy(buf, s, len);
    const char *out = NULL;
    struct result r = {0};
    r.len = r.cps = 12345;
    r.rc = text_clean(buf, len, allow_newlines, &out, &r.len, &r.cps);
    cr_assert_not_null(out);
    cr_assert(out >= buf && out + r.len <= buf + len, "span outside the input");
    r.offset = (size_t)(out - buf);
    r.span = malloc(r.len + 1);
    cr_assert_not_null(r.span);
    memcpy(r.span, out, r.len);
    r.span[r.len] = '\0';
    free(buf);
    return r;
}

static struct result clean(const char *s, bool allow_newlines)
{
    return clean_n(s, strlen(s), allow_newlines);
}

static void expect_clean(const char *s, bool allow_newlines, const char *want, size_t want_cps)
{
    struct result r = clean(s, allow_newlines);
    cr_expect_eq(r.rc, TEXT_OK, "\"%s\": rc %d", s, r.rc);
    cr_expect_str_eq(r.span, want, "\"%s\"", s);
    cr_expect_eq(r.cps, want_cps, "\"%s\": %zu code points", s, r.cps);
    free(r.span);
}

static void expect_rc_n(const char *s, size_t len, bool allow_newlines, int want)
{
    struct result r = clean_n(s, len, allow_newlines);
    cr_expect_eq(r.rc, want, "input of %zu bytes: rc %d, want %d", len, r.rc, want);
    if (want != TEXT_OK) {
        cr_expect_eq(r.len, 0, "span on error");
        cr_expect_eq(r.cps, 0, "count on error");
    }
    free(r.span);
}

static void expect_rc(const char *s, bool allow_newlines, int want)
{
    expect_rc_n(s, strlen(s), allow_newlines, want);
}

Test(text_clean, plain)
{
    expect_clean("Ada Lovelace", false, "Ada Lovelace", 12);
    expect_clean("x", false, "x", 1);
    expect_clean("h\xc3\xa9llo", false, "h\xc3\xa9llo", 5);
    expect_clean("\xf0\x9f\x98\x80", false, "\xf0\x9f\x98\x80", 1);
    expect_clean("\xe6\x97\xa5\xe6\x9c\xac", false, "\xe6\x97\xa5\xe6\x9c\xac", 2);
}

Test(text_clean, empty_and_blank)
{
    expect_clean("", false, "", 0);
    expect_clean("   ", false, "", 0);
    expect_clean(" \t\n\r\v\f\xc2\x85\xc2\xa0\xe3\x80\x80", false, "", 0);
    const char *out = "x";
    size_t out_len = 9, cps = 9;
    cr_expect_eq(text_clean(NULL, 0, false, &out, &out_len, &cps), TEXT_OK);
    cr_expect_eq(out_len, 0);
    cr_expect_eq(cps, 0);
}

Test(text_clean, trims_ascii_white_space_first)
{
    expect_clean("  name\t\n", false, "name", 4);
    expect_clean("\r\n\tname \v\f", false, "name", 4);
    expect_clean("  two words  ", false, "two words", 9);
    struct result r = clean("  name  ", false);
    cr_expect_eq(r.offset, 2);
    free(r.span);
}

Test(text_clean, trims_unicode_white_space)
{
    static const char *const ws[] = {
        "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x85", "\xe2\x80\x8a",
        "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
    };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s%sab%s%s", ws[i], ws[i], ws[i], ws[i]);
        expect_clean(s, false, "ab", 2);
    }
}

Test(text_clean, non_white_space_is_kept)
{
    /* Zero-width space, BOM and the like are not White_Space. */
    expect_clean("\xe2\x80\x8b"
                 "a",
                 false,
                 "\xe2\x80\x8b"
                 "a",
                 2);
    expect_clean("a\xef\xbb\xbf", false, "a\xef\xbb\xbf", 2);
    expect_clean("\xe2\x80\x8c", false, "\xe2\x80\x8c", 1);
}

Test(text_clean, inner_white_space_is_kept)
{
    expect_clean("a\xc2\xa0"
                 "b",
                 false,
                 "a\xc2\xa0"
                 "b",
                 3);
    expect_clean("a\xe3\x80\x80"
                 "b",
                 false,
                 "a\xe3\x80\x80"
                 "b",
                 3);
}

Test(text_clean, controls)
{
    expect_rc("a\tb", false, TEXT_CONTROL);
    expect_rc("a\nb", false, TEXT_CONTROL);
    expect_rc("a\rb", false, TEXT_CONTROL);
    expect_rc("a\x01"
              "b",
              false, TEXT_CONTROL);
    expect_rc("a\x1f", false, TEXT_CONTROL);
    expect_rc("\x1b[31m", false, TEXT_CONTROL);
    expect_rc("a\x7f"
              "b",
              false, TEXT_CONTROL);
    expect_rc("a\xc2\x80"
              "b",
              false, TEXT_CONTROL);
    expect_rc("a\xc2\x9f"
              "b",
              false, TEXT_CONTROL);
    /* U+0085 is white space at the ends but a C1 control inside. */
    expect_clean("\xc2\x85"
                 "ab\xc2\x85",
                 false, "ab", 2);
    expect_rc("a\xc2\x85"
              "b",
              false, TEXT_CONTROL);
    expect_rc("a\xc2\x85"
              "b",
              true, TEXT_CONTROL);
    /* U+00A0 is just past the C1 block. */
    expect_clean("a\xc2\xa0"
                 "b",
                 false,
                 "a\xc2\xa0"
                 "b",
                 3);
}

Test(text_clean, newlines_when_allowed)
{
    expect_clean("line one\nline two\r\n\tindented", true, "line one\nline two\r\n\tindented", 28);
    expect_clean("\n\n a\nb \n\n", true, "a\nb", 3);
    expect_rc("a\vb", true, TEXT_CONTROL);
    expect_rc("a\fb", true, TEXT_CONTROL);
    expect_rc("a\x7f"
              "b",
              true, TEXT_CONTROL);
    expect_rc_n("a\0b", 3, true, TEXT_CONTROL);
}

Test(text_clean, nul_bytes)
{
    expect_rc_n("a\0b", 3, false, TEXT_CONTROL);
    expect_rc_n("\0", 1, false, TEXT_CONTROL);
    expect_rc_n("ab\0", 3, false, TEXT_CONTROL);
    expect_rc_n(" \0 ", 3, true, TEXT_CONTROL);
    /* A NUL past len is not looked at. */
    expect_rc_n("ab\0", 2, false, TEXT_OK);
}

Test(text_clean, malformed_utf8)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\x80", 1}, /* stray continuation */
        {"a\xbf"
         "b",
         3},                             /* stray continuation */
        {"\xc0\x80", 2},                 /* overlong NUL */
        {"\xc1\xbf", 2},                 /* overlong U+007F */
        {"\xe0\x80\x80", 3},             /* overlong */
        {"\xe0\x9f\xbf", 3},             /* overlong U+07FF */
        {"\xed\xa0\x80", 3},             /* U+D800 */
        {"\xed\xbf\xbf", 3},             /* U+DFFF */
        {"\xed\xa0\xbd\xed\xb8\x80", 6}, /* CESU-8 surrogate pair */
        {"\xf0\x80\x80\x80", 4},         /* overlong */
        {"\xf0\x8f\xbf\xbf", 4},         /* overlong U+FFFF */
        {"\xf4\x90\x80\x80", 4},         /* U+110000 */
        {"\xf5\x80\x80\x80", 4},
        {"\xf8\x88\x80\x80\x80", 5}, /* old 5-byte form */
        {"\xfe", 1},
        {"\xff", 1},
        {"\xc3", 1},         /* truncated */
        {"a\xe2\x82", 3},    /* truncated */
        {"\xf0\x9f\x98", 3}, /* truncated */
        {"\xc3\x41", 2},     /* lead then ASCII */
        {"\xe2\x28\xa1", 3},
        {"\xe2\x82\x28", 3},
        {"\xf0\x9f\x28\x80", 4},
        {"\xf0\x9f\x98\x28", 4},
        {"\xc3\xa9\xa9", 3}, /* one continuation too many */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_rc_n(bad[i].s, bad[i].len, false, TEXT_BAD_UTF8);
}

Test(text_clean, bad_utf8_wins_everywhere)
{
    /* In the part trimming would drop, and over a control character. */
    expect_rc("name \xff", false, TEXT_BAD_UTF8);
    expect_rc("\xff name", false, TEXT_BAD_UTF8);
    expect_rc("\x01\xff", false, TEXT_BAD_UTF8);
    /* A valid string cut in the middle of a sequence by len. */
    expect_rc_n("h\xc3\xa9", 2, false, TEXT_BAD_UTF8);
    expect_rc_n("\xf0\x9f\x98\x80", 3, false, TEXT_BAD_UTF8);
}

Test(text_clean, boundary_code_points)
{
    expect_clean("\x7e", false, "\x7e", 1);                         /* U+007E */
    expect_clean("\xdf\xbf", false, "\xdf\xbf", 1);                 /* U+07FF */
    expect_clean("\xe0\xa0\x80", false, "\xe0\xa0\x80", 1);         /* U+0800 */
    expect_clean("\xed\x9f\xbf", false, "\xed\x9f\xbf", 1);         /* U+D7FF */
    expect_clean("\xee\x80\x80", false, "\xee\x80\x80", 1);         /* U+E000 */
    expect_clean("\xef\xbf\xbf", false, "\xef\xbf\xbf", 1);         /* U+FFFF */
    expect_clean("\xf0\x90\x80\x80", false, "\xf0\x90\x80\x80", 1); /* U+10000 */
    expect_clean("\xf4\x8f\xbf\xbf", false, "\xf4\x8f\xbf\xbf", 1); /* U+10FFFF */
}

/* An independent, arithmetic validator to compare against: decode by the
 * count of leading one bits, then reject overlongs by the code point's size,
 * surrogates and values past U+10FFFF. */
static bool ref_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned b = s[i];
        size_t n = b < 0x80             ? 1
                   : (b & 0xE0) == 0xC0 ? 2
                   : (b & 0xF0) == 0xE0 ? 3
                   : (b & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (n == 0 || i + n > len) return false;
        uint32_t c = n == 1 ? b : b & (0x7F >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = c << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

static void check_against_ref(const unsigned char *s, size_t len)
{
    const char *out;
    size_t out_len, cps;
    int rc = text_clean((const char *)s, len, true, &out, &out_len, &cps);
    bool valid = ref_valid(s, len);
    if (valid != (rc != TEXT_BAD_UTF8))
        cr_assert_fail("bytes %02x %02x %02x %02x (len %zu): rc %d, reference says %s", len > 0 ? s[0] : 0,
                       len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0, len, rc,
                       valid ? "valid" : "invalid");
}

Test(text_clean, every_short_sequence_matches_reference)
{
    /* Every sequence of up to three bytes, and four-byte sequences for every
     * lead and second byte with a spread of later bytes. */
    unsigned char *b = malloc(4);
    cr_assert_not_null(b);
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        check_against_ref(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            check_against_ref(b, 2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                check_against_ref(b, 3);
            }
            static const unsigned char later[] = {0x00, 0x41, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
            for (size_t p = 0; p < sizeof later; p++) {
                for (size_t q = 0; q < sizeof later; q++) {
                    b[2] = later[p];
                    b[3] = later[q];
                    check_against_ref(b, 4);
                }
            }
        }
    }
    free(b);
}

/* Encodes c as UTF-8 without any validity checks. */
static size_t encode(uint32_t c, unsigned char *out)
{
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | c >> 6);
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | c >> 12);
        out[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | c >> 18);
    out[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

Test(text_clean, every_code_point)
{
    /* "x" + c + "y": surrogates are malformed, controls are controls, and
     * everything else is one code point of three. */
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        unsigned char s[6];
        s[0] = 'x';
        size_t n = encode(c, s + 1);
        s[1 + n] = 'y';
        const char *out;
        size_t out_len, cps;
        int rc = text_clean((const char *)s, n + 2, false, &out, &out_len, &cps);
        int want = (c >= 0xD800 && c <= 0xDFFF)             ? TEXT_BAD_UTF8
                   : (c < 0x20 || (c >= 0x7F && c <= 0x9F)) ? TEXT_CONTROL
                                                            : TEXT_OK;
        if (rc != want) cr_assert_fail("U+%04X: rc %d, want %d", (unsigned)c, rc, want);
        if (rc == TEXT_OK && (cps != 3 || out_len != n + 2))
            cr_assert_fail("U+%04X: %zu code points, %zu bytes", (unsigned)c, cps, out_len);
    }
}

Test(text_clean, random_bytes_match_reference)
{
    /* A fixed-seed generator, so that a failure can be reproduced. Bytes are
     * drawn mostly from the interesting high range. */
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (int round = 0; round < 20000; round++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        size_t len = (size_t)(state >> 59); /* 0..31 */
        unsigned char *s = malloc(len ? len : 1);
        cr_assert_not_null(s);
        for (size_t i = 0; i < len; i++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            unsigned r = (unsigned)(state >> 33);
            s[i] = (unsigned char)(r % 4 == 0 ? 0x20 + r % 0x60 : 0x80 + r % 0x80);
        }
        check_against_ref(s, len);
        free(s);
    }
}

/* --- text_fold ---------------------------------------------------------------- */

static void expect_fold(const char *s, const char *want)
{
    size_t len = strlen(s);
    char *in = malloc(len ? len : 1); /* exactly len: a read past it shows under ASan */
    cr_assert_not_null(in);
    memcpy(in, s, len);
    size_t cap = TEXT_FOLD_MAX(len);
    char *out = malloc(cap ? cap : 1);
    cr_assert_not_null(out);
    size_t n = text_fold(in, len, out, cap);
    cr_assert_neq(n, (size_t)-1, "\"%s\": TEXT_FOLD_MAX is too small", s);
    cr_expect(n == strlen(want) && memcmp(out, want, n) == 0, "fold(\"%s\") = \"%.*s\", want \"%s\"", s,
              (int)n, out, want);
    free(in);
    free(out);
}

Test(text_fold, ascii_folds_only_letters)
{
    expect_fold("", "");
    expect_fold("ACME Corp renewal", "acme corp renewal");
    expect_fold("Hello, World! 123 _[]@`{}", "hello, world! 123 _[]@`{}");
}

Test(text_fold, latin_1_and_latin_extended_a)
{
    expect_fold("ÀÉÎÕÜÇÑ Ø Þ Æ", "àéîõüçñ ø þ æ");
    expect_fold("µ", "μ"); /* MICRO SIGN to GREEK SMALL LETTER MU */
    expect_fold("ß", "ß"); /* full folding would give "ss": simple keeps it */
    expect_fold("ẞ", "ß"); /* LATIN CAPITAL LETTER SHARP S, status S */
    expect_fold("ĀĂĄĆČĎĐĘĚĞĦĲŁŃŇŊŒŘŚŠŤŮŰŽ", "āăąćčďđęěğħĳłńňŋœřśšťůűž");
    expect_fold("ſ", "s"); /* LATIN SMALL LETTER LONG S */
    expect_fold("İ", "İ"); /* only Turkic and full foldings exist */
    expect_fold("ÿŸ", "ÿÿ");
}

Test(text_fold, greek_and_cyrillic)
{
    expect_fold("ΑΒΓΔ ΣΟΦΊΑ ς", "αβγδ σοφία σ"); /* final sigma folds to sigma */
    expect_fold("Ωμέγα", "ωμέγα");
    expect_fold("ΐ", "ΐ"); /* full folding only */
    expect_fold("МОСКВА Ёлка ЇЖАК", "москва ёлка їжак");
    expect_fold("Ѣ Ѳ Ґ", "ѣ ѳ ґ");
}

Test(text_fold, other_scripts_and_sizes_that_change)
{
    expect_fold("K", "k");           /* KELVIN SIGN: three bytes to one */
    expect_fold("Å", "å");           /* ANGSTROM SIGN */
    expect_fold("Ⱥ", "ⱥ");           /* two bytes to three */
    expect_fold("ＡＢＣ", "ａｂｃ"); /* fullwidth */
    expect_fold("Ա Ⴀ", "ա ⴀ");       /* Armenian, Georgian */
    expect_fold("𐐀", "𐐨");           /* Deseret, four bytes */
    expect_fold("日本語 😀", "日本語 😀");
}

Test(text_fold, folding_twice_changes_nothing)
{
    /* Every folded code point is its own folding (CaseFolding's mappings
     * are idempotent), over the whole range. */
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        uint32_t f = text_fold_cp(c);
        if (text_fold_cp(f) != f) cr_assert_fail("U+%04X folds to U+%04X, which folds again", c, f);
    }
}

Test(text_fold, malformed_bytes_go_through_and_small_buffers_fail)
{
    const char bad[] = {'A', (char)0xFF, 'B', (char)0xC3};
    char out[8];
    size_t n = text_fold(bad, sizeof bad, out, sizeof out);
    cr_assert_eq(n, 4);
    cr_expect(out[0] == 'a' && out[1] == (char)0xFF && out[2] == 'b' && out[3] == (char)0xC3);
    cr_expect_eq(text_fold("ABC", 3, out, 2), (size_t)-1);
    cr_expect_eq(text_fold("Ⱥ", 2, out, 2), (size_t)-1);
    cr_expect_eq(text_fold("Ⱥ", 2, out, 3), 3);
}
