/*
 * codec.h: leads and follows to and from JSON, with every validation rule
 * of the contract (see ../shared/spec/contract-notes.md, "Attributes").
 *
 * Decoding reads a jansson tree; the strings of the resulting patch point
 * into that tree and stay valid while it lives. Encoding writes straight
 * into a jw_t.
 */
#ifndef CRMD_MODEL_CODEC_H
#define CRMD_MODEL_CODEC_H

#include <jansson.h>

#include "model/jsonw.h"
#include "model/record.h"

/* One problem found in a request; detail and pointer are NUL-terminated
 * and truncated to fit (at a UTF-8 boundary). */
typedef struct verr {
    const char *code; /* "validation_error" or "unknown_attribute" */
    char detail[192];
    char pointer[96];   /* source.pointer, e.g. "/lead/name"; "" if none */
    char parameter[32]; /* source.parameter, e.g. "records"; "" if none */
} verr_t;

#define VERRS_MAX 24
typedef struct verrs {
    int n;
    int dropped; /* problems found beyond VERRS_MAX */
    verr_t e[VERRS_MAX];
} verrs_t;

/* Records a problem. fmt is printf-style and builds the detail. */
void verrs_add(verrs_t *errs, const char *code, const char *pointer, const char *parameter, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

/* Writes the JSON pointer "/wrapper/key" (or "/key" when wrapper is NULL)
 * with RFC 6901 escapes (~0, ~1) into out (n bytes), cut at a character
 * when it does not fit. key is a client's member name of keylen bytes. */
void verrs_pointer(char *out, size_t n, const char *wrapper, const char *key, size_t keylen);

/* Decodes the request body root ({"lead": {...}}) into a patch. With
 * creating true, the name is required and unnamed attributes take their
 * defaults (stage new, status active); every field bit is then set.
 * Problems go into errs (all of them, not only the first); the patch is
 * meaningful only when errs->n is 0 afterwards. */
void lead_decode(const json_t *root, bool creating, lead_patch_t *out, verrs_t *errs);

/* The same, given also the body text root was parsed from: a value sent as
 * a JSON number is then read from its own digits, exactly, rather than from
 * jansson's double. */
void lead_decode_body(const json_t *root, const char *body, size_t len, bool creating, lead_patch_t *out,
                      verrs_t *errs);

/* Decodes one attribute of a lead given as text (a CSV cell: key is its
 * attribute name) into out, with the rules of the JSON body: text is
 * trimmed and checked, value is a decimal, probability an integer 0..100,
 * an id a UUID (empty text leaves an id unset). A problem goes into errs
 * with pointer as its source. out's texts point into s. */
void lead_decode_cell(const char *key, const char *s, size_t len, lead_patch_t *out, const char *pointer,
                      verrs_t *errs);

/* The same for {"follow": {...}}. A status of "overdue" is decoded as
 * FOLLOW_OVERDUE with its bit set: the caller decides, knowing the stored
 * follow, whether that is allowed (it is only on a follow that already
 * reads overdue, where it means "leave the status as it is"). */
void follow_decode(const json_t *root, bool creating, follow_patch_t *out, verrs_t *errs);

/* Writes a lead resource object ({"id":...,"type":"lead","attributes":...,
 * "relationships":...}). */
void lead_encode(jw_t *w, const lead_t *lead);
/* The same for a lead in the trash: its attributes end with deleted_at
 * (ms since the epoch). */
void lead_encode_trashed(jw_t *w, const lead_t *lead, int64_t deleted_at);

/* Writes a follow resource object, with relationships.lead; now decides
 * whether it reads overdue. */
void follow_encode(jw_t *w, const follow_t *follow, int64_t now);

/* Writes {"attribute": [before, after], ...}: the attributes whose
 * values, as the resource renders them, differ between before and after
 * (updated_at never counts); with before NULL, every attribute of after
 * that is not null, as [null, value]. A follow's status is the one it
 * reads at now (a pending follow past its due date: overdue). */
void lead_encode_changes(jw_t *w, const lead_t *before, const lead_t *after);
void follow_encode_changes(jw_t *w, const follow_t *before, const follow_t *after, int64_t now);

/* Writes a lead_change resource: changes is the text lead_encode_changes
 * (or follow_encode_changes) wrote, kept as it is; an empty actor or
 * follow_id is null. */
void change_encode(jw_t *w, const char *id, const char *action, text_ref_t changes, const char *actor,
                   int64_t at, const char *follow_id);

/* Names of enum values, for encoding and for the store's logs. */
const char *lead_stage_name(int stage);
const char *lead_status_name(int status);
const char *follow_status_name(int status);

#endif
