/*
 * sql.c: the SQLite backend's SQL text, and nothing else.
 *
 * Kept apart from the code that runs it so that the whole schema and every
 * statement can be read in one place, and compared with PostgreSQL's
 * (store/postgres/sql.c): the tables and versions are the same, the
 * dialects differ. Column lists, update bits and CHECK ranges come from
 * store/schema.h.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store/find.h"
#include "store/sqlite/sqlite_int.h"

/* SQLite's parameter n; the type is PostgreSQL's business (schema.h). */
#define P(n, type) "?" #n

/* The condition of an UPDATE of several webhooks, as it is: one writer at
 * a time, nothing to order (store/webhook_sql.h). */
#define SQ_AS_IS(where) where

/* Search (migration 6). lead_fts is an FTS5 index of trigrams over the
 * folded name and source: a phrase of three characters or more finds every
 * lead holding it as a substring, whatever the words. It stores no text of
 * its own (content=''), so each row is removed by giving back the values it
 * was indexed with, which the triggers below take from the lead's row.
 * leads has no rowid, so lead_text gives each lead the integer key the
 * index needs. The folding is done before (case_sensitive 1 leaves it). */
#define SQ_V6_SEARCH                                                                                         \
    "CREATE TABLE lead_text ("                                                                               \
    "  rowid INTEGER PRIMARY KEY,"                                                                           \
    "  app_id INTEGER NOT NULL,"                                                                             \
    "  lead_id TEXT NOT NULL,"                                                                               \
    "  UNIQUE (app_id, lead_id));"                                                                           \
    "CREATE VIRTUAL TABLE lead_fts USING fts5(name_f, source_f, content='', columnsize=0,"                   \
    "  tokenize='trigram case_sensitive 1');"                                                                \
    "INSERT INTO lead_text (app_id, lead_id) SELECT app_id, id FROM leads;"                                  \
    "INSERT INTO lead_fts (rowid, name_f, source_f) SELECT t.rowid, l.name_fold, l.source_fold "             \
    "  FROM lead_text t JOIN leads l ON l.app_id = t.app_id AND l.id = t.lead_id;"

/* The statements the triggers add to or take from lead_totals: a row's
 * count and parts, in its cell, with sign "" or "-". */
/* clang-format off */
#define SQ_TOTALS_ADD(row, sign)                                                                             \
    "INSERT INTO lead_totals (" SCHEMA_TOTALS_COLS ") VALUES (" row "app_id, " row "stage, " row "status, "  \
    SCHEMA_SRC_OF(row) ", " SCHEMA_HAS_SRC_OF(row) ", " sign "1, "                                           \
    sign SCHEMA_HI(SCHEMA_VALUE_OF(row)) ", " sign SCHEMA_LO(SCHEMA_VALUE_OF(row)) ", "                      \
    sign SCHEMA_HI(SCHEMA_WEIGHT_OF(row)) ", " sign SCHEMA_LO(SCHEMA_WEIGHT_OF(row)) ") "                    \
    "ON CONFLICT (" SCHEMA_TOTALS_CELL ") DO UPDATE SET n = n + excluded.n, v_hi = v_hi + excluded.v_hi, "   \
    "v_lo = v_lo + excluded.v_lo, w_hi = w_hi + excluded.w_hi, w_lo = w_lo + excluded.w_lo;"
#define SQ_TEXT_OF(row) "WHERE app_id = " row "app_id AND lead_id = " row "id"
#define SQ_FTS_DELETE                                                                                        \
    "INSERT INTO lead_fts (lead_fts, rowid, name_f, source_f) "                                              \
    "SELECT 'delete', rowid, old.name_fold, old.source_fold FROM lead_text " SQ_TEXT_OF("old.") ";"

/* The triggers that take a deleted lead out of the search index and the
 * totals, and put a renamed one in the index again: fts_delete takes the
 * old row's entry out; the index's columns beyond name and source are
 * more_cols, their new values more_vals (migration 10 adds the app). */
#define SQ_DELETE_TRIGGERS(fts_delete, more_cols, more_vals)                                                 \
    "CREATE TRIGGER leads_delete AFTER DELETE ON leads BEGIN " fts_delete                                    \
    "DELETE FROM lead_text " SQ_TEXT_OF("old.") ";"                                                          \
    SQ_TOTALS_ADD("old.", "-") " END;"                                                                       \
    "CREATE TRIGGER leads_text AFTER UPDATE OF name_fold, source_fold ON leads "                             \
    "WHEN old.name_fold IS NOT new.name_fold OR old.source_fold IS NOT new.source_fold BEGIN "               \
    fts_delete                                                                                               \
    "INSERT INTO lead_fts (rowid, name_f, source_f" more_cols ") SELECT rowid, new.name_fold, "              \
    "new.source_fold" more_vals " FROM lead_text " SQ_TEXT_OF("new.") "; END;"

/* Every lead write keeps the search index and the totals in its own
 * transaction. Triggers rather than C, so that whatever writes leads (crmd,
 * an import, the benchmark's seeding through the sqlite3 shell) keeps them. */
#define SQ_V6_TRIGGERS                                                                                       \
    "CREATE TRIGGER leads_insert AFTER INSERT ON leads BEGIN "                                               \
    "INSERT INTO lead_text (app_id, lead_id) VALUES (new.app_id, new.id);"                                   \
    "INSERT INTO lead_fts (rowid, name_f, source_f) "                                                        \
    "VALUES (last_insert_rowid(), new.name_fold, new.source_fold);"                                          \
    SQ_TOTALS_ADD("new.", "") " END;"                                                                        \
    SQ_DELETE_TRIGGERS(SQ_FTS_DELETE, "", "")                                                                \
    "CREATE TRIGGER leads_totals AFTER UPDATE OF stage, status, source, value_cents, probability ON leads "  \
    "WHEN old.stage IS NOT new.stage OR old.status IS NOT new.status OR old.source IS NOT new.source "       \
    "OR old.value_cents IS NOT new.value_cents OR old.probability IS NOT new.probability BEGIN "             \
    SQ_TOTALS_ADD("old.", "-") SQ_TOTALS_ADD("new.", "") " END;"
/* clang-format on */

/* Search in the list's order (migration 10). A lead's lead_text key, its
 * rowid in lead_fts, is its created_at's range, then a slot in it:
 * (created_at << FQ_KEY_BITS) + slot (store/find.h), so that the index
 * walked by descending rowid hands over its matches newest first and a
 * page stops after a few (ties on created_at are sorted by id as they are
 * read: store/sqlite/search.c). Keys grow with time, so the rows of one
 * transaction (an import, a batch) go into the index in ascending order:
 * FTS5 writes out its pending rows whenever a key is smaller than the one
 * before, and keys that shrank with time made a bulk insert three times
 * as costly (the benchmark's seeding: 110 against 37 s of CPU at a
 * million leads). The slot is the next free one of the range, so a lead
 * recovered from the trash or copied comes back in its place. A created_at out of the range the keys can hold
 * (years 1830 to 2109), or a millisecond whose 2,097,152 slots are taken, refuses the write. The index also
 * holds each lead's app, as one trigram of its own column (app_f, FQ_APP_TOKEN), so that a walk asks for the
 * app's matches and passes over other apps' inside the index, without reading their lead_text rows. */
#define SQ_KEY_LO(c) "((" c ") << " SCHEMA_STR(FQ_KEY_BITS) ")"
#define SQ_KEY_HI(c) "(" SQ_KEY_LO(c) " + " SCHEMA_STR(FQ_KEY_SLOT_MAX) ")"
#define SQ_KEY_LAST(c)                                                                                       \
    "(SELECT max(rowid) FROM lead_text WHERE rowid BETWEEN " SQ_KEY_LO(c) " AND " SQ_KEY_HI(c) ")"
#define SQ_APP_CHAR(row, shift)                                                                              \
    SCHEMA_STR(FQ_APP_CHAR_BASE) " + ((" row "app_id >> " #shift ") & " SCHEMA_STR(FQ_APP_CHAR_MASK) ")"
#define SQ_APP_TOKEN(row) "char(" SQ_APP_CHAR(row, 40) ", " SQ_APP_CHAR(row, 20) ", " SQ_APP_CHAR(row, 0) ")"
/* clang-format off */
#define SQ_V10_FTS_DELETE                                                                                    \
    "INSERT INTO lead_fts (lead_fts, rowid, name_f, source_f, app_f) "                                       \
    "SELECT 'delete', rowid, old.name_fold, old.source_fold, " SQ_APP_TOKEN("old.") " FROM lead_text "       \
    SQ_TEXT_OF("old.") ";"
#define SQ_V10_TRIGGERS                                                                                      \
    "CREATE TRIGGER leads_insert AFTER INSERT ON leads BEGIN "                                               \
    "SELECT RAISE(ABORT, 'no search key is left for this created_at') WHERE new.created_at NOT BETWEEN "     \
    SCHEMA_STR(FQ_CREATED_MIN) " AND " SCHEMA_STR(FQ_CREATED_MAX) " OR "                                     \
    SQ_KEY_LAST("new.created_at") " = " SQ_KEY_HI("new.created_at") ";"                                      \
    "INSERT INTO lead_text (rowid, app_id, lead_id) VALUES (COALESCE(" SQ_KEY_LAST("new.created_at")         \
    " + 1, " SQ_KEY_LO("new.created_at") "), new.app_id, new.id);"                                           \
    "INSERT INTO lead_fts (rowid, name_f, source_f, app_f) "                                                 \
    "VALUES (last_insert_rowid(), new.name_fold, new.source_fold, " SQ_APP_TOKEN("new.") ");"                \
    SQ_TOTALS_ADD("new.", "") " END;"                                                                        \
    SQ_DELETE_TRIGGERS(SQ_V10_FTS_DELETE, ", app_f", ", " SQ_APP_TOKEN("new."))
/* The index and the keys made again: the existing rows renumbered (the
 * slots of a created_at in the order of the leads' keys), indexed with
 * their apps, and the index merged into one segment (1.2 s of the
 * migration's 14 s at a million leads, on a quiet machine). */
#define SQ_V10_SEARCH_ORDER                                                                                  \
    "DROP TRIGGER leads_insert;"                                                                             \
    "DROP TRIGGER leads_delete;"                                                                             \
    "DROP TRIGGER leads_text;"                                                                               \
    "DROP TABLE lead_fts;"                                                                                   \
    "CREATE VIRTUAL TABLE lead_fts USING fts5(name_f, source_f, app_f, content='', columnsize=0,"            \
    "  tokenize='trigram case_sensitive 1');"                                                                \
    "DELETE FROM lead_text;"                                                                                 \
    "INSERT INTO lead_text (rowid, app_id, lead_id) SELECT " SQ_KEY_LO("created_at")                         \
    " + row_number() OVER (PARTITION BY created_at ORDER BY app_id, id) - 1, app_id, id FROM leads;"         \
    "INSERT INTO lead_fts (rowid, name_f, source_f, app_f) SELECT t.rowid, l.name_fold, l.source_fold, "     \
    SQ_APP_TOKEN("t.") " FROM lead_text t JOIN leads l ON l.app_id = t.app_id AND l.id = t.lead_id;"         \
    "INSERT INTO lead_fts (lead_fts) VALUES ('optimize');"                                                   \
    SQ_V10_TRIGGERS
/* clang-format on */

/* The planner's statistics, written by hand: the figures of a typical large
 * app (a million leads in ten apps, five stages, four statuses, a hundred
 * probabilities, sources shared by a few thousand leads, accounts and
 * contacts by about ten), so that every query gets the same plan whatever
 * the data happen to be today (ANALYZE on a small or skewed table would
 * change them), and no ANALYZE ever runs on a live database. Each row is
 * the number of rows, then how many share each leading column of the index
 * (sqlite_stat1's format). ANALYZE of a one-row table creates the table.
 * SQ_STATS_LEAD_KEYS: the seven lead indexes whose columns migration 6
 * set for good (migration 12 writes their figures again). */
#define SQ_STATS_LEAD_KEYS                                                                                   \
    "('leads', 'leads_newest', '1000000 100000 2 1'),"                                                       \
    "('leads', 'leads_updated', '1000000 100000 2 1 1'),"                                                    \
    "('leads', 'leads_name', '1000000 100000 2 1 1'),"                                                       \
    "('leads', 'leads_value', '1000000 100000 20 1 1'),"                                                     \
    "('leads', 'leads_probability', '1000000 100000 1000 1 1'),"                                             \
    "('leads', 'leads_stage', '1000000 100000 20000 1 1'),"                                                  \
    "('leads', 'leads_status', '1000000 100000 25000 1 1'),"
#define SQ_V6_STATS                                                                                          \
    "PRAGMA analysis_limit = 1;"                                                                             \
    "ANALYZE signing_keys;"                                                                                  \
    "DELETE FROM sqlite_stat1;"                                                                              \
    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "                                                      \
    "('leads', 'sqlite_autoindex_leads_1', '1000000 100000 1')," SQ_STATS_LEAD_KEYS                          \
    "('leads', 'leads_source', '1000000 100000 3000 1 1 1 1 1 1'),"                                          \
    "('leads', 'leads_account', '1000000 100000 10 1 1 1 1 1 1'),"                                           \
    "('leads', 'leads_contact', '1000000 100000 10 1 1 1 1 1 1'),"                                           \
    "('follows', 'sqlite_autoindex_follows_1', '3000000 300000 3 1'),"                                       \
    "('follows', 'follows_due', '3000000 300000 3 2 1 1 1'),"                                                \
    "('follows', 'follows_app_due', '3000000 300000 10 1 1'),"                                               \
    "('follows', 'follows_app_state', '3000000 300000 150000 10 1 1'),"                                      \
    "('follows', 'follows_app_created', '3000000 300000 1 1'),"                                              \
    "('follows', 'follows_app_updated', '3000000 300000 1 1'),"                                              \
    "('lead_text', NULL, '1000000'),"                                                                        \
    "('lead_text', 'sqlite_autoindex_lead_text_1', '1000000 100000 1'),"                                     \
    "('lead_totals', 'sqlite_autoindex_lead_totals_1', '2000 200 40 10 10 1');"                              \
    "ANALYZE sqlite_schema;" /* this connection reads them now, the others when they next look */
/* Migration 9's figures for the three indexes it remakes (dropping an
 * index drops its figures): as migration 6's, without the columns it
 * takes off. */
#define SQ_V9_STATS                                                                                          \
    "DELETE FROM sqlite_stat1 WHERE tbl = 'leads' AND idx IN ('leads_source', 'leads_account', "             \
    "'leads_contact');"                                                                                      \
    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "                                                      \
    "('leads', 'leads_source', '1000000 100000 3000 1 1'),"                                                  \
    "('leads', 'leads_account', '1000000 100000 10 1 1'),"                                                   \
    "('leads', 'leads_contact', '1000000 100000 10 1 1');"                                                   \
    "ANALYZE sqlite_schema;"
/* Migration 12: the ten lead indexes stored in the opposite direction,
 * column by column after app_id (SCHEMA_V6_INDEXES and SCHEMA_V9_INDEXES
 * end in created_at DESC, id DESC). A list reads each one backwards
 * instead, which gives the same rows in the same order (unset values
 * included: below every set one either way), so every plan is the same
 * plan. The difference is where a new lead goes: its created_at is the
 * largest, so in a descending index it went first among its equals (its
 * stage, its source, its app), and SQLite, which splits a full page in
 * two, left the pages behind such an insertion point half empty. Stored
 * ascending, a new lead goes last among its equals, and at the very end
 * of an index SQLite starts a new page instead of splitting. A batch of
 * 500 creates wrote 9 to 12 % fewer WAL pages and cost 14 to 16 % less
 * CPU with these, and the indexes of a database grown by creates took 41 %
 * fewer pages (bench/results.md, 2026-11-30 13:50, "bulk creates on
 * SQLite, third step"). The planner's figures go with them (dropping an
 * index drops its figures). */
#define SQ_V12_INDEXES                                                                                       \
    "DROP INDEX leads_newest; DROP INDEX leads_updated; DROP INDEX leads_name;"                              \
    "DROP INDEX leads_value; DROP INDEX leads_probability; DROP INDEX leads_stage;"                          \
    "DROP INDEX leads_status; DROP INDEX leads_source; DROP INDEX leads_account;"                            \
    "DROP INDEX leads_contact;"                                                                              \
    "CREATE INDEX leads_newest ON leads (app_id, created_at, id);"                                           \
    "CREATE INDEX leads_updated ON leads (app_id, updated_at, created_at, id);"                              \
    "CREATE INDEX leads_name ON leads (app_id, name_fold DESC, created_at, id);"                             \
    "CREATE INDEX leads_value ON leads (app_id, value_cents, created_at, id);"                               \
    "CREATE INDEX leads_probability ON leads (app_id, probability, created_at, id);"                         \
    "CREATE INDEX leads_stage ON leads (app_id, stage DESC, created_at, id);"                                \
    "CREATE INDEX leads_status ON leads (app_id, status DESC, created_at, id);"                              \
    "CREATE INDEX leads_source ON leads (app_id, source DESC, created_at, id);"                              \
    "CREATE INDEX leads_account ON leads (app_id, account_id DESC, created_at, id);"                         \
    "CREATE INDEX leads_contact ON leads (app_id, contact_id DESC, created_at, id);"                         \
    "DELETE FROM sqlite_stat1 WHERE tbl = 'leads' AND idx <> 'sqlite_autoindex_leads_1';"                    \
    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES " SQ_STATS_LEAD_KEYS                                   \
    "('leads', 'leads_source', '1000000 100000 3000 1 1'),"                                                  \
    "('leads', 'leads_account', '1000000 100000 10 1 1'),"                                                   \
    "('leads', 'leads_contact', '1000000 100000 10 1 1');"                                                   \
    "ANALYZE sqlite_schema;"
/* The webhooks (store/webhook.h): subscriptions; the outbox, a row per
 * undelivered event and webhook, numbered in the order recorded (never
 * reused, so a sender's numbers stay unambiguous); and the delivery log.
 * A webhook's lease (lease_owner, lease_until) says which sender works on
 * it; failing_since (ms, 0: not failing) when its deliveries began to
 * fail. */
#define SQ_MIGRATION_WEBHOOKS                                                                                \
    "CREATE TABLE webhooks ("                                                                                \
    "  id TEXT PRIMARY KEY,"                                                                                 \
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"                                                         \
    "  url TEXT NOT NULL,"                                                                                   \
    "  events INTEGER NOT NULL,"                                                                             \
    "  description TEXT,"                                                                                    \
    "  active INTEGER NOT NULL,"                                                                             \
    "  secret TEXT NOT NULL,"                                                                                \
    "  created_at INTEGER NOT NULL,"                                                                         \
    "  updated_at INTEGER NOT NULL,"                                                                         \
    "  failing_since INTEGER NOT NULL DEFAULT 0,"                                                            \
    "  lease_owner TEXT,"                                                                                    \
    "  lease_until INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"                                               \
    "CREATE INDEX webhooks_newest ON webhooks (app_id, created_at DESC, id DESC);"                           \
    "CREATE TABLE webhook_events ("                                                                          \
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"                                                               \
    "  webhook_id TEXT NOT NULL,"                                                                            \
    "  event_id TEXT NOT NULL,"                                                                              \
    "  type INTEGER NOT NULL,"                                                                               \
    "  created_at INTEGER NOT NULL,"                                                                         \
    "  payload TEXT NOT NULL,"                                                                               \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                                 \
    "  first_at INTEGER NOT NULL DEFAULT 0,"                                                                 \
    "  next_at INTEGER NOT NULL DEFAULT 0);"                                                                 \
    "CREATE INDEX webhook_events_queue ON webhook_events (webhook_id, seq);"                                 \
    "CREATE TABLE webhook_attempts ("                                                                        \
    "  webhook_id TEXT NOT NULL,"                                                                            \
    "  id TEXT NOT NULL,"                                                                                    \
    "  event_id TEXT NOT NULL,"                                                                              \
    "  type INTEGER NOT NULL,"                                                                               \
    "  attempt INTEGER NOT NULL,"                                                                            \
    "  status_code INTEGER,"                                                                                 \
    "  duration_ms INTEGER NOT NULL,"                                                                        \
    "  error TEXT,"                                                                                          \
    "  next_retry_at INTEGER,"                                                                               \
    "  created_at INTEGER NOT NULL,"                                                                         \
    "  PRIMARY KEY (webhook_id, created_at, id)) WITHOUT ROWID;"

/* Migration 11: an event's payload stored once (webhook_payloads, keyed by
 * the event's id) however many webhooks it goes to; the queue rows of
 * webhook_events name it, and the last of them to go takes it along
 * (webhooks.c). The undelivered events of version 10 keep their rows, seq
 * (and so the AUTOINCREMENT's high-water mark) and state; each event's
 * payload is taken from its first row. The index on event_id is what finds
 * whether a payload is still needed. */
#define SQ_V11_PAYLOADS                                                                                      \
    "CREATE TABLE webhook_payloads ("                                                                        \
    "  event_id TEXT PRIMARY KEY,"                                                                           \
    "  type INTEGER NOT NULL,"                                                                               \
    "  created_at INTEGER NOT NULL,"                                                                         \
    "  payload TEXT NOT NULL);"                                                                              \
    "INSERT INTO webhook_payloads (event_id, type, created_at, payload) "                                    \
    "  SELECT event_id, type, created_at, payload FROM webhook_events "                                      \
    "  WHERE seq IN (SELECT min(seq) FROM webhook_events GROUP BY event_id);"                                \
    "ALTER TABLE webhook_events DROP COLUMN type;"                                                           \
    "ALTER TABLE webhook_events DROP COLUMN created_at;"                                                     \
    "ALTER TABLE webhook_events DROP COLUMN payload;"                                                        \
    "CREATE INDEX webhook_events_event ON webhook_events (event_id);"

/* Migration 13: the idempotency keys in a rowid table, the key's row
 * found through a unique index on (app_id, key). Keyed by (app_id, key)
 * without a rowid, every new answer (the whole response, hundreds of
 * bytes) went where its key sorted, a random leaf of a large tree for a
 * random key, and split it now and then; now the answers append at the
 * table's end, in the order made, and only the index, whose entries are
 * the key alone, takes the key's order. The rows move in that order. */
#define SQ_V13_IDEM                                                                                          \
    "CREATE TABLE idempotency_keys_v13 ("                                                                    \
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"                                                         \
    "  key TEXT NOT NULL,"                                                                                   \
    "  hash TEXT NOT NULL,"                                                                                  \
    "  status INTEGER NOT NULL,"                                                                             \
    "  location TEXT NOT NULL,"                                                                              \
    "  body TEXT NOT NULL,"                                                                                  \
    "  created_at INTEGER NOT NULL);"                                                                        \
    "INSERT INTO idempotency_keys_v13 (app_id, key, hash, status, location, body, created_at) "              \
    "  SELECT app_id, key, hash, status, location, body, created_at FROM idempotency_keys "                  \
    "  ORDER BY created_at, app_id, key;"                                                                    \
    "DROP TABLE idempotency_keys;"                                                                           \
    "ALTER TABLE idempotency_keys_v13 RENAME TO idempotency_keys;"                                           \
    "CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (app_id, key);" SCHEMA_V8_IDEM_INDEX

/* Migration 16: lead_history's seq without AUTOINCREMENT. AUTOINCREMENT
 * reads and rewrites the table's row in sqlite_sequence on every insert,
 * one more page in each commit; on lead PUTs at 10,000 leads it was about
 * half of what the history cost an update (bench/results.md, 2026-12-01
 * 03:59). What it guaranteed is not needed: without it a new entry's seq
 * is one more than the largest in the table, so a lead's entries still
 * rise in the order recorded, and a cursor into a lead's history (seq
 * below a value) stays valid. Only the seqs of the newest entries can come
 * back, after those entries were deleted, and entries are deleted only
 * with their lead for good, whose history nobody can ask for any more.
 * Every entry keeps its seq. */
/* clang-format off */
#define SQ_V16_HISTORY_SEQ                                                                                   \
    "ALTER TABLE lead_history RENAME TO lead_history_v15;"                                                   \
    "DROP INDEX lead_history_lead;"                                                                          \
    SCHEMA_V8_HISTORY("TEXT", "INTEGER", "INTEGER PRIMARY KEY")                                              \
    "INSERT INTO lead_history (seq, app_id, lead_id, id, action, actor, at, follow_id, changes) "            \
    "  SELECT seq, app_id, lead_id, id, action, actor, at, follow_id, changes FROM lead_history_v15 "        \
    "  ORDER BY seq;"                                                                                        \
    "DROP TABLE lead_history_v15;"
/* clang-format on */

/* Migration 17: a lead's history as a chain instead of an index. Each
 * entry names the lead's entry before it (prev), and the lead's row, in
 * leads or leads_trash, names its newest (history_head) and counts them
 * (history_count). The index lead_history_lead (app_id, lead_id, seq)
 * goes: every entry put one key in it where its lead sorts, a random leaf
 * page of a large tree, so an update wrote one page more than the lead's
 * own, which the update rewrites anyway and which now holds the head (on
 * lead PUTs at 10,000 leads, dropping the index took history's cost from
 * 15.6 % to 4.6 % of the throughput, bench/results.md, 2026-12-01 03:59). The
 * entries append at the table's end, a page that every write of a commit
 * shares. A page of the history walks the chain from the head (or from
 * the cursor's entry), one look-up by seq per entry: the walk an index
 * gave, without the index. Existing entries are linked in seq order. */
/* clang-format off */
#define SQ_V17_HISTORY_CHAIN                                                                                 \
    "ALTER TABLE lead_history ADD COLUMN prev INTEGER;"                                                      \
    "ALTER TABLE leads ADD COLUMN history_head INTEGER;"                                                     \
    "ALTER TABLE leads ADD COLUMN history_count INTEGER NOT NULL DEFAULT 0;"                                 \
    "ALTER TABLE leads_trash ADD COLUMN history_head INTEGER;"                                               \
    "ALTER TABLE leads_trash ADD COLUMN history_count INTEGER NOT NULL DEFAULT 0;"                           \
    "UPDATE lead_history SET prev = p.prev FROM (SELECT seq, lag(seq) OVER (PARTITION BY app_id, lead_id "   \
    "  ORDER BY seq) AS prev FROM lead_history) AS p WHERE lead_history.seq = p.seq AND p.prev IS NOT NULL;" \
    SQ_V17_HEADS("leads")                                                                                    \
    SQ_V17_HEADS("leads_trash")                                                                              \
    "DROP INDEX lead_history_lead;"
/* clang-format on */
/* Migration 18: webhook_attempts made again with its primary key's
 * columns first, in the key's order, rows kept. SQLite 3.40 (Debian 12's)
 * reports "NULL value in webhook_attempts.<column>" from integrity_check
 * for every NOT NULL column of a WITHOUT ROWID table whose key's columns
 * are not its first ones, whatever its rows hold, so every database that
 * had tried a webhook delivery failed crmd backup's check, and an
 * operator's own integrity_check cried corruption. Statements name the
 * table's columns, never their places. */
/* clang-format off */
#define SQ_V18_ATTEMPTS_KEY_FIRST                                                                            \
    "CREATE TABLE webhook_attempts_v18 (webhook_id TEXT NOT NULL, created_at INTEGER NOT NULL, "             \
    "  id TEXT NOT NULL, event_id TEXT NOT NULL, type INTEGER NOT NULL, attempt INTEGER NOT NULL, "          \
    "  status_code INTEGER, duration_ms INTEGER NOT NULL, error TEXT, next_retry_at INTEGER, "               \
    "  PRIMARY KEY (webhook_id, created_at, id)) WITHOUT ROWID;"                                             \
    "INSERT INTO webhook_attempts_v18 (webhook_id, created_at, id, event_id, type, attempt, status_code, "   \
    "  duration_ms, error, next_retry_at) SELECT webhook_id, created_at, id, event_id, type, attempt, "      \
    "  status_code, duration_ms, error, next_retry_at FROM webhook_attempts;"                                \
    "DROP TABLE webhook_attempts;"                                                                           \
    "ALTER TABLE webhook_attempts_v18 RENAME TO webhook_attempts;"
/* clang-format on */
/* Migration 19: each webhook counts its queue rows (queued), kept by two
 * triggers on webhook_events in the transaction that adds or takes a row
 * (an event recorded, copied or imported; delivered or given up; the
 * webhook deleted, whose row goes first, so its events' triggers change
 * nothing), so that the test of a full backlog at each event reads one
 * number per webhook (SCHEMA_BACKLOG_FULL). It read up to
 * --webhook-backlog-max entries of the queue's index per webhook, twice
 * per event, inside the writer's transaction, which holds SQLite's only
 * write lock: 100 webhooks with failing targets made a batch of 500
 * creates take 4 s, then 8 s, and every app's writes waited (a review).
 * The rows of version 18 are counted once. */
/* clang-format off */
#define SQ_V19_QUEUED                                                                                        \
    "ALTER TABLE webhooks ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;"                                     \
    "UPDATE webhooks SET queued = (SELECT count(*) FROM webhook_events e WHERE e.webhook_id = webhooks.id);" \
    "CREATE TRIGGER webhook_events_queued AFTER INSERT ON webhook_events BEGIN "                             \
    "  UPDATE webhooks SET queued = queued + 1 WHERE id = new.webhook_id; END;"                              \
    "CREATE TRIGGER webhook_events_taken AFTER DELETE ON webhook_events BEGIN "                              \
    "  UPDATE webhooks SET queued = queued - 1 WHERE id = old.webhook_id; END;"
/* clang-format on */
#define SQ_V17_HEADS(TABLE)                                                                                  \
    "UPDATE " TABLE " SET history_head = h.head, history_count = h.n FROM (SELECT app_id, lead_id, "         \
    "  max(seq) AS head, count(*) AS n FROM lead_history GROUP BY app_id, lead_id) AS h "                    \
    "  WHERE " TABLE ".app_id = h.app_id AND " TABLE ".id = h.lead_id;"

/* Migration 14: the indexes of three sorts (updated_at, value,
 * probability) carry each lead's stage and status after its keys. A page
 * of one stage (or status) in such an order walks the sort's index; with
 * the stage in the index, the walk tests it there and reads from the
 * table only the page's own records (store/find.c, fq_lead_find), where
 * before it read every lead it passed, about five for each of one stage's
 * (bench/results.md, 2026-11-30 20:30, "a stage's page by value"). An
 * update writes these entries anyway when it changes the key (value,
 * probability, and updated_at always changes), so the stage costs only a
 * few bytes an entry. The planner's figures go with them. */
#define SQ_V14_SORT_FILTERS                                                                                  \
    "DROP INDEX leads_updated; DROP INDEX leads_value; DROP INDEX leads_probability;"                        \
    "CREATE INDEX leads_updated ON leads (app_id, updated_at, created_at, id, stage, status);"               \
    "CREATE INDEX leads_value ON leads (app_id, value_cents, created_at, id, stage, status);"                \
    "CREATE INDEX leads_probability ON leads (app_id, probability, created_at, id, stage, status);"          \
    "DELETE FROM sqlite_stat1 WHERE tbl = 'leads' AND idx IN ('leads_updated', 'leads_value', "              \
    "'leads_probability');"                                                                                  \
    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "                                                      \
    "('leads', 'leads_updated', '1000000 100000 2 1 1 1 1'),"                                                \
    "('leads', 'leads_value', '1000000 100000 20 1 1 1 1'),"                                                 \
    "('leads', 'leads_probability', '1000000 100000 1000 1 1 1 1');"                                         \
    "ANALYZE sqlite_schema;"

/* Never edit an entry that has shipped: append a new one. */
/* clang-format off */
const char *const sq_migrations[SCHEMA_VERSION] = {
    /* 1: apps, signing keys, leads and follows. */
    "CREATE TABLE apps ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    /* lead_count makes totalRecords exact without counting the table. */
    "  lead_count INTEGER NOT NULL DEFAULT 0 CHECK (lead_count >= 0));"
    "CREATE TABLE signing_keys ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  pem TEXT NOT NULL);"
    "CREATE TABLE leads ("
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  source TEXT,"
    "  account_id TEXT,"
    "  contact_id TEXT,"
    "  value_cents INTEGER CHECK (value_cents >= 0),"
    SCHEMA_V1_LEAD_CHECKED
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (app_id, id)) WITHOUT ROWID;"
    "CREATE INDEX leads_newest ON leads (app_id, created_at DESC, id DESC);"
    "CREATE TABLE follows ("
    "  app_id INTEGER NOT NULL,"
    "  lead_id TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  description TEXT,"
    "  due_at INTEGER,"
    SCHEMA_V1_FOLLOW_CHECKED
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (app_id, lead_id, id),"
    "  FOREIGN KEY (app_id, lead_id) REFERENCES leads (app_id, id) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE INDEX follows_due ON follows (app_id, lead_id, due_at IS NULL, due_at, created_at, id);",
    /* 2: revoked tokens, polled by every server thread by sequence number. */
    "CREATE TABLE revoked_tokens ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  jti TEXT NOT NULL UNIQUE,"
    "  revoked_at INTEGER NOT NULL);",
    /* 3: the tokens this database issued, so that revoking an id it never
     * issued (a typo) is an error instead of a silent success. */
    "CREATE TABLE issued_tokens ("
    "  jti TEXT PRIMARY KEY,"
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"
    "  subject TEXT NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 4: several signing keys (crmd key rotate). A key's id (kid) is a
     * hash of its public key, computed from pem, so it is not stored. The
     * key of version 3 becomes seq 1; which tokens it signed was not
     * recorded, so its signed_until is -1 (untracked). */
    "CREATE TABLE signing_keys_v4 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  pem TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  signed_until INTEGER NOT NULL,"
    "  retired_at INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO signing_keys_v4 (seq, pem, created_at, signed_until) "
    "  SELECT 1, pem, CAST(strftime('%s', 'now') AS INTEGER) * 1000, -1 FROM signing_keys;"
    "DROP TABLE signing_keys;"
    "ALTER TABLE signing_keys_v4 RENAME TO signing_keys;",
    /* 5: the folded name and source (schema.h), filled in by crmd_fold,
     * the C folding this backend registers on every connection (conn.c). */
    "ALTER TABLE leads ADD COLUMN name_fold TEXT;"
    "ALTER TABLE leads ADD COLUMN source_fold TEXT;"
    "UPDATE leads SET name_fold = crmd_fold(name), source_fold = crmd_fold(source);",
    /* 6: what finding leads needs: the indexes, the totals, the search
     * index, and the planner's statistics. */
    SCHEMA_V6_INDEXES
    SCHEMA_V6_TOTALS
    SQ_V6_SEARCH
    SQ_V6_TRIGGERS
    SQ_V6_STATS,
    /* Webhooks. */
    SQ_MIGRATION_WEBHOOKS,
    /* 8: the trash, idempotency keys and the history (schema.h). */
    SCHEMA_V8_TRASH("TEXT", "INTEGER") " WITHOUT ROWID;"
    SCHEMA_V8_TRASH_REST("TEXT", "INTEGER") " WITHOUT ROWID;"
    SCHEMA_V8_IDEM("INTEGER") " WITHOUT ROWID;" SCHEMA_V8_IDEM_INDEX
    SCHEMA_V8_HISTORY("TEXT", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    /* 9: the source, account and contact indexes without the summed
     * columns (schema.h), with their planner's figures to match. */
    SCHEMA_V9_INDEXES
    SQ_V9_STATS,
    /* 10: the search index's keys in the list's order (see above). */
    SQ_V10_SEARCH_ORDER,
    /* 11: each event's payload once, whatever the number of its webhooks. */
    SQ_V11_PAYLOADS,
    /* 12: the lead indexes stored ascending (see above). */
    SQ_V12_INDEXES,
    /* 13: the idempotency keys' answers appended (see above). */
    SQ_V13_IDEM,
    /* 14: the stage and status in three sort indexes (see above). */
    SQ_V14_SORT_FILTERS,
    /* 15: PostgreSQL's follows_app_state gains the lead; here the index
     * holds it already (the table's primary key), so nothing changes. */
    "SELECT 1",
    /* 16: the history's seq without AUTOINCREMENT (see above). */
    SQ_V16_HISTORY_SEQ,
    /* 17: the history as a chain from each lead's row (see above). */
    SQ_V17_HISTORY_CHAIN,
    /* 18: webhook_attempts with its key's columns first (see above). */
    SQ_V18_ATTEMPTS_KEY_FIRST,
    /* 19: each webhook's count of its queue rows (see above). */
    SQ_V19_QUEUED,
};

/* The webhooks' statements SQLite writes its own way: a delete in four
 * (its events, the payloads no other webhook needs and its log go with
 * it, in the same write), the claim (the write lock makes it exclusive),
 * and an event's record in two (no INSERT in a WITH here): the queue rows,
 * then the payload if there was any. The write lock also
 * makes "no queue row names it any more" final when a payload is taken. */
#define SQ_WEBHOOK_SQL                                                                                       \
    [Q_WH_DELETE] = "DELETE FROM webhooks WHERE " SCHEMA_WEBHOOK_KEY(P),                                     \
    [Q_WH_DELETE_PAYLOADS] = "DELETE FROM webhook_payloads WHERE event_id IN (SELECT event_id FROM "         \
                             "webhook_events WHERE webhook_id = ?1) AND NOT EXISTS (SELECT 1 FROM "          \
                             "webhook_events e WHERE e.event_id = webhook_payloads.event_id AND "            \
                             "e.webhook_id <> ?1)",                                                          \
    [Q_WH_DELETE_EVENTS] = "DELETE FROM webhook_events WHERE webhook_id = ?1",                               \
    [Q_EV_PAYLOAD] = "INSERT INTO webhook_payloads (event_id, type, created_at, payload) VALUES (?1, ?2, ?3, ?4)", \
    [Q_EV_RECORD] = "INSERT INTO webhook_events (webhook_id, event_id) SELECT id, ?3 FROM " SCHEMA_EV_WANTED(P), \
    /* After an event's queue row went: its payload, unless another needs it. */ \
    [Q_OUT_UNUSED] = "DELETE FROM webhook_payloads WHERE event_id = ?1 AND NOT EXISTS (SELECT 1 FROM "       \
                     "webhook_events WHERE event_id = ?1)",                                                  \
    [Q_WH_DELETE_ATTEMPTS] = "DELETE FROM webhook_attempts WHERE webhook_id = ?1",                           \
    [Q_OUT_CLAIM] = "UPDATE webhooks SET lease_owner = ?1, lease_until = ?2 WHERE id IN ("                   \
                    "SELECT w.id FROM webhooks w WHERE w.active AND w.lease_until <= ?3 AND (SELECT e.next_at " \
                    "FROM webhook_events e WHERE e.webhook_id = w.id ORDER BY e.seq LIMIT 1) <= ?3 LIMIT ?4) "  \
                    "RETURNING " SCHEMA_LANE_COLS,                                                    \
    /* Q_EV_RECORD's webhooks (and so the backlog's): is there one? */                                     \
    [Q_EV_WANTED] = "SELECT 1 FROM " SCHEMA_EV_WANTED(P) " LIMIT 1"

/* The page of a lead list: its keys come from the covering index alone
 * (skipping rows there costs no table lookups); only the page's rows are
 * then read. WHERE adds the anchor condition of a deep page. The last
 * column is the app's lead count. */
#define LEAD_PAGE(WHERE)                                                                                     \
    "SELECT " SCHEMA_LEAD_COLS_L ", (SELECT lead_count FROM apps WHERE id = ?1) "                            \
    "FROM (SELECT id FROM leads WHERE app_id = ?1 " WHERE "ORDER BY created_at DESC, id DESC "               \
    "LIMIT ?2 OFFSET ?3) AS p "                                                                              \
    "CROSS JOIN leads AS l ON l.app_id = ?1 AND l.id = p.id "                                                \
    "ORDER BY l.created_at DESC, l.id DESC"

/* The history's chain (migration 17): the head and count in a lead's row,
 * the columns an entry goes in with, its values (prev: the lead's head, live
 * or trashed), a head's move to entry ?3, and one step of a walk (walk's
 * rows are entries) to the entry before: COLS of it, guarded by seqs that
 * fall, so that a damaged chain cannot loop. */
#define SQ_CHAIN_COLS "history_head, history_count"
#define SQ_HISTORY_IN_COLS "app_id, lead_id, id, action, actor, at, follow_id, changes, prev"
#define SQ_HISTORY_HEAD_OF                                                                                   \
    "COALESCE((SELECT history_head FROM leads WHERE " SCHEMA_LEAD_KEY(P) "), (SELECT history_head FROM "     \
    "leads_trash WHERE " SCHEMA_LEAD_KEY(P) "))"
#define SQ_HISTORY_IN_VALUES "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, " SQ_HISTORY_HEAD_OF
/* A new entry's values: as SQ_HISTORY_IN_VALUES, but at no earlier than
 * the lead's newest entry's (schema.h: SCHEMA_HISTORY_ADD). */
#define SQ_HISTORY_ADD_VALUES                                                                                \
    "SELECT ?1, ?2, ?3, ?4, ?5, max(?6, COALESCE((SELECT at FROM lead_history WHERE seq = p.head), ?6)), "   \
    "?7, ?8, p.head FROM (SELECT " SQ_HISTORY_HEAD_OF " AS head) AS p"
#define SQ_HISTORY_HEAD(TABLE)                                                                               \
    "UPDATE " TABLE " SET history_head = ?3, history_count = history_count + 1 WHERE " SCHEMA_LEAD_KEY(P)
#define SQ_HISTORY_STEP(COLS)                                                                                \
    "SELECT " COLS " FROM walk CROSS JOIN lead_history AS h ON h.seq = walk.prev WHERE h.seq < walk.seq"

/* The follows table's primary key, a WITHOUT ROWID table's own b-tree
 * (SQLite names it after the table; every schema version declares the key
 * in the table's definition). */
#define FOLLOWS_BY_KEY "INDEXED BY sqlite_autoindex_follows_1"

const char *const sq_stmt_sql[Q__COUNT] = {
    SCHEMA_SHARED_SQL(P, "max"),
    /* Transactions, and the savepoint of a write inside a batch. */
    [Q_BEGIN_READ] = "BEGIN", [Q_BEGIN_WRITE] = "BEGIN IMMEDIATE", [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK", [Q_SAVEPOINT] = "SAVEPOINT w", [Q_RELEASE] = "RELEASE w",
    [Q_ROLLBACK_TO] = "ROLLBACK TO w",
    /* The first key is seq 1, stored only into an empty table (the write
     * lock makes the check and the insert one step). */
    [Q_KEY_FIRST] = "INSERT OR IGNORE INTO signing_keys (seq, pem, created_at, signed_until, retired_at) "
                    "SELECT 1, ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
    [Q_KEY_ADD] = "INSERT INTO signing_keys (pem, created_at, signed_until, retired_at) VALUES (?1, ?2, ?3, ?4)",
    [Q_LEAD_LIST] = LEAD_PAGE(""),
    /* The same, starting at an anchor: the row (?4, ?5) and those after it. */
    [Q_LEAD_LIST_FROM] = LEAD_PAGE("AND (created_at, id) <= (?4, ?5) "),
    /* Walks the index from an anchor to record the next anchors. */
    [Q_LEAD_KEYS_FROM] = "SELECT created_at, id FROM leads WHERE app_id = ?1 AND (created_at, id) <= (?2, ?3) "
                         "ORDER BY created_at DESC, id DESC LIMIT ?4",
    [Q_DATA_VERSION] = "PRAGMA data_version",
    [Q_LEAD_COUNT] = "SELECT lead_count FROM apps WHERE id = ?1",
    [Q_LEAD_EXISTS] = "SELECT 1 FROM leads WHERE " SCHEMA_LEAD_KEY(P),
    [Q_FOLLOW_INSERT] = "INSERT INTO follows (app_id, " SCHEMA_FOLLOW_COLS ") "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* The last column is the lead's follow count, so that one statement
     * (one snapshot) gives the page and its total. Both read the table's
     * own key (app_id, lead_id, id), which holds a lead's follows side by
     * side, and sort them: SQLite would rather walk follows_due in order,
     * but then looks each row up in the table, and the index's page and
     * the table's are two random page reads per list instead of one (1.7
     * reads fewer per list at 100,000 leads, bench/results.md). The count
     * reads every follow of the lead either way, so the sort adds no read. */
    [Q_FOLLOW_LIST] = "SELECT " SCHEMA_FOLLOW_COLS " FROM follows " FOLLOWS_BY_KEY
                      " WHERE app_id = ?1 AND lead_id = ?2 ORDER BY due_at IS NULL, due_at, created_at, id",
    [Q_FOLLOW_LIST_TOP] = "SELECT " SCHEMA_FOLLOW_COLS " FROM follows " FOLLOWS_BY_KEY
                          " WHERE app_id = ?1 AND lead_id = ?2 "
                          "ORDER BY due_at IS NULL, due_at, created_at, id LIMIT ?3 OFFSET ?4",
    [Q_FOLLOW_COUNT] = "SELECT count(*) FROM follows " FOLLOWS_BY_KEY " WHERE app_id = ?1 AND lead_id = ?2",
    [Q_APP_DISABLE] = "UPDATE apps SET disabled = ?2 WHERE key = ?1",
    /* Only a token this database issued, unless ?3; once. */
    [Q_REVOKE] = "INSERT INTO revoked_tokens (jti, revoked_at) SELECT ?1, ?2 "
                 "WHERE ?3 OR EXISTS (SELECT 1 FROM issued_tokens WHERE jti = ?1) ON CONFLICT (jti) DO NOTHING",
    SCHEMA_WEBHOOK_SQL(P, "max", SQ_AS_IS, "", "queued > " P(3, int8)),
    SQ_WEBHOOK_SQL,
    /* The trash (trash.c): a lead's rows go in, then leave leads (its
     * follows by the foreign key's cascade, the totals and the search
     * index by the triggers); a recovery is the way back. */
    /* The lead's history chain (migration 17) moves with it. */
    [Q_TRASH_LEAD_IN] = "INSERT INTO leads_trash (app_id, " SCHEMA_TRASH_COLS ", " SQ_CHAIN_COLS ") SELECT "
                        "app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold, ?3, " SQ_CHAIN_COLS " FROM leads "
                        "WHERE " SCHEMA_LEAD_KEY(P),
    [Q_TRASH_FOLLOWS_IN] = SCHEMA_TRASH_FOLLOWS_IN(P),
    [Q_RECOVER_LEAD] = "INSERT INTO leads (app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold, " SQ_CHAIN_COLS
                       ") SELECT " SCHEMA_RECOVER_LEAD_COLS(P, "max") ", " SQ_CHAIN_COLS " FROM leads_trash "
                       "WHERE " SCHEMA_LEAD_KEY(P),
    [Q_RECOVER_FOLLOWS] = "INSERT INTO follows (app_id, " SCHEMA_FOLLOW_COLS ") SELECT app_id, "
                          SCHEMA_FOLLOW_COLS " FROM follows_trash WHERE " SCHEMA_TRASH_FOLLOWS_KEY(P),
    [Q_TRASH_FOLLOWS_DELETE] = "DELETE FROM follows_trash WHERE " SCHEMA_TRASH_FOLLOWS_KEY(P),
    [Q_TRASH_LEAD_DELETE] = "DELETE FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P),
    [Q_TRASH_GET] = "SELECT " SCHEMA_LEAD_COLS ", deleted_at FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P),
    [Q_TRASH_DUE] = "SELECT app_id, id FROM leads_trash WHERE deleted_at < ?1 ORDER BY deleted_at LIMIT ?2",
    [Q_TRASH_COUNT] = "SELECT count(*) FROM leads_trash WHERE app_id = ?1",
    /* The page's keys from leads_trash_deleted alone (the rows OFFSET
     * skips are never read from the table), then its rows by key. */
    [Q_TRASH_PAGE] = "SELECT " SCHEMA_LEAD_COLS ", deleted_at FROM (SELECT id AS pid FROM leads_trash "
                     "WHERE app_id = ?1 AND (deleted_at, id) < (?4, ?5) ORDER BY deleted_at DESC, id DESC "
                     "LIMIT ?2 OFFSET ?3) AS p CROSS JOIN leads_trash AS t ON t.app_id = ?1 AND t.id = p.pid "
                     "ORDER BY t.deleted_at DESC, t.id DESC",
    /* The oldest trashed leads, a few at a time: the same rows twice,
     * since the write lock holds them still in between. */
    [Q_TRASH_EXPIRE_FOLLOWS] = "DELETE FROM follows_trash WHERE (app_id, lead_id) IN (SELECT app_id, id "
                               "FROM leads_trash WHERE deleted_at < ?1 ORDER BY deleted_at, app_id, id LIMIT ?2)",
    /* Idempotency keys (idem.c). Inside a batch a claim only looks for
     * a live answer (TAKEN), and the answer is written once, row and all
     * (KEEP), under the same write lock; outside one, a claim writes the
     * key's row (CLAIM) and the answer fills it in (FINISH), as on
     * PostgreSQL. KEEP replaces only a row older than the claim's
     * fresh_after (?8), which is all TAKEN can have left. */
    SCHEMA_IDEM_SQL(P),
    [Q_IDEM_TAKEN] = "SELECT 1 FROM idempotency_keys WHERE app_id = ?1 AND key = ?2 AND created_at >= ?3",
    [Q_IDEM_KEEP] = "INSERT INTO idempotency_keys (app_id, key, hash, status, location, body, created_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (app_id, key) DO UPDATE SET "
                    "hash = excluded.hash, status = excluded.status, location = excluded.location, "
                    "body = excluded.body, created_at = excluded.created_at "
                    "WHERE idempotency_keys.created_at < ?8",
    /* The history (history.c, migration 17): an entry goes in linked to
     * its lead's newest, then becomes the newest (HEAD, or HEAD_TRASHED
     * for a lead in the trash), at no earlier than that newest's; crmd
     * copy's import keeps the entry's seq (?9) and at. */
    [Q_HISTORY_ADD] = "INSERT INTO lead_history (" SQ_HISTORY_IN_COLS ") " SQ_HISTORY_ADD_VALUES,
    [Q_HISTORY_IMPORT] = "INSERT INTO lead_history (seq, " SQ_HISTORY_IN_COLS ") VALUES (?9, " SQ_HISTORY_IN_VALUES
                         ")",
    [Q_HISTORY_HEAD] = SQ_HISTORY_HEAD("leads"),
    [Q_HISTORY_HEAD_TRASHED] = SQ_HISTORY_HEAD("leads_trash"),
    /* NOT_FOUND without a row: no such lead, live or in the trash. */
    [Q_HISTORY_COUNT] = "SELECT history_count FROM leads WHERE " SCHEMA_LEAD_KEY(P) " UNION ALL SELECT "
                        "history_count FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P) " LIMIT 1",
    /* A page: the chain from the head, or from the entry before the
     * cursor's (?5) when that entry is the lead's; SQLite walks it as the
     * rows are asked for, so LIMIT ends the walk, and the walk reads only
     * each entry's seq and prev: the entries OFFSET skips are never copied,
     * the page's are read by seq after it (at offset 50,000 of a 100,000
     * entry chain, 36 ms against 83 with whole rows). seq < ?5 keeps a
     * cursor that names another lead's entry to what it meant with an
     * index: this lead's entries before it. */
    [Q_HISTORY_PAGE] = "WITH RECURSIVE walk AS (SELECT seq, prev FROM lead_history WHERE seq = CASE WHEN EXISTS ("
                       "SELECT 1 FROM lead_history WHERE seq = ?5 AND app_id = ?1 AND lead_id = ?2) THEN (SELECT "
                       "prev FROM lead_history WHERE seq = ?5) ELSE " SQ_HISTORY_HEAD_OF " END "
                       "UNION ALL " SQ_HISTORY_STEP("h.seq, h.prev") ") "
                       "SELECT " SCHEMA_HISTORY_COLS " FROM (SELECT seq AS ps FROM walk WHERE seq < ?5 LIMIT ?3 "
                       "OFFSET ?4) AS p CROSS JOIN lead_history AS h ON h.seq = p.ps WHERE h.app_id = ?1 AND "
                       "h.lead_id = ?2 ORDER BY h.seq DESC",
    /* A lead's whole chain, before its row goes. */
    [Q_HISTORY_DELETE] = "DELETE FROM lead_history WHERE app_id = ?1 AND lead_id = ?2 AND seq IN (WITH RECURSIVE "
                         "walk AS (SELECT seq, prev FROM lead_history WHERE seq = " SQ_HISTORY_HEAD_OF " UNION ALL "
                         SQ_HISTORY_STEP("h.seq, h.prev") ") SELECT seq FROM walk)",
    /* The chains of the trashed leads Q_TRASH_EXPIRE_LEADS takes next. */
    [Q_HISTORY_EXPIRE] = "DELETE FROM lead_history WHERE seq IN (WITH RECURSIVE walk AS (SELECT seq, prev FROM "
                         "lead_history WHERE seq IN (SELECT history_head FROM leads_trash WHERE deleted_at < ?1 "
                         "ORDER BY deleted_at, app_id, id LIMIT ?2) UNION ALL " SQ_HISTORY_STEP("h.seq, h.prev") ") "
                         "SELECT seq FROM walk)",
    [Q_IDEM_EXPIRE] = "DELETE FROM idempotency_keys WHERE (app_id, key) IN (SELECT app_id, key "
                      "FROM idempotency_keys WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
    [Q_IDEM_FORGET_LIVE] = SCHEMA_IDEM_FORGET_LEAD(P, "leads"),
    [Q_IDEM_FORGET_TRASHED] = SCHEMA_IDEM_FORGET_LEAD(P, "leads_trash"),
    [Q_IDEM_EXPIRE_TRASH] = "UPDATE idempotency_keys " SCHEMA_IDEM_FORGET " WHERE (app_id, key) IN (SELECT k.app_id, k.key "
                            "FROM (SELECT app_id, id, created_at FROM leads_trash WHERE deleted_at < ?1 "
                            "ORDER BY deleted_at, app_id, id LIMIT ?2) v JOIN idempotency_keys k "
                            "ON k.app_id = v.app_id AND " SCHEMA_IDEM_CARRIES("k.", "v.id", "v.created_at") ")",
    /* The search index's upkeep (tidy.c): how many of its segments are
     * large, at least ?1 leaf pages and an eighth of the largest (each
     * segment's last leaf page indexed, in FTS5's own b-tree index, stands
     * for its size); */
    [Q_SEARCH_LARGE] = "WITH seg (pages) AS (SELECT max(pgno) FROM lead_fts_idx GROUP BY segid) "
                       "SELECT count(*) FROM seg WHERE pages >= ?1 AND pages * 8 >= (SELECT max(pages) FROM seg)",
    /* a merge step merges a level that holds two segments or more, */
    [Q_SEARCH_USERMERGE] = "INSERT INTO lead_fts (lead_fts, rank) VALUES ('usermerge', 2)",
    /* writing about ?1 pages. */
    [Q_SEARCH_MERGE] = "INSERT INTO lead_fts (lead_fts, rank) VALUES ('merge', ?1)",
    /* How many of the SQ_SEARCH_SAMPLE leads a search walk meets first, from
     * key ?2 on (newest or oldest first), are other apps' than ?1
     * (search.c). */
    [Q_SEARCH_OTHERS_NEWEST] = "SELECT count(*) FROM (SELECT app_id FROM lead_text WHERE rowid <= ?2 "
                               "ORDER BY rowid DESC LIMIT " SCHEMA_STR(SQ_SEARCH_SAMPLE) ") WHERE app_id <> ?1",
    [Q_SEARCH_OTHERS_OLDEST] = "SELECT count(*) FROM (SELECT app_id FROM lead_text WHERE rowid >= ?2 "
                               "ORDER BY rowid LIMIT " SCHEMA_STR(SQ_SEARCH_SAMPLE) ") WHERE app_id <> ?1",
    /* The oldest and newest created_at of app ?1's leads (NULL, NULL when
     * it has none): a search walk reads no keys beyond theirs (search.c).
     * Each is one look-up at an end of the app's part of leads_newest. */
    [Q_SEARCH_APP_SPAN] = "SELECT (SELECT min(created_at) FROM leads WHERE app_id = ?1), "
                          "(SELECT max(created_at) FROM leads WHERE app_id = ?1)",
    [Q_TRASH_EXPIRE_LEADS] = "DELETE FROM leads_trash WHERE (app_id, id) IN (SELECT app_id, id "
                             "FROM leads_trash WHERE deleted_at < ?1 ORDER BY deleted_at, app_id, id LIMIT ?2)",
    /* Staged creates (leads.c): a row in (parameters as Q_LEAD_INSERT's),
     * whether leads would refuse it (its id taken, or its app unknown: the
     * foreign key), and the rows into leads, in the order staged, then out
     * of the staging table. */
    [Q_STAGE_INSERT] = "INSERT INTO temp.leads_incoming (app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [Q_STAGE_TAKEN] = "SELECT 1 FROM main.leads WHERE " SCHEMA_LEAD_KEY(P) " UNION ALL SELECT 1 WHERE NOT EXISTS "
                      "(SELECT 1 FROM main.apps WHERE id = ?1)",
    /* The leads come with their history's head and count: the entry
     * waiting beside a lead (Q_STAGE_HISTORY below) will be seq ?1 (the
     * largest, from Q_STAGE_HISTORY_LAST) plus its rowid. */
    [Q_STAGE_FLUSH] = "INSERT INTO main.leads (app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold, " SQ_CHAIN_COLS
                      ") SELECT l.app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold, ?1 + h.n, h.n IS NOT NULL "
                      "FROM temp.leads_incoming AS l LEFT JOIN (SELECT rowid AS n, app_id AS a, lead_id AS lead "
                      "FROM temp.history_incoming) AS h ON h.a = l.app_id AND h.lead = l.id ORDER BY l.rowid",
    [Q_STAGE_CLEAR] = "DELETE FROM temp.leads_incoming",
    /* The history entries recorded while creates wait (history.c): each
     * the creation of a lead that waits too, so the first entry of its
     * lead and the only one waiting (the unique key of the staging table
     * holds it so). In (parameters as Q_HISTORY_ADD's), only beside its
     * lead (history.c records it at once otherwise); the largest seq;
     * into lead_history, numbered after it in the order recorded (rowid:
     * the table is emptied after each move), as one by one they would have
     * been, and as the leads' rows name them already. */
    [Q_STAGE_HISTORY] = "INSERT INTO temp.history_incoming (app_id, lead_id, id, action, actor, at, follow_id, "
                        "changes) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM "
                        "temp.leads_incoming WHERE app_id = ?1 AND id = ?2)",
    [Q_STAGE_HISTORY_LAST] = "SELECT COALESCE(max(seq), 0) FROM main.lead_history",
    [Q_STAGE_HISTORY_FLUSH] = "INSERT INTO main.lead_history (seq, " SQ_HISTORY_IN_COLS ") SELECT ?1 + rowid, app_id, "
                              "lead_id, id, action, actor, at, follow_id, changes, NULL FROM temp.history_incoming "
                              "ORDER BY rowid",
    [Q_STAGE_HISTORY_CLEAR] = "DELETE FROM temp.history_incoming",
};
/* clang-format on */

const char *const sq_copy_count_sql =
    "SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM leads), "
    "(SELECT count(*) FROM follows), (SELECT count(*) FROM revoked_tokens), "
    "(SELECT COALESCE(sum(lead_count), 0) FROM apps), "
    "(SELECT count(*) FROM signing_keys), (SELECT count(*) FROM issued_tokens), "
    "(SELECT count(*) FROM leads_trash), (SELECT count(*) FROM follows_trash), "
    "(SELECT count(*) FROM lead_history), (SELECT count(*) FROM idempotency_keys)";

/* The staging table of lead creates (leads.c), made by every connection
 * as it opens: temporary (in memory, the connection's alone), with the
 * constraints of leads that a single row can break, so that a create is
 * refused there as it would be by leads; and that of the history entries
 * recorded while creates wait (history.c), with lead_history's NOT NULLs. */
/* clang-format off */
const char *const sq_stage_table_sql =
    "CREATE TEMP TABLE leads_incoming ("
    "  app_id INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL, source TEXT, account_id TEXT, contact_id TEXT,"
    "  value_cents INTEGER CHECK (value_cents >= 0),"
    SCHEMA_V1_LEAD_CHECKED
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  name_fold TEXT, source_fold TEXT,"
    "  PRIMARY KEY (app_id, id));"
    "CREATE TEMP TABLE history_incoming ("
    "  app_id INTEGER NOT NULL, lead_id TEXT NOT NULL, id TEXT NOT NULL, action INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, at INTEGER NOT NULL, follow_id TEXT, changes TEXT NOT NULL,"
    "  UNIQUE (app_id, lead_id))";
/* clang-format on */

/* app_id comes last, so the record readers read the rest unchanged. */
const char *const sq_export_sql[9] = {
    "SELECT " SCHEMA_APP_COLS " FROM apps ORDER BY id",
    "SELECT " SCHEMA_TOKEN_COLS " FROM issued_tokens ORDER BY issued_at, jti",
    "SELECT jti, revoked_at FROM revoked_tokens ORDER BY seq",
    "SELECT " SCHEMA_LEAD_COLS ", app_id FROM leads ORDER BY app_id, created_at, id",
    "SELECT " SCHEMA_FOLLOW_COLS ", app_id FROM follows ORDER BY app_id, lead_id, created_at, id",
    "SELECT " SCHEMA_LEAD_COLS ", app_id, deleted_at FROM leads_trash ORDER BY app_id, deleted_at, id",
    "SELECT " SCHEMA_FOLLOW_COLS ", app_id FROM follows_trash ORDER BY app_id, lead_id, created_at, id",
    "SELECT " SCHEMA_HISTORY_COLS ", app_id, lead_id FROM lead_history ORDER BY seq",
    "SELECT hash, status, location, body, created_at, app_id, key FROM idempotency_keys ORDER BY app_id, key",
};

const char *const sq_import_key_sql =
    "INSERT INTO signing_keys (pem, created_at, signed_until, retired_at) VALUES (?1, ?2, ?3, ?4)";

const char *const sq_import_app_sql[2] = {
    "INSERT INTO apps (key, name, disabled, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
    "INSERT INTO apps (key, name, disabled, created_at, id) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
};

const char *const sq_import_revoked_sql =
    "INSERT OR IGNORE INTO revoked_tokens (jti, revoked_at) VALUES (?1, ?2)";

const char *const sq_import_counts_sql =
    "UPDATE apps SET lead_count = (SELECT count(*) FROM leads WHERE leads.app_id = apps.id)";

/* Partial updates, as run: only the attributes a patch sets (so SQLite,
 * which rewrites every index holding a column named in SET, leaves alone
 * the indexes of the others), then updated_at, the key and the row back.
 * Parameters are numbered as in the shared statements (schema.h), so the
 * same binding serves; a name or a source sets its folded copy with it. */
typedef struct sq_set {
    unsigned bit;
    const char *sql;
} sq_set_t;

static const sq_set_t lead_sets[] = {
    {SQL_LEAD_F_NAME, "name = ?4, name_fold = ?13, "},
    {SQL_LEAD_F_SOURCE, "source = ?5, source_fold = ?14, "},
    {SQL_LEAD_F_ACCOUNT, "account_id = ?6, "},
    {SQL_LEAD_F_CONTACT, "contact_id = ?7, "},
    {SQL_LEAD_F_VALUE, "value_cents = ?8, "},
    {SQL_LEAD_F_STAGE, "stage = ?9, "},
    {SQL_LEAD_F_PROBABILITY, "probability = ?10, "},
    {SQL_LEAD_F_STATUS, "status = ?11, "},
};
static const sq_set_t follow_sets[] = {
    {SQL_FOLLOW_F_TITLE, "title = ?5, "},
    {SQL_FOLLOW_F_DESCRIPTION, "description = ?6, "},
    {SQL_FOLLOW_F_DUE, "due_at = ?7, "},
    {SQL_FOLLOW_F_STATUS, "status = ?8, "},
};

const char *sq_update_sql(enum sq_stmt_id id, unsigned fields, char *buf, size_t size)
{
    assert(id == Q_LEAD_UPDATE || id == Q_FOLLOW_UPDATE);
    assert(size >= SQ_UPDATE_SQL_MAX);
    bool lead = id == Q_LEAD_UPDATE;
    const sq_set_t *sets = lead ? lead_sets : follow_sets;
    size_t n = lead ? sizeof lead_sets / sizeof *lead_sets : sizeof follow_sets / sizeof *follow_sets;
    size_t len = (size_t)snprintf(buf, size, "UPDATE %s SET ", lead ? "leads" : "follows");
    for (size_t i = 0; i < n; i++)
        if (fields & sets[i].bit) len += (size_t)snprintf(buf + len, size - len, "%s", sets[i].sql);
    snprintf(buf + len, size - len, "%s",
             lead ? SCHEMA_UPDATED_AT(P(12, int8),
                                      "max") "WHERE " SCHEMA_LEAD_KEY(P) " RETURNING " SCHEMA_LEAD_COLS
                  : SCHEMA_UPDATED_AT(P(9, int8),
                                      "max") "WHERE " SCHEMA_FOLLOW_KEY(P) " RETURNING " SCHEMA_FOLLOW_COLS);
    assert(strlen(buf) < size - 1); /* SQ_UPDATE_SQL_MAX holds the longest */
    return buf;
}
