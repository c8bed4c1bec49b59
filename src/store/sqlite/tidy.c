/*
 * tidy.c: the search index kept merged (store_search_tidy).
 *
 * FTS5 keeps lead_fts as b-tree segments. Every transaction that writes
 * leads adds a small one, a large insert (an import, the benchmark's
 * seeding) a few large ones, and FTS5's automerge folds four segments of a
 * level into one of the next as writes go on: an index written by many
 * commits or in bulk holds about a dozen segments at a million leads. A
 * search looks each of its trigrams up in every segment, and a dozen cost
 * it about half again what two cost (bench/results.md). So the writer
 * thread, while no write waits, merges every level of the index that holds
 * two segments or more (FTS5's 'merge' command with usermerge 2), a few
 * pages a step, each step a transaction of its own, until no level holds
 * two. The index is left in a few segments of very different sizes, and a
 * new small one is merged with its like, not with the whole index: a
 * merge into one segment ('optimize', or 'merge' with a negative count)
 * would rewrite all of it (128 MiB at a million leads) after every write.
 * usermerge is a setting kept in the index's own table; it is written by
 * the first step of each connection, as the only user of the command.
 */
#include <assert.h>

#include "store/sqlite/sqlite_int.h"

store_rc_t sq_search_tidy(store_t *base, int pages, bool *more)
{
    assert(pages > 0);
    sqlite_store_t *s = sq_of(base);
    *more = false;
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
    bool worked = rc == STORE_OK && sqlite3_total_changes(s->db) - before >= 2;
    rc = sq_finish_single(s, rc);
    if (rc != STORE_OK) return rc;
    s->tidy_set = true;
    *more = worked;
    return STORE_OK;
}
