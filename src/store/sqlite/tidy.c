/*
 * tidy.c: the search index kept merged (store_search_tidy).
 *
 * FTS5 keeps lead_fts as b-tree segments. Every transaction that writes
 * leads adds a small one, a large insert (an import, the benchmark's
 * seeding, a migration) several large ones, and FTS5's automerge folds four
 * segments of a level into one of the next as writes go on: an index
 * written in bulk holds about a dozen large segments at a million leads. A
 * search looks each of its trigrams up in every segment, and reads its
 * matches from each: a dozen large segments cost it about twice what one
 * large one costs, while small segments (a few pages: a commit's leads)
 * cost next to nothing, twenty of them as much as none (bench/results.md,
 * 2026-11-30 10:55).
 *
 * So the writer thread, while no write waits, merges the index a small
 * step at a time, each step a transaction of its own, as long as it holds
 * two large segments or more (TIDY_LARGE_PAGES pages, and an eighth of the
 * largest's): FTS5's 'merge' command with usermerge 2, which merges the
 * level with the most segments when it holds two or more. The index is
 * left in a few segments of very different sizes, one of them large (or
 * two, on levels of their own, which this merge leaves alone).
 * Small segments alone start no merge: merged up level by level they
 * reach the largest segment's level, and every few commits would mean
 * rewriting the whole index (128 MiB at a million leads) for a handful of
 * leads; a second large segment is made of at least an eighth of the
 * index's size in new leads, so each lead written costs a few times its
 * own size in merges at most. FTS5's automerge goes on as before inside
 * the writes themselves. usermerge is a setting kept in the index's own
 * table, written by the first merge step of each connection (this is the
 * only user of the 'merge' command).
 */
#include <assert.h>

#include "store/sqlite/sqlite_int.h"

/* A segment of fewer leaf pages than this (256 KiB) is small. */
#define TIDY_LARGE_PAGES 64

/* One merge step: true in *worked when FTS5 merged something. */
static store_rc_t merge_step(sqlite_store_t *s, int pages, bool *worked)
{
    *worked = false;
    store_rc_t rc;
    sqlite3_stmt *st = sq_write_stmt(s, Q_SEARCH_MERGE, true, &rc);
    if (st == NULL) return rc;
    if (!s->tidy_set) rc = sq_exec(s, Q_SEARCH_USERMERGE);
    int before = sqlite3_total_changes(s->db);
    if (rc == STORE_OK) {
        sqlite3_bind_int(st, 1, pages);
        rc = sq_run(s, st);
    }
    /* FTS5's own test: a merge that changed fewer than two rows found
     * nothing to merge. */
    bool merged = rc == STORE_OK && sqlite3_total_changes(s->db) - before >= 2;
    rc = sq_finish_single(s, rc);
    if (rc != STORE_OK) return rc;
    s->tidy_set = true;
    *worked = merged;
    return STORE_OK;
}

store_rc_t sq_search_tidy(store_t *base, int pages, bool *more)
{
    assert(pages > 0);
    sqlite_store_t *s = sq_of(base);
    *more = false;
    /* A read of FTS5's b-tree index (a few hundred microseconds at a
     * million leads), before every step: merging stops as soon as one
     * large segment is left. */
    int64_t large = 0;
    store_rc_t rc = sq_query_int(s, Q_SEARCH_LARGE, TIDY_LARGE_PAGES, &large);
    if (rc != STORE_OK || large < 2) return rc;
    return merge_step(s, pages, more);
}
