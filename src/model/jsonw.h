/*
 * jsonw.h: a small JSON writer into a growable buffer.
 *
 * Responses are written directly rather than built as jansson trees: it is
 * faster, and it keeps exact control of number formatting (money). The
 * buffer is reused across requests by its owner; jw_reset empties it.
 * Strings given to jw_str must be valid UTF-8 (all stored text is checked
 * on the way in); they are escaped as JSON requires.
 */
#ifndef CRMD_MODEL_JSONW_H
#define CRMD_MODEL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jw {
    char *buf;
    size_t len, cap;
    bool oom; /* an allocation failed: the content is incomplete */
} jw_t;

void jw_reset(jw_t *w);
void jw_free(jw_t *w);
void jw_raw(jw_t *w, const char *s, size_t n);
/* jw_lit appends a string literal without escaping. */
#define jw_lit(w, s) jw_raw((w), (s), sizeof(s) - 1)
/* Appends s[0..n) as a quoted, escaped JSON string. */
void jw_str(jw_t *w, const char *s, size_t n);
/* Appends a NUL-terminated string, or null when s is NULL. */
void jw_cstr(jw_t *w, const char *s);
void jw_int(jw_t *w, int64_t v);

#endif
