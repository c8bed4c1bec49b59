/*
 * codec_int.h: the pieces of codec.c that other decoders of src/model/
 * reuse (model/webhook.c), so that every resource reads its body by the
 * same rules: the wrapper object, unknown members, text cleaning and its
 * messages. Nothing outside src/model/ includes it.
 */
#ifndef CRMD_MODEL_CODEC_INT_H
#define CRMD_MODEL_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "model/codec.h"

/* The context of one attribute while decoding. */
typedef struct attr {
    const json_t *v;
    const char *label; /* "Name" */
    char pointer[96];  /* "/lead/name" */
    verrs_t *errs;
} attr_t;

/* Decodes the attribute a named key into the decoder's state (ctx);
 * returns false when key is not one of its attributes. */
typedef bool (*attr_fn)(attr_t *a, const char *key, void *ctx);

/* Records a validation_error on a: fmt takes the label, then arg. */
void codec_attr_error(attr_t *a, const char *fmt, const char *arg);

/* Reads a text attribute: trimmed, no control characters (but newlines
 * when allowed), at most max_chars code points; null is unset when
 * nullable, else (like an all-blank string) "can't be blank". */
bool codec_text(attr_t *a, bool nullable, bool allow_newlines, size_t max_chars, text_ref_t *out);

/* Finds root[name], which must be the body's only member and an object,
 * and runs one on each of its members, recording the unknown ones and
 * checking the read-only ones (unique_id, created_at, updated_at).
 * Returns the wrapper, or NULL (the problem recorded). */
const json_t *codec_members(const json_t *root, const char *name, verrs_t *errs, attr_fn one, void *ctx);

/* Writes ms as a quoted timestamp ("2026-01-05T08:00:00.000Z"). */
void codec_put_time(jw_t *w, int64_t ms);

#endif
