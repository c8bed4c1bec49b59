/*
 * jsonlex.h: finds the exact text of a number inside a JSON document, and
 * parses documents whose numbers jansson cannot hold.
 *
 * jansson hands numbers over as doubles, which cannot tell 0.1 from
 * 0.10000000000000000001. Money must be exact, so the codec reads the
 * number's own characters from the body instead.
 */
#ifndef CRMD_MODEL_JSONLEX_H
#define CRMD_MODEL_JSONLEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Looks in doc[0..len), which must be valid JSON (already parsed), for the
 * member k2 of the member k1 of the top-level object, and, when that value
 * is a number, points *out and *outlen at its text. Keys are compared as
 * jansson reads them, escapes decoded ("v\u0061lue" is "value"). Returns false when
 * there is no such number. */
bool jsonlex_number_at(const char *doc, size_t len, const char *k1, const char *k2, const char **out,
                       size_t *outlen);

/* A piece of a document: doc's bytes [p, p + len). */
typedef struct jsonlex_span {
    const char *p;
    size_t len;
} jsonlex_span_t;

/* Looks in doc[0..len), which must be valid JSON (already parsed), for
 * the array that is the member k1 of the top-level object, and points
 * out[0..) at the text of its first max elements, in one pass (a batch's
 * operations, whose numbers jsonlex_number_at then finds). Returns how
 * many it found: 0 when there is no such array. */
size_t jsonlex_elements_at(const char *doc, size_t len, const char *k1, jsonlex_span_t *out, size_t max);

/* Parses doc[0..len) as json_loadb(doc, len, flags, err) does, except for
 * numbers too large for jansson (beyond a double's range; without
 * JSON_DECODE_INT_AS_REAL, integers beyond json_int_t's): they are valid
 * JSON, which jansson refuses with "real number overflow", so here they
 * read as the real 1e308 (-1e308 when negative). A caller that needs such
 * a number's value reads its text from doc with jsonlex_number_at, as the
 * codec does, and so can answer that the value is out of range rather than
 * that the body is not JSON. Error positions in *err are those of doc.
 * Returns the tree, which the caller json_decref()s, or NULL. */
json_t *jsonlex_loadb(const char *doc, size_t len, size_t flags, json_error_t *err);

/* The flags request bodies are parsed with: duplicate keys refused, every
 * number as a real (the codec reads exact digits from the text), NUL in
 * strings kept (the codec refuses it with a pointer), and any value at the
 * top, so that a body that is JSON but not an object is the codec's 422
 * (missing wrapper), not a 400. */
#define JSONLEX_BODY_FLAGS                                                                                   \
    (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL | JSON_DECODE_ANY)

#endif
