/*
 * search.c: a search of three characters or more in the list's own order
 * (created_at, then id), read from the trigram index in that order.
 *
 * The search index's keys are ordered as the list, newest first (sql.c,
 * migration 10): walking a term's matches by key finds a page after a
 * page's worth of them, however many leads hold the term, instead of
 * walking the newest leads and looking at each (a term one lead in a
 * thousand holds), or reading every match and sorting them. Matches of
 * other apps are passed over. The keys of one created_at (one range) are
 * in no particular order, and the list orders its ties by id: each range
 * is read whole and sorted before its rows count, so the walk reads on to
 * the end of the range that fills the page. The page's leads are then
 * read by their keys, and its count, when asked for, by the index too; all
 * of it in one read transaction, so the page and its count agree.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/find.h"
#include "store/sqlite/sqlite_int.h"

/* A range with more matches than this (an import's leads stamped alike,
 * all holding the term) is left to the other plans, which sort in SQL. */
#define RANGE_MAX 4096
/* Room for this many rows of a range at first, more as they come (room
 * for RANGE_MAX at once is a block mapped and unmapped at every search:
 * 114 against 80 us of crmd CPU a search at 10,000 leads). */
#define ROWS_FIRST 64
/* A page of more rows than this (a CSV export reads 1,000) too. */
#define PAGE_MAX 2048

typedef char lead_id_t[UUID_BUFSZ];

/* After this many other apps' matches, a walk asks the index for its
 * app's only (their app_f token): each of them costs a lead_text read,
 * and the token's matches, an app's every lead, cost a read of the index
 * however few of them other apps' leads are. */
#define OTHERS_MAX 32

/* A term of this many code points or more (three trigrams) is first
 * looked up in the index in ascending key order, which FTS5 reads at two
 * thirds of the cost of descending (its doclists are written forwards),
 * up to RARE_MAX matches: when there are no more, they are the walk's,
 * in its order, and the index is not asked again. A rare term (five
 * digits of a number, a name) has all its matches read by any walk,
 * whose cost is the whole doclists of its trigrams; a common one of
 * that length costs the walk this first read of RARE_MAX + 1 keys more. */
#define RARE_CHARS 5
#define RARE_MAX 64
/* The keys as a JSON array: up to 20 characters and a comma each. */
#define RARE_JSON_MAX (RARE_MAX * 21 + 3)

/* A walk in progress: the page so far, the range being read. */
typedef struct walk {
    int64_t app;
    text_ref_t keys; /* a rare term's matches (rare_keys), or none */
    int limit, n;    /* the page's rows wanted and found */
    int64_t skip;    /* rows still to skip (the page's offset) */
    bool newest;     /* the list's order is newest first */
    bool id_desc;    /* ties by id descending */
    uint64_t range;  /* the key's bits above the slot, of the rows in rows */
    int nr, rcap;    /* rows of that range read, and room for them */
    int others;      /* other apps' matches passed over */
    int64_t lo, hi;  /* the keys the walk may read (both included) */
    int64_t last;    /* the last key read */
    lead_id_t *page; /* [limit] */
    lead_id_t *rows; /* [rcap], grown up to RANGE_MAX */
} walk_t;

/* How a walk's statement ended. */
enum walk_end {
    WALK_DONE,   /* the page is read */
    WALK_OTHERS, /* OTHERS_MAX other apps' matches: go on by app */
    WALK_RANGE,  /* a range of over RANGE_MAX rows: another plan */
    WALK_FAILED
};

static int id_asc(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int id_desc(const void *a, const void *b)
{
    return strcmp(b, a);
}

/* The range read is whole: its rows, in the order's, to skip or page. */
static void flush_range(walk_t *w)
{
    if (w->skip >= w->nr) {
        w->skip -= w->nr; /* all of it before the page: no need to sort */
        w->nr = 0;
        return;
    }
    qsort(w->rows, (size_t)w->nr, sizeof *w->rows, w->id_desc ? id_desc : id_asc);
    for (int i = 0; i < w->nr && w->n < w->limit; i++) {
        if (w->skip > 0)
            w->skip--;
        else
            memcpy(w->page[w->n++], w->rows[i], sizeof *w->rows);
    }
    w->nr = 0;
}

/* Room in w->rows for one more row: false when out of memory. */
static bool room_for_row(walk_t *w)
{
    if (w->nr < w->rcap) return true;
    int cap = w->rcap * 2 < RANGE_MAX ? w->rcap * 2 : RANGE_MAX;
    lead_id_t *rows = realloc(w->rows, (size_t)cap * sizeof *rows);
    if (rows == NULL) return false;
    w->rows = rows;
    w->rcap = cap;
    return true;
}

/* Adds the row at st to the range being read, after the range before it
 * (when its range is new) to the page: false when the page is full. */
static bool add_row(walk_t *w, sqlite3_stmt *st, bool ours, enum walk_end *end)
{
    int64_t key = sqlite3_column_int64(st, 0);
    uint64_t range = (uint64_t)key >> FQ_KEY_BITS;
    w->last = key;
    if (w->nr > 0 && range != w->range) {
        flush_range(w);
        if (w->n == w->limit) return false;
    }
    if (!ours) return true;
    const unsigned char *id = sqlite3_column_text(st, 1);
    int len = sqlite3_column_bytes(st, 1);
    if (w->nr == RANGE_MAX) {
        *end = WALK_RANGE;
        return false;
    }
    if (id == NULL || len >= UUID_BUFSZ || !room_for_row(w)) {
        *end = WALK_FAILED; /* lead_text holds lead ids only */
        return false;
    }
    memcpy(w->rows[w->nr], id, (size_t)len);
    w->rows[w->nr++][len] = '\0';
    w->range = range;
    return true;
}

/* Steps the walk's statement until the page is full and its last range
 * read (*rc the failure, if any). */
static enum walk_end walk_rows(sqlite_store_t *s, sqlite3_stmt *st, walk_t *w, store_rc_t *rc)
{
    int src;
    enum walk_end end = WALK_DONE;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        bool ours = sqlite3_column_int64(st, 2) == w->app;
        if (!add_row(w, st, ours, &end)) {
            if (end == WALK_FAILED) *rc = STORE_ERROR;
            return end;
        }
        if (!ours && ++w->others == OTHERS_MAX) return WALK_OTHERS;
    }
    if (src != SQLITE_DONE) {
        *rc = sq_map_rc(s, src);
        return WALK_FAILED;
    }
    flush_range(w);
    return WALK_DONE;
}

/* The page's leads, by their keys, in the page's order. */
static const char page_sql[] = "SELECT " SCHEMA_LEAD_COLS_L " FROM json_each(?2) AS j CROSS JOIN leads AS l "
                               "WHERE l.app_id = ?1 AND l.id = j.value ORDER BY j.key";

static store_rc_t emit_page(sqlite_store_t *s, int64_t app, const walk_t *w, store_lead_cb cb, void *ctx)
{
    if (w->n == 0) return STORE_OK;
    size_t cap = (size_t)w->n * (UUID_BUFSZ + 3) + 3, len = 0;
    char *json = malloc(cap);
    if (json == NULL) return STORE_ERROR;
    json[len++] = '[';
    for (int i = 0; i < w->n; i++) {
        size_t m = strlen(w->page[i]);
        if (i > 0) json[len++] = ',';
        json[len++] = '"';
        memcpy(json + len, w->page[i], m);
        len += m;
        json[len++] = '"';
    }
    json[len++] = ']';
    assert(len <= cap);
    sqlite3_stmt *st = sq_dyn_stmt(s, page_sql);
    store_rc_t rc = STORE_ERROR;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_text(st, 2, json, (int)len, SQLITE_STATIC);
        int n = 0;
        rc = sq_step_rows(s, st, sq_emit_lead, (void *)cb, ctx, &n);
        sq_reset(st);
    }
    free(json);
    return rc;
}

/* Whether other apps hold more than a third of the SQ_SEARCH_SAMPLE
 * leads where the walk begins (the app's newest, or its oldest, or those
 * after its cursor). Their matches cost the walk a lead_text read each before
 * it passes over them; asking the index for the app's matches instead
 * costs a third to a half more of the index's work (its token's doclist
 * is as long as the app): worth it when other apps' leads are that
 * dense, and the leads where a walk begins tell what it would meet (when
 * another app holds the newest leads, a walk of every app's matches read
 * OTHERS_MAX of them first: 230 against 124 us for a term of 3 digits at
 * 1,000,000 leads, 485 against 230 for 4, in Python's sqlite3). */
static bool others_ahead(sqlite_store_t *s, const walk_t *w)
{
    sqlite3_stmt *st = sq_stmt(s, w->newest ? Q_SEARCH_OTHERS_NEWEST : Q_SEARCH_OTHERS_OLDEST);
    if (st == NULL) return false; /* a walk of every app's matches answers alike */
    sqlite3_bind_int64(st, 1, w->app);
    sqlite3_bind_int64(st, 2, w->newest ? w->hi : w->lo);
    int64_t others = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sq_reset(st);
    return others * 3 > SQ_SEARCH_SAMPLE;
}

/* The probe of a rare term's matches (see RARE_CHARS). */
static const char rare_sql[] =
    "SELECT rowid FROM lead_fts WHERE lead_fts MATCH ?1 AND rowid BETWEEN ?3 AND ?4 ORDER BY rowid LIMIT ?2";

/* Writes the keys of term's matches (every app's, in the walk's span)
 * into json, in the walk's order (newest: descending), when there are
 * RARE_MAX or fewer; else (or when the read fails: the walk reads the
 * index itself) none. */
static text_ref_t rare_keys(sqlite_store_t *s, fq_t *q, text_ref_t term, const walk_t *w, char *json)
{
    bool newest = w->newest;
    sqlite3_stmt *st = sq_dyn_stmt(s, rare_sql);
    if (st == NULL) return (text_ref_t){NULL, 0};
    fq_init(q, false);
    text_ref_t match = fq_fts_match(q, term);
    sqlite3_bind_text(st, 1, match.ptr, (int)match.len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, RARE_MAX + 1);
    sqlite3_bind_int64(st, 3, w->lo);
    sqlite3_bind_int64(st, 4, w->hi);
    int64_t keys[RARE_MAX + 1];
    int n = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && n <= RARE_MAX)
        keys[n++] = sqlite3_column_int64(st, 0);
    sq_reset(st);
    if (src != SQLITE_DONE || n > RARE_MAX) return (text_ref_t){NULL, 0};
    size_t len = 0;
    json[len++] = '[';
    for (int i = 0; i < n; i++) {
        int m = snprintf(json + len, RARE_JSON_MAX - len, i > 0 ? ",%lld" : "%lld",
                         (long long)keys[newest ? n - 1 - i : i]);
        assert(m > 0 && (size_t)m < RARE_JSON_MAX - len);
        len += (size_t)m;
    }
    json[len++] = ']';
    return (text_ref_t){json, len};
}

/* The walk: every app's matches while few are other apps' (unless other
 * filters ask for the lead's row anyway, or other apps' leads are dense
 * where it begins), then the app's; *rc the failure, if any. */
static enum walk_end walk(sqlite_store_t *s, fq_t *q, const store_lead_query_t *lq, walk_t *w, store_rc_t *rc)
{
    /* A rare term's keys are looked up by app in lead_text: no others. */
    bool by_app = w->keys.ptr != NULL || fq_lead_search_filtered(lq) || others_ahead(s, w);
    int64_t span[2] = {w->lo, w->hi};
    for (int turn = 0;; turn++) {
        if (turn > 0) {
            /* On after the last key read, when any key is left. */
            if (w->last == (w->newest ? w->lo : w->hi)) {
                flush_range(w);
                return WALK_DONE;
            }
            span[w->newest ? 1 : 0] = w->newest ? w->last - 1 : w->last + 1;
        }
        fq_init(q, false);
        q->fts_rowids = w->keys;
        sqlite3_stmt *st = fq_lead_search_walk(q, w->app, lq, span, by_app) ? sq_fq_stmt(s, q) : NULL;
        if (st == NULL) {
            *rc = STORE_ERROR;
            return WALK_FAILED;
        }
        enum walk_end end = walk_rows(s, st, w, rc);
        sq_reset(st);
        if (end != WALK_OTHERS) return end;
        by_app = true;
    }
}

/* created_at c, or the nearest one with keys. */
static int64_t in_key_range(int64_t c)
{
    return c < FQ_CREATED_MIN ? FQ_CREATED_MIN : c > FQ_CREATED_MAX ? FQ_CREATED_MAX : c;
}

/* The keys the walk may read (w->lo, w->hi): those of the app's leads'
 * created_at span, and on the cursor's side of it. Other apps' matches
 * beyond it cost a walk their lead_text reads (every app's matches) or
 * its app token's doclist pages (by app) for nothing, and a rare term's
 * read their doclist pages: in the benchmark's data, where another app
 * holds the newest fifth of the leads, a fifth of every term's matches.
 * Also the end of a walk whose app holds fewer matches than a page, which
 * would read on to the index's other end. *empty: no key can be the app's. */
static store_rc_t app_span(sqlite_store_t *s, const store_lead_query_t *lq, walk_t *w, bool *empty)
{
    sqlite3_stmt *st = sq_stmt(s, Q_SEARCH_APP_SPAN);
    if (st == NULL) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, w->app);
    int src = sqlite3_step(st);
    bool none = src != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
    int64_t oldest = none ? 0 : sqlite3_column_int64(st, 0), newest = none ? 0 : sqlite3_column_int64(st, 1);
    store_rc_t rc = src == SQLITE_ROW ? STORE_OK : sq_map_rc(s, src);
    sq_reset(st);
    /* Every lead's created_at has keys (the insert trigger refuses
     * others); one that had none would only widen the span. */
    w->lo = in_key_range(oldest) * FQ_KEY_SLOTS;
    w->hi = in_key_range(newest) * FQ_KEY_SLOTS + FQ_KEY_SLOT_MAX;
    if (lq->after != NULL) {
        int64_t lo = lq->after->v[0].i * FQ_KEY_SLOTS; /* in range: fq_lead_walks_search */
        if (w->newest && lo + FQ_KEY_SLOT_MAX < w->hi) w->hi = lo + FQ_KEY_SLOT_MAX;
        if (!w->newest && lo > w->lo) w->lo = lo;
    }
    *empty = none || w->lo > w->hi;
    return rc;
}

/* The walk (w ready), the page's leads, and the count. */
static store_rc_t walk_page(sqlite_store_t *s, fq_t *q, const store_lead_query_t *lq, walk_t *w,
                            int64_t *total, store_lead_cb cb, void *ctx)
{
    bool empty = false;
    store_rc_t rc = app_span(s, lq, w, &empty);
    if (rc != STORE_OK) return rc;
    char json[RARE_JSON_MAX];
    if (!empty && fq_codepoints(lq->f.search) >= RARE_CHARS) w->keys = rare_keys(s, q, lq->f.search, w, json);
    enum walk_end end = empty ? WALK_DONE : walk(s, q, lq, w, &rc);
    if (end != WALK_DONE) return end == WALK_RANGE ? STORE_CONFLICT : rc;
    *total = -1;
    if (lq->count) {
        /* Every match of the app that the filters keep, through the index. */
        fq_init(q, false);
        q->search = FQ_SEARCH_INDEX;
        rc = sq_fq_number(s, q, fq_lead_probe(q, w->app, &lq->f, lq->now, INT32_MAX), total);
        if (rc != STORE_OK) return rc;
    }
    return emit_page(s, w->app, w, cb, ctx);
}

bool sq_search_walk(sqlite_store_t *s, int64_t app, const store_lead_query_t *lq, int64_t *total,
                    store_lead_cb cb, void *ctx, store_rc_t *rc)
{
    if (!fq_lead_walks_search(lq) || lq->limit <= 0 || lq->limit > PAGE_MAX) return false;
    store_sort_t order[STORE_SORT_MAX];
    store_lead_order(lq->sort, lq->nsort, order);
    walk_t w = {.app = app,
                .limit = lq->limit,
                .skip = lq->offset,
                .newest = order[0].desc,
                .id_desc = order[1].desc};
    /* Most ranges are a row or two: room for more as they come. */
    w.rcap = ROWS_FIRST;
    w.page = malloc((size_t)lq->limit * sizeof *w.page);
    w.rows = malloc((size_t)w.rcap * sizeof *w.rows);
    if (w.page == NULL || w.rows == NULL) {
        free(w.page);
        free(w.rows);
        *rc = STORE_ERROR;
        return true;
    }
    fq_t *q = malloc(sizeof *q);
    bool own = sqlite3_get_autocommit(s->db);
    *rc = q == NULL ? STORE_ERROR : own ? sq_begin_read(s) : STORE_OK;
    if (*rc == STORE_OK) {
        *rc = walk_page(s, q, lq, &w, total, cb, ctx);
        if (own) sq_exec(s, Q_ROLLBACK); /* read only: nothing to commit */
    }
    free(q);
    free(w.page);
    free(w.rows);
    return *rc != STORE_CONFLICT; /* a range too large: another plan */
}
