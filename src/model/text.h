/*
 * text.h: the rules every client string goes through.
 */
#ifndef CRMD_MODEL_TEXT_H
#define CRMD_MODEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
