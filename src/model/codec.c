/*
 * codec.c: see codec.h. The rules implemented here are the contract notes'
 * "Attributes" and "Bodies" sections; each message names the attribute the
 * way a person would ("Name can't be blank").
 */
#include "model/codec.h"
#include "model/codec_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/decimal.h"
#include "model/jsonlex.h"
#include "model/text.h"
#include "model/timestamp.h"

#define NAME_MAX_CHARS 255
#define SOURCE_MAX_CHARS 64
#define TITLE_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 10000
/* The longest read-only attribute (unique_id, created_at, updated_at)
 * accepted, and ignored, in a body. */
#define READ_ONLY_MAX_BYTES 64

static const char *const stage_names[] = {"new", "contacted", "qualified", "proposal", "negotiation"};
static const char *const lead_status_names[] = {"active", "inactive", "converted", "lost"};
static const char *const follow_status_names[] = {"pending", "completed", "overdue"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *lead_stage_name(int v)
{
    return v >= 0 && v < COUNT(stage_names) ? stage_names[v] : "new";
}

const char *lead_status_name(int v)
{
    return v >= 0 && v < COUNT(lead_status_names) ? lead_status_names[v] : "active";
}

const char *follow_status_name(int v)
{
    return v >= 0 && v < COUNT(follow_status_names) ? follow_status_names[v] : "pending";
}

/* Copies src into dst (size n) and cuts at a UTF-8 character boundary when
 * it does not fit, so that a truncated message is still valid UTF-8. A
 * character cut short at the end of src is left out too: callers build
 * pointers with snprintf into buffers of their own ("/operations/3" and
 * a member's pointer), which cut at a byte, and a client's long key must
 * never put invalid UTF-8 into an answer (or into a kept answer, which
 * PostgreSQL refuses). */
static void copy_utf8(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n) {
        len = n - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--;
    }
    size_t start = len;
    while (start > 0 && ((unsigned char)src[start - 1] & 0xC0) == 0x80)
        start--;
    if (start > 0 && ((unsigned char)src[start - 1] & 0xC0) == 0xC0) {
        unsigned char lead = (unsigned char)src[start - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (len - (start - 1) < need) len = start - 1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void verrs_add(verrs_t *errs, const char *code, const char *pointer, const char *parameter, const char *fmt,
               ...)
{
    if (errs->n == VERRS_MAX) {
        errs->dropped++;
        return;
    }
    verr_t *e = &errs->e[errs->n++];
    e->code = code;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    copy_utf8(e->detail, sizeof e->detail, detail);
    copy_utf8(e->pointer, sizeof e->pointer, pointer ? pointer : "");
    copy_utf8(e->parameter, sizeof e->parameter, parameter ? parameter : "");
}

void verrs_pointer(char *out, size_t n, const char *wrapper, const char *key, size_t keylen)
{
    char tmp[256];
    size_t o = 0;
    if (wrapper != NULL)
        o = (size_t)snprintf(tmp, sizeof tmp, "/%s/", wrapper);
    else
        tmp[o++] = '/';
    /* Built no longer than out holds, so that a cut never halves an
     * escape (a pointer ending in a lone '~' is no JSON Pointer). */
    size_t cap = n < sizeof tmp ? n : sizeof tmp;
    for (size_t i = 0; i < keylen && o + 3 < cap; i++) {
        if (key[i] == '~') {
            tmp[o++] = '~';
            tmp[o++] = '0';
        } else if (key[i] == '/') {
            tmp[o++] = '~';
            tmp[o++] = '1';
        } else if (key[i] == '\0') {
            /* A C string holds no NUL: U+FFFD stands for it, so that the
             * pointer names no other key (dropped, "na\0me" read "name"). */
            if (o + 4 >= cap) break;
            memcpy(tmp + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            tmp[o++] = key[i];
        }
    }
    tmp[o] = '\0';
    copy_utf8(out, n, tmp);
}

static void attr_error(attr_t *a, const char *fmt, const char *arg)
{
    verrs_add(a->errs, "validation_error", a->pointer, NULL, fmt, a->label, arg);
}

/* Checks text s[0..len) as an attribute's value: cleaned (trimmed, no
 * control characters), not blank unless nullable, at most max_chars. */
static bool clean_text(attr_t *a, const char *s0, size_t len0, bool nullable, bool allow_newlines,
                       size_t max_chars, text_ref_t *out)
{
    const char *s;
    size_t len, chars;
    int rc = text_clean(s0, len0, allow_newlines, &s, &len, &chars);
    if (rc == TEXT_CONTROL) {
        attr_error(a, "%s must not contain control characters%s", "");
        return false;
    }
    if (rc != TEXT_OK) {
        attr_error(a, "%s must be valid UTF-8%s", "");
        return false;
    }
    if (chars == 0 && !nullable) {
        attr_error(a, "%s can't be blank%s", "");
        return false;
    }
    if (chars > max_chars) {
        char lim[48];
        snprintf(lim, sizeof lim, " (maximum is %zu characters)", max_chars);
        attr_error(a, "%s is too long%s", lim);
        return false;
    }
    out->ptr = s;
    out->len = len;
    return true;
}

/* Reads a text attribute. nullable false makes null a "can't be blank";
 * required_nonempty makes an all-white-space string one too. */
static bool get_text(attr_t *a, bool nullable, bool allow_newlines, size_t max_chars, text_ref_t *out)
{
    out->ptr = NULL;
    out->len = 0;
    if (json_is_null(a->v)) {
        if (nullable) return true;
        attr_error(a, "%s can't be blank%s", "");
        return false;
    }
    if (!json_is_string(a->v)) {
        attr_error(a, "%s must be a string%s", "");
        return false;
    }
    return clean_text(a, json_string_value(a->v), json_string_length(a->v), nullable, allow_newlines,
                      max_chars, out);
}

/* Which of names[] t is (exactly). */
static bool enum_of(attr_t *a, text_ref_t t, const char *const *names, int count, int *out)
{
    for (int i = 0; i < count; i++) {
        if (strlen(names[i]) == t.len && memcmp(names[i], t.ptr, t.len) == 0) {
            *out = i;
            return true;
        }
    }
    char allowed[128] = "";
    for (int i = 0; i < count; i++) {
        strcat(allowed, i ? ", " : " (one of: ");
        strcat(allowed, names[i]);
    }
    strcat(allowed, ")");
    attr_error(a, "%s is not included in the list%s", allowed);
    return false;
}

/* Reads one of names[] (after trimming); null is refused. */
static bool get_enum(attr_t *a, const char *const *names, int count, int *out)
{
    text_ref_t t;
    return get_text(a, false, false, 64, &t) && enum_of(a, t, names, count, out);
}

/* A UUID from text t into out. */
static bool uuid_of(attr_t *a, text_ref_t t, char out[UUID_BUFSZ])
{
    if (uuid_parse(t.ptr, t.len, out)) return true;
    out[0] = '\0';
    attr_error(a, "%s must be a UUID%s", "");
    return false;
}

/* Reads a UUID or null into out ("" for null). */
static bool get_uuid(attr_t *a, char out[UUID_BUFSZ])
{
    out[0] = '\0';
    if (json_is_null(a->v)) return true;
    text_ref_t t;
    return get_text(a, true, false, 64, &t) && uuid_of(a, t, out);
}

/* Reports what decimal_parse found wrong with a value; true for DECIMAL_OK. */
static bool value_rc(attr_t *a, int rc)
{
    switch (rc) {
    case DECIMAL_OK:
        return true;
    case DECIMAL_NEGATIVE:
        attr_error(a, "%s must be greater than or equal to 0%s", "");
        break;
    case DECIMAL_PRECISION:
        attr_error(a, "%s must have at most 2 decimal places%s", "");
        break;
    case DECIMAL_RANGE:
        attr_error(a, "%s must be less than 10000000000000%s", "");
        break;
    default:
        attr_error(a, "%s is not a number%s", "");
    }
    return false;
}

/* raw, when not NULL, is the number's own text in the body. */
static bool get_value(attr_t *a, const char *raw, size_t rawlen, bool *has, int64_t *cents)
{
    *has = false;
    *cents = 0;
    if (json_is_null(a->v)) return true;
    int rc;
    if (json_is_number(a->v) && raw != NULL)
        rc = decimal_parse(raw, rawlen, cents);
    else if (json_is_number(a->v))
        rc = decimal_from_double(json_number_value(a->v), cents);
    else if (json_is_string(a->v))
        rc = decimal_parse(json_string_value(a->v), json_string_length(a->v), cents);
    else
        rc = DECIMAL_SYNTAX;
    *has = value_rc(a, rc);
    return *has;
}

/* raw, when not NULL, is the number's own text in the body: it decides
 * integrality exactly (40.000000000000001 is not 40). */
static bool get_probability(attr_t *a, const char *raw, size_t rawlen, int *out)
{
    *out = -1;
    if (json_is_null(a->v)) return true;
    if (!json_is_number(a->v)) {
        attr_error(a, "%s must be an integer%s", "");
        return false;
    }
    int64_t cents;
    int rc = raw != NULL ? decimal_parse(raw, rawlen, &cents) : DECIMAL_OK;
    if (rc == DECIMAL_PRECISION || (rc == DECIMAL_OK && raw != NULL && cents % 100 != 0)) {
        attr_error(a, "%s must be an integer%s", "");
        return false;
    }
    double d = json_number_value(a->v);
    if (!isfinite(d) || d != floor(d)) {
        attr_error(a, "%s must be an integer%s", "");
        return false;
    }
    if (d < 0 || d > 100) {
        attr_error(a, "%s must be between 0 and 100%s", "");
        return false;
    }
    *out = (int)d;
    return true;
}

static bool get_timestamp(attr_t *a, bool *has, int64_t *ms)
{
    *has = false;
    *ms = 0;
    if (json_is_null(a->v)) return true;
    text_ref_t t;
    if (!get_text(a, true, false, 64, &t)) return false;
    if (ts_parse(t.ptr, t.len, ms) != 0) {
        attr_error(a, "%s must be an RFC 3339 date-time%s", " (e.g. 2026-03-05T14:00:00Z)");
        return false;
    }
    *has = true;
    return true;
}

static bool is_read_only(const char *key)
{
    return strcmp(key, "unique_id") == 0 || strcmp(key, "created_at") == 0 || strcmp(key, "updated_at") == 0;
}

/* A read-only attribute sent back is ignored (contract-notes.md): what the
 * server sends there (a string: an id is 36 bytes, a timestamp 24), and
 * what a client's model holds before the server has given one (null, or a
 * number of seconds). A long string, a boolean, an array or an object is
 * no value the attribute could have: a mistake, refused like any other bad
 * value. */
static void check_read_only(attr_t *a, const char *key)
{
    if (json_is_null(a->v) || json_is_number(a->v) ||
        (json_is_string(a->v) && json_string_length(a->v) <= READ_ONLY_MAX_BYTES))
        return;
    verrs_add(a->errs, "validation_error", a->pointer, NULL,
              "%s is read-only: it is ignored when sent back, but must then be a value it could hold (a "
              "string of at most %d characters, a number or null)",
              key, READ_ONLY_MAX_BYTES);
}

/* Finds the wrapper object root[name]; records the problem if it is not
 * there or not an object. */
static const json_t *wrapper(const json_t *root, const char *name, verrs_t *errs)
{
    char ptr[32];
    snprintf(ptr, sizeof ptr, "/%s", name);
    if (!json_is_object(root)) {
        verrs_add(errs, "validation_error", "", NULL, "The request body must be a JSON object holding \"%s\"",
                  name);
        return NULL;
    }
    const json_t *w = json_object_get(root, name);
    if (w == NULL) {
        verrs_add(errs, "validation_error", ptr, NULL,
                  "The request body must hold the attributes in \"%s\": {\"%s\": {...}}", name, name);
        return NULL;
    }
    if (!json_is_object(w)) {
        verrs_add(errs, "validation_error", ptr, NULL, "\"%s\" must be an object", name);
        return NULL;
    }
    return w;
}

/* Records key, a member of wrapper_name (NULL: of the body itself), as
 * unknown. */
static void unknown(verrs_t *errs, const char *wrapper_name, const char *key, size_t keylen)
{
    char ptr[96];
    verrs_pointer(ptr, sizeof ptr, wrapper_name, key, keylen);
    char shown[64];
    copy_utf8(shown, sizeof shown, key);
    verrs_add(errs, "unknown_attribute", ptr, NULL, "Unknown attribute '%s'", shown);
}

/* Finds the wrapper object root[name] and runs one on each of its
 * members, recording the unknown ones. Returns the wrapper, or NULL (the
 * problem recorded) when there is none. */
static const json_t *decode_members(const json_t *root, const char *name, verrs_t *errs, attr_fn one,
                                    void *ctx)
{
    const char *key;
    size_t keylen;
    json_t *v;
    /* The body holds the wrapper and nothing else: anything beside it is
     * a typo or a misplaced attribute, never silently dropped. */
    if (json_is_object(root)) json_object_keylen_foreach((json_t *)root, key, keylen, v)
        {
            if (strlen(key) != keylen || strcmp(key, name) != 0) unknown(errs, NULL, key, keylen);
        }
    const json_t *w = wrapper(root, name, errs);
    if (w == NULL) return NULL;
    json_object_keylen_foreach((json_t *)w, key, keylen, v)
    {
        attr_t a = {.v = v, .errs = errs};
        verrs_pointer(a.pointer, sizeof a.pointer, name, key, keylen);
        /* A key with a NUL inside names no attribute, whatever its start. */
        if (strlen(key) != keylen)
            unknown(errs, name, key, keylen);
        else if (one(&a, key, ctx))
            continue;
        else if (is_read_only(key))
            check_read_only(&a, key);
        else
            unknown(errs, name, key, keylen);
    }
    return w;
}

typedef struct lead_ctx {
    const char *body; /* the body text, or NULL */
    size_t len;
    lead_patch_t *out;
} lead_ctx_t;

/* The text of the number sent as lead.key in the body, or NULL when there
 * is no body or the value is not a number written there. */
static const char *raw_number(const lead_ctx_t *c, const json_t *v, const char *key, size_t *rawlen)
{
    const char *raw = NULL;
    *rawlen = 0;
    if (c->body == NULL || !json_is_number(v) ||
        !jsonlex_number_at(c->body, c->len, "lead", key, &raw, rawlen))
        return NULL;
    return raw;
}

static bool lead_attr(attr_t *a, const char *key, void *ctx)
{
    lead_ctx_t *c = ctx;
    lead_patch_t *out = c->out;
    lead_t *l = &out->v;
    size_t rawlen;
    const char *raw;
    if (strcmp(key, "name") == 0) {
        a->label = "Name";
        if (get_text(a, false, false, NAME_MAX_CHARS, &l->name)) out->fields |= LEAD_F_NAME;
    } else if (strcmp(key, "source") == 0) {
        a->label = "Source";
        if (get_text(a, true, false, SOURCE_MAX_CHARS, &l->source)) out->fields |= LEAD_F_SOURCE;
    } else if (strcmp(key, "account_id") == 0) {
        a->label = "Account";
        if (get_uuid(a, l->account_id)) out->fields |= LEAD_F_ACCOUNT;
    } else if (strcmp(key, "contact_id") == 0) {
        a->label = "Contact";
        if (get_uuid(a, l->contact_id)) out->fields |= LEAD_F_CONTACT;
    } else if (strcmp(key, "value") == 0) {
        a->label = "Value";
        raw = raw_number(c, a->v, key, &rawlen);
        if (get_value(a, raw, rawlen, &l->has_value, &l->value_cents)) out->fields |= LEAD_F_VALUE;
    } else if (strcmp(key, "stage") == 0) {
        a->label = "Stage";
        if (get_enum(a, stage_names, COUNT(stage_names), &l->stage)) out->fields |= LEAD_F_STAGE;
    } else if (strcmp(key, "probability") == 0) {
        a->label = "Probability";
        raw = raw_number(c, a->v, key, &rawlen);
        if (get_probability(a, raw, rawlen, &l->probability)) out->fields |= LEAD_F_PROBABILITY;
    } else if (strcmp(key, "status") == 0) {
        a->label = "Status";
        if (get_enum(a, lead_status_names, COUNT(lead_status_names), &l->status))
            out->fields |= LEAD_F_STATUS;
    } else {
        return false;
    }
    return true;
}

void lead_decode(const json_t *root, bool creating, lead_patch_t *out, verrs_t *errs)
{
    lead_decode_body(root, NULL, 0, creating, out, errs);
}

void lead_decode_body(const json_t *root, const char *body, size_t len, bool creating, lead_patch_t *out,
                      verrs_t *errs)
{
    memset(out, 0, sizeof *out);
    out->v.probability = -1;
    lead_ctx_t c = {body, len, out};
    const json_t *w = decode_members(root, "lead", errs, lead_attr, &c);
    if (w == NULL || !creating) return;
    if (json_object_get(w, "name") == NULL)
        verrs_add(errs, "validation_error", "/lead/name", NULL, "Name can't be blank");
    if (!(out->fields & LEAD_F_STAGE)) out->v.stage = STAGE_NEW;
    if (!(out->fields & LEAD_F_STATUS)) out->v.status = LEAD_ACTIVE;
    out->fields = ~0u;
}

/* A probability written as text: an integer from 0 to 100. */
static bool probability_of(attr_t *a, text_ref_t t, int *out)
{
    int64_t cents;
    int rc = decimal_parse(t.ptr, t.len, &cents);
    if (rc == DECIMAL_NEGATIVE || (rc == DECIMAL_OK && cents > 10000) || rc == DECIMAL_RANGE) {
        attr_error(a, "%s must be between 0 and 100%s", "");
        return false;
    }
    if (rc != DECIMAL_OK || cents % 100 != 0) {
        attr_error(a, "%s must be an integer%s", "");
        return false;
    }
    *out = (int)(cents / 100);
    return true;
}

/* A cell's text as an id (empty: unset). */
static bool id_cell(attr_t *a, const char *s, size_t len, char out[UUID_BUFSZ])
{
    text_ref_t t;
    out[0] = '\0';
    return clean_text(a, s, len, true, false, 64, &t) && (t.len == 0 || uuid_of(a, t, out));
}

/* A cell's text as a value, decimal rules as a JSON string's. */
static bool value_cell(attr_t *a, const char *s, size_t len, lead_t *l)
{
    text_ref_t t;
    if (!clean_text(a, s, len, true, false, 64, &t)) return false;
    l->has_value = t.len > 0 && value_rc(a, decimal_parse(t.ptr, t.len, &l->value_cents));
    return t.len == 0 || l->has_value;
}

void lead_decode_cell(const char *key, const char *s, size_t len, lead_patch_t *out, const char *pointer,
                      verrs_t *errs)
{
    attr_t a = {.v = NULL, .errs = errs};
    copy_utf8(a.pointer, sizeof a.pointer, pointer);
    lead_t *l = &out->v;
    text_ref_t t;
    unsigned bit = 0;
    bool ok = false;
    if (strcmp(key, "name") == 0) {
        a.label = "Name";
        ok = clean_text(&a, s, len, false, false, NAME_MAX_CHARS, &l->name), bit = LEAD_F_NAME;
    } else if (strcmp(key, "source") == 0) {
        a.label = "Source";
        ok = clean_text(&a, s, len, true, false, SOURCE_MAX_CHARS, &l->source), bit = LEAD_F_SOURCE;
    } else if (strcmp(key, "account_id") == 0) {
        a.label = "Account";
        ok = id_cell(&a, s, len, l->account_id), bit = LEAD_F_ACCOUNT;
    } else if (strcmp(key, "contact_id") == 0) {
        a.label = "Contact";
        ok = id_cell(&a, s, len, l->contact_id), bit = LEAD_F_CONTACT;
    } else if (strcmp(key, "value") == 0) {
        a.label = "Value";
        ok = value_cell(&a, s, len, l), bit = LEAD_F_VALUE;
    } else if (strcmp(key, "stage") == 0) {
        a.label = "Stage";
        ok = clean_text(&a, s, len, false, false, 64, &t) &&
             enum_of(&a, t, stage_names, COUNT(stage_names), &l->stage);
        bit = LEAD_F_STAGE;
    } else if (strcmp(key, "probability") == 0) {
        a.label = "Probability";
        ok = clean_text(&a, s, len, false, false, 64, &t) && probability_of(&a, t, &l->probability);
        bit = LEAD_F_PROBABILITY;
    } else if (strcmp(key, "status") == 0) {
        a.label = "Status";
        ok = clean_text(&a, s, len, false, false, 64, &t) &&
             enum_of(&a, t, lead_status_names, COUNT(lead_status_names), &l->status);
        bit = LEAD_F_STATUS;
    }
    if (ok) out->fields |= bit;
}

typedef struct follow_ctx {
    bool creating;
    follow_patch_t *out;
} follow_ctx_t;

static bool follow_attr(attr_t *a, const char *key, void *ctx)
{
    follow_ctx_t *c = ctx;
    follow_patch_t *out = c->out;
    follow_t *f = &out->v;
    if (strcmp(key, "title") == 0) {
        a->label = "Title";
        if (get_text(a, false, false, TITLE_MAX_CHARS, &f->title)) out->fields |= FOLLOW_F_TITLE;
    } else if (strcmp(key, "description") == 0) {
        a->label = "Description";
        if (get_text(a, true, true, DESCRIPTION_MAX_CHARS, &f->description))
            out->fields |= FOLLOW_F_DESCRIPTION;
    } else if (strcmp(key, "due_date") == 0) {
        a->label = "Due date";
        if (get_timestamp(a, &f->has_due, &f->due_at)) out->fields |= FOLLOW_F_DUE;
    } else if (strcmp(key, "status") == 0) {
        a->label = "Status";
        if (get_enum(a, follow_status_names, COUNT(follow_status_names), &f->status)) {
            if (c->creating && f->status == FOLLOW_OVERDUE)
                attr_error(a, "%s overdue is derived from the due date and cannot be written%s", "");
            else
                out->fields |= FOLLOW_F_STATUS;
        }
    } else {
        return false;
    }
    return true;
}

void follow_decode(const json_t *root, bool creating, follow_patch_t *out, verrs_t *errs)
{
    memset(out, 0, sizeof *out);
    follow_ctx_t c = {creating, out};
    const json_t *w = decode_members(root, "follow", errs, follow_attr, &c);
    if (w == NULL || !creating) return;
    if (json_object_get(w, "title") == NULL)
        verrs_add(errs, "validation_error", "/follow/title", NULL, "Title can't be blank");
    if (!(out->fields & FOLLOW_F_STATUS)) out->v.status = FOLLOW_PENDING;
    out->fields = ~0u;
}

/* --- encoding ------------------------------------------------------------- */

/* Writes member (the literal text ,"key":) and a text value, null when
 * unset. */
static void put_text_member(jw_t *w, const char *member, text_ref_t t)
{
    jw_raw(w, member, strlen(member));
    if (t.ptr == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, t.ptr, t.len);
}

/* The same for an id, null when "". */
static void put_id_member(jw_t *w, const char *member, const char *id)
{
    jw_raw(w, member, strlen(member));
    jw_cstr(w, id[0] ? id : NULL);
}

static void put_time(jw_t *w, int64_t ms)
{
    char b[TS_BUFSZ];
    size_t n = ts_format(ms, b);
    jw_raw(w, "\"", 1);
    jw_raw(w, b, n);
    jw_raw(w, "\"", 1);
}

static void put_relationship(jw_t *w, const char *id, const char *type)
{
    if (id[0] == '\0') {
        jw_lit(w, "{\"data\":null}");
        return;
    }
    jw_lit(w, "{\"data\":{\"id\":");
    jw_cstr(w, id);
    jw_lit(w, ",\"type\":");
    jw_cstr(w, type);
    jw_lit(w, "}}");
}

/* Opens a resource object, up to its first attribute:
 * {"id":ID,"type":TYPE,"attributes":{"unique_id":ID */
static void put_head(jw_t *w, const char *id, const char *type)
{
    jw_lit(w, "{\"id\":");
    jw_cstr(w, id);
    jw_lit(w, ",\"type\":");
    jw_cstr(w, type);
    jw_lit(w, ",\"attributes\":{\"unique_id\":");
    jw_cstr(w, id);
}

/* The two timestamps every resource's attributes end with. */
static void put_stamps(jw_t *w, int64_t created_at, int64_t updated_at)
{
    jw_lit(w, ",\"created_at\":");
    put_time(w, created_at);
    jw_lit(w, ",\"updated_at\":");
    put_time(w, updated_at);
}

/* A lead resource; deleted_at >= 0 adds that attribute (a trashed lead). */
static void lead_encode_at(jw_t *w, const lead_t *l, int64_t deleted_at)
{
    put_head(w, l->id, "lead");
    put_text_member(w, ",\"name\":", l->name);
    put_text_member(w, ",\"source\":", l->source);
    put_id_member(w, ",\"account_id\":", l->account_id);
    put_id_member(w, ",\"contact_id\":", l->contact_id);
    jw_lit(w, ",\"value\":");
    if (l->has_value) {
        char b[DECIMAL_BUFSZ];
        jw_raw(w, b, decimal_format(l->value_cents, b));
    } else {
        jw_lit(w, "null");
    }
    jw_lit(w, ",\"stage\":");
    jw_cstr(w, lead_stage_name(l->stage));
    jw_lit(w, ",\"probability\":");
    if (l->probability >= 0)
        jw_int(w, l->probability);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"status\":");
    jw_cstr(w, lead_status_name(l->status));
    put_stamps(w, l->created_at, l->updated_at);
    if (deleted_at >= 0) {
        jw_lit(w, ",\"deleted_at\":");
        put_time(w, deleted_at);
    }
    jw_lit(w, "},\"relationships\":{\"account\":");
    put_relationship(w, l->account_id, "account");
    jw_lit(w, ",\"contact\":");
    put_relationship(w, l->contact_id, "contact");
    jw_lit(w, "}}");
}

void lead_encode(jw_t *w, const lead_t *l)
{
    lead_encode_at(w, l, -1);
}

void lead_encode_trashed(jw_t *w, const lead_t *l, int64_t deleted_at)
{
    lead_encode_at(w, l, deleted_at);
}

void follow_encode(jw_t *w, const follow_t *f, int64_t now)
{
    put_head(w, f->id, "follow");
    put_text_member(w, ",\"title\":", f->title);
    put_text_member(w, ",\"description\":", f->description);
    jw_lit(w, ",\"due_date\":");
    if (f->has_due)
        put_time(w, f->due_at);
    else
        jw_lit(w, "null");
    jw_lit(w, ",\"status\":");
    jw_cstr(w, follow_status_name(follow_effective_status(f, now)));
    put_stamps(w, f->created_at, f->updated_at);
    jw_lit(w, "},\"relationships\":{\"lead\":");
    put_relationship(w, f->lead_id, "lead");
    jw_lit(w, "}}");
}

/* --- changes (a lead's history) -------------------------------------------------- */

/* Writes attribute i of a record as its resource renders it (a follow's
 * status as it reads at now). */
typedef void (*value_fn)(jw_t *w, const void *rec, int i, int64_t now);

static const char *const LEAD_CHANGE_NAMES[] = {"name",  "source", "account_id",  "contact_id",
                                                "value", "stage",  "probability", "status"};
static const char *const FOLLOW_CHANGE_NAMES[] = {"title", "description", "due_date", "status"};

/* A text value, null when unset. */
static void put_text_value(jw_t *w, text_ref_t t)
{
    if (t.ptr == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, t.ptr, t.len);
}

static void lead_value(jw_t *w, const void *rec, int i, int64_t now)
{
    (void)now;
    const lead_t *l = rec;
    char b[DECIMAL_BUFSZ];
    if (i < 2) {
        put_text_value(w, i == 0 ? l->name : l->source);
        return;
    }
    if (i < 4) {
        const char *id = i == 2 ? l->account_id : l->contact_id;
        jw_cstr(w, id[0] ? id : NULL);
        return;
    }
    switch (i) {
    case 4:
        if (l->has_value)
            jw_raw(w, b, decimal_format(l->value_cents, b));
        else
            jw_lit(w, "null");
        break;
    case 5:
        jw_cstr(w, lead_stage_name(l->stage));
        break;
    case 6:
        if (l->probability >= 0)
            jw_int(w, l->probability);
        else
            jw_lit(w, "null");
        break;
    default:
        jw_cstr(w, lead_status_name(l->status));
    }
}

static void follow_value(jw_t *w, const void *rec, int i, int64_t now)
{
    const follow_t *f = rec;
    if (i < 2) {
        put_text_value(w, i == 0 ? f->title : f->description);
    } else if (i == 2) {
        if (f->has_due)
            put_time(w, f->due_at);
        else
            jw_lit(w, "null");
    } else {
        jw_cstr(w, follow_status_name(follow_effective_status(f, now)));
    }
}

/* {"attr": [before, after], ...} for each attribute whose rendering
 * differs (before NULL: every attribute of after that is not null). */
static void encode_changes(jw_t *w, const char *const *names, int n, value_fn put, const void *before,
                           const void *after, int64_t now)
{
    jw_t a = {0}, b = {0};
    int k = 0;
    jw_lit(w, "{");
    for (int i = 0; i < n; i++) {
        jw_reset(&a);
        jw_reset(&b);
        put(&a, after, i, now);
        if (before != NULL)
            put(&b, before, i, now);
        else
            jw_lit(&b, "null");
        if (a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0) continue;
        if (k++ > 0) jw_lit(w, ",");
        jw_cstr(w, names[i]);
        jw_lit(w, ":[");
        jw_raw(w, b.buf, b.len);
        jw_lit(w, ",");
        jw_raw(w, a.buf, a.len);
        jw_lit(w, "]");
    }
    jw_lit(w, "}");
    if (a.oom || b.oom) w->oom = true;
    jw_free(&a);
    jw_free(&b);
}

void lead_encode_changes(jw_t *w, const lead_t *before, const lead_t *after)
{
    encode_changes(w, LEAD_CHANGE_NAMES, 8, lead_value, before, after, 0);
}

void follow_encode_changes(jw_t *w, const follow_t *before, const follow_t *after, int64_t now)
{
    encode_changes(w, FOLLOW_CHANGE_NAMES, 4, follow_value, before, after, now);
}

void change_encode(jw_t *w, const char *id, const char *action, text_ref_t changes, const char *actor,
                   int64_t at, const char *follow_id)
{
    jw_lit(w, "{\"id\":");
    jw_cstr(w, id);
    jw_lit(w, ",\"type\":\"lead_change\",\"attributes\":{\"action\":");
    jw_cstr(w, action);
    jw_lit(w, ",\"changes\":");
    if (changes.ptr != NULL && changes.len > 0)
        jw_raw(w, changes.ptr, changes.len);
    else
        jw_lit(w, "{}");
    jw_lit(w, ",\"actor\":");
    jw_cstr(w, actor[0] != '\0' ? actor : NULL);
    jw_lit(w, ",\"at\":");
    put_time(w, at);
    put_id_member(w, ",\"follow_id\":", follow_id);
    jw_lit(w, "}}");
}

/* --- for the other decoders of src/model (codec_int.h) ---------------------- */

void codec_attr_error(attr_t *a, const char *fmt, const char *arg)
{
    attr_error(a, fmt, arg);
}

bool codec_text(attr_t *a, bool nullable, bool allow_newlines, size_t max_chars, text_ref_t *out)
{
    return get_text(a, nullable, allow_newlines, max_chars, out);
}

const json_t *codec_members(const json_t *root, const char *name, verrs_t *errs, attr_fn one, void *ctx)
{
    return decode_members(root, name, errs, one, ctx);
}

void codec_put_time(jw_t *w, int64_t ms)
{
    put_time(w, ms);
}
