/*
 * csvcmd.c: see csvcmd.h.
 */
#include "api/csvcmd.h"

#include <stdlib.h>

#include "api/import.h"
#include "model/text.h"
#include "model/timestamp.h"

/* Leads read per page of an export. */
#define CMD_PAGE 1000

typedef struct cmd_export {
    jw_t out;
    int n;
    int norder;
    store_sort_t order[STORE_SORT_MAX];
    store_pos_t last;
} cmd_export_t;

static void emit(void *ctx, const lead_t *l)
{
    cmd_export_t *x = ctx;
    x->n++;
    csv_write_lead(&x->out, l);
    store_lead_pos(l, x->order, x->norder, &x->last);
}

int csvcmd_export(store_t *s, int64_t app, FILE *out, FILE *err)
{
    cmd_export_t *x = calloc(1, sizeof *x);
    store_lead_query_t *q = calloc(1, sizeof *q);
    store_pos_t *after = malloc(sizeof *after);
    int status = x != NULL && q != NULL && after != NULL ? 0 : 1;
    if (status == 0) {
        store_lead_filter_init(&q->f);
        q->limit = CMD_PAGE;
        q->now = ts_now_ms();
        x->norder = store_lead_order(q->sort, q->nsort, x->order);
        csv_write_header(&x->out);
    }
    int64_t total;
    for (store_rc_t rc = STORE_OK; status == 0;) {
        x->n = 0;
        rc = store_lead_find(s, app, q, &total, emit, x, NULL);
        if (rc != STORE_OK || x->out.oom || fwrite(x->out.buf, 1, x->out.len, out) != x->out.len) {
            fprintf(err, "crmd: export: %s\n",
                    rc != STORE_OK ? "the database failed to read the leads" : "cannot write the output");
            status = 1;
        }
        if (x->n < CMD_PAGE) break;
        jw_reset(&x->out);
        store_pos_copy(after, &x->last);
        q->after = after;
    }
    if (status == 0 && fflush(out) != 0) {
        fprintf(err, "crmd: export: cannot write the output\n");
        status = 1;
    }
    if (x != NULL) jw_free(&x->out);
    free(x);
    free(q);
    free(after);
    return status;
}

/* Prints one problem. Its pointer and detail may quote the file's own
 * text (a column's name): control characters go out as \xNN, so a file
 * cannot send escape sequences to the terminal. */
static void print_problem(FILE *err, const char *pointer, const char *detail)
{
    fputs("crmd: import: ", err);
    for (const char *t = pointer;; t = detail) {
        for (const unsigned char *c = (const unsigned char *)t; *c != '\0'; c++)
            if (*c < 0x20 || *c == 0x7f)
                fprintf(err, "\\x%02x", *c);
            else
                fputc(*c, err);
        if (t == detail) break;
        fputs(": ", err);
    }
    fputc('\n', err);
}

/* Prints the problems found in a file, as the API reports them. */
static void print_problems(FILE *err, const verrs_t *head, const import_errs_t *ie)
{
    for (int i = 0; i < head->n; i++)
        print_problem(err, head->e[i].pointer, head->e[i].detail);
    for (int i = 0; ie != NULL && i < ie->n; i++)
        print_problem(err, ie->e[i].pointer, ie->e[i].detail);
    if (ie != NULL && ie->failed > ie->n)
        fprintf(err, "crmd: import: ... and more (%lld bad rows in all)\n", (long long)ie->failed);
}

/* Checks the file; false (problems printed) when nothing may be imported. */
static bool check_file(const char *body, size_t len, bool valid, import_plan_t *pl, FILE *err)
{
    if (!text_utf8_valid(body, len)) {
        fprintf(err, "crmd: import: the file is not UTF-8; save it as CSV UTF-8\n");
        return false;
    }
    csv_reader_t rd;
    csv_reader_init(&rd, body, len);
    verrs_t head = {0};
    import_read_header(&rd, pl, &head);
    import_errs_t ie = {.e = head.n == 0 ? malloc(IMPORT_ERRORS_MAX * sizeof *ie.e) : NULL};
    bool whole = head.n == 0 && ie.e != NULL && import_read_rows(&rd, pl, &ie);
    csv_reader_free(&rd);
    pl->failed = ie.failed;
    print_problems(err, &head, ie.e != NULL ? &ie : NULL);
    free(ie.e);
    if (head.n == 0 && ie.e == NULL) fprintf(err, "crmd: import: out of memory\n");
    bool ok = whole && (valid || pl->failed == 0);
    if (!ok && head.n == 0 && ie.e != NULL) fprintf(err, "crmd: import: nothing was imported\n");
    return ok;
}

int csvcmd_import(store_t *s, int64_t app, const char *body, size_t len, bool valid, FILE *out, FILE *err)
{
    import_plan_t pl = {.valid_mode = valid};
    if (!check_file(body, len, valid, &pl, err)) return 1;
    /* One transaction: every row or none. */
    int64_t created = 0;
    store_rc_t rc = store_batch_begin(s);
    if (rc == STORE_OK) rc = import_create_rows(s, app, ts_now_ms(), "cli", &pl, body, len, &created);
    store_rc_t end = store_batch_end(s, rc == STORE_OK);
    if (rc == STORE_OK) rc = end;
    if (rc != STORE_OK) {
        fprintf(err, "crmd: import: the database failed (%s); nothing was imported\n",
                rc == STORE_UNAVAILABLE ? "unavailable, try again" : "error");
        return 1;
    }
    fprintf(out, "imported %lld leads, %lld rows refused\n", (long long)created, (long long)pl.failed);
    return 0;
}
