/*
 * jsonlex.h: finds the exact text of a number inside a JSON document.
 *
 * jansson hands numbers over as doubles, which cannot tell 0.1 from
 * 0.10000000000000000001. Money must be exact, so the codec reads the
 * number's own characters from the body instead.
 */
#ifndef CRMD_MODEL_JSONLEX_H
#define CRMD_MODEL_JSONLEX_H

#include <stdbool.h>
#include <stddef.h>

/* Looks in doc[0..len), which must be valid JSON (already parsed), for the
 * member k2 of the member k1 of the top-level object, and, when that value
 * is a number, points *out and *outlen at its text. Keys are compared as
 * written; a key spelled with escapes is not matched. Returns false when
 * there is no such number. */
bool jsonlex_number_at(const char *doc, size_t len, const char *k1, const char *k2, const char **out,
                       size_t *outlen);

#endif
