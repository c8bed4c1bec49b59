/*
 * text.h: the rules every client string goes through.
 */
#ifndef CRMD_MODEL_TEXT_H
#define CRMD_MODEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum text_rc {
    TEXT_OK = 0,
    TEXT_BAD_UTF8, /* not well-formed UTF-8 (overlong, surrogate, > U+10FFFF) */
    TEXT_CONTROL   /* holds a control character (see text_clean) */
};

/* Cleans s[0..len) (UTF-8, may hold NUL bytes) without copying: *out and
 * *out_len receive the span left after trimming leading and trailing Unicode
 * White_Space (U+0009..000D, 0020, 0085, 00A0, 1680, 2000..200A, 2028, 2029,
 * 202F, 205F, 3000), and *codepoints its length in code points. Then any
 * control character left (U+0000..001F, U+007F..009F) is TEXT_CONTROL,
 * except newline, carriage return and tab when allow_newlines is true.
 * Returns a text_rc. */
int text_clean(const char *s, size_t len, bool allow_newlines, const char **out, size_t *out_len,
               size_t *codepoints);

/* Whether s[0..len) is well-formed UTF-8 throughout (NUL bytes allowed). */
bool text_utf8_valid(const char *s, size_t len);

/* Writes code point c (below 0x110000) as UTF-8 into out; its length,
 * 1 to 4. */
size_t text_utf8_encode(uint32_t c, char out[4]);

/* Unicode simple case folding (CaseFolding.txt, statuses C and S: one code
 * point to one, every script Unicode folds, Latin-1, Latin Extended,
 * Greek and Cyrillic included; the table is model/casefold.h). Search
 * terms and the stored keys they are matched and sorted against go through
 * this one function, so both databases compare the same bytes whatever
 * their locale. */
uint32_t text_fold_cp(uint32_t c);

/* A folded text takes at most this many bytes for len bytes of input: a
 * two-byte character may fold to a three-byte one (U+023A to U+2C65). */
#define TEXT_FOLD_MAX(len) ((len) / 2 * 3 + (len) % 2)

/* Folds the UTF-8 text s[0..len) into out, which holds outsz bytes, and
 * returns the length written (no NUL is added). A byte that does not start
 * a well-formed sequence is copied as it is. Returns (size_t)-1, with out
 * partly written, when outsz is too small; TEXT_FOLD_MAX(len) always
 * suffices. */
size_t text_fold(const char *s, size_t len, char *out, size_t outsz);

#endif
