/*
 * find.c: the find reads on SQLite (store_lead_find, store_follow_find,
 * store_lead_summary): each is one statement written by store/find.c,
 * prepared through conn.c's cache, bound and stepped here.
 *
 * Search by the trigram index pays off when few leads hold the term; when
 * many do (a syllable most names share), walking the sort's index and
 * looking at each row finds a page after a few rows, where the index would
 * hand over all of them first. So a term of three characters or more is
 * first looked up in the index, up to SEARCH_DENSE matches, and the plan
 * chosen by their number; the statement then takes the rowids read (a
 * JSON array through json_each) rather than asking the index again.
 *
 * Each read runs in the snapshot its thread holds for the loop's turn
 * (sq_hold, conn.c), as a shallow list does: a find is two statements or
 * more (the plan's probe of the kept totals, then the page), and a read
 * transaction of its own for each cost about a tenth of a filtered page's
 * CPU in taking and leaving the WAL's read lock.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store/find.h"
#include "store/sqlite/sqlite_int.h"

/* A term that this many leads (of any app) hold is searched by walking. */
#define SEARCH_DENSE FQ_SMALL

/* The matches of a term, up to SEARCH_DENSE of them, as a JSON array of
 * rowids: at most 20 digits and a comma each, and the brackets. */
#define SEARCH_ROWIDS_MAX (SEARCH_DENSE * 21 + 3)
typedef struct search_rowids {
    char json[SEARCH_ROWIDS_MAX];
} search_rowids_t;

static const char probe_sql[] = "SELECT rowid FROM lead_fts WHERE lead_fts MATCH ?1 LIMIT ?2";

/* Reads the rowids of the term's matches (up to SEARCH_DENSE) into out as
 * JSON; their number, SEARCH_DENSE on failure. */
static int probe_rowids(sqlite_store_t *s, fq_t *q, text_ref_t term, search_rowids_t *out)
{
    sqlite3_stmt *st = sq_dyn_stmt(s, probe_sql);
    if (st == NULL) return SEARCH_DENSE;
    text_ref_t match = fq_fts_match(q, term);
    sqlite3_bind_text(st, 1, match.ptr, (int)match.len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, SEARCH_DENSE);
    int n = 0, src;
    size_t len = 1;
    out->json[0] = '[';
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int w = snprintf(out->json + len, sizeof out->json - len, n > 0 ? ",%lld" : "%lld",
                         (long long)sqlite3_column_int64(st, 0));
        assert(w > 0 && (size_t)w < sizeof out->json - len);
        len += (size_t)w;
        n++;
    }
    sq_reset(st);
    if (src != SQLITE_DONE) return SEARCH_DENSE;
    memcpy(out->json + len, "]", 2);
    q->fts_rowids = (text_ref_t){out->json, len + 1};
    return n;
}

/* How q should search for term (see above); when through the index, with
 * the matches' rowids read into rowids for q's statement. */
static enum fq_search choose_search(sqlite_store_t *s, fq_t *q, text_ref_t term, search_rowids_t *rowids)
{
    if (term.ptr == NULL) return FQ_SEARCH_INDEX;
    if (fq_codepoints(term) < FQ_TRIGRAM) return FQ_SEARCH_SCAN;
    if (probe_rowids(s, q, term, rowids) < SEARCH_DENSE) return FQ_SEARCH_INDEX;
    q->fts_rowids = (text_ref_t){NULL, 0};
    return FQ_SEARCH_SCAN;
}

/* The one number a statement of fq_lead_probe or fq_totals_count gives;
 * -1 on failure. */
static int64_t count_of(sqlite_store_t *s, const fq_t *q, bool built)
{
    int64_t n = -1;
    return sq_fq_number(s, q, built, &n) == STORE_OK ? n : -1;
}

/* Whether the leads lq's filters other than search keep are fewer than
 * FQ_SMALL: counted from the kept totals when they filter by stage,
 * status and source only, else by a capped count. */
static bool few_beyond_search(sqlite_store_t *s, int64_t app, const store_lead_query_t *lq)
{
    store_lead_filter_t rest = lq->f;
    rest.search = (text_ref_t){NULL, 0};
    fq_t probe;
    fq_init(&probe, false);
    int64_t n = fq_by_totals_only(&rest)
                    ? count_of(s, &probe, fq_totals_count(&probe, app, &rest))
                    : count_of(s, &probe, fq_lead_probe(&probe, app, &rest, lq->now, FQ_SMALL));
    return n >= 0 && n < FQ_SMALL;
}

/* How a lead find runs (fq_plan): a search the trigram index narrows
 * drives it; otherwise, when it filters by more than its sort's column,
 * the size of the filtered set (up to FQ_SMALL: from the kept totals when
 * it filters by stage, status and source only, else by a capped count)
 * decides. A search that looks at each row is left out of that count:
 * counting its matches would look at rows until FQ_SMALL of them match,
 * which for a term held by one lead in a thousand is most of the app,
 * while a small set of the other filters is cheap to look through and a
 * large one is walked in the sort's order anyway. */
static void choose_plan(sqlite_store_t *s, fq_t *q, int64_t app, const store_lead_query_t *lq,
                        search_rowids_t *rowids)
{
    q->search = choose_search(s, q, lq->f.search, rowids);
    bool searching = lq->f.search.ptr != NULL;
    if (searching && q->search == FQ_SEARCH_INDEX) {
        q->plan = FQ_PLAN_FILTER;
        return;
    }
    store_lead_query_t rest = *lq;
    rest.f.search = (text_ref_t){NULL, 0};
    if (!fq_lead_filters_beyond_sort(&rest)) {
        if (searching) q->plan = FQ_PLAN_SORT;
        return;
    }
    q->plan = few_beyond_search(s, app, lq) ? FQ_PLAN_FILTER : FQ_PLAN_SORT;
}

/* Whether lq is best served by walking the search index in its order
 * (search.c): yes, unless its other filters keep few leads (then their
 * indexes find them sooner, as choose_plan does). */
static bool walks_search(sqlite_store_t *s, int64_t app, const store_lead_query_t *lq)
{
    if (!fq_lead_walks_search(lq)) return false;
    store_lead_query_t rest = *lq;
    rest.f.search = (text_ref_t){NULL, 0};
    return !fq_lead_filters_beyond_sort(&rest) || !few_beyond_search(s, app, lq);
}

/* Steps a find statement: the count of its first row into *total (-1 when
 * NULL), each record from column c0 to emit; *rows counts the rows. */
static store_rc_t step_find(sqlite_store_t *s, sqlite3_stmt *st, int c0, sq_row_at_fn emit, void *cb,
                            void *ctx, int64_t *total, int *rows)
{
    int src;
    *total = -1;
    *rows = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if ((*rows)++ == 0 && sqlite3_column_type(st, 0) != SQLITE_NULL) *total = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, c0) != SQLITE_NULL) emit(st, c0, cb, ctx);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

/* Runs q's find statement once written (built true), its records to emit. */
static store_rc_t run_find(sqlite_store_t *s, const fq_t *q, bool built, sq_row_at_fn emit, void *cb,
                           void *ctx, int64_t *total, int *rows)
{
    sqlite3_stmt *st = built ? sq_fq_stmt(s, q) : NULL;
    if (st == NULL) return STORE_ERROR;
    return step_find(s, st, q->c0, emit, cb, ctx, total, rows);
}

store_rc_t sq_lead_find(store_t *base, int64_t app, const store_lead_query_t *lq, int64_t *total,
                        store_lead_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    store_rc_t rc;
    if (walks_search(s, app, lq) && sq_search_walk(s, app, lq, total, cb, ctx, &rc))
        return sq_held_done(s, rc);
    fq_t q;
    fq_init(&q, false);
    search_rowids_t rowids;
    choose_plan(s, &q, app, lq, &rowids);
    int rows;
    rc = run_find(s, &q, fq_lead_find(&q, app, lq), sq_emit_lead_at, (void *)cb, ctx, total, &rows);
    return sq_held_done(s, rc);
}

store_rc_t sq_follow_find(store_t *base, int64_t app, const store_follow_query_t *fq, int64_t *total,
                          store_follow_cb cb, void *ctx, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    fq_t q;
    fq_init(&q, false);
    int rows;
    store_rc_t rc = sq_held_done(
        s, run_find(s, &q, fq_follow_find(&q, app, fq), sq_emit_follow_at, (void *)cb, ctx, total, &rows));
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc; /* not even the lead */
}

/* The summary's statement, run on s. */
static store_rc_t summary_of(sqlite_store_t *s, int64_t app, const store_lead_filter_t *f, int64_t now,
                             store_summary_t *out)
{
    fq_t q;
    fq_init(&q, false);
    search_rowids_t rowids;
    q.search = choose_search(s, &q, f->search, &rowids);
    if (!fq_lead_summary(&q, app, f, now)) return STORE_ERROR;
    sqlite3_stmt *st = sq_fq_stmt(s, &q);
    if (st == NULL) return STORE_ERROR;
    *out = (store_summary_t){0};
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t row[8];
        for (int i = 0; i < 8; i++)
            row[i] = sqlite3_column_int64(st, i);
        fq_summary_add(out, f, row);
    }
    store_rc_t rc = src == SQLITE_DONE ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    return rc;
}

store_rc_t sq_lead_summary(store_t *base, int64_t app, const store_lead_filter_t *f, int64_t now,
                           store_summary_t *out, const store_async_t *async)
{
    (void)async;
    sqlite_store_t *s = sq_of_read(base);
    sq_hold(s);
    return sq_held_done(s, summary_of(s, app, f, now, out));
}
