/*
 * import.c: POST /leads/import (extensions.md, "CSV").
 *
 * The worker reads the whole file once: the header's columns, then every
 * row through the same rules as a JSON body (lead_decode_cell), keeping
 * the first IMPORT_ERRORS_MAX problems and counting the bad rows. A file
 * with a bad row under mode=all is answered 422 there. Otherwise one write
 * carries the file (and, for mode=valid, the rendered problems) to the
 * writer thread, which reads it again and creates every good row in a
 * transaction of its own (api_write_t.alone), each with its lead.created
 * events (outbox.h): all of it is committed, with one sync, or none of
 * it. Reading twice costs less than holding a decoded copy: a 16 MiB file
 * of short rows would decode to far more memory than its text.
 *
 * Sections:
 *   the plan     the header's columns, and what the write carries
 *   rows         one record into a lead, or its problems
 *   the writer   creating the good rows
 *   the handler  checks, the first reading, the answer
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/import.h"

#include "api/change.h"
#include "api/handlers.h"
#include "api/history.h"
#include "api/outbox.h"
#include "api/query.h"
#include "api/request.h"
#include "api/respond.h"
#include "api/resource.h"
#include "api/writer.h"
#include "model/csv.h"
#include "model/event.h"
#include "model/text.h"

/* --- the plan --------------------------------------------------------------- */

/* A problem of the header's column col[0..len) (cut to 64 bytes, at a
 * character boundary). */
static void header_error(verrs_t *errs, const char *code, const char *col, size_t len, const char *fmt)
{
    if (len > 64) {
        len = 64;
        while (len > 0 && ((unsigned char)col[len] & 0xC0) == 0x80)
            len--;
    }
    char pointer[96];
    verrs_pointer(pointer, sizeof pointer, "rows/1", col, len);
    /* The detail names the column as the pointer does: a NUL in it as
     * U+FFFD, not the end of the name. */
    char name[64 * 3 + 1];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < sizeof name; i++) {
        if (col[i] == '\0') {
            memcpy(name + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            name[o++] = col[i];
        }
    }
    verrs_add(errs, code, pointer, NULL, fmt, (int)o, name);
}

/* Whether a header cell is blank (nothing but blanks). */
static bool header_blank(const text_ref_t *cell)
{
    const char *name;
    size_t len, cps;
    return text_clean(cell->ptr, cell->len, false, &name, &len, &cps) == TEXT_OK && len == 0;
}

/* Reads the header row into pl; its problems into errs. */
void import_read_header(csv_reader_t *rd, import_plan_t *pl, verrs_t *errs)
{
    pl->sep = csv_detect_separator(rd);
    if (pl->sep == 0) {
        verrs_add(errs, "validation_error", "/rows/1", NULL,
                  "The header row must separate its columns with , or ; (not both, and no tabs)");
        return;
    }
    rd->sep = pl->sep;
    if (csv_next(rd) != CSV_ROW || rd->too_many) {
        verrs_add(errs, "validation_error", "/rows/1", NULL,
                  rd->too_many ? "The header row has more than 64 columns"
                               : "The file must start with a header row naming the columns");
        return;
    }
    bool seen[CSV_COLS] = {false};
    /* A spreadsheet's trailing separators make blank columns at the end of
     * the header: they are left out (a row's cells past the header's must
     * then be empty, as for any row). */
    pl->ncols = rd->cells;
    while (pl->ncols > 0 && header_blank(&rd->cell[pl->ncols - 1]))
        pl->ncols--;
    for (int i = 0; i < pl->ncols; i++) {
        const char *name;
        size_t len, cps;
        bool clean = text_clean(rd->cell[i].ptr, rd->cell[i].len, false, &name, &len, &cps) == TEXT_OK;
        if (!clean) len = 0;
        int col = csv_col_of(name, len);
        if (clean && len == 0) {
            verrs_add(errs, "validation_error", "/rows/1", NULL, "Column %d of the header has no name",
                      i + 1);
        } else if (col < 0) {
            header_error(errs, "unknown_attribute", rd->cell[i].ptr, rd->cell[i].len,
                         "%.*s is not an attribute of a lead");
        } else if (seen[col]) {
            header_error(errs, "validation_error", name, len, "The column %.*s is named twice");
        }
        if (col >= 0) seen[col] = true;
        pl->col[i] = (signed char)(col < 0 || csv_col_read_only(col) ? -1 : col);
    }
    if (!seen[CSV_NAME])
        header_error(errs, "validation_error", "name", 4, "The header must name the %.*s column");
}

/* --- rows --------------------------------------------------------------------- */

/* Decodes rd's record into p; its problems into errs (p is valid when
 * none was added). */
static void read_row(const import_plan_t *pl, const csv_reader_t *rd, lead_patch_t *p, verrs_t *errs)
{
    memset(p, 0, sizeof *p);
    p->v.probability = -1;
    p->v.stage = STAGE_NEW;
    p->v.status = LEAD_ACTIVE;
    char pointer[96];
    bool extra = rd->too_many;
    for (int i = pl->ncols; i < rd->cells; i++)
        extra |= rd->cell[i].len > 0;
    if (extra) {
        snprintf(pointer, sizeof pointer, "/rows/%d", rd->row);
        verrs_add(errs, "validation_error", pointer, NULL,
                  "Row %d has more cells than the header has columns", rd->row);
    }
    /* The cells' pointers share "/rows/N/", written once for the row: a
     * snprintf for every cell took a sixteenth of an import's instructions
     * (callgrind, bench/results.md). */
    int n = snprintf(pointer, sizeof pointer, "/rows/%d/", rd->row);
    size_t base = n > 0 && (size_t)n < sizeof pointer ? (size_t)n : 0;
    bool named = false;
    for (int i = 0; i < rd->cells && i < pl->ncols; i++) {
        text_ref_t cell = csv_unguard(rd->cell[i]);
        if (pl->col[i] < 0 || cell.len == 0) continue; /* ignored, or unset */
        const char *key = csv_col_name(pl->col[i]);
        named |= pl->col[i] == CSV_NAME;
        size_t klen = strlen(key);
        if (klen > sizeof pointer - base - 1) klen = sizeof pointer - base - 1;
        memcpy(pointer + base, key, klen);
        pointer[base + klen] = '\0';
        lead_decode_cell(key, cell.ptr, cell.len, p, pointer, errs);
    }
    if (!named) {
        snprintf(pointer, sizeof pointer, "/rows/%d/name", rd->row);
        verrs_add(errs, "validation_error", pointer, NULL, "Name can't be blank");
    }
}

/* Keeps a bad row's problems. */
static void keep_errors(import_errs_t *ie, const verrs_t *errs)
{
    ie->failed++;
    for (int i = 0; i < errs->n && ie->n < IMPORT_ERRORS_MAX; i++)
        ie->e[ie->n++] = errs->e[i];
}

/* Reads every row after the header, counting the good ones into pl->good
 * and keeping the bad ones' problems; false when the file is cut by a
 * broken quote (its problem kept). */
bool import_read_rows(csv_reader_t *rd, import_plan_t *pl, import_errs_t *ie)
{
    csv_rc_t rc;
    lead_patch_t p;
    while ((rc = csv_next(rd)) == CSV_ROW) {
        if (rd->blank) continue;
        if (pl->max_rows > 0 && pl->good + ie->failed >= pl->max_rows) {
            pl->too_many = true;
            return false;
        }
        verrs_t errs = {0};
        read_row(pl, rd, &p, &errs);
        if (errs.n > 0)
            keep_errors(ie, &errs);
        else
            pl->good++;
    }
    if (rc != CSV_BAD_QUOTE) return true;
    verrs_t errs = {0};
    char pointer[32];
    snprintf(pointer, sizeof pointer, "/rows/%d", rd->row);
    verrs_add(&errs, "validation_error", pointer, NULL,
              "Row %d has a quoted cell that is not closed, or text after its closing quote", rd->row);
    keep_errors(ie, &errs);
    return false;
}

/* Renders the error objects of ie, comma-separated. */
void import_render_errors(jw_t *w, const import_errs_t *ie)
{
    for (int i = 0; i < ie->n; i++) {
        const verr_t *e = &ie->e[i];
        if (i > 0) jw_lit(w, ",");
        jw_lit(w, "{\"status\":\"422\",\"code\":");
        jw_cstr(w, e->code);
        jw_lit(w, ",\"title\":");
        jw_cstr(w, strcmp(e->code, "unknown_attribute") == 0 ? "Unknown Attribute" : "Validation Error");
        jw_lit(w, ",\"detail\":");
        jw_cstr(w, e->detail);
        jw_lit(w, ",\"source\":{\"pointer\":");
        jw_cstr(w, e->pointer);
        jw_lit(w, "}}");
    }
}

/* --- the writer ------------------------------------------------------------------ */

/* The good rows of a file, one lead at a time (store_lead_next_fn). */
typedef struct row_source {
    store_t *s;
    int64_t app;
    const import_plan_t *pl;
    csv_reader_t rd;
    int64_t now;
    int64_t rows;      /* the leads passed on so far */
    const char *actor; /* who imports: the history's actor */
    lead_patch_t p;
    bool no_events;  /* no webhook wants lead.created (store_event_wanted) */
    bool no_id;      /* no randomness for an id: stopped */
    bool pending;    /* p.v was passed on and its lead.created is not recorded yet */
    store_rc_t fail; /* recording an event failed: stopped */
} row_source_t;

/* Records the lead.created events of the lead passed on last, which the
 * store has taken by the time it asks for the next one: in the same
 * transaction and in the file's order, as a POST /leads would (outbox.h).
 * Its texts still point into the reader's current row. */
static bool record_pending(row_source_t *src)
{
    if (!src->pending) return true;
    src->pending = false;
    const api_change_t c = {
        .kind = CHANGE_LEAD, .action = CHANGE_CREATED, .lead_after = &src->p.v, .no_events = src->no_events};
    int recorded = 0;
    src->fail = api_outbox_record(src->s, src->app, src->now, &c, &recorded);
    if (src->fail == STORE_OK) src->fail = api_history_add(src->s, src->app, src->actor, src->now, &c);
    return src->fail == STORE_OK;
}

static bool next_row(void *ctx, lead_t *lead)
{
    row_source_t *src = ctx;
    if (!record_pending(src)) return false;
    while (!src->no_id && csv_next(&src->rd) == CSV_ROW) {
        if (src->rd.blank) continue;
        verrs_t errs = {0};
        read_row(src->pl, &src->rd, &src->p, &errs);
        if (errs.n > 0) continue;
        /* The store numbers the leads created in one millisecond, and has
         * room for about two million (store/find.h, FQ_KEY_SLOTS): a file
         * of millions of rows (crmd import has no cap) moves on a
         * millisecond every IMPORT_ROWS_PER_MS. */
        int64_t at = src->now + src->rows++ / IMPORT_ROWS_PER_MS;
        src->no_id = uuid_v7(at, src->p.v.id) != 0;
        src->p.v.created_at = src->p.v.updated_at = at;
        *lead = src->p.v;
        src->pending = !src->no_id;
        return !src->no_id;
    }
    return false;
}

store_rc_t import_create_rows(store_t *s, int64_t app, int64_t now, const char *actor,
                              const import_plan_t *pl, const char *body, size_t len, int64_t *created)
{
    row_source_t *src = calloc(1, sizeof *src);
    if (src == NULL) return STORE_UNAVAILABLE;
    *src = (row_source_t){.s = s, .app = app, .pl = pl, .now = now, .actor = actor};
    csv_reader_init(&src->rd, body, len);
    src->rd.sep = pl->sep;
    csv_next(&src->rd); /* the header */
    store_rc_t rc = api_change_creates_unwanted(s, app, &src->no_events);
    *created = 0;
    if (rc == STORE_OK) rc = store_lead_create_many(s, app, next_row, src, created);
    /* The store asks again after the last lead it inserted, so none is
     * left pending; this only guards that promise. */
    if (rc == STORE_OK && !record_pending(src)) rc = src->fail;
    if (rc == STORE_OK && src->fail != STORE_OK) rc = src->fail;
    if (rc == STORE_OK && src->no_id) rc = STORE_UNAVAILABLE;
    csv_reader_free(&src->rd);
    free(src);
    /* The two readings must agree. */
    return rc == STORE_OK && *created != pl->good ? STORE_ERROR : rc;
}

/* Creates the good rows of the file the write carries; any failure leaves
 * the status >= 300, and the transaction (the write's own) is undone. */
static void run_import(store_t *s, api_write_t *w)
{
    import_plan_t pl;
    memcpy(&pl, w->text, sizeof pl);
    const char *errors = w->text + sizeof pl, *body = errors + pl.errors_len;
    int64_t created;
    store_rc_t rc = import_create_rows(s, w->app, w->now, w->actor, &pl, body, pl.body_len, &created);
    if (rc == STORE_OK) {
        jw_lit(&w->out, "{\"meta\":{\"created\":");
        jw_int(&w->out, created);
        jw_lit(&w->out, ",\"failed\":");
        jw_int(&w->out, pl.failed);
        if (pl.valid_mode) {
            jw_lit(&w->out, ",\"errors\":[");
            jw_raw(&w->out, errors, pl.errors_len);
            jw_lit(&w->out, "]");
        }
        jw_lit(&w->out, "}}");
    }
    api_write_answer(w, rc, 200, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL);
}

/* --- the handler ------------------------------------------------------------------ */

/* Whether the parameter p (n bytes, trimmed) of a text/csv type is one
 * crmd reads its files by: the charset UTF-8, or RFC 4180's header=present
 * (crmd always reads the first row as the header). */
static bool csv_param_ok(const char *p, size_t n)
{
    return h2o_lcstris(p, n, H2O_STRLIT("charset=utf-8")) ||
           h2o_lcstris(p, n, H2O_STRLIT("charset=\"utf-8\"")) ||
           h2o_lcstris(p, n, H2O_STRLIT("header=present"));
}

/* Whether a Content-Type is text/csv, its parameters (if any) all ones of
 * csv_param_ok. */
static bool is_csv_type(h2o_iovec_t ct)
{
    const char *p = ct.base, *end = ct.base + ct.len;
    bool first = true;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi != NULL ? semi : end;
        const char *b = p, *e = stop;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (first ? !h2o_lcstris(b, (size_t)(e - b), H2O_STRLIT("text/csv"))
                  : !csv_param_ok(b, (size_t)(e - b)))
            return false;
        first = false;
        if (semi == NULL) break;
        p = semi + 1;
    }
    return true;
}

/* The mode (into pl) and the body's type and encoding; false when r has
 * been answered. */
static bool checks_or_reply(api_req_t *r, import_plan_t *pl)
{
    verrs_t errs = r->query->errs;
    h2o_iovec_t mode = api_query(r, "mode");
    pl->valid_mode = mode.base != NULL && h2o_memis(mode.base, mode.len, H2O_STRLIT("valid"));
    if (mode.base != NULL && !pl->valid_mode && !h2o_memis(mode.base, mode.len, H2O_STRLIT("all")))
        verrs_add(&errs, "validation_error", NULL, "mode", "mode must be all or valid");
    if (errs.n > 0) {
        api_reply_errors_kept(r, &errs);
        return false;
    }
    h2o_req_t *req = r->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0 || !is_csv_type(req->headers.entries[i].value) || api_body_coded(r)) {
        api_reply_kept(r, api_render_error(&r->out, 415, "Unsupported Media Type",
                                           "Send the file as text/csv (UTF-8), without a Content-Encoding."));
        return false;
    }
    if (!text_utf8_valid(req->entity.base, req->entity.len)) {
        api_reply_kept(r, api_render_error(&r->out, 400, "Bad Request",
                                           "The file is not UTF-8; save it as CSV UTF-8 and send it again."));
        return false;
    }
    return true;
}

/* Answers a mode=all import with bad rows: every problem (at most
 * IMPORT_ERRORS_MAX) and the number of bad rows. */
static void reply_bad_rows(api_req_t *r, const import_errs_t *ie)
{
    jw_t *w = &r->out;
    jw_reset(w);
    jw_lit(w, "{\"errors\":[");
    import_render_errors(w, ie);
    jw_lit(w, "],\"meta\":{\"failed\":");
    jw_int(w, ie->failed);
    jw_lit(w, "}}");
    api_reply_kept(r, 422);
}

/* Queues the write that creates the good rows. */
static void submit(api_req_t *r, import_plan_t *pl, const import_errs_t *ie)
{
    jw_t errors = {0};
    if (pl->valid_mode) import_render_errors(&errors, ie);
    pl->errors_len = errors.len;
    /* The writer reads the file again for its good rows only: a file with
     * none (mode=valid, every row refused) is not carried, where its 16
     * MiB waited in the writer's queue and were read again for nothing
     * (review rv86). */
    pl->body_len = pl->good > 0 ? r->req->entity.len : 0;
    api_write_t *w = errors.oom ? NULL : api_write_new(r, run_import, sizeof *pl + errors.len + pl->body_len);
    if (w != NULL) {
        w->alone = true;
        memcpy(w->text, pl, sizeof *pl);
        if (errors.len > 0) memcpy(w->text + sizeof *pl, errors.buf, errors.len);
        if (pl->body_len > 0) memcpy(w->text + sizeof *pl + errors.len, r->req->entity.base, pl->body_len);
    }
    jw_free(&errors);
    api_write_submit(r, w);
}

_Static_assert(IMPORT_ROWS_MAX == 100000, "the 413's detail names the limit");

void leads_import(api_req_t *r)
{
    import_plan_t pl = {.max_rows = IMPORT_ROWS_MAX};
    /* The file is checked here, on the loop, every request of the thread
     * waiting (up to 0.4 s for 16 MiB): its app pays for that time as for
     * a read's, where before one app's refused imports on two connections
     * held both threads of a server most of the time at no cost (review
     * rv86: another app's list at p90 955 ms). */
    int64_t t0 = api_loop_begin();
    if (!checks_or_reply(r, &pl)) {
        api_loop_charge(r->app.id, r->now, t0);
        return;
    }
    csv_reader_t rd;
    csv_reader_init(&rd, r->req->entity.base, r->req->entity.len);
    verrs_t head = {0};
    import_read_header(&rd, &pl, &head);
    import_errs_t ie = {.e = head.n == 0 ? malloc(IMPORT_ERRORS_MAX * sizeof *ie.e) : NULL};
    bool whole = head.n == 0 && ie.e != NULL && import_read_rows(&rd, &pl, &ie);
    pl.failed = ie.failed;
    csv_reader_free(&rd);
    api_loop_charge(r->app.id, r->now, t0);
    if (head.n > 0)
        api_reply_errors_kept(r, &head);
    else if (ie.e == NULL)
        api_reply_error(r, 503, "Service Unavailable", "The server is out of memory.");
    else if (pl.too_many)
        api_reply_kept(
            r, api_render_error(
                   &r->out, 413, "Payload Too Large",
                   "An import takes at most 100,000 rows; split the file, or use crmd import, which takes "
                   "any number."));
    else if (!whole || (ie.failed > 0 && !pl.valid_mode))
        reply_bad_rows(r, &ie);
    else
        submit(r, &pl, &ie);
    free(ie.e);
}
