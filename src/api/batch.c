/*
 * batch.c: POST /leads/batch (extensions.md, "Safe writes"): up to 500
 * lead creates, updates and deletes, all or nothing.
 *
 * The worker decodes every operation, reporting every problem with its
 * pointer (/operations/3/lead/name). The writer then checks, inside the
 * write's batch, that every id names a live lead (each read locks its row
 * until the batch ends, and a lead deleted by an earlier operation counts
 * as gone), and only then applies the operations in order, each recorded
 * in its lead's history like a single write's. Nothing is written before
 * every check has passed, so a refused batch changes nothing; a failure
 * while applying (the database's) undoes the whole transaction.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cache.h"
#include "api/handlers.h"
#include "api/change.h"
#include "api/history.h"
#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "api/writer.h"
#include "model/codec.h"
#include "model/event.h"
#include "model/jsonlex.h"
#include "model/uuid.h"

#define BATCH_OPS_MAX 500

enum op_kind { OP_CREATE, OP_UPDATE, OP_DELETE };

typedef struct batch_op {
    enum op_kind kind;
    bool bad; /* it has a problem of its own: a delete so is not counted as done */
    char id[UUID_BUFSZ];
    lead_patch_t patch;
} batch_op_t;

/* What the write carries after its api_write_t: the operations, then
 * their texts. */
typedef struct batch {
    int n;
    batch_op_t op[];
} batch_t;

/* The first byte of w->text (a char array) aligned to align, where a write
 * keeps what it carries after itself. */
static void *text_aligned(const api_write_t *w, uintptr_t align)
{
    uintptr_t at = (uintptr_t)w->text;
    return (void *)((at + align - 1) / align * align);
}

/* The operations at the end of w. */
static batch_t *batch_of(const api_write_t *w)
{
    return text_aligned(w, _Alignof(batch_t));
}

/* --- decoding, on the worker ------------------------------------------------ */

static void add(verrs_t *errs, int i, const char *member, const char *detail)
{
    char ptr[96];
    snprintf(ptr, sizeof ptr, "/operations/%d%s", i, member);
    verrs_add(errs, "validation_error", ptr, NULL, "%s", detail);
}

/* Decodes op's lead into o->patch, its problems prefixed with the op's
 * pointer. text[0..len) is the op's own text in the body, where its
 * numbers are read exactly, as a single write's are (NULL if not found:
 * then from jansson's doubles). */
static void decode_lead(const json_t *op, int i, const char *text, size_t len, batch_op_t *o, verrs_t *errs)
{
    json_t *wrap = json_object();
    json_t *lead = json_object_get(op, "lead");
    if (wrap != NULL && lead != NULL) json_object_set(wrap, "lead", lead);
    verrs_t mine = {0};
    lead_decode_body(wrap != NULL ? wrap : op, text, len, o->kind == OP_CREATE, &o->patch, &mine);
    json_decref(wrap);
    for (int k = 0; k < mine.n; k++) {
        char ptr[96];
        snprintf(ptr, sizeof ptr, "/operations/%d%s", i, mine.e[k].pointer);
        verrs_add(errs, mine.e[k].code, ptr, NULL, "%s", mine.e[k].detail);
    }
    errs->dropped += mine.dropped;
}

/* Decodes operation i (its text text[0..len) in the body) into o. */
static void decode_op(const json_t *op, int i, const char *text, size_t len, batch_op_t *o, verrs_t *errs)
{
    if (!json_is_object(op)) {
        add(errs, i, "", "An operation must be an object: {\"op\": ..., ...}");
        return;
    }
    /* op and id are their whole strings: a body's strings may hold a NUL
     * (JSONLEX_BODY_FLAGS), and "create\u0000..." is no kind, as a single
     * write's texts with one are refused. */
    const json_t *opv = json_object_get(op, "op");
    const char *kind = json_string_value(opv);
    static const char *const KINDS[] = {"create", "update", "delete"};
    int k = 0;
    if (kind != NULL && strlen(kind) != json_string_length(opv)) kind = NULL;
    while (kind != NULL && k < 3 && strcmp(kind, KINDS[k]) != 0)
        k++;
    if (kind == NULL || k == 3) {
        add(errs, i, "/op", "op must be create, update or delete");
        return;
    }
    o->kind = (enum op_kind)k;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)op, key, v)
    {
        bool known = strcmp(key, "op") == 0 || (strcmp(key, "lead") == 0 && o->kind != OP_DELETE) ||
                     (strcmp(key, "id") == 0 && o->kind != OP_CREATE);
        if (known) continue;
        char wrapper[32], ptr[96];
        snprintf(wrapper, sizeof wrapper, "operations/%d", i);
        verrs_pointer(ptr, sizeof ptr, wrapper, key, strlen(key));
        verrs_add(errs, "unknown_attribute", ptr, NULL,
                  "An operation holds op, and lead (create, update) or id (update, delete)");
    }
    if (o->kind != OP_CREATE) {
        const json_t *idv = json_object_get(op, "id");
        const char *id = json_string_value(idv);
        if (id == NULL || !uuid_parse(id, json_string_length(idv), o->id))
            add(errs, i, "/id", "id must be a lead's id");
    }
    if (o->kind != OP_DELETE) decode_lead(op, i, text, len, o, errs);
}

/* The operations of root (parsed from body) into b (n of them at most),
 * their problems into errs; the texts still point into root. */
static int decode_ops(const json_t *root, h2o_iovec_t body, batch_t *b, int n, verrs_t *errs)
{
    const json_t *ops = json_is_object(root) ? json_object_get(root, "operations") : NULL;
    const char *key;
    size_t keylen;
    json_t *v;
    /* Each member beside operations is pointed at, as a single write's
     * are (/extra, RFC 6901 escapes), never at the whole body. */
    if (json_is_object(root)) json_object_keylen_foreach((json_t *)root, key, keylen, v)
        {
            if (keylen == strlen("operations") && memcmp(key, "operations", keylen) == 0) continue;
            char ptr[96];
            verrs_pointer(ptr, sizeof ptr, NULL, key, keylen);
            verrs_add(errs, "unknown_attribute", ptr, NULL, "The body holds operations and nothing else");
        }
    size_t count = json_is_array(ops) ? json_array_size(ops) : 0;
    if (count < 1 || count > BATCH_OPS_MAX || (int)count > n) {
        verrs_add(errs, "validation_error", "/operations", NULL,
                  "operations must be an array of 1 to 500 operations");
        return 0;
    }
    /* Each operation's text, for its numbers' exact digits. */
    jsonlex_span_t text[BATCH_OPS_MAX];
    size_t found = jsonlex_elements_at(body.base, body.len, "operations", text, count);
    for (size_t i = 0; i < count; i++) {
        bool has = i < found && found == count;
        int before = errs->n + errs->dropped;
        decode_op(json_array_get(ops, i), (int)i, has ? text[i].p : NULL, has ? text[i].len : 0, &b->op[i],
                  errs);
        b->op[i].bad = errs->n + errs->dropped != before;
    }
    return (int)count;
}

/* --- running, on the writer --------------------------------------------------- */

static void found(void *ctx, const lead_t *lead)
{
    (void)lead;
    *(bool *)ctx = true;
}

/* An update's or delete's lead, with the operation's index. */
typedef struct named {
    int i;
    enum op_kind kind;
    bool bad;
    char id[UUID_BUFSZ];
} named_t;

/* The updates and deletes of b whose ids are well formed, in order, into
 * nm (b->n at most); returns their number. */
static int named_of(const batch_t *b, named_t *nm)
{
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        const batch_op_t *o = &b->op[i];
        if (o->kind == OP_CREATE || o->id[0] == '\0') continue;
        nm[n].i = i;
        nm[n].kind = o->kind;
        nm[n].bad = o->bad;
        memcpy(nm[n].id, o->id, sizeof nm[n].id);
        n++;
    }
    return n;
}

/* Adds to errs a problem for each of nm[0..n) that names no live lead, or
 * one deleted by an earlier operation (one without problems of its own: an
 * invalid delete deletes nothing, so a later operation on its lead is
 * judged on the lead alone); false with w answered when the store failed. */
static bool named_live(store_t *s, api_write_t *w, const named_t *nm, int n, verrs_t *errs)
{
    for (int k = 0; k < n; k++) {
        bool deleted = false, live = false;
        for (int j = 0; j < k; j++)
            deleted |= nm[j].kind == OP_DELETE && !nm[j].bad && strcmp(nm[j].id, nm[k].id) == 0;
        store_rc_t rc = deleted ? STORE_NOT_FOUND : store_lead_get(s, w->app, nm[k].id, found, &live, NULL);
        if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
            api_write_answer(w, rc, 0, "", "");
            return false;
        }
        if (!live) add(errs, nm[k].i, "/id", "No such lead (it may be in the trash)");
    }
    return true;
}

/* Every update and delete names a live lead, not deleted by an earlier
 * operation: else a 422 rendered into w with every problem. */
static bool ids_live(store_t *s, api_write_t *w, const batch_t *b)
{
    named_t nm[BATCH_OPS_MAX];
    verrs_t errs = {0};
    if (!named_live(s, w, nm, named_of(b, nm), &errs)) return false;
    if (errs.n == 0) return true;
    w->status = api_render_errors(&w->out, &errs);
    return false;
}

/* Applies update or delete o, rendering its result into w->out; its
 * change is recorded like a single write's (change.h: events, history). */
static store_rc_t apply(store_t *s, api_write_t *w, batch_op_t *o)
{
    api_held_t before = {0}, after = {0};
    api_change_t c = {.kind = CHANGE_LEAD};
    assert(o->kind != OP_CREATE);
    store_rc_t rc = store_lead_get(s, w->app, o->id, api_hold_lead, &before, NULL);
    if (rc == STORE_OK && !before.found) rc = STORE_UNAVAILABLE; /* out of memory */
    if (o->kind == OP_DELETE) {
        if (rc == STORE_OK && !api_change_lead_delete(s, w, o->id, &before.lead, &rc)) rc = STORE_UNAVAILABLE;
    } else {
        c.action = CHANGE_UPDATED;
        c.lead_before = &before.lead;
        c.lead_after = &after.lead;
        if (rc == STORE_OK)
            rc = store_lead_update(s, w->app, o->id, &o->patch, w->now, api_hold_lead, &after);
        if (rc == STORE_OK && !after.found) rc = STORE_UNAVAILABLE;
        if (rc == STORE_OK && !api_change_record(s, w, &c)) rc = STORE_UNAVAILABLE;
    }
    if (rc == STORE_OK && c.lead_after != NULL)
        lead_encode(&w->out, c.lead_after);
    else if (rc == STORE_OK)
        jw_lit(&w->out, "null");
    api_held_free(&before);
    api_held_free(&after);
    return rc;
}

/* A run of consecutive creates, given to the store as one bulk insert
 * (store_lead_create_many: SQLite then writes the search index and the
 * totals by one statement instead of one per lead), each recorded and
 * rendered in order as a single create would be. */
typedef struct create_run {
    store_t *s;
    api_write_t *w;
    const batch_op_t *op; /* the run's first operation */
    int first, n;         /* its index in the batch; its length */
    int given;            /* the operations given to the store so far */
    int done;             /* those of them recorded and rendered */
    bool no_events;       /* no webhook wants lead.created (store_event_wanted) */
} create_run_t;

/* Records and renders the creates given and not yet recorded, which the
 * store has by the time it asks for the next one (store.h); false when
 * recording failed (the write's answer then says so). */
static bool record_given(create_run_t *r)
{
    for (; r->done < r->given; r->done++) {
        const lead_t *l = &r->op[r->done].patch.v;
        const api_change_t c = {
            .kind = CHANGE_LEAD, .action = CHANGE_CREATED, .lead_after = l, .no_events = r->no_events};
        if (!api_change_record(r->s, r->w, &c)) return false;
        if (r->first + r->done > 0) jw_lit(&r->w->out, ",");
        lead_encode(&r->w->out, l);
    }
    return true;
}

static bool next_create(void *ctx, lead_t *lead)
{
    create_run_t *r = ctx;
    if (!record_given(r) || r->given == r->n) return false;
    *lead = r->op[r->given++].patch.v;
    return true;
}

/* Creates operations first..end-1 (all creates). */
static store_rc_t apply_creates(store_t *s, api_write_t *w, const batch_t *b, int first, int end)
{
    create_run_t r = {.s = s, .w = w, .op = &b->op[first], .first = first, .n = end - first};
    int64_t created = 0;
    store_rc_t rc = api_change_creates_unwanted(s, w->app, &r.no_events);
    if (rc == STORE_OK) rc = store_lead_create_many(s, w->app, next_create, &r, &created);
    /* The store asks again after the last lead it inserted; this only
     * guards that promise. */
    if (rc == STORE_OK && r.done < r.n) rc = STORE_UNAVAILABLE;
    return rc == STORE_OK && created != r.n ? STORE_ERROR : rc;
}

static void run_batch_ops(store_t *s, api_write_t *w)
{
    batch_t *b = batch_of(w);
    if (!ids_live(s, w, b)) return;
    jw_reset(&w->out);
    jw_lit(&w->out, "{\"data\":[");
    for (int i = 0, end; i < b->n; i = end) {
        store_rc_t rc;
        end = i + 1;
        if (b->op[i].kind == OP_CREATE) {
            while (end < b->n && b->op[end].kind == OP_CREATE)
                end++;
            rc = apply_creates(s, w, b, i, end);
        } else {
            if (i > 0) jw_lit(&w->out, ",");
            rc = apply(s, w, &b->op[i]);
        }
        if (rc != STORE_OK) {
            /* Some operations are written already: undo the transaction. */
            w->undo_batch = true;
            jw_reset(&w->out);
            api_write_answer(w, rc == STORE_ERROR ? STORE_ERROR : STORE_UNAVAILABLE, 0, "", "");
            return;
        }
    }
    jw_lit(&w->out, "]}");
    w->status = 200;
}

/* After the commit: the updated and deleted leads' GETs are stale. */
static void touch_ops(const api_write_t *w)
{
    const batch_t *b = batch_of(w);
    for (int i = 0; i < b->n; i++)
        if (b->op[i].kind != OP_CREATE) cache_touch_lead(w->app, b->op[i].id);
}

/* The leads the operations update or delete, for the writer to lock
 * first (writer.c: lock_ahead). */
static const char *op_lead(const api_write_t *w, int i)
{
    const batch_t *b = batch_of(w);
    for (int k = 0; k < b->n; k++)
        if (b->op[k].kind != OP_CREATE && i-- == 0) return b->op[k].id;
    return NULL;
}

/* --- the handler ---------------------------------------------------------------- */

/* The bytes the operations' texts need. */
static size_t texts_size(const batch_t *b)
{
    size_t n = 0;
    for (int i = 0; i < b->n; i++) {
        const lead_t *l = &b->op[i].patch.v;
        n += (l->name.ptr != NULL ? l->name.len + 1 : 0) + (l->source.ptr != NULL ? l->source.len + 1 : 0);
    }
    return n;
}

/* Copies the operations, and their texts, to the end of a new write. */
static api_write_t *new_write(api_req_t *r, const batch_t *b)
{
    size_t ops = sizeof *b + (size_t)b->n * sizeof b->op[0];
    api_write_t *w = api_write_new(r, run_batch_ops, _Alignof(batch_t) + ops + texts_size(b));
    if (w == NULL) return NULL;
    batch_t *mine = batch_of(w);
    memcpy(mine, b, ops);
    w->touch = touch_ops;
    w->lead_at = op_lead;
    char *at = (char *)mine + ops;
    for (int i = 0; i < b->n; i++)
        at = api_texts_copy((text_ref_t *[]){&mine->op[i].patch.v.name, &mine->op[i].patch.v.source}, 2, at);
    return w;
}

/* A batch refused for its body's problems, carried to the writer with the
 * updates' and deletes' well-formed ids, so that the answer names the
 * ids that name no live lead too: every problem at once (extensions.md). */
typedef struct batch_errs {
    verrs_t errs;
    int n;
    named_t nm[];
} batch_errs_t;

static batch_errs_t *errs_of(const api_write_t *w)
{
    return text_aligned(w, _Alignof(batch_errs_t));
}

/* The operation a problem's pointer names ("/operations/N..."), or -1. */
static long op_of(const verr_t *e)
{
    static const char prefix[] = "/operations/";
    if (strncmp(e->pointer, prefix, sizeof prefix - 1) != 0) return -1;
    return strtol(e->pointer + sizeof prefix - 1, NULL, 10);
}

static void run_batch_errors(store_t *s, api_write_t *w)
{
    batch_errs_t *be = errs_of(w);
    verrs_t errs = be->errs;
    if (!named_live(s, w, be->nm, be->n, &errs)) return;
    /* In the operations' order, each operation's own problems first. */
    for (int i = 1; i < errs.n; i++) {
        verr_t e = errs.e[i];
        int j = i;
        for (; j > 0 && op_of(&errs.e[j - 1]) > op_of(&e); j--)
            errs.e[j] = errs.e[j - 1];
        errs.e[j] = e;
    }
    w->status = api_render_errors(&w->out, &errs);
}

/* A write answering errs and the problems of b's ids (run_batch_errors);
 * NULL when none of b's operations names a well-formed id (errs is the
 * whole answer then) or when out of memory (*oom set). */
static api_write_t *errors_write(api_req_t *r, const batch_t *b, const verrs_t *errs, bool *oom)
{
    named_t nm[BATCH_OPS_MAX];
    int n = named_of(b, nm);
    *oom = false;
    if (n == 0 || errs->n == VERRS_MAX) return NULL;
    size_t size = sizeof(batch_errs_t) + (size_t)n * sizeof nm[0];
    api_write_t *w = api_write_new(r, run_batch_errors, _Alignof(batch_errs_t) + size);
    if (w == NULL) {
        *oom = true;
        return NULL;
    }
    batch_errs_t *be = errs_of(w);
    be->errs = *errs;
    be->n = n;
    memcpy(be->nm, nm, (size_t)n * sizeof nm[0]);
    return w;
}

/* Gives each create its id and times. */
static bool ids_given(api_req_t *r, batch_t *b)
{
    for (int i = 0; i < b->n; i++) {
        lead_t *l = &b->op[i].patch.v;
        if (b->op[i].kind != OP_CREATE) continue;
        if (uuid_v7(r->now, l->id) != 0) return false;
        l->created_at = l->updated_at = r->now;
    }
    return true;
}

void leads_batch(api_req_t *r)
{
    json_t *root = api_body_or_reply_kept(r);
    if (root == NULL) return;
    /* The decoded operations, copied into the write (new_write); a few
     * hundred bytes an operation, so from the heap rather than a stack. */
    batch_t *b = calloc(1, sizeof *b + BATCH_OPS_MAX * sizeof(batch_op_t));
    if (b == NULL) {
        json_decref(root);
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
        return;
    }
    verrs_t errs = {0};
    b->n = decode_ops(root, r->req->entity, b, BATCH_OPS_MAX, &errs);
    api_write_t *w = NULL;
    bool oom = false;
    if (errs.n == 0 && errs.dropped == 0)
        w = ids_given(r, b) ? new_write(r, b) : NULL;
    else if (errs.dropped == 0)
        w = errors_write(r, b, &errs, &oom);
    json_decref(root);
    if ((errs.n > 0 || errs.dropped > 0) && w == NULL && !oom)
        api_reply_errors_kept(r, &errs);
    else if (w == NULL)
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
    else
        api_write_submit(r, w);
    free(b);
}
