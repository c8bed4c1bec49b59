-- bench/seed.sql: bulk-seeds a migrated crmd database for the benchmark.
--
-- Run by bench/run through the sqlite3 command-line shell, after
-- `crmd migrate` and two `crmd app create`, with these parameters set
-- (.parameter set):
--   @n      number of leads in all
--   @n1     how many of them belong to the first app (the rest: the second)
--   @app1   apps.id of the first app, @app2 of the second
--   @t0     created_at (ms since the epoch) of the oldest lead
--   @pfx    32-bit number for the first group of every id (uuid v7 shape)
--
-- name_fold and source_fold, which crmd writes with its own Unicode case
-- folding, are lower() here: the seeded texts are ASCII. The triggers of
-- migration 4 keep lead_totals and the search index as the rows go in.
--
-- Lead i (1..@n) gets the id printf('%08x-0000-7000-8000-%012x', @pfx, i):
-- lowercase, UUID-shaped (version 7, variant 10), unique, and sorted in the
-- order of i, which is also the order of created_at (@t0 + i ms). Follows
-- use the group 7001 instead of 7000 and the number 3*i + k, k = 0..2.
-- Rows go in key order, so the primary keys and the created_at indexes
-- append; the indexes of finding (by value, name, stage, ...) and the search
-- index do not, and make seeding several times slower than the 17 s that
-- 1,000,000 leads and 3,000,000 follows took before them.
--
-- Safe only on a database no server is using: journal off, no fsync.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA foreign_keys = OFF;
PRAGMA cache_size = -262144;
-- (no PRAGMA temp_store here: changing it drops the temp schema, which
-- holds the .parameter values)

BEGIN;

WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < @n)
INSERT INTO leads (app_id, id, name, source, account_id, contact_id, value_cents, stage,
                   probability, status, created_at, updated_at, name_fold, source_fold)
SELECT CASE WHEN i <= @n1 THEN @app1 ELSE @app2 END,
       printf('%08x-0000-7000-8000-%012x', @pfx, i),
       'Bench lead ' || i,
       CASE i % 4 WHEN 0 THEN 'website' WHEN 1 THEN 'referral' WHEN 2 THEN 'cold_call' ELSE NULL END,
       printf('0000acc0-0000-7000-8000-%012x', i % 9973),
       CASE WHEN i % 3 = 0 THEN NULL ELSE printf('0000c0c0-0000-7000-8000-%012x', i % 99991) END,
       (i * 7919) % 100000000,
       i % 5,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 13) % 101 END,
       i % 4,
       @t0 + i,
       @t0 + i,
       'bench lead ' || i,
       CASE i % 4 WHEN 0 THEN 'website' WHEN 1 THEN 'referral' WHEN 2 THEN 'cold_call' ELSE NULL END
FROM seq;

WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < @n),
     k(j) AS (VALUES (0), (1), (2))
INSERT INTO follows (app_id, lead_id, id, title, description, due_at, status, created_at, updated_at)
SELECT CASE WHEN i <= @n1 THEN @app1 ELSE @app2 END,
       printf('%08x-0000-7000-8000-%012x', @pfx, i),
       printf('%08x-0000-7001-8000-%012x', @pfx, 3 * i + j),
       'Follow-up ' || j || ' for lead ' || i,
       CASE WHEN j = 2 THEN NULL ELSE 'Call back and send the proposal document' END,
       CASE WHEN j = 1 THEN NULL ELSE @t0 + 86400000 * (1 + (i + j) % 60) END,
       (i + j) % 2,
       @t0 + i,
       @t0 + i
FROM seq, k;

UPDATE apps SET lead_count = (SELECT count(*) FROM leads WHERE leads.app_id = apps.id);

COMMIT;

-- The search index as crmd's writer leaves it once idle (store/sqlite/tidy.c):
-- no level of it with two segments or more. The insert above leaves a dozen
-- segments at 1,000,000 leads; a crmd started on the file would merge them in
-- the background (12 s at 1,000,000 leads) while the first scenarios run.
INSERT INTO lead_fts (lead_fts, rank) VALUES ('usermerge', 2);
INSERT INTO lead_fts (lead_fts, rank) VALUES ('merge', 2000000000);

PRAGMA journal_mode = WAL;
