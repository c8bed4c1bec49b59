/*
 * fuzz_body.c: request bodies through the codec.
 *
 * The input is a request body. It is parsed exactly as api_body_or_reply does
 * (jsonlex_loadb with JSONLEX_BODY_FLAGS), then decoded four ways (lead and follow, create and
 * update), with lead_decode_body given the body text as leads.c does. The
 * problems found are rendered as the 422 document, and an accepted patch is
 * encoded as the API would return it. Checked:
 *   - every rendered document (errors or resource) is valid JSON and UTF-8;
 *   - a decoded patch holds only what validation promises: clean text within
 *     its limits, canonical lowercase UUIDs, enums in range, a value in
 *     0 <= cents < 10^15, a probability in 0..100, a due date in years
 *     0001..9999;
 *   - the encoded record reads back as what was decoded (name, title, value
 *     to the cent, due date to the millisecond);
 *   - decoding is all-or-nothing: a patch with problems sets no field the
 *     caller could act on (the API never uses it), and creating sets every
 *     field bit.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/respond.h"
#include "common.h"
#include "model/codec.h"
#include "model/decimal.h"
#include "model/jsonlex.h"
#include "model/jsonw.h"
#include "model/text.h"
#include "model/timestamp.h"
#include "model/uuid.h"

#define DECODE_FLAGS JSONLEX_BODY_FLAGS

static jw_t w;

static json_t *parse_rendered(const char *what)
{
    json_error_t err;
    json_t *root = json_loadb(w.buf, w.len, 0, &err);
    FUZZ_CHECK(!w.oom, "%s: out of memory", what);
    FUZZ_CHECK(root != NULL, "%s is not JSON (%s): %.*s", what, err.text, (int)(w.len > 600 ? 600 : w.len),
               w.buf);
    return root;
}

static void check_errors(const verrs_t *errs)
{
    FUZZ_CHECK(errs->n >= 0 && errs->n <= VERRS_MAX, "%d errors", errs->n);
    api_render_errors(&w, errs);
    json_t *root = parse_rendered("the 422 document");
    json_t *list = json_object_get(root, "errors");
    FUZZ_CHECK(json_is_array(list) && json_array_size(list) == (size_t)errs->n,
               "the 422 lists %zu of %d errors", json_array_size(list), errs->n);
    json_decref(root);
    fuzz_check_json_body(422, w.buf, w.len);
}

/* A decoded text must be clean and within max code points. */
static void check_text(const char *what, text_ref_t t, bool nullable, bool newlines, size_t max)
{
    if (t.ptr == NULL) {
        FUZZ_CHECK(nullable, "%s: null accepted", what);
        return;
    }
    const char *o;
    size_t olen, cps;
    int rc = text_clean(t.ptr, t.len, newlines, &o, &olen, &cps);
    FUZZ_CHECK(rc == TEXT_OK && o == t.ptr && olen == t.len, "%s: accepted text is not clean (rc %d)", what,
               rc);
    FUZZ_CHECK(cps <= max, "%s: %zu code points, limit %zu", what, cps, max);
    FUZZ_CHECK(nullable || cps > 0, "%s: blank accepted", what);
}

static void check_uuid(const char *what, const char *id)
{
    if (id[0] == '\0') return;
    char canon[UUID_BUFSZ];
    FUZZ_CHECK(strlen(id) == UUID_STRLEN && uuid_parse(id, UUID_STRLEN, canon) && strcmp(canon, id) == 0,
               "%s: not a canonical UUID: %s", what, id);
}

/* The string member name of the encoded resource's attributes. */
static json_t *attr(json_t *res, const char *name)
{
    json_t *v = json_object_get(json_object_get(res, "attributes"), name);
    FUZZ_CHECK(v != NULL, "the encoded resource lacks %s", name);
    return v;
}

static void check_same_text(const char *what, json_t *v, text_ref_t t)
{
    if (t.ptr == NULL) {
        FUZZ_CHECK(json_is_null(v), "%s: null encoded as something else", what);
        return;
    }
    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == t.len &&
                   memcmp(json_string_value(v), t.ptr, t.len) == 0,
               "%s: encoded text differs from the decoded text", what);
}

/* Returns true (and the patch in *out) when the body decoded clean. */
static bool lead(const json_t *root, const char *body, size_t len, bool creating, lead_patch_t *out)
{
    lead_patch_t p;
    verrs_t errs;
    memset(&errs, 0, sizeof errs);
    lead_decode_body(root, body, len, creating, &p, &errs);
    if (errs.n > 0) {
        check_errors(&errs);
        return false;
    }
    FUZZ_CHECK(errs.dropped == 0, "errors dropped but none kept");
    if (creating)
        FUZZ_CHECK(p.fields == ~0u && p.v.name.ptr != NULL, "a create without every field or a name");
    lead_t *l = &p.v;
    check_text("name", l->name, !(p.fields & LEAD_F_NAME), false, 255);
    check_text("source", l->source, true, false, 64);
    check_uuid("account_id", l->account_id);
    check_uuid("contact_id", l->contact_id);
    if (l->has_value)
        FUZZ_CHECK(l->value_cents >= 0 && l->value_cents < DECIMAL_LIMIT_CENTS, "value %lld cents",
                   (long long)l->value_cents);
    FUZZ_CHECK(l->stage >= STAGE_NEW && l->stage <= STAGE_NEGOTIATION, "stage %d", l->stage);
    FUZZ_CHECK(l->status >= LEAD_ACTIVE && l->status <= LEAD_LOST, "status %d", l->status);
    FUZZ_CHECK(l->probability >= -1 && l->probability <= 100, "probability %d", l->probability);

    memcpy(l->id, FUZZ_LEAD_ID, sizeof l->id);
    l->created_at = l->updated_at = FUZZ_NOW_S * 1000;
    jw_reset(&w);
    jw_lit(&w, "{\"data\":");
    lead_encode(&w, l);
    jw_lit(&w, "}");
    json_t *doc = parse_rendered("the encoded lead");
    json_t *res = json_object_get(doc, "data");
    check_same_text("name", attr(res, "name"), l->name);
    check_same_text("source", attr(res, "source"), l->source);
    json_t *v = attr(res, "value");
    if (l->has_value) {
        /* Written as the shortest exact decimal, which reads back to the
         * same cents, and agrees with jansson's reading of it. */
        char txt[DECIMAL_BUFSZ], needle[DECIMAL_BUFSZ + 16];
        size_t n = decimal_format(l->value_cents, txt);
        int64_t cents = -1;
        FUZZ_CHECK(decimal_parse(txt, n, &cents) == DECIMAL_OK && cents == l->value_cents,
                   "value %lld cents does not round-trip as %s", (long long)l->value_cents, txt);
        int nn = snprintf(needle, sizeof needle, "\"value\":%s,", txt);
        FUZZ_CHECK(json_is_number(v) && memmem(w.buf, w.len, needle, (size_t)nn) != NULL,
                   "value %s is not in the output as a number", txt);
        FUZZ_CHECK(llround(json_number_value(v) * 100) == l->value_cents, "value %s reads as %.17g", txt,
                   json_number_value(v));
    } else {
        FUZZ_CHECK(json_is_null(v), "an unset value encoded as something else");
    }
    json_decref(doc);
    if (out != NULL) *out = p;
    return true;
}

static void follow(const json_t *root, bool creating)
{
    follow_patch_t p;
    verrs_t errs;
    memset(&errs, 0, sizeof errs);
    follow_decode(root, creating, &p, &errs);
    if (errs.n > 0) {
        check_errors(&errs);
        return;
    }
    if (creating) {
        FUZZ_CHECK(p.fields == ~0u && p.v.title.ptr != NULL, "a create without every field or a title");
        FUZZ_CHECK(p.v.status != FOLLOW_OVERDUE, "a create with status overdue");
    }
    follow_t *f = &p.v;
    check_text("title", f->title, !(p.fields & FOLLOW_F_TITLE), false, 255);
    check_text("description", f->description, true, true, 10000);
    FUZZ_CHECK(f->status >= FOLLOW_PENDING && f->status <= FOLLOW_OVERDUE, "status %d", f->status);
    if (f->has_due) {
        char b[TS_BUFSZ];
        int64_t back = 0;
        size_t n = ts_format(f->due_at, b);
        FUZZ_CHECK(ts_parse(b, n, &back) == 0 && back == f->due_at, "due %lld does not round-trip as %s",
                   (long long)f->due_at, b);
    }
    if (f->status == FOLLOW_OVERDUE) f->status = FOLLOW_PENDING; /* the API never stores it */
    memcpy(f->id, FUZZ_FOLLOW_ID, sizeof f->id);
    memcpy(f->lead_id, FUZZ_LEAD_ID, sizeof f->lead_id);
    f->created_at = f->updated_at = FUZZ_NOW_S * 1000;
    jw_reset(&w);
    jw_lit(&w, "{\"data\":");
    follow_encode(&w, f, FUZZ_NOW_S * 1000);
    jw_lit(&w, "}");
    json_t *doc = parse_rendered("the encoded follow");
    json_t *res = json_object_get(doc, "data");
    check_same_text("title", attr(res, "title"), f->title);
    check_same_text("description", attr(res, "description"), f->description);
    json_t *due = attr(res, "due_date");
    if (f->has_due) {
        int64_t back = 0;
        FUZZ_CHECK(json_is_string(due) &&
                       ts_parse(json_string_value(due), json_string_length(due), &back) == 0 &&
                       back == f->due_at,
                   "due_date does not read back");
    } else {
        FUZZ_CHECK(json_is_null(due), "an unset due date encoded as something else");
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    json_error_t err;
    json_t *root = jsonlex_loadb(body, size, DECODE_FLAGS, &err);
    if (root == NULL) return 0; /* a 400: api_body_or_reply's business, covered by fuzz_request */
    lead_patch_t exact, viadouble;
    lead(root, body, size, true, NULL);
    bool a = lead(root, body, size, false, &exact);
    bool b = lead(root, NULL, 0, false, &viadouble); /* lead_decode: the value from jansson's double */
    /* The body's own digits and jansson's double may disagree on whether a
     * value is acceptable ("1.0000000000000001"), never on its cents. */
    if (a && b && exact.v.has_value && viadouble.v.has_value)
        FUZZ_CHECK(exact.v.value_cents == viadouble.v.value_cents,
                   "value: %lld cents from the text, %lld from the double", (long long)exact.v.value_cents,
                   (long long)viadouble.v.value_cents);
    follow(root, true);
    follow(root, false);
    json_decref(root);
    return 0;
}
