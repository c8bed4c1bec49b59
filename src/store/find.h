/*
 * find.h: the SQL of the find reads (store_lead_find, store_follow_find,
 * store_lead_summary), written once for both dialects. Private to
 * src/store/.
 *
 * A filter, a sort and a page become one statement and its parameters,
 * which a backend only binds, runs and reads (store/sqlite/find.c,
 * store/postgres/find.c). One statement, so the page and its count come
 * from one snapshot on both databases, as store.h promises. Its rows:
 *
 *   column 0          the count of the filtered set, or NULL
 *   column 1          the phase the row comes from (see below)
 *   columns 2..c0-1   the row's sort keys
 *   columns c0...     the record (SCHEMA_LEAD_COLS or SCHEMA_FOLLOW_COLS)
 *
 * and one row with a NULL record when the page is empty (the count is
 * still there); for one lead's follows, no row at all when the lead does
 * not exist.
 *
 * Phases. An index gives rows in one order only, and a keyset page starts
 * in the middle of it, so a page is read as up to three index ranges, each
 * in index order, one after the other: for the first sort key k and the
 * position's value v, the rows with k = v after the position, then those
 * with k beyond v, then (k being unset last) those where k is unset; the
 * first page, for a key that may be unset, reads the set ones then the
 * unset ones. Each range is one SELECT with its own ORDER BY and LIMIT,
 * which a database answers by walking its index from the range's start;
 * UNION ALL joins them, and an outer ORDER BY on (phase, keys) puts the
 * few rows read in the page's order. When every key has the same
 * direction and none may be unset, one row-value comparison does.
 */
#ifndef CRMD_STORE_FIND_H
#define CRMD_STORE_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What a parameter holds. Arrays are PostgreSQL's only (SQLite's list
 * filters take one parameter per value). */
typedef enum fq_type { FQ_INT8, FQ_TEXT, FQ_UUID, FQ_TEXT_ARRAY, FQ_UUID_ARRAY } fq_type_t;

typedef struct fq_param {
    fq_type_t type;
    int64_t i;
    text_ref_t t;                  /* FQ_TEXT; FQ_UUID: the id */
    const text_ref_t *texts;       /* FQ_TEXT_ARRAY */
    const char (*ids)[UUID_BUFSZ]; /* FQ_UUID_ARRAY */
    int n;
} fq_param_t;

/* How search runs: through the index (SQLite's FTS5 trigrams; PostgreSQL's
 * LIKE, which pg_trgm's index serves), or by looking at each row (SQLite's
 * instr, for terms under three characters, or so common that walking the
 * sort's index finds a page sooner). */
enum fq_search { FQ_SEARCH_INDEX, FQ_SEARCH_SCAN };

/* SQLite's plan of a lead find (PostgreSQL's planner has statistics of
 * the data, and chooses alone): from the filters' indexes, then sorting
 * what they keep (when it is small), or walking the sort's index and
 * looking at each row (when it is not). The unary '+' that SQLite reads
 * as "no index for this" enforces it: on the sort keys in ORDER BY, or
 * on the filtered columns. */
enum fq_plan { FQ_PLAN_ANY, FQ_PLAN_FILTER, FQ_PLAN_SORT };

/* A filtered set smaller than this is read through its filters' indexes
 * and sorted; a larger one by walking the sort's index. */
#define FQ_SMALL 1000

/* Room for a statement, for the filter part of it, its parameters, and the
 * texts made for them (a MATCH expression, a LIKE pattern). */
#define FQ_SQL_MAX 24576
#define FQ_WHERE_MAX 8192
#define FQ_PARAMS_MAX 64
#define FQ_OWN_MAX 1024

/* Search terms of fewer code points than this cannot use the trigrams. */
#define FQ_TRIGRAM 3

/* SQLite's search keys (lead_text's rowid, lead_fts's): a lead created at
 * c (ms) has one of the FQ_KEY_SLOTS keys from c << FQ_KEY_BITS, so
 * descending keys are the newest leads first (store/sqlite/sql.c, migration
 * 10). A created_at outside [FQ_CREATED_MIN, FQ_CREATED_MAX] (years 1830
 * to 2109) has no keys: a write of one is refused. 2,097,152 slots a
 * millisecond hold twenty imports of the largest size stamped alike. */
#define FQ_KEY_BITS 21
#define FQ_KEY_SLOTS 2097152
#define FQ_KEY_SLOT_MAX 2097151 /* the last slot's offset, for SQL text */
#define FQ_CREATED_MIN (-4398046511104)
#define FQ_CREATED_MAX 4398046511103
/* An app's token in the search index: three characters, one trigram, each
 * FQ_APP_CHAR_BASE plus 20 bits of the app's id (high to low), so every
 * app below 2^60 has its own (the walk checks the app anyway). */
#define FQ_APP_CHAR_BASE 65536
#define FQ_APP_CHAR_MASK 1048575

typedef struct fq_buf {
    char *s;
    size_t len, cap;
    bool overflow;
} fq_buf_t;

/* A statement being written, with its parameters. */
typedef struct fq {
    bool pg; /* the dialect: PostgreSQL, else SQLite */
    enum fq_search search;
    /* SQLite: the lead_fts rowids of the search term's matches, when they
     * were read already, as a JSON array (the caller's, alive until the
     * statement is done): the index is not asked again. */
    text_ref_t fts_rowids;
    enum fq_plan plan;
    const char *sort_col;     /* the first sort key's column (FQ_PLAN_SORT leaves it indexed) */
    int c0;                   /* the column the records start at */
    int app_param, now_param; /* parameters written once, used anywhere (now: 0 until it is) */
    int64_t now;
    bool failed; /* too long, or too many parameters */
    int np;
    size_t nown;
    fq_buf_t sql, where, count_where; /* count_where: the filters for any plan, to count with */
    fq_param_t p[FQ_PARAMS_MAX];
    char own[FQ_OWN_MAX];
    char sql_buf[FQ_SQL_MAX], where_buf[FQ_WHERE_MAX], count_buf[FQ_WHERE_MAX];
} fq_t;

void fq_init(fq_t *q, bool pg);

/* Write the statement of each read into q; false when it does not fit
 * (the caller answers STORE_ERROR). */
bool fq_lead_find(fq_t *q, int64_t app, const store_lead_query_t *lq);
bool fq_follow_find(fq_t *q, int64_t app, const store_follow_query_t *fq);
/* The summary's rows: (kind, stage, status, n, v_hi, v_lo, w_hi, w_lo), a
 * kind 0 row per (stage, status) cell, and one kind 1 row whose n is the
 * number of overdue follows. */
bool fq_lead_summary(fq_t *q, int64_t app, const store_lead_filter_t *f, int64_t now);
/* Adds one summary row to *out (kept only when f keeps its cell). */
void fq_summary_add(store_summary_t *out, const store_lead_filter_t *f, const int64_t row[8]);

/* SQLite: whether a lead find can walk the search index in its own order:
 * a term of FQ_TRIGRAM code points or more, sorted by created_at (either
 * way) then id, and a position (if any) whose created_at has keys. */
bool fq_lead_walks_search(const store_lead_query_t *lq);
/* SQLite: whether such a find filters by more than its search. */
bool fq_lead_search_filtered(const store_lead_query_t *lq);
/* SQLite: the statement walking the search index for lq (see
 * fq_lead_walks_search): (key, lead id, app) of the matches after lq's
 * position with keys from span[0] to span[1] (both included), by key in
 * the order's direction (ties on created_at come out in key order: the
 * caller sorts them). by_app: only the app's matches, asked of the index (its app_f
 * token), and those lq's other filters keep; else every app's matches
 * (lq filters by its search alone: fq_lead_search_filtered false). With
 * q->fts_rowids set (after fq_init), the matches are those keys, already
 * read from the index and in the order's direction, not the index's. */
bool fq_lead_search_walk(fq_t *q, int64_t app, const store_lead_query_t *lq, const int64_t span[2],
                         bool by_app);

/* Whether a lead find filters by anything but its first sort key's own
 * column: only then does the plan matter (fq_plan). */
bool fq_lead_filters_beyond_sort(const store_lead_query_t *lq);
/* Whether f keeps leads by stage, status and source only (the kept
 * totals count them: fq_totals_count). */
bool fq_by_totals_only(const store_lead_filter_t *f);
/* The statement counting the leads f keeps, up to cap: (n). */
bool fq_lead_probe(fq_t *q, int64_t app, const store_lead_filter_t *f, int64_t now, int cap);
/* The statement counting the leads of f's stages, statuses and sources
 * from the kept totals: (n). */
bool fq_totals_count(fq_t *q, int64_t app, const store_lead_filter_t *f);

/* SQLite: the MATCH expression of a folded term for lead_fts, written into
 * q's own texts: the term as a phrase, in either column. */
text_ref_t fq_fts_match(fq_t *q, text_ref_t term);
/* SQLite: the same, and the app's token in its own column (a walk's). */
text_ref_t fq_fts_app_match(fq_t *q, text_ref_t term, int64_t app);
/* The number of code points of a (valid UTF-8) text. */
size_t fq_codepoints(text_ref_t t);

#endif
