/*
 * csvcmd.c: see csvcmd.h.
 */
#include "api/csvcmd.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api/find.h"
#include "api/import.h"
#include "api/query.h"
#include "api/routes.h"
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

/* The query's parts live in the pool of a request of its own, read as
 * GET /leads/ would read it. */
struct csvcmd_query {
    h2o_req_t req;
    api_req_t r;
    store_lead_query_t q;
};

static void print_problem(FILE *err, const char *what, const char *pointer, const char *detail);

/* What an export has no use for: it holds every lead the filters keep. */
static void no_paging(api_req_t *r, verrs_t *errs)
{
    static const char *const NAMES[] = {"page", "records", "cursor", "count", "format"};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (api_query_value(r, NAMES[i]).base != NULL)
            verrs_add(errs, "validation_error", NULL, NAMES[i],
                      "%s does not apply to crmd export, which writes every lead the filters keep as CSV",
                      NAMES[i]);
}

int csvcmd_query_parse(const char *query, csvcmd_query_t **out, FILE *err)
{
    csvcmd_query_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        fprintf(err, "crmd: export: out of memory\n");
        return 1;
    }
    h2o_mem_init_pool(&c->req.pool);
    api_req_t *r = &c->r;
    r->req = &c->req;
    r->now = ts_now_ms();
    if (query != NULL && query[0] == '?') query++;
    size_t n = query != NULL ? strlen(query) : 0;
    r->path = h2o_concat(&c->req.pool, h2o_iovec_init(H2O_STRLIT("/leads/?")), h2o_iovec_init(query, n));
    r->query_at = n > 0 ? 7 : SIZE_MAX;
    api_route_match_t m;
    api_route_match("/leads/", 7, METHOD_GET, &m);
    r->route = m.route;
    assert(r->route != NULL);
    verrs_t errs = {0};
    if (api_query_load(r)) {
        errs = r->query->errs;
        api_lead_query_parse(r, &c->q, &errs);
        no_paging(r, &errs);
    }
    for (int i = 0; i < errs.n; i++)
        print_problem(err, "export: --query", errs.e[i].parameter, errs.e[i].detail);
    int status = r->query == NULL ? 1 : errs.n > 0 ? 2 : 0;
    if (r->query == NULL) fprintf(err, "crmd: export: out of memory\n");
    if (status != 0) {
        csvcmd_query_free(c);
        c = NULL;
    }
    *out = c;
    return status;
}

void csvcmd_query_free(csvcmd_query_t *q)
{
    if (q == NULL) return;
    h2o_mem_clear_pool(&q->req.pool);
    free(q);
}

int csvcmd_export(store_t *s, int64_t app, const csvcmd_query_t *query, FILE *out, FILE *err)
{
    cmd_export_t *x = calloc(1, sizeof *x);
    store_lead_query_t *q = malloc(sizeof *q);
    store_pos_t *after = malloc(sizeof *after);
    int status = x != NULL && q != NULL && after != NULL ? 0 : 1;
    if (status == 0) {
        *q = query->q;
        q->limit = CMD_PAGE;
        q->now = query->r.now;
        x->norder = store_lead_order(q->sort, q->nsort, x->order);
        csv_write_header(&x->out);
    }
    /* One snapshot for every page: a lead changed meanwhile (under a sort
     * by what changed) would otherwise be written twice, or not at all. */
    bool snapshot = status == 0 && store_snapshot_begin(s) == STORE_OK;
    if (status == 0 && !snapshot) {
        fprintf(err, "crmd: export: the database failed to read the leads\n");
        status = 1;
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
    if (snapshot) store_snapshot_end(s);
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
static void print_escaped(FILE *err, const char *t)
{
    for (const unsigned char *c = (const unsigned char *)t; *c != '\0'; c++)
        if (*c < 0x20 || *c == 0x7f)
            fprintf(err, "\\x%02x", *c);
        else
            fputc(*c, err);
}

static void print_problem(FILE *err, const char *what, const char *pointer, const char *detail)
{
    fprintf(err, "crmd: %s: ", what);
    if (pointer[0] != '\0') {
        print_escaped(err, pointer);
        fputs(": ", err);
    }
    print_escaped(err, detail);
    fputc('\n', err);
}

/* Prints the problems found in a file, as the API reports them. */
static void print_problems(FILE *err, const verrs_t *head, const import_errs_t *ie)
{
    for (int i = 0; i < head->n; i++)
        print_problem(err, "import", head->e[i].pointer, head->e[i].detail);
    for (int i = 0; ie != NULL && i < ie->n; i++)
        print_problem(err, "import", ie->e[i].pointer, ie->e[i].detail);
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
